/**
 * The settings page against both simulators (issue 19): write-back targets must be custom,
 * writable fields the sync does not read; account codes must be in Xero's chart; the vendor →
 * contact links carry the organisation, are honoured by the sync and never overwritten, and all
 * of them can be seen, page by page.
 */
import assert from "node:assert/strict";
import { keys } from "../lib/store/keys.ts";
import { Agent, makeOrders, startUiStack, type UiStack } from "./ui_helpers.ts";

async function withStack(
  fn: (s: UiStack) => Promise<void>,
  opts: Parameters<typeof startUiStack>[0] = {},
) {
  const stack = await startUiStack(opts);
  try {
    await fn(stack);
  } finally {
    await stack.close();
  }
}

/** The settings form as the page would post it, with the current values. */
async function formOf(s: UiStack, extra: Record<string, string>) {
  const cur = await s.engine.settings();
  return {
    checkboxField: cur.checkboxField,
    vendorField: cur.vendorField,
    vendorLabel: cur.vendorLabel,
    defaultAccountCode: cur.defaultAccountCode,
    untaxedTaxType: cur.untaxedTaxType,
    billStatus: cur.billStatus,
    paymentTermsDays: String(cur.paymentTermsDays),
    zohoRecordUrlBase: cur.zohoRecordUrlBase,
    "writeBack.enabled": "on",
    "writeBack.fields.billId": "Xero_Bill_ID",
    "writeBack.fields.billNumber": "Xero_Bill_Number",
    "writeBack.fields.billStatus": "Xero_Bill_Status",
    "writeBack.fields.syncStatus": "Xero_Sync_Status",
    "writeBack.fields.syncError": "Xero_Sync_Error",
    "writeBack.fields.lastSynced": "Xero_Last_Synced",
    ...extra,
  };
}

Deno.test("settings: the order's own fields are refused as write-back targets, with the reason", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    const before = await s.engine.settings();
    const cases: Array<[string, string, RegExp]> = [
      ["billId", "PO_Number", /standard Zoho field|not a custom field/],
      ["billNumber", "Description", /standard Zoho field|not a custom field/],
      ["billStatus", "Status", /standard Zoho field|not a custom field/],
      ["syncStatus", "Subject", /standard Zoho field|not a custom field/],
      ["syncError", "Add_to_Xero", /“Add to Xero” field/],
      ["lastSynced", "Vendor_Name", /vendor field/],
    ];
    const form = await formOf(
      s,
      Object.fromEntries(
        cases.map(([k, v]) => [`writeBack.fields.${k}`, v]),
      ),
    );
    const bad = await a.postForm("/settings", { csrf, ...form });
    assert.equal(bad.res.status, 422);
    assert.match(bad.text, /Nothing was saved/);
    for (const [k, , message] of cases) {
      const err = new RegExp(`id="f-writeBack-fields-${k}-err"[^>]*>([^<]*)<`).exec(bad.text);
      assert.ok(err, `an error at ${k}`);
      assert.match(err[1].replaceAll("&#8220;", "“").replaceAll("&#8221;", "”"), message, k);
    }
    assert.deepEqual(await s.engine.settings(), before);

    // What Zoho's field list says: a read-only field, a standard one, a field used twice.
    const meta = await a.postForm("/settings", {
      csrf,
      ...(await formOf(s, {
        "writeBack.fields.billId": "Grand_Total",
        "writeBack.fields.billNumber": "Carrier",
        "writeBack.fields.billStatus": "Xero_Sync_Status",
      })),
    });
    assert.equal(meta.res.status, 422);
    assert.match(meta.text, /id="f-writeBack-fields-billId-err"[^>]*>[^<]*read-only/);
    assert.match(meta.text, /id="f-writeBack-fields-billNumber-err"[^>]*>[^<]*custom field/);
    assert.match(
      meta.text,
      /id="f-writeBack-fields-syncStatus-err"[^>]*>[^<]*also used for the bill status/,
    );
    assert.deepEqual(await s.engine.settings(), before);

    // Custom, writable fields (and a field not in Zoho yet, which the sync skips) are fine.
    const good = await a.postForm("/settings", {
      csrf,
      ...(await formOf(s, { "writeBack.fields.billId": "Xero_Bill_Ref_Later" })),
    });
    assert.equal(good.res.status, 303);
    assert.equal((await s.engine.settings()).writeBack.fields.billId, "Xero_Bill_Ref_Later");
  }));

Deno.test("settings: account codes must be active, non-bank accounts of Xero's chart", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    const before = await s.engine.settings();
    const bad = await a.postForm("/settings", {
      csrf,
      ...(await formOf(s, {
        defaultAccountCode: "999",
        "accountOverrides.0.match": "SKU-1",
        "accountOverrides.0.accountCode": "499", // archived in the chart
        "accountOverrides.1.match": "SKU-2",
        "accountOverrides.1.accountCode": "090", // the bank account
      })),
    });
    assert.equal(bad.res.status, 422);
    assert.match(bad.text, /id="f-defaultAccountCode-err"[^>]*>[^<]*not in Xero's chart/);
    assert.match(bad.text, /id="f-accountOverrides-0-accountCode-err"[^>]*>[^<]*not in Xero/);
    assert.match(bad.text, /id="f-accountOverrides-1-accountCode-err"[^>]*>[^<]*bank account/);
    assert.deepEqual(await s.engine.settings(), before);

    // Xero not connected: saved, with a note that the codes were not checked.
    await s.ctx.xero.disconnect();
    const unchecked = await a.postForm("/settings", {
      csrf,
      ...(await formOf(s, { defaultAccountCode: "998" })),
    });
    assert.equal(unchecked.res.status, 303);
    const where = unchecked.res.headers.get("location")!;
    assert.equal((await s.engine.settings()).defaultAccountCode, "998");
    const page = await a.get(where);
    assert.match(page.text, /Settings saved/);
    assert.match(page.text, /account codes could not be checked against Xero/i);
  }));

Deno.test("contact links: an admin's link carries the organisation, is used by the sync and is kept", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    const vendor = { id: "5876543000000888001", name: "ABC Furniture" };
    const choice = s.xeroSim.contacts().find((c) => c.Name === "PowerDirect")!;
    const linked = await a.postForm("/settings/contacts", {
      csrf,
      vendorId: vendor.id,
      contactID: choice.ContactID,
    });
    assert.equal(linked.res.headers.get("location"), "/settings?notice=contact-saved#contacts-h");
    const stored = await s.ctx.kv.get<{ contactID: string; tenantId?: string }>(
      keys.contact(vendor.id),
    );
    assert.equal(stored.value?.tenantId, s.xeroSim.tenantId);

    // The vendor's name matches another contact ("ABC Furniture"): the link still wins.
    const run = await s.run({ window: "all", mode: "create_and_update" });
    assert.equal(run.counts.created, 2, JSON.stringify(run.results));
    for (const inv of s.xeroSim.invoices()) assert.equal(inv.Contact.ContactID, choice.ContactID);
    const after = await s.ctx.kv.get<{ contactID: string; linkedBy?: string }>(
      keys.contact(vendor.id),
    );
    assert.equal(after.value?.contactID, choice.ContactID, "the link was not overwritten");
    assert.equal(after.value?.linkedBy, "admin");
  }, {
    records: makeOrders(2, { vendors: [{ id: "5876543000000888001", name: "ABC Furniture" }] }),
  }));

Deno.test("contact links: every link can be seen, 100 a page", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    await a.login();
    const ids = Array.from({ length: 250 }, (_, i) => String(5876543000000900000n + BigInt(i)));
    for (let i = 0; i < ids.length; i += 50) {
      const op = s.ctx.kv.atomic();
      for (const id of ids.slice(i, i + 50)) {
        op.set(keys.contact(id), {
          contactID: crypto.randomUUID(),
          name: `Vendor ${id}`,
          tenantId: s.xeroSim.tenantId,
          at: Date.now(),
        });
      }
      await op.commit();
    }
    const seen = new Set<string>();
    let path: string | undefined = "/settings";
    for (let pages = 0; path && pages < 10; pages++) {
      const { text } = await a.get(path);
      const rows = [...text.matchAll(/<td class="mono">(\d+)<\/td>/g)].map((m) => m[1]);
      assert.ok(rows.length <= 100, `${rows.length} rows on one page`);
      for (const r of rows) seen.add(r);
      const next = /<a href="([^"]+)"[^>]*>Next vendors/.exec(text)?.[1];
      path = next?.replaceAll("&amp;", "&");
    }
    assert.equal(seen.size, 250);
  }));
