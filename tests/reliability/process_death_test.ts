/**
 * Process death: the app runs as its own process against the simulators (started here) on a KV
 * file, and is killed with SIGKILL at seeded random moments of its runs: while listing, between
 * record fetches, right as Xero receives a batch of bills, during the write-back to Zoho, or after
 * a random delay. Each time it is restarted; the next start goes on with the dead run under its id
 * from its last checkpoint (and answers 409 naming it), never leaving it "running". At the end the
 * work is finished and the invariant holds: one matching bill per eligible purchase order, none
 * lost, none duplicated.
 */
import assert from "node:assert/strict";
import { keys } from "../../lib/store/keys.ts";
import { getResults } from "../../lib/store/runs.ts";
import type { Run } from "../../lib/sync/types.ts";
import { seededRandom, withZohoTotals } from "../../sandbox/po_generator.ts";
import { makeOrders } from "../helpers.ts";
import {
  allRuns,
  api,
  type AppProcess,
  findSecrets,
  isDone,
  kvTexts,
  leaseFree,
  newTally,
  overlappingRuns,
  pending,
  printSummary,
  runEnded,
  secretsOf,
  sharedWorld,
  sleep,
  spawnApp,
} from "./harness.ts";
import { checkInvariant, record } from "./invariant.ts";

const SEED = 20_250_611;
const KILLS_WANTED = 22;
const MAX_ATTEMPTS = 45;

const OVERRIDES = {
  zoho: { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 } },
  xero: { retry: { attempts: 3, maxWaitMs: 3_000 } },
  // A dead run's lease and record locks expire in under a second or three, not minutes.
  engine: { runLeaseMs: 600, heartbeatMs: 150, recordLockMs: 800, lockWaitMs: 1_500 },
};

type Trigger =
  | { what: string; system: "zoho" | "xero"; endpoint: string; after: number; extraMs: number }
  | { what: string; afterMs: number };

/** Where to kill next, drawn from the seed: mostly at the moments that matter for a bill. */
function drawTrigger(rand: () => number): Trigger {
  const r = rand();
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  if (r < 0.3) {
    const after = rand() < 0.8 ? 1 : 2;
    return {
      what: `Xero bill batch #${after} (+${int(0, 30)} ms)`,
      system: "xero",
      endpoint: "invoices.put",
      after,
      extraMs: int(0, 30),
    };
  }
  if (r < 0.55) {
    const after = int(1, 45);
    return {
      what: `Zoho record fetch #${after}`,
      system: "zoho",
      endpoint: "get",
      after,
      extraMs: 0,
    };
  }
  if (r < 0.75) {
    const extraMs = int(0, 20);
    return {
      what: `Zoho write-back #1 (+${extraMs} ms)`,
      system: "zoho",
      endpoint: "update",
      after: 1,
      extraMs,
    };
  }
  if (r < 0.82) {
    return { what: "Zoho listing", system: "zoho", endpoint: "list", after: 1, extraMs: int(0, 3) };
  }
  if (r < 0.88) {
    return {
      what: "Xero contact lookup",
      system: "xero",
      endpoint: "contacts.get",
      after: 1,
      extraMs: 0,
    };
  }
  const afterMs = int(30, 700);
  return { what: `${afterMs} ms into the run`, afterMs };
}

Deno.test("SIGKILL at 20+ seeded moments of a 500-record sync: every dead run goes on under its id, nothing lost or duplicated", async () => {
  const tally = newTally();
  const rand = seededRandom(SEED);
  const orders = makeOrders(500, { seed: SEED });
  for (let i = 0; i < orders.length; i++) {
    if (i % 20 === 7) orders[i].Add_to_Xero = false;
    if (i % 45 === 11) orders[i].Vendor_Name = null;
  }
  // A 2-second rate-limit window: the minute limit still bites, and is waited out in seconds.
  const w = await sharedWorld(orders, { xero: { clockScale: 30 } });
  const outputs: string[] = [];
  let proc: AppProcess | undefined;
  // The next instance boots while the current one works, as a standby would.
  let standby = spawnApp(w.env, OVERRIDES);
  const log: string[] = [];
  const moments = new Map<string, number>();
  let nextNew = 0;
  try {
    let killedRun: string | undefined;
    const resumedRuns = new Set<string>();
    let attempts = 0;
    const t0 = Date.now();
    while (tally.kills < KILLS_WANTED && attempts++ < MAX_ATTEMPTS) {
      churn(w.zohoSim, rand, nextNew++);
      proc = await standby;
      await leaseFree(w.kv);
      const start = await api(proc.url, "/api/sync-runs", { window: "since_last_sync" });
      standby = spawnApp(w.env, OVERRIDES);
      if (killedRun && start.status === 409) {
        // The start that follows a death goes on with the dead run, and says it is running.
        assert.equal(start.json.runId, killedRun, start.text);
      } else if (killedRun) {
        // Unless the dead run was gone on with and finished before this start took the lease.
        assert.equal(start.status, 202, start.text);
        const dead = (await w.kv.get<Run>(keys.run(killedRun))).value!;
        assert.match(dead.status, /^completed/, `run ${killedRun} after the restart`);
      } else assert.equal(start.status, 202, start.text);
      const runId = String(start.json.runId);
      if (killedRun) {
        resumedRuns.add(killedRun);
        killedRun = undefined;
      }
      const trigger = drawTrigger(rand);
      const killed = await killAt(w, proc, runId, trigger);
      outputs.push(proc.output());
      proc = undefined;
      if (killed) {
        tally.kills++;
        killedRun = runId;
        const kind = /^\d+ ms/.test(trigger.what)
          ? "a random moment"
          : trigger.what.replace(/ ?[#(+\d].*$/, "");
        moments.set(kind, (moments.get(kind) ?? 0) + 1);
        log.push(`kill ${tally.kills} at ${Date.now() - t0} ms: ${trigger.what}`);
      } else log.push(`run ended before: ${trigger.what}`);
    }
    assert.ok(tally.kills >= 20, `only ${tally.kills} kill points landed:\n${log.join("\n")}`);

    // Restart and let it finish.
    proc = await standby;
    let done = false;
    const finals: string[] = [];
    for (let i = 0; i < 8 && !done; i++) {
      await leaseFree(w.kv);
      const start = await api(proc.url, "/api/sync-runs", { window: "since_last_sync" });
      if (start.status === 409) {
        // The last killed run goes on first. It finishes what it listed before it was killed;
        // orders edited since are the next run's (as for any edit made during a run).
        assert.equal(start.json.runId, killedRun, start.text);
        const resumed = await runEnded(w.kv, killedRun!);
        assert.match(resumed.status, /^completed/, resumed.message);
        killedRun = undefined;
        i--;
        continue;
      }
      assert.equal(start.status, 202, start.text);
      const run = await runEnded(w.kv, String(start.json.runId));
      done = await isDone(w.kv, run);
      const failed = (await getResults(w.kv, run.id)).filter((r) => r.outcome === "failed");
      finals.push(
        `${run.status} ${JSON.stringify(run.counts)} ${run.message ?? ""} ${
          JSON.stringify(await pending(w.kv))
        } ${failed.slice(0, 3).map((r) => r.message).join(" | ")}`,
      );
    }
    assert.ok(
      done,
      `the work did not finish within 8 runs after the last restart:\n${finals.join("\n")}`,
    );
    await proc.stop("SIGTERM");
    outputs.push(proc.output());
    proc = undefined;

    const runs = await allRuns(w.kv);
    assert.deepEqual(runs.filter((r) => r.status === "running").map((r) => r.id), []);
    assert.deepEqual(
      runs.filter((r) => /Interrupted/.test(r.message ?? "")).map((r) => r.id),
      [],
      "no killed run was given up",
    );
    assert.ok(resumedRuns.size > 0);
    for (const r of runs.filter((r) => resumedRuns.has(r.id))) {
      assert.ok((r.resumes ?? 0) >= 1, `${r.id} was gone on with`);
    }
    assert.deepEqual(overlappingRuns(runs), []);
    const report = await checkInvariant({
      zohoRecords: w.zohoSim.records,
      bills: w.xeroSim.invoices(),
      kv: w.kv,
    });
    const problems = record(tally, report);
    assert.equal(problems, "", problems);
    assert.ok(report.records >= 500);

    const leaks = findSecrets(
      [
        ...outputs.map((text, i) => ({ where: `app process ${i + 1} output`, text })),
        ...await kvTexts(w.kv),
      ],
      await secretsOf(w.kv, w.env, { "current Xero refresh token": w.xeroSim.refreshToken }),
    );
    assert.deepEqual(leaks, []);
  } finally {
    await proc?.stop();
    await (await standby.catch(() => undefined))?.stop();
    printSummary(
      "process_death",
      tally,
      `runs=${(await allRuns(w.kv)).length}, killed at: ${
        [...moments].map(([k, n]) => `${k} ×${n}`).join(", ")
      }`,
    );
    await w.close();
  }
});

/**
 * Kills the process when the trigger's call has reached the simulator (plus a few ms), unless
 * the run ends first. Returns whether it died during the run.
 */
async function killAt(
  w: Awaited<ReturnType<typeof sharedWorld>>,
  proc: AppProcess,
  runId: string,
  t: Trigger,
): Promise<boolean> {
  const counts = (s: "zoho" | "xero") => s === "zoho" ? w.zohoSim.counts : w.xeroSim.counts;
  const base = "system" in t ? counts(t.system)[t.endpoint] ?? 0 : 0;
  const t0 = Date.now();
  let lastCheck = 0;
  for (;;) {
    const reached = "system" in t
      ? (counts(t.system)[t.endpoint] ?? 0) - base >= t.after
      : Date.now() - t0 >= t.afterMs;
    if (reached) {
      if ("extraMs" in t && t.extraMs) await sleep(t.extraMs);
      await proc.stop("SIGKILL");
      const run = (await w.kv.get<Run>(keys.run(runId))).value;
      return run?.status === "running";
    }
    if (Date.now() - lastCheck > 25) {
      lastCheck = Date.now();
      const run = (await w.kv.get<Run>(keys.run(runId))).value;
      if (run && run.status !== "running") {
        await proc.stop("SIGTERM");
        return false;
      }
      if (Date.now() - t0 > 60_000) throw new Error(`run ${runId} neither ended nor hit ${t.what}`);
    }
    await sleep(1);
  }
}

/** Between restarts people keep working: some records change, a few new ones appear. */
function churn(
  zohoSim: Awaited<ReturnType<typeof sharedWorld>>["zohoSim"],
  rand: () => number,
  round: number,
) {
  const ids = [...zohoSim.records.keys()];
  for (let i = 0; i < 40; i++) {
    const id = ids[Math.floor(rand() * ids.length)];
    const rec = structuredClone(zohoSim.records.get(id)!);
    const items = rec.Purchase_Items as Array<Record<string, unknown>> | undefined;
    if (items?.length) items[0].Quantity = Number(items[0].Quantity) + 1;
    zohoSim.edit(id, withZohoTotals(rec));
  }
  makeOrders(8, { seed: 9_000 + round }).forEach((o, j) => {
    const id = String(5876543000009000000n + BigInt(round * 8 + j));
    // New in Zoho now: the simulator stamps Created_Time and Modified_Time.
    const { Modified_Time: _m, Created_Time: _c, ...fresh } = o;
    zohoSim.upsert({ ...fresh, id, PO_Number: `PO-N${round}-${j}` });
  });
}
