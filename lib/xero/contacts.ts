/**
 * Zoho vendor → Xero ContactID (DESIGN §6): the admin's link from the settings page, else the KV
 * cache, else a Xero contact whose ContactNumber is the vendor id, then a name match, else a new
 * contact with Name and ContactNumber. ContactNumber beats a name however the contacts arrive.
 * Names compare NFC-normalised, trimmed, in any case (an NFD "Café" is the same name to a person).
 * Lookups are batched: `where` filters OR-ed up to Xero's ~2 KB URL limit, or, when that would
 * take more calls, the organisation's contact list read 1000 at a time. Missing contacts are
 * created 50 a call. A cached contact is verified (GET Contacts?IDs=, 50 a call) once it is a day
 * old, when asked to, or after Xero refused a bill for it as archived; an archived one is resolved
 * again, except an admin's link, which is never overwritten: that vendor fails with the reason.
 */
import type { Contact } from "xero-node";
import { z } from "zod";
import { getManyChunked } from "../store/kv.ts";
import { keys } from "../store/keys.ts";
import type { XeroApi } from "./api.ts";
import { XeroError } from "./errors.ts";
import { idempotencyKey } from "./idempotency.ts";

export interface Vendor {
  zohoVendorId: string;
  name: string;
}

export interface ResolveOptions {
  /** Verify every cached contact of these vendors with Xero before using it. */
  recheck?: boolean;
  /**
   * Find contacts, create none: a run looks up every vendor of its ticked orders at once, and
   * creates contacts batch by batch only for the orders that turn out eligible.
   */
  lookupOnly?: boolean;
}

/** Vendors a lookup just found no contact for (per KV and organisation), so the create that
 * follows within a few minutes does not look them up again. */
const absent = new WeakMap<Deno.Kv, Map<string, number>>();
const ABSENT_MS = 10 * 60_000;

/** Vendor id → ContactID, with why some vendors are missing and what deserves a look. */
export class ContactResolution extends Map<string, string> {
  /** Vendor id → why no contact could be found or made (Xero's own message when it gave one). */
  readonly failures = new Map<string, string>();
  /** Vendor id → a warning about its contact (e.g. shared with another Zoho vendor of one name). */
  readonly warnings = new Map<string, string>();
}

/** How a vendor came to its contact. */
type Via = "admin" | "number" | "name" | "created";

/** A KV entry under keys.contact(): ours, the settings page's, or an older plain ContactID. */
const Stored = z.union([
  z.string().transform((contactID) => ({ contactID }) as StoredContact),
  z.looseObject({
    contactID: z.string().min(1),
    name: z.string().optional(),
    tenantId: z.string().optional(),
    at: z.union([z.number(), z.string()]).optional(),
    checkedAt: z.number().optional(),
    linkedBy: z.string().optional(),
    via: z.string().optional(),
    stale: z.boolean().optional(),
  }),
]);
type StoredContact = {
  contactID: string;
  name?: string;
  tenantId?: string;
  at?: number | string;
  checkedAt?: number;
  linkedBy?: string;
  via?: string;
  stale?: boolean;
};

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
/** `IDs=` takes about 50 GUIDs per URL (REFERENCE.md). */
const IDS_PER_CALL = 50;
/** A cached contact older than this is verified before use: archiving is rare, a day is cheap. */
export const RECHECK_AFTER_MS = 24 * 3600_000;

const NAME_TAKEN = /already assigned to another contact/i;
/** Xero's answer to a bill for an archived (or merged-away) contact. */
const ARCHIVED = /contact[^.]*(has been|is) archived/i;

/** Whether a refused bill's message says its contact is archived in Xero. */
export const isArchivedContactRefusal = (message: string) => ARCHIVED.test(message);

/** A value that can sit between the quotes of a `where` filter (Xero has no escape for `"`). */
const whereSafe = (s: string) =>
  s.length > 0 && !s.includes('"') && !s.includes("\\") && ![...s].some((c) => c < " ");
const numberOk = (id: string) => id.length > 0 && id.length <= 50;
/** How names are compared: Unicode NFC, trimmed, any case. */
export const nameKey = (name: string) => name.normalize("NFC").trim().toLowerCase();

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
      if (c.name && !this.byName.has(nameKey(c.name))) this.byName.set(nameKey(c.name), hit);
    }
  }

  byNumberOf(v: { id: string }): Hit | undefined {
    return this.byNumber.get(v.id);
  }

  byNameOf(v: { name: string }): Hit | undefined {
    return v.name ? this.byName.get(nameKey(v.name)) : undefined;
  }
}

function whereChunks(vendors: Array<{ id: string; name: string }>): string[] {
  const chunks: string[] = [];
  let cur: string[] = [];
  const size = (parts: string[]) => encodeURIComponent(parts.join(" OR ")).length;
  for (const v of vendors) {
    // Both forms of a name with accents: how Xero's filter compares them is not documented.
    const names = [...new Set([v.name, v.name.normalize("NFD")])].filter(whereSafe);
    const clauses = [
      ...(numberOk(v.id) && whereSafe(v.id) ? [`ContactNumber=="${v.id}"`] : []),
      ...names.map((n) => `Name=="${n}"`),
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

const checkedAtOf = (e: StoredContact) =>
  e.checkedAt ?? (typeof e.at === "number" ? e.at : e.at ? Date.parse(e.at) || 0 : 0);

export async function resolveContacts(
  ctx: ContactsContext,
  input: Vendor[],
  opts: ResolveOptions = {},
): Promise<ContactResolution> {
  const { kv, api, tenantId } = ctx;
  const vendors = new Map<string, { id: string; name: string }>();
  for (const v of input) {
    if (!vendors.has(v.zohoVendorId)) {
      vendors.set(v.zohoVendorId, {
        id: v.zohoVendorId,
        name: (v.name ?? "").normalize("NFC").trim(),
      });
    }
  }
  const out = new ContactResolution();
  const via = new Map<string, Via | undefined>();
  const names = new Map<string, string>();
  /** Vendors whose entry must not be replaced: an admin's link (of any organisation). */
  const pinned = new Set<string>();
  const stamps = new Map<string, string | null>();
  const toVerify: Array<{ id: string; entry: StoredContact; admin: boolean }> = [];
  const now = Date.now();
  const cached = await getManyChunked<unknown>(
    kv,
    [...vendors.keys()].map((id) => keys.contact(id)),
  );
  for (const e of cached) {
    const id = String(e.key[1]);
    stamps.set(id, e.versionstamp);
    const parsed = Stored.safeParse(e.value);
    if (!parsed.success) continue;
    const entry = parsed.data as StoredContact;
    const admin = entry.linkedBy === "admin";
    if (admin) pinned.add(id);
    // An admin's link saved before links carried a tenant applies to the current organisation.
    const ours = entry.tenantId ? entry.tenantId === tenantId : admin;
    if (!ours) continue;
    if (opts.recheck || entry.stale || now - checkedAtOf(entry) > RECHECK_AFTER_MS) {
      toVerify.push({ id, entry, admin });
      continue;
    }
    out.set(id, entry.contactID);
    via.set(id, admin ? "admin" : entry.via as Via | undefined);
    if (entry.name) names.set(entry.contactID, entry.name);
  }

  const list = (page: number | undefined, where?: string, searchTerm?: string, ids?: string[]) =>
    api.call("contacts.get", tenantId, (a) =>
      a.getContacts(
        tenantId,
        undefined,
        where,
        undefined,
        ids,
        page,
        ids ? true : undefined,
        // Verification reads whole contacts: ContactStatus is what it is about.
        ids ? undefined : true,
        searchTerm,
        page === undefined ? undefined : PAGE_SIZE,
      ));

  // 0. Verify the cached contacts that are due: one GET per 50, archived ones included.
  const verified = new Map<string, { id: string; entry: StoredContact }>();
  /** Vendor id → the archived contact it is being resolved again for. */
  const replaced = new Map<string, string>();
  if (toVerify.length) {
    const status = new Map<string, { active: boolean; name: string }>();
    const ids = [...new Set(toVerify.map((t) => t.entry.contactID))];
    try {
      for (let i = 0; i < ids.length; i += IDS_PER_CALL) {
        const body = await list(undefined, undefined, undefined, ids.slice(i, i + IDS_PER_CALL));
        for (const c of body.contacts ?? []) {
          if (!c.contactID) continue;
          status.set(c.contactID.toLowerCase(), {
            active: String(c.contactStatus ?? "ACTIVE") === "ACTIVE",
            name: c.name ?? "",
          });
        }
      }
    } catch (e) {
      if (e instanceof XeroError && (e.kind === "auth" || e.kind === "daily_limit")) throw e;
      // Xero could not say: keep using what we know; a refused bill says so again.
      for (const t of toVerify) {
        status.set(t.entry.contactID.toLowerCase(), { active: true, name: t.entry.name ?? "" });
      }
    }
    for (const t of toVerify) {
      const s = status.get(t.entry.contactID.toLowerCase());
      if (s?.active) {
        out.set(t.id, t.entry.contactID);
        via.set(t.id, t.admin ? "admin" : t.entry.via as Via | undefined);
        names.set(t.entry.contactID, s.name || t.entry.name || "");
        verified.set(t.id, t);
      } else if (t.admin) {
        const label = t.entry.name ? ` "${t.entry.name}"` : "";
        out.failures.set(
          t.id,
          `The Xero contact${label} linked to this vendor on the settings page is archived ` +
            `(or was merged) in Xero: link the vendor to another contact on the settings page`,
        );
      } // Auto-resolved and archived or gone: resolved again below, and the entry replaced.
      else replaced.set(t.id, t.entry.contactID);
    }
  }

  const fresh = new Map<string, Hit & { via: Via }>();
  const pendingOf = () =>
    [...vendors.values()].filter((v) =>
      !out.has(v.id) && !fresh.has(v.id) && !out.failures.has(v.id)
    );

  try {
    await lookUpAndCreate();
  } finally {
    // Whatever was found, made or verified is kept, even when a later call failed.
    await remember(kv, tenantId, fresh, verified, stamps, pinned);
  }
  for (const [id, hit] of fresh) {
    out.set(id, hit.contactID);
    via.set(id, hit.via);
    names.set(hit.contactID, hit.name);
  }
  warnShared(out, via, names, vendors);
  return out;

  async function lookUpAndCreate() {
    if (!pendingOf().length) return;
    const matcher = new Matcher(vendors);
    // While contacts still arrive, only a ContactNumber settles a vendor: its own contact may be
    // on a later page than a contact that merely has its name.
    const settleByNumber = () => {
      for (const v of pendingOf()) {
        const hit = matcher.byNumberOf(v);
        if (hit) fresh.set(v.id, { ...hit, via: "number" });
      }
    };
    const settle = () => {
      settleByNumber();
      for (const v of pendingOf()) {
        const hit = matcher.byNameOf(v);
        if (hit) fresh.set(v.id, { ...hit, via: "name" });
      }
    };

    // 1. Look up what exists (not again for vendors a lookup-only pass just found nothing for).
    const gone = absent.get(kv) ?? new Map<string, number>();
    absent.set(kv, gone);
    const knownAbsent = (v: { id: string }) => (gone.get(`${tenantId}:${v.id}`) ?? 0) > Date.now();
    const lookFor = () => pendingOf().filter((v) => !knownAbsent(v));
    let listedAll = false;
    const chunks = whereChunks(lookFor());
    if (chunks.length > 1) {
      const first = await list(1);
      matcher.offer(first.contacts);
      settleByNumber();
      const pageCount = first.pagination?.pageCount ??
        ((first.contacts?.length ?? 0) < XERO_DEFAULT_PAGE ? 1 : Infinity);
      const rest = whereChunks(lookFor());
      if (pageCount - 1 <= rest.length && pageCount <= MAX_PAGES) {
        for (let page = 2; page <= pageCount && pendingOf().length; page++) {
          matcher.offer((await list(page)).contacts);
          settleByNumber();
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
      for (const v of lookFor().filter((v) => v.name && !whereSafe(v.name))) {
        matcher.offer((await list(1, undefined, v.name)).contacts);
      }
      settle();
    }

    if (opts.lookupOnly) {
      for (const v of pendingOf()) gone.set(`${tenantId}:${v.id}`, Date.now() + ABSENT_MS);
      return;
    }
    // A create that fails is looked up again next time (someone may have made the contact).
    for (const v of pendingOf()) gone.delete(`${tenantId}:${v.id}`);

    // 2. Create the rest, one contact per distinct name.
    const groups = new Map<string, { name: string; number?: string; ids: string[] }>();
    for (const v of pendingOf()) {
      if (!v.name) {
        out.failures.set(
          v.id,
          "The Zoho vendor has no name, so no Xero contact can be made for it",
        );
        continue;
      }
      const g = groups.get(nameKey(v.name));
      if (g) g.ids.push(v.id);
      else {groups.set(nameKey(v.name), {
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
      // The same names again after an archive are a new create, not a replay of the first one.
      const replacing = batch.flatMap((g) => g.ids.map((id) => replaced.get(id) ?? ""));
      const key = await idempotencyKey(
        `contacts.put ${tenantId}`,
        replacing.some(Boolean) ? { contacts, replacing } : contacts,
      );
      let body;
      try {
        body = await api.call(
          "contacts.put",
          tenantId,
          (a) => a.createContacts(tenantId, { contacts }, false, key),
        );
      } catch (e) {
        if (e instanceof XeroError && (e.kind === "auth" || e.kind === "daily_limit")) throw e;
        for (const g of batch) for (const id of g.ids) out.failures.set(id, (e as Error).message);
        continue;
      }
      batch.forEach((g, j) => {
        const c = body.contacts?.[j];
        const messages = (c?.validationErrors ?? []).map((v) => v.message).filter(Boolean);
        const failed = !c || c.hasValidationErrors || c.statusAttributeString === "ERROR" ||
          messages.length > 0 || !c.contactID;
        if (!failed) {
          for (const id of g.ids) {
            fresh.set(id, { contactID: c!.contactID!, name: c!.name ?? g.name, via: "created" });
          }
          return;
        }
        const message = messages.join("; ") || "Xero did not create the contact";
        if (NAME_TAKEN.test(message)) taken.push({ name: g.name, ids: g.ids, message });
        else for (const id of g.ids) out.failures.set(id, message);
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
        const hit = matcher.byNameOf({ name: t.name });
        for (const id of t.ids) {
          if (hit) fresh.set(id, { ...hit, via: "name" });
          else out.failures.set(id, t.message);
        }
      }
    }
  }
}

/**
 * Zoho vendors of this call that share one contact (one name in Zoho, or a name match onto
 * another vendor's contact) each get a warning naming the others, unless the admin linked them.
 */
function warnShared(
  out: ContactResolution,
  via: Map<string, Via | undefined>,
  names: Map<string, string>,
  vendors: Map<string, { id: string; name: string }>,
) {
  const byContact = new Map<string, string[]>();
  for (const [id, contactID] of out) {
    const list = byContact.get(contactID);
    if (list) list.push(id);
    else byContact.set(contactID, [id]);
  }
  for (const [contactID, ids] of byContact) {
    if (ids.length < 2 || ids.every((id) => via.get(id) === "admin")) continue;
    const contact = names.get(contactID) || vendors.get(ids[0])?.name || contactID;
    for (const id of ids) {
      const others = ids.filter((x) => x !== id);
      out.warnings.set(
        id,
        `Zoho vendor${others.length > 1 ? "s" : ""} ${others.join(", ")} ` +
          `${others.length > 1 ? "have" : "has"} the same name and share${
            others.length > 1 ? "" : "s"
          } the Xero contact "${contact}" with this vendor; ` +
          `if they are different suppliers, link one to another contact on the settings page`,
      );
    }
  }
}

async function remember(
  kv: Deno.Kv,
  tenantId: string,
  found: Map<string, Hit & { via: Via }>,
  verified: Map<string, { id: string; entry: StoredContact }>,
  stamps: Map<string, string | null>,
  pinned: Set<string>,
) {
  const now = Date.now();
  const writes: Array<[string, StoredContact]> = [];
  for (const [id, hit] of found) {
    if (pinned.has(id)) continue; // an admin's link is theirs to change
    writes.push([id, {
      contactID: hit.contactID,
      name: hit.name,
      tenantId,
      via: hit.via,
      at: now,
      checkedAt: now,
    }]);
  }
  for (const [id, { entry }] of verified) {
    writes.push([id, { ...entry, stale: undefined, checkedAt: now }]);
  }
  for (let i = 0; i < writes.length; i += 100) {
    const chunk = writes.slice(i, i + 100);
    const op = kv.atomic();
    for (const [id, value] of chunk) {
      op.check({ key: keys.contact(id), versionstamp: stamps.get(id) ?? null });
      op.set(keys.contact(id), stripUndefined(value));
    }
    if ((await op.commit()).ok) continue;
    // Someone (the settings page) wrote meanwhile: their entry stays, the others are saved.
    for (const [id, value] of chunk) {
      await kv.atomic()
        .check({ key: keys.contact(id), versionstamp: stamps.get(id) ?? null })
        .set(keys.contact(id), stripUndefined(value))
        .commit();
    }
  }
}

const stripUndefined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/**
 * The contacts a preview may promise without asking Xero: the admin's links and the cache, for
 * this organisation, exactly as resolveContacts would use them (a due re-check aside).
 */
export async function cachedContacts(
  kv: Deno.Kv,
  tenantId: string,
  zohoVendorIds: string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = await getManyChunked<unknown>(
    kv,
    [...new Set(zohoVendorIds)].map((id) => keys.contact(id)),
  );
  for (const e of entries) {
    const parsed = Stored.safeParse(e.value);
    if (!parsed.success) continue;
    const entry = parsed.data as StoredContact;
    const ours = entry.tenantId ? entry.tenantId === tenantId : entry.linkedBy === "admin";
    if (ours) out.set(String(e.key[1]), entry.contactID);
  }
  return out;
}

/**
 * After Xero refused bills because their contact is archived: the cached entries pointing at
 * those contacts are marked for a re-check, so the next resolution verifies and replaces them.
 * `known` maps ContactIDs to vendor ids this process resolved; without it the cache is scanned.
 */
export async function markContactsStale(
  kv: Deno.Kv,
  contactIDs: string[],
  known?: Map<string, Set<string>>,
): Promise<void> {
  const wanted = new Set(contactIDs.map((c) => c.toLowerCase()));
  if (!wanted.size) return;
  const vendorIds = [...wanted].flatMap((c) => [...known?.get(c) ?? []]);
  const unknown = [...wanted].filter((c) => !known?.get(c)?.size);
  if (unknown.length) {
    // Resolved by another process: find the entries (rare, so a scan is fine).
    for await (const e of kv.list({ prefix: keys.contactPrefix() })) {
      const parsed = Stored.safeParse(e.value);
      if (parsed.success && unknown.includes(parsed.data.contactID.toLowerCase())) {
        vendorIds.push(String(e.key[1]));
      }
    }
  }
  for (const id of new Set(vendorIds)) {
    const e = await kv.get(keys.contact(id));
    const parsed = Stored.safeParse(e.value);
    if (!parsed.success || !wanted.has(parsed.data.contactID.toLowerCase())) continue;
    const value = typeof e.value === "string"
      ? { contactID: e.value, stale: true }
      : { ...(e.value as object), stale: true };
    await kv.atomic().check(e).set(keys.contact(id), value).commit();
  }
}

/**
 * Forgets cached contacts (e.g. after Xero said a cached ContactID no longer exists). An admin's
 * link is kept: it is only ever changed on the settings page.
 */
export async function forgetContacts(kv: Deno.Kv, zohoVendorIds: string[]): Promise<void> {
  for (const id of zohoVendorIds) {
    const e = await kv.get(keys.contact(id));
    const parsed = Stored.safeParse(e.value);
    if (parsed.success && (parsed.data as StoredContact).linkedBy === "admin") continue;
    await kv.atomic().check(e).delete(keys.contact(id)).commit();
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
