/**
 * Wires config → KV → clients → sync engine → app. main.ts (production) and demo.ts (with the
 * simulators) both start here, so the demo runs exactly the production code.
 *
 * In two steps, so a cold instance answers its first /health before it has loaded what only
 * pages, the API and runs need (main.ts): bootCore() opens KV and reads the Zoho and Xero
 * connections' states from it (all /health reads); bootApp() loads the API clients, the sync
 * engine and the routes on top of the same KV and options.
 */
import type { Config } from "./lib/config.ts";
import type { AppContext, CoreContext } from "./lib/context.ts";
import { createSecrets, resealLegacy, type Secrets } from "./lib/secrets.ts";
import { keys } from "./lib/store/keys.ts";
import { openKv } from "./lib/store/kv.ts";
import type { SyncEngineOptions } from "./lib/sync/engine.ts";
import { xeroStatus } from "./lib/xero/connection.ts";
import type { XeroClientOptions } from "./lib/xero/mod.ts";
import { zohoStatus } from "./lib/zoho/connection.ts";
import type { ZohoClientOptions } from "./lib/zoho/mod.ts";

/** Knobs for tests and the bench (smaller retry budgets, faster limiter windows). */
export interface BootOverrides {
  zoho?: Partial<ZohoClientOptions>;
  xero?: Partial<XeroClientOptions>;
  engine?: Partial<SyncEngineOptions>;
}

/** What bootCore opened, and the client options bootApp makes the clients with. */
export interface Core extends CoreContext {
  zohoOptions: ZohoClientOptions;
  xeroOptions: XeroClientOptions;
}

function zohoOptions(config: Config, kv: Deno.Kv, secrets: Secrets, o: BootOverrides) {
  return {
    kv,
    secrets,
    accountsUrl: config.ZOHO_ACCOUNTS_URL,
    clientId: config.ZOHO_CLIENT_ID,
    clientSecret: config.ZOHO_CLIENT_SECRET,
    refreshTokenSeed: config.ZOHO_REFRESH_TOKEN,
    concurrency: config.ZOHO_MAX_CONCURRENCY,
    ...o.zoho,
  };
}

function xeroOptions(config: Config, kv: Deno.Kv, secrets: Secrets, o: BootOverrides) {
  return {
    kv,
    secrets,
    loginUrl: config.XERO_LOGIN_URL,
    identityUrl: config.XERO_IDENTITY_URL,
    apiUrl: config.XERO_API_URL,
    clientId: config.XERO_CLIENT_ID,
    clientSecret: config.XERO_CLIENT_SECRET,
    refreshTokenSeed: config.XERO_REFRESH_TOKEN,
    tenantId: config.XERO_TENANT_ID,
    ...o.xero,
  };
}

/**
 * KV, secrets and the two connections' states: what GET /health reads. The states are read by
 * the same functions the clients' status() calls (lib/zoho/connection.ts, lib/xero/connection.ts),
 * with the same options, so /health answers alike before and after the clients load.
 * `opened`: KV already open.
 */
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
  const zo = zohoOptions(config, kv, secrets, overrides);
  const xo = xeroOptions(config, kv, secrets, overrides);
  return {
    config,
    kv,
    secrets,
    zoho: { status: () => zohoStatus(zo) },
    xero: { status: () => xeroStatus(xo) },
    zohoOptions: zo,
    xeroOptions: xo,
  };
}

/**
 * A module of this project, imported by a specifier Deno cannot read ahead of time: Deno loads
 * every module an entry names, dynamic imports included, before the entry's first line runs, so
 * naming the app here would load all of it ahead of main.ts's first /health. `path` is relative
 * to the project's root.
 */
export function lazy<T>(path: string): Promise<T> {
  return import(new URL(path, import.meta.url).href);
}

/**
 * The API clients, the sync engine and the whole app over a core (loaded here, not when boot.ts
 * is imported).
 */
export async function bootApp(core: Core, overrides: BootOverrides = {}) {
  const [{ ZohoClient }, { XeroClient }, { SyncEngine }, { loadAssets }, { createApp }] =
    await Promise.all([
      lazy<typeof import("./lib/zoho/mod.ts")>("./lib/zoho/mod.ts"),
      lazy<typeof import("./lib/xero/mod.ts")>("./lib/xero/mod.ts"),
      lazy<typeof import("./lib/sync/engine.ts")>("./lib/sync/engine.ts"),
      lazy<typeof import("./routes/assets.ts")>("./routes/assets.ts"),
      lazy<typeof import("./routes/app.ts")>("./routes/app.ts"),
    ]);
  const { config, kv, secrets } = core;
  const zoho = new ZohoClient(core.zohoOptions);
  const xero = new XeroClient(core.xeroOptions);
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
