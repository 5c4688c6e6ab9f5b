/**
 * Pins the Xero simulator to REFERENCE.md (Xero section), talking plain HTTP to it the way any
 * Xero client would: OAuth rotation and grace, summarizeErrors both ways, status rules,
 * Idempotency-Key replay, validation and totals, where filters and paging, rate limits, faults.
 */
import assert from "node:assert/strict";
import { startXeroSim, XERO_SIM_MESSAGES, type XeroSim } from "../sandbox/xero.ts";

// Loose on purpose: these tests read Xero's JSON the way an untyped client would.
// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const basic = (sim: XeroSim) => `Basic ${btoa(`${sim.clientId}:${sim.clientSecret}`)}`;

async function tokenCall(sim: XeroSim, form: Record<string, string>, auth = basic(sim)) {
  const res = await fetch(`${sim.url}/connect/token`, {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: await res.json() as Json };
}

async function accessToken(sim: XeroSim): Promise<string> {
  const r = await tokenCall(sim, { grant_type: "refresh_token", refresh_token: sim.refreshToken });
  assert.equal(r.status, 200);
  return r.body.access_token;
}

interface Call {
  status: number;
  body: Json;
  headers: Headers;
}

function client(sim: XeroSim, token: string) {
  return async (
    method: string,
    path: string,
    body?: unknown,
    extra: Record<string, string> = {},
  ) => {
    const res = await fetch(`${sim.url}/api.xro/2.0${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        "xero-tenant-id": sim.tenantId,
        accept: "application/json",
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...extra,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: Json = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { text };
    }
    return { status: res.status, body: parsed, headers: res.headers } as Call;
  };
}

async function setup(opts: Parameters<typeof startXeroSim>[0] = {}) {
  const sim = await startXeroSim(opts);
  const token = await accessToken(sim);
  const call = client(sim, token);
  const supplier = sim.contacts()[0];
  return { sim, token, call, supplier };
}

const bill = (contactID: string, n: number, line: Json = {}) => ({
  Type: "ACCPAY",
  Contact: { ContactID: contactID },
  InvoiceNumber: `PO-${n}`,
  Date: "2026-01-15",
  DueDate: "2026-02-14",
  LineAmountTypes: "Exclusive",
  Url: `https://crm.example.com/po/${n}`,
  LineItems: [{
    Description: "Widget",
    Quantity: 2,
    UnitAmount: 12.3456,
    AccountCode: "300",
    TaxType: "INPUT",
    ...line,
  }],
});

Deno.test("oauth: refresh tokens rotate, the old one works during the grace, then invalid_grant", async () => {
  const sim = await startXeroSim({ refreshGraceMs: 150, accessTokenTtlSec: 60 });
  try {
    const first = sim.refreshToken;
    const a = await tokenCall(sim, { grant_type: "refresh_token", refresh_token: first });
    assert.equal(a.status, 200);
    assert.equal(a.body.token_type, "Bearer");
    assert.equal(a.body.expires_in, 60);
    assert.notEqual(a.body.refresh_token, first);
    assert.equal(sim.refreshToken, a.body.refresh_token);
    // Within the grace the previous token still refreshes.
    const b = await tokenCall(sim, { grant_type: "refresh_token", refresh_token: first });
    assert.equal(b.status, 200);
    await new Promise((r) => setTimeout(r, 200));
    const c = await tokenCall(sim, { grant_type: "refresh_token", refresh_token: first });
    assert.deepEqual(c, { status: 400, body: { error: "invalid_grant" } });
    // The newest token keeps working; a wrong secret is invalid_client.
    const d = await tokenCall(sim, {
      grant_type: "refresh_token",
      refresh_token: sim.refreshToken,
    });
    assert.equal(d.status, 200);
    const e = await tokenCall(
      sim,
      { grant_type: "refresh_token", refresh_token: sim.refreshToken },
      `Basic ${btoa(`${sim.clientId}:wrong`)}`,
    );
    assert.deepEqual(e, { status: 400, body: { error: "invalid_client" } });
    assert.equal(sim.counts.token, 5);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: authorize redirects with code and state; the code is single use; connections list tenants", async () => {
  const sim = await startXeroSim({
    tenants: [
      { tenantId: "t-1", tenantName: "Org One" },
      { tenantId: "t-2", tenantName: "Org Two" },
    ],
  });
  try {
    const redirect = "http://127.0.0.1:9/callback";
    const res = await fetch(
      `${sim.url}/identity/connect/authorize?response_type=code&client_id=${sim.clientId}` +
        `&redirect_uri=${encodeURIComponent(redirect)}&scope=offline_access&state=xyz`,
      { redirect: "manual" },
    );
    await res.body?.cancel();
    assert.equal(res.status, 302);
    const loc = new URL(res.headers.get("location")!);
    assert.equal(`${loc.origin}${loc.pathname}`, redirect);
    assert.equal(loc.searchParams.get("state"), "xyz");
    const code = loc.searchParams.get("code")!;
    const form = { grant_type: "authorization_code", code, redirect_uri: redirect };
    const ok = await tokenCall(sim, form);
    assert.equal(ok.status, 200);
    assert.equal((await tokenCall(sim, form)).body.error, "invalid_grant");

    const conns = await fetch(`${sim.url}/connections`, {
      headers: { authorization: `Bearer ${ok.body.access_token}` },
    });
    const list = await conns.json();
    assert.deepEqual(list.map((c: Json) => [c.tenantId, c.tenantName, c.tenantType]), [
      ["t-1", "Org One", "ORGANISATION"],
      ["t-2", "Org Two", "ORGANISATION"],
    ]);
    const anon = await fetch(`${sim.url}/connections`);
    await anon.body?.cancel();
    assert.equal(anon.status, 401);
  } finally {
    await sim.close();
  }
});

Deno.test("api: bearer token and tenant header are required; expired tokens get 401", async () => {
  const { sim, token } = await setup();
  try {
    const noTenant = await fetch(`${sim.url}/api.xro/2.0/Accounts`, {
      headers: { authorization: `Bearer ${token}` },
    });
    await noTenant.body?.cancel();
    assert.equal(noTenant.status, 403);
    const call = client(sim, "not-a-token");
    assert.equal((await call("GET", "/Accounts")).status, 401);
    sim.expireAccessTokens();
    const expired = await client(sim, token)("GET", "/Accounts");
    assert.equal(expired.status, 401);
    assert.match(expired.body.Detail, /TokenExpired/);
  } finally {
    await sim.close();
  }
});

Deno.test("reference data: accounts, tax rates, currencies", async () => {
  const { sim, call } = await setup();
  try {
    const accounts = (await call("GET", "/Accounts")).body.Accounts as Json[];
    const purchases = accounts.find((a) => a.Code === "300")!;
    assert.equal(purchases.Name, "Purchases");
    assert.equal(purchases.Type, "EXPENSE");
    const rates = (await call("GET", "/TaxRates")).body.TaxRates as Json[];
    assert.equal(rates.find((t) => t.TaxType === "INPUT")!.EffectiveRate, 10);
    assert.ok(rates.some((t) => t.TaxType === "NONE"));
    const currencies = (await call("GET", "/Currencies")).body.Currencies as Json[];
    assert.deepEqual(currencies.map((c) => c.Code), ["AUD", "USD", "EUR", "GBP", "NZD"]);
    assert.equal(sim.counts.accounts, 1);
    assert.equal(sim.counts.taxrates, 1);
    assert.equal(sim.counts.currencies, 1);
  } finally {
    await sim.close();
  }
});

Deno.test("invoices: summarizeErrors=false answers 200 with per-element errors; only valid bills are created", async () => {
  const { sim, call, supplier } = await setup();
  try {
    const res = await call("PUT", "/Invoices?summarizeErrors=false&unitdp=4", {
      Invoices: [
        bill(supplier.ContactID, 1),
        bill(supplier.ContactID, 2, { AccountCode: "999" }),
        bill(supplier.ContactID, 3),
      ],
    });
    assert.equal(res.status, 200);
    const [a, b, c] = res.body.Invoices as Json[];
    assert.equal(a.StatusAttributeString, "OK");
    assert.equal(a.HasErrors, false);
    assert.ok(a.InvoiceID);
    assert.equal(b.HasErrors, true);
    assert.equal(b.StatusAttributeString, "ERROR");
    assert.deepEqual(b.ValidationErrors, [{ Message: XERO_SIM_MESSAGES.account("999") }]);
    assert.equal(b.InvoiceID, undefined);
    assert.equal(c.StatusAttributeString, "OK");
    assert.deepEqual(sim.invoices().map((i) => i.InvoiceNumber), ["PO-1", "PO-3"]);
  } finally {
    await sim.close();
  }
});

Deno.test("invoices: the default (summarised) answer is a 400 ValidationException, yet the valid bills were created", async () => {
  const { sim, call, supplier } = await setup();
  try {
    const res = await call("PUT", "/Invoices", {
      Invoices: [bill(supplier.ContactID, 1), bill(supplier.ContactID, 2, { Description: "" })],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.ErrorNumber, 10);
    assert.equal(res.body.Type, "ValidationException");
    assert.equal(res.body.Elements.length, 1);
    assert.deepEqual(res.body.Elements[0].ValidationErrors, [
      { Message: XERO_SIM_MESSAGES.description },
    ]);
    assert.deepEqual(sim.invoices().map((i) => i.InvoiceNumber), ["PO-1"]);
  } finally {
    await sim.close();
  }
});

Deno.test("invoices: validation of contact, quantity, tax type and currency", async () => {
  const { sim, call, supplier } = await setup();
  try {
    const res = await call("PUT", "/Invoices?summarizeErrors=false", {
      Invoices: [
        { ...bill(supplier.ContactID, 1), Contact: { ContactID: crypto.randomUUID() } },
        bill(supplier.ContactID, 2, { Quantity: -1 }),
        bill(supplier.ContactID, 3, { TaxType: "BOGUS" }),
        { ...bill(supplier.ContactID, 4), CurrencyCode: "XYZ" },
        { ...bill(supplier.ContactID, 5), Contact: {} },
        bill(supplier.ContactID, 6, { DiscountRate: 10 }),
      ],
    });
    const messages = (res.body.Invoices as Json[]).map((i) =>
      i.ValidationErrors.map((v: Json) => v.Message).join(" | ")
    );
    assert.match(messages[0], /could not be found/);
    assert.equal(messages[1], XERO_SIM_MESSAGES.quantity(-1));
    assert.equal(messages[2], XERO_SIM_MESSAGES.taxType("BOGUS"));
    assert.equal(messages[3], XERO_SIM_MESSAGES.currency("XYZ"));
    assert.equal(messages[4], XERO_SIM_MESSAGES.contactMissing);
    assert.equal(messages[5], XERO_SIM_MESSAGES.discount);
    assert.equal(sim.invoices().length, 0);
  } finally {
    await sim.close();
  }
});

Deno.test("invoices: tax per line rounded to 2 dp, totals, unitdp, InvoiceNumber not unique for bills", async () => {
  const { sim, call, supplier } = await setup();
  try {
    const body = {
      Invoices: [{
        ...bill(supplier.ContactID, 7),
        LineItems: [
          {
            Description: "a",
            Quantity: 3,
            UnitAmount: 3.3333,
            AccountCode: "300",
            TaxType: "INPUT",
          },
          { Description: "b", Quantity: 1, UnitAmount: 0.05, AccountCode: "300", TaxType: "INPUT" },
          { Description: "c", Quantity: 1, UnitAmount: 10, AccountCode: "300" },
          { Description: "d", Quantity: 1, UnitAmount: -2.5, AccountCode: "300", TaxType: "NONE" },
        ],
      }],
    };
    const four = (await call("PUT", "/Invoices?summarizeErrors=false&unitdp=4", body)).body
      .Invoices[0];
    // 3 × 3.3333 = 9.9999 → 10.00, tax 1.00; 0.05 → tax 0.005 → 0.01; 10 (account default INPUT) → 1.00; -2.50 no tax.
    assert.deepEqual(four.LineItems.map((l: Json) => [l.UnitAmount, l.LineAmount, l.TaxAmount]), [
      [3.3333, 10, 1],
      [0.05, 0.05, 0.01],
      [10, 10, 1],
      [-2.5, -2.5, 0],
    ]);
    assert.equal(four.LineItems[2].TaxType, "INPUT");
    assert.equal(four.SubTotal, 17.55);
    assert.equal(four.TotalTax, 2.01);
    assert.equal(four.Total, 19.56);
    // Without unitdp=4 the unit amount keeps 2 dp.
    const two = (await call("PUT", "/Invoices?summarizeErrors=false", body)).body.Invoices[0];
    assert.equal(two.LineItems[0].UnitAmount, 3.33);
    assert.equal(two.LineItems[0].LineAmount, 9.99);
    // Same InvoiceNumber twice is fine for ACCPAY.
    assert.equal(sim.invoices().filter((i) => i.InvoiceNumber === "PO-7").length, 2);
    // A GET without unitdp shows 2 dp.
    const got = (await call("GET", `/Invoices/${four.InvoiceID}`)).body.Invoices[0];
    assert.equal(got.LineItems[0].UnitAmount, 3.33);
    assert.equal(
      (await call("GET", `/Invoices/${four.InvoiceID}?unitdp=4`)).body.Invoices[0].LineItems[0]
        .UnitAmount,
      3.3333,
    );
  } finally {
    await sim.close();
  }
});

const GST15 = [
  { taxType: "INPUT", name: "GST on Expenses", effectiveRate: 15 },
  { taxType: "NONE", name: "No GST", effectiveRate: 0 },
];
const pair = (tax?: number) => [
  { Description: "Widget", Quantity: 1, UnitAmount: 10.03, AccountCode: "300", TaxType: "INPUT" },
  {
    Description: "Discount: Widget",
    Quantity: 1,
    UnitAmount: -0.1,
    AccountCode: "300",
    TaxType: "INPUT",
    ...(tax !== undefined ? { TaxAmount: tax } : {}),
  },
];

Deno.test("invoices: tax to the cent half away from zero (4.10 at 15 % is 0.62), exact line amounts", async () => {
  const { sim, call, supplier } = await setup({ taxRates: GST15 });
  try {
    const res = await call("PUT", "/Invoices?summarizeErrors=false&unitdp=4", {
      Invoices: [{
        ...bill(supplier.ContactID, 1),
        LineItems: [
          { Description: "a", Quantity: 1, UnitAmount: 4.1, AccountCode: "300", TaxType: "INPUT" },
          {
            Description: "b",
            Quantity: 0.3,
            UnitAmount: 0.75,
            AccountCode: "300",
            TaxType: "NONE",
          },
          ...pair(),
        ],
      }],
    });
    const inv = res.body.Invoices[0];
    // 4.10 × 15 % = 0.615 → 0.62; 0.3 × 0.75 = 0.225 → 0.23; 10.03 → 1.5045 → 1.50;
    // −0.10 → −0.015 → −0.02 (Xero taxes each line apart: the pair is 1.48, Zoho's 9.93 is 1.49).
    assert.deepEqual(inv.LineItems.map((l: Json) => [l.LineAmount, l.TaxAmount]), [
      [4.1, 0.62],
      [0.23, 0],
      [10.03, 1.5],
      [-0.1, -0.02],
    ]);
    assert.equal(inv.SubTotal, 14.26);
    assert.equal(inv.TotalTax, 2.1);
    assert.equal(inv.Total, 16.36);
  } finally {
    await sim.close();
  }
});

Deno.test("invoices: a line TaxAmount overrides Xero's tax; with a tolerance one further off is refused", async () => {
  // Xero documents TaxAmount as overridable with no limit for invoices (xero_accounting.yaml,
  // LineItem.TaxAmount); the simulator takes it as given unless told a tolerance.
  const lenient = await setup({ taxRates: GST15 });
  try {
    const res = await lenient.call("PUT", "/Invoices?summarizeErrors=false&unitdp=4", {
      Invoices: [
        { ...bill(lenient.supplier.ContactID, 1), LineItems: [...pair(-0.01), ...pair(-0.01)] },
        { ...bill(lenient.supplier.ContactID, 2), LineItems: pair(-0.5) },
        {
          ...bill(lenient.supplier.ContactID, 3),
          LineAmountTypes: "NoTax",
          LineItems: pair(-0.01),
        },
      ],
    });
    const [a, b, c] = res.body.Invoices as Json[];
    // Two lines of 10.03 less 0.10 at 15 %: Zoho's 22.84, when the discount lines carry −0.01.
    assert.deepEqual([a.SubTotal, a.TotalTax, a.Total], [19.86, 2.98, 22.84]);
    assert.equal(a.LineItems[1].TaxAmount, -0.01);
    assert.deepEqual([b.StatusAttributeString, b.TotalTax, b.Total], ["OK", 1, 10.93]);
    // No tax at all on a NoTax bill, whatever the line says.
    assert.deepEqual([c.TotalTax, c.Total], [0, 9.93]);
  } finally {
    await lenient.sim.close();
  }

  const strict = await setup({ taxRates: GST15, taxAmountTolerance: 0.01 });
  try {
    const res = await strict.call("PUT", "/Invoices?summarizeErrors=false&unitdp=4", {
      Invoices: [
        { ...bill(strict.supplier.ContactID, 1), LineItems: pair(-0.01) },
        { ...bill(strict.supplier.ContactID, 2), LineItems: pair(-0.05) },
      ],
    });
    const [ok, refused] = res.body.Invoices as Json[];
    assert.equal(ok.StatusAttributeString, "OK");
    assert.equal(ok.Total, 11.42);
    assert.equal(refused.StatusAttributeString, "ERROR");
    assert.deepEqual(refused.ValidationErrors, [{
      Message: "Tax amount -0.05 is incorrect for INPUT tax type, should be -0.02",
    }]);
    assert.deepEqual(strict.sim.invoices().map((i) => i.InvoiceNumber), ["PO-1"]);
  } finally {
    await strict.sim.close();
  }
});

Deno.test("invoices: DRAFT/SUBMITTED editable (lines replaced), AUTHORISED only voided, PAID not editable", async () => {
  const { sim, call, supplier } = await setup();
  try {
    const created = (await call("PUT", "/Invoices?summarizeErrors=false", {
      Invoices: [
        bill(supplier.ContactID, 1),
        bill(supplier.ContactID, 2),
        bill(supplier.ContactID, 3),
      ],
    })).body.Invoices as Json[];
    const [a, b, c] = created.map((i) => i.InvoiceID as string);

    // DRAFT: an update replaces every line.
    const upd = await call("POST", "/Invoices?summarizeErrors=false", {
      Invoices: [{
        InvoiceID: a,
        Status: "SUBMITTED",
        LineItems: [{ Description: "Only line", Quantity: 1, UnitAmount: 5, AccountCode: "300" }],
      }],
    });
    assert.equal(upd.body.Invoices[0].StatusAttributeString, "OK");
    const after = sim.invoices().find((i) => i.InvoiceID === a)!;
    assert.equal(after.Status, "SUBMITTED");
    assert.deepEqual(after.LineItems.map((l) => l.Description), ["Only line"]);
    assert.equal(after.Total, 5.5);

    // AUTHORISED: no edit, but VOIDED works.
    sim.setInvoiceStatus(b, "AUTHORISED");
    const refused = await call("POST", "/Invoices?summarizeErrors=false", {
      Invoices: [{ ...bill(supplier.ContactID, 2), InvoiceID: b, Status: "DRAFT" }],
    });
    assert.deepEqual(refused.body.Invoices[0].ValidationErrors, [
      { Message: "Invoice not of valid status for modification" },
    ]);
    const single = await call("POST", `/Invoices/${b}`, {
      Invoices: [{ Reference: "changed" }],
    });
    assert.equal(single.status, 400);
    assert.equal(single.body.Type, "ValidationException");
    const voided = await call("POST", `/Invoices/${b}`, { Invoices: [{ Status: "VOIDED" }] });
    assert.equal(voided.status, 200);
    assert.equal(sim.invoices().find((i) => i.InvoiceID === b)!.Status, "VOIDED");

    // PAID: the payment message.
    sim.setInvoiceStatus(c, "AUTHORISED");
    sim.setInvoiceStatus(c, "PAID");
    const paid = await call("POST", "/Invoices?summarizeErrors=false", {
      Invoices: [{ InvoiceID: c, Status: "VOIDED" }],
    });
    assert.equal(
      paid.body.Invoices[0].ValidationErrors[0].Message,
      "This document cannot be edited as it has a payment or credit note allocated to it.",
    );

    // DRAFT → DELETED; then nothing more.
    const d = (await call("PUT", "/Invoices", { Invoices: [bill(supplier.ContactID, 4)] })).body
      .Invoices[0].InvoiceID;
    assert.equal((await call("POST", `/Invoices/${d}`, { Status: "DELETED" })).status, 200);
    const gone = await call("POST", "/Invoices?summarizeErrors=false", {
      Invoices: [{ InvoiceID: d, Status: "DRAFT" }],
    });
    assert.equal(gone.body.Invoices[0].ValidationErrors[0].Message, XERO_SIM_MESSAGES.notEditable);
    // An unknown id.
    const unknown = await call("POST", "/Invoices?summarizeErrors=false", {
      Invoices: [{ InvoiceID: crypto.randomUUID(), Status: "DRAFT" }],
    });
    assert.equal(unknown.body.Invoices[0].ValidationErrors[0].Message, XERO_SIM_MESSAGES.notFound);
  } finally {
    await sim.close();
  }
});

Deno.test("idempotency: the same key replays the stored answer and creates nothing new", async () => {
  const { sim, call, supplier } = await setup();
  try {
    const body = { Invoices: [bill(supplier.ContactID, 1), bill(supplier.ContactID, 2)] };
    const path = "/Invoices?summarizeErrors=false&unitdp=4";
    const first = await call("PUT", path, body, { "idempotency-key": "key-1" });
    const again = await call("PUT", path, body, { "idempotency-key": "key-1" });
    assert.deepEqual(again.body, first.body);
    assert.equal(sim.invoices().length, 2);
    // Two at once with one key still make one set of bills.
    await Promise.all([
      call("PUT", path, body, { "idempotency-key": "key-2" }),
      call("PUT", path, body, { "idempotency-key": "key-2" }),
    ]);
    assert.equal(sim.invoices().length, 4);
    await call("PUT", path, body, { "idempotency-key": "key-3" });
    assert.equal(sim.invoices().length, 6);
    assert.equal(sim.counts["invoices.put"], 5);
  } finally {
    await sim.close();
  }
});

Deno.test("contacts: unique active names, ContactNumber lookups, where filters (OR, broken quotes), searchTerm", async () => {
  const { sim, call } = await setup({
    contacts: [
      { name: "Acme Supplies", contactNumber: "5001" },
      { name: "Old Co", status: "ARCHIVED" },
    ],
  });
  try {
    const put = await call("PUT", "/Contacts?summarizeErrors=false", {
      Contacts: [
        { Name: "Fresh Vendor", ContactNumber: "5002" },
        { Name: "acme supplies" },
        { Name: "Old Co" },
        { Name: "Other", ContactNumber: "5001" },
      ],
    });
    const [fresh, dup, revived, numberTaken] = put.body.Contacts as Json[];
    assert.equal(fresh.StatusAttributeString, "OK");
    assert.equal(dup.HasValidationErrors, true);
    assert.equal(dup.ValidationErrors[0].Message, XERO_SIM_MESSAGES.contactName("acme supplies"));
    assert.equal(revived.StatusAttributeString, "OK"); // archived names do not count
    assert.equal(numberTaken.ValidationErrors[0].Message, XERO_SIM_MESSAGES.contactNumberTaken);

    const byNumber = await call("GET", "/Contacts/5001");
    assert.equal(byNumber.body.Contacts[0].Name, "Acme Supplies");
    const where = encodeURIComponent('ContactNumber=="5002" OR Name=="ACME SUPPLIES"');
    const found = await call("GET", `/Contacts?where=${where}`);
    assert.deepEqual(found.body.Contacts.map((c: Json) => c.Name).sort(), [
      "Acme Supplies",
      "Fresh Vendor",
    ]);
    const broken = await call("GET", `/Contacts?where=${encodeURIComponent('Name=="Say "Hi""')}`);
    assert.equal(broken.status, 400);
    const search = await call("GET", `/Contacts?searchTerm=${encodeURIComponent("fresh")}`);
    assert.deepEqual(search.body.Contacts.map((c: Json) => c.Name), ["Fresh Vendor"]);
    const active = await call("GET", "/Contacts?summaryOnly=true");
    assert.equal(active.body.Contacts.length, 3);
    const all = await call("GET", "/Contacts?includeArchived=true");
    assert.equal(all.body.Contacts.length, 4);
  } finally {
    await sim.close();
  }
});

Deno.test("invoice reads: where Type, IDs, InvoiceNumbers, Statuses, paging by 100, summaryOnly, If-Modified-Since", async () => {
  const { sim, call, supplier } = await setup();
  try {
    const invoices = Array.from({ length: 130 }, (_, i) => bill(supplier.ContactID, i));
    for (let i = 0; i < invoices.length; i += 50) {
      await call("PUT", "/Invoices?summarizeErrors=false", { Invoices: invoices.slice(i, i + 50) });
    }
    const ids = sim.invoices().map((i) => i.InvoiceID);
    sim.setInvoiceStatus(ids[5], "AUTHORISED");
    const type = encodeURIComponent('Type=="ACCPAY"');
    const p1 = await call("GET", `/Invoices?where=${type}&page=1`);
    const p2 = await call("GET", `/Invoices?where=${type}&page=2`);
    assert.equal(p1.body.Invoices.length, 100);
    assert.equal(p2.body.Invoices.length, 30);
    assert.deepEqual(p1.body.pagination, { page: 1, pageSize: 100, pageCount: 2, itemCount: 130 });
    const byIds = await call("GET", `/Invoices?IDs=${ids[0]},${ids[1]}`);
    assert.equal(byIds.body.Invoices.length, 2);
    const byNumbers = await call("GET", `/Invoices?InvoiceNumbers=PO-3,PO-4,PO-999`);
    assert.deepEqual(byNumbers.body.Invoices.map((i: Json) => i.InvoiceNumber), ["PO-3", "PO-4"]);
    const approved = await call("GET", `/Invoices?Statuses=AUTHORISED`);
    assert.deepEqual(approved.body.Invoices.map((i: Json) => i.InvoiceID), [ids[5]]);
    const summary = await call("GET", `/Invoices?IDs=${ids[0]}&summaryOnly=true`);
    assert.equal(summary.body.Invoices[0].LineItems, undefined);
    await new Promise((r) => setTimeout(r, 5));
    sim.setInvoiceStatus(ids[7], "AUTHORISED");
    const changed = await call("GET", "/Invoices", undefined, {
      "if-modified-since": new Date(Date.now() - 3).toISOString(),
    });
    assert.deepEqual(changed.body.Invoices.map((i: Json) => i.InvoiceID), [ids[7]]);
    // Xero refuses URLs past ~2 KB.
    const long = await call("GET", `/Invoices?IDs=${Array(60).fill(ids[0]).join(",")}`);
    assert.equal(long.status, 404);
  } finally {
    await sim.close();
  }
});

Deno.test("rate limits: headers on every answer; 429 minute with Retry-After, concurrent, day", async () => {
  const { sim, call } = await setup({
    limits: { perMinute: 3, concurrent: 2, perDay: 100 },
    clockScale: 60,
    latencyMs: 0,
  });
  try {
    const a = await call("GET", "/Accounts");
    assert.equal(a.headers.get("x-minlimit-remaining"), "2");
    assert.equal(a.headers.get("x-daylimit-remaining"), "99");
    assert.ok(a.headers.get("x-appminlimit-remaining"));
    await call("GET", "/Accounts");
    await call("GET", "/Accounts");
    const over = await call("GET", "/Accounts");
    assert.equal(over.status, 429);
    assert.equal(over.headers.get("x-rate-limit-problem"), "minute");
    assert.equal(over.headers.get("retry-after"), "1");
    // clockScale 60: the minute window is one second.
    await new Promise((r) => setTimeout(r, 1050));
    assert.equal((await call("GET", "/Accounts")).status, 200);

    sim.setDayLimitRemaining(0);
    const day = await call("GET", "/Accounts");
    assert.equal(day.status, 429);
    assert.equal(day.headers.get("x-rate-limit-problem"), "day");
    assert.ok(Number(day.headers.get("retry-after")) >= 1);
  } finally {
    await sim.close();
  }

  const slow = await setup({ limits: { concurrent: 2 }, latencyMs: 150 });
  try {
    const results = await Promise.all([1, 2, 3].map(() => slow.call("GET", "/Accounts")));
    const refused = results.filter((r) => r.status === 429);
    assert.equal(refused.length, 1);
    assert.equal(refused[0].headers.get("x-rate-limit-problem"), "concurrent");
  } finally {
    await slow.sim.close();
  }
});

Deno.test("faults: injected answers, drop after the work, random faults by seed, call counts", async () => {
  const { sim, call, supplier } = await setup();
  try {
    sim.resetCounts();
    sim.fault({ endpoint: "invoices.put", kind: "500" });
    sim.fault({ endpoint: "accounts", kind: "429", retryAfterSec: 3 });
    sim.fault({ endpoint: "currencies", kind: "malformed" });
    sim.fault({ kind: "invalid_token", endpoint: "taxrates" });
    const body = { Invoices: [bill(supplier.ContactID, 1)] };
    assert.equal((await call("PUT", "/Invoices?summarizeErrors=false", body)).status, 500);
    assert.equal(sim.invoices().length, 0);
    const limited = await call("GET", "/Accounts");
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "3");
    assert.equal((await call("GET", "/Currencies")).body.text?.startsWith("<html>"), true);
    assert.equal((await call("GET", "/TaxRates")).status, 401);
    assert.equal((await call("GET", "/TaxRates")).status, 200);

    // drop: the bill is stored, the caller sees no answer; the same key then replays it.
    sim.fault({ endpoint: "invoices", kind: "drop" });
    const path = "/Invoices?summarizeErrors=false";
    await assert.rejects(call("PUT", path, body, { "idempotency-key": "k" }));
    assert.equal(sim.invoices().length, 1);
    const replay = await call("PUT", path, body, { "idempotency-key": "k" });
    assert.equal(replay.body.Invoices[0].InvoiceID, sim.invoices()[0].InvoiceID);
    assert.equal(sim.invoices().length, 1);

    sim.fault({ kind: "delay", delayMs: 120, endpoint: "accounts" });
    const t0 = Date.now();
    assert.equal((await call("GET", "/Accounts")).status, 200);
    assert.ok(Date.now() - t0 >= 110);

    const run = async () => {
      sim.randomFaults({ rate: 0.5, seed: 42, kinds: ["500", "503"], endpoints: ["accounts"] });
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await call("GET", "/Accounts")).status);
      sim.randomFaults(null);
      return statuses;
    };
    const x = await run();
    const y = await run();
    assert.deepEqual(x, y);
    assert.ok(x.some((s) => s >= 500) && x.some((s) => s === 200));

    assert.equal(sim.counts["invoices.put"], 3);
    assert.equal(sim.counts.taxrates, 2);
    assert.equal(sim.totalCalls(), Object.values(sim.counts).reduce((a, b) => a + b, 0));
  } finally {
    await sim.close();
  }
});

Deno.test("page: GET / lists each organisation's bills, escaped", async () => {
  const { sim, call, supplier } = await setup();
  try {
    await call("PUT", "/Invoices", {
      Invoices: [{ ...bill(supplier.ContactID, 1), InvoiceNumber: "PO-<b>1</b>" }],
    });
    const res = await fetch(`${sim.url}/`);
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(html, /Demo Company \(AU\)/);
    assert.match(html, /PO-&lt;b&gt;1&lt;\/b&gt;/);
    assert.match(html, /href="https:\/\/crm\.example\.com\/po\/1"/);
    assert.match(html, /27\.17 AUD/); // unit amount 12.35 without unitdp=4
    assert.equal(sim.totalCalls(), 2); // the token and the PUT; the page is not an API call
  } finally {
    await sim.close();
  }
});
