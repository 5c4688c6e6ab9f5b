/**
 * Why a run reads a record whatever its Modified_Time says: it is in the retry set (failed, busy,
 * owed, settings changed: the reason recorded then) or a Zoho webhook named it. The run page shows
 * this next to the record, so "why was this synced again?" has an answer.
 */
import { keys, type Module } from "../store/keys.ts";
import type { RecordResult } from "./types.ts";

export type Retried = NonNullable<RecordResult["retried"]>;

/** Which of `ids` are forced now, and why (read per batch: a run holds no org-wide set). */
export async function forcedAmong(
  kv: Deno.Kv,
  module: Module,
  ids: string[],
): Promise<Map<string, Retried>> {
  const out = new Map<string, Retried>();
  for (let i = 0; i < ids.length; i += 5) {
    const part = ids.slice(i, i + 5);
    // KV reads at most 10 keys at once: the queue and retry entries of five records.
    const got = await kv.getMany<Array<{ at?: string; since?: string; reason?: string }>>([
      ...part.map((id) => keys.queue(module, id)),
      ...part.map((id) => keys.retry(module, id)),
    ]);
    part.forEach((id, j) => {
      const queued = got[j].value;
      const retry = got[j + part.length].value;
      // A retry-set entry says more than a webhook's (why it is owed), so it wins.
      if (retry) {
        out.set(id, {
          via: "retry",
          since: String(retry.since ?? ""),
          ...(retry.reason ? { reason: String(retry.reason) } : {}),
        });
      } else if (queued) out.set(id, { via: "webhook", since: String(queued.at ?? "") });
    });
  }
  return out;
}

/** Marks the results of records the run read because they were forced. */
export function markRetried(results: RecordResult[], forced: Map<string, Retried>): void {
  for (const r of results) {
    const why = forced.get(r.purchaseOrderId);
    if (why) r.retried = why;
  }
}
