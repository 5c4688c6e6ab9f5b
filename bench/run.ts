/** One bench pass: fresh simulators, one pipeline, its figures. */
import { measure } from "./measure.ts";
import { runNaive } from "./naive.ts";
import { prepareOurs } from "./ours.ts";
import { startSims } from "./sims.ts";
import type { SimStats } from "./sim_host.ts";

export interface PassOptions {
  n: number;
  vendors: number;
  seed: number;
  clockScale: number;
  zohoLatencyMs: number;
  xeroLatencyMs: number;
  zohoConcurrency?: number;
  /** false: the Zoho simulator refuses COQL (line items only by the single-record GET). */
  bulk?: boolean;
}

export interface PassResult {
  pipeline: "app" | "naive";
  /** Line items in bulk offered by Zoho (COQL) in this pass. */
  bulk: boolean;
  n: number;
  clockScale: number;
  /** Real time the sync took, ms. */
  wallMs: number;
  /** What it would take against the real services: wall time × clock scale, minutes. */
  xeroMinutes: number;
  cpuMs: number;
  cpuMsPerOrder: number;
  peakRssMb: number;
  peakHeapMb: number;
  /** Resident memory split (Linux): anonymous (heaps, buffers) and file-backed (binary, KV file). */
  peakAnonMb: number;
  peakFileMb: number;
  peakExternalMb: number;
  /** Answered calls by endpoint, counted by the simulators (what Zoho and Xero see). */
  zohoCalls: Record<string, number>;
  xeroCalls: Record<string, number>;
  zohoTotal: number;
  xeroTotal: number;
  /** Zoho credits charged (counted by the simulator: 1 a call, COQL by its LIMIT). */
  zohoCredits: number;
  /** Zoho calls answered 429 for going over its concurrency limits. */
  zoho429: number;
  /** Bytes of Xero's answers, as the app counted them (absent for the naive pipeline). */
  xeroEgressBytes?: number;
  /** Xero API calls answered 429 (waited out and retried; not in xeroTotal). */
  xero429: number;
  bills: number;
  contacts: number;
  detail: Record<string, unknown>;
}

const MB = 1024 * 1024;

/** Xero's and Zoho's sign-in endpoints: not API calls, so not in the totals. */
export const AUTH_ENDPOINTS = ["token", "connections", "authorize", "revoke"];

/**
 * Splits the proxy's counters into answered calls by endpoint (429s left out: they did no work)
 * and the number of 429 answers.
 */
function xeroFigures(stats: SimStats) {
  const calls: Record<string, number> = {};
  let tooMany = 0;
  for (const [k, v] of Object.entries(stats.xero)) {
    if (!k.includes(" ")) calls[k] = (calls[k] ?? 0) + v;
    else if (k.endsWith(" 429")) {
      calls[k.slice(0, -4)] = (calls[k.slice(0, -4)] ?? 0) - v;
      tooMany += v;
    }
  }
  return { calls, tooMany };
}

const apiTotal = (calls: Record<string, number>) =>
  Object.entries(calls).filter(([k]) => !AUTH_ENDPOINTS.includes(k)).reduce((s, [, v]) => s + v, 0);

export async function runPass(pipeline: "app" | "naive", o: PassOptions): Promise<PassResult> {
  const sims = await startSims(o);
  try {
    let detail: Record<string, unknown>;
    let measured;
    if (pipeline === "app") {
      const ours = await prepareOurs(sims.info, o.clockScale, o.zohoConcurrency);
      try {
        measured = await measure(() => ours.run());
      } finally {
        await ours.close();
      }
      detail = { ...measured.value };
    } else {
      measured = await measure(() => runNaive(sims.info, o.clockScale));
      detail = { ...measured.value };
    }
    const stats = await sims.stats();
    const { calls, tooMany } = xeroFigures(stats);
    const zohoCalls = Object.fromEntries(
      Object.entries(stats.zoho).filter(([k, v]) => v > 0 && k !== "authorize" && k !== "revoke"),
    );
    const usage = (detail as { usage?: { xeroEgressBytes?: number } }).usage;
    return {
      pipeline,
      bulk: o.bulk !== false,
      n: o.n,
      clockScale: o.clockScale,
      wallMs: measured.wallMs,
      xeroMinutes: (measured.wallMs * o.clockScale) / 60_000,
      cpuMs: measured.cpuMs,
      cpuMsPerOrder: measured.cpuMs / o.n,
      peakRssMb: measured.peakRss / MB,
      peakHeapMb: measured.peakHeap / MB,
      peakAnonMb: measured.peakAnon / MB,
      peakFileMb: measured.peakFile / MB,
      peakExternalMb: measured.peakExternal / MB,
      zohoCalls,
      xeroCalls: calls,
      zohoTotal: apiTotal(zohoCalls),
      xeroTotal: apiTotal(calls),
      zohoCredits: Object.values(stats.zohoCredits).reduce((a, b) => a + b, 0),
      zoho429: stats.zohoConcurrency.refused,
      ...(usage?.xeroEgressBytes !== undefined ? { xeroEgressBytes: usage.xeroEgressBytes } : {}),
      xero429: tooMany,
      bills: stats.bills,
      contacts: stats.contacts,
      detail,
    };
  } finally {
    await sims.close();
  }
}
