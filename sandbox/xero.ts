/**
 * A Xero simulator: a real HTTP server on 127.0.0.1 speaking Xero's wire format for what this
 * product uses (REFERENCE.md, Xero section): OAuth token endpoint with refresh-token rotation and
 * grace, the authorize redirect (PKCE checked when a code_challenge was sent, as Xero does),
 * `/connections`, and under `/api.xro/2.0` Contacts, Invoices, Accounts, TaxRates and Currencies
 * with validation, status rules, `summarizeErrors`, `Idempotency-Key` replay and
 * per-organisation rate limits. It counts calls by endpoint and injects faults. `GET /` is a page
 * of each organisation's bills (the demo's "Xero") where a bill can be approved, paid or voided as
 * an accountant would. With a webhook configured it sends Xero's signed webhooks (the
 * intent-to-receive handshake first, then INVOICE events, batched).
 *
 * Fault semantics: "429", "500", "503", "malformed" and "invalid_token" answer instead of doing the
 * work; "drop" does the work (a write is stored) and then cuts the connection before the reply,
 * the case an `Idempotency-Key` exists for; "delay" waits `delayMs` and then answers normally.
 */
import {
  DEFAULT_ACCOUNTS,
  DEFAULT_CONTACTS,
  DEFAULT_CURRENCIES,
  DEFAULT_TAX_RATES,
  type ElementResult,
  type InvoiceStatus,
  type ListQuery,
  msDate,
  type SimAccountSeed,
  type SimContactSeed,
  SimOrg,
  type SimTaxRateSeed,
  type XeroSimContact,
  type XeroSimInvoice,
} from "./xero_org.ts";
import { seededRandom } from "./po_generator.ts";
import { heldCalls } from "./held.ts";
import { WhereError } from "./xero_where.ts";

export type { XeroSimContact, XeroSimInvoice, XeroSimLineItem } from "./xero_org.ts";
export { MESSAGES as XERO_SIM_MESSAGES } from "./xero_org.ts";

export interface XeroSimOptions {
  port?: number;
  clientId?: string;
  clientSecret?: string;
  refreshToken?: string;
  /** Organisations the app is connected to; default one "Demo Company (AU)". */
  tenants?: { tenantId: string; tenantName: string }[];
  accounts?: SimAccountSeed[];
  taxRates?: SimTaxRateSeed[];
  /** Currency codes the organisations are subscribed to; the first is the base currency. */
  currencies?: string[];
  contacts?: SimContactSeed[];
  /** Added to every API call (after the concurrency slot is taken). */
  latencyMs?: number;
  limits?: { concurrent?: number; perMinute?: number; perDay?: number; appPerMinute?: number };
  /** >1 runs the minute window faster: windowMs = 60000 / clockScale. Retry-After stays in real seconds (≥ 1). */
  clockScale?: number;
  /** How long a rotated-out refresh token still works (default 30 minutes). */
  refreshGraceMs?: number;
  accessTokenTtlSec?: number;
  /** Refuse a line TaxAmount further than this from the org's own tax (default: take any). */
  taxAmountTolerance?: number;
  /** Events are gathered this long and sent as one delivery (default 50 ms). */
  webhookBatchMs?: number;
}

/** One webhook delivery the simulator made, and the answer it got. */
export interface XeroWebhookDelivery {
  status: number;
  events: number;
  handshake: boolean;
}

export type XeroFaultKind =
  | "429"
  | "500"
  | "503"
  | "delay"
  | "drop"
  | "malformed"
  | "invalid_token"
  /** Like "delay", but `whenHeld()` says when a call waits and `releaseHeld()` ends the wait. */
  | "hold";

export interface XeroFaultSpec {
  /** A counts key ("invoices.put") or its prefix ("invoices"); all endpoints when left out. */
  endpoint?: string;
  kind: XeroFaultKind;
  times?: number;
  delayMs?: number;
  retryAfterSec?: number;
}

export interface XeroRandomFaults {
  rate: number;
  seed: number;
  kinds: XeroFaultKind[];
  endpoints?: string[];
  delayMs?: number;
}

export interface XeroSim {
  url: string;
  clientId: string;
  clientSecret: string;
  /** The currently valid refresh token (it rotates on every refresh). */
  readonly refreshToken: string;
  /** The first organisation. */
  tenantId: string;
  invoices(tenantId?: string): XeroSimInvoice[];
  contacts(tenantId?: string): XeroSimContact[];
  /** A user submitting, approving, paying, voiding or deleting a bill in Xero. */
  setInvoiceStatus(
    invoiceId: string,
    status: "SUBMITTED" | "AUTHORISED" | "PAID" | "VOIDED" | "DELETED",
  ): void;
  /**
   * Forgets every bill, contact, idempotency answer and rate-limit count, and every queued fault:
   * a fresh organisation on the same port (tests reuse one simulator across many histories).
   */
  reset(): void;
  /** An accountant archiving (or restoring) a contact; Xero then refuses bills for it. */
  setContactStatus(contactId: string, status: "ACTIVE" | "ARCHIVED"): void;
  counts: Record<string, number>;
  totalCalls(): number;
  resetCounts(): void;
  fault(spec: XeroFaultSpec): void;
  randomFaults(spec: XeroRandomFaults | null): void;
  /** Drops every queued and random fault. */
  clearFaults(): void;
  setDayLimitRemaining(n: number, tenantId?: string): void;
  /** Makes every issued access token expired (the next API call answers 401). */
  expireAccessTokens(): void;
  /**
   * Points Xero's webhook at `url`, signed with `key`, and runs the intent-to-receive handshake
   * (empty deliveries, some signed wrongly): true and enabled only if each got the right answer.
   * `null` removes the webhook.
   */
  configureWebhook(cfg: { url: string; key: string } | null): Promise<boolean>;
  /** While true, events are lost (the webhook is down or disabled). */
  webhookDown: boolean;
  readonly webhookDeliveries: XeroWebhookDelivery[];
  /** Sends the gathered events now and waits for every delivery under way. */
  flushWebhooks(): Promise<void>;
  /** Resolves true once a call is held by a "hold" fault (at once if one is), false after `ms`. */
  whenHeld(ms: number): Promise<boolean>;
  /** Lets every held call go on. */
  releaseHeld(): void;
  close(): Promise<void>;
}

const PROVIDER = "Zoho to Xero sync (sandbox)";
const SCOPES = "offline_access accounting.transactions accounting.contacts accounting.settings";

interface TenantLimits {
  inFlight: number;
  window: number[];
  dayUsed: number;
}

/** Deno prints the reason of an aborted response body; make that line say what happened. */
class DroppedConnection {
  [Symbol.for("Deno.customInspect")]() {
    return "xero-sim: connection dropped after the work was done (injected fault)";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });

function endpointOf(method: string, path: string): string | null {
  if (path === "/" || path === "/favicon.ico" || path.startsWith("/sandbox/")) return null;
  if (path === "/connect/token") return "token";
  if (path === "/connect/revocation") return "revoke";
  if (path === "/identity/connect/authorize") return "authorize";
  if (path === "/connections" || path.startsWith("/connections/")) return "connections";
  const m = /^\/api\.xro\/2\.0\/([^/]+)/i.exec(path);
  if (!m) return "other";
  const r = m[1].toLowerCase();
  return r === "contacts" || r === "invoices" ? `${r}.${method.toLowerCase()}` : r;
}

/** Query parameters by lower-case name; list values split on commas (Xero's `IDs=a,b`). */
class Query {
  private readonly map = new Map<string, string[]>();
  constructor(params: URLSearchParams) {
    for (const [k, v] of params) {
      const key = k.toLowerCase().replace(/\[\]$/, "");
      this.map.set(key, [...(this.map.get(key) ?? []), v]);
    }
  }
  get(name: string): string | undefined {
    return this.map.get(name.toLowerCase())?.[0];
  }
  list(name: string): string[] | undefined {
    const v = this.map.get(name.toLowerCase());
    return v ? v.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean) : undefined;
  }
  bool(name: string): boolean | undefined {
    const v = this.get(name);
    return v === undefined ? undefined : v.toLowerCase() === "true";
  }
  int(name: string): number | undefined {
    const v = this.get(name);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  }
}

export function startXeroSim(opts: XeroSimOptions = {}): Promise<XeroSim> {
  const clientId = opts.clientId ?? "sim-xero-client";
  const clientSecret = opts.clientSecret ?? "sim-xero-secret";
  const limits = {
    concurrent: opts.limits?.concurrent ?? 5,
    perMinute: opts.limits?.perMinute ?? 60,
    perDay: opts.limits?.perDay ?? 5000,
    appPerMinute: opts.limits?.appPerMinute ?? 10000,
  };
  const windowMs = 60000 / Math.max(opts.clockScale ?? 1, 1e-9);
  const graceMs = opts.refreshGraceMs ?? 30 * 60 * 1000;
  const ttlSec = opts.accessTokenTtlSec ?? 1800;
  const latencyMs = opts.latencyMs ?? 0;

  const tenants = opts.tenants ??
    [{ tenantId: crypto.randomUUID(), tenantName: "Demo Company (AU)" }];
  const orgs = new Map<string, SimOrg>();
  const rate = new Map<string, TenantLimits>();
  const appWindow: number[] = [];
  function seedOrgs() {
    for (const t of tenants) {
      orgs.set(
        t.tenantId,
        new SimOrg(t.tenantId, t.tenantName, {
          accounts: opts.accounts ?? DEFAULT_ACCOUNTS,
          taxRates: opts.taxRates ?? DEFAULT_TAX_RATES,
          currencies: opts.currencies ?? DEFAULT_CURRENCIES,
          contacts: opts.contacts ?? DEFAULT_CONTACTS,
          taxAmountTolerance: opts.taxAmountTolerance,
        }),
      );
      // Changed in place, in-flight count kept: requests of the previous user may still finish.
      const limit = rate.get(t.tenantId);
      if (limit) Object.assign(limit, { window: [], dayUsed: 0 });
      else rate.set(t.tenantId, { inFlight: 0, window: [], dayUsed: 0 });
    }
    appWindow.length = 0;
  }
  seedOrgs();

  // OAuth state. A refresh token is valid until `validUntil` (Infinity while it is the newest).
  const refreshTokens = new Map<string, { validUntil: number }>();
  let currentRefresh = opts.refreshToken ?? `sim-rt-${crypto.randomUUID()}`;
  refreshTokens.set(currentRefresh, { validUntil: Infinity });
  const accessTokens = new Map<string, number>();
  // A code issued with a PKCE challenge is spent only with the matching code_verifier.
  const codes = new Map<
    string,
    { redirectUri: string; expiresAt: number; challenge?: { value: string; method: string } }
  >();
  const connectedAt = new Date().toISOString();

  const counts: Record<string, number> = {};
  const holding = heldCalls(sleep);
  let faults: Array<XeroFaultSpec & { left: number }> = [];
  let random: (XeroRandomFaults & { next: () => number }) | null = null;

  function takeFault(ep: string): XeroFaultSpec | undefined {
    const matches = (e?: string) => !e || e === ep || ep.startsWith(`${e}.`);
    const f = faults.find((f) => f.left > 0 && matches(f.endpoint));
    if (f) {
      f.left--;
      faults = faults.filter((x) => x.left > 0);
      return f;
    }
    if (random && (!random.endpoints || random.endpoints.some(matches))) {
      if (random.next() < random.rate) {
        const kind = random.kinds[Math.floor(random.next() * random.kinds.length)];
        return { kind, delayMs: random.delayMs };
      }
    }
    return undefined;
  }

  function faultResponse(f: XeroFaultSpec): Response | undefined {
    switch (f.kind) {
      case "429":
        return new Response(null, {
          status: 429,
          headers: {
            "retry-after": String(f.retryAfterSec ?? 1),
            "x-rate-limit-problem": "minute",
          },
        });
      case "500":
        return json(500, {
          Title: "An error occurred",
          Detail:
            "An error occurred in Xero. Check the API Status page for current service status.",
          Status: 500,
        });
      case "503":
        return new Response("The Xero API is temporarily unavailable.", { status: 503 });
      case "malformed":
        return new Response("<html><body>Bad gateway</body></html>", {
          status: 200,
          headers: { "content-type": "application/json" },
        });
      case "invalid_token":
        return unauthorized("TokenExpired: token expired");
    }
    return undefined;
  }

  const dropped = () =>
    new Response(new ReadableStream({ start: (c) => c.error(new DroppedConnection()) }), {
      status: 200,
      headers: { "content-type": "application/json" },
    });

  function unauthorized(detail = "AuthenticationUnsuccessful") {
    return json(401, {
      Type: null,
      Title: "Unauthorized",
      Status: 401,
      Detail: detail,
      Instance: crypto.randomUUID(),
      Extensions: {},
    }, { "www-authenticate": 'Bearer error="invalid_token"' });
  }

  function bearer(req: Request): "ok" | "expired" | "invalid" {
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.get("authorization") ?? "");
    const exp = m ? accessTokens.get(m[1].trim()) : undefined;
    if (exp === undefined) return "invalid";
    return exp > Date.now() ? "ok" : "expired";
  }

  // ---- OAuth -----------------------------------------------------------------------------------

  function issueTokens(usedRefresh: string | null) {
    const now = Date.now();
    if (usedRefresh) {
      for (const t of [usedRefresh, currentRefresh]) {
        const rec = refreshTokens.get(t);
        if (rec) rec.validUntil = Math.min(rec.validUntil, now + graceMs);
      }
    }
    currentRefresh = `sim-rt-${crypto.randomUUID()}`;
    refreshTokens.set(currentRefresh, { validUntil: Infinity });
    const access = `sim-at-${crypto.randomUUID()}`;
    accessTokens.set(access, now + ttlSec * 1000);
    return json(200, {
      access_token: access,
      expires_in: ttlSec,
      token_type: "Bearer",
      refresh_token: currentRefresh,
      scope: SCOPES,
    });
  }

  async function tokenEndpoint(req: Request): Promise<Response> {
    if (req.method !== "POST") return json(405, { error: "invalid_request" });
    const form = new URLSearchParams(await req.text());
    let id = form.get("client_id");
    let secret = form.get("client_secret");
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.get("authorization") ?? "");
    if (basic) {
      try {
        const decoded = atob(basic[1]);
        const i = decoded.indexOf(":");
        id = decodeURIComponent(decoded.slice(0, i));
        secret = decodeURIComponent(decoded.slice(i + 1));
      } catch {
        return json(400, { error: "invalid_client" });
      }
    }
    if (id !== clientId || secret !== clientSecret) return json(400, { error: "invalid_client" });
    const grant = form.get("grant_type");
    if (grant === "refresh_token") {
      const rt = form.get("refresh_token") ?? "";
      const rec = refreshTokens.get(rt);
      if (!rec || rec.validUntil <= Date.now()) return json(400, { error: "invalid_grant" });
      return issueTokens(rt);
    }
    if (grant === "authorization_code") {
      const code = codes.get(form.get("code") ?? "");
      codes.delete(form.get("code") ?? "");
      if (!code || code.expiresAt < Date.now() || code.redirectUri !== form.get("redirect_uri")) {
        return json(400, { error: "invalid_grant" });
      }
      if (code.challenge && !await pkceMatches(code.challenge, form.get("code_verifier"))) {
        return json(400, { error: "invalid_grant" });
      }
      return issueTokens(null);
    }
    return json(400, { error: "unsupported_grant_type" });
  }

  /** RFC 7636 as Xero applies it: S256 (or plain) of the verifier must equal the challenge. */
  async function pkceMatches(
    challenge: { value: string; method: string },
    verifier: string | null,
  ): Promise<boolean> {
    if (!verifier || !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) return false;
    if (challenge.method === "plain") return verifier === challenge.value;
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)),
    );
    const s256 = btoa(String.fromCharCode(...digest)).replaceAll("+", "-").replaceAll("/", "_")
      .replace(/=+$/, "");
    return s256 === challenge.value;
  }

  function authorize(url: URL): Response {
    const q = url.searchParams;
    const redirect = q.get("redirect_uri");
    if (q.get("client_id") !== clientId || !redirect || q.get("response_type") !== "code") {
      return new Response("Invalid authorize request (client_id, redirect_uri, response_type)", {
        status: 400,
      });
    }
    const challenge = q.get("code_challenge");
    const method = q.get("code_challenge_method") ?? "plain";
    if (challenge !== null && !["S256", "plain"].includes(method)) {
      return new Response("Invalid code_challenge_method", { status: 400 });
    }
    const code = `sim-code-${crypto.randomUUID()}`;
    codes.set(code, {
      redirectUri: redirect,
      expiresAt: Date.now() + 5 * 60 * 1000,
      ...(challenge !== null ? { challenge: { value: challenge, method } } : {}),
    });
    const target = new URL(redirect);
    target.searchParams.set("code", code);
    target.searchParams.set("scope", q.get("scope") ?? SCOPES);
    if (q.get("state") !== null) target.searchParams.set("state", q.get("state")!);
    return new Response(null, { status: 302, headers: { location: target.toString() } });
  }

  async function revoke(req: Request): Promise<Response> {
    await req.text();
    refreshTokens.clear();
    accessTokens.clear();
    currentRefresh = "";
    return new Response(null, { status: 200 });
  }

  function connections(req: Request, path: string): Response {
    const auth = bearer(req);
    if (auth !== "ok") return unauthorized(auth === "expired" ? "TokenExpired" : undefined);
    const del = /^\/connections\/([^/]+)$/.exec(path);
    if (req.method === "DELETE" && del) {
      const org = [...orgs.values()].find((o) => connectionId(o.tenantId) === del[1]);
      if (!org) return new Response(null, { status: 404 });
      org.connected = false;
      return new Response(null, { status: 204 });
    }
    return json(
      200,
      [...orgs.values()].filter((o) => o.connected).map((o) => ({
        id: connectionId(o.tenantId),
        authEventId: connectionId(`auth:${o.tenantId}`),
        tenantId: o.tenantId,
        tenantType: "ORGANISATION",
        tenantName: o.tenantName,
        createdDateUtc: connectedAt,
        updatedDateUtc: connectedAt,
      })),
    );
  }

  // ---- rate limits -----------------------------------------------------------------------------

  function prune(window: number[], now: number) {
    while (window.length && window[0] <= now - windowMs) window.shift();
  }

  function limitHeaders(t: TenantLimits): Record<string, string> {
    return {
      "x-minlimit-remaining": String(Math.max(0, limits.perMinute - t.window.length)),
      "x-daylimit-remaining": String(Math.max(0, limits.perDay - t.dayUsed)),
      "x-appminlimit-remaining": String(Math.max(0, limits.appPerMinute - appWindow.length)),
    };
  }

  /** Takes a slot, or answers 429 naming the limit that was hit. */
  function admit(t: TenantLimits): Response | null {
    const now = Date.now();
    prune(t.window, now);
    prune(appWindow, now);
    const over = (problem: string, retryAfterSec?: number) =>
      new Response(null, {
        status: 429,
        headers: {
          ...limitHeaders(t),
          "x-rate-limit-problem": problem,
          ...(retryAfterSec !== undefined ? { "retry-after": String(retryAfterSec) } : {}),
        },
      });
    if (t.dayUsed >= limits.perDay) {
      const midnight = new Date(now);
      midnight.setUTCHours(24, 0, 0, 0);
      return over("day", Math.max(1, Math.ceil((midnight.getTime() - now) / 1000)));
    }
    if (t.inFlight >= limits.concurrent) return over("concurrent");
    if (t.window.length >= limits.perMinute) {
      return over("minute", Math.max(1, Math.ceil((t.window[0] + windowMs - now) / 1000)));
    }
    if (appWindow.length >= limits.appPerMinute) {
      return over("appminute", Math.max(1, Math.ceil((appWindow[0] + windowMs - now) / 1000)));
    }
    t.window.push(now);
    appWindow.push(now);
    t.dayUsed++;
    return null;
  }

  // ---- accounting API --------------------------------------------------------------------------

  async function accounting(req: Request, url: URL, drop: boolean): Promise<Response> {
    const auth = bearer(req);
    if (auth !== "ok") {
      return unauthorized(auth === "expired" ? "TokenExpired: token expired" : undefined);
    }
    const tenantId = req.headers.get("xero-tenant-id") ?? "";
    const org = orgs.get(tenantId);
    if (!org || !org.connected) {
      return json(403, {
        Type: null,
        Title: "Forbidden",
        Status: 403,
        Detail: "AuthenticationUnsuccessful",
        Instance: crypto.randomUUID(),
      });
    }
    const t = rate.get(tenantId)!;
    const refused = admit(t);
    if (refused) return refused;
    t.inFlight++;
    try {
      if (latencyMs) await sleep(latencyMs);
      const res = await route(req, url, org);
      if (drop) return dropped();
      for (const [k, v] of Object.entries(limitHeaders(t))) res.headers.set(k, v);
      return res;
    } finally {
      t.inFlight--;
    }
  }

  function envelope(name: string, items: unknown[], extra: Record<string, unknown> = {}) {
    return {
      Id: crypto.randomUUID(),
      Status: "OK",
      ProviderName: PROVIDER,
      DateTimeUTC: msDate(Date.now()),
      ...extra,
      [name]: items,
    };
  }

  function listQuery(q: Query, req: Request): ListQuery {
    const ims = req.headers.get("if-modified-since");
    const since = ims ? Date.parse(ims) : NaN;
    return {
      where: q.get("where"),
      ids: q.list("IDs"),
      invoiceNumbers: q.list("InvoiceNumbers"),
      contactIds: q.list("ContactIDs"),
      statuses: q.list("Statuses"),
      page: q.int("page"),
      pageSize: q.int("pageSize"),
      includeArchived: q.bool("includeArchived"),
      summaryOnly: q.bool("summaryOnly"),
      searchTerm: q.get("searchTerm"),
      order: q.get("order"),
      modifiedSince: Number.isNaN(since) ? undefined : since,
      unitdp: q.int("unitdp"),
    };
  }

  async function readElements(req: Request, plural: string): Promise<unknown[] | Response> {
    let body: unknown;
    try {
      body = JSON.parse(await req.text());
    } catch {
      return json(400, {
        ErrorNumber: 14,
        Type: "PostDataInvalidException",
        Message: "Invalid Json data",
      });
    }
    const lower = plural.toLowerCase();
    const key = body && typeof body === "object"
      ? Object.keys(body).find((k) => k.toLowerCase() === lower)
      : undefined;
    const list = key ? (body as Record<string, unknown>)[key] : body;
    return Array.isArray(list) ? list : [list];
  }

  /** summarizeErrors=false: 200 with every element; otherwise a 400 listing the failed ones. */
  function writeResult(plural: string, results: ElementResult[], summarize: boolean) {
    if (summarize && results.some((r) => !r.ok)) {
      return {
        status: 400,
        body: JSON.stringify({
          ErrorNumber: 10,
          Type: "ValidationException",
          Message: "A validation exception occurred",
          Elements: results.filter((r) => !r.ok).map((r) => r.json),
        }),
      };
    }
    return { status: 200, body: JSON.stringify(envelope(plural, results.map((r) => r.json))) };
  }

  const stored = (r: { status: number; body: string }) =>
    new Response(r.body, {
      status: r.status,
      headers: { "content-type": "application/json; charset=utf-8" },
    });

  async function write(
    req: Request,
    org: SimOrg,
    plural: "Invoices" | "Contacts",
    q: Query,
    pathId?: string,
  ): Promise<Response> {
    const key = req.headers.get("idempotency-key");
    const elements = await readElements(req, plural);
    // From here to the store of the answer nothing awaits, so two requests carrying one key can
    // never both do the work: the second one gets the first one's answer.
    const prev = key ? org.idempotency.get(key) : undefined;
    if (prev) return stored(prev);
    if (elements instanceof Response) return elements;
    const mode = req.method === "PUT" ? "put" : "post";
    const summarize = pathId !== undefined || q.get("summarizeErrors")?.toLowerCase() !== "false";
    const results = plural === "Invoices"
      ? org.saveInvoices(elements, { mode, unitdp: q.int("unitdp") === 4 ? 4 : 2, pathId })
      : org.saveContacts(
        pathId ? elements.map((e) => ({ ...(e as object), ContactID: pathId })) : elements,
        mode,
      );
    const result = writeResult(plural, results, summarize);
    if (key) org.idempotency.set(key, result);
    return stored(result);
  }

  async function route(req: Request, url: URL, org: SimOrg): Promise<Response> {
    const segs = url.pathname.split("/").filter(Boolean).slice(2).map(decodeURIComponent);
    const resource = segs[0]?.toLowerCase();
    const id = segs[1];
    const q = new Query(url.searchParams);
    const method = req.method;
    try {
      if (resource === "invoices") {
        if (method === "GET" && id) {
          const inv = org.getInvoice(id, q.int("unitdp"));
          return inv ? json(200, envelope("Invoices", [inv])) : notFound();
        }
        if (method === "GET") {
          const { items, pagination } = org.listInvoices(listQuery(q, req));
          return json(200, envelope("Invoices", items, pagination ? { pagination } : {}));
        }
        if (method === "PUT" || method === "POST") {
          return await write(req, org, "Invoices", q, method === "POST" ? id : undefined);
        }
      }
      if (resource === "contacts") {
        if (method === "GET" && id) {
          const c = org.getContact(id);
          return c ? json(200, envelope("Contacts", [c])) : notFound();
        }
        if (method === "GET") {
          const { items, pagination } = org.listContacts(listQuery(q, req));
          return json(200, envelope("Contacts", items, pagination ? { pagination } : {}));
        }
        if (method === "PUT" || method === "POST") {
          return await write(req, org, "Contacts", q, method === "POST" ? id : undefined);
        }
      }
      if (method === "GET" && resource === "accounts") {
        return json(200, envelope("Accounts", org.accountsJson()));
      }
      if (method === "GET" && resource === "taxrates") {
        return json(200, envelope("TaxRates", org.taxRatesJson()));
      }
      if (method === "GET" && resource === "currencies") {
        return json(200, envelope("Currencies", org.currenciesJson()));
      }
      if (method === "GET" && resource === "organisation") {
        return json(
          200,
          envelope("Organisations", [{
            OrganisationID: org.tenantId,
            Name: org.tenantName,
            BaseCurrency: org.baseCurrency(),
            CountryCode: "AU",
            OrganisationType: "COMPANY",
            Version: "AU",
          }]),
        );
      }
      return notFound();
    } catch (e) {
      if (e instanceof WhereError) {
        return json(400, { ErrorNumber: 16, Type: "QueryParseException", Message: e.message });
      }
      throw e;
    }
  }

  const notFound = () =>
    new Response("The resource you're looking for cannot be found", { status: 404 });

  // ---- webhooks ------------------------------------------------------------------------------------

  let hook: { url: string; key: string; enabled: boolean } | null = null;
  let pendingEvents: Array<Record<string, unknown>> = [];
  let hookTimer: ReturnType<typeof setTimeout> | undefined;
  let sequence = 0;
  const inflight = new Set<Promise<unknown>>();
  const deliveries: XeroWebhookDelivery[] = [];

  async function signature(body: string, key: string): Promise<string> {
    const k = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(key),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(body)));
    return btoa(String.fromCharCode(...mac));
  }

  /** One POST as Xero sends it; the answer's status (0 when unreachable). */
  async function deliver(
    events: Array<Record<string, unknown>>,
    opts: { wrongKey?: boolean; handshake?: boolean } = {},
  ): Promise<number> {
    if (!hook) return 0;
    const first = sequence + 1;
    sequence += events.length;
    const body = JSON.stringify({
      events,
      firstEventSequence: events.length ? first : 0,
      lastEventSequence: events.length ? sequence : 0,
      entropy: crypto.randomUUID().replaceAll("-", "").toUpperCase(),
    });
    const key = opts.wrongKey ? `${hook.key}-wrong` : hook.key;
    let status = 0;
    try {
      const res = await fetch(hook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-xero-signature": await signature(body, key),
        },
        body,
        signal: AbortSignal.timeout(5000),
      });
      const text = await res.text();
      // Xero wants an empty body (and counts anything else as a failed delivery).
      status = text === "" ? res.status : -res.status;
    } catch {
      status = 0;
    }
    deliveries.push({ status, events: events.length, handshake: !!opts.handshake });
    return status;
  }

  function flushNow(): Promise<void> {
    clearTimeout(hookTimer);
    hookTimer = undefined;
    const events = pendingEvents;
    pendingEvents = [];
    if (!events.length || !hook?.enabled) return Promise.resolve();
    const p = deliver(events).then(() => {});
    inflight.add(p);
    p.finally(() => inflight.delete(p));
    return p;
  }

  for (const org of orgs.values()) {
    org.onInvoiceChange = (invoiceId: string, type: "CREATE" | "UPDATE") => {
      if (!hook?.enabled || sim.webhookDown) return;
      pendingEvents.push({
        resourceUrl: `https://api.xero.com/api.xro/2.0/Invoices/${invoiceId}`,
        resourceId: invoiceId,
        eventDateUtc: new Date().toISOString(),
        eventType: type,
        eventCategory: "INVOICE",
        tenantId: org.tenantId,
        tenantType: "ORGANISATION",
      });
      hookTimer ??= setTimeout(() => void flushNow(), opts.webhookBatchMs ?? 50);
    };
  }

  /** The sandbox page's buttons: approve, pay or void a bill as an accountant would. */
  async function pageAction(req: Request, id: string): Promise<Response> {
    const form = new URLSearchParams(await req.text());
    const action = form.get("action");
    const holder = [...orgs.values()].find((o) => o.getInvoice(id));
    const inv = holder?.getInvoice(id);
    if (!holder || !inv) return new Response("No such bill", { status: 404 });
    const allowed: Record<string, boolean> = {
      approve: inv.Status === "DRAFT" || inv.Status === "SUBMITTED",
      pay: inv.Status === "AUTHORISED",
      void: inv.Status === "AUTHORISED" && inv.AmountPaid === 0,
    };
    if (!action || !allowed[action]) {
      return new Response(`A ${inv.Status} bill cannot be changed that way`, { status: 409 });
    }
    holder.setInvoiceStatus(
      String(inv.InvoiceID),
      action === "approve" ? "AUTHORISED" : action === "pay" ? "PAID" : "VOIDED",
    );
    return new Response(null, { status: 303, headers: { location: "/" } });
  }

  // ---- server ----------------------------------------------------------------------------------

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    const ep = endpointOf(req.method, path);
    const action = /^\/sandbox\/invoices\/([^/]+)$/.exec(path);
    if (action && req.method === "POST") {
      return await pageAction(req, decodeURIComponent(action[1]));
    }
    if (ep === null) {
      return path === "/" && req.method === "GET"
        ? new Response(billsPage(orgs), { headers: { "content-type": "text/html; charset=utf-8" } })
        : new Response(null, { status: 404 });
    }
    counts[ep] = (counts[ep] ?? 0) + 1;
    // IIS in front of Xero refuses URLs past ~2 KB with a bare 404 (public issue reports).
    if (path.length + url.search.length > 2048) return notFound();
    const fault = takeFault(ep);
    if (fault?.kind === "delay") await sleep(fault.delayMs ?? 1000);
    if (fault?.kind === "hold") await holding.hold(fault.delayMs ?? 1000);
    const early = fault ? faultResponse(fault) : undefined;
    if (early) {
      if (req.body) await req.body.cancel();
      return early;
    }
    const drop = fault?.kind === "drop";
    let res: Response;
    if (ep === "token") res = await tokenEndpoint(req);
    else if (ep === "revoke") res = await revoke(req);
    else if (ep === "authorize") res = authorize(url);
    else if (ep === "connections") res = connections(req, path);
    else if (/^\/api\.xro\/2\.0\//i.test(path)) return await accounting(req, url, drop);
    else res = notFound();
    if (req.body && !req.bodyUsed) await req.body.cancel();
    return drop ? dropped() : res;
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: opts.port ?? 0, onListen() {} },
    handle,
  );
  const url = `http://127.0.0.1:${server.addr.port}`;

  function org(tenantId?: string): SimOrg {
    const o = orgs.get(tenantId ?? tenants[0].tenantId);
    if (!o) throw new Error(`xero-sim: no tenant ${tenantId}`);
    return o;
  }

  const sim: XeroSim = {
    url,
    clientId,
    clientSecret,
    get refreshToken() {
      return currentRefresh;
    },
    tenantId: tenants[0].tenantId,
    invoices: (tenantId) => org(tenantId).allInvoices(),
    contacts: (tenantId) => org(tenantId).allContacts(),
    setInvoiceStatus(invoiceId, status) {
      const holder = [...orgs.values()].find((o) => o.getInvoice(invoiceId));
      if (!holder) throw new Error(`xero-sim: no invoice ${invoiceId}`);
      holder.setInvoiceStatus(invoiceId, status as InvoiceStatus);
    },
    setContactStatus(contactId, status) {
      const holder = [...orgs.values()].find((o) => o.getContact(contactId));
      if (!holder) throw new Error(`xero-sim: no contact ${contactId}`);
      holder.setContactStatus(contactId, status);
    },
    counts,
    totalCalls: () => Object.values(counts).reduce((a, b) => a + b, 0),
    resetCounts() {
      for (const k of Object.keys(counts)) delete counts[k];
    },
    fault(spec) {
      faults.push({ ...spec, left: spec.times ?? 1 });
    },
    randomFaults(spec) {
      random = spec ? { ...spec, next: seededRandom(spec.seed) } : null;
    },
    clearFaults() {
      faults = [];
      random = null;
    },
    setDayLimitRemaining(n, tenantId) {
      for (const [id, t] of rate) {
        if (!tenantId || id === tenantId) t.dayUsed = Math.max(0, limits.perDay - n);
      }
    },
    expireAccessTokens() {
      for (const k of accessTokens.keys()) accessTokens.set(k, 0);
    },
    async configureWebhook(cfg) {
      await flushNow();
      if (!cfg) {
        hook = null;
        return false;
      }
      hook = { ...cfg, enabled: false };
      // Intent to receive: right and wrong signatures, in no fixed order, must get 200 and 401.
      const expected = [200, 401, 200, 401];
      let ok = true;
      for (const want of expected) {
        const got = await deliver([], { wrongKey: want === 401, handshake: true });
        if (got !== want) ok = false;
      }
      hook.enabled = ok;
      return ok;
    },
    webhookDown: false,
    webhookDeliveries: deliveries,
    async flushWebhooks() {
      await flushNow();
      await Promise.allSettled([...inflight]);
    },
    whenHeld: (ms) => holding.when(ms),
    releaseHeld: () => holding.release(),
    reset() {
      sim.clearFaults();
      for (const k of Object.keys(counts)) delete counts[k];
      seedOrgs();
    },
    async close() {
      holding.release();
      clearTimeout(hookTimer);
      await Promise.allSettled([...inflight]);
      await server.shutdown();
    },
  };
  return Promise.resolve(sim);
}

function connectionId(tenantId: string): string {
  // Stable per tenant, shaped like Xero's connection ids.
  const hex = Array.from(new TextEncoder().encode(tenantId.padEnd(16, "0")).slice(0, 16))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20, 32)
  }`;
}

const esc = (s: unknown) =>
  String(s ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

/** The read-only "Xero" page the demo shows: each organisation's bills. */
function billsPage(orgs: Map<string, SimOrg>): string {
  const sections = [...orgs.values()].map((org) => {
    const bills = org.allInvoices().filter((i) => i.Type === "ACCPAY").reverse();
    const rows = bills.map((b) => {
      const link = b.Url && /^https?:\/\//i.test(b.Url)
        ? `<a href="${esc(b.Url)}" rel="noreferrer">source</a>`
        : "";
      const button = (action: string, label: string) =>
        `<button name="action" value="${action}">${label}</button>`;
      const buttons = [
        b.Status === "DRAFT" || b.Status === "SUBMITTED" ? button("approve", "Approve") : "",
        b.Status === "AUTHORISED" ? button("pay", "Pay in full") : "",
        b.Status === "AUTHORISED" && b.AmountPaid === 0 ? button("void", "Void") : "",
      ].join("");
      const actions = buttons
        ? `<form method="post" action="/sandbox/invoices/${
          encodeURIComponent(b.InvoiceID)
        }">${buttons}</form>`
        : "";
      return `<tr><td>${esc(b.InvoiceNumber)}</td><td>${esc(b.Contact.Name)}</td>` +
        `<td>${esc(b.DateString.slice(0, 10))}</td><td class="s-${esc(b.Status)}">${
          esc(b.Status)
        }</td>` +
        `<td class="num">${esc(b.Total.toFixed(2))} ${
          esc(b.CurrencyCode)
        }</td><td>${link}</td><td>${actions}</td></tr>`;
    }).join("\n");
    return `<section><h2>${esc(org.tenantName)}</h2><p>${bills.length} bill(s)</p>
<table><thead><tr><th>Reference</th><th>Contact</th><th>Date</th><th>Status</th><th>Total</th><th>Link</th><th>Act as the accountant</th></tr></thead>
<tbody>${rows || '<tr><td colspan="7">No bills yet.</td></tr>'}</tbody></table></section>`;
  }).join("\n");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Xero (sandbox) – Bills</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#1e2a38}h1{color:#13b5ea}
table{border-collapse:collapse;width:100%;margin-bottom:2rem}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #dde3ea}
.num{text-align:right;font-variant-numeric:tabular-nums}.s-AUTHORISED{color:#0a7d32}.s-PAID{color:#0a5ad1}.s-VOIDED,.s-DELETED{color:#999;text-decoration:line-through}</style>
</head><body><h1>Xero <small>(sandbox)</small></h1><p>Bills (Accounts payable). Approve, pay or void a bill as an accountant would: with the
webhook set up, its purchase order in Zoho shows the change at once (else at the next sync tick).</p>
${sections}</body></html>`;
}
