/**
 * Purchase order → Xero bill (DESIGN §6), pure and deterministic. The bill is in xero-node's camelCase
 * model shape, so its `ObjectSerializer` sends it unchanged (PascalCase keys would be dropped).
 *
 * Why the lines look as they do: Xero bills (ACCPAY) take no DiscountRate/DiscountAmount, and Xero
 * quantities may not be negative, so a line discount is its own quantity-1 line with a negative unit
 * amount right after its item, and the header discount and adjustment are lines at the end. Zoho's
 * header Discount applies to the Sub Total, which already includes line taxes, so it goes untaxed;
 * a line discount reduces the taxed amount, so it carries its item's tax type.
 *
 * Why some lines carry a `taxAmount`: Xero rounds tax per line, Zoho per item after its discount
 * (and once for a tax on the whole order). Where the two differ, the lines behind one Zoho tax amount
 * get Xero's own per-line tax moved by a cent each until they add up to Zoho's, so the bill totals
 * Grand_Total. Xero documents TaxAmount as overridable ("if the calculated TaxAmount is not
 * correct"); we never move a line by more than one cent, and lines that need no cent carry none.
 */
import { createHash } from "node:crypto";
import {
  formatMoney,
  fromUnits,
  lineAmountCents,
  rescale,
  roundTo,
  taxCents,
  taxExact,
  toUnits,
} from "./money.ts";
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
  /** Only where Xero's own per-line rounding would miss Zoho's tax by a cent (see the top). */
  taxAmount?: number;
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
  /** The bill total as Xero will compute it: tax per line (or the line's taxAmount), 2 dp. */
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

type TaxChoice =
  | {
    ok: true;
    taxType: string;
    percentage: number;
    /** The Zoho taxes as reasons name them, e.g. `"GST" (10%)`; null for untaxed lines. */
    label: string | null;
  }
  | { ok: false; reason: string };

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
  if (taxes.length === 0) {
    return { ok: true, taxType: settings.untaxedTaxType, percentage: 0, label: null };
  }
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
  if (taxType) return { ok: true, taxType, percentage, label: describeTaxes(taxes, percentage) };
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
  /** The Zoho taxes behind it (see TaxChoice); null = an untaxed line. */
  label: string | null;
  /** The lines whose taxes add up to one Zoho tax amount (an item and its discount; the order). */
  group: string | null;
}

interface Plan {
  lines: PlannedLine[];
  /** Zoho's tax amount per group in cents; null = not given, Zoho would round the group's sum. */
  targets: Map<string, bigint | null>;
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
  const targets = new Map<string, bigint | null>();
  const docTax = documentTaxOf(po, settings);
  if (docTax && !docTax.ok) reasons.push(docTax.reason);
  const docChoice = docTax?.ok ? docTax : null;
  const ORDER = "order";
  if (docChoice && docChoice.percentage !== 0) targets.set(ORDER, toUnits(po.tax, 2));

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
    let group: string | null = null;
    if (tax === docChoice) group = targets.has(ORDER) ? ORDER : null;
    else if (tax.percentage !== 0) {
      group = `line ${item.line}`;
      targets.set(group, item.tax === null ? null : toUnits(item.tax, 2));
    }
    const taxed = { percentage: tax.percentage, label: tax.label, group };
    lines.push({ line, ...taxed });

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
        ...taxed,
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
      label: docChoice?.label ?? null,
      group: docChoice && targets.has(ORDER) ? ORDER : null,
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
      label: null,
      group: null,
    });
  }
  if (reasons.length === 0) settleTaxes(lines, targets);
  return { lines, targets, reasons, warnings };
}

const abs = (x: bigint) => (x < 0n ? -x : x);
const compare = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Moves Xero's per-line tax by one cent on as few lines as needed so each group's tax is Zoho's:
 * the lines Xero rounded furthest the other way first (largest remainder). A Zoho amount that
 * would take more than a cent a line is not Zoho's arithmetic on these lines: then Xero computes,
 * and the total check warns.
 */
function settleTaxes(lines: readonly PlannedLine[], targets: ReadonlyMap<string, bigint | null>) {
  for (const [group, target] of targets) {
    const members = lines.filter((l) => l.group === group).map((l) => {
      const amount = lineAmountCents(l.line.quantity, l.line.unitAmount);
      const exact = taxExact(amount, l.percentage);
      const cents = rescale(exact, 10, 2);
      return { l, amount, exact, cents, rest: exact - cents * 10n ** 8n };
    });
    const computed = members.reduce((s, m) => s + m.cents, 0n);
    const wanted = target ?? rescale(members.reduce((s, m) => s + m.exact, 0n), 10, 2);
    const need = wanted - computed;
    if (need === 0n) continue;
    const step = need > 0n ? 1n : -1n;
    // Never give a line tax of the other sign than its amount.
    const movable = members.filter((m) =>
      m.amount > 0n ? m.cents + step >= 0n : m.amount < 0n && m.cents + step <= 0n
    );
    if (abs(need) > BigInt(movable.length)) continue;
    movable.sort((a, b) =>
      (step > 0n ? compare(b.rest, a.rest) : compare(a.rest, b.rest)) ||
      compare(abs(b.amount), abs(a.amount))
    );
    for (const m of movable.slice(0, Number(abs(need)))) {
      m.l.line.taxAmount = fromUnits(m.cents + step, 2);
    }
  }
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

function totalCents(lines: readonly Pick<PlannedLine, "line" | "percentage">[]): bigint {
  let cents = 0n;
  for (const { line, percentage } of lines) {
    const amount = lineAmountCents(line.quantity, line.unitAmount);
    cents += amount +
      (line.taxAmount !== undefined ? toUnits(line.taxAmount, 2) : taxCents(amount, percentage));
  }
  return cents;
}

/**
 * Xero tax rates, TaxType → percent (EffectiveRate): a map, a record, or the list
 * `XeroClient.taxRates()` returns.
 */
export type XeroTaxRates =
  | ReadonlyMap<string, number>
  | Readonly<Record<string, number>>
  | ReadonlyArray<{ readonly taxType: string; readonly rate: number }>;

function rateLookup(taxRates: XeroTaxRates | undefined): (taxType: string) => number | undefined {
  if (!taxRates) return () => undefined;
  if (taxRates instanceof Map) return (t) => taxRates.get(t);
  if (Array.isArray(taxRates)) {
    const table = new Map<string, number>();
    for (const r of taxRates as ReadonlyArray<{ taxType: string; rate: number }>) {
      table.set(r.taxType, r.rate);
    }
    return (t) => table.get(t);
  }
  const rates = taxRates as Readonly<Record<string, number>>;
  return (t) => (Object.hasOwn(rates, t) ? rates[t] : undefined);
}

/**
 * The bill total as Xero computes it: each line amount rounded to 2 dp, plus its tax — the line's
 * `taxAmount` when given, else at the rate of its tax type from `taxRates` (a type not listed counts
 * as 0%) rounded per line.
 */
export function xeroTotal(invoice: XeroInvoice, taxRates?: XeroTaxRates): number {
  const rateOf = rateLookup(taxRates);
  const lines = invoice.lineItems.map((line) => ({
    line,
    percentage: rateOf(line.taxType) ?? 0,
  }));
  return fromUnits(totalCents(lines), 2);
}

/**
 * Reasons to hold a purchase order back because a tax type it maps to has another rate in Xero
 * than the Zoho tax behind it (Xero would tax those lines at its own rate: a PO of 110 at 10 % would
 * become a bill of 115 at 15 %). `xeroTaxRates` is the organisation's tax rates as read once per
 * run; a tax type Xero does not list is left to Xero's own validation. [] = nothing to hold.
 */
export function taxRateMismatches(
  po: PurchaseOrder,
  settings: Settings,
  xeroTaxRates: XeroTaxRates,
): string[] {
  const rateOf = rateLookup(xeroTaxRates);
  const reasons = new Map<string, string>();
  for (const { line, percentage, label } of planLines(po, settings).lines) {
    const key = `${line.taxType}\n${label}`;
    const rate = rateOf(line.taxType);
    if (reasons.has(key) || rate === undefined || samePercentage(rate, percentage)) continue;
    const xero = `the Xero tax type ${line.taxType}, which is ${roundTo(rate, 6)}% in Xero`;
    reasons.set(
      key,
      label === null
        ? `Untaxed lines (0%) are sent with ${xero}; choose a 0% tax type for untaxed lines ` +
          "in the settings"
        : `The Zoho tax ${label} is mapped to ${xero}; fix the tax mapping in the settings ` +
          "(or the rate in Xero)",
    );
  }
  return [...reasons.values()];
}

/**
 * A warning when the total Xero answered for a bill it stored is not Zoho's Grand_Total (to the
 * cent); null when they agree or Zoho gave no Grand_Total.
 */
export function totalMismatch(po: PurchaseOrder, xeroTotal: number): string | null {
  if (po.grandTotal === null) return null;
  const diff = toUnits(xeroTotal, 2) - toUnits(po.grandTotal, 2);
  if (diff === 0n) return null;
  return `Xero totals this bill ${formatMoney(xeroTotal)} but Zoho's Grand Total is ${
    formatMoney(po.grandTotal)
  } (a difference of ${formatMoney(fromUnits(diff, 2))})`;
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
    if (diff !== 0n) {
      warnings.push(
        `Xero will total this bill ${formatMoney(total)} but Zoho's Grand Total is ${
          formatMoney(po.grandTotal)
        } (a difference of ${formatMoney(fromUnits(diff, 2))})`,
      );
    }
  }
  return { invoice, hash: billHash(invoice), total, warnings };
}
