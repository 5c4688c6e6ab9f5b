/**
 * Fault matrix, Xero side: for each Xero endpoint the sync uses (token, connections, contacts
 * get/put, invoices get/put/post), each fault (429 with Retry-After 0 and 1 s, 500, 503, a reply
 * slower than the client's timeout, a dropped connection after Xero did the work, malformed JSON,
 * an expired token) at the first, a middle and the last call of a run; then reruns until done,
 * and the invariant: one matching bill per eligible purchase order, nothing lost or duplicated.
 */
import assert from "node:assert/strict";
import { startStack } from "../helpers.ts";
import { checkInvariant, record } from "./invariant.ts";
import {
  calibrate,
  dataset,
  KINDS,
  OVERRIDES,
  pool,
  runScenario,
  runUntilDone,
  type Scenario,
  scenarioName,
  scenarios,
  XERO_TARGETS,
} from "./fault_matrix.ts";
import { captureConsole, newTally, printSummary } from "./harness.ts";

const tally = newTally();
const RUN = { window: "since_last_sync", mode: "create_and_update" } as const;
let calls: Promise<Map<string, number>> | undefined;

for (const target of XERO_TARGETS) {
  const what = target.phase === "reconcile"
    ? `${target.endpoint} while reconciling lost creates`
    : target.endpoint;
  Deno.test(`Xero ${what}: every fault at the first, middle and last call; reruns finish with one bill per order`, async () => {
    calls ??= calibrate();
    const all = scenarios([target], await calls);
    const cap = captureConsole();
    try {
      const problems = (await pool(all, 12, (sc: Scenario) => runScenario(sc, tally)))
        .filter(Boolean);
      assert.deepEqual(problems, [], `${problems.length} of ${all.length} scenarios failed`);
      assert.ok(all.length >= KINDS.length, all.map(scenarioName).join("\n"));
    } finally {
      cap.restore();
    }
  });
}

Deno.test("Xero stores bills only after every attempt timed out: the immediate rerun waits for them instead of creating second bills", async () => {
  const s = await startStack({
    records: dataset(),
    overrides: {
      ...OVERRIDES,
      xero: { ...OVERRIDES.xero, retry: { attempts: 2, maxWaitMs: 2_000 } },
      engine: { ...OVERRIDES.engine, unconfirmedWaitMs: 3_000 },
    },
  });
  const cap = captureConsole();
  try {
    // Each create waits 2.5 s at Xero before it is stored; the client gives up after 2 × 0.6 s.
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "delay", delayMs: 2_500, times: 6 });
    const first = await s.run(RUN);
    assert.equal(first.counts.created, 0);
    const second = await s.run(RUN);
    assert.equal(s.xeroSim.counts["invoices.put"], 6, "no create was sent again");
    assert.ok(
      second.results.some((r) => /not confirmed/.test(r.message)),
      "some still unconfirmed",
    );
    await runUntilDone(s, 20);
    tally.faults++;
    const msg = record(
      tally,
      await checkInvariant({
        zohoRecords: s.zohoSim.records,
        bills: s.xeroSim.invoices(),
        kv: s.ctx.kv,
      }),
    );
    assert.equal(msg, "", msg);
  } finally {
    cap.restore();
    await s.close();
  }
});

Deno.test("Xero fault matrix: summary", () => {
  printSummary("xero_faults", tally);
  assert.equal(tally.duplicates, 0);
  assert.equal(tally.lost, 0);
});
