/**
 * Traces, metrics and run log lines on Deno's built-in OpenTelemetry. With OTEL_DENO=true Deno
 * exports its own spans (incoming requests, fetch, Deno.cron) and console output as log records,
 * and registers its providers with @opentelemetry/api, so what is made here joins the same traces.
 * Without it the API is a no-op and no log line is written: nothing changes locally.
 *
 * What goes out is chosen by hand: ids, counts, endpoint names, statuses and the sentences the run
 * page already shows (client errors are redacted where they are made). Never a token, a header, a
 * request body or a whole record. Span and metric names are listed in the README.
 */
import type { Attributes, Link, Meter, Span, SpanStatusCode, Tracer } from "@opentelemetry/api";

const SCOPE = "zoho-xero-sync";

/**
 * Deno registers its providers with @opentelemetry/api under this global while it starts, and only
 * when it exports. Without them the API is a no-op, yet importing it costs about 45 ms of a cold
 * start (issue 15), so it is imported only when they are there; else the no-ops below stand in.
 */
const OTEL_GLOBAL = Symbol.for("opentelemetry.js.api.1");
const api = OTEL_GLOBAL in globalThis ? await import("@opentelemetry/api") : undefined;

/** What the API's no-op tracer hands out: an invalid context, and nothing is recorded. */
const NOOP_SPAN: Span = {
  spanContext: () => ({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 }),
  setAttribute: () => NOOP_SPAN,
  setAttributes: () => NOOP_SPAN,
  addEvent: () => NOOP_SPAN,
  addLink: () => NOOP_SPAN,
  addLinks: () => NOOP_SPAN,
  setStatus: () => NOOP_SPAN,
  updateName: () => NOOP_SPAN,
  end: () => {},
  isRecording: () => false,
  recordException: () => {},
};
const noop = () => {};

const tracer: Pick<Tracer, "startSpan" | "startActiveSpan"> = api?.trace.getTracer(SCOPE) ?? {
  startSpan: () => NOOP_SPAN,
  // The callback is always the last argument (the API's overloads).
  startActiveSpan: ((...args: unknown[]) =>
    (args.at(-1) as (span: Span) => unknown)(NOOP_SPAN)) as Tracer["startActiveSpan"],
};
const meter: Pick<Meter, "createCounter" | "createGauge" | "createHistogram"> =
  api?.metrics.getMeter(SCOPE) ?? {
    createCounter: () => ({ add: noop }),
    createGauge: () => ({ record: noop }),
    createHistogram: () => ({ record: noop }),
  };
const isSpanContextValid = api?.isSpanContextValid ?? (() => false);
const activeSpan = (): Span | undefined => api?.trace.getActiveSpan();
/** Runs `fn` with `span` as the active span (its children's parent). */
function inSpan<T>(span: Span, fn: () => T): T {
  return api ? api.context.with(api.trace.setSpan(api.context.active(), span), fn) : fn();
}
const STATUS_ERROR = 2 as SpanStatusCode; // SpanStatusCode.ERROR

// Metrics (README "Observability" lists them with their attributes).
const recordsCounter = meter.createCounter("sync.records", {
  description: "Purchase orders synced, by outcome (created, updated, unchanged, skipped, failed)",
});
const skippedCounter = meter.createCounter("sync.records.skipped", {
  description: "Purchase orders not synced, by reason class",
});
const failuresCounter = meter.createCounter("sync.failures", {
  description: "Purchase orders whose sync failed, by failure class (zoho, xero, app, busy)",
});
const zohoCalls = meter.createCounter("zoho.calls", {
  description: "Zoho CRM API calls made (each spends Zoho API credits), retries included",
});
const xeroCalls = meter.createCounter("xero.calls", {
  description: "Xero accounting API calls made, retries included",
});
const xeroLeft = meter.createGauge("xero.calls.remaining_today", {
  description: "Xero API calls left today for the organisation (X-DayLimit-Remaining)",
});
const runDuration = meter.createHistogram("sync.run.duration", {
  description: "How long a sync run took",
  unit: "s",
});

let enabled: boolean | undefined;

/** True when Deno exports telemetry (OTEL_DENO=true, or a platform that turns it on). */
export function telemetryOn(): boolean {
  // The no-op tracer hands out spans with an invalid context; a real one never does, even for a
  // span it does not sample. The probe is never ended, so it is never exported.
  enabled ??= isSpanContextValid(tracer.startSpan("telemetry.probe").spanContext());
  return enabled;
}

/** Runs `fn` inside a span; a throw sets the span's status to the error's message. */
export function withSpan<T>(
  name: string,
  attrs: Attributes,
  fn: (span: Span) => Promise<T>,
  links?: Link[],
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes: attrs, links }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      failed(span, err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      span.end();
    }
  });
}

function failed(span: Span, message: string) {
  span.setStatus({ code: STATUS_ERROR, message });
}

/** Adds attributes to the span in progress (if any). */
export function annotate(attrs: Attributes): void {
  activeSpan()?.setAttributes(attrs);
}

/** One JSON line on the console (a log record when exported); only while telemetry is on. */
function logLine(level: "log" | "warn", fields: Record<string, unknown>): void {
  if (!telemetryOn()) return;
  console[level](JSON.stringify(fields));
}

// ---- Zoho and Xero calls ------------------------------------------------------------------------

/** A Zoho CRM call (its retries, and a token refresh it needed, inside it). */
export function zohoCall<T extends { status: number }>(
  endpoint: string,
  method: string,
  path: string,
  fn: () => Promise<T>,
): Promise<T> {
  return withSpan(`zoho.${endpoint}`, {
    "zoho.endpoint": endpoint,
    "http.request.method": method,
    "url.path": path,
  }, async (span) => {
    const answer = await fn();
    span.setAttribute("http.response.status_code", answer.status);
    return answer;
  });
}

export function countZohoCall(endpoint: string): void {
  zohoCalls.add(1, { "zoho.endpoint": endpoint });
}

/**
 * A Xero call through xero-node (axios; Deno traces its HTTP requests as children of this span).
 * `dayLeft` reads what X-DayLimit-Remaining said afterwards.
 */
export function xeroCall<T>(
  endpoint: string,
  fn: () => Promise<T>,
  dayLeft: () => number | undefined,
): Promise<T> {
  return withSpan(`xero.${endpoint}`, { "xero.endpoint": endpoint }, async (span) => {
    try {
      return await fn();
    } finally {
      const left = dayLeft();
      if (left !== undefined) {
        span.setAttribute("xero.calls.remaining_today", left);
        xeroLeft.record(left);
      }
    }
  });
}

export function countXeroCall(endpoint: string): void {
  xeroCalls.add(1, { "xero.endpoint": endpoint });
}

// ---- runs and batches ---------------------------------------------------------------------------

interface ResultLike {
  purchaseOrderId: string;
  outcome: "created" | "updated" | "unchanged" | "skipped" | "failed";
  reasons: string[];
  message: string;
  failedAt?: string;
}

interface RunLike {
  id: string;
  trigger: string;
  window: string;
  days?: number;
  mode: string;
  status: string;
  counts: {
    total: number;
    created: number;
    updated: number;
    unchanged: number;
    skipped: number;
    failed: number;
  };
  apiCalls: { zoho: number; xero: number };
  message?: string;
}

/** Failures of a run, by class, for its log lines. */
interface RunTally {
  trigger: string;
  batches: number;
  failures: Map<string, { count: number; ids: string[]; message: string }>;
}

const runTallies = new Map<string, RunTally>();
const batchSpans = new WeakMap<object, Span>();

const RUN_STATUS_WORDS: Record<string, string> = {
  completed: "Completed",
  completed_with_errors: "Completed with errors",
  failed: "Failed",
  paused: "Paused",
};

/**
 * A sync run: the `sync.run` span (its own trace, linked to the request or cron tick that started
 * it, which ends long before the run), one log line when it starts and one when it ends, one per
 * failure class, and the run's duration.
 */
export function traceRun<R extends RunLike>(run: R, fn: () => Promise<R>): Promise<R> {
  const started = performance.now();
  const parent = activeSpan()?.spanContext();
  const tally: RunTally = { trigger: run.trigger, batches: 0, failures: new Map() };
  runTallies.set(run.id, tally);
  const what = {
    runId: run.id,
    trigger: run.trigger,
    window: run.window,
    ...(run.days !== undefined ? { days: run.days } : {}),
    mode: run.mode,
  };
  logLine("log", { event: "sync.run.start", ...what });
  return tracer.startActiveSpan("sync.run", {
    root: true,
    links: parent && isSpanContextValid(parent) ? [{ context: parent }] : [],
    attributes: {
      "sync.run.id": run.id,
      "sync.trigger": run.trigger,
      "sync.window": run.window,
      ...(run.days !== undefined ? { "sync.days": run.days } : {}),
      "sync.mode": run.mode,
    },
  }, async (span) => {
    let message: string | undefined;
    try {
      const done = await fn();
      message = done.message;
      return done;
    } catch (err) {
      message = `The run stopped: ${err instanceof Error ? err.message : String(err)}`;
      throw err;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const counts = { ...run.counts };
      const usage = { zohoCalls: run.apiCalls.zoho, xeroCalls: run.apiCalls.xero };
      const status = run.status === "running" ? "failed" : run.status;
      span.setAttributes({
        "sync.status": status,
        ...Object.fromEntries(Object.entries(counts).map(([k, v]) => [`sync.records.${k}`, v])),
        "sync.calls.zoho": usage.zohoCalls,
        "sync.calls.xero": usage.xeroCalls,
        ...(message ? { "sync.message": message } : {}),
      });
      if (status === "failed" || status === "completed_with_errors") {
        failed(span, message ?? `${RUN_STATUS_WORDS[status]}: ${counts.failed} failed`);
      }
      span.end();
      runDuration.record(seconds, { "sync.trigger": run.trigger, "sync.status": status });
      for (const [failureClass, f] of tally.failures) {
        logLine("warn", {
          event: "sync.run.failures",
          runId: run.id,
          class: failureClass,
          count: f.count,
          purchaseOrderIds: f.ids,
          message: f.message,
        });
      }
      logLine("log", {
        event: "sync.run.end",
        ...what,
        status,
        counts,
        usage,
        durationMs: Math.round(seconds * 1000),
        ...(message ? { message } : {}),
      });
      runTallies.delete(run.id);
    }
  });
}

/** The span of a batch, made when its first stage (the read-ahead or the batch itself) starts. */
function batchSpan(items: object, owner: string, size: number): Span {
  let span = batchSpans.get(items);
  if (!span) {
    const tally = runTallies.get(owner);
    span = tracer.startSpan("sync.batch", {
      attributes: {
        "sync.batch.records": size,
        ...(tally ? { "sync.run.id": owner, "sync.batch.index": tally.batches++ } : {}),
      },
    });
    batchSpans.set(items, span);
  }
  return span;
}

/** Runs a batch's read-ahead inside the batch's span, so its Zoho calls are its children. */
export function inBatch<T>(items: unknown[], owner: string, fn: () => Promise<T>): Promise<T> {
  const span = batchSpan(items, owner, items.length);
  return inSpan(span, fn);
}

/**
 * A batch (of a run, or the one record of the Zoho button): the `sync.batch` span with its
 * outcomes, the record metrics, and the run's failure classes.
 */
export async function traceBatch<T extends { results: ResultLike[] }>(
  items: unknown[],
  owner: string,
  mode: string,
  fn: () => Promise<T>,
): Promise<T> {
  const span = batchSpan(items, owner, items.length);
  batchSpans.delete(items);
  try {
    const out = await inSpan(span, fn);
    observeResults(span, owner, mode, out.results);
    return out;
  } catch (err) {
    failed(span, err instanceof Error ? err.message : String(err));
    throw err;
  } finally {
    span.end();
  }
}

function observeResults(span: Span, owner: string, mode: string, results: ResultLike[]) {
  const outcomes: Record<string, number> = {};
  for (const r of results) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  span.setAttributes(
    Object.fromEntries(Object.entries(outcomes).map(([k, v]) => [`sync.records.${k}`, v])),
  );
  const bad = results.filter((r) => r.outcome === "failed");
  if (bad.length) failed(span, `${bad.length} failed: ${bad[0].message}`);
  const tally = runTallies.get(owner);
  const trigger = tally?.trigger ?? owner.split(":")[0];
  // A preview writes nothing: its would-be outcomes are not bills.
  if (mode === "preview") return;
  for (const r of results) {
    recordsCounter.add(1, { "sync.outcome": r.outcome, "sync.trigger": trigger });
    if (r.outcome === "skipped") {
      skippedCounter.add(1, { "sync.skip_reason": skipReasonClass(r.reasons) });
    }
    if (r.outcome !== "failed") continue;
    const failureClass = r.failedAt ?? "app";
    failuresCounter.add(1, { "sync.failure_class": failureClass });
    if (!tally) continue;
    const f = tally.failures.get(failureClass) ??
      { count: 0, ids: [] as string[], message: r.message };
    f.count++;
    if (f.ids.length < 10) f.ids.push(r.purchaseOrderId);
    tally.failures.set(failureClass, f);
  }
}

/** A reason's class, for a metric attribute with few values (the words stay on the run page). */
export function skipReasonClass(reasons: string[]): string {
  const text = reasons.join(" ");
  if (/is not ticked/.test(text)) return "not_ticked";
  if (/No vendor/.test(text)) return "no_vendor";
  if (/no purchase items/.test(text)) return "no_items";
  if (/no longer exists in Zoho/.test(text)) return "deleted_in_zoho";
  if (/in Xero, so it is not changed|deleted in Xero|not found in Xero/.test(text)) {
    return "bill_locked";
  }
  if (/only creates new bills/.test(text)) return "create_only";
  if (/\btax\b/i.test(text)) return "tax";
  if (/Quantity|List price|no product and no description|no PO Date/.test(text)) {
    return "line_data";
  }
  return "other";
}

// ---- the Zoho button and the webhook ------------------------------------------------------------

/** The Zoho button's one-record sync: `sync.button`, failed with the message the button shows. */
export function traceButton<T extends { result: ResultLike; notFound: boolean }>(
  id: string,
  mode: string | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const attrs = { "zoho.record_id": id, "sync.mode": mode ?? "create_and_update" };
  return withSpan("sync.button", attrs, async (span) => {
    const out = await fn();
    span.setAttributes({
      "sync.outcome": out.notFound ? "not_found" : out.result.outcome,
    });
    if (out.result.outcome === "failed") failed(span, out.result.message);
    return out;
  });
}

/** Hono-style middleware body for the webhook: `sync.webhook`, failed with the error answered. */
export function traceWebhook(
  res: () => Response,
  next: () => Promise<void>,
): Promise<void> {
  return withSpan("sync.webhook", {}, async (span) => {
    await next();
    const r = res();
    span.setAttribute("http.response.status_code", r.status);
    if (r.status >= 400) {
      const body = await r.clone().json().catch(() => ({})) as { error?: unknown };
      failed(span, typeof body.error === "string" ? body.error : `HTTP ${r.status}`);
    }
  });
}
