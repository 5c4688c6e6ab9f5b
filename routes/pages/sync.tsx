/** The manual sync page (`/`) and its form's no-JavaScript fallback (`POST /sync`). */
import { Hono } from "hono";
import { Island } from "../../components/Island.tsx";
import { RunTable } from "../../components/RunTable.tsx";
import { formatTime } from "../../components/RunParts.tsx";
import type { AppContext } from "../../lib/context.ts";
import { StartRunSchema } from "../../lib/sync/types.ts";
import type { Assets } from "../assets.ts";
import { healthBody } from "../health.ts";
import { type PageContext, type PageEnv, pageGuard, renderPage } from "./shared.tsx";

async function lastSyncText(ctx: AppContext): Promise<string> {
  const w = await ctx.sync.watermark();
  if (!w.value) return "No sync has run yet, so this covers every record.";
  const ran = w.movedAt ? `Last ran ${formatTime(w.movedAt)}` : "Last ran earlier";
  return `${ran}: picks up records changed since ${formatTime(w.value)}.`;
}

async function homePage(c: PageContext, ctx: AppContext, assets: Assets, error?: string) {
  const [settings, since, recent, health] = await Promise.all([
    ctx.sync.settings(),
    lastSyncText(ctx),
    ctx.sync.listRuns({ limit: 5 }),
    healthBody(ctx),
  ]);
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
        <div class="layout-2">
          <div>
            <Island
              name="SyncPanel"
              props={{
                csrf: c.get("session")?.csrf ?? "",
                lastSyncText: since,
                zohoRecordUrlBase: settings.zohoRecordUrlBase,
                activeRunId: active?.id ?? null,
              }}
            />
          </div>
          <aside>
            <Island name="ConnectionStatus" props={{ initial: health }} />
            <p class="small">
              <a href="/connections">Manage connections</a>
            </p>
          </aside>
        </div>
        <section class="card">
          <h2>Recent runs</h2>
          <RunTable runs={recent.runs} compact />
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
    });
}
