/** The run history table: one row per run, newest first. */
import type { Run } from "../lib/sync/types.ts";
import {
  formatDuration,
  MODE_LABEL,
  OUTCOME_LABEL,
  OUTCOME_ORDER,
  runDurationMs,
  StatusBadge,
  Time,
  TRIGGER_LABEL,
  windowLabel,
} from "./RunParts.tsx";

export function RunTable({ runs, compact = false }: { runs: Run[]; compact?: boolean }) {
  if (!runs.length) return <p class="muted">No runs yet.</p>;
  return (
    <div class="table-wrap">
      <table class="runs">
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Status</th>
            <th scope="col">Records</th>
            {compact ? null : <th scope="col">Window</th>}
            <th scope="col">Mode</th>
            {compact ? null : <th scope="col">Started by</th>}
            {compact ? null : <th scope="col">Duration</th>}
            {compact ? null : <th scope="col">Watermark before → after</th>}
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr data-run={run.id}>
              <td>
                <a href={`/runs/${encodeURIComponent(run.id)}`}>
                  <Time iso={run.startedAt} />
                </a>
              </td>
              <td>
                <StatusBadge status={run.status} />
                {!compact && run.message ? <div class="muted small">{run.message}</div> : null}
              </td>
              <td class="small">
                {run.counts.total} total
                {OUTCOME_ORDER.filter((o) => run.counts[o]).map((o) => (
                  <span class={`outcome-${o}`}>{` · ${OUTCOME_LABEL[o]} ${run.counts[o]}`}</span>
                ))}
              </td>
              {compact ? null : <td>{windowLabel(run.window, run.days)}</td>}
              <td>{MODE_LABEL[run.mode] ?? run.mode}</td>
              {compact ? null : <td>{TRIGGER_LABEL[run.trigger] ?? run.trigger}</td>}
              {compact ? null : <td>{formatDuration(runDurationMs(run))}</td>}
              {compact ? null : (
                <td class="small">
                  <Time iso={run.watermark.before} /> → <Time iso={run.watermark.after} />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
