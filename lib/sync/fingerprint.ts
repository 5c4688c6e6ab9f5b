/**
 * Zoho's Modified_Time has one-second precision, so a person's edit in the same second as our own
 * write-back would look like no change. The list call therefore also reads a few content fields;
 * a record is skipped only when its time and these fields are both as we left them.
 */
import { createHash } from "node:crypto";
import type { Settings } from "../mapping/mod.ts";
import { isCancelled } from "./stages/lifecycle.ts";

// The totals are here because a line edit (quantity, price, discount, tax) nearly always moves one.
const CONTENT_FIELDS = [
  "PO_Number",
  "Subject",
  "Grand_Total",
  "Sub_Total",
  "Tax",
  "Discount",
  "Adjustment",
  "Currency",
  "PO_Date",
  "Due_Date",
];

export function listFields(settings: Settings): string[] {
  return [
    "Modified_Time",
    settings.vendorField,
    settings.checkboxField,
    ...CONTENT_FIELDS,
    "Status",
  ];
}

export function fingerprint(record: Record<string, unknown>, settings: Settings): string {
  const vendor = record[settings.vendorField] as { id?: unknown } | null | undefined;
  const values = [
    vendor && typeof vendor === "object" ? String(vendor.id ?? "") : "",
    record[settings.checkboxField] === true,
    ...CONTENT_FIELDS.map((f) => record[f] ?? null),
    // A cancellation matters (stages/lifecycle.ts); other statuses leave the fingerprint as it was.
    ...(isCancelled(record) ? ["Cancelled"] : []),
  ];
  return createHash("sha256").update(JSON.stringify(values)).digest("hex").slice(0, 16);
}

/**
 * The settings a record was decided under: a record skipped for an unmapped tax, or billed with
 * an old account, is decided again once they change (the unchanged check compares this too).
 */
export function settingsKey(settings: Settings): string {
  return createHash("sha256").update(JSON.stringify(settings)).digest("hex").slice(0, 16);
}
