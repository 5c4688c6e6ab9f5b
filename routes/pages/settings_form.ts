/**
 * The settings form as flat name → text pairs (names are the settings' paths, so a validation
 * issue's path names its field), and back into the shape SettingsSchema validates.
 */
import {
  type FieldMeta,
  type Settings,
  SettingsSchema,
  writeBackIssues,
} from "../../lib/mapping/settings.ts";

export type FormValues = Record<string, string>;

export const WRITE_BACK_FIELDS = [
  ["billId", "Bill ID"],
  ["billNumber", "Bill number"],
  ["billStatus", "Bill status"],
  ["syncStatus", "Sync status"],
  ["syncError", "Sync error"],
  ["lastSynced", "Last synced"],
  ["amountPaid", "Amount paid (from Xero)"],
  ["amountDue", "Amount due (from Xero)"],
  ["fullyPaidOn", "Fully paid on (from Xero)"],
] as const;

/** The three cases of lib/sync/stages/lifecycle.ts, each with its own setting. */
export const LIFECYCLE_CASES = [
  ["deleted", "When a purchase order is deleted in Zoho"],
  ["cancelled", "When a purchase order's status becomes Cancelled"],
  ["unticked", "When “Add to Xero” is unticked after the bill exists"],
] as const;

/** Blank rows offered for new account overrides and tax mappings. */
export const BLANK_ROWS = 2;

export function toValues(s: Settings): FormValues {
  const v: FormValues = {
    checkboxField: s.checkboxField,
    vendorField: s.vendorField,
    vendorLabel: s.vendorLabel,
    defaultAccountCode: s.defaultAccountCode,
    defaultTaxType: s.defaultTaxType ?? "",
    untaxedTaxType: s.untaxedTaxType,
    billStatus: s.billStatus,
    paymentTermsDays: String(s.paymentTermsDays),
    sendItemCodes: s.sendItemCodes ? "on" : "",
    zohoRecordUrlBase: s.zohoRecordUrlBase,
    "writeBack.enabled": s.writeBack.enabled ? "on" : "",
  };
  for (const [k] of WRITE_BACK_FIELDS) v[`writeBack.fields.${k}`] = s.writeBack.fields[k];
  for (const [k] of LIFECYCLE_CASES) v[`lifecycle.${k}`] = s.lifecycle[k];
  s.accountOverrides.forEach((o, i) => {
    v[`accountOverrides.${i}.match`] = o.match;
    v[`accountOverrides.${i}.accountCode`] = o.accountCode;
  });
  s.taxMappings.forEach((m, i) => {
    v[`taxMappings.${i}.zohoTaxName`] = m.zohoTaxName ?? "";
    v[`taxMappings.${i}.percentage`] = m.percentage === undefined ? "" : String(m.percentage);
    v[`taxMappings.${i}.taxType`] = m.taxType;
  });
  return v;
}

/** How many rows a list field shows: the filled ones (by highest index) plus blank ones. */
export function rowCount(values: FormValues, list: "accountOverrides" | "taxMappings"): number {
  let max = -1;
  for (const name of Object.keys(values)) {
    const m = name.match(/^(\w+)\.(\d+)\./);
    if (m && m[1] === list && values[name].trim()) max = Math.max(max, Number(m[2]));
  }
  return Math.min(max + 1 + BLANK_ROWS, 200);
}

function rows(
  values: FormValues,
  list: string,
  cols: string[],
): Array<{ index: number; row: FormValues }> {
  const out: Array<{ index: number; row: FormValues }> = [];
  for (let i = 0; i < 200; i++) {
    const row: FormValues = {};
    for (const c of cols) row[c] = (values[`${list}.${i}.${c}`] ?? "").trim();
    if (cols.some((c) => row[c])) out.push({ index: i, row });
  }
  return out;
}

const blankToUndefined = (s: string) => s.trim() === "" ? undefined : s;

/**
 * The submitted form → settings input, and where each list entry came from in the form. Settings
 * the form does not show (added to the schema later) keep their current value.
 */
export function fromValues(
  values: FormValues,
  current: Partial<Settings> = {},
): { input: unknown; rowOf: Record<string, number[]> } {
  const overrides = rows(values, "accountOverrides", ["match", "accountCode"]);
  const taxes = rows(values, "taxMappings", ["zohoTaxName", "percentage", "taxType"]);
  const fields: Record<string, string> = {};
  for (const [k] of WRITE_BACK_FIELDS) fields[k] = values[`writeBack.fields.${k}`] ?? "";
  const lifecycle: Record<string, string | undefined> = {};
  for (const [k] of LIFECYCLE_CASES) lifecycle[k] = values[`lifecycle.${k}`] || undefined;
  const input = {
    ...current,
    checkboxField: values.checkboxField ?? "",
    vendorField: values.vendorField ?? "",
    vendorLabel: values.vendorLabel ?? "",
    defaultAccountCode: values.defaultAccountCode ?? "",
    defaultTaxType: (values.defaultTaxType ?? "").trim() === "" ? null : values.defaultTaxType,
    untaxedTaxType: values.untaxedTaxType ?? "",
    billStatus: values.billStatus,
    paymentTermsDays: blankToUndefined(values.paymentTermsDays ?? ""),
    sendItemCodes: values.sendItemCodes === "on",
    zohoRecordUrlBase: values.zohoRecordUrlBase ?? "",
    writeBack: { enabled: values["writeBack.enabled"] === "on", fields },
    lifecycle: { ...current.lifecycle, ...lifecycle },
    accountOverrides: overrides.map(({ row }) => ({
      match: row.match,
      accountCode: row.accountCode,
    })),
    taxMappings: taxes.map(({ row }) => ({
      zohoTaxName: blankToUndefined(row.zohoTaxName),
      percentage: blankToUndefined(row.percentage),
      taxType: row.taxType,
    })),
  };
  return {
    input,
    rowOf: {
      accountOverrides: overrides.map((r) => r.index),
      taxMappings: taxes.map((r) => r.index),
    },
  };
}

const FIELD_LABELS: Record<string, string> = {
  checkboxField: "“Add to Xero” field",
  vendorField: "Vendor field",
  vendorLabel: "Vendor field label",
  defaultAccountCode: "Default account",
  defaultTaxType: "Tax for other Zoho taxes",
  untaxedTaxType: "Tax for untaxed lines",
  billStatus: "Bill status",
  paymentTermsDays: "Payment terms",
  zohoRecordUrlBase: "Zoho record link",
};

/** Validates like saveSettings does, giving each problem to the field it is about. */
export function validate(values: FormValues, current: Partial<Settings> = {}):
  | { ok: true; input: unknown }
  | {
    ok: false;
    errors: Record<string, string[]>;
    summary: Array<{ name: string; text: string }>;
  } {
  const { input, rowOf } = fromValues(values, current);
  const parsed = SettingsSchema.safeParse(input);
  if (parsed.success) return { ok: true, input };
  const errors: Record<string, string[]> = {};
  const summary: Array<{ name: string; text: string }> = [];
  for (const issue of parsed.error.issues) {
    const path = issue.path.map(String);
    // List entries: map the compacted index back to the form row it came from.
    if ((path[0] === "accountOverrides" || path[0] === "taxMappings") && path[1] !== undefined) {
      path[1] = String(rowOf[path[0]][Number(path[1])] ?? path[1]);
      if (path.length === 2) path.push(path[0] === "taxMappings" ? "zohoTaxName" : "match");
    }
    const name = path.join(".");
    (errors[name] ??= []).push(issue.message);
    const label = FIELD_LABELS[name] ??
      (path[0] === "accountOverrides"
        ? `Account override row ${Number(path[1]) + 1}`
        : path[0] === "taxMappings"
        ? `Tax mapping row ${Number(path[1]) + 1}`
        : path[0] === "writeBack"
        ? `Write-back field ${path.at(-1)}`
        : path[0] === "lifecycle"
        ? `Bills of ${path.at(-1)} purchase orders`
        : name);
    summary.push({ name, text: `${label}: ${issue.message}` });
  }
  return { ok: false, errors, summary };
}

/** An account as Xero's chart lists it (XeroClient.accounts: active, not system accounts). */
export interface ChartAccount {
  code: string;
  type: string;
}

function accountProblem(code: string, chart: ChartAccount[]): string | undefined {
  const hit = chart.find((a) => a.code === code.trim());
  if (!hit) return "is not in Xero's chart of accounts (or is archived there)";
  if (hit.type.toUpperCase() === "BANK") {
    return "is a bank account: Xero does not take bank accounts on bill lines";
  }
  return undefined;
}

/**
 * Checks a form that passed `validate` against the connected systems: write-back targets against
 * the fields the sync reads, standard fields and (when given) Zoho's field list; account codes
 * against Xero's chart (when given). Problems go to the field they are about.
 */
export function checkAgainstSystems(
  values: FormValues,
  current: Partial<Settings>,
  lists: { fields?: FieldMeta[] | null; accounts?: ChartAccount[] | null },
): { errors: Record<string, string[]>; summary: Array<{ name: string; text: string }> } {
  const { input, rowOf } = fromValues(values, current);
  const errors: Record<string, string[]> = {};
  const summary: Array<{ name: string; text: string }> = [];
  const parsed = SettingsSchema.safeParse(input);
  if (!parsed.success) return { errors, summary };
  const settings = parsed.data;
  const add = (name: string, label: string, message: string) => {
    (errors[name] ??= []).push(message);
    summary.push({ name, text: `${label}: ${message}` });
  };
  const labels = new Map<string, string>(WRITE_BACK_FIELDS);
  for (const { key, message } of writeBackIssues(settings, lists.fields)) {
    add(`writeBack.fields.${key}`, `Write-back field ${labels.get(key) ?? key}`, message);
  }
  if (lists.accounts) {
    const p = accountProblem(settings.defaultAccountCode, lists.accounts);
    if (p) add("defaultAccountCode", FIELD_LABELS.defaultAccountCode, p);
    settings.accountOverrides.forEach((o, i) => {
      const problem = accountProblem(o.accountCode, lists.accounts!);
      const row = rowOf.accountOverrides[i] ?? i;
      if (problem) {
        add(`accountOverrides.${row}.accountCode`, `Account override row ${row + 1}`, problem);
      }
    });
  }
  return { errors, summary };
}
