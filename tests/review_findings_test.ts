/**
 * A hostile review of the staged sync (lib/sync/batch.ts and lib/sync/stages): sequences in which
 * a purchase order is lost for good, billed twice, its bill silently stops following Zoho, or its
 * result does not explain itself. Each test is one reproduced sequence and fails on the code it
 * was written against, for the reason its comment gives.
 */
import assert from "node:assert/strict";
import { keys } from "../lib/store/keys.ts";
import { ORG_SETTINGS } from "../sandbox/demo_org.ts";
import { generatePurchaseOrder, seededRandom } from "../sandbox/po_generator.ts";
import { billsOf, makeOrders, withStack } from "./helpers.ts";
import { api, runEnded, sharedWorld, spawnApp } from "./reliability/harness.ts";

const sync = { window: "since_last_sync", mode: "create_and_update" } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "+00:00");
const HOUR = 3_600_000;

/**
 * Settings saved while a run is going on: oweUnsettled() owes only records whose KV state says
 * skipped/failed at that moment. A record the run has not reached yet is then decided under the
 * run's (old) settings, skipped, the watermark moves past it, and nothing owes it any more.
 */
Deno.test("settings fixed while a run is reading: a record the run had not reached yet is not lost", async () => {
  const now = Date.now();
  const orders = makeOrders(2);
  const [old, recent] = [String(orders[0].id), String(orders[1].id)];
  orders[0].Modified_Time = iso(now - 3 * HOUR);
  orders[1].Modified_Time = iso(now - HOUR);
  // Write-back off: with it on, the "Not synced" status written to Zoho bumps Modified_Time and
  // the next run lists the record again by chance.
  const writeBack = { enabled: false };
  await withStack({ records: orders, settings: { taxMappings: [], writeBack } }, async (s) => {
    // Keep the run in its read stage long enough for an admin to save the fixed mapping.
    s.zohoSim.fault({ endpoint: "get", kind: "delay", delayMs: 800, times: 2 });
    const start = await s.engine.startRun(sync, "api");
    assert.ok(start.started);
    await sleep(300);
    assert.ok((await s.engine.saveSettings({ ...ORG_SETTINGS, writeBack })).ok);
    const first = await start.done;
    await s.engine.idle();
    assert.equal(first.counts.skipped, 2, "decided under the settings the run started with");

    await s.run(sync);
    assert.equal(billsOf(s, old).length, 1, "the older order is billed once the mapping is fixed");
    assert.equal(billsOf(s, recent).length, 1);
  });
});

/**
 * The retry entry oweUnsettled() writes is cleared by any sync that *read* the record after it was
 * written (clearPaidDebts compares readAt with since), but a run keeps the settings it started
 * with: a read after the change, decided under the old settings, pays the debt it did not pay.
 */
Deno.test("a 'settings changed' debt is not cleared by a run still using the old settings", async () => {
  const now = Date.now();
  // Zoho's clock: the first run (and its write-back) happened hours ago.
  let clock = now - 5 * HOUR;
  const orders = makeOrders(2);
  const [victim, other] = [String(orders[0].id), String(orders[1].id)];
  orders[0].Modified_Time = iso(now - 7 * HOUR);
  orders[1].Modified_Time = iso(now - 6 * HOUR);
  await withStack(
    {
      records: orders,
      settings: { taxMappings: [] },
      zoho: { now: () => clock },
      overrides: { engine: { batchSize: 1 } },
    },
    async (s) => {
      const first = await s.run(sync);
      assert.equal(first.counts.skipped, 2);
      // Both were written back "Not synced" (at now - 5 h); an edit of the other order moves the
      // watermark past that write-back, so the victim is no longer listed.
      clock = now - 4 * HOUR;
      s.zohoSim.edit(other, { Subject: "edited once" });
      await s.run(sync);
      clock = now;
      // Run 2: the other order was edited (listed, batch 0), the victim is named by a webhook
      // (batch 1). The first read is slow; meanwhile the admin fixes the tax mapping.
      s.zohoSim.edit(other, { Subject: "edited" });
      await s.engine.enqueue([victim]);
      s.zohoSim.fault({ endpoint: "get", kind: "delay", delayMs: 800, times: 1 });
      const start = await s.engine.startRun(sync, "api");
      assert.ok(start.started);
      await sleep(300);
      assert.ok((await s.engine.saveSettings(ORG_SETTINGS)).ok);
      assert.ok((await s.engine.retrySet()).includes(victim), "owed by the settings change");
      await start.done;
      await s.engine.idle();

      await s.run(sync);
      assert.equal(billsOf(s, victim).length, 1, "still owed, so the next run bills it");
    },
  );
});

/**
 * README: "A record with no known bill is looked up in Xero by every identity its bill ever had
 * before anything is created: the link back to the record (Url), …". reconcile() looks up only
 * records with a write-ahead mark or a Xero_Bill_ID in Zoho; the Url is looked for only by the
 * one-time ledger scan, which is skipped once ["reconciled", tenant] exists. A KV restored from a
 * backup taken after the first sync but before a later bill was stored (write-back off) bills
 * that order twice.
 */
Deno.test("KV restored from an older backup, write-back off: the order's bill is found by its link", async () => {
  const orders = makeOrders(2);
  const [early, later] = [String(orders[0].id), String(orders[1].id)];
  const laterOrder = orders.pop()!;
  await withStack(
    { records: orders, settings: { ...ORG_SETTINGS, writeBack: { enabled: false } } },
    async (s) => {
      await s.run(sync); // the first sync: the ledger scan runs and is marked done
      const backup = await s.ctx.kv.get(keys.reconciled(s.xeroSim.tenantId));
      assert.ok(backup.value);
      // ... the nightly backup is taken here ...
      s.zohoSim.upsert(laterOrder);
      await s.run(sync);
      assert.equal(billsOf(s, later).length, 1);
      // ... and restored: KV forgets the later order's bill (its write-ahead mark is long gone).
      await s.ctx.kv.delete(keys.billMapping(later));
      // (A restore brings back every key as it was, the ledger's moment too.)
      await s.ctx.kv.set(keys.reconciled(s.xeroSim.tenantId), backup.value);
      // (An edit the bill shows: an identical body would be answered from Xero's idempotency
      // store for a day, which hides the hole.)
      s.zohoSim.edit(later, { PO_Number: "PO-1002-B" });
      const run = await s.run(sync);
      assert.equal(billsOf(s, early).length, 1);
      assert.equal(billsOf(s, later).length, 1, JSON.stringify(run.results));
    },
  );
});

/**
 * A run reads batch k+1 while batch k is written to Xero (prefetchRecords), before it holds the
 * records' locks. A button sync of a record in batch k+1 that runs in that gap brings the bill up
 * to date; the run then takes the lock, finds the newer bill in KV and "updates" it with the
 * content it read earlier: the bill goes back to the old content and the run says "updated" (at
 * best with a warning that the order was edited meanwhile, when Zoho's one-second clock moved);
 * Xero shows stale content until the next run.
 */
Deno.test("a record read ahead of its lock never overwrites the newer bill a button sync made", async () => {
  const orders = makeOrders(2);
  const [first, victim] = [String(orders[0].id), String(orders[1].id)];
  await withStack({ records: orders, overrides: { engine: { batchSize: 1 } } }, async (s) => {
    await s.run(sync);
    s.zohoSim.edit(first, { PO_Number: "PO-1001-B" });
    s.zohoSim.edit(victim, { PO_Number: "PO-OLD" });
    // Batch 0 (first) spends a while in Xero; batch 1 (victim) is read meanwhile.
    s.xeroSim.fault({ endpoint: "invoices.post", kind: "delay", delayMs: 1200, times: 1 });
    const start = await s.engine.startRun(sync, "api");
    assert.ok(start.started);
    await sleep(500);
    s.zohoSim.edit(victim, { PO_Number: "PO-NEW" });
    const button = await s.engine.syncPurchaseOrder(victim);
    assert.equal(button.result.outcome, "updated");
    assert.equal(billsOf(s, victim)[0].InvoiceNumber, "PO-NEW");
    const run = await start.done;
    await s.engine.idle();
    const results = await s.engine.getResults(run.id);
    assert.equal(billsOf(s, victim).length, 1);
    assert.equal(
      billsOf(s, victim)[0].InvoiceNumber,
      "PO-NEW",
      `the run must not put back what it read before the button: ${JSON.stringify(results)}`,
    );
  });
});

/**
 * Webhook entries carry the receiving instance's clock (`at`) and are deleted only when `at` is
 * not after the local start of the read. An entry written by an instance whose clock runs ahead
 * is never deleted until this clock catches up, and every run ends by starting a "webhook" pass
 * for it: runs follow each other back to back, each listing Zoho and reading the record again.
 */
Deno.test("a webhook entry stamped by an instance whose clock runs ahead does not chain runs", async () => {
  const orders = makeOrders(1);
  const id = String(orders[0].id);
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    // The notification was received by another instance, 3 s ahead of this one.
    await s.ctx.kv.set(keys.queue("Purchase_Orders", id), {
      at: new Date(Date.now() + 3_000).toISOString(),
    });
    const start = await s.engine.tick("webhook");
    assert.ok(start.started);
    await start.done;
    await sleep(1_500);
    await s.engine.idle();
    const { runs } = await s.engine.listRuns({ limit: 100 });
    const passes = runs.filter((r) => r.trigger === "webhook");
    assert.ok(passes.length <= 2, `${passes.length} webhook runs for one notification`);
  });
});

/**
 * Bill mappings in KV (["bills", id]) carry no organisation, though the admin can switch the
 * connected organisation on the connections page (contacts and the ledger scan are kept per
 * tenant). After a switch, every order synced before is "unchanged" with a link to a bill in the
 * other organisation, and an edit is skipped with "the bill linked to this purchase order was not
 * found in Xero": the orders are never billed in the organisation the app now books into.
 */
Deno.test("after switching the Xero organisation, orders are billed in the new one", async () => {
  const orders = makeOrders(2);
  const [kept, edited] = [String(orders[0].id), String(orders[1].id)];
  const tenants = [
    { tenantId: "11111111-1111-4111-8111-111111111111", tenantName: "Demo Company (AU)" },
    { tenantId: "22222222-2222-4222-8222-222222222222", tenantName: "The Real Books Ltd" },
  ];
  await withStack({ records: orders, xero: { tenants } }, async (s) => {
    await s.run(sync);
    assert.equal(s.xeroSim.invoices(tenants[0].tenantId).length, 2, "trial bills in the demo org");
    await s.ctx.xero.chooseTenant(tenants[1].tenantId);
    s.zohoSim.edit(edited, { PO_Number: "PO-1002-B" });
    const all = await s.run({ window: "all", mode: "create_and_update" });
    const inReal = s.xeroSim.invoices(tenants[1].tenantId);
    const billed = (id: string) => inReal.filter((i) => String(i.Url ?? "").endsWith(`/${id}`));
    assert.equal(billed(edited).length, 1, JSON.stringify(all.results));
    assert.equal(billed(kept).length, 1, JSON.stringify(all.results));
  });
});

/**
 * An "All records" run reports a record not changed since its last sync from KV
 * (unchangedResult): any record with a bill id is "unchanged … already up to date in Xero", even
 * when its last outcome was a skip because the accountant approved the bill before an edit. The
 * bill does not show the edit, and the run tells the user it is up to date.
 */
Deno.test("an 'All records' run says why an edit never reached an approved bill", async () => {
  const orders = makeOrders(1);
  const id = String(orders[0].id);
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    s.xeroSim.setInvoiceStatus(billsOf(s, id)[0].InvoiceID as string, "AUTHORISED");
    s.zohoSim.edit(id, { PO_Number: "PO-EDITED-AFTER-APPROVAL" });
    const since = await s.run(sync);
    assert.equal(since.results[0].outcome, "skipped");
    assert.match(since.results[0].reasons.join(), /approved/);
    const all = await s.run({ window: "all", mode: "create_and_update" });
    const r = all.results[0];
    assert.equal(billsOf(s, id)[0].InvoiceNumber, "PO-1001", "the bill still shows the old number");
    assert.equal(r.outcome, "skipped", JSON.stringify(r));
    assert.match(r.reasons.join(), /approved/);
  });
});

/**
 * The write-back PUT of a batch carries If-Unmodified-Since = the *latest* Modified_Time read
 * among its rows. A record X read early in the batch and edited before another row Y was edited
 * and read has a Modified_Time not after that bound: Zoho takes our write-back, we remember the
 * Modified_Time it produced, and a line edit (which leaves the listed content fields as they were)
 * is never read again. The bill keeps the old line for good.
 */
Deno.test("an edit made between the reads of one batch is not hidden by a later row's time", async () => {
  const orders = makeOrders(2);
  const [y, x] = [String(orders[0].id), String(orders[1].id)];
  // Zoho's clock, in whole seconds the test chooses (Zoho's Modified_Time has one-second steps).
  const t0 = Math.floor(Date.now() / 1000) * 1000 - HOUR;
  let clock = t0;
  await withStack({ records: orders, zoho: { now: () => clock } }, async (s) => {
    await s.run(sync);
    // Both listed by the next run, Y first; both get new bill numbers to write back.
    clock = t0 + 10_000;
    s.zohoSim.edit(y, { PO_Number: "PO-Y2" });
    clock = t0 + 11_000;
    s.zohoSim.edit(x, { PO_Number: "PO-X2" });
    // Y's read is slow; X's is done at once.
    s.zohoSim.fault({ endpoint: "get", kind: "delay", delayMs: 800, times: 1 });
    const start = await s.engine.startRun(sync, "api");
    assert.ok(start.started);
    await sleep(300);
    const items = structuredClone(s.zohoSim.records.get(x)!.Purchase_Items) as Array<
      Record<string, unknown>
    >;
    items[0].Description = "Edited during the run";
    clock = t0 + 20_000;
    s.zohoSim.edit(x, { Purchase_Items: items }); // after X was read
    clock = t0 + 21_000;
    s.zohoSim.edit(y, { Subject: "also edited" }); // before Y is read
    clock = t0 + 30_000; // our write-back
    const second = await start.done;
    await s.engine.idle();
    const warned = (await s.engine.getResults(second.id)).filter((r) => r.warnings?.length);
    clock = t0 + 40_000;
    await s.run(sync);
    await s.run(sync);
    const lines = billsOf(s, x)[0].LineItems as Array<{ Description?: string }>;
    assert.ok(
      lines.some((l) => l.Description === "Edited during the run"),
      `X's bill lines: ${JSON.stringify(lines.map((l) => l.Description))}; warnings: ${
        JSON.stringify(warned)
      }`,
    );
  });
});

/**
 * Issue 19 ("contacts are created for vendors of orders that will be skipped as ineligible"): the
 * run resolves the vendors of every ticked listed order in bulk before any is checked, so an
 * order that is ticked but cannot be billed (here: its taxes are not mapped) still gets its
 * supplier created in the accountant's Xero contacts.
 */
Deno.test("a ticked order that is not eligible creates no Xero contact", async () => {
  const orders = makeOrders(1);
  await withStack({ records: orders, settings: { taxMappings: [] } }, async (s) => {
    const before = s.xeroSim.contacts().length;
    const run = await s.run(sync);
    assert.equal(run.results[0].outcome, "skipped");
    assert.equal(s.xeroSim.contacts().length, before, "no supplier created for a skipped order");
  });
});

/**
 * The record stage clears a record's retry entry as soon as the record is read and decided, before
 * its write-back is sent (recordStates runs twice; the first call already pays the debt). If the
 * process dies while the write-back is on its way, a record that was in the retry set only because
 * its write-back failed is owed by nothing: it is not listed (Zoho shows no change) and the retry
 * entry is gone, so Zoho never learns its bill (no Xero_Bill_ID, the guard against a second bill
 * after a KV loss).
 */
Deno.test("a process death during a retried write-back leaves the write-back owed", async () => {
  const now = Date.now();
  const orders = makeOrders(2);
  const [x, z] = [String(orders[0].id), String(orders[1].id)];
  orders[0].Modified_Time = iso(now - 3 * HOUR);
  orders[1].Modified_Time = iso(now - HOUR);
  const world = await sharedWorld(orders);
  const overrides = {
    zoho: { retry: { attempts: 3, baseDelayMs: 1_500, maxDelayMs: 3_000 } },
    engine: { runLeaseMs: 600, heartbeatMs: 150, recordLockMs: 800, lockWaitMs: 1_500 },
  };
  let app = await spawnApp(world.env, overrides);
  try {
    // Run 1: bills created, the write-back refused on every attempt: both owed.
    world.zohoSim.fault({ endpoint: "update", kind: "500", times: 3 });
    const first = await api(app.url, "/api/sync-runs", { window: "since_last_sync" });
    await runEnded(world.kv, String(first.json.runId));
    assert.equal(world.xeroSim.invoices().length, 2);
    const owed = async () =>
      (await Array.fromAsync(world.kv.list({ prefix: keys.retryPrefix("Purchase_Orders") })))
        .map((e) => String(e.key.at(-1)));
    assert.deepEqual((await owed()).sort(), [x, z].sort());

    // Run 2 reads them again (retry set) and retries the write-back; the process dies in the
    // retry's back-off.
    world.zohoSim.fault({ endpoint: "update", kind: "500", times: Infinity });
    const updatesBefore = world.zohoSim.counts.update ?? 0;
    const second = await api(app.url, "/api/sync-runs", { window: "since_last_sync" });
    assert.equal(second.status, 202);
    const until = Date.now() + 20_000;
    while ((world.zohoSim.counts.update ?? 0) === updatesBefore && Date.now() < until) {
      await sleep(10);
    }
    await app.stop("SIGKILL");
    world.zohoSim.clearFaults();

    app = await spawnApp(world.env, overrides);
    await sleep(700); // the dead run's lease lapses
    const third = await api(app.url, "/api/sync-runs", { window: "since_last_sync" });
    await runEnded(world.kv, String(third.json.runId));
    const fourth = await api(app.url, "/api/sync-runs", { window: "since_last_sync" });
    await runEnded(world.kv, String(fourth.json.runId));
    const billOf = (id: string) =>
      world.xeroSim.invoices().find((i) => String(i.Url ?? "").endsWith(`/${id}`))!.InvoiceID;
    assert.equal(world.zohoSim.records.get(x)!.Xero_Bill_ID, billOf(x), `owed: ${await owed()}`);
    assert.equal(world.zohoSim.records.get(z)!.Xero_Bill_ID, billOf(z));
  } finally {
    await app.stop();
    await world.close();
  }
});

/**
 * A batch's results are committed in atomics of up to 500 values (saveResults). A skipped result
 * repeats every reason twice (reasons and message), one per line with an unmapped tax; a first
 * run before the tax mappings are set, over 100 orders of 40 lines, writes more than one atomic
 * may hold (Deno KV: 800 KiB). The commit throws after the batch was processed: the run "failed"
 * with a KV error and none of the 100 skips says why; every later "All records" run, which
 * reports them again, fails the same way.
 */
Deno.test("a batch of long orders skipped for unmapped taxes still gets its results", async () => {
  const rand = seededRandom(7);
  const orders = Array.from(
    { length: 100 },
    (_, i) =>
      generatePurchaseOrder(rand, { PO_Number: `PO-${2001 + i}` }, {
        id: String(5876543000002000000n + BigInt(i)),
        items: 40,
      }),
  );
  await withStack({ records: orders, settings: { taxMappings: [] } }, async (s) => {
    const first = await s.run(sync);
    const all = await s.run({ window: "all", mode: "create_and_update" });
    assert.equal(first.status, "completed", first.message);
    assert.equal(first.counts.skipped, 100);
    assert.equal(all.status, "completed", all.message);
    assert.equal(all.results.length, 100, "every skipped order says why");
  });
});

/**
 * The same overflow one stage earlier: recordStates commits a batch's states (each with its skip
 * reasons) in atomics of up to 500 values. At 90 lines an order, 100 skipped orders exceed an
 * atomic before anything is remembered or written back: the run fails, the watermark stays, and
 * every later run lists the same batch first and fails on it again, so no order after it is ever
 * synced, whatever the settings of the orders behind it.
 */
Deno.test("a batch of very long skipped orders does not fail every run", async () => {
  const rand = seededRandom(8);
  const orders = Array.from(
    { length: 100 },
    (_, i) =>
      generatePurchaseOrder(rand, { PO_Number: `PO-${3001 + i}` }, {
        id: String(5876543000003000000n + BigInt(i)),
        items: 90,
      }),
  );
  await withStack({ records: orders, settings: { taxMappings: [] } }, async (s) => {
    const first = await s.run(sync);
    const second = await s.run(sync);
    assert.equal(second.status, "completed", `first: ${first.message}; second: ${second.message}`);
    assert.ok((await s.engine.watermark()).value, "the watermark moved past the batch");
  });
});

/**
 * lib/sync/stages/lock.ts promises one writer per purchase order; a lock that could not be
 * renewed lands in `lost`, but only creates look at it (writeBills). A sync that stalled past its
 * lock while another instance took the record over still updates the bill, writes back and stores
 * its state next to the new holder.
 */
Deno.test("a sync whose record lock was taken over writes nothing for that record", async () => {
  const orders = makeOrders(1);
  const id = String(orders[0].id);
  await withStack(
    { records: orders, overrides: { engine: { recordLockMs: 600, lockWaitMs: 100 } } },
    async (s) => {
      await s.run(sync);
      s.zohoSim.edit(id, { PO_Number: "PO-1001-STALE" });
      // The run reads the order, then waits on Xero (the editable check) ...
      s.xeroSim.fault({ endpoint: "invoices.get", kind: "delay", delayMs: 1500, times: 1 });
      const start = await s.engine.startRun(sync, "api");
      assert.ok(start.started);
      await sleep(500);
      // ... long enough for its lock to lapse (simulated) and another instance to take it over.
      await s.ctx.kv.set(keys.recordLock(id), {
        owner: "other-instance",
        until: Date.now() + 60_000,
      });
      const run = await start.done;
      await s.engine.idle();
      const r = (await s.engine.getResults(run.id))[0];
      assert.equal(
        billsOf(s, id)[0].InvoiceNumber,
        "PO-1001",
        `the bill was written without the lock: ${JSON.stringify(r)}`,
      );
    },
  );
});

/**
 * When Xero refuses a bill because the vendor's contact is archived and that contact is the one
 * an admin linked on the settings page, resolveContacts says exactly what to do ("link the vendor
 * to another contact on the settings page"), but resendArchived drops that reason: the record
 * fails with Xero's bare refusal, run after run, and nobody is told the fix.
 */
Deno.test("a bill refused for an archived admin-linked contact says to relink the vendor", async () => {
  const vendor = { id: "5876543000009000001", name: "Linked Supplies Pty" };
  const orders = makeOrders(2, { vendors: [vendor] });
  const later = orders.pop()!;
  const laterId = String(later.id);
  await withStack({ records: orders }, async (s) => {
    await s.run(sync);
    const contactID = String(s.xeroSim.invoices()[0].Contact?.ContactID);
    // The admin links the vendor to that contact (what POST /settings/contacts stores) ...
    await s.ctx.kv.set(keys.contact(vendor.id), {
      contactID,
      name: vendor.name,
      tenantId: s.xeroSim.tenantId,
      linkedBy: "admin",
      at: Date.now(),
      checkedAt: Date.now(),
    });
    // ... and later the accountant archives it; a new order of that vendor comes in.
    s.xeroSim.setContactStatus(contactID, "ARCHIVED");
    s.zohoSim.upsert(later);
    const run = await s.run(sync);
    const r = run.results.find((x) => x.purchaseOrderId === laterId)!;
    assert.equal(r.outcome, "failed");
    assert.match(r.reasons.join(" "), /settings page/, JSON.stringify(r.reasons));
  });
});
