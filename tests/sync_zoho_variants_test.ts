/**
 * The sync end to end under each way Zoho may answer where its documents are silent (issue 20):
 * If-Modified-Since at a record's own second (excluded or included), and the single-record GET of
 * an id with no record (204, or 400 INVALID_DATA "the related id given seems to be invalid"). The
 * product must be right whichever Zoho does: the same bills, the same outcomes, no extra writes.
 */
import assert from "node:assert/strict";
import { ORG_SETTINGS } from "../sandbox/demo_org.ts";
import { ZOHO_BOUNDARY_VARIANTS } from "../sandbox/zoho.ts";
import { billsByPo, makeOrders, type Stack, startStack, TEST_ENV } from "./helpers.ts";

const UNKNOWN_ID = "5876543999999999999";

const xeroWrites = (s: Stack) =>
  (s.xeroSim.counts["invoices.put"] ?? 0) + (s.xeroSim.counts["invoices.post"] ?? 0);

function button(s: Stack, id: string) {
  return s.app.request(`/api/purchase-orders/${id}/sync`, {
    method: "POST",
    headers: { authorization: `Bearer ${TEST_ENV.SYNC_API_TOKEN}` },
  });
}

const RUN = { window: "since_last_sync", mode: "create_and_update" } as const;

for (const variant of ZOHO_BOUNDARY_VARIANTS) {
  const label = `same-second If-Modified-Since ${variant.ifModifiedSinceSameSecond}, ` +
    `unknown id GET ${variant.unknownRecordGet}`;

  Deno.test(`Zoho with ${label}: create, rerun, edit, deleted record, unknown id`, async () => {
    const orders = makeOrders(6);
    orders[5].Add_to_Xero = false;
    const s = await startStack({ records: orders, zoho: variant });
    try {
      const first = await s.run(RUN);
      assert.equal(first.status, "completed");
      assert.equal(first.counts.created, 5);
      assert.equal(first.counts.skipped, 1);

      s.xeroSim.resetCounts();
      s.zohoSim.resetCounts();
      const rerun = await s.run(RUN);
      assert.equal(rerun.status, "completed");
      assert.equal(rerun.counts.total, 0, "our own write-back is not a change");
      assert.equal(s.xeroSim.totalCalls(), 0);
      assert.equal(s.zohoSim.counts.get ?? 0, 0);

      const edited = String(orders[2].id);
      s.zohoSim.edit(edited, { PO_Number: "PO-EDITED" });
      s.xeroSim.resetCounts();
      const afterEdit = await s.run(RUN);
      assert.deepEqual(
        afterEdit.results.map((r) => [r.purchaseOrderId, r.outcome]),
        [[edited, "updated"]],
      );
      assert.equal(xeroWrites(s), 1);
      assert.ok(s.xeroSim.invoices().some((i) => i.InvoiceNumber === "PO-EDITED"));

      // Deleted in Zoho, then named by a webhook: never a failure; by default its bill is left
      // and the run says so (lib/sync/stages/lifecycle.ts).
      const deleted = String(orders[3].id);
      const billBefore = JSON.stringify(
        s.xeroSim.invoices().find((i) => String(i.Url).endsWith(deleted)),
      );
      s.zohoSim.records.delete(deleted);
      await s.engine.enqueue([deleted]);
      s.xeroSim.resetCounts();
      const afterDelete = await s.run(RUN);
      assert.equal(afterDelete.status, "completed");
      const gone = afterDelete.results.find((r) => r.purchaseOrderId === deleted);
      assert.equal(gone?.outcome, "skipped");
      assert.deepEqual(gone?.reasons, [
        "The purchase order was deleted in Zoho CRM; its bill PO-1004 was left in Xero (setting: leave the bill)",
      ]);
      assert.equal(xeroWrites(s), 0);
      assert.equal(
        JSON.stringify(s.xeroSim.invoices().find((i) => String(i.Url).endsWith(deleted))),
        billBefore,
        "the deleted record's bill is left as it was",
      );
      assert.deepEqual(await s.engine.retrySet(), [], "nothing left to retry");

      // The "Sync to Xero" button for an id Zoho does not know: 404, whichever way Zoho says so.
      for (const id of [UNKNOWN_ID, deleted]) {
        const res = await button(s, id);
        assert.equal(res.status, 404, id);
        const body = await res.json();
        assert.equal(body.outcome, "skipped");
        assert.match(body.message, /no purchase order with this id/);
      }

      assert.equal(s.xeroSim.invoices().length, 5);
      for (const [id, n] of billsByPo(s)) assert.equal(n, 1, `purchase order ${id} has ${n} bills`);
    } finally {
      await s.close();
    }
  });

  Deno.test(`Zoho with ${label}: records on the listing's boundary seconds are neither lost nor synced twice`, async () => {
    // Without write-back nothing moves Modified_Time, so the second run's If-Modified-Since (the
    // watermark less a minute) falls exactly on A's second, and C shares B's (the watermark's).
    const [a, b, c] = makeOrders(3);
    a.Modified_Time = "2025-06-01T09:59:00+00:00";
    b.Modified_Time = "2025-06-01T10:00:00+00:00";
    const s = await startStack({
      records: [a, b],
      zoho: variant,
      settings: { ...ORG_SETTINGS, writeBack: { enabled: false } },
    });
    try {
      const first = await s.run(RUN);
      assert.equal(first.counts.created, 2);
      assert.equal(first.watermark.after, b.Modified_Time);

      // C was saved in the very second of B, after the first run had listed.
      s.zohoSim.upsert({ ...c, Modified_Time: b.Modified_Time });
      s.xeroSim.resetCounts();
      s.zohoSim.resetCounts();
      const second = await s.run(RUN);
      assert.equal(second.status, "completed");
      assert.deepEqual(
        second.results.map((r) => [r.purchaseOrderId, r.outcome]),
        [[String(c.id), "created"]],
      );
      assert.equal(xeroWrites(s), 1, "A and B are not written again");
      // One read (its lines in bulk, or the GET): A and B, unchanged, are not read at all.
      assert.equal(
        (s.zohoSim.counts.get ?? 0) + (s.zohoSim.counts.coql ?? 0),
        1,
        "only C is fetched",
      );

      s.zohoSim.edit(String(a.id), { PO_Number: "PO-A-EDITED" });
      const third = await s.run(RUN);
      assert.deepEqual(
        third.results.map((r) => [r.purchaseOrderId, r.outcome]),
        [[String(a.id), "updated"]],
      );
      assert.equal(s.xeroSim.invoices().length, 3);
      assert.ok(s.xeroSim.invoices().some((i) => i.InvoiceNumber === "PO-A-EDITED"));
      for (const [id, n] of billsByPo(s)) assert.equal(n, 1, `purchase order ${id} has ${n} bills`);
    } finally {
      await s.close();
    }
  });
}
