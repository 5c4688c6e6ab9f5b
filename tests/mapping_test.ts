/**
 * The mapping core, table-driven: each case is a raw Zoho record (v8 JSON, totals computed the way
 * Zoho does by the sandbox generator) and the exact outcome: parse reasons, eligibility reasons, or
 * the exact Xero bill with its total and warnings. Every emitted bill then goes through xero-node's
 * own ObjectSerializer to prove nothing is dropped on the way to Xero.
 */
import assert from "node:assert/strict";
import {
  DEFAULT_SETTINGS,
  eligibility,
  invoiceNumberOf,
  type MappedBill,
  parsePurchaseOrder,
  recordUrl,
  type Settings,
  type SettingsInput,
  SettingsSchema,
  taxRateMismatches,
  toBill,
  totalMismatch,
  type XeroInvoice,
  type XeroLineItem,
  xeroTotal,
} from "../lib/mapping/mod.ts";
import { withZohoTotals } from "../sandbox/po_generator.ts";

// ---- fixtures ----

/** 19 digits, beyond Number.MAX_SAFE_INTEGER: only a string keeps it. */
const PO_ID = "5876543000000123457";
const VENDOR = { id: "5876543000000110001", name: "Acme Industrial Supply" };
const CONTACT = { contactID: "7f1b7a4e-1f0e-4a7c-9d9e-2b5a7c9e0001" };
const P1 = { id: "5876543000000210001", name: "Steel bracket", Product_Code: "BRK-040" };
const P2 = { id: "5876543000000210002", name: "Café table (oak)", Product_Code: "TBL-OAK" };
const P3 = { id: "5876543000000210003", name: "Consulting hour", Product_Code: "SVC-HR" };
const P4 = { id: "5876543000000210004", name: "Freight", Product_Code: null };

const tax = (name: string, percentage: number | null, value = 0) => ({
  percentage,
  name,
  id: "5876543000000400001",
  value,
  display_name: `${name} - ${percentage} %`,
});

type Raw = Record<string, unknown>;

function line(over: Raw = {}): Raw {
  return {
    id: "5876543000000300001",
    Sequence_Number: 1,
    Product_Name: P1,
    Quantity: 2,
    List_Price: 10,
    Discount: 0,
    Line_Tax: [],
    Description: null,
    ...over,
  };
}

/** A purchase order with Zoho's totals; `over` may replace any field, items included. */
function po(over: Raw = {}, items: unknown = [line()]): Raw {
  return withZohoTotals({
    id: PO_ID,
    Owner: { name: "Patricia Boyle", id: "5876543000000090001", email: "p.boyle@example.com" },
    Subject: "Restock brackets",
    PO_Number: "PO-1001",
    PO_Date: "2025-03-14",
    Due_Date: null,
    Status: "Created",
    Currency: "NZD",
    Vendor_Name: VENDOR,
    Add_to_Xero: true,
    Created_Time: "2025-03-13T22:10:00+05:30",
    Modified_Time: "2025-03-14T09:00:00+05:30",
    Discount: 0,
    Adjustment: 0,
    $line_tax: [],
    Purchase_Items: items,
    ...over,
  });
}

/** Changes a computed record after the fact (to make it inconsistent on purpose). */
function tweak(raw: Raw, change: (r: Raw) => void): Raw {
  const copy = structuredClone(raw);
  change(copy);
  return copy;
}

const SETTINGS: SettingsInput = {
  taxMappings: [
    { zohoTaxName: "VAT", taxType: "INPUT2" },
    { zohoTaxName: "GST", percentage: 10, taxType: "GST10" },
    { percentage: 15, taxType: "INPUT" },
    { zohoTaxName: "CGST + SGST", taxType: "GSTIN18" },
  ],
  accountOverrides: [
    { match: P2.id, accountCode: "429" },
    { match: "SVC-HR", accountCode: "400" },
  ],
};

const URL = `https://crm.zoho.com/crm/tab/PurchaseOrders/${PO_ID}`;

function bill(lineItems: XeroLineItem[], over: Partial<XeroInvoice> = {}): XeroInvoice {
  return {
    type: "ACCPAY",
    contact: CONTACT,
    invoiceNumber: "PO-1001",
    date: "2025-03-14",
    dueDate: "2025-04-13",
    currencyCode: "NZD",
    url: URL,
    status: "DRAFT",
    lineAmountTypes: "Exclusive",
    lineItems,
    ...over,
  };
}

function item(over: Partial<XeroLineItem> = {}): XeroLineItem {
  return {
    description: "Steel bracket",
    quantity: 2,
    unitAmount: 10,
    accountCode: "300",
    taxType: "NONE",
    ...over,
  };
}

// ---- the table ----

type Expect =
  | { parse: string[] }
  | { reasons: string[] }
  | { bill: XeroInvoice; total: number; warnings?: string[] };

interface Case {
  name: string;
  raw: unknown;
  settings?: SettingsInput;
  expect: Expect;
}

const longText = "x".repeat(5000);
const emojiText = "ab🎁".repeat(1200);

const CASES: Case[] = [
  // -- eligibility rules --
  {
    name: "checkbox not ticked",
    raw: po({ Add_to_Xero: false }),
    expect: { reasons: ["'Add to Xero' is not ticked"] },
  },
  {
    name: "checkbox as the text 'true' is not ticked (Zoho checkboxes are booleans)",
    raw: po({ Add_to_Xero: "true" }),
    expect: { reasons: ["'Add to Xero' is not ticked"] },
  },
  {
    name: "checkbox field missing entirely",
    raw: po({ Add_to_Xero: undefined }),
    expect: { reasons: ["'Add to Xero' is not ticked"] },
  },
  {
    name: "custom checkbox field name",
    raw: po({ Add_to_Xero: true, Send_to_Xero: false }),
    settings: { ...SETTINGS, checkboxField: "Send_to_Xero" },
    expect: { reasons: ["'Send to Xero' is not ticked"] },
  },
  {
    name: "no vendor",
    raw: po({ Vendor_Name: null }),
    expect: { reasons: ["No vendor (Client Name) is set"] },
  },
  {
    name: "vendor lookup without an id",
    raw: po({ Vendor_Name: { name: "Acme", id: null } }),
    expect: { reasons: ["No vendor (Client Name) is set"] },
  },
  {
    name: "vendor read from a configured field (the seed's 'Client Name')",
    raw: po({ Vendor_Name: null, Client_Name: null }),
    settings: { ...SETTINGS, vendorField: "Client_Name" },
    expect: { reasons: ["No vendor (Client Name) is set"] },
  },
  {
    name: "no purchase items",
    raw: po({}, []),
    expect: { reasons: ["The purchase order has no purchase items"] },
  },
  {
    name: "every header rule fails at once, in order",
    raw: po({ Add_to_Xero: false, Vendor_Name: null, PO_Date: null, Created_Time: null }, null),
    expect: {
      reasons: [
        "'Add to Xero' is not ticked",
        "No vendor (Client Name) is set",
        "The purchase order has no purchase items",
        "The purchase order has no PO Date and no Created Time",
      ],
    },
  },
  // -- line rules --
  {
    name: "quantity 0",
    raw: po({}, [line({ Quantity: 0 })]),
    expect: { reasons: ["Quantity on line 1 (Steel bracket) is 0; it must be more than 0"] },
  },
  {
    name: "negative quantity on line 2",
    raw: po({}, [line(), line({ Product_Name: P2, Quantity: -3 })]),
    expect: { reasons: ["Quantity on line 2 (Café table (oak)) is -3; it must be more than 0"] },
  },
  {
    name: "quantity and list price missing",
    raw: po({}, [line({ Quantity: null, List_Price: null })]),
    expect: {
      reasons: [
        "Quantity on line 1 (Steel bracket) is missing",
        "List price on line 1 (Steel bracket) is missing",
      ],
    },
  },
  {
    name: "no product and a blank description",
    raw: po({}, [line({ Product_Name: null, Description: "   " })]),
    expect: { reasons: ["Line 1 has no product and no description"] },
  },
  {
    name: "a tax with no mapping",
    raw: po({}, [line({ Line_Tax: [tax("Import Duty", 7)] })]),
    expect: {
      reasons: [
        'The tax "Import Duty" (7%) on line 1 (Steel bracket) has no Xero tax type; ' +
        "add a tax mapping in the settings",
      ],
    },
  },
  {
    name: "a name mapping at another rate does not match; no rate mapping either",
    raw: po({}, [line({ Line_Tax: [tax("GST", 12.5)] })]),
    expect: {
      reasons: [
        'The tax "GST" (12.5%) on line 1 (Steel bracket) has no Xero tax type; ' +
        "add a tax mapping in the settings",
      ],
    },
  },
  {
    name: "a tax amount without any rate",
    raw: tweak(po(), (r) => ((r.Purchase_Items as Raw[])[0].Tax = 5)),
    expect: { reasons: ["Line 1 (Steel bracket) has a tax of 5.00 but no tax rate"] },
  },
  {
    name: "a tax entry with an amount but no percentage",
    raw: po({}, [line({ Line_Tax: [tax("VAT", null, 4)] })]),
    expect: { reasons: ['The tax "VAT" on line 1 (Steel bracket) has no percentage'] },
  },
  {
    name: "every failing line is reported, with the header rules first",
    raw: po({ Add_to_Xero: false }, [
      line({ Quantity: 0 }),
      line({ Product_Name: P2, Line_Tax: [tax("Eco levy", 2)] }),
    ]),
    expect: {
      reasons: [
        "'Add to Xero' is not ticked",
        "Quantity on line 1 (Steel bracket) is 0; it must be more than 0",
        'The tax "Eco levy" (2%) on line 2 (Café table (oak)) has no Xero tax type; ' +
        "add a tax mapping in the settings",
      ],
    },
  },
  {
    name: "tax on the lines and a different tax on the total",
    raw: tweak(po({}, [line({ Line_Tax: [tax("VAT", 20)] })]), (r) => (r.Tax = 9)),
    expect: {
      reasons: [
        "The purchase order has taxes on its purchase items and a tax of 9.00 on its total; " +
        "Xero takes tax per line, so keep only one of them",
      ],
    },
  },
  {
    name: "tax on the total without a rate",
    raw: tweak(po(), (r) => (r.Tax = 3)),
    expect: { reasons: ["The purchase order has a tax of 3.00 on its total but no tax rate"] },
  },
  // -- malformed records: parse reasons --
  {
    name: "not an object",
    raw: "hello",
    expect: { parse: ["The record is not an object"] },
  },
  {
    name: "quantity on line 2 is not a number",
    raw: po({}, [line(), line({ Quantity: "abc" })]),
    expect: { parse: ["Quantity on line 2 is not a number"] },
  },
  {
    name: "19-digit record id that arrived as a JSON number",
    raw: { ...po(), id: Number(PO_ID) },
    expect: {
      parse: ["The record id is a number, not text (ids must be read as text to stay exact)"],
    },
  },
  {
    name: "record id missing",
    raw: { ...po(), id: undefined },
    expect: { parse: ["The record id is missing"] },
  },
  {
    name: "impossible PO date, bad tax percentage, product id as number, vendor as text",
    raw: po({ PO_Date: "2025-02-30", Vendor_Name: "Acme" }, [
      line({ Line_Tax: [{ ...tax("VAT", 20), percentage: "twenty" }] }),
      line({ Product_Name: { ...P2, id: Number(P2.id) } }),
    ]),
    expect: {
      parse: [
        "PO Date is not a date (expected YYYY-MM-DD)",
        "Tax percentage on line 1 is not a number",
        "Product id on line 2 is a number, not text (ids must be read as text to stay exact)",
        "Vendor Name is not a lookup (expected an object with an id)",
      ],
    },
  },
  {
    name: "items that are not items",
    raw: { ...po(), Purchase_Items: [42] },
    expect: { parse: ["Line 1 is not a purchase item"] },
  },
  {
    name: "items field that is not a list",
    raw: { ...po(), Purchase_Items: "none" },
    expect: { parse: ["Purchase Items is not a list of purchase items"] },
  },
  // -- bills --
  {
    name: "one untaxed line",
    raw: po(),
    expect: { bill: bill([item()]), total: 20 },
  },
  {
    name: "Unicode text kept as is; product id override (19 digits)",
    raw: po({ Subject: "Möbel für das Büro — 日本", PO_Number: "ЗАКАЗ-7" }, [
      line({
        Product_Name: P2,
        Quantity: 1,
        List_Price: 99.95,
        Description: "Livraison ✔ 納期 🎁",
      }),
    ]),
    expect: {
      bill: bill([item({
        description: "Livraison ✔ 納期 🎁",
        quantity: 1,
        unitAmount: 99.95,
        accountCode: "429",
      })], { invoiceNumber: "ЗАКАЗ-7" }),
      total: 99.95,
    },
  },
  {
    name: "very long description cut to 4000 characters with an ellipsis",
    raw: po({}, [line({ Description: longText })]),
    expect: {
      bill: bill([item({ description: `${"x".repeat(3999)}…` })]),
      total: 20,
      warnings: ["The description of line 1 (Steel bracket) was shortened to 4,000 characters"],
    },
  },
  {
    name: "long emoji text is never cut inside a surrogate pair",
    raw: po({}, [line({ Description: emojiText })]),
    expect: {
      bill: bill([item({ description: `${"ab🎁".repeat(999)}ab…` })]),
      total: 20,
      warnings: ["The description of line 1 (Steel bracket) was shortened to 4,000 characters"],
    },
  },
  {
    name: "fractional quantities and 4-dp prices; account override by product code",
    raw: po({}, [
      line({ Quantity: 0.125, List_Price: 12.3456 }),
      line({ Product_Name: P3, Quantity: 2.5, List_Price: 4.9999 }),
    ]),
    expect: {
      bill: bill([
        item({ quantity: 0.125, unitAmount: 12.3456 }),
        item({
          description: "Consulting hour",
          quantity: 2.5,
          unitAmount: 4.9999,
          accountCode: "400",
        }),
      ]),
      total: 14.04,
    },
  },
  {
    name: "more than 4 decimals are rounded, with a warning",
    raw: po({}, [
      line({ Quantity: 1.23456, List_Price: 10 }),
      line({ Product_Name: P4, Quantity: 1, List_Price: 3.14159 }),
    ]),
    expect: {
      bill: bill([
        item({ quantity: 1.2346, unitAmount: 10 }),
        item({ description: "Freight", quantity: 1, unitAmount: 3.1416 }),
      ]),
      total: 15.49,
      warnings: [
        "Quantity on line 1 (Steel bracket) was rounded to 4 decimal places (1.23456 → 1.2346)",
        "List price on line 2 (Freight) was rounded to 4 decimal places (3.14159 → 3.1416)",
      ],
    },
  },
  {
    name: "line discount becomes its own line right after the item, same account and tax",
    raw: po({}, [
      line({ Quantity: 4, List_Price: 25, Discount: 10, Line_Tax: [tax("VAT", 20)] }),
      line({ Product_Name: P2, Quantity: 1, List_Price: 50 }),
    ]),
    expect: {
      bill: bill([
        item({ quantity: 4, unitAmount: 25, taxType: "INPUT2" }),
        item({
          description: "Discount: Steel bracket",
          quantity: 1,
          unitAmount: -10,
          taxType: "INPUT2",
        }),
        item({ description: "Café table (oak)", quantity: 1, unitAmount: 50, accountCode: "429" }),
      ]),
      total: 158,
    },
  },
  {
    name: "header discount: one untaxed line at the end",
    raw: po({ Discount: 7.4 }, [
      line({ Line_Tax: [tax("VAT", 20)] }),
      line({ Product_Name: P2, Quantity: 1, List_Price: 50 }),
    ]),
    expect: {
      bill: bill([
        item({ taxType: "INPUT2" }),
        item({ description: "Café table (oak)", quantity: 1, unitAmount: 50, accountCode: "429" }),
        item({ description: "Discount on the purchase order", quantity: 1, unitAmount: -7.4 }),
      ]),
      total: 66.6,
    },
  },
  {
    name: "positive adjustment",
    raw: po({ Adjustment: 5.25 }),
    expect: {
      bill: bill([item(), item({ description: "Adjustment", quantity: 1, unitAmount: 5.25 })]),
      total: 25.25,
    },
  },
  {
    name: "negative adjustment after the header discount",
    raw: po({ Discount: 1, Adjustment: -0.99 }),
    expect: {
      bill: bill([
        item(),
        item({ description: "Discount on the purchase order", quantity: 1, unitAmount: -1 }),
        item({ description: "Adjustment", quantity: 1, unitAmount: -0.99 }),
      ]),
      total: 18.01,
    },
  },
  {
    name: "untaxed lines use the configured untaxed tax type",
    raw: po({ Adjustment: 2 }),
    settings: { ...SETTINGS, untaxedTaxType: "EXEMPTEXPENSES" },
    expect: {
      bill: bill([
        item({ taxType: "EXEMPTEXPENSES" }),
        item({
          description: "Adjustment",
          quantity: 1,
          unitAmount: 2,
          taxType: "EXEMPTEXPENSES",
        }),
      ]),
      total: 22,
    },
  },
  {
    name: "tax mapped by name (case-insensitive)",
    raw: po({}, [line({ Quantity: 3, List_Price: 19.99, Line_Tax: [tax("vat", 20)] })]),
    expect: {
      bill: bill([item({ quantity: 3, unitAmount: 19.99, taxType: "INPUT2" })]),
      total: 71.96,
    },
  },
  {
    name: "tax mapped by name and percentage",
    raw: po({}, [line({ Quantity: 1, List_Price: 33.33, Line_Tax: [tax("GST", 10)] })]),
    expect: {
      bill: bill([item({ quantity: 1, unitAmount: 33.33, taxType: "GST10" })]),
      total: 36.66,
    },
  },
  {
    name: "tax mapped by percentage (the name mapping is for another rate)",
    raw: po({}, [line({ Quantity: 1, List_Price: 200, Line_Tax: [tax("GST", 15)] })]),
    expect: { bill: bill([item({ quantity: 1, unitAmount: 200, taxType: "INPUT" })]), total: 230 },
  },
  {
    name: "two taxes on a line mapped by their joined names",
    raw: po({}, [
      line({ Quantity: 10, List_Price: 10, Line_Tax: [tax("SGST", 9), tax("CGST", 9)] }),
    ]),
    expect: {
      bill: bill([item({ quantity: 10, unitAmount: 10, taxType: "GSTIN18" })]),
      total: 118,
    },
  },
  {
    name: "two taxes on a line mapped by their combined percentage",
    raw: po({}, [
      line({ Quantity: 10, List_Price: 10, Line_Tax: [tax("CGST", 9), tax("SGST", 9)] }),
    ]),
    settings: { taxMappings: [{ percentage: 18, taxType: "GST18" }] },
    expect: { bill: bill([item({ quantity: 10, unitAmount: 10, taxType: "GST18" })]), total: 118 },
  },
  {
    name: "an unmapped tax uses defaultTaxType when the admin set one",
    raw: po({}, [line({ Line_Tax: [tax("Import Duty", 7)] })]),
    settings: { ...SETTINGS, defaultTaxType: "INPUT" },
    expect: { bill: bill([item({ taxType: "INPUT" })]), total: 21.4 },
  },
  {
    name: "listed taxes with a rate of 0 do not count as tax",
    raw: po({}, [line({ Line_Tax: [tax("VAT", 0)] })]),
    expect: { bill: bill([item()]), total: 20 },
  },
  {
    name: "no PO Date: the created date (in Zoho's offset), due after the default terms",
    raw: po({ PO_Date: null }),
    expect: { bill: bill([item()], { date: "2025-03-13", dueDate: "2025-04-12" }), total: 20 },
  },
  {
    name: "Due Date from Zoho wins over the terms",
    raw: po({ Due_Date: "2025-05-01" }),
    expect: { bill: bill([item()], { dueDate: "2025-05-01" }), total: 20 },
  },
  {
    name: "configured payment terms, across a month end",
    raw: po({ PO_Date: "2024-02-20" }),
    settings: { ...SETTINGS, paymentTermsDays: 14 },
    expect: { bill: bill([item()], { date: "2024-02-20", dueDate: "2024-03-05" }), total: 20 },
  },
  {
    name: "blank PO number falls back to the Subject",
    raw: po({ PO_Number: "   " }),
    expect: { bill: bill([item()], { invoiceNumber: "Restock brackets" }), total: 20 },
  },
  {
    name: "no PO number and no Subject: the record id",
    raw: po({ PO_Number: null, Subject: "" }),
    expect: { bill: bill([item()], { invoiceNumber: PO_ID }), total: 20 },
  },
  {
    name: "PO number longer than Xero's 255 characters",
    raw: po({ PO_Number: "N".repeat(300) }),
    expect: {
      bill: bill([item()], { invoiceNumber: `${"N".repeat(254)}…` }),
      total: 20,
      warnings: ["The PO number was shortened to 255 characters for Xero"],
    },
  },
  {
    name: "items under Purchased_Items",
    raw: po({ Purchase_Items: undefined, Purchased_Items: [line({ Description: "Old name" })] }),
    expect: { bill: bill([item({ description: "Old name" })]), total: 20 },
  },
  {
    name: "items under v2 Product_Details with lowercase keys",
    raw: po({
      Purchase_Items: [],
      Product_Details: [{
        product: P1,
        quantity: 3,
        list_price: 7.5,
        Discount: 1.5,
        line_tax: [tax("VAT", 20)],
        product_description: "From API v2",
      }],
    }),
    expect: {
      bill: bill([
        item({ description: "From API v2", quantity: 3, unitAmount: 7.5, taxType: "INPUT2" }),
        item({
          description: "Discount: Steel bracket",
          quantity: 1,
          unitAmount: -1.5,
          taxType: "INPUT2",
        }),
      ]),
      total: 25.2,
    },
  },
  {
    name: "Purchase_Items with lowercase keys and numbers as numeric strings",
    raw: tweak(
      po({}, [{ Product_Name: P1, quantity: "2.5", list_price: "10.00", line_tax: [] }]),
      (r) => (r.Grand_Total = 25),
    ),
    expect: { bill: bill([item({ quantity: 2.5, unitAmount: 10 })]), total: 25 },
  },
  {
    name: "item codes sent when enabled (item lines only, when the product has one)",
    raw: po({}, [
      line({ Discount: 2 }),
      line({ Product_Name: P4, Quantity: 1, List_Price: 15 }),
    ]),
    settings: { ...SETTINGS, sendItemCodes: true },
    expect: {
      bill: bill([
        item({ itemCode: "BRK-040" }),
        item({ description: "Discount: Steel bracket", quantity: 1, unitAmount: -2 }),
        item({ description: "Freight", quantity: 1, unitAmount: 15 }),
      ]),
      total: 33,
    },
  },
  {
    name: "status, link base and default account from the settings",
    raw: po(),
    settings: {
      billStatus: "AUTHORISED",
      zohoRecordUrlBase: "https://crm.zoho.eu/crm/org123/tab/PurchaseOrders/",
      defaultAccountCode: "310",
    },
    expect: {
      bill: bill([item({ accountCode: "310" })], {
        status: "AUTHORISED",
        url: `https://crm.zoho.eu/crm/org123/tab/PurchaseOrders/${PO_ID}`,
      }),
      total: 20,
    },
  },
  {
    name: "no currency: Xero uses the organisation's",
    raw: po({ Currency: null }),
    expect: {
      bill: (() => {
        const b = bill([item()]);
        delete b.currencyCode;
        return b;
      })(),
      total: 20,
    },
  },
  {
    name: "tax on the whole order: every line before the adjustment carries it",
    raw: po({ Discount: 2, Adjustment: 1, $line_tax: [tax("VAT", 20)] }),
    expect: {
      bill: bill([
        item({ taxType: "INPUT2" }),
        item({
          description: "Discount on the purchase order",
          quantity: 1,
          unitAmount: -2,
          taxType: "INPUT2",
        }),
        item({ description: "Adjustment", quantity: 1, unitAmount: 1 }),
      ]),
      total: 22.6,
    },
  },
  {
    // Zoho: 20 % of 0.15 = 0.03 once; Xero: 0.006 → 0.01 on each of 5 lines = 0.05.
    name: "tax on the whole order: Xero's per-line tax moved a cent on as few lines as give Zoho's",
    raw: po(
      { $line_tax: [tax("VAT", 20)] },
      Array.from({ length: 5 }, () => line({ Quantity: 1, List_Price: 0.03 })),
    ),
    expect: {
      bill: bill(
        Array.from(
          { length: 5 },
          (_, i) =>
            item({
              quantity: 1,
              unitAmount: 0.03,
              taxType: "INPUT2",
              ...(i < 2 ? { taxAmount: 0 } : {}),
            }),
        ),
      ),
      total: 0.18,
    },
  },
  {
    // Issue 13 point 9: Xero taxes 10.03 (1.5045 → 1.50) and −0.10 (−0.015 → −0.02) apart, 1.48;
    // Zoho taxes 9.93 (1.4895 → 1.49). The discount line carries the cent: 22.84, not 22.82.
    name: "two lines of 10.03 less 0.10 at 15 %: the bill totals Zoho's 22.84, not 22.82",
    raw: po(
      {},
      Array.from(
        { length: 2 },
        () => line({ Quantity: 1, List_Price: 10.03, Discount: 0.1, Line_Tax: [tax("GST", 15)] }),
      ),
    ),
    expect: {
      bill: bill(
        Array.from({ length: 2 }, () => [
          item({ quantity: 1, unitAmount: 10.03, taxType: "INPUT" }),
          item({
            description: "Discount: Steel bracket",
            quantity: 1,
            unitAmount: -0.1,
            taxType: "INPUT",
            taxAmount: -0.01,
          }),
        ]).flat(),
      ),
      total: 22.84,
    },
  },
  {
    name: "a Zoho line tax no per-line rounding explains is left to Xero (and the total warns)",
    raw: tweak(
      po({}, [line({ Line_Tax: [tax("VAT", 20)] })]),
      (r) => {
        (r.Purchase_Items as Raw[])[0].Tax = 4.5;
        r.Grand_Total = 24.5;
      },
    ),
    expect: {
      bill: bill([item({ taxType: "INPUT2" })]),
      total: 24,
      warnings: [
        "Xero will total this bill 24.00 but Zoho's Grand Total is 24.50 (a difference of -0.50)",
      ],
    },
  },
  {
    name: "a header Tax that only repeats the line taxes is not a second tax",
    raw: tweak(po({}, [line({ Line_Tax: [tax("VAT", 20)] })]), (r) => (r.Tax = 4)),
    expect: { bill: bill([item({ taxType: "INPUT2" })]), total: 24 },
  },
  {
    name: "a Grand Total one cent off is warned too, with the difference",
    raw: { ...po(), Grand_Total: 20.01 },
    expect: {
      bill: bill([item()]),
      total: 20,
      warnings: [
        "Xero will total this bill 20.00 but Zoho's Grand Total is 20.01 (a difference of -0.01)",
      ],
    },
  },
  {
    name: "Grand Total that disagrees with the lines is a warning, not a block",
    raw: { ...po(), Grand_Total: 25 },
    expect: {
      bill: bill([item()]),
      total: 20,
      warnings: [
        "Xero will total this bill 20.00 but Zoho's Grand Total is 25.00 (a difference of -5.00)",
      ],
    },
  },
];

// ---- running the table ----

function settingsOf(c: Case): Settings {
  return SettingsSchema.parse(c.settings ?? SETTINGS);
}

type Outcome =
  | { parse: string[] }
  | { reasons: string[] }
  | { mapped: MappedBill };

function runCase(c: Case): Outcome {
  const settings = settingsOf(c);
  const parsed = parsePurchaseOrder(c.raw, settings);
  if (!parsed.ok) return { parse: parsed.reasons };
  const reasons = eligibility(parsed.po, settings);
  if (reasons.length > 0) {
    assert.throws(() => toBill(parsed.po, settings, CONTACT), /is not eligible/);
    return { reasons };
  }
  return { mapped: toBill(parsed.po, settings, CONTACT) };
}

for (const c of CASES) {
  Deno.test(`mapping: ${c.name}`, () => {
    const outcome = runCase(c);
    if ("bill" in c.expect) {
      assert.ok("mapped" in outcome, `expected a bill, got ${JSON.stringify(outcome)}`);
      const { mapped } = outcome;
      assert.deepEqual(mapped.invoice, c.expect.bill);
      assert.equal(mapped.total, c.expect.total);
      assert.deepEqual(mapped.warnings, c.expect.warnings ?? []);
      assert.match(mapped.hash, /^[0-9a-f]{64}$/);
    } else {
      assert.deepEqual(outcome, c.expect);
    }
  });
}

Deno.test("mapping: the table has at least 30 cases", () => {
  assert.ok(CASES.length >= 30, `${CASES.length} cases`);
});

// ---- the serializer: what xero-node sends is exactly what we built ----

type AttributeMap = { name: string; baseName: string; type: string }[];

/** Our camelCase object → the PascalCase body xero-node should send, checking every key is known. */
function expectedWire(
  value: Record<string, unknown>,
  map: AttributeMap,
  nested: Record<string, (v: unknown) => unknown>,
  where: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const attr = map.find((a) => a.name === key);
    assert.ok(attr, `${where}.${key} is not a field of xero-node's model`);
    out[attr.baseName] = nested[key] ? nested[key](v) : v;
  }
  return out;
}

function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined).map((
      [k, v],
    ) => [k, withoutUndefined(v)]),
  );
}

Deno.test("mapping: every emitted bill passes xero-node's ObjectSerializer unchanged", async () => {
  const emitted = CASES.map(runCase).flatMap((o) => ("mapped" in o ? [o.mapped] : []));
  assert.ok(emitted.length >= 30, `only ${emitted.length} bills were emitted`);
  const xero = await import("xero-node");
  const { ObjectSerializer, Invoice, LineItem, Contact } = xero;
  const invoiceMap = Invoice.getAttributeTypeMap() as AttributeMap;
  const lineMap = LineItem.getAttributeTypeMap() as AttributeMap;
  const contactMap = Contact.getAttributeTypeMap() as AttributeMap;

  for (const { invoice } of emitted) {
    const expected = expectedWire(invoice as unknown as Record<string, unknown>, invoiceMap, {
      contact: (c) => expectedWire(c as Record<string, unknown>, contactMap, {}, "contact"),
      lineItems: (ls) =>
        (ls as Record<string, unknown>[]).map((l, i) =>
          expectedWire(l, lineMap, {}, `lineItems[${i}]`)
        ),
    }, "invoice");
    // Exactly as accountingApi.createInvoices serialises its body.
    const wire = ObjectSerializer.serialize({ invoices: [invoice] }, "Invoices");
    assert.deepEqual(withoutUndefined(wire), { Invoices: [expected] });
    // The JSON that goes on the wire drops nothing either.
    assert.deepEqual(JSON.parse(JSON.stringify(wire)), { Invoices: [expected] });
  }
});

// ---- hash, helpers and settings ----

function mapped(raw: Raw, contact = CONTACT, settings: SettingsInput = SETTINGS): MappedBill {
  const s = SettingsSchema.parse(settings);
  const parsed = parsePurchaseOrder(raw, s);
  if (!parsed.ok) throw new Error(parsed.reasons.join("; "));
  return toBill(parsed.po, s, contact);
}

Deno.test("mapping: the hash is stable and changes only with what matters", () => {
  const base = po({}, [line({ Line_Tax: [tax("VAT", 20)] }), line({ Product_Name: P2 })]);
  const h = mapped(base).hash;
  // Same content, keys in another order, Zoho-side noise changed: same hash.
  const reordered = Object.fromEntries(Object.entries(base).reverse());
  assert.equal(mapped(reordered).hash, h);
  assert.equal(
    mapped({ ...base, Modified_Time: "2026-01-01T00:00:00+05:30", Owner: null, Xero_Bill_ID: "x" })
      .hash,
    h,
  );
  assert.equal(mapped(structuredClone(base)).hash, h);
  // Anything that changes the bill: a new hash.
  const changed = [
    mapped(base, { contactID: "another-contact" }).hash,
    mapped(po({}, [line({ Line_Tax: [tax("VAT", 20)], Quantity: 3 }), line({ Product_Name: P2 })]))
      .hash,
    mapped({ ...base, PO_Number: "PO-1002" }).hash,
    mapped({ ...base, Due_Date: "2025-06-30" }).hash,
    mapped(base, CONTACT, { ...SETTINGS, billStatus: "SUBMITTED" }).hash,
    mapped(base, CONTACT, { ...SETTINGS, defaultAccountCode: "310" }).hash,
  ];
  assert.equal(new Set([h, ...changed]).size, changed.length + 1);
});

Deno.test("mapping: xeroTotal recomputes from tax types; recordUrl and invoiceNumberOf", () => {
  const b = mapped(po({ Discount: 5, Adjustment: -1 }, [
    line({ Quantity: 3, List_Price: 19.99, Line_Tax: [tax("VAT", 20)] }),
    line({ Product_Name: P2, Quantity: 1, List_Price: 200, Line_Tax: [tax("GST", 15)] }),
  ]));
  // 59.97 + 11.99 + 200 + 30 − 5 − 1
  assert.equal(b.total, 295.96);
  assert.equal(xeroTotal(b.invoice, { INPUT2: 20, INPUT: 15 }), 295.96);
  assert.equal(xeroTotal(b.invoice, new Map([["INPUT2", 20], ["INPUT", 15]])), 295.96);
  assert.equal(xeroTotal(b.invoice), 253.97);
  assert.equal(recordUrl(PO_ID, DEFAULT_SETTINGS), URL);
  const parsed = parsePurchaseOrder(po({ PO_Number: " PO-9 " }), DEFAULT_SETTINGS);
  assert.ok(parsed.ok);
  assert.equal(invoiceNumberOf(parsed.po), "PO-9");
  assert.equal(parsed.po.id, PO_ID);
  assert.deepEqual(parsed.po.vendor, VENDOR);
});

Deno.test("mapping: settings defaults and validation", () => {
  assert.deepEqual(SettingsSchema.parse({}), {
    checkboxField: "Add_to_Xero",
    vendorField: "Vendor_Name",
    vendorLabel: "Client Name",
    defaultAccountCode: "300",
    accountOverrides: [],
    taxMappings: [],
    defaultTaxType: null,
    untaxedTaxType: "NONE",
    billStatus: "DRAFT",
    paymentTermsDays: 30,
    sendItemCodes: false,
    zohoRecordUrlBase: "https://crm.zoho.com/crm/tab/PurchaseOrders/",
    writeBack: {
      enabled: true,
      fields: {
        billId: "Xero_Bill_ID",
        billNumber: "Xero_Bill_Number",
        billStatus: "Xero_Bill_Status",
        syncStatus: "Xero_Sync_Status",
        syncError: "Xero_Sync_Error",
        lastSynced: "Xero_Last_Synced",
        amountPaid: "Xero_Amount_Paid",
        amountDue: "Xero_Amount_Due",
        fullyPaidOn: "Xero_Fully_Paid_On",
      },
    },
    lifecycle: { deleted: "leave", cancelled: "leave", unticked: "leave" },
  });
  assert.deepEqual(DEFAULT_SETTINGS, SettingsSchema.parse({}));
  // Partial nested input keeps the other defaults.
  const s = SettingsSchema.parse({ writeBack: { fields: { billId: "My_Bill" } } });
  assert.equal(s.writeBack.enabled, true);
  assert.equal(s.writeBack.fields.billId, "My_Bill");
  assert.equal(s.writeBack.fields.syncError, "Xero_Sync_Error");
  for (
    const bad of [
      { taxMappings: [{ taxType: "INPUT" }] },
      { billStatus: "PAID" },
      { checkboxField: "Add to Xero" },
      { defaultAccountCode: "12345678901" },
      { zohoRecordUrlBase: "ftp://example.com/" },
      { paymentTermsDays: -1 },
    ]
  ) {
    assert.equal(SettingsSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});

// ---- money checks against Xero (issue 13 points 8 and 9) ----

Deno.test("mapping: 10.03 less 0.10 at 15 % twice — Xero's own arithmetic gives Grand_Total 22.84", () => {
  const raw = po(
    {},
    Array.from(
      { length: 2 },
      () => line({ Quantity: 1, List_Price: 10.03, Discount: 0.1, Line_Tax: [tax("GST", 15)] }),
    ),
  );
  assert.equal(raw.Grand_Total, 22.84);
  const b = mapped(raw);
  assert.equal(b.total, 22.84);
  // Xero taxes each line at INPUT's 15 % unless the line carries a TaxAmount.
  assert.equal(xeroTotal(b.invoice, { INPUT: 15 }), 22.84);
  assert.deepEqual(b.warnings, []);
});

function parsedPo(raw: Raw, settings: SettingsInput) {
  const s = SettingsSchema.parse(settings);
  const parsed = parsePurchaseOrder(raw, s);
  if (!parsed.ok) throw new Error(parsed.reasons.join("; "));
  return { po: parsed.po, settings: s };
}

Deno.test("mapping: a Zoho 10 % tax mapped to a 15 % Xero tax type holds the record back, with why", () => {
  const gst = { taxMappings: [{ zohoTaxName: "GST", taxType: "INPUT" }] };
  // A PO of 110: two lines at GST 10 %, one untaxed.
  const raw = po({}, [
    line({ Quantity: 1, List_Price: 60, Line_Tax: [tax("GST", 10)] }),
    line({ Quantity: 1, List_Price: 40, Line_Tax: [tax("GST", 10)] }),
    line({ Quantity: 1, List_Price: 0.5, Product_Name: P4 }),
  ]);
  assert.equal(raw.Grand_Total, 110.5);
  const { po: order, settings } = parsedPo(raw, gst);
  // As XeroClient.taxRates() lists them.
  const xeroRates = [
    { taxType: "INPUT", name: "GST on Expenses", rate: 15 },
    { taxType: "NONE", name: "No GST", rate: 0 },
  ];
  assert.deepEqual(taxRateMismatches(order, settings, xeroRates), [
    'The Zoho tax "GST" (10%) is mapped to the Xero tax type INPUT, which is 15% in Xero; ' +
    "fix the tax mapping in the settings (or the rate in Xero)",
  ]);
  // What Xero would have made of it: 115.50, and the check on its answer says so.
  const b = toBill(order, settings, CONTACT);
  assert.equal(xeroTotal(b.invoice, xeroRates), 115.5);
  assert.equal(
    totalMismatch(order, 115.5),
    "Xero totals this bill 115.50 but Zoho's Grand Total is 110.50 (a difference of 5.00)",
  );
  assert.equal(totalMismatch(order, 110.5), null);
  assert.equal(
    totalMismatch(order, 110.49),
    "Xero totals this bill 110.49 but Zoho's Grand Total is 110.50 (a difference of -0.01)",
  );

  // Rates that agree (in any of the accepted shapes): nothing to hold.
  assert.deepEqual(taxRateMismatches(order, settings, { INPUT: 10, NONE: 0 }), []);
  assert.deepEqual(taxRateMismatches(order, settings, new Map([["INPUT", 10]])), []);
  // A tax type Xero does not list is left to Xero's own validation.
  assert.deepEqual(taxRateMismatches(order, settings, []), []);
  // Untaxed lines on a type Xero taxes: a reason too.
  assert.deepEqual(
    taxRateMismatches(order, SettingsSchema.parse({ ...gst, untaxedTaxType: "INPUT" }), {
      INPUT: 10,
    }),
    [
      "Untaxed lines (0%) are sent with the Xero tax type INPUT, which is 10% in Xero; " +
      "choose a 0% tax type for untaxed lines in the settings",
    ],
  );
  // A tax on the whole order, and the default tax type, are checked the same way.
  const doc = parsedPo(po({ $line_tax: [tax("Sales Tax", 8.875)] }), {
    defaultTaxType: "TAX",
  });
  assert.deepEqual(taxRateMismatches(doc.po, doc.settings, { TAX: 9, NONE: 0 }), [
    'The Zoho tax "Sales Tax" (8.875%) is mapped to the Xero tax type TAX, which is 9% in ' +
    "Xero; fix the tax mapping in the settings (or the rate in Xero)",
  ]);
  assert.deepEqual(taxRateMismatches(doc.po, doc.settings, { TAX: 8.875 }), []);
});

Deno.test("mapping: totalMismatch is null without a Grand_Total", () => {
  const { po: order } = parsedPo({ ...po(), Grand_Total: null }, SETTINGS);
  assert.equal(totalMismatch(order, 20), null);
});
