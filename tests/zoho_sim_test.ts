// deno-lint-ignore-file no-explicit-any -- raw JSON bodies are read as Zoho sends them
/**
 * Pins the Zoho CRM simulator to REFERENCE.md (Zoho section) with raw HTTP, not through our client,
 * so the simulator cannot drift into whatever the client happens to do.
 */
import assert from "node:assert/strict";
import { startZohoSim, type ZohoSim, type ZohoSimOptions } from "../sandbox/zoho.ts";

const ZOHO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/;
const BASE = Date.parse("2025-07-01T00:00:00Z");

async function withSim(opts: ZohoSimOptions, fn: (sim: ZohoSim) => Promise<void>): Promise<void> {
  const sim = await startZohoSim(opts);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

async function post(url: string, form: Record<string, string>): Promise<Response> {
  return await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
}

async function mint(sim: ZohoSim): Promise<string> {
  const res = await post(`${sim.url}/oauth/v2/token`, {
    grant_type: "refresh_token",
    client_id: sim.clientId,
    client_secret: sim.clientSecret,
    refresh_token: sim.refreshToken,
  });
  const body = await res.json();
  assert.equal(typeof body.access_token, "string", JSON.stringify(body));
  return body.access_token;
}

async function api(
  sim: ZohoSim,
  token: string,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(`${sim.url}${path}`, {
    method: init.method ?? "GET",
    headers: {
      authorization: `Zoho-oauthtoken ${token}`,
      ...(init.body ? { "content-type": "application/json" } : {}),
      ...init.headers,
    },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

function at(seconds: number): string {
  return new Date(BASE + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

/** n records, `perSecond` sharing each Modified_Time second. */
function records(n: number, perSecond = 1): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    Subject: `PO ${i}`,
    Modified_Time: at(Math.floor(i / perSecond)),
    Add_to_Xero: true,
    Purchase_Items: [{ Product_Name: { id: "1", name: "Widget" }, Quantity: 1, List_Price: 5 }],
  }));
}

const LIST =
  "/crm/v8/Purchase_Orders?fields=Subject,Modified_Time&sort_by=Modified_Time&sort_order=asc";

Deno.test("token endpoint: refresh grant, api_domain, and Zoho's error answers", async () => {
  await withSim({}, async (sim) => {
    const ok = await post(`${sim.url}/oauth/v2/token`, {
      grant_type: "refresh_token",
      client_id: sim.clientId,
      client_secret: sim.clientSecret,
      refresh_token: sim.refreshToken,
    });
    const body = await ok.json();
    assert.equal(ok.status, 200);
    assert.equal(body.expires_in, 3600);
    assert.equal(body.api_domain, sim.url);
    assert.equal(body.token_type, "Bearer");
    assert.match(body.access_token, /^1000\./);

    const wrong = await post(`${sim.url}/oauth/v2/token`, {
      grant_type: "refresh_token",
      client_id: sim.clientId,
      client_secret: sim.clientSecret,
      refresh_token: "1000.nope",
    });
    assert.deepEqual(await wrong.json(), { error: "invalid_code" });

    const badClient = await post(`${sim.url}/oauth/v2/token`, {
      grant_type: "refresh_token",
      client_id: "other",
      client_secret: sim.clientSecret,
      refresh_token: sim.refreshToken,
    });
    assert.deepEqual(await badClient.json(), { error: "invalid_client" });

    // Query-string parameters work too, as in Zoho's own examples.
    const q = new URLSearchParams({
      grant_type: "refresh_token",
      client_id: sim.clientId,
      client_secret: sim.clientSecret,
      refresh_token: sim.refreshToken,
    });
    const viaQuery = await fetch(`${sim.url}/oauth/v2/token?${q}`, { method: "POST" });
    assert.equal(typeof (await viaQuery.json()).access_token, "string");

    sim.revokeRefreshToken();
    const revoked = await post(`${sim.url}/oauth/v2/token`, {
      grant_type: "refresh_token",
      client_id: sim.clientId,
      client_secret: sim.clientSecret,
      refresh_token: sim.refreshToken,
    });
    assert.deepEqual(await revoked.json(), { error: "invalid_code" });
    assert.equal(sim.counts.token, 5);
    assert.equal(sim.totalCalls(), 0, "token calls are not CRM API calls");
  });
});

Deno.test("token endpoint: a multipart/form-data grant works as Zoho's own SDKs send it", async () => {
  await withSim({}, async (sim) => {
    const form = new FormData();
    form.append("client_id", sim.clientId);
    form.append("client_secret", sim.clientSecret);
    form.append("grant_type", "refresh_token");
    form.append("refresh_token", sim.refreshToken);
    const res = await fetch(`${sim.url}/oauth/v2/token`, { method: "POST", body: form });
    const body = await res.json();
    assert.equal(res.status, 200);
    assert.match(body.access_token, /^1000\./);
    assert.equal(body.api_domain, sim.url);

    const wrong = new FormData();
    wrong.append("client_id", sim.clientId);
    wrong.append("client_secret", "not-the-secret");
    wrong.append("grant_type", "refresh_token");
    wrong.append("refresh_token", sim.refreshToken);
    const refused = await fetch(`${sim.url}/oauth/v2/token`, { method: "POST", body: wrong });
    assert.deepEqual(await refused.json(), { error: "invalid_client" });
  });
});

Deno.test("users: CurrentUser is the org's admin; an unknown type is INVALID_DATA", async () => {
  await withSim({}, async (sim) => {
    const token = await mint(sim);
    const me = await api(sim, token, "/crm/v8/users?type=CurrentUser");
    assert.equal(me.status, 200);
    assert.equal(me.body.users.length, 1);
    assert.equal(me.body.users[0].email, "admin@example.com");
    assert.equal(me.body.users[0].status, "active");
    assert.equal(me.body.users[0].profile.name, "Administrator");
    assert.deepEqual(me.body.info, { per_page: 200, count: 1, page: 1, more_records: false });
    const deleted = await api(sim, token, "/crm/v8/users?type=DeletedUsers");
    assert.equal(deleted.status, 204);
    const bad = await api(sim, token, "/crm/v8/users?type=Everyone");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, "INVALID_DATA");
    const org = await api(sim, token, "/crm/v8/org");
    assert.equal(org.status, 200);
    assert.equal(typeof org.body.org[0].zgid, "string");
    const anonymous = await api(sim, "nope", "/crm/v8/users?type=CurrentUser");
    assert.equal(anonymous.status, 401);
  });
});

Deno.test("token endpoint: at most N mints per refresh token per 10 minutes", async () => {
  await withSim({ mintLimitPer10Min: 3 }, async (sim) => {
    for (let i = 0; i < 3; i++) await mint(sim);
    const res = await post(`${sim.url}/oauth/v2/token`, {
      grant_type: "refresh_token",
      client_id: sim.clientId,
      client_secret: sim.clientSecret,
      refresh_token: sim.refreshToken,
    });
    const body = await res.json();
    assert.equal(res.status, 400);
    assert.equal(body.error, "Access Denied");
  });
});

Deno.test("Authorization: Zoho-oauthtoken is required; bad or expired tokens get 401 INVALID_TOKEN", async () => {
  await withSim({ records: records(1) }, async (sim) => {
    const none = await fetch(`${sim.url}${LIST}`);
    assert.equal(none.status, 401);
    assert.equal((await none.json()).status, "error");

    const bogus = await api(sim, "1000.abc.def", LIST);
    assert.equal(bogus.status, 401);
    assert.deepEqual(bogus.body, {
      code: "INVALID_TOKEN",
      details: {},
      message: "invalid oauth token",
      status: "error",
    });

    const token = await mint(sim);
    assert.equal((await api(sim, token, LIST)).status, 200);
    sim.expireAccessTokens();
    const expired = await api(sim, token, LIST);
    assert.equal(expired.status, 401);
    assert.equal(expired.body.code, "INVALID_TOKEN");
  });
});

Deno.test("access tokens expire after accessTokenTtlSec by the simulator's clock", async () => {
  let clock = BASE;
  await withSim({ now: () => clock, accessTokenTtlSec: 60 }, async (sim) => {
    const token = await mint(sim);
    assert.equal(
      (await api(sim, token, "/crm/v8/settings/fields?module=Purchase_Orders")).status,
      200,
    );
    clock += 61_000;
    const res = await api(sim, token, "/crm/v8/settings/fields?module=Purchase_Orders");
    assert.equal(res.status, 401);
    assert.equal(res.body.code, "INVALID_TOKEN");
  });
});

Deno.test("list: fields is required (≤ 50), per_page ≤ 200, and sort_by is checked", async () => {
  await withSim({ records: records(3) }, async (sim) => {
    const token = await mint(sim);
    const missing = await api(sim, token, "/crm/v8/Purchase_Orders");
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, "REQUIRED_PARAM_MISSING");
    assert.equal(missing.body.status, "error");
    assert.equal(missing.body.details.param, "fields");

    const many = Array.from({ length: 51 }, (_, i) => `F${i}`).join(",");
    const tooMany = await api(sim, token, `/crm/v8/Purchase_Orders?fields=${many}`);
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.code, "LIMIT_EXCEEDED");

    const big = await api(sim, token, `${LIST}&per_page=201`);
    assert.equal(big.status, 400);
    assert.equal(big.body.code, "INVALID_DATA");

    const badSort = await api(sim, token, "/crm/v8/Purchase_Orders?fields=Subject&sort_by=Subject");
    assert.equal(badSort.status, 400);
  });
});

Deno.test("list: only id and the asked fields, never line items, and the info block", async () => {
  await withSim({ records: records(3) }, async (sim) => {
    const token = await mint(sim);
    const res = await api(
      sim,
      token,
      "/crm/v8/Purchase_Orders?fields=Subject,Modified_Time,Purchase_Items,Vendor_Name&per_page=2&sort_by=Modified_Time&sort_order=asc",
    );
    assert.equal(res.status, 200);
    assert.equal(res.body.data.length, 2);
    for (const r of res.body.data) {
      assert.deepEqual(Object.keys(r).sort(), ["Modified_Time", "Subject", "Vendor_Name", "id"]);
      assert.equal(r.Vendor_Name, null);
      assert.match(r.id, /^\d{18,19}$/);
      assert.match(r.Modified_Time, ZOHO_TIME);
    }
    const info = res.body.info;
    for (
      const k of [
        "per_page",
        "count",
        "page",
        "more_records",
        "next_page_token",
        "page_token_expiry",
        "sort_by",
        "sort_order",
      ]
    ) assert.ok(k in info, `info.${k}`);
    assert.equal(info.per_page, 2);
    assert.equal(info.count, 2);
    assert.equal(info.page, 1);
    assert.equal(info.more_records, true);
    assert.equal(typeof info.next_page_token, "string");
    assert.equal(info.sort_by, "Modified_Time");
    assert.equal(info.sort_order, "asc");

    const last = await api(
      sim,
      token,
      "/crm/v8/Purchase_Orders?fields=Subject,Modified_Time&per_page=2&page=2&sort_by=Modified_Time&sort_order=asc",
    );
    assert.equal(last.body.info.more_records, false);
    assert.equal(last.body.info.next_page_token, null);
  });
});

Deno.test("list: 204 with no body when nothing matches (304 when configured)", async () => {
  await withSim({}, async (sim) => {
    const token = await mint(sim);
    const res = await api(sim, token, LIST);
    assert.equal(res.status, 204);
    assert.equal(res.text, "");
  });
  await withSim({ emptyListStatus: 304, records: records(1) }, async (sim) => {
    const token = await mint(sim);
    const res = await api(sim, token, LIST, { headers: { "If-Modified-Since": at(10) } });
    assert.equal(res.status, 304);
  });
});

Deno.test("list: page reaches 2,000 records, then page_token; no record missed or repeated", async () => {
  await withSim({ records: records(2150, 7) }, async (sim) => {
    const token = await mint(sim);
    const ids: string[] = [];
    let last: any;
    for (let page = 1; page <= 10; page++) {
      last = await api(sim, token, `${LIST}&per_page=200&page=${page}`);
      assert.equal(last.status, 200);
      ids.push(...last.body.data.map((r: any) => r.id));
    }
    const beyond = await api(sim, token, `${LIST}&per_page=200&page=11`);
    assert.equal(beyond.status, 400);
    assert.equal(beyond.body.code, "DISCRETE_PAGINATION_LIMIT_EXCEEDED");
    assert.equal(beyond.body.status, "error");

    let pageToken = last.body.info.next_page_token;
    while (pageToken) {
      const res = await api(sim, token, `${LIST}&per_page=200&page_token=${pageToken}`);
      assert.equal(res.status, 200);
      ids.push(...res.body.data.map((r: any) => r.id));
      pageToken = res.body.info.more_records ? res.body.info.next_page_token : null;
    }
    assert.equal(ids.length, 2150);
    assert.equal(new Set(ids).size, 2150);

    // A page token is bound to its query.
    const other = await api(
      sim,
      token,
      `/crm/v8/Purchase_Orders?fields=Subject&sort_by=Modified_Time&sort_order=asc&page_token=${last.body.info.next_page_token}`,
    );
    assert.equal(other.status, 400);
  });
});

Deno.test("list: sorted by Modified_Time then id; If-Modified-Since is strictly after, any offset", async () => {
  await withSim({ records: records(9, 3) }, async (sim) => {
    const token = await mint(sim);
    const all = await api(sim, token, LIST);
    const rows = all.body.data as Array<{ id: string; Modified_Time: string }>;
    const sorted = [...rows].sort((a, b) =>
      Date.parse(a.Modified_Time) - Date.parse(b.Modified_Time) ||
      (BigInt(a.id) < BigInt(b.id) ? -1 : 1)
    );
    assert.deepEqual(rows, sorted);

    // Records at second 1 share it; "after second 1" means seconds 2 only, whatever the offset.
    const ist = "2025-07-01T05:30:01+05:30"; // = at(1)
    const after = await api(sim, token, LIST, { headers: { "If-Modified-Since": ist } });
    assert.equal(after.status, 200);
    assert.deepEqual(after.body.data.map((r: any) => r.Modified_Time), [at(2), at(2), at(2)]);

    const none = await api(sim, token, LIST, { headers: { "If-Modified-Since": at(2) } });
    assert.equal(none.status, 204);
  });
});

Deno.test("list: If-Modified-Since at a record's own second, included when configured", async () => {
  await withSim({ records: records(9, 3), ifModifiedSinceSameSecond: "included" }, async (sim) => {
    const token = await mint(sim);
    const ist = "2025-07-01T05:30:01+05:30"; // = at(1)
    const from = await api(sim, token, LIST, { headers: { "If-Modified-Since": ist } });
    assert.deepEqual(
      from.body.data.map((r: any) => r.Modified_Time),
      [at(1), at(1), at(1), at(2), at(2), at(2)],
    );
    const last = await api(sim, token, LIST, { headers: { "If-Modified-Since": at(2) } });
    assert.equal(last.body.data.length, 3);
    const none = await api(sim, token, LIST, { headers: { "If-Modified-Since": at(3) } });
    assert.equal(none.status, 204);
  });
});

Deno.test("Modified_Time: second precision with the org's offset; shared within one second", async () => {
  let clock = Date.parse("2025-07-25T09:56:49.250Z");
  await withSim({ now: () => clock, utcOffset: "+05:30" }, (sim) => {
    sim.upsert({ Subject: "a" });
    clock += 500; // same second
    sim.upsert({ Subject: "b" });
    const [a, b] = [...sim.records.values()];
    assert.equal(a.Modified_Time, "2025-07-25T15:26:49+05:30");
    assert.equal(b.Modified_Time, a.Modified_Time);
    clock += 1000;
    sim.edit(String(a.id), { Subject: "a2" });
    assert.equal(sim.records.get(String(a.id))!.Modified_Time, "2025-07-25T15:26:50+05:30");
    return Promise.resolve();
  });
});

Deno.test("get by id: the full record with Purchase_Items; 204 for an unknown id", async () => {
  await withSim({ records: records(2) }, async (sim) => {
    const token = await mint(sim);
    const id = [...sim.records.keys()][0];
    const res = await api(sim, token, `/crm/v8/Purchase_Orders/${id}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.data.length, 1);
    assert.equal(res.body.data[0].id, id);
    assert.equal(res.body.data[0].Purchase_Items.length, 1);

    const unknown = await api(sim, token, "/crm/v8/Purchase_Orders/5725767000009999999");
    assert.equal(unknown.status, 204);
    const bad = await api(sim, token, "/crm/v8/Purchase_Orders/abc");
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, "INVALID_DATA");
  });
});

Deno.test("get by id: 400 INVALID_DATA for an unknown id when configured", async () => {
  await withSim({ records: records(1), unknownRecordGet: 400 }, async (sim) => {
    const token = await mint(sim);
    const unknown = await api(sim, token, "/crm/v8/Purchase_Orders/5725767000009999999");
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body, {
      code: "INVALID_DATA",
      details: { resource_path_index: 1 },
      message: "the related id given seems to be invalid",
      status: "error",
    });
    const id = [...sim.records.keys()][0];
    assert.equal((await api(sim, token, `/crm/v8/Purchase_Orders/${id}`)).status, 200);
  });
});

Deno.test("PUT: per-record results, INVALID_DATA with api_name, no line items, ≤ 100 records", async () => {
  let clock = BASE + 3600_000;
  await withSim({ records: records(3), now: () => clock }, async (sim) => {
    const token = await mint(sim);
    const [a, b, c] = [...sim.records.keys()];
    const cBefore = sim.records.get(c)!.Modified_Time;
    clock += 5000;
    const res = await api(sim, token, "/crm/v8/Purchase_Orders", {
      method: "PUT",
      body: {
        data: [
          { id: a, Xero_Bill_ID: "inv-1", Xero_Sync_Status: "Synced" },
          { id: b, No_Such_Field: "x" },
          { id: c, Purchase_Items: [] },
          { id: "5725767000009999999", Xero_Bill_ID: "x" },
          { Xero_Bill_ID: "x" },
          { id: a, Add_to_Xero: "yes" },
        ],
        trigger: [],
      },
    });
    assert.equal(res.status, 207, "mixed outcomes: read each entry, not the status");
    const [ok, unknownField, lines, unknownId, noId, badType] = res.body.data;
    assert.equal(ok.code, "SUCCESS");
    assert.equal(ok.status, "success");
    assert.equal(ok.message, "record updated");
    assert.equal(ok.details.id, a);
    assert.equal(ok.details.Modified_Time, at(3605));
    assert.equal(sim.records.get(a)!.Modified_Time, at(3605), "a write-back bumps Modified_Time");
    assert.equal(sim.records.get(a)!.Xero_Bill_ID, "inv-1");

    assert.equal(unknownField.code, "INVALID_DATA");
    assert.equal(unknownField.status, "error");
    assert.equal(unknownField.details.api_name, "No_Such_Field");
    assert.equal(lines.code, "INVALID_DATA");
    assert.equal(lines.details.api_name, "Purchase_Items");
    assert.equal(sim.records.get(c)!.Modified_Time, cBefore, "a refused record is untouched");
    assert.equal(unknownId.code, "INVALID_DATA");
    assert.equal(noId.code, "MANDATORY_NOT_FOUND");
    assert.equal(badType.code, "INVALID_DATA");
    assert.equal(badType.details.expected_data_type, "boolean");

    const allBad = await api(sim, token, "/crm/v8/Purchase_Orders", {
      method: "PUT",
      body: { data: [{ id: b, Nope: 1 }], trigger: [] },
    });
    assert.equal(allBad.status, 400);
    assert.equal(allBad.body.data[0].code, "INVALID_DATA");

    const tooMany = await api(sim, token, "/crm/v8/Purchase_Orders", {
      method: "PUT",
      body: { data: Array.from({ length: 101 }, () => ({ id: a })), trigger: [] },
    });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.code, "LIMIT_EXCEEDED");
  });
});

Deno.test("PUT: If-Unmodified-Since → 412 ALREADY_MODIFIED when the record changed later", async () => {
  await withSim({ records: records(2) }, async (sim) => {
    const token = await mint(sim);
    const id = [...sim.records.keys()][1]; // Modified_Time = at(1)
    const put = (since: string) =>
      api(sim, token, "/crm/v8/Purchase_Orders", {
        method: "PUT",
        body: { data: [{ id, Xero_Sync_Status: "Synced" }], trigger: [] },
        headers: { "If-Unmodified-Since": since },
      });
    const stale = await put(at(0));
    assert.equal(stale.status, 412);
    assert.equal(stale.body.code, "ALREADY_MODIFIED");
    assert.equal((await put(at(1))).status, 200);
  });
});

Deno.test("PUT: trigger [] fires nothing; omitted fires workflows; a list fires those named", async () => {
  await withSim({ records: records(1) }, async (sim) => {
    const token = await mint(sim);
    const id = [...sim.records.keys()][0];
    const put = (extra: Record<string, unknown>) =>
      api(sim, token, "/crm/v8/Purchase_Orders", {
        method: "PUT",
        body: { data: [{ id, Xero_Sync_Status: "Synced" }], ...extra },
      });
    assert.equal((await put({ trigger: [] })).status, 200);
    assert.deepEqual(sim.workflowTriggers, {});
    await put({});
    assert.deepEqual(sim.workflowTriggers, { workflow: 1, approval: 1, blueprint: 1 });
    await put({ trigger: ["workflow"] });
    assert.equal(sim.workflowTriggers.workflow, 2);
    assert.equal(sim.workflowTriggers.approval, 1);
    assert.equal((await put({ trigger: "workflow" })).status, 400);
  });
});

Deno.test("settings/fields: module required; Add_to_Xero and the Xero_* fields by default", async () => {
  await withSim({}, async (sim) => {
    const token = await mint(sim);
    const missing = await api(sim, token, "/crm/v8/settings/fields");
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, "REQUIRED_PARAM_MISSING");
    const wrong = await api(sim, token, "/crm/v8/settings/fields?module=Leads");
    assert.equal(wrong.body.code, "INVALID_MODULE");
    const res = await api(sim, token, "/crm/v8/settings/fields?module=Purchase_Orders");
    const byName = new Map(res.body.fields.map((f: any) => [f.api_name, f]));
    for (const n of ["Subject", "PO_Number", "Vendor_Name", "Modified_Time", "Purchase_Items"]) {
      assert.ok(byName.has(n), n);
    }
    assert.equal((byName.get("Add_to_Xero") as any).data_type, "boolean");
    for (
      const n of [
        "Xero_Bill_ID",
        "Xero_Bill_Number",
        "Xero_Bill_Status",
        "Xero_Sync_Status",
        "Xero_Sync_Error",
        "Xero_Last_Synced",
      ]
    ) assert.ok(byName.has(n), n);
  });
  await withSim({ fields: ["Add_to_Xero"] }, async (sim) => {
    const token = await mint(sim);
    const res = await api(sim, token, "/crm/v8/settings/fields?module=Purchase_Orders");
    const names = res.body.fields.map((f: any) => f.api_name);
    assert.ok(names.includes("Add_to_Xero"));
    assert.ok(!names.includes("Xero_Bill_ID"), "an org without write-back fields");
  });
});

Deno.test("settings/fields: Zoho's shape: lengths, lookups, picklists, the Purchase_Items subform", async () => {
  await withSim({}, async (sim) => {
    const token = await mint(sim);
    const res = await api(sim, token, "/crm/v8/settings/fields?module=Purchase_Orders");
    const fields: any[] = res.body.fields;
    // Zoho's official SDK reads an object with `length: 0` as empty (and crashes on the field).
    for (const f of fields) assert.ok(f.length > 0, `${f.api_name}: length ${f.length}`);
    const byName = new Map(fields.map((f) => [f.api_name, f]));
    assert.deepEqual(byName.get("Purchase_Items").associated_module, {
      module: "Purchase_Items",
      id: byName.get("Purchase_Items").associated_module.id,
    });
    assert.equal(byName.get("Vendor_Name").lookup.module.api_name, "Vendors");
    assert.equal(byName.get("Contact_Name").lookup.module.api_name, "Contacts");
    assert.deepEqual(byName.get("Subject").lookup, {});
    assert.deepEqual(
      byName.get("Status").pick_list_values.map((v: any) => v.display_value),
      ["Created", "Approved", "Delivered", "Cancelled"],
    );
    assert.deepEqual(byName.get("Subject").pick_list_values, []);
    assert.equal(byName.get("Owner").length, 120);

    // The modules those point at answer too; other modules stay INVALID_MODULE.
    const items = await api(sim, token, "/crm/v8/settings/fields?module=Purchase_Items");
    const itemNames = items.body.fields.map((f: any) => f.api_name);
    for (const n of ["Product_Name", "Quantity", "List_Price", "Discount", "Net_Total"]) {
      assert.ok(itemNames.includes(n), n);
    }
    for (const module of ["Vendors", "Contacts", "Products"]) {
      const other = await api(sim, token, `/crm/v8/settings/fields?module=${module}`);
      assert.equal(other.status, 200, module);
      assert.ok(other.body.fields.every((f: any) => f.length > 0), module);
    }
  });
});

Deno.test("PUT: a date-time with Z is taken and stored in the org's offset", async () => {
  await withSim({ records: records(1), utcOffset: "+05:30" }, async (sim) => {
    const token = await mint(sim);
    const id = [...sim.records.keys()][0];
    const res = await api(sim, token, "/crm/v8/Purchase_Orders", {
      method: "PUT",
      body: { data: [{ id, Xero_Last_Synced: "2026-01-15T10:20:30Z" }], trigger: [] },
    });
    assert.equal(res.status, 200);
    assert.equal(sim.records.get(id)!.Xero_Last_Synced, "2026-01-15T15:50:30+05:30");
    const bad = await api(sim, token, "/crm/v8/Purchase_Orders", {
      method: "PUT",
      body: { data: [{ id, Xero_Last_Synced: "2026-01-15 10:20" }], trigger: [] },
    });
    assert.equal(bad.body.data[0].code, "INVALID_DATA");
  });
});

Deno.test("unknown paths and modules answer Zoho's error codes", async () => {
  await withSim({}, async (sim) => {
    const token = await mint(sim);
    const mod = await api(sim, token, "/crm/v8/Leads?fields=Last_Name");
    assert.equal(mod.status, 400);
    assert.equal(mod.body.code, "INVALID_MODULE");
    const path = await api(sim, token, "/crm/v8/settings/nothing");
    assert.equal(path.status, 404);
    assert.equal(path.body.code, "INVALID_URL_PATTERN");
  });
});

Deno.test("faults: 429, 500, invalid_token, malformed, drop, delay; counts by endpoint", async () => {
  await withSim({ records: records(1) }, async (sim) => {
    const token = await mint(sim);
    sim.fault({ endpoint: "list", kind: "429", times: 2, retryAfterSec: 3 });
    const first = await api(sim, token, LIST);
    assert.equal(first.status, 429);
    assert.deepEqual(first.body, {
      code: "TOO_MANY_REQUESTS",
      details: {},
      message: "too many requests",
      status: "error",
    });
    assert.equal((await api(sim, token, LIST)).status, 429);
    assert.equal((await api(sim, token, LIST)).status, 200);

    sim.fault({ kind: "500" });
    const err = await api(sim, token, "/crm/v8/settings/fields?module=Purchase_Orders");
    assert.equal(err.status, 500);
    assert.equal(err.body.code, "INTERNAL_ERROR");

    sim.fault({ kind: "invalid_token" });
    assert.equal((await api(sim, token, LIST)).body.code, "INVALID_TOKEN");

    sim.fault({ kind: "malformed" });
    const bad = await fetch(`${sim.url}${LIST}`, {
      headers: { authorization: `Zoho-oauthtoken ${token}` },
    });
    await assert.rejects(bad.json());

    sim.fault({ kind: "drop" });
    await assert.rejects(async () => {
      const r = await fetch(`${sim.url}${LIST}`, {
        headers: { authorization: `Zoho-oauthtoken ${token}` },
      });
      await r.text();
    });

    sim.fault({ kind: "delay", delayMs: 150 });
    const t0 = performance.now();
    assert.equal((await api(sim, token, LIST)).status, 200);
    assert.ok(performance.now() - t0 >= 140);

    assert.equal(sim.counts.list, 7);
    assert.equal(sim.counts.fields, 1);
    assert.equal(sim.counts.token, 1);
    assert.equal(sim.totalCalls(), 8);
    sim.resetCounts();
    assert.equal(sim.totalCalls(), 0);
  });
});

Deno.test("random faults are reproducible from their seed", async () => {
  const run = async () => {
    const statuses: number[] = [];
    await withSim({ records: records(1) }, async (sim) => {
      const token = await mint(sim);
      sim.randomFaults({ rate: 0.5, seed: 42, kinds: ["429", "500"] });
      for (let i = 0; i < 20; i++) statuses.push((await api(sim, token, LIST)).status);
      sim.randomFaults(null);
      assert.equal((await api(sim, token, LIST)).status, 200);
    });
    return statuses;
  };
  const a = await run();
  assert.deepEqual(a, await run());
  assert.ok(a.some((s) => s !== 200) && a.some((s) => s === 200));
});

Deno.test("OAuth code flow: authorize redirects with code/state/accounts-server; code is single-use", async () => {
  await withSim({}, async (sim) => {
    const redirect = "http://127.0.0.1:9/oauth/zoho/callback";
    const auth = new URL(`${sim.url}/oauth/v2/auth`);
    auth.search = new URLSearchParams({
      response_type: "code",
      client_id: sim.clientId,
      scope: "ZohoCRM.modules.purchaseorders.ALL,ZohoCRM.settings.fields.READ",
      redirect_uri: redirect,
      state: "st-1",
      access_type: "offline",
    }).toString();
    const res = await fetch(auth, { redirect: "manual" });
    await res.body?.cancel();
    assert.equal(res.status, 302);
    const loc = new URL(res.headers.get("location")!);
    assert.equal(`${loc.origin}${loc.pathname}`, redirect);
    assert.equal(loc.searchParams.get("state"), "st-1");
    assert.equal(loc.searchParams.get("location"), "us");
    assert.equal(loc.searchParams.get("accounts-server"), sim.url);
    const code = loc.searchParams.get("code")!;

    const exchange = () =>
      post(`${sim.url}/oauth/v2/token`, {
        grant_type: "authorization_code",
        client_id: sim.clientId,
        client_secret: sim.clientSecret,
        redirect_uri: redirect,
        code,
      }).then((r) => r.json());
    const tokens = await exchange();
    assert.equal(typeof tokens.refresh_token, "string");
    assert.equal(typeof tokens.access_token, "string");
    assert.equal(tokens.api_domain, sim.url);
    assert.equal(tokens.expires_in, 3600);
    assert.deepEqual(await exchange(), { error: "invalid_code" });

    const again = await post(`${sim.url}/oauth/v2/token`, {
      grant_type: "refresh_token",
      client_id: sim.clientId,
      client_secret: sim.clientSecret,
      refresh_token: tokens.refresh_token,
    }).then((r) => r.json());
    assert.equal(typeof again.access_token, "string");
    assert.equal(sim.counts.authorize, 1);

    const badClient = await fetch(`${sim.url}/oauth/v2/auth?client_id=x&redirect_uri=${redirect}`, {
      redirect: "manual",
    });
    await badClient.body?.cancel();
    assert.equal(badClient.status, 400);
  });
});
