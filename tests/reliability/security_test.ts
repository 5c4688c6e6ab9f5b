/**
 * Security: no secret (the tokens the simulators issued, ADMIN_PASSWORD, SYNC_API_TOKEN,
 * ENCRYPTION_KEY, the client secrets) in any console line, HTTP response or KV value, after a
 * session full of failures whose messages could carry them; OAuth tokens stored encrypted; and
 * authentication required on every route that needs it (nothing happens without it).
 */
import assert from "node:assert/strict";
import { keys } from "../../lib/store/keys.ts";
import { createSecrets } from "../../lib/secrets.ts";
import { allRuns } from "./harness.ts";
import { makeOrders, startStack, TEST_ENV } from "../helpers.ts";
import {
  captureConsole,
  findSecrets,
  kvTexts,
  newTally,
  printSummary,
  secretsOf,
  sleep,
} from "./harness.ts";
import { reconnectXero, runUntilDone } from "./fault_matrix.ts";
import { checkInvariant, record } from "./invariant.ts";

const tally = newTally();
type Stack = Awaited<ReturnType<typeof startStack>>;

/** Every exchange with the app, kept for the scan. */
class Recorder {
  readonly texts: Array<{ where: string; text: string }> = [];
  constructor(private readonly base: string) {}

  async send(path: string, init: RequestInit = {}) {
    const res = await fetch(`${this.base}${path}`, { redirect: "manual", ...init });
    const text = await res.text();
    const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n");
    this.texts.push({
      where: `${init.method ?? "GET"} ${path} → ${res.status}`,
      text: `${headers}\n${text}`,
    });
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text);
    } catch { /* a page */ }
    return { status: res.status, headers: res.headers, text, json };
  }

  bearer(path: string, body?: unknown, token = TEST_ENV.SYNC_API_TOKEN) {
    return this.send(path, {
      method: body === undefined ? "GET" : "POST",
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }
}

async function loginCookie(r: Recorder, s: Stack): Promise<{ cookie: string; csrf: string }> {
  const res = await r.send("/login", {
    method: "POST",
    body: new URLSearchParams({ password: TEST_ENV.ADMIN_PASSWORD, next: "/" }),
  });
  assert.equal(res.status, 303);
  const cookie = res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const id = /zx_session=([0-9a-f]+)\./.exec(cookie)![1];
  const csrf = (await s.ctx.kv.get<{ csrf: string }>(keys.session(id))).value!.csrf;
  return { cookie, csrf };
}

Deno.test("no secret in any log line, HTTP response or KV value after failures of every kind; tokens stored encrypted", async () => {
  const orders = makeOrders(40, { seed: 81 });
  orders[7].Currency = "XYZ"; // a Xero validation error on every run
  const s = await startStack({
    records: orders,
    listen: true,
    overrides: {
      zoho: { timeoutMs: 500 },
      xero: { requestTimeoutMs: 500 },
      engine: { unconfirmedWaitMs: 1_000 },
    },
  });
  const cap = captureConsole();
  const r = new Recorder(s.url);
  const secrets = new Map<string, string>();
  const collect = async () => {
    for (
      const x of await secretsOf(s.ctx.kv, s.env, { "Xero refresh token": s.xeroSim.refreshToken })
    ) {
      if (x.value) secrets.set(x.value, x.name);
    }
  };
  try {
    await collect();
    const start = async () => {
      const res = await r.bearer("/api/sync-runs", { window: "since_last_sync" });
      if (res.status !== 202) return;
      for (let i = 0; i < 200; i++) {
        const run = await s.engine.getRun(String(res.json.runId));
        if (run && run.status !== "running") break;
        await sleep(20);
      }
      await r.bearer(`/api/sync-runs/${res.json.runId}`);
      await collect();
    };
    // Failures whose messages pass through our code: Zoho 500/429/malformed/dropped, Xero
    // 500/503/malformed/dropped/expired, a validation error, timeouts.
    s.zohoSim.fault({ endpoint: "get", kind: "500", times: 4 });
    s.zohoSim.fault({ endpoint: "get", kind: "malformed", times: 3 });
    s.zohoSim.fault({ endpoint: "update", kind: "drop", times: 3 });
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "500", times: 3 });
    s.xeroSim.fault({ endpoint: "contacts", kind: "invalid_token", times: 1 });
    await start();
    s.xeroSim.fault({ endpoint: "invoices", kind: "malformed", times: 3 });
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "delay", delayMs: 800, times: 3 });
    s.zohoSim.fault({ endpoint: "list", kind: "429", times: 2 });
    s.zohoSim.expireAccessTokens();
    s.xeroSim.expireAccessTokens();
    await start();
    // Dead tokens on both sides, then reconnecting.
    s.zohoSim.revokeRefreshToken();
    await start();
    for (const o of orders.slice(0, 3)) await r.bearer(`/api/purchase-orders/${o.id}/sync`, {});
    const fresh = await fetch(s.ctx.zoho.authorizeUrl("st", "http://127.0.0.1/cb"), {
      redirect: "manual",
    });
    await fresh.body?.cancel();
    await s.ctx.zoho.exchangeCode(
      new URL(fresh.headers.get("location")!).searchParams.get("code")!,
      "http://127.0.0.1/cb",
    );
    await collect();
    await (await fetch(`${s.xeroSim.url}/connect/revocation`, { method: "POST", body: "t=all" }))
      .body?.cancel();
    s.xeroSim.expireAccessTokens();
    orders.slice(0, 5).forEach((o, i) => s.zohoSim.edit(String(o.id), { PO_Number: `PO-S${i}` }));
    await start();
    await reconnectXero(s);
    await collect();
    await runUntilDone(s).catch(() => {}); // the XYZ record keeps failing, on purpose
    await start();

    // Every surface a person or a monitor can read.
    await r.send("/health");
    await r.bearer("/api/sync-runs?limit=100");
    for (const run of await allRuns(s.ctx.kv)) await r.bearer(`/api/sync-runs/${run.id}`);
    for (const o of orders.slice(5, 10)) await r.bearer(`/api/purchase-orders/${o.id}/sync`, {});
    await r.bearer(`/api/purchase-orders/${orders[7].id}/sync`, {});
    await r.send("/login");
    await r.send("/login", {
      method: "POST",
      body: new URLSearchParams({ password: "wrong-password" }),
    });
    const { cookie } = await loginCookie(r, s);
    const runs = await allRuns(s.ctx.kv);
    for (const path of ["/", "/runs", `/runs/${runs[0].id}`, "/settings", "/connections"]) {
      await r.send(path, { headers: { cookie } });
    }
    await collect();

    const found = findSecrets(
      [{ where: "console", text: cap.lines.join("\n") }, ...r.texts, ...await kvTexts(s.ctx.kv)],
      [...secrets].map(([value, name]) => ({ name, value })),
    );
    assert.deepEqual(found, []);
    assert.ok(secrets.size >= 10, `secrets looked for: ${[...secrets.values()].join(", ")}`);
    assert.ok(r.texts.length >= 30);
    // Nothing shaped like a bearer token or a Zoho token either, whoever issued it.
    for (const t of [...r.texts, { where: "console", text: cap.lines.join("\n") }]) {
      assert.doesNotMatch(t.text, /Bearer\s+(sim-at|1000\.)/, t.where);
      assert.doesNotMatch(t.text, /Zoho-oauthtoken\s+1000\./, t.where);
    }

    // Stored tokens: encrypted (AES-GCM "v2." envelope, bound to their KV key) and they open to
    // the live tokens.
    const crypto = await createSecrets(TEST_ENV.ENCRYPTION_KEY);
    const [zoho, zohoAccess, xero] = await s.ctx.kv.getMany<Record<string, string>[]>([
      keys.zohoToken(),
      keys.zohoAccessToken(),
      keys.xeroToken(),
    ]);
    for (
      const sealed of [
        zoho.value?.refreshToken,
        zohoAccess.value?.accessToken,
        xero.value?.refreshToken,
        xero.value?.accessToken,
      ]
    ) {
      assert.match(String(sealed), /^v2\.[\w-]+\.[\w-]+$/);
    }
    assert.equal(
      await crypto.decrypt(xero.value!.refreshToken, keys.xeroToken()),
      s.xeroSim.refreshToken,
    );
    const wrongKey = await createSecrets("another-encryption-key-0123456789-abcdef");
    await assert.rejects(() => wrongKey.decrypt(xero.value!.refreshToken, keys.xeroToken()));

    const report = await checkInvariant({
      zohoRecords: s.zohoSim.records,
      bills: s.xeroSim.invoices(),
      kv: s.ctx.kv,
      expectFailed: new Set([String(orders[7].id)]),
    });
    const problems = record(tally, report);
    assert.equal(problems, "", problems);
    tally.faults += 14;
  } finally {
    cap.restore();
    await s.close();
  }
});

Deno.test("a wrong client secret is reported without echoing it", async () => {
  const s = await startStack({
    records: makeOrders(3, { seed: 82 }),
    listen: true,
    env: {
      ZOHO_CLIENT_SECRET: "wrong-zoho-client-secret-0123",
      XERO_CLIENT_SECRET: "wrong-xero-client-secret-0123",
    },
  });
  const cap = captureConsole();
  try {
    const r = new Recorder(s.url);
    const run = await r.bearer("/api/sync-runs", {});
    for (
      let i = 0;
      i < 100 && (await s.engine.getRun(String(run.json.runId)))?.status === "running";
      i++
    ) await sleep(20);
    const done = await r.bearer(`/api/sync-runs/${run.json.runId}`);
    assert.match(String(done.json.message), /ZOHO_CLIENT_SECRET|client/i);
    await r.bearer(`/api/purchase-orders/${makeOrders(1, { seed: 82 })[0].id}/sync`, {});
    const health = await r.send("/health");
    assert.equal((health.json.zoho as { state: string }).state, "error");
    const found = findSecrets(
      [{ where: "console", text: cap.lines.join("\n") }, ...r.texts, ...await kvTexts(s.ctx.kv)],
      [
        { name: "wrong Zoho client secret", value: "wrong-zoho-client-secret-0123" },
        { name: "wrong Xero client secret", value: "wrong-xero-client-secret-0123" },
        ...await secretsOf(s.ctx.kv, s.env),
      ],
    );
    assert.deepEqual(found, []);
  } finally {
    cap.restore();
    await s.close();
  }
});

Deno.test("authentication is required on every API route and page, and nothing happens without it", async () => {
  const orders = makeOrders(5, { seed: 83 });
  const s = await startStack({ records: orders, listen: true });
  try {
    const r = new Recorder(s.url);
    const id = String(orders[0].id);
    const json = { "content-type": "application/json" };
    const tokens: Array<[string, Record<string, string>]> = [
      ["no token", {}],
      ["wrong token", { authorization: "Bearer not-the-sync-token-0123456789" }],
      ["token with a prefix", { authorization: `Bearer x${TEST_ENV.SYNC_API_TOKEN}` }],
      ["token cut short", { authorization: `Bearer ${TEST_ENV.SYNC_API_TOKEN.slice(0, -1)}` }],
      ["wrong scheme", { authorization: `Basic ${TEST_ENV.SYNC_API_TOKEN}` }],
      ["the admin password as token", { authorization: `Bearer ${TEST_ENV.ADMIN_PASSWORD}` }],
      ["forged session cookie", { cookie: `zx_session=${"a".repeat(48)}.forged` }],
    ];
    const apiCalls: Array<[string, string, string?]> = [
      ["POST", `/api/purchase-orders/${id}/sync`, "{}"],
      ["POST", "/api/sync-runs", '{"window":"all"}'],
      ["GET", "/api/sync-runs"],
      ["GET", "/api/sync-runs/r0000000000000000"],
      ["POST", "/api/zoho/notify", `{"ids":["${id}"]}`],
    ];
    for (const [label, headers] of tokens) {
      for (const [method, path, body] of apiCalls) {
        const res = await r.send(path, { method, headers: { ...json, ...headers }, body });
        assert.equal(res.status, 401, `${label}: ${method} ${path} → ${res.status}`);
      }
    }
    // A notification-channel token in the body must be the right one too.
    const channel = await r.send("/api/zoho/notify", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ ids: [id], token: "not-the-sync-token-0123456789" }),
    });
    assert.equal(channel.status, 401);

    // Pages: GETs send you to log in, POSTs are refused.
    for (
      const path of [
        "/",
        "/runs",
        "/runs/r0000000000000000",
        "/settings",
        "/connections",
        "/oauth/zoho/start",
        "/oauth/xero/start",
        "/oauth/xero/callback?code=abc&state=def",
      ]
    ) {
      const res = await r.send(path);
      assert.equal(res.status, 302, `GET ${path}`);
      assert.match(res.headers.get("location") ?? "", /^\/login/, `GET ${path}`);
    }
    const posts = [
      "/sync",
      "/settings",
      "/connections/zoho/disconnect",
      "/connections/xero/disconnect",
      "/connections/xero/tenant",
      "/runs/r0000000000000000/retry",
      "/logout",
    ];
    for (const path of posts) {
      const res = await r.send(path, { method: "POST", body: new URLSearchParams({ a: "b" }) });
      assert.ok([401, 403].includes(res.status), `POST ${path} → ${res.status}`);
    }

    // Logged in, a state-changing request still needs the CSRF token and this origin.
    const { cookie, csrf } = await loginCookie(r, s);
    const noCsrf = await r.send("/api/sync-runs", {
      method: "POST",
      headers: { ...json, cookie },
      body: "{}",
    });
    assert.equal(noCsrf.status, 403);
    const wrongCsrf = await r.send("/api/sync-runs", {
      method: "POST",
      headers: { ...json, cookie, "x-csrf-token": "0".repeat(48) },
      body: "{}",
    });
    assert.equal(wrongCsrf.status, 403);
    for (const path of posts.filter((p) => p !== "/logout")) {
      const res = await r.send(path, {
        method: "POST",
        headers: { cookie },
        body: new URLSearchParams({ a: "b" }),
      });
      assert.ok([403].includes(res.status), `POST ${path} without CSRF → ${res.status}`);
      const foreign = await r.send(path, {
        method: "POST",
        headers: { cookie, origin: "https://evil.example", "sec-fetch-site": "cross-site" },
        body: new URLSearchParams({ csrf }),
      });
      assert.equal(foreign.status, 403, `POST ${path} from another site`);
    }

    // Nothing happened: no run, no bill, no queue, both connections intact.
    assert.deepEqual(await allRuns(s.ctx.kv), []);
    assert.equal(s.xeroSim.invoices().length, 0);
    assert.deepEqual(await s.engine.queued(), []);
    assert.equal((await s.ctx.zoho.status()).state, "connected");
    assert.equal((await s.ctx.xero.status()).state, "connected");
    // The one public route says no more than states.
    const health = await r.send("/health");
    assert.equal(health.status, 200);
    assert.deepEqual(Object.keys(health.json).sort(), ["kv", "ok", "xero", "zoho"]);
  } finally {
    await s.close();
  }
});

Deno.test("security: summary", () => {
  printSummary("security", tally);
  assert.equal(tally.duplicates, 0);
  assert.equal(tally.lost, 0);
});
