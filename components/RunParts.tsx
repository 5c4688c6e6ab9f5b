/**
 * Words and small pieces for showing runs, shared by the server pages and the islands (so they
 * must render the same on both sides: times are shown in UTC, never in the viewer's zone).
 */
import type {
  Counts,
  Mode,
  Outcome,
  Run,
  RunStatus,
  RunWindow,
  Trigger,
} from "../lib/sync/types.ts";

export const OUTCOME_ORDER: Outcome[] = ["created", "updated", "unchanged", "skipped", "failed"];

export const OUTCOME_LABEL: Record<Outcome, string> = {
  created: "Created",
  updated: "Updated",
  unchanged: "Unchanged",
  skipped: "Skipped",
  failed: "Failed",
};

export const MODE_LABEL: Record<Mode, string> = {
  create_and_update: "Create and update",
  create_only: "Create only",
  preview: "Preview (dry run)",
};

export const TRIGGER_LABEL: Record<Trigger, string> = {
  page: "Sync page",
  button: "Zoho button",
  cron: "Schedule",
  webhook: "Zoho webhook",
  api: "API",
};

export const STATUS_LABEL: Record<RunStatus, string> = {
  running: "Running",
  completed: "Completed",
  completed_with_errors: "Completed with errors",
  failed: "Failed",
  paused: "Paused",
};

export function windowLabel(window: RunWindow, days?: number): string {
  if (window === "last_days") return `Last ${days ?? "?"} day${days === 1 ? "" : "s"}`;
  if (window === "all") return "All records";
  return "After last synchronization ran";
}

/** "2026-03-12 14:05:03 UTC"; the same text on the server and in the browser. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC");
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || ms < 0) return "—";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s % 60)} s`;
}

export function runDurationMs(
  run: Pick<Run, "startedAt" | "finishedAt" | "timings">,
): number | undefined {
  if (run.timings) return run.timings.totalMs;
  if (!run.finishedAt) return undefined;
  return Date.parse(run.finishedAt) - Date.parse(run.startedAt);
}

/** Xero's own page for a bill; built from the id so a stored URL can never point elsewhere. */
export function xeroBillUrl(invoiceId: string): string {
  return `https://go.xero.com/AccountsPayable/View.aspx?InvoiceID=${encodeURIComponent(invoiceId)}`;
}

/** The Zoho record page: the settings' base URL + the record id (only http(s) bases are kept). */
export function zohoRecordUrl(base: string, id: string): string | null {
  if (!/^https?:\/\//i.test(base)) return null;
  return `${base}${encodeURIComponent(id)}`;
}

export function Time({ iso }: { iso: string | null | undefined }) {
  return iso ? <time dateTime={iso}>{formatTime(iso)}</time> : <span>—</span>;
}

/** "Created 3 · Updated 1 · …": zero counts are shown too, so the row is the same shape every run. */
export function CountList({ counts }: { counts: Counts }) {
  return (
    <ul class="counts" aria-label="Records by outcome">
      {OUTCOME_ORDER.map((o) => (
        <li class={`count outcome-${o}`} data-outcome={o}>
          {OUTCOME_LABEL[o]} <strong>{counts[o]}</strong>
        </li>
      ))}
    </ul>
  );
}

export function StatusBadge({ status }: { status: RunStatus }) {
  return <span class={`badge status-${status}`}>{STATUS_LABEL[status] ?? status}</span>;
}
