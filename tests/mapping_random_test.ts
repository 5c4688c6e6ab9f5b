/**
 * 10,000 generated, internally consistent Zoho purchase orders (seeded, so every run is the same)
 * mapped to bills: the total Xero will compute must equal Zoho's Grand_Total to the cent. Xero
 * rounds tax per line where Zoho rounds per item after its discount (and once for a tax on the
 * whole order); the mapping closes that gap with a line TaxAmount never more than one cent from
 * Xero's own, so at least 99.9 % must be exact and any other one carries a warning with its
 * difference.
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
const COUNT = 10_000;

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

Deno.test("mapping (seeded random): 10,000 bills total Zoho's Grand_Total to the cent", () => {
  let exact = 0;
  let warned = 0;
  let movedLines = 0;
  for (let seed = 1; seed <= COUNT; seed++) {
    const raw = generatePurchaseOrder(seededRandom(seed), {}, optionsFor(seed));
    const where = `seed ${seed}`;

    const parsed = parsePurchaseOrder(raw, SETTINGS);
    if (!parsed.ok) assert.fail(`${where}: ${parsed.reasons.join("; ")}`);
    assert.equal(eligibility(parsed.po, SETTINGS).length, 0, where);
    const bill = toBill(parsed.po, SETTINGS, CONTACT);

    // The total is Xero's computation from the tax types' rates (and the lines' TaxAmounts).
    assert.equal(bill.total, xeroTotal(bill.invoice, RATES), where);
    // A TaxAmount is never more than a cent from what Xero would compute for its line.
    for (const line of bill.invoice.lineItems) {
      if (line.taxAmount === undefined) continue;
      movedLines++;
      const own = { ...bill.invoice, lineItems: [{ ...line, taxAmount: undefined }] };
      const given = { ...bill.invoice, lineItems: [line] };
      const off = Math.abs(cents(xeroTotal(given, RATES)) - cents(xeroTotal(own, RATES)));
      assert.ok(off <= 1, `${where}: a line's tax moved by ${off} cents`);
    }

    const grand = raw.Grand_Total as number;
    const diff = cents(bill.total) - cents(grand);
    const expected = diff !== 0
      ? [
        `Xero will total this bill ${formatMoney(bill.total)} but Zoho's Grand Total is ${
          formatMoney(grand)
        } (a difference of ${formatMoney(diff / 100)})`,
      ]
      : [];
    // The only warning a consistent order can earn is its total, with the difference.
    assert.deepEqual(bill.warnings, expected, where);
    if (diff === 0) exact++;
    else warned++;

    // Deterministic: the same seed gives the same record and the same bill (sampled, for speed).
    if (seed % 50 === 0) {
      const again = parsePurchaseOrder(
        generatePurchaseOrder(seededRandom(seed), {}, optionsFor(seed)),
        SETTINGS,
      );
      assert.ok(again.ok);
      assert.equal(toBill(again.po, SETTINGS, CONTACT).hash, bill.hash, where);
    }
  }
  console.log(
    `${COUNT} orders: ${exact} equal to the cent (${(exact / COUNT * 100).toFixed(2)} %), ` +
      `${warned} warned; ${movedLines} lines carry a TaxAmount`,
  );
  assert.ok(exact >= COUNT * 0.999, `only ${exact} of ${COUNT} matched to the cent`);
  assert.ok(movedLines > 0, "no order needed a TaxAmount: the generator lost its discounts");
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
