/**
 * Stage 7, record: what the batch learnt goes to KV. A record is done only when its outcome is
 * final: failed, busy and otherwise owed records go to the retry set, and a retry-set entry is
 * cleared only by a sync that read the record after the debt was recorded (else an edit that a
 * busy or racing sync left owed would be forgotten).
 */
import { getManyChunked } from "../../store/kv.ts";
import { keys } from "../../store/keys.ts";
import { commitChunked, type RecordState } from "../../store/records.ts";
import { fingerprint } from "../fingerprint.ts";
import { type BatchContext, MODULE, type Work } from "../work.ts";

interface RetryEntry {
  since: string;
  reason: string;
}

/**
 * Stores each record's state. `holdModifiedTime`: the write-back is still to come, so the
 * Modified_Time is not remembered yet (a crash in between must leave the record looking changed).
 */
export async function recordStates(ctx: BatchContext, work: Work[], holdModifiedTime = false) {
  const now = new Date().toISOString();
  const ops: Array<(a: Deno.AtomicOperation) => Deno.AtomicOperation> = [];
  const paid: Work[] = [];
  for (const w of work) {
    const r = w.result;
    if (!r || w.unchanged) continue;
    if (r.outcome === "failed" || !w.locked) {
      ops.push((a) =>
        a.set(keys.retry(MODULE, w.id), { since: now, reason: r.reasons.join("; ") })
      );
      if (!w.locked) continue; // another sync holds the record: its state is theirs to write
      // Keep what is known (a bill id must never be forgotten), but not the Modified_Time, nor
      // the write-back hash: Zoho now shows "Failed", so the next success must write "Synced".
      if (w.state) {
        const { zohoModifiedTime: _, writeBackHash: _w, ...rest } = w.state;
        ops.push((a) =>
          a.set(keys.billMapping(w.id), { ...rest, outcome: "failed", syncedAt: now })
        );
      }
      continue;
    }
    if (w.owed) {
      // Not done on purpose (an update create-only left, a tax rate to fix): read it again.
      ops.push((a) =>
        a.set(keys.retry(MODULE, w.id), { since: now, reason: r.reasons.join("; ") })
      );
    } else paid.push(w);
    if (r.outcome === "skipped" && !w.raw) continue; // deleted in Zoho
    ops.push((a) =>
      a.set(
        keys.billMapping(w.id),
        {
          ...w.state,
          zohoModifiedTime: holdModifiedTime && w.raw ? undefined : w.modifiedTime,
          listFingerprint: w.raw ? fingerprint(w.raw, ctx.settings) : undefined,
          settingsKey: ctx.settingsKey,
          owed: w.owed || undefined,
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
  await clearPaidDebts(ctx.kv, paid);
}

/** Deletes retry-set entries recorded before the record was read (checked, so none is lost). */
async function clearPaidDebts(kv: Deno.Kv, works: Work[]) {
  for (let i = 0; i < works.length; i += 100) {
    const slice = works.slice(i, i + 100);
    const entries = await getManyChunked<RetryEntry>(
      kv,
      slice.map((w) => keys.retry(MODULE, w.id)),
    );
    await Promise.all(entries.map(async (e, j) => {
      const readAt = slice[j].readAt;
      if (!e.value || readAt === undefined || Date.parse(e.value.since) > readAt) return;
      await kv.atomic().check(e).delete(e.key).commit();
    }));
  }
}
