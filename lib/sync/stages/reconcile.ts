/**
 * Stage 4, reconcile: exactly one bill per purchase order. A record with no known bill may still
 * have one in Xero: a create whose answer was lost, KV state lost (a new deployment, a restore),
 * a purchase order renumbered since. Every identity we ever gave the bill is looked up before
 * anything is created: our record Url, the write-ahead mark's invoice number and the current one,
 * and the Xero_Bill_ID written back to Zoho (read by id).
 */
import { invoiceNumberOf, recordUrl } from "../../mapping/mod.ts";
import { getManyChunked } from "../../store/kv.ts";
import { keys } from "../../store/keys.ts";
import { type BillIntent, getIntents, getStates, type RecordState } from "../../store/records.ts";
import { asRunStop, describe } from "../errors.ts";
import type { XeroBillSummary } from "../ports.ts";
import { type BatchContext, failure, type Work } from "../work.ts";

export const UNCONFIRMED_WAIT_MS = 120_000;

/** The Zoho record id a bill's Url links back to (the link base may have changed since). */
export function recordIdOf(url: string | undefined): string | null {
  const m = url?.match(/\/([0-9]{15,20})\/?$/);
  return m ? m[1] : null;
}

/** Bills we can still change or that the accountant keeps come before voided and deleted ones. */
const rank = (b: XeroBillSummary) => (b.status === "DELETED" ? 2 : b.status === "VOIDED" ? 1 : 0);

/**
 * KV's ledger of our bills is complete up to a moment kept beside it (["reconciled", tenant]),
 * moved forward by every batch. A fresh KV has no such moment, and a KV restored from a backup
 * (or one idle for a while) has an old one: then the bills Xero changed since (all of them, for a
 * fresh KV) are read once and those whose Url links back to one of our records are adopted. With
 * write-back off, this is what keeps a lost or restored KV from billing orders twice.
 */
const FRESH_MS = 60_000;
/** Xero's clock and ours, and creates in flight when the moment was written. */
const OVERLAP_MS = 5 * 60_000;

interface LedgerMark {
  upTo?: string;
  /** Written by the first version of the scan. */
  at?: string;
}

/** The newest moment this process wrote or saw, per KV and organisation: a KV going back is seen. */
const seen = new WeakMap<Deno.Kv, Map<string, number>>();
const scans = new WeakMap<Deno.Kv, Map<string, Promise<void>>>();

function markTime(mark: LedgerMark | null): number | undefined {
  const t = mark ? Date.parse(mark.upTo ?? mark.at ?? "") : NaN;
  return Number.isNaN(t) ? undefined : t;
}

function isFresh(kv: Deno.Kv, tenantId: string, t: number | undefined): boolean {
  if (t === undefined || Date.now() - t >= FRESH_MS) return false;
  const newest = seen.get(kv)?.get(tenantId);
  return newest === undefined || t >= newest;
}

function remember(kv: Deno.Kv, tenantId: string, t: number) {
  const m = seen.get(kv) ?? new Map<string, number>();
  seen.set(kv, m);
  m.set(tenantId, Math.max(m.get(tenantId) ?? 0, t));
}

export async function restoreLedger(ctx: BatchContext): Promise<void> {
  const { tenantId } = await ctx.xero.tenant();
  const mark = (await ctx.kv.get<LedgerMark>(keys.reconciled(tenantId))).value;
  const t = markTime(mark);
  if (isFresh(ctx.kv, tenantId, t)) return;
  // Syncs arriving together (button presses) share one scan.
  const inFlight = scans.get(ctx.kv) ?? new Map<string, Promise<void>>();
  scans.set(ctx.kv, inFlight);
  let scan = inFlight.get(tenantId);
  if (!scan) {
    const since = t === undefined ? undefined : new Date(t - OVERLAP_MS);
    scan = scanBills(ctx, tenantId, since).finally(() => inFlight.delete(tenantId));
    inFlight.set(tenantId, scan);
  }
  await scan;
}

/** After a batch: the ledger is still complete, now; only a fresh moment is moved (see above). */
export async function touchLedger(ctx: BatchContext): Promise<void> {
  if (!ctx.tenantId || ctx.mode === "preview") return;
  const entry = await ctx.kv.get<LedgerMark>(keys.reconciled(ctx.tenantId));
  if (!isFresh(ctx.kv, ctx.tenantId, markTime(entry.value))) return;
  const now = Date.now();
  const res = await ctx.kv.atomic().check(entry).set(keys.reconciled(ctx.tenantId), {
    upTo: new Date(now).toISOString(),
  }).commit();
  if (res.ok) remember(ctx.kv, ctx.tenantId, now);
}

async function scanBills(ctx: BatchContext, tenantId: string, since?: Date): Promise<void> {
  const startedAt = Date.now();
  const ours = new Map<string, XeroBillSummary>();
  for await (const page of ctx.xero.listBillsSince(since)) {
    for (const b of page) {
      const id = recordIdOf(b.url);
      if (!id) continue;
      const had = ours.get(id);
      if (!had || rank(b) < rank(had)) ours.set(id, b);
    }
  }
  const ids = [...ours.keys()];
  for (let i = 0; i < ids.length; i += 200) {
    const slice = ids.slice(i, i + 200);
    const entries = await getManyChunked<RecordState>(
      ctx.kv,
      slice.map((id) => keys.billMapping(id)),
    );
    await Promise.all(entries.map(async (e, j) => {
      if (e.value?.invoiceId && (!e.value.tenantId || e.value.tenantId === tenantId)) return;
      const b = ours.get(slice[j])!;
      // Checked: a sync that just stored this record's bill is not overwritten.
      await ctx.kv.atomic().check(e).set(
        keys.billMapping(slice[j]),
        {
          ...e.value,
          invoiceId: b.invoiceID,
          invoiceNumber: b.invoiceNumber,
          billStatus: b.status,
          tenantId,
        } satisfies RecordState,
      ).commit();
    }));
  }
  await ctx.kv.set(keys.reconciled(tenantId), { upTo: new Date(startedAt).toISOString() });
  remember(ctx.kv, tenantId, startedAt);
}

export async function reconcile(ctx: BatchContext, pending: Work[]): Promise<void> {
  let unknown = pending.filter((w) => !w.result && !w.state?.invoiceId);
  if (!unknown.length) return;
  try {
    if (ctx.mode !== "preview") {
      await restoreLedger(ctx);
      const states = await getStates(ctx.kv, unknown.map((w) => w.id));
      for (const w of unknown) {
        const s = states.get(w.id);
        // Adopted by the scan just now (a bill of another organisation is none of ours here).
        if (s?.invoiceId && (!s.tenantId || s.tenantId === ctx.tenantId)) {
          w.state = { ...w.state, ...s };
        }
      }
      unknown = unknown.filter((w) => !w.state?.invoiceId);
      if (!unknown.length) return;
    }
    const intents = await getIntents(ctx.kv, unknown.map((w) => w.id));
    const suspects = unknown.filter((w) => intents.has(w.id) || writtenBillId(ctx, w));
    if (!suspects.length) return;
    const numbers = new Set<string>();
    for (const w of suspects) {
      numbers.add(w.bill?.invoice.invoiceNumber ?? invoiceNumberOf(w.po!));
      const mark = intents.get(w.id);
      if (mark?.invoiceNumber) numbers.add(mark.invoiceNumber);
    }
    const ids = suspects.map((w) => writtenBillId(ctx, w)).filter((id): id is string => !!id);
    const [byNumber, byId] = await Promise.all([
      ctx.xero.findBills([...numbers]),
      ids.length ? ctx.xero.getBills(ids) : Promise.resolve(new Map<string, XeroBillSummary>()),
    ]);
    for (const w of suspects) adopt(ctx, w, intents.get(w.id), byNumber, byId);
  } catch (err) {
    const stop = asRunStop(err, "xero");
    if (stop) throw stop;
    for (const w of unknown) {
      w.result = failure(w, "xero", `could not check Xero for an existing bill: ${describe(err)}`);
    }
  }
}

function writtenBillId(ctx: BatchContext, w: Work): string | undefined {
  const field = ctx.settings.writeBack.fields.billId;
  const v = field ? w.raw?.[field] : undefined;
  return typeof v === "string" && /^[0-9a-f-]{36}$/i.test(v.trim()) ? v.trim() : undefined;
}

function adopt(
  ctx: BatchContext,
  w: Work,
  intent: BillIntent | undefined,
  byNumber: XeroBillSummary[],
  byId: Map<string, XeroBillSummary>,
) {
  const urls = new Set([recordUrl(w.id, ctx.settings), intent?.url].filter(Boolean));
  const isOurs = (b: XeroBillSummary) => !!b.url && (urls.has(b.url) || recordIdOf(b.url) === w.id);
  const written = writtenBillId(ctx, w);
  const byWritten = written ? byId.get(written) : undefined;
  // A Xero_Bill_ID copied onto another record (Zoho's "clone") must not adopt someone else's bill.
  const candidates = [
    ...byNumber.filter(isOurs),
    ...(byWritten && (!byWritten.url || isOurs(byWritten)) ? [byWritten] : []),
  ].sort((a, b) => rank(a) - rank(b));
  const match = candidates[0];
  if (match) {
    w.state = {
      ...w.state,
      invoiceId: match.invoiceID,
      invoiceNumber: match.invoiceNumber,
      billStatus: match.status,
      // Content unknown: the record compares as changed, and an editable bill is resent.
      hash: intent?.hash,
    };
    return;
  }
  // A create that got no answer can still land in Xero after this search: sending it again now
  // made a second bill (found by tests/reliability). Wait a while for it to show up.
  // (A mark without unconfirmedAt got an error answer, or its sender died: the record lock,
  // which lapses only a lock period after its holder stopped renewing it, was that wait.)
  if (!intent?.unconfirmedAt) return;
  const since = Date.parse(intent.unconfirmedAt);
  if (Date.now() - since < (ctx.unconfirmedWaitMs ?? UNCONFIRMED_WAIT_MS)) {
    w.result = failure(
      w,
      "xero",
      "Xero has not confirmed an earlier attempt to create this bill yet; it is checked again by the next sync",
    );
  }
}
