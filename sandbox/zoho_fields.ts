/**
 * The Purchase_Orders field list of the Zoho CRM simulator (what `GET /crm/v8/settings/fields`
 * answers) and the per-value checks a PUT runs against it. Standard API names follow REFERENCE.md
 * (SDK 8.0 field list); custom fields default to "Add to Xero" and the Xero write-back fields.
 */

export interface ZohoFieldSpec {
  api_name: string;
  data_type?: string;
  field_label?: string;
  length?: number;
}

export interface ZohoFieldDef {
  api_name: string;
  field_label: string;
  data_type: string;
  json_type: string;
  length: number;
  custom_field: boolean;
  read_only: boolean;
  system_mandatory: boolean;
  id: string;
}

type Std = [apiName: string, dataType: string, readOnly?: boolean];

const STANDARD: Std[] = [
  ["Owner", "ownerlookup"],
  ["Subject", "text"],
  ["PO_Number", "text"],
  ["PO_Date", "date"],
  ["Due_Date", "date"],
  ["Status", "picklist"],
  ["Vendor_Name", "lookup"],
  ["Contact_Name", "lookup"],
  ["Currency", "picklist"],
  ["Exchange_Rate", "double"],
  ["Sub_Total", "currency", true],
  ["Discount", "currency"],
  ["Tax", "currency", true],
  ["Adjustment", "currency"],
  ["Grand_Total", "currency", true],
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
  ["Carrier", "picklist"],
  ["Requisition_No", "text"],
  ["Tracking_Number", "text"],
  ["Excise_Duty", "currency"],
  ["Sales_Commission", "currency"],
  ["Purchase_Items", "subform"],
  ["Created_Time", "datetime", true],
  ["Modified_Time", "datetime", true],
  ["Created_By", "ownerlookup", true],
  ["Modified_By", "ownerlookup", true],
  ["id", "bigint", true],
];

/** Custom fields a freshly configured org has for this product. */
export const DEFAULT_CUSTOM_FIELDS: ZohoFieldSpec[] = [
  { api_name: "Add_to_Xero", data_type: "boolean", field_label: "Add to Xero" },
  { api_name: "Xero_Bill_ID", data_type: "text", field_label: "Xero Bill ID" },
  { api_name: "Xero_Bill_Number", data_type: "text", field_label: "Xero Bill Number" },
  { api_name: "Xero_Bill_Status", data_type: "text", field_label: "Xero Bill Status" },
  { api_name: "Xero_Sync_Status", data_type: "text", field_label: "Xero Sync Status" },
  { api_name: "Xero_Sync_Error", data_type: "textarea", field_label: "Xero Sync Error" },
  { api_name: "Xero_Last_Synced", data_type: "datetime", field_label: "Xero Last Synced" },
];

/** Line-item keys: the simulator refuses them in a PUT (REFERENCE: never send them on a write-back). */
export const LINE_ITEM_KEYS = new Set(["Purchase_Items", "Purchased_Items", "Product_Details"]);

const JSON_TYPE: Record<string, string> = {
  boolean: "boolean",
  double: "double",
  currency: "double",
  integer: "integer",
  lookup: "jsonobject",
  ownerlookup: "jsonobject",
  subform: "jsonarray",
};

function guessType(apiName: string): string {
  if (/^Add_to_|^Is_|_Checkbox$/i.test(apiName)) return "boolean";
  if (/_Time$|_Synced$|_At$/i.test(apiName)) return "datetime";
  if (/_Date$/i.test(apiName)) return "date";
  if (/_Error$|_Notes?$/i.test(apiName)) return "textarea";
  return "text";
}

export function buildFields(custom: Array<string | ZohoFieldSpec>): ZohoFieldDef[] {
  let seq = 5725767000000002000n;
  const def = (api: string, type: string, custom: boolean, readOnly: boolean, label?: string) => ({
    api_name: api,
    field_label: label ?? api.replaceAll("_", " "),
    data_type: type,
    json_type: JSON_TYPE[type] ?? "string",
    length: type === "textarea" ? 32000 : type === "text" ? 255 : 0,
    custom_field: custom,
    read_only: readOnly,
    system_mandatory: api === "Subject" || api === "Vendor_Name",
    id: String(seq++),
  });
  const out = STANDARD.map(([api, type, ro]) => def(api, type, false, ro ?? false));
  for (const c of custom) {
    const spec = typeof c === "string" ? { api_name: c } : c;
    if (out.some((f) => f.api_name === spec.api_name)) continue;
    const field = def(
      spec.api_name,
      spec.data_type ?? guessType(spec.api_name),
      true,
      false,
      spec.field_label,
    );
    if (spec.length) field.length = spec.length;
    out.push(field);
  }
  return out;
}

export interface FieldProblem {
  code: "INVALID_DATA";
  message: string;
  details: Record<string, unknown>;
}

const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/;
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
