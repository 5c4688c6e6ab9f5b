/**
 * `deno task bench:cold`: cold start, side by side in one run. Spawns the production entry
 * (`deno run -A main.ts` with a demo-like environment: a local KV file, no Zoho or Xero to reach)
 * and a bare `Deno.serve` answering 200, alternately, and times each from spawn to its first 200
 * on GET /health. Prints both medians and their ratio.
 *
 *   deno task bench:cold                 9 rounds
 *   deno task bench:cold -- --rounds 21
 *
 * Target (issue 15): the app's first 200 ≤ 3× the bare server's.
 */
const ROOT = new URL("../", import.meta.url).pathname;
const BARE =
  `Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.env.get("PORT")), onListen() {} },
  () => new Response("ok"));
`;
const TIMEOUT_MS = 20_000;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Spawn → first 200 on /health, in ms (asking every 2 ms, both servers alike). */
async function firstOk(args: string[], env: Record<string, string>): Promise<number> {
  const port = freePort();
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited = false;
  child.status.then(() => (exited = true));
  try {
    for (;;) {
      if (exited) throw new Error(`${args.join(" ")} exited before answering:\n${await stderr}`);
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`no 200 within 20 s: ${args}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        await res.body?.cancel();
        if (res.status === 200) return performance.now() - t0;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    if (!exited) child.kill("SIGKILL");
    await child.status;
    await stderr;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const list = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");

export interface ColdStart {
  rounds: number;
  /** Medians, ms from spawn to the first 200 on /health (the app) or / (the bare server). */
  appMs: number;
  bareMs: number;
  /** appMs / bareMs. */
  ratio: number;
  /** Per-round ratios: their median and worst. */
  roundMedian: number;
  roundWorst: number;
  app: number[];
  bare: number[];
}

/** Times main.ts's first /health against a bare Deno.serve, alternately, `rounds` times. */
export async function measureColdStart(rounds = 9): Promise<ColdStart> {
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 200) {
    throw new Error("--rounds takes 1 to 200");
  }
  const dir = await Deno.makeTempDir({ prefix: "bench-cold-" });
  const bareFile = `${dir}/bare.ts`;
  await Deno.writeTextFile(bareFile, BARE);
  const app: number[] = [];
  const bare: number[] = [];
  try {
    // One of each first, unmeasured: both then find Deno's caches warm, as on a deploy.
    for (let r = -1; r < rounds; r++) {
      const env: Record<string, string> = {
        HOST: "127.0.0.1",
        ADMIN_PASSWORD: "bench-admin-password",
        SYNC_API_TOKEN: "bench-sync-token-0123456789",
        ENCRYPTION_KEY: "bench-encryption-key-0123456789-abcdef",
        // One KV for every round, made by the unmeasured one: an instance's KV outlives it.
        DENO_KV_PATH: `${dir}/kv.sqlite3`,
        NO_COLOR: "1",
        PATH: Deno.env.get("PATH") ?? "",
        HOME: Deno.env.get("HOME") ?? "",
      };
      const denoDir = Deno.env.get("DENO_DIR");
      if (denoDir) env.DENO_DIR = denoDir;
      // Which goes first alternates, so neither always finds the machine just freed.
      const runApp = () => firstOk(["run", "-A", "main.ts"], env);
      const runBare = () => firstOk(["run", "-A", bareFile], env);
      const [a, b] = r % 2
        ? [await runApp(), await runBare()]
        : await runBare().then(async (b) => [await runApp(), b]);
      if (r >= 0) {
        app.push(a);
        bare.push(b);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const [appMs, bareMs] = [median(app), median(bare)];
  const ratios = app.map((a, k) => a / bare[k]);
  return {
    rounds,
    appMs,
    bareMs,
    ratio: appMs / bareMs,
    roundMedian: median(ratios),
    roundWorst: Math.max(...ratios),
    app,
    bare,
  };
}

/** The report's lines. */
export function coldStartLines(c: ColdStart): string[] {
  return [
    `rounds: ${c.rounds}, ${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}`,
    `app  (main.ts)    first 200 on /health: median ${c.appMs.toFixed(0)} ms  [${list(c.app)}]`,
    `bare (Deno.serve) first 200:            median ${c.bareMs.toFixed(0)} ms  [${list(c.bare)}]`,
    `ratio of medians: ${c.ratio.toFixed(2)}× (target ≤ 3×); per round: median ${
      c.roundMedian.toFixed(2)
    }×, worst ${c.roundWorst.toFixed(2)}×`,
  ];
}

async function main() {
  const i = Deno.args.indexOf("--rounds");
  const rounds = i >= 0 ? Number(Deno.args[i + 1]) : 9;
  for (const line of coldStartLines(await measureColdStart(rounds))) console.log(line);
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
