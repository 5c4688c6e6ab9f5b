/**
 * The Xero client over real HTTP against the simulator, with a real (in-memory) Deno KV: batching,
 * per-bill outcomes, idempotent replays, status rules, contact resolution and its call budget,
 * rate limits and Retry-After, token rotation across two instances, and secrets kept out of errors.
 */
import assert from "node:assert/strict";
import {
  XeroClient,
  type XeroClientOptions,
  XeroError,
  type XeroInvoice,
} from "../lib/xero/mod.ts";
import { createSecrets, type Secrets } from "../lib/secrets.ts";
import { keys } from "../lib/store/keys.ts";
import { startXeroSim, type XeroSim, type XeroSimOptions } from "../sandbox/xero.ts";
import {
  parsePurchaseOrder,
  SettingsSchema,
  taxRateMismatches,
  toBill,
  totalMismatch,
} from "../lib/mapping/mod.ts";
import { generatePurchaseOrder, seededRandom } from "../sandbox/po_generator.ts";

const KEY = "test-encryption-key-0123456789-abcdef";

interface Env {
  sim: XeroSim;
  kv: Deno.Kv;
  secrets: Secrets;
  client: XeroClient;
  make: (extra?: Partial<XeroClientOptions>) => XeroClient;
  [Symbol.asyncDispose](): Promise<void>;
}

async function setup(
  simOpts: XeroSimOptions = {},
  clientOpts: Partial<XeroClientOptions> = {},
): Promise<Env> {
  const sim = await startXeroSim(simOpts);
  const kv = await Deno.openKv(":memory:");
  const secrets = await createSecrets(KEY);
  const make = (extra: Partial<XeroClientOptions> = {}) =>
    new XeroClient({
      kv,
      secrets,
      loginUrl: sim.url,
      identityUrl: sim.url,
      apiUrl: sim.url,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      refreshTokenSeed: sim.refreshToken,
      retry: { attempts: 4, maxWaitMs: 5000 },
      ...clientOpts,
      ...extra,
    });
  return {
    sim,
    kv,
    secrets,
    client: make(),
    make,
    async [Symbol.asyncDispose]() {
      kv.close();
      await sim.close();
    },
  };
}

function bill(contactID: string, n: number, line: Record<string, unknown> = {}): XeroInvoice {
  return {
    type: "ACCPAY",
    contact: { contactID },
    invoiceNumber: `PO-${n}`,
    date: "2026-01-15",
    dueDate: "2026-02-14",
    lineAmountTypes: "Exclusive",
    currencyCode: "AUD",
    url: `https://crm.zoho.com/crm/org1/tab/PurchaseOrders/${n}`,
    lineItems: [{
      description: "Widget",
      quantity: 2,
      unitAmount: 12.3456,
      accountCode: "300",
      taxType: "INPUT",
      ...line,
    }],
  };
}

const supplierId = (sim: XeroSim) => sim.contacts()[0].ContactID;

async function storedTokens(env: Env) {
  const v = (await env.kv.get<{ refreshToken: string; accessToken?: string; claim?: unknown }>(
    keys.xeroToken(),
  ))
    .value!;
  return {
    refresh: await env.secrets.decrypt(v.refreshToken, keys.xeroToken()),
    access: v.accessToken ? await env.secrets.decrypt(v.accessToken, keys.xeroToken()) : undefined,
    raw: v,
  };
}

Deno.test("upsertBills: 120 bills go in 3 invoice calls, each with its own result", async () => {
  await using env = await setup();
  const contact = supplierId(env.sim);
  const items = Array.from({ length: 120 }, (_, i) => ({
    key: `po-${i}`,
    invoice: bill(contact, i),
  }));
  const results = await env.client.upsertBills(items);
  assert.equal(env.sim.counts["invoices.put"], 3);
  assert.equal(env.client.calls.byEndpoint["invoices.put"], 3);
  assert.equal(results.size, 120);
  assert.equal(env.sim.invoices().length, 120);
  const r = results.get("po-7")!;
  assert.ok(r.ok);
  assert.equal(r.invoiceNumber, "PO-7");
  assert.equal(r.status, "DRAFT");
  assert.equal(r.total, 27.16); // 2 × 12.3456 = 24.69 + 10% GST 2.47: unitdp=4 kept 4 dp
  const held = env.sim.invoices().find((i) => i.InvoiceID === r.invoiceID)!;
  assert.equal(held.LineItems[0].UnitAmount, 12.3456);
  assert.equal(held.Url, "https://crm.zoho.com/crm/org1/tab/PurchaseOrders/7");
});

Deno.test("upsertBills: one invalid bill fails alone with Xero's message; the others are created", async () => {
  await using env = await setup();
  const contact = supplierId(env.sim);
  const results = await env.client.upsertBills([
    { key: "a", invoice: bill(contact, 1) },
    { key: "b", invoice: bill(contact, 2, { accountCode: "999" }) },
    { key: "c", invoice: bill(contact, 3) },
  ]);
  assert.equal(env.sim.counts["invoices.put"], 1);
  assert.deepEqual(results.get("b"), {
    ok: false,
    message: "Account code '999' is not a valid code for this document.",
    retryable: false,
  });
  assert.ok(results.get("a")!.ok && results.get("c")!.ok);
  assert.deepEqual(env.sim.invoices().map((i) => i.InvoiceNumber), ["PO-1", "PO-3"]);
});

Deno.test("upsertBills: replaying a batch (same content, same key) creates nothing new, even after a dropped answer", async () => {
  await using env = await setup();
  const contact = supplierId(env.sim);
  const items = [1, 2, 3].map((n) => ({ key: `k${n}`, invoice: bill(contact, n) }));
  const first = await env.client.upsertBills(items);
  const again = await env.client.upsertBills(items);
  assert.deepEqual(again, first);
  assert.equal(env.sim.invoices().length, 3);
  assert.equal(env.sim.counts["invoices.put"], 2);

  // Xero stores the bills, then the connection drops before the answer: the retry carries the
  // same Idempotency-Key and gets the stored answer.
  env.sim.fault({ endpoint: "invoices.put", kind: "drop" });
  const more = [4, 5].map((n) => ({ key: `k${n}`, invoice: bill(contact, n) }));
  const res = await env.client.upsertBills(more);
  assert.ok(res.get("k4")!.ok && res.get("k5")!.ok);
  assert.equal(env.sim.invoices().length, 5);
  const ids = env.sim.invoices().map((i) => i.InvoiceID);
  assert.deepEqual([...res.values()].map((r) => r.ok && r.invoiceID), ids.slice(3));
});

Deno.test("upsertBills: DRAFT bills are updated in place; an AUTHORISED bill is not modified", async () => {
  await using env = await setup();
  const contact = supplierId(env.sim);
  const created = await env.client.upsertBills([
    { key: "a", invoice: bill(contact, 1) },
    { key: "b", invoice: bill(contact, 2) },
  ]);
  const a = created.get("a")!, b = created.get("b")!;
  assert.ok(a.ok && b.ok);
  env.sim.setInvoiceStatus(b.invoiceID, "AUTHORISED");
  const before = env.sim.invoices().find((i) => i.InvoiceID === b.invoiceID)!;
  const updated = await env.client.upsertBills([
    { key: "a", invoice: { ...bill(contact, 1, { quantity: 3 }), invoiceID: a.invoiceID } },
    { key: "b", invoice: { ...bill(contact, 2, { quantity: 3 }), invoiceID: b.invoiceID } },
  ]);
  assert.equal(env.sim.counts["invoices.post"], 1);
  const ua = updated.get("a")!;
  assert.ok(ua.ok);
  assert.equal(ua.invoiceID, a.invoiceID);
  assert.equal(ua.total, 40.74); // 3 × 12.3456 = 37.04 + 3.70
  assert.deepEqual(updated.get("b"), {
    ok: false,
    message: "Invoice not of valid status for modification",
    retryable: false,
  });
  const after = env.sim.invoices().find((i) => i.InvoiceID === b.invoiceID)!;
  assert.deepEqual(after, before);
  assert.equal(env.sim.invoices().length, 2);

  // Content going 3 → 4 → 3 → 4 ends at 4: an update is never answered from an old replay.
  for (const quantity of [4, 3, 4]) {
    const r = await env.client.upsertBills([
      { key: "a", invoice: { ...bill(contact, 1, { quantity }), invoiceID: a.invoiceID } },
    ]);
    assert.ok(r.get("a")!.ok);
  }
  const final = env.sim.invoices().find((i) => i.InvoiceID === a.invoiceID)!;
  assert.equal(final.LineItems[0].Quantity, 4);
});

Deno.test("upsertBills: every answer carries Xero's Total, SubTotal and TotalTax, creates and updates", async () => {
  await using env = await setup();
  const contact = supplierId(env.sim);
  const created = await env.client.upsertBills([
    { key: "a", invoice: bill(contact, 1) },
    // A line TaxAmount is sent as is: Xero's 2.47 becomes 2.46.
    { key: "b", invoice: bill(contact, 2, { taxAmount: 2.46 }) },
  ]);
  const a = created.get("a")!, b = created.get("b")!;
  assert.ok(a.ok && b.ok);
  assert.deepEqual([a.subTotal, a.totalTax, a.total], [24.69, 2.47, 27.16]);
  assert.deepEqual([b.subTotal, b.totalTax, b.total], [24.69, 2.46, 27.15]);
  const updated = await env.client.upsertBills([
    { key: "a", invoice: { ...bill(contact, 1, { quantity: 3 }), invoiceID: a.invoiceID } },
  ]);
  const u = updated.get("a")!;
  assert.ok(u.ok);
  assert.deepEqual([u.subTotal, u.totalTax, u.total], [37.04, 3.7, 40.74]);
});

/** The tax types the generated orders map to, at the Zoho percentages behind them. */
const GENERATED_SETTINGS = SettingsSchema.parse({
  taxMappings: [
    { zohoTaxName: "VAT", taxType: "INPUT2" },
    { zohoTaxName: "GST", percentage: 10, taxType: "INPUT" },
    { zohoTaxName: "GST", percentage: 15, taxType: "GST15" },
    { percentage: 8.875, taxType: "SALESTAX" },
    { zohoTaxName: "Reduced VAT", taxType: "RRINPUT" },
    { zohoTaxName: "CGST + SGST", taxType: "GSTIN18" },
  ],
});
const GENERATED_RATES = [
  ["INPUT2", 20],
  ["INPUT", 10],
  ["GST15", 15],
  ["SALESTAX", 8.875],
  ["RRINPUT", 5],
  ["GSTIN18", 18],
  ["NONE", 0],
].map(([taxType, effectiveRate]) => ({
  taxType: taxType as string,
  name: taxType as string,
  effectiveRate: effectiveRate as number,
}));

Deno.test("generated orders written to Xero: every bill Xero stores totals Zoho's Grand_Total", async () => {
  // A Xero that refuses any TaxAmount more than a cent from its own tax.
  await using env = await setup({
    taxRates: GENERATED_RATES,
    currencies: ["USD", "EUR", "GBP", "AUD", "NZD", "INR"],
    taxAmountTolerance: 0.01,
  });
  const contact = supplierId(env.sim);
  const rates = await env.client.taxRates();
  const orders = Array.from({ length: 300 }, (_, i) => {
    const raw = generatePurchaseOrder(
      seededRandom(7000 + i),
      {},
      i % 5 === 0 ? { documentTax: { name: "VAT", percentage: 20 } } : {},
    );
    const parsed = parsePurchaseOrder(raw, GENERATED_SETTINGS);
    assert.ok(parsed.ok);
    assert.deepEqual(taxRateMismatches(parsed.po, GENERATED_SETTINGS, rates), []);
    return parsed.po;
  });
  const bills = orders.map((po) => toBill(po, GENERATED_SETTINGS, { contactID: contact }));
  const withTaxAmount = bills.filter((b) => b.invoice.lineItems.some((l) => l.taxAmount));
  assert.ok(withTaxAmount.length > 20, `${withTaxAmount.length} bills needed a TaxAmount`);
  const results = await env.client.upsertBills(
    bills.map((b, i) => ({ key: orders[i].id + i, invoice: b.invoice })),
  );
  orders.forEach((po, i) => {
    const r = results.get(po.id + i)!;
    assert.ok(r.ok, `${po.id}: ${!r.ok && r.message}`);
    assert.equal(r.total, po.grandTotal, `order ${i}`);
    assert.equal(totalMismatch(po, r.total), null);
  });
});

Deno.test("a Zoho 10 % tax on a 15 % Xero tax type: held back before, and Xero's answer disagrees", async () => {
  await using env = await setup({
    taxRates: [
      { taxType: "INPUT", name: "GST on Expenses", effectiveRate: 15 },
      { taxType: "NONE", name: "No GST", effectiveRate: 0 },
    ],
  });
  const settings = SettingsSchema.parse({
    taxMappings: [{ zohoTaxName: "GST", taxType: "INPUT" }],
  });
  const raw = generatePurchaseOrder(seededRandom(1), {
    Discount: 0,
    Adjustment: 0,
    Purchase_Items: [{
      Product_Name: { id: "5876543000000210001", name: "Widget" },
      Quantity: 1,
      List_Price: 100,
      Discount: 0,
      Line_Tax: [{ name: "GST", percentage: 10, display_name: "GST - 10 %" }],
    }],
  });
  const parsed = parsePurchaseOrder(raw, settings);
  assert.ok(parsed.ok);
  assert.equal(parsed.po.grandTotal, 110);
  assert.deepEqual(taxRateMismatches(parsed.po, settings, await env.client.taxRates()), [
    'The Zoho tax "GST" (10%) is mapped to the Xero tax type INPUT, which is 15% in Xero; ' +
    "fix the tax mapping in the settings (or the rate in Xero)",
  ]);
  // Were it written anyway, the total in Xero's answer gives it away.
  const { invoice } = toBill(parsed.po, settings, { contactID: supplierId(env.sim) });
  const r = (await env.client.upsertBills([{ key: "x", invoice }])).get("x")!;
  assert.ok(r.ok);
  assert.equal(r.total, 115);
  assert.equal(
    totalMismatch(parsed.po, r.total),
    "Xero totals this bill 115.00 but Zoho's Grand Total is 110.00 (a difference of 5.00)",
  );
});

Deno.test("taxRates: read once a minute per organisation, once for callers arriving together", async () => {
  await using env = await setup();
  const [a, b] = await Promise.all([env.client.taxRates(), env.client.taxRates()]);
  assert.deepEqual(a, b);
  assert.ok(a.some((r) => r.taxType === "INPUT" && r.rate === 10));
  await env.client.taxRates();
  assert.equal(env.client.calls.byEndpoint["taxrates"], 1);
  assert.equal(env.sim.counts["taxrates"], 1);
  // A caller may ask for a fresh read.
  await env.client.taxRates({ fresh: true });
  assert.equal(env.sim.counts["taxrates"], 2);
  // A failed read is not kept: the next caller asks Xero again.
  const later = env.make();
  env.sim.fault({ endpoint: "taxrates", kind: "500", times: 4 }); // every attempt of one read
  await assert.rejects(() => later.taxRates());
  assert.ok((await later.taxRates()).length > 0);
  // Callers cannot change the cached list.
  a[0].rate = 99;
  assert.notEqual((await env.client.taxRates())[0].rate, 99);
});

Deno.test("resolveContacts: by ContactNumber, by name (any case), or created once; cached after", async () => {
  await using env = await setup({
    contacts: [
      { name: "Numbered Supplier Pty", contactNumber: "4000000000000000001" },
      { name: "ABC Furniture" },
      { name: "Taken Name Ltd", contactNumber: "other-system-7" },
    ],
  });
  const byNumber = env.sim.contacts().find((c) => c.ContactNumber === "4000000000000000001")!;
  const byName = env.sim.contacts().find((c) => c.Name === "ABC Furniture")!;
  const taken = env.sim.contacts().find((c) => c.Name === "Taken Name Ltd")!;
  const vendors = [
    { zohoVendorId: "4000000000000000001", name: "Renamed In Zoho" },
    { zohoVendorId: "4000000000000000002", name: "abc furniture" },
    { zohoVendorId: "4000000000000000003", name: "Brand New Vendor" },
    { zohoVendorId: "4000000000000000004", name: 'The "Quoted" Co' },
    { zohoVendorId: "4000000000000000005", name: "Taken Name Ltd" },
  ];
  const map = await env.client.resolveContacts(vendors);
  assert.equal(map.get("4000000000000000001"), byNumber.ContactID);
  assert.equal(map.get("4000000000000000002"), byName.ContactID);
  assert.equal(map.get("4000000000000000005"), taken.ContactID);
  const created = env.sim.contacts().filter((c) =>
    !c.Name.match(/Numbered|ABC|Taken|Power|Bayside/)
  );
  assert.deepEqual(created.map((c) => [c.Name, c.ContactNumber]).sort(), [
    ["Brand New Vendor", "4000000000000000003"],
    ['The "Quoted" Co', "4000000000000000004"],
  ]);
  assert.equal(env.sim.counts["contacts.put"], 1);
  assert.equal(env.client.contactFailures.size, 0);
  // The quoted name could not go in a where filter: it was searched for instead.
  const calls = env.client.calls.byEndpoint;
  assert.equal(calls["contacts.get"], 2);

  const before = env.sim.totalCalls();
  const second = await env.client.resolveContacts(vendors);
  assert.deepEqual(second, map);
  assert.equal(env.sim.totalCalls(), before);
  assert.equal(env.sim.contacts().length, 5);
});

Deno.test("resolveContacts: 200 new vendors cost at most 10 contact calls; again, none", async () => {
  await using env = await setup();
  const vendors = Array.from({ length: 200 }, (_, i) => ({
    zohoVendorId: String(3000000000000000000n + BigInt(i)),
    name: `Vendor Number ${i} Pty Ltd`,
  }));
  const map = await env.client.resolveContacts(vendors);
  assert.equal(map.size, 200);
  const contactCalls = (env.sim.counts["contacts.get"] ?? 0) +
    (env.sim.counts["contacts.put"] ?? 0);
  assert.ok(contactCalls <= 10, `contact calls: ${contactCalls}`);
  assert.equal(env.sim.contacts().length, 203);
  assert.equal(new Set(map.values()).size, 200);
  const before = env.sim.totalCalls();
  await env.client.resolveContacts(vendors);
  assert.equal(env.sim.totalCalls(), before);
});

Deno.test("limits: 429 with Retry-After is waited out; the client's own window keeps under the minute limit", async () => {
  await using env = await setup();
  const contact = supplierId(env.sim);
  await env.client.tenant();
  env.sim.fault({ endpoint: "invoices.put", kind: "429", retryAfterSec: 1 });
  const t0 = Date.now();
  const res = await env.client.upsertBills([{ key: "x", invoice: bill(contact, 1) }]);
  const waited = Date.now() - t0;
  assert.ok(res.get("x")!.ok);
  assert.ok(waited >= 950, `waited ${waited} ms`);
  assert.equal(env.sim.counts["invoices.put"], 2);
  assert.equal(env.sim.invoices().length, 1);

  // The organisation allows 4 calls per (scaled) minute of 400 ms; a client that knows keeps
  // under it without a single 429, and its status reports the remaining-calls headers.
  await using small = await setup(
    { limits: { perMinute: 4 }, clockScale: 150 },
    { limits: { perMinute: 4, windowMs: 420 } },
  );
  await small.client.tenant();
  const t1 = Date.now();
  // taxRates({ fresh }) is a cheap call that skips the client's one-minute cache.
  await Promise.all(Array.from({ length: 10 }, () => small.client.taxRates({ fresh: true })));
  assert.ok(Date.now() - t1 >= 800);
  assert.equal(small.sim.counts.taxrates, 10);
  const status = await small.client.status();
  assert.equal(status.state, "connected");
  assert.equal(typeof status.minLimitRemaining, "number");
  assert.equal(status.dayLimitRemaining, 4990);

  // A client that does not know the limit hits 429s and honours their Retry-After.
  await using blind = await setup({ limits: { perMinute: 3 }, clockScale: 60 });
  await blind.client.tenant();
  await Promise.all(Array.from({ length: 6 }, () => blind.client.taxRates({ fresh: true })));
  assert.ok(blind.sim.counts.taxrates > 6);
});

Deno.test("limits: no more than 5 calls in flight per organisation", async () => {
  await using env = await setup({ latencyMs: 60 });
  await env.client.tenant();
  const other = env.make(); // a second instance in the same process shares the limiter
  await Promise.all([
    ...Array.from({ length: 8 }, () => env.client.taxRates({ fresh: true })),
    ...Array.from({ length: 8 }, () => other.taxRates({ fresh: true })),
  ]);
  assert.equal(env.sim.counts.taxrates, 16); // no concurrent-limit 429 was ever needed
});

Deno.test("daily limit: a 429 'day' stops with daily_limit; known exhaustion refuses work before sending", async () => {
  await using env = await setup();
  const contact = supplierId(env.sim);
  await env.client.tenant();
  env.sim.setDayLimitRemaining(0);
  const res = await env.client.upsertBills([{ key: "a", invoice: bill(contact, 1) }]);
  const a = res.get("a")!;
  assert.ok(!a.ok);
  assert.equal(a.kind, "daily_limit");
  assert.equal(a.retryable, false);
  const sent = env.sim.counts["invoices.put"];
  await assert.rejects(
    env.client.upsertBills([{ key: "a", invoice: bill(contact, 1) }]),
    (e: unknown) =>
      e instanceof XeroError && e.kind === "daily_limit" &&
      /paused: Xero daily limit/.test(e.message),
  );
  assert.equal(env.sim.counts["invoices.put"], sent);
  assert.equal((await env.client.status()).dayLimitRemaining, 0);

  // Two calls left, three batches needed: refused up front.
  await using two = await setup();
  await two.client.tenant();
  two.sim.setDayLimitRemaining(3);
  await two.client.accounts(); // learns: 2 left
  const many = Array.from({ length: 120 }, (_, i) => ({
    key: `${i}`,
    invoice: bill(supplierId(two.sim), i),
  }));
  await assert.rejects(
    two.client.upsertBills(many),
    (e: unknown) => e instanceof XeroError && e.kind === "daily_limit",
  );
  assert.equal(two.sim.counts["invoices.put"] ?? 0, 0);
});

Deno.test("tokens: two instances refreshing at once end with one valid stored token, no invalid_grant", async () => {
  // No grace: spending a rotated-out refresh token fails at once.
  await using env = await setup({ refreshGraceMs: 0 });
  const a = env.make();
  const b = env.make();
  const [ta, tb] = await Promise.all([a.tenant(), b.tenant()]);
  assert.equal(ta.tenantId, env.sim.tenantId);
  assert.equal(tb.tenantId, env.sim.tenantId);
  assert.equal(env.sim.counts.token, 1);
  let stored = await storedTokens(env);
  assert.equal(stored.refresh, env.sim.refreshToken);
  assert.equal(stored.raw.claim, undefined);

  // Access tokens expire; both instances notice at once (401), one refresh serves both.
  env.sim.expireAccessTokens();
  await Promise.all([a.taxRates(), b.taxRates(), a.accounts(), b.currencies()]);
  assert.equal(env.sim.counts.token, 2);
  stored = await storedTokens(env);
  assert.equal(stored.refresh, env.sim.refreshToken);
  // A third instance starting later uses the rotated token from KV, not the stale seed.
  const c = env.make({ refreshTokenSeed: "stale-seed-from-env" });
  await c.currencies();
  assert.equal(env.sim.counts.token, 2);
  assert.equal((await c.status()).state, "connected");
});

Deno.test("tokens: invalid_grant marks the connection broken (status error, auth error), seeds only an empty KV", async () => {
  await using env = await setup();
  assert.equal((await env.make({ refreshTokenSeed: undefined }).status()).state, "not_connected");
  await env.client.tenant();
  // Revoked elsewhere: the stored refresh token is dead.
  const res = await fetch(`${env.sim.url}/connect/revocation`, { method: "POST", body: "" });
  await res.body?.cancel();
  const fresh = env.make();
  await assert.rejects(
    fresh.accounts(),
    (e: unknown) => e instanceof XeroError && e.kind === "auth" && /reconnect Xero/.test(e.message),
  );
  const status = await fresh.status();
  assert.equal(status.state, "error");
  assert.match(status.message!, /invalid_grant/);
  const calls = env.sim.counts.token;
  await assert.rejects(fresh.accounts());
  assert.equal(env.sim.counts.token, calls, "a known-dead token is not spent again");
});

Deno.test("connect: authorizeUrl → code → exchangeCode stores tokens and picks the tenant; chooseTenant, disconnect", async () => {
  await using env = await setup({
    tenants: [
      { tenantId: "11111111-1111-4111-8111-111111111111", tenantName: "First Org" },
      { tenantId: "22222222-2222-4222-8222-222222222222", tenantName: "Second Org" },
    ],
  });
  const client = env.make({ refreshTokenSeed: undefined });
  const redirect = "http://127.0.0.1:8000/oauth/xero/callback";
  const url = new URL(client.authorizeUrl("state-123", redirect));
  assert.equal(url.pathname, "/identity/connect/authorize");
  assert.equal(
    url.searchParams.get("scope"),
    "offline_access accounting.transactions accounting.contacts accounting.settings",
  );
  const res = await fetch(url, { redirect: "manual" });
  await res.body?.cancel();
  const back = new URL(res.headers.get("location")!);
  assert.equal(back.searchParams.get("state"), "state-123");
  await client.exchangeCode(back.searchParams.get("code")!, redirect);
  assert.equal((await client.tenant()).tenantName, "First Org");
  assert.deepEqual((await client.connections()).map((c) => c.tenantName), [
    "First Org",
    "Second Org",
  ]);
  await client.chooseTenant("22222222-2222-4222-8222-222222222222");
  assert.equal((await env.make().tenant()).tenantName, "Second Org");
  const stored = await storedTokens(env);
  assert.notEqual(stored.raw.refreshToken, stored.refresh, "stored encrypted");
  await client.disconnect();
  assert.equal((await env.kv.get(keys.xeroToken())).value, null);
  assert.equal((await env.make({ refreshTokenSeed: undefined }).status()).state, "not_connected");
});

Deno.test("disconnect with XERO_REFRESH_TOKEN set stays disconnected; a new seed is used again", async () => {
  await using env = await setup();
  const seed = env.sim.refreshToken; // what XERO_REFRESH_TOKEN holds
  const client = env.make({ refreshTokenSeed: seed });
  assert.ok((await client.tenant()).tenantName);
  assert.equal((await client.status()).state, "connected");
  await client.disconnect();
  // Same environment, even in a fresh instance: still disconnected, and no token call is made.
  const calls = env.sim.counts.token ?? 0;
  const again = env.make({ refreshTokenSeed: seed });
  assert.equal((await again.status()).state, "not_connected");
  await assert.rejects(() => again.tenant(), /not connected/i);
  assert.equal(env.sim.counts.token ?? 0, calls);
  // An operator putting a different token in the environment is listened to.
  assert.equal(
    (await env.make({ refreshTokenSeed: "another-refresh-token" }).status()).state,
    "connected",
  );
});

Deno.test("tenant: callers arriving together share one /connections lookup", async () => {
  await using env = await setup();
  const client = env.make();
  const got = await Promise.all(Array.from({ length: 20 }, () => client.tenant()));
  assert.ok(got.every((t) => t.tenantId === env.sim.tenantId));
  assert.equal(env.sim.counts.connections, 1);
});

Deno.test("reads: getBills by id, findBills by number (ACCPAY only), listBillsSince pages", async () => {
  await using env = await setup();
  const contact = supplierId(env.sim);
  const items = Array.from({ length: 105 }, (_, i) => ({ key: `${i}`, invoice: bill(contact, i) }));
  items.push({ key: "comma", invoice: { ...bill(contact, 0), invoiceNumber: "PO,with,commas" } });
  items.push({ key: "quote", invoice: { ...bill(contact, 0), invoiceNumber: 'PO "q"' } });
  const res = await env.client.upsertBills(items);
  const id = (k: string) => {
    const r = res.get(k)!;
    assert.ok(r.ok);
    return r.invoiceID;
  };
  env.sim.setInvoiceStatus(id("3"), "AUTHORISED");
  const got = await env.client.getBills([id("3"), id("4")]);
  assert.equal(got.get(id("3"))!.status, "AUTHORISED");
  assert.equal(got.get(id("4"))!.url, "https://crm.zoho.com/crm/org1/tab/PurchaseOrders/4");
  assert.equal(got.get(id("4"))!.total, 27.16);

  const found = await env.client.findBills(["PO-5", "PO-6", "PO,with,commas", 'PO "q"', "nope"]);
  assert.deepEqual(found.map((b) => b.invoiceNumber).sort(), [
    'PO "q"',
    "PO,with,commas",
    "PO-5",
    "PO-6",
  ]);

  const pages: number[] = [];
  for await (const page of env.client.listBillsSince()) pages.push(page.length);
  assert.deepEqual(pages, [100, 7]);
  const since = new Date(Date.now() - 1);
  await new Promise((r) => setTimeout(r, 5));
  env.sim.setInvoiceStatus(id("9"), "AUTHORISED");
  const changed = [];
  for await (const page of env.client.listBillsSince(new Date(Date.now() - 3))) {
    changed.push(...page);
  }
  assert.deepEqual(changed.map((b) => b.invoiceID), [id("9")]);
  assert.ok(since);
});

Deno.test("settings lists: accounts (no system accounts), tax rates, currencies, contacts", async () => {
  await using env = await setup();
  const accounts = await env.client.accounts();
  assert.ok(
    accounts.some((a) => a.code === "300" && a.name === "Purchases" && a.type === "EXPENSE"),
  );
  assert.ok(!accounts.some((a) => a.code === "800" || a.code === "499"));
  const rates = await env.client.taxRates();
  assert.deepEqual(rates.find((r) => r.taxType === "INPUT"), {
    taxType: "INPUT",
    name: "GST on Expenses",
    rate: 10,
  });
  assert.deepEqual(await env.client.currencies(), ["AUD", "USD", "EUR", "GBP", "NZD"]);
  assert.deepEqual((await env.client.contactsList()).map((c) => c.name), [
    "ABC Furniture",
    "Bayside Wholesale",
    "PowerDirect",
  ]);
});

Deno.test("errors: 5xx and dropped connections are retried; no bearer token or secret in any error text", async () => {
  await using env = await setup({}, { retry: { attempts: 3, maxWaitMs: 200 } });
  await env.client.tenant();
  env.sim.fault({ endpoint: "taxrates", kind: "503" });
  env.sim.fault({ endpoint: "taxrates", kind: "drop" });
  assert.ok((await env.client.taxRates()).length > 0);
  assert.equal(env.sim.counts.taxrates, 3);

  const errors: Array<{ e: unknown; env: Env; secrets: string[] }> = [];
  const capture = async (on: Env, run: () => Promise<unknown>) => {
    const t = await storedTokens(on);
    try {
      await run();
    } catch (e) {
      const after = await storedTokens(on).catch(() => t);
      errors.push({
        e,
        env: on,
        secrets: [t.access!, t.refresh, after.access!, after.refresh, on.sim.clientSecret],
      });
    }
  };
  env.sim.fault({ endpoint: "accounts", kind: "500", times: 3 });
  await capture(env, () => env.client.accounts());
  env.sim.fault({ endpoint: "currencies", kind: "drop", times: 3 });
  await capture(env, () => env.client.currencies());
  env.sim.fault({ endpoint: "accounts", kind: "invalid_token", times: 2 });
  await capture(env, () => env.client.accounts());
  env.sim.setDayLimitRemaining(0);
  await capture(env, () => env.client.accounts());
  await capture(env, () => env.client.accounts());

  // Revoked: the access token is refused, and so is the refresh token.
  await using other = await setup();
  await other.client.tenant();
  await fetch(`${other.sim.url}/connect/revocation`, { method: "POST", body: "" }).then((r) =>
    r.body?.cancel()
  );
  await capture(other, () => other.make().accounts());

  const kinds = errors.map(({ e }) => (e as XeroError).kind);
  assert.deepEqual(kinds, ["server", "network", "auth", "daily_limit", "daily_limit", "auth"]);
  for (const { e, secrets } of errors) {
    assert.ok(e instanceof XeroError);
    const texts = [String(e), e.message, e.stack ?? "", JSON.stringify(e), Deno.inspect(e)];
    for (const text of texts) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `secret leaked: ${text}`);
      assert.ok(!/Bearer\s+(?!\[redacted\])\S/.test(text), `bearer in: ${text}`);
    }
  }
});
