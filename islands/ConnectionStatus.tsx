/** Connection panel that refreshes itself from /health, so the home page shows live states. */
import { useEffect, useState } from "preact/hooks";

export type ConnState = "connected" | "not_connected" | "error";
export interface Health {
  ok: boolean;
  kv: string;
  zoho: { state: ConnState; message?: string };
  xero: { state: ConnState; message?: string; tenantName?: string };
}

const LABEL: Record<ConnState, string> = {
  connected: "Connected",
  not_connected: "Not connected",
  error: "Needs attention",
};

export default function ConnectionStatus(
  { initial, refreshMs = 30000 }: { initial: Health; refreshMs?: number },
) {
  const [health, setHealth] = useState(initial);
  const [checkedAt, setCheckedAt] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function refresh() {
    setBusy(true);
    try {
      const res = await fetch("/health", { headers: { accept: "application/json" } });
      setHealth(await res.json());
      setCheckedAt(new Date().toLocaleTimeString());
    } catch {
      setCheckedAt("failed, retrying");
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => {
    const timer = setInterval(refresh, refreshMs);
    return () => clearInterval(timer);
  }, [refreshMs]);

  const row = (name: string, s: { state: ConnState; message?: string }, extra?: string) => (
    <li class={`conn conn-${s.state}`}>
      <strong>{name}</strong> <span class="conn-state">{LABEL[s.state]}</span>
      {extra ? <span class="muted">{` — ${extra}`}</span> : null}
      {s.message ? <div class="muted small">{s.message}</div> : null}
    </li>
  );

  return (
    <section class="card" aria-live="polite">
      <h2>Connections</h2>
      <ul class="conn-list">
        {row("Zoho CRM", health.zoho)}
        {row("Xero", health.xero, health.xero.tenantName)}
      </ul>
      <button type="button" class="secondary" onClick={refresh} disabled={busy}>
        {busy ? "Checking…" : "Check now"}
      </button>
      {checkedAt
        ? <span class="muted small" data-testid="checked-at">Checked {checkedAt}</span>
        : null}
    </section>
  );
}
