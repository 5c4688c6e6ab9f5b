/**
 * The sync's promises where they were broken by sequences, not faults (issue 13): a busy record,
 * a renumbered order, a lock outlived by a slow create, an edit racing our write-back, windows and
 * modes that moved the watermark or marked work done, a status pulled back. Each test is the
 * reproduced sequence; each failed before the fix.
 */
import assert from "node:assert/strict";
import { keys } from "../lib/store/keys.ts";
import { acquire, release } from "../lib/store/locks.ts";
import { listAll } from "../lib/store/kv.ts";
import { ORG_SETTINGS } from "../sandbox/demo_org.ts";
import { billsOf, makeOrders, type Stack, withStack } from "./helpers.ts";

function assertOneBillEach(s: Stack, ids: string[]) {
  for (const id of ids) assert.equal(billsOf(s, id).length, 1, `bills of ${id}`);
}

const sync = { window: "since_last_sync", mode: "create_and_update" } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("a record another sync holds stays owed and is synced once it is free", async () => {
  const orders = makeOrders(3);
  const held = String(orders[1].id);
  await withStack({ records: orders, overrides: { engine: { lockWaitMs: 50 } } }, async (s) => {
    await acquire(s.ctx.kv, keys.recordLock(held), "someone-else", 60_000);
    await s.engine.enqueue([held]);
    const first = await s.run(sync);
    const busy = first.results.find((r) => r.purchaseOrderId === held)!;
    assert.equal(busy.outcome, "failed");
    assert.equal(busy.failedAt, "busy");
    assert.deepEqual(await s.engine.retrySet(), [held]);
    assert.equal(billsOf(s, held).length, 0);

    await release(s.ctx.kv, keys.recordLock(held), "someone-else");
    const second = await s.run(sync);
    assert.deepEqual(second.results.map((r) => [r.purchaseOrderId, r.outcome]), [[
      held,
      "created",
    ]]);
    assertOneBillEach(s, orders.map((o) => String(o.id)));
    assert.deepEqual(await s.engine.retrySet(), []);
  });
});

Deno.test("a create whose answer was lost, then a renumber: still one bill, renumbered", async () => {
  const orders = makeOrders(2);
  const id = String(orders[0].id);
  await withStack(
    { records: orders, overrides: { engine: { unconfirmedWaitMs: 0 } } },
    async (s) => {
      // Xero stores the bills and the answer never arrives, on every attempt.
      s.xeroSim.fault({ endpoint: "invoices.put", kind: "drop", times: 3 });
      const first = await s.run(sync);
      assert.equal(first.counts.failed, 2);
      assert.equal(billsOf(s, id).length, 1, "the lost create landed in Xero");
      s.zohoSim.edit(id, { PO_Number: "PO-RENUMBERED" });
      await s.run(sync);
      assertOneBillEach(s, orders.map((o) => String(o.id)));
      assert.equal(billsOf(s, id)[0].InvoiceNumber, "PO-RENUMBERED");
    },
  );
});

Deno.test("KV mapping lost, order renumbered, Xero_Bill_ID in Zoho: found by id, no second bill", async () => {
  const orders = makeOrders(2);
  const id = String(orders[0].id);
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    const billId = billsOf(s, id)[0].InvoiceID;
    assert.equal(s.zohoSim.records.get(id)!.Xero_Bill_ID, billId);
    await s.ctx.kv.delete(keys.billMapping(id));
    s.zohoSim.edit(id, { PO_Number: "PO-AFTER-LOSS" });
    const run = await s.run(sync);
    assert.deepEqual(run.results.map((r) => [r.purchaseOrderId, r.outcome]), [[id, "updated"]]);
    assertOneBillEach(s, orders.map((o) => String(o.id)));
    assert.equal(billsOf(s, id)[0].InvoiceID, billId);
    assert.equal(billsOf(s, id)[0].InvoiceNumber, "PO-AFTER-LOSS");
  });
});

Deno.test("write-back off and the whole KV lost: the bills are found again by their link", async () => {
  const orders = makeOrders(4);
  const id = String(orders[2].id);
  await withStack(
    { records: orders, settings: { ...ORG_SETTINGS, writeBack: { enabled: false } } },
    async (s) => {
      await s.run(sync);
      assert.equal(s.xeroSim.invoices().length, 4);
      // A new deployment: nothing of the sync's state is left (connections are seeded again).
      for (const prefix of [["bills"], ["bill_intent"], ["reconciled"], ["watermark"], ["runs"]]) {
        for (const e of await listAll(s.ctx.kv, prefix)) await s.ctx.kv.delete(e.key);
      }
      s.zohoSim.edit(id, { PO_Number: "PO-NEW-HOME" });
      const run = await s.run({ window: "all", mode: "create_and_update" });
      assert.equal(run.counts.created, 0);
      assertOneBillEach(s, orders.map((o) => String(o.id)));
      assert.equal(billsOf(s, id)[0].InvoiceNumber, "PO-NEW-HOME");
    },
  );
});

Deno.test("a create slower than the record lock is never sent twice", async () => {
  const orders = makeOrders(3);
  const id = String(orders[0].id);
  await withStack(
    {
      records: orders,
      overrides: { engine: { recordLockMs: 300, lockWaitMs: 100 } },
    },
    async (s) => {
      s.xeroSim.fault({ endpoint: "invoices.put", kind: "delay", delayMs: 1500, times: 1 });
      const start = await s.engine.startRun(sync, "api");
      assert.ok(start.started);
      await sleep(900); // the lock (300 ms) would have lapsed three times over
      const button = await s.engine.syncPurchaseOrder(id);
      assert.equal(button.result.outcome, "failed");
      assert.equal(button.result.failedAt, "busy");
      await start.done;
      await s.engine.idle();
      assertOneBillEach(s, orders.map((o) => String(o.id)));
    },
  );
});

Deno.test("a line edit made while our write-back is on its way is synced by the next run", async () => {
  const orders = makeOrders(3);
  const id = String(orders[1].id);
  await withStack({ records: orders, zoho: { latencyMs: 2 } }, async (s) => {
    // The bills stay in Xero's hands for a while; the edit lands after the read, before the PUT.
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "delay", delayMs: 600, times: 1 });
    const start = await s.engine.startRun(sync, "api");
    assert.ok(start.started);
    await sleep(300);
    const items = structuredClone(s.zohoSim.records.get(id)!.Purchase_Items) as Array<
      Record<string, unknown>
    >;
    items[0].Description = "Edited while syncing";
    s.zohoSim.edit(id, { Purchase_Items: items });
    await start.done;
    await s.engine.idle();
    await s.run(sync);
    const lines = billsOf(s, id)[0].LineItems;
    assert.ok(lines.some((l) => l.Description === "Edited while syncing"), JSON.stringify(lines));
    assertOneBillEach(s, orders.map((o) => String(o.id)));
  });
});

Deno.test("a webhook entry queued again during its batch is not deleted with the first", async () => {
  const orders = makeOrders(2);
  const id = String(orders[0].id);
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    s.xeroSim.fault({ endpoint: "invoices.post", kind: "delay", delayMs: 500, times: 1 });
    s.zohoSim.edit(id, { PO_Number: "PO-FIRST-EDIT" });
    await s.engine.enqueue([id]);
    const start = await s.engine.tick("webhook");
    assert.ok(start.started);
    await sleep(250);
    await s.engine.enqueue([id]); // Zoho's webhook for a second edit, while the first is in Xero
    await start.done;
    await s.engine.idle();
    const { runs } = await s.engine.listRuns({ limit: 5 });
    const passes = runs.filter((r) => r.trigger === "webhook");
    assert.equal(passes.length, 2, "the second notification got its own pass");
  });
});

Deno.test("'last N days' does not move the watermark past an older unsynced change", async () => {
  const day = 86_400_000;
  let clock = Date.now() - 10 * day;
  const orders = makeOrders(3);
  const [a, b] = [String(orders[0].id), String(orders[1].id)];
  await withStack({ records: orders, zoho: { now: () => clock } }, async (s) => {
    await s.run(sync);
    clock = Date.now() - 5 * day;
    s.zohoSim.edit(a, { PO_Number: "PO-OLDER-EDIT" });
    clock = Date.now();
    s.zohoSim.edit(b, { PO_Number: "PO-RECENT-EDIT" });
    const recent = await s.run({ window: "last_days", days: 1, mode: "create_and_update" });
    assert.deepEqual(recent.results.map((r) => r.purchaseOrderId), [b]);
    await s.run(sync);
    assert.equal(billsOf(s, a)[0].InvoiceNumber, "PO-OLDER-EDIT");
    assert.equal(billsOf(s, b)[0].InvoiceNumber, "PO-RECENT-EDIT");
  });
});

Deno.test("an update a create-only run left is made by the next normal run", async () => {
  const orders = makeOrders(2);
  const id = String(orders[0].id);
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    s.zohoSim.edit(id, { PO_Number: "PO-LATER" });
    const createOnly = await s.run({ window: "since_last_sync", mode: "create_only" });
    assert.equal(createOnly.counts.skipped, 1);
    const normal = await s.run(sync);
    assert.deepEqual(normal.results.map((r) => [r.purchaseOrderId, r.outcome]), [[id, "updated"]]);
    assert.equal(billsOf(s, id)[0].InvoiceNumber, "PO-LATER");
  });
});

Deno.test("a record skipped for an unmapped tax syncs once the mapping is added", async () => {
  const orders = makeOrders(6);
  await withStack({ records: orders, settings: { taxMappings: [] } }, async (s) => {
    const first = await s.run(sync);
    const skipped = first.results.filter((r) => r.outcome === "skipped");
    assert.ok(skipped.length > 0, "the generated orders carry taxes");
    assert.ok(skipped.every((r) => r.reasons.some((x) => /tax/i.test(x))));
    const saved = await s.engine.saveSettings(ORG_SETTINGS);
    assert.ok(saved.ok);
    const all = await s.run({ window: "all", mode: "preview" });
    assert.equal(all.counts.skipped, 0, JSON.stringify(all.results.map((r) => r.reasons)));
    const next = await s.run(sync);
    assert.equal(next.counts.created, skipped.length);
    assertOneBillEach(s, orders.map((o) => String(o.id)));
  });
});

Deno.test("an update keeps a SUBMITTED bill SUBMITTED", async () => {
  const orders = makeOrders(1);
  const id = String(orders[0].id);
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    const bill = billsOf(s, id)[0];
    s.xeroSim.setInvoiceStatus(bill.InvoiceID as string, "SUBMITTED" as "AUTHORISED");
    s.zohoSim.edit(id, { PO_Number: "PO-EDITED-AFTER-SUBMISSION" });
    const run = await s.run(sync);
    assert.equal(run.counts.updated, 1);
    assert.equal(billsOf(s, id)[0].Status, "SUBMITTED");
  });
});

Deno.test("a write-back Zoho refuses (INVALID_DATA) fails the record and keeps it owed", async () => {
  const orders = makeOrders(1);
  const id = String(orders[0].id);
  const fields = [
    "Add_to_Xero",
    "Xero_Bill_ID",
    { api_name: "Xero_Bill_Number", data_type: "integer" },
    "Xero_Bill_Status",
    "Xero_Sync_Status",
    "Xero_Sync_Error",
    "Xero_Last_Synced",
  ];
  await withStack({ records: orders, zoho: { fields } }, async (s) => {
    const run = await s.run(sync);
    const r = run.results[0];
    assert.equal(r.outcome, "failed");
    assert.match(r.message, /write-back/i);
    assert.equal(r.bill?.invoiceNumber, String(orders[0].PO_Number));
    assert.deepEqual(await s.engine.retrySet(), [id]);
    assertOneBillEach(s, [id]);
  });
});

Deno.test("a supplier archived in Xero: its orders go to a live contact in the same run", async () => {
  const vendor = { id: "5876543000000777001", name: "Archived Supplies Ltd" };
  const orders = makeOrders(3, { vendors: [vendor] });
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    const first = billsOf(s, String(orders[0].id))[0].Contact.ContactID;
    s.xeroSim.setContactStatus(first, "ARCHIVED");
    s.zohoSim.edit(String(orders[0].id), { PO_Number: "PO-AFTER-ARCHIVE" });
    const extra = makeOrders(1, { seed: 5, vendors: [vendor] })[0];
    s.zohoSim.upsert({ ...extra, id: "5876543000001999999", PO_Number: "PO-NEW-AFTER-ARCHIVE" });
    const run = await s.run(sync);
    assert.equal(run.counts.failed, 0, JSON.stringify(run.results.map((r) => r.message)));
    assert.equal(run.counts.created, 1);
    assert.equal(run.counts.updated, 1);
    for (const id of [String(orders[0].id), "5876543000001999999"]) {
      const contactId = billsOf(s, id)[0].Contact.ContactID;
      assert.notEqual(contactId, first);
      const contact = s.xeroSim.contacts().find((c) => c.ContactID === contactId)!;
      assert.equal(contact.ContactStatus, "ACTIVE");
    }
  });
});

Deno.test("a record read ahead, then synced by the button, is not sent back to its older content", async () => {
  const orders = makeOrders(4);
  const [a, b, c] = orders.map((o) => String(o.id));
  await withStack({ records: orders, overrides: { engine: { batchSize: 2 } } }, async (s) => {
    await s.run(sync);
    for (const id of [a, b, c]) s.zohoSim.edit(id, { PO_Number: `PO-V2-${id.slice(-2)}` });
    // Batch 1's update sits in Xero while batch 2 (with c) is read ahead.
    s.xeroSim.fault({ endpoint: "invoices.post", kind: "delay", delayMs: 800, times: 1 });
    const start = await s.engine.startRun(sync, "api");
    assert.ok(start.started);
    await sleep(400);
    s.zohoSim.edit(c, { PO_Number: "PO-V3" });
    const button = await s.engine.syncPurchaseOrder(c);
    assert.equal(button.result.outcome, "updated");
    await start.done;
    assert.equal(billsOf(s, c)[0].InvoiceNumber, "PO-V3");
  });
});

Deno.test("a bill submitted in Xero while our update is on its way stays SUBMITTED", async () => {
  const orders = makeOrders(1);
  const id = String(orders[0].id);
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    s.zohoSim.edit(id, { PO_Number: "PO-EDITED-BEFORE-SUBMISSION" });
    // The update was decided while the bill was DRAFT; the accountant submits it meanwhile.
    s.xeroSim.fault({ endpoint: "invoices.post", kind: "delay", delayMs: 800, times: 1 });
    const start = await s.engine.startRun(sync, "api");
    assert.ok(start.started);
    await sleep(400);
    s.xeroSim.setInvoiceStatus(billsOf(s, id)[0].InvoiceID as string, "SUBMITTED");
    await start.done;
    const bill = billsOf(s, id)[0];
    assert.equal(bill.Status, "SUBMITTED");
    assert.equal(bill.InvoiceNumber, "PO-EDITED-BEFORE-SUBMISSION");
  });
});
