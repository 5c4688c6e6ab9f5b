/**
 * Bad data from Zoho: nulls, wrong types, huge text, thousands of lines, an unknown currency, a
 * deleted vendor, a deleted record. Each one becomes a clear per-record outcome (a skip with its
 * reason, a failure naming what Xero refused, or a bill when the data is merely odd), never a
 * crashed run; the good records around them still get their bills; the button answers each one
 * with a status and a sentence, never a 500.
 */
import assert from "node:assert/strict";
import type { RecordResult } from "../../lib/sync/types.ts";
import { withZohoTotals } from "../../sandbox/po_generator.ts";
import { makeOrders, startStack } from "../helpers.ts";
import {
  api,
  captureConsole,
  findSecrets,
  kvTexts,
  newTally,
  printSummary,
  secretsOf,
} from "./harness.ts";
import { checkInvariant, record } from "./invariant.ts";

const tally = newTally();

type Rec = Record<string, unknown>;
type Line = Record<string, unknown>;
const lines = (r: Rec) => r.Purchase_Items as Line[];

interface Case {
  name: string;
  mutate: (r: Rec) => Rec;
  expect: "created" | "skipped" | "failed";
  reason?: RegExp;
}

const CASES: Case[] = [
  {
    name: "vendor is null",
    mutate: (r) => ({ ...r, Vendor_Name: null }),
    expect: "skipped",
    reason: /No vendor/,
  },
  {
    name: "vendor deleted in Zoho (lookup left with an id only)",
    mutate: (r) => ({ ...r, Vendor_Name: { id: "5876543000000119999", name: null } }),
    expect: "created",
  },
  {
    name: "vendor lookup without an id",
    mutate: (r) => ({ ...r, Vendor_Name: { id: null, name: "Gone Ltd" } }),
    expect: "skipped",
    reason: /No vendor/,
  },
  {
    name: "vendor is a string, not a lookup",
    mutate: (r) => ({ ...r, Vendor_Name: "Acme Industrial Supply" }),
    expect: "skipped",
    reason: /lookup/,
  },
  {
    name: "purchase items are null",
    mutate: (r) => ({ ...r, Purchase_Items: null }),
    expect: "skipped",
    reason: /no purchase items/,
  },
  {
    name: "purchase items are a string",
    mutate: (r) => ({ ...r, Purchase_Items: "three boxes" }),
    expect: "skipped",
    reason: /not a list/,
  },
  {
    name: "quantity is text",
    mutate: (r) => ({ ...r, Purchase_Items: [{ ...lines(r)[0], Quantity: "a dozen" }] }),
    expect: "skipped",
    reason: /Quantity on line 1 is not a number/,
  },
  {
    name: "list price is an object",
    mutate: (r) => ({ ...r, Purchase_Items: [{ ...lines(r)[0], List_Price: { amount: 5 } }] }),
    expect: "skipped",
    reason: /List price on line 1/,
  },
  {
    name: "quantity and price are null",
    mutate: (r) => ({
      ...r,
      Purchase_Items: [{ ...lines(r)[0], Quantity: null, List_Price: null }],
    }),
    expect: "skipped",
    reason: /line 1/i,
  },
  {
    name: "line id arrived as a number",
    mutate: (r) => ({ ...r, Purchase_Items: [{ ...lines(r)[0], id: 5876543000000212345 }] }),
    expect: "skipped",
    reason: /number, not text/,
  },
  {
    name: "PO date in another format",
    mutate: (r) => ({ ...r, PO_Date: "31/12/2025" }),
    expect: "skipped",
    reason: /not a date/,
  },
  {
    name: "'Add to Xero' is the text \"true\"",
    mutate: (r) => ({ ...r, Add_to_Xero: "true" }),
    expect: "skipped",
    reason: /not ticked/,
  },
  {
    name: "Grand Total is text",
    mutate: (r) => ({ ...r, Grand_Total: "NaN" }),
    expect: "skipped",
    reason: /not a number/,
  },
  {
    name: "a tax nobody mapped",
    mutate: (r) =>
      withZohoTotals({
        ...r,
        Purchase_Items: [{
          ...lines(r)[0],
          Line_Tax: [{ name: "Mystery Levy", percentage: 7, value: 0, id: "5876543000000399999" }],
        }],
      }),
    expect: "skipped",
    reason: /Mystery Levy/,
  },
  {
    name: "no PO number and a 100,000-character subject",
    mutate: (r) => ({ ...r, PO_Number: null, Subject: "S".repeat(100_000) }),
    expect: "created",
  },
  {
    name: "a 300-character PO number",
    mutate: (r) => ({ ...r, PO_Number: `PO-${"9".repeat(297)}` }),
    expect: "created",
  },
  {
    name: "a 50,000-character line description with control characters and emoji",
    mutate: (r) => ({
      ...r,
      Purchase_Items: [{
        ...lines(r)[0],
        Description: `Déjà vu 🚚\u0000\u0007\t${"x".repeat(50_000)}`,
      }],
    }),
    expect: "created",
  },
  {
    name: "3,000 purchase items",
    mutate: (r) =>
      withZohoTotals({
        ...r,
        Discount: 0,
        Purchase_Items: Array.from({ length: 3_000 }, (_, i) => ({
          ...lines(r)[0],
          id: String(5876543000000500000n + BigInt(i)),
          Sequence_Number: i + 1,
          Quantity: 1 + (i % 7),
          List_Price: 1.25 + (i % 13),
          Discount: 0,
          Line_Tax: [],
        })),
      }),
    expect: "created",
  },
  {
    name: "an unknown currency",
    mutate: (r) => ({ ...r, Currency: "XYZ" }),
    expect: "failed",
    reason: /currency XYZ/,
  },
  { name: "no currency at all", mutate: (r) => ({ ...r, Currency: null }), expect: "created" },
  {
    name: "a negative quantity",
    mutate: (r) => withZohoTotals({ ...r, Purchase_Items: [{ ...lines(r)[0], Quantity: -5 }] }),
    expect: "skipped",
    reason: /[Qq]uantity/,
  },
];

Deno.test("bad records from Zoho: each gets a clear skip, failure or bill; the run never crashes and good records sync", async () => {
  const good = makeOrders(40, { seed: 71 });
  const bad = makeOrders(CASES.length, { seed: 72 }).map((o, i) => ({
    ...CASES[i].mutate(structuredClone(o)),
    id: String(5876543000006000000n + BigInt(i)),
  }));
  // Bad records sit between good ones, in the same batches.
  const records = good.flatMap((g, i) => (i < bad.length ? [g, bad[i]] : [g]));
  const s = await startStack({ records, listen: true, overrides: { engine: { batchSize: 25 } } });
  const cap = captureConsole();
  try {
    const byId = new Map<string, RecordResult>();
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    for (const r of run.results) byId.set(r.purchaseOrderId, r);
    assert.notEqual(run.status, "failed", run.message);
    assert.equal(run.counts.total, records.length);

    const wrong: string[] = [];
    CASES.forEach((c, i) => {
      const r = byId.get(bad[i].id);
      if (!r) return wrong.push(`${c.name}: no result`);
      if (r.outcome !== c.expect) {
        wrong.push(`${c.name}: ${r.outcome} (${r.reasons.join("; ")}), expected ${c.expect}`);
      }
      if (r.outcome === "skipped" || r.outcome === "failed") {
        const clear = r.reasons.length > 0 && r.reasons.every((x) => x.trim().length > 3) &&
          /\.$/.test(r.message) && !/undefined|\[object|NaN\b(?! is)/.test(r.message);
        if (!clear) wrong.push(`${c.name}: unclear ${JSON.stringify(r)}`);
        if (c.reason && !c.reason.test(r.reasons.join("; "))) {
          wrong.push(`${c.name}: reasons ${JSON.stringify(r.reasons)} do not match ${c.reason}`);
        }
      }
    });
    assert.deepEqual(wrong, []);
    for (const g of good) assert.equal(byId.get(String(g.id))?.outcome, "created", String(g.id));

    // The Zoho button on every bad record: a status and a sentence, never a 500.
    for (const b of bad) {
      const r = await api(s.url, `/api/purchase-orders/${b.id}/sync`, {});
      assert.ok([200, 422, 502].includes(r.status), `${b.id}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.match(String(r.json.message), /\.$/);
    }
    // A webhook naming a record deleted in Zoho meanwhile: skipped, not failed.
    s.zohoSim.records.delete(bad[0].id);
    s.zohoSim.records.delete(String(good[1].id));
    const hook = await api(s.url, "/api/zoho/notify", { ids: [String(good[1].id)] });
    assert.equal(hook.status, 202);
    await s.engine.idle();

    // Reruns: the records that fail keep failing the same way; nothing is created twice.
    const expectFailed = new Set(
      bad.filter((_, i) => CASES[i].expect === "failed").map((b) => b.id),
    );
    for (let i = 0; i < 2; i++) {
      const again = await s.run({ window: "since_last_sync", mode: "create_and_update" });
      assert.notEqual(again.status, "failed", again.message);
      assert.deepEqual(
        again.results.filter((r) => r.outcome === "failed").map((r) => r.purchaseOrderId).sort(),
        [...expectFailed].sort(),
      );
    }
    const report = await checkInvariant({
      zohoRecords: s.zohoSim.records,
      bills: s.xeroSim.invoices().filter((b) =>
        b.Url !== `https://crm.zoho.com/crm/tab/PurchaseOrders/${good[1].id}`
      ),
      kv: s.ctx.kv,
      expectFailed,
    });
    const problems = record(tally, report);
    assert.equal(problems, "", problems);
    tally.faults += CASES.length + 1;
    const leaks = findSecrets(
      [{ where: "console", text: cap.lines.join("\n") }, ...await kvTexts(s.ctx.kv)],
      await secretsOf(s.ctx.kv, s.env, { "current Xero refresh token": s.xeroSim.refreshToken }),
    );
    assert.deepEqual(leaks, []);
  } finally {
    cap.restore();
    await s.close();
  }
});

Deno.test("bad data: summary", () => {
  printSummary("bad_data", tally, `bad records=${CASES.length + 1}`);
  assert.equal(tally.duplicates, 0);
  assert.equal(tally.lost, 0);
});
