/**
 * The app as its own process, for the reliability suite: the production composition (config from
 * the environment → boot()) served on a random loopback port, announced as "listening on <url>".
 * The simulators' URLs and DENO_KV_PATH (a file shared with other processes) come from the
 * environment; RELIABILITY_OVERRIDES (JSON) shortens timeouts and leases so a killed process is
 * recovered from in seconds rather than minutes, and may tick the resume cron faster. Test-only: production starts from main.ts.
 */
import { z } from "zod";
import { boot } from "../../boot.ts";
import { ConfigError, loadConfig, processEnv } from "../../lib/config.ts";

const ms = z.number().int().positive().optional();
const OverridesSchema = z.object({
  zoho: z.object({
    retry: z.object({ attempts: ms, baseDelayMs: ms, maxDelayMs: ms }).optional(),
    timeoutMs: ms,
  }).optional(),
  xero: z.object({
    retry: z.object({ attempts: ms, maxWaitMs: ms }).optional(),
    requestTimeoutMs: ms,
    limits: z.object({ concurrent: ms, perMinute: ms, windowMs: ms }).optional(),
  }).optional(),
  engine: z.object({
    batchSize: ms,
    lockWaitMs: ms,
    runLeaseMs: ms,
    heartbeatMs: ms,
    recordLockMs: ms,
    resumeCheckMs: z.number().int().min(0).optional(),
  }).optional(),
  // Stands in for main.ts's per-minute resume Deno.cron (which cannot tick faster than a minute):
  // the same call, every this many ms.
  resumeCronMs: ms,
}).strict();

let config;
let overrides;
try {
  config = loadConfig(processEnv());
  overrides = OverridesSchema.parse(JSON.parse(Deno.env.get("RELIABILITY_OVERRIDES") || "{}"));
} catch (err) {
  console.error(
    err instanceof ConfigError ? err.message : `bad RELIABILITY_OVERRIDES: ${String(err)}`,
  );
  Deno.exit(1);
}

// The app loads xero-node on its first Xero call; load it now, so a restarted instance is not
// slower than the one it replaces at the moment the tests aim their kills.
await import("xero-node");
const { resumeCronMs, ...bootOverrides } = overrides;
const { app, ctx } = await boot(config, bootOverrides);
if (resumeCronMs) setInterval(() => ctx.sync.resumeStaleRuns().catch(() => {}), resumeCronMs);
Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, app.fetch);
