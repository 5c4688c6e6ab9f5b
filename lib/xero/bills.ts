/**
 * Bills (ACCPAY invoices): batched create/update with one outcome per bill, and the reads the
 * sync needs (by id, by number, everything changed since). Creates go by PUT (which never matches
 * an existing document) and updates by POST with their InvoiceID, 50 a call, always with
 * summarizeErrors=false, unitdp=4 and an Idempotency-Key derived from the batch's content
 * (for updates, plus a per-call nonce).
 */
import type { Invoice } from "xero-node";
import type { XeroApi } from "./api.ts";
import { XeroError } from "./errors.ts";
import { idempotencyKey } from "./idempotency.ts";
import type { BillResult, BillSummary, XeroInvoice, XeroInvoiceStatus } from "./types.ts";

const BATCH = 50;
/** Batches in flight at once; the limiter still caps calls per organisation. */
const PARALLEL = 3;
/** Xero's page size for invoices. */
const PAGE = 100;
/** Encoded length budget for IDs= / InvoiceNumbers= (Xero refuses URLs past ~2 KB). */
const QUERY_MAX = 1500;
const MAX_PAGES = 500;

export interface BillsContext {
  api: XeroApi;
  tenantId: string;
}

const str = (v: unknown) => (v === undefined || v === null ? "" : String(v));

/** Xero's "/Date(1700000000000+0000)/" (or an ISO text) → YYYY-MM-DD, else undefined. */
export function xeroDay(v: unknown): string | undefined {
  if (v instanceof Date) {
    return Number.isNaN(v.getTime()) ? undefined : v.toISOString().slice(0, 10);
  }
  if (typeof v !== "string" || !v) return undefined;
  const m = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/.exec(v);
  const ms = m ? Number(m[1]) : Date.parse(v);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString().slice(0, 10);
}

export function toSummary(inv: Invoice): BillSummary {
  const updated = inv.updatedDateUTC as unknown;
  const paidOn = xeroDay(inv.fullyPaidOnDate);
  return {
    invoiceID: str(inv.invoiceID),
    invoiceNumber: str(inv.invoiceNumber),
    status: str(inv.status) as XeroInvoiceStatus,
    ...(inv.url ? { url: inv.url } : {}),
    total: Number(inv.total ?? 0),
    ...(inv.contact?.contactID ? { contactID: inv.contact.contactID } : {}),
    ...(inv.currencyCode ? { currencyCode: String(inv.currencyCode) } : {}),
    ...(updated instanceof Date && !Number.isNaN(updated.getTime())
      ? { updatedAt: updated.toISOString() }
      : {}),
    ...(inv.type ? { type: String(inv.type) } : {}),
    ...(inv.amountPaid !== undefined ? { amountPaid: Number(inv.amountPaid) } : {}),
    ...(inv.amountDue !== undefined ? { amountDue: Number(inv.amountDue) } : {}),
    ...(paidOn ? { fullyPaidOn: paidOn } : {}),
  };
}

/** Keeps only what a bill write may carry, so read-only fields never go back to Xero. */
function writable(inv: XeroInvoice): XeroInvoice {
  const out: XeroInvoice = {
    type: "ACCPAY",
    ...(inv.invoiceID ? { invoiceID: inv.invoiceID } : {}),
    contact: { contactID: inv.contact.contactID },
    lineItems: inv.lineItems.map((l) => ({ ...l })),
  };
  for (
    const k of [
      "date",
      "dueDate",
      "lineAmountTypes",
      "invoiceNumber",
      "reference",
      "url",
      "currencyCode",
      "currencyRate",
      "status",
    ] as const
  ) {
    if (inv[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = inv[k];
  }
  return out;
}

export async function upsertBills(
  ctx: BillsContext,
  items: Array<{ key: string; invoice: XeroInvoice }>,
): Promise<Map<string, BillResult>> {
  const { api, tenantId } = ctx;
  const results = new Map<string, BillResult>();
  const creates = items.filter((i) => !i.invoice.invoiceID);
  const updates = items.filter((i) => i.invoice.invoiceID);
  const batches: Array<{ op: "put" | "post"; items: typeof items }> = [];
  for (let i = 0; i < creates.length; i += BATCH) {
    batches.push({ op: "put", items: creates.slice(i, i + BATCH) });
  }
  for (let i = 0; i < updates.length; i += BATCH) {
    batches.push({ op: "post", items: updates.slice(i, i + BATCH) });
  }
  if (!batches.length) return results;
  // Refuse, before any write, work the day's remaining calls cannot finish.
  api.limiter(tenantId).assertDayLeft(batches.length);

  // Creates: the key is the content alone, so a re-run after a lost answer (even from another
  // process) gets Xero's stored answer instead of a second bill. Updates are harmless to repeat
  // but not to replay: content going A → B → A → B must not get B's first, stale answer.
  const updateNonce = crypto.randomUUID();
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++];
      const scope = batch.op === "put" ? "" : ` ${updateNonce}`;
      for (const [key, r] of await sendBatch(ctx, batch.op, batch.items, scope)) {
        results.set(key, r);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, batches.length) }, worker));
  return results;
}

async function sendBatch(
  { api, tenantId }: BillsContext,
  op: "put" | "post",
  items: Array<{ key: string; invoice: XeroInvoice }>,
  scope: string,
): Promise<Map<string, BillResult>> {
  const out = new Map<string, BillResult>();
  const invoices = items.map((i) => writable(i.invoice)) as unknown as Invoice[];
  // Computed once: every retry of this batch carries the same key.
  const key = await idempotencyKey(`invoices.${op} ${tenantId}${scope}`, invoices);
  let returned: Invoice[];
  try {
    const body = await api.call(
      `invoices.${op}`,
      tenantId,
      (a) =>
        op === "put"
          ? a.createInvoices(tenantId, { invoices }, false, 4, key)
          : a.updateOrCreateInvoices(tenantId, { invoices }, false, 4, key),
    );
    returned = body.invoices ?? [];
  } catch (e) {
    const err = e instanceof XeroError
      ? e
      : new XeroError(`Xero invoices.${op}: ${(e as Error).message}`, {
        status: 0,
        kind: "server",
      });
    for (const i of items) {
      out.set(i.key, { ok: false, message: err.message, retryable: err.retryable, kind: err.kind });
    }
    return out;
  }
  items.forEach((item, j) => {
    const inv = returned[j];
    if (!inv) {
      out.set(item.key, {
        ok: false,
        message: "Xero's answer did not include this bill",
        retryable: true,
        kind: "server",
      });
      return;
    }
    const messages = (inv.validationErrors ?? []).map((v) => v.message).filter(Boolean);
    if (
      inv.hasErrors || inv.statusAttributeString === "ERROR" || messages.length || !inv.invoiceID
    ) {
      out.set(item.key, {
        ok: false,
        message: messages.join("; ") || "Xero rejected the bill",
        retryable: false,
      });
      return;
    }
    out.set(item.key, {
      ok: true,
      invoiceID: inv.invoiceID,
      invoiceNumber: str(inv.invoiceNumber),
      status: str(inv.status) as XeroInvoiceStatus,
      total: Number(inv.total ?? 0),
      subTotal: Number(inv.subTotal ?? 0),
      totalTax: Number(inv.totalTax ?? 0),
    });
  });
  return out;
}

/** Splits values into comma-joined groups whose encoded length stays under the URL budget. */
function groups(values: string[]): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  for (const v of values) {
    if (cur.length && encodeURIComponent([...cur, v].join(",")).length > QUERY_MAX) {
      out.push(cur);
      cur = [];
    }
    cur.push(v);
  }
  if (cur.length) out.push(cur);
  return out;
}

type GetArgs = {
  where?: string;
  ids?: string[];
  numbers?: string[];
  searchTerm?: string;
  since?: Date;
  /** Status and amounts without lines (cheaper answers: egress is billed since 2026). */
  summaryOnly?: boolean;
  /** Up to 1,000 (Xero's default is 100). */
  pageSize?: number;
};

/** Every page of one invoice query. */
async function* pages({ api, tenantId }: BillsContext, q: GetArgs): AsyncGenerator<Invoice[]> {
  for (let page = 1; page <= MAX_PAGES; page++) {
    const body = await api.call("invoices.get", tenantId, (a) =>
      a.getInvoices(
        tenantId,
        q.since,
        q.where,
        undefined,
        q.ids,
        q.numbers,
        undefined,
        undefined,
        page,
        undefined,
        undefined,
        4,
        q.summaryOnly,
        q.pageSize,
        q.searchTerm,
      ));
    const list = body.invoices ?? [];
    yield list;
    const count = body.pagination?.pageCount;
    if (list.length < (q.pageSize ?? PAGE) || (count !== undefined && page >= count)) return;
  }
}

export async function getBills(
  ctx: BillsContext,
  invoiceIDs: string[],
): Promise<Map<string, BillSummary>> {
  const wanted = new Map(invoiceIDs.map((id) => [id.toLowerCase(), id]));
  const out = new Map<string, BillSummary>();
  for (const ids of groups([...new Set(invoiceIDs)])) {
    for await (const list of pages(ctx, { ids })) {
      for (const inv of list) {
        const asked = wanted.get(str(inv.invoiceID).toLowerCase());
        if (asked) out.set(asked, toSummary(inv));
      }
    }
  }
  return out;
}

export async function findBills(
  ctx: BillsContext,
  invoiceNumbers: string[],
): Promise<BillSummary[]> {
  const numbers = [...new Set(invoiceNumbers.filter((n) => n !== ""))];
  const wanted = new Set(numbers);
  const out = new Map<string, BillSummary>();
  const take = (list: Invoice[]) => {
    for (const inv of list) {
      if (str(inv.type) === "ACCPAY" && wanted.has(str(inv.invoiceNumber)) && inv.invoiceID) {
        out.set(inv.invoiceID, toSummary(inv));
      }
    }
  };
  const ACCPAY = 'Type=="ACCPAY"';
  // A comma would split InvoiceNumbers=, a quote would break a where filter.
  const plain = numbers.filter((n) => !/[,"\\]/.test(n));
  const comma = numbers.filter((n) => n.includes(",") && !/["\\]/.test(n));
  const other = numbers.filter((n) => /["\\]/.test(n));
  for (const group of groups(plain)) {
    for await (const list of pages(ctx, { where: ACCPAY, numbers: group })) take(list);
  }
  for (const n of comma) {
    for await (const list of pages(ctx, { where: `${ACCPAY} AND InvoiceNumber=="${n}"` })) {
      take(list);
    }
  }
  for (const n of other) {
    for await (const list of pages(ctx, { where: ACCPAY, searchTerm: n })) take(list);
  }
  return [...out.values()];
}

/** ACCPAY bills page by page (100 a page), optionally only those changed since a moment. */
export async function* listBillsSince(
  ctx: BillsContext,
  modifiedSince?: Date,
): AsyncGenerator<BillSummary[]> {
  for await (const list of pages(ctx, { where: 'Type=="ACCPAY"', since: modifiedSince })) {
    if (list.length) yield list.map(toSummary);
  }
}

/**
 * The safety net of the Xero → Zoho direction: ACCPAY bills changed since a moment, status and
 * amounts only (summaryOnly), 1,000 a page, so a missed webhook costs a call or two.
 */
export async function* listBillChanges(
  ctx: BillsContext,
  modifiedSince?: Date,
): AsyncGenerator<BillSummary[]> {
  const q = { where: 'Type=="ACCPAY"', since: modifiedSince, summaryOnly: true, pageSize: 1000 };
  for await (const list of pages(ctx, q)) if (list.length) yield list.map(toSummary);
}

/** Status and amounts of the named bills (about 50 ids a call), without their lines. */
export async function billStates(
  ctx: BillsContext,
  invoiceIDs: string[],
): Promise<Map<string, BillSummary>> {
  const wanted = new Map(invoiceIDs.map((id) => [id.toLowerCase(), id]));
  const out = new Map<string, BillSummary>();
  for (const ids of groups([...new Set(invoiceIDs)])) {
    for await (const list of pages(ctx, { ids, summaryOnly: true, pageSize: 1000 })) {
      for (const inv of list) {
        const asked = wanted.get(str(inv.invoiceID).toLowerCase());
        if (asked) out.set(asked, toSummary(inv));
      }
    }
  }
  return out;
}

/**
 * Deletes (DRAFT, SUBMITTED) or voids (AUTHORISED, unpaid) bills: 50 a POST, with
 * summarizeErrors=false so each bill gets Xero's own answer.
 */
export async function setBillStatuses(
  ctx: BillsContext,
  changes: Array<{ invoiceID: string; status: "DELETED" | "VOIDED" }>,
): Promise<Map<string, BillResult>> {
  const { api, tenantId } = ctx;
  const out = new Map<string, BillResult>();
  for (let i = 0; i < changes.length; i += BATCH) {
    const batch = changes.slice(i, i + BATCH);
    const invoices = batch.map((c) => ({
      invoiceID: c.invoiceID,
      status: c.status,
    })) as unknown as Invoice[];
    const key = await idempotencyKey(`invoices.status ${tenantId}`, invoices);
    let returned: Invoice[];
    try {
      const body = await api.call(
        "invoices.post",
        tenantId,
        (a) => a.updateOrCreateInvoices(tenantId, { invoices }, false, 4, key),
      );
      returned = body.invoices ?? [];
    } catch (e) {
      const err = e instanceof XeroError ? e : new XeroError(
        `Xero invoices.post: ${(e as Error).message}`,
        { status: 0, kind: "server" },
      );
      for (const c of batch) {
        out.set(c.invoiceID, {
          ok: false,
          message: err.message,
          retryable: err.retryable,
          kind: err.kind,
        });
      }
      continue;
    }
    batch.forEach((c, j) => {
      const inv = returned[j];
      const messages = (inv?.validationErrors ?? []).map((v) => v.message).filter(Boolean);
      if (!inv || inv.hasErrors || messages.length) {
        out.set(c.invoiceID, {
          ok: false,
          message: messages.join("; ") || "Xero did not change the bill",
          retryable: !inv,
        });
        return;
      }
      out.set(c.invoiceID, {
        ok: true,
        invoiceID: c.invoiceID,
        invoiceNumber: str(inv.invoiceNumber),
        status: str(inv.status) as XeroInvoiceStatus,
        total: Number(inv.total ?? 0),
        subTotal: Number(inv.subTotal ?? 0),
        totalTax: Number(inv.totalTax ?? 0),
      });
    });
  }
  return out;
}
