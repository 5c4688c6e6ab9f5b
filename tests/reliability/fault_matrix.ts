/**
 * The fault matrix engine: one scenario = a fresh stack (both simulators, the app on a real
 * in-memory KV), a fault injected at exactly the k-th call of one endpoint during a run, then
 * reruns until the work is done and the invariant. The k-th call is hit exactly by queueing k-1
 * zero-length "delay" faults (which change nothing) before the real one: the simulators take
 * queued faults in order. k is the first, a middle or the last call of that endpoint in a clean
 * run of the same data, measured once (calibrate).
 */
import assert from "node:assert/strict";
import type { BootOverrides } from "../../boot.ts";
import type { Run } from "../../lib/sync/types.ts";
import { withZohoTotals } from "../../sandbox/po_generator.ts";
import type { XeroFaultSpec } from "../../sandbox/xero.ts";
import type { ZohoFaultSpec } from "../../sandbox/zoho.ts";
import { makeOrders, startStack } from "../helpers.ts";
import { isDone, pending, sleep, type Tally } from "./harness.ts";
import { checkInvariant, record } from "./invariant.ts";

export type Stack = Awaited<ReturnType<typeof startStack>>;
export type System = "zoho" | "xero";
export type Phase = "create" | "update" | "reconcile";
export type Position = "first" | "middle" | "last";

export interface Target {
  system: System;
  endpoint: string;
  /**
   * "create": the first sync of the data; "update": a sync after half the records changed;
   * "reconcile": the sync after one whose bill creates Xero did but whose answers were lost.
   */
  phase: Phase;
}

export interface Kind {
  label: string;
  zoho?: ZohoFaultSpec;
  xero?: XeroFaultSpec;
}

/** Client timeouts are short so "slow past the timeout" costs little; the delay outlasts them. */
const TIMEOUT_MS = 600;
const SLOW_MS = 1_500;

export const OVERRIDES: BootOverrides = {
  // A refused token mint pauses runs for Zoho's 10 minutes (tests/zoho_client_test.ts); here the
  // reruns must find the fault gone, so the remembered refusal lasts 200 ms.
  zoho: {
    timeoutMs: TIMEOUT_MS,
    retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 },
    mintRefusalMs: 200,
  },
  xero: { requestTimeoutMs: TIMEOUT_MS, retry: { attempts: 3, maxWaitMs: 2_000 } },
  // Batches of 10: 30 records make three batches, so "middle" and "last" are batch boundaries.
  // A create that got no answer is waited for 1.5 s (not 2 minutes) before it is sent again.
  engine: { batchSize: 10, lockWaitMs: 2_000, unconfirmedWaitMs: 1_500 },
};

/**
 * `times` is enough to use up each client's retry budget (3 attempts), so the fault reaches the
 * sync and its recovery path, except where a real server sends it once (an expired token, a 429
 * with Retry-After, which the clients are expected to wait out).
 */
export const KINDS: Kind[] = [
  {
    label: "429 without Retry-After",
    zoho: { kind: "429", times: 3 },
    // Xero always sends Retry-After with a 429; 0 s is the closest to "none".
    xero: { kind: "429", retryAfterSec: 0, times: 3 },
  },
  {
    label: "429 with Retry-After",
    zoho: { kind: "429", retryAfterSec: 1, times: 2 },
    xero: { kind: "429", retryAfterSec: 1, times: 1 },
  },
  { label: "500", zoho: { kind: "500", times: 3 }, xero: { kind: "500", times: 3 } },
  // The Zoho simulator has no 503 (Zoho answers outages with 500); Xero does send 503.
  { label: "503", xero: { kind: "503", times: 3 } },
  {
    label: "slow past the timeout",
    zoho: { kind: "delay", delayMs: SLOW_MS, times: 3 },
    xero: { kind: "delay", delayMs: SLOW_MS, times: 3 },
  },
  {
    label: "dropped connection",
    zoho: { kind: "drop", times: 3 },
    xero: { kind: "drop", times: 3 },
  },
  {
    label: "malformed JSON",
    zoho: { kind: "malformed", times: 3 },
    xero: { kind: "malformed", times: 3 },
  },
  {
    label: "expired token",
    zoho: { kind: "invalid_token", times: 1 },
    xero: { kind: "invalid_token", times: 1 },
  },
];

export const ZOHO_TARGETS: Target[] = ["token", "list", "get", "update", "fields"].map((
  endpoint,
) => ({ system: "zoho", endpoint, phase: "create" }));

export const XERO_TARGETS: Target[] = [
  ...["token", "connections", "contacts.get", "contacts.put", "invoices.put"].map((endpoint) => ({
    system: "xero" as const,
    endpoint,
    phase: "create" as const,
  })),
  { system: "xero", endpoint: "invoices.get", phase: "update" },
  { system: "xero", endpoint: "invoices.post", phase: "update" },
  // The search for bills whose create answer was lost: a failure here must never mean "none".
  { system: "xero", endpoint: "invoices.get", phase: "reconcile" },
];

/** Xero stores every bill of the run but each answer is lost, on every attempt (3 batches × 3). */
function loseCreateAnswers(s: Stack) {
  s.xeroSim.fault({ endpoint: "invoices.put", kind: "drop", times: 9 });
}

const RUN = { window: "since_last_sync", mode: "create_and_update" } as const;

/** 30 purchase orders, three of them ineligible (one reason each). */
export function dataset(): Record<string, unknown>[] {
  const orders = makeOrders(30, { seed: 7 });
  orders[4].Add_to_Xero = false;
  orders[13].Vendor_Name = null;
  orders[22].Purchase_Items = [];
  return orders;
}

/**
 * Changes half the records (price of the first line, subject), stamped a few seconds ahead so
 * they sort after every record our write-back touched: the batches come out the same every time.
 */
export function editHalf(s: Stack, stampMs = Date.now() + 5_000): string[] {
  const ids = [...s.zohoSim.records.keys()].filter((_, i) => i % 2 === 1);
  for (const id of ids) {
    const rec = structuredClone(s.zohoSim.records.get(id)!);
    const items = rec.Purchase_Items as Array<Record<string, unknown>> | undefined;
    if (items?.length) items[0].List_Price = Number(items[0].List_Price) + 1.25;
    rec.Subject = `${rec.Subject} (revised)`;
    s.zohoSim.upsert({ ...withZohoTotals(rec), Modified_Time: s.zohoSim.formatTime(stampMs) });
  }
  return ids;
}

export function count(s: Stack, system: System, endpoint: string): number {
  return (system === "zoho" ? s.zohoSim.counts : s.xeroSim.counts)[endpoint] ?? 0;
}

function snapshot(s: Stack): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.zohoSim.counts)) out[`zoho:${k}`] = v;
  for (const [k, v] of Object.entries(s.xeroSim.counts)) out[`xero:${k}`] = v;
  return out;
}

/** Calls per endpoint in a clean run of each phase ("create:zoho:get" → 30). */
export async function calibrate(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const s = await startStack({ records: dataset(), overrides: OVERRIDES });
  try {
    const measure = async (phase: Phase) => {
      const before = snapshot(s);
      const run = await s.run(RUN);
      assert.equal(run.status, "completed", `clean ${phase} run: ${run.message}`);
      const after = snapshot(s);
      for (const [k, v] of Object.entries(after)) {
        if (v - (before[k] ?? 0) > 0) out.set(`${phase}:${k}`, v - (before[k] ?? 0));
      }
    };
    await measure("create");
    editHalf(s);
    await measure("update");
  } finally {
    await s.close();
  }
  const r = await startStack({ records: dataset(), overrides: OVERRIDES });
  try {
    loseCreateAnswers(r);
    const lost = await r.run(RUN);
    assert.equal(lost.counts.created, 0, "every create answer was lost");
    const before = snapshot(r);
    const run = await r.run(RUN);
    assert.equal(run.status, "completed", `clean reconcile run: ${run.message}`);
    for (const [k, v] of Object.entries(snapshot(r))) {
      if (v - (before[k] ?? 0) > 0) out.set(`reconcile:${k}`, v - (before[k] ?? 0));
    }
  } finally {
    await r.close();
  }
  return out;
}

export interface Scenario {
  target: Target;
  kind: Kind;
  position: Position;
  /** The faulted call is the k-th of `faulted` in the run. */
  k: number;
  /** Token faults away from the start: an expired token at this call forces the refresh. */
  driver?: { endpoint: string; k: number };
}

/** first, middle and last call, without repeats (an endpoint called once has one position). */
export function scenarios(targets: Target[], calls: Map<string, number>): Scenario[] {
  const out: Scenario[] = [];
  for (const target of targets) {
    for (const kind of KINDS) {
      if (!kind[target.system]) continue;
      if (target.endpoint === "token") {
        // A token is fetched once at the start; "middle" and "last" refresh it after the API
        // refused it at the middle or last call of the busiest endpoint.
        const driver = target.system === "zoho" ? "get" : "invoices.put";
        const n = calls.get(`create:${target.system}:${driver}`) ?? 0;
        out.push({ target, kind, position: "first", k: 1 });
        out.push({
          target,
          kind,
          position: "middle",
          k: 2,
          driver: { endpoint: driver, k: mid(n) },
        });
        out.push({ target, kind, position: "last", k: 2, driver: { endpoint: driver, k: n } });
        continue;
      }
      const n = calls.get(`${target.phase}:${target.system}:${target.endpoint}`) ?? 0;
      assert.ok(n > 0, `a clean ${target.phase} run never calls ${target.endpoint}`);
      const seen = new Set<number>();
      for (const [position, k] of [["first", 1], ["middle", mid(n)], ["last", n]] as const) {
        if (seen.has(k)) continue;
        seen.add(k);
        out.push({ target, kind, position, k });
      }
    }
  }
  return out;
}

const mid = (n: number) => Math.max(1, Math.ceil(n / 2));

export const scenarioName = (sc: Scenario) =>
  `${sc.target.system} ${sc.target.endpoint}${
    sc.target.phase === "reconcile" ? " (reconcile)" : ""
  } × ${sc.kind.label} at the ${sc.position} call`;

/** Queues `spec` for exactly the k-th call of `endpoint` (k-1 harmless zero delays first). */
function injectAt(s: Stack, system: System, endpoint: string, k: number, spec: object) {
  if (system === "zoho") {
    if (k > 1) s.zohoSim.fault({ endpoint, kind: "delay", delayMs: 0, times: k - 1 });
    s.zohoSim.fault({ endpoint, ...spec } as ZohoFaultSpec);
  } else {
    if (k > 1) s.xeroSim.fault({ endpoint, kind: "delay", delayMs: 0, times: k - 1 });
    s.xeroSim.fault({ endpoint, ...spec } as XeroFaultSpec);
  }
}

/** Reconnects Xero the way an admin does: authorize at Xero, swap the code for tokens. */
export async function reconnectXero(s: Stack): Promise<void> {
  const redirect = "http://127.0.0.1:8000/oauth/xero/callback";
  const res = await fetch(s.ctx.xero.authorizeUrl("reliability", redirect), {
    redirect: "manual",
  });
  await res.body?.cancel();
  const code = new URL(res.headers.get("location")!).searchParams.get("code")!;
  await s.ctx.xero.exchangeCode(code, redirect);
}

/** A failure the user can act on names the system, and reads as words. */
export function unclearFailures(
  run: Run & { results: Array<{ outcome: string; message: string; reasons: string[] }> },
): string[] {
  const bad: string[] = [];
  const texts = [
    ...(run.status === "failed" || run.status === "paused" ? [run.message ?? ""] : []),
    ...run.results.filter((r) => r.outcome === "failed").map((r) => r.message),
  ];
  for (const t of texts) {
    if (!/Zoho|Xero|another sync/i.test(t) || /undefined|\[object Object\]/.test(t)) bad.push(t);
  }
  return bad;
}

/** Runs until one completes with nothing failed or pending (bounded, a short pause between). */
export async function runUntilDone(s: Stack, max = 10): Promise<{ runs: number; last?: Run }> {
  let last: Run | undefined;
  for (let i = 1; i <= max; i++) {
    last = await s.run(RUN);
    if (await isDone(s.ctx.kv, last)) return { runs: i, last };
    await sleep(250);
  }
  const p = await pending(s.ctx.kv);
  throw new Error(
    `not done after ${max} reruns: last run ${last?.status} ${JSON.stringify(last?.counts)} ` +
      `${last?.message ?? ""}; pending ${JSON.stringify(p)}`,
  );
}

/** One scenario end to end; returns its problems ("" when none). */
export async function runScenario(sc: Scenario, tally: Tally): Promise<string> {
  const s = await startStack({ records: dataset(), overrides: OVERRIDES });
  const problems: string[] = [];
  try {
    if (sc.target.phase === "update") {
      await runUntilDone(s);
      editHalf(s);
    }
    if (sc.target.phase === "reconcile") {
      loseCreateAnswers(s);
      await s.run(RUN);
    }
    const { system, endpoint } = sc.target;
    const spec = sc.kind[system]!;
    const before = count(s, system, endpoint);
    if (sc.driver) {
      injectAt(s, system, sc.driver.endpoint, sc.driver.k, { kind: "invalid_token", times: 1 });
    }
    injectAt(s, system, endpoint, sc.k, spec);
    const faulted = await s.run(RUN);
    problems.push(...unclearFailures(faulted).map((t) => `unclear failure message: ${t}`));
    if (faulted.status === "running") problems.push("the faulted run was left running");
    // A refused refresh token is a reconnect: say so, then reconnect as the admin would.
    const xeroStatus = await s.ctx.xero.status();
    if (xeroStatus.state === "error") {
      if (!/reconnect|connect Xero/i.test(xeroStatus.message ?? "")) {
        problems.push(`Xero error status without a way out: ${xeroStatus.message}`);
      }
      await reconnectXero(s);
    }
    await runUntilDone(s);
    if (count(s, system, endpoint) - before < sc.k) {
      problems.push(
        `the fault never fired (${endpoint} called ${count(s, system, endpoint) - before} times)`,
      );
    } else tally.faults++;
    const report = await checkInvariant({
      zohoRecords: s.zohoSim.records,
      bills: s.xeroSim.invoices(),
      kv: s.ctx.kv,
    });
    const msg = record(tally, report);
    if (msg) problems.push(msg);
  } catch (err) {
    problems.push(err instanceof Error ? err.message : String(err));
  } finally {
    await s.close();
  }
  return problems.length ? `${scenarioName(sc)}: ${problems.join("; ")}` : "";
}

/** Runs `fn` over items, `limit` at a time. */
export async function pool<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>) {
  const out: R[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}
