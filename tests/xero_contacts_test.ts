/**
 * Vendor → contact resolution against the Xero simulator (issue 19): ContactNumber beats a name
 * whatever the paging, archived contacts are re-checked and replaced, names compare NFC-normalised,
 * the admin's links win, Xero's reasons and shared-name warnings reach the caller. Plus the
 * simulator's side of it: bills for archived contacts are refused, NFD names are not new names.
 */
import assert from "node:assert/strict";
import { XeroClient, type XeroInvoice } from "../lib/xero/mod.ts";
import { createSecrets } from "../lib/secrets.ts";
import { keys } from "../lib/store/keys.ts";
import { startXeroSim, XERO_SIM_MESSAGES, type XeroSimOptions } from "../sandbox/xero.ts";

const KEY = "test-encryption-key-0123456789-abcdef";
const DAY = 24 * 3600_000;

async function setup(simOpts: XeroSimOptions = {}) {
  const sim = await startXeroSim(simOpts);
  const kv = await Deno.openKv(":memory:");
  const secrets = await createSecrets(KEY);
  const make = () =>
    new XeroClient({
      kv,
      secrets,
      loginUrl: sim.url,
      identityUrl: sim.url,
      apiUrl: sim.url,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      refreshTokenSeed: sim.refreshToken,
      retry: { attempts: 3, maxWaitMs: 2000 },
    });
  return {
    sim,
    kv,
    client: make(),
    make,
    async [Symbol.asyncDispose]() {
      kv.close();
      await sim.close();
    },
  };
}

function bill(contactID: string, n: number): XeroInvoice {
  return {
    type: "ACCPAY",
    contact: { contactID },
    invoiceNumber: `PO-${n}`,
    date: "2026-01-15",
    dueDate: "2026-02-14",
    lineAmountTypes: "Exclusive",
    currencyCode: "AUD",
    lineItems: [{
      description: "Widget",
      quantity: 1,
      unitAmount: 10,
      accountCode: "300",
      taxType: "INPUT",
    }],
  };
}

const vid = (i: number) => String(4100000000000000000n + BigInt(i));

Deno.test("ContactNumber wins over a name match even when it is on a later page of contacts", async () => {
  const vendor = { zohoVendorId: vid(0), name: "Harbour Timber" };
  // 1,000 other contacts first, so the vendor's own (renamed in Xero) contact is on page 2,
  // while a contact with the vendor's Zoho name is on page 1.
  await using env = await setup({
    contacts: [
      { name: "Harbour Timber" },
      ...Array.from({ length: 1000 }, (_, i) => ({ name: `Filler Contact ${i}` })),
      { name: "Harbour Timber Supplies (AP)", contactNumber: vendor.zohoVendorId },
    ],
  });
  const own = env.sim.contacts().find((c) => c.ContactNumber === vendor.zohoVendorId)!;
  // Enough vendors that one where filter cannot carry them: the client reads the contact list.
  const others = Array.from({ length: 30 }, (_, i) => ({
    zohoVendorId: vid(i + 1),
    name: `Another New Vendor Number ${i} Pty Ltd`,
  }));
  const map = await env.client.resolveContacts([vendor, ...others]);
  assert.equal(map.get(vendor.zohoVendorId), own.ContactID, "the ContactNumber contact");
  const cached = await env.kv.get<{ contactID: string }>(keys.contact(vendor.zohoVendorId));
  assert.equal(cached.value?.contactID, own.ContactID);
});

Deno.test("names match NFC-normalised, trimmed, in any case: no look-alike contact is created", async () => {
  const nfd = "Cafe\u0301 Nordique"; // "Café" with a combining accent, as Xero stores it
  await using env = await setup({ contacts: [{ name: nfd }] });
  const existing = env.sim.contacts().find((c) => c.Name === nfd)!;
  const before = env.sim.contacts().length;
  const v = { zohoVendorId: vid(1), name: "  CAF\u00c9 NORDIQUE " }; // NFC, upper case, spaces
  const map = await env.client.resolveContacts([v]);
  assert.equal(map.get(v.zohoVendorId), existing.ContactID);
  assert.equal(env.sim.contacts().length, before, "no second, identical-looking contact");

  // The same through the contact list (many vendors at once).
  const many = Array.from({ length: 30 }, (_, i) => ({
    zohoVendorId: vid(100 + i),
    name: `Listed Vendor With A Long Name ${i}`,
  }));
  const v2 = { zohoVendorId: vid(2), name: "caf\u00e9 nordique" };
  const map2 = await env.client.resolveContacts([v2, ...many]);
  assert.equal(map2.get(v2.zohoVendorId), existing.ContactID);
});

Deno.test("a cached contact archived in Xero: the refused bill makes the next resolution find another", async () => {
  await using env = await setup();
  const v = { zohoVendorId: vid(3), name: "Archived Later Pty" };
  const first = (await env.client.resolveContacts([v])).get(v.zohoVendorId)!;
  assert.ok(first);
  env.sim.setContactStatus(first, "ARCHIVED"); // the accountant archives (or merges) it

  const refused = (await env.client.upsertBills([{ key: "po1", invoice: bill(first, 1) }]))
    .get("po1")!;
  assert.equal(refused.ok, false);
  assert.match(!refused.ok ? refused.message : "", /has been archived/);

  const again = await env.client.resolveContacts([v]);
  const second = again.get(v.zohoVendorId)!;
  assert.ok(second && second !== first, "a new contact, not the archived one");
  const made = env.sim.contacts().find((c) => c.ContactID === second)!;
  assert.equal(made.ContactStatus, "ACTIVE");
  assert.equal(made.ContactNumber, v.zohoVendorId);
  const ok = (await env.client.upsertBills([{ key: "po1", invoice: bill(second, 1) }]))
    .get("po1")!;
  assert.equal(ok.ok, true);
});

Deno.test("resolveContacts({recheck: true}) verifies cached contacts in another process too", async () => {
  await using env = await setup({
    contacts: [{ name: "Merged Into Other", contactNumber: vid(4) }, { name: "Survivor Co" }],
  });
  const v = { zohoVendorId: vid(4), name: "Survivor Co" };
  const first = (await env.client.resolveContacts([v])).get(v.zohoVendorId)!;
  const survivor = env.sim.contacts().find((c) => c.Name === "Survivor Co")!;
  assert.notEqual(first, survivor.ContactID);
  env.sim.setContactStatus(first, "ARCHIVED");
  // Another instance (no memory of the refusal) is told to re-check.
  const other = env.make();
  const map = await other.resolveContacts([v], { recheck: true });
  assert.equal(map.get(v.zohoVendorId), survivor.ContactID);
});

Deno.test("cached contacts older than a day are verified with one batched GET Contacts?IDs=", async () => {
  await using env = await setup();
  const vendors = Array.from({ length: 60 }, (_, i) => ({
    zohoVendorId: vid(200 + i),
    name: `Verified Vendor ${i}`,
  }));
  const map = await env.client.resolveContacts(vendors);
  assert.equal(map.size, 60);
  // Fresh entries cost nothing.
  env.sim.resetCounts();
  await env.client.resolveContacts(vendors);
  assert.equal(env.sim.totalCalls(), 0);

  // Two days later, one of them archived meanwhile.
  for (const v of vendors) {
    const e = await env.kv.get<Record<string, unknown>>(keys.contact(v.zohoVendorId));
    await env.kv.set(keys.contact(v.zohoVendorId), {
      ...e.value,
      at: Date.now() - 2 * DAY,
      checkedAt: Date.now() - 2 * DAY,
    });
  }
  const gone = map.get(vendors[7].zohoVendorId)!;
  env.sim.setContactStatus(gone, "ARCHIVED");
  env.sim.resetCounts();
  const later = await env.client.resolveContacts(vendors);
  assert.equal(later.size, 60);
  assert.notEqual(later.get(vendors[7].zohoVendorId), gone);
  for (const v of vendors.filter((_, i) => i !== 7)) {
    assert.equal(later.get(v.zohoVendorId), map.get(v.zohoVendorId));
  }
  // 60 ids: two GETs of ≤ 50 ids, then the one vendor resolved again (a lookup and a create).
  assert.equal(env.sim.counts["contacts.get"], 3);
  assert.equal(env.sim.counts["contacts.put"], 1);
  // And verified entries are fresh again.
  env.sim.resetCounts();
  await env.client.resolveContacts(vendors);
  assert.equal(env.sim.totalCalls(), 0);
});

Deno.test("an admin's link wins over ContactNumber and name, and is never overwritten", async () => {
  await using env = await setup({
    contacts: [
      { name: "Linked Supplier Pty" },
      { name: "Numbered Pty", contactNumber: vid(5) },
      { name: "Admin Choice Ltd" },
    ],
  });
  const choice = env.sim.contacts().find((c) => c.Name === "Admin Choice Ltd")!;
  const v = { zohoVendorId: vid(5), name: "Linked Supplier Pty" };
  // As the settings page stores a link (older versions stored no tenant).
  await env.kv.set(keys.contact(v.zohoVendorId), {
    contactID: choice.ContactID,
    name: choice.Name,
    linkedBy: "admin",
    at: new Date().toISOString(),
  });
  const map = await env.client.resolveContacts([v]);
  assert.equal(map.get(v.zohoVendorId), choice.ContactID);
  const stored = await env.kv.get<{ contactID: string; linkedBy?: string }>(
    keys.contact(v.zohoVendorId),
  );
  assert.equal(stored.value?.contactID, choice.ContactID);
  assert.equal(stored.value?.linkedBy, "admin");

  // Archived: the vendor fails with the reason; the link stays for the admin to change.
  env.sim.setContactStatus(choice.ContactID, "ARCHIVED");
  const rechecked = await env.client.resolveContacts([v], { recheck: true });
  assert.equal(rechecked.get(v.zohoVendorId), undefined);
  assert.match(rechecked.failures.get(v.zohoVendorId) ?? "", /archived.*settings page/i);
  const kept = await env.kv.get<{ contactID: string }>(keys.contact(v.zohoVendorId));
  assert.equal(kept.value?.contactID, choice.ContactID);
});

Deno.test("two Zoho vendors with one name share a contact, with a warning for each", async () => {
  await using env = await setup({ contacts: [{ name: "Twin Name Trading" }] });
  const twin = env.sim.contacts().find((c) => c.Name === "Twin Name Trading")!;
  const a = { zohoVendorId: vid(6), name: "Twin Name Trading" };
  const b = { zohoVendorId: vid(7), name: "twin name trading" };
  const c = { zohoVendorId: vid(8), name: "Brand New Twin" };
  const d = { zohoVendorId: vid(9), name: "Brand New Twin" };
  const map = await env.client.resolveContacts([a, b, c, d]);
  assert.equal(map.get(a.zohoVendorId), twin.ContactID);
  assert.equal(map.get(b.zohoVendorId), twin.ContactID);
  assert.equal(map.get(c.zohoVendorId), map.get(d.zohoVendorId));
  for (const v of [a, b, c, d]) {
    assert.match(map.warnings.get(v.zohoVendorId) ?? "", /share|same name/i, v.zohoVendorId);
  }
  assert.match(map.warnings.get(a.zohoVendorId)!, new RegExp(b.zohoVendorId));
});

Deno.test("a contact Xero refuses to create fails with Xero's own reason", async () => {
  await using env = await setup();
  const v = { zohoVendorId: vid(10), name: `Very Long Vendor ${"x".repeat(300)}` };
  const map = await env.client.resolveContacts([v]);
  assert.equal(map.get(v.zohoVendorId), undefined);
  assert.equal(map.failures.get(v.zohoVendorId), XERO_SIM_MESSAGES.contactNameLength);
});

Deno.test("simulator: a bill for an archived contact is refused; an NFD name is not a new name", async () => {
  await using env = await setup({ contacts: [{ name: "Cafe\u0301 Sim" }] });
  const existing = env.sim.contacts().find((c) => c.Name === "Cafe\u0301 Sim")!;
  const created = await env.client.upsertBills([{
    key: "a",
    invoice: bill(existing.ContactID, 1),
  }]);
  assert.equal(created.get("a")!.ok, true);
  env.sim.setContactStatus(existing.ContactID, "ARCHIVED");
  const refused = (await env.client.upsertBills([{
    key: "b",
    invoice: bill(existing.ContactID, 2),
  }])).get("b")!;
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.message, XERO_SIM_MESSAGES.contactArchived);
  env.sim.setContactStatus(existing.ContactID, "ACTIVE");
  // Creating "Café Sim" (NFC) while "Café Sim" (NFD) is active: Xero says the name is taken.
  const map = await env.client.resolveContacts([{ zohoVendorId: vid(11), name: "Caf\u00e9 Sim" }]);
  assert.equal(map.get(vid(11)), existing.ContactID);
  assert.equal(env.sim.contacts().length, 1);
});
