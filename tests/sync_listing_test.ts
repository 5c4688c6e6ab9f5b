/**
 * The run's listing against the Zoho simulator: records that change under a run while it pages the
 * list (issue 19), and a Zoho that refuses new access tokens.
 */
import assert from "node:assert/strict";
import { keys } from "../lib/store/keys.ts";
import type { ZohoSim } from "../sandbox/zoho.ts";
import { makeOrders, startStack } from "./helpers.ts";

type Stack = Awaited<ReturnType<typeof startStack>>;

const seconds = (t: unknown) => Math.floor(Date.parse(String(t)) / 1000);

/** The simulator's list order: Modified_Time, then id. */
function listOrder(sim: ZohoSim): string[] {
  return [...sim.records.values()]
    .map((r) => ({ id: String(r.id), t: seconds(r.Modified_Time) }))
    .sort((a, b) => a.t - b.t || a.id.length - b.id.length || (a.id < b.id ? -1 : 1))
    .map((r) => r.id);
}

function billFor(s: Stack, id: string) {
  return s.xeroSim.invoices().filter((i) => String(i.Url ?? "").endsWith(`/${id}`));
}

Deno.test("a purchase order deleted while a run pages the list hides no other one, and the watermark never passes it", async () => {
  const orders = makeOrders(250, { seed: 19 });
  const ref: { sim?: ZohoSim; doomed?: string; deleted?: boolean } = {};
  const s = await startStack({
    records: orders,
    zoho: {
      onListPage: (served) => {
        // Someone deletes an order the run has already listed, while it reads the next page.
        if (served === 1 && ref.doomed && !ref.deleted) {
          ref.deleted = ref.sim!.records.delete(ref.doomed);
        }
      },
    },
  });
  try {
    ref.sim = s.zohoSim;
    const order = listOrder(s.zohoSim);
    ref.doomed = order[10];
    // With offset paging, the first order of page 2 slides onto page 1 and is never read.
    const victim = order[200];
    const victimTime = s.zohoSim.records.get(victim)!.Modified_Time as string;

    const first = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.ok(ref.deleted, "the order was deleted during the listing");
    const after = first.watermark.after;
    if (billFor(s, victim).length === 0) {
      // At worst the next run syncs it, so the watermark must not have passed it.
      assert.ok(
        after === null || Date.parse(after) < Date.parse(victimTime),
        `watermark ${after} passed the unsynced order modified at ${victimTime}`,
      );
      await s.run({ window: "since_last_sync", mode: "create_and_update" });
    }
    assert.equal(billFor(s, victim).length, 1, "the order after the page boundary got its bill");
    // Every order still in Zoho has exactly one bill.
    for (const id of s.zohoSim.records.keys()) assert.equal(billFor(s, id).length, 1, id);
  } finally {
    await s.close();
  }
});

Deno.test("Zoho refuses new access tokens mid-run: one refused mint, the run pauses with the reason, no record fails", async () => {
  const orders = makeOrders(40, { seed: 20 });
  const ref: { sim?: ZohoSim } = {};
  const s = await startStack({
    records: orders,
    // One mint allowed per 10 minutes; the access token dies right after the listing.
    zoho: { mintLimitPer10Min: 1, onListPage: () => ref.sim?.expireAccessTokens() },
  });
  try {
    ref.sim = s.zohoSim;
    const run = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(run.status, "paused", run.message);
    assert.match(run.message ?? "", /Zoho refused to issue an access token/);
    assert.match(run.message ?? "", /asks again after/);
    assert.equal(run.counts.failed, 0, "no record is failed for a refused token");
    assert.equal(s.zohoSim.counts.token, 2, "the first mint, then one refused: never asked again");
    assert.equal(run.watermark.after ?? null, run.watermark.before);
    assert.equal(s.xeroSim.invoices().length, 0);

    // The next run (a cron tick, a press of Sync Now) does not ask Zoho again either.
    ref.sim = undefined;
    const again = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    assert.equal(again.status, "paused", again.message);
    assert.equal(s.zohoSim.counts.token, 2);
    const button = await s.engine.syncPurchaseOrder(String(orders[0].id));
    assert.equal(button.result.outcome, "failed");
    assert.match(button.result.message, /Zoho refused to issue an access token/);
    assert.equal(s.zohoSim.counts.token, 2);
  } finally {
    await s.close();
  }
});

Deno.test("a Zoho 404 INVALID_URL_PATTERN on a record read is a failure to show, not a deleted record", async () => {
  const orders = makeOrders(2, { seed: 21 });
  const s = await startStack({ records: orders });
  try {
    const id = String(orders[0].id);
    assert.equal((await s.engine.syncPurchaseOrder(id)).result.outcome, "created");
    // A wrong API domain (or path): every URL under it is INVALID_URL_PATTERN (404).
    const key = keys.zohoAccessToken();
    const stored = (await s.ctx.kv.get<{ apiDomain: string }>(key)).value!;
    await s.ctx.kv.set(key, { ...stored, apiDomain: `${stored.apiDomain}/wrong-prefix` });
    s.zohoSim.edit(id, { Subject: "changed" });
    const out = await s.engine.syncPurchaseOrder(id);
    assert.equal(out.notFound, false, "not taken for a deleted record");
    assert.equal(out.result.outcome, "failed");
    assert.match(out.result.message, /INVALID_URL_PATTERN/);
    assert.match(out.result.message, /ZOHO_ACCOUNTS_URL/);
  } finally {
    await s.close();
  }
});
