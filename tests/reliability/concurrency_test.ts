/**
 * Concurrency: everything that can start a sync at once, on overlapping records. The Zoho button
 * (POST /api/purchase-orders/:id/sync), webhook deliveries (some twice, as Zoho retries), a cron
 * tick, a run from the page (logged-in session + CSRF) and one from the API, plus edits while they
 * race; then two app processes sharing one KV file doing the same. The invariant holds, no run
 * overlaps another, and every answer is a clear one (never a 5xx).
 */
import assert from "node:assert/strict";
import { keys } from "../../lib/store/keys.ts";
import type { Run } from "../../lib/sync/types.ts";
import { withZohoTotals } from "../../sandbox/po_generator.ts";
import { makeOrders, startStack, TEST_ENV } from "../helpers.ts";
import {
  allRuns,
  api,
  type AppProcess,
  captureConsole,
  findSecrets,
  isDone,
  kvTexts,
  leaseFree,
  newTally,
  overlappingRuns,
  pending,
  printSummary,
  runEnded,
  secretsOf,
  sharedWorld,
  sleep,
  spawnApp,
} from "./harness.ts";
import { checkInvariant, record } from "./invariant.ts";

const tally = newTally();
type Stack = Awaited<ReturnType<typeof startStack>>;

/** Logs in as the admin and returns the cookie and the CSRF token a page would carry. */
async function login(url: string, kv: Deno.Kv): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${url}/login`, {
    method: "POST",
    body: new URLSearchParams({ password: TEST_ENV.ADMIN_PASSWORD, next: "/" }),
    redirect: "manual",
  });
  await res.body?.cancel();
  assert.equal(res.status, 303);
  const cookie = res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const id = /zx_session=([0-9a-f]+)\./.exec(cookie)?.[1];
  assert.ok(id, "a session cookie");
  const session = (await kv.get<{ csrf: string }>(keys.session(id))).value;
  return { cookie, csrf: session!.csrf };
}

/** Edits a few records while syncs are going on (price of the first line). */
function editSome(zohoSim: Stack["zohoSim"], ids: string[]) {
  for (const id of ids) {
    const rec = structuredClone(zohoSim.records.get(id)!);
    const items = rec.Purchase_Items as Array<Record<string, unknown>>;
    items[0].List_Price = Number(items[0].List_Price) + 3;
    zohoSim.edit(id, withZohoTotals(rec));
  }
}

function expectClear(status: number, body: Record<string, unknown>, what: string) {
  assert.ok(status < 500, `${what}: HTTP ${status} ${JSON.stringify(body)}`);
  if (status === 409) {
    assert.match(String(body.message ?? body.error), /another sync|already in progress/, what);
  }
}

/** Adds `n` new purchase orders, stamped now by the simulator (as a person creating them). */
function addNew(zohoSim: Stack["zohoSim"], n: number, wave: number, base: bigint): string[] {
  return makeOrders(n, { seed: 500 + wave }).map((o, j) => {
    const { Modified_Time: _m, Created_Time: _c, ...fresh } = o;
    const id = String(base + BigInt(wave * 100 + j));
    zohoSim.upsert({ ...fresh, id, PO_Number: `PO-W${wave}-${j}` });
    return id;
  });
}

const WAVES = 3;

Deno.test("button, webhook, cron, page and API runs racing on overlapping records: one bill each, one run at a time", async () => {
  const orders = makeOrders(80, { seed: 31 });
  orders[3].Add_to_Xero = false;
  const s = await startStack({
    records: orders,
    listen: true,
    // A slower Xero and small batches stretch the runs so the racers really overlap; Xero's
    // minute is 2 s long (simulator and client limiter alike) so its limit bites but costs little.
    xero: { latencyMs: 4, clockScale: 30 },
    overrides: {
      engine: { batchSize: 20, lockWaitMs: 8_000 },
      xero: { retry: { attempts: 3, maxWaitMs: 3_000 }, limits: { windowMs: 2_000 } },
    },
  });
  const cap = captureConsole();
  try {
    const session = await login(s.url, s.ctx.kv);
    for (let wave = 0; wave < WAVES; wave++) {
      if (wave > 0) addNew(s.zohoSim, 10, wave, 5876543000007000000n);
      const ids = [...s.zohoSim.records.keys()];
      const at = (i: number) => ids[(wave * 17 + i) % ids.length];
      // 24 button presses, the middle 8 ids pressed twice; three webhook deliveries, two of them
      // naming the same ids (Zoho retries); a cron tick, a page run and an API run.
      const pressed = [...Array(16).keys(), ...Array.from({ length: 8 }, (_, i) => i + 4)];
      const buttons = pressed.map(async (i) => {
        const r = await api(s.url, `/api/purchase-orders/${at(i)}/sync`, {});
        expectClear(r.status, r.json, `button ${at(i)}`);
        return r.status;
      });
      const webhooks = [0, 1, 1].map(async (k, n) => {
        await sleep(n * 15);
        const named = Array.from({ length: 25 }, (_, i) => at(10 + k * 10 + i));
        const r = await api(s.url, "/api/zoho/notify", { ids: named });
        assert.equal(r.status, 202, r.text);
      });
      // Who asks first changes per wave, so each kind of run gets to win once.
      const first = (k: number) => sleep(k === wave % 3 ? 0 : 10);
      const cron = first(0).then(() => s.engine.tick("cron"));
      const page = first(1).then(() =>
        fetch(`${s.url}/api/sync-runs`, {
          method: "POST",
          headers: {
            cookie: session.cookie,
            "x-csrf-token": session.csrf,
            "content-type": "application/json",
          },
          body: JSON.stringify({ window: "all", mode: "create_and_update" }),
        })
      ).then(async (res) => ({ status: res.status, json: await res.json() }));
      const apiRun = first(2).then(() =>
        api(s.url, "/api/sync-runs", { window: "since_last_sync" })
      );
      await sleep(30);
      editSome(s.zohoSim, [at(2), at(12), at(30), at(50)]);

      const [statuses, , cronStart, pageStart, apiStart] = await Promise.all([
        Promise.all(buttons),
        Promise.all(webhooks),
        cron,
        page,
        apiRun,
      ]);
      // Each racing start either started or named the run in progress.
      for (const [what, start] of [["page", pageStart], ["api", apiStart]] as const) {
        assert.ok(start.status === 202 || start.status === 409, `${what}: ${start.status}`);
        if (start.status === 409) assert.match(String(start.json.runId), /^r[0-9a-z]+$/);
      }
      if (!cronStart.started) assert.ok(cronStart.runId);
      assert.ok(statuses.filter((x) => x === 200).length >= 12, `buttons: ${statuses.join(",")}`);

      // Let every pass that was started finish, then sync until nothing is left.
      for (
        let i = 0;
        i < 200 && (await allRuns(s.ctx.kv)).some((r) => r.status === "running");
        i++
      ) {
        await sleep(100);
      }
      await s.engine.idle();
      let done = false;
      for (let i = 0; i < 6 && !done; i++) {
        done = await isDone(
          s.ctx.kv,
          await s.run({ window: "since_last_sync", mode: "create_and_update" }),
        );
      }
      assert.ok(done, `wave ${wave} not done: ${JSON.stringify(await pending(s.ctx.kv))}`);
      const problems = record(
        tally,
        await checkInvariant({
          zohoRecords: s.zohoSim.records,
          bills: s.xeroSim.invoices(),
          kv: s.ctx.kv,
        }),
      );
      assert.equal(problems, "", `wave ${wave}: ${problems}`);
    }
    const runs = await allRuns(s.ctx.kv);
    assert.deepEqual(overlappingRuns(runs), []);
    // Whoever won each wave (cron, page, API or a webhook pass), the others were told which run
    // was going on; the runs themselves never overlapped.
    assert.ok(runs.length >= WAVES);
    const leaks = findSecrets(
      [{ where: "console", text: cap.lines.join("\n") }, ...await kvTexts(s.ctx.kv)],
      await secretsOf(s.ctx.kv, s.env, { "current Xero refresh token": s.xeroSim.refreshToken }),
    );
    assert.deepEqual(leaks, []);
  } finally {
    cap.restore();
    await s.close();
  }
});

Deno.test("two app processes on one KV file: runs, buttons and webhooks on both keep one bill each and one run at a time", async () => {
  const orders = makeOrders(200, { seed: 47 });
  for (let i = 5; i < orders.length; i += 23) orders[i].Vendor_Name = null;
  const w = await sharedWorld(orders, { xero: { latencyMs: 2, clockScale: 30 } });
  const overrides = {
    zoho: { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 } },
    xero: { retry: { attempts: 4, maxWaitMs: 3_000 }, limits: { windowMs: 2_000 } },
    engine: { batchSize: 50, lockWaitMs: 8_000 },
  };
  const procs: AppProcess[] = [];
  try {
    procs.push(...await Promise.all([spawnApp(w.env, overrides), spawnApp(w.env, overrides)]));
    for (let wave = 0; wave < WAVES; wave++) {
      if (wave > 0) {
        addNew(w.zohoSim, 20, wave, 5876543000008000000n);
        editSome(w.zohoSim, [...w.zohoSim.records.keys()].filter((_, i) => i % 29 === wave));
      }
      const ids = [...w.zohoSim.records.keys()];
      const at = (i: number) => ids[(wave * 41 + i) % ids.length];
      const [p1, p2] = procs;
      // Both processes get a run start, ten button presses (five ids pressed on both) and
      // webhook deliveries naming overlapping ids, all at once.
      const runStarts = Promise.all([p1, p2].map((p) => api(p.url, "/api/sync-runs", {})));
      const buttons = [p1, p2].flatMap((p, n) =>
        Array.from({ length: 10 }, (_, i) => at(i + n * 5)).map(async (id) => {
          const r = await api(p.url, `/api/purchase-orders/${id}/sync`, {});
          if (r.status >= 500) console.log(p.output());
          expectClear(r.status, r.json, `button ${id} on process ${n + 1}`);
          return r.status;
        })
      );
      const webhooks = [p1, p2, p1].map((p, i) =>
        api(p.url, "/api/zoho/notify", {
          ids: Array.from({ length: 40 }, (_, j) => at(60 + i * 10 + j)),
        })
      );
      await sleep(50);
      editSome(w.zohoSim, [at(2), at(70), at(120)]);
      const [starts, statuses, hooks] = await Promise.all([
        runStarts,
        Promise.all(buttons),
        Promise.all(webhooks),
      ]);
      for (const r of starts) assert.ok(r.status === 202 || r.status === 409, r.text);
      for (const h of hooks) assert.equal(h.status, 202, h.text);
      assert.ok(statuses.filter((x) => x === 200).length >= 10, `buttons: ${statuses.join(",")}`);

      // Wait for both processes to go quiet, then finish on one of them.
      const until = Date.now() + 60_000;
      while ((await allRuns(w.kv)).some((r) => r.status === "running") && Date.now() < until) {
        await sleep(100);
      }
      let done = false;
      for (let i = 0; i < 6 && !done; i++) {
        await leaseFree(w.kv);
        const start = await api(procs[i % 2].url, "/api/sync-runs", {});
        if (start.status === 409) continue; // a webhook pass got there first
        assert.equal(start.status, 202, start.text);
        done = await isDone(w.kv, await runEnded(w.kv, String(start.json.runId)));
      }
      assert.ok(done, `wave ${wave} not done: ${JSON.stringify(await pending(w.kv))}`);
      const problems = record(
        tally,
        await checkInvariant({
          zohoRecords: w.zohoSim.records,
          bills: w.xeroSim.invoices(),
          kv: w.kv,
        }),
      );
      assert.equal(problems, "", `wave ${wave}: ${problems}`);
    }
    await Promise.all(procs.map((p) => p.stop("SIGTERM")));
    const runs: Run[] = await allRuns(w.kv);
    assert.deepEqual(runs.filter((r) => r.status === "running").map((r) => r.id), []);
    assert.deepEqual(overlappingRuns(runs), []);
    const leaks = findSecrets(
      [
        ...procs.map((p, i) => ({ where: `process ${i + 1} output`, text: p.output() })),
        ...await kvTexts(w.kv),
      ],
      await secretsOf(w.kv, w.env, { "current Xero refresh token": w.xeroSim.refreshToken }),
    );
    assert.deepEqual(leaks, []);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await w.close();
  }
});

Deno.test("concurrency: summary", () => {
  printSummary("concurrency", tally);
  assert.equal(tally.duplicates, 0);
  assert.equal(tally.lost, 0);
});
