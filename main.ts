/** Production entry: config → KV → app → Deno.serve, plus the auto-sync schedule. */
import { ConfigError, loadConfig, processEnv } from "./lib/config.ts";
import { boot } from "./boot.ts";

let config;
try {
  config = loadConfig(processEnv());
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : String(err));
  Deno.exit(1);
}

const { app, ctx } = await boot(config);

// Auto sync: changed records since the last run, plus ids queued by the Zoho webhook. The tick also
// closes a run whose instance died, so nothing stays "running" forever.
if (config.AUTO_SYNC_CRON !== "off") {
  Deno.cron("zoho-xero-auto-sync", config.AUTO_SYNC_CRON, async () => {
    const start = await ctx.sync.tick("cron");
    if (start.started) await start.done;
  });
}

Deno.serve({
  hostname: config.HOST,
  port: config.PORT,
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
}, app.fetch);
