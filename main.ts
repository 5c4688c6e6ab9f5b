/**
 * Production entry: config → KV → app → Deno.serve, plus the auto-sync schedule.
 *
 * Cold start (an edge instance starts on a request): GET /health is answered as soon as KV is
 * open, from the Zoho and Xero connection states in it, by the same health routes behind the same
 * middleware as the full app (routes/health.ts healthApp). The API clients, sync engine, pages and
 * API load after that first answer (or 200 ms after start, whichever comes first); any other
 * request waits for them.
 */
import { ConfigError, loadConfig, processEnv } from "./lib/config.ts";
import { bootApp, bootCore, lazy } from "./boot.ts";
import { healthApp } from "./routes/health.ts";
import type * as AutoSync from "./lib/sync/auto.ts";

/**
 * lib/sync/auto.ts's tick, which Deno.cron needs before the server starts. Written out rather
 * than imported: importing auto.ts would load zod's full API (95 modules) before the first answer;
 * the type says it is auto.ts's own, so `deno check` fails the day the two differ.
 */
const AUTO_SYNC_TICK: typeof AutoSync.AUTO_SYNC_TICK = "*/5 * * * *";

let config;
try {
  config = loadConfig(processEnv());
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : String(err));
  Deno.exit(1);
}

const core = await bootCore(config);
const health = healthApp(core);

type Full = Awaited<ReturnType<typeof bootApp>>;
let loading: Promise<Full> | undefined;
let ready: Full | undefined;
/** The whole app, loaded once; a failure to load ends the process, as it did before the split. */
function full(): Promise<Full> {
  loading ??= bootApp(core).then((b) => {
    // A run whose instance stopped goes on now that this one is up (throttled, not awaited).
    b.ctx.sync.resumeIfStale();
    return (ready = b);
  }, (err) => {
    console.error(`the app could not start: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  });
  return loading;
}
// Not setTimeout: its first call loads Deno's Node timers, ~4 ms this first answer would wait for.
AbortSignal.timeout(200).addEventListener("abort", () => full());

async function handler(req: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
  if (ready) return await ready.app.fetch(req, info);
  if ((req.method === "GET" || req.method === "HEAD") && new URL(req.url).pathname === "/health") {
    try {
      return await health.fetch(req, info);
    } finally {
      // Only starts the imports: the modules are evaluated once this answer has been sent.
      queueMicrotask(full);
    }
  }
  return await (await full()).app.fetch(req, info);
}

// Auto sync: changed records since the last run, plus ids queued by the Zoho webhook. Deno.cron
// must be registered at start, so a fixed short tick decides from the page's settings in KV
// (lib/sync/auto.ts).
if (config.AUTO_SYNC_CRON !== "off") {
  Deno.cron("zoho-xero-auto-sync", AUTO_SYNC_TICK, async () => {
    const [{ ctx }, { autoSyncTick }] = await Promise.all([
      full(),
      lazy<typeof AutoSync>("./lib/sync/auto.ts"),
    ]);
    const start = await autoSyncTick(ctx.kv, ctx.sync);
    if (start.started) await start.done;
  });
}

// Runs are durable jobs (lib/sync/engine.ts): a run whose instance stopped goes on from its last
// checkpoint within a minute, and a paused run once its time has come or its connection is made
// again. Requests look too (routes/app.ts), so this tick matters when no request comes.
if (config.AUTO_SYNC_CRON !== "off") {
  Deno.cron("zoho-xero-resume-runs", "* * * * *", async () => {
    const { ctx } = await full();
    // Awaited, like the auto-sync tick's run: the instance is kept while the run goes on.
    if (await ctx.sync.resumeStaleRuns()) await ctx.sync.idle();
  });
}

Deno.serve({
  hostname: config.HOST,
  port: config.PORT,
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
}, handler);
