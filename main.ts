/** Production entry: config → KV → app → Deno.serve, plus the auto-sync schedule. */
import { ConfigError, loadConfig, processEnv } from "./lib/config.ts";
import { boot } from "./boot.ts";
import { AUTO_SYNC_TICK, autoSyncTick } from "./lib/sync/auto.ts";

let config;
try {
  config = loadConfig(processEnv());
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : String(err));
  Deno.exit(1);
}

const { app, ctx } = await boot(config);

// Auto sync: changed records since the last run, plus ids queued by the Zoho webhook. Deno.cron
// must be registered at start, so a fixed short tick decides from the page's settings in KV
// (lib/sync/auto.ts). The tick also closes a run whose instance died, so nothing stays "running".
if (config.AUTO_SYNC_CRON !== "off") {
  Deno.cron("zoho-xero-auto-sync", AUTO_SYNC_TICK, async () => {
    const start = await autoSyncTick(ctx.kv, ctx.sync);
    if (start.started) await start.done;
  });
}

Deno.serve({
  hostname: config.HOST,
  port: config.PORT,
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
}, app.fetch);
