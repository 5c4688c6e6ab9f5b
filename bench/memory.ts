/**
 * `deno task bench:memory`: peak RSS of one sync run per size, each size in a fresh process (RSS
 * seldom shrinks, so sizes measured one after another in one process would carry each other's
 * peaks). The app pass is bench/run.ts's (boot() + one run "since the last sync" against the
 * simulators in their own process), with the Zoho and Xero sides at the bench's defaults.
 *
 *   deno task bench:memory                       sizes 1,000, 10,000 and 50,000
 *   deno task bench:memory -- --n 1000,100000    other sizes;  --app-scale 20 (clock scale)
 *   --retained       also forces a full GC every second and reports the most the JS heap held
 *                    after one: what the run keeps, without the garbage V8 lets pile up
 *   --heap-cap 128   runs the app with V8's old space capped at 128 MB (--max-old-space-size):
 *                    the run must finish within it (an instance with less memory GCs sooner)
 *
 * Target (issue 15): peak RSS at 50,000 orders ≤ 1.3× the peak at 1,000; 100,000 under 256 MB.
 * Peak RSS of an uncapped process is mostly V8's choice of when to collect (it lets the heap grow
 * while allocation is fast); --retained and --heap-cap show what a run actually needs.
 */
import { runPass } from "./run.ts";

const CHILD = "--child";

async function child(n: number, scale: number, retained: boolean) {
  let keptMb = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  const probe = retained && gc
    ? setInterval(() => {
      gc();
      keptMb = Math.max(keptMb, Deno.memoryUsage().heapUsed / 1048576);
    }, 1000)
    : undefined;
  const pass = await runPass("app", {
    n,
    vendors: 200,
    seed: 7,
    clockScale: scale,
    zohoLatencyMs: 80,
    xeroLatencyMs: 150,
  });
  clearInterval(probe);
  console.log(JSON.stringify({
    ...(probe ? { retainedHeapMb: keptMb } : {}),
    n,
    bills: pass.bills,
    status: pass.detail.status,
    wallS: pass.wallMs / 1000,
    peakRssMb: pass.peakRssMb,
    peakHeapMb: pass.peakHeapMb,
    peakAnonMb: pass.peakAnonMb,
    peakFileMb: pass.peakFileMb,
    peakExternalMb: pass.peakExternalMb,
    cpuMsPerOrder: pass.cpuMsPerOrder,
  }));
}

function option(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1] : fallback;
}

async function main() {
  const scale = Number(option("--app-scale", "20"));
  const retained = Deno.args.includes("--retained");
  const cap = Number(option("--heap-cap", "0"));
  if (Deno.args[0] === CHILD) return await child(Number(Deno.args[1]), scale, retained);
  const sizes = option("--n", "1000,10000,50000").split(",").map((s) =>
    Number(s.replaceAll("_", ""))
  );
  if (
    !sizes.every((n) => Number.isInteger(n) && n >= 1 && n <= 200_000) || !(scale >= 1) ||
    !(cap >= 0)
  ) {
    throw new Error("--n takes sizes from 1 to 200,000, --app-scale a number ≥ 1, --heap-cap MB");
  }
  const v8 = [
    ...(retained ? ["--expose-gc"] : []),
    ...(cap ? [`--max-old-space-size=${cap}`] : []),
  ];
  const rows: Array<Record<string, number | string>> = [];
  for (const n of sizes) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...(v8.length ? [`--v8-flags=${v8.join(",")}`] : []),
        import.meta.filename!,
        CHILD,
        String(n),
        "--app-scale",
        String(scale),
        ...(retained ? ["--retained"] : []),
      ],
      stderr: "inherit",
    }).output();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    if (out.code !== 0 || !line.startsWith("{")) throw new Error(`the ${n} pass failed`);
    const row = JSON.parse(line);
    rows.push(row);
    console.log(
      `${String(n).padStart(7)} orders: peak RSS ${row.peakRssMb.toFixed(0)} MB (anonymous ${
        row.peakAnonMb.toFixed(0)
      }, file-backed ${row.peakFileMb.toFixed(0)}), heap ${
        row.peakHeapMb.toFixed(0)
      } MB, external ${row.peakExternalMb.toFixed(0)} MB${
        row.retainedHeapMb ? `, heap kept ${row.retainedHeapMb.toFixed(0)} MB` : ""
      }, ${row.bills} bills, ${row.wallS.toFixed(1)} s (${row.status})${
        cap ? `, old space capped at ${cap} MB` : ""
      }`,
    );
  }
  const base = rows[0];
  for (const r of rows.slice(1)) {
    const x = (k: string) => (Number(r[k]) / Number(base[k])).toFixed(2);
    console.log(
      `${r.n} vs ${base.n}: ${x("peakRssMb")}× peak RSS, ${x("peakAnonMb")}× anonymous, ${
        x("peakHeapMb")
      }× heap`,
    );
  }
}

try {
  await main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  Deno.exit(1);
}
