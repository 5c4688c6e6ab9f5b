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
import { RunTable } from "../../components/RunTable.tsx";
import { RunUsage } from "../../components/RunUsage.tsx";
import type { AppContext } from "../../lib/context.ts";
import type { Outcome, Run } from "../../lib/sync/types.ts";
import type { Assets } from "../assets.ts";
import { Csrf, Flash, type PageContext, type PageEnv, pageGuard, renderPage } from "./shared.tsx";

const RUNS_PER_PAGE = 25;
const RESULTS_PER_PAGE = 200;

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
    </dl>
  );
}

function OutcomeFilter(
  { run, current }: { run: Run; current: Outcome | null },
) {
  const base = `/runs/${encodeURIComponent(run.id)}`;
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
  return (
    <nav aria-label="Filter records by outcome">
      <ul class="filters">
        {link(base, `All (${run.counts.total})`, current === null)}
        {OUTCOME_ORDER.map((o) =>
          link(`${base}?outcome=${o}`, `${OUTCOME_LABEL[o]} (${run.counts[o]})`, current === o)
        )}
      </ul>
    </nav>
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
  const outcome = parseOutcome(c.req.query("outcome"));
  const page = Math.max(0, Math.floor(Number(c.req.query("page") ?? 0)) || 0);
  const [settings, all] = await Promise.all([ctx.sync.settings(), ctx.sync.getResults(run.id)]);
  const filtered = outcome ? all.filter((r) => r.outcome === outcome) : all;
  const shown = filtered.slice(page * RESULTS_PER_PAGE, (page + 1) * RESULTS_PER_PAGE);
  const more = filtered.length > (page + 1) * RESULTS_PER_PAGE;
  const failed = all.some((r) => r.outcome === "failed");
  const running = run.status === "running";
  const pageLink = (p: number) =>
    `/runs/${encodeURIComponent(run.id)}?${new URLSearchParams({
      ...(outcome ? { outcome } : {}),
      page: String(p),
    })}`;
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
          {failed && !running
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
        <section class="card">
          <h2>Records</h2>
          <OutcomeFilter run={run} current={outcome} />
          <ResultsTable results={shown} zohoRecordUrlBase={settings.zohoRecordUrlBase} />
          <p class="pager">
            {page > 0 ? <a href={pageLink(page - 1)}>← Previous {RESULTS_PER_PAGE}</a> : null}
            {more ? <a href={pageLink(page + 1)}>Next {RESULTS_PER_PAGE} →</a> : null}
          </p>
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
