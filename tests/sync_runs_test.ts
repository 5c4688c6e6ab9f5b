/** Runs as a whole: one at a time, dead runs closed, webhook queue, watermark windows. */
import assert from "node:assert/strict";
import { keys } from "../lib/store/keys.ts";
import { saveRun } from "../lib/store/runs.ts";
import { emptyCounts } from "../lib/sync/types.ts";
import { makeOrders, reconnectZoho, startStack } from "./helpers.ts";

Deno.test("one run at a time: a second start names the running run", async () => {
  const s = await startStack({ records: makeOrders(150), zoho: { latencyMs: 5 } });
  try {
    const a = await s.engine.startRun({ window: "all", mode: "create_and_update" }, "page");
    const b = await s.engine.startRun({ window: "all", mode: "create_and_update" }, "api");
    assert.ok(a.started);
    assert.equal(b.started, false);
    assert.equal(b.runId, a.runId);
    const run = await a.done;
    assert.equal(run.counts.created, 150);
    assert.equal(run.trigger, "page");
    const c = await s.engine.startRun({ window: "all", mode: "preview" }, "api");
    assert.ok(c.started, "free again once the first finished");
    await c.done;
  } finally {
    await s.close();
  }
});

Deno.test("a run whose process died is closed by the next start, never left running", async () => {
  const s = await startStack({ records: makeOrders(3) });
  try {
    const old = new Date(Date.now() - 10 * 60_000).toISOString();
    await saveRun(s.ctx.kv, {
      id: "r000000001deadbeef",
      module: "Purchase_Orders",
      window: "since_last_sync",
      mode: "create_and_update",
      trigger: "cron",
      status: "running",
      startedAt: old,
      heartbeatAt: old,
      counts: emptyCounts(),
      watermark: { before: null, after: null },
      apiCalls: { zoho: 0, xero: 0 },
    });
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" }, "cron");
    assert.equal(run.counts.created, 3);
    const dead = await s.engine.getRun("r000000001deadbeef");
    assert.equal(dead?.status, "failed");
    assert.match(dead?.message ?? "", /Interrupted/);
  } finally {
    await s.close();
  }
});

Deno.test("webhook ids are queued and synced by the next pass, even if unchanged", async () => {
  const orders = makeOrders(5);
  const s = await startStack({ records: orders });
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    // A queued id is fetched even though its Modified_Time says nothing changed.
    const id = String(orders[2].id);
    await s.engine.enqueue([id]);
    assert.deepEqual(await s.engine.queued(), [id]);
    const start = await s.engine.tick("webhook");
    assert.ok(start.started);
    const run = await start.done;
    assert.equal(run.trigger, "webhook");
    const results = await s.engine.getResults(run.id);
    assert.deepEqual(results.map((r) => [r.purchaseOrderId, r.outcome]), [[id, "unchanged"]]);
    assert.deepEqual(await s.engine.queued(), []);
  } finally {
    await s.close();
  }
});

Deno.test("windows: last N days and all records", async () => {
  const orders = makeOrders(4);
  const s = await startStack({ records: orders });
  try {
    // Two records were last modified long ago.
    s.zohoSim.upsert({ ...orders[0], Modified_Time: "2020-01-01T10:00:00+00:00" });
    s.zohoSim.upsert({ ...orders[1], Modified_Time: "2020-01-02T10:00:00+00:00" });
    s.zohoSim.upsert({
      ...orders[2],
      Modified_Time: new Date().toISOString().slice(0, 19) + "+00:00",
    });
    s.zohoSim.upsert({
      ...orders[3],
      Modified_Time: new Date().toISOString().slice(0, 19) + "+00:00",
    });
    const recent = await s.run({ window: "last_days", days: 7, mode: "preview" });
    assert.equal(recent.counts.total, 2);
    assert.equal(recent.days, 7);
    const all = await s.run({ window: "all", mode: "preview" });
    assert.equal(all.counts.total, 4);
    const wm = (await s.ctx.kv.get(keys.watermark("Purchase_Orders"))).value;
    assert.equal(wm, null, "previews never move the watermark");
  } finally {
    await s.close();
  }
});

Deno.test("an 'all records' run after a sync shows every record: unchanged bills and skips with reasons", async () => {
  const orders = makeOrders(3);
  orders[2].Add_to_Xero = false;
  const s = await startStack({ records: orders });
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    s.zohoSim.resetCounts();
    const all = await s.run({ window: "all", mode: "preview" });
    const byId = new Map(all.results.map((r) => [r.purchaseOrderId, r]));
    assert.equal(all.counts.total, 3);
    assert.equal(byId.get(String(orders[0].id))?.outcome, "unchanged");
    assert.ok(byId.get(String(orders[0].id))?.bill?.invoiceId);
    assert.equal(byId.get(String(orders[2].id))?.outcome, "skipped");
    assert.deepEqual(byId.get(String(orders[2].id))?.reasons, ["'Add to Xero' is not ticked"]);
    assert.equal(s.zohoSim.counts.get ?? 0, 0, "nothing unchanged is read again");
  } finally {
    await s.close();
  }
});

Deno.test("a run paused for a Zoho reconnect says so, and goes on under the same id once Zoho is connected again", async () => {
  const orders = makeOrders(30, { seed: 64 });
  const s = await startStack({ records: orders });
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    s.zohoSim.revokeRefreshToken();
    orders.slice(0, 5).forEach((o, i) => s.zohoSim.edit(String(o.id), { PO_Number: `PO-R${i}` }));
    const paused = await s.run({ window: "all", mode: "create_and_update" });
    assert.equal(paused.status, "paused", paused.message);
    assert.equal(paused.waitingFor, "zoho");
    assert.match(paused.message ?? "", /reconnect/i);
    assert.match(paused.message ?? "", /goes on by itself once Zoho CRM is connected again/);
    // Not before: Zoho is still not connected.
    assert.equal(await s.engine.resumeStaleRuns(), undefined);

    // The admin reconnects Zoho on the connections page; the next tick goes on with the run.
    await reconnectZoho(s);
    assert.equal(await s.engine.resumeStaleRuns(), paused.id);
    await s.engine.idle();
    const run = (await s.engine.getRun(paused.id))!;
    assert.equal(run.status, "completed", run.message);
    assert.equal(run.resumes, 1);
    assert.equal(run.waitingFor, undefined);
    assert.equal(run.counts.total, 30);
    assert.equal(run.counts.updated, 5, JSON.stringify(run.counts));
    const numbers = s.xeroSim.invoices().map((b) => b.InvoiceNumber);
    for (let i = 0; i < 5; i++) assert.ok(numbers.includes(`PO-R${i}`), numbers.join());
    assert.equal(s.xeroSim.invoices().length, 30);
  } finally {
    await s.close();
  }
});

Deno.test("a paused run replaced by a new start is closed and says which run syncs what it had left", async () => {
  const orders = makeOrders(20, { seed: 65 });
  const s = await startStack({ records: orders });
  try {
    s.zohoSim.revokeRefreshToken();
    const paused = await s.run({ window: "all", mode: "create_and_update" });
    assert.equal(paused.status, "paused", paused.message);
    await reconnectZoho(s);
    // A person starts a run before the tick went on with the paused one.
    const next = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(next.status, "completed", next.message);
    const old = (await s.engine.getRun(paused.id))!;
    assert.equal(old.status, "failed");
    assert.equal(old.waitingFor, undefined);
    assert.match(old.message ?? "", new RegExp(`Replaced by run ${next.id}, which syncs`));
    assert.doesNotMatch(old.message ?? "", /goes on by itself/);
    // It never goes on again, and its plan is gone.
    assert.equal(await s.engine.resumeStaleRuns(), undefined);
    assert.equal((await s.ctx.kv.get(keys.runPlan(paused.id))).value, null);
    assert.equal(s.xeroSim.invoices().length, 20);
  } finally {
    await s.close();
  }
});

Deno.test("a paused run whose listing would have expired from KV is closed, not gone on with", async () => {
  const orders = makeOrders(10, { seed: 66 });
  const s = await startStack({ records: orders });
  try {
    s.zohoSim.revokeRefreshToken();
    const paused = await s.run({ window: "all", mode: "create_and_update" });
    assert.equal(paused.status, "paused", paused.message);
    await reconnectZoho(s);
    // Reconnected two weeks after the run began (the stored start is moved, not the clock).
    const twoWeeks = new Date(Date.now() - 14 * 86_400_000).toISOString();
    await s.ctx.kv.set(keys.run(paused.id), { ...paused, startedAt: twoWeeks });
    assert.equal(await s.engine.resumeStaleRuns(), undefined);
    const old = (await s.engine.getRun(paused.id))!;
    assert.equal(old.status, "failed");
    assert.match(old.message ?? "", /waited too long to go on/);
    assert.equal((await s.ctx.kv.get(keys.runPlan(paused.id))).value, null);
    // The next run syncs them all.
    const next = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(next.counts.created, 10, JSON.stringify(next.counts));
  } finally {
    await s.close();
  }
});
