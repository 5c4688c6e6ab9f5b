// deno-lint-ignore-file no-explicit-any -- wire JSON read field by field, checked by the asserts
/**
 * The Zoho simulator's COQL, held to what REFERENCE "Reading line items in bulk" documents:
 * ≤ 2,000 rows a call, OFFSET + LIMIT ≤ 100,000, `in` ≤ 50 values, credits by LIMIT, lookups as
 * `{id}` with dotted columns for their fields, 10 complex calls at once, and refusals on demand.
 */
import assert from "node:assert/strict";
import { startZohoSim, type ZohoSimOptions } from "../sandbox/zoho.ts";
import { makeOrders } from "./helpers.ts";

async function withSim(opts: ZohoSimOptions, f: (coql: Coql) => Promise<void>) {
  const sim = await startZohoSim({ records: makeOrders(60, { seed: 2 }), ...opts });
  try {
    const res = await fetch(`${sim.url}/oauth/v2/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "refresh_token",
        client_id: sim.clientId,
        client_secret: sim.clientSecret,
        refresh_token: sim.refreshToken,
      }),
    });
    const { access_token } = await res.json();
    const coql: Coql = async (query) => {
      const r = await fetch(`${sim.url}/crm/v8/coql`, {
        method: "POST",
        headers: {
          authorization: `Zoho-oauthtoken ${access_token}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ select_query: query }),
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null, credits: sim.credits.coql };
    };
    coql.sim = sim;
    await f(coql);
  } finally {
    await sim.close();
  }
}

type Coql = ((query: string) => Promise<{ status: number; body: any; credits?: number }>) & {
  sim?: Awaited<ReturnType<typeof startZohoSim>>;
};

const ids = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `'${5876543000001000000n + BigInt(from + i)}'`).join(", ");

Deno.test("Zoho sim COQL: line items by parent, lookups as {id}, dotted lookup fields, paging", async () => {
  await withSim({}, async (coql) => {
    const all = await coql(
      `select id, Parent_Id, Product_Name, Product_Name.Product_Name, Quantity, Line_Tax from Purchase_Items where Parent_Id in (${
        ids(50)
      }) limit 0, 2000`,
    );
    assert.equal(all.status, 200);
    const rows = all.body.data as Array<Record<string, any>>;
    const parents = new Set(rows.map((r) => r.Parent_Id.id));
    assert.equal(parents.size, 50);
    const rec = coql.sim!.records.get(rows[0].Parent_Id.id)!;
    const line = (rec.Purchase_Items as Array<Record<string, any>>).find((l) =>
      l.id === rows[0].id
    )!;
    assert.deepEqual(rows[0].Product_Name, { id: line.Product_Name.id });
    assert.equal(rows[0]["Product_Name.Product_Name"], line.Product_Name.name);
    assert.deepEqual(rows[0].Line_Tax, line.Line_Tax);
    assert.equal(all.body.info.more_records, false);

    const first = await coql(
      `select id from Purchase_Items where Parent_Id in (${ids(50)}) limit 0, 10`,
    );
    const second = await coql(
      `select id from Purchase_Items where Parent_Id in (${ids(50)}) limit 10, 10`,
    );
    assert.equal(first.body.info.more_records, true);
    assert.deepEqual(
      [...first.body.data, ...second.body.data].map((r: { id: string }) => r.id),
      rows.slice(0, 20).map((r) => r.id),
    );
    const none = await coql(`select id from Purchase_Items where Parent_Id = '1' limit 1`);
    assert.equal(none.status, 204);
  });
});

Deno.test("Zoho sim COQL: documented limits, credits by LIMIT, refusals", async () => {
  await withSim({}, async (coql) => {
    const q = (limit: string, where = `Parent_Id in (${ids(3)})`) =>
      coql(`select id from Purchase_Items where ${where} limit ${limit}`);
    assert.equal((await q("0, 2001")).body.code, "LIMIT_EXCEEDED");
    assert.equal((await q("99901, 100")).body.code, "LIMIT_EXCEEDED");
    assert.equal((await q("99900, 100")).status, 204);
    assert.equal((await q("10", `Parent_Id in (${ids(51)})`)).body.code, "LIMIT_EXCEEDED");
    assert.equal(
      (await coql(`select id from Purchased_Items where Parent_Id in (${ids(1)})`)).body.code,
      "INVALID_QUERY",
    );
    assert.equal(
      (await coql(`select Nope from Purchase_Items where Parent_Id in (${ids(1)})`)).body.code,
      "INVALID_QUERY",
    );
    // Credits by LIMIT, whatever the rows: 1–200 → 1, 201–1,000 → 2, 1,001–2,000 → 3.
    const before = coql.sim!.totalCredits();
    await q("0, 200");
    await q("0, 201");
    await q("0, 1000");
    await q("0, 2000");
    assert.equal(coql.sim!.totalCredits() - before, 1 + 2 + 2 + 3);
  });
  await withSim({ coql: { refuse: "OAUTH_SCOPE_MISMATCH" } }, async (coql) => {
    const r = await coql(`select id, Parent_Id from Purchase_Items limit 1`);
    assert.equal(r.status, 401);
    assert.equal(r.body.code, "OAUTH_SCOPE_MISMATCH");
  });
  await withSim({ coql: { lineItemModule: "Purchased_Items" } }, async (coql) => {
    assert.equal((await coql(`select id, Parent_Id from Purchase_Items limit 1`)).status, 400);
    assert.equal((await coql(`select id, Parent_Id from Purchased_Items limit 1`)).status, 200);
  });
});

Deno.test("Zoho sim COQL: an 11th complex call at once is answered 429", async () => {
  await withSim({ latencyMs: 200 }, async (coql) => {
    const answers = await Promise.all(
      Array.from(
        { length: 11 },
        () => coql(`select id from Purchase_Items where Parent_Id in (${ids(2)})`),
      ),
    );
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [...Array(10).fill(200), 429]);
    assert.equal(answers.find((a) => a.status === 429)!.body.code, "TOO_MANY_REQUESTS");
    assert.equal(coql.sim!.concurrency.peakComplex, 10);
  });
});
