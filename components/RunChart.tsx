/**
 * The last runs at a glance: one stacked bar per run (records by outcome), oldest on the left,
 * server-rendered SVG (no chart library: thirty rectangles do not need one). Each bar has a title
 * for pointer users; the figure's name and the sentence under it say the same for everyone.
 */
import type { Outcome, Run } from "../lib/sync/types.ts";
import { formatTime, OUTCOME_LABEL, OUTCOME_ORDER } from "./RunParts.tsx";

/**
 * Outcome colours, bottom to top in each bar; failed last so it sits on top and stands out. The
 * legend's swatches repeat them in app.css (the CSP allows no inline style).
 */
const COLOR: Record<Outcome, string> = {
  created: "#1a7f37",
  updated: "#4c8fd6",
  unchanged: "#afb8c1",
  skipped: "#bf8700",
  failed: "#cf222e",
};

const W = 600;
const H = 140;
const PAD_TOP = 6;
const PAD_BOTTOM = 4;

export function RunChart({ runs }: { runs: Run[] }) {
  if (!runs.length) return null;
  const shown = [...runs].reverse(); // oldest first
  const max = Math.max(1, ...shown.map((r) => r.counts.total));
  const slot = W / Math.max(shown.length, 10);
  const barW = Math.max(2, slot * 0.7);
  const scale = (H - PAD_TOP - PAD_BOTTOM) / max;
  const withFailures = shown.filter((r) => r.counts.failed > 0).length;
  const summary = `${
    shown.length === 1 ? "The last run" : `The last ${shown.length} runs, oldest on the left`
  }; ${withFailures} with failed records; at most ${max} records in one run.`;
  return (
    <figure class="card chart" aria-labelledby="chart-h">
      <h2 id="chart-h">{shown.length === 1 ? "Last run" : `Last ${shown.length} runs`}</h2>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        role="img"
        aria-labelledby="chart-h chart-desc"
        data-testid="run-chart"
      >
        <line x1={0} x2={W} y1={H - PAD_BOTTOM} y2={H - PAD_BOTTOM} stroke="#d0d7de" />
        {shown.map((run, i) => {
          let y = H - PAD_BOTTOM;
          const x = i * slot + (slot - barW) / 2;
          const parts = OUTCOME_ORDER.filter((o) => run.counts[o] > 0);
          const words = parts.map((o) => `${run.counts[o]} ${OUTCOME_LABEL[o].toLowerCase()}`);
          return (
            <g data-run={run.id} data-failed={run.counts.failed}>
              <title>
                {`${formatTime(run.startedAt)}: ${words.length ? words.join(", ") : "no records"}`}
              </title>
              {parts.length
                ? parts.map((o) => {
                  // A single failure in a big run must still be seen: at least 3 units tall.
                  const h = Math.max(o === "failed" ? 3 : 1, run.counts[o] * scale);
                  y -= h;
                  return (
                    <rect
                      x={x.toFixed(1)}
                      y={y.toFixed(1)}
                      width={barW.toFixed(1)}
                      height={h.toFixed(1)}
                      fill={COLOR[o]}
                      data-outcome={o}
                    />
                  );
                })
                : (
                  <rect
                    x={x.toFixed(1)}
                    y={H - PAD_BOTTOM - 2}
                    width={barW.toFixed(1)}
                    height={2}
                    fill="#d0d7de"
                  />
                )}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <p id="chart-desc" class="small muted">{summary}</p>
        <ul class="legend" aria-hidden="true">
          {OUTCOME_ORDER.map((o) => (
            <li>
              <span class={`swatch swatch-${o}`} />
              {OUTCOME_LABEL[o]}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
