/**
 * Xero → Zoho (lib/sync/bill_status.ts): a signed Xero webhook and the tick's safety net bring a
 * bill's status and payments back onto its purchase order, once, without fetching the record again.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { keys } from "../lib/store/keys.ts";
import { listAll } from "../lib/store/kv.ts";
import { makeOrders, startStack } from "./helpers.ts";

const KEY = "test-xero-webhook-key-0123456789abcdef";
type Stack = Awaited<ReturnType<typeof startStack>>;

const sign = (body: string, key = KEY) => createHmac("sha256", key).update(body).digest("base64");

function payload(events: Array<{ invoiceId: string; tenantId: string }>) {
  return JSON.stringify({
    events: events.map((e) => ({
      resourceUrl: `https://api.xero.com/api.xro/2.0/Invoices/${e.invoiceId}`,
      resourceId: e.invoiceId,
      eventDateUtc: new Date().toISOString(),
      eventType: "UPDATE",
      eventCategory: "INVOICE",
      tenantId: e.tenantId,
      tenantType: "ORGANISATION",
    })),
    firstEventSequence: 1,
    lastEventSequence: events.length,
    entropy: crypto.randomUUID(),
  });
}

async function deliver(s: Stack, body: string, signature = sign(body)) {
  const t0 = Date.now();
  const res = await fetch(`${s.url}/api/xero/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-xero-signature": signature },
    body,
  });
  return { status: res.status, text: await res.text(), ms: Date.now() - t0, headers: res.headers };
}

async function withStack(
  opts: Parameters<typeof startStack>[0],
  fn: (s: Stack) => Promise<void>,
) {
  const s = await startStack({ listen: true, env: { XERO_WEBHOOK_KEY: KEY }, ...opts });
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

const billOf = (s: Stack, poId: string) =>
  s.xeroSim.invoices().find((i) => String(i.Url ?? "").endsWith(`/${poId}`))!;

Deno.test("a correctly signed Xero event updates the purchase order once, even delivered twice", async () => {
  const orders = makeOrders(3);
  await withStack({ records: orders }, async (s) => {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const id = String(orders[1].id);
    const bill = billOf(s, id);
    s.xeroSim.setInvoiceStatus(bill.InvoiceID, "AUTHORISED");
    s.xeroSim.setInvoiceStatus(bill.InvoiceID, "PAID");
    s.zohoSim.resetCounts();
    s.xeroSim.resetCounts();

    const body = payload([{ invoiceId: bill.InvoiceID, tenantId: s.xeroSim.tenantId }]);
    const first = await deliver(s, body);
    assert.equal(first.status, 200);
    assert.equal(first.text, "", "Xero wants an empty body");
    assert.equal(first.headers.get("set-cookie"), null);
    assert.ok(first.ms < 5000, `answered in ${first.ms} ms`);
    await s.engine.idle();

    const po = s.zohoSim.records.get(id)!;
    const paid = billOf(s, id);
    assert.equal(po.Xero_Bill_Status, "PAID");
    assert.equal(po.Xero_Amount_Paid, paid.Total);
    assert.equal(po.Xero_Amount_Due, 0);
    assert.match(String(po.Xero_Fully_Paid_On), /^\d{4}-\d{2}-\d{2}$/);
    assert.equal(s.zohoSim.counts.update, 1, "one Zoho write");
    assert.deepEqual(s.zohoSim.workflowTriggers, {}, "no Zoho workflow fired");
    // The other orders were not touched.
    assert.notEqual(s.zohoSim.records.get(String(orders[0].id))!.Xero_Bill_Status, "PAID");

    // Xero delivers again (a retry): nothing more is written.
    const again = await deliver(s, body);
    assert.equal(again.status, 200);
    await s.engine.idle();
    assert.equal(s.zohoSim.counts.update, 1, "the repeat wrote nothing");
    assert.equal((await listAll(s.ctx.kv, keys.xeroEventPrefix())).length, 0, "no event left");
    assert.equal(s.xeroSim.counts["invoices.post"] ?? 0, 0, "the bill is never changed");
    assert.equal(s.xeroSim.counts["invoices.put"] ?? 0, 0);

    // The Zoho → Xero sync does not take our write for a person's edit.
    s.zohoSim.resetCounts();
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(run.counts.total, 0, JSON.stringify(run.results));
    assert.equal(s.zohoSim.counts.get ?? 0, 0, "the purchase order is not fetched again");
    assert.equal(s.zohoSim.counts.update ?? 0, 0);
    assert.equal(s.zohoSim.records.get(id)!.Xero_Bill_Status, "PAID");
  });
});

Deno.test("a wrong signature gets 401 and nothing is stored; without a key the route is 404", async () => {
  const orders = makeOrders(2);
  await withStack({ records: orders }, async (s) => {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const bill = billOf(s, String(orders[0].id));
    s.xeroSim.setInvoiceStatus(bill.InvoiceID, "AUTHORISED");
    s.zohoSim.resetCounts();
    const body = payload([{ invoiceId: bill.InvoiceID, tenantId: s.xeroSim.tenantId }]);
    for (
      const signature of [sign(body, "another-key"), "", sign(body + " "), `${sign(body)}x`]
    ) {
      const r = await deliver(s, body, signature);
      assert.equal(r.status, 401, `signature ${JSON.stringify(signature)}`);
    }
    const unsigned = await fetch(`${s.url}/api/xero/webhook`, { method: "POST", body });
    await unsigned.body?.cancel();
    assert.equal(unsigned.status, 401);
    await s.engine.idle();
    assert.equal((await listAll(s.ctx.kv, keys.xeroEventPrefix())).length, 0);
    assert.equal(s.zohoSim.counts.update ?? 0, 0);
    assert.notEqual(s.zohoSim.records.get(String(orders[0].id))!.Xero_Bill_Status, "AUTHORISED");
  });
  await withStack({ records: [], env: { XERO_WEBHOOK_KEY: "" } }, async (s) => {
    const body = payload([]);
    assert.equal((await deliver(s, body)).status, 404);
  });
});

Deno.test("Xero's intent-to-receive handshake passes", async () => {
  await withStack({ records: [] }, async (s) => {
    // Xero sends empty deliveries, some signed right and some wrong, and wants 200 / 401.
    for (let i = 0; i < 4; i++) {
      const body = payload([]);
      const good = await deliver(s, body);
      assert.equal(good.status, 200);
      assert.equal(good.text, "");
      const bad = await deliver(s, body, sign(body, `wrong-${i}`));
      assert.equal(bad.status, 401);
    }
  });
});

Deno.test("events of another organisation, and bills that are not ours, are ignored", async () => {
  const orders = makeOrders(2);
  await withStack({ records: orders }, async (s) => {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const bill = billOf(s, String(orders[0].id));
    s.xeroSim.setInvoiceStatus(bill.InvoiceID, "AUTHORISED");
    s.zohoSim.resetCounts();
    const body = payload([
      { invoiceId: bill.InvoiceID, tenantId: crypto.randomUUID() },
      { invoiceId: crypto.randomUUID(), tenantId: s.xeroSim.tenantId },
    ]);
    assert.equal((await deliver(s, body)).status, 200);
    await s.engine.idle();
    assert.equal(s.zohoSim.counts.update ?? 0, 0, "nothing written to Zoho");
    assert.equal((await listAll(s.ctx.kv, keys.xeroEventPrefix())).length, 0, "events dropped");
  });
});

Deno.test("500 bills paid while the webhook is down reach Zoho by the next tick: ≤ 3 Xero calls, ≤ 5 Zoho calls", async () => {
  const orders = makeOrders(500, { seed: 3 });
  await withStack({ records: orders }, async (s) => {
    const first = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(first.counts.created, 500);
    // A first tick looks once (the watermark starts here), as a deployed app's would have.
    const warm = await s.engine.tick("cron");
    if (warm.started) await warm.done;
    for (const inv of s.xeroSim.invoices()) {
      s.xeroSim.setInvoiceStatus(inv.InvoiceID, "AUTHORISED");
      s.xeroSim.setInvoiceStatus(inv.InvoiceID, "PAID");
    }
    s.zohoSim.resetCounts();
    s.xeroSim.resetCounts();

    const tick = await s.engine.tick("cron");
    assert.ok(tick.started);
    const run = await tick.done;
    await s.engine.idle();
    const xeroCalls = s.xeroSim.totalCalls() - run.apiCalls.xero;
    const zohoCalls = s.zohoSim.totalCalls() - run.apiCalls.zoho;
    console.log(
      `bill statuses: xero ${xeroCalls} ${JSON.stringify(s.xeroSim.counts)}, zoho ${zohoCalls} ${
        JSON.stringify(s.zohoSim.counts)
      }; run ${JSON.stringify(run.apiCalls)}`,
    );
    assert.ok(xeroCalls <= 3, `Xero calls for the bill statuses: ${xeroCalls}`);
    assert.ok(zohoCalls <= 5, `Zoho calls for the bill statuses: ${zohoCalls}`);
    for (const o of orders) {
      const po = s.zohoSim.records.get(String(o.id))!;
      assert.equal(po.Xero_Bill_Status, "PAID", `order ${o.id}`);
      assert.equal(po.Xero_Amount_Due, 0);
      assert.equal(po.Xero_Amount_Paid, billOf(s, String(o.id)).Total);
    }
    // The run of the same tick fetched nothing: our writes are not taken for edits.
    assert.equal(s.zohoSim.counts.get ?? 0, 0);
    assert.equal(run.counts.total, 0);
    assert.equal(s.xeroSim.counts["invoices.post"] ?? 0, 0);
    assert.deepEqual(s.zohoSim.workflowTriggers, {});

    const mark = await s.ctx.kv.get(keys.billStatusWatermark(s.xeroSim.tenantId));
    assert.ok(mark.value, "the safety net keeps its own watermark in KV");
    // The next tick has nothing to write.
    s.zohoSim.resetCounts();
    const next = await s.engine.tick("cron");
    if (next.started) await next.done;
    assert.equal(s.zohoSim.counts.update ?? 0, 0);
  });
});

Deno.test("the sandbox Xero's webhook: handshake, then a bill paid on its page shows PAID in Zoho", async () => {
  const orders = makeOrders(2, { seed: 9 });
  await withStack({ records: orders }, async (s) => {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const hookUrl = `${s.url}/api/xero/webhook`;
    // A key the app does not know fails Xero's intent-to-receive check; the right one passes.
    assert.equal(await s.xeroSim.configureWebhook({ url: hookUrl, key: "not-the-key" }), false);
    assert.equal(await s.xeroSim.configureWebhook({ url: hookUrl, key: KEY }), true);
    const handshake = s.xeroSim.webhookDeliveries.filter((d) => d.handshake).slice(-4);
    assert.deepEqual(handshake.map((d) => d.status), [200, 401, 200, 401]);

    const id = String(orders[0].id);
    const bill = billOf(s, id);
    for (const action of ["approve", "pay"]) {
      const res = await fetch(`${s.xeroSim.url}/sandbox/invoices/${bill.InvoiceID}`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `action=${action}`,
        redirect: "manual",
      });
      await res.body?.cancel();
      assert.equal(res.status, 303, action);
    }
    assert.equal(billOf(s, id).Status, "PAID");
    await s.xeroSim.flushWebhooks();
    await s.engine.idle();
    const po = s.zohoSim.records.get(id)!;
    assert.equal(po.Xero_Bill_Status, "PAID");
    assert.equal(po.Xero_Amount_Paid, billOf(s, id).Total);
    assert.equal(po.Xero_Amount_Due, 0);
    const sent = s.xeroSim.webhookDeliveries.filter((d) => !d.handshake);
    assert.ok(sent.length >= 1 && sent.every((d) => d.status === 200), JSON.stringify(sent));
    // A paid bill cannot be voided from the page.
    const res = await fetch(`${s.xeroSim.url}/sandbox/invoices/${bill.InvoiceID}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "action=void",
      redirect: "manual",
    });
    await res.body?.cancel();
    assert.equal(res.status, 409);
  });
});

Deno.test("only the fields that changed are written back", async () => {
  const orders = makeOrders(1, { seed: 4 });
  await withStack({ records: orders }, async (s) => {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const id = String(orders[0].id);
    const first = await s.engine.syncBillStatuses({ poll: true });
    assert.equal(first.written, 1, "the amounts of the new bill");
    assert.equal(s.zohoSim.records.get(id)!.Xero_Amount_Due, billOf(s, id).Total);
    // Someone overwrites the amount due in Zoho; Xero's amount does not change afterwards.
    s.zohoSim.records.set(id, { ...s.zohoSim.records.get(id)!, Xero_Amount_Due: 999 });
    s.xeroSim.setInvoiceStatus(billOf(s, id).InvoiceID, "AUTHORISED");
    s.zohoSim.resetCounts();
    const second = await s.engine.syncBillStatuses({ poll: true });
    assert.equal(second.written, 1);
    assert.equal(s.zohoSim.counts.update, 1);
    const po = s.zohoSim.records.get(id)!;
    assert.equal(po.Xero_Bill_Status, "AUTHORISED", "the status changed: written");
    assert.equal(po.Xero_Amount_Due, 999, "the amount due did not change: not written");
  });
});
