/**
 * Auto sync set from the sync page. Deno.cron jobs must be registered when the app starts, so a
 * fixed short tick (every 5 minutes) is registered once and decides from the settings in KV
 * whether a run is due: on/off and every 1, 2, 4, 8, 12 or 24 hours (default on, every 4 hours).
 * Runs start at UTC slot boundaries (every 4 hours: 00:00, 04:00, … UTC, as `0 *\/4 * * *` did);
 * one run per slot, claimed atomically so instances ticking together start one run.
 * `AUTO_SYNC_CRON=off` still switches the whole thing off (no tick is registered).
 */
import { z } from "zod";
import { keys } from "../store/keys.ts";
import { getRun } from "../store/runs.ts";
import type { StartResult, SyncEngine } from "./engine.ts";

import {
  AUTO_SYNC_HOURS,
  type AutoSyncHours,
  autoSyncLine,
  type AutoSyncView,
} from "./auto_view.ts";

export { AUTO_SYNC_HOURS, type AutoSyncHours, autoSyncLine, type AutoSyncView };

/** The fixed tick: short enough that "next around 14:00" is at most 5 minutes late. */
export const AUTO_SYNC_TICK = "*/5 * * * *";
export const TICK_MS = 5 * 60_000;

const HOURS_MESSAGE = "the interval must be 1, 2, 4, 8, 12 or 24 hours";

const Hours = z.coerce.number({ message: HOURS_MESSAGE }).refine(
  (n): n is AutoSyncHours => (AUTO_SYNC_HOURS as readonly number[]).includes(n),
  HOURS_MESSAGE,
);

export interface AutoSyncSettings {
  enabled: boolean;
  everyHours: AutoSyncHours;
  /** When it was last switched or changed: a slot that began before this waits for the next. */
  changedAt?: string;
}

export const DEFAULT_AUTO_SYNC: AutoSyncSettings = { enabled: true, everyHours: 4 };

const StoredSchema = z.object({
  enabled: z.boolean(),
  everyHours: Hours,
  changedAt: z.string().optional(),
});

/** What the page posts: a form (checkbox "on" or absent) or JSON (`true`/`false`). */
export const AutoSyncInputSchema = z.object({
  enabled: z.union([z.boolean(), z.enum(["on", "off", "true", "false"])], {
    message: "enabled must be on or off",
  }).optional().transform((v) => v === true || v === "on" || v === "true"),
  everyHours: Hours,
});

export interface AutoSyncLast {
  /** Start of the schedule slot the tick claimed (ISO). */
  slot: string;
  /** The run the tick started, and when (kept while a later slot is only claimed). */
  runId?: string;
  startedAt?: string;
}

export async function getAutoSync(kv: Deno.Kv): Promise<AutoSyncSettings> {
  const parsed = StoredSchema.safeParse((await kv.get(keys.autoSync())).value);
  return parsed.success ? parsed.data : { ...DEFAULT_AUTO_SYNC };
}

export async function saveAutoSync(
  kv: Deno.Kv,
  input: { enabled: boolean; everyHours: AutoSyncHours },
  now = Date.now(),
): Promise<AutoSyncSettings> {
  const before = await getAutoSync(kv);
  const unchanged = before.enabled === input.enabled && before.everyHours === input.everyHours;
  const next: AutoSyncSettings = {
    enabled: input.enabled,
    everyHours: input.everyHours,
    changedAt: unchanged ? before.changedAt : new Date(now).toISOString(),
  };
  await kv.set(keys.autoSync(), next);
  return next;
}

/** Start of the UTC-aligned slot `now` falls in (epoch 0 is midnight UTC, so 24 h is 00:00). */
export function slotStart(now: number, everyHours: number): number {
  const ms = everyHours * 3_600_000;
  return Math.floor(now / ms) * ms;
}

/**
 * Pure decision of one tick: on, the current slot began after the last change (switching on at
 * 13:20 with "every 4 hours" waits for 16:00), and no run was started in this slot yet.
 */
export function isDue(now: number, s: AutoSyncSettings, last: AutoSyncLast | null): boolean {
  if (!s.enabled) return false;
  const slot = slotStart(now, s.everyHours);
  if (s.changedAt && Date.parse(s.changedAt) > slot) return false;
  if (last && Date.parse(last.slot) >= slot) return false;
  return true;
}

/** When the next auto run should start (the next tick when one is due now); null when off. */
export function nextRunAt(now: number, s: AutoSyncSettings, last: AutoSyncLast | null) {
  if (!s.enabled) return null;
  if (isDue(now, s, last)) return Math.ceil(now / TICK_MS) * TICK_MS;
  return slotStart(now, s.everyHours) + s.everyHours * 3_600_000;
}

/**
 * One tick: starts the due run, else goes on with a run whose instance stopped (or a paused one
 * whose time has come). A slot whose run could not start (a manual run is going on) is tried again by the
 * next tick.
 */
export async function autoSyncTick(
  kv: Deno.Kv,
  engine: Pick<SyncEngine, "tick" | "resumeStaleRuns">,
  now = Date.now(),
): Promise<StartResult | { started: false; runId?: undefined }> {
  const settings = await getAutoSync(kv);
  const lastEntry = await kv.get<AutoSyncLast>(keys.autoSyncLast());
  if (!isDue(now, settings, lastEntry.value)) {
    await engine.resumeStaleRuns();
    return { started: false };
  }
  const slot = new Date(slotStart(now, settings.everyHours)).toISOString();
  const claim = await kv.atomic().check(lastEntry)
    .set(keys.autoSyncLast(), { ...lastEntry.value, slot } satisfies AutoSyncLast).commit();
  if (!claim.ok) return { started: false }; // another instance took this slot
  const start = await engine.tick("cron");
  if (!start.started) {
    // Give the slot back: the next tick tries again once the other run is over.
    if (lastEntry.value) await kv.set(keys.autoSyncLast(), lastEntry.value);
    else await kv.delete(keys.autoSyncLast());
    return start;
  }
  await kv.set(
    keys.autoSyncLast(),
    {
      slot,
      runId: start.runId,
      startedAt: new Date(now).toISOString(),
    } satisfies AutoSyncLast,
  );
  return start;
}

export async function autoSyncView(
  kv: Deno.Kv,
  envOff: boolean,
  now = Date.now(),
): Promise<AutoSyncView> {
  const s = await getAutoSync(kv);
  const lastEntry = (await kv.get<AutoSyncLast>(keys.autoSyncLast())).value;
  const run = lastEntry?.runId ? await getRun(kv, lastEntry.runId) : null;
  const last = run && lastEntry?.startedAt
    ? {
      runId: run.id,
      startedAt: lastEntry.startedAt,
      status: run.status,
      created: run.counts.created,
    }
    : null;
  const next = envOff ? null : nextRunAt(now, s, lastEntry);
  const view = {
    envOff,
    enabled: s.enabled && !envOff,
    everyHours: s.everyHours,
    nextAt: next === null ? null : new Date(next).toISOString(),
    last,
  };
  return { ...view, line: autoSyncLine(view, now) };
}
