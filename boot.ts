/**
 * Wires config → KV → clients → sync engine → app. main.ts (production) and demo.ts (with the
 * simulators) both start here, so the demo runs exactly the production code.
 *
 * In two steps, so a cold instance answers its first /health before it has loaded what only
 * pages, the API and runs need (main.ts): bootCore() opens KV and makes the Zoho and Xero
 * clients (all /health reads); bootApp() loads the sync engine and the routes on top of them.
 */
import type { Config } from "./lib/config.ts";
import type { AppContext, CoreContext } from "./lib/context.ts";
import { createSecrets, resealLegacy } from "./lib/secrets.ts";
import { keys } from "./lib/store/keys.ts";
import { openKv } from "./lib/store/kv.ts";
import type { SyncEngineOptions } from "./lib/sync/engine.ts";
import { XeroClient, type XeroClientOptions } from "./lib/xero/mod.ts";
import { ZohoClient, type ZohoClientOptions } from "./lib/zoho/mod.ts";

/** Knobs for tests and the bench (smaller retry budgets, faster limiter windows). */
export interface BootOverrides {
  zoho?: Partial<ZohoClientOptions>;
  xero?: Partial<XeroClientOptions>;
  engine?: Partial<SyncEngineOptions>;
}

export interface Core extends CoreContext {
  zoho: ZohoClient;
  xero: XeroClient;
}

/** KV, secrets and the two API clients: what GET /health reads. `opened`: KV already open. */
export async function bootCore(
  config: Config,
  overrides: BootOverrides = {},
  opened?: Deno.Kv,
): Promise<Core> {
  const kv = opened ?? await openKv(config.DENO_KV_PATH);
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
  return { config, kv, secrets, zoho, xero };
}

/**
 * A module of this project, imported by a specifier Deno cannot read ahead of time: Deno loads
 * every module an entry names, dynamic imports included, before the entry's first line runs, so
 * naming the app here would load all of it ahead of main.ts's first /health.
 */
function lazy<T>(path: string): Promise<T> {
  return import(new URL(path, import.meta.url).href);
}

/** The sync engine and the whole app over a core (loaded here, not when boot.ts is imported). */
export async function bootApp(core: Core, overrides: BootOverrides = {}) {
  const [{ SyncEngine }, { loadAssets }, { createApp }] = await Promise.all([
    lazy<typeof import("./lib/sync/engine.ts")>("./lib/sync/engine.ts"),
    lazy<typeof import("./routes/assets.ts")>("./routes/assets.ts"),
    lazy<typeof import("./routes/app.ts")>("./routes/app.ts"),
  ]);
  const { config, kv, secrets, zoho, xero } = core;
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

export async function boot(config: Config, overrides: BootOverrides = {}) {
  return await bootApp(await bootCore(config, overrides), overrides);
}
