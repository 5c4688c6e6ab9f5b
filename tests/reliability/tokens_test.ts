/**
 * Token races and dead tokens. Xero rotates its refresh token on every use; with no grace period
 * a second use of the old one fails for good, so processes sharing one KV must never refresh
 * twice. Zoho caps access-token mints, so they must share one. A revoked refresh token must stop
 * the work with a message that says "reconnect", show as an error on /health, and not make the
 * app hammer the token endpoint.
 */
import assert from "node:assert/strict";
import { getResults } from "../../lib/store/runs.ts";
import { makeOrders, startStack } from "../helpers.ts";
import { reconnectXero, runUntilDone } from "./fault_matrix.ts";
import {
  api,
  type AppProcess,
  captureConsole,
  findSecrets,
  isDone,
  kvTexts,
  leaseFree,
  newTally,
  printSummary,
  runEnded,
  secretsOf,
  sharedWorld,
  spawnApp,
} from "./harness.ts";
import { checkInvariant, record } from "./invariant.ts";
import { keys } from "../../lib/store/keys.ts";
import { createSecrets } from "../../lib/secrets.ts";

const tally = newTally();
const ROUNDS = 4;

Deno.test("three processes refresh a rotating Xero token (no grace) and a Zoho token at once: one refresh per expiry, no reconnect", async () => {
  const orders = makeOrders(60, { seed: 61 });
  // A faster minute window: this test is about tokens, not Xero's minute limit (xero_faults_test
  // is), and three processes pressing at once can spend a real minute's 60 calls.
  const w = await sharedWorld(orders, { xero: { refreshGraceMs: 0, clockScale: 20 } });
  const overrides = {
    zoho: { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 } },
    xero: { retry: { attempts: 3, maxWaitMs: 3_000 } },
  };
  const procs: AppProcess[] = [];
  try {
    procs.push(...await Promise.all([0, 1, 2].map(() => spawnApp(w.env, overrides))));
    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0) {
        // Every access token dies at once: all three processes need a new one together.
        w.xeroSim.expireAccessTokens();
        w.zohoSim.expireAccessTokens();
        tally.faults += 2;
      }
      const xero0 = w.xeroSim.counts.token ?? 0;
      const zoho0 = w.zohoSim.counts.token ?? 0;
      const presses = procs.flatMap((p, n) =>
        [0, 1, 2].map(async (i) => {
          const id = String(orders[round * 9 + n * 3 + i].id);
          const r = await api(p.url, `/api/purchase-orders/${id}/sync`, {});
          assert.equal(r.status, 200, `round ${round}, process ${n + 1}: ${r.text}`);
        })
      );
      await Promise.all(presses);
      assert.equal((w.xeroSim.counts.token ?? 0) - xero0, 1, `Xero refreshes in round ${round}`);
      assert.equal((w.zohoSim.counts.token ?? 0) - zoho0, 1, `Zoho mints in round ${round}`);
    }
    for (const p of procs) {
      const health = await api(p.url, "/health");
      assert.equal((health.json.xero as { state: string }).state, "connected", health.text);
      assert.equal((health.json.zoho as { state: string }).state, "connected", health.text);
    }
    // KV holds the newest refresh token, encrypted.
    const stored = (await w.kv.get<{ refreshToken: string }>(keys.xeroToken())).value!;
    const secrets = await createSecrets(w.env.ENCRYPTION_KEY);
    assert.equal(
      await secrets.decrypt(stored.refreshToken, keys.xeroToken()),
      w.xeroSim.refreshToken,
    );

    // Finish the rest on one process, then the invariant.
    let done = false;
    const seen: string[] = [];
    for (let i = 0; i < 5 && !done; i++) {
      await leaseFree(w.kv);
      const start = await api(procs[0].url, "/api/sync-runs", {});
      assert.equal(start.status, 202, start.text);
      const run = await runEnded(w.kv, String(start.json.runId));
      const failed = (await getResults(w.kv, run.id)).find((r) => r.outcome === "failed");
      seen.push(
        `${run.status} ${JSON.stringify(run.counts)} ${run.message ?? ""} ${failed?.message ?? ""}`,
      );
      done = await isDone(w.kv, run);
    }
    assert.ok(done, `work left after 5 runs: ${seen.join(" | ")}`);
    await Promise.all(procs.map((p) => p.stop("SIGTERM")));
    const problems = record(
      tally,
      await checkInvariant({
        zohoRecords: w.zohoSim.records,
        bills: w.xeroSim.invoices(),
        kv: w.kv,
      }),
    );
    assert.equal(problems, "", problems);
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

Deno.test("a revoked Zoho refresh token: runs and buttons say reconnect Zoho, /health shows the error, no retry storm", async () => {
  const orders = makeOrders(30, { seed: 62 });
  const s = await startStack({ records: orders, listen: true });
  const cap = captureConsole();
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    s.zohoSim.revokeRefreshToken();
    tally.faults++;
    for (const id of orders.slice(0, 10).map((o) => String(o.id))) {
      s.zohoSim.edit(id, { Subject: "Changed after the token was revoked" });
    }
    s.zohoSim.resetCounts();
    s.xeroSim.resetCounts();

    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    // Paused, not failed: it goes on once Zoho is connected again.
    assert.equal(run.status, "paused");
    assert.match(run.message ?? "", /Zoho/);
    assert.match(run.message ?? "", /reconnect/i);
    const health = await api(s.url, "/health");
    const zoho = health.json.zoho as { state: string; message?: string };
    assert.equal(health.status, 200);
    assert.equal(zoho.state, "error");
    assert.match(zoho.message ?? "", /reconnect/i);

    // More attempts from every direction: each fails fast with the same clear answer.
    for (let i = 0; i < 3; i++) {
      const again = await s.run({ window: "since_last_sync", mode: "create_and_update" });
      assert.equal(again.status, "paused");
      assert.match(again.message ?? "", /Zoho.*reconnect|reconnect.*Zoho/i);
    }
    for (const o of orders.slice(0, 8)) {
      const r = await api(s.url, `/api/purchase-orders/${o.id}/sync`, {});
      assert.equal(r.status, 502, r.text);
      assert.match(String(r.json.message), /Zoho/);
      assert.match(String(r.json.message), /reconnect/i);
    }
    const hook = await api(s.url, "/api/zoho/notify", { ids: orders.slice(0, 5).map((o) => o.id) });
    assert.equal(hook.status, 202);
    await s.engine.idle();
    // One refused refresh, one refused API call: after that the app knows and stops asking.
    assert.ok((s.zohoSim.counts.token ?? 0) <= 1, `token calls: ${s.zohoSim.counts.token}`);
    assert.ok(s.zohoSim.totalCalls() <= 2, `Zoho API calls: ${JSON.stringify(s.zohoSim.counts)}`);
    assert.equal(s.xeroSim.totalCalls(), 0, "nothing reaches Xero");

    // Reconnect, as the admin would from the connections page: the work catches up.
    const redirect = "http://127.0.0.1:8000/oauth/zoho/callback";
    const res = await fetch(s.ctx.zoho.authorizeUrl("reliability", redirect), {
      redirect: "manual",
    });
    await res.body?.cancel();
    const code = new URL(res.headers.get("location")!).searchParams.get("code")!;
    await s.ctx.zoho.exchangeCode(code, redirect);
    assert.equal((await s.ctx.zoho.status()).state, "connected");
    await runUntilDone(s);
    const problems = record(
      tally,
      await checkInvariant({
        zohoRecords: s.zohoSim.records,
        bills: s.xeroSim.invoices(),
        kv: s.ctx.kv,
      }),
    );
    assert.equal(problems, "", problems);
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

Deno.test("a revoked Xero refresh token: runs say reconnect Xero, /health shows the error, no retry storm", async () => {
  const orders = makeOrders(30, { seed: 63 });
  const s = await startStack({ records: orders, listen: true });
  const cap = captureConsole();
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    // The admin removed the app in Xero: every token it holds is dead.
    const revoked = await fetch(`${s.xeroSim.url}/connect/revocation`, {
      method: "POST",
      body: "token=all",
    });
    await revoked.body?.cancel();
    tally.faults++;
    orders.slice(0, 10).forEach((o, i) => s.zohoSim.edit(String(o.id), { PO_Number: `PO-X${i}` }));
    s.xeroSim.resetCounts();
    for (let i = 0; i < 3; i++) {
      const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
      assert.equal(run.status, "paused", JSON.stringify(run.counts));
      assert.match(run.message ?? "", /Xero/);
      assert.match(run.message ?? "", /reconnect/i);
    }
    const r = await api(s.url, `/api/purchase-orders/${orders[0].id}/sync`, {});
    assert.equal(r.status, 502, r.text);
    assert.match(String(r.json.message), /reconnect Xero/i);
    const health = await api(s.url, "/health");
    assert.equal((health.json.xero as { state: string }).state, "error", health.text);
    // The refused token, then once the XERO_REFRESH_TOKEN seed from the environment (it differs
    // from the rotated one in KV, so it could be a new one an operator set); then nothing more.
    assert.ok((s.xeroSim.counts.token ?? 0) <= 2, JSON.stringify(s.xeroSim.counts));
    assert.ok(s.xeroSim.totalCalls() <= 4, JSON.stringify(s.xeroSim.counts));

    await reconnectXero(s);
    await runUntilDone(s);
    const problems = record(
      tally,
      await checkInvariant({
        zohoRecords: s.zohoSim.records,
        bills: s.xeroSim.invoices(),
        kv: s.ctx.kv,
      }),
    );
    assert.equal(problems, "", problems);
  } finally {
    cap.restore();
    await s.close();
  }
});

Deno.test("tokens: summary", () => {
  printSummary("tokens", tally);
  assert.equal(tally.duplicates, 0);
  assert.equal(tally.lost, 0);
});
