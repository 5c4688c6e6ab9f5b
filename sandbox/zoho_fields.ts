/**
 * The field lists of the Zoho CRM simulator (what `GET /crm/v8/settings/fields?module=…` answers)
 * and the per-value checks a PUT runs against them. Standard API names follow REFERENCE.md (SDK 8.0
 * field list); custom fields default to "Add to Xero" and the Xero write-back fields.
 *
 * The shape follows Zoho's v8 examples (zoho/crm-oas, fields getFields response-200-fullexample):
 * every field has a positive `length` (Zoho's official Node SDK reads an object whose `length` is 0
 * as empty and crashes on it), `lookup` names the module a lookup points at, `pick_list_values`
 * lists a picklist's values, and the line-item subform names its module in `associated_module`
 * (`Purchase_Items`, whose fields the SDK then reads to type each line).
 */

export interface ZohoFieldSpec {
  api_name: string;
  data_type?: string;
  field_label?: string;
  length?: number;
  /** For a picklist: its values. */
  pick_list_values?: string[];
  /** For a lookup: the module it points at. */
  lookup_module?: string;
}

export interface ZohoPickListValue {
  display_value: string;
  actual_value: string;
  reference_value: string;
  sequence_number: number;
  type: "used";
  id: string;
}

export interface ZohoFieldDef {
  api_name: string;
  field_label: string;
  display_label: string;
  data_type: string;
  json_type: string;
  length: number;
  decimal_place: number | null;
  custom_field: boolean;
  read_only: boolean;
  field_read_only: boolean;
  system_mandatory: boolean;
  visible: boolean;
  /** `{}` unless a lookup: then the field and the module it points at. */
  lookup: Record<string, unknown>;
  pick_list_values: ZohoPickListValue[];
  /** A subform's module (`{module, id}`), else null. */
  associated_module: { module: string; id: string } | null;
  id: string;
}

/** The modules whose field lists the simulator serves; only Purchase_Orders has records. */
export const FIELD_MODULES = [
  "Purchase_Orders",
  "Purchase_Items",
  "Vendors",
  "Contacts",
  "Products",
] as const;
export type FieldModule = typeof FIELD_MODULES[number];

type Std = [apiName: string, dataType: string, extra?: {
  readOnly?: boolean;
  lookup?: string;
  picklist?: string[];
  subform?: string;
  label?: string;
}];

const PURCHASE_ORDERS: Std[] = [
  ["Owner", "ownerlookup", { label: "Purchase Order Owner" }],
  ["Subject", "text"],
  ["PO_Number", "text", { label: "PO Number" }],
  ["PO_Date", "date", { label: "PO Date" }],
  ["Due_Date", "date"],
  ["Status", "picklist", { picklist: ["Created", "Approved", "Delivered", "Cancelled"] }],
  ["Vendor_Name", "lookup", { lookup: "Vendors" }],
  ["Contact_Name", "lookup", { lookup: "Contacts" }],
  ["Currency", "picklist", { picklist: ["USD", "EUR", "GBP", "AUD", "NZD", "INR"] }],
  ["Exchange_Rate", "double"],
  ["Sub_Total", "currency", { readOnly: true }],
  ["Discount", "currency"],
  ["Tax", "currency", { readOnly: true }],
  ["Adjustment", "currency"],
  ["Grand_Total", "currency", { readOnly: true }],
  ["Terms_and_Conditions", "textarea"],
  ["Description", "textarea"],
  ["Billing_Street", "text"],
  ["Billing_City", "text"],
  ["Billing_State", "text"],
  ["Billing_Code", "text"],
  ["Billing_Country", "text"],
  ["Shipping_Street", "text"],
  ["Shipping_City", "text"],
  ["Shipping_State", "text"],
  ["Shipping_Code", "text"],
  ["Shipping_Country", "text"],
  ["Carrier", "picklist", { picklist: ["FedEX", "UPS", "USPS", "DHL", "BlueDart"] }],
  ["Requisition_No", "text"],
  ["Tracking_Number", "text"],
  ["Excise_Duty", "currency"],
  ["Sales_Commission", "currency"],
  ["Purchase_Items", "subform", { subform: "Purchase_Items", label: "Purchase Items" }],
  ["Created_Time", "datetime", { readOnly: true }],
  ["Modified_Time", "datetime", { readOnly: true }],
  ["Created_By", "ownerlookup", { readOnly: true }],
  ["Modified_By", "ownerlookup", { readOnly: true }],
  ["id", "bigint", { readOnly: true, label: "Record Id" }],
];

/** The line-item subform's own fields (what `module=Purchase_Items` answers). */
const PURCHASE_ITEMS: Std[] = [
  ["Product_Name", "lookup", { lookup: "Products" }],
  ["Quantity", "double"],
  ["List_Price", "currency"],
  ["Unit_Price", "currency", { readOnly: true }],
  ["Quantity_in_Stock", "double", { readOnly: true }],
  ["Total", "currency", { readOnly: true }],
  ["Discount", "currency"],
  ["Total_After_Discount", "currency", { readOnly: true }],
  ["Tax", "currency", { readOnly: true }],
  ["Net_Total", "currency", { readOnly: true }],
  ["Description", "textarea"],
  ["Sequence_Number", "integer", { readOnly: true }],
  ["Parent_Id", "lookup", { lookup: "Purchase_Orders", readOnly: true }],
  ["Created_Time", "datetime", { readOnly: true }],
  ["Modified_Time", "datetime", { readOnly: true }],
  ["id", "bigint", { readOnly: true }],
];

const VENDORS: Std[] = [
  ["Owner", "ownerlookup", { label: "Vendor Owner" }],
  ["Vendor_Name", "text"],
  ["Email", "email"],
  ["Phone", "phone"],
  ["Website", "website"],
  ["Currency", "picklist", { picklist: ["USD", "EUR", "GBP", "AUD", "NZD", "INR"] }],
  ["Created_Time", "datetime", { readOnly: true }],
  ["Modified_Time", "datetime", { readOnly: true }],
  ["id", "bigint", { readOnly: true }],
];

const CONTACTS: Std[] = [
  ["Owner", "ownerlookup", { label: "Contact Owner" }],
  ["First_Name", "text"],
  ["Last_Name", "text"],
  ["Email", "email"],
  ["Phone", "phone"],
  ["Vendor_Name", "lookup", { lookup: "Vendors" }],
  ["Created_Time", "datetime", { readOnly: true }],
  ["Modified_Time", "datetime", { readOnly: true }],
  ["id", "bigint", { readOnly: true }],
];

const PRODUCTS: Std[] = [
  ["Owner", "ownerlookup", { label: "Product Owner" }],
  ["Product_Name", "text"],
  ["Product_Code", "text"],
  ["Unit_Price", "currency"],
  ["Product_Active", "boolean"],
  ["Created_Time", "datetime", { readOnly: true }],
  ["Modified_Time", "datetime", { readOnly: true }],
  ["id", "bigint", { readOnly: true }],
];

const STANDARD: Record<FieldModule, Std[]> = {
  Purchase_Orders: PURCHASE_ORDERS,
  Purchase_Items: PURCHASE_ITEMS,
  Vendors: VENDORS,
  Contacts: CONTACTS,
  Products: PRODUCTS,
};

const MANDATORY: Record<FieldModule, string[]> = {
  Purchase_Orders: ["Subject", "Vendor_Name"],
  Purchase_Items: ["Product_Name", "Quantity"],
  Vendors: ["Vendor_Name"],
  Contacts: ["Last_Name"],
  Products: ["Product_Name"],
};

/** Custom fields a freshly configured org has for this product. */
export const DEFAULT_CUSTOM_FIELDS: ZohoFieldSpec[] = [
  { api_name: "Add_to_Xero", data_type: "boolean", field_label: "Add to Xero" },
  { api_name: "Xero_Bill_ID", data_type: "text", field_label: "Xero Bill ID" },
  { api_name: "Xero_Bill_Number", data_type: "text", field_label: "Xero Bill Number" },
  { api_name: "Xero_Bill_Status", data_type: "text", field_label: "Xero Bill Status" },
  { api_name: "Xero_Sync_Status", data_type: "text", field_label: "Xero Sync Status" },
  { api_name: "Xero_Sync_Error", data_type: "textarea", field_label: "Xero Sync Error" },
  { api_name: "Xero_Last_Synced", data_type: "datetime", field_label: "Xero Last Synced" },
  { api_name: "Xero_Amount_Paid", data_type: "currency", field_label: "Xero Amount Paid" },
  { api_name: "Xero_Amount_Due", data_type: "currency", field_label: "Xero Amount Due" },
  { api_name: "Xero_Fully_Paid_On", data_type: "date", field_label: "Xero Fully Paid On" },
];

/** Line-item keys: the simulator refuses them in a PUT (REFERENCE: never send them on a write-back). */
export const LINE_ITEM_KEYS = new Set(["Purchase_Items", "Purchased_Items", "Product_Details"]);

const JSON_TYPE: Record<string, string> = {
  boolean: "boolean",
  double: "double",
  currency: "double",
  integer: "integer",
  bigint: "string",
  lookup: "jsonobject",
  ownerlookup: "jsonobject",
  subform: "jsonarray",
};

/**
 * Field lengths by data type. Where Zoho's v8 examples show one it is that (ownerlookup 120, text up
 * to 255, double 16 digits); never 0.
 */
const LENGTH: Record<string, number> = {
  text: 255,
  textarea: 32000,
  email: 100,
  phone: 30,
  website: 255,
  picklist: 120,
  lookup: 120,
  ownerlookup: 120,
  date: 20,
  datetime: 120,
  boolean: 5,
  double: 16,
  currency: 16,
  integer: 9,
  bigint: 19,
  subform: 5,
};

function guessType(apiName: string): string {
  if (/^Add_to_|^Is_|_Checkbox$/i.test(apiName)) return "boolean";
  if (/_Time$|_Synced$|_At$/i.test(apiName)) return "datetime";
  if (/_Date$/i.test(apiName)) return "date";
  if (/_Error$|_Notes?$/i.test(apiName)) return "textarea";
  return "text";
}

/** Ids of modules and fields, stable for one simulator (Zoho's are 19-digit strings). */
function idMaker(start: bigint) {
  let seq = start;
  return () => String(seq++);
}

const MODULE_IDS: Record<FieldModule, string> = {
  Purchase_Orders: "5725767000000002171",
  Purchase_Items: "5725767000000002173",
  Vendors: "5725767000000002175",
  Contacts: "5725767000000002177",
  Products: "5725767000000002179",
};

interface DefOptions {
  custom: boolean;
  readOnly: boolean;
  mandatory: boolean;
  label?: string;
  length?: number;
  lookup?: string;
  picklist?: string[];
  subform?: string;
}

function makeDef(api: string, type: string, o: DefOptions, nextId: () => string): ZohoFieldDef {
  const label = o.label ?? api.replaceAll("_", " ");
  const id = nextId();
  return {
    api_name: api,
    field_label: label,
    display_label: label,
    data_type: type,
    json_type: JSON_TYPE[type] ?? "string",
    length: o.length && o.length > 0 ? o.length : LENGTH[type] ?? 255,
    decimal_place: type === "currency" || type === "double" ? 2 : null,
    custom_field: o.custom,
    read_only: o.readOnly,
    field_read_only: o.readOnly,
    system_mandatory: o.mandatory,
    visible: true,
    lookup: type === "lookup" && o.lookup
      ? {
        display_label: label,
        api_name: api,
        module: { api_name: o.lookup, id: MODULE_IDS[o.lookup as FieldModule] ?? nextId() },
        id: nextId(),
      }
      : {},
    pick_list_values: (type === "picklist" ? o.picklist ?? [] : []).map((v, i) => ({
      display_value: v,
      actual_value: v,
      reference_value: v,
      sequence_number: i + 1,
      type: "used" as const,
      id: nextId(),
    })),
    associated_module: type === "subform" && o.subform
      ? { module: o.subform, id: MODULE_IDS[o.subform as FieldModule] ?? nextId() }
      : null,
    id,
  };
}

function standardFields(module: FieldModule, nextId: () => string): ZohoFieldDef[] {
  return STANDARD[module].map(([api, type, extra]) =>
    makeDef(api, type, {
      custom: false,
      readOnly: extra?.readOnly ?? false,
      mandatory: MANDATORY[module].includes(api),
      label: extra?.label,
      lookup: extra?.lookup,
      picklist: extra?.picklist,
      subform: extra?.subform,
    }, nextId)
  );
}

/** The Purchase_Orders fields: the standard ones, then the org's custom fields. */
export function buildFields(custom: Array<string | ZohoFieldSpec>): ZohoFieldDef[] {
  const nextId = idMaker(5725767000000002000n);
  const out = standardFields("Purchase_Orders", nextId);
  for (const c of custom) {
    const spec = typeof c === "string" ? { api_name: c } : c;
    if (out.some((f) => f.api_name === spec.api_name)) continue;
    out.push(makeDef(spec.api_name, spec.data_type ?? guessType(spec.api_name), {
      custom: true,
      readOnly: false,
      mandatory: false,
      label: spec.field_label,
      length: spec.length,
      lookup: spec.lookup_module,
      picklist: spec.pick_list_values,
    }, nextId));
  }
  return out;
}

/** The field lists of the other modules the Purchase_Orders fields point at. */
export function buildRelatedFields(): Record<
  Exclude<FieldModule, "Purchase_Orders">,
  ZohoFieldDef[]
> {
  const nextId = idMaker(5725767000000003000n);
  return {
    Purchase_Items: standardFields("Purchase_Items", nextId),
    Vendors: standardFields("Vendors", nextId),
    Contacts: standardFields("Contacts", nextId),
    Products: standardFields("Products", nextId),
  };
}

export interface FieldProblem {
  code: "INVALID_DATA";
  message: string;
  details: Record<string, unknown>;
}

/** Zoho's date-time: an offset, or `Z` as Zoho's own SDKs send it (`toISOString()` to the second). */
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2}|Z)$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Checks one value against its field the way Zoho answers a bad value: INVALID_DATA with details. */
export function checkValue(field: ZohoFieldDef, value: unknown): FieldProblem | null {
  if (value === null) return null;
  const bad = (expected: string): FieldProblem => ({
    code: "INVALID_DATA",
    message: "invalid data",
    details: { api_name: field.api_name, expected_data_type: expected },
  });
  switch (field.data_type) {
    case "text":
    case "textarea":
      if (typeof value !== "string") return bad(field.data_type);
      if (value.length > field.length) {
        return {
          code: "INVALID_DATA",
          message: "invalid data",
          details: { api_name: field.api_name, maximum_length: field.length },
        };
      }
      return null;
    case "picklist":
      return typeof value === "string" ? null : bad("picklist");
    case "boolean":
      return typeof value === "boolean" ? null : bad("boolean");
    case "datetime":
      return typeof value === "string" && DATETIME.test(value) && !isNaN(Date.parse(value))
        ? null
        : bad("datetime");
    case "date":
      return typeof value === "string" && DATE.test(value) ? null : bad("date");
    case "double":
    case "currency":
    case "integer":
      return typeof value === "number" && Number.isFinite(value) ? null : bad(field.data_type);
    case "lookup":
    case "ownerlookup":
      return typeof value === "object" && typeof (value as { id?: unknown }).id === "string"
        ? null
        : bad(field.data_type);
    default:
      return null;
  }
}
