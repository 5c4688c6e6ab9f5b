/**
 * Hardening in-process (the subprocess half is tests/reliability/hardening_test.ts): what an
 * anonymous /health tells, the session cookie (`__Host-` over https, ended by a password change),
 * the opt-in trusted proxy and IPv6 /64 buckets of the login throttle, stored tokens bound to their
 * KV key, and PKCE on Xero's code flow.
 */
import assert from "node:assert/strict";
import { boot } from "../boot.ts";
import { createSecrets } from "../lib/secrets.ts";
import { keys } from "../lib/store/keys.ts";
import { addressBucket } from "../routes/client_address.ts";
import { makeOrders, startStack, TEST_ENV, testConfig } from "./helpers.ts";
import { Agent, startUiStack } from "./ui_helpers.ts";

type App = { request: (path: string, init?: RequestInit) => Response | Promise<Response> };

async function loginCookie(app: App, headers: Record<string, string> = {}): Promise<string> {
  const res = await app.request("/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams({ password: TEST_ENV.ADMIN_PASSWORD, next: "/" }),
  });
  assert.equal(res.status, 303);
  return res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
}

async function tryLogin(app: App, password: string, xff?: string): Promise<number> {
  const res = await app.request("/login", {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(xff ? { "x-forwarded-for": xff } : {}),
    },
    body: new URLSearchParams({ password }),
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test("anonymous /health gives states only; the admin and the API token see the details", async () => {
  const s = await startStack({ records: makeOrders(1, { seed: 5 }) });
  try {
    await s.run({ window: "all", mode: "create_and_update" }); // connects both, picks the org
    const org = (await s.ctx.xero.status()).tenantName!;
    assert.ok(org, "the Xero simulator names its organisation");
    const anon = await s.app.request("/health");
    const text = await anon.text();
    assert.equal(anon.status, 200);
    assert.ok(!text.includes(org), `the organisation name is shown: ${text}`);
    const body = JSON.parse(text);
    assert.deepEqual(body, {
      ok: true,
      kv: "ok",
      zoho: { state: "connected" },
      xero: { state: "connected" },
    });
    const bearer = await s.app.request("/health", {
      headers: { authorization: `Bearer ${TEST_ENV.SYNC_API_TOKEN}` },
    });
    assert.equal((await bearer.json()).xero.tenantName, org);
    const cookie = await loginCookie(s.app);
    const admin = await s.app.request("/health", { headers: { cookie } });
    assert.equal((await admin.json()).xero.tenantName, org);
    const wrong = await s.app.request("/health", {
      headers: { authorization: "Bearer not-the-token-0123456789" },
    });
    assert.ok(!(await wrong.text()).includes(org));
  } finally {
    await s.close();
  }
});

Deno.test("over https the session cookie is __Host- prefixed, Secure, host-only, and works", async () => {
  const { app, close } = await boot(testConfig({ APP_BASE_URL: "https://sync.example.com" }));
  try {
    const res = await app.request("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ password: TEST_ENV.ADMIN_PASSWORD }),
    });
    const [line] = res.headers.getSetCookie();
    assert.match(line, /^__Host-zx_session=[0-9a-f]{48}\.[\w-]+;/);
    assert.match(line, /; Secure/);
    assert.match(line, /; Path=\//);
    assert.doesNotMatch(line, /Domain=/i);
    const cookie = line.split(";")[0];
    assert.equal((await app.request("/settings", { headers: { cookie } })).status, 200);
    // The same value under the unprefixed name (as a subdomain could set it) is not a session.
    const plain = cookie.replace("__Host-", "");
    assert.equal((await app.request("/settings", { headers: { cookie: plain } })).status, 302);
  } finally {
    await close();
  }
});

Deno.test("changing ADMIN_PASSWORD ends every session", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zx-session-" });
  const env = { DENO_KV_PATH: `${dir}/kv.sqlite`, AUTO_SYNC_CRON: "off" };
  try {
    let cookie: string;
    {
      const { app, close } = await boot(testConfig(env));
      cookie = await loginCookie(app);
      assert.equal((await app.request("/settings", { headers: { cookie } })).status, 200);
      await close();
    }
    {
      const { app, close } = await boot(
        testConfig({ ...env, ADMIN_PASSWORD: "a-new-admin-password" }),
      );
      const res = await app.request("/settings", { headers: { cookie } });
      assert.equal(res.status, 302, "the old password's session is over");
      assert.match(res.headers.get("location") ?? "", /^\/login/);
      await close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("addresses: IPv4 as is, IPv6 per /64, mapped IPv4 as IPv4, garbage refused", () => {
  assert.equal(addressBucket("203.0.113.9"), "203.0.113.9");
  assert.equal(addressBucket("203.0.113.9:5123"), "203.0.113.9");
  assert.equal(addressBucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  assert.equal(addressBucket("2001:0db8:0001:0002:ffff:0:0:9"), "2001:db8:1:2::/64");
  assert.equal(addressBucket("[2001:db8:1:2::1]:443"), "2001:db8:1:2::/64");
  assert.equal(addressBucket("fe80::1%eth0"), "fe80:0:0:0::/64");
  assert.equal(addressBucket("::ffff:198.51.100.7"), "198.51.100.7");
  assert.equal(addressBucket("::1"), "0:0:0:0::/64");
  for (const bad of ["", "unknown", "1.2.3", "256.1.1.1", "2001:db8::1::2", "x\u007f", "a b"]) {
    assert.equal(addressBucket(bad), null, bad);
  }
});

Deno.test("trusted proxy: off by default; when set, the login throttle counts the proxy's client address", async () => {
  // Off: a client-sent X-Forwarded-For changes nothing (else anyone could pick a fresh bucket).
  {
    const { app, close } = await boot(testConfig());
    try {
      for (let i = 1; i <= 5; i++) {
        assert.equal(await tryLogin(app, "wrong-password", `203.0.113.${i}`), 401);
      }
      assert.equal(await tryLogin(app, "wrong-password", "203.0.113.77"), 429);
    } finally {
      await close();
    }
  }
  // On, one hop: each client has its own bucket; IPv6 clients share theirs with their /64.
  {
    const { app, close } = await boot(testConfig({ TRUSTED_PROXY_HEADER: "X-Forwarded-For" }));
    try {
      for (let i = 1; i <= 5; i++) {
        assert.equal(await tryLogin(app, "wrong-password", "203.0.113.9"), 401);
      }
      assert.equal(await tryLogin(app, TEST_ENV.ADMIN_PASSWORD, "203.0.113.9"), 429);
      assert.equal(await tryLogin(app, TEST_ENV.ADMIN_PASSWORD, "203.0.113.10"), 303);
      for (let i = 1; i <= 5; i++) {
        assert.equal(await tryLogin(app, "wrong-password", `2001:db8:1:2::${i}`), 401);
      }
      assert.equal(await tryLogin(app, "wrong-password", "2001:db8:1:2:ffff::1"), 429);
      assert.equal(await tryLogin(app, "wrong-password", "2001:db8:1:3::1"), 401);
      // A header that is not an address falls back to the socket's (here: none, "unknown").
      assert.equal(await tryLogin(app, "wrong-password", "not-an-address"), 401);
    } finally {
      await close();
    }
  }
  // Two hops: the client's own entries (left of the proxies') cannot pick the bucket.
  {
    const { app, close } = await boot(
      testConfig({ TRUSTED_PROXY_HEADER: "x-forwarded-for", TRUSTED_PROXY_HOPS: "2" }),
    );
    try {
      for (let i = 1; i <= 5; i++) {
        assert.equal(
          await tryLogin(app, "wrong-password", `10.9.9.${i}, 198.51.100.7, 10.0.0.2`),
          401,
        );
      }
      assert.equal(await tryLogin(app, "wrong-password", "1.1.1.1, 198.51.100.7, 10.0.0.2"), 429);
      assert.equal(await tryLogin(app, "wrong-password", "198.51.100.8, 10.0.0.2"), 401);
    } finally {
      await close();
    }
  }
});

/** A value as the previous version sealed it: AES-GCM without additional data ("v1."). */
async function sealLegacy(encryptionKey: string, plain: string): Promise<string> {
  const enc = new TextEncoder();
  const base = await crypto.subtle.importKey("raw", enc.encode(encryptionKey), "HKDF", false, [
    "deriveKey",
  ]);
  const aes = await crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(32),
      info: enc.encode("zoho-xero/tokens"),
    },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt"],
  );
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv }, aes, enc.encode(plain)),
  );
  const b64 = (b: Uint8Array) =>
    btoa(String.fromCharCode(...b)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  return `v1.${b64(iv)}.${b64(data)}`;
}

Deno.test("a stored token opens only under its own KV key; tokens sealed before are rebound at start", async () => {
  const secrets = await createSecrets(TEST_ENV.ENCRYPTION_KEY);
  const sealed = await secrets.encrypt("refresh-token-value", keys.xeroToken());
  assert.match(sealed, /^v2\./);
  assert.equal(await secrets.decrypt(sealed, keys.xeroToken()), "refresh-token-value");
  await assert.rejects(() => secrets.decrypt(sealed, keys.zohoToken()));
  await assert.rejects(() => secrets.decrypt(sealed, keys.zohoAccessToken()));
  await assert.rejects(() => secrets.decrypt(sealed));
  await assert.rejects(() => secrets.encrypt("unbound"), /bound/);

  // The app: a Xero token moved into Zoho's place is refused, not sent to Zoho.
  const s = await startStack({ records: makeOrders(1, { seed: 6 }) });
  try {
    await s.run({ window: "all", mode: "create_and_update" }); // both store their tokens
    const xero = (await s.ctx.kv.get<{ refreshToken: string }>(keys.xeroToken())).value!;
    const zoho = (await s.ctx.kv.get<Record<string, unknown>>(keys.zohoToken())).value!;
    await s.ctx.kv.set(keys.zohoToken(), { ...zoho, refreshToken: xero.refreshToken });
    await s.ctx.kv.delete(keys.zohoAccessToken());
    const tokenCalls = s.zohoSim.counts.token ?? 0;
    const run = await s.run({ window: "all", mode: "create_and_update" });
    assert.equal(run.status, "paused");
    assert.match(run.message ?? "", /reconnect/i);
    assert.equal(s.zohoSim.counts.token ?? 0, tokenCalls, "nothing was sent to Zoho");
  } finally {
    await s.close();
  }

  // Values sealed by the previous version keep working, and are sealed bound at the next start.
  const dir = await Deno.makeTempDir({ prefix: "zx-legacy-" });
  try {
    const env = { DENO_KV_PATH: `${dir}/kv.sqlite`, AUTO_SYNC_CRON: "off" };
    const kv = await Deno.openKv(env.DENO_KV_PATH);
    const legacy = await sealLegacy(TEST_ENV.ENCRYPTION_KEY, "old-refresh-token");
    assert.equal(await secrets.decrypt(legacy, keys.zohoToken()), "old-refresh-token");
    await kv.set(keys.zohoToken(), {
      refreshToken: legacy,
      connectedAt: new Date().toISOString(),
      source: "oauth",
    });
    kv.close();
    const { ctx, close } = await boot(testConfig(env));
    try {
      const stored = (await ctx.kv.get<{ refreshToken: string }>(keys.zohoToken())).value!;
      assert.match(stored.refreshToken, /^v2\./);
      assert.equal(
        await secrets.decrypt(stored.refreshToken, keys.zohoToken()),
        "old-refresh-token",
      );
    } finally {
      await close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Xero's code flow uses PKCE (S256): a code is worth nothing without its verifier", async () => {
  const s = await startUiStack({ env: { XERO_REFRESH_TOKEN: "" } });
  try {
    const a = new Agent(s.url);
    await a.login();
    const start = await a.get("/oauth/xero/start");
    const authorize = new URL(start.res.headers.get("location")!);
    const challenge = authorize.searchParams.get("code_challenge") ?? "";
    assert.match(challenge, /^[\w-]{43}$/);
    assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
    // The verifier waits in KV with the state, sealed.
    const state = authorize.searchParams.get("state")!;
    const stored = (await s.ctx.kv.get<{ verifier?: string }>(keys.oauthState(state))).value!;
    assert.match(stored.verifier ?? "", /^v2\./);

    // Someone who intercepts the code cannot spend it without the verifier...
    const approved = await fetch(authorize, { redirect: "manual" });
    await approved.body?.cancel();
    const back = new URL(approved.headers.get("location")!);
    const code = back.searchParams.get("code")!;
    const stolen = await fetch(`${s.xeroSim.url}/connect/token`, {
      method: "POST",
      headers: {
        authorization: `Basic ${btoa(`${s.xeroSim.clientId}:${s.xeroSim.clientSecret}`)}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code,
        redirect_uri: `${s.url}/oauth/xero/callback`,
        code_verifier: "x".repeat(43),
      }),
    });
    assert.equal(stolen.status, 400);
    assert.equal((await stolen.json()).error, "invalid_grant");

    // ...while the app, holding it, connects with a fresh code.
    const again = new URL((await a.get("/oauth/xero/start")).res.headers.get("location")!);
    const ok = await fetch(again, { redirect: "manual" });
    await ok.body?.cancel();
    const cb = new URL(ok.headers.get("location")!);
    const done = await a.get(cb.pathname + cb.search);
    assert.equal(done.res.headers.get("location"), "/connections?notice=xero-connected");
    assert.equal((await s.ctx.xero.status()).state, "connected");
  } finally {
    await s.close();
  }
});
