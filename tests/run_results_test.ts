/**
 * A big run's records on its page (issue 17): 100 a page, the outcome filter, a search by PO
 * number, CSV download for the accountant, and the run history's chart of the last 30 runs. Real
 * HTTP against the app and both simulators.
 */
import assert from "node:assert/strict";
import { Agent, makeOrders, startUiStack } from "./ui_helpers.ts";

/** Rows of the results table in a page's HTML, by data-po. */
function rowIds(html: string): string[] {
  return [...html.matchAll(/<tr data-po="(\d+)"/g)].map((m) => m[1]);
}

/** A small RFC 4180 reader (quoted fields, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"', i++);
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") (row.push(cell), cell = "");
    else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      (row = [], cell = "", i++);
    } else cell += ch;
  }
  return rows;
}

Deno.test("a 250-record run: 100 records a page, outcome filter, PO-number search, CSV download", async () => {
  const orders = makeOrders(250);
  orders[7] = { ...orders[7], Add_to_Xero: false };
  // Xero refuses this currency; its subject starts like a spreadsheet formula.
  orders[9] = { ...orders[9], Currency: "JPY", PO_Number: '=HYPERLINK("x")' };
  const s = await startUiStack({ records: orders });
  try {
    const run = await s.run({ window: "all", mode: "create_and_update" }, "page");
    assert.equal(run.counts.total, 250);
    assert.equal(run.counts.failed, 1);
    const agent = new Agent(s.url);
    await agent.login();

    const base = `/runs/${run.id}`;
    let { text } = await agent.get(base);
    assert.equal(rowIds(text).length, 100, "the first page holds 100 records");
    assert.match(text, /Records 1–100 of 250 · page 1 of 3/);
    ({ text } = await agent.get(`${base}?page=2`));
    assert.equal(rowIds(text).length, 50);
    assert.match(text, /Records 201–250 of 250 · page 3 of 3/);
    assert.match(text, /rel="prev"/);
    assert.doesNotMatch(text, /rel="next"/);
    // Every record on exactly one page.
    const seen = new Set<string>();
    for (const p of [0, 1, 2]) {
      for (const id of rowIds((await agent.get(`${base}?page=${p}`)).text)) {
        seen.add(id);
      }
    }
    assert.equal(seen.size, 250);

    // Search by PO number: "PO-1100" is one record; "PO-11" is PO-1100…PO-1199 (100) on one page.
    ({ text } = await agent.get(`${base}?q=PO-1100`));
    assert.deepEqual(rowIds(text), [String(orders[99].id)]);
    ({ text } = await agent.get(`${base}?q=po-11`));
    assert.equal(rowIds(text).length, 100);
    assert.match(text, /of 100 matching “po-11”/);
    // The search keeps the outcome filter, and the filter links keep the search.
    ({ text } = await agent.get(`${base}?outcome=skipped&q=PO-1008`));
    assert.deepEqual(rowIds(text), [String(orders[7].id)]);
    assert.match(text, /href="\/runs\/[^"?]+\?outcome=failed&amp;q=PO-1008"/);
    ({ text } = await agent.get(`${base}?q=nothing-like-this`));
    assert.match(text, /No record's PO number matches “nothing-like-this”/);

    // CSV: every record, one header; the filter applies; formulas stay text.
    const csv = await agent.fetch(`${base}/results.csv`);
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get("content-type") ?? "", /^text\/csv/);
    assert.match(
      csv.headers.get("content-disposition") ?? "",
      new RegExp(`^attachment; filename="run-${run.id}-records.csv"$`),
    );
    const rows = parseCsv((await csv.text()).replace(/^\uFEFF/, ""));
    assert.equal(rows[0][0], "purchase_order_id");
    assert.equal(rows.length, 251);
    const failed = rows.find((r) => r[0] === String(orders[9].id))!;
    assert.equal(failed[1], `'=HYPERLINK("x")`, "a formula-looking PO number is kept as text");
    assert.equal(failed[2], "failed");
    assert.equal(failed[6], "xero");
    const created = rows.find((r) => r[0] === String(orders[0].id))!;
    assert.equal(created[1], "PO-1001");
    assert.equal(created[2], "created");
    assert.ok(s.xeroSim.invoices().some((i) => i.InvoiceID === created[8]));
    const skippedOnly = parseCsv(
      await (await agent.fetch(`${base}/results.csv?outcome=skipped`)).text(),
    );
    assert.equal(skippedOnly.length, 2);
    assert.equal(skippedOnly[1][0], String(orders[7].id));
    assert.match((await agent.get(base)).text, new RegExp(`href="${base}/results.csv"`));
    assert.equal((await agent.fetch("/runs/r000000000abcd/results.csv")).status, 404);
    await new Agent(s.url).fetch(`${base}/results.csv`).then(async (r) => {
      await r.body?.cancel();
      assert.equal(r.status, 302, "no session, no records");
    });
  } finally {
    await s.close();
  }
});

Deno.test("the run history shows a chart of the last 30 runs, records by outcome", async () => {
  const orders = makeOrders(4);
  orders[3] = { ...orders[3], Currency: "JPY" };
  const s = await startUiStack({ records: orders });
  try {
    const first = await s.run({ window: "all", mode: "create_and_update" });
    for (let i = 0; i < 31; i++) {
      await s.run({ window: "since_last_sync", mode: "create_and_update" }); // JPY fails again
    }
    const agent = new Agent(s.url);
    await agent.login();
    const { text } = await agent.get("/runs");
    const svg = text.match(/<svg[^>]*data-testid="run-chart"[\s\S]*?<\/svg>/)?.[0] ?? "";
    assert.ok(svg, "a chart on the run history");
    assert.match(svg, /role="img"/);
    const bars = [...svg.matchAll(/<g data-run="([^"]+)" data-failed="(\d+)"/g)];
    assert.equal(bars.length, 30, "the last 30 runs");
    assert.ok(!bars.some((b) => b[1] === first.id), "the oldest of 32 runs is not drawn");
    assert.match(text, /The last 30 runs, oldest on the left; \d+ with failed records/);
    // A bar's parts are the run's outcomes, each named in its title.
    const latest = bars.at(-1)!;
    const latestRun = (await s.engine.listRuns({ limit: 1 })).runs[0];
    assert.equal(latest[1], latestRun.id, "newest on the right");
    const g = svg.slice(svg.indexOf(`data-run="${latestRun.id}"`));
    assert.match(g, /<title>[^<]*UTC: [^<]*1 failed/);
    assert.match(g, /data-outcome="failed"/);
  } finally {
    await s.close();
  }
});

Deno.test("a run says which records it read again on purpose and why (retry set, webhook)", async () => {
  const orders = makeOrders(4);
  orders[3] = { ...orders[3], Currency: "JPY", PO_Number: "PO-JPY" };
  const s = await startUiStack({ records: orders });
  try {
    const first = await s.run({ window: "all", mode: "create_and_update" });
    assert.ok(first.results.every((r) => !r.retried), "nothing was owed before the first run");
    await s.engine.enqueue([String(orders[0].id)]); // as Zoho's webhook does
    const second = await s.run({ window: "since_last_sync", mode: "create_and_update" });
    const byId = new Map(second.results.map((r) => [r.purchaseOrderId, r]));
    const jpy = byId.get(String(orders[3].id))!;
    assert.equal(jpy.retried?.via, "retry");
    assert.match(jpy.retried?.reason ?? "", /JPY/, "the reason it failed last time");
    assert.equal(byId.get(String(orders[0].id))?.retried?.via, "webhook");

    const agent = new Agent(s.url);
    await agent.login();
    let { text } = await agent.get(`/runs/${second.id}`);
    assert.match(text, /2 records were read again on purpose/);
    assert.match(text, /Retried: [^<]*JPY[^<]*\(owed since \d{4}-/);
    assert.match(text, /Synced because it was queued by Zoho('|&#39;)s webhook or a retry/);
    ({ text } = await agent.get(`/runs/${second.id}?retried=1`));
    assert.deepEqual(rowIds(text).sort(), [String(orders[0].id), String(orders[3].id)].sort());
    const csv = parseCsv(await (await agent.fetch(`/runs/${second.id}/results.csv`)).text());
    const jpyRow = csv.find((r) => r[0] === String(orders[3].id))!;
    assert.match(jpyRow[7], /^Retried: .*JPY/);
  } finally {
    await s.close();
  }
});
