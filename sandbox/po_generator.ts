/**
 * Realistic, consistent Zoho CRM purchase orders, as the v8 single-record GET returns them
 * (`GET /crm/v8/Purchase_Orders/{id}` → `data[0]`). Used by the simulators, the demo, the bench and
 * the mapping tests. Self-contained on purpose (no imports from lib/): its arithmetic is an
 * independent copy of how Zoho totals a purchase order, so tests can hold the mapping against it.
 *
 * Zoho's arithmetic, 2 dp, rounding half away from zero:
 *   line  Total = Quantity × List_Price;  Total_After_Discount = Total − Discount;
 *         Tax = Total_After_Discount × Σ Line_Tax percentages;  Net_Total = Total_After_Discount + Tax
 *   order Sub_Total = Σ Net_Total;  Tax = (Sub_Total − Discount) × the order-level tax rate ($line_tax,
 *         used only when the lines carry no tax);  Grand_Total = Sub_Total − Discount + Tax + Adjustment
 */

export type Rand = () => number;

/** mulberry32: tiny, fast, and the same sequence for the same seed everywhere. */
export function seededRandom(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface VendorRef {
  id: string;
  name: string;
}

export interface TaxRate {
  name: string;
  percentage: number;
}

export type LineItemsField = "Purchase_Items" | "Purchased_Items" | "Product_Details";

export interface GeneratorOptions {
  /** The record id (a 19-digit string); random when absent. */
  id?: string;
  /** Vendors to pick from; a random one from a built-in list when absent. */
  vendors?: VendorRef[];
  /** Tax the order as a whole (header Tax from `$line_tax`) instead of per line. */
  documentTax?: TaxRate;
  /** Where the items go: v8 `Purchase_Items` (default), `Purchased_Items`, or v2 `Product_Details`. */
  itemsField?: LineItemsField;
  /** Number of purchase items (default 1–5, random). */
  items?: number;
}

// ---- exact 2-dp arithmetic (BigInt units of 10^-dp) ----

const P10 = (n: number) => 10n ** BigInt(n);

function divRound(n: bigint, d: bigint): bigint {
  const q = ((n < 0n ? -n : n) + d / 2n) / d;
  return n < 0n ? -q : q;
}

function units(x: number, dp: number): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(x));
  if (!m) throw new RangeError(`not a decimal: ${x}`);
  const [, sign, int, frac = "", exp = "0"] = m;
  const shift = Number(exp) - frac.length + dp;
  const digits = BigInt(int + frac);
  const u = shift >= 0 ? digits * P10(shift) : divRound(digits, P10(-shift));
  return sign ? -u : u;
}

const money = (cents: bigint) => Number(cents) / 100;
const r2 = (x: number) => money(units(x, 2));
/** round2(a × b) for decimals a and b (up to 6 dp each). */
const mul2 = (a: number, b: number) => money(divRound(units(a, 6) * units(b, 6), P10(10)));
/** round2(amount × percent / 100). */
const pct2 = (amount: number, percent: number) =>
  money(divRound(units(amount, 2) * units(percent, 6), P10(8)));
const add = (...xs: number[]) => money(xs.reduce((s, x) => s + units(x, 2), 0n));

// ---- random helpers ----

const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const int = (rand: Rand, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const digits = (rand: Rand, n: number) =>
  Array.from({ length: n }, () => String(int(rand, 0, 9))).join("");
/** Zoho record ids: 19 digits, org prefix then a sequence. */
const zohoId = (rand: Rand) => `587654300000${digits(rand, 7)}`;

const VENDORS: readonly VendorRef[] = [
  { id: "5876543000000110001", name: "Acme Industrial Supply" },
  { id: "5876543000000110002", name: "Nordisk Træ & Metal ApS" },
  { id: "5876543000000110003", name: "Müller Bürobedarf GmbH" },
  { id: "5876543000000110004", name: "Kiwi Coffee Roasters Ltd" },
  { id: "5876543000000110005", name: "São Paulo Têxteis" },
  { id: "5876543000000110006", name: "東京部品株式会社" },
];

const PRODUCTS = [
  { name: "Steel bracket 40 mm", code: "BRK-040" },
  { name: "Pallet wrap, 500 m roll", code: "PWR-500" },
  { name: "Espresso beans 1 kg", code: "COF-1KG" },
  { name: "Café table (oak)", code: "TBL-OAK" },
  { name: 'Monitor 27" IPS', code: "MON-27" },
  { name: "Schraube M4 × 20 (100 Stk.)", code: "SCR-M4-20" },
  { name: "緑茶 green tea, 100 g", code: "TEA-100" },
  { name: "Cable ties 🔗 pack", code: "TIE-PK" },
  { name: "Printer paper A4", code: "PAP-A4" },
  { name: "Safety gloves (L)", code: "GLV-L" },
  { name: "Freight (per pallet)", code: null },
  { name: "Consulting hour", code: "SVC-HR" },
].map((p, i) => ({ ...p, id: `58765430000002${String(10001 + i)}` }));

const DESCRIPTIONS = [
  "Delivered to the main warehouse, dock 3",
  "Per quote Q-2291; price held until end of quarter",
  "Livraison partielle acceptée — merci",
  "Größe L, Farbe blau",
  "Replacement parts for line 2 ✔",
  "納期：2週間",
];

const LINE_TAX_CHOICES: readonly (readonly TaxRate[])[] = [
  [],
  [],
  [{ name: "VAT", percentage: 20 }],
  [{ name: "VAT", percentage: 20 }],
  [{ name: "GST", percentage: 10 }],
  [{ name: "GST", percentage: 15 }],
  [{ name: "Sales Tax", percentage: 8.875 }],
  [{ name: "Reduced VAT", percentage: 5 }],
  [{ name: "CGST", percentage: 9 }, { name: "SGST", percentage: 9 }],
];

const CURRENCIES = [
  ["USD", "$"],
  ["USD", "$"],
  ["EUR", "€"],
  ["GBP", "£"],
  ["AUD", "A$"],
  ["NZD", "NZ$"],
  ["INR", "₹"],
] as const;

function taxEntry(rand: Rand, t: TaxRate, amount: number) {
  return {
    percentage: t.percentage,
    name: t.name,
    id: `587654300000030${digits(rand, 4)}`,
    value: pct2(amount, t.percentage),
    display_name: `${t.name} - ${t.percentage} %`,
  };
}

function quantityOf(rand: Rand): number {
  const r = rand();
  if (r < 0.7) return int(rand, 1, 50);
  if (r < 0.9) return int(rand, 1, 400) / pick(rand, [10, 100]);
  return int(rand, 1, 9999) / 1000;
}

function priceOf(rand: Rand): number {
  return rand() < 0.8 ? int(rand, 50, 200000) / 100 : int(rand, 1, 5_000_000) / 10000;
}

/** Puts a v8-style line into v2 `Product_Details` shape (lowercase keys). */
function toV2(line: Record<string, unknown>): Record<string, unknown> {
  return {
    id: line.id,
    product: line.Product_Name,
    quantity: line.Quantity,
    list_price: line.List_Price,
    unit_price: line.List_Price,
    Discount: line.Discount,
    total: line.Total,
    total_after_discount: line.Total_After_Discount,
    Tax: line.Tax,
    line_tax: line.Line_Tax,
    net_total: line.Net_Total,
    product_description: line.Description,
    book: null,
  };
}

const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);

/**
 * Recomputes every derived amount (line Total, Total_After_Discount, Tax, Net_Total and the Line_Tax
 * values; header Sub_Total, Tax, Grand_Total) from the inputs the way Zoho does. Lines with
 * non-numeric inputs are left alone (tests make malformed records on purpose).
 */
export function withZohoTotals(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...record };
  const field = (["Purchase_Items", "Purchased_Items", "Product_Details"] as const).find((f) =>
    Array.isArray(out[f]) && (out[f] as unknown[]).length > 0
  );
  let sub = 0;
  let lineTaxed = false;
  if (field) {
    out[field] = (out[field] as Record<string, unknown>[]).map((raw) => {
      const v2 = field === "Product_Details";
      const k = v2
        ? {
          q: "quantity",
          p: "list_price",
          t: "total",
          tad: "total_after_discount",
          nt: "net_total",
          lt: "line_tax",
        }
        : {
          q: "Quantity",
          p: "List_Price",
          t: "Total",
          tad: "Total_After_Discount",
          nt: "Net_Total",
          lt: "Line_Tax",
        };
      const line = { ...raw };
      const q = line[k.q];
      const p = line[k.p];
      const disc = line.Discount ?? 0;
      if (!isNum(q) || !isNum(p) || !isNum(disc)) return line;
      const total = mul2(q, p);
      const tad = add(total, -disc);
      const taxes = Array.isArray(line[k.lt]) ? (line[k.lt] as Record<string, unknown>[]) : [];
      const rate = taxes.reduce((s, t) => s + (isNum(t.percentage) ? t.percentage : 0), 0);
      if (rate > 0) lineTaxed = true;
      const tax = pct2(tad, Number(rate.toFixed(6)));
      line[k.t] = total;
      line[k.tad] = tad;
      line.Tax = tax;
      line[k.nt] = add(tad, tax);
      line[k.lt] = taxes.map((t) => ({
        ...t,
        value: isNum(t.percentage) ? pct2(tad, t.percentage) : t.value,
      }));
      sub = add(sub, line[k.nt] as number);
      return line;
    });
  }
  const discount = isNum(out.Discount) ? out.Discount : 0;
  const adjustment = isNum(out.Adjustment) ? out.Adjustment : 0;
  const docTaxes = Array.isArray(out.$line_tax) ? (out.$line_tax as Record<string, unknown>[]) : [];
  const base = add(sub, -discount);
  let tax = 0;
  if (!lineTaxed && docTaxes.length > 0) {
    const rate = docTaxes.reduce((s, t) => s + (isNum(t.percentage) ? t.percentage : 0), 0);
    tax = pct2(base, Number(rate.toFixed(6)));
    out.$line_tax = docTaxes.map((t) => ({
      ...t,
      value: isNum(t.percentage) ? pct2(base, t.percentage) : t.value,
    }));
  }
  out.Sub_Total = sub;
  out.Tax = tax;
  out.Grand_Total = add(base, tax, adjustment);
  return out;
}

/** The "Created_Time" style Zoho uses: local time with the org's offset. */
function zohoDateTime(date: string, minutes: number): string {
  const t = new Date(`${date}T00:00:00Z`);
  t.setUTCMinutes(t.getUTCMinutes() + minutes);
  return `${t.toISOString().slice(0, 19)}+05:30`;
}

function addDays(date: string, days: number): string {
  const t = new Date(`${date}T00:00:00Z`);
  t.setUTCDate(t.getUTCDate() + days);
  return t.toISOString().slice(0, 10);
}

/**
 * One purchase order: eligible by default ("Add to Xero" ticked, a vendor, 1–5 items); pass
 * `overrides` (top-level fields, applied before totals are computed; derived totals you override
 * win) to make it otherwise, e.g. `{ Add_to_Xero: false }` or `{ Vendor_Name: null }`.
 */
export function generatePurchaseOrder(
  rand: Rand,
  overrides: Record<string, unknown> = {},
  opts: GeneratorOptions = {},
): Record<string, unknown> {
  const id = opts.id ?? zohoId(rand);
  const vendor = pick(rand, opts.vendors?.length ? opts.vendors : VENDORS);
  const [currency, symbol] = pick(rand, CURRENCIES);
  const count = opts.items ?? pick(rand, [1, 1, 2, 2, 3, 3, 4, 5]);

  const lines: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const product = pick(rand, PRODUCTS);
    const quantity = quantityOf(rand);
    const listPrice = priceOf(rand);
    const total = mul2(quantity, listPrice);
    let discount = 0;
    const d = rand();
    if (d < 0.15) discount = pct2(total, pick(rand, [5, 10, 12.5, 15, 20]));
    else if (d < 0.25) discount = r2(Math.min(total, int(rand, 1, 5000) / 100));
    const taxes = opts.documentTax ? [] : pick(rand, LINE_TAX_CHOICES);
    const description = rand() < 0.5 ? null : pick(rand, DESCRIPTIONS);
    lines.push({
      id: zohoId(rand),
      Sequence_Number: i + 1,
      Product_Name: { id: product.id, name: product.name, Product_Code: product.code },
      Quantity: quantity,
      List_Price: listPrice,
      Discount: discount,
      Total: 0,
      Total_After_Discount: 0,
      Tax: 0,
      Line_Tax: taxes.map((t) => taxEntry(rand, t, 0)),
      Net_Total: 0,
      Description: description,
      Quantity_in_Stock: int(rand, -20, 500),
      Unit_Price: listPrice,
    });
  }

  const poDate = addDays("2025-01-01", int(rand, 0, 364));
  const createdMinutes = int(rand, 6 * 60, 18 * 60);
  const subject = `${pick(rand, ["Restock", "Order", "Monthly supply", "Urgent"])}: ${
    (lines[0].Product_Name as { name: string }).name
  }`;
  const itemsField = opts.itemsField ?? "Purchase_Items";
  const headerDiscount = rand() < 0.2 ? int(rand, 1, 10000) / 100 : 0;
  const adjustment = rand() < 0.2 ? (rand() < 0.5 ? -1 : 1) * int(rand, 1, 5000) / 100 : 0;

  const record: Record<string, unknown> = {
    id,
    Owner: { name: "Patricia Boyle", id: "5876543000000090001", email: "p.boyle@example.com" },
    $currency_symbol: symbol,
    $approved: true,
    $editable: true,
    $process_flow: false,
    Subject: subject,
    PO_Number: rand() < 0.9 ? `PO-${digits(rand, 5)}` : null,
    PO_Date: poDate,
    Due_Date: rand() < 0.6 ? addDays(poDate, pick(rand, [14, 30, 45])) : null,
    Status: pick(rand, ["Created", "Approved", "Delivered"]),
    Vendor_Name: { id: vendor.id, name: vendor.name },
    Contact_Name: null,
    Currency: currency,
    Exchange_Rate: 1,
    Carrier: pick(rand, ["FedEX", "UPS", "DHL", "BlueDart", null]),
    Tracking_Number: null,
    Requisition_No: null,
    Excise_Duty: null,
    Sales_Commission: null,
    Terms_and_Conditions: "Payment within 30 days of invoice.",
    Description: null,
    Billing_Street: "1 Harbour Road",
    Billing_City: "Wellington",
    Billing_State: null,
    Billing_Code: "6011",
    Billing_Country: "New Zealand",
    Shipping_Street: null,
    Shipping_City: null,
    Shipping_State: null,
    Shipping_Code: null,
    Shipping_Country: null,
    Add_to_Xero: true,
    Xero_Bill_ID: null,
    Xero_Bill_Number: null,
    Xero_Bill_Status: null,
    Xero_Sync_Status: null,
    Xero_Sync_Error: null,
    Xero_Last_Synced: null,
    Created_Time: zohoDateTime(poDate, createdMinutes),
    Modified_Time: zohoDateTime(poDate, createdMinutes + int(rand, 1, 72 * 60)),
    Discount: headerDiscount,
    Adjustment: adjustment,
    $line_tax: opts.documentTax ? [{ ...taxEntry(rand, opts.documentTax, 0) }] : [],
    [itemsField]: itemsField === "Product_Details" ? lines.map(toV2) : lines,
    ...overrides,
  };
  let totalled = withZohoTotals(record);
  // A header discount larger than the order makes no sense: keep it to 10% of the Sub Total.
  if (
    !("Discount" in overrides) && (totalled.Discount as number) > (totalled.Sub_Total as number)
  ) {
    totalled = withZohoTotals({ ...record, Discount: pct2(totalled.Sub_Total as number, 10) });
  }
  for (const key of ["Sub_Total", "Tax", "Grand_Total"]) {
    if (key in overrides) totalled[key] = overrides[key];
  }
  return totalled;
}
