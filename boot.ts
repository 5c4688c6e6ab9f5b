/**
 * Wires config → KV → services → app. main.ts (production) and demo.ts (with the simulators) both
 * start here, so the demo runs exactly the production code.
 */
import type { Config } from "./lib/config.ts";
import type { AppContext } from "./lib/context.ts";
import { createSecrets } from "./lib/secrets.ts";
import { openKv } from "./lib/store/kv.ts";
import { keys } from "./lib/store/keys.ts";
import { loadAssets } from "./routes/assets.ts";
import { createApp } from "./routes/app.ts";

export async function boot(config: Config) {
  const kv = await openKv(config.DENO_KV_PATH);
  const secrets = await createSecrets(config.ENCRYPTION_KEY);
  const stored = async (key: Deno.KvKey) =>
    (await kv.get(key)).value
      ? { state: "connected" as const }
      : { state: "not_connected" as const };
  const ctx: AppContext = {
    config,
    kv,
    secrets,
    status: {
      zoho: () => stored(keys.zohoToken()),
      xero: () => stored(keys.xeroToken()),
    },
  };
  const app = createApp(ctx, await loadAssets());
  return { app, ctx, close: () => kv.close() };
}
