/** Runs and their per-record results in KV. Run ids sort by start time. */
import type { RecordResult, Run } from "../sync/types.ts";
import { commitChunked } from "./records.ts";
import { keys } from "./keys.ts";

export function newRunId(now = Date.now()): string {
  const rand = crypto.getRandomValues(new Uint8Array(4));
  return `r${now.toString(36).padStart(9, "0")}${
    Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

export async function saveRun(kv: Deno.Kv, run: Run): Promise<void> {
  await kv.set(keys.run(run.id), run);
}

export async function getRun(kv: Deno.Kv, id: string): Promise<Run | null> {
  return (await kv.get<Run>(keys.run(id))).value;
}

/** Newest first, `limit` at a time; `cursor` continues a previous page. */
export async function listRuns(
  kv: Deno.Kv,
  { limit = 20, cursor }: { limit?: number; cursor?: string } = {},
): Promise<{ runs: Run[]; cursor?: string }> {
  const iter = kv.list<Run>({ prefix: keys.runPrefix() }, { reverse: true, limit, cursor });
  const runs: Run[] = [];
  for await (const entry of iter) runs.push(entry.value);
  return { runs, cursor: runs.length === limit ? iter.cursor : undefined };
}

export async function saveResults(kv: Deno.Kv, runId: string, results: RecordResult[]) {
  await commitChunked(
    kv,
    results.map((r) => (a) => a.set(keys.runResult(runId, r.purchaseOrderId), r)),
  );
}

export async function getResults(kv: Deno.Kv, runId: string): Promise<RecordResult[]> {
  const out: RecordResult[] = [];
  for await (const e of kv.list<RecordResult>({ prefix: keys.runResultPrefix(runId) })) {
    out.push(e.value);
  }
  // A bill deleted, voided or left for a deleted or cancelled order comes first (a stable sort).
  return out.sort((a, b) => Number(!!b.lifecycle) - Number(!!a.lifecycle));
}
