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
});

const WriteBackSchema = z.object({
  enabled: z.boolean().default(true),
  fields: WriteBackFieldsSchema.prefault({}),
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
