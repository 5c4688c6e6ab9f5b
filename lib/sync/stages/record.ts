/**
 * Stage 7, record: what the batch learnt goes to KV. A record is done only when its outcome is
 * final: failed, busy and otherwise owed records go to the retry set, and a retry-set entry is
 * cleared only by a sync that read the record after the debt was written (KV's own clock, not
 * an instance's) and, for a debt a settings change made, decided it under those settings.
 */
import { getManyChunked } from "../../store/kv.ts";
import { keys } from "../../store/keys.ts";
import { commitChunked, type RecordState } from "../../store/records.ts";
import { fingerprint } from "../fingerprint.ts";
import { type BatchContext, capped, MODULE, type Work } from "../work.ts";

export interface RetryEntry {
  since: string;
  reason: string;
  /** Owed because the settings changed to these: only a sync under the settings now pays it. */
  settingsKey?: string;
}

/**
 * Stores each record's state. `holdModifiedTime`: the write-back is still to come, so neither the
 * Modified_Time is remembered nor any debt cleared yet (a crash in between must leave the record
 * owed; tests/reliability and tests/review_findings_test.ts).
 */
export async function recordStates(ctx: BatchContext, work: Work[], holdModifiedTime = false) {
  const now = new Date().toISOString();
  // Settings saved while this batch ran: what it skipped or failed under the old ones is owed.
  const newer = ctx.settingsNow ? await ctx.settingsNow() : ctx.settingsKey;
  const staleSettings = newer !== ctx.settingsKey;
  const ops: Array<(a: Deno.AtomicOperation) => Deno.AtomicOperation> = [];
  const paid: Work[] = [];
  const owe = (w: Work, reason: string, settingsKey?: string) =>
    ops.push((a) =>
      a.set(keys.retry(MODULE, w.id), { since: now, reason, settingsKey } satisfies RetryEntry)
    );
  for (const w of work) {
    const r = w.result;
    if (!r || w.unchanged) continue;
    const why = capped(r.reasons).join("; ");
    if (r.outcome === "failed" || !w.locked) {
      owe(w, why);
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
    if (staleSettings && r.outcome === "skipped" && w.raw) owe(w, "settings changed", newer);
    else if (w.owed) owe(w, why); // not done on purpose (create-only left an update, a tax rate)
    else if (!holdModifiedTime || !w.raw) paid.push(w);
    if (r.outcome === "skipped" && !w.raw) continue; // deleted in Zoho
    ops.push((a) =>
      a.set(
        keys.billMapping(w.id),
        {
          ...w.state,
          zohoModifiedTime: holdModifiedTime && w.raw ? undefined : w.modifiedTime,
          listFingerprint: w.raw ? fingerprint(w.raw, ctx.settings) : undefined,
          settingsKey: ctx.settingsKey,
          tenantId: w.state?.invoiceId ? (w.state.tenantId ?? ctx.tenantId) : undefined,
          owed: w.owed || undefined,
          outcome: r.outcome,
          // Why it was skipped, to say again while the record does not change.
          reasons: r.outcome === "skipped" ? capped(r.reasons) : undefined,
          syncedAt: now,
        } satisfies RecordState,
      )
    );
    if (w.state?.invoiceId) ops.push((a) => a.delete(keys.billIntent(w.id)));
  }
  await commitChunked(ctx.kv, ops, 100);
  await clearPaidDebts(ctx, paid, staleSettings);
}

/** Deletes the retry-set entries this sync paid (checked, so an entry written meanwhile stays). */
async function clearPaidDebts(ctx: BatchContext, works: Work[], staleSettings: boolean) {
  for (let i = 0; i < works.length; i += 100) {
    const slice = works.slice(i, i + 100);
    const entries = await getManyChunked<RetryEntry>(
      ctx.kv,
      slice.map((w) => keys.retry(MODULE, w.id)),
    );
    await Promise.all(entries.map(async (e, j) => {
      const readStamp = slice[j].readStamp;
      if (!e.value || !readStamp || e.versionstamp! > readStamp) return;
      // A debt a settings change made is paid by a sync under the settings in force now (which
      // may have changed again since the debt was written).
      if (e.value.settingsKey && staleSettings) return;
      await ctx.kv.atomic().check(e).delete(e.key).commit();
    }));
  }
}
