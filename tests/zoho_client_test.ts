/**
 * The Zoho client against the Zoho simulator over real HTTP, with a real (in-memory) Deno KV:
 * paging, If-Modified-Since, token caching and refresh, retries and their limits, write-back
 * batches, reconnecting, and that no token ever shows up in an error.
 */
import assert from "node:assert/strict";
import { createSecrets, type Secrets } from "../lib/secrets.ts";
import { keys } from "../lib/store/keys.ts";
import { ZohoClient, type ZohoClientOptions, ZohoError } from "../lib/zoho/mod.ts";
import { startZohoSim, type ZohoSim, type ZohoSimOptions } from "../sandbox/zoho.ts";

const BASE = Date.parse("2025-07-01T00:00:00Z");
const secrets: Secrets = await createSecrets("test-encryption-key-0123456789-abcdef");

interface Setup {
  sim: ZohoSim;
  kv: Deno.Kv;
  client: ZohoClient;
  make(extra?: Partial<ZohoClientOptions>): ZohoClient;
  errors: string[];
}

/** Sim + KV + client with a fast retry policy; closes everything afterwards. */
async function withSetup(
  simOpts: ZohoSimOptions,
  clientOpts: Partial<ZohoClientOptions>,
  fn: (s: Setup) => Promise<void>,
): Promise<void> {
  const sim = await startZohoSim(simOpts);
  const kv = await Deno.openKv(":memory:");
  const make = (extra: Partial<ZohoClientOptions> = {}) =>
    new ZohoClient({
      kv,
      secrets,
      accountsUrl: sim.url,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      refreshTokenSeed: sim.refreshToken,
      retry: { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 },
      timeoutMs: 2000,
      ...clientOpts,
      ...extra,
    });
  const errors: string[] = [];
  try {
    await fn({ sim, kv, client: make(), make, errors });
    await assertNoSecrets(sim, kv, errors);
  } finally {
    kv.close();
    await sim.close();
  }
}

/** No error text may contain the refresh token, the client secret or any access token. */
async function assertNoSecrets(sim: ZohoSim, kv: Deno.Kv, errors: string[]): Promise<void> {
  const secretsSeen = [sim.refreshToken, sim.clientSecret];
  const access = await kv.get<{ accessToken: string }>(keys.zohoAccessToken());
  if (access.value) {
    secretsSeen.push(await secrets.decrypt(access.value.accessToken, keys.zohoAccessToken()));
  }
  for (const text of errors) {
    for (const s of secretsSeen) assert.ok(!text.includes(s), `a secret leaked into: ${text}`);
    assert.ok(!/1000\.[0-9a-f]{16,}/.test(text), `a token-shaped string in: ${text}`);
  }
  // Stored tokens are encrypted at rest.
  for await (const entry of kv.list({ prefix: ["tokens"] })) {
    const raw = JSON.stringify(entry.value);
    for (const s of secretsSeen) assert.ok(!raw.includes(s), "plain token stored in KV");
  }
}

/** Runs `fn`, expects a ZohoError, records its message for the leak check. */
async function expectZohoError(
  s: Setup,
  fn: () => Promise<unknown>,
  code: string,
): Promise<ZohoError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ZohoError, `expected ZohoError, got ${err}`);
    s.errors.push(err.message, String(err.stack), JSON.stringify(err.details ?? {}));
    assert.equal(err.code, code, err.message);
    return err;
  }
  throw new Error(`expected ZohoError ${code}`);
}

function at(seconds: number): string {
  return new Date(BASE + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

/** n records, `perSecond` of them sharing each Modified_Time second. */
function records(n: number, perSecond = 1): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    Subject: `PO ${i}`,
    Modified_Time: at(Math.floor(i / perSecond)),
    Add_to_Xero: true,
    Vendor_Name: { id: "5725767000000500001", name: "Acme Supplies" },
    Purchase_Items: [{
      Product_Name: { id: "5725767000000600001", name: "Widget" },
      Quantity: 2,
      List_Price: 9.5,
    }],
  }));
}

async function collect(client: ZohoClient, since?: string, fields = ["Subject"]) {
  const pages: Array<Array<{ id: string; Modified_Time: string } & Record<string, unknown>>> = [];
  for await (const page of client.listChanged({ since, fields })) pages.push(page);
  return pages;
}

Deno.test("listChanged pages across 2,150 records by Modified_Time, none missed or repeated", async () => {
  await withSetup({ records: records(2150, 7) }, {}, async (s) => {
    const pages = await collect(s.client);
    const all = pages.flat();
    assert.equal(all.length, 2150);
    assert.equal(new Set(all.map((r) => r.id)).size, 2150);
    assert.deepEqual(new Set(all.map((r) => r.id)), new Set(s.sim.records.keys()));
    assert.ok(pages.every((p) => p.length <= 200));
    for (let i = 1; i < all.length; i++) {
      const a = Date.parse(all[i - 1].Modified_Time);
      const b = Date.parse(all[i].Modified_Time);
      assert.ok(a < b || (a === b && BigInt(all[i - 1].id) < BigInt(all[i].id)), "ascending");
    }
    assert.ok(all.every((r) => r.Subject !== undefined && !("Purchase_Items" in r)));
    // Each query starts at the last second seen, so a few records are read twice: ≤ 12 calls.
    assert.ok(s.sim.counts.list <= 12, `list calls: ${s.sim.counts.list}`);
    assert.equal(s.client.calls.byEndpoint.list, s.sim.counts.list);
    assert.equal(s.client.calls.total, s.sim.totalCalls());
  });
});

/** A simulator whose list deletes one record of page `afterPage` once that page is served. */
function deletingSim(n: number, perSecond: number, afterPage: number, index: number) {
  const ref: { sim?: ZohoSim; deleted?: string } = {};
  const opts: ZohoSimOptions = {
    records: records(n, perSecond),
    onListPage: (served, ids) => {
      if (served !== afterPage || ref.deleted || !ids[index]) return;
      ref.deleted = ids[index];
      ref.sim!.records.delete(ids[index]);
    },
  };
  return { ref, opts };
}

Deno.test("listChanged: a record deleted after page 1 was read hides no other record", async () => {
  const { ref, opts } = deletingSim(250, 1, 1, 10);
  await withSetup(opts, {}, async (s) => {
    ref.sim = s.sim;
    const all = (await collect(s.client)).flat();
    assert.ok(ref.deleted, "the simulator deleted a record between pages");
    const listed = new Set(all.map((r) => r.id));
    const missing = [...s.sim.records.keys()].filter((id) => !listed.has(id));
    assert.deepEqual(missing, [], "every record still in Zoho is listed");
    assert.equal(all.length, 250, "249 left, plus the deleted one, read before it went");
  });
});

Deno.test("listChanged: a record edited after page 1 was read hides no other record", async () => {
  const ref: { sim?: ZohoSim; edited?: string } = {};
  const opts: ZohoSimOptions = {
    records: records(450, 1),
    onListPage: (served, ids) => {
      if (served !== 1 || ref.edited) return;
      ref.edited = ids[3];
      ref.sim!.edit(ids[3], { Subject: "edited while listed" }); // moves to the end of the list
    },
  };
  await withSetup(opts, {}, async (s) => {
    ref.sim = s.sim;
    const all = (await collect(s.client)).flat();
    const listed = new Set(all.map((r) => r.id));
    assert.deepEqual([...s.sim.records.keys()].filter((id) => !listed.has(id)), []);
    const edited = all.filter((r) => r.id === ref.edited);
    assert.equal(edited.length, 2, "listed before and after the edit");
    assert.equal(edited[1].Subject, "edited while listed");
  });
});

Deno.test("listChanged: 2,150 records in one second, one deleted mid-way: paged, read again, none missed", async () => {
  const { ref, opts } = deletingSim(2150, 2150, 3, 5);
  await withSetup(opts, {}, async (s) => {
    ref.sim = s.sim;
    const all = (await collect(s.client)).flat();
    assert.ok(ref.deleted);
    const listed = new Set(all.map((r) => r.id));
    assert.equal(listed.size, all.length, "no record yielded twice");
    assert.deepEqual([...s.sim.records.keys()].filter((id) => !listed.has(id)), []);
    // One second past 2,000 records needs page_token; the doubt costs a second and third read.
    assert.ok(s.sim.counts.list >= 22 && s.sim.counts.list <= 33, `calls ${s.sim.counts.list}`);
  });
});

Deno.test("listChanged: 2,100 records in one second then 300 more, one deleted mid-way: none missed", async () => {
  const { ref, opts } = deletingSim(2400, 2100, 4, 7);
  await withSetup(opts, {}, async (s) => {
    ref.sim = s.sim;
    const all = (await collect(s.client)).flat();
    assert.ok(ref.deleted);
    const listed = new Set(all.map((r) => r.id));
    assert.equal(listed.size, all.length, "no record yielded twice");
    assert.deepEqual([...s.sim.records.keys()].filter((id) => !listed.has(id)), []);
    // The big second is read twice (page_token is trusted only when a second pass finds nothing).
    assert.ok(s.sim.counts.list <= 34, `calls ${s.sim.counts.list}`);
  });
});

Deno.test("listChanged with since: only records modified strictly after it; nothing → no pages", async () => {
  await withSetup({ records: records(30, 3), utcOffset: "+05:30" }, {}, async (s) => {
    const pages = await collect(s.client, at(4)); // seconds 0-9; after second 4 → 5..9
    const all = pages.flat();
    assert.equal(all.length, 15);
    assert.ok(all.every((r) => Date.parse(r.Modified_Time) > Date.parse(at(4))));
    // The same instant written with an offset means the same thing.
    const ist = new Date(BASE + 4000 + 5.5 * 3600_000).toISOString().replace(".000Z", "+05:30");
    assert.equal((await collect(s.client, ist)).flat().length, 15);
    assert.deepEqual(await collect(s.client, at(9)), []);
    assert.deepEqual(await collect(s.client, "2030-01-01T00:00:00.000Z"), []);
    await expectZohoError(s, () => collect(s.client, "yesterday"), "INVALID_ARGUMENT");
  });
});

Deno.test("listChanged copes with 304 for an empty answer", async () => {
  await withSetup({ records: records(3), emptyListStatus: 304 }, {}, async (s) => {
    assert.deepEqual(await collect(s.client, at(5)), []);
  });
});

Deno.test("token is cached: many requests and two clients on one KV → one mint", async () => {
  await withSetup({ records: records(5) }, {}, async (s) => {
    const ids = [...s.sim.records.keys()];
    const other = s.make();
    const got = await Promise.all([
      ...ids.map((id) => s.client.getPurchaseOrder(id)),
      ...ids.map((id) => other.getPurchaseOrder(id)),
      s.client.fieldNames(),
    ]);
    assert.equal(got.length, 11);
    assert.equal(s.sim.counts.token, 1);
    assert.equal(s.sim.counts.get, 10);
    // Later calls reuse the stored token too.
    await s.make().getPurchaseOrder(ids[0]);
    assert.equal(s.sim.counts.token, 1);
    assert.equal(
      (s.client.calls.byEndpoint.token ?? 0) + (other.calls.byEndpoint.token ?? 0),
      1,
    );
  });
});

Deno.test("two KV handles on one database (two processes): the mint lease keeps it to one mint", async () => {
  const path = await Deno.makeTempFile({ suffix: ".sqlite" });
  const sim = await startZohoSim({ records: records(3) });
  const kvA = await Deno.openKv(path);
  const kvB = await Deno.openKv(path);
  try {
    const opts = {
      secrets,
      accountsUrl: sim.url,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      refreshTokenSeed: sim.refreshToken,
    };
    const a = new ZohoClient({ kv: kvA, ...opts });
    const b = new ZohoClient({ kv: kvB, ...opts });
    const id = [...sim.records.keys()][0];
    await Promise.all([a.getPurchaseOrder(id), b.getPurchaseOrder(id), a.fieldNames()]);
    assert.equal(sim.counts.token, 1);
  } finally {
    kvA.close();
    kvB.close();
    await sim.close();
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("two processes while a mint is slow (retried, or Zoho slow to answer): still one mint", async () => {
  const path = await Deno.makeTempFile({ suffix: ".sqlite" });
  const sim = await startZohoSim({ records: records(3) });
  // The first mint takes 11 s: longer than the old mint lease (15 s) allowed a waiter to wait.
  sim.fault({ endpoint: "token", kind: "delay", delayMs: 11_000 });
  const kvA = await Deno.openKv(path);
  const kvB = await Deno.openKv(path);
  try {
    const opts = {
      secrets,
      accountsUrl: sim.url,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      refreshTokenSeed: sim.refreshToken,
      timeoutMs: 20_000,
    };
    const a = new ZohoClient({ kv: kvA, ...opts });
    const b = new ZohoClient({ kv: kvB, ...opts });
    const id = [...sim.records.keys()][0];
    const first = a.getPurchaseOrder(id);
    await new Promise((r) => setTimeout(r, 300)); // a holds the mint lease
    const got = await Promise.all([first, b.getPurchaseOrder(id)]);
    assert.ok(got.every((r) => r?.id === id));
    assert.equal(sim.counts.token, 1, "b waited for a's token instead of minting its own");
  } finally {
    kvA.close();
    kvB.close();
    await sim.close();
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("Zoho refuses a mint (too many tokens): remembered in KV, nobody asks again until its window has passed", async () => {
  let shift = 0;
  const now = () => Date.now() + shift;
  await withSetup({ records: records(3), mintLimitPer10Min: 1, now }, {}, async (s) => {
    const id = [...s.sim.records.keys()][0];
    assert.ok(await s.client.getPurchaseOrder(id));
    s.sim.expireAccessTokens();
    const err = await expectZohoError(s, () => s.client.getPurchaseOrder(id), "TOKEN_RATE_LIMITED");
    assert.match(err.message, /too many/i);
    assert.match(err.message, /asks again after \d\d:\d\d UTC/);
    assert.equal(s.sim.counts.token, 2);
    // Every further call, from this client, another one on the same KV, or many at once: no ask.
    const other = s.make();
    for (const c of [s.client, other]) {
      await expectZohoError(s, () => c.getPurchaseOrder(id), "TOKEN_RATE_LIMITED");
    }
    await Promise.allSettled([1, 2, 3, 4, 5].map(() => other.fieldNames()));
    assert.equal(s.sim.counts.token, 2, "the refusal was not asked again");
    const status = await other.status();
    assert.equal(status.state, "error");
    assert.match(status.message ?? "", /too many/i);
    // Zoho's 10 minutes pass (the sim's clock, and the remembered time): one mint, all well.
    shift = 11 * 60_000;
    const key = keys.zohoToken();
    const stored = (await s.kv.get<Record<string, unknown>>(key)).value!;
    await s.kv.set(key, { ...stored, retryAfter: new Date(Date.now() - 1000).toISOString() });
    assert.equal((await s.client.status()).state, "connected");
    assert.ok(await s.client.getPurchaseOrder(id));
    assert.equal(s.sim.counts.token, 3);
    assert.equal((await s.client.status()).state, "connected");
    assert.equal((await s.client.status()).message, undefined);
  });
});

Deno.test("a refused mint with Retry-After is remembered for that long, then one mint", async () => {
  await withSetup({ records: records(1) }, {}, async (s) => {
    const id = [...s.sim.records.keys()][0];
    s.sim.fault({ endpoint: "token", kind: "429", retryAfterSec: 1 });
    await expectZohoError(s, () => s.client.getPurchaseOrder(id), "TOKEN_RATE_LIMITED");
    await expectZohoError(s, () => s.client.getPurchaseOrder(id), "TOKEN_RATE_LIMITED");
    assert.equal(s.sim.counts.token, 1);
    await new Promise((r) => setTimeout(r, 1100));
    assert.ok(await s.client.getPurchaseOrder(id));
    assert.equal(s.sim.counts.token, 2);
  });
});

Deno.test("an expired access token is refreshed once and the call succeeds", async () => {
  await withSetup({ records: records(3) }, {}, async (s) => {
    const id = [...s.sim.records.keys()][0];
    assert.ok(await s.client.getPurchaseOrder(id));
    s.sim.expireAccessTokens();
    const results = await Promise.all([1, 2, 3].map(() => s.client.getPurchaseOrder(id)));
    assert.ok(results.every((r) => r?.id === id));
    assert.equal(s.sim.counts.token, 2, "one re-mint for all three callers");
    // A token Zoho keeps refusing: one re-mint, then a clear error (no loop).
    s.sim.fault({ kind: "invalid_token", times: Infinity });
    const before = s.sim.counts.token;
    const err = await expectZohoError(s, () => s.client.getPurchaseOrder(id), "INVALID_TOKEN");
    assert.equal(err.status, 401);
    assert.equal(s.sim.counts.token - before, 1);
    s.sim.clearFaults();
  });
});

Deno.test("a token that nears expiry is replaced before it is used", async () => {
  // 4-second tokens: the client refreshes halfway, so no call ever meets a 401.
  await withSetup({ records: records(1), accessTokenTtlSec: 4 }, {}, async (s) => {
    const id = [...s.sim.records.keys()][0];
    await s.client.getPurchaseOrder(id);
    await new Promise((r) => setTimeout(r, 2100));
    await s.client.getPurchaseOrder(id);
    assert.equal(s.sim.counts.token, 2);
    assert.equal(s.sim.counts.get, 2, "no 401 round trip");
  });
});

Deno.test("429 and 500 are retried with back-off, then succeed", async () => {
  await withSetup({ records: records(250) }, {}, async (s) => {
    s.sim.fault({ endpoint: "list", kind: "429", times: 2 });
    s.sim.fault({ endpoint: "list", kind: "500", times: 1 });
    const all = (await collect(s.client)).flat();
    assert.equal(all.length, 250);
    assert.equal(s.sim.counts.list, 5, "3 failures + 2 pages");
    assert.equal(s.client.calls.byEndpoint.list, 5);
  });
});

Deno.test("Retry-After is honoured when Zoho sends it", async () => {
  await withSetup({ records: records(1) }, {}, async (s) => {
    const id = [...s.sim.records.keys()][0];
    await s.client.fieldNames(); // mint first: time only the retry
    s.sim.fault({ endpoint: "get", kind: "429", retryAfterSec: 1 });
    const t0 = performance.now();
    assert.ok(await s.client.getPurchaseOrder(id));
    assert.ok(performance.now() - t0 >= 950, "waited for Retry-After");
  });
});

Deno.test("a fault that never clears ends in a clear typed error after the retry budget", async () => {
  await withSetup({ records: records(1) }, {}, async (s) => {
    const id = [...s.sim.records.keys()][0];
    s.sim.fault({ endpoint: "get", kind: "500", times: Infinity });
    const err = await expectZohoError(s, () => s.client.getPurchaseOrder(id), "INTERNAL_ERROR");
    assert.equal(err.status, 500);
    assert.equal(err.retryable, true);
    assert.match(err.message, /INTERNAL_ERROR/);
    assert.match(err.message, /gave up after 4 attempts/);
    assert.equal(s.sim.counts.get, 4);
    s.sim.clearFaults();

    s.sim.fault({ endpoint: "list", kind: "429", times: Infinity });
    const limited = await expectZohoError(s, () => collect(s.client), "TOO_MANY_REQUESTS");
    assert.equal(limited.status, 429);
    s.sim.clearFaults();
  });
});

Deno.test("dropped connections, timeouts and broken bodies are retried", async () => {
  await withSetup({ records: records(3) }, { timeoutMs: 500 }, async (s) => {
    const id = [...s.sim.records.keys()][0];
    s.sim.fault({ endpoint: "get", kind: "drop" });
    assert.equal((await s.client.getPurchaseOrder(id))?.id, id);
    assert.equal(s.sim.counts.get, 2);

    s.sim.fault({ endpoint: "get", kind: "delay", delayMs: 1500 });
    assert.equal((await s.client.getPurchaseOrder(id))?.id, id);
    assert.equal(s.sim.counts.get, 4);

    s.sim.fault({ endpoint: "fields", kind: "malformed" });
    assert.ok((await s.client.fieldNames()).includes("Add_to_Xero"));
    assert.equal(s.sim.counts.fields, 2);

    s.sim.fault({ endpoint: "get", kind: "drop", times: Infinity });
    const err = await expectZohoError(s, () => s.client.getPurchaseOrder(id), "NETWORK_ERROR");
    assert.equal(err.retryable, true);
    s.sim.clearFaults();

    s.sim.fault({ endpoint: "get", kind: "delay", delayMs: 1000, times: Infinity });
    await expectZohoError(s, () => s.client.getPurchaseOrder(id), "TIMEOUT");
    s.sim.clearFaults();
  });
});

Deno.test("token endpoint outages are retried; random faults still end in every record once", async () => {
  await withSetup({ records: records(450, 2) }, {
    retry: { attempts: 8, baseDelayMs: 2, maxDelayMs: 10 },
  }, async (s) => {
    s.sim.fault({ endpoint: "token", kind: "500", times: 2 });
    s.sim.randomFaults({ rate: 0.3, seed: 7, kinds: ["429", "500", "drop", "malformed"] });
    const all = (await collect(s.client)).flat();
    assert.equal(all.length, 450);
    assert.equal(new Set(all.map((r) => r.id)).size, 450);
    assert.equal(s.sim.counts.token, 3);
  });
});

Deno.test("getPurchaseOrder: line items; null when Zoho has no such record; bad ids never sent", async () => {
  await withSetup({ records: records(1) }, {}, async (s) => {
    const id = [...s.sim.records.keys()][0];
    const po = await s.client.getPurchaseOrder(id);
    assert.equal((po?.Purchase_Items as unknown[]).length, 1);
    assert.equal(await s.client.getPurchaseOrder("5725767000009999999"), null);
    const calls = s.sim.totalCalls();
    await expectZohoError(s, () => s.client.getPurchaseOrder("12ab"), "INVALID_ID");
    await expectZohoError(s, () => s.client.getPurchaseOrder("../settings"), "INVALID_ID");
    assert.equal(s.sim.totalCalls(), calls);
  });
});

Deno.test("write-back: 250 records → 3 PUTs of ≤ 100 with trigger []; one bad record reported alone", async () => {
  let clock = BASE + 86_400_000;
  await withSetup({ records: records(250), now: () => clock }, {}, async (s) => {
    clock += 60_000;
    const ids = [...s.sim.records.keys()];
    const updates = ids.map((id, i) => ({
      id,
      Xero_Bill_ID: `bill-${i}`,
      Xero_Sync_Status: "Synced",
      ...(i === 137 ? { Xero_Bill_Number: "x".repeat(300) } : {}),
    }));
    const results = await s.client.updateRecords(updates);
    assert.equal(s.sim.counts.update, 3);
    assert.equal(results.length, 250);
    assert.deepEqual(results.map((r) => r.id), ids, "results in input order");
    const failed = results.filter((r) => !r.ok);
    assert.equal(failed.length, 1);
    assert.equal(failed[0].id, ids[137]);
    assert.equal(failed[0].code, "INVALID_DATA");
    assert.match(failed[0].message!, /Xero_Bill_Number/);
    s.errors.push(failed[0].message!);
    const ok = results.filter((r) => r.ok);
    assert.ok(ok.every((r) => r.modifiedTime === s.sim.formatTime(clock)));
    assert.equal(s.sim.records.get(ids[0])!.Xero_Bill_ID, "bill-0");
    assert.equal(s.sim.records.get(ids[0])!.Modified_Time, results[0].modifiedTime);
    assert.deepEqual(s.sim.workflowTriggers, {}, "no workflow fired by our write-back");

    assert.deepEqual(await s.client.updateRecords([]), []);
    await expectZohoError(
      s,
      () => s.client.updateRecords([{ id: ids[0], Purchase_Items: [] }]),
      "INVALID_ARGUMENT",
    );
    assert.equal(s.sim.counts.update, 3);
  });
});

Deno.test("write-back: a batch that fails as a whole marks each of its records failed", async () => {
  await withSetup({ records: records(120) }, {}, async (s) => {
    const ids = [...s.sim.records.keys()];
    s.sim.fault({ endpoint: "update", kind: "500", times: 4 }); // the first batch's whole budget
    const results = await s.client.updateRecords(ids.map((id) => ({ id, Xero_Sync_Status: "x" })));
    assert.equal(results.filter((r) => !r.ok).length, 100);
    assert.ok(results.slice(0, 100).every((r) => r.code === "INTERNAL_ERROR"));
    assert.ok(results.slice(100).every((r) => r.ok));
    s.errors.push(...results.map((r) => r.message ?? ""));
  });
});

Deno.test("a revoked refresh token → RECONNECT_REQUIRED, status error, and no retry storm", async () => {
  await withSetup({ records: records(2) }, {}, async (s) => {
    const id = [...s.sim.records.keys()][0];
    await s.client.getPurchaseOrder(id);
    assert.equal((await s.client.status()).state, "connected");
    s.sim.revokeRefreshToken(); // also kills the access tokens minted from it
    const mints = s.sim.counts.token;
    const err = await expectZohoError(s, () => s.client.getPurchaseOrder(id), "RECONNECT_REQUIRED");
    assert.match(err.message, /reconnect Zoho/i);
    assert.equal(err.retryable, false);
    const status = await s.client.status();
    assert.equal(status.state, "error");
    assert.equal(status.message, err.message);

    // Busy callers and fresh instances fail fast: no more mints.
    const settled = await Promise.allSettled([
      ...Array.from({ length: 10 }, () => s.client.getPurchaseOrder(id)),
      s.make().fieldNames(),
      collect(s.make()),
    ]);
    for (const r of settled) {
      assert.equal(r.status, "rejected");
      assert.equal((r.reason as ZohoError).code, "RECONNECT_REQUIRED");
      s.errors.push((r.reason as ZohoError).message);
    }
    assert.equal(s.sim.counts.token - mints, 1, "one mint attempt in all");

    // Reconnecting through the OAuth code flow heals it.
    const redirect = "http://127.0.0.1:9/oauth/zoho/callback";
    const res = await fetch(s.client.authorizeUrl("state-1", redirect), { redirect: "manual" });
    await res.body?.cancel();
    const loc = new URL(res.headers.get("location")!);
    assert.equal(loc.searchParams.get("state"), "state-1");
    await s.client.exchangeCode(
      loc.searchParams.get("code")!,
      redirect,
      loc.searchParams.get("accounts-server")!,
    );
    assert.equal((await s.client.status()).state, "connected");
    assert.equal((await s.client.getPurchaseOrder(id))?.id, id);
  });
});

Deno.test("status, seed adoption, disconnect and a second data centre's accounts server", async () => {
  await withSetup({ records: records(1) }, { refreshTokenSeed: undefined }, async (s) => {
    const before = await s.client.status();
    assert.equal(before.state, "not_connected");
    assert.equal(before.accountsUrl, s.sim.url);
    await expectZohoError(s, () => s.client.fieldNames(), "NOT_CONNECTED");
    assert.equal(s.sim.counts.token ?? 0, 0);

    const seeded = s.make({ refreshTokenSeed: s.sim.refreshToken });
    assert.equal((await seeded.status()).state, "connected");
    await seeded.fieldNames();
    const st = await seeded.status();
    assert.equal(st.state, "connected");
    assert.equal(st.apiDomain, s.sim.url);
    assert.ok(st.tokenExpiresAt && Date.parse(st.tokenExpiresAt) > Date.now());
    // The seed now lives in KV (encrypted): a client without the env value uses it too.
    assert.equal((await s.client.status()).state, "connected");

    await seeded.disconnect();
    assert.equal(s.sim.counts.revoke, 1);
    assert.equal((await seeded.status()).state, "not_connected", "the env seed is not re-adopted");
    const id = [...s.sim.records.keys()][0];
    await expectZohoError(s, () => seeded.getPurchaseOrder(id), "NOT_CONNECTED");

    // Secrets are only ever sent to a Zoho accounts server.
    await expectZohoError(
      s,
      () => s.client.exchangeCode("code", "http://127.0.0.1:9/cb", "https://evil.example.com"),
      "INVALID_ACCOUNTS_SERVER",
    );
    await expectZohoError(
      s,
      () => s.client.exchangeCode("1000.bogus", "http://127.0.0.1:9/cb"),
      "INVALID_CODE",
    );
    const url = new URL(
      s.make({ accountsUrl: "https://accounts.zoho.eu" }).authorizeUrl("st", "https://app/cb"),
    );
    assert.equal(url.origin, "https://accounts.zoho.eu");
    assert.equal(url.pathname, "/oauth/v2/auth");
    assert.equal(url.searchParams.get("access_type"), "offline");
    assert.match(url.searchParams.get("scope")!, /ZohoCRM\.modules\.purchaseorders\.ALL/);
  });
});

Deno.test("wrong client credentials: a typed error, recorded for status, without a mint storm", async () => {
  await withSetup({ records: records(1) }, { clientSecret: "not-the-secret-123" }, async (s) => {
    const err = await expectZohoError(s, () => s.client.fieldNames(), "INVALID_CLIENT");
    assert.match(err.message, /ZOHO_CLIENT_SECRET/);
    await expectZohoError(s, () => s.client.fieldNames(), "INVALID_CLIENT");
    assert.equal(s.sim.counts.token, 1);
    assert.equal((await s.client.status()).state, "error");
    // Fixed credentials (a restart with the right env) work again.
    const fixed = s.make({ clientSecret: s.sim.clientSecret });
    assert.ok((await fixed.fieldNames()).length > 0);
    assert.equal((await fixed.status()).state, "connected");
  });
});

Deno.test("in-flight requests stay within the concurrency cap", async () => {
  await withSetup({ records: records(12), latencyMs: 60 }, { concurrency: 3 }, async (s) => {
    const ids = [...s.sim.records.keys()];
    await s.client.fieldNames();
    const t0 = performance.now();
    await Promise.all(ids.map((id) => s.client.getPurchaseOrder(id)));
    // 12 calls, 3 at a time, 60 ms each: at least 4 rounds.
    assert.ok(performance.now() - t0 >= 4 * 60 - 10);
  });
});
