/**
 * The long run of the model-based suite:
 *   deno task model -- --runs 20000 --seed 7 [--ops "-restart,-faults"] [--max-ops 12] [--path P]
 * Prints the figures (histories, operations, faults, bills checked, violations) and, on a
 * failure, the seed and the shrunk history; exits 1 then.
 */
import { checkHistories, formatReport, parseFilters } from "./commands.ts";
import { newStats, startShared } from "./world.ts";

function parseArgs(args: string[]) {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") continue;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument ${a}`);
    out[m[1]] = m[2] ?? args[++i] ?? "";
  }
  return out;
}

const args = parseArgs(Deno.args);
const runs = Number(args.runs ?? Deno.env.get("MODEL_RUNS") ?? 500);
const seed = Number(args.seed ?? Deno.env.get("MODEL_SEED") ?? Date.now() % 2_147_483_647);
const maxOps = Number(args["max-ops"] ?? Deno.env.get("MODEL_MAX_OPS") ?? 12);
const filters = parseFilters(args.ops ?? Deno.env.get("MODEL_OPS"));
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed) || !(maxOps >= 1)) {
  console.error("usage: deno task model -- --runs N --seed N [--ops kinds] [--max-ops N]");
  Deno.exit(2);
}

const shared = await startShared();
const stats = newStats();
const t0 = Date.now();
console.log(
  `model: ${runs} histories of ≤ ${maxOps} operations, seed ${seed}, ops ${
    [...filters.ops].join(",")
  }`,
);
const details = await checkHistories(
  shared,
  { runs, seed, maxOps, ...filters, path: args.path },
  stats,
);
await shared.close();
const secs = ((Date.now() - t0) / 1000).toFixed(1);
console.log(
  `[model] histories=${stats.histories}, operations=${stats.ops}, faults=${stats.faults}, ` +
    `syncs=${stats.syncs}, deaths=${stats.deaths}, bills checked=${stats.billsChecked}, ` +
    `violations=${details.failed ? 1 : 0}, ${secs} s`,
);
if (details.failed) {
  console.error(
    formatReport(details, seed, { ops: args.ops ?? Deno.env.get("MODEL_OPS"), maxOps }),
  );
  Deno.exit(1);
}
