/**
 * API calls are the cost that matters (Xero allows 60 a minute): count them exactly.
 */
import assert from "node:assert/strict";
import { makeOrders, startStack } from "./helpers.ts";

const sum = (counts: Record<string, number>, prefix: string) =>
  Object.entries(counts).filter(([k]) => k.startsWith(prefix)).reduce((a, [, n]) => a + n, 0);

Deno.test("1,000 new purchase orders with 200 vendors: API calls within budget", async () => {
  const vendors = Array.from({ length: 200 }, (_, i) => ({
    id: String(5876543000000200000n + BigInt(i)),
    name: `Vendor ${String(i).padStart(3, "0")} Pty Ltd`,
  }));
  const orders = makeOrders(1000, { vendors, seed: 7 });
  const s = await startStack({ records: orders });
  try {
    const first = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(first.status, "completed");
    assert.equal(first.counts.created, 1000);
    const invoiceCalls = sum(s.xeroSim.counts, "invoices");
    const contactCalls = sum(s.xeroSim.counts, "contacts");
    console.log(
      `first run: xero invoices ${invoiceCalls}, contacts ${contactCalls}; zoho ${
        JSON.stringify(s.zohoSim.counts)
      }`,
    );
    // 20 creates (50 a call) and one read of the organisation's bills: a fresh KV looks for ours first.
    assert.ok(invoiceCalls <= 21, `Xero invoice calls: ${invoiceCalls}`);
    // One lookup round for every vendor at the start, then creates batch by batch for eligible
    // orders only (a contact is never made for an order that will be skipped).
    assert.ok(contactCalls <= 12, `Xero contact calls: ${contactCalls}`);
    // Each page starts on the last record of the one before (the check that nothing shifted).
    assert.ok((s.zohoSim.counts.list ?? 0) <= 6, `Zoho list calls: ${s.zohoSim.counts.list}`);
    // Line items in bulk: 50 orders a COQL call (one probe first), no single-record GET.
    assert.equal(s.zohoSim.counts.get ?? 0, 0);
    assert.ok((s.zohoSim.counts.coql ?? 0) <= 21, `Zoho COQL calls: ${s.zohoSim.counts.coql}`);
    assert.ok(s.zohoSim.totalCredits() <= 50, `Zoho credits: ${s.zohoSim.totalCredits()}`);
    assert.equal(
      new Set(s.xeroSim.contacts().map((c) => c.ContactNumber).filter(Boolean)).size,
      200,
    );

    s.zohoSim.resetCounts();
    s.xeroSim.resetCounts();
    const second = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(second.status, "completed");
    assert.equal(second.counts.total, 0);
    // Lists the first run's 1,000 write-backs again (pages overlap by a record or two): 6 pages.
    assert.ok(s.zohoSim.totalCalls() <= 6, `Zoho calls: ${JSON.stringify(s.zohoSim.counts)}`);
    assert.equal(s.xeroSim.totalCalls(), 0);
    assert.equal(second.apiCalls.xero, 0);
  } finally {
    await s.close();
  }
});
