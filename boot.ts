/**
 * Wires config → KV → clients → sync engine → app. main.ts (production) and demo.ts (with the
 * simulators) both start here, so the demo runs exactly the production code.
 */
import type { Config } from "./lib/config.ts";
import type { AppContext } from "./lib/context.ts";
import { createSecrets, resealLegacy } from "./lib/secrets.ts";
import { keys } from "./lib/store/keys.ts";
import { openKv } from "./lib/store/kv.ts";
import { SyncEngine, type SyncEngineOptions } from "./lib/sync/engine.ts";
import { XeroClient, type XeroClientOptions } from "./lib/xero/mod.ts";
import { ZohoClient, type ZohoClientOptions } from "./lib/zoho/mod.ts";
import { loadAssets } from "./routes/assets.ts";
import { createApp } from "./routes/app.ts";

/** Knobs for tests and the bench (smaller retry budgets, faster limiter windows). */
export interface BootOverrides {
  zoho?: Partial<ZohoClientOptions>;
  xero?: Partial<XeroClientOptions>;
  engine?: Partial<SyncEngineOptions>;
}

export async function boot(config: Config, overrides: BootOverrides = {}) {
  const kv = await openKv(config.DENO_KV_PATH);
  const secrets = await createSecrets(config.ENCRYPTION_KEY);
  // Tokens stored before ciphertexts were bound to their KV key: bind them now, once.
  await Promise.all([
    resealLegacy(kv, secrets, keys.zohoToken(), ["refreshToken"]),
    resealLegacy(kv, secrets, keys.zohoAccessToken(), ["accessToken"]),
    resealLegacy(kv, secrets, keys.xeroToken(), ["refreshToken", "accessToken"]),
  ]).catch(() => {}); // best effort: legacy values still open, and are rewritten bound later
  const zoho = new ZohoClient({
    kv,
    secrets,
    accountsUrl: config.ZOHO_ACCOUNTS_URL,
    clientId: config.ZOHO_CLIENT_ID,
    clientSecret: config.ZOHO_CLIENT_SECRET,
    refreshTokenSeed: config.ZOHO_REFRESH_TOKEN,
    concurrency: config.ZOHO_MAX_CONCURRENCY,
    ...overrides.zoho,
  });
  const xero = new XeroClient({
    kv,
    secrets,
    loginUrl: config.XERO_LOGIN_URL,
    identityUrl: config.XERO_IDENTITY_URL,
    apiUrl: config.XERO_API_URL,
    clientId: config.XERO_CLIENT_ID,
    clientSecret: config.XERO_CLIENT_SECRET,
    refreshTokenSeed: config.XERO_REFRESH_TOKEN,
    tenantId: config.XERO_TENANT_ID,
    ...overrides.xero,
  });
  const sync = new SyncEngine({ kv, zoho, xero, ...overrides.engine });
  const ctx: AppContext = { config, kv, secrets, zoho, xero, sync };
  const app = createApp(ctx, await loadAssets());
  return {
    app,
    ctx,
    async close() {
      await sync.idle();
      kv.close();
    },
  };
}
