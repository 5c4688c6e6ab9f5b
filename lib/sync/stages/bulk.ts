/**
 * A purchase order put together from its listing (header fields) and its line items read in bulk
 * (COQL), trusted only when it adds up: the lines must reproduce the order's own Sub_Total, and
 * the header's totals must agree with each other. Anything short of that (a line missing or read
 * twice, a lookup without its name, a tax without its rate, an order taxed as a whole) gives null,
 * and the order is read with the single-record GET instead.
 */
import { rescale, toUnits } from "../../mapping/money.ts";
import type { Settings } from "../../mapping/mod.ts";

/** Header fields parsePurchaseOrder reads (besides the vendor and checkbox, named by settings). */
const HEADER = [
  "Modified_Time",
  "Created_Time",
  "Subject",
  "PO_Number",
  "PO_Date",
  "Due_Date",
  "Currency",
  "Sub_Total",
  "Discount",
  "Tax",
  "Adjustment",
  "Grand_Total",
];

/** Cents of a Zoho amount (number or numeric text); null when absent; undefined when unreadable. */
function cents(v: unknown): bigint | null | undefined {
  if (v === null || v === undefined || v === "") return null;
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) return undefined;
  try {
    return toUnits(n, 2);
  } catch {
    return undefined;
  }
}

/** Zoho's line amount: quantity × list price, rounded to the cent (half away from zero). */
function lineAmount(quantity: unknown, price: unknown): bigint | undefined {
  const q = typeof quantity === "string" ? Number(quantity) : quantity;
  const p = typeof price === "string" ? Number(price) : price;
  if (typeof q !== "number" || typeof p !== "number" || !Number.isFinite(q * p)) return undefined;
  try {
    return rescale(toUnits(q, 6) * toUnits(p, 6), 12, 2);
  } catch {
    return undefined;
  }
}

const near = (a: bigint, b: bigint) => (a > b ? a - b : b - a) <= 1n;

/** Why a bulk line cannot stand in for the GET's line, or null when it can. */
function lineProblem(line: Record<string, unknown>): string | null {
  const amount = lineAmount(line.Quantity, line.List_Price);
  if (amount === undefined) return "quantity or price unreadable";
  const discount = cents(line.Discount);
  const tax = cents(line.Tax);
  if (discount === undefined || tax === undefined) return "discount or tax unreadable";
  const product = line.Product_Name as { id?: unknown; name?: unknown } | null | undefined;
  if (product && product.id && typeof product.name !== "string") return "product without its name";
  // Columns the mapping reads must have come along (an absent one is not the same as empty).
  if (!("Line_Tax" in line) || !("Description" in line)) return "a column missing";
  const taxes = line.Line_Tax;
  if (taxes !== null && taxes !== undefined && !Array.isArray(taxes)) return "taxes unreadable";
  if ((tax ?? 0n) !== 0n) {
    // The mapping picks the Xero tax type by the tax's name or rate: both must have come along.
    const list = (taxes ?? []) as Array<Record<string, unknown>>;
    const sum = list.reduce<bigint | undefined>((s, t) => {
      const v = cents(t?.value);
      return s === undefined || v === undefined ? undefined : s + (v ?? 0n);
    }, 0n);
    if (!list.length || sum === undefined || !near(sum, tax!)) return "tax without its rates";
  }
  return null;
}

/**
 * The record as the single-record GET would give it, or null when the bulk read cannot be
 * trusted for this order. `lines` are the order's rows from COQL, in Sequence_Number order.
 */
export function recordFromBulk(
  header: Record<string, unknown>,
  lines: Record<string, unknown>[] | undefined,
  settings: Settings,
): Record<string, unknown> | null {
  if (!lines?.length || typeof header.Modified_Time !== "string") return null;
  const sub = cents(header.Sub_Total);
  const grand = cents(header.Grand_Total);
  const discount = cents(header.Discount);
  const tax = cents(header.Tax);
  const adjustment = cents(header.Adjustment);
  if (
    sub === null || sub === undefined || grand === null || grand === undefined ||
    discount === undefined || tax === undefined || adjustment === undefined
  ) return null;
  // The header's totals must agree with each other (then they belong to one version of the order).
  if (!near(sub - (discount ?? 0n) + (tax ?? 0n) + (adjustment ?? 0n), grand)) return null;

  const ids = new Set<unknown>();
  const sequence = new Set<unknown>();
  let sum = 0n;
  let lineTaxed = false;
  for (const line of lines) {
    if (lineProblem(line)) return null;
    // A row read twice would be billed twice.
    if (line.id !== undefined && line.id !== null) {
      if (ids.has(line.id)) return null;
      ids.add(line.id);
    }
    if (line.Sequence_Number !== undefined && line.Sequence_Number !== null) {
      if (sequence.has(line.Sequence_Number)) return null;
      sequence.add(line.Sequence_Number);
    }
    const lineTax = cents(line.Tax) ?? 0n;
    if (lineTax !== 0n) lineTaxed = true;
    sum += lineAmount(line.Quantity, line.List_Price)! - (cents(line.Discount) ?? 0n) + lineTax;
  }
  // Every line there, none twice: their net amounts give the order's own Sub_Total.
  if (!near(sum, sub)) return null;
  // A tax on the order as a whole needs its rate ($line_tax), which the listing does not carry.
  if ((tax ?? 0n) !== 0n && !lineTaxed) return null;
  // The listing asked for every one of these fields: one it left out is empty.
  const empty = Object.fromEntries(
    [...HEADER, settings.vendorField, settings.checkboxField].map((f) => [f, null]),
  );
  return { ...empty, ...header, Purchase_Items: lines };
}
