/**
 * Why a run reads a record whatever its Modified_Time says: it is in the retry set (failed, busy,
 * owed, settings changed: the reason recorded then) or a Zoho webhook named it. The run page shows
 * this next to the record, so "why was this synced again?" has an answer.
 */
import { getManyChunked } from "../store/kv.ts";
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
  type Entry = { at?: string; since?: string; reason?: string };
  const [queued, retry] = await Promise.all([
    getManyChunked<Entry>(kv, ids.map((id) => keys.queue(module, id))),
    getManyChunked<Entry>(kv, ids.map((id) => keys.retry(module, id))),
  ]);
  ids.forEach((id, j) => {
    const [q, r] = [queued[j].value, retry[j].value];
    // A retry-set entry says more than a webhook's (why it is owed), so it wins.
    if (r) {
      out.set(id, {
        via: "retry",
        since: String(r.since ?? ""),
        ...(r.reason ? { reason: String(r.reason) } : {}),
      });
    } else if (q) out.set(id, { via: "webhook", since: String(q.at ?? "") });
  });
  return out;
}

/** Marks the results of records the run read because they were forced. */
export function markRetried(results: RecordResult[], forced: Map<string, Retried>): void {
  for (const r of results) {
    const why = forced.get(r.purchaseOrderId);
    if (why) r.retried = why;
  }
}
