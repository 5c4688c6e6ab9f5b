/**
 * "Recent runs" on the sync page. Server-rendered with the page, then read again whenever a run
 * started from this page finishes (SyncPanel sends `sync:run-finished`), so it never says
 * "No runs yet" beside a finished run.
 */
import { useEffect, useState } from "preact/hooks";
import { RunTable } from "../components/RunTable.tsx";
import type { Run } from "../lib/sync/types.ts";

export const RUN_FINISHED_EVENT = "sync:run-finished";

export default function RecentRuns({ csrf, initial, limit = 5 }: {
  csrf: string;
  initial: Run[];
  limit?: number;
}) {
  const [runs, setRuns] = useState(initial);

  useEffect(() => {
    const refresh = async () => {
      try {
        const res = await fetch(`/api/sync-runs?limit=${limit}`, {
          headers: { accept: "application/json", "x-csrf-token": csrf },
        });
        if (res.ok) setRuns(((await res.json()) as { runs: Run[] }).runs);
      } catch { /* the next finished run refreshes it again */ }
    };
    addEventListener(RUN_FINISHED_EVENT, refresh);
    return () => removeEventListener(RUN_FINISHED_EVENT, refresh);
  }, []);

  return <RunTable runs={runs} compact />;
}
