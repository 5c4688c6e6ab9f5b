/**
 * Auto sync on the sync page: one line saying what the schedule does, a switch and the interval.
 * With JavaScript a change is saved at once (one click turns it off); without, the form's Save
 * button posts it. The server answers with the new line, so the page never guesses the schedule.
 */
import { useEffect, useState } from "preact/hooks";
import { AUTO_SYNC_HOURS, type AutoSyncView, everyLabel } from "../lib/sync/auto_view.ts";

export interface AutoSyncSwitchProps {
  csrf: string;
  view: AutoSyncView;
}

export default function AutoSyncSwitch({ csrf, view: initial }: AutoSyncSwitchProps) {
  const [view, setView] = useState(initial);
  const [status, setStatus] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [hydrated, setHydrated] = useState(false);
  useEffect(() => setHydrated(true), []);

  async function save(enabled: boolean, everyHours: number) {
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      const res = await fetch("/auto-sync", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          "x-csrf-token": csrf,
        },
        body: JSON.stringify({ enabled, everyHours }),
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok && body.view) {
        setView(body.view);
        setStatus("Saved.");
      } else {
        setError(
          typeof body.error === "string" ? body.error : `The server answered ${res.status}.`,
        );
      }
    } catch {
      setError("Could not reach the app. Check your connection and try again.");
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card auto-sync" aria-labelledby="auto-h">
      <h2 id="auto-h">Auto sync</h2>
      <p id="auto-line" data-testid="auto-line">{view.line}</p>
      {view.envOff
        ? (
          <p class="muted small">
            Switched off for this deployment by the <code>AUTO_SYNC_CRON=off</code>{" "}
            setting; remove it to set auto sync here.
          </p>
        )
        : (
          <form
            method="post"
            action="/auto-sync"
            onSubmit={(e) => {
              e.preventDefault();
              save(view.enabled, view.everyHours);
            }}
          >
            <input type="hidden" name="csrf" value={csrf} />
            <div class="switch-row">
              <input
                type="checkbox"
                role="switch"
                id="auto-enabled"
                name="enabled"
                value="on"
                class="switch"
                checked={view.enabled}
                disabled={busy}
                aria-describedby="auto-line"
                onChange={(e) => save((e.target as HTMLInputElement).checked, view.everyHours)}
              />
              <label for="auto-enabled">Sync automatically</label>
            </div>
            <label for="auto-every">How often</label>
            <select
              id="auto-every"
              name="everyHours"
              disabled={busy}
              onChange={(e) => save(view.enabled, Number((e.target as HTMLSelectElement).value))}
            >
              {AUTO_SYNC_HOURS.map((h) => (
                <option value={h} selected={h === view.everyHours}>{everyLabel(h)}</option>
              ))}
            </select>
            {hydrated ? null : (
              <p>
                <button type="submit" class="secondary">Save auto sync</button>
              </p>
            )}
            <p class="small muted">
              Runs "after last synchronization ran" with "create and update", on the hour in UTC.
            </p>
            <p role="status" class="small" data-testid="auto-status">{status}</p>
            {error ? <p class="error-box" role="alert">{error}</p> : null}
          </form>
        )}
    </section>
  );
}
