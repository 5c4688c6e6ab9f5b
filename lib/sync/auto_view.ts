/**
 * The words of auto sync, shared by the server and the AutoSyncSwitch island (so no KV or zod code
 * is bundled for the browser).
 */
import type { RunStatus } from "./types.ts";

export const AUTO_SYNC_HOURS = [1, 2, 4, 8, 12, 24] as const;
export type AutoSyncHours = (typeof AUTO_SYNC_HOURS)[number];

/** What the sync page shows and the switch answers with. */
export interface AutoSyncView {
  /** AUTO_SYNC_CRON=off: switched off for the deployment, the page cannot turn it on. */
  envOff: boolean;
  enabled: boolean;
  everyHours: AutoSyncHours;
  nextAt: string | null;
  last: { runId: string; startedAt: string; status: RunStatus; created: number } | null;
  /** "Auto sync: on, every 4 hours, next around 14:00 UTC, last at 10:00 (44 created)". */
  line: string;
}

export function everyLabel(h: number): string {
  return h === 1 ? "every hour" : `every ${h} hours`;
}

/** "14:00" today (UTC), else "2026-11-28 14:00". */
function clock(iso: string, now: number): string {
  const t = new Date(iso).toISOString();
  const today = new Date(now).toISOString().slice(0, 10);
  return t.slice(0, 10) === today ? t.slice(11, 16) : `${t.slice(0, 10)} ${t.slice(11, 16)}`;
}

export function autoSyncLine(v: Omit<AutoSyncView, "line">, now = Date.now()): string {
  const last = v.last
    ? `last at ${clock(v.last.startedAt, now)} (${
      v.last.status === "running" ? "running" : `${v.last.created} created`
    })`
    : "no auto run yet";
  if (v.envOff) return `Auto sync: off for this deployment (AUTO_SYNC_CRON=off), ${last}`;
  if (!v.enabled) return `Auto sync: off, ${last}`;
  const next = v.nextAt ? `, next around ${clock(v.nextAt, now)} UTC` : "";
  return `Auto sync: on, ${everyLabel(v.everyHours)}${next}, ${last}`;
}
