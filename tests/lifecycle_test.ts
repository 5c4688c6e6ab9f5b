/**
 * Zoho → Xero lifecycle (lib/sync/stages/lifecycle.ts): an order deleted, cancelled or unticked
 * after its bill exists. "leave" keeps the bill and says so; "void_or_delete" deletes a draft and
 * voids an unpaid approved bill; a paid bill is never touched. Each is a result row of the run.
 */
import assert from "node:assert/strict";
import { ORG_SETTINGS } from "../sandbox/demo_org.ts";
import type { RecordResult } from "../lib/sync/types.ts";
import { SettingsSchema } from "../lib/mapping/settings.ts";
import { toValues, validate } from "../routes/pages/settings_form.ts";
import { makeOrders, startStack } from "./helpers.ts";

type Stack = Awaited<ReturnType<typeof startStack>>;
type Action = "leave" | "void_or_delete";

const billOf = (s: Stack, poId: string) =>
  s.xeroSim.invoices().find((i) => String(i.Url ?? "").endsWith(`/${poId}`))!;

async function setLifecycle(s: Stack, action: Action) {
  const saved = await s.engine.saveSettings({
    ...ORG_SETTINGS,
    lifecycle: { deleted: action, cancelled: action, unticked: action },
  });
  assert.ok(saved.ok);
}

async function tick(s: Stack) {
  const start = await s.engine.tick("cron");
  assert.ok(start.started);
  const run = await start.done;
  await s.engine.idle();
  return { ...run, results: await s.engine.getResults(run.id) };
}

/**
 * Orders 0-2 have draft bills: 0 deleted, 1 cancelled, 2 unticked. Order 3's bill is approved
 * and it is cancelled; order 4's bill is paid and the order deleted; order 5 is left alone.
 */
async function scenario(action: Action) {
  const orders = makeOrders(6, { seed: 11 });
  const ids = orders.map((o) => String(o.id));
  const s = await startStack({ records: orders });
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    await setLifecycle(s, action);
    // Settings changed: a run settles that first, so the next one shows only the lifecycle.
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    s.xeroSim.setInvoiceStatus(billOf(s, ids[3]).InvoiceID, "AUTHORISED");
    s.xeroSim.setInvoiceStatus(billOf(s, ids[4]).InvoiceID, "AUTHORISED");
    s.xeroSim.setInvoiceStatus(billOf(s, ids[4]).InvoiceID, "PAID");
    const paidBefore = JSON.stringify(billOf(s, ids[4]));
    const untouched = JSON.stringify(billOf(s, ids[5]));

    s.zohoSim.records.delete(ids[0]);
    s.zohoSim.edit(ids[1], { Status: "Cancelled" });
    s.zohoSim.edit(ids[2], { Add_to_Xero: false });
    s.zohoSim.edit(ids[3], { Status: "Cancelled" });
    s.zohoSim.records.delete(ids[4]);

    // Preview first: the lifecycle rows lead, and nothing is written.
    s.xeroSim.resetCounts();
    const preview = await s.run({ window: "since_last_sync", mode: "preview" });
    const lead = preview.results.slice(0, 5).map((r) => r.purchaseOrderId).sort();
    assert.deepEqual(lead, ids.slice(0, 5).sort(), "lifecycle rows come first");
    assert.ok(preview.results.slice(0, 5).every((r) => r.lifecycle));
    assert.ok(preview.results.every((r) => r.message.startsWith("Preview")));
    assert.equal(s.xeroSim.counts["invoices.post"] ?? 0, 0, "a preview writes nothing");
    assert.equal(billOf(s, ids[1]).Status, "DRAFT");

    const run = await tick(s);
    const byId = new Map<string, RecordResult>(run.results.map((r) => [r.purchaseOrderId, r]));
    return { s, ids, run, byId, paidBefore, untouched };
  } catch (err) {
    await s.close();
    throw err;
  }
}

Deno.test("lifecycle, default 'leave the bill': every bill stays, and the run says so", async () => {
  const { s, ids, run, byId, paidBefore, untouched } = await scenario("leave");
  try {
    assert.equal(run.status, "completed", run.message);
    const expect: Array<[number, string, string]> = [
      [0, "deleted", "The purchase order was deleted in Zoho CRM"],
      [1, "cancelled", "The purchase order is cancelled in Zoho CRM"],
      [2, "unticked", "'Add to Xero' was unticked after the bill was created"],
      [3, "cancelled", "The purchase order is cancelled in Zoho CRM"],
      [4, "deleted", "The purchase order was deleted in Zoho CRM"],
    ];
    for (const [i, c, text] of expect) {
      const r = byId.get(ids[i]);
      assert.ok(r, `a result row for order ${i}`);
      assert.equal(r.outcome, "skipped", `order ${i}`);
      assert.deepEqual(r.lifecycle, { case: c, action: "left" }, `order ${i}`);
      assert.match(
        r.reasons[0],
        new RegExp(`^${text.replace(/[()']/g, ".")}; its bill PO-\\d+ was left in Xero`),
      );
      assert.ok(r.bill?.url.includes(billOf(s, ids[i]).InvoiceID), "the row links the bill");
    }
    assert.equal(billOf(s, ids[0]).Status, "DRAFT");
    assert.equal(billOf(s, ids[1]).Status, "DRAFT");
    assert.equal(billOf(s, ids[2]).Status, "DRAFT");
    assert.equal(billOf(s, ids[3]).Status, "AUTHORISED");
    assert.equal(JSON.stringify(billOf(s, ids[4])), paidBefore, "the paid bill is untouched");
    assert.equal(JSON.stringify(billOf(s, ids[5])), untouched);
    // The cancelled draft was not updated either.
    assert.equal(s.xeroSim.counts["invoices.post"] ?? 0, 0);
  } finally {
    await s.close();
  }
});

Deno.test("lifecycle, 'void or delete': drafts deleted, approved voided, paid never touched", async () => {
  const { s, ids, run, byId, paidBefore, untouched } = await scenario("void_or_delete");
  try {
    assert.equal(run.status, "completed", run.message);
    for (const i of [0, 1, 2]) {
      const r = byId.get(ids[i])!;
      assert.equal(r.outcome, "updated", `order ${i}: ${JSON.stringify(r)}`);
      assert.equal(r.lifecycle?.action, "deleted");
      assert.equal(r.bill?.status, "DELETED");
      assert.match(r.message, /^Bill PO-\d+ deleted in Xero: \S/);
      assert.equal(billOf(s, ids[i]).Status, "DELETED", `order ${i}`);
    }
    assert.deepEqual(byId.get(ids[0])!.lifecycle, { case: "deleted", action: "deleted" });
    assert.deepEqual(byId.get(ids[1])!.lifecycle, { case: "cancelled", action: "deleted" });
    assert.deepEqual(byId.get(ids[2])!.lifecycle, { case: "unticked", action: "deleted" });
    const voided = byId.get(ids[3])!;
    assert.deepEqual(voided.lifecycle, { case: "cancelled", action: "voided" });
    assert.equal(billOf(s, ids[3]).Status, "VOIDED");
    const paid = byId.get(ids[4])!;
    assert.equal(paid.outcome, "skipped");
    assert.deepEqual(paid.lifecycle, { case: "deleted", action: "kept" });
    assert.match(paid.reasons[0], /has a payment in Xero, so it was not changed/);
    assert.equal(JSON.stringify(billOf(s, ids[4])), paidBefore, "the paid bill is untouched");
    assert.equal(JSON.stringify(billOf(s, ids[5])), untouched);
    assert.ok(!byId.has(ids[5]));
    // Zoho shows the bill's new status on the orders that still exist.
    assert.equal(s.zohoSim.records.get(ids[1])!.Xero_Bill_Status, "DELETED");
    assert.equal(s.zohoSim.records.get(ids[3])!.Xero_Bill_Status, "VOIDED");

    // Done once: the next tick finds nothing to do and writes nothing to Xero.
    s.xeroSim.resetCounts();
    const again = await tick(s);
    assert.equal(again.counts.total, 0, JSON.stringify(again.results));
    assert.equal(s.xeroSim.counts["invoices.post"] ?? 0, 0);
  } finally {
    await s.close();
  }
});

Deno.test("a deleted order named by Zoho's notification is handled without waiting for the tick", async () => {
  const orders = makeOrders(2, { seed: 5 });
  const s = await startStack({ records: orders, listen: true });
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    await setLifecycle(s, "void_or_delete");
    const id = String(orders[0].id);
    s.zohoSim.records.delete(id);
    const res = await fetch(`${s.url}/api/zoho/notify`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${s.env.SYNC_API_TOKEN}`,
      },
      body: JSON.stringify({ module: "Purchase_Orders", operation: "delete", ids: [id] }),
    });
    assert.equal(res.status, 202);
    await res.body?.cancel();
    await s.engine.idle();
    assert.equal(billOf(s, id).Status, "DELETED");
    assert.equal(billOf(s, String(orders[1].id)).Status, "DRAFT");
  } finally {
    await s.close();
  }
});

Deno.test("settings: 'leave the bill' by default, Xero's fields named, both editable in the form", () => {
  const d = SettingsSchema.parse({});
  assert.deepEqual(d.lifecycle, { deleted: "leave", cancelled: "leave", unticked: "leave" });
  assert.equal(d.writeBack.fields.billStatus, "Xero_Bill_Status");
  assert.equal(d.writeBack.fields.amountPaid, "Xero_Amount_Paid");
  assert.equal(d.writeBack.fields.amountDue, "Xero_Amount_Due");
  assert.equal(d.writeBack.fields.fullyPaidOn, "Xero_Fully_Paid_On");

  const values = toValues(d);
  values["lifecycle.cancelled"] = "void_or_delete";
  values["writeBack.fields.amountPaid"] = "Paid_In_Xero";
  const ok = validate(values, d);
  assert.ok(ok.ok);
  const saved = SettingsSchema.parse(ok.input);
  assert.equal(saved.lifecycle.cancelled, "void_or_delete");
  assert.equal(saved.lifecycle.deleted, "leave");
  assert.equal(saved.writeBack.fields.amountPaid, "Paid_In_Xero");

  values["lifecycle.deleted"] = "burn";
  const bad = validate(values, d);
  assert.ok(!bad.ok);
  assert.ok(bad.errors["lifecycle.deleted"]?.length);
});
