/**
 * Shared machinery of the reliability suite: the per-file tally and its summary line, console
 * capture (so logs can be scanned for secrets), the app as a subprocess (for kills and for several
 * processes on one KV file), and "run until done" loops. Nothing here mocks our own code.
 */
import type { BootOverrides } from "../../boot.ts";
import { SettingsSchema } from "../../lib/mapping/mod.ts";
import { createSecrets } from "../../lib/secrets.ts";
import { holder } from "../../lib/store/locks.ts";
import { ORG_CURRENCIES, ORG_SETTINGS, ORG_TAX_RATES } from "../../sandbox/demo_org.ts";
import { startXeroSim, type XeroSim, type XeroSimOptions } from "../../sandbox/xero.ts";
import { startZohoSim, type ZohoSim, type ZohoSimOptions } from "../../sandbox/zoho.ts";
import { simEnv, TEST_ENV } from "../helpers.ts";
import { listAll } from "../../lib/store/kv.ts";
import { keys } from "../../lib/store/keys.ts";
import type { Run } from "../../lib/sync/types.ts";

// ---- tally and summary -------------------------------------------------------------------------

export interface Tally {
  faults: number;
  kills: number;
  records: number;
  duplicates: number;
  lost: number;
}

export const newTally = (): Tally => ({ faults: 0, kills: 0, records: 0, duplicates: 0, lost: 0 });

/** The one line each file prints at its end (CI logs show it; the issue note quotes them). */
export function printSummary(file: string, t: Tally, extra = ""): void {
  const line = `[reliability] ${file}: faults injected=${t.faults}, kill points=${t.kills}, ` +
    `records checked=${t.records}, duplicates found=${t.duplicates}, records lost=${t.lost}` +
    (extra ? `, ${extra}` : "");
  originalConsole.log(line);
}

// ---- console capture ---------------------------------------------------------------------------

const METHODS = ["log", "info", "warn", "error", "debug"] as const;
type Method = (typeof METHODS)[number];
const originalConsole: Record<Method, (...args: unknown[]) => void> = Object.fromEntries(
  METHODS.map((m) => [m, console[m].bind(console)]),
) as Record<Method, (...args: unknown[]) => void>;

/**
 * Records every console line written while active (for the secret scan). Lines are still shown,
 * except the Xero simulator's note about connections it drops on purpose.
 */
export function captureConsole(): { lines: string[]; restore(): void } {
  const lines: string[] = [];
  for (const m of METHODS) {
    console[m] = (...args: unknown[]) => {
      const text = args.map((a) => typeof a === "string" ? a : Deno.inspect(a)).join(" ");
      lines.push(text);
      if (!/xero-sim: connection dropped|connection dropped by simulator/.test(text)) {
        originalConsole[m](...args);
      }
    };
  }
  return {
    lines,
    restore() {
      for (const m of METHODS) console[m] = originalConsole[m];
    },
  };
}

// ---- secrets -----------------------------------------------------------------------------------

/** Where each secret was found in clear text ("" when nowhere). */
export function findSecrets(
  haystacks: Array<{ where: string; text: string }>,
  secrets: Array<{ name: string; value: string | undefined }>,
): string[] {
  const found: string[] = [];
  for (const s of secrets) {
    if (!s.value || s.value.length < 8) continue;
    for (const h of haystacks) {
      if (h.text.includes(s.value)) found.push(`${s.name} in ${h.where}`);
    }
  }
  return found;
}

/** Every KV entry as text, for the secret scan. */
export async function kvTexts(kv: Deno.Kv): Promise<Array<{ where: string; text: string }>> {
  const out: Array<{ where: string; text: string }> = [];
  for await (const e of kv.list({ prefix: [] })) {
    // Counters (rate limits) are Deno.KvU64, whose bigint JSON cannot write.
    const text = JSON.stringify(e.value, (_k, v) => typeof v === "bigint" ? String(v) : v);
    out.push({ where: `KV ${JSON.stringify(e.key)}`, text: text ?? "" });
  }
  return out;
}

// ---- the app as a subprocess -------------------------------------------------------------------

const ENTRY = new URL("./app_process.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

export interface AppProcess {
  url: string;
  pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGKILL (default) or SIGTERM; resolves once the process is gone and its pipes are drained. */
  stop(signal?: "SIGKILL" | "SIGTERM"): Promise<void>;
}

/**
 * Starts tests/reliability/app_process.ts: the real boot() with `env` as its environment (the
 * simulators' URLs, DENO_KV_PATH = a file) and `overrides` passed as JSON. Resolves once it listens.
 */
export async function spawnApp(
  env: Record<string, string>,
  overrides: BootOverrides = {},
): Promise<AppProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, ENTRY],
    env: { ...env, NO_COLOR: "1", RELIABILITY_OVERRIDES: JSON.stringify(overrides) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const chunks: string[] = [];
  let resolveUrl: (url: string) => void;
  const listening = new Promise<string>((r) => (resolveUrl = r));
  const pump = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    const decoder = new TextDecoder();
    for await (const bytes of stream) {
      chunks.push(decoder.decode(bytes, { stream: true }));
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(chunks.join(""));
      if (m) resolveUrl(m[1]);
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status;
  let stopped = false;
  const stop = async (signal: "SIGKILL" | "SIGTERM" = "SIGKILL") => {
    if (!stopped) {
      stopped = true;
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    }
    await exited;
    await pumps;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const url = await Promise.race([
    listening,
    exited.then((s) => {
      throw new Error(`app process exited (${s.code}) before listening:\n${chunks.join("")}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("app process did not listen within 30 s")), 30_000);
    }),
  ]).catch(async (err) => {
    await stop();
    throw err;
  }).finally(() => clearTimeout(timer));
  return { url, pid: child.pid, output: () => chunks.join(""), stop };
}

// ---- runs --------------------------------------------------------------------------------------

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retry set, webhook queue and write-ahead intents: all empty when nothing is pending. */
export async function pending(kv: Deno.Kv) {
  const [retry, queue, intents] = await Promise.all([
    listAll(kv, keys.retryPrefix("Purchase_Orders")),
    listAll(kv, keys.queuePrefix("Purchase_Orders")),
    listAll(kv, keys.billIntentPrefix()),
  ]);
  return { retry: retry.length, queue: queue.length, intents: intents.length };
}

/** A run is "done" when it completed without failures and nothing waits for another run. */
export async function isDone(kv: Deno.Kv, run: Run): Promise<boolean> {
  if (run.status !== "completed" || run.counts.failed > 0) return false;
  const p = await pending(kv);
  return p.retry === 0 && p.queue === 0;
}

/** Every run in KV, oldest first. */
export async function allRuns(kv: Deno.Kv): Promise<Run[]> {
  return (await listAll<Run>(kv, keys.runPrefix())).map((e) => e.value);
}

/** Runs never overlap in time (one run at a time per module), and none is left "running". */
export function overlappingRuns(runs: Run[]): string[] {
  const problems: string[] = [];
  const sorted = [...runs].sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const end = prev.finishedAt ?? prev.heartbeatAt;
    if (sorted[i].startedAt < end) {
      problems.push(
        `run ${sorted[i].id} started at ${sorted[i].startedAt} before ${prev.id} ended`,
      );
    }
  }
  return problems;
}

// ---- the secrets of a stack --------------------------------------------------------------------

/**
 * Every secret the app holds: the configured ones, and the tokens the simulators issued (read
 * back from KV by decrypting them, so the scan also proves they are stored encrypted).
 */
export async function secretsOf(
  kv: Deno.Kv,
  env: Record<string, string | undefined>,
  extra: Record<string, string | undefined> = {},
): Promise<Array<{ name: string; value: string | undefined }>> {
  const out: Array<{ name: string; value: string | undefined }> = [
    "ADMIN_PASSWORD",
    "SYNC_API_TOKEN",
    "ENCRYPTION_KEY",
    "ZOHO_CLIENT_SECRET",
    "ZOHO_REFRESH_TOKEN",
    "XERO_CLIENT_SECRET",
    "XERO_REFRESH_TOKEN",
  ].map((name) => ({ name, value: env[name] }));
  for (const [name, value] of Object.entries(extra)) out.push({ name, value });
  const secrets = await createSecrets(env.ENCRYPTION_KEY!);
  const open = async (name: string, sealed: unknown, key: Deno.KvKey) => {
    if (typeof sealed !== "string") return;
    if (!/^v[12]\./.test(sealed)) {
      out.push({ name: `${name} (NOT ENCRYPTED)`, value: sealed });
      return;
    }
    out.push({ name, value: await secrets.decrypt(sealed, key) });
  };
  const [zoho, zohoAccess, xero] = await kv.getMany<Record<string, unknown>[]>([
    keys.zohoToken(),
    keys.zohoAccessToken(),
    keys.xeroToken(),
  ]);
  await open("stored Zoho refresh token", zoho.value?.refreshToken, keys.zohoToken());
  await open("stored Zoho access token", zohoAccess.value?.accessToken, keys.zohoAccessToken());
  await open("stored Xero refresh token", xero.value?.refreshToken, keys.xeroToken());
  await open("stored Xero access token", xero.value?.accessToken, keys.xeroToken());
  return out;
}

// ---- simulators + a KV file, for app processes -------------------------------------------------

export interface Shared {
  zohoSim: ZohoSim;
  xeroSim: XeroSim;
  dir: string;
  kvPath: string;
  /** The environment an app process gets (the configuration contract of DESIGN §4). */
  env: Record<string, string>;
  /** A KV handle in the test process, on the same file. */
  kv: Deno.Kv;
  close(): Promise<void>;
}

/** Both simulators, a fresh KV file with the org's settings, and the env pointing at them. */
export async function sharedWorld(
  records: Record<string, unknown>[],
  opts: { zoho?: ZohoSimOptions; xero?: XeroSimOptions } = {},
): Promise<Shared> {
  const zohoSim = await startZohoSim({ records, ...opts.zoho });
  const xeroSim = await startXeroSim({
    taxRates: ORG_TAX_RATES,
    currencies: ORG_CURRENCIES,
    ...opts.xero,
  });
  const dir = await Deno.makeTempDir({ prefix: "reliability-" });
  const kvPath = `${dir}/kv.sqlite3`;
  const kv = await Deno.openKv(kvPath);
  await kv.set(keys.settings(), SettingsSchema.parse(ORG_SETTINGS));
  const env: Record<string, string> = { ...simEnv(zohoSim, xeroSim), DENO_KV_PATH: kvPath };
  return {
    zohoSim,
    xeroSim,
    dir,
    kvPath,
    env,
    kv,
    async close() {
      kv.close();
      await zohoSim.close();
      await xeroSim.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Calls the app's API with the SYNC_API_TOKEN (POST when there is a body). */
export async function api(
  url: string,
  path: string,
  body?: unknown,
  method = body === undefined ? "GET" : "POST",
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TEST_ENV.SYNC_API_TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

/** Waits (bounded) until no run holds the run lease. */
export async function leaseFree(kv: Deno.Kv, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (await holder(kv, keys.runLease("Purchase_Orders"))) {
    if (Date.now() > until) throw new Error("the run lease was never released");
    await sleep(25);
  }
}

/** Waits (bounded) until the run is no longer "running"; returns it. */
export async function runEnded(kv: Deno.Kv, runId: string, timeoutMs = 60_000): Promise<Run> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const run = (await kv.get<Run>(keys.run(runId))).value;
    if (run && run.status !== "running") return run;
    if (Date.now() > until) throw new Error(`run ${runId} still running after ${timeoutMs} ms`);
    await sleep(25);
  }
}
