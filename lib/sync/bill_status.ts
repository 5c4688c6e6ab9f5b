/**
 * Xero → Zoho: what the accountants do with a bill (approve, pay, void) reaches its purchase order.
 *
 * Two ways in, one way out. A signed Xero webhook (`POST /api/xero/webhook`) only stores the ids of
 * the bills it names (Xero wants an answer within 5 s, and its events carry no data); the scheduled
 * tick asks Xero for every ACCPAY bill changed since its own watermark (If-Modified-Since,
 * summaryOnly, 1,000 a page), so a missed or disabled webhook loses nothing. Both end in one pass:
 * our bills only (a bill is ours when a purchase order's KV state owns its InvoiceID), only the
 * fields that changed, 100 records a Zoho call with `trigger: []`, under each record's lock, and
 * the Modified_Time our own write produced goes into the record's state, so the Zoho → Xero sync
 * does not take the write for a person's edit and fetch the record again.
 */
import { z } from "zod";
import type { Settings } from "../mapping/mod.ts";
import { listAll } from "../store/kv.ts";
import { keys } from "../store/keys.ts";
import { acquire, release } from "../store/locks.ts";
import { getStates, type RecordState } from "../store/records.ts";
import { describe } from "./errors.ts";
import type { XeroBillSummary, XeroPort, ZohoPort } from "./ports.ts";
import { lockRecords } from "./stages/lock.ts";
import { ZohoIdSchema } from "./types.ts";

/** How far before its watermark the poll asks (clock skew between Xero and us). */
const POLL_OVERLAP_MS = 2 * 60_000;
const LEASE_MS = 60_000;
/** Zoho takes 100 records a write. */
const CHUNK = 100;
/** A bill whose write keeps failing is given up after this many passes (the poll still sees it change). */
const MAX_ATTEMPTS = 5;

// ---- the webhook ------------------------------------------------------------------------------

/** Xero's webhook payload (xero-webhooks.yaml): events carry ids, never record data. */
const EventSchema = z.looseObject({
  resourceUrl: z.string().optional(),
  resourceId: z.string().min(1).max(100),
  tenantId: z.string().min(1).max(100),
  tenantType: z.string().optional(),
  eventCategory: z.string(),
  eventType: z.string(),
  eventDateUtc: z.string().optional(),
});
const PayloadSchema = z.looseObject({
  events: z.array(EventSchema).max(10_000),
  firstEventSequence: z.number().optional(),
  lastEventSequence: z.number().optional(),
  entropy: z.string().optional(),
});

export interface StoredEvent {
  tenantId: string;
  receivedAt: string;
  /** Passes that could not finish this bill (Zoho refused, record busy). */
  attempts?: number;
}

export type WebhookOutcome =
  | { kind: "not_configured" }
  | { kind: "bad_signature" }
  | { kind: "malformed"; message: string }
  | { kind: "accepted"; stored: number };

const enc = new TextEncoder();

/** x-xero-signature = base64(HMAC-SHA256(raw body, key)), compared in constant time. */
export async function xeroSignatureValid(
  body: Uint8Array,
  signature: string | undefined,
  key: string,
): Promise<boolean> {
  const hmac = await crypto.subtle.importKey(
    "raw",
    enc.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmac, body as BufferSource));
  const expected = enc.encode(btoa(String.fromCharCode(...mac)));
  const given = enc.encode((signature ?? "").trim());
  let diff = expected.length ^ given.length;
  for (let i = 0; i < expected.length; i++) diff |= expected[i] ^ (given[i] ?? 0);
  return diff === 0 && given.length > 0;
}

/**
 * One webhook delivery: checks the signature, then stores the INVOICE events' bill ids (one KV
 * entry per bill, so a delivery repeated stores nothing new). The intent-to-receive handshake is
 * a delivery with no events: a right signature gets 200, a wrong one 401.
 */
export async function receiveXeroWebhook(
  kv: Deno.Kv,
  key: string | undefined,
  body: Uint8Array,
  signature: string | undefined,
): Promise<WebhookOutcome> {
  if (!key) return { kind: "not_configured" };
  if (!await xeroSignatureValid(body, signature, key)) return { kind: "bad_signature" };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return { kind: "malformed", message: "The body is not JSON." };
  }
  const parsed = PayloadSchema.safeParse(json);
  if (!parsed.success) {
    return { kind: "malformed", message: "The body is not a Xero webhook payload." };
  }
  const receivedAt = new Date().toISOString();
  const ids = new Map<string, string>();
  for (const e of parsed.data.events) {
    // Bills are invoices; contacts, credit notes and subscriptions are not ours to follow.
    if (e.eventCategory.toUpperCase() !== "INVOICE") continue;
    ids.set(e.resourceId.toLowerCase(), e.tenantId);
  }
  const all = [...ids];
  for (let i = 0; i < all.length; i += 500) {
    let atomic = kv.atomic();
    for (const [id, tenantId] of all.slice(i, i + 500)) {
      atomic = atomic.set(keys.xeroEvent(id), { tenantId, receivedAt } satisfies StoredEvent);
    }
    await atomic.commit();
  }
  return { kind: "accepted", stored: all.length };
}

// ---- the pass -----------------------------------------------------------------------------------

type FieldKey = "billStatus" | "amountPaid" | "amountDue" | "fullyPaidOn";

export interface BillStatusDeps {
  kv: Deno.Kv;
  zoho: ZohoPort;
  xero: XeroPort;
  settings: Settings;
  /** Write-back API names that exist in Zoho (null: write-back off). */
  fields: () => Promise<Partial<Record<string, string>> | null>;
  lockWaitMs?: number;
  lockTtlMs?: number;
}

export interface BillStatusReport {
  /** false: another pass was going on (it takes the events stored meanwhile). */
  ran: boolean;
  /** Bills Xero named (poll and events), ours or not. */
  seen: number;
  /** Purchase orders whose Zoho fields were written. */
  written: number;
  /** Purchase orders left for the next pass (Zoho refused, record busy). */
  owed: number;
  apiCalls: { zoho: number; xero: number };
  watermark?: string;
  error?: string;
}

interface Target {
  poId: string;
  bill: XeroBillSummary;
}

/**
 * Works the stored webhook events and, with `poll`, the safety net. Never throws: a pass that
 * cannot reach Xero or Zoho leaves the events stored and the watermark where it was.
 */
export async function syncBillStatuses(
  d: BillStatusDeps,
  { poll }: { poll: boolean },
): Promise<BillStatusReport> {
  const owner = `bill_status:${crypto.randomUUID()}`;
  const calls0 = { zoho: d.zoho.calls.total, xero: d.xero.calls.total };
  const report: BillStatusReport = {
    ran: false,
    seen: 0,
    written: 0,
    owed: 0,
    apiCalls: { zoho: 0, xero: 0 },
  };
  if (!await acquire(d.kv, keys.billStatusLease(), owner, LEASE_MS)) return report;
  report.ran = true;
  try {
    // Events stored while a pass works are taken by one more round (bounded).
    for (let round = 0; round < 3; round++) {
      const more = await onePass(d, owner, round === 0 && poll, report);
      if (!more) break;
    }
  } catch (err) {
    report.error = describe(err);
  } finally {
    await release(d.kv, keys.billStatusLease(), owner).catch(() => {});
    report.apiCalls = {
      zoho: d.zoho.calls.total - calls0.zoho,
      xero: d.xero.calls.total - calls0.xero,
    };
  }
  return report;
}

/** Returns true when events arrived during the pass. */
async function onePass(
  d: BillStatusDeps,
  owner: string,
  poll: boolean,
  report: BillStatusReport,
): Promise<boolean> {
  const started = new Date().toISOString();
  const events = await listAll<StoredEvent>(d.kv, keys.xeroEventPrefix());
  if (!poll && !events.length) return false;
  const { tenantId } = await d.xero.tenant();
  const bills = new Map<string, XeroBillSummary>();

  // Events of other organisations are not ours: dropped.
  const foreign = events.filter((e) => e.value.tenantId !== tenantId);
  await Promise.all(foreign.map((e) => d.kv.atomic().check(e).delete(e.key).commit()));
  const mine = events.filter((e) => e.value.tenantId === tenantId);

  let newMark: string | undefined;
  if (poll) {
    const mark = (await d.kv.get<{ value: string }>(keys.billStatusWatermark(tenantId))).value;
    const since = mark ? new Date(Date.parse(mark.value) - POLL_OVERLAP_MS) : undefined;
    for await (const page of d.xero.listBillChanges(since)) {
      for (const b of page) {
        bills.set(b.invoiceID.toLowerCase(), b);
        if (b.updatedAt && (!newMark || b.updatedAt > newMark)) newMark = b.updatedAt;
      }
    }
  }
  const asked = mine.map((e) => String(e.key.at(-1))).filter((id) => !bills.has(id));
  if (asked.length) {
    const found = await d.xero.billStates(asked);
    for (const [id, b] of found) bills.set(id.toLowerCase(), b);
  }
  report.seen += bills.size;

  const targets = await ours(d, [...bills.values()]);
  const outcome = await writeTargets(d, owner, targets);
  report.written += outcome.written;
  report.owed += outcome.owed.size;

  // Done with: every event read, unless its bill is owed or the event came again meanwhile.
  const owedIds = new Set([...outcome.owed].map((id) => id.toLowerCase()));
  await Promise.all(mine.map(async (e) => {
    const id = String(e.key.at(-1));
    if (owedIds.has(id)) return;
    await d.kv.atomic().check(e).delete(e.key).commit();
  }));
  // Owed bills wait in the event store for the next pass (the poll may have found them).
  const byInvoice = new Map(mine.map((e) => [String(e.key.at(-1)), e]));
  for (const id of owedIds) {
    const prev = byInvoice.get(id)?.value;
    const attempts = (prev?.attempts ?? 0) + 1;
    if (attempts > MAX_ATTEMPTS) {
      await d.kv.delete(keys.xeroEvent(id));
      continue;
    }
    await d.kv.set(
      keys.xeroEvent(id),
      {
        tenantId,
        receivedAt: prev?.receivedAt ?? started,
        attempts,
      } satisfies StoredEvent,
    );
  }

  if (poll && newMark) {
    await d.kv.set(keys.billStatusWatermark(tenantId), {
      value: newMark,
      movedAt: new Date().toISOString(),
    });
    report.watermark = newMark;
  }
  const after = await listAll<StoredEvent>(d.kv, keys.xeroEventPrefix());
  return after.some((e) => e.value.receivedAt > started && !e.value.attempts);
}

/**
 * The bills that belong to one of our purchase orders. The bill's Url (our link back, the record
 * id at its end, whatever the link base was then) names its record, whose state must own that
 * InvoiceID. Only bills without a Url make us read every state (a bill whose Url names no Zoho
 * record is someone else's).
 */
async function ours(d: BillStatusDeps, bills: XeroBillSummary[]): Promise<Target[]> {
  const accpay = bills.filter((b) => !b.type || b.type === "ACCPAY");
  const byUrl = new Map<string, XeroBillSummary>();
  const noUrl: XeroBillSummary[] = [];
  for (const b of accpay) {
    if (!b.url) {
      noUrl.push(b);
      continue;
    }
    const id = /(\d{15,20})\/?(?:[?#].*)?$/.exec(b.url)?.[1];
    if (id && ZohoIdSchema.safeParse(id).success) byUrl.set(id, b);
  }
  const out: Target[] = [];
  const states = await getStates(d.kv, [...byUrl.keys()]);
  for (const [poId, b] of byUrl) {
    if (sameId(states.get(poId)?.invoiceId, b.invoiceID)) out.push({ poId, bill: b });
  }
  if (noUrl.length) {
    const owners = new Map<string, string>();
    for (const e of await listAll<RecordState>(d.kv, keys.billMappingPrefix())) {
      if (e.value.invoiceId) owners.set(e.value.invoiceId.toLowerCase(), String(e.key.at(-1)));
    }
    for (const b of noUrl) {
      const poId = owners.get(b.invoiceID.toLowerCase());
      if (poId) out.push({ poId, bill: b });
    }
  }
  return out;
}

const sameId = (a: string | undefined, b: string) => !!a && a.toLowerCase() === b.toLowerCase();

interface Values {
  billStatus: string;
  amountPaid: number | null;
  amountDue: number | null;
  fullyPaidOn: string | null;
}

function valuesOf(b: XeroBillSummary): Values {
  return {
    billStatus: b.status,
    amountPaid: b.amountPaid ?? null,
    amountDue: b.amountDue ?? null,
    fullyPaidOn: b.fullyPaidOn ?? null,
  };
}

function lastWritten(s: RecordState): Partial<Values> {
  return {
    billStatus: s.billStatus,
    ...(s.xeroAmounts
      ? {
        amountPaid: s.xeroAmounts.amountPaid ?? null,
        amountDue: s.xeroAmounts.amountDue ?? null,
        fullyPaidOn: s.xeroAmounts.fullyPaidOn ?? null,
      }
      : {}),
  };
}

/** Writes the changed fields, 100 records a call, under the records' locks. */
async function writeTargets(
  d: BillStatusDeps,
  owner: string,
  targets: Target[],
): Promise<{ written: number; owed: Set<string> }> {
  const owed = new Set<string>();
  let written = 0;
  if (!targets.length) return { written, owed };
  const fields = d.settings.writeBack.enabled ? await d.fields() ?? {} : {};
  const names: Partial<Record<FieldKey, string>> = {};
  for (const k of ["billStatus", "amountPaid", "amountDue", "fullyPaidOn"] as const) {
    if (fields[k]) names[k] = fields[k];
  }
  for (let i = 0; i < targets.length; i += CHUNK) {
    const chunk = targets.slice(i, i + CHUNK);
    const locks = await lockRecords(d.kv, chunk.map((t) => t.poId), owner, {
      waitMs: d.lockWaitMs ?? 5_000,
      ttlMs: d.lockTtlMs,
    });
    try {
      for (const t of chunk) if (!locks.held.has(t.poId)) owed.add(t.bill.invoiceID);
      const held = chunk.filter((t) => locks.held.has(t.poId));
      const states = await getStates(d.kv, held.map((t) => t.poId));
      const rows: Array<{ id: string } & Record<string, unknown>> = [];
      const next = new Map<string, { state: RecordState; values: Values }>();
      for (const t of held) {
        const state = states.get(t.poId);
        // The record's state may have moved to another bill since Xero answered.
        if (!state || !sameId(state.invoiceId, t.bill.invoiceID)) continue;
        const values = valuesOf(t.bill);
        const before = lastWritten(state);
        const row: { id: string } & Record<string, unknown> = { id: t.poId };
        let changed = false;
        for (const k of Object.keys(values) as FieldKey[]) {
          if (values[k] === before[k]) continue;
          changed = true;
          if (names[k]) row[names[k]!] = values[k];
        }
        if (!changed) continue;
        next.set(t.poId, { state, values });
        if (Object.keys(row).length > 1) rows.push(row);
      }
      const answers = rows.length ? await d.zoho.updateRecords(rows) : [];
      const refused = new Set<string>();
      const producedAt = new Map<string, string | undefined>();
      for (const a of answers) {
        if (a.ok) producedAt.set(a.id, a.modifiedTime);
        else refused.add(a.id);
      }
      let atomic = d.kv.atomic();
      for (const [poId, { state, values }] of next) {
        if (refused.has(poId)) {
          owed.add(state.invoiceId!);
          continue;
        }
        const wrote = producedAt.has(poId);
        if (wrote) written++;
        const modified = producedAt.get(poId);
        atomic = atomic.set(
          keys.billMapping(poId),
          {
            ...state,
            billStatus: values.billStatus,
            xeroAmounts: {
              amountPaid: values.amountPaid ?? undefined,
              amountDue: values.amountDue ?? undefined,
              fullyPaidOn: values.fullyPaidOn,
            },
            // Our write moved Modified_Time: remember it (only where the record was settled), so
            // the next listing does not fetch the record again.
            ...(wrote && modified && state.zohoModifiedTime ? { zohoModifiedTime: modified } : {}),
          } satisfies RecordState,
        );
      }
      await atomic.commit();
    } finally {
      await locks.release();
    }
  }
  return { written, owed };
}
