/**
 * Model-based test of the sync (issue 13, "The class, not the instances"): random histories of
 * Zoho edits, Xero actions, settings, syncs, faults, deaths and KV losses against the real app and
 * the simulators; after each, the oracle of tests/model/oracle.ts. Seeded: MODEL_SEED (default
 * fixed, so CI replays the same histories), MODEL_RUNS (default 500), MODEL_MAX_OPS (12),
 * MODEL_OPS to restrict the operations (see parseFilters). A failure names the seed and the shrunk
 * history.
 */
import { checkHistories, formatReport, parseFilters } from "./commands.ts";
import { newStats, startShared } from "./world.ts";

const env = (k: string) => Deno.env.get(k);

Deno.test({
  name: "model: every random history settles to one up-to-date bill per eligible purchase order",
  // Background syncs of a "dead" app end after the test body; the history waits for them itself.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const runs = Number(env("MODEL_RUNS") ?? 500);
    const seed = Number(env("MODEL_SEED") ?? 1313);
    const maxOps = Number(env("MODEL_MAX_OPS") ?? 12);
    const filters = parseFilters(env("MODEL_OPS"));
    const shared = await startShared();
    const stats = newStats();
    const t0 = Date.now();
    try {
      const details = await checkHistories(shared, { runs, seed, maxOps, ...filters }, stats);
      console.log(
        `[model] histories=${stats.histories}, operations=${stats.ops}, faults=${stats.faults}, ` +
          `syncs=${stats.syncs}, deaths=${stats.deaths}, bills checked=${stats.billsChecked}, ` +
          `violations=${details.failed ? 1 : 0}, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      if (details.failed) {
        throw new Error(formatReport(details, seed, { ops: env("MODEL_OPS"), maxOps }));
      }
    } finally {
      await shared.close();
    }
  },
});
