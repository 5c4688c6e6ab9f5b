/**
 * Zoho CRM simulator: a real HTTP server on 127.0.0.1 that speaks the wire format of the parts of
 * Zoho we use (REFERENCE.md, Zoho section): the accounts server's OAuth endpoints and the CRM v8
 * Purchase_Orders API. It keeps records in memory, counts every call by endpoint, and injects
 * faults (429, 500, expired tokens, slow replies, dropped connections, broken bodies) on demand or
 * at random with a seed. One origin serves both "accounts" and "api" (api_domain = url).
 *
 * It never imports lib/: it is an independent implementation of REFERENCE.md, so it cannot drift
 * into whatever the client happens to do.
 */
import { heldCalls } from "./held.ts";
import { seededRandom } from "./po_generator.ts";
import {
  buildFields,
  buildRelatedFields,
  checkValue,
  DEFAULT_CUSTOM_FIELDS,
  LINE_ITEM_KEYS,
  type ZohoFieldDef,
  type ZohoFieldSpec,
} from "./zoho_fields.ts";
import { runCoql } from "./zoho_coql.ts";

export type { ZohoFieldSpec } from "./zoho_fields.ts";

export type ZohoSimEndpoint =
  | "token"
  | "authorize"
  | "revoke"
  | "list"
  | "get"
  | "update"
  | "fields"
  | "users"
  | "org"
  | "deleted"
  | "coql"
  | "other";

/** "hold": like "delay", but `whenHeld()` says when a call is waiting and `releaseHeld()` ends it. */
export type ZohoFaultKind =
  | "429"
  | "500"
  | "invalid_token"
  | "delay"
  | "hold"
  | "drop"
  | "malformed";

export interface ZohoFaultSpec {
  /** Which endpoint (a ZohoSimEndpoint); omitted = any CRM API endpoint (list, get, update, fields, users, org, other). */
  endpoint?: ZohoSimEndpoint | string;
  kind: ZohoFaultKind;
  /** How many matching calls fail (default 1; Infinity = never clears). */
  times?: number;
  /** For "delay": how long (default 2000 ms). */
  delayMs?: number;
  /** For "429": send a Retry-After header (Zoho itself sends none). */
  retryAfterSec?: number;
}

export interface ZohoRandomFaults {
  rate: number;
  seed: number;
  kinds: ZohoFaultKind[];
  /** Default: the CRM API endpoints (not the OAuth ones). */
  endpoints?: Array<ZohoSimEndpoint | string>;
  delayMs?: number;
}

export interface ZohoSimOptions {
  port?: number;
  clientId?: string;
  clientSecret?: string;
  refreshToken?: string;
  records?: Record<string, unknown>[];
  /** Custom fields of Purchase_Orders (default: Add_to_Xero and the Xero_* write-back fields). */
  fields?: Array<string | ZohoFieldSpec>;
  /** Added to every reply. */
  latencyMs?: number;
  accessTokenTtlSec?: number;
  /** Clock in ms (tests can freeze or speed it); default Date.now. */
  now?: () => number;
  /** Offset Modified_Time is written in, like the org's time zone (default "+00:00"). */
  utcOffset?: string;
  /** Access-token mints allowed per refresh token per 10 minutes (Zoho: 10). */
  mintLimitPer10Min?: number;
  /** A write-back PUT bumps Modified_Time as real Zoho does (default true). */
  putBumpsModifiedTime?: boolean;
  /** Status of an empty list answer (Zoho: 204; 304 also occurs with If-Modified-Since). */
  emptyListStatus?: 204 | 304;
  /**
   * A list with If-Modified-Since T and a record modified in T's very second: "excluded" (strictly
   * after, the default) or "included". Zoho's documents are silent and simulators disagree, so the
   * product is tested under both.
   */
  ifModifiedSinceSameSecond?: "excluded" | "included";
  /**
   * A single-record GET of a well-formed id with no record: 204 with no body (the default) or 400
   * INVALID_DATA "the related id given seems to be invalid". Zoho's documents are silent here too.
   */
  unknownRecordGet?: 204 | 400;
  /**
   * Called after each list page is computed, before it is sent (`served` counts list pages so far):
   * tests change records here, e.g. delete one while a client is between pages.
   */
  onListPage?: (served: number, ids: string[]) => void;
  /**
   * COQL (`POST /crm/v8/coql`, REFERENCE "Reading line items in bulk"). `refuse`: answer every
   * query with this error (an org without COQL, a token without the coql scope). `lineItemModule`:
   * the API name purchase-order line items answer to (default `Purchase_Items`, unverified in Zoho).
   */
  coql?: {
    refuse?: "INVALID_QUERY" | "INVALID_MODULE" | "OAUTH_SCOPE_MISMATCH" | "NO_PERMISSION";
    lineItemModule?: string;
  };
  /**
   * Concurrent calls Zoho allows per org and app (REFERENCE "Limits": 5 to 25 by edition; 10 for
   * complex APIs such as COQL on every edition); a call over either limit is answered 429
   * TOO_MANY_REQUESTS. Default: no org limit, 10 complex.
   */
  concurrency?: { perOrg?: number; complex?: number };
}

/** The four combinations of the two behaviours Zoho's documents leave open. */
export const ZOHO_BOUNDARY_VARIANTS: ReadonlyArray<
  Required<Pick<ZohoSimOptions, "ifModifiedSinceSameSecond" | "unknownRecordGet">>
> = [
  { ifModifiedSinceSameSecond: "excluded", unknownRecordGet: 204 },
  { ifModifiedSinceSameSecond: "excluded", unknownRecordGet: 400 },
  { ifModifiedSinceSameSecond: "included", unknownRecordGet: 204 },
  { ifModifiedSinceSameSecond: "included", unknownRecordGet: 400 },
];

export interface ZohoSim {
  url: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  records: Map<string, Record<string, unknown>>;
  /** Records deleted (`records.delete(id)`), as Zoho's deleted-records list shows them. */
  deletedRecords: Array<{ id: string; display_name: string; deleted_time: string; type: string }>;
  upsert(record: Record<string, unknown>): void;
  edit(id: string, patch: Record<string, unknown>): void;
  counts: Record<string, number>;
  /**
   * API credits spent by endpoint, on answered (2xx) calls: 1 a call, COQL by its LIMIT
   * (1–200 → 1, 201–1,000 → 2, 1,001–2,000 → 3).
   */
  credits: Record<string, number>;
  totalCredits(): number;
  /** Most calls in flight at once seen, and 429s answered for going over a concurrency limit. */
  concurrency: { peak: number; peakComplex: number; refused: number };
  /** Workflow rules, approvals and blueprints a PUT would have fired, per record updated. */
  workflowTriggers: Record<string, number>;
  /** CRM API calls only (list, get, update, fields, users, org, other): what Zoho bills credits for. */
  totalCalls(): number;
  resetCounts(): void;
  fault(spec: ZohoFaultSpec): void;
  randomFaults(spec: ZohoRandomFaults | null): void;
  clearFaults(): void;
  revokeRefreshToken(): void;
  expireAccessTokens(): void;
  /** Resolves true once a call is held by a "hold" fault (at once if one is), false after `ms`. */
  whenHeld(ms: number): Promise<boolean>;
  /** Lets every held call go on. */
  releaseHeld(): void;
  /** Formats a time the way this org's Modified_Time looks. */
  formatTime(ms: number): string;
  close(): Promise<void>;
}

const API_ENDPOINTS: ZohoSimEndpoint[] = [
  "list",
  "get",
  "update",
  "fields",
  "users",
  "org",
  "deleted",
  "coql",
  "other",
];
const MODULE = "Purchase_Orders";
const PAGE_LIMIT = 2000; // records reachable with `page`; beyond, page_token
const PAGE_TOKEN_TTL_MS = 24 * 3600 * 1000;
const ALL_TRIGGERS = ["workflow", "approval", "blueprint"];
const KNOWN_TRIGGERS = new Set([...ALL_TRIGGERS, "pathfinder", "orchestration"]);
const SORTABLE = new Set(["id", "Created_Time", "Modified_Time"]);
const SYSTEM_IGNORED = new Set(["Created_Time", "Modified_Time", "Created_By", "Modified_By"]);
/** `type` values of GET /users (Zoho v8); the org's one user is an active, confirmed admin. */
const ADMIN_USER_TYPES = new Set([
  "CurrentUser",
  "AllUsers",
  "ActiveUsers",
  "AllActiveUsers",
  "ConfirmedUsers",
  "AdminUsers",
  "ActiveConfirmedAdmins",
  "ActiveConfirmedUsers",
  "ActiveAndDeactive",
]);
const USER_TYPES = new Set([
  ...ADMIN_USER_TYPES,
  "DeletedUsers",
  "DeactiveUsers",
  "NotConfirmedUsers",
  "DeveloperUsers",
  "ActiveLiteUser",
  "ChildRoleUsers",
  "ParentRoleUsers",
  "SubordinateRoleUsers",
  "ConfirmedReportingUsers",
]);

type Json = Record<string, unknown>;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json;charset=UTF-8", ...headers },
  });
}

/** Zoho's error body: {"code","details","message","status":"error"}. */
function zohoError(status: number, code: string, message: string, details: Json = {}): Response {
  return json(status, { code, details, message, status: "error" });
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

function parseOffset(offset: string): number {
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(offset);
  if (!m) throw new Error(`utcOffset must look like +05:30, got ${offset}`);
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

function formatIn(ms: number, offsetMinutes: number): string {
  const d = new Date(Math.floor(ms / 1000) * 1000 + offsetMinutes * 60_000);
  const p = (n: number) => String(n).padStart(2, "0");
  const sign = offsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(offsetMinutes);
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${
    p(d.getUTCHours())
  }:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}${sign}${p(Math.floor(abs / 60))}:${
    p(abs % 60)
  }`;
}

/** Seconds since epoch of a Zoho time string (second precision, as Zoho compares). */
function seconds(value: unknown): number {
  const ms = typeof value === "string" ? Date.parse(value) : NaN;
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

/** Zoho ids are long digit strings: order by length, then text (numeric order without parsing). */
function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

interface AccessTokenInfo {
  expiresAt: number;
  refreshToken: string | null;
  expired: boolean;
}

interface AuthCode {
  clientId: string;
  redirectUri: string;
  offline: boolean;
  scope: string;
  expiresAt: number;
}

interface PageCursor {
  fingerprint: string;
  last: { sortValue: number | string; id: string };
  expiresAt: number;
}

interface QueuedFault {
  spec: ZohoFaultSpec;
  remaining: number;
}

/** Starts the simulator on 127.0.0.1 (port 0 = a free port); `close()` it when done. */
export function startZohoSim(opts: ZohoSimOptions = {}): Promise<ZohoSim> {
  const now = opts.now ?? Date.now;
  const offsetMinutes = parseOffset(opts.utcOffset ?? "+00:00");
  const formatTime = (ms: number) => formatIn(ms, offsetMinutes);
  const ttlSec = opts.accessTokenTtlSec ?? 3600;
  const mintLimit = opts.mintLimitPer10Min ?? 10;
  const bumpOnPut = opts.putBumpsModifiedTime ?? true;
  const clientId = opts.clientId ?? `1000.${randomHex(15).toUpperCase()}`;
  const clientSecret = opts.clientSecret ?? randomHex(21);
  const initialRefresh = opts.refreshToken ?? `1000.${randomHex(16)}.${randomHex(16)}`;
  const fields: ZohoFieldDef[] = buildFields(opts.fields ?? DEFAULT_CUSTOM_FIELDS);
  const fieldByName = new Map(fields.map((f) => [f.api_name, f]));
  const relatedFields = buildRelatedFields();
  const sameSecondIncluded = opts.ifModifiedSinceSameSecond === "included";

  let version = 0; // bumps on every record change; keys the sorted-list cache
  // A record deleted goes to the recycle bin, which GET /Purchase_Orders/deleted lists.
  const deletedRecords: ZohoSim["deletedRecords"] = [];
  // Tests may also set or delete records directly: the map itself invalidates the cache.
  class RecordMap extends Map<string, Json> {
    override set(key: string, value: Json): this {
      version++;
      return super.set(key, value);
    }
    override delete(key: string): boolean {
      version++;
      const gone = super.get(key);
      if (gone) {
        deletedRecords.push({
          id: key,
          display_name: String(gone.Subject ?? key),
          deleted_time: formatTime(now()),
          type: "recycle",
        });
      }
      return super.delete(key);
    }
    override clear(): void {
      version++;
      super.clear();
    }
  }
  const records = new RecordMap();
  const refreshTokens = new Map<string, { revoked: boolean; mints: number[] }>();
  refreshTokens.set(initialRefresh, { revoked: false, mints: [] });
  const accessTokens = new Map<string, AccessTokenInfo>();
  const authCodes = new Map<string, AuthCode>();
  const pageCursors = new Map<string, PageCursor>();
  const counts: Record<string, number> = {};
  const credits: Record<string, number> = {};
  const concurrency = { peak: 0, peakComplex: 0, refused: 0 };
  let inFlight = 0;
  let inFlightComplex = 0;
  const perOrgLimit = opts.concurrency?.perOrg ?? Infinity;
  const complexLimit = opts.concurrency?.complex ?? 10;
  const workflowTriggers: Record<string, number> = {};
  let faults: QueuedFault[] = [];
  let random: { spec: ZohoRandomFaults; next: () => number } | null = null;
  let nextId = 5725767000000100001n;
  let sortedCache: { version: number; key: string; rows: Json[] } | null = null;
  let listPages = 0;
  const timers = new Set<{ id?: ReturnType<typeof setTimeout>; done: () => void }>();
  const holding = heldCalls(sleep);
  const user = { name: "Sim Admin", id: "5725767000000011001", email: "admin@example.com" };
  const createdAt = formatTime(now());

  // ---- records ----------------------------------------------------------------------------

  function newId(): string {
    while (records.has(String(nextId))) nextId += 1n;
    const id = String(nextId);
    nextId += 1n;
    return id;
  }

  function upsert(record: Json): void {
    const id = typeof record.id === "string" && record.id ? record.id : newId();
    const existing = records.get(id);
    const stamp = formatTime(now());
    const merged: Json = {
      Owner: user,
      Created_By: user,
      Modified_By: user,
      Created_Time: stamp,
      ...existing,
      ...structuredClone(record),
      id,
    };
    if (record.Modified_Time === undefined) merged.Modified_Time = stamp;
    records.set(id, merged);
  }

  function edit(id: string, patch: Json): void {
    const existing = records.get(id);
    if (!existing) throw new Error(`zoho sim: no record ${id}`);
    records.set(id, {
      ...existing,
      ...structuredClone(patch),
      id,
      Modified_Time: formatTime(now()),
      Modified_By: user,
    });
  }

  for (const r of opts.records ?? []) upsert(r);

  // ---- timing and faults --------------------------------------------------------------------

  /** A sleep that ends early when the simulator closes. */
  function sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const entry: { id?: ReturnType<typeof setTimeout>; done: () => void } = {
        done: () => {
          clearTimeout(entry.id);
          timers.delete(entry);
          resolve();
        },
      };
      entry.id = setTimeout(entry.done, ms);
      timers.add(entry);
    });
  }

  function takeFault(endpoint: ZohoSimEndpoint): ZohoFaultSpec | null {
    const index = faults.findIndex((f) =>
      f.spec.endpoint ? f.spec.endpoint === endpoint : API_ENDPOINTS.includes(endpoint)
    );
    if (index >= 0) {
      const f = faults[index];
      if (--f.remaining <= 0) faults.splice(index, 1);
      return f.spec;
    }
    if (random) {
      const eps: string[] = random.spec.endpoints ?? API_ENDPOINTS;
      if (eps.includes(endpoint) && random.next() < random.spec.rate) {
        const kinds = random.spec.kinds;
        const kind = kinds[Math.floor(random.next() * kinds.length)] ?? "500";
        return { kind, delayMs: random.spec.delayMs };
      }
    }
    return null;
  }

  /** Turns a fault into a reply, or null to go on handling (after a delay). */
  async function applyFault(
    fault: ZohoFaultSpec,
    endpoint: ZohoSimEndpoint,
  ): Promise<Response | null> {
    const isOauth = endpoint === "token" || endpoint === "revoke" || endpoint === "authorize";
    switch (fault.kind) {
      case "429": {
        const headers: Record<string, string> = fault.retryAfterSec !== undefined
          ? { "retry-after": String(fault.retryAfterSec) }
          : {};
        if (isOauth) {
          return json(429, {
            error: "Access Denied",
            error_description: "You have made too many requests continuously.",
            status: "failure",
          }, headers);
        }
        return json(429, {
          code: "TOO_MANY_REQUESTS",
          details: {},
          message: "too many requests",
          status: "error",
        }, headers);
      }
      case "500":
        return zohoError(500, "INTERNAL_ERROR", "Internal Server Error");
      case "invalid_token":
        return zohoError(401, "INVALID_TOKEN", "invalid oauth token");
      case "delay":
        // Like a slow server: the request is still applied, even if the client gave up waiting.
        await sleep(fault.delayMs ?? 2000);
        return null;
      case "hold":
        await holding.hold(fault.delayMs ?? 2000);
        return null;
      case "drop":
        // Headers go out, then the connection dies mid-body: the client sees a network error.
        return new Response(
          new ReadableStream({
            start(controller) {
              controller.error(new Error("connection dropped by simulator"));
            },
          }),
          { status: 200, headers: { "content-type": "application/json" } },
        );
      case "malformed":
        return new Response('{"data":[{"id":"', {
          status: 200,
          headers: { "content-type": "application/json" },
        });
    }
  }

  // ---- OAuth (accounts server) ---------------------------------------------------------------

  async function formParams(req: Request, url: URL): Promise<URLSearchParams> {
    // Zoho accepts the parameters in the query string or as a form body, urlencoded or multipart
    // (Zoho's own SDKs send multipart/form-data).
    const params = new URLSearchParams(url.searchParams);
    if (/^multipart\/form-data\b/i.test(req.headers.get("content-type") ?? "")) {
      let form: FormData;
      try {
        form = await req.formData();
      } catch {
        return params; // an unreadable body adds nothing: the checks below answer for it
      }
      for (const [k, v] of form) if (typeof v === "string") params.set(k, v);
      return params;
    }
    const text = await req.text();
    if (text) { for (const [k, v] of new URLSearchParams(text)) params.set(k, v); }
    return params;
  }

  function issueAccessToken(refreshToken: string | null): string {
    const token = `1000.${randomHex(16)}.${randomHex(16)}`;
    accessTokens.set(token, { expiresAt: now() + ttlSec * 1000, refreshToken, expired: false });
    return token;
  }

  async function handleToken(req: Request, url: URL): Promise<Response> {
    const p = await formParams(req, url);
    // Zoho's accounts server answers most token errors with HTTP 200 and an `error` field.
    if (p.get("client_id") !== clientId || p.get("client_secret") !== clientSecret) {
      return json(200, { error: "invalid_client" });
    }
    const grant = p.get("grant_type");
    if (grant === "refresh_token") {
      const rt = p.get("refresh_token") ?? "";
      const entry = refreshTokens.get(rt);
      if (!entry || entry.revoked) return json(200, { error: "invalid_code" });
      const t = now();
      entry.mints = entry.mints.filter((m) => t - m < 600_000);
      if (entry.mints.length >= mintLimit) {
        return json(400, {
          error_description:
            "You have made too many requests continuously. Please try again after some time.",
          error: "Access Denied",
          status: "failure",
        });
      }
      entry.mints.push(t);
      return json(200, {
        access_token: issueAccessToken(rt),
        scope: "ZohoCRM.modules.purchaseorders.ALL ZohoCRM.settings.fields.READ",
        api_domain: baseUrl,
        token_type: "Bearer",
        expires_in: ttlSec,
      });
    }
    if (grant === "authorization_code") {
      const code = p.get("code") ?? "";
      const info = authCodes.get(code);
      authCodes.delete(code); // single use
      if (!info || info.expiresAt < now() || info.clientId !== clientId) {
        return json(200, { error: "invalid_code" });
      }
      if (info.redirectUri !== p.get("redirect_uri")) {
        return json(200, { error: "invalid_redirect_uri" });
      }
      let refresh: string | null = null;
      if (info.offline) {
        refresh = `1000.${randomHex(16)}.${randomHex(16)}`;
        refreshTokens.set(refresh, { revoked: false, mints: [] });
      }
      return json(200, {
        access_token: issueAccessToken(refresh),
        ...(refresh ? { refresh_token: refresh } : {}),
        scope: info.scope,
        api_domain: baseUrl,
        token_type: "Bearer",
        expires_in: ttlSec,
      });
    }
    return json(200, { error: "unsupported_grant_type" });
  }

  function handleAuthorize(url: URL): Response {
    const q = url.searchParams;
    const redirect = q.get("redirect_uri");
    if (q.get("client_id") !== clientId) return new Response("Invalid Client ID", { status: 400 });
    if (!redirect || !/^https?:\/\//.test(redirect)) {
      return new Response("Invalid Redirect Uri", { status: 400 });
    }
    if (q.get("response_type") !== "code" || !q.get("scope")) {
      return new Response("Invalid request", { status: 400 });
    }
    const code = `1000.${randomHex(16)}.${randomHex(16)}`;
    authCodes.set(code, {
      clientId,
      redirectUri: redirect,
      offline: q.get("access_type") === "offline",
      scope: q.get("scope") ?? "",
      expiresAt: now() + 120_000,
    });
    // Auto-approve, as a signed-in admin clicking "Accept" would.
    const target = new URL(redirect);
    const state = q.get("state");
    if (state !== null) target.searchParams.set("state", state);
    target.searchParams.set("code", code);
    target.searchParams.set("location", "us");
    target.searchParams.set("accounts-server", baseUrl);
    return new Response(null, { status: 302, headers: { location: target.toString() } });
  }

  async function handleRevoke(req: Request, url: URL): Promise<Response> {
    const p = await formParams(req, url);
    const token = p.get("token") ?? "";
    const entry = refreshTokens.get(token);
    if (entry) revokeOne(token, entry);
    return json(200, { status: "success" });
  }

  function revokeOne(token: string, entry: { revoked: boolean }): void {
    entry.revoked = true;
    // Revoking a refresh token also kills the access tokens minted from it.
    for (const info of accessTokens.values()) if (info.refreshToken === token) info.expired = true;
  }

  function checkAuth(req: Request): Response | null {
    const header = req.headers.get("authorization") ?? "";
    const m = /^Zoho-oauthtoken (\S+)$/.exec(header);
    if (!m) return zohoError(401, "AUTHENTICATION_FAILURE", "Authentication failed");
    const info = accessTokens.get(m[1]);
    if (!info || info.expired || info.expiresAt <= now()) {
      return zohoError(401, "INVALID_TOKEN", "invalid oauth token");
    }
    return null;
  }

  // ---- CRM API ----------------------------------------------------------------------------

  function sortValue(rec: Json, sortBy: string): number | string {
    return sortBy === "id" ? String(rec.id) : seconds(rec[sortBy]);
  }

  function comparator(sortBy: string, desc: boolean) {
    return (a: { v: number | string; id: string }, b: { v: number | string; id: string }) => {
      const primary = typeof a.v === "number" && typeof b.v === "number"
        ? a.v - b.v
        : compareIds(String(a.v), String(b.v));
      const c = primary || (sortBy === "id" ? 0 : compareIds(a.id, b.id));
      return desc ? -c : c;
    };
  }

  function sortedRows(sortBy: string, desc: boolean, since: number | null): Json[] {
    const key = `${sortBy}|${desc}|${since}`;
    if (sortedCache && sortedCache.version === version && sortedCache.key === key) {
      return sortedCache.rows;
    }
    const cmp = comparator(sortBy, desc);
    const rows = [...records.values()]
      .filter((r) => {
        if (since === null) return true;
        const t = seconds(r.Modified_Time);
        return t > since || (sameSecondIncluded && t === since);
      })
      .map((r) => ({ r, v: sortValue(r, sortBy), id: String(r.id) }))
      .sort(cmp)
      .map((x) => x.r);
    sortedCache = { version, key, rows };
    return rows;
  }

  function projectForList(rec: Json, names: string[]): Json {
    const out: Json = { id: rec.id };
    for (const n of names) {
      if (n === "id" || LINE_ITEM_KEYS.has(n)) continue; // the list never carries line items
      out[n] = rec[n] === undefined ? null : structuredClone(rec[n]);
    }
    return out;
  }

  function handleList(req: Request, url: URL, emptyStatus: 204 | 304): Response {
    const q = url.searchParams;
    const fieldsParam = q.get("fields");
    if (!fieldsParam) {
      return zohoError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {
        param: "fields",
      });
    }
    const names = [...new Set(fieldsParam.split(",").map((s) => s.trim()).filter(Boolean))];
    if (names.length > 50) {
      return zohoError(400, "LIMIT_EXCEEDED", "fields limit exceeded", {
        param: "fields",
        limit: 50,
      });
    }
    const perPage = q.has("per_page") ? Number(q.get("per_page")) : 200;
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > 200) {
      return zohoError(400, "INVALID_DATA", "invalid data", {
        param: "per_page",
        maximum_length: 200,
      });
    }
    const sortBy = q.get("sort_by") ?? "id";
    if (!SORTABLE.has(sortBy)) {
      return zohoError(400, "INVALID_DATA", "invalid data", { param: "sort_by" });
    }
    const sortOrder = q.get("sort_order") ?? "desc";
    if (sortOrder !== "asc" && sortOrder !== "desc") {
      return zohoError(400, "INVALID_DATA", "invalid data", { param: "sort_order" });
    }
    const ims = req.headers.get("if-modified-since");
    let since: number | null = null;
    if (ims) {
      const ms = Date.parse(ims);
      if (Number.isNaN(ms)) {
        return zohoError(400, "INVALID_DATA", "invalid data", { header: "If-Modified-Since" });
      }
      since = Math.floor(ms / 1000);
    }
    const fingerprint = JSON.stringify([fieldsParam, sortBy, sortOrder, ims ?? ""]);
    const rows = sortedRows(sortBy, sortOrder === "desc", since);

    let start: number;
    let page: number;
    const tokenParam = q.get("page_token");
    if (tokenParam) {
      const cursor = pageCursors.get(tokenParam);
      if (!cursor || cursor.expiresAt < now() || cursor.fingerprint !== fingerprint) {
        return zohoError(400, "INVALID_DATA", "invalid page token", { param: "page_token" });
      }
      // Keyset cursor: the page after the last record handed out, stable under inserts.
      const cmp = comparator(sortBy, sortOrder === "desc");
      const after = { v: cursor.last.sortValue, id: cursor.last.id };
      start = rows.findIndex((r) => cmp({ v: sortValue(r, sortBy), id: String(r.id) }, after) > 0);
      if (start < 0) start = rows.length;
      page = Math.floor(start / perPage) + 1;
    } else {
      page = q.has("page") ? Number(q.get("page")) : 1;
      if (!Number.isInteger(page) || page < 1) {
        return zohoError(400, "INVALID_DATA", "invalid data", { param: "page" });
      }
      if (page * perPage > PAGE_LIMIT) {
        return zohoError(
          400,
          "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
          "you cannot fetch records beyond 2000 using the page parameter, use page_token instead",
          { limit: PAGE_LIMIT },
        );
      }
      start = (page - 1) * perPage;
    }
    const slice = rows.slice(start, start + perPage);
    listPages++;
    opts.onListPage?.(listPages, slice.map((r) => String(r.id)));
    if (slice.length === 0) return new Response(null, { status: emptyStatus });
    const more = start + slice.length < rows.length;
    let nextToken: string | null = null;
    if (more) {
      const last = slice[slice.length - 1];
      nextToken = randomHex(24);
      pageCursors.set(nextToken, {
        fingerprint,
        last: { sortValue: sortValue(last, sortBy), id: String(last.id) },
        expiresAt: now() + PAGE_TOKEN_TTL_MS,
      });
    }
    return json(200, {
      data: slice.map((r) => projectForList(r, names)),
      info: {
        per_page: perPage,
        next_page_token: nextToken,
        count: slice.length,
        sort_by: sortBy,
        page,
        previous_page_token: null,
        page_token_expiry: nextToken ? formatTime(now() + PAGE_TOKEN_TTL_MS) : null,
        sort_order: sortOrder,
        more_records: more,
      },
    });
  }

  /** GET /Purchase_Orders/deleted: `type`, `page`, `per_page` (≤ 200), `If-Modified-Since`. */
  function handleDeleted(req: Request, url: URL): Response {
    const q = url.searchParams;
    const type = q.get("type") ?? "all";
    if (!["all", "recycle", "permanent"].includes(type)) {
      return zohoError(400, "INVALID_DATA", "invalid data", { param: "type" });
    }
    const perPage = q.has("per_page") ? Number(q.get("per_page")) : 200;
    const page = q.has("page") ? Number(q.get("page")) : 1;
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > 200) {
      return zohoError(400, "INVALID_DATA", "invalid data", { param: "per_page" });
    }
    if (!Number.isInteger(page) || page < 1) {
      return zohoError(400, "INVALID_DATA", "invalid data", { param: "page" });
    }
    const ims = req.headers.get("if-modified-since");
    const since = ims ? Math.floor(Date.parse(ims) / 1000) : null;
    if (since !== null && Number.isNaN(since)) {
      return zohoError(400, "INVALID_DATA", "invalid data", { header: "If-Modified-Since" });
    }
    const rows = deletedRecords.filter((d) =>
      (type === "all" || d.type === type) && (since === null || seconds(d.deleted_time) > since)
    );
    const slice = rows.slice((page - 1) * perPage, page * perPage);
    if (!slice.length) return new Response(null, { status: 204 });
    return json(200, {
      data: slice.map((d) => ({
        deleted_by: { name: user.name, id: user.id },
        id: d.id,
        display_name: d.display_name,
        type: d.type,
        created_by: { name: user.name, id: user.id },
        deleted_time: d.deleted_time,
      })),
      info: {
        per_page: perPage,
        count: slice.length,
        page,
        more_records: page * perPage < rows.length,
      },
    });
  }

  function handleGet(id: string): Response {
    if (!/^\d+$/.test(id)) {
      return zohoError(400, "INVALID_DATA", "the id given seems to be invalid", {
        resource_path_index: 2,
      });
    }
    const rec = records.get(id);
    if (!rec) {
      if (opts.unknownRecordGet === 400) {
        return zohoError(400, "INVALID_DATA", "the related id given seems to be invalid", {
          resource_path_index: 1,
        });
      }
      return new Response(null, { status: 204 });
    }
    return json(200, { data: [structuredClone(rec)] });
  }

  function updateOne(input: unknown, triggers: string[]): Json {
    const fail = (code: string, message: string, details: Json) => ({
      code,
      details,
      message,
      status: "error",
    });
    if (!input || typeof input !== "object" || Array.isArray(input)) {
      return fail("INVALID_DATA", "invalid data", {});
    }
    const data = input as Json;
    if (typeof data.id !== "string" || !data.id) {
      return fail("MANDATORY_NOT_FOUND", "required field not found", { api_name: "id" });
    }
    const rec = records.get(data.id);
    if (!rec) {
      return fail("INVALID_DATA", "the id given seems to be invalid", {
        api_name: "id",
        id: data.id,
      });
    }
    const patch: Json = {};
    for (const [key, value] of Object.entries(data)) {
      if (key === "id" || SYSTEM_IGNORED.has(key)) continue;
      if (LINE_ITEM_KEYS.has(key)) {
        return fail("INVALID_DATA", "line items cannot be sent in a write-back", {
          api_name: key,
          id: data.id,
        });
      }
      const field = fieldByName.get(key);
      if (!field) return fail("INVALID_DATA", "invalid data", { api_name: key, id: data.id });
      if (field.read_only) {
        return fail("INVALID_DATA", "the field is read only", { api_name: key, id: data.id });
      }
      const problem = checkValue(field, value);
      if (problem) return fail(problem.code, problem.message, { ...problem.details, id: data.id });
      // Zoho keeps the instant and answers it in the org's own offset, whatever offset came in.
      patch[key] = field.data_type === "datetime" && typeof value === "string"
        ? formatTime(Date.parse(value))
        : structuredClone(value);
    }
    const next: Json = { ...rec, ...patch, Modified_By: user };
    if (bumpOnPut) next.Modified_Time = formatTime(now());
    records.set(data.id, next);
    for (const t of triggers) workflowTriggers[t] = (workflowTriggers[t] ?? 0) + 1;
    return {
      code: "SUCCESS",
      details: {
        Modified_Time: next.Modified_Time,
        Modified_By: { name: user.name, id: user.id },
        Created_Time: next.Created_Time,
        id: data.id,
        Created_By: { name: user.name, id: user.id },
      },
      message: "record updated",
      status: "success",
    };
  }

  async function handleUpdate(req: Request): Promise<Response> {
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      return zohoError(400, "INVALID_DATA", "body is not valid JSON", {});
    }
    const b = (body && typeof body === "object" ? body : {}) as Json;
    if (!Array.isArray(b.data) || b.data.length === 0) {
      return zohoError(400, "MANDATORY_NOT_FOUND", "required field not found", {
        api_name: "data",
      });
    }
    if (b.data.length > 100) {
      return zohoError(400, "LIMIT_EXCEEDED", "the number of records exceeds the limit", {
        limit: 100,
      });
    }
    // If-Unmodified-Since: refuse the whole request when a record changed after that time.
    const ius = req.headers.get("if-unmodified-since");
    if (ius) {
      const limit = Math.floor(Date.parse(ius) / 1000);
      const changed = b.data.some((d) => {
        const rec = records.get(String((d as Json | null)?.id));
        return rec !== undefined && seconds(rec.Modified_Time) > limit;
      });
      if (Number.isNaN(limit) || changed) {
        return zohoError(412, "ALREADY_MODIFIED", "the record has been modified since", {});
      }
    }
    let triggers = ALL_TRIGGERS; // omit `trigger` and workflows fire again
    if (b.trigger !== undefined) {
      if (!Array.isArray(b.trigger) || b.trigger.some((t) => !KNOWN_TRIGGERS.has(String(t)))) {
        return zohoError(400, "INVALID_DATA", "invalid data", { api_name: "trigger" });
      }
      triggers = b.trigger.map(String);
    }
    const results = b.data.map((d) => updateOne(d, triggers));
    const ok = results.filter((r) => r.status === "success").length;
    // Check each entry, not the HTTP status: all ok 200, mixed 207, none 400.
    const status = ok === results.length ? 200 : ok === 0 ? 400 : 207;
    return json(status, { data: results });
  }

  function handleFields(url: URL): Response {
    const module = url.searchParams.get("module");
    if (!module) {
      return zohoError(400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {
        param: "module",
      });
    }
    if (module === MODULE) return json(200, { fields: structuredClone(fields) });
    // The modules Purchase_Orders' lookups and line-item subform point at (Zoho's SDK reads them).
    if (Object.hasOwn(relatedFields, module)) {
      return json(200, {
        fields: structuredClone(relatedFields[module as keyof typeof relatedFields]),
      });
    }
    return zohoError(400, "INVALID_MODULE", "the module name given seems to be invalid", {
      param: "module",
    });
  }

  /** `GET /crm/v8/users`: the org has one user, the admin every token belongs to. */
  function handleUsers(url: URL): Response {
    const type = url.searchParams.get("type") ?? "AllUsers";
    if (!USER_TYPES.has(type)) {
      return zohoError(400, "INVALID_DATA", "invalid data", { param: "type" });
    }
    if (!ADMIN_USER_TYPES.has(type)) return new Response(null, { status: 204 });
    const [first, ...rest] = user.name.split(" ");
    return json(200, {
      users: [{
        id: user.id,
        first_name: first,
        last_name: rest.join(" "),
        full_name: user.name,
        email: user.email,
        role: { name: "CEO", id: "5725767000000011003" },
        profile: { name: "Administrator", id: "5725767000000011005" },
        status: "active",
        confirm: true,
        zuid: "70001234",
        locale: "en_US",
        country_locale: "en_US",
        time_format: "HH:mm",
        date_format: "MM/dd/yyyy",
        decimal_separator: "Period",
        type__s: "Regular User",
        created_time: createdAt,
        Modified_Time: createdAt,
        created_by: { name: user.name, id: user.id },
        Modified_By: { name: user.name, id: user.id },
      }],
      info: { per_page: 200, count: 1, page: 1, more_records: false },
    });
  }

  /** `GET /crm/v8/org`: Zoho's SDK reads the org's zgid after every mint (with the user's email). */
  function handleOrg(): Response {
    return json(200, {
      org: [{
        id: "5725767000000010001",
        zgid: "70001000",
        company_name: "Simulated Traders Ltd",
        domain_name: "org70001000",
        primary_email: user.email,
        primary_zuid: "70001234",
        country_code: "NZ",
        time_zone: "Pacific/Auckland",
        iso_code: "USD",
        currency: "US Dollar - USD",
        currency_symbol: "$",
        currency_locale: "en_US",
        mc_status: true,
        type: "production",
      }],
    });
  }

  /** `POST /crm/v8/coql` over the line items (sandbox/zoho_coql.ts). */
  async function handleCoql(req: Request): Promise<Response> {
    const refuse = opts.coql?.refuse;
    if (refuse === "OAUTH_SCOPE_MISMATCH") {
      return zohoError(401, refuse, "invalid oauth scope to access this URL", {});
    }
    if (refuse === "NO_PERMISSION") {
      return zohoError(403, refuse, "permission denied", {});
    }
    if (refuse) return zohoError(400, refuse, "invalid query formed", {});
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      return zohoError(400, "INVALID_DATA", "body is not valid JSON", {});
    }
    const answer = runCoql(body, records, opts.coql?.lineItemModule ?? "Purchase_Items");
    if (answer.status === 400) return json(400, answer.body);
    credits.coql = (credits.coql ?? 0) + answer.credits;
    if (answer.status === 204) return new Response(null, { status: 204 });
    return json(200, answer.body);
  }

  // ---- routing ----------------------------------------------------------------------------

  function classify(method: string, path: string): ZohoSimEndpoint {
    if (path === "/oauth/v2/token" && method === "POST") return "token";
    if (path === "/oauth/v2/token/revoke" && method === "POST") return "revoke";
    if (path === "/oauth/v2/auth" && method === "GET") return "authorize";
    if (path === `/crm/v8/${MODULE}`) {
      if (method === "GET") return "list";
      if (method === "PUT") return "update";
    }
    if (path === `/crm/v8/${MODULE}/deleted` && method === "GET") return "deleted";
    if (path.startsWith(`/crm/v8/${MODULE}/`) && method === "GET") return "get";
    if (path === "/crm/v8/settings/fields" && method === "GET") return "fields";
    if (path === "/crm/v8/users" && method === "GET") return "users";
    if (path === "/crm/v8/org" && method === "GET") return "org";
    if (path === "/crm/v8/coql" && method === "POST") return "coql";
    return "other";
  }

  async function route(req: Request, url: URL, endpoint: ZohoSimEndpoint): Promise<Response> {
    switch (endpoint) {
      case "token":
        return await handleToken(req, url);
      case "revoke":
        return await handleRevoke(req, url);
      case "authorize":
        return handleAuthorize(url);
    }
    const denied = checkAuth(req);
    if (denied) return denied;
    switch (endpoint) {
      case "list":
        return handleList(req, url, opts.emptyListStatus ?? 204);
      case "get":
        return handleGet(decodeURIComponent(url.pathname.slice(`/crm/v8/${MODULE}/`.length)));
      case "update":
        return await handleUpdate(req);
      case "fields":
        return handleFields(url);
      case "users":
        return handleUsers(url);
      case "org":
        return handleOrg();
      case "deleted":
        return handleDeleted(req, url);
      case "coql":
        return await handleCoql(req);
    }
    const m = /^\/crm\/v\d+\/([A-Za-z_]+)/.exec(url.pathname);
    if (m && !["settings", "users", "org", MODULE].includes(m[1])) {
      return zohoError(400, "INVALID_MODULE", "the module name given seems to be invalid", {
        resource_path_index: 0,
      });
    }
    return zohoError(
      404,
      "INVALID_URL_PATTERN",
      "Please check if the URL trying to access is a correct one",
    );
  }

  async function handler(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const endpoint = classify(req.method, url.pathname);
    counts[endpoint] = (counts[endpoint] ?? 0) + 1;
    const api = API_ENDPOINTS.includes(endpoint);
    const complex = endpoint === "coql";
    if (api && (inFlight >= perOrgLimit || (complex && inFlightComplex >= complexLimit))) {
      concurrency.refused++;
      return json(429, {
        code: "TOO_MANY_REQUESTS",
        details: {},
        message: "concurrency limit exceeded",
        status: "error",
      });
    }
    if (api) {
      inFlight++;
      concurrency.peak = Math.max(concurrency.peak, inFlight);
    }
    if (complex) {
      inFlightComplex++;
      concurrency.peakComplex = Math.max(concurrency.peakComplex, inFlightComplex);
    }
    try {
      if (opts.latencyMs) await sleep(opts.latencyMs);
      const fault = takeFault(endpoint);
      if (fault) {
        const reply = await applyFault(fault, endpoint);
        if (reply) return reply;
      }
      const res = await route(req, url, endpoint);
      // COQL charges by its LIMIT (counted in handleCoql); every other answered API call 1.
      if (api && !complex && res.status < 300) credits[endpoint] = (credits[endpoint] ?? 0) + 1;
      return res;
    } catch {
      return zohoError(500, "INTERNAL_ERROR", "Internal Server Error");
    } finally {
      if (api) inFlight--;
      if (complex) inFlightComplex--;
    }
  }

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: opts.port ?? 0,
    onListen() {},
    // The "drop" fault errors a body stream on purpose; keep the console quiet.
    onError: () => new Response(null, { status: 500 }),
  }, handler);
  const baseUrl = `http://127.0.0.1:${server.addr.port}`;

  return Promise.resolve({
    url: baseUrl,
    clientId,
    clientSecret,
    refreshToken: initialRefresh,
    records,
    deletedRecords,
    upsert,
    edit,
    counts,
    credits,
    totalCredits: () => Object.values(credits).reduce((a, b) => a + b, 0),
    concurrency,
    workflowTriggers,
    totalCalls: () => API_ENDPOINTS.reduce((sum, e) => sum + (counts[e] ?? 0), 0),
    resetCounts() {
      for (const k of Object.keys(counts)) delete counts[k];
      for (const k of Object.keys(credits)) delete credits[k];
      Object.assign(concurrency, { peak: 0, peakComplex: 0, refused: 0 });
      for (const k of Object.keys(workflowTriggers)) delete workflowTriggers[k];
    },
    fault(spec) {
      faults.push({ spec, remaining: spec.times ?? 1 });
    },
    randomFaults(spec) {
      random = spec ? { spec, next: seededRandom(spec.seed) } : null;
    },
    clearFaults() {
      faults = [];
      random = null;
    },
    revokeRefreshToken() {
      for (const [token, entry] of refreshTokens) revokeOne(token, entry);
    },
    expireAccessTokens() {
      for (const info of accessTokens.values()) info.expired = true;
    },
    whenHeld: (ms) => holding.when(ms),
    releaseHeld: () => holding.release(),
    formatTime,
    async close() {
      holding.release();
      for (const t of [...timers]) t.done();
      await server.shutdown();
    },
  });
}
