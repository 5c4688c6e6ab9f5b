/**
 * The sync engine end to end: app code against both simulators over HTTP, real KV (DESIGN §7).
 */
import assert from "node:assert/strict";
import { keys } from "../lib/store/keys.ts";
import { listAll } from "../lib/store/kv.ts";
import { billsByPo, makeOrders, type Stack, withStack } from "./helpers.ts";

function assertNoDuplicates(s: Stack) {
  for (const [id, n] of billsByPo(s)) assert.equal(n, 1, `purchase order ${id} has ${n} bills`);
}

const xeroWrites = (s: Stack) =>
  (s.xeroSim.counts["invoices.put"] ?? 0) + (s.xeroSim.counts["invoices.post"] ?? 0);

Deno.test("first run: one bill per eligible record, the rest skipped with reasons", async () => {
  const orders = makeOrders(8);
  orders[5].Add_to_Xero = false;
  orders[6].Vendor_Name = null;
  orders[7].Purchase_Items = [];
  await withStack({ records: orders }, async (s) => {
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(run.status, "completed");
    assert.deepEqual(run.counts, {
      total: 8,
      created: 5,
      updated: 0,
      unchanged: 0,
      skipped: 3,
      failed: 0,
    });
    const bills = billsByPo(s);
    assert.equal(bills.size, 5);
    for (const o of orders.slice(0, 5)) assert.equal(bills.get(String(o.id)), 1);
    const byId = new Map(run.results.map((r) => [r.purchaseOrderId, r]));
    assert.deepEqual(byId.get(String(orders[5].id))?.reasons, ["'Add to Xero' is not ticked"]);
    assert.deepEqual(byId.get(String(orders[6].id))?.reasons, ["No vendor (Client Name) is set"]);
    assert.deepEqual(byId.get(String(orders[7].id))?.reasons, [
      "The purchase order has no purchase items",
    ]);
    const created = byId.get(String(orders[0].id))!;
    assert.equal(created.message, "Bill PO-1001 created in Xero as a draft.");
    const inXero = s.xeroSim.invoices().find((i) => i.InvoiceID === created.bill?.invoiceId)!;
    assert.equal(inXero.Type, "ACCPAY");
    assert.equal(inXero.InvoiceNumber, "PO-1001");
    assert.equal(inXero.Status, "DRAFT");
    // Written back onto the Zoho record.
    const zoho = s.zohoSim.records.get(String(orders[0].id))!;
    assert.equal(zoho.Xero_Bill_ID, created.bill?.invoiceId);
    assert.equal(zoho.Xero_Sync_Status, "Synced");
    assert.equal(s.zohoSim.records.get(String(orders[5].id))!.Xero_Sync_Status, "Not synced");
    // Write-back never fires Zoho workflows.
    assert.deepEqual(s.zohoSim.workflowTriggers, {});
    assert.ok(run.watermark.after, "the watermark moved");
  });
});

Deno.test("second run with nothing changed: no Xero call, no Zoho GET", async () => {
  await withStack({ records: makeOrders(30) }, async (s) => {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    s.xeroSim.resetCounts();
    s.zohoSim.resetCounts();
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(run.status, "completed");
    assert.equal(run.counts.total, 0);
    assert.equal(s.xeroSim.totalCalls(), 0);
    assert.equal(s.zohoSim.counts.get ?? 0, 0);
    assert.equal(s.zohoSim.counts.update ?? 0, 0);
    assert.equal(s.xeroSim.invoices().length, 30);
  });
});

Deno.test("editing one record updates exactly that bill", async () => {
  const orders = makeOrders(10);
  await withStack({ records: orders }, async (s) => {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const before = new Map(s.xeroSim.invoices().map((i) => [i.InvoiceID, JSON.stringify(i)]));
    const target = String(orders[3].id);
    s.zohoSim.edit(target, { Subject: "Changed subject", PO_Number: "PO-EDITED" });
    s.xeroSim.resetCounts();
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.deepEqual(run.counts, {
      total: 1,
      created: 0,
      updated: 1,
      unchanged: 0,
      skipped: 0,
      failed: 0,
    });
    assert.equal(run.results[0].purchaseOrderId, target);
    assert.equal(s.xeroSim.invoices().length, 10);
    const changed = s.xeroSim.invoices().filter((i) =>
      before.get(i.InvoiceID) !== JSON.stringify(i)
    );
    assert.equal(changed.length, 1);
    assert.equal(changed[0].InvoiceNumber, "PO-EDITED");
    assert.equal(xeroWrites(s), 1);
  });
});

Deno.test("a record edited while a run is in progress is picked up by the next run", async () => {
  const orders = makeOrders(120);
  await withStack({ records: orders, zoho: { latencyMs: 5 } }, async (s) => {
    const start = await s.engine.startRun(
      { window: "since_last_sync", mode: "create_and_update" },
      "api",
    );
    assert.ok(start.started);
    // Edit a record of the first batch once that batch is in Xero, while later batches still run.
    while (s.xeroSim.invoices().length < 1) await new Promise((r) => setTimeout(r, 2));
    const target = String(orders[0].id);
    s.zohoSim.edit(target, { Subject: "Edited during the run", PO_Number: "PO-DURING" });
    const first = await start.done;
    assert.equal(first.counts.created, 120);
    const next = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.deepEqual(next.results.map((r) => [r.purchaseOrderId, r.outcome]), [[
      target,
      "updated",
    ]]);
    const bill = s.xeroSim.invoices().find((i) => String(i.Url).endsWith(target))!;
    assert.equal(bill.InvoiceNumber, "PO-DURING");
    assertNoDuplicates(s);
  });
});

Deno.test("a record whose bill failed is retried by the next run after the watermark moved", async () => {
  const orders = makeOrders(5);
  await withStack({ records: orders }, async (s) => {
    // Every attempt (the test stack allows 3) fails with a server error: the batch fails.
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "500", times: 3 });
    const first = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(first.status, "completed_with_errors");
    assert.equal(first.counts.failed, 5);
    assert.ok(first.results.every((r) => r.outcome === "failed" && /Xero/.test(r.message)));
    assert.ok(first.watermark.after, "the watermark moved past the failed records");
    assert.equal((await s.engine.retrySet()).length, 5);
    s.xeroSim.resetCounts();
    const second = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(second.counts.created, 5);
    assert.equal((await s.engine.retrySet()).length, 0);
    assert.equal(s.xeroSim.invoices().length, 5);
    assertNoDuplicates(s);
  });
});

Deno.test("create_only never updates an existing bill", async () => {
  const orders = makeOrders(4);
  await withStack({ records: orders }, async (s) => {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    s.zohoSim.edit(String(orders[1].id), { PO_Number: "PO-NEW-NUMBER" });
    s.zohoSim.upsert(
      makeOrders(1, { seed: 9, overrides: { PO_Number: "PO-9999" } }).map((o) => ({
        ...o,
        id: "5876543000009999999",
      }))[0],
    );
    s.xeroSim.resetCounts();
    const run = await s.run({ window: "since_last_sync", mode: "create_only" });
    assert.equal(run.counts.created, 1);
    assert.equal(run.counts.updated, 0);
    assert.equal(run.counts.skipped, 1);
    const skipped = run.results.find((r) => r.outcome === "skipped")!;
    assert.match(skipped.reasons[0], /only creates new bills/);
    assert.equal(s.xeroSim.counts["invoices.post"] ?? 0, 0);
    assert.ok(!s.xeroSim.invoices().some((i) => i.InvoiceNumber === "PO-NEW-NUMBER"));
  });
});

Deno.test("preview writes nothing anywhere and keeps the watermark", async () => {
  const orders = makeOrders(6);
  orders[2].Add_to_Xero = false;
  await withStack({ records: orders }, async (s) => {
    const kvBefore = await listAll(s.ctx.kv, []);
    const zohoBefore = JSON.stringify([...s.zohoSim.records.values()]);
    const run = await s.run({ window: "all", mode: "preview" });
    assert.equal(run.status, "completed");
    assert.equal(run.counts.created, 5);
    assert.equal(run.counts.skipped, 1);
    assert.ok(run.results.every((r) => r.message.startsWith("Preview")));
    assert.equal(s.xeroSim.invoices().length, 0);
    assert.equal(s.xeroSim.contacts().length, s.xeroSim.contacts().length);
    assert.equal(
      xeroWrites(s) + (s.xeroSim.counts["contacts.put"] ?? 0) +
        (s.xeroSim.counts["contacts.post"] ?? 0),
      0,
    );
    assert.equal(s.zohoSim.counts.update ?? 0, 0);
    assert.equal(JSON.stringify([...s.zohoSim.records.values()]), zohoBefore);
    assert.equal(run.watermark.after, null);
    // Only the run itself (and tokens and what Zoho offers, cached by the clients) were stored.
    const kvAfter = await listAll(s.ctx.kv, []);
    const newKeys = kvAfter.map((e) => String(e.key[0])).filter((k) =>
      !kvBefore.some((b) => String(b.key[0]) === k)
    );
    assert.deepEqual(
      [...new Set(newKeys)].filter((k) =>
        !["runs", "run_results", "tokens", "xero", "zoho"].includes(k)
      ),
      [],
    );
    assert.equal((await listAll(s.ctx.kv, keys.billMappingPrefix())).length, 0);
  });
});

Deno.test("an approved bill is never touched", async () => {
  const orders = makeOrders(2);
  await withStack({ records: orders }, async (s) => {
    const first = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const bill = first.results.find((r) => r.purchaseOrderId === String(orders[0].id))!.bill!;
    s.xeroSim.setInvoiceStatus(bill.invoiceId, "AUTHORISED");
    const snapshot = JSON.stringify(
      s.xeroSim.invoices().find((i) => i.InvoiceID === bill.invoiceId),
    );
    s.zohoSim.edit(String(orders[0].id), { PO_Number: "PO-AFTER-APPROVAL" });
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(run.counts.skipped, 1);
    assert.deepEqual(run.results[0].reasons, [
      "the bill is approved in Xero, so it is not changed",
    ]);
    assert.equal(
      JSON.stringify(s.xeroSim.invoices().find((i) => i.InvoiceID === bill.invoiceId)),
      snapshot,
    );
    assert.equal(s.xeroSim.counts["invoices.post"] ?? 0, 0);
  });
});

Deno.test("the button: one record created, then unchanged; 404 for an unknown id", async () => {
  const orders = makeOrders(3);
  await withStack({ records: orders }, async (s) => {
    const id = String(orders[1].id);
    const a = await s.engine.syncPurchaseOrder(id);
    assert.equal(a.result.outcome, "created");
    assert.equal(a.result.message, "Bill PO-1002 created in Xero as a draft.");
    const b = await s.engine.syncPurchaseOrder(id);
    assert.equal(b.result.outcome, "unchanged");
    assert.equal(b.result.bill?.invoiceId, a.result.bill?.invoiceId);
    const missing = await s.engine.syncPurchaseOrder("5876543999999999999");
    assert.equal(missing.notFound, true);
    assert.equal(s.xeroSim.invoices().length, 1);
  });
});
