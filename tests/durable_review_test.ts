/**
 * Durable runs (lib/sync/engine.ts, lib/store/run_plan.ts) under the cases an outside review
 * found: a run resumed after its settings changed, two instances on one run, the run lease after
 * a lost execution, a listing chunk of long non-Latin texts, and a reconnect pause that the
 * connection's state cannot end.
 */
import assert from "node:assert/strict";
import { ORG_SETTINGS } from "../sandbox/demo_org.ts";
import { keys } from "../lib/store/keys.ts";
import { boot, type BootOverrides } from "../boot.ts";
import { loadConfig } from "../lib/config.ts";
import { billsByPo, makeOrders, reconnectZoho, startStack } from "./helpers.ts";

/** The stack on a KV file, so a second instance of the app can share it. */
async function sharedStack(records: Record<string, unknown>[], engine: BootOverrides["engine"]) {
  const dir = await Deno.makeTempDir({ prefix: "durable-review-" });
  const s = await startStack({
    records,
    env: { DENO_KV_PATH: `${dir}/kv.sqlite3` },
    overrides: { engine },
  });
  const others: Array<Awaited<ReturnType<typeof boot>>> = [];
  return {
    s,
    /** Another instance of the app on the same KV and simulators (its own memory). */
    async instance(more: BootOverrides["engine"] = {}) {
      const b = await boot(loadConfig(s.env), {
        zoho: { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 } },
        xero: { retry: { attempts: 3, maxWaitMs: 2000 } },
        engine: { lockWaitMs: 5000, ...engine, ...more },
      });
      others.push(b);
      return b;
    },
    async close() {
      for (const o of others) {
        await o.ctx.sync.idle().catch(() => {});
        await o.close();
      }
      await s.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test("a paused run that goes on after the checkbox setting changed bills what the new setting ticks, and loses none", async () => {
  // Even orders are ticked in the old checkbox field, odd ones in the new one.
  const orders: Record<string, unknown>[] = makeOrders(30, { seed: 15 }).map((o, i) => ({
    ...o,
    Add_to_Xero: i % 2 === 0,
    Bill_It: i % 2 === 1,
  }));
  const s = await startStack({ records: orders, overrides: { engine: { batchSize: 10 } } });
  try {
    // Zoho wants a reconnect right after the listing: the run pauses in its first batch.
    s.zohoSim.fault({ endpoint: "coql", kind: "hold" });
    const start = await s.engine.startRun(
      { window: "since_last_sync", mode: "create_and_update" },
      "api",
    );
    assert.ok(start.started);
    assert.ok(await s.zohoSim.whenHeld(10_000));
    s.zohoSim.revokeRefreshToken();
    s.zohoSim.expireAccessTokens();
    s.zohoSim.releaseHeld();
    const paused = await start.done;
    assert.equal(paused.status, "paused", paused.message);
    assert.equal(paused.waitingFor, "zoho");

    // While it waits, the admin corrects the checkbox field, then reconnects Zoho.
    const saved = await s.engine.saveSettings({ ...ORG_SETTINGS, checkboxField: "Bill_It" });
    assert.ok(saved.ok);
    await reconnectZoho(s);
    assert.equal(await s.engine.resumeStaleRuns(), paused.id);
    await s.engine.idle();
    const run = (await s.engine.getRun(paused.id))!;
    assert.match(run.status, /^completed/, run.message);

    // Each order ticked in the field in force has its bill, and none is said to be unticked.
    const bills = billsByPo(s);
    const missing = orders.filter((o) => o.Bill_It && !bills.has(String(o.id))).map((o) => o.id);
    assert.deepEqual(missing, [], "orders ticked in the field in force were not billed");
    const ticked = new Set(orders.filter((o) => o.Bill_It).map((o) => String(o.id)));
    const wrong = (await s.engine.getResults(run.id))
      .filter((r) => ticked.has(r.purchaseOrderId) && r.outcome === "skipped")
      .map((r) => `${r.purchaseOrderId}: ${r.message}`);
    assert.deepEqual(wrong, []);
  } finally {
    await s.close();
  }
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("an instance whose heartbeat is late but alive, and the one that goes on with its run, make each bill once", async () => {
  const orders = makeOrders(20, { seed: 16 });
  // This instance renews its heartbeat every 30 s; the other expects one every 100 ms, so the
  // run looks stopped to it (as when a heartbeat write failed or the instance was frozen).
  const w = await sharedStack(orders, {
    batchSize: 20,
    heartbeatMs: 30_000,
    runLeaseMs: 120_000,
    recordLockMs: 1_000,
    lockWaitMs: 500,
  });
  const s = w.s;
  try {
    // The first instance is sending its bills to Xero, slowly.
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "hold", delayMs: 20_000 });
    const start = await s.engine.startRun(
      { window: "since_last_sync", mode: "create_and_update" },
      "api",
    );
    assert.ok(start.started);
    assert.ok(await s.xeroSim.whenHeld(10_000));
    // Meanwhile someone renumbers an order: the other instance's bills are not the same request.
    s.zohoSim.edit(String(orders[0].id), { PO_Number: "PO-E1" });
    const other = (await w.instance({ heartbeatMs: 100 })).ctx.sync;
    await sleep(300);
    assert.equal(await other.resumeStaleRuns(), start.runId);
    await other.idle();
    s.xeroSim.releaseHeld();
    await start.done;
    await s.engine.idle();
    const twice = [...billsByPo(s)].filter(([, n]) => n > 1).map(([id]) => id);
    assert.deepEqual(twice, [], "purchase orders with more than one bill");

    // What the run could not do is said, and the next run does it: one bill each, up to date.
    const run = (await other.getRun(start.runId))!;
    for (const r of await other.getResults(start.runId)) {
      if (r.outcome === "failed") assert.match(r.message, /still running; it will be retried/);
    }
    assert.ok(run.status.startsWith("completed"), run.message);
    const next = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(next.counts.failed, 0, JSON.stringify(next.counts));
    const bills = billsByPo(s);
    assert.equal(bills.size, 20);
    assert.ok([...bills.values()].every((n) => n === 1));
    assert.ok(s.xeroSim.invoices().some((b) => b.InvoiceNumber === "PO-E1"));
  } finally {
    await w.close();
  }
});

Deno.test("an instance that lost its run to another does not take the run lease back after that run ended", async () => {
  const orders = makeOrders(10, { seed: 17 });
  const w = await sharedStack(orders, {
    batchSize: 10,
    heartbeatMs: 1_000,
    runLeaseMs: 120_000,
    recordLockMs: 500,
    lockWaitMs: 500,
  });
  const s = w.s;
  try {
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "hold", delayMs: 20_000 });
    const start = await s.engine.startRun(
      { window: "since_last_sync", mode: "create_and_update" },
      "api",
    );
    assert.ok(start.started);
    assert.ok(await s.xeroSim.whenHeld(10_000));
    // The other instance expects a heartbeat every 100 ms: the run looks stopped to it.
    const other = (await w.instance({ heartbeatMs: 100 })).ctx.sync;
    let took: string | undefined;
    for (let i = 0; i < 50 && !took; i++) {
      took = await other.resumeStaleRuns();
      if (!took) await sleep(50);
    }
    assert.equal(took, start.runId);
    await other.idle();
    const ended = (await other.getRun(start.runId))!;
    assert.notEqual(ended.status, "running");
    // The first instance is still alive (its heartbeat goes on) until its bills are answered.
    await sleep(2_500);
    s.xeroSim.releaseHeld();
    await start.done;
    await s.engine.idle();

    // The run has ended: a new run starts at once, not "a run is going on" for two minutes.
    const again = await s.engine.startRun(
      { window: "since_last_sync", mode: "create_and_update" },
      "page",
    );
    assert.ok(again.started, `refused: run ${again.runId} said to be going on`);
    await again.done;
  } finally {
    await w.close();
  }
});

Deno.test("a listing whose headers are long Japanese texts is kept in KV (a chunk is measured in bytes), and every order is billed", async () => {
  const jp = (n: number) => "発注書の件名と仕入先".repeat(30).slice(0, n);
  const vendors = [{ id: "5876543000000200001", name: `株式会社${jp(190)}` }];
  const orders = makeOrders(60, { seed: 18, vendors, overrides: { Subject: jp(255) } });
  const s = await startStack({ records: orders });
  try {
    const run = await s.run({ window: "all", mode: "create_and_update" });
    assert.match(run.status, /^completed/, run.message);
    assert.equal(run.counts.created, 60, JSON.stringify(run.counts));
    assert.equal(billsByPo(s).size, 60);
  } finally {
    await s.close();
  }
});

/** Someone removes the app's access to the organisation in Xero (Xero then answers 403). */
async function disconnectInXero(s: Awaited<ReturnType<typeof startStack>>) {
  const tokens = (s.ctx.xero as unknown as { tokens: { accessToken(): Promise<string> } }).tokens;
  const auth = { authorization: `Bearer ${await tokens.accessToken()}` };
  const conns = await (await fetch(`${s.xeroSim.url}/connections`, { headers: auth })).json();
  for (const c of conns as Array<{ id: string }>) {
    const res = await fetch(`${s.xeroSim.url}/connections/${c.id}`, {
      method: "DELETE",
      headers: auth,
    });
    await res.body?.cancel();
  }
}

Deno.test("a run paused because Xero refused the organisation does not go on again and again before anyone reconnects", async () => {
  const orders = makeOrders(30, { seed: 19 });
  const s = await startStack({ records: orders, overrides: { engine: { batchSize: 10 } } });
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    orders.forEach((o) => s.zohoSim.edit(String(o.id), { PO_Number: `${o.PO_Number}-B` }));
    await disconnectInXero(s);
    const paused = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(paused.status, "paused", paused.message);
    assert.equal(paused.waitingFor, "xero", paused.message);

    // Ticks and requests come (each at most once a minute or so); nobody has reconnected Xero.
    const credits = s.zohoSim.totalCredits();
    const tries: Array<string | undefined> = [];
    for (let i = 0; i < 5; i++) {
      tries.push(await s.engine.resumeStaleRuns());
      await s.engine.idle();
    }
    assert.deepEqual(tries, [undefined, undefined, undefined, undefined, undefined]);
    assert.equal(s.zohoSim.totalCredits() - credits, 0, "Zoho credits spent on nothing");
    let run = (await s.engine.getRun(paused.id))!;
    assert.equal(run.status, "paused");
    assert.match(run.message ?? "", /once Xero is connected again/);
    // It says when it tries again by itself, and does then (and pauses again: still refused).
    assert.match(run.message ?? "", /tries again by itself at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    await s.ctx.kv.set(keys.run(run.id), {
      ...run,
      resumeAt: new Date(Date.now() - 1).toISOString(),
    });
    assert.equal(await s.engine.resumeStaleRuns(), run.id);
    await s.engine.idle();
    run = (await s.engine.getRun(paused.id))!;
    assert.equal(run.status, "paused", run.message);
    assert.ok(Date.parse(run.resumeAt ?? "") > Date.now(), run.resumeAt);
  } finally {
    await s.close();
  }
});
