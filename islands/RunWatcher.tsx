/**
 * On the page of a run that is still going (or paused): live progress, then a reload so the server
 * renders the finished run with its filterable results.
 */
import { useEffect, useState } from "preact/hooks";
import { RunProgress, type RunView } from "../components/RunProgress.tsx";
import { watchRun } from "./poll.ts";

export default function RunWatcher(
  { csrf, initial, pollMs = 1000 }: { csrf: string; initial: RunView; pollMs?: number },
) {
  const [run, setRun] = useState<RunView>(initial);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    // A paused run is watched too: when it goes on (same id), the page shows it.
    if (initial.status !== "running" && initial.status !== "paused") return;
    return watchRun(csrf, initial.id, {
      intervalMs: initial.status === "paused" ? pollMs * 5 : pollMs,
      whilePaused: initial.status === "paused",
      onRun: (next) => {
        setRun(next);
        if (next.status !== initial.status) location.reload();
      },
      onError: setError,
    });
  }, [initial.id]);

  return (
    <div>
      <RunProgress run={run} />
      {error ? <p class="notice">{error}</p> : null}
    </div>
  );
}
