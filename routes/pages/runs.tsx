/** Run history (`/runs`), one run with its records (`/runs/:id`), and retrying its failures. */
import { Hono } from "hono";
import { Island } from "../../components/Island.tsx";
import { ResultsTable } from "../../components/ResultsTable.tsx";
import {
  CountList,
  formatDuration,
  MODE_LABEL,
  OUTCOME_LABEL,
  OUTCOME_ORDER,
  runDurationMs,
  StatusBadge,
  Time,
  TRIGGER_LABEL,
  windowLabel,
} from "../../components/RunParts.tsx";
import { RunChart } from "../../components/RunChart.tsx";
import { RunTable } from "../../components/RunTable.tsx";
import { queryResults } from "../../lib/sync/results.ts";
import { resultsCsv } from "./runs_csv.ts";
import { RunUsage } from "../../components/RunUsage.tsx";
import type { AppContext } from "../../lib/context.ts";
import type { Outcome, Run } from "../../lib/sync/types.ts";
import type { Assets } from "../assets.ts";
import { Csrf, Flash, type PageContext, type PageEnv, pageGuard, renderPage } from "./shared.tsx";

const RUNS_PER_PAGE = 25;
const RESULTS_PER_PAGE = 100;
const CHART_RUNS = 30;

function RunSummary({ run }: { run: Run }) {
  return (
    <dl class="summary">
      <dt>Status</dt>
      <dd>
        <StatusBadge status={run.status} />
      </dd>
      <dt>Window</dt>
      <dd>{windowLabel(run.window, run.days)}</dd>
      <dt>Mode</dt>
      <dd>{MODE_LABEL[run.mode] ?? run.mode}</dd>
      <dt>Started by</dt>
      <dd>{TRIGGER_LABEL[run.trigger] ?? run.trigger}</dd>
      <dt>Started</dt>
      <dd>
        <Time iso={run.startedAt} />
      </dd>
      <dt>Finished</dt>
      <dd>
        <Time iso={run.finishedAt} />
      </dd>
      <dt>Duration</dt>
      <dd>{formatDuration(runDurationMs(run))}</dd>
      <dt>Watermark before → after</dt>
      <dd>
        <Time iso={run.watermark.before} /> → <Time iso={run.watermark.after} />
      </dd>
      <dt>API calls</dt>
      <dd>
        Zoho {run.apiCalls.zoho} · Xero {run.apiCalls.xero}
      </dd>
      <RunUsage usage={run.usage} />
      {run.resumes
        ? (
          <>
            <dt>Went on after a stop</dt>
            <dd>
              {run.resumes === 1 ? "once" : `${run.resumes} times`}: its app instance stopped, and
              another took it over from its last checkpoint
            </dd>
          </>
        )
        : null}
    </dl>
  );
}

/** Where the records view goes with these filters (page 0 unless given). */
function recordsHref(runId: string, f: RecordsFilter, page = 0): string {
  const params = new URLSearchParams();
  if (f.outcome) params.set("outcome", f.outcome);
  if (f.retried) params.set("retried", "1");
  if (f.q) params.set("q", f.q);
  if (page > 0) params.set("page", String(page));
  const qs = params.toString();
  return `/runs/${encodeURIComponent(runId)}${qs ? `?${qs}` : ""}`;
}

interface RecordsFilter {
  outcome: Outcome | null;
  retried: boolean;
  q: string;
}

function OutcomeFilter({ run, f }: { run: Run; f: RecordsFilter }) {
  const link = (href: string, label: string, active: boolean) => (
    <li>
      <a
        href={href}
        aria-current={active ? "true" : undefined}
        class={active ? "active" : undefined}
      >
        {label}
      </a>
    </li>
  );
  const keep = { q: f.q, retried: false };
  return (
    <nav aria-label="Filter records by outcome">
      <ul class="filters">
        {link(
          recordsHref(run.id, { ...keep, outcome: null }),
          `All (${run.counts.total})`,
          f.outcome === null && !f.retried,
        )}
        {OUTCOME_ORDER.map((o) =>
          link(
            recordsHref(run.id, { ...keep, outcome: o }),
            `${OUTCOME_LABEL[o]} (${run.counts[o]})`,
            f.outcome === o && !f.retried,
          )
        )}
      </ul>
    </nav>
  );
}

/** Search by PO number (or record id); keeps the outcome filter. */
function SearchForm({ run, f }: { run: Run; f: RecordsFilter }) {
  return (
    <form method="get" action={`/runs/${encodeURIComponent(run.id)}`} role="search">
      {f.outcome ? <input type="hidden" name="outcome" value={f.outcome} /> : null}
      {f.retried ? <input type="hidden" name="retried" value="1" /> : null}
      <span>
        <label for="records-q">PO number</label>
        <input id="records-q" name="q" type="search" value={f.q} maxLength={100} />
      </span>
      <button type="submit" class="secondary">Find</button>
      {f.q ? <a href={recordsHref(run.id, { ...f, q: "" })}>Clear search</a> : null}
    </form>
  );
}

function parseOutcome(v: string | undefined): Outcome | null {
  return OUTCOME_ORDER.includes(v as Outcome) ? v as Outcome : null;
}

async function runPage(c: PageContext, ctx: AppContext, assets: Assets) {
  const id = c.req.param("id") ?? "";
  const run = await ctx.sync.getRun(id);
  if (!run) {
    return renderPage(
      c,
      assets,
      { title: "Run not found", path: "/runs", status: 404 },
      (
        <>
          <h1>Run not found</h1>
          <p>There is no run with this id. It may be older than the history keeps.</p>
          <p>
            <a href="/runs">Back to the run history</a>
          </p>
        </>
      ),
    );
  }
  const f: RecordsFilter = {
    outcome: parseOutcome(c.req.query("outcome")),
    retried: c.req.query("retried") === "1",
    q: (c.req.query("q") ?? "").trim().slice(0, 100),
  };
  const page = Math.min(
    1_000_000,
    Math.max(0, Math.floor(Number(c.req.query("page") ?? 0)) || 0),
  );
  const [settings, found] = await Promise.all([
    ctx.sync.settings(),
    queryResults(ctx.kv, run.id, {
      ...f,
      offset: page * RESULTS_PER_PAGE,
      limit: RESULTS_PER_PAGE,
    }),
  ]);
  const shown = found.rows;
  const pages = Math.max(1, Math.ceil(found.matching / RESULTS_PER_PAGE));
  const more = found.matching > (page + 1) * RESULTS_PER_PAGE;
  const failed = run.counts.failed > 0;
  // A paused run is watched too: it goes on later under the same id.
  const running = run.status === "running" || run.status === "paused";
  const pageLink = (p: number) => recordsHref(run.id, f, p);
  const csvHref = `/runs/${encodeURIComponent(run.id)}/results.csv${
    recordsHref(run.id, f).replace(/^[^?]*/, "")
  }`;
  const first = found.matching ? page * RESULTS_PER_PAGE + 1 : 0;
  const last = page * RESULTS_PER_PAGE + shown.length;
  return renderPage(
    c,
    assets,
    { title: "Run", path: "/runs", islands: running },
    (
      <>
        <p class="small">
          <a href="/runs">← Run history</a>
        </p>
        <h1>
          Run of <Time iso={run.startedAt} />
        </h1>
        <Flash code={c.req.query("notice")} />
        <section class="card">
          <RunSummary run={run} />
          {running
            ? (
              <Island
                name="RunWatcher"
                props={{ csrf: c.get("session")?.csrf ?? "", initial: run }}
              />
            )
            : (
              <>
                <CountList counts={run.counts} />
                {run.message
                  ? <p class={run.status === "failed" ? "error-box" : "notice"}>{run.message}</p>
                  : null}
              </>
            )}
          {run.mode === "preview"
            ? <p class="notice">This was a preview: nothing was written to Xero or Zoho.</p>
            : null}
          {failed && run.status !== "running"
            ? (
              <form method="post" action={`/runs/${encodeURIComponent(run.id)}/retry`}>
                <Csrf c={c} />
                <button type="submit">Retry failed records</button>
                <span class="muted small">
                  {" "}Starts a new run (create and update) with the failed records and anything
                  changed since the last sync.
                </span>
              </form>
            )
            : null}
        </section>
        <section class="card records" aria-labelledby="records-h">
          <h2 id="records-h">Records</h2>
          {found.retried
            ? (
              <p class="retried-summary">
                {found.retried === 1
                  ? "1 record was read again on purpose (retried, or queued by Zoho's webhook): "
                  : `${found.retried} records were read again on purpose (retried, or queued by Zoho's webhook): `}
                {f.retried
                  ? <strong>shown below</strong>
                  : (
                    <a href={recordsHref(run.id, { outcome: null, retried: true, q: "" })}>
                      show {found.retried === 1 ? "it" : "them"} and why
                    </a>
                  )}
              </p>
            )
            : null}
          <OutcomeFilter run={run} f={f} />
          <div class="results-tools">
            <SearchForm run={run} f={f} />
            <a class="button secondary" href={csvHref} download data-testid="csv">
              Download CSV
              <span class="sr-only">{` of these ${found.matching} records`}</span>
            </a>
          </div>
          <p class="muted small" data-testid="records-count">
            {found.matching
              ? `Records ${first}–${last} of ${found.matching}${f.q ? ` matching “${f.q}”` : ""}${
                pages > 1 ? ` · page ${page + 1} of ${pages}` : ""
              }`
              : f.q
              ? `No record's PO number matches “${f.q}”.`
              : ""}
          </p>
          <ResultsTable results={shown} zohoRecordUrlBase={settings.zohoRecordUrlBase} />
          {pages > 1
            ? (
              <nav class="pager" aria-label="Pages of records">
                {page > 0
                  ? <a href={pageLink(page - 1)} rel="prev">← Previous {RESULTS_PER_PAGE}</a>
                  : null}
                {more
                  ? <a href={pageLink(page + 1)} rel="next">Next {RESULTS_PER_PAGE} →</a>
                  : null}
              </nav>
            )
            : null}
        </section>
      </>
    ),
  );
}

export function runRoutes(ctx: AppContext, assets: Assets) {
  const guard = pageGuard(ctx, assets);
  return new Hono<PageEnv>()
    .get("/runs", guard, async (c) => {
      const cursor = c.req.query("cursor") || undefined;
      let list: { runs: Run[]; cursor?: string };
      try {
        list = await ctx.sync.listRuns({ limit: RUNS_PER_PAGE, cursor });
      } catch {
        list = await ctx.sync.listRuns({ limit: RUNS_PER_PAGE }); // a stale or bad cursor
      }
      const recent = cursor ? null : await ctx.sync.listRuns({ limit: CHART_RUNS });
      return renderPage(
        c,
        assets,
        { title: "Run history", path: "/runs" },
        (
          <>
            <h1>Run history</h1>
            <Flash code={c.req.query("notice")} />
            <p class="muted">
              Every sync, newest first: from this page, the Zoho button, the schedule and Zoho's
              webhook. Open a run to see each purchase order and its bill.
            </p>
            {recent ? <RunChart runs={recent.runs} /> : null}
            <RunTable runs={list.runs} />
            <p class="pager">
              {cursor ? <a href="/runs">← Newest runs</a> : null}
              {list.cursor
                ? <a href={`/runs?cursor=${encodeURIComponent(list.cursor)}`}>Older runs →</a>
                : null}
            </p>
          </>
        ),
      );
    })
    .get("/runs/:id", guard, (c) => runPage(c, ctx, assets))
    // The run's records for the accountant, with the page's outcome filter and search.
    .get("/runs/:id/results.csv", guard, async (c) => {
      const run = await ctx.sync.getRun(c.req.param("id"));
      if (!run) return c.text("No such run.", 404);
      const body = resultsCsv(ctx.kv, run.id, {
        outcome: parseOutcome(c.req.query("outcome")),
        retried: c.req.query("retried") === "1",
        q: (c.req.query("q") ?? "").trim().slice(0, 100),
      });
      c.header("cache-control", "no-store");
      return c.body(body, 200, {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": `attachment; filename="run-${run.id}-records.csv"`,
      });
    })
    .post("/runs/:id/retry", guard, async (c) => {
      const id = c.req.param("id");
      const run = await ctx.sync.getRun(id);
      if (!run) return c.redirect("/runs", 303);
      const failed = (await ctx.sync.getResults(run.id))
        .filter((r) => r.outcome === "failed").map((r) => r.purchaseOrderId);
      if (!failed.length) {
        return c.redirect(`/runs/${encodeURIComponent(id)}?notice=retry-none`, 303);
      }
      await ctx.sync.enqueue(failed);
      const started = await ctx.sync.startRun(
        { window: "since_last_sync", mode: "create_and_update" },
        "page",
      );
      const next = encodeURIComponent(started.runId);
      if (started.started) {
        started.done.catch(() => {}); // the run records its own failure
        return c.redirect(`/runs/${next}`, 303);
      }
      return c.redirect(next ? `/runs/${next}?notice=busy` : "/runs?notice=busy", 303);
    });
}
