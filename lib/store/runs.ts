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
    100, // KV caps a transaction at 800 KiB: a hundred results of a few KiB each fit
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

export interface ResultQuery {
  outcome?: RecordResult["outcome"] | null;
  /** PO number (reference) or record id, matched case-insensitively anywhere in it. */
  q?: string;
  /** Only records the run read again on purpose (retry set or webhook). */
  retried?: boolean;
  offset?: number;
  limit?: number;
}

/** Does a result match the outcome filter and the PO-number search? */
export function resultMatches(r: RecordResult, { outcome, q, retried }: ResultQuery): boolean {
  if (outcome && r.outcome !== outcome) return false;
  if (retried && !r.retried) return false;
  const needle = q?.trim().toLowerCase();
  if (!needle) return true;
  return (r.reference ?? "").toLowerCase().includes(needle) || r.purchaseOrderId.includes(needle);
}

/**
 * One page of a run's results with the filter applied, how many match in all and how many were
 * retried. Streams the
 * run's results, keeping only the page: a 10,000-record run costs one scan, not 10,000 rows held.
 */
export async function queryResults(
  kv: Deno.Kv,
  runId: string,
  query: ResultQuery,
): Promise<{ rows: RecordResult[]; matching: number; retried: number }> {
  const offset = Math.max(0, query.offset ?? 0);
  const limit = Math.max(1, query.limit ?? 100);
  const rows: RecordResult[] = [];
  let matching = 0;
  let retried = 0; // in the whole run, whatever the filter
  for await (const e of kv.list<RecordResult>({ prefix: keys.runResultPrefix(runId) })) {
    if (e.value.retried) retried++;
    if (!resultMatches(e.value, query)) continue;
    if (matching >= offset && rows.length < limit) rows.push(e.value);
    matching++;
  }
  return { rows, matching, retried };
}

/** Each matching result of a run, in key order, without holding them all. */
export async function* eachResult(
  kv: Deno.Kv,
  runId: string,
  query: ResultQuery = {},
): AsyncGenerator<RecordResult> {
  for await (const e of kv.list<RecordResult>({ prefix: keys.runResultPrefix(runId) })) {
    if (resultMatches(e.value, query)) yield e.value;
  }
}
