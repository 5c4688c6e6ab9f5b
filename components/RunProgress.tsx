/**
 * The live view of one run: a progress bar with counts by outcome. Used by the islands that poll a
 * run; also server-rendered first, so the page shows the state it was loaded with.
 */
import type { RecordResult, Run } from "../lib/sync/types.ts";
import { CountList, MODE_LABEL, STATUS_LABEL, windowLabel } from "./RunParts.tsx";

/** A run as GET /api/sync-runs/:id answers it: `planned` (once listed) is the total. */
export type RunView = Run & { results?: RecordResult[] };

/** 0-100, or null while the total is not known yet (an indeterminate bar). */
export function percentDone(run: RunView): number | null {
  // A paused run is as far as it got: it goes on later under the same id.
  if (run.status !== "running" && !(run.status === "paused" && run.planned)) return 100;
  if (!run.planned) return null;
  // `processed` also counts records skipped because nothing changed (they have no result row).
  return Math.min(99, Math.floor(((run.processed ?? run.counts.total) / run.planned) * 100));
}

export function RunProgress({ run }: { run: RunView }) {
  const pct = percentDone(run);
  const running = run.status === "running";
  const paused = run.status === "paused";
  const of = run.planned ? ` of ${run.planned}` : "";
  return (
    <div class="run-progress" data-status={run.status}>
      <p class="muted small">
        {MODE_LABEL[run.mode]} · {windowLabel(run.window, run.days)}
      </p>
      {
        /* A named progressbar with its values, so a screen reader announces how far it is. */
      }
      <progress
        class="progress"
        role="progressbar"
        max={100}
        value={pct ?? undefined}
        aria-label="Sync progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct ?? undefined}
        aria-valuetext={pct === null
          ? "Listing records…"
          : `${pct} %, ${run.counts.total}${of} records`}
        data-pct={pct ?? ""}
      />
      <p class="progress-text" data-testid="progress-text">
        {running || paused
          ? `${paused ? "Paused: " : ""}${run.counts.total}${of} records done${
            pct === null ? "" : ` · ${pct} %`
          }`
          : `${STATUS_LABEL[run.status]}: ${run.counts.total} records · 100 %`}
      </p>
      {/* Announced once, when the run is over or pauses (not at every poll). */}
      <p role="status" class="sr-only">
        {running
          ? ""
          : paused
          ? `Sync paused after ${run.counts.total} records. ${run.message ?? ""}`
          : `Sync finished. ${STATUS_LABEL[run.status]}: ${run.counts.total} records.`}
      </p>
      <CountList counts={run.counts} />
      {run.message
        ? <p class={run.status === "failed" ? "error-box" : "notice"}>{run.message}</p>
        : null}
    </div>
  );
}
