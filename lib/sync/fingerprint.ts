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

/**
 * Header fields the mapping and the sync read besides the content fields: with them, a listed
 * record plus its line items read in bulk is the record the single-record GET gives
 * (lib/sync/stages/bulk.ts). `$line_tax` is left out: orders taxed as a whole are read with the GET.
 */
const HEADER_FIELDS = ["Created_Time"];

/**
 * What the listing asks for (≤ 50 names). `zohoFields`: the Purchase_Orders fields Zoho has; the
 * written-back bill id is listed only when Zoho has that field (an unknown name fails the list).
 */
export function listFields(settings: Settings, zohoFields?: Iterable<string>): string[] {
  const billId = settings.writeBack.fields.billId?.trim();
  const known = new Set(zohoFields ?? []);
  return [
    ...new Set([
      "Modified_Time",
      settings.vendorField,
      settings.checkboxField,
      ...CONTENT_FIELDS,
      ...HEADER_FIELDS,
      "Status",
      ...(billId && known.has(billId) ? [billId] : []),
    ]),
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
