/**
 * `deno task bench`: syncs N purchase orders through the real app code (boot() + a sync run)
 * against the simulators with realistic per-call latency and Xero's limits, then does the same job
 * the way a general automation tool does (bench/naive.ts), and prints both side by side.
 *
 *   deno task bench                     N = 1,000 and 10,000
 *   deno task bench -- --n 1000         one size (repeat --n, or --n 1000,5000)
 *   options: --vendors 200  --app-scale 2  --naive-scale 100  --no-naive
 *            --zoho-latency 300  --zoho-concurrency 10  --bulk both|on|off
 *            --xero-latency 150  --seed 7  --out bench-results.json
 *            --cold-rounds 9   (cold start against a bare Deno.serve after the sizes; 0: none)
 *
 * Zoho answers in 300 ms and enforces its concurrency limits (10 per org, the Standard edition's,
 * and 10 for COQL): a call over them gets 429. `--bulk`: the app runs with Zoho offering line
 * items in bulk (COQL), with Zoho refusing it (every order by the single-record GET), or both.
 *   deno task bench -- --telemetry-compare --n 1000
 *                                       the app alone, once with Deno's OpenTelemetry off and once
 *                                       on (exporting to a local OTLP sink): calls and CPU per order
 *
 * Time model: the simulators run a clock `scale` times faster than real time (their latency and
 * Xero's minute window both shrink), and the app's Xero limiter gets the matching window. "Xero
 * minutes" = real wall time × scale: what the job takes against the real services. CPU time is
 * not scaled, so a large scale overstates a CPU-heavy pipeline. The app runs at 2× by default
 * (10,000 orders: 3.47 Xero minutes measured at 1×, 3.56 at 2×); the naive pipeline, which
 * spends its time waiting on the limit, at 100× (otherwise 10,000 orders take 5.6 real hours).
 */
import { z } from "zod";
import { type ColdStart, coldStartLines, measureColdStart } from "./bench/cold.ts";
import { bulkTable, naiveFloor, passFloor, rateFloor, table } from "./bench/report.ts";
import { type PassResult, runPass } from "./bench/run.ts";

const ROOT = new URL("./", import.meta.url);

const OptionsSchema = z.object({
  n: z.array(z.number().int().min(1).max(100_000)).min(1),
  vendors: z.number().int().min(1).max(5000),
  appScale: z.number().min(1).max(1000),
  naiveScale: z.number().min(1).max(1000),
  naive: z.boolean(),
  telemetryCompare: z.boolean(),
  /** Rounds of the cold-start measure after the sizes (0: none). */
  coldRounds: z.number().int().min(0).max(200),
  zohoLatency: z.number().min(0).max(10_000),
  zohoConcurrency: z.number().int().min(1).max(25),
  bulk: z.enum(["both", "on", "off"]),
  xeroLatency: z.number().min(0).max(10_000),
  seed: z.number().int(),
  out: z.string().min(1),
});
type Options = z.infer<typeof OptionsSchema>;

function parseArgs(args: string[]): Options {
  const raw: Record<string, unknown> = {
    n: [] as number[],
    vendors: 200,
    appScale: 2,
    naiveScale: 100,
    naive: true,
    telemetryCompare: false,
    coldRounds: 9,
    zohoLatency: 300,
    zohoConcurrency: 10,
    bulk: "both",
    xeroLatency: 150,
    seed: 7,
    out: "bench-results.json",
  };
  const names: Record<string, string> = {
    "--n": "n",
    "--vendors": "vendors",
    "--app-scale": "appScale",
    "--naive-scale": "naiveScale",
    "--zoho-latency": "zohoLatency",
    "--zoho-concurrency": "zohoConcurrency",
    "--bulk": "bulk",
    "--xero-latency": "xeroLatency",
    "--seed": "seed",
    "--cold-rounds": "coldRounds",
    "--out": "out",
  };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    if (flag === "--") continue;
    if (flag === "--no-naive") {
      raw.naive = false;
      continue;
    }
    if (flag === "--telemetry-compare") {
      raw.telemetryCompare = true;
      continue;
    }
    const key = names[flag];
    if (!key) throw new Error(`unknown option ${flag}`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (key === "out" || key === "bulk") raw[key] = value;
    else if (key === "n") {
      (raw.n as number[]).push(...value.split(",").map((s) => Number(s.replaceAll("_", ""))));
    } else raw[key] = Number(value);
  }
  if (!(raw.n as number[]).length) raw.n = [1000, 10_000];
  const parsed = OptionsSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      parsed.error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join("; "),
    );
  }
  return parsed.data;
}

/** boot() serves the built page assets: build them if this checkout has none yet. */
async function ensureAssets(): Promise<void> {
  try {
    await Deno.stat(new URL("static/build/manifest.json", ROOT));
    return;
  } catch { /* build below */ }
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("scripts/build.ts", ROOT).pathname],
    cwd: ROOT.pathname,
  }).output();
  if (code !== 0) throw new Error("deno task build failed");
}

/**
 * `--telemetry-compare`: OTEL_DENO is read when Deno starts, so each side is this bench in a child
 * process: the app alone (no naive pass), with OpenTelemetry off, then on and exporting over
 * OTLP/HTTP JSON to a sink here that reads and drops everything. Same seed, same calls expected.
 */
async function compareTelemetry(o: Options) {
  const exported: Record<string, number> = {};
  const sink = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    exported[path] = (exported[path] ?? 0) + (await req.arrayBuffer()).byteLength;
    return Response.json({});
  });
  const sinkUrl = `http://127.0.0.1:${(sink.addr as Deno.NetAddr).port}`;
  const runs: Array<Record<string, unknown>> = [];
  try {
    for (const n of o.n) {
      const side: Record<string, PassResult> = {};
      for (const k of Object.keys(exported)) delete exported[k];
      for (const mode of ["off", "on"] as const) {
        const out = await Deno.makeTempFile({ prefix: "bench-otel-", suffix: ".json" });
        const env: Record<string, string> = mode === "on"
          ? {
            OTEL_DENO: "true",
            OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
            OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl,
          }
          : { OTEL_DENO: "false" };
        console.log(`\n${n.toLocaleString("en-US")}: this app, telemetry ${mode}...`);
        const { code } = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("bench.ts", ROOT).pathname,
            ...["--n", String(n), "--no-naive", "--vendors", String(o.vendors)],
            ...["--app-scale", String(o.appScale), "--seed", String(o.seed)],
            ...["--zoho-latency", String(o.zohoLatency), "--xero-latency", String(o.xeroLatency)],
            ...["--out", out],
          ],
          cwd: ROOT.pathname,
          env,
        }).spawn().status;
        if (code !== 0) throw new Error(`the telemetry-${mode} pass failed`);
        side[mode] = JSON.parse(await Deno.readTextFile(out)).runs[0].app;
        await Deno.remove(out);
      }
      const { off, on } = side;
      const sameCalls = off.zohoTotal === on.zohoTotal && off.xeroTotal === on.xeroTotal;
      const cpuRatio = on.cpuMsPerOrder / off.cpuMsPerOrder;
      console.log(
        [
          `\n== ${n.toLocaleString("en-US")} purchase orders: telemetry off / on ==`,
          `Zoho API calls      ${off.zohoTotal} / ${on.zohoTotal}`,
          `Xero API calls      ${off.xeroTotal} / ${on.xeroTotal}`,
          `CPU ms per order    ${off.cpuMsPerOrder.toFixed(2)} / ${on.cpuMsPerOrder.toFixed(2)} ` +
          `(${((cpuRatio - 1) * 100).toFixed(1)} %)`,
          `wall time, s        ${(off.wallMs / 1000).toFixed(1)} / ${
            (on.wallMs / 1000).toFixed(1)
          }`,
          `peak RSS, MB        ${off.peakRssMb.toFixed(0)} / ${on.peakRssMb.toFixed(0)}`,
          `exported, bytes     ${JSON.stringify(exported)}`,
          sameCalls ? "calls unchanged" : "WARNING: the calls differ",
        ].join("\n"),
      );
      runs.push({
        n,
        off,
        on,
        sameCalls,
        cpuOverhead: cpuRatio - 1,
        exportedBytes: { ...exported },
      });
    }
  } finally {
    await sink.shutdown();
  }
  const out = new URL(o.out, `file://${Deno.cwd()}/`);
  await Deno.writeTextFile(out, JSON.stringify({ telemetryCompare: runs }, null, 2) + "\n");
  console.log(`\nResults written to ${out.pathname}`);
}

async function main() {
  const o = parseArgs(Deno.args);
  await ensureAssets();
  if (o.telemetryCompare) return await compareTelemetry(o);
  const latency = { zoho: o.zohoLatency, xero: o.xeroLatency };
  const started = new Date().toISOString();
  const runs: Array<Record<string, unknown>> = [];
  const tables: string[] = [];
  console.log(
    `Bench: ${o.n.map((n) => n.toLocaleString("en-US")).join(" and ")} purchase orders; ` +
      `app at ${o.appScale}× clock, naive at ${o.naiveScale}×. ${navigator.hardwareConcurrency} CPUs, ` +
      `Deno ${Deno.version.deno}.`,
  );
  for (const n of o.n) {
    const pass = (scale: number, bulk = true) => ({
      n,
      vendors: o.vendors,
      seed: o.seed,
      clockScale: scale,
      zohoLatencyMs: o.zohoLatency,
      xeroLatencyMs: o.xeroLatency,
      zohoConcurrency: o.zohoConcurrency,
      bulk,
    });
    const modes = o.bulk === "both" ? [true, false] : [o.bulk === "on"];
    const apps: PassResult[] = [];
    for (const bulk of modes) {
      console.log(
        `\n${n.toLocaleString("en-US")}: this app, line items ${bulk ? "in bulk" : "by GET"}...`,
      );
      const p = await runPass("app", pass(o.appScale, bulk));
      if (p.bills !== n) console.warn(`  warning: the app left ${p.bills} bills, not ${n}`);
      apps.push(p);
    }
    const app = apps[0];
    let naive: PassResult | undefined;
    if (o.naive) {
      console.log(`${n.toLocaleString("en-US")}: naive per-record pipeline...`);
      naive = await runPass("naive", pass(o.naiveScale));
      if (naive.bills !== n) console.warn(`  warning: naive left ${naive.bills} bills, not ${n}`);
    }
    const zohoLimits = { latencyMs: o.zohoLatency, concurrency: o.zohoConcurrency };
    const b = bulkTable(n, o.vendors, apps, zohoLimits, o.xeroLatency);
    const t = table(n, o.vendors, app, naive, latency);
    tables.push(b, t);
    console.log(`\n${b}\n\n${t}`);
    runs.push({
      n,
      vendors: o.vendors,
      app,
      apps: apps.map((p) => ({ ...p, floor: passFloor(p, o.vendors, zohoLimits) })),
      ...(naive ? { naive } : {}),
      xeroRateFloor: rateFloor(n, o.vendors),
      naiveRateFloor: naiveFloor(n, o.vendors),
      ratios: naive
        ? {
          xeroCalls: naive.xeroTotal / app.xeroTotal,
          zohoCalls: naive.zohoTotal / app.zohoTotal,
          xeroMinutes: naive.xeroMinutes / app.xeroMinutes,
          cpuPerOrder: naive.cpuMsPerOrder / app.cpuMsPerOrder,
        }
        : undefined,
    });
  }
  let coldStart: ColdStart | undefined;
  if (o.coldRounds) {
    console.log(`\nCold start: main.ts's first /health against a bare Deno.serve...`);
    coldStart = await measureColdStart(o.coldRounds);
    for (const line of coldStartLines(coldStart)) console.log(`  ${line}`);
  }
  const result = {
    startedAt: started,
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: navigator.hardwareConcurrency,
      os: Deno.build.os,
      arch: Deno.build.arch,
      deno: Deno.version.deno,
    },
    options: o,
    latencyMs: latency,
    xeroLimits: { concurrent: 5, perMinute: 60 },
    runs,
    ...(coldStart ? { coldStart } : {}),
  };
  const out = new URL(o.out, `file://${Deno.cwd()}/`);
  await Deno.writeTextFile(out, JSON.stringify(result, null, 2) + "\n");
  console.log(`\nResults written to ${out.pathname}`);
}

try {
  await main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  Deno.exit(1);
}
