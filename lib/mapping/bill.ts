/**
 * Purchase order → Xero bill (DESIGN §6), pure and deterministic. The bill is in xero-node's camelCase
 * model shape, so its `ObjectSerializer` sends it unchanged (PascalCase keys would be dropped).
 *
 * Why the lines look as they do: Xero bills (ACCPAY) take no DiscountRate/DiscountAmount, and Xero
 * quantities may not be negative, so a line discount is its own quantity-1 line with a negative unit
 * amount right after its item, and the header discount and adjustment are lines at the end. Zoho's
 * header Discount applies to the Sub Total, which already includes line taxes, so it goes untaxed;
 * a line discount reduces the taxed amount, so it carries its item's tax type.
 */
import { createHash } from "node:crypto";
import { formatMoney, fromUnits, lineAmountCents, roundTo, taxCents, toUnits } from "./money.ts";
import {
  appliedTaxes,
  type PurchaseItem,
  type PurchaseOrder,
  type ZohoTax,
} from "./purchase_order.ts";
import { type BillStatus, fieldLabel, type Settings } from "./settings.ts";

export interface ContactRef {
  contactID: string;
}

/** xero-node `LineItem` fields we send. */
export interface XeroLineItem {
  description: string;
  quantity: number;
  unitAmount: number;
  accountCode: string;
  taxType: string;
  itemCode?: string;
}

/** xero-node `Invoice` fields we send (dates are "YYYY-MM-DD": the model types them as strings). */
export interface XeroInvoice {
  type: "ACCPAY";
  contact: ContactRef;
  invoiceNumber: string;
  date: string;
  dueDate: string;
  currencyCode?: string;
  url: string;
  status: BillStatus;
  lineAmountTypes: "Exclusive";
  lineItems: XeroLineItem[];
}

export interface MappedBill {
  invoice: XeroInvoice;
  /** sha256 hex of the canonical bill body (contact included). */
  hash: string;
  /** The bill total as Xero will compute it: tax per line, rounded to 2 dp. */
  total: number;
  /** Things a person should know but that do not block the bill (e.g. totals differ). */
  warnings: string[];
}

export const MAX_DESCRIPTION = 4000;
export const MAX_INVOICE_NUMBER = 255;
/** Bump when the mapping changes what it emits, so every bill is re-sent once. */
const HASH_VERSION = "bill-v1";

/** Cuts text to `max` UTF-16 units with an ellipsis, never splitting a surrogate pair. */
export function limitText(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  const last = cut.charCodeAt(cut.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** InvoiceNumber (a bill's "Reference" in Xero): PO_Number, else Subject, else the record id. */
export function invoiceNumberOf(po: PurchaseOrder): string {
  const chosen = po.poNumber?.trim() || po.subject?.trim() || po.id;
  return limitText(chosen, MAX_INVOICE_NUMBER);
}

export function recordUrl(poId: string, settings: Settings): string {
  return settings.zohoRecordUrlBase + poId;
}

// ---- dates ----

function datePart(dateTime: string | null): string | null {
  const m = dateTime ? /^(\d{4})-(\d{2})-(\d{2})/.exec(dateTime) : null;
  if (!m) return null;
  const t = new Date(`${m[0]}T00:00:00Z`);
  return Number.isNaN(t.getTime()) || t.toISOString().slice(0, 10) !== m[0] ? null : m[0];
}

function addDays(date: string, days: number): string {
  const t = new Date(`${date}T00:00:00Z`);
  t.setUTCDate(t.getUTCDate() + days);
  return t.toISOString().slice(0, 10);
}

/** Bill date: PO_Date, else the date the record was created (in Zoho's own offset). */
function billDateOf(po: PurchaseOrder): string | null {
  return po.poDate ?? datePart(po.createdTime);
}

// ---- taxes ----

type TaxChoice = { ok: true; taxType: string; percentage: number } | { ok: false; reason: string };

const samePercentage = (a: number, b: number) => toUnits(a, 6) === toUnits(b, 6);

function describeTaxes(taxes: readonly ZohoTax[], percentage: number): string {
  const names = taxes.map((t) => t.name ?? t.displayName ?? "unnamed").join(" + ");
  return `"${names}" (${roundTo(percentage, 6)}%)`;
}

/**
 * The Xero tax type for the taxes applied to one line (or the whole order). Name mappings first
 * (one tax: its name or display name; several: their names sorted and joined by " + ", e.g.
 * "CGST + SGST"), then percentage-only mappings (several taxes: their combined percentage), then
 * `defaultTaxType` when the admin set one; otherwise a reason.
 */
function chooseTax(taxes: readonly ZohoTax[], settings: Settings, where: string): TaxChoice {
  if (taxes.length === 0) return { ok: true, taxType: settings.untaxedTaxType, percentage: 0 };
  const unrated = taxes.find((t) => t.percentage === null);
  if (unrated) {
    return {
      ok: false,
      reason: `The tax "${
        unrated.name ?? unrated.displayName ?? "unnamed"
      }" on ${where} has no percentage`,
    };
  }
  const percentage = fromUnits(
    taxes.reduce((sum, t) => sum + toUnits(t.percentage as number, 6), 0n),
    6,
  );
  const names = taxes.length === 1
    ? [taxes[0].name, taxes[0].displayName]
    : [taxes.map((t) => t.name ?? t.displayName ?? "").sort().join(" + ")];
  const wanted = new Set(names.filter((n): n is string => !!n).map((n) => n.toLowerCase()));

  const byName = settings.taxMappings.find((m) =>
    m.zohoTaxName !== undefined && wanted.has(m.zohoTaxName.toLowerCase()) &&
    (m.percentage === undefined || samePercentage(m.percentage, percentage))
  );
  const byRate = byName ??
    settings.taxMappings.find((m) =>
      m.zohoTaxName === undefined && m.percentage !== undefined &&
      samePercentage(m.percentage, percentage)
    );
  const taxType = byRate?.taxType ?? settings.defaultTaxType;
  if (taxType) return { ok: true, taxType, percentage };
  return {
    ok: false,
    reason: `The tax ${describeTaxes(taxes, percentage)} on ${where} has no Xero tax type; ` +
      "add a tax mapping in the settings",
  };
}

// ---- lines ----

interface PlannedLine {
  line: XeroLineItem;
  /** The Zoho tax percentage behind the line's tax type: Xero computes tax from that rate. */
  percentage: number;
}

interface Plan {
  lines: PlannedLine[];
  reasons: string[];
  warnings: string[];
}

function accountFor(item: PurchaseItem, settings: Settings): string {
  const { id, code } = item.product ?? { id: null, code: null };
  const hit = settings.accountOverrides.find((o) => o.match === id || o.match === code);
  return hit?.accountCode ?? settings.defaultAccountCode;
}

function whereOf(item: PurchaseItem): string {
  const name = item.product?.name;
  return name ? `line ${item.line} (${name})` : `line ${item.line}`;
}

function described(text: string, what: string, warnings: string[]): string {
  const trimmed = text.trim();
  if (trimmed.length > MAX_DESCRIPTION) {
    warnings.push(`The description of ${what} was shortened to 4,000 characters`);
  }
  return limitText(trimmed, MAX_DESCRIPTION);
}

function rounded4(value: number, what: string, warnings: string[]): number {
  const r = roundTo(value, 4);
  if (r !== value) warnings.push(`${what} was rounded to 4 decimal places (${value} → ${r})`);
  return r;
}

/** The document-level tax (a header `Tax` with no taxes on the lines), or a reason it cannot map. */
function documentTaxOf(po: PurchaseOrder, settings: Settings): TaxChoice | null {
  if (po.tax === 0) return null;
  const lineTaxed = po.items.some((i) => appliedTaxes(i.taxes).length > 0);
  if (lineTaxed) {
    // Some Zoho set-ups echo the sum of the line taxes in the header Tax: that is no extra tax.
    const lineSum = po.items.reduce((s, i) => s + toUnits(i.tax ?? 0, 2), 0n);
    if (toUnits(po.tax, 2) - lineSum <= 1n && lineSum - toUnits(po.tax, 2) <= 1n) return null;
    return {
      ok: false,
      reason: `The purchase order has taxes on its purchase items and a tax of ${
        formatMoney(po.tax)
      } on its total; Xero takes tax per line, so keep only one of them`,
    };
  }
  const taxes = appliedTaxes(po.documentTaxes);
  if (taxes.length === 0) {
    return {
      ok: false,
      reason: `The purchase order has a tax of ${formatMoney(po.tax)} on its total but no tax rate`,
    };
  }
  return chooseTax(taxes, settings, "the purchase order total");
}

function planLines(po: PurchaseOrder, settings: Settings): Plan {
  const reasons: string[] = [];
  const warnings: string[] = [];
  const lines: PlannedLine[] = [];
  const docTax = documentTaxOf(po, settings);
  if (docTax && !docTax.ok) reasons.push(docTax.reason);
  const docChoice = docTax?.ok ? docTax : null;

  for (const item of po.items) {
    const where = whereOf(item);
    const before = reasons.length;
    if (item.quantity === null) reasons.push(`Quantity on ${where} is missing`);
    else if (item.quantity <= 0) {
      reasons.push(`Quantity on ${where} is ${item.quantity}; it must be more than 0`);
    }
    if (item.listPrice === null) reasons.push(`List price on ${where} is missing`);
    const text = item.description?.trim() ? item.description : item.product?.name ?? null;
    if (!text) reasons.push(`Line ${item.line} has no product and no description`);

    const applied = appliedTaxes(item.taxes);
    let tax: TaxChoice;
    if (applied.length === 0 && (item.tax ?? 0) !== 0) {
      tax = {
        ok: false,
        reason: `${where[0].toUpperCase()}${where.slice(1)} has a tax of ${
          formatMoney(item.tax ?? 0)
        } but no tax rate`,
      };
    } else {tax = docChoice && applied.length === 0
        ? docChoice
        : chooseTax(applied, settings, where);}
    if (!tax.ok) reasons.push(tax.reason);
    if (reasons.length > before || !tax.ok) continue;

    const accountCode = accountFor(item, settings);
    const line: XeroLineItem = {
      description: described(text as string, where, warnings),
      quantity: rounded4(item.quantity as number, `Quantity on ${where}`, warnings),
      unitAmount: rounded4(item.listPrice as number, `List price on ${where}`, warnings),
      accountCode,
      taxType: tax.taxType,
    };
    if (settings.sendItemCodes && item.product?.code) line.itemCode = item.product.code;
    lines.push({ line, percentage: tax.percentage });

    if (item.discount !== 0) {
      const label = item.product?.name ?? text as string;
      lines.push({
        line: {
          description: limitText(`Discount: ${label.trim()}`, MAX_DESCRIPTION),
          quantity: 1,
          unitAmount: roundTo(-item.discount, 4),
          accountCode,
          taxType: tax.taxType,
        },
        percentage: tax.percentage,
      });
    }
  }

  if (po.discount !== 0) {
    lines.push({
      line: {
        description: "Discount on the purchase order",
        quantity: 1,
        unitAmount: roundTo(-po.discount, 4),
        accountCode: settings.defaultAccountCode,
        taxType: docChoice?.taxType ?? settings.untaxedTaxType,
      },
      percentage: docChoice?.percentage ?? 0,
    });
  }
  if (po.adjustment !== 0) {
    lines.push({
      line: {
        description: "Adjustment",
        quantity: 1,
        unitAmount: roundTo(po.adjustment, 4),
        accountCode: settings.defaultAccountCode,
        taxType: settings.untaxedTaxType,
      },
      percentage: 0,
    });
  }
  return { lines, reasons, warnings };
}

// ---- eligibility ----

/** Every failed rule as one plain-words reason; [] = the purchase order can become a bill. */
export function eligibility(po: PurchaseOrder, settings: Settings): string[] {
  const reasons: string[] = [];
  if (po.raw[settings.checkboxField] !== true) {
    reasons.push(`'${fieldLabel(settings.checkboxField)}' is not ticked`);
  }
  if (!po.vendor) reasons.push(`No vendor (${settings.vendorLabel}) is set`);
  if (po.items.length === 0) reasons.push("The purchase order has no purchase items");
  if (!billDateOf(po)) reasons.push("The purchase order has no PO Date and no Created Time");
  reasons.push(...planLines(po, settings).reasons);
  return reasons;
}

// ---- totals and hash ----

function totalCents(lines: readonly PlannedLine[]): bigint {
  let cents = 0n;
  for (const { line, percentage } of lines) {
    const amount = lineAmountCents(line.quantity, line.unitAmount);
    cents += amount + taxCents(amount, percentage);
  }
  return cents;
}

/**
 * The bill total as Xero computes it: each line amount rounded to 2 dp, plus its tax (at the rate of
 * its tax type, from `taxRates` — TaxType → percent; a type not listed counts as 0%) rounded per line.
 */
export function xeroTotal(
  invoice: XeroInvoice,
  taxRates?: Readonly<Record<string, number>> | ReadonlyMap<string, number>,
): number {
  const rateOf = (taxType: string): number => {
    if (!taxRates) return 0;
    if (taxRates instanceof Map) return taxRates.get(taxType) ?? 0;
    const rates = taxRates as Readonly<Record<string, number>>;
    return Object.hasOwn(rates, taxType) ? rates[taxType] : 0;
  };
  const lines = invoice.lineItems.map((line) => ({ line, percentage: rateOf(line.taxType) }));
  return fromUnits(totalCents(lines), 2);
}

/** JSON with object keys sorted and undefined left out: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

export function billHash(invoice: XeroInvoice): string {
  return createHash("sha256").update(`${HASH_VERSION}\n${canonicalJson(invoice)}`).digest("hex");
}

// ---- the bill ----

/**
 * The Xero bill for an eligible purchase order. Throws when `eligibility` would give reasons: callers
 * check eligibility first and report those reasons instead.
 */
export function toBill(po: PurchaseOrder, settings: Settings, contact: ContactRef): MappedBill {
  const reasons = eligibility(po, settings);
  if (reasons.length > 0) {
    throw new Error(`purchase order ${po.id} is not eligible: ${reasons.join("; ")}`);
  }
  const plan = planLines(po, settings);
  const date = billDateOf(po) as string;
  const invoice: XeroInvoice = {
    type: "ACCPAY",
    contact: { contactID: contact.contactID },
    invoiceNumber: invoiceNumberOf(po),
    date,
    dueDate: po.dueDate ?? addDays(date, settings.paymentTermsDays),
    ...(po.currency ? { currencyCode: po.currency } : {}),
    url: recordUrl(po.id, settings),
    status: settings.billStatus,
    lineAmountTypes: "Exclusive",
    lineItems: plan.lines.map((l) => l.line),
  };

  const warnings = [...plan.warnings];
  const chosen = po.poNumber?.trim() || po.subject?.trim() || "";
  if (chosen.length > MAX_INVOICE_NUMBER) {
    warnings.push("The PO number was shortened to 255 characters for Xero");
  }
  const cents = totalCents(plan.lines);
  const total = fromUnits(cents, 2);
  if (po.grandTotal !== null) {
    const diff = cents - toUnits(po.grandTotal, 2);
    if (diff > 1n || diff < -1n) {
      warnings.push(
        `Xero will total this bill ${formatMoney(total)} but Zoho's Grand Total is ${
          formatMoney(po.grandTotal)
        } (a difference of ${formatMoney(fromUnits(diff, 2))})`,
      );
    }
  }
  return { invoice, hash: billHash(invoice), total, warnings };
}
