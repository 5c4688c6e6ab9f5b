/**
 * The per-record pipeline general automation tools build ("new purchase order in Zoho → find or
 * create the supplier in Xero → create the bill"), for comparison: poll the Zoho list, then for
 * each record one Zoho GET, one contact search by name (and a create when it is missing) and one
 * bill create. Plain fetch against the simulators; a 429 waits its Retry-After and tries again.
 *
 * Retry-After is read in simulated seconds (÷ clockScale), like every other duration in the bench:
 * the simulator reports at least 1 second, so a literal reading would charge this pipeline a full
 * real second per wait while the whole (scaled) minute window is shorter than that.
 */
import type { SimHostInfo } from "./sim_host.ts";

export interface NaiveOutcome {
  created: number;
  failed: number;
  contactsCreated: number;
  /** 429 answers this pipeline received (each was waited out and retried). */
  rateLimited: number;
}

type Json = Record<string, unknown>;

/** The same tax mappings the app is given (ORG_SETTINGS), as a lookup a person would type in. */
const TAX_TYPES: Record<string, string> = {
  "GST 10": "INPUT",
  "GST 15": "TAX002",
  "VAT 20": "TAX001",
  "Sales Tax 8.875": "TAX003",
  "Reduced VAT 5": "TAX004",
  "CGST + SGST 18": "TAX005",
};

function taxTypeOf(taxes: unknown): string {
  const list = Array.isArray(taxes) ? (taxes as Json[]) : [];
  if (!list.length) return "NONE";
  const name = list.map((t) => String(t.name)).sort().join(" + ");
  const pct = list.reduce((s, t) => s + Number(t.percentage ?? 0), 0);
  return TAX_TYPES[`${name} ${Number(pct.toFixed(4))}`] ?? "NONE";
}

const addDays = (date: string, days: number) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

/** A field-by-field mapping of one purchase order to a Xero bill. */
function billOf(po: Json, contactID: string): Json {
  const lines: Json[] = [];
  for (const item of (po.Purchase_Items as Json[] | undefined) ?? []) {
    const product = (item.Product_Name ?? {}) as Json;
    const taxType = taxTypeOf(item.Line_Tax);
    lines.push({
      Description: String(item.Description ?? product.name ?? "Item"),
      Quantity: item.Quantity,
      UnitAmount: item.List_Price,
      AccountCode: "300",
      TaxType: taxType,
    });
    if (Number(item.Discount)) {
      lines.push({
        Description: `Discount: ${product.name ?? "item"}`,
        Quantity: 1,
        UnitAmount: -Number(item.Discount),
        AccountCode: "300",
        TaxType: taxType,
      });
    }
  }
  if (Number(po.Discount)) {
    lines.push({
      Description: "Discount",
      Quantity: 1,
      UnitAmount: -Number(po.Discount),
      AccountCode: "300",
      TaxType: "NONE",
    });
  }
  if (Number(po.Adjustment)) {
    lines.push({
      Description: "Adjustment",
      Quantity: 1,
      UnitAmount: Number(po.Adjustment),
      AccountCode: "300",
      TaxType: "NONE",
    });
  }
  const date = String(po.PO_Date);
  return {
    Type: "ACCPAY",
    Contact: { ContactID: contactID },
    InvoiceNumber: po.PO_Number ?? po.Subject,
    Date: date,
    DueDate: po.Due_Date ?? addDays(date, 30),
    CurrencyCode: po.Currency,
    LineAmountTypes: "Exclusive",
    Status: "DRAFT",
    LineItems: lines,
  };
}

export async function runNaive(info: SimHostInfo, clockScale: number): Promise<NaiveOutcome> {
  const out: NaiveOutcome = { created: 0, failed: 0, contactsCreated: 0, rateLimited: 0 };

  async function call(url: string, init: RequestInit = {}): Promise<Response> {
    for (let attempt = 0; attempt < 10_000; attempt++) {
      const res = await fetch(url, init);
      if (res.status !== 429) return res;
      await res.body?.cancel();
      out.rateLimited++;
      const after = Number(res.headers.get("retry-after") ?? "1");
      await new Promise((r) => setTimeout(r, Math.max(1, (after * 1000) / clockScale)));
    }
    throw new Error(`still rate limited: ${url}`);
  }

  async function token(url: string, form: Record<string, string>): Promise<string> {
    const res = await call(url, { method: "POST", body: new URLSearchParams(form) });
    const body = await res.json();
    if (!body.access_token) throw new Error(`no access token from ${url}`);
    return body.access_token;
  }

  // Connect both, the way a tool's saved connection does before its first task.
  const zohoToken = await token(`${info.zoho.url}/oauth/v2/token`, {
    grant_type: "refresh_token",
    client_id: info.zoho.clientId,
    client_secret: info.zoho.clientSecret,
    refresh_token: info.zoho.refreshToken,
  });
  const xeroToken = await token(`${info.xero.url}/connect/token`, {
    grant_type: "refresh_token",
    client_id: info.xero.clientId,
    client_secret: info.xero.clientSecret,
    refresh_token: info.xero.refreshToken,
  });
  const zoho = { authorization: `Zoho-oauthtoken ${zohoToken}` };
  const connections = await (await call(`${info.xero.url}/connections`, {
    headers: { authorization: `Bearer ${xeroToken}` },
  })).json() as Array<{ tenantId: string }>;
  const xero = {
    authorization: `Bearer ${xeroToken}`,
    "xero-tenant-id": connections[0].tenantId,
    accept: "application/json",
    "content-type": "application/json",
  };
  const api = `${info.xero.url}/api.xro/2.0`;

  // The trigger: poll for purchase orders (200 a page; page_token past 2,000).
  const ids: string[] = [];
  let page = 1;
  let pageToken: string | null = null;
  for (;;) {
    const q = new URLSearchParams({
      fields: "Modified_Time",
      sort_by: "Modified_Time",
      sort_order: "asc",
      per_page: "200",
      ...(pageToken ? { page_token: pageToken } : { page: String(page) }),
    });
    const res = await call(`${info.zoho.url}/crm/v8/Purchase_Orders?${q}`, { headers: zoho });
    if (res.status === 204) break;
    const body = await res.json() as { data: Json[]; info: Json };
    ids.push(...body.data.map((r) => String(r.id)));
    if (!body.info.more_records) break;
    page++;
    if (page * 200 > 2000) pageToken = String(body.info.next_page_token);
  }

  // One task per record.
  for (const id of ids) {
    const got = await call(`${info.zoho.url}/crm/v8/Purchase_Orders/${id}`, { headers: zoho });
    const po = ((await got.json()) as { data: Json[] }).data[0];
    const vendor = String((po.Vendor_Name as Json).name);

    const where = `Name=="${vendor}"`;
    const found = await call(`${api}/Contacts?where=${encodeURIComponent(where)}`, {
      headers: xero,
    });
    let contactID = ((await found.json()) as { Contacts: Json[] }).Contacts[0]?.ContactID as
      | string
      | undefined;
    if (!contactID) {
      const made = await call(`${api}/Contacts`, {
        method: "PUT",
        headers: xero,
        body: JSON.stringify({ Contacts: [{ Name: vendor }] }),
      });
      contactID = ((await made.json()) as { Contacts?: Json[] }).Contacts?.[0]?.ContactID as
        | string
        | undefined;
      if (contactID) out.contactsCreated++;
    }
    if (!contactID) {
      out.failed++;
      continue;
    }

    const bill = await call(`${api}/Invoices?unitdp=4`, {
      method: "PUT",
      headers: xero,
      body: JSON.stringify({ Invoices: [billOf(po, contactID)] }),
    });
    const answer = await bill.json() as { Invoices?: Json[] };
    if (bill.ok && answer.Invoices?.[0]?.InvoiceID) out.created++;
    else out.failed++;
  }
  return out;
}
