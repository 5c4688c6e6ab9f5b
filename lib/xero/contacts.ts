/**
 * Zoho vendor → Xero ContactID (DESIGN §6): KV cache, then a Xero contact whose ContactNumber is
 * the vendor id, then an exact (case-insensitive) name match, else a new contact with Name and
 * ContactNumber. Lookups are batched: `where` filters OR-ed up to Xero's ~2 KB URL limit, or, when
 * that would take more calls, the organisation's contact list read 1000 at a time. Missing
 * contacts are created 50 a call.
 */
import type { Contact } from "xero-node";
import { getManyChunked } from "../store/kv.ts";
import { keys } from "../store/keys.ts";
import type { XeroApi } from "./api.ts";
import { XeroError } from "./errors.ts";
import { idempotencyKey } from "./idempotency.ts";

export interface Vendor {
  zohoVendorId: string;
  name: string;
}

interface CachedContact {
  contactID: string;
  name: string;
  tenantId: string;
  at: number;
}

export interface ContactsContext {
  kv: Deno.Kv;
  api: XeroApi;
  tenantId: string;
}

/** Encoded length of one `where` value; the whole query must stay under ~2 KB. */
const WHERE_MAX = 1500;
const PAGE_SIZE = 1000;
/**
 * Without a `pagination` element we cannot tell whether `pageSize` was honoured: only a page
 * shorter than Xero's default of 100 is surely the last one.
 */
const XERO_DEFAULT_PAGE = 100;
const CREATE_BATCH = 50;
const MAX_PAGES = 200;

const NAME_TAKEN = /already assigned to another contact/i;

/** A value that can sit between the quotes of a `where` filter (Xero has no escape for `"`). */
const whereSafe = (s: string) =>
  s.length > 0 && !s.includes('"') && !s.includes("\\") && ![...s].some((c) => c < " ");
const numberOk = (id: string) => id.length > 0 && id.length <= 50;
const norm = (name: string) => name.trim().toLowerCase();

interface Hit {
  contactID: string;
  name: string;
}

/** Collects candidate contacts for the pending vendors as pages of contacts come in. */
class Matcher {
  private readonly byNumber = new Map<string, Hit>();
  private readonly byName = new Map<string, Hit>();
  constructor(private readonly vendors: Map<string, { id: string; name: string }>) {}

  offer(contacts: Contact[] | undefined) {
    for (const c of contacts ?? []) {
      if (!c.contactID || String(c.contactStatus ?? "ACTIVE") !== "ACTIVE") continue;
      const hit = { contactID: c.contactID, name: c.name ?? "" };
      if (c.contactNumber && this.vendors.has(c.contactNumber)) {
        this.byNumber.set(c.contactNumber, hit);
      }
      if (c.name && !this.byName.has(norm(c.name))) this.byName.set(norm(c.name), hit);
    }
  }

  /** ContactNumber first, then the name. */
  pick(v: { id: string; name: string }): Hit | undefined {
    return this.byNumber.get(v.id) ?? (v.name ? this.byName.get(norm(v.name)) : undefined);
  }
}

function whereChunks(vendors: Array<{ id: string; name: string }>): string[] {
  const chunks: string[] = [];
  let cur: string[] = [];
  const size = (parts: string[]) => encodeURIComponent(parts.join(" OR ")).length;
  for (const v of vendors) {
    const clauses = [
      ...(numberOk(v.id) && whereSafe(v.id) ? [`ContactNumber=="${v.id}"`] : []),
      ...(whereSafe(v.name) ? [`Name=="${v.name}"`] : []),
    ];
    if (!clauses.length) continue;
    if (cur.length && size([...cur, ...clauses]) > WHERE_MAX) {
      chunks.push(cur.join(" OR "));
      cur = [];
    }
    cur.push(...clauses);
  }
  if (cur.length) chunks.push(cur.join(" OR "));
  return chunks;
}

export async function resolveContacts(
  ctx: ContactsContext,
  input: Vendor[],
): Promise<{ resolved: Map<string, string>; failures: Map<string, string> }> {
  const { kv, api, tenantId } = ctx;
  const vendors = new Map<string, { id: string; name: string }>();
  for (const v of input) {
    if (!vendors.has(v.zohoVendorId)) {
      vendors.set(v.zohoVendorId, { id: v.zohoVendorId, name: (v.name ?? "").trim() });
    }
  }
  const resolved = new Map<string, string>();
  const failures = new Map<string, string>();
  const cached = await getManyChunked<CachedContact>(
    kv,
    [...vendors.keys()].map((id) => keys.contact(id)),
  );
  for (const entry of cached) {
    if (entry.value && entry.value.tenantId === tenantId) {
      resolved.set(String(entry.key[1]), entry.value.contactID);
    }
  }
  const fresh = new Map<string, Hit>();
  const pendingOf = () =>
    [...vendors.values()].filter((v) => !resolved.has(v.id) && !fresh.has(v.id));
  if (!pendingOf().length) return { resolved, failures };

  const matcher = new Matcher(vendors);
  const settle = () => {
    for (const v of pendingOf()) {
      const hit = matcher.pick(v);
      if (hit) fresh.set(v.id, hit);
    }
  };
  const list = (page: number, where?: string, searchTerm?: string) =>
    api.call("contacts.get", tenantId, (a) =>
      a.getContacts(
        tenantId,
        undefined,
        where,
        undefined,
        undefined,
        page,
        undefined,
        true,
        searchTerm,
        PAGE_SIZE,
      ));

  try {
    // 1. Look up what exists.
    let listedAll = false;
    const chunks = whereChunks(pendingOf());
    if (chunks.length > 1) {
      const first = await list(1);
      matcher.offer(first.contacts);
      settle();
      const pageCount = first.pagination?.pageCount ??
        ((first.contacts?.length ?? 0) < XERO_DEFAULT_PAGE ? 1 : Infinity);
      const rest = whereChunks(pendingOf());
      if (pageCount - 1 <= rest.length && pageCount <= MAX_PAGES) {
        for (let page = 2; page <= pageCount && pendingOf().length; page++) {
          matcher.offer((await list(page)).contacts);
          settle();
        }
        listedAll = true;
      } else {
        for (const where of rest) matcher.offer((await list(1, where)).contacts);
      }
    } else if (chunks.length === 1) {
      matcher.offer((await list(1, chunks[0])).contacts);
    }
    settle();
    if (!listedAll) {
      // Names a filter cannot carry: one search each, then the exact match.
      for (const v of pendingOf().filter((v) => v.name && !whereSafe(v.name))) {
        matcher.offer((await list(1, undefined, v.name)).contacts);
      }
      settle();
    }

    // 2. Create the rest, one contact per distinct name.
    const groups = new Map<string, { name: string; number?: string; ids: string[] }>();
    for (const v of pendingOf()) {
      if (!v.name) {
        failures.set(v.id, "The Zoho vendor has no name, so no Xero contact can be made for it");
        continue;
      }
      const g = groups.get(norm(v.name));
      if (g) g.ids.push(v.id);
      else {groups.set(norm(v.name), {
          name: v.name,
          number: numberOk(v.id) ? v.id : undefined,
          ids: [v.id],
        });}
    }
    const taken: Array<{ name: string; ids: string[]; message: string }> = [];
    const all = [...groups.values()];
    for (let i = 0; i < all.length; i += CREATE_BATCH) {
      const batch = all.slice(i, i + CREATE_BATCH);
      const contacts = batch.map((g) => ({
        name: g.name,
        ...(g.number ? { contactNumber: g.number } : {}),
      }));
      const key = await idempotencyKey(`contacts.put ${tenantId}`, contacts);
      let body;
      try {
        body = await api.call(
          "contacts.put",
          tenantId,
          (a) => a.createContacts(tenantId, { contacts }, false, key),
        );
      } catch (e) {
        if (e instanceof XeroError && (e.kind === "auth" || e.kind === "daily_limit")) throw e;
        for (const g of batch) for (const id of g.ids) failures.set(id, (e as Error).message);
        continue;
      }
      batch.forEach((g, j) => {
        const c = body.contacts?.[j];
        const messages = (c?.validationErrors ?? []).map((v) => v.message).filter(Boolean);
        const failed = !c || c.hasValidationErrors || c.statusAttributeString === "ERROR" ||
          messages.length > 0 || !c.contactID;
        if (!failed) {
          for (const id of g.ids) {
            fresh.set(id, { contactID: c!.contactID!, name: c!.name ?? g.name });
          }
          return;
        }
        const message = messages.join("; ") || "Xero did not create the contact";
        if (NAME_TAKEN.test(message)) taken.push({ name: g.name, ids: g.ids, message });
        else for (const id of g.ids) failures.set(id, message);
      });
    }

    // 3. A name taken meanwhile (or by a contact our lookup missed): use that contact.
    if (taken.length) {
      const safe = taken.filter((t) => whereSafe(t.name));
      for (const where of whereChunks(safe.map((t) => ({ id: "", name: t.name })))) {
        matcher.offer((await list(1, where)).contacts);
      }
      for (const t of taken.filter((t) => !whereSafe(t.name))) {
        matcher.offer((await list(1, undefined, t.name)).contacts);
      }
      for (const t of taken) {
        const hit = matcher.pick({ id: "", name: t.name });
        for (const id of t.ids) {
          if (hit) fresh.set(id, hit);
          else failures.set(id, t.message);
        }
      }
    }
  } finally {
    // Whatever was found or made is kept, even when a later call failed.
    await remember(kv, tenantId, fresh);
  }
  for (const [id, hit] of fresh) resolved.set(id, hit.contactID);
  return { resolved, failures };
}

async function remember(kv: Deno.Kv, tenantId: string, found: Map<string, Hit>) {
  const entries = [...found.entries()];
  for (let i = 0; i < entries.length; i += 100) {
    const op = kv.atomic();
    for (const [id, hit] of entries.slice(i, i + 100)) {
      const value: CachedContact = {
        contactID: hit.contactID,
        name: hit.name,
        tenantId,
        at: Date.now(),
      };
      op.set(keys.contact(id), value);
    }
    await op.commit();
  }
}

/** Forgets cached contacts (e.g. after Xero said a cached ContactID no longer exists). */
export async function forgetContacts(kv: Deno.Kv, zohoVendorIds: string[]): Promise<void> {
  for (let i = 0; i < zohoVendorIds.length; i += 100) {
    const op = kv.atomic();
    for (const id of zohoVendorIds.slice(i, i + 100)) op.delete(keys.contact(id));
    await op.commit();
  }
}

/** Every active contact, for settings dropdowns. */
export async function listContacts(
  api: XeroApi,
  tenantId: string,
): Promise<Array<{ contactID: string; name: string }>> {
  const out: Array<{ contactID: string; name: string }> = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    const body = await api.call(
      "contacts.get",
      tenantId,
      (a) =>
        a.getContacts(
          tenantId,
          undefined,
          undefined,
          "Name ASC",
          undefined,
          page,
          undefined,
          true,
          undefined,
          PAGE_SIZE,
        ),
    );
    for (const c of body.contacts ?? []) {
      if (c.contactID && String(c.contactStatus ?? "ACTIVE") === "ACTIVE") {
        out.push({ contactID: c.contactID, name: c.name ?? "" });
      }
    }
    const count = body.pagination?.pageCount;
    const got = body.contacts?.length ?? 0;
    if (count !== undefined ? page >= count : got < XERO_DEFAULT_PAGE) break;
  }
  return out;
}
