/**
 * Zoho CRM client for Purchase_Orders (API v8): list changed records page by page, fetch one with
 * its line items, write sync results back in batches of 100 without firing workflows, read the
 * field list. Tokens come from ZohoTokens; 429, 5xx, timeouts and dropped connections are retried
 * with back-off inside a bounded budget; every answer is checked with zod; errors are ZohoErrors
 * that name Zoho's code and message and never a token.
 */
import { z } from "zod";
import type { Secrets } from "../secrets.ts";
import { CoqlLineItems, type LineItemsByParent } from "./coql.ts";
import { giveUp, Redactor, ZohoError } from "./errors.ts";
import {
  backoffMs,
  fetchOnce,
  type HttpAnswer,
  type RetryPolicy,
  Semaphore,
  sleep,
} from "./http.ts";
import {
  ErrorBody,
  FieldsResponse,
  GetResponse,
  ListResponse,
  UpdateResponse,
  ZohoId,
  type ZohoListRecord,
} from "./schemas.ts";
import { zohoDateTime, zohoSeconds } from "./time.ts";
import { countZohoCall, zohoCall } from "../telemetry.ts";
import { type ConnectionStatus, ZohoTokens } from "./tokens.ts";

export type { ZohoListRecord } from "./schemas.ts";

/** One Purchase_Orders field as the settings need it (see fieldMetadata). */
export interface ZohoFieldMeta {
  apiName: string;
  custom: boolean;
  readOnly: boolean;
  dataType?: string;
}

const FieldMetaResponse = z.object({
  fields: z.array(z.looseObject({
    api_name: z.string(),
    custom_field: z.boolean().nullish(),
    read_only: z.boolean().nullish(),
    field_read_only: z.boolean().nullish(),
    data_type: z.string().nullish(),
  })),
});
export type { ConnectionStatus } from "./tokens.ts";

export interface ZohoClientOptions {
  kv: Deno.Kv;
  secrets: Secrets;
  /** ZOHO_ACCOUNTS_URL: the data centre's accounts server (the API domain comes from its tokens). */
  accountsUrl: string;
  clientId?: string;
  clientSecret?: string;
  /** ZOHO_REFRESH_TOKEN: used only while KV holds no refresh token. */
  refreshTokenSeed?: string;
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** Per HTTP attempt, body included. */
  timeoutMs?: number;
  /**
   * Requests in flight at once (Zoho allows 5 to 25 per org and app by edition; default 10, the
   * Standard edition's; ZOHO_MAX_CONCURRENCY). COQL is held to 10 whatever this says.
   */
  concurrency?: number;
  /** How long a refused token mint is remembered without Retry-After (Zoho's 10 minutes). */
  mintRefusalMs?: number;
}

export interface ZohoUpdateResult {
  id: string;
  ok: boolean;
  /** Modified_Time Zoho gave the record with this write (remember it: our own write is not a change). */
  modifiedTime?: string;
  code?: string;
  message?: string;
}

export const ZOHO_SCOPES = [
  "ZohoCRM.modules.purchaseorders.ALL",
  "ZohoCRM.settings.fields.READ",
  "ZohoCRM.notifications.ALL",
  // Line items in bulk (lib/zoho/coql.ts); a connection made without it falls back to the GET.
  "ZohoCRM.coql.READ",
];

/** What one request carries besides its method and path (`credits`: what Zoho bills for it). */
interface SendInit {
  query?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
  credits?: number;
}

type Endpoint = "list" | "get" | "update" | "fields" | "deleted" | "coql";

const MODULE_PATH = "/crm/v8/Purchase_Orders";
const PER_PAGE = 200;
const PAGE_LIMIT = 2000; // records `page` can reach; beyond, page_token
const MAX_PAGES = 5000;
/** Times one second that needed offsets is read again before the listing gives up. */
const MAX_REREADS = 3;
/** Records a page may re-read from the one before (the check that offsets did not shift). */
const OVERLAP_MAX = 12;
const BATCH_SIZE = 100;
const MAX_LIST_FIELDS = 50;
const FIELDS_TTL_MS = 10 * 60_000;
const LINE_ITEM_KEYS = ["Purchase_Items", "Purchased_Items", "Product_Details"];

const LABEL: Record<Endpoint, string> = {
  list: "purchase order list",
  get: "purchase order fetch",
  update: "write-back",
  fields: "field list",
  deleted: "deleted records list",
  coql: "line items in bulk",
};
/** Zoho's sub-limit for "complex" APIs (COQL, search) on every edition. */
const COMPLEX_CONCURRENCY = 10;

/** One entry of Zoho's deleted-records list (GET /crm/v8/{module}/deleted). */
const DeletedResponse = z.object({
  data: z.array(
    z.looseObject({ id: z.string().regex(/^\d+$/), deleted_time: z.string().nullish() }),
  ),
  info: z.looseObject({ more_records: z.boolean().optional() }).optional(),
});

export class ZohoClient {
  /** HTTP calls this instance made to the CRM API (retries included); token calls only by endpoint. */
  readonly calls: { total: number; byEndpoint: Record<string, number>; credits: number } = {
    total: 0,
    byEndpoint: {},
    // API credits Zoho charges: 1 a call, COQL by its LIMIT (answers other than 429 and 5xx).
    credits: 0,
  };
  readonly #tokens: ZohoTokens;
  readonly #policy: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #limiter: Semaphore;
  readonly #coql: CoqlLineItems;
  /** Until when every call waits, after Zoho answered 429 (shared: the limit is the org's). */
  #coolUntil = 0;
  readonly #redactor = new Redactor();
  readonly #clientId?: string;
  #fields?: { at: number; names: string[] };

  constructor(opts: ZohoClientOptions) {
    this.#policy = {
      attempts: Math.max(1, opts.retry?.attempts ?? 5),
      baseDelayMs: opts.retry?.baseDelayMs ?? 500,
      maxDelayMs: opts.retry?.maxDelayMs ?? 15_000,
    };
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 10));
    this.#limiter = new Semaphore(concurrency);
    this.#coql = new CoqlLineItems({
      kv: opts.kv,
      concurrency: Math.min(concurrency, COMPLEX_CONCURRENCY),
      send: (query, credits) =>
        this.#send("coql", "POST", "/crm/v8/coql", { body: { select_query: query }, credits }),
      errorFrom: (answer) => this.#errorFrom("coql", answer),
    });
    this.#clientId = opts.clientId;
    this.#tokens = new ZohoTokens({
      kv: opts.kv,
      secrets: opts.secrets,
      accountsUrl: opts.accountsUrl,
      clientId: opts.clientId,
      clientSecret: opts.clientSecret,
      refreshTokenSeed: opts.refreshTokenSeed,
      mintRefusalMs: opts.mintRefusalMs,
      policy: this.#policy,
      timeoutMs: this.#timeoutMs,
      redactor: this.#redactor,
      count: (endpoint) => this.#count(endpoint, false),
    });
  }

  /**
   * Records modified after `since` (strictly, to the second), oldest first, one page (≤ 200) at a
   * time; `Modified_Time` is always requested; line items never come with a list. A record is
   * yielded once per Modified_Time (an edit during the listing yields it again, newer).
   *
   * A deletion or an edit during the listing shifts every later offset, so plain `page=2` would
   * skip a record for good. So each page starts on the last record(s) of the one before (`page`
   * and `per_page` chosen to overlap): a record there other than the one seen means the offsets
   * shifted, and the listing goes on as a keyset from the last second read in full
   * (If-Modified-Since with `sort_by=Modified_Time`; ids already seen are skipped). Past the 2,000
   * records `page` reaches, a new keyset query starts at the last second seen; only a single second
   * holding more than that follows `page_token`, and is read again until a pass finds nothing new.
   */
  async *listChanged(opts: { since?: string; fields: string[] }): AsyncGenerator<ZohoListRecord[]> {
    const names = [...new Set(["Modified_Time", ...opts.fields])].filter((f) => f && f !== "id");
    if (names.length > MAX_LIST_FIELDS) {
      throw new ZohoError({
        code: "TOO_MANY_FIELDS",
        message:
          `Zoho lists at most ${MAX_LIST_FIELDS} fields per call; ${names.length} were asked for.`,
      });
    }
    const base = { fields: names.join(","), sort_by: "Modified_Time", sort_order: "asc" };
    // Records already yielded, as id@second → second. Pruned below each new lower bound: Zoho
    // shows no record under it again, so what a run holds is bounded by a page, not the org.
    const seen = new Map<string, number>();
    // Exclusive lower bound in epoch seconds (If-Modified-Since is strict, to the second).
    let after = opts.since === undefined ? undefined : zohoSeconds(this.#since(opts.since));
    // Within one query: the window asked for, and what the previous window held by position.
    let win: Window = FIRST;
    let held: { offset: number; ids: string[]; lastSecond: number } | undefined;
    let firstSecond: number | undefined; // of this query's first record
    let doubt = false; // a page_token was followed: its stability under deletions is unknown
    let foundNew = false;
    let rereads = 0;
    /** A new query from `second` on (inclusive); reading the same second again is bounded. */
    const restartAt = (second: number) => {
      if (second === firstSecond) {
        if (++rereads > MAX_REREADS) {
          throw new ZohoError({
            code: "LIST_UNSTABLE",
            message:
              `Zoho list: records kept changing while one second of changes was read ${MAX_REREADS} times; try again.`,
            retryable: true,
          });
        }
      } else {
        rereads = 0;
      }
      after = second - 1;
      for (const [key, s] of seen) if (s < second) seen.delete(key);
      [win, held, doubt, foundNew, firstSecond] = [FIRST, undefined, false, false, undefined];
    };
    for (let i = 0; i < MAX_PAGES; i++) {
      const query: Record<string, string> = win.token
        ? { ...base, per_page: String(PER_PAGE), page_token: win.token }
        : { ...base, per_page: String(win.perPage), page: String(win.page) };
      const headers: Record<string, string> = after === undefined
        ? {}
        : { "If-Modified-Since": zohoDateTime(after * 1000) };
      const answer = await this.#send("list", "GET", MODULE_PATH, { query, headers });
      let data: ZohoListRecord[] = [];
      let more = false;
      let nextToken: string | null | undefined;
      if (answer.status !== 204 && answer.status !== 304) {
        if (answer.status !== 200) throw this.#errorFrom("list", answer);
        const parsed = ListResponse.safeParse(answer.json);
        if (!parsed.success) throw this.#unexpected("list", answer);
        data = parsed.data.data as ZohoListRecord[];
        more = parsed.data.info.more_records && data.length > 0;
        nextToken = parsed.data.info.next_page_token;
      }
      const offset = win.token ? undefined : (win.page - 1) * win.perPage;
      if (held && offset !== undefined) {
        // The overlap must hold exactly what the previous page held at those positions.
        const overlap = held.offset + held.ids.length - offset;
        const now = data.slice(0, overlap).map((r) => r.id);
        if (now.join() !== held.ids.slice(held.ids.length - overlap).join()) {
          restartAt(held.lastSecond);
          continue;
        }
      }
      const fresh = data.filter((r) => {
        const second = zohoSeconds(r.Modified_Time);
        const key = `${r.id}@${second}`;
        if (seen.has(key)) return false;
        seen.set(key, second);
        return true;
      });
      if (fresh.length > 0) {
        foundNew = true;
        yield fresh;
      }
      if (data.length === 0) {
        if (doubt && foundNew) restartAt(firstSecond!);
        else return;
        continue;
      }
      if (offset === 0) firstSecond = zohoSeconds(data[0].Modified_Time);
      const lastSecond = zohoSeconds(data[data.length - 1].Modified_Time);
      if (!more) {
        if (doubt && foundNew) restartAt(firstSecond!);
        else return;
        continue;
      }
      const next = offset === undefined ? undefined : overlappingWindow(offset + data.length - 1);
      if (next && offset !== undefined) {
        held = { offset, ids: data.map((r) => r.id), lastSecond };
        win = next;
      } else if (lastSecond > firstSecond!) {
        // As far as `page` reaches, or past a second read by page_token (again, while that found
        // new records): go on as a keyset from the last second seen.
        restartAt(doubt && foundNew ? firstSecond! : lastSecond);
      } else if (nextToken) {
        // More than 2,000 records in one second: only page_token gets past them.
        [held, doubt, win] = [undefined, true, { page: 0, perPage: PER_PAGE, token: nextToken }];
      } else {
        throw new ZohoError({
          code: "PAGINATION_FAILED",
          message: "Zoho said more records follow past 2,000 but gave no next_page_token.",
        });
      }
    }
    throw new ZohoError({
      code: "PAGINATION_FAILED",
      message: `Zoho list did not end after ${MAX_PAGES} pages.`,
    });
  }

  /**
   * Purchase orders deleted since `since` (recycle bin and deleted for good), 200 a page. Zoho
   * keeps deleted records 60 days, so the list is short and needs no page tokens.
   */
  async *listDeleted(
    opts: { since?: string } = {},
  ): AsyncGenerator<Array<{ id: string; deletedTime?: string }>> {
    const headers: Record<string, string> = {};
    if (opts.since !== undefined) headers["If-Modified-Since"] = this.#since(opts.since);
    for (let page = 1; page <= PAGE_LIMIT / PER_PAGE; page++) {
      const query = { type: "all", per_page: String(PER_PAGE), page: String(page) };
      const answer = await this.#send("deleted", "GET", `${MODULE_PATH}/deleted`, {
        query,
        headers,
      });
      if (answer.status === 204 || answer.status === 304) return;
      if (answer.status !== 200) throw this.#errorFrom("deleted", answer);
      const parsed = DeletedResponse.safeParse(answer.json);
      if (!parsed.success) throw this.#unexpected("deleted", answer);
      const rows = parsed.data.data.map((r) => ({
        id: r.id,
        ...(r.deleted_time ? { deletedTime: r.deleted_time } : {}),
      }));
      if (rows.length) yield rows;
      if (!parsed.data.info?.more_records || !rows.length) return;
    }
  }

  /** One purchase order with its line items (Purchase_Items), or null when Zoho has no such record. */
  async getPurchaseOrder(id: string): Promise<Record<string, unknown> | null> {
    this.#checkId(id);
    const answer = await this.#send("get", "GET", `${MODULE_PATH}/${id}`, {});
    // Not 404: Zoho answers a missing record with 204 (or INVALID_DATA); its 404 is
    // INVALID_URL_PATTERN (a wrong API domain or path), a failure to show, not a deleted record.
    if (answer.status === 204 || answer.status === 304) return null;
    if (answer.status === 200) {
      const parsed = GetResponse.safeParse(answer.json);
      if (!parsed.success) throw this.#unexpected("get", answer);
      return parsed.data.data.find((r) => r.id === id) ?? parsed.data.data[0] ?? null;
    }
    // A well-formed id that names no record comes back as INVALID_DATA.
    if (answer.status === 400 && ErrorBody.safeParse(answer.json).data?.code === "INVALID_DATA") {
      return null;
    }
    throw this.#errorFrom("get", answer);
  }

  /**
   * Line items of many purchase orders by COQL (parent id → lines in the GET's shape), or null
   * when Zoho does not offer it (probed once, remembered in KV): read those with getPurchaseOrder.
   * Check the lines against each order's totals before trusting them.
   */
  readLineItems(parentIds: string[]): Promise<LineItemsByParent | null> {
    for (const id of parentIds) this.#checkId(id);
    return this.#coql.read(parentIds);
  }

  /**
   * Writes fields back, 100 records per PUT with `trigger: []` (no workflow fires again). Each
   * record gets its own outcome; a batch that fails as a whole marks each of its records failed.
   * Line items are refused: a write-back must never replace them.
   */
  /**
   * `ifUnmodifiedSince`: Zoho refuses the whole call (412 ALREADY_MODIFIED, reported per record)
   * when one of the records changed after that time, so an edit made meanwhile is not hidden.
   */
  async updateRecords(
    records: Array<{ id: string } & Record<string, unknown>>,
    opts: { ifUnmodifiedSince?: string } = {},
  ): Promise<ZohoUpdateResult[]> {
    for (const r of records) {
      this.#checkId(r.id);
      const bad = LINE_ITEM_KEYS.find((k) => k in r);
      if (bad) {
        throw new ZohoError({
          code: "INVALID_ARGUMENT",
          message: `A Zoho write-back must not send ${bad} (it would replace the line items).`,
        });
      }
    }
    const results: ZohoUpdateResult[] = [];
    for (let i = 0; i < records.length; i += BATCH_SIZE) {
      const batch = records.slice(i, i + BATCH_SIZE);
      try {
        const answer = await this.#send("update", "PUT", MODULE_PATH, {
          body: { data: batch, trigger: [] },
          ...(opts.ifUnmodifiedSince
            ? { headers: { "If-Unmodified-Since": this.#since(opts.ifUnmodifiedSince) } }
            : {}),
        });
        const parsed = UpdateResponse.safeParse(answer.json);
        if (!parsed.success || parsed.data.data.length !== batch.length) {
          throw answer.status >= 400
            ? this.#errorFrom("update", answer)
            : this.#unexpected("update", answer);
        }
        batch.forEach((rec, j) => results.push(this.#outcome(rec.id, parsed.data.data[j])));
      } catch (err) {
        if (!(err instanceof ZohoError)) throw err;
        for (const rec of batch) {
          results.push({ id: rec.id, ok: false, code: err.code, message: err.message });
        }
      }
    }
    return results;
  }

  /** API names of the Purchase_Orders fields (cached for 10 minutes). */
  async fieldNames(): Promise<string[]> {
    if (this.#fields && Date.now() - this.#fields.at < FIELDS_TTL_MS) {
      return [...this.#fields.names];
    }
    const answer = await this.#send("fields", "GET", "/crm/v8/settings/fields", {
      query: { module: "Purchase_Orders" },
    });
    if (answer.status !== 200) throw this.#errorFrom("fields", answer);
    const parsed = FieldsResponse.safeParse(answer.json);
    if (!parsed.success) throw this.#unexpected("fields", answer);
    const names = parsed.data.fields.map((f) => f.api_name);
    this.#fields = { at: Date.now(), names };
    return [...names];
  }

  /**
   * The Purchase_Orders fields with what the settings page checks write-back targets against:
   * whether each is a custom field and whether it is read-only (one call, not cached).
   */
  async fieldMetadata(): Promise<ZohoFieldMeta[]> {
    const answer = await this.#send("fields", "GET", "/crm/v8/settings/fields", {
      query: { module: "Purchase_Orders" },
    });
    if (answer.status !== 200) throw this.#errorFrom("fields", answer);
    const parsed = FieldMetaResponse.safeParse(answer.json);
    if (!parsed.success) throw this.#unexpected("fields", answer);
    return parsed.data.fields.map((f) => ({
      apiName: f.api_name,
      custom: f.custom_field ?? false,
      readOnly: f.read_only === true || f.field_read_only === true,
      ...(f.data_type ? { dataType: f.data_type } : {}),
    }));
  }

  /** Connection state from KV (no API call). */
  status(): Promise<ConnectionStatus> {
    return this.#tokens.status();
  }

  /** Where to send an admin to grant access (offline, so Zoho returns a refresh token). */
  authorizeUrl(state: string, redirectUri: string): string {
    if (!this.#clientId) {
      throw new ZohoError({ code: "NOT_CONFIGURED", message: "ZOHO_CLIENT_ID is not set." });
    }
    const url = new URL(`${this.#tokens.accountsUrl}/oauth/v2/auth`);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: this.#clientId,
      scope: ZOHO_SCOPES.join(","),
      redirect_uri: redirectUri,
      state,
      access_type: "offline",
      prompt: "consent",
    }).toString();
    return url.toString();
  }

  /** Finishes the OAuth flow: swaps the code for tokens and stores the refresh token encrypted. */
  exchangeCode(code: string, redirectUri: string, accountsServer?: string): Promise<void> {
    return this.#tokens.exchangeCode(code, redirectUri, accountsServer);
  }

  disconnect(): Promise<void> {
    return this.#tokens.disconnect();
  }

  // ---- internals ---------------------------------------------------------------------------

  #count(endpoint: string, api: boolean): void {
    this.calls.byEndpoint[endpoint] = (this.calls.byEndpoint[endpoint] ?? 0) + 1;
    if (api) this.calls.total++;
    if (api) countZohoCall(endpoint);
  }

  #checkId(id: unknown): void {
    if (!ZohoId.safeParse(id).success) {
      throw new ZohoError({
        code: "INVALID_ID",
        message: "A Zoho record id is a string of digits.",
      });
    }
  }

  #since(value: string): string {
    try {
      return zohoDateTime(value);
    } catch {
      throw new ZohoError({
        code: "INVALID_ARGUMENT",
        message: "Zoho list: `since` must be a date-time such as 2025-07-25T15:26:49+05:30.",
      });
    }
  }

  /** One API request, as one span (lib/telemetry.ts) holding its attempts. */
  #send(
    endpoint: Endpoint,
    method: "GET" | "PUT" | "POST",
    path: string,
    init: SendInit,
  ): Promise<HttpAnswer> {
    return zohoCall(endpoint, method, path, () => this.#sendAttempts(endpoint, method, path, init));
  }

  /**
   * One API request with its retry budget: a refused access token is re-minted once; 429, 5xx,
   * timeouts, dropped connections and unreadable bodies are retried with back-off. Other answers
   * (2xx, 204, 4xx) are returned for the caller to read.
   */
  async #sendAttempts(
    endpoint: Endpoint,
    method: "GET" | "PUT" | "POST",
    path: string,
    init: SendInit,
  ): Promise<HttpAnswer> {
    let reminted = false;
    for (let attempt = 1;;) {
      const token = await this.#tokens.accessToken();
      const qs = init.query ? `?${new URLSearchParams(init.query)}` : "";
      const headers: Record<string, string> = {
        ...init.headers,
        authorization: `Zoho-oauthtoken ${token.token}`,
      };
      if (init.body !== undefined) headers["content-type"] = "application/json";
      let failure: ZohoError;
      let retryAfterMs: number | undefined;
      try {
        const cool = this.#coolUntil - Date.now();
        if (cool > 0) await sleep(cool);
        const answer = await this.#limiter.run(() => {
          this.#count(endpoint, true);
          return fetchOnce(
            LABEL[endpoint],
            `${token.apiDomain}${path}${qs}`,
            {
              method,
              headers,
              body: init.body === undefined ? undefined : JSON.stringify(init.body),
            },
            this.#timeoutMs,
            this.#redactor,
          );
        });
        if (answer.status !== 429 && answer.status < 500) this.calls.credits += init.credits ?? 1;
        if (answer.status === 401 && isTokenRefused(answer.json)) {
          await this.#tokens.invalidate(token);
          if (!reminted) {
            reminted = true;
            continue;
          }
          throw new ZohoError({
            code: "INVALID_TOKEN",
            message:
              "Zoho refused a freshly minted access token (INVALID_TOKEN); reconnect Zoho if this persists.",
            status: 401,
          });
        }
        if (answer.status === 429 || answer.status >= 500) {
          failure = this.#errorFrom(endpoint, answer);
          retryAfterMs = answer.retryAfterMs;
        } else if (answer.malformed && answer.status < 300) {
          failure = new ZohoError({
            code: "MALFORMED_RESPONSE",
            message: `Zoho ${LABEL[endpoint]}: the answer was not valid JSON`,
            status: answer.status,
            retryable: true,
          });
        } else {
          return answer;
        }
      } catch (err) {
        if (!(err instanceof ZohoError) || !err.retryable) throw err;
        failure = err;
      }
      if (attempt >= this.#policy.attempts) throw giveUp(failure, attempt);
      const wait = backoffMs(this.#policy, attempt, retryAfterMs);
      // Over the org's limit: every call of this client waits, not only this one.
      if (failure.status === 429) {
        this.#coolUntil = Math.max(this.#coolUntil, Date.now() + wait);
      }
      await sleep(wait);
      attempt++;
    }
  }

  #errorFrom(endpoint: Endpoint, answer: HttpAnswer): ZohoError {
    const body = ErrorBody.safeParse(answer.json);
    const code = body.success
      ? body.data.code
      : answer.status === 429
      ? "TOO_MANY_REQUESTS"
      : answer.status >= 500
      ? "INTERNAL_ERROR"
      : `HTTP_${answer.status}`;
    const details = body.success ? body.data.details : undefined;
    const zohoMessage = body.success && body.data.message ? ` (${body.data.message})` : "";
    const hint = code === "OAUTH_SCOPE_MISMATCH"
      ? ": reconnect Zoho and grant the purchase order and field scopes"
      : code === "INVALID_HOST" || code === "INVALID_URL_PATTERN"
      ? ": check ZOHO_ACCOUNTS_URL (data centre)"
      : "";
    return new ZohoError({
      code,
      message: this.#redactor.redact(
        `Zoho ${LABEL[endpoint]} failed: ${code}${zohoMessage}${describe(details)}${hint}`,
      ),
      status: answer.status,
      retryable: answer.status === 429 || answer.status >= 500,
      details,
    });
  }

  #unexpected(endpoint: Endpoint, answer: HttpAnswer): ZohoError {
    return new ZohoError({
      code: "UNEXPECTED_RESPONSE",
      message: `Zoho ${LABEL[endpoint]}: HTTP ${answer.status} with a body of an unexpected shape`,
      status: answer.status,
    });
  }

  #outcome(
    id: string,
    entry: {
      code: string;
      status: string;
      message: string;
      details?: Record<string, unknown> | null;
    },
  ): ZohoUpdateResult {
    const details = entry.details ?? undefined;
    if (entry.status === "success") {
      const modified = details?.Modified_Time;
      return {
        id,
        ok: true,
        modifiedTime: typeof modified === "string" ? modified : undefined,
        code: entry.code,
      };
    }
    return {
      id,
      ok: false,
      code: entry.code,
      message: this.#redactor.redact(
        `Zoho write-back failed: ${entry.code}${entry.message ? ` (${entry.message})` : ""}${
          describe(details)
        }`,
      ),
    };
  }
}

interface Window {
  page: number;
  perPage: number;
  token?: string;
}

const FIRST: Window = { page: 1, perPage: PER_PAGE };

/**
 * A `page`/`per_page` window that starts at most OVERLAP_MAX records before `last` (the last
 * position read) and stays within the 2,000 records `page` reaches; none when no such window is
 * at least 100 records wide.
 */
function overlappingWindow(last: number): Window | undefined {
  for (let perPage = PER_PAGE; perPage >= 100; perPage--) {
    const start = last - (last % perPage);
    const page = start / perPage + 1;
    if (last - start <= OVERLAP_MAX && start > 0 && page * perPage <= PAGE_LIMIT) {
      return { page, perPage };
    }
  }
  return undefined;
}

function isTokenRefused(json: unknown): boolean {
  const code = ErrorBody.safeParse(json).data?.code;
  return code === "INVALID_TOKEN" || code === "AUTHENTICATION_FAILURE";
}

/** The parts of Zoho's `details` that tell a person what to fix. */
function describe(details: Record<string, unknown> | undefined): string {
  if (!details) return "";
  const parts: string[] = [];
  if (typeof details.api_name === "string") parts.push(`field ${details.api_name}`);
  if (typeof details.param === "string") parts.push(`parameter ${details.param}`);
  if (typeof details.expected_data_type === "string") {
    parts.push(`expected ${details.expected_data_type}`);
  }
  if (details.maximum_length !== undefined) parts.push(`at most ${details.maximum_length}`);
  if (details.limit !== undefined) parts.push(`limit ${details.limit}`);
  return parts.length ? ` [${parts.join(", ")}]` : "";
}
