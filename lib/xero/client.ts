/**
 * The Xero client the sync engine and pages use: tokens, tenant choice, contacts, bills and
 * reference lists for one app installation. Every HTTP request it makes is counted in `calls`.
 */
import { z } from "zod";
import type { Secrets } from "../secrets.ts";
import { keys } from "../store/keys.ts";
import { XeroApi } from "./api.ts";
import {
  billStates,
  findBills,
  getBills,
  listBillChanges,
  listBillsSince,
  setBillStatuses,
  upsertBills,
} from "./bills.ts";
import {
  cachedContacts,
  type ContactResolution,
  forgetContacts,
  isArchivedContactRefusal,
  listContacts,
  markContactsStale,
  resolveContacts,
  type ResolveOptions,
} from "./contacts.ts";
import { StoredTenant, trimUrl, xeroStatus } from "./connection.ts";
import { errorFromResponse, headerMap, XeroError } from "./errors.ts";
import { XeroTokens } from "./tokens.ts";
import type { BillResult, BillSummary, XeroInvoice, XeroStatus, XeroTenant } from "./types.ts";

export interface XeroClientOptions {
  kv: Deno.Kv;
  secrets: Secrets;
  /** XERO_LOGIN_URL (authorize), XERO_IDENTITY_URL (tokens), XERO_API_URL (API, /connections). */
  loginUrl: string;
  identityUrl: string;
  apiUrl: string;
  clientId?: string;
  clientSecret?: string;
  /** XERO_REFRESH_TOKEN: used only while KV holds no token. */
  refreshTokenSeed?: string;
  /** XERO_TENANT_ID: which organisation, unless one was chosen in the app. */
  tenantId?: string;
  limits?: { concurrent?: number; perMinute?: number; windowMs?: number };
  retry?: { attempts?: number; maxWaitMs?: number };
  /** Give up waiting for one answer after this long (default 60 s). */
  requestTimeoutMs?: number;
}

export const XERO_SCOPES =
  "offline_access accounting.transactions accounting.contacts accounting.settings";

const connectionSchema = z.array(z.object({
  tenantId: z.string(),
  tenantName: z.string().nullish(),
  tenantType: z.string().nullish(),
}));

/** How long a read of the tax rates is reused (XeroClient.taxRates). */
const TAX_RATES_MAX_AGE_MS = 60_000;

export class XeroClient {
  readonly calls: { total: number; byEndpoint: Record<string, number>; egressBytes: number } = {
    total: 0,
    byEndpoint: {},
    // Bytes of the API's answers (Xero bills data egress past a monthly allowance).
    egressBytes: 0,
  };
  /** Why vendors were left out of the last resolveContacts result (vendor id → message). */
  readonly contactFailures = new Map<string, string>();
  /** Warnings of the last resolveContacts result (vendor id → message), e.g. a shared contact. */
  readonly contactWarnings = new Map<string, string>();
  /** ContactID (lower case) → vendor ids this process resolved to it, to find them after a refusal. */
  private readonly vendorsByContact = new Map<string, Set<string>>();
  private readonly tokens: XeroTokens;
  private readonly api: XeroApi;
  private readonly apiUrl: string;
  private tenantCache?: XeroTenant;

  constructor(private readonly opts: XeroClientOptions) {
    this.apiUrl = trimUrl(opts.apiUrl);
    const count = (ep: string) => this.count(ep);
    this.tokens = new XeroTokens({
      kv: opts.kv,
      // Xero's whole token set lives under one KV key: every ciphertext is bound to it.
      secrets: opts.secrets.bind(keys.xeroToken()),
      identityUrl: trimUrl(opts.identityUrl),
      clientId: opts.clientId,
      clientSecret: opts.clientSecret,
      refreshTokenSeed: opts.refreshTokenSeed,
      count,
    });
    this.api = new XeroApi({
      apiUrl: this.apiUrl,
      tokens: this.tokens,
      limits: {
        concurrent: opts.limits?.concurrent ?? 5,
        perMinute: opts.limits?.perMinute ?? 60,
        windowMs: opts.limits?.windowMs ?? 60_000,
      },
      attempts: opts.retry?.attempts ?? 5,
      maxWaitMs: opts.retry?.maxWaitMs ?? 65_000,
      timeoutMs: opts.requestTimeoutMs ?? 60_000,
      count,
      egress: (bytes) => (this.calls.egressBytes += bytes),
    });
  }

  // ---- connection ------------------------------------------------------------------------------

  authorizeUrl(state: string, redirectUri: string, codeChallenge?: string): string {
    const params = new URLSearchParams({
      response_type: "code",
      client_id: this.opts.clientId ?? "",
      redirect_uri: redirectUri,
      scope: XERO_SCOPES,
      state,
      ...(codeChallenge ? { code_challenge: codeChallenge, code_challenge_method: "S256" } : {}),
    });
    return `${trimUrl(this.opts.loginUrl)}/identity/connect/authorize?${params}`;
  }

  async exchangeCode(code: string, redirectUri: string, codeVerifier?: string): Promise<void> {
    await this.tokens.exchangeCode(code, redirectUri, codeVerifier);
    // A new consent may cover other organisations: keep the choice only if still connected.
    const conns = await this.connections();
    const stored = StoredTenant.safeParse((await this.opts.kv.get(keys.xeroTenant())).value);
    if (stored.success && conns.some((c) => c.tenantId === stored.data.tenantId)) return;
    this.tenantCache = undefined;
    await this.opts.kv.delete(keys.xeroTenant());
    if (conns.length) await this.tenant();
  }

  /** The organisations this app is connected to (GET /connections, with fetch). */
  async connections(): Promise<XeroTenant[]> {
    let rejected: string | undefined;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const token = await this.tokens.accessToken(rejected);
      this.count("connections");
      let res: Response;
      try {
        res = await fetch(`${this.apiUrl}/connections`, {
          headers: { authorization: `Bearer ${token}`, accept: "application/json" },
          signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 60_000),
        });
      } catch (e) {
        if (attempt === 3) {
          throw new XeroError(`Xero connections: connection failed (${(e as Error).name})`, {
            status: 0,
            kind: "network",
          });
        }
        continue;
      }
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch { /* keep the text */ }
      if (res.status === 401 && rejected !== token) {
        rejected = token;
        continue;
      }
      if (!res.ok) {
        const err = errorFromResponse(res.status, body, headerMap(res.headers), "connections", [
          token,
          ...this.tokens.knownSecrets(),
        ]);
        if (!err.retryable || attempt === 3) throw err;
        continue;
      }
      const parsed = connectionSchema.safeParse(body);
      if (!parsed.success) {
        throw new XeroError("Xero connections: unexpected answer", { status: 502, kind: "server" });
      }
      return parsed.data
        .filter((c) => !c.tenantType || c.tenantType === "ORGANISATION")
        .map((c) => ({ tenantId: c.tenantId, tenantName: c.tenantName ?? "" }));
    }
    throw new XeroError("Xero connections: no answer", { status: 0, kind: "network" });
  }

  /**
   * The organisation to work in: the one chosen in the app, else XERO_TENANT_ID, else the first
   * connection. Remembered in KV, so this costs a call only the first time.
   */
  tenant(): Promise<XeroTenant> {
    if (this.tenantCache) return Promise.resolve(this.tenantCache);
    // One lookup for all callers that arrive together (a run's first batch asks many times).
    this.tenantLookup ??= this.lookupTenant().finally(() => this.tenantLookup = undefined);
    return this.tenantLookup;
  }

  private tenantLookup?: Promise<XeroTenant>;

  private async lookupTenant(): Promise<XeroTenant> {
    const stored = StoredTenant.safeParse((await this.opts.kv.get(keys.xeroTenant())).value);
    const env = this.opts.tenantId;
    if (
      stored.success &&
      (stored.data.source === "choice" || !env || stored.data.tenantId === env)
    ) {
      this.tenantCache = { tenantId: stored.data.tenantId, tenantName: stored.data.tenantName };
      return this.tenantCache;
    }
    const conns = await this.connections();
    const pick = env ? conns.find((c) => c.tenantId === env) : conns[0];
    if (!pick) {
      throw new XeroError(
        env
          ? `XERO_TENANT_ID ${env} is not among the organisations connected to this app`
          : "No Xero organisation is connected to this app: connect Xero again",
        { status: 403, kind: "auth", retryable: false },
      );
    }
    await this.opts.kv.set(keys.xeroTenant(), { ...pick, source: env ? "env" : "default" });
    this.tenantCache = pick;
    return pick;
  }

  async chooseTenant(tenantId: string): Promise<void> {
    const pick = (await this.connections()).find((c) => c.tenantId === tenantId);
    if (!pick) {
      throw new XeroError(`Organisation ${tenantId} is not connected to this app`, {
        status: 404,
        kind: "validation",
        retryable: false,
      });
    }
    await this.opts.kv.set(keys.xeroTenant(), { ...pick, source: "choice" });
    this.tenantCache = pick;
  }

  async disconnect(): Promise<void> {
    await this.tokens.clear();
    await this.opts.kv.delete(keys.xeroTenant());
    this.tenantCache = undefined;
  }

  /** Cheap: reads KV and the last rate-limit headers seen; makes no call to Xero (connection.ts). */
  status(): Promise<XeroStatus> {
    const { kv, clientId, clientSecret, refreshTokenSeed } = this.opts;
    return xeroStatus({ kv, apiUrl: this.apiUrl, clientId, clientSecret, refreshTokenSeed });
  }

  // ---- contacts and bills ----------------------------------------------------------------------

  /**
   * Zoho vendor id → Xero ContactID (the admin's link, the cache, ContactNumber, name, else a new
   * contact). Vendors that could not be resolved are left out; the answer's `failures` (and
   * `contactFailures`) say why, in Xero's words when Xero refused. `warnings` flags vendors that
   * share a contact. `{recheck: true}` verifies cached contacts with Xero first (one GET per 50);
   * cached contacts a day old, or whose bill Xero refused as archived, are verified anyway.
   */
  async resolveContacts(
    vendors: Array<{ zohoVendorId: string; name: string }>,
    opts: ResolveOptions = {},
  ): Promise<ContactResolution> {
    const { tenantId } = await this.tenant();
    const resolved = await resolveContacts(
      { kv: this.opts.kv, api: this.api, tenantId },
      vendors,
      opts,
    );
    this.contactFailures.clear();
    for (const [id, message] of resolved.failures) this.contactFailures.set(id, message);
    this.contactWarnings.clear();
    for (const [id, message] of resolved.warnings) this.contactWarnings.set(id, message);
    for (const [id, contactID] of resolved) {
      const key = contactID.toLowerCase();
      const set = this.vendorsByContact.get(key) ?? new Set<string>();
      set.add(id);
      this.vendorsByContact.set(key, set);
    }
    return resolved;
  }

  /**
   * The contacts a preview can promise without calling Xero: the admin's links and cached
   * contacts of the current organisation (what resolveContacts starts from).
   */
  async cachedContacts(zohoVendorIds: string[]): Promise<Map<string, string>> {
    const { tenantId } = await this.tenant();
    return cachedContacts(this.opts.kv, tenantId, zohoVendorIds);
  }

  /**
   * Drops cached vendor → contact mappings (an admin's link is kept). Rarely needed: a contact
   * Xero refuses as archived is re-checked by the next resolveContacts on its own.
   */
  forgetContacts(zohoVendorIds: string[]): Promise<void> {
    return forgetContacts(this.opts.kv, zohoVendorIds);
  }

  /**
   * Creates (no invoiceID) or updates (invoiceID) bills, one result per key. Throws only before
   * anything was sent (not connected, daily limit known to be used up); a failure after that is
   * reported on each affected bill, with `kind` telling a failed call from a rejected bill.
   */
  async upsertBills(
    items: Array<{ key: string; invoice: XeroInvoice }>,
  ): Promise<Map<string, BillResult>> {
    const { tenantId } = await this.tenant();
    const results = await upsertBills({ api: this.api, tenantId }, items);
    // A bill refused because its contact is archived: that contact is re-checked before reuse.
    const archived: string[] = [];
    for (const it of items) {
      const r = results.get(it.key);
      if (!r || r.ok || !isArchivedContactRefusal(r.message)) continue;
      archived.push(it.invoice.contact.contactID);
      // Named, so the sync can resolve the vendor again and resend at once.
      results.set(it.key, { ...r, kind: "contact_archived" });
    }
    if (archived.length) await markContactsStale(this.opts.kv, archived, this.vendorsByContact);
    return results;
  }

  async getBills(invoiceIDs: string[]): Promise<Map<string, BillSummary>> {
    const { tenantId } = await this.tenant();
    return getBills({ api: this.api, tenantId }, invoiceIDs);
  }

  async findBills(invoiceNumbers: string[]): Promise<BillSummary[]> {
    const { tenantId } = await this.tenant();
    return findBills({ api: this.api, tenantId }, invoiceNumbers);
  }

  async *listBillsSince(modifiedSince?: Date): AsyncGenerator<BillSummary[]> {
    const { tenantId } = await this.tenant();
    yield* listBillsSince({ api: this.api, tenantId }, modifiedSince);
  }

  /** ACCPAY bills changed since a moment: status and amounts, 1,000 a page. */
  async *listBillChanges(modifiedSince?: Date): AsyncGenerator<BillSummary[]> {
    const { tenantId } = await this.tenant();
    yield* listBillChanges({ api: this.api, tenantId }, modifiedSince);
  }

  /** Status and amounts of the named bills, without their lines. */
  async billStates(invoiceIDs: string[]): Promise<Map<string, BillSummary>> {
    const { tenantId } = await this.tenant();
    return billStates({ api: this.api, tenantId }, invoiceIDs);
  }

  /** Deletes or voids bills (by InvoiceID), each with Xero's answer. */
  async setBillStatuses(
    changes: Array<{ invoiceID: string; status: "DELETED" | "VOIDED" }>,
  ): Promise<Map<string, BillResult>> {
    const { tenantId } = await this.tenant();
    return setBillStatuses({ api: this.api, tenantId }, changes);
  }

  // ---- reference lists (settings dropdowns) ----------------------------------------------------

  async accounts(): Promise<Array<{ code: string; name: string; type: string }>> {
    const { tenantId } = await this.tenant();
    const body = await this.api.call("accounts", tenantId, (a) => a.getAccounts(tenantId));
    return (body.accounts ?? [])
      .filter((a) => a.code && String(a.status ?? "ACTIVE") === "ACTIVE" && !a.systemAccount)
      .map((a) => ({ code: a.code!, name: a.name ?? "", type: String(a.type ?? "") }));
  }

  /**
   * The organisation's active tax rates (TaxType → EffectiveRate). Read at most once a minute per
   * organisation, and once for callers arriving together: a sync run reads them once to check its
   * tax mappings, and the settings page after it costs no extra call. `fresh` always asks Xero.
   */
  async taxRates(
    opts: { fresh?: boolean } = {},
  ): Promise<Array<{ taxType: string; name: string; rate: number }>> {
    const { tenantId } = await this.tenant();
    const cached = this.taxRatesCache;
    if (
      !opts.fresh && cached?.tenantId === tenantId &&
      Date.now() - cached.at < TAX_RATES_MAX_AGE_MS
    ) {
      return (await cached.rates).map((r) => ({ ...r }));
    }
    const entry = {
      tenantId,
      at: Date.now(),
      rates: this.api.call("taxrates", tenantId, (a) => a.getTaxRates(tenantId)).then((body) =>
        (body.taxRates ?? [])
          .filter((t) => t.taxType && String(t.status ?? "ACTIVE") === "ACTIVE")
          .map((t) => ({
            taxType: t.taxType!,
            name: t.name ?? "",
            rate: Number(t.effectiveRate ?? 0),
          }))
      ),
    };
    this.taxRatesCache = entry;
    // A failed read is not kept: the next caller asks Xero again.
    entry.rates.catch(() => {
      if (this.taxRatesCache === entry) this.taxRatesCache = undefined;
    });
    return (await entry.rates).map((r) => ({ ...r }));
  }

  private taxRatesCache?: {
    tenantId: string;
    at: number;
    rates: Promise<Array<{ taxType: string; name: string; rate: number }>>;
  };

  async currencies(): Promise<string[]> {
    const { tenantId } = await this.tenant();
    const body = await this.api.call("currencies", tenantId, (a) => a.getCurrencies(tenantId));
    return (body.currencies ?? []).map((c) => String(c.code ?? "")).filter(Boolean);
  }

  async contactsList(): Promise<Array<{ contactID: string; name: string }>> {
    const { tenantId } = await this.tenant();
    return listContacts(this.api, tenantId);
  }

  private count(ep: string) {
    this.calls.total++;
    this.calls.byEndpoint[ep] = (this.calls.byEndpoint[ep] ?? 0) + 1;
  }
}
