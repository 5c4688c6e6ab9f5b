/**
 * This app's pipeline, exactly as production runs it: boot() (config → KV file → clients → sync
 * engine) and one sync run "since the last sync" over every purchase order. Only the Xero
 * client's minute window is shortened, to match the simulator's faster clock.
 */
import { boot } from "../boot.ts";
import { loadConfig } from "../lib/config.ts";
import { ORG_SETTINGS } from "../sandbox/demo_org.ts";
import type { Run } from "../lib/sync/types.ts";
import type { SimHostInfo } from "./sim_host.ts";

export interface OursOutcome {
  status: string;
  counts: Record<string, number>;
  /** The engine's own tally of API calls (retries included). */
  apiCalls: { zoho: number; xero: number };
  /** What the run recorded it cost (Zoho credits and calls by kind, Xero calls and bytes). */
  usage?: Run["usage"];
  timings?: { listMs: number; processMs: number; totalMs: number };
}

export interface Pipeline {
  /** Ready to go: connected, settings saved. */
  run(): Promise<OursOutcome>;
  close(): Promise<void>;
}

export async function prepareOurs(
  info: SimHostInfo,
  clockScale: number,
  zohoConcurrency = 10,
): Promise<Pipeline> {
  const dir = await Deno.makeTempDir({ prefix: "bench-kv-" });
  const config = loadConfig({
    ADMIN_PASSWORD: "bench-admin-password",
    SYNC_API_TOKEN: "bench-sync-token-0123456789",
    ENCRYPTION_KEY: "bench-encryption-key-0123456789-abcdef",
    DENO_KV_PATH: `${dir}/bench.sqlite`,
    HOST: "127.0.0.1",
    AUTO_SYNC_CRON: "off",
    ZOHO_ACCOUNTS_URL: info.zoho.url,
    ZOHO_CLIENT_ID: info.zoho.clientId,
    ZOHO_CLIENT_SECRET: info.zoho.clientSecret,
    ZOHO_REFRESH_TOKEN: info.zoho.refreshToken,
    ZOHO_MAX_CONCURRENCY: String(zohoConcurrency),
    XERO_LOGIN_URL: info.xero.url,
    XERO_IDENTITY_URL: info.xero.url,
    XERO_API_URL: info.xero.url,
    XERO_CLIENT_ID: info.xero.clientId,
    XERO_CLIENT_SECRET: info.xero.clientSecret,
    XERO_REFRESH_TOKEN: info.xero.refreshToken,
  });
  const booted = await boot(config, {
    xero: { limits: { windowMs: 60_000 / clockScale } },
  });
  const engine = booted.ctx.sync;
  const saved = await engine.saveSettings(ORG_SETTINGS);
  if (!saved.ok) throw new Error(saved.errors.join("; "));
  return {
    async run() {
      const start = await engine.startRun(
        { window: "since_last_sync", mode: "create_and_update" },
        "api",
      );
      if (!start.started) throw new Error("a run is already going on");
      const run = await start.done;
      return {
        status: run.status,
        counts: { ...run.counts },
        apiCalls: run.apiCalls,
        usage: run.usage,
        timings: run.timings,
      };
    },
    async close() {
      await booted.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
