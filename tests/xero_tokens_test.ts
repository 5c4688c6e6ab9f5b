/**
 * Xero token refresh against the simulator over HTTP, with a real Deno KV (issue 13, point 10): the
 * refresh claim outlives the slowest token call, and a wrong client secret is a setting to fix,
 * not a dead connection (the unspent refresh token stays; a spent XERO_REFRESH_TOKEN is not re-used).
 */
import assert from "node:assert/strict";
import { XeroClient, type XeroClientOptions, XeroError } from "../lib/xero/mod.ts";
import { createSecrets } from "../lib/secrets.ts";
import { keys } from "../lib/store/keys.ts";
import { startXeroSim, type XeroSim } from "../sandbox/xero.ts";
import { makeOrders, startStack } from "./helpers.ts";

const secrets = await createSecrets("test-encryption-key-0123456789-abcdef");

async function withXero(fn: (sim: XeroSim, kv: Deno.Kv, make: Make) => Promise<void>) {
  // No grace: spending a rotated-out refresh token fails at once, as a second spend would.
  const sim = await startXeroSim({ refreshGraceMs: 0 });
  const kv = await Deno.openKv(":memory:");
  const make: Make = (extra = {}) =>
    new XeroClient({
      kv,
      secrets,
      loginUrl: sim.url,
      identityUrl: sim.url,
      apiUrl: sim.url,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      refreshTokenSeed: sim.refreshToken,
      retry: { attempts: 2, maxWaitMs: 2000 },
      ...extra,
    });
  try {
    await fn(sim, kv, make);
  } finally {
    kv.close();
    await sim.close();
  }
}
type Make = (extra?: Partial<XeroClientOptions>) => XeroClient;

const storedClaim = async (kv: Deno.Kv) =>
  (await kv.get<{ claim?: { until: number } }>(keys.xeroToken())).value?.claim;

Deno.test("Xero refresh: the claim outlives the slowest token call (3 × 20 s timeouts + back-off)", async () => {
  await withXero(async (sim, kv, make) => {
    sim.fault({ endpoint: "token", kind: "delay", delayMs: 1500 });
    const a = make();
    const b = make();
    const first = a.currencies();
    let claim: { until: number } | undefined;
    for (let i = 0; i < 100 && !claim; i++) {
      await new Promise((r) => setTimeout(r, 20));
      claim = await storedClaim(kv);
    }
    assert.ok(claim, "a refresh in flight is claimed in KV");
    // Until the claim runs out nobody else spends the token, so it must cover the worst case.
    const worstCallMs = 3 * 20_000 + 800 + 1600;
    assert.ok(
      claim.until - Date.now() > worstCallMs,
      `claim lasts ${claim.until - Date.now()} ms, a token call up to ${worstCallMs} ms`,
    );
    await Promise.all([first, b.currencies()]);
    assert.equal(sim.counts.token, 1, "the second instance waited for the first's refresh");
    assert.equal(await storedClaim(kv), undefined);
  });
});

Deno.test("Xero refresh: a wrong client secret says check XERO_CLIENT_ID/SECRET, keeps the refresh token, and works once fixed", async () => {
  await withXero(async (sim, kv, make) => {
    // Connected with the env seed; the seed is now spent (rotated).
    await make().currencies();
    const rotated = sim.refreshToken;
    sim.expireAccessTokens();

    // A restart with a mistyped secret.
    const wrong = make({ clientSecret: "mistyped-secret-0000" });
    const err = await wrong.currencies().then(() => null, (e) => e);
    assert.ok(err instanceof XeroError, String(err));
    assert.match(err.message, /XERO_CLIENT_ID and XERO_CLIENT_SECRET/);
    assert.doesNotMatch(err.message, /reconnect/i);
    const status = await wrong.status();
    assert.equal(status.state, "error");
    assert.match(status.message ?? "", /check XERO_CLIENT_ID/);
    assert.doesNotMatch(status.message ?? "", /reconnect/i);
    // Asking again with the same wrong secret costs no call, and never re-seeds the spent seed.
    const calls = sim.counts.token;
    await assert.rejects(wrong.currencies(), /XERO_CLIENT_SECRET/);
    assert.equal(sim.counts.token, calls);
    const stored = (await kv.get<{ refreshToken: string }>(keys.xeroToken())).value!;
    assert.equal(
      await secrets.decrypt(stored.refreshToken, keys.xeroToken()),
      rotated,
      "the unspent token stays",
    );

    // The secret is fixed (a restart with the right env): the stored token refreshes, no reconnect.
    const fixed = make();
    assert.equal((await fixed.status()).state, "connected");
    assert.ok((await fixed.currencies()).length > 0);
    assert.equal((await fixed.status()).state, "connected");
  });
});

Deno.test("a run with a wrong XERO_CLIENT_SECRET stops with 'check XERO_CLIENT_ID/SECRET', not 'reconnect'", async () => {
  const s = await startStack({
    records: makeOrders(3, { seed: 22 }),
    env: { XERO_CLIENT_SECRET: "mistyped-secret-0000" },
  });
  try {
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(run.status, "failed");
    assert.match(run.message ?? "", /check XERO_CLIENT_ID and XERO_CLIENT_SECRET/);
    assert.doesNotMatch(run.message ?? "", /reconnect/i);
  } finally {
    await s.close();
  }
});
