/**
 * The admin pages over real HTTP against the app and both simulators: who may see and post what
 * (sessions, CSRF, origins, cookie flags, tampering, login rate limit), the OAuth flows with their
 * `state` checks, settings validation, run filters and retrying failed records.
 */
import assert from "node:assert/strict";
import { keys } from "../lib/store/keys.ts";
import { SESSION_COOKIE } from "../routes/session.ts";
import { Agent, makeOrders, startUiStack, TEST_ENV, type UiStack } from "./ui_helpers.ts";

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

/** Waits for the run to finish (the engine runs it in the background). */
async function settled(s: UiStack, runId: string) {
  for (let i = 0; i < 400; i++) {
    const run = await s.engine.getRun(runId);
    if (run && run.status !== "running") return run;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`run ${runId} did not finish`);
}

const PAGES = ["/", "/runs", "/runs/r000000000abcd", "/settings", "/connections"];
const OAUTH = ["/oauth/zoho/start", "/oauth/xero/start", "/oauth/xero/callback?code=x&state=y"];
const POSTS = [
  "/sync",
  "/logout",
  "/settings",
  "/settings/contacts",
  "/settings/contacts/remove",
  "/runs/r000000000abcd/retry",
  "/connections/zoho/disconnect",
  "/connections/xero/disconnect",
  "/connections/xero/tenant",
];

Deno.test("without a session every page goes to /login and every POST is refused", () =>
  withStack(async (s) => {
    const anon = new Agent(s.url);
    for (const path of [...PAGES, ...OAUTH]) {
      const { res } = await anon.get(path);
      assert.equal(res.status, 302, path);
      assert.equal(
        res.headers.get("location"),
        `/login?next=${encodeURIComponent(path)}`,
        path,
      );
    }
    for (const path of POSTS) {
      const { res, text } = await anon.postForm(path, { csrf: "x", window: "all" });
      assert.equal(res.status, 401, path);
      assert.match(text, /not logged in/, path);
    }
    const api = await anon.fetch("/api/sync-runs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ window: "all", mode: "preview" }),
    });
    assert.equal(api.status, 401);
    await api.body?.cancel();
    // The login page itself is public and says what it is for.
    const login = await anon.get("/login");
    assert.equal(login.res.status, 200);
    assert.match(login.text, /<label for="password">Admin password<\/label>/);
    assert.equal((await s.engine.listRuns()).runs.length, 0, "nothing was started");
  }));

Deno.test("cross-site form posts are refused: wrong or missing CSRF token, foreign origin", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    const form = { window: "all", mode: "preview" };
    const attempts: Array<[string, Record<string, string>, HeadersInit]> = [
      ["missing token", form, {}],
      ["wrong token", { ...form, csrf: "0".repeat(48) }, {}],
      ["foreign origin", { ...form, csrf }, { origin: "https://evil.example" }],
      ["cross-site fetch", { ...form, csrf }, { "sec-fetch-site": "cross-site" }],
    ];
    for (const [why, body, headers] of attempts) {
      const { res, text } = await a.postForm("/sync", body, headers);
      assert.equal(res.status, 403, why);
      assert.match(text, /refused|expired/, why);
    }
    for (const path of ["/settings", "/connections/xero/disconnect", "/logout"]) {
      const { res } = await a.postForm(path, { csrf: "nope" });
      assert.equal(res.status, 403, path);
    }
    assert.equal((await s.engine.listRuns()).runs.length, 0, "no run was started");
    assert.equal((await s.ctx.xero.status()).state, "connected", "Xero was not disconnected");
    // The login form is checked for its origin too.
    const foreign = await new Agent(s.url).postForm(
      "/login",
      { password: TEST_ENV.ADMIN_PASSWORD },
      { origin: "https://evil.example" },
    );
    assert.equal(foreign.res.status, 403);
    assert.equal(foreign.res.headers.getSetCookie().length, 0);
    // The same request from this app's own page goes through.
    const ok = await a.postForm("/sync", { ...form, csrf }, { origin: s.url });
    assert.equal(ok.res.status, 303);
    await settled(s, ok.res.headers.get("location")!.split("/").pop()!);
  }));

Deno.test("the session cookie is HttpOnly, SameSite=Lax, and Secure when the app is on https", async () => {
  await withStack(async (s) => {
    const { res } = await new Agent(s.url).postForm("/login", {
      password: TEST_ENV.ADMIN_PASSWORD,
    });
    const [cookie] = res.headers.getSetCookie();
    assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=[0-9a-f]{48}\\.[\\w-]+;`));
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Lax/);
    assert.match(cookie, /; Path=\//);
    assert.doesNotMatch(cookie, /Secure/, "plain http (local) cannot carry a Secure cookie");
  });
  await withStack(async (s) => {
    const res = await s.app.request("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ password: TEST_ENV.ADMIN_PASSWORD }),
    });
    assert.equal(res.status, 303);
    assert.match(res.headers.getSetCookie()[0], /; Secure/);
  }, { env: { APP_BASE_URL: "https://sync.example.com" } });
});

Deno.test("a tampered, forged or ended session cookie is refused", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    await a.login();
    const good = a.cookies.get(SESSION_COOKIE)!;
    const [id, sig] = good.split(".");
    const other = "a".repeat(48);
    const forged = [
      `${id}.${sig.slice(0, -2)}${sig.endsWith("AA") ? "BB" : "AA"}`, // signature changed
      `${other}.${sig}`, // id changed, old signature
      id, // no signature
      `${id}.${sig}.extra`,
      `${other}.${await s.ctx.secrets.sign("something else")}`,
    ];
    for (const value of forged) {
      const b = new Agent(s.url);
      b.cookies.set(SESSION_COOKIE, value);
      const { res } = await b.get("/settings");
      assert.equal(res.status, 302, value);
      assert.match(res.headers.get("location") ?? "", /^\/login/);
    }
    assert.equal((await a.get("/settings")).res.status, 200, "the real cookie works");

    // After logout the same cookie, replayed, is refused: the session is gone from KV.
    const csrf = (await a.get("/")).text.match(/name="csrf" value="([0-9a-f]+)"/)![1];
    const out = await a.postForm("/logout", { csrf });
    assert.equal(out.res.status, 303);
    assert.equal(out.res.headers.get("location"), "/login?notice=logged-out");
    const replay = new Agent(s.url);
    replay.cookies.set(SESSION_COOKIE, good);
    assert.equal((await replay.get("/")).res.status, 302);
    assert.equal((await replay.postForm("/sync", { csrf, window: "all" })).res.status, 401);
    assert.equal((await s.ctx.kv.get(keys.session(id))).value, null);
  }));

Deno.test("failed logins are limited to 5 per 15 minutes, with a page saying when to retry", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    for (let i = 1; i <= 5; i++) {
      const { res, text } = await a.postForm("/login", { password: `wrong-${i}` });
      assert.equal(res.status, 401);
      assert.match(text, new RegExp(`${5 - i} attempts? left`));
    }
    const { res, text } = await a.postForm("/login", { password: TEST_ENV.ADMIN_PASSWORD });
    assert.equal(res.status, 429, "even the right password waits out the window");
    const retry = Number(res.headers.get("retry-after"));
    assert.ok(retry >= 1 && retry <= 900, `Retry-After ${retry}`);
    assert.match(text, /Too many failed log-ins from your address\. Try again after \d\d:\d\d UTC/);
    assert.equal(res.headers.getSetCookie().length, 0);
    // Next window: the counter is per window, so the right password works again.
    const bucket = keys.rateLimit("login:127.0.0.1", Math.floor(Date.now() / 900_000));
    await s.ctx.kv.delete(bucket);
    assert.equal(
      (await a.postForm("/login", { password: TEST_ENV.ADMIN_PASSWORD })).res.status,
      303,
    );
    // Only a local path is ever a redirect target after login.
    const b = new Agent(s.url);
    const evil = await b.postForm("/login", {
      password: TEST_ENV.ADMIN_PASSWORD,
      next: "//evil.example/x",
    });
    assert.equal(evil.res.headers.get("location"), "/");
  }));

Deno.test("Zoho OAuth: connect through the authorize redirect; state is single-use and per session", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    await a.login();
    const before = await a.get("/connections");
    assert.match(before.text, /Connect Zoho CRM/);

    const start = await a.get("/oauth/zoho/start");
    assert.equal(start.res.status, 302);
    const authorize = new URL(start.res.headers.get("location")!);
    assert.equal(authorize.origin + authorize.pathname, `${s.zohoSim.url}/oauth/v2/auth`);
    assert.equal(authorize.searchParams.get("redirect_uri"), `${s.url}/oauth/zoho/callback`);
    const state = authorize.searchParams.get("state")!;
    assert.match(state, /^[0-9a-f]{64}$/);

    // The simulator approves at once and sends the browser back with a code.
    const approved = await fetch(authorize, { redirect: "manual" });
    await approved.body?.cancel();
    const callback = new URL(approved.headers.get("location")!);
    assert.equal(callback.searchParams.get("state"), state);

    // Another admin session cannot use this state.
    const intruder = new Agent(s.url);
    await intruder.login();
    const stolen = await intruder.get(callback.pathname + callback.search);
    assert.equal(stolen.res.headers.get("location"), "/connections?notice=oauth-state");

    // The state was spent by that attempt: the real callback now fails too, and is told so.
    const late = await a.get(callback.pathname + callback.search);
    assert.equal(late.res.headers.get("location"), "/connections?notice=oauth-state");

    // A fresh, untampered flow connects.
    const again = await a.get("/oauth/zoho/start");
    const ok = await fetch(again.res.headers.get("location")!, { redirect: "manual" });
    await ok.body?.cancel();
    const back = new URL(ok.headers.get("location")!);
    const done = await a.get(back.pathname + back.search);
    assert.equal(done.res.headers.get("location"), "/connections?notice=zoho-connected");
    assert.equal((await s.ctx.zoho.status()).state, "connected");
    const page = await a.get("/connections?notice=zoho-connected");
    assert.match(page.text, /Zoho CRM is connected\./);
    assert.match(page.text, new RegExp(`data-testid="zoho-dc">${new URL(s.zohoSim.url).host}<`));

    // A made-up state, and an error answer, change nothing.
    const fake = await a.get(`/oauth/zoho/callback?code=abc&state=${"f".repeat(64)}`);
    assert.equal(fake.res.headers.get("location"), "/connections?notice=oauth-state");
  }, { env: { ZOHO_REFRESH_TOKEN: "" } }));

Deno.test("Xero OAuth: connect, a refused code is explained, disconnect is a CSRF-protected POST", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    const flow = async () => {
      const start = await a.get("/oauth/xero/start");
      const authorize = new URL(start.res.headers.get("location")!);
      assert.equal(authorize.origin, s.xeroSim.url);
      assert.equal(authorize.searchParams.get("redirect_uri"), `${s.url}/oauth/xero/callback`);
      return authorize;
    };
    const authorize = await flow();
    const approved = await fetch(authorize, { redirect: "manual" });
    await approved.body?.cancel();
    const back = new URL(approved.headers.get("location")!);
    const done = await a.get(back.pathname + back.search);
    assert.equal(done.res.headers.get("location"), "/connections?notice=xero-connected");
    assert.equal((await s.ctx.xero.status()).state, "connected");

    // A code Xero never issued: the exchange fails and the page says what Xero said.
    const state = (await flow()).searchParams.get("state")!;
    const bad = await a.get(`/oauth/xero/callback?code=not-a-code&state=${state}`);
    assert.equal(bad.res.headers.get("location"), "/connections?notice=oauth-failed");
    const page = await a.get("/connections?notice=oauth-failed");
    assert.match(page.text, /The connection could not be completed/);
    assert.match(page.text, /Xero said: /);
    assert.doesNotMatch(page.text, new RegExp(s.xeroSim.clientSecret));
    assert.equal((await s.ctx.xero.status()).state, "connected", "a failed flow keeps the old one");

    // Denied at Xero: nothing changes.
    const state2 = (await flow()).searchParams.get("state")!;
    const denied = await a.get(`/oauth/xero/callback?error=access_denied&state=${state2}`);
    assert.equal(denied.res.headers.get("location"), "/connections?notice=oauth-denied");

    const off = await a.postForm("/connections/xero/disconnect", { csrf });
    assert.equal(off.res.status, 303);
    assert.equal((await s.ctx.xero.status()).state, "not_connected");
    const after = await a.get("/connections?notice=xero-disconnected");
    assert.match(after.text, /Connect Xero/);
    // Settings fall back to text inputs, saying why.
    const settings = await a.get("/settings");
    assert.match(settings.text, /could not be loaded/);
    assert.match(settings.text, /<input id="f-defaultAccountCode" name="defaultAccountCode"/);
  }, { env: { XERO_REFRESH_TOKEN: "" } }));

Deno.test("Xero with several organisations: the admin chooses one", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    const page = await a.get("/connections");
    assert.match(page.text, /Organisation to send bills to/);
    assert.match(page.text, /Second Org Ltd/);
    const wrong = await a.postForm("/connections/xero/tenant", { csrf, tenantId: "no-such" });
    assert.equal(wrong.res.headers.get("location"), "/connections?notice=tenant-unknown");
    const chosen = await a.postForm("/connections/xero/tenant", { csrf, tenantId: "tenant-two" });
    assert.equal(chosen.res.headers.get("location"), "/connections?notice=tenant-chosen");
    assert.equal((await s.ctx.xero.status()).tenantName, "Second Org Ltd");
  }, {
    xero: {
      tenants: [
        { tenantId: "tenant-one", tenantName: "First Org Pty" },
        { tenantId: "tenant-two", tenantName: "Second Org Ltd" },
      ],
    },
  }));

Deno.test("settings: every field is on the form; a bad value saves nothing and is shown at its field", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    const { text } = await a.get("/settings");
    for (
      const name of [
        "checkboxField",
        "vendorField",
        "vendorLabel",
        "defaultAccountCode",
        "defaultTaxType",
        "untaxedTaxType",
        "billStatus",
        "paymentTermsDays",
        "sendItemCodes",
        "zohoRecordUrlBase",
        "writeBack.enabled",
        "writeBack.fields.billId",
        "writeBack.fields.lastSynced",
        "accountOverrides.0.match",
        "accountOverrides.0.accountCode",
        "taxMappings.0.zohoTaxName",
        "taxMappings.0.percentage",
        "taxMappings.0.taxType",
      ]
    ) assert.ok(text.includes(`name="${name}"`), name);
    // Lists from the connected organisation, not free text.
    assert.match(text, /<select id="f-defaultAccountCode"[^>]*>.*<option value="300"/s);
    assert.match(text, /<select id="f-untaxedTaxType"[^>]*>.*<option value="NONE"/s);
    assert.match(text, /<select id="link-contact"/);

    const before = await s.engine.settings();
    const bad = await a.postForm("/settings", {
      csrf,
      checkboxField: "Add to Xero", // spaces: not an API name
      vendorField: "Vendor_Name",
      vendorLabel: "Client Name",
      defaultAccountCode: "300",
      untaxedTaxType: "NONE",
      billStatus: "DRAFT",
      paymentTermsDays: "30",
      zohoRecordUrlBase: "ftp://crm.example/",
      "taxMappings.3.taxType": "INPUT", // a row without name or rate
    });
    assert.equal(bad.res.status, 422);
    assert.match(bad.text, /Nothing was saved/);
    assert.match(bad.text, /id="f-checkboxField-err"/);
    assert.match(bad.text, /id="f-zohoRecordUrlBase-err"/);
    assert.match(bad.text, /id="f-taxMappings-3-zohoTaxName-err"/);
    assert.match(bad.text, /value="Add to Xero"/, "what was typed is kept");
    assert.deepEqual(await s.engine.settings(), before);

    const good = await a.postForm("/settings", {
      csrf,
      checkboxField: "Send_To_Xero",
      vendorField: "Vendor_Name",
      vendorLabel: "Supplier",
      defaultAccountCode: "310",
      defaultTaxType: "",
      untaxedTaxType: "NONE",
      billStatus: "AUTHORISED",
      paymentTermsDays: "14",
      sendItemCodes: "on",
      zohoRecordUrlBase: "https://crm.zoho.eu/crm/org1/tab/PurchaseOrders/",
      "accountOverrides.0.match": "SKU-1",
      "accountOverrides.0.accountCode": "400",
      "taxMappings.0.zohoTaxName": "GST",
      "taxMappings.0.percentage": "10",
      "taxMappings.0.taxType": "INPUT",
      "writeBack.fields.billId": "Bill_Id",
    });
    assert.equal(good.res.status, 303);
    assert.equal(good.res.headers.get("location"), "/settings?notice=settings-saved");
    const saved = await s.engine.settings();
    assert.equal(saved.checkboxField, "Send_To_Xero");
    assert.equal(saved.vendorLabel, "Supplier");
    assert.equal(saved.defaultAccountCode, "310");
    assert.equal(saved.defaultTaxType, null);
    assert.equal(saved.billStatus, "AUTHORISED");
    assert.equal(saved.paymentTermsDays, 14);
    assert.equal(saved.sendItemCodes, true);
    assert.deepEqual(saved.accountOverrides, [{ match: "SKU-1", accountCode: "400" }]);
    assert.deepEqual(saved.taxMappings, [{ zohoTaxName: "GST", percentage: 10, taxType: "INPUT" }]);
    assert.equal(saved.writeBack.enabled, false, "an unticked box is off");
    assert.equal(saved.writeBack.fields.billId, "Bill_Id");
    assert.equal(saved.writeBack.fields.billNumber, "", "an empty name skips that field");
  }));

Deno.test("runs: history, outcome filter, the no-JS sync form, and retrying failed records", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    // Xero fails every bill write: the records fail with Xero's error.
    s.xeroSim.randomFaults({ rate: 1, seed: 1, kinds: ["500"], endpoints: ["invoices"] });
    const started = await a.postForm("/sync", { csrf, window: "all", mode: "create_and_update" });
    assert.equal(started.res.status, 303);
    const runId = started.res.headers.get("location")!.split("/").pop()!;
    const run = await settled(s, runId);
    assert.equal(run.trigger, "page");
    assert.ok(run.counts.failed > 0, "records failed");

    const page = await a.get(`/runs/${runId}`);
    assert.match(page.text, /Retry failed records/);
    assert.match(page.text, /data-outcome="failed"/);
    const filtered = await a.get(`/runs/${runId}?outcome=created`);
    assert.doesNotMatch(filtered.text, /<tr data-po=/);
    assert.match(filtered.text, /No records to show/);

    const bad = await a.postForm("/sync", {
      csrf,
      window: "last_days",
      days: "0",
      mode: "preview",
    });
    assert.equal(bad.res.status, 400);
    assert.match(bad.text, /days must be a whole number/);

    s.xeroSim.randomFaults(null);
    const retry = await a.postForm(`/runs/${runId}/retry`, { csrf });
    assert.equal(retry.res.status, 303);
    const retryId = retry.res.headers.get("location")!.split("/").pop()!;
    assert.notEqual(retryId, runId);
    const second = await settled(s, retryId);
    assert.equal(second.counts.failed, 0);
    assert.equal(second.counts.created, 3);
    assert.equal(s.xeroSim.invoices().length, 3);
    const detail = await a.get(`/runs/${retryId}`);
    assert.match(detail.text, /After last synchronization ran/);
    assert.match(
      detail.text,
      /href="https:\/\/go\.xero\.com\/AccountsPayable\/View\.aspx\?InvoiceID=/,
    );
    assert.doesNotMatch(detail.text, /Retry failed records/);

    const history = await a.get("/runs");
    assert.match(history.text, new RegExp(`href="/runs/${retryId}"`));
    assert.match(history.text, /Completed with errors/);
    const missing = await a.get("/runs/r_nope");
    assert.equal(missing.res.status, 404);
  }, { records: makeOrders(3) }));

Deno.test("settings: a Zoho vendor is linked to a Xero contact picked from the organisation", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    const contact = s.xeroSim.contacts().find((c) => c.ContactStatus === "ACTIVE")!;
    const vendorId = "5876543000000777001";
    const unknown = await a.postForm("/settings/contacts", {
      csrf,
      vendorId,
      contactID: "00000000-0000-0000-0000-000000000000",
    });
    assert.equal(
      unknown.res.headers.get("location"),
      "/settings?notice=contact-invalid#contacts-h",
    );
    assert.equal((await s.ctx.kv.get(keys.contact(vendorId))).value, null);

    const ok = await a.postForm("/settings/contacts", {
      csrf,
      vendorId,
      contactID: contact.ContactID,
    });
    assert.equal(ok.res.headers.get("location"), "/settings?notice=contact-saved#contacts-h");
    const stored = (await s.ctx.kv.get<{ contactID: string }>(keys.contact(vendorId))).value;
    assert.equal(stored?.contactID, contact.ContactID);
    const page = await a.get("/settings");
    assert.match(
      page.text,
      new RegExp(`<td class="mono">${vendorId}</td><td>${contact.Name}</td>`),
    );

    await a.postForm("/settings/contacts/remove", { csrf, vendorId });
    assert.equal((await s.ctx.kv.get(keys.contact(vendorId))).value, null);
  }));

Deno.test("a sync started while another runs shows the running one", () =>
  withStack(async (s) => {
    const a = new Agent(s.url);
    const csrf = await a.login();
    s.zohoSim.fault({ endpoint: "get", kind: "delay", delayMs: 600 });
    const first = await s.engine.startRun({ window: "all", mode: "preview" }, "api");
    assert.ok(first.started);
    const second = await a.postForm("/sync", { csrf, window: "all", mode: "preview" });
    assert.equal(second.res.headers.get("location"), `/runs/${first.runId}?notice=busy`);
    const page = await a.get(`/runs/${first.runId}?notice=busy`);
    assert.match(page.text, /Another sync is already running/);
    assert.match(page.text, /data-island="RunWatcher"/);
    await first.done;
  }, { records: makeOrders(1) }));
