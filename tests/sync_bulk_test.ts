/**
 * Line items in bulk (COQL): a fresh sync of 1,000 orders costs at most 0.05 Zoho credits an
 * order and makes exactly the bills the single-record GET makes; Zoho refusing COQL, or naming its
 * line-item module otherwise, falls back to the GET with the same bills; an order whose bulk lines
 * do not reproduce its totals is read with the GET. Every run says what it cost (`usage`).
 */
import assert from "node:assert/strict";
import { generatePurchaseOrder, seededRandom } from "../sandbox/po_generator.ts";
import type { ZohoSimOptions } from "../sandbox/zoho.ts";
import type { XeroSimInvoice } from "../sandbox/xero_org.ts";
import { makeOrders, startStack } from "./helpers.ts";
import { Agent, startUiStack } from "./ui_helpers.ts";

const vendors = Array.from({ length: 200 }, (_, i) => ({
  id: String(5876543000000200000n + BigInt(i)),
  name: `Vendor ${String(i).padStart(3, "0")} Pty Ltd`,
}));

/** Orders of every shape the mapping knows, a few taxed on the order as a whole. */
function orders(n: number): Record<string, unknown>[] {
  const out = makeOrders(n, { vendors, seed: 11 });
  const rand = seededRandom(5);
  for (let i = 0; i < Math.max(1, Math.floor(n / 100)); i++) {
    out[i * 7] = generatePurchaseOrder(rand, { PO_Number: `PO-DOC-${i}` }, {
      id: out[i * 7].id as string,
      vendors,
      documentTax: { name: "GST", percentage: 15 },
    });
  }
  return out;
}

/** A bill as an accountant sees it: everything but the ids and times Xero gives it. */
function billsOf(invoices: XeroSimInvoice[]): Map<string, string> {
  const drop = new Set(["InvoiceID", "UpdatedDateUTC", "ContactID", "LineItemID"]);
  return new Map(
    invoices.map((b) => [
      b.InvoiceNumber,
      JSON.stringify(b, (k, v) => (drop.has(k) ? undefined : v)),
    ]),
  );
}

async function freshSync(records: Record<string, unknown>[], zoho: ZohoSimOptions = {}) {
  const s = await startStack({ records: structuredClone(records), zoho });
  try {
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    return {
      run,
      bills: billsOf(s.xeroSim.invoices()),
      counts: { ...s.zohoSim.counts },
      credits: s.zohoSim.totalCredits(),
      peakComplex: s.zohoSim.concurrency.peakComplex,
    };
  } finally {
    await s.close();
  }
}

Deno.test("1,000 new orders: line items read in bulk at ≤ 0.05 credits an order, same bills as the GET", async () => {
  const records = orders(1000);
  const bulk = await freshSync(records);
  const single = await freshSync(records, { coql: { refuse: "INVALID_QUERY" } });
  console.log(
    `bulk: ${bulk.credits} credits ${JSON.stringify(bulk.counts)}; ` +
      `refused: ${single.credits} credits ${JSON.stringify(single.counts)}`,
  );

  assert.equal(bulk.run.status, "completed");
  assert.equal(bulk.run.counts.created, 1000);
  assert.ok(bulk.credits / 1000 <= 0.05, `Zoho credits per order: ${bulk.credits / 1000}`);
  assert.equal(bulk.run.usage?.zohoCredits, bulk.credits, "the run counts what Zoho charged");
  // Only the orders taxed as a whole (their rate is not in the listing) are read one by one.
  assert.equal(bulk.counts.get, 10);
  assert.ok(bulk.peakComplex <= 10, `COQL calls at once: ${bulk.peakComplex}`);

  assert.equal(single.run.status, "completed");
  assert.equal(single.counts.get, 1000);
  assert.equal(single.bills.size, 1000);
  assert.deepEqual(bulk.bills, single.bills);
});

Deno.test("Zoho refusing COQL or naming the module otherwise: the GET, asked once, same bills", async () => {
  const records = orders(120);
  const reference = await freshSync(records, { coql: { refuse: "INVALID_QUERY" } });
  for (
    const zoho of [
      { coql: { refuse: "OAUTH_SCOPE_MISMATCH" as const } },
      { coql: { lineItemModule: "Purchase_Order_Line_Items" } },
    ]
  ) {
    const s = await startStack({ records: structuredClone(records), zoho });
    try {
      const first = await s.run({ window: "all", mode: "create_and_update" });
      assert.equal(first.status, "completed", JSON.stringify(zoho));
      assert.equal(s.zohoSim.counts.get, 120);
      assert.deepEqual(billsOf(s.xeroSim.invoices()), reference.bills);
      const probes = s.zohoSim.counts.coql ?? 0;
      assert.ok(probes >= 1 && probes <= 2, `probes: ${probes}`);
      // The answer is remembered: the next run does not ask again.
      s.zohoSim.edit(records[3].id as string, { Due_Date: "2026-12-31" });
      const second = await s.run({ window: "since_last_sync", mode: "create_and_update" });
      assert.equal(second.counts.updated, 1);
      assert.equal(s.zohoSim.counts.coql ?? 0, probes);
      const status = await (await s.app.request("/health")).json();
      assert.equal(status.zoho.state, "connected", "a refused COQL is no broken connection");
    } finally {
      await s.close();
    }
  }
  // Under v7's name the probe finds the module and bulk reads go on.
  const other = await freshSync(records, { coql: { lineItemModule: "Purchased_Items" } });
  assert.ok((other.counts.get ?? 0) <= 2, `GETs: ${other.counts.get}`);
  assert.deepEqual(other.bills, reference.bills);
});

Deno.test("an order whose bulk lines do not add up to its totals is read with the GET", async () => {
  const records = orders(60);
  const edited = records[20].id as string;
  const s = await startStack({ records: structuredClone(records) });
  try {
    // Probe first, so the run's first COQL call is a read of the first batch's lines.
    await s.ctx.zoho.readLineItems!([edited]);
    const probed = s.zohoSim.counts.coql ?? 0;
    s.zohoSim.fault({ endpoint: "coql", kind: "delay", delayMs: 400, times: 2 });
    const start = await s.engine.startRun({ window: "all", mode: "create_and_update" }, "api");
    assert.ok(start.started);
    // Once the run listed the orders and asked for their lines, someone changes a quantity:
    // the lines come back new, the listing's totals are old.
    for (let i = 0; i < 400 && (s.zohoSim.counts.coql ?? 0) <= probed; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const rec = s.zohoSim.records.get(edited)!;
    const items = structuredClone(rec.Purchase_Items) as Array<Record<string, unknown>>;
    items[0].Quantity = Number(items[0].Quantity) + 3;
    const { withZohoTotals } = await import("../sandbox/po_generator.ts");
    const next = withZohoTotals({ ...rec, Purchase_Items: items });
    s.zohoSim.edit(edited, {
      Purchase_Items: next.Purchase_Items,
      Sub_Total: next.Sub_Total,
      Tax: next.Tax,
      Grand_Total: next.Grand_Total,
    });
    const run = await start.done;
    assert.equal(run.status, "completed");
    assert.equal(run.counts.created, 60);
    // The edited order, and the order taxed as a whole, were read one by one; no other.
    assert.equal(s.zohoSim.counts.get, 2);
    const bill = s.xeroSim.invoices().find((b) => b.Url?.endsWith(edited))!;
    assert.equal(bill.Total, next.Grand_Total, "the bill is the order as it is now");
    assert.equal(bill.LineItems[0].Quantity, items[0].Quantity);
  } finally {
    await s.close();
  }
});

Deno.test("a run records and shows its usage: Zoho credits and calls by kind, Xero calls and bytes", async () => {
  const s = await startUiStack({ records: orders(30) });
  try {
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const api = await (await fetch(`${s.url}/api/sync-runs/${run.id}`, {
      headers: { authorization: `Bearer ${s.env.SYNC_API_TOKEN}` },
    })).json();
    assert.equal(api.usage.zohoCredits, s.zohoSim.totalCredits());
    assert.deepEqual(api.usage.zohoCalls, {
      fields: 1,
      list: 1,
      coql: s.zohoSim.counts.coql,
      get: 1,
      update: 1,
    });
    assert.equal(api.usage.xeroCalls, api.apiCalls.xero);
    assert.ok(api.usage.xeroEgressBytes > 1000, `Xero bytes: ${api.usage.xeroEgressBytes}`);

    const agent = new Agent(s.url);
    await agent.login();
    const page = await agent.get(`/runs/${run.id}`);
    assert.match(page.text, new RegExp(`Zoho credits</dt><dd[^>]*>${api.usage.zohoCredits}`));
    assert.match(page.text, /bulk reads \d+/);
    assert.match(page.text, new RegExp(`${api.usage.xeroCalls} calls, [\\d.]+ KB received`));
  } finally {
    await s.close();
  }
});

Deno.test("COQL failing (an outage, not a refusal): that batch is read with the GET, bulk stays on", async () => {
  const records = orders(50);
  const s = await startStack({ records: structuredClone(records) });
  try {
    await s.ctx.zoho.readLineItems!([records[1].id as string]); // probed: bulk reads work
    s.zohoSim.fault({ endpoint: "coql", kind: "500", times: 3 }); // the client's whole retry budget
    const run = await s.run({ window: "all", mode: "create_and_update" });
    assert.equal(run.status, "completed");
    assert.equal(run.counts.created, 50);
    assert.equal(s.zohoSim.counts.get, 50);
    const lines = await s.ctx.zoho.readLineItems!([records[1].id as string]);
    assert.ok(lines?.get(records[1].id as string)?.length, "bulk reads are still on");
  } finally {
    await s.close();
  }
});

Deno.test("ZOHO_MAX_CONCURRENCY holds the app to the org's limit: no call refused for it", async () => {
  const records = orders(150);
  const s = await startStack({
    records,
    env: { ZOHO_MAX_CONCURRENCY: "3" },
    zoho: { concurrency: { perOrg: 3 }, coql: { refuse: "INVALID_QUERY" }, latencyMs: 5 },
  });
  try {
    const run = await s.run({ window: "all", mode: "create_and_update" });
    assert.equal(run.status, "completed");
    assert.equal(run.counts.created, 150);
    assert.equal(s.zohoSim.concurrency.refused, 0, "no 429 for going over the limit");
    assert.equal(s.zohoSim.concurrency.peak, 3);
  } finally {
    await s.close();
  }
  const { loadConfig } = await import("../lib/config.ts");
  const { TEST_ENV } = await import("./helpers.ts");
  assert.equal(loadConfig(TEST_ENV).ZOHO_MAX_CONCURRENCY, 10);
  assert.throws(
    () => loadConfig({ ...TEST_ENV, ZOHO_MAX_CONCURRENCY: "40" }),
    /ZOHO_MAX_CONCURRENCY: must be a whole number 1-25/,
  );
});

Deno.test("Zoho's 429 with Retry-After holds back every call of the client, not only the refused one", async () => {
  const records = orders(2);
  const [a, b] = records.map((r) => r.id as string);
  const s = await startStack({ records });
  try {
    await s.ctx.zoho.fieldNames(); // token minted
    s.zohoSim.fault({ endpoint: "get", kind: "429", retryAfterSec: 1 });
    const t0 = Date.now();
    const first = s.ctx.zoho.getPurchaseOrder(a);
    await new Promise((r) => setTimeout(r, 150));
    const second = s.ctx.zoho.getPurchaseOrder(b);
    await new Promise((r) => setTimeout(r, 450));
    assert.equal(s.zohoSim.counts.get, 1, "nothing is sent while Zoho asked to wait");
    assert.equal(((await first) as { id: string }).id, a);
    assert.equal(((await second) as { id: string }).id, b);
    assert.ok(Date.now() - t0 >= 1000, `took ${Date.now() - t0} ms`);
    assert.equal(s.zohoSim.counts.get, 3);
  } finally {
    await s.close();
  }
});

Deno.test("bulk lines stand in for the GET's only when they add up and carry what the mapping reads", async () => {
  const { recordFromBulk } = await import("../lib/sync/stages/bulk.ts");
  const { SettingsSchema } = await import("../lib/mapping/mod.ts");
  const settings = SettingsSchema.parse({});
  const rand = seededRandom(3);
  const order = generatePurchaseOrder(rand, {}, { items: 3, vendors });
  const { Purchase_Items: items, ...header } = order as Record<string, unknown> & {
    Purchase_Items: Record<string, unknown>[];
  };
  const lines = () => structuredClone(items);
  assert.deepEqual(recordFromBulk(header, lines(), settings), order, "the GET's record, exactly");

  const cases: Array<[string, Record<string, unknown>[] | undefined, Record<string, unknown>?]> = [
    ["no lines", []],
    ["a line missing", lines().slice(1)],
    ["a line read twice", [...lines(), lines()[0]]],
    [
      "a product without its name",
      lines().map((l, i) => (i ? l : {
        ...l,
        Product_Name: { id: (l.Product_Name as { id: string }).id },
      })),
    ],
    ["a quantity that is not the GET's", lines().map((l, i) => (i ? l : { ...l, Quantity: 999 }))],
    ["a column Zoho never answered", lines().map(({ Description: _, ...l }) => l)],
    ["taxes without their rates", lines().map((l) => ({ ...l, Line_Tax: [] }))],
    ["totals that do not agree", lines(), { Grand_Total: Number(order.Grand_Total) + 1 }],
  ];
  for (const [what, bulk, patch] of cases) {
    // "taxes without their rates" only says something when a line is taxed.
    if (what.startsWith("taxes") && !items.some((l) => Number(l.Tax) !== 0)) continue;
    assert.equal(recordFromBulk({ ...header, ...patch }, bulk, settings), null, what);
  }
  // Taxed as a whole: the rate ($line_tax) is not in the listing.
  const whole = generatePurchaseOrder(rand, {}, {
    vendors,
    documentTax: { name: "GST", percentage: 15 },
  });
  const { Purchase_Items: wholeItems, $line_tax: _, ...wholeHeader } = whole as
    & Record<string, unknown>
    & {
      Purchase_Items: Record<string, unknown>[];
    };
  assert.ok(Number(whole.Tax) > 0);
  assert.equal(recordFromBulk(wholeHeader, wholeItems, settings), null, "a tax on the whole order");
});
