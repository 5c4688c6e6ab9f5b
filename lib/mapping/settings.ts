/**
 * The mapping settings (DESIGN §6): one zod schema, every field defaulted, so `SettingsSchema.parse({})`
 * is a working configuration and a stored settings blob from an older version still parses.
 *
 * Tax choice, on purpose: `defaultTaxType` is **empty by default**. DESIGN says a Zoho tax with no
 * mapping makes the record ineligible, so with the defaults an unmapped tax holds the purchase order
 * back with a reason. An admin who fills in `defaultTaxType` opts in to "every other tax is this Xero
 * tax type": then unmapped taxes use it and never block. Untaxed lines always use `untaxedTaxType`.
 */
import { z } from "zod";

/** A Zoho field API name ("Add_to_Xero", "Vendor_Name"); the settings page edits these. */
const apiName = z.string().trim().regex(
  /^[A-Za-z][A-Za-z0-9_]*$/,
  "must be a Zoho field API name (letters, digits, underscores)",
);
/** A write-back target: an API name, or empty to skip writing that field. */
const optionalApiName = z.string().trim().regex(
  /^([A-Za-z][A-Za-z0-9_]*)?$/,
  "must be a Zoho field API name, or empty to skip it",
);
/** Xero account codes are at most 10 characters. */
const accountCode = z.string().trim().min(1, "is required").max(
  10,
  "must be 10 characters or fewer",
);
const taxType = z.string().trim().min(1, "is required").max(50, "must be 50 characters or fewer");

export const BILL_STATUSES = ["DRAFT", "SUBMITTED", "AUTHORISED"] as const;
export type BillStatus = (typeof BILL_STATUSES)[number];

export const AccountOverrideSchema = z.object({
  /** A Zoho product id or product code. */
  match: z.string().trim().min(1, "is required"),
  accountCode,
});

/**
 * One tax mapping. With a name it matches that Zoho tax (case-insensitive, its name or display name),
 * and with a percentage too only at that rate; with only a percentage it matches any tax at that rate.
 * Name mappings are tried before percentage-only ones.
 */
export const TaxMappingSchema = z.object({
  zohoTaxName: z.string().trim().min(1).optional(),
  percentage: z.coerce.number().min(0).max(100).optional(),
  taxType,
}).refine((m) => m.zohoTaxName !== undefined || m.percentage !== undefined, {
  message: "needs a Zoho tax name or a percentage",
});

const WriteBackFieldsSchema = z.object({
  billId: optionalApiName.default("Xero_Bill_ID"),
  billNumber: optionalApiName.default("Xero_Bill_Number"),
  billStatus: optionalApiName.default("Xero_Bill_Status"),
  syncStatus: optionalApiName.default("Xero_Sync_Status"),
  syncError: optionalApiName.default("Xero_Sync_Error"),
  lastSynced: optionalApiName.default("Xero_Last_Synced"),
  // From Xero's side (lib/sync/bill_status.ts): what the accountants did with the bill.
  amountPaid: optionalApiName.default("Xero_Amount_Paid"),
  amountDue: optionalApiName.default("Xero_Amount_Due"),
  fullyPaidOn: optionalApiName.default("Xero_Fully_Paid_On"),
});

const WriteBackSchema = z.object({
  enabled: z.boolean().default(true),
  fields: WriteBackFieldsSchema.prefault({}),
});

/**
 * What happens to a bill when its purchase order is deleted, cancelled or unticked in Zoho
 * (lib/sync/stages/lifecycle.ts): "leave" keeps it and says so in the run; "void_or_delete" deletes
 * a DRAFT or SUBMITTED bill and voids an unpaid AUTHORISED one (a paid bill is never touched).
 */
export const LIFECYCLE_ACTIONS = ["leave", "void_or_delete"] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];
const lifecycleAction = z.enum(LIFECYCLE_ACTIONS).default("leave");

const LifecycleSchema = z.object({
  deleted: lifecycleAction,
  cancelled: lifecycleAction,
  unticked: lifecycleAction,
});

export const SettingsSchema = z.object({
  /** API name of the "Add to Xero" checkbox. */
  checkboxField: apiName.default("Add_to_Xero"),
  /** API name of the vendor lookup (the seed labels it "Client Name"). */
  vendorField: apiName.default("Vendor_Name"),
  /** What the vendor field is called on the user's Zoho layout, for reasons ("Client Name"). */
  vendorLabel: z.string().trim().min(1).max(60).default("Client Name"),
  /** Purchases account for every line without an override ("300" in Xero's default chart). */
  defaultAccountCode: accountCode.default("300"),
  /** Per-product account codes; the first entry matching the product id or code wins. */
  accountOverrides: z.array(AccountOverrideSchema).default([]),
  taxMappings: z.array(TaxMappingSchema).default([]),
  /** Xero tax type for taxes no mapping matches; null (the default) = such a record is ineligible. */
  defaultTaxType: taxType.nullable().default(null),
  /** Xero tax type for lines without tax, and for the header discount and adjustment lines. */
  untaxedTaxType: taxType.default("NONE"),
  billStatus: z.enum(BILL_STATUSES).default("DRAFT"),
  /** Due date = bill date + these days when the purchase order has no Due Date. */
  paymentTermsDays: z.coerce.number().int().min(0).max(3650).default(30),
  /** Send the Zoho product code as the Xero ItemCode (the item must exist in Xero). */
  sendItemCodes: z.boolean().default(false),
  /** The bill's Url = this base + the record id. */
  zohoRecordUrlBase: z.url({ protocol: /^https?$/, message: "must be an http(s) URL" })
    .default("https://crm.zoho.com/crm/tab/PurchaseOrders/"),
  /** Used by the sync engine; kept here so the settings page edits one schema. */
  writeBack: WriteBackSchema.prefault({}),
  /** The bill of a purchase order deleted, cancelled or unticked in Zoho. */
  lifecycle: LifecycleSchema.prefault({}),
});

export type Settings = z.output<typeof SettingsSchema>;
export type SettingsInput = z.input<typeof SettingsSchema>;
export type TaxMapping = z.output<typeof TaxMappingSchema>;
export type AccountOverride = z.output<typeof AccountOverrideSchema>;

export const DEFAULT_SETTINGS: Settings = SettingsSchema.parse({});

/** "Add_to_Xero" → "Add to Xero": how a field is named to a Zoho user in reasons. */
export function fieldLabel(apiName: string): string {
  return apiName.replaceAll("_", " ").trim();
}

/**
 * Standard Purchase_Orders fields (REFERENCE.md, SDK 8.0 field list): never write-back targets,
 * or a sync overwrites the order's own data (its PO number with a bill id, say).
 */
const STANDARD_PO_FIELDS = new Set(
  [
    "id",
    "Owner",
    "Created_Time",
    "Modified_Time",
    "Created_By",
    "Modified_By",
    "Subject",
    "PO_Number",
    "PO_Date",
    "Due_Date",
    "Status",
    "Vendor_Name",
    "Contact_Name",
    "Currency",
    "Exchange_Rate",
    "Sub_Total",
    "Discount",
    "Tax",
    "Adjustment",
    "Grand_Total",
    "Terms_and_Conditions",
    "Description",
    "Carrier",
    "Requisition_No",
    "Tracking_Number",
    "Excise_Duty",
    "Sales_Commission",
    "Purchase_Items",
    "Purchased_Items",
    "Product_Details",
  ].map((f) => f.toLowerCase()),
);
const isStandard = (name: string) =>
  STANDARD_PO_FIELDS.has(name.toLowerCase()) || /^(Billing|Shipping)_/i.test(name);

export type WriteBackKey = keyof Settings["writeBack"]["fields"];

const WRITE_BACK_LABELS: Record<WriteBackKey, string> = {
  billId: "bill ID",
  billNumber: "bill number",
  billStatus: "bill status",
  syncStatus: "sync status",
  syncError: "sync error",
  lastSynced: "last synced time",
  amountPaid: "amount paid",
  amountDue: "amount due",
  fullyPaidOn: "fully-paid date",
};

/** What Zoho's field list says of a field (lib/zoho ZohoClient.fieldMetadata). */
export interface FieldMeta {
  apiName: string;
  custom: boolean;
  readOnly: boolean;
}

/**
 * Why write-back targets are unsafe: the fields the sync reads (checkbox, vendor), standard fields,
 * one field for two values, and, when Zoho's field list is given, fields it marks as not custom or
 * read-only. A name Zoho does not know is fine: the sync skips fields that do not exist.
 */
export function writeBackIssues(
  s: Settings,
  fields?: FieldMeta[] | null,
): Array<{ key: WriteBackKey; message: string }> {
  const meta = new Map(fields?.map((f) => [f.apiName.toLowerCase(), f]));
  const out: Array<{ key: WriteBackKey; message: string }> = [];
  const seen = new Map<string, WriteBackKey>();
  for (const [key, raw] of Object.entries(s.writeBack.fields) as Array<[WriteBackKey, string]>) {
    const name = raw.trim();
    if (!name) continue;
    const lower = name.toLowerCase();
    const f = meta.get(lower);
    let message: string | undefined;
    if (lower === s.checkboxField.toLowerCase()) {
      message = "is the “Add to Xero” field the sync reads: choose a field of its own";
    } else if (lower === s.vendorField.toLowerCase()) {
      message = "is the vendor field the sync reads: choose a field of its own";
    } else if (f?.readOnly) {
      message = "is read-only in Zoho: choose a custom field that can be written";
    } else if ((f && !f.custom) || (!f && isStandard(name))) {
      message =
        "is a standard Zoho field, not a custom field: the sync would overwrite the order's own data; choose a custom field";
    } else if (seen.has(lower)) {
      message = `is also used for the ${
        WRITE_BACK_LABELS[seen.get(lower)!]
      }: each value needs a field of its own`;
    }
    seen.set(lower, key);
    if (message) out.push({ key, message });
  }
  return out;
}
