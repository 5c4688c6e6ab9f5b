/**
 * Runs that survive their instance: one 2,000-order run, its app process SIGKILLed at 10 points
 * (while listing, between bulk line reads, as Xero receives bills, during the write-back, at random
 * moments). Each time another process (already started, as Deno Deploy runs several) gets no
 * request at all, only its resume cron tick (main.ts registers it every minute; here the same call
 * every 200 ms), and goes on with the stopped run from its last checkpoint. The same run id
 * finishes, its progress never goes back, and every eligible order has exactly one bill. A paused
 * run goes on from requests alone (the middleware of routes/app.ts).
 */
import assert from "node:assert/strict";
import { keys } from "../../lib/store/keys.ts";
import { getResults } from "../../lib/store/runs.ts";
import type { Run } from "../../lib/sync/types.ts";
import { makeOrders } from "../helpers.ts";
import {
  allRuns,
  api,
  type AppProcess,
  newTally,
  printSummary,
  runEnded,
  sharedWorld,
  sleep,
  spawnApp,
} from "./harness.ts";
import { checkInvariant, record } from "./invariant.ts";

const OVERRIDES = {
  zoho: { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 } },
  xero: { retry: { attempts: 3, maxWaitMs: 3_000 } },
  // A stopped run is taken for stopped after 300 ms without a heartbeat, not 40 s; every request
  // may look for one (production: at most once every 30 s per instance).
  engine: {
    runLeaseMs: 600,
    heartbeatMs: 150,
    recordLockMs: 800,
    lockWaitMs: 1_500,
    resumeCheckMs: 0,
  },
};
/** No request looks for a stopped run; only the resume cron does, every 200 ms. */
const CRON_ONLY = {
  ...OVERRIDES,
  engine: { ...OVERRIDES.engine, resumeCheckMs: 3_600_000 },
  resumeCronMs: 200,
};

type Kill =
  | { what: string; system: "zoho" | "xero"; endpoint: string; after: number; extraMs: number }
  | { what: string; afterMs: number };

const KILLS: Kill[] = [
  { what: "Zoho listing, page 4", system: "zoho", endpoint: "list", after: 4, extraMs: 0 },
  { what: "Zoho bulk line read #3", system: "zoho", endpoint: "coql", after: 3, extraMs: 0 },
  { what: "Xero bill batch #1", system: "xero", endpoint: "invoices.put", after: 1, extraMs: 10 },
  { what: "Zoho write-back #1", system: "zoho", endpoint: "update", after: 1, extraMs: 0 },
  { what: "400 ms after going on", afterMs: 400 },
  { what: "Xero bill batch #2", system: "xero", endpoint: "invoices.put", after: 2, extraMs: 0 },
  { what: "Zoho bulk line read #6", system: "zoho", endpoint: "coql", after: 6, extraMs: 0 },
  { what: "Zoho write-back #1 (+5 ms)", system: "zoho", endpoint: "update", after: 1, extraMs: 5 },
  { what: "Xero bill batch #1", system: "xero", endpoint: "invoices.put", after: 1, extraMs: 0 },
  { what: "250 ms after going on", afterMs: 250 },
];

Deno.test("a 2,000-order run SIGKILLed at 10 points goes on under the same id from the cron tick alone, every bill once", async () => {
  const tally = newTally();
  const orders = makeOrders(2000, { seed: 4242 });
  for (let i = 0; i < orders.length; i++) {
    if (i % 25 === 3) orders[i].Add_to_Xero = false;
  }
  const w = await sharedWorld(orders, { xero: { clockScale: 30 } });
  const counts = (s: "zoho" | "xero") => s === "zoho" ? w.zohoSim.counts : w.xeroSim.counts;
  const getRun = async (id: string) => (await w.kv.get<Run>(keys.run(id))).value!;
  let proc: AppProcess | undefined;
  let standby = spawnApp(w.env, CRON_ONLY);
  const log: string[] = [];
  try {
    proc = await standby;
    standby = spawnApp(w.env, CRON_ONLY);
    const start = await api(proc.url, "/api/sync-runs", { window: "all" });
    assert.equal(start.status, 202, start.text);
    const runId = String(start.json.runId);
    const progress: number[] = [];
    for (const [k, kill] of KILLS.entries()) {
      // Armed from the moment the run goes on in this process.
      const base = "system" in kill ? counts(kill.system)[kill.endpoint] ?? 0 : 0;
      const t0 = Date.now();
      for (let i = 0;; i++) {
        const reached = "system" in kill
          ? (counts(kill.system)[kill.endpoint] ?? 0) - base >= kill.after
          : Date.now() - t0 >= kill.afterMs;
        if (reached) break;
        if (i % 25 === 0) {
          const run = await getRun(runId);
          assert.equal(run.status, "running", `the run ended before kill ${k + 1} (${kill.what})`);
        }
        assert.ok(Date.now() - t0 < 60_000, `kill ${k + 1} (${kill.what}) never came`);
        await sleep(1);
      }
      if ("extraMs" in kill && kill.extraMs) await sleep(kill.extraMs);
      await proc.stop("SIGKILL");
      const dead = await getRun(runId);
      assert.equal(dead.status, "running");
      progress.push(dead.processed ?? 0);
      tally.kills++;
      log.push(`kill ${k + 1}: ${kill.what}, ${dead.processed ?? 0}/${dead.planned ?? "?"}`);

      // The next instance: no request, only its cron tick, until the run goes on there.
      proc = await standby;
      const until = Date.now() + 30_000;
      for (;;) {
        const run = await getRun(runId);
        if ((run.resumes ?? 0) >= k + 1) break;
        assert.ok(Date.now() < until, `the run did not go on after kill ${k + 1}`);
        await sleep(50);
      }
      // The next standby starts once this one holds the run (so the next kill hits the run).
      standby = spawnApp(w.env, CRON_ONLY);
    }
    // The last instance finishes it, with no request either.
    const until = Date.now() + 120_000;
    let run = await getRun(runId);
    while (run.status === "running") {
      assert.ok(Date.now() < until, `run still running: ${run.processed}/${run.planned}`);
      await sleep(100);
      run = await getRun(runId);
    }
    assert.equal(run.status, "completed", run.message);
    assert.equal(run.resumes, KILLS.length);
    assert.equal(run.planned, 2000);
    assert.equal(run.processed, 2000);
    for (let i = 1; i < progress.length; i++) {
      assert.ok(progress[i] >= progress[i - 1], `progress went back: ${progress.join(", ")}`);
    }
    assert.ok(progress.at(-1)! > progress[0], `progress never moved: ${progress.join(", ")}`);
    const results = await getResults(w.kv, runId);
    assert.equal(results.length, 2000);
    assert.equal(new Set(results.map((r) => r.purchaseOrderId)).size, 2000);
    assert.equal(run.counts.total, 2000, JSON.stringify(run.counts));
    assert.equal(run.counts.failed, 0, JSON.stringify(run.counts));
    assert.equal(run.counts.skipped, 80);
    // No other run was started: the same id went on each time.
    assert.deepEqual((await allRuns(w.kv)).map((r) => r.id), [runId]);
    // The plan is cleaned up once the run is done (right after its last write).
    for (let i = 0; i < 100 && (await w.kv.get(keys.runPlan(runId))).value; i++) await sleep(50);
    assert.equal((await w.kv.get(keys.runPlan(runId))).value, null);
    const report = await checkInvariant({
      zohoRecords: w.zohoSim.records,
      bills: w.xeroSim.invoices(),
      kv: w.kv,
    });
    const problems = record(tally, report);
    assert.equal(problems, "", problems);
    assert.equal(report.eligible, 1920);
  } finally {
    await proc?.stop();
    await (await standby.catch(() => undefined))?.stop();
    printSummary("durable_runs", tally, log.join("; "));
    await w.close();
  }
});

Deno.test("a run paused by Xero's daily limit says when it goes on, and goes on under the same id then", async () => {
  const orders = makeOrders(120, { seed: 77 });
  const w = await sharedWorld(orders);
  const getRun = async (id: string) => (await w.kv.get<Run>(keys.run(id))).value!;
  let proc: AppProcess | undefined;
  try {
    proc = await spawnApp(w.env, OVERRIDES);
    // Enough calls for the token, contacts and tax rates, then Xero's day is over.
    w.xeroSim.setDayLimitRemaining(4);
    const start = await api(proc.url, "/api/sync-runs", { window: "since_last_sync" });
    assert.equal(start.status, 202, start.text);
    const runId = String(start.json.runId);
    let run = await runEnded(w.kv, runId);
    assert.equal(run.status, "paused", run.message);
    // When it goes on, as a time and in words: Xero's Retry-After, else within the hour.
    assert.ok(run.resumeAt, "a paused run has a time to go on");
    const wait = Date.parse(run.resumeAt) - Date.now();
    assert.ok(wait > 0 && wait <= 86_400_000, run.resumeAt);
    assert.match(
      run.message ?? "",
      /daily limit.*tries again by itself at \d{4}-\d\d-\d\d \d\d:\d\d UTC/,
    );
    assert.ok((run.processed ?? 0) < 120);
    await proc.stop("SIGTERM");

    // A new instance (with no memory of the limit) before that time: the run stays paused.
    w.xeroSim.setDayLimitRemaining(5000);
    proc = await spawnApp(w.env, OVERRIDES);
    for (let i = 0; i < 5; i++) {
      const health: Response = await fetch(`${proc.url}/health`);
      await health.body?.cancel();
      await sleep(50);
    }
    assert.equal((await getRun(runId)).status, "paused");
    // Its time has come (the stored time is moved, not the clock): the next request goes on.
    await w.kv.set(keys.run(runId), {
      ...await getRun(runId),
      resumeAt: new Date(Date.now() - 1000).toISOString(),
    });
    const until = Date.now() + 60_000;
    for (run = await getRun(runId); run.status !== "completed"; run = await getRun(runId)) {
      assert.ok(Date.now() < until, `${run.status}: ${run.message}`);
      const health: Response = await fetch(`${proc.url}/health`);
      await health.body?.cancel();
      await sleep(100);
    }
    assert.equal(run.resumes, 1);
    assert.equal(run.resumeAt, undefined);
    assert.equal(run.processed, 120);
    assert.equal(run.counts.total, 120);
    assert.equal(run.counts.failed, 0, JSON.stringify(run.counts));
    assert.deepEqual((await allRuns(w.kv)).map((r) => r.id), [runId]);
    const report = await checkInvariant({
      zohoRecords: w.zohoSim.records,
      bills: w.xeroSim.invoices(),
      kv: w.kv,
    });
    assert.deepEqual(report.problems, []);
    assert.equal(report.duplicates + report.lost, 0);
  } finally {
    await proc?.stop();
    await w.close();
  }
});
