/**
 * Browser side of the run API for the islands: start a run, then read it until it is done. Uses the
 * page session (cookie) with the session's CSRF token in `x-csrf-token`.
 */
import type { RunView } from "../components/RunProgress.tsx";

export interface StartInput {
  window: "since_last_sync" | "last_days" | "all";
  days?: number;
  mode: "create_and_update" | "create_only" | "preview";
}

export type StartAnswer =
  | { ok: true; runId: string }
  | { ok: false; runId?: string; error: string };

async function errorText(res: Response): Promise<string> {
  try {
    const body = await res.json();
    if (body && typeof body.error === "string") return body.error;
  } catch { /* not JSON */ }
  if (res.status === 401) return "Your session has ended. Reload the page and log in again.";
  if (res.status === 403) return "The page is out of date. Reload it and try again.";
  return `The server answered ${res.status}.`;
}

export async function startRun(csrf: string, input: StartInput): Promise<StartAnswer> {
  const res = await fetch("/api/sync-runs", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-csrf-token": csrf,
      accept: "application/json",
    },
    body: JSON.stringify(input),
  });
  if (res.status === 202 || res.status === 200) {
    const body = await res.json();
    return { ok: true, runId: String(body.runId) };
  }
  if (res.status === 409) {
    const body = await res.json().catch(() => ({}));
    return {
      ok: false,
      runId: typeof body.runId === "string" ? body.runId : undefined,
      error: "Another sync is already running; showing its progress.",
    };
  }
  return { ok: false, error: await errorText(res) };
}

/** One run; `withResults: false` asks for the run without its per-record results (lighter polls). */
export async function fetchRun(csrf: string, runId: string, withResults = true): Promise<RunView> {
  const query = withResults ? "" : "?results=0";
  const res = await fetch(`/api/sync-runs/${encodeURIComponent(runId)}${query}`, {
    headers: { "x-csrf-token": csrf, accept: "application/json" },
  });
  if (!res.ok) throw new Error(await errorText(res));
  return await res.json() as RunView;
}

/**
 * Calls `onRun` with each state of the run until it has finished (or `stop()` is called). Network
 * failures are retried with a growing pause; `onError` says so meanwhile.
 */
export function watchRun(
  csrf: string,
  runId: string,
  { intervalMs, onRun, onError, whilePaused = false }: {
    intervalMs: number;
    onRun: (run: RunView) => void;
    onError: (message: string | null) => void;
    /** Keep watching a paused run (it goes on later under the same id). */
    whilePaused?: boolean;
  },
): () => void {
  const going = (s: RunView["status"]) => s === "running" || (whilePaused && s === "paused");
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  const tick = async () => {
    if (stopped) return;
    try {
      let run = await fetchRun(csrf, runId, false);
      // Results only once, when the run is over (a long run has thousands).
      if (!going(run.status) && !run.results) run = await fetchRun(csrf, runId);
      if (stopped) return;
      failures = 0;
      onError(null);
      onRun(run);
      if (going(run.status)) timer = setTimeout(tick, intervalMs);
    } catch (err) {
      if (stopped) return;
      failures++;
      onError(`${err instanceof Error ? err.message : "Could not read the run"} Retrying…`);
      if (failures < 30) timer = setTimeout(tick, Math.min(10_000, intervalMs * 2 ** failures));
    }
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
