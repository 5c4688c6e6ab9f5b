/** Shared test setup: a valid config, the app on a real KV, a listening server on 127.0.0.1. */
import { type Config, loadConfig } from "../lib/config.ts";
import { boot } from "../boot.ts";

export const TEST_ENV = {
  ADMIN_PASSWORD: "test-admin-password",
  SYNC_API_TOKEN: "test-sync-token-0123456789",
  ENCRYPTION_KEY: "test-encryption-key-0123456789-abcdef",
  DENO_KV_PATH: ":memory:",
  HOST: "127.0.0.1",
};

export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({ ...TEST_ENV, ...env });
}

/** Boots the real app and serves it on a random loopback port. */
export async function serveApp(env: Record<string, string | undefined> = {}) {
  const booted = await boot(testConfig(env));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    booted.app.fetch,
  );
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  return {
    ...booted,
    url,
    async close() {
      await server.shutdown();
      await booted.close();
    },
  };
}

// ---- the whole stack: both simulators and the app pointed at them ----

import type { BootOverrides } from "../boot.ts";
import { startXeroSim, type XeroSim, type XeroSimOptions } from "../sandbox/xero.ts";
import { startZohoSim, type ZohoSim, type ZohoSimOptions } from "../sandbox/zoho.ts";
import { ORG_CURRENCIES, ORG_SETTINGS, ORG_TAX_RATES } from "../sandbox/demo_org.ts";
import { generatePurchaseOrder, seededRandom } from "../sandbox/po_generator.ts";

export interface StackOptions {
  records?: Record<string, unknown>[];
  zoho?: ZohoSimOptions;
  xero?: XeroSimOptions;
  env?: Record<string, string | undefined>;
  overrides?: BootOverrides;
  /** Settings stored before the first sync (default: the org's tax mappings). */
  settings?: Record<string, unknown>;
  /** Serve the app on a loopback port too. */
  listen?: boolean;
}

/** The app's environment (DESIGN §4) pointing at both simulators, connections seeded. */
export function simEnv(zohoSim: ZohoSim, xeroSim: XeroSim): Record<string, string> {
  return {
    ...TEST_ENV,
    AUTO_SYNC_CRON: "off",
    ZOHO_ACCOUNTS_URL: zohoSim.url,
    ZOHO_CLIENT_ID: zohoSim.clientId,
    ZOHO_CLIENT_SECRET: zohoSim.clientSecret,
    ZOHO_REFRESH_TOKEN: zohoSim.refreshToken,
    XERO_LOGIN_URL: xeroSim.url,
    XERO_IDENTITY_URL: xeroSim.url,
    XERO_API_URL: xeroSim.url,
    XERO_CLIENT_ID: xeroSim.clientId,
    XERO_CLIENT_SECRET: xeroSim.clientSecret,
    XERO_REFRESH_TOKEN: xeroSim.refreshToken,
  };
}

export async function startStack(opts: StackOptions = {}) {
  const zohoSim: ZohoSim = await startZohoSim({ records: opts.records, ...opts.zoho });
  const xeroSim: XeroSim = await startXeroSim({
    taxRates: ORG_TAX_RATES,
    currencies: ORG_CURRENCIES,
    ...opts.xero,
  });
  const env = { ...simEnv(zohoSim, xeroSim), ...opts.env };
  const booted = await boot(loadConfig(env), {
    ...opts.overrides,
    zoho: { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 50 }, ...opts.overrides?.zoho },
    xero: { retry: { attempts: 3, maxWaitMs: 2000 }, ...opts.overrides?.xero },
    engine: { lockWaitMs: 5000, ...opts.overrides?.engine },
  });
  const engine = booted.ctx.sync;
  const saved = await engine.saveSettings(opts.settings ?? ORG_SETTINGS);
  if (!saved.ok) throw new Error(saved.errors.join("; "));
  let server: Deno.HttpServer | undefined;
  let url = "";
  if (opts.listen) {
    server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, booted.app.fetch);
    url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  }
  return {
    ...booted,
    engine,
    zohoSim,
    xeroSim,
    env,
    url,
    /** Runs to completion and returns the run with its results. */
    async run(
      input: Parameters<typeof engine.startRun>[0],
      trigger: "page" | "api" | "cron" = "api",
    ) {
      const start = await engine.startRun(input, trigger);
      if (!start.started) throw new Error(`a run is already going on: ${start.runId}`);
      const run = await start.done;
      return { ...run, results: await engine.getResults(run.id) };
    },
    async close() {
      await server?.shutdown();
      await booted.close();
      await zohoSim.close();
      await xeroSim.close();
    },
  };
}

/** n eligible purchase orders with ids counting up from a fixed 19-digit base. */
export function makeOrders(
  n: number,
  { seed = 1, vendors, overrides = {} }: {
    seed?: number;
    vendors?: { id: string; name: string }[];
    overrides?: Record<string, unknown>;
  } = {},
): Record<string, unknown>[] {
  const rand = seededRandom(seed);
  return Array.from(
    { length: n },
    (_, i) =>
      generatePurchaseOrder(rand, { PO_Number: `PO-${1001 + i}`, ...overrides }, {
        id: String(5876543000001000000n + BigInt(i)),
        vendors,
      }),
  );
}

export type Stack = Awaited<ReturnType<typeof startStack>>;

/** The whole stack for one test, closed whatever the test does. */
export async function withStack(opts: StackOptions, fn: (s: Stack) => Promise<void>) {
  const s = await startStack(opts);
  try {
    await fn(s);
  } finally {
    await s.close();
  }
}

/** The bills in the Xero simulator that link back to one purchase order. */
export const billsOf = (s: Stack, id: string) =>
  s.xeroSim.invoices().filter((i) => String(i.Url ?? "").endsWith(`/${id}`));

/** Bills in the Xero simulator per purchase order id (from the bill's Url). */
export function billsByPo(s: Stack): Map<string, number> {
  const out = new Map<string, number>();
  for (const inv of s.xeroSim.invoices()) {
    const id = String(inv.Url ?? "").split("/").pop() ?? "";
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

/** The admin connects Zoho again on the connections page (the OAuth round trip, no browser). */
export async function reconnectZoho(s: Stack) {
  const redirect = "http://127.0.0.1:8000/oauth/zoho/callback";
  const res = await fetch(s.ctx.zoho.authorizeUrl("runs", redirect), { redirect: "manual" });
  await res.body?.cancel();
  await s.ctx.zoho.exchangeCode(
    new URL(res.headers.get("location")!).searchParams.get("code")!,
    redirect,
  );
}
