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

const { app } = await boot(config);

Deno.serve({
  hostname: config.HOST,
  port: config.PORT,
  onListen: ({ hostname, port }) => console.log(`listening on http://${hostname}:${port}`),
}, app.fetch);
