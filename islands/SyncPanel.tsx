/**
 * The manual sync form and, once "Sync Now" is pressed, the run's live progress and its results.
 * Without JavaScript the same form posts to /sync and the server redirects to the run's page.
 */
import { useEffect, useState } from "preact/hooks";
import type { RunView } from "../components/RunProgress.tsx";
import { RunProgress } from "../components/RunProgress.tsx";
import { ResultsTable } from "../components/ResultsTable.tsx";
import type { RecordResult } from "../lib/sync/types.ts";
import { type StartInput, startRun, watchRun } from "./poll.ts";
import { RUN_FINISHED_EVENT } from "./RecentRuns.tsx";

export interface SyncPanelProps {
  csrf: string;
  /** "Last ran …" words for the since-last-sync choice, computed by the server. */
  lastSyncText: string;
  zohoRecordUrlBase: string;
  /** A run already in progress when the page loaded: its progress is shown right away. */
  activeRunId?: string | null;
  pollMs?: number;
}

const MODES: Array<{ value: StartInput["mode"]; label: string; hint: string }> = [
  {
    value: "create_and_update",
    label: "Create and update",
    hint: "New bills for new purchase orders; draft bills are brought up to date.",
  },
  {
    value: "create_only",
    label: "Create only",
    hint: "Only new bills; bills that already exist are left as they are.",
  },
  {
    value: "preview",
    label: "Preview — dry run, nothing is written",
    hint: "Shows what would happen. Nothing changes in Xero or Zoho.",
  },
];

/** Results shown under the form; the run's own page lists every record. */
const SHOWN = 100;
const ORDER: Record<string, number> = {
  failed: 0,
  skipped: 1,
  created: 2,
  updated: 3,
  unchanged: 4,
};

function problemsFirst(results: RecordResult[]): RecordResult[] {
  return [...results].sort((a, b) => (ORDER[a.outcome] ?? 9) - (ORDER[b.outcome] ?? 9));
}

export default function SyncPanel(props: SyncPanelProps) {
  const pollMs = props.pollMs ?? 700;
  const [win, setWin] = useState<StartInput["window"]>("since_last_sync");
  const [days, setDays] = useState("7");
  const [mode, setMode] = useState<StartInput["mode"]>("create_and_update");
  const [runId, setRunId] = useState<string | null>(props.activeRunId ?? null);
  const [run, setRun] = useState<RunView | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);

  useEffect(() => {
    if (!runId) return;
    return watchRun(props.csrf, runId, {
      intervalMs: pollMs,
      onRun: (next) => {
        setRun(next);
        // Other parts of the page ("Recent runs") read the run history again.
        if (next.status !== "running") dispatchEvent(new CustomEvent(RUN_FINISHED_EVENT));
      },
      onError: setError,
    });
  }, [runId]);

  const running = starting || run?.status === "running" || (!!runId && !run);

  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    setNotice(null);
    const n = Number(days);
    if (win === "last_days" && !(Number.isInteger(n) && n >= 1 && n <= 3650)) {
      setError("Enter a whole number of days from 1 to 3650.");
      return;
    }
    setStarting(true);
    try {
      const answer = await startRun(props.csrf, {
        window: win,
        mode,
        ...(win === "last_days" ? { days: n } : {}),
      });
      if (answer.ok || answer.runId) {
        if (!answer.ok) setNotice(answer.error);
        setRun(null);
        setRunId(answer.ok ? answer.runId : answer.runId!);
      } else {
        setError(answer.error);
      }
    } catch {
      setError("Could not reach the app. Check your connection and try again.");
    } finally {
      setStarting(false);
    }
  }

  return (
    <>
      <form method="post" action="/sync" class="card sync-form" onSubmit={submit}>
        <input type="hidden" name="csrf" value={props.csrf} />
        <h2>Sync records now</h2>
        <label for="sync-module">Module</label>
        <select id="sync-module" name="module">
          <option value="Purchase_Orders">Purchase Orders</option>
        </select>

        <fieldset>
          <legend>Which records</legend>
          <div class="choice">
            <input
              type="radio"
              id="w-since"
              name="window"
              value="since_last_sync"
              checked={win === "since_last_sync"}
              onChange={() => setWin("since_last_sync")}
            />
            <label for="w-since">After last synchronization ran</label>
            <p class="hint" id="w-since-hint">{props.lastSyncText}</p>
          </div>
          <div class="choice">
            <input
              type="radio"
              id="w-days"
              name="window"
              value="last_days"
              checked={win === "last_days"}
              onChange={() => setWin("last_days")}
            />
            <label for="w-days">Changed in the last</label>
            <span class="inline-field">
              <input
                type="number"
                id="sync-days"
                name="days"
                min={1}
                max={3650}
                step={1}
                value={days}
                class="days"
                aria-label="Number of days"
                onInput={(e) => {
                  // Typing a number (never merely focusing the box) chooses this window.
                  setDays((e.target as HTMLInputElement).value);
                  setWin("last_days");
                }}
              />
              <span aria-hidden="true">days</span>
            </span>
          </div>
          <div class="choice">
            <input
              type="radio"
              id="w-all"
              name="window"
              value="all"
              checked={win === "all"}
              onChange={() => setWin("all")}
            />
            <label for="w-all">All records</label>
          </div>
        </fieldset>

        <fieldset>
          <legend>What to do</legend>
          {MODES.map((m) => (
            <div class="choice">
              <input
                type="radio"
                id={`m-${m.value}`}
                name="mode"
                value={m.value}
                checked={mode === m.value}
                onChange={() => setMode(m.value)}
                aria-describedby={`m-${m.value}-hint`}
              />
              <label for={`m-${m.value}`}>{m.label}</label>
              <p class="hint" id={`m-${m.value}-hint`}>{m.hint}</p>
            </div>
          ))}
        </fieldset>

        <button type="submit" disabled={running}>
          {running ? "Syncing…" : "Sync Now"}
        </button>
        {error ? <p class="error-box" role="alert">{error}</p> : null}
      </form>

      {runId
        ? (
          <section class="card run-panel" aria-labelledby="run-h" data-run-id={runId}>
            <h2 id="run-h">
              {run?.mode === "preview" ? "Preview" : "Sync"} {run?.status === "paused"
                ? "paused"
                : run && run.status !== "running"
                ? "finished"
                : "in progress"}
            </h2>
            {notice ? <p class="notice">{notice}</p> : null}
            {run ? <RunProgress run={run} /> : <p class="muted">Starting…</p>}
            {run && run.status !== "running"
              ? (
                <>
                  <p>
                    <a href={`/runs/${encodeURIComponent(runId)}`} class="open-run">
                      Open this run in the history
                    </a>
                  </p>
                  {(run.results?.length ?? 0) > SHOWN
                    ? (
                      <p class="muted">
                        Showing the first {SHOWN} of {run.results!.length}{" "}
                        records, problems first. The run's page has them all.
                      </p>
                    )
                    : null}
                  <ResultsTable
                    results={problemsFirst(run.results ?? []).slice(0, SHOWN)}
                    zohoRecordUrlBase={props.zohoRecordUrlBase}
                    caption={run.mode === "preview"
                      ? "What would happen (nothing was written)"
                      : "Records"}
                  />
                </>
              )
              : null}
          </section>
        )
        : null}
    </>
  );
}
