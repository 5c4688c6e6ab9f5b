/**
 * The heart of a sync: a batch of purchase orders (≤ 50) through fetch → eligibility → contacts →
 * map → create / update / leave → write-back, with the per-record guarantees of DESIGN §7.
 * Used for one record (the Zoho button) and for every batch of a run.
 */
import {
  eligibility,
  invoiceNumberOf,
  parsePurchaseOrder,
  type PurchaseOrder,
  recordUrl,
  type Settings,
  toBill,
  type XeroInvoice,
} from "../mapping/mod.ts";
import { sha256Hex } from "../secrets.ts";
import { keys } from "../store/keys.ts";
import { acquireMany, release } from "../store/locks.ts";
import {
  type BillIntent,
  commitChunked,
  getIntents,
  getStates,
  type RecordState,
} from "../store/records.ts";
import { asRunStop, describe } from "./errors.ts";
import { fingerprint } from "./fingerprint.ts";
import { mapLimit, sleep } from "./limit.ts";
import { outcomeMessage } from "./messages.ts";
import type { XeroBillSummary, XeroPort, ZohoPort } from "./ports.ts";
import type { Mode, Outcome, RecordResult } from "./types.ts";

const MODULE = "Purchase_Orders" as const;
/** Bills in these states belong to the accountants: we never change them. */
const EDITABLE = new Set(["DRAFT", "SUBMITTED"]);
const LOCK_TTL_MS = 120_000;
const UNCONFIRMED_WAIT_MS = 120_000;

export interface BatchItem {
  id: string;
  /** Modified_Time from the list call; absent for records named directly (button, retry, queue). */
  listedModifiedTime?: string;
  /** Content fingerprint from the list call (absent when the listing could not read the fields). */
  listedFingerprint?: string;
}

export interface BatchContext {
  kv: Deno.Kv;
  zoho: ZohoPort;
  xero: XeroPort;
  settings: Settings;
  mode: Mode;
  /** Lock owner (run id or request id). */
  owner: string;
  /** How long to wait for a record another sync holds. */
  lockWaitMs: number;
  /** How long a record lock outlives a holder that died (default LOCK_TTL_MS). */
  lockTtlMs?: number;
  /** How long a create that got no answer is waited for before it is sent again. */
  unconfirmedWaitMs?: number;
  /** Give records unchanged since the last sync a result ("all" and "last N days" runs). */
  reportUnchanged?: boolean;
  /** Write-back API names that exist in Zoho (null: write-back off or no such fields). */
  writeBackFields: () => Promise<WriteBackFields | null>;
}

export type WriteBackFields = Partial<
  Record<"billId" | "billNumber" | "billStatus" | "syncStatus" | "syncError" | "lastSynced", string>
>;

export interface BatchOutput {
  results: RecordResult[];
  /** Records Zoho does not have (the button answers 404). */
  notFound: Set<string>;
  /** Records listed but skipped because nothing changed since we last processed them. */
  notChanged: string[];
}

interface Work {
  id: string;
  state?: RecordState;
  raw?: Record<string, unknown>;
  po?: PurchaseOrder;
  bill?: { invoice: XeroInvoice; hash: string; warnings: string[] };
  result?: RecordResult;
  /** The Modified_Time to remember once done. */
  modifiedTime?: string;
}

/** A record read ahead of its batch: the raw record, null (not in Zoho), or the read's error. */
export type Prefetched = Map<string, Record<string, unknown> | null | { error: unknown }>;

function unchangedSince(item: BatchItem, state: RecordState | undefined): boolean {
  // Our own write-back (or an earlier sync) produced this Modified_Time: nothing to do.
  return !!item.listedModifiedTime && state?.zohoModifiedTime === item.listedModifiedTime &&
    (item.listedFingerprint === undefined || item.listedFingerprint === state.listFingerprint);
}

/**
 * Reads the next batch's records while the current one talks to Xero, so a run's Zoho reads and
 * Xero writes overlap. Records that look unchanged are not read (processBatch decides again).
 */
export async function prefetchRecords(ctx: BatchContext, items: BatchItem[]): Promise<Prefetched> {
  const states = await getStates(ctx.kv, items.map((i) => i.id));
  const wanted = items.filter((i) => !unchangedSince(i, states.get(i.id)));
  const out: Prefetched = new Map();
  await mapLimit(wanted, 5, async (item) => {
    try {
      out.set(item.id, await ctx.zoho.getPurchaseOrder(item.id));
    } catch (error) {
      out.set(item.id, { error });
    }
  });
  return out;
}

export async function processBatch(
  items: BatchItem[],
  ctx: BatchContext,
  prefetched: Prefetched = new Map(),
): Promise<BatchOutput> {
  const { kv } = ctx;
  const preview = ctx.mode === "preview";
  const out: BatchOutput = { results: [], notFound: new Set(), notChanged: [] };
  if (items.length === 0) return out;

  // 1. Lock the records (waiting a while for other syncs of the same records to finish).
  const locked = await lockRecords(ctx, items.map((i) => i.id));
  const busyResults: RecordResult[] = items.filter((i) => !locked.has(i.id)).map((i) =>
    failure(
      i.id,
      "busy",
      "another sync of this purchase order is still running; it will be retried",
    )
  );
  const mine = items.filter((i) => locked.has(i.id));
  try {
    const states = await getStates(kv, mine.map((i) => i.id));
    const work: Work[] = [];
    for (const item of mine) {
      const state = states.get(item.id);
      if (unchangedSince(item, state)) {
        out.notChanged.push(item.id);
        if (ctx.reportUnchanged) out.results.push(unchangedResult(ctx, item.id, state));
        continue;
      }
      work.push({ id: item.id, state });
    }

    await fetchRecords(ctx, work, out, prefetched);
    const eligible = evaluate(ctx, work);
    await mapBills(ctx, eligible);
    const pending = eligible.filter((w) => !w.result);
    await reconcile(ctx, pending);
    await decideAndWrite(ctx, pending, preview);
    if (!preview) {
      // Record the bills first: the longer Xero holds a bill KV does not know, the worse a crash.
      // The Modified_Time is held back until the write-back settled: stored before it, a crash in
      // between made the record look done while Zoho never got its bill (tests/reliability).
      await storeStates(ctx, work, ctx.settings.writeBack.enabled);
      const settled = await writeBack(ctx, work);
      if (settled.length) await storeStates(ctx, settled, false);
    }
    out.results = [...busyResults, ...out.results, ...work.map((w) => w.result!).filter(Boolean)];
    return out;
  } finally {
    await Promise.all([...locked].map((id) => release(kv, keys.recordLock(id), ctx.owner)));
  }
}

async function lockRecords(ctx: BatchContext, ids: string[]): Promise<Set<string>> {
  const got = new Set<string>();
  let want = ids;
  const deadline = Date.now() + ctx.lockWaitMs;
  while (want.length) {
    const busy = await acquireMany(
      ctx.kv,
      want.map((id) => keys.recordLock(id)),
      ctx.owner,
      ctx.lockTtlMs ?? LOCK_TTL_MS,
    );
    want.forEach((id, i) => busy.has(i) || got.add(id));
    want = want.filter((_, i) => busy.has(i));
    if (!want.length || Date.now() >= deadline) break;
    await sleep(100 + Math.random() * 150);
  }
  return got;
}

async function fetchRecords(
  ctx: BatchContext,
  work: Work[],
  out: BatchOutput,
  prefetched: Prefetched,
) {
  await mapLimit(work, 5, async (w) => {
    try {
      const ahead = prefetched.get(w.id);
      if (ahead && "error" in ahead) throw ahead.error;
      const raw = ahead !== undefined
        ? ahead as Record<string, unknown> | null
        : await ctx.zoho.getPurchaseOrder(w.id);
      if (!raw) {
        out.notFound.add(w.id);
        w.result = {
          purchaseOrderId: w.id,
          outcome: "skipped",
          reasons: ["The purchase order no longer exists in Zoho CRM"],
          message: "Not synced: the purchase order no longer exists in Zoho CRM.",
        };
        return;
      }
      w.raw = raw;
      w.modifiedTime = typeof raw.Modified_Time === "string" ? raw.Modified_Time : undefined;
    } catch (err) {
      const stop = asRunStop(err, "zoho");
      if (stop) throw stop;
      w.result = failure(w.id, "zoho", `Zoho CRM could not be read: ${describe(err)}`);
    }
  });
}

/** Parses and checks each fetched record; returns the eligible ones. */
function evaluate(ctx: BatchContext, work: Work[]): Work[] {
  const eligible: Work[] = [];
  for (const w of work) {
    if (w.result || !w.raw) continue;
    const parsed = parsePurchaseOrder(w.raw, ctx.settings);
    const reasons = parsed.ok ? eligibility(parsed.po, ctx.settings) : parsed.reasons;
    if (parsed.ok) w.po = parsed.po;
    if (reasons.length) {
      w.result = {
        purchaseOrderId: w.id,
        outcome: "skipped",
        reasons,
        message: outcomeMessage("skipped", { reasons, preview: ctx.mode === "preview" }),
        reference: w.po ? invoiceNumberOf(w.po) : undefined,
        bill: billRef(w.state),
      };
      continue;
    }
    eligible.push(w);
  }
  return eligible;
}

async function mapBills(ctx: BatchContext, eligible: Work[]) {
  if (!eligible.length) return;
  const vendors = new Map<string, string>();
  for (const w of eligible) vendors.set(w.po!.vendor!.id, w.po!.vendor!.name ?? w.po!.vendor!.id);
  let contacts: Map<string, string>;
  try {
    contacts = ctx.mode === "preview"
      ? await cachedContacts(ctx.kv, [...vendors.keys()])
      : await ctx.xero.resolveContacts(
        [...vendors].map(([zohoVendorId, name]) => ({ zohoVendorId, name })),
      );
  } catch (err) {
    const stop = asRunStop(err, "xero");
    if (stop) throw stop;
    for (const w of eligible) {
      w.result = failure(
        w.id,
        "xero",
        `the vendor could not be found or created in Xero: ${describe(err)}`,
      );
    }
    return;
  }
  for (const w of eligible) {
    const contactID = contacts.get(w.po!.vendor!.id) ??
      (ctx.mode === "preview" ? "(new contact)" : "");
    if (!contactID) {
      w.result = failure(
        w.id,
        "xero",
        `the vendor "${w.po!.vendor!.name ?? ""}" could not be created in Xero`,
      );
      continue;
    }
    try {
      w.bill = toBill(w.po!, ctx.settings, { contactID });
    } catch (err) {
      w.result = failure(w.id, "app", `the bill could not be built: ${describe(err)}`);
    }
  }
}

async function cachedContacts(kv: Deno.Kv, vendorIds: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of vendorIds) {
    const v = (await kv.get<string | { contactID: string }>(keys.contact(id))).value;
    if (v) out.set(id, typeof v === "string" ? v : v.contactID);
  }
  return out;
}

/**
 * Exactly one bill per purchase order: a record with no known bill may still have one in Xero
 * (a create whose answer was lost, or lost KV state). Look before creating.
 */
async function reconcile(ctx: BatchContext, pending: Work[]) {
  const unknown = pending.filter((w) => !w.state?.invoiceId);
  if (!unknown.length) return;
  const intents = await getIntents(ctx.kv, unknown.map((w) => w.id));
  const billIdField = ctx.settings.writeBack.fields.billId;
  const suspects = unknown.filter((w) =>
    intents.has(w.id) ||
    (billIdField && typeof w.raw?.[billIdField] === "string" && w.raw[billIdField])
  );
  if (!suspects.length) return;
  let found: XeroBillSummary[];
  try {
    found = await ctx.xero.findBills([
      ...new Set(suspects.map((w) => w.bill!.invoice.invoiceNumber)),
    ]);
  } catch (err) {
    const stop = asRunStop(err, "xero");
    if (stop) throw stop;
    for (const w of suspects) {
      w.result = failure(
        w.id,
        "xero",
        `could not check Xero for an existing bill: ${describe(err)}`,
      );
    }
    return;
  }
  for (const w of suspects) {
    const url = recordUrl(w.id, ctx.settings);
    const writtenId = billIdField ? w.raw?.[billIdField] : undefined;
    const match = found.find((b) =>
      (b.url === url || b.invoiceID === writtenId) && b.status !== "DELETED"
    );
    if (match) {
      w.state = {
        ...w.state,
        invoiceId: match.invoiceID,
        invoiceNumber: match.invoiceNumber,
        billStatus: match.status,
        // Content unknown: the record compares as changed, and an editable bill is resent.
        hash: intents.get(w.id)?.hash,
      };
      continue;
    }
    // A create that timed out can still land in Xero after this search: sending it again now
    // made a second bill (found by tests/reliability). Wait a while for it to show up.
    const unconfirmed = intents.get(w.id)?.unconfirmedAt;
    const waitMs = ctx.unconfirmedWaitMs ?? UNCONFIRMED_WAIT_MS;
    if (unconfirmed && Date.now() - Date.parse(unconfirmed) < waitMs) {
      w.result = failure(
        w.id,
        "xero",
        "Xero has not confirmed an earlier attempt to create this bill yet; it is checked again by the next sync",
      );
    }
  }
}

async function decideAndWrite(ctx: BatchContext, pending: Work[], preview: boolean) {
  const creates: Work[] = [];
  const updates: Work[] = [];
  for (const w of pending) {
    if (w.result) continue;
    const s = w.state;
    if (!s?.invoiceId) creates.push(w);
    else if (s.hash === w.bill!.hash) {
      w.result = result(ctx, w, "unchanged", s.billStatus);
    } else if (ctx.mode === "create_only") {
      w.result = skip(
        ctx,
        w,
        "the bill already exists in Xero and this sync only creates new bills",
      );
    } else updates.push(w);
  }

  // Bills may have been approved or paid in Xero since we wrote them: check before updating.
  if (updates.length) {
    let current: Map<string, XeroBillSummary>;
    try {
      current = await ctx.xero.getBills(updates.map((w) => w.state!.invoiceId!));
    } catch (err) {
      const stop = asRunStop(err, "xero");
      if (stop) throw stop;
      for (const w of updates) {
        w.result = failure(w.id, "xero", `Xero could not be read: ${describe(err)}`);
      }
      updates.length = 0;
      current = new Map();
    }
    for (const w of [...updates]) {
      const bill = current.get(w.state!.invoiceId!);
      const status = bill?.status;
      if (status) w.state!.billStatus = status;
      if (!bill) {
        w.result = skip(ctx, w, "the bill linked to this purchase order was not found in Xero");
      } else if (!EDITABLE.has(bill.status)) {
        w.result = skip(ctx, w, statusReason(bill.status));
      }
    }
  }
  const toUpdate = updates.filter((w) => !w.result);

  if (preview) {
    for (const w of creates) w.result = result(ctx, w, "created", w.bill!.invoice.status);
    for (const w of toUpdate) w.result = result(ctx, w, "updated", w.state!.billStatus);
    return;
  }
  if (!creates.length && !toUpdate.length) return;

  // Write-ahead: mark the creates, so a crash after Xero accepted them is reconciled, not repeated.
  const now = new Date().toISOString();
  await commitChunked(
    ctx.kv,
    creates.map((w) => (a) => a.set(keys.billIntent(w.id), intentOf(w, now))),
  );
  const payload = [
    ...creates.map((w) => ({ key: w.id, invoice: w.bill!.invoice })),
    ...toUpdate.map((w) => ({
      key: w.id,
      invoice: { ...w.bill!.invoice, invoiceID: w.state!.invoiceId } as XeroInvoice,
    })),
  ];
  let answers;
  try {
    answers = await ctx.xero.upsertBills(payload);
  } catch (err) {
    const stop = asRunStop(err, "xero");
    if (stop) throw stop;
    for (const w of [...creates, ...toUpdate]) {
      w.result = failure(w.id, "xero", `Xero did not accept the bill: ${describe(err)}`);
    }
    return;
  }
  const rejected: string[] = [];
  const unconfirmed: Work[] = [];
  for (const w of [...creates, ...toUpdate]) {
    const a = answers.get(w.id);
    const isCreate = !w.state?.invoiceId;
    if (a && !a.ok && isCreate && !a.retryable) rejected.push(w.id);
    if (a && !a.ok && isCreate && a.kind === "network") unconfirmed.push(w);
    if (!a) {
      w.result = failure(w.id, "xero", "Xero gave no answer for this bill");
    } else if (!a.ok) {
      w.result = failure(w.id, "xero", `Xero rejected the bill: ${a.message}`);
    } else {
      w.state = {
        ...w.state,
        invoiceId: a.invoiceID,
        invoiceNumber: a.invoiceNumber,
        billStatus: a.status,
        hash: w.bill!.hash,
      };
      w.result = result(ctx, w, isCreate ? "created" : "updated", a.status);
    }
  }
  // Xero answered "no" for these: nothing was created, so there is nothing to reconcile later.
  await commitChunked(ctx.kv, rejected.map((id) => (a) => a.delete(keys.billIntent(id))));
  const at = new Date().toISOString();
  await commitChunked(
    ctx.kv,
    unconfirmed.map((w) => (a) => a.set(keys.billIntent(w.id), intentOf(w, now, at))),
  );
}

/** The write-ahead mark of a create (unconfirmedAt: sent, but no answer came back). */
function intentOf(w: Work, at: string, unconfirmedAt?: string): BillIntent {
  return {
    hash: w.bill!.hash,
    invoiceNumber: w.bill!.invoice.invoiceNumber,
    url: w.bill!.invoice.url,
    at,
    ...(unconfirmedAt ? { unconfirmedAt } : {}),
  };
}

function statusReason(status: string): string {
  switch (status) {
    case "AUTHORISED":
      return "the bill is approved in Xero, so it is not changed";
    case "PAID":
      return "the bill is paid in Xero, so it is not changed";
    case "VOIDED":
      return "the bill is voided in Xero, so it is not changed";
    case "DELETED":
      return "the bill was deleted in Xero; no new bill is created for this purchase order";
    default:
      return `the bill has status ${status} in Xero, so it is not changed`;
  }
}

/**
 * Writes the bill's details and the sync status onto the Zoho records (trigger: [] in the client).
 * Returns the records whose Zoho side is settled (written, or nothing to write), whose
 * Modified_Time can now be remembered; the others are in the retry set.
 */
async function writeBack(ctx: BatchContext, work: Work[]): Promise<Work[]> {
  if (!ctx.settings.writeBack.enabled) return [];
  // Unchanged records too: their earlier write-back may have failed (the hash check skips the rest).
  const candidates = work.filter((w) => w.result && w.raw);
  if (!candidates.length) return [];
  let fields: WriteBackFields | null;
  try {
    fields = await ctx.writeBackFields();
  } catch (err) {
    // The field list could not be read (Zoho down, token refused): the write-back is still owed.
    // Skipping it silently left the Zoho records without their bill for good, because the next
    // run saw an unchanged Modified_Time (found by tests/reliability). Retry it like a failed PUT.
    const owed = candidates.filter((w) => w.result!.outcome !== "failed").map((w) => w.id);
    for (const id of owed) {
      warn(work, id, `Could not write the sync status back to Zoho: ${describe(err)}`);
    }
    await retryWriteBack(ctx, owed);
    return [];
  }
  const notFailed = (w: Work) => w.result!.outcome !== "failed";
  if (!fields || !Object.keys(fields).length) return candidates.filter(notFailed);
  const upToDate: Work[] = [];
  const rows: Array<{ id: string } & Record<string, unknown>> = [];
  const hashes = new Map<string, string>();
  for (const w of candidates) {
    const r = w.result!;
    const values: Record<string, unknown> = {};
    const put = (k: keyof WriteBackFields, v: unknown) => {
      if (fields![k]) values[fields![k]!] = v;
    };
    if (w.state?.invoiceId) {
      put("billId", w.state.invoiceId);
      put("billNumber", w.state.invoiceNumber ?? null);
      put("billStatus", w.state.billStatus ?? null);
    }
    put(
      "syncStatus",
      r.outcome === "failed" ? "Failed" : r.outcome === "skipped" ? "Not synced" : "Synced",
    );
    put(
      "syncError",
      r.outcome === "failed" || r.outcome === "skipped" ? r.reasons.join("; ").slice(0, 255) : null,
    );
    const hash = await sha256Hex(JSON.stringify(values));
    if (hash === w.state?.writeBackHash) {
      if (notFailed(w)) upToDate.push(w);
      continue;
    }
    hashes.set(w.id, hash);
    put("lastSynced", zohoDateTime(new Date()));
    rows.push({ id: w.id, ...values });
  }
  if (!rows.length) return upToDate;
  let answers;
  try {
    answers = await ctx.zoho.updateRecords(rows);
  } catch (err) {
    for (const row of rows) {
      warn(work, row.id, `Could not write the sync status back to Zoho: ${describe(err)}`);
    }
    await retryWriteBack(ctx, rows.map((r) => r.id));
    return upToDate;
  }
  const written: Work[] = [...upToDate];
  const failedIds: string[] = [];
  for (const a of answers) {
    const w = work.find((x) => x.id === a.id);
    if (!w) continue;
    if (a.ok) {
      // Remember the Modified_Time our own write produced, so the next run does not refetch.
      if (a.modifiedTime) w.modifiedTime = a.modifiedTime;
      w.state = { ...w.state, writeBackHash: hashes.get(a.id) };
      if (w.result!.outcome !== "failed") written.push(w);
    } else {
      warn(
        work,
        a.id,
        `Could not write the sync status back to Zoho: ${a.code ?? ""} ${a.message ?? ""}`.trim(),
      );
      if (a.code !== "INVALID_DATA") failedIds.push(a.id);
      else if (notFailed(w)) written.push(w); // Zoho will never take it: do not refetch forever
    }
  }
  await retryWriteBack(ctx, failedIds);
  return written;
}

/** A write-back that did not happen is tried again by the next run (the record is refetched). */
async function retryWriteBack(ctx: BatchContext, ids: string[]) {
  const since = new Date().toISOString();
  await commitChunked(
    ctx.kv,
    ids.map((id) => (a) =>
      a.set(keys.retry(MODULE, id), { since, reason: "write-back to Zoho failed" })
    ),
  );
}

function warn(work: Work[], id: string, text: string) {
  const r = work.find((w) => w.id === id)?.result;
  if (r) r.warnings = [...(r.warnings ?? []), text];
}

/** Stores what this batch learnt; failed records go to the retry set instead of being remembered. */
async function storeStates(ctx: BatchContext, work: Work[], holdModifiedTime = false) {
  const now = new Date().toISOString();
  const ops: Array<(a: Deno.AtomicOperation) => Deno.AtomicOperation> = [];
  for (const w of work) {
    const r = w.result;
    if (!r) continue;
    if (r.outcome === "failed") {
      ops.push((a) =>
        a.set(keys.retry(MODULE, w.id), { since: now, reason: r.reasons.join("; ") })
      );
      // Keep what is known (a bill id must never be forgotten), but not the Modified_Time, nor
      // the write-back hash: Zoho now shows "Failed", so the next success must write "Synced"
      // even when its values equal the last success's (else Zoho kept "Failed" after recovery;
      // found by tests/reliability).
      if (w.state) {
        const { zohoModifiedTime: _, writeBackHash: _w, ...rest } = w.state;
        ops.push((a) =>
          a.set(keys.billMapping(w.id), { ...rest, outcome: "failed", syncedAt: now })
        );
      }
      continue;
    }
    ops.push((a) => a.delete(keys.retry(MODULE, w.id)));
    if (r.outcome === "skipped" && !w.raw) continue; // deleted in Zoho
    ops.push((a) =>
      a.set(
        keys.billMapping(w.id),
        {
          ...w.state,
          zohoModifiedTime: holdModifiedTime && w.raw ? undefined : w.modifiedTime,
          listFingerprint: w.raw ? fingerprint(w.raw, ctx.settings) : undefined,
          outcome: r.outcome,
          // Why it was skipped, to say again while the record does not change.
          reasons: r.outcome === "skipped" ? r.reasons : undefined,
          syncedAt: now,
        } satisfies RecordState,
      )
    );
    if (w.state?.invoiceId) ops.push((a) => a.delete(keys.billIntent(w.id)));
  }
  await commitChunked(ctx.kv, ops);
}

/** A record not changed since the last sync: its bill is as it was, or it is still skipped. */
function unchangedResult(ctx: BatchContext, id: string, state?: RecordState): RecordResult {
  const preview = ctx.mode === "preview";
  if (!state?.invoiceId && state?.reasons?.length) {
    return {
      purchaseOrderId: id,
      outcome: "skipped",
      reasons: state.reasons,
      message: outcomeMessage("skipped", { reasons: state.reasons, preview }),
    };
  }
  return {
    purchaseOrderId: id,
    outcome: "unchanged",
    reasons: [],
    message: outcomeMessage("unchanged", { number: state?.invoiceNumber, preview }),
    bill: billRef(state),
    reference: state?.invoiceNumber,
  };
}

function billRef(state: RecordState | undefined) {
  if (!state?.invoiceId) return undefined;
  return {
    invoiceId: state.invoiceId,
    invoiceNumber: state.invoiceNumber ?? "",
    status: state.billStatus ?? "",
    url: xeroBillUrl(state.invoiceId),
  };
}

export function xeroBillUrl(invoiceId: string): string {
  return `https://go.xero.com/AccountsPayable/View.aspx?InvoiceID=${encodeURIComponent(invoiceId)}`;
}

function result(ctx: BatchContext, w: Work, outcome: Outcome, status?: string): RecordResult {
  const number = w.bill?.invoice.invoiceNumber ?? w.state?.invoiceNumber;
  return {
    purchaseOrderId: w.id,
    outcome,
    reasons: [],
    message: outcomeMessage(outcome, { number, status, preview: ctx.mode === "preview" }),
    bill: w.state?.invoiceId
      ? {
        invoiceId: w.state.invoiceId,
        invoiceNumber: w.state.invoiceNumber ?? number ?? "",
        status: status ?? w.state.billStatus ?? "",
        url: xeroBillUrl(w.state.invoiceId),
      }
      : undefined,
    warnings: w.bill?.warnings.length ? [...w.bill.warnings] : undefined,
    reference: number,
  };
}

function skip(ctx: BatchContext, w: Work, reason: string): RecordResult {
  return {
    ...result(ctx, w, "skipped", w.state?.billStatus),
    reasons: [reason],
    message: outcomeMessage("skipped", { reasons: [reason], preview: ctx.mode === "preview" }),
  };
}

function failure(
  id: string,
  failedAt: NonNullable<RecordResult["failedAt"]>,
  reason: string,
): RecordResult {
  return {
    purchaseOrderId: id,
    outcome: "failed",
    reasons: [reason],
    message: outcomeMessage("failed", { reasons: [reason] }),
    failedAt,
  };
}

/** Zoho's DateTime format: second precision with an offset. */
export function zohoDateTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "+00:00");
}
