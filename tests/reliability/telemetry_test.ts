/**
 * Observability (issue 18): the app as its own process with Deno's OpenTelemetry on
 * (OTEL_DENO=true, OTLP over HTTP/JSON) exports to a tiny OTLP receiver on 127.0.0.1. After a run
 * in which Xero refuses one bill, the receiver holds the span tree run → batches → Zoho/Xero calls,
 * the run's counts on its span, the metrics, the run's start and end log lines and its failure
 * line; and nothing exported, nor anything the process printed, holds a secret.
 */
import assert from "node:assert/strict";
import { makeOrders, TEST_ENV } from "../helpers.ts";
import {
  api,
  findSecrets,
  leaseFree,
  runEnded,
  secretsOf,
  sharedWorld,
  sleep,
  spawnApp,
} from "./harness.ts";

// ---- a tiny OTLP/HTTP (JSON) receiver -----------------------------------------------------------

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
};
type KeyValue = { key: string; value: AnyValue };

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: KeyValue[];
  status?: { code?: number; message?: string };
  links?: Array<{ traceId: string; spanId: string }>;
}

interface Point {
  attributes: KeyValue[];
  asInt?: string | number;
  asDouble?: number;
  count?: string | number;
  sum?: number;
}

interface OtlpMetric {
  name: string;
  sum?: { dataPoints: Point[] };
  gauge?: { dataPoints: Point[] };
  histogram?: { dataPoints: Point[] };
}

interface LogRecord {
  body?: AnyValue;
  severityText?: string;
  traceId?: string;
}

function startReceiver() {
  const bodies: Array<{ path: string; text: string }> = [];
  const spans: OtlpSpan[] = [];
  const logs: LogRecord[] = [];
  /** Metrics are cumulative: the latest export of each name holds the totals. */
  const metrics = new Map<string, OtlpMetric>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const text = await req.text();
    bodies.push({ path, text });
    const json = JSON.parse(text);
    if (path === "/v1/traces") {
      for (const rs of json.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans ?? []);
      }
    } else if (path === "/v1/metrics") {
      for (const rm of json.resourceMetrics ?? []) {
        for (const sm of rm.scopeMetrics ?? []) {
          for (const m of sm.metrics ?? []) metrics.set(m.name, m);
        }
      }
    } else if (path === "/v1/logs") {
      for (const rl of json.resourceLogs ?? []) {
        for (const sl of rl.scopeLogs ?? []) logs.push(...sl.logRecords ?? []);
      }
    }
    return Response.json({});
  });
  return {
    url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    bodies,
    spans,
    logs,
    metrics,
    close: () => server.shutdown(),
  };
}

function value(v: AnyValue | undefined): string | number | boolean | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue;
}

function attrs(kvs: KeyValue[] | undefined): Record<string, string | number | boolean | undefined> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, value(kv.value)]));
}

/** The sum of a counter's data points whose attributes include `where`. */
function total(m: OtlpMetric | undefined, where: Record<string, string> = {}): number {
  let n = 0;
  for (const p of m?.sum?.dataPoints ?? []) {
    const a = attrs(p.attributes);
    if (Object.entries(where).every(([k, v]) => a[k] === v)) n += Number(p.asInt ?? p.asDouble);
  }
  return n;
}

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`telemetry never showed ${what}`);
    await sleep(100);
  }
}

// ---- the test -----------------------------------------------------------------------------------

Deno.test("telemetry: a run with one failure exports its span tree, counts, metrics and log lines, and no secret", async () => {
  const orders = makeOrders(12, { seed: 18 });
  orders[4].Currency = "XYZ"; // Xero refuses this bill: the organisation does not trade in XYZ
  orders[2].Add_to_Xero = false; // not eligible: skipped, with its reason class in the metrics
  const world = await sharedWorld(orders);
  const receiver = startReceiver();
  world.xeroSim.setDayLimitRemaining(4000);
  const app = await spawnApp({
    ...world.env,
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: "zoho-xero-sync-test",
    // Export within a fraction of a second instead of Deno's defaults (seconds to a minute).
    OTEL_BSP_SCHEDULE_DELAY: "200",
    OTEL_BLRP_SCHEDULE_DELAY: "200",
    OTEL_METRIC_EXPORT_INTERVAL: "300",
  }, { engine: { batchSize: 5 } });
  try {
    const start = await api(app.url, "/api/sync-runs", { window: "all" });
    assert.equal(start.status, 202, start.text);
    const runId = String(start.json.runId);
    const run = await runEnded(world.kv, runId);
    await leaseFree(world.kv);
    assert.equal(run.status, "completed_with_errors");
    assert.deepEqual(
      {
        total: run.counts.total,
        created: run.counts.created,
        skipped: run.counts.skipped,
        failed: run.counts.failed,
      },
      { total: 12, created: 10, skipped: 1, failed: 1 },
    );
    const detail = await api(app.url, `/api/sync-runs/${runId}`);
    const failedResult = (detail.json.results as Array<{ outcome: string; message: string }>)
      .find((r) => r.outcome === "failed")!;
    assert.match(failedResult.message, /not subscribed to currency XYZ/);

    // -- the span tree
    const runSpanOf = () =>
      receiver.spans.find((s) =>
        s.name === "sync.run" && attrs(s.attributes)["sync.run.id"] === runId
      );
    await until("the sync.run span", () => !!runSpanOf());
    const runSpan = runSpanOf()!;
    const a = attrs(runSpan.attributes);
    assert.equal(runSpan.parentSpanId || "", "", "a run is the root of its own trace");
    assert.equal(runSpan.links?.length, 1, "linked to the request that started it");
    assert.deepEqual(
      {
        trigger: a["sync.trigger"],
        window: a["sync.window"],
        mode: a["sync.mode"],
        status: a["sync.status"],
        total: a["sync.records.total"],
        created: a["sync.records.created"],
        skipped: a["sync.records.skipped"],
        failed: a["sync.records.failed"],
        zohoCalls: a["sync.calls.zoho"],
        xeroCalls: a["sync.calls.xero"],
      },
      {
        trigger: "api",
        window: "all",
        mode: "create_and_update",
        status: "completed_with_errors",
        total: 12,
        created: 10,
        skipped: 1,
        failed: 1,
        zohoCalls: run.apiCalls.zoho,
        xeroCalls: run.apiCalls.xero,
      },
    );
    assert.equal(runSpan.status?.code, 2, "a run with a failure is an error span");
    assert.equal(runSpan.status?.message, "Completed with errors: 1 failed");

    const inTrace = () => receiver.spans.filter((s) => s.traceId === runSpan.traceId);
    const batchesOf = () =>
      inTrace().filter((s) => s.name === "sync.batch" && s.parentSpanId === runSpan.spanId);
    await until("three batch spans", () => batchesOf().length === 3);
    // Children arrive in the same or an earlier export than their parents; wait for the calls too.
    const byId = () => new Map(inTrace().map((s) => [s.spanId, s]));
    const batchOf = (s: OtlpSpan): OtlpSpan | undefined => {
      const spans = byId();
      for (let p = spans.get(s.parentSpanId); p; p = spans.get(p.parentSpanId)) {
        if (p.name === "sync.batch") return p;
      }
      return undefined;
    };
    const batches = batchesOf();
    assert.deepEqual(
      batches.map((b) => attrs(b.attributes)["sync.batch.records"]).sort(),
      [2, 5, 5],
    );
    assert.equal(
      batches.reduce((n, b) => n + Number(attrs(b.attributes)["sync.records.created"] ?? 0), 0),
      10,
    );
    for (const b of batches) {
      const calls = inTrace().filter((s) => batchOf(s)?.spanId === b.spanId).map((s) => s.name);
      // One GET per order, or the lines of many orders in bulk (COQL).
      assert.ok(
        calls.includes("zoho.get") || calls.includes("zoho.coql"),
        `batch ${b.spanId} reads from Zoho: ${calls}`,
      );
      assert.ok(calls.includes("zoho.update"), `batch ${b.spanId} writes back: ${calls}`);
      assert.ok(calls.some((n) => /^xero\.invoices\./.test(n)), `batch writes bills: ${calls}`);
    }
    const failedBatch = batches.filter((b) => b.status?.code === 2);
    assert.equal(failedBatch.length, 1);
    assert.equal(failedBatch[0].status?.message, `1 failed: ${failedResult.message}`);
    // Every Zoho and Xero call of the run is in its trace, under the run.
    const names = inTrace().map((s) => s.name);
    assert.ok(names.includes("zoho.list"), "the listing is part of the run");
    assert.ok(names.includes("zoho.token.refresh"), "the Zoho token refresh is traced");
    assert.ok(names.includes("xero.token.refresh"), "the Xero token refresh is traced");

    // -- metrics (cumulative: wait until the latest export has the whole run)
    const m = receiver.metrics;
    await until(
      "the run's metrics",
      () =>
        total(m.get("sync.records"), { "sync.outcome": "created" }) === 10 &&
        total(m.get("zoho.calls")) === world.zohoSim.totalCalls() &&
        (m.get("sync.run.duration")?.histogram?.dataPoints.length ?? 0) > 0,
    );
    assert.equal(total(m.get("sync.records"), { "sync.outcome": "failed" }), 1);
    assert.equal(total(m.get("sync.records"), { "sync.outcome": "updated" }), 0);
    assert.equal(total(m.get("sync.records"), { "sync.outcome": "skipped" }), 1);
    assert.equal(total(m.get("sync.records.skipped"), { "sync.skip_reason": "not_ticked" }), 1);
    assert.equal(total(m.get("sync.failures"), { "sync.failure_class": "xero" }), 1);
    const xeroApiCalls = Object.entries(world.xeroSim.counts)
      .filter(([ep]) => !/^(token|connections|revoc)/.test(ep))
      .reduce((n, [, c]) => n + c, 0);
    assert.equal(total(m.get("xero.calls")), xeroApiCalls);
    const left = Number(
      m.get("xero.calls.remaining_today")?.gauge?.dataPoints[0]?.asInt ??
        m.get("xero.calls.remaining_today")?.gauge?.dataPoints[0]?.asDouble,
    );
    assert.ok(left > 0 && left < 4000, `calls left today: ${left}`);
    const duration = m.get("sync.run.duration")!.histogram!.dataPoints[0];
    assert.equal(Number(duration.count), 1);
    assert.equal(attrs(duration.attributes)["sync.status"], "completed_with_errors");

    // -- log lines: one when the run starts, one when it ends, one per failure class
    const lines = () =>
      receiver.logs.map((l) => String(value(l.body) ?? "")).filter((t) => t.startsWith("{"))
        .map((t) => JSON.parse(t)).filter((j) => j.runId === runId);
    await until("the run's end line", () => lines().some((l) => l.event === "sync.run.end"));
    const starts = lines().filter((l) => l.event === "sync.run.start");
    const ends = lines().filter((l) => l.event === "sync.run.end");
    assert.equal(starts.length, 1);
    assert.equal(ends.length, 1);
    assert.deepEqual(starts[0], {
      event: "sync.run.start",
      runId,
      trigger: "api",
      window: "all",
      mode: "create_and_update",
    });
    assert.equal(ends[0].status, "completed_with_errors");
    assert.deepEqual(ends[0].counts, run.counts);
    assert.deepEqual(ends[0].usage, { zohoCalls: run.apiCalls.zoho, xeroCalls: run.apiCalls.xero });
    assert.ok(ends[0].durationMs >= 0);
    const failures = lines().filter((l) => l.event === "sync.run.failures");
    assert.deepEqual(failures, [{
      event: "sync.run.failures",
      runId,
      class: "xero",
      count: 1,
      purchaseOrderIds: [String(orders[4].id)],
      message: failedResult.message,
    }]);

    // -- the Zoho button and the webhook have spans of their own
    const button = await api(app.url, `/api/purchase-orders/${orders[4].id}/sync`, {});
    assert.equal(button.status, 502);
    const notify = await api(app.url, "/api/zoho/notify", { ids: [String(orders[0].id)] });
    assert.equal(notify.status, 202);
    await until(
      "the button and webhook spans",
      () =>
        receiver.spans.some((s) => s.name === "sync.button") &&
        receiver.spans.some((s) => s.name === "sync.webhook"),
    );
    const buttonSpan = receiver.spans.find((s) => s.name === "sync.button")!;
    assert.equal(attrs(buttonSpan.attributes)["sync.outcome"], "failed");
    assert.equal(buttonSpan.status?.message, button.json.message);
    assert.ok(
      receiver.spans.some((s) => s.name === "sync.batch" && s.parentSpanId === buttonSpan.spanId),
      "the button's record is a batch under it",
    );
    const webhookSpan = receiver.spans.find((s) => s.name === "sync.webhook")!;
    assert.equal(attrs(webhookSpan.attributes)["sync.webhook.ids"], 1);
    await leaseFree(world.kv);
    await sleep(500); // the webhook's pass exports too: it is scanned below

    // -- no secret anywhere in the export, nor in what the process printed
    const secrets = await secretsOf(world.kv, { ...TEST_ENV, ...world.env }, {
      "Xero refresh token (simulator)": world.xeroSim.refreshToken,
      "Zoho refresh token (simulator)": world.zohoSim.refreshToken,
    });
    const found = findSecrets([
      ...receiver.bodies.map((b, i) => ({ where: `OTLP ${b.path} #${i}`, text: b.text })),
      { where: "app output", text: app.output() },
    ], secrets);
    assert.deepEqual(found, []);
    // Never a whole record: no exported text carries a purchase order's line items.
    // Never a whole record: no exported text carries an order's subject or owner. (Vendor names
    // do appear, URL-encoded, in the url.full of Deno's own spans of Xero contact look-ups.)
    const contents = orders.flatMap((o) => [
      { name: "subject", value: String(o.Subject) },
      { name: "owner email", value: (o.Owner as { email: string }).email },
    ]);
    assert.deepEqual(
      findSecrets(receiver.bodies.map((b) => ({ where: b.path, text: b.text })), contents),
      [],
    );
  } finally {
    await app.stop();
    await receiver.close();
    await world.close();
  }
});
