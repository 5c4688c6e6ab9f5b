/**
 * Crash safety of the sync: interrupt it at each step and run again. However it stopped, no
 * purchase order gets a second bill and none is lost.
 */
import assert from "node:assert/strict";
import { keys } from "../lib/store/keys.ts";
import { listAll } from "../lib/store/kv.ts";
import { makeOrders, startStack } from "./helpers.ts";

type Stack = Awaited<ReturnType<typeof startStack>>;

function billsPerOrder(s: Stack): Map<string, number> {
  const out = new Map<string, number>();
  for (const inv of s.xeroSim.invoices()) {
    const id = String(inv.Url ?? "").split("/").pop() ?? "";
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

/** Every order has exactly one bill, and KV and Zoho point at that bill. */
async function assertExactlyOnce(s: Stack, orders: Record<string, unknown>[]) {
  const per = billsPerOrder(s);
  for (const o of orders) assert.equal(per.get(String(o.id)), 1, `order ${o.id}`);
  assert.equal(s.xeroSim.invoices().length, orders.length);
  const byUrlId = new Map(
    s.xeroSim.invoices().map((i) => [String(i.Url).split("/").pop(), i.InvoiceID]),
  );
  for (const o of orders) {
    const state = (await s.ctx.kv.get<{ invoiceId: string }>(keys.billMapping(String(o.id)))).value;
    assert.equal(state?.invoiceId, byUrlId.get(String(o.id)), `KV mapping of ${o.id}`);
    assert.equal(s.zohoSim.records.get(String(o.id))?.Xero_Bill_ID, byUrlId.get(String(o.id)));
  }
}

Deno.test("Xero accepted the bills but the answer never came back: the rerun adopts them", async () => {
  const orders = makeOrders(12);
  const s = await startStack({ records: orders });
  try {
    // Xero stores the batch, then the connection drops before any reply, on every attempt.
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "drop", times: 3 });
    const first = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(first.counts.failed, 12);
    assert.equal(s.xeroSim.invoices().length, 12, "Xero holds the bills; KV does not know them");
    assert.equal((await listAll(s.ctx.kv, keys.billIntentPrefix())).length, 12);
    const second = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(second.counts.failed, 0);
    assert.equal(second.counts.created, 0, "nothing created twice");
    await assertExactlyOnce(s, orders);
    assert.equal((await listAll(s.ctx.kv, keys.billIntentPrefix())).length, 0);
  } finally {
    await s.close();
  }
});

Deno.test("a dropped answer retried with the same Idempotency-Key creates nothing twice", async () => {
  const orders = makeOrders(7);
  const s = await startStack({ records: orders });
  try {
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "drop", times: 1 });
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(run.counts.created, 7);
    await assertExactlyOnce(s, orders);
  } finally {
    await s.close();
  }
});

Deno.test("KV recorded the bills but the write-back to Zoho failed: the rerun writes back only", async () => {
  const orders = makeOrders(6);
  const s = await startStack({ records: orders });
  try {
    s.zohoSim.fault({ endpoint: "update", kind: "500", times: 3 });
    const first = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(first.counts.created, 6);
    assert.ok(
      first.results.every((r) => r.warnings?.some((w) => /write the sync status back/.test(w))),
    );
    assert.equal(s.zohoSim.records.get(String(orders[0].id))?.Xero_Bill_ID ?? null, null);
    s.xeroSim.resetCounts();
    const second = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(second.counts.unchanged, 6);
    assert.equal(
      (s.xeroSim.counts["invoices.put"] ?? 0) + (s.xeroSim.counts["invoices.post"] ?? 0),
      0,
    );
    await assertExactlyOnce(s, orders);
  } finally {
    await s.close();
  }
});

Deno.test("the listing fails on a middle page: nothing half-done, the rerun syncs everything", async () => {
  const orders = makeOrders(450); // three pages of 200
  const s = await startStack({ records: orders });
  try {
    // A slow first page gives the test time to break the second one.
    s.zohoSim.fault({ endpoint: "list", kind: "delay", delayMs: 300, times: 1 });
    const start = await s.engine.startRun(
      { window: "since_last_sync", mode: "create_and_update" },
      "api",
    );
    assert.ok(start.started);
    while ((s.zohoSim.counts.list ?? 0) < 1) await new Promise((r) => setTimeout(r, 5));
    s.zohoSim.fault({ endpoint: "list", kind: "500", times: 3 });
    const first = await start.done;
    assert.equal(first.status, "failed");
    assert.match(first.message ?? "", /INTERNAL_ERROR|Zoho/);
    assert.equal(s.xeroSim.invoices().length, 0);
    const second = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(second.counts.created, 450);
    await assertExactlyOnce(s, orders);
  } finally {
    await s.close();
  }
});

Deno.test("Xero's daily limit pauses the run cleanly, with the watermark only past done records", async () => {
  const orders = makeOrders(120);
  const s = await startStack({ records: orders });
  try {
    // Enough calls for the token, contacts and a first batch, then the day is over.
    s.xeroSim.setDayLimitRemaining(4);
    const first = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(first.status, "paused");
    assert.match(first.message ?? "", /daily limit/);
    const done = s.xeroSim.invoices().length;
    assert.ok(done < 120, `${done} bills`);
    assert.equal(first.counts.created, done);
    // The watermark stands at the last record that is done, so the next run starts there.
    const lastDone = orders.map((o) => String(o.id)).filter((id) => billsPerOrder(s).has(id));
    const times = lastDone.map((id) => String(s.zohoSim.records.get(id)!.Modified_Time));
    assert.ok(first.watermark.after === null || times.length > 0);
    for (const [, n] of billsPerOrder(s)) assert.equal(n, 1);
  } finally {
    await s.close();
  }
});
