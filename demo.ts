/**
 * `deno task demo`: the whole job on one machine with no accounts. Starts the Zoho CRM and Xero
 * simulators seeded with a realistic organisation (sandbox/demo_seed.ts), then the production app
 * (boot.ts, the same code main.ts runs) pointed at them, already connected, with a fresh local KV.
 *
 * Environment (all optional): PORT (8000), HOST (127.0.0.1), APP_BASE_URL, ADMIN_PASSWORD,
 * SYNC_API_TOKEN, ENCRYPTION_KEY, AUTO_SYNC_CRON (off); ZOHO_SIM_PORT (8101), XERO_SIM_PORT (8102);
 * DEMO_KV_PATH (.kv/demo.sqlite, recreated on every start). DENO_KV_PATH is deliberately ignored so
 * the demo can never touch a real store, and the Zoho/Xero variables always point at the simulators.
 */
import { AUTO_SYNC_TICK, autoSyncTick } from "./lib/sync/auto.ts";
import { boot } from "./boot.ts";
import { ConfigError, DEMO_DEFAULTS, loadConfig, processEnv } from "./lib/config.ts";
import { demoSeed } from "./sandbox/demo_seed.ts";
import { startXeroSim, type XeroSim } from "./sandbox/xero.ts";
import { startZohoSim, type ZohoSim } from "./sandbox/zoho.ts";

const ROOT = new URL("./", import.meta.url);
const DEFAULT_KV = new URL(".kv/demo.sqlite", ROOT).pathname;

/** A port from the environment, or the friendly default with a random one when it is taken. */
interface PortChoice {
  port: number;
  /** Set by the user: a busy port is an error, not a fallback. */
  explicit: boolean;
}

function portFrom(name: string, fallback: number): PortChoice {
  const raw = Deno.env.get(name)?.trim();
  if (!raw) return { port: fallback, explicit: false };
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError([`${name}: must be a port number (0-65535)`]);
  }
  return { port, explicit: true };
}

/** Starts a server on the chosen port, or on a random one if the default is busy. */
async function onFreePort<T>(choice: PortChoice, start: (port: number) => Promise<T>): Promise<T> {
  try {
    return await start(choice.port);
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse) || choice.explicit) throw err;
    return await start(0);
  }
}

/** Finds a free port for the app before the config is built (APP_BASE_URL is derived from it). */
function freeAppPort(choice: PortChoice, hostname: string): number {
  try {
    const probe = Deno.listen({ hostname, port: choice.port });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    return port;
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse) || choice.explicit) throw err;
    const probe = Deno.listen({ hostname, port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    return port;
  }
}

/** The islands bundle is git-ignored: build it the first time the demo runs. */
async function ensureAssets(): Promise<void> {
  try {
    await Deno.stat(new URL("static/build/manifest.json", ROOT));
    return;
  } catch {
    console.log("Building the page assets (first run)...");
  }
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("scripts/build.ts", ROOT).pathname],
    cwd: ROOT.pathname,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error("deno task build failed");
}

/** A fresh KV file each start: the demo always begins with nothing synced. */
async function freshKv(path: string): Promise<void> {
  if (path === ":memory:") return;
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    await Deno.remove(path + suffix).catch(() => {});
  }
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
}

const userSet = (name: string) => !!Deno.env.get(name);

async function main() {
  const host = Deno.env.get("HOST")?.trim() || "127.0.0.1";
  const appPort = freeAppPort(portFrom("PORT", 8000), host);
  // Links and OAuth redirects use the address the banner prints (a wildcard host: localhost).
  const wildcard = host === "0.0.0.0" || host === "::";
  const appUrl = Deno.env.get("APP_BASE_URL")?.trim().replace(/\/+$/, "") ||
    `http://${wildcard ? "localhost" : host.includes(":") ? `[${host}]` : host}:${appPort}`;
  const seed = demoSeed();

  const zohoSim: ZohoSim = await onFreePort(
    portFrom("ZOHO_SIM_PORT", 8101),
    (port) => startZohoSim({ port, records: seed.records, utcOffset: "+05:30" }),
  );
  const xeroSim: XeroSim = await onFreePort(
    portFrom("XERO_SIM_PORT", 8102),
    (port) => startXeroSim({ port, ...seed.xero }),
  );

  const kvPath = Deno.env.get("DEMO_KV_PATH")?.trim() || DEFAULT_KV;
  await freshKv(kvPath);
  await ensureAssets();

  // The simulated Xero signs its webhooks with this key (any value works: both ends are ours).
  const webhookKey = Deno.env.get("XERO_WEBHOOK_KEY")?.trim() || crypto.randomUUID();
  const config = loadConfig({
    ...processEnv(),
    XERO_WEBHOOK_KEY: webhookKey,
    HOST: host,
    PORT: String(appPort),
    APP_BASE_URL: appUrl,
    DENO_KV_PATH: kvPath,
    AUTO_SYNC_CRON: Deno.env.get("AUTO_SYNC_CRON") || "off",
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
    XERO_TENANT_ID: xeroSim.tenantId,
  }, { demo: true });

  const booted = await boot(config);
  const { ctx } = booted;
  const saved = await ctx.sync.saveSettings(seed.settings);
  if (!saved.ok) throw new Error(`demo settings rejected: ${saved.errors.join("; ")}`);
  // Make both connections now, so the pages show them connected before the first sync.
  await ctx.xero.tenant();
  await ctx.zoho.fieldNames();

  if (config.AUTO_SYNC_CRON !== "off") {
    // The same tick as main.ts: the sync page's auto-sync settings decide.
    Deno.cron("zoho-xero-auto-sync", AUTO_SYNC_TICK, async () => {
      const start = await autoSyncTick(ctx.kv, ctx.sync);
      if (start.started) await start.done;
    });
  }

  const server = Deno.serve(
    { hostname: config.HOST, port: config.PORT, onListen: () => {} },
    booted.app.fetch,
  );
  // Xero → Zoho at once: the simulated Xero's webhook (handshake first) points at this app.
  const local = `http://${
    wildcard ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host
  }:${config.PORT}`;
  const webhook = await xeroSim.configureWebhook({
    url: `${local}/api/xero/webhook`,
    key: webhookKey,
  });
  printBanner({
    appUrl,
    config,
    zohoSim,
    xeroSim,
    buttonId: seed.expected.eligible[0].id,
    webhook,
  });

  let stopping = false;
  const stop = async () => {
    if (stopping) Deno.exit(130); // a second Ctrl-C: leave now
    stopping = true;
    console.log("\nStopping the demo...");
    // Each step is bounded: an open browser connection or a sync in progress must not hang the exit.
    const within = (p: Promise<unknown>, ms: number) =>
      Promise.race([p, new Promise((r) => setTimeout(r, ms))]);
    await within(server.shutdown(), 2000);
    // Closing the simulators ends a sync in progress quickly; give it a moment to record that.
    await within(Promise.all([zohoSim.close(), xeroSim.close()]), 2000);
    await within(booted.close(), 3000);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);
}

function printBanner(o: {
  appUrl: string;
  config: ReturnType<typeof loadConfig>;
  zohoSim: ZohoSim;
  xeroSim: XeroSim;
  buttonId: string;
  webhook: boolean;
}) {
  // Demo values are printed so a new user can log in; values the user chose stay unprinted.
  const password = userSet("ADMIN_PASSWORD")
    ? "(the ADMIN_PASSWORD you set)"
    : DEMO_DEFAULTS.ADMIN_PASSWORD;
  const token = userSet("SYNC_API_TOKEN") ? "$SYNC_API_TOKEN" : DEMO_DEFAULTS.SYNC_API_TOKEN;
  const records = o.zohoSim.records.size;
  const lines = [
    "",
    "Zoho CRM → Xero demo is running (simulated Zoho and Xero on this machine, no accounts needed).",
    "",
    `  App:             ${o.appUrl}`,
    `  Password:        ${password}`,
    `  Sync API token:  ${token}`,
    `  Xero (sandbox):  ${o.xeroSim.url}/   the bills in the simulated Xero: approve, pay, void`,
    `  Xero webhook:    ${
      o.webhook ? "on: a bill paid there shows as PAID on its purchase order" : "handshake failed"
    }`,
    `  Zoho (sandbox):  ${o.zohoSim.url}    ${records} purchase orders`,
    `  Auto sync:       ${o.config.AUTO_SYNC_CRON}`,
    "",
    "Log in, press Sync Now, then open the Xero page to see the bills. Or from a shell:",
    "",
    "  # sync every purchase order changed since the last run",
    `  curl -X POST ${o.appUrl}/api/sync-runs -H "Authorization: Bearer ${token}" \\`,
    `    -H "content-type: application/json" -d '{"window":"since_last_sync","mode":"create_and_update"}'`,
    "",
    "  # what the Zoho button does: sync one purchase order now",
    `  curl -X POST ${o.appUrl}/api/purchase-orders/${o.buttonId}/sync -H "Authorization: Bearer ${token}"`,
    "",
    "Press Ctrl-C to stop.",
    "",
  ];
  console.log(lines.join("\n"));
}

try {
  await main();
} catch (err) {
  if (err instanceof ConfigError) console.error(err.message);
  else if (err instanceof Deno.errors.AddrInUse) {
    console.error(`A port the demo needs is taken: ${err.message}`);
  } else console.error(err instanceof Error ? err.message : String(err));
  Deno.exit(1);
}
