/**
 * A Zoho CRM `Purchase_Orders` record as the v8 single-record GET returns it, read into a normalised
 * purchase order. Tolerant: extra fields and nulls pass, numbers may arrive as numeric strings, and
 * the line items come from `Purchase_Items`, else `Purchased_Items`, else v2's `Product_Details`
 * (whose keys are lowercase). Strict where it matters: ids stay strings (a 19-digit id as a JSON
 * number has already lost digits), and a malformed value is a reason in plain words.
 */
import { z } from "zod";
import { fieldLabel, type Settings } from "./settings.ts";

export interface ZohoTax {
  name: string | null;
  displayName: string | null;
  percentage: number | null;
  /** The tax amount Zoho computed for this line (or record). */
  value: number | null;
  id: string | null;
}

export interface ProductRef {
  id: string | null;
  name: string | null;
  code: string | null;
}

export interface PurchaseItem {
  /** 1-based position, as reasons name it. */
  line: number;
  id: string | null;
  product: ProductRef | null;
  description: string | null;
  quantity: number | null;
  listPrice: number | null;
  /** The line discount as an amount (0 when none). */
  discount: number;
  total: number | null;
  totalAfterDiscount: number | null;
  /** The line's tax amount as Zoho computed it. */
  tax: number | null;
  netTotal: number | null;
  /** Every tax entry Zoho lists for the line (see `appliedTaxes`). */
  taxes: ZohoTax[];
}

export type ItemsField = "Purchase_Items" | "Purchased_Items" | "Product_Details";
export const ITEM_FIELDS: readonly ItemsField[] = [
  "Purchase_Items",
  "Purchased_Items",
  "Product_Details",
];

export interface PurchaseOrder {
  id: string;
  modifiedTime: string | null;
  createdTime: string | null;
  subject: string | null;
  poNumber: string | null;
  /** "YYYY-MM-DD" */
  poDate: string | null;
  /** "YYYY-MM-DD" */
  dueDate: string | null;
  currency: string | null;
  /** The vendor lookup, read through `settings.vendorField`; null when not set. */
  vendor: { id: string; name: string | null } | null;
  /** Which field the items came from (null when none had any). */
  itemsField: ItemsField | null;
  items: PurchaseItem[];
  subTotal: number | null;
  /** Header discount amount (0 when none). */
  discount: number;
  /** Header tax amount (0 when none): a tax on the order as a whole, see `documentTaxes`. */
  tax: number;
  /** Header adjustment, positive or negative (0 when none). */
  adjustment: number;
  grandTotal: number | null;
  /** Record-level `$line_tax`: the taxes behind a header `Tax`. */
  documentTaxes: ZohoTax[];
  raw: Record<string, unknown>;
}

export type ParseResult = { ok: true; po: PurchaseOrder } | { ok: false; reasons: string[] };

// ---- value readers: each reports a short phrase that `reasonOf` prefixes with the field's name ----

const NUMERIC = /^\s*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})/;

const num = z.unknown().optional().transform((v, ctx): number | null => {
  if (v === null || v === undefined || v === "") return null;
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && NUMERIC.test(v)) return Number(v);
  ctx.addIssue({ code: "custom", message: "is not a number" });
  return z.NEVER;
});

const text = z.unknown().optional().transform((v, ctx): string | null => {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return v;
  // Short numbers in text fields (a PO number typed as 1001) are safe to read as text.
  if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
  ctx.addIssue({ code: "custom", message: "is not text" });
  return z.NEVER;
});

/** Zoho ids are digit strings of up to 19–20 digits: only a string keeps them exact. */
const idText = z.unknown().optional().transform((v, ctx): string | null => {
  if (v === null || v === undefined || v === "") return null;
  if (typeof v === "string") return v.trim() || null;
  ctx.addIssue({
    code: "custom",
    message: typeof v === "number"
      ? "is a number, not text (ids must be read as text to stay exact)"
      : "is not an id",
  });
  return z.NEVER;
});

function isCalendarDate(y: number, m: number, d: number): boolean {
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

/** "YYYY-MM-DD" (a datetime's own date part is kept as is: it is the org's local date). */
const date = z.unknown().optional().transform((v, ctx): string | null => {
  if (v === null || v === undefined || v === "") return null;
  const m = typeof v === "string" ? DATE.exec(v) : null;
  if (m && isCalendarDate(Number(m[1]), Number(m[2]), Number(m[3]))) return m[0];
  ctx.addIssue({ code: "custom", message: "is not a date (expected YYYY-MM-DD)" });
  return z.NEVER;
});

const LineTaxSchema = z.looseObject({
  percentage: num,
  name: text,
  display_name: text,
  id: idText,
  value: num,
}, { error: "is not a tax entry" });

const lineTaxes = z.array(LineTaxSchema, { error: "is not a list of taxes" }).nullish();

const LookupSchema = z.looseObject({ id: idText, name: text, Product_Code: text }, {
  error: "is not a lookup (expected an object with an id)",
}).nullish();

/** One schema for all three item field names: v8 keys and v2 lowercase keys both read. */
const LineItemSchema = z.looseObject({
  id: idText,
  Product_Name: LookupSchema,
  product: LookupSchema,
  Quantity: num,
  quantity: num,
  List_Price: num,
  list_price: num,
  Discount: num,
  discount: num,
  Total: num,
  total: num,
  Total_After_Discount: num,
  total_after_discount: num,
  Tax: num,
  tax: num,
  Net_Total: num,
  net_total: num,
  Description: text,
  product_description: text,
  Line_Tax: lineTaxes,
  line_tax: lineTaxes,
}, { error: "is not a purchase item" });

const items = z.array(LineItemSchema, { error: "is not a list of purchase items" }).nullish();

export const PurchaseOrderSchema = z.looseObject({
  id: idText.refine((v) => v !== null, { message: "is missing" }),
  Created_Time: text,
  Modified_Time: text,
  Subject: text,
  PO_Number: text,
  PO_Date: date,
  Due_Date: date,
  Currency: text,
  Sub_Total: num,
  Discount: num,
  Tax: num,
  Adjustment: num,
  Grand_Total: num,
  $line_tax: lineTaxes,
  Purchase_Items: items,
  Purchased_Items: items,
  Product_Details: items,
}, { error: "is not a record" });

type RawLineItem = z.output<typeof LineItemSchema>;
type RawTax = z.output<typeof LineTaxSchema>;

// ---- plain-words reasons from zod issues ----

const LINE_FIELD_LABELS: Record<string, string> = {
  id: "Line id",
  Product_Name: "Product",
  product: "Product",
  Quantity: "Quantity",
  quantity: "Quantity",
  List_Price: "List price",
  list_price: "List price",
  Discount: "Discount",
  discount: "Discount",
  Total: "Total",
  total: "Total",
  Total_After_Discount: "Total after discount",
  total_after_discount: "Total after discount",
  Tax: "Tax",
  tax: "Tax",
  Net_Total: "Net total",
  net_total: "Net total",
  Description: "Description",
  product_description: "Description",
  Line_Tax: "Tax",
  line_tax: "Tax",
};

const SUB_LABELS: Record<string, string> = {
  id: "id",
  name: "name",
  Product_Code: "code",
  percentage: "percentage",
  display_name: "display name",
  value: "amount",
};

function subjectOf(path: readonly PropertyKey[]): string {
  const [head, index, field, ...rest] = path;
  if (head === undefined) return "The record";
  if (head === "id" && path.length === 1) return "The record id";
  const isItems = typeof head === "string" && (ITEM_FIELDS as readonly string[]).includes(head);
  if (isItems && typeof index === "number") {
    const line = `line ${index + 1}`;
    if (field === undefined) return `Line ${index + 1}`;
    let label = LINE_FIELD_LABELS[String(field)] ?? fieldLabel(String(field));
    const tail = rest.filter((p) => typeof p === "string").map((p) => SUB_LABELS[p] ?? p);
    if (tail.length) label = `${label} ${tail.join(" ")}`;
    return `${label} on ${line}`;
  }
  if (isItems) return fieldLabel(String(head));
  const name = head === "$line_tax" ? "Tax on the purchase order" : fieldLabel(String(head));
  const tail = path.slice(1).filter((p) => typeof p === "string").map((p) =>
    SUB_LABELS[p] ?? String(p)
  );
  return tail.length ? `${name} ${tail.join(" ")}` : name;
}

function reasonOf(issue: z.core.$ZodIssue): string {
  const message = issue.code === "custom" || issue.code === "invalid_type"
    ? issue.message
    : issue.message.replace(/^[A-Z]/, (c) => c.toLowerCase());
  return `${subjectOf(issue.path)} ${message}`;
}

// ---- normalising ----

const clean = (s: string | null): string | null => (s === null || s.trim() === "" ? null : s);

function taxOf(t: RawTax): ZohoTax {
  return {
    name: clean(t.name)?.trim() ?? null,
    displayName: clean(t.display_name)?.trim() ?? null,
    percentage: t.percentage,
    value: t.value,
    id: t.id,
  };
}

function productOf(p: z.output<typeof LookupSchema>): ProductRef | null {
  if (!p) return null;
  const ref = {
    id: p.id,
    name: clean(p.name)?.trim() ?? null,
    code: clean(p.Product_Code)?.trim() ?? null,
  };
  return ref.id === null && ref.name === null && ref.code === null ? null : ref;
}

function itemOf(r: RawLineItem, index: number): PurchaseItem {
  return {
    line: index + 1,
    id: r.id,
    product: productOf(r.Product_Name ?? r.product),
    description: clean(r.Description ?? r.product_description),
    quantity: r.Quantity ?? r.quantity,
    listPrice: r.List_Price ?? r.list_price,
    discount: r.Discount ?? r.discount ?? 0,
    total: r.Total ?? r.total,
    totalAfterDiscount: r.Total_After_Discount ?? r.total_after_discount,
    tax: r.Tax ?? r.tax,
    netTotal: r.Net_Total ?? r.net_total,
    taxes: (r.Line_Tax ?? r.line_tax ?? []).map(taxOf),
  };
}

/** The vendor lookup lives under a configurable API name, so it is read apart from the schema. */
function vendorOf(
  raw: Record<string, unknown>,
  field: string,
): { ok: true; vendor: PurchaseOrder["vendor"] } | { ok: false; reasons: string[] } {
  const parsed = LookupSchema.safeParse(raw[field]);
  if (!parsed.success) {
    return {
      ok: false,
      reasons: parsed.error.issues.map((i) => reasonOf({ ...i, path: [field, ...i.path] })),
    };
  }
  const v = parsed.data;
  if (!v || v.id === null) return { ok: true, vendor: null };
  return { ok: true, vendor: { id: v.id, name: clean(v.name)?.trim() ?? null } };
}

/**
 * Reads one raw record. Malformed values (a quantity that is not a number, an id that arrived as a
 * number) give `ok: false` with one reason per bad value; business rules are `eligibility`'s job.
 */
export function parsePurchaseOrder(raw: unknown, settings: Settings): ParseResult {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, reasons: ["The record is not an object"] };
  }
  const record = raw as Record<string, unknown>;
  const parsed = PurchaseOrderSchema.safeParse(record);
  const vendor = vendorOf(record, settings.vendorField);
  const reasons = [
    ...(parsed.success ? [] : parsed.error.issues.map(reasonOf)),
    ...(vendor.ok ? [] : vendor.reasons),
  ];
  if (!parsed.success || !vendor.ok) return { ok: false, reasons };
  const r = parsed.data;

  let itemsField: ItemsField | null = null;
  for (const f of ITEM_FIELDS) {
    if ((r[f]?.length ?? 0) > 0) {
      itemsField = f;
      break;
    }
  }
  const rawItems = itemsField ? r[itemsField] ?? [] : [];

  return {
    ok: true,
    po: {
      id: r.id as string,
      modifiedTime: clean(r.Modified_Time),
      createdTime: clean(r.Created_Time),
      subject: clean(r.Subject),
      poNumber: clean(r.PO_Number),
      poDate: r.PO_Date,
      dueDate: r.Due_Date,
      currency: clean(r.Currency)?.trim().toUpperCase() ?? null,
      vendor: vendor.vendor,
      itemsField,
      items: rawItems.map(itemOf),
      subTotal: r.Sub_Total,
      discount: r.Discount ?? 0,
      tax: r.Tax ?? 0,
      adjustment: r.Adjustment ?? 0,
      grandTotal: r.Grand_Total,
      documentTaxes: (r.$line_tax ?? []).map(taxOf),
      raw: record,
    },
  };
}

/**
 * The taxes applied to a line (or the record). A listed tax with a rate above zero counts, whatever
 * its amount (a tiny line can round its tax to 0.00); one without a rate counts by a non-zero amount.
 */
export function appliedTaxes(taxes: readonly ZohoTax[]): ZohoTax[] {
  return taxes.filter((t) => t.percentage !== null ? t.percentage > 0 : (t.value ?? 0) !== 0);
}
