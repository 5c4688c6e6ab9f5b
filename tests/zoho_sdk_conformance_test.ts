// deno-lint-ignore-file no-explicit-any -- the SDK is plain JavaScript without types
/**
 * The Zoho CRM simulator judged by a client no one here wrote: Zoho's official Node SDK
 * (`@zohocrm/nodejs-sdk-8.0`, test-only, pinned in deno.json). If the SDK mints, lists, pages,
 * reads line items, writes back and reads errors through the simulator the way it does against
 * Zoho, the simulator speaks Zoho's wire format and not merely what our own client expects.
 *
 * The SDK keeps one global "initializer": the steps share one simulator, in order; the last steps
 * initialise it again against a simulator with the other boundary behaviours. Its token store and
 * field cache live in a temporary directory, its log is off.
 */
import assert from "node:assert/strict";
import * as Z from "@zohocrm/nodejs-sdk-8.0";
import { startZohoSim, type ZohoSim, type ZohoSimOptions } from "../sandbox/zoho.ts";
import { generatePurchaseOrder, seededRandom } from "../sandbox/po_generator.ts";

const SDK = Z as any;
const N = 250;
const ID_BASE = 5876543000001000000n;

function orders(n: number): Record<string, unknown>[] {
  const rand = seededRandom(20);
  return Array.from(
    { length: n },
    (_, i) =>
      generatePurchaseOrder(rand, { PO_Number: `PO-${1001 + i}` }, {
        id: String(ID_BASE + BigInt(i)),
      }),
  );
}

/** Points the SDK at a simulator: refresh-token flow, a file token store in `dir`. */
async function initSdk(sim: ZohoSim, dir: string): Promise<void> {
  const environment = new SDK.Environment(sim.url, `${sim.url}/oauth/v2/token`, sim.url);
  const token = new SDK.OAuthBuilder()
    .clientId(sim.clientId)
    .clientSecret(sim.clientSecret)
    .refreshToken(sim.refreshToken)
    .build();
  const builder = await new SDK.InitializeBuilder();
  await builder
    .environment(environment)
    .token(token)
    .store(new SDK.FileStore(`${dir}/sdk_tokens.txt`))
    .SDKConfig(new SDK.SDKConfigBuilder().autoRefreshFields(false).pickListValidation(true).build())
    .resourcePath(dir)
    .logger(new SDK.LogBuilder().level(SDK.Levels.OFF).build())
    .initialize();
}

function records(): any {
  return new SDK.Record.RecordOperations("Purchase_Orders");
}

async function listPage(
  params: Array<[string, unknown]>,
  headers: Array<[string, unknown]> = [],
): Promise<any> {
  const pm = new SDK.ParameterMap();
  for (const [k, v] of params) await pm.add((SDK.Record.GetRecordsParam as any)[k], v);
  const hm = new SDK.HeaderMap();
  for (const [k, v] of headers) await hm.add((SDK.Record.GetRecordsHeader as any)[k], v);
  return await records().getRecords(pm, hm);
}

async function getOne(id: bigint): Promise<any> {
  return await records().getRecord(id, new SDK.ParameterMap(), new SDK.HeaderMap());
}

const ids = (page: any): string[] => page.getObject().getData().map((r: any) => String(r.getId()));
const seconds = (t: unknown) => Math.floor(Date.parse(String(t)) / 1000);

async function withSim(
  opts: ZohoSimOptions,
  fn: (sim: ZohoSim, dir: string) => Promise<void>,
): Promise<void> {
  const sim = await startZohoSim(opts);
  const dir = await Deno.makeTempDir({ prefix: "zoho-sdk-" });
  try {
    await fn(sim, dir);
  } finally {
    await sim.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Zoho's official Node SDK speaks to the simulator as to Zoho", async (t) => {
  const data = orders(N);
  await withSim({ records: data }, async (sim, dir) => {
    await t.step("refresh grant (multipart form), then the current user and org", async () => {
      await initSdk(sim, dir);
      assert.equal(sim.counts.token, 1);
      // After a mint the SDK names the token by the user's email and the org's zgid: both answered.
      assert.equal(sim.counts.users, 1);
      assert.equal(sim.counts.org, 1);
      const stored = await Deno.readTextFile(`${dir}/sdk_tokens.txt`);
      assert.match(stored, /admin@example\.com:70001000/);
      assert.match(stored, new RegExp(sim.url.replaceAll(".", "\\.")));
    });

    await t.step("field metadata: lengths, lookups, picklists, the line-item subform", async () => {
      const pm = new SDK.ParameterMap();
      await pm.add(SDK.Fields.GetFieldsParam.MODULE, "Purchase_Orders");
      const res = await new SDK.Fields.FieldsOperations().getFields(pm);
      assert.equal(res.getStatusCode(), 200);
      const fields: any[] = res.getObject().getFields();
      assert.ok(fields.length >= 45, `${fields.length} fields`);
      const byName = new Map(fields.map((f) => [f.getAPIName(), f]));
      for (const f of fields) assert.ok(f.getLength() > 0, `${f.getAPIName()} has no length`);
      assert.equal(byName.get("Purchase_Items").getDataType(), "subform");
      assert.equal(
        byName.get("Purchase_Items").getAssociatedModule().getModule(),
        "Purchase_Items",
      );
      assert.equal(byName.get("Vendor_Name").getLookup().getModule().getAPIName(), "Vendors");
      assert.deepEqual(
        byName.get("Status").getPickListValues().map((v: any) => v.getDisplayValue()),
        ["Created", "Approved", "Delivered", "Cancelled"],
      );
      assert.equal(byName.get("Add_to_Xero").getDataType(), "boolean");
      assert.equal(byName.get("Add_to_Xero").getCustomField(), true);
      // The subform's own fields, which the SDK reads to type each line item.
      const items = new SDK.ParameterMap();
      await items.add(SDK.Fields.GetFieldsParam.MODULE, "Purchase_Items");
      const lineFields: any[] = (await new SDK.Fields.FieldsOperations().getFields(items))
        .getObject().getFields();
      const line = new Map(lineFields.map((f) => [f.getAPIName(), f]));
      assert.equal(line.get("Product_Name").getLookup().getModule().getAPIName(), "Products");
      assert.equal(line.get("Quantity").getDataType(), "double");
    });

    const sorted = [...sim.records.values()].sort((a, b) =>
      seconds(a.Modified_Time) - seconds(b.Modified_Time) ||
      (BigInt(String(a.id)) < BigInt(String(b.id)) ? -1 : 1)
    );

    await t.step("list with fields, page by page, then by page_token", async () => {
      const base: Array<[string, unknown]> = [
        ["FIELDS", "Subject,PO_Number,Vendor_Name,Add_to_Xero,Modified_Time"],
        ["SORT_BY", "Modified_Time"],
        ["SORT_ORDER", "asc"],
        ["PER_PAGE", 100],
      ];
      const p1 = await listPage([...base, ["PAGE", 1]]);
      assert.equal(p1.getStatusCode(), 200);
      const info1 = p1.getObject().getInfo();
      assert.equal(info1.getPerPage(), 100);
      assert.equal(info1.getCount(), 100);
      assert.equal(info1.getPage(), 1);
      assert.equal(info1.getMoreRecords(), true);
      const first = p1.getObject().getData()[0];
      assert.equal(typeof first.getId(), "bigint");
      assert.equal(first.getKeyValue("Add_to_Xero"), true);
      assert.ok(first.getKeyValue("Modified_Time") instanceof Date);
      assert.ok(!first.getKeyValues().has("Purchase_Items"), "lists carry no line items");
      const vendor = first.getKeyValue("Vendor_Name");
      assert.equal(typeof vendor.getKeyValue("name"), "string");

      const p2 = await listPage([...base, ["PAGE", 2]]);
      const token = p2.getObject().getInfo().getNextPageToken();
      assert.equal(typeof token, "string");
      const p3 = await listPage([...base, ["PAGE_TOKEN", token]]);
      const info3 = p3.getObject().getInfo();
      assert.equal(info3.getMoreRecords(), false);
      assert.equal(info3.getCount(), N - 200);
      assert.equal(info3.getNextPageToken() ?? null, null);
      const all = [...ids(p1), ...ids(p2), ...ids(p3)];
      assert.deepEqual(all, sorted.map((r) => String(r.id)), "every record once, oldest first");
    });

    await t.step("If-Modified-Since: only records modified after it; 204 when none", async () => {
      const cut = sorted[199];
      // The SDK sends a Date; records sharing the cut-off's second are not "after" it (default).
      const since = new Date(seconds(cut.Modified_Time) * 1000);
      const expected = sorted.filter((r) => seconds(r.Modified_Time) > seconds(cut.Modified_Time))
        .map((r) => String(r.id));
      const res = await listPage([["FIELDS", "Modified_Time"], ["SORT_BY", "Modified_Time"], [
        "SORT_ORDER",
        "asc",
      ]], [["IF_MODIFIED_SINCE", since]]);
      assert.equal(res.getStatusCode(), 200);
      assert.deepEqual(ids(res), expected);
      const later = new Date((seconds(sorted[N - 1].Modified_Time) + 1) * 1000);
      const none = await listPage([["FIELDS", "Modified_Time"]], [["IF_MODIFIED_SINCE", later]]);
      assert.equal(none.getStatusCode(), 204);
      assert.equal(none.getObject(), null);
    });

    await t.step("get one: line items typed as the SDK types them", async () => {
      const source = data[0];
      const res = await getOne(ID_BASE);
      assert.equal(res.getStatusCode(), 200);
      const rec = res.getObject().getData()[0];
      assert.ok(rec instanceof SDK.Record.Record);
      assert.equal(rec.getId(), ID_BASE);
      assert.equal(rec.getKeyValue("PO_Number"), "PO-1001");
      assert.equal(rec.getKeyValue("Status").getValue(), source.Status, "a picklist is a Choice");
      assert.equal(rec.getKeyValue("Grand_Total"), source.Grand_Total);
      const vendor = rec.getKeyValue("Vendor_Name");
      assert.ok(vendor instanceof SDK.Record.Record, "a lookup is a Record");
      assert.equal(String(vendor.getKeyValue("id")), (source.Vendor_Name as any).id);
      assert.ok(rec.getKeyValue("Owner") instanceof SDK.Users.MinifiedUser);
      assert.ok(rec.getKeyValue("PO_Date") instanceof Date);

      const items: any[] = rec.getKeyValue("Purchase_Items");
      const want = source.Purchase_Items as any[];
      assert.equal(items.length, want.length);
      items.forEach((item, i) => {
        assert.ok(item instanceof SDK.Record.Record, "each line is a Record of Purchase_Items");
        const product = item.getKeyValue("Product_Name");
        assert.ok(product instanceof SDK.Record.LineItemProduct);
        assert.equal(product.getKeyValue("Product_Code"), want[i].Product_Name.Product_Code);
        assert.equal(item.getKeyValue("Quantity"), want[i].Quantity);
        assert.equal(item.getKeyValue("List_Price"), want[i].List_Price);
        assert.equal(item.getKeyValue("Net_Total"), want[i].Net_Total);
        // The SDK types a line's Discount as a string (its rule for inventory line items).
        assert.equal(Number(item.getKeyValue("Discount")), want[i].Discount);
        assert.equal(item.getKeyValue("Sequence_Number"), i + 1);
        assert.equal(typeof item.getId(), "bigint");
        assert.equal(item.getKeyValue("Line_Tax").length, want[i].Line_Tax.length);
      });
    });

    await t.step(
      "update with trigger []: per-record SUCCESS and INVALID_DATA answers",
      async () => {
        const ok = new SDK.Record.Record();
        ok.setId(ID_BASE);
        ok.addKeyValue("Xero_Sync_Status", "Synced");
        ok.addKeyValue("Xero_Bill_ID", "0c9b3f5e-6c1a-4a52-9d0e-000000000001");
        ok.addKeyValue("Xero_Last_Synced", new Date("2026-01-15T10:20:30Z"));
        const tooLong = new SDK.Record.Record();
        tooLong.setId(ID_BASE + 1n);
        tooLong.addKeyValue("Xero_Bill_Number", "x".repeat(300));
        const unknown = new SDK.Record.Record();
        unknown.setId(ID_BASE + 999n);
        unknown.addKeyValue("Xero_Sync_Status", "Synced");
        const body = new SDK.Record.BodyWrapper();
        body.setData([ok, tooLong, unknown]);
        body.setTrigger([]);
        const before = String(sim.records.get(String(ID_BASE))!.Modified_Time);

        const res = await records().updateRecords(body, new SDK.HeaderMap());
        assert.equal(res.getStatusCode(), 207);
        const [a, b, c] = res.getObject().getData();
        assert.ok(a instanceof SDK.Record.SuccessResponse);
        assert.equal(a.getCode().getValue(), "SUCCESS");
        assert.equal(String(a.getDetails().get("id")), String(ID_BASE));
        assert.ok(b instanceof SDK.Record.APIException);
        assert.equal(b.getCode().getValue(), "INVALID_DATA");
        assert.equal(b.getDetails().get("api_name"), "Xero_Bill_Number");
        assert.equal(Number(b.getDetails().get("maximum_length")), 255);
        assert.equal(c.getCode().getValue(), "INVALID_DATA");
        assert.equal(c.getMessage().getValue(), "the id given seems to be invalid");

        const rec = sim.records.get(String(ID_BASE))!;
        assert.equal(rec.Xero_Sync_Status, "Synced");
        // The SDK sends date-times as "…Z"; Zoho takes them and answers in the org's offset.
        assert.equal(rec.Xero_Last_Synced, "2026-01-15T10:20:30+00:00");
        assert.notEqual(rec.Modified_Time, before, "a write-back bumps Modified_Time");
        assert.equal(sim.records.get(String(ID_BASE + 1n))!.Xero_Bill_Number, null);
        assert.deepEqual(sim.workflowTriggers, {}, "trigger [] fires no workflow");
      },
    );

    await t.step("an unknown id: 204 with no body (default)", async () => {
      const res = await getOne(ID_BASE + 999n);
      assert.equal(res.getStatusCode(), 204);
      assert.equal(res.getObject(), null);
    });

    await t.step("a refused access token: 401 INVALID_TOKEN as an APIException", async () => {
      sim.expireAccessTokens();
      const res = await getOne(ID_BASE);
      assert.equal(res.getStatusCode(), 401);
      const err = res.getObject();
      assert.ok(err instanceof SDK.Record.APIException);
      assert.equal(err.getCode().getValue(), "INVALID_TOKEN");
    });
  });

  await withSim({
    records: orders(3),
    ifModifiedSinceSameSecond: "included",
    unknownRecordGet: 400,
  }, async (sim, dir) => {
    await t.step("the other boundary behaviours parse too", async () => {
      await initSdk(sim, dir);
      const rows = [...sim.records.values()].sort((a, b) =>
        seconds(a.Modified_Time) - seconds(b.Modified_Time)
      );
      const at = new Date(seconds(rows[1].Modified_Time) * 1000);
      const res = await listPage([["FIELDS", "Modified_Time"]], [["IF_MODIFIED_SINCE", at]]);
      assert.ok(ids(res).includes(String(rows[1].id)), "the record of that very second is in");
      assert.ok(!ids(res).includes(String(rows[0].id)));

      const unknown = await getOne(ID_BASE + 999n);
      assert.equal(unknown.getStatusCode(), 400);
      const err = unknown.getObject();
      assert.ok(err instanceof SDK.Record.APIException);
      assert.equal(err.getCode().getValue(), "INVALID_DATA");
      assert.equal(err.getMessage().getValue(), "the related id given seems to be invalid");
    });

    await t.step("a revoked refresh token: the mint fails with Zoho's invalid_code", async () => {
      sim.revokeRefreshToken();
      const fresh = await Deno.makeTempDir({ prefix: "zoho-sdk-" });
      try {
        await assert.rejects(() => initSdk(sim, fresh), (err: any) => {
          assert.match(String(err?.message ?? err), /invalid_code/);
          return true;
        });
      } finally {
        await Deno.remove(fresh, { recursive: true });
      }
    });
  });
});
