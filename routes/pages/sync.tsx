/** The manual sync page (`/`) and its form's no-JavaScript fallback (`POST /sync`). */
import { Hono } from "hono";
import { Island } from "../../components/Island.tsx";
import { formatTime } from "../../components/RunParts.tsx";
import type { AppContext } from "../../lib/context.ts";
import { AutoSyncInputSchema, autoSyncView, saveAutoSync } from "../../lib/sync/auto.ts";
import { StartRunSchema } from "../../lib/sync/types.ts";
import type { Assets } from "../assets.ts";
import { healthBody } from "../health.ts";
import { Flash, type PageContext, type PageEnv, pageGuard, renderPage } from "./shared.tsx";

async function lastSyncText(ctx: AppContext): Promise<string> {
  const w = await ctx.sync.watermark();
  if (!w.value) return "No sync has run yet, so this covers every record.";
  const ran = w.movedAt ? `Last ran ${formatTime(w.movedAt)}` : "Last ran earlier";
  return `${ran}: picks up records changed since ${formatTime(w.value)}.`;
}

async function homePage(c: PageContext, ctx: AppContext, assets: Assets, error?: string) {
  const [settings, since, recent, health, auto] = await Promise.all([
    ctx.sync.settings(),
    lastSyncText(ctx),
    ctx.sync.listRuns({ limit: 5 }),
    healthBody(ctx),
    autoSyncView(ctx.kv, ctx.config.AUTO_SYNC_CRON === "off"),
  ]);
  const csrf = c.get("session")?.csrf ?? "";
  const active = recent.runs.find((r) => r.status === "running");
  return renderPage(
    c,
    assets,
    { title: "Sync", path: "/", islands: true, status: error ? 400 : 200 },
    (
      <>
        <h1>Send Zoho purchase orders to Xero</h1>
        <p class="muted">
          Each ticked purchase order becomes one bill in Xero. Pick which records to look at and
          what to do, then press{" "}
          <strong>Sync Now</strong>. Preview first if you are unsure: it writes nothing.
        </p>
        {error ? <p class="error-box" role="alert">{error}</p> : null}
        <Flash code={c.req.query("notice")} />
        {
          /* The form and the aside side by side; a run's progress and results below both, at the
             page's full width (SyncPanel's root is `display: contents`, see app.css). */
        }
        <div class="sync-layout">
          <Island
            name="SyncPanel"
            props={{
              csrf,
              lastSyncText: since,
              zohoRecordUrlBase: settings.zohoRecordUrlBase,
              activeRunId: active?.id ?? null,
            }}
          />
          <aside class="sync-aside" aria-label="Connections and auto sync">
            <Island name="ConnectionStatus" props={{ initial: health }} />
            <p class="small">
              <a href="/connections">Manage connections</a>
            </p>
            <Island name="AutoSyncSwitch" props={{ csrf, view: auto }} />
          </aside>
        </div>
        <section class="card" aria-labelledby="recent-h">
          <h2 id="recent-h">Recent runs</h2>
          <Island name="RecentRuns" props={{ csrf, initial: recent.runs }} />
          <p class="small">
            <a href="/runs">All runs</a>
          </p>
        </section>
      </>
    ),
  );
}

export function syncRoutes(ctx: AppContext, assets: Assets) {
  const guard = pageGuard(ctx, assets);
  return new Hono<PageEnv>()
    .get("/", guard, (c) => homePage(c, ctx, assets))
    .post("/sync", guard, async (c) => {
      const form = await c.req.parseBody();
      const window = String(form["window"] ?? "since_last_sync");
      const parsed = StartRunSchema.safeParse({
        window,
        mode: form["mode"],
        ...(window === "last_days" ? { days: form["days"] } : {}),
      });
      if (!parsed.success) {
        return homePage(c, ctx, assets, parsed.error.issues.map((i) => i.message).join("; "));
      }
      const started = await ctx.sync.startRun(parsed.data, "page");
      const id = encodeURIComponent(started.runId);
      if (started.started) {
        started.done.catch(() => {}); // the run records its own failure
        return c.redirect(`/runs/${id}`, 303);
      }
      return c.redirect(id ? `/runs/${id}?notice=busy` : "/runs?notice=busy", 303);
    })
    // Auto sync on/off and interval: JSON from the switch island, a form without JavaScript.
    .post("/auto-sync", guard, async (c) => {
      const json = (c.req.header("content-type") ?? "").includes("application/json");
      const wantsJson = json || (c.req.header("accept") ?? "").includes("application/json");
      const fail = (status: 400 | 409, error: string) =>
        wantsJson ? c.json({ error }, status) : homePage(c, ctx, assets, error);
      if (ctx.config.AUTO_SYNC_CRON === "off") {
        return fail(409, "Auto sync is switched off for this deployment (AUTO_SYNC_CRON=off).");
      }
      let body: unknown;
      try {
        body = json ? await c.req.json() : await c.req.parseBody();
      } catch {
        return fail(400, "The request body could not be read.");
      }
      const parsed = AutoSyncInputSchema.safeParse(body);
      if (!parsed.success) {
        return fail(400, parsed.error.issues.map((i) => i.message).join("; "));
      }
      await saveAutoSync(ctx.kv, parsed.data);
      if (!wantsJson) return c.redirect("/?notice=auto-sync-saved", 303);
      return c.json({ view: await autoSyncView(ctx.kv, false) });
    });
}
