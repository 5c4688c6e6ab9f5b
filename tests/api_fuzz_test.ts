/**
 * Seeded fuzzing of the HTTP surface: a few thousand random methods, paths, headers and bodies.
 * No answer may be a 5xx, the process must not crash, and KV may change only in its rate-limit
 * counters (every request here is one the API must refuse or only read).
 */
import assert from "node:assert/strict";
import { listAll } from "../lib/store/kv.ts";
import { seededRandom } from "../sandbox/po_generator.ts";
import { makeOrders, startStack, TEST_ENV } from "./helpers.ts";

const N = 3000;

Deno.test("fuzz: random requests never get a 5xx and change nothing but rate-limit counters", async () => {
  const s = await startStack({ records: makeOrders(2) });
  try {
    await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const snapshot = async () =>
      JSON.stringify(
        (await listAll(s.ctx.kv, [])).filter((e) =>
          !["rate_limit", "tokens"].includes(String(e.key[0]))
        )
          .map((e) => [e.key, e.value]),
      );
    const before = await snapshot();
    const bills = s.xeroSim.invoices().length;
    const rand = seededRandom(20261125);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const junk = (n: number) =>
      Array.from({ length: n }, () => String.fromCharCode(Math.floor(rand() * 0x2fff))).join("");
    const badIds = [
      "",
      "1",
      "12345678901234",
      "1".repeat(21),
      "1".repeat(30),
      "abc",
      "1 OR 1=1",
      "<img src=x>",
      "../../etc/passwd",
      "%00",
      "５８７６５４３０００００１０００００００",
      "-1",
      "1e19",
      "null",
    ];
    const paths = [
      () => `/api/purchase-orders/${encodeURIComponent(pick(badIds))}/sync`,
      () => "/api/sync-runs",
      () => "/api/sync-runs",
      () => "/api/zoho/notify",
      () =>
        `/api/sync-runs/${
          encodeURIComponent(pick(["", "x", "r000000000ffffffff", junk(5), "..", "%2e%2e"]))
        }`,
      () => "/api/zoho/notify",
      () => `/api/${encodeURIComponent(junk(4))}`,
      () => `/${encodeURIComponent(junk(6))}`,
      () => "/health",
      () => "/api/purchase-orders",
      () => `/static/${encodeURIComponent(junk(3))}`,
    ];
    // Bodies that are no valid request for any route; an authorised caller sends only these.
    const invalid = [
      () => junk(1 + Math.floor(rand() * 200)),
      () => "{",
      () => "null",
      () => "[]",
      () => JSON.stringify({ window: pick([1, null, "x", {}, []]), mode: pick(["", 7, "drop"]) }),
      () => JSON.stringify({ window: "last_days", days: pick([-1, 0, 1e9, "many", null]) }),
      () =>
        JSON.stringify({
          mode: pick([0, "DELETE", {}, ["preview"]]),
          ids: pick([[], [1], ["12"], "x", null, [junk(3)]]),
        }),
      () =>
        JSON.stringify({
          module: pick(["Deals", "", 5]),
          ids: ["123"],
          window: 5,
          token: junk(10),
        }),
      () => `id=${encodeURIComponent(pick(badIds))}`,
      () => "x".repeat(pick([10, 17_000, 70_000])),
    ];
    // Bodies only unauthorised callers send: valid-looking requests that must still be refused.
    const plausible = [
      () => undefined,
      () => "",
      () => "{}",
      () => JSON.stringify({ window: "all", mode: "create_and_update" }),
      () => JSON.stringify({ ids: ["5876543000001000000"] }),
    ];
    const auths = [
      () => ({}),
      () => ({ authorization: `Bearer ${TEST_ENV.SYNC_API_TOKEN}` }),
      () => ({ authorization: `Bearer ${junk(20)}` }),
      () => ({ authorization: junk(30) }),
      () => ({ cookie: `zx_session=${junk(20)}.${junk(10)}` }),
      () => ({ "x-csrf-token": junk(10) }),
    ];
    const types = [
      "application/json",
      "application/x-www-form-urlencoded",
      "text/plain",
      "multipart/form-data; boundary=x",
      junk(8),
      "",
    ];
    const statuses = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      const method = pick([
        "GET",
        "POST",
        "PUT",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "HEAD",
        "POST",
        "POST",
      ]);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(pick(auths)())) {
        headers[k] = String(v).replace(/[^\x20-\x7e]/g, "?");
      }
      const type = pick(types).replace(/[^\x20-\x7e]/g, "?");
      if (type) headers["content-type"] = type;
      const authorised = headers.authorization === `Bearer ${TEST_ENV.SYNC_API_TOKEN}`;
      const body = method === "GET" || method === "HEAD"
        ? undefined
        : !authorised && rand() < 0.3
        ? pick(plausible)()
        : pick(invalid)();
      const path = pick(paths)().slice(0, 2000);
      // Many callers, so the rate limit does not hide the handlers behind 429s.
      const env = { remoteAddr: { hostname: `127.0.${i % 200}.1`, port: 40000, transport: "tcp" } };
      let res: Response;
      try {
        res = await s.app.request(path, { method, headers, body }, env);
      } catch (err) {
        throw new Error(`request ${i} (${method} ${path}) threw: ${err}`);
      }
      await res.body?.cancel();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status < 500, `request ${i}: ${method} ${path} → ${res.status}`);
    }
    await s.engine.idle();
    console.log(
      `fuzz: ${N} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
    );
    assert.equal(await snapshot(), before, "KV changed beyond rate-limit counters");
    assert.equal(s.xeroSim.invoices().length, bills);
    assert.ok(
      (statuses.get(400) ?? 0) > 100 && (statuses.get(401) ?? 0) > 100,
      "handlers were reached",
    );
  } finally {
    await s.close();
  }
});
