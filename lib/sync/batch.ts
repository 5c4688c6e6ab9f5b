/**
 * The heart of a sync: a batch of purchase orders (≤ 100) through the stages of lib/sync/stages,
 * each of which keeps one promise of DESIGN §7:
 *
 *   lock → read → evaluate → lifecycle → reconcile → write → write-back → record
 *
 * lock: one writer per record, renewed while alive; read: the record and its lines from Zoho;
 * evaluate: unchanged? eligible? which bill?; reconcile: never a second bill; write: create or
 * update in Xero, never touching a bill the accountants own; write-back: the bill onto the Zoho
 * record, refused if someone edited it meanwhile; record: KV state, and the retry set for every
 * record still owed. Used for one record (the Zoho button) and for every batch of a run.
 */
import { invoiceNumberOf } from "../mapping/mod.ts";
import { getStatesStamped, type RecordState } from "../store/records.ts";
import { lockRecords } from "./stages/lock.ts";
import { buildBills, checkEligibility, leaveUnchanged } from "./stages/evaluate.ts";
import { prefetchRecords as prefetchStage, readRecords } from "./stages/read.ts";
import { inBatch, traceBatch } from "../telemetry.ts";
import { closeBills } from "./stages/lifecycle.ts";
import { reconcile, touchLedger } from "./stages/reconcile.ts";
import { recordStates } from "./stages/record.ts";
import { writeBack } from "./stages/write_back.ts";
import { writeBills } from "./stages/write.ts";
import type { RecordResult } from "./types.ts";
import {
  type BatchContext,
  type BatchItem,
  capped,
  failure,
  type Prefetched,
  type Work,
} from "./work.ts";

export type { BatchContext, BatchItem, Prefetched };
export type { WriteBackFields } from "./stages/write_back.ts";
export { xeroBillUrl, zohoDateTime } from "./work.ts";

export interface BatchOutput {
  results: RecordResult[];
  /** Records Zoho does not have (the button answers 404). */
  notFound: Set<string>;
  /** Records listed but skipped because nothing changed since we last processed them. */
  notChanged: string[];
}

/** A batch's Zoho reads ahead of it, inside the batch's span (lib/telemetry.ts). */
export function prefetchRecords(ctx: BatchContext, items: BatchItem[]): Promise<Prefetched> {
  return inBatch(items, ctx.owner, () => prefetchStage(ctx, items));
}

/** A batch through the stages, inside its `sync.batch` span (lib/telemetry.ts). */
export function processBatch(
  items: BatchItem[],
  ctx: BatchContext,
  prefetched: Prefetched = new Map(),
): Promise<BatchOutput> {
  return traceBatch(items, ctx.owner, ctx.mode, () => processStages(items, ctx, prefetched));
}

async function processStages(
  items: BatchItem[],
  batch: BatchContext,
  prefetched: Prefetched,
): Promise<BatchOutput> {
  const out: BatchOutput = { results: [], notFound: new Set(), notChanged: [] };
  if (items.length === 0) return out;
  const preview = batch.mode === "preview";

  // A preview changes nothing, so it takes no locks: real syncs are never "busy" because of one.
  const locks = preview
    ? { held: new Set(items.map((i) => i.id)), lost: new Set<string>(), release: async () => {} }
    : await lockRecords(batch.kv, items.map((i) => i.id), batch.lockOwner ?? batch.owner, {
      waitMs: batch.lockWaitMs,
      ttlMs: batch.lockTtlMs,
    });
  try {
    const ctx: BatchContext = { ...batch, tenantId: await currentTenant(batch) };
    const states = await getStatesStamped(ctx.kv, [...locks.held]);
    const work: Work[] = items.map((item) => ({
      id: item.id,
      item,
      locked: locks.held.has(item.id),
      state: inThisOrganisation(states.get(item.id)?.state, ctx.tenantId),
      stateStamp: states.get(item.id)?.stamp,
    }));
    for (const w of work) {
      if (w.locked) continue;
      w.result = failure(
        w,
        "busy",
        "another sync of this purchase order is still running; it will be retried",
      );
    }
    // A lock this sync could not renew may be another's now: nothing more is written for it.
    const dropLost = () => {
      for (const w of work) {
        if (!w.locked || !locks.lost.has(w.id)) continue;
        w.locked = false;
        w.result = failure(
          w,
          "busy",
          "this sync lost its hold on the purchase order; it will be retried",
        );
      }
    };

    leaveUnchanged(ctx, work, out.notChanged);
    await readRecords(ctx, work.filter((w) => w.locked && !w.unchanged), prefetched, out.notFound);
    const checked = await checkEligibility(ctx, work);
    dropLost();
    // Orders deleted, cancelled or unticked with a bill get their own result (stages/lifecycle.ts).
    await closeBills(ctx, work.filter((w) => w.locked), out.notFound);
    const eligible = checked.filter((w) => !w.result);
    await buildBills(ctx, eligible);
    const pending = eligible.filter((w) => !w.result);
    await reconcile(ctx, pending);
    dropLost();
    await writeBills(ctx, pending.filter((w) => !w.result), locks.lost);
    if (!preview) {
      // Record the bills first: the longer Xero holds a bill KV does not know, the worse a crash.
      // The Modified_Time is held back until the write-back settled (tests/reliability).
      dropLost();
      await recordStates(ctx, work, ctx.settings.writeBack.enabled);
      dropLost();
      const settled = await writeBack(ctx, work);
      if (settled.length) await recordStates(ctx, settled, false);
      await touchLedger(ctx);
    }
    for (const w of work) {
      if (!w.result) continue;
      if (!w.result.reference && w.po) w.result.reference = invoiceNumberOf(w.po);
      w.result.reasons = capped(w.result.reasons);
      if (w.result.warnings) w.result.warnings = capped(w.result.warnings);
      if (w.result.message.length > 2000) w.result.message = w.result.message.slice(0, 1999) + "…";
      out.results.push(w.result);
    }
    return out;
  } finally {
    await locks.release();
  }
}

async function currentTenant(ctx: BatchContext): Promise<string | undefined> {
  // Not connected: the stages that need Xero say so; this only sorts out older organisations.
  return await ctx.xero.tenant().then((t) => t.tenantId, () => undefined);
}

/** A bill KV knows in another Xero organisation (the admin switched) is no bill here. */
function inThisOrganisation(
  state: RecordState | undefined,
  tenantId: string | undefined,
): RecordState | undefined {
  if (!state?.tenantId || !tenantId || state.tenantId === tenantId) return state;
  const {
    invoiceId: _i,
    invoiceNumber: _n,
    billStatus: _s,
    hash: _h,
    zohoModifiedTime: _m,
    writeBackHash: _w,
    tenantId: _t,
    ...rest
  } = state;
  return rest;
}
