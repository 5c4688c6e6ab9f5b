/**
 * Hundreds of generated, internally consistent Zoho purchase orders (seeded, so every run is the same)
 * mapped to bills: the Xero-style total must equal Zoho's Grand_Total. Where Xero's per-line rounding
 * cannot reproduce Zoho's (a taxed line with a discount: Xero rounds the tax of the item line and of
 * its discount line apart; a tax on the whole order: Xero taxes each line), it may differ by at most
 * one cent per such line, and a difference over 0.01 must come with a warning.
 */
import assert from "node:assert/strict";
import {
  eligibility,
  formatMoney,
  parsePurchaseOrder,
  SettingsSchema,
  toBill,
  xeroTotal,
} from "../lib/mapping/mod.ts";
import {
  generatePurchaseOrder,
  type GeneratorOptions,
  seededRandom,
} from "../sandbox/po_generator.ts";

const SETTINGS = SettingsSchema.parse({
  taxMappings: [
    { zohoTaxName: "VAT", taxType: "INPUT2" },
    { zohoTaxName: "GST", percentage: 10, taxType: "GST10" },
    { zohoTaxName: "GST", percentage: 15, taxType: "GST15" },
    { percentage: 8.875, taxType: "SALESTAX" },
    { zohoTaxName: "Reduced VAT", taxType: "RRINPUT" },
    { zohoTaxName: "CGST + SGST", taxType: "GSTIN18" },
  ],
});
/** What each Xero tax type's rate is in the organisation these bills go to. */
const RATES = { INPUT2: 20, GST10: 10, GST15: 15, SALESTAX: 8.875, RRINPUT: 5, GSTIN18: 18 };
const CONTACT = { contactID: "00000000-0000-0000-0000-000000000001" };
const COUNT = 600;

function optionsFor(seed: number): GeneratorOptions {
  switch (seed % 10) {
    case 0:
      return { documentTax: { name: "VAT", percentage: 20 } };
    case 1:
      return { documentTax: { name: "Sales Tax", percentage: 8.875 } };
    case 2:
      return { itemsField: "Product_Details" };
    case 3:
      return { itemsField: "Purchased_Items" };
    default:
      return {};
  }
}

const cents = (x: number) => Math.round(x * 100);

type Line = Record<string, unknown>;

/** How many lines Xero may round differently from Zoho (see the header comment). */
function roundingSlack(raw: Record<string, unknown>, xeroLines: { taxType: string }[]): number {
  if (raw.Tax !== 0) return xeroLines.filter((l) => l.taxType !== "NONE").length;
  const items = (raw.Purchase_Items ?? raw.Purchased_Items ?? raw.Product_Details) as Line[];
  return items.filter((l) =>
    l.Discount !== 0 && ((l.Line_Tax ?? l.line_tax) as unknown[]).length > 0
  ).length;
}

Deno.test("mapping (seeded random): Xero-style total equals Zoho's Grand_Total", () => {
  let exact = 0;
  let checkedExactly = 0;
  let warned = 0;
  for (let seed = 1; seed <= COUNT; seed++) {
    const raw = generatePurchaseOrder(seededRandom(seed), {}, optionsFor(seed));
    const where = `seed ${seed}`;
    assert.match(raw.id as string, /^\d{19}$/, where);

    const parsed = parsePurchaseOrder(raw, SETTINGS);
    if (!parsed.ok) assert.fail(`${where}: ${parsed.reasons.join("; ")}`);
    assert.deepEqual(eligibility(parsed.po, SETTINGS), [], where);
    const bill = toBill(parsed.po, SETTINGS, CONTACT);

    // The total is Xero's computation from the tax types' rates.
    assert.equal(bill.total, xeroTotal(bill.invoice, RATES), where);

    const grand = raw.Grand_Total as number;
    const diff = Math.abs(cents(bill.total) - cents(grand));
    const slack = roundingSlack(raw, bill.invoice.lineItems);
    if (slack === 0) {
      checkedExactly++;
      assert.equal(bill.total, grand, `${where}: ${bill.total} ≠ Grand_Total ${grand}`);
    } else {
      assert.ok(diff <= slack, `${where}: off by ${diff} cents with ${slack} rounding lines`);
    }
    if (diff === 0) exact++;

    // The only warning a consistent order can earn is a total more than 0.01 apart.
    const expected = diff > 1
      ? [
        `Xero will total this bill ${formatMoney(bill.total)} but Zoho's Grand Total is ${
          formatMoney(grand)
        } (a difference of ${formatMoney((cents(bill.total) - cents(grand)) / 100)})`,
      ]
      : [];
    assert.deepEqual(bill.warnings, expected, where);
    if (diff > 1) warned++;

    // Deterministic: the same seed gives the same record and the same bill.
    const again = parsePurchaseOrder(
      generatePurchaseOrder(seededRandom(seed), {}, optionsFor(seed)),
      SETTINGS,
    );
    assert.ok(again.ok);
    assert.equal(toBill(again.po, SETTINGS, CONTACT).hash, bill.hash, where);
  }
  console.log(
    `${COUNT} orders: ${exact} equal to the cent (${checkedExactly} required to be), ` +
      `${COUNT - exact} within the rounding slack, ${warned} warned`,
  );
  // Most orders have no line Xero can round differently (order-level tax is 2 in 10 here):
  // those are held to the cent; nearly all the others match to the cent anyway.
  assert.ok(checkedExactly >= COUNT * 0.4, `only ${checkedExactly} checked exactly`);
  assert.ok(exact >= COUNT * 0.85, `only ${exact} of ${COUNT} matched to the cent`);
  assert.ok(warned <= COUNT * 0.02, `${warned} warnings`);
});

Deno.test("mapping (seeded random): generated records add up the way Zoho does", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const raw = generatePurchaseOrder(seededRandom(seed), {}, optionsFor(seed));
    const items = (raw.Purchase_Items ?? raw.Purchased_Items ?? raw.Product_Details) as Line[];
    const v2 = "Product_Details" in raw;
    const net = items.reduce((s, l) => s + cents((v2 ? l.net_total : l.Net_Total) as number), 0);
    assert.equal(cents(raw.Sub_Total as number), net);
    const grand = cents(raw.Sub_Total as number) - cents(raw.Discount as number) +
      cents(raw.Tax as number) + cents(raw.Adjustment as number);
    assert.equal(cents(raw.Grand_Total as number), grand);
  }
});

Deno.test("mapping (seeded random): every random bill passes xero-node's ObjectSerializer", async () => {
  const { ObjectSerializer, Invoice, LineItem, Contact } = await import("xero-node");
  const known = (m: { getAttributeTypeMap(): { name: string; baseName: string }[] }) =>
    new Map(m.getAttributeTypeMap().map((a) => [a.name, a.baseName]));
  const invoiceKeys = known(Invoice);
  const lineKeys = known(LineItem);
  const contactKeys = known(Contact);
  const pascal = (o: Record<string, unknown>, keys: Map<string, string>) =>
    Object.fromEntries(
      Object.entries(o).map(([k, v]) => {
        assert.ok(keys.has(k), `${k} is not a field of xero-node's model`);
        return [keys.get(k) as string, v];
      }),
    );

  for (let seed = 1; seed <= 300; seed++) {
    const raw = generatePurchaseOrder(seededRandom(seed), {}, optionsFor(seed));
    const parsed = parsePurchaseOrder(raw, SETTINGS);
    assert.ok(parsed.ok);
    const { invoice } = toBill(parsed.po, SETTINGS, CONTACT);
    const expected = {
      ...pascal(invoice as unknown as Record<string, unknown>, invoiceKeys),
      Contact: pascal(invoice.contact as unknown as Record<string, unknown>, contactKeys),
      LineItems: invoice.lineItems.map((l) =>
        pascal(l as unknown as Record<string, unknown>, lineKeys)
      ),
    };
    const wire = JSON.parse(
      JSON.stringify(ObjectSerializer.serialize({ invoices: [invoice] }, "Invoices")),
    );
    assert.deepEqual(wire, { Invoices: [expected] }, `seed ${seed}`);
  }
});
