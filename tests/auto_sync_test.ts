/**
 * Auto sync from the page (issue 17): a fixed short Deno.cron tick decides from KV settings
 * (on/off, every 1–24 hours, default on / 4 h) whether a run is due; AUTO_SYNC_CRON=off switches
 * everything off. Real KV, real engine, both simulators; the page over real HTTP.
 */
import assert from "node:assert/strict";
import {
  autoSyncTick,
  autoSyncView,
  getAutoSync,
  isDue,
  nextRunAt,
  saveAutoSync,
} from "../lib/sync/auto.ts";
import { Agent, makeOrders, startUiStack } from "./ui_helpers.ts";

const H = 3_600_000;
const at = (iso: string) => Date.parse(iso);

Deno.test("auto sync is due once per UTC slot of its interval, never in the slot it was changed", () => {
  const every4 = { enabled: true, everyHours: 4 as const };
  // Nothing run yet: due at the next tick; then not again until 16:00.
  assert.equal(isDue(at("2026-11-30T13:20:00Z"), every4, null), true);
  const last = { slot: "2026-11-30T12:00:00.000Z" };
  assert.equal(isDue(at("2026-11-30T15:55:00Z"), every4, last), false);
  assert.equal(isDue(at("2026-11-30T16:00:00Z"), every4, last), true);
  assert.equal(nextRunAt(at("2026-11-30T13:20:00Z"), every4, last), at("2026-11-30T16:00:00Z"));
  // Switched on (or the interval changed) at 13:20: the 12:00 slot is not run late.
  const changed = { ...every4, changedAt: "2026-11-30T13:20:00Z" };
  assert.equal(isDue(at("2026-11-30T13:25:00Z"), changed, null), false);
  assert.equal(isDue(at("2026-11-30T16:00:00Z"), changed, null), true);
  // Daily runs at 00:00 UTC; hourly on the hour; off is never due and has no next run.
  assert.equal(
    nextRunAt(at("2026-11-30T13:20:00Z"), { enabled: true, everyHours: 24 }, last),
    at("2026-12-01T00:00:00Z"),
  );
  const hourly = { enabled: true, everyHours: 1 as const };
  assert.equal(
    nextRunAt(at("2026-11-30T13:20:00Z"), hourly, { slot: "2026-11-30T13:00:00.000Z" }),
    at("2026-11-30T14:00:00Z"),
  );
  // Due now (the 13:00 slot has not run): the next tick, at most five minutes away.
  assert.equal(nextRunAt(at("2026-11-30T13:21:00Z"), hourly, last), at("2026-11-30T13:25:00Z"));
  assert.equal(isDue(at("2026-11-30T16:00:00Z"), { ...every4, enabled: false }, null), false);
  assert.equal(nextRunAt(at("2026-11-30T16:00:00Z"), { ...every4, enabled: false }, null), null);
});

Deno.test("the tick starts one cron run per slot, runs nothing when off, and retries a slot lost to a busy run", async () => {
  const s = await startUiStack({ records: makeOrders(3), env: { AUTO_SYNC_CRON: "0 */4 * * *" } });
  try {
    const kv = s.ctx.kv;
    assert.deepEqual(await getAutoSync(kv), { enabled: true, everyHours: 4 }, "on, 4 h by default");
    const now = Date.now();

    const first = await autoSyncTick(kv, s.engine, now);
    assert.ok(first.started, "due: nothing has run in this slot");
    const run = await first.done;
    assert.equal(run.trigger, "cron");
    assert.equal(run.window, "since_last_sync");
    assert.equal(run.counts.created, 3);
    assert.equal(s.xeroSim.invoices().length, 3);

    const again = await autoSyncTick(kv, s.engine, now + 5 * 60_000);
    assert.equal(again.started, false, "one run per slot");
    const view = await autoSyncView(kv, false, now);
    assert.match(
      view.line,
      /^Auto sync: on, every 4 hours, next around (\d{4}-\d\d-\d\d )?\d\d:00 UTC/,
    );
    assert.match(view.line, /last at (\d{4}-\d\d-\d\d )?\d\d:\d\d \(3 created\)$/);
    assert.equal(view.last?.runId, run.id);

    // The next slot, while a manual run holds the lease: no run, and the slot is tried again.
    const nextSlot = Date.parse(view.nextAt!);
    s.zohoSim.fault({ endpoint: "list", kind: "delay", delayMs: 400 });
    const manual = await s.engine.startRun({ window: "all", mode: "preview" }, "page");
    assert.ok(manual.started);
    const busy = await autoSyncTick(kv, s.engine, nextSlot + 60_000);
    assert.equal(busy.started, false);
    await manual.done;
    const retried = await autoSyncTick(kv, s.engine, nextSlot + 6 * 60_000);
    assert.ok(retried.started, "the next tick runs the slot the busy one could not");
    await retried.done;

    // Switched off from the page: no tick starts a run, even in a new slot.
    await saveAutoSync(kv, { enabled: false, everyHours: 4 }, nextSlot + 7 * 60_000);
    const off = await autoSyncTick(kv, s.engine, nextSlot + 8 * H);
    assert.equal(off.started, false);
    assert.equal((await s.engine.listRuns()).runs.filter((r) => r.trigger === "cron").length, 2);
  } finally {
    await s.close();
  }
});

Deno.test("the sync page shows the auto sync line and saves the switch and the interval", async () => {
  const s = await startUiStack({ env: { AUTO_SYNC_CRON: "0 */4 * * *" } });
  try {
    const agent = new Agent(s.url);
    const csrf = await agent.login();
    let { text } = await agent.get("/");
    assert.match(
      text,
      /Auto sync: on, every 4 hours, next around (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC, no auto run yet/,
    );
    assert.match(text, /role="switch"[^>]*checked|checked[^>]*role="switch"/);

    // The form without JavaScript: an absent checkbox is "off".
    const saved = await agent.postForm("/auto-sync", { csrf, everyHours: "8" });
    assert.equal(saved.res.status, 303);
    assert.equal(saved.res.headers.get("location"), "/?notice=auto-sync-saved");
    ({ text } = await agent.get("/?notice=auto-sync-saved"));
    assert.match(text, /Auto sync: off, no auto run yet/);
    assert.match(text, /Auto sync saved/);
    assert.deepEqual(
      { ...(await getAutoSync(s.ctx.kv)), changedAt: undefined },
      { enabled: false, everyHours: 8, changedAt: undefined },
    );

    // The switch island's JSON answer carries the new line.
    const on = await agent.fetch("/auto-sync", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ enabled: true, everyHours: 12 }),
    });
    assert.equal(on.status, 200);
    const body = await on.json();
    assert.match(
      body.view.line,
      /^Auto sync: on, every 12 hours, next around (\d{4}-\d\d-\d\d )?(00|12):00 UTC/,
    );

    // Bad input: a clear 400 and nothing changes; no CSRF token: refused.
    for (const bad of [{ enabled: true, everyHours: 3 }, { enabled: "maybe", everyHours: 4 }]) {
      const res = await agent.fetch("/auto-sync", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify(bad),
      });
      assert.equal(res.status, 400);
      assert.ok((await res.json()).error);
    }
    const noCsrf = await agent.postForm("/auto-sync", { everyHours: "1", enabled: "on" });
    assert.equal(noCsrf.res.status, 403);
    assert.equal((await getAutoSync(s.ctx.kv)).everyHours, 12);
  } finally {
    await s.close();
  }
});

Deno.test("AUTO_SYNC_CRON=off switches auto sync off whatever the page says", async () => {
  const s = await startUiStack({ env: { AUTO_SYNC_CRON: "off" } });
  try {
    const agent = new Agent(s.url);
    const csrf = await agent.login();
    const { text } = await agent.get("/");
    assert.match(text, /Auto sync: off for this deployment \(AUTO_SYNC_CRON=off\)/);
    assert.doesNotMatch(text, /role="switch"/);
    const res = await agent.postForm("/auto-sync", { csrf, enabled: "on", everyHours: "1" });
    assert.equal(res.res.status, 400);
    assert.match(res.text, /AUTO_SYNC_CRON=off/);
    assert.deepEqual(await getAutoSync(s.ctx.kv), { enabled: true, everyHours: 4 }, "unchanged");
  } finally {
    await s.close();
  }
});
