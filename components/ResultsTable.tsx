/** Per-record results of a run: the purchase order, what happened, why, and the bill. */
import type { RecordResult } from "../lib/sync/types.ts";
import { formatTime, OUTCOME_LABEL, xeroBillUrl, zohoRecordUrl } from "./RunParts.tsx";

/** Why the run read this record whatever Zoho showed. */
export function retriedWords(why: NonNullable<RecordResult["retried"]>): string {
  if (why.via === "webhook") {
    return `Synced because it was queued by Zoho's webhook or a retry (${formatTime(why.since)}).`;
  }
  const reason = why.reason ? why.reason.replace(/\.?$/, "") : "an earlier sync left it owed";
  return `Retried: ${reason} (owed since ${formatTime(why.since)}).`;
}

function Details({ r }: { r: RecordResult }) {
  // Reasons the message already says are not repeated under it.
  const reasons = r.reasons.filter((x) => x && !r.message.includes(x));
  return (
    <>
      {r.message ? <div>{r.message}</div> : null}
      {reasons.length
        ? (
          <ul class="reasons">
            {reasons.map((x, i) => <li key={i}>{x}</li>)}
          </ul>
        )
        : null}
      {r.retried
        ? <div class="retried" data-testid="retried">{retriedWords(r.retried)}</div>
        : null}
      {r.outcome === "failed" && r.failedAt
        ? (
          <div class="muted small">
            Failed in {r.failedAt === "app" ? "this app" : r.failedAt === "zoho" ? "Zoho" : "Xero"}
          </div>
        )
        : null}
    </>
  );
}

export function ResultsTable(
  { results, zohoRecordUrlBase, caption }: {
    results: RecordResult[];
    zohoRecordUrlBase: string;
    caption?: string;
  },
) {
  if (!results.length) return <p class="muted">No records to show.</p>;
  return (
    <div class="table-wrap">
      <table class="results">
        {caption ? <caption>{caption}</caption> : null}
        <thead>
          <tr>
            <th scope="col">Purchase order</th>
            <th scope="col">Outcome</th>
            <th scope="col">Details</th>
            <th scope="col">Warnings</th>
            <th scope="col">Xero bill</th>
          </tr>
        </thead>
        <tbody>
          {results.map((r) => {
            const zoho = zohoRecordUrl(zohoRecordUrlBase, r.purchaseOrderId);
            return (
              <tr data-po={r.purchaseOrderId} data-outcome={r.outcome}>
                <td>
                  {zoho
                    ? (
                      <a href={zoho} class="po-link" rel="noopener noreferrer" target="_blank">
                        {r.reference || r.purchaseOrderId}{" "}
                        <span class="sr-only">(opens Zoho in a new tab)</span>
                      </a>
                    )
                    : r.reference || r.purchaseOrderId}
                  {r.reference ? <div class="muted small mono">{r.purchaseOrderId}</div> : null}
                </td>
                <td>
                  <span class={`outcome-${r.outcome}`}>
                    {OUTCOME_LABEL[r.outcome] ?? r.outcome}
                  </span>
                </td>
                <td>
                  <Details r={r} />
                </td>
                <td>
                  {r.warnings?.length
                    ? (
                      <ul class="reasons warn">
                        {r.warnings.map((w, i) => <li key={i}>{w}</li>)}
                      </ul>
                    )
                    : <span class="muted">—</span>}
                </td>
                <td>
                  {r.bill
                    ? (
                      <a
                        href={xeroBillUrl(r.bill.invoiceId)}
                        class="bill-link"
                        rel="noopener noreferrer"
                        target="_blank"
                      >
                        {r.bill.invoiceNumber || "Open bill"}
                        <span class="muted small">{` (${r.bill.status})`}</span>{" "}
                        <span class="sr-only">(opens Xero in a new tab)</span>
                      </a>
                    )
                    : <span class="muted">—</span>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
