/**
 * Fault matrix, Zoho side: for each Zoho endpoint the sync uses (token, list, get, update, fields),
 * each fault (429 with and without Retry-After, 500, a reply slower than the client's timeout, a
 * dropped connection, malformed JSON, an expired token) at the first, a middle and the last call
 * of a run; then reruns until done, and the invariant: one matching bill per eligible purchase
 * order, the reason on each ineligible one, nothing lost, nothing duplicated.
 */
import assert from "node:assert/strict";
import { makeOrders, startStack } from "../helpers.ts";
import {
  calibrate,
  count,
  KINDS,
  OVERRIDES,
  pool,
  runScenario,
  type Scenario,
  scenarioName,
  scenarios,
  unclearFailures,
  ZOHO_TARGETS,
} from "./fault_matrix.ts";
import { captureConsole, isDone, newTally, printSummary } from "./harness.ts";
import { checkInvariant, record } from "./invariant.ts";

const tally = newTally();
let calls: Promise<Map<string, number>> | undefined;

async function matrixFor(endpoint: string) {
  calls ??= calibrate();
  const all = scenarios(ZOHO_TARGETS.filter((t) => t.endpoint === endpoint), await calls);
  const cap = captureConsole();
  try {
    const problems = (await pool(all, 12, (sc: Scenario) => runScenario(sc, tally)))
      .filter(Boolean);
    assert.deepEqual(problems, [], `${problems.length} of ${all.length} scenarios failed`);
    assert.ok(all.length >= KINDS.length - 1, all.map(scenarioName).join("\n"));
  } finally {
    cap.restore();
  }
}

for (const endpoint of ZOHO_TARGETS.map((t) => t.endpoint)) {
  Deno.test(`Zoho ${endpoint}: every fault at the first, middle and last call; reruns finish with one bill per order`, () =>
    matrixFor(endpoint));
}

/**
 * One lane per page position: 420 records synced once, then per fault kind a round that changes
 * six records, fails the listing at that page, and reruns. Lanes run side by side.
 */
async function listLane(position: string, k: number) {
  const orders = makeOrders(420, { seed: 11 + k });
  for (let i = 0; i < orders.length; i += 37) orders[i].Add_to_Xero = false;
  const s = await startStack({
    records: orders,
    overrides: { ...OVERRIDES, engine: { ...OVERRIDES.engine, batchSize: 100 } },
  });
  const window = { window: "all", mode: "create_and_update" } as const;
  const untilDone = async (name: string) => {
    for (let i = 0; i < 8; i++) {
      const run = await s.run(window);
      if (await isDone(s.ctx.kv, run)) return;
    }
    throw new Error(`${name}: not done after 8 runs`);
  };
  try {
    await untilDone("first sync");
    const ids = [...s.zohoSim.records.keys()];
    let round = 0;
    for (const kind of KINDS.filter((k) => k.zoho)) {
      round++;
      const name = `list × ${kind.label} at the ${position} page`;
      // Some work on every page: six records change.
      for (let j = 0; j < 6; j++) {
        s.zohoSim.edit(ids[(round * 13 + j * 70) % ids.length], { Subject: `Round ${round}.${j}` });
      }
      const before = count(s, "zoho", "list");
      if (k > 1) s.zohoSim.fault({ endpoint: "list", kind: "delay", delayMs: 0, times: k - 1 });
      s.zohoSim.fault({ endpoint: "list", ...kind.zoho! });
      const faulted = await s.run(window);
      assert.notEqual(faulted.status, "running", name);
      assert.deepEqual(unclearFailures(faulted), [], name);
      s.zohoSim.clearFaults();
      assert.ok(count(s, "zoho", "list") - before >= k, `${name}: the fault never fired`);
      tally.faults++;
      await untilDone(name);
      const msg = record(
        tally,
        await checkInvariant({
          zohoRecords: s.zohoSim.records,
          bills: s.xeroSim.invoices(),
          kv: s.ctx.kv,
        }),
      );
      assert.equal(msg, "", `${name}: ${msg}`);
    }
  } finally {
    await s.close();
  }
}

Deno.test("Zoho list over three pages: every fault at the first, middle or last page loses nothing", async () => {
  const cap = captureConsole();
  try {
    await Promise.all([listLane("first", 1), listLane("middle", 2), listLane("last", 3)]);
  } finally {
    cap.restore();
  }
});

Deno.test("Zoho fault matrix: summary", () => {
  printSummary("zoho_faults", tally);
  assert.equal(tally.duplicates, 0);
  assert.equal(tally.lost, 0);
});
