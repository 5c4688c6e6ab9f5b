/**
 * A run's records as CSV for the accountant (RFC 4180: CRLF, quoted fields, a UTF-8 BOM so Excel
 * reads the accents). Cells that a spreadsheet would take for a formula (=, +, -, @, tab, CR) get a
 * leading apostrophe: PO numbers and messages come from Zoho and must stay text.
 */
import { retriedWords } from "../../components/ResultsTable.tsx";
import { eachResult, type ResultQuery } from "../../lib/sync/results.ts";
import type { RecordResult } from "../../lib/sync/types.ts";

export const CSV_COLUMNS = [
  "purchase_order_id",
  "po_number",
  "outcome",
  "message",
  "reasons",
  "warnings",
  "failed_in",
  "retried",
  "xero_invoice_id",
  "xero_bill_number",
  "xero_bill_status",
] as const;

export function csvCell(value: string | undefined): string {
  let v = value ?? "";
  if (/^[=+\-@\t\r]/.test(v)) v = `'${v}`;
  return /[",\r\n]/.test(v) || v !== v.trim() ? `"${v.replaceAll('"', '""')}"` : v;
}

function row(r: RecordResult): string {
  return [
    r.purchaseOrderId,
    r.reference,
    r.outcome,
    r.message,
    r.reasons.join("; "),
    r.warnings?.join("; "),
    r.outcome === "failed" ? r.failedAt : undefined,
    r.retried ? retriedWords(r.retried) : undefined,
    r.bill?.invoiceId,
    r.bill?.invoiceNumber,
    r.bill?.status,
  ].map(csvCell).join(",") + "\r\n";
}

/** Streams the CSV: a 10,000-record run is never held as one string. */
export function resultsCsv(
  kv: Deno.Kv,
  runId: string,
  query: ResultQuery,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const rows = eachResult(kv, runId, query);
  let header = true;
  return new ReadableStream({
    async pull(controller) {
      if (header) {
        header = false;
        controller.enqueue(enc.encode("\uFEFF" + CSV_COLUMNS.join(",") + "\r\n"));
        return;
      }
      const next = await rows.next();
      if (next.done) controller.close();
      else controller.enqueue(enc.encode(row(next.value)));
    },
  });
}
