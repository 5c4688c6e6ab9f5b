/** The HTTP API of DESIGN §5, through app.request() and over a real listening server. */
import assert from "node:assert/strict";
import { listAll } from "../lib/store/kv.ts";
import { makeOrders, startStack, TEST_ENV } from "./helpers.ts";

type Stack = Awaited<ReturnType<typeof startStack>>;
const AUTH = { authorization: `Bearer ${TEST_ENV.SYNC_API_TOKEN}` };

async function withStack(opts: Parameters<typeof startStack>[0], fn: (s: Stack) => Promise<void>) {
  const s = await startStack(opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

function button(s: Stack, id: string, init: RequestInit = {}) {
  return s.app.request(`/api/purchase-orders/${id}/sync`, {
    method: "POST",
    ...init,
    headers: { ...AUTH, ...(init.headers as Record<string, string> ?? {}) },
  });
}

/** KV without the rate-limit counters and cached tokens: what a refused request must not change. */
async function kvState(s: Stack): Promise<string> {
  const entries = await listAll(s.ctx.kv, []);
  return JSON.stringify(
    entries.filter((e) => !["rate_limit", "tokens"].includes(String(e.key[0])))
      .map((e) => [e.key, e.value]),
    (_k, v) => (typeof v === "bigint" ? String(v) : v),
  );
}

Deno.test("button: created 200, unchanged 200, skipped 422, unknown 404", async () => {
  const orders = makeOrders(3);
  orders[2].Add_to_Xero = false;
  await withStack({ records: orders }, async (s) => {
    const id = String(orders[0].id);
    const res = await button(s, id);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.outcome, "created");
    assert.equal(body.purchaseOrderId, id);
    assert.equal(body.message, "Bill PO-1001 created in Xero as a draft.");
    assert.deepEqual(body.reasons, []);
    assert.equal(body.bill.invoiceNumber, "PO-1001");
    assert.equal(body.bill.status, "DRAFT");
    assert.equal(
      body.bill.url,
      `https://go.xero.com/AccountsPayable/View.aspx?InvoiceID=${body.bill.invoiceId}`,
    );
    assert.ok(s.xeroSim.invoices().some((i) => i.InvoiceID === body.bill.invoiceId));

    const again = await button(s, id, {
      body: JSON.stringify({ mode: "create_and_update" }),
      headers: { "content-type": "application/json" },
    });
    assert.equal(again.status, 200);
    assert.equal((await again.json()).outcome, "unchanged");

    const skipped = await button(s, String(orders[2].id));
    assert.equal(skipped.status, 422);
    const sb = await skipped.json();
    assert.equal(sb.outcome, "skipped");
    assert.deepEqual(sb.reasons, ["'Add to Xero' is not ticked"]);
    assert.equal(sb.message, "Not synced: 'Add to Xero' is not ticked.");

    const missing = await button(s, "5876543999999999999");
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).message, /no purchase order with this id/);
  });
});

Deno.test("button: 502 when Xero or Zoho fails, saying which", async () => {
  const orders = makeOrders(2);
  await withStack({ records: orders }, async (s) => {
    s.xeroSim.fault({ endpoint: "invoices.put", kind: "500", times: 3 });
    const x = await button(s, String(orders[0].id));
    assert.equal(x.status, 502);
    const xb = await x.json();
    assert.equal(xb.outcome, "failed");
    assert.match(xb.message, /Xero/);
    s.zohoSim.fault({ endpoint: "get", kind: "500", times: 3 });
    const z = await button(s, String(orders[1].id));
    assert.equal(z.status, 502);
    assert.match((await z.json()).message, /Zoho/);
  });
});

Deno.test("button: wrong or missing token → 401 and nothing written", async () => {
  const orders = makeOrders(1);
  await withStack({ records: orders }, async (s) => {
    const before = await kvState(s);
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong-token-wrong-token" },
      { authorization: TEST_ENV.SYNC_API_TOKEN },
      { authorization: `Basic ${TEST_ENV.SYNC_API_TOKEN}` },
    ];
    for (const headers of attempts) {
      const res = await s.app.request(`/api/purchase-orders/${orders[0].id}/sync`, {
        method: "POST",
        headers,
      });
      assert.equal(res.status, 401);
      assert.match((await res.json()).error, /Unauthorized/);
    }
    assert.equal(s.xeroSim.totalCalls(), 0);
    assert.equal(s.zohoSim.totalCalls(), 0);
    assert.equal(await kvState(s), before);
  });
});

Deno.test("button: malformed ids → 400 and nothing called", async () => {
  await withStack({}, async (s) => {
    const bad = [
      "12345",
      "1".repeat(30),
      "1 OR 1=1",
      "<script>alert(1)</script>",
      "5.876543e18",
      "-5876543000001000000",
      "abc",
      "%20",
      "1e18",
    ];
    for (const id of bad) {
      const res = await button(s, encodeURIComponent(id));
      assert.equal(res.status, 400, id);
      assert.match((await res.json()).error, /Invalid purchase order id/);
    }
    const empty = await button(s, "");
    assert.equal(empty.status, 400);
    assert.equal(s.zohoSim.totalCalls(), 0);
  });
});

Deno.test("button: bad bodies → 400, oversized → 413", async () => {
  const orders = makeOrders(1);
  await withStack({ records: orders }, async (s) => {
    const id = String(orders[0].id);
    const json = { "content-type": "application/json" };
    assert.equal((await button(s, id, { body: "{not json", headers: json })).status, 400);
    const badMode = await button(s, id, {
      body: JSON.stringify({ mode: "delete_everything" }),
      headers: json,
    });
    assert.equal(badMode.status, 400);
    assert.match((await badMode.json()).error, /mode must be one of/);
    const big = await button(s, id, {
      body: JSON.stringify({ mode: "preview", pad: "x".repeat(20_000) }),
      headers: json,
    });
    assert.equal(big.status, 413);
    assert.equal(s.xeroSim.invoices().length, 0);
    // Unknown fields are ignored.
    const extra = await button(s, id, {
      body: JSON.stringify({ mode: "preview", note: "hi" }),
      headers: json,
    });
    assert.equal(extra.status, 200);
    assert.equal((await extra.json()).outcome, "created");
    assert.equal(s.xeroSim.invoices().length, 0, "preview wrote nothing");
  });
});

Deno.test("20 concurrent button calls for one record over HTTP → exactly one bill", async () => {
  const orders = makeOrders(1);
  await withStack({ records: orders, listen: true, xero: { latencyMs: 20 } }, async (s) => {
    const id = String(orders[0].id);
    const answers = await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          fetch(`${s.url}/api/purchase-orders/${id}/sync`, { method: "POST", headers: AUTH })
            .then(async (r) => ({ status: r.status, body: await r.json() })),
      ),
    );
    assert.equal(s.xeroSim.invoices().length, 1);
    const outcomes = answers.map((a) => a.body.outcome).sort();
    assert.equal(outcomes.filter((o) => o === "created").length, 1, JSON.stringify(outcomes));
    assert.ok(answers.every((a) => a.status === 200), JSON.stringify(answers.map((a) => a.status)));
    assert.ok(answers.every((a) => a.body.bill?.invoiceId === s.xeroSim.invoices()[0].InvoiceID));
  });
});

Deno.test("runs API: 202 start, 409 while running, list and read with results", async () => {
  await withStack({ records: makeOrders(120), zoho: { latencyMs: 3 } }, async (s) => {
    const post = (body: unknown) =>
      s.app.request("/api/sync-runs", {
        method: "POST",
        headers: { ...AUTH, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const started = await post({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(started.status, 202);
    const { runId } = await started.json();
    assert.match(runId, /^r[0-9a-z]{9}[0-9a-f]{8}$/);
    const busy = await post({ window: "all", mode: "preview" });
    assert.equal(busy.status, 409);
    assert.deepEqual(await busy.json(), { error: "A sync run is already in progress.", runId });
    await s.engine.idle();
    const one = await s.app.request(`/api/sync-runs/${runId}`, { headers: AUTH });
    assert.equal(one.status, 200);
    const run = await one.json();
    assert.equal(run.status, "completed");
    assert.equal(run.trigger, "api");
    assert.equal(run.counts.created, 120);
    assert.equal(run.results.length, 120);
    assert.ok(run.apiCalls.zoho > 0 && run.apiCalls.xero > 0);
    const list = await (await s.app.request("/api/sync-runs", { headers: AUTH })).json();
    assert.equal(list.runs.length, 1);
    assert.equal(list.runs[0].id, runId);
    assert.equal(list.runs[0].results, undefined);
    assert.equal(
      (await s.app.request("/api/sync-runs/r000000000ffffffff", { headers: AUTH })).status,
      404,
    );
    assert.equal(
      (await s.app.request("/api/sync-runs/..%2F..%2Fetc", { headers: AUTH })).status,
      400,
    );
    for (
      const bad of [
        { window: "yesterday" },
        { window: "last_days" },
        { window: "last_days", days: 0 },
        { mode: "x" },
        [1, 2],
      ]
    ) {
      const r = await post(bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.ok((await r.json()).error);
    }
    assert.equal((await s.app.request("/api/sync-runs", { method: "POST" })).status, 401);
    assert.equal((await s.app.request("/api/sync-runs")).status, 401);
  });
});

Deno.test("webhook: bad token refused; ids as JSON, form or notification are synced by the next pass", async () => {
  const orders = makeOrders(4);
  await withStack({ records: orders }, async (s) => {
    const before = await kvState(s);
    const refused = await s.app.request("/api/zoho/notify", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer nope-nope-nope-nope" },
      body: JSON.stringify({ ids: [String(orders[0].id)] }),
    });
    assert.equal(refused.status, 401);
    const badChannel = await s.app.request("/api/zoho/notify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        module: "Purchase_Orders",
        ids: [String(orders[0].id)],
        operation: "update",
        token: "guess",
        channel_id: "1",
      }),
    });
    assert.equal(badChannel.status, 401);
    assert.equal(await kvState(s), before);

    const json = await s.app.request("/api/zoho/notify", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({ ids: [String(orders[0].id)] }),
    });
    assert.equal(json.status, 202);
    assert.deepEqual(await json.json(), { queued: 1 });
    const form = await s.app.request("/api/zoho/notify", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/x-www-form-urlencoded" },
      body: `id=${orders[1].id}`,
    });
    assert.equal(form.status, 202);
    const channel = await s.app.request("/api/zoho/notify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        module: "Purchase_Orders",
        ids: [String(orders[2].id)],
        operation: "insert",
        token: TEST_ENV.SYNC_API_TOKEN,
        channel_id: "1000000068001",
      }),
    });
    assert.equal(channel.status, 202);
    await s.engine.idle();
    const synced = new Set(s.xeroSim.invoices().map((i) => String(i.Url).split("/").pop()));
    for (const o of orders.slice(0, 3)) assert.ok(synced.has(String(o.id)), `${o.id} synced`);
    assert.deepEqual(await s.engine.queued(), []);
    const { runs } = await s.engine.listRuns();
    assert.ok(runs.every((r) => r.trigger === "webhook"));

    for (
      const body of ["{", JSON.stringify({ ids: ["123"] }), JSON.stringify({}), JSON.stringify([1])]
    ) {
      const r = await s.app.request("/api/zoho/notify", {
        method: "POST",
        headers: { ...AUTH, "content-type": "application/json" },
        body,
      });
      assert.equal(r.status, 400, body);
    }
    const big = await s.app.request("/api/zoho/notify", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: JSON.stringify({ ids: Array.from({ length: 1000 }, () => String(orders[0].id)) }),
    });
    assert.equal(big.status, 413);
  });
});

Deno.test("API rate limit: 429 with Retry-After, per caller", async () => {
  await withStack({}, async (s) => {
    let last: Response | undefined;
    for (let i = 0; i < 125; i++) {
      last = await s.app.request("/api/sync-runs", { headers: AUTH });
      if (last.status === 429) break;
      await last.body?.cancel();
    }
    assert.equal(last?.status, 429);
    assert.ok(Number(last?.headers.get("retry-after")) >= 1);
    assert.match((await last!.json()).error, /Too many requests/);
  });
});
