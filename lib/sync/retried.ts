/**
 * Why a run reads a record whatever its Modified_Time says: it is in the retry set (failed, busy,
 * owed, settings changed: the reason recorded then) or a Zoho webhook named it. The run page shows
 * this next to the record, so "why was this synced again?" has an answer.
 */
import { listAll } from "../store/kv.ts";
import { keys, type Module } from "../store/keys.ts";
import type { RecordResult } from "./types.ts";

export type Retried = NonNullable<RecordResult["retried"]>;

export async function forcedRecords(kv: Deno.Kv, module: Module): Promise<Map<string, Retried>> {
  const out = new Map<string, Retried>();
  for (const e of await listAll<{ at?: string }>(kv, keys.queuePrefix(module))) {
    out.set(String(e.key.at(-1)), { via: "webhook", since: String(e.value?.at ?? "") });
  }
  // A retry-set entry says more than a webhook's (why it is owed), so it wins.
  for (
    const e of await listAll<{ since?: string; reason?: string }>(kv, keys.retryPrefix(module))
  ) {
    out.set(String(e.key.at(-1)), {
      via: "retry",
      since: String(e.value?.since ?? ""),
      ...(e.value?.reason ? { reason: String(e.value.reason) } : {}),
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
