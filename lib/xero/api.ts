/**
 * Calls to Xero's accounting API through xero-node's AccountingApi, each one passing the
 * organisation's limiter and retried on 429 (after Retry-After), 5xx and dropped connections.
 * A 401 gets one fresh token. xero-node is imported on first use: loading it costs ~0.3 s.
 */
import type { AccountingApi } from "xero-node";
import { fromRejection, headerMap, parseRejection, XeroError } from "./errors.ts";
import { limiterFor, type LimiterOptions, type TenantLimiter } from "./limiter.ts";
import type { XeroTokens } from "./tokens.ts";
import { countXeroCall, xeroCall } from "../telemetry.ts";

let xeroNode: Promise<typeof import("xero-node")> | undefined;
const loadXeroNode = () => (xeroNode ??= import("xero-node"));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ApiOptions {
  apiUrl: string;
  tokens: XeroTokens;
  limits: LimiterOptions;
  attempts: number;
  maxWaitMs: number;
  timeoutMs: number;
  count: (endpoint: string) => void;
  /** Bytes of each answer Xero sent (data egress, which Xero bills past a monthly allowance). */
  egress?: (bytes: number) => void;
}

type Answer<T> = Promise<{ response: { headers?: unknown; data?: unknown }; body: T }>;

export class XeroApi {
  private api?: AccountingApi;

  constructor(private readonly opts: ApiOptions) {}

  limiter(tenantId: string): TenantLimiter {
    return limiterFor(this.opts.apiUrl, tenantId, this.opts.limits);
  }

  private async accounting(): Promise<AccountingApi> {
    if (!this.api) {
      const { AccountingApi } = await loadXeroNode();
      this.api = new AccountingApi(`${this.opts.apiUrl}/api.xro/2.0`);
    }
    return this.api;
  }

  /** One logical call; `endpoint` names it in call counts ("invoices.put", "contacts.get", ...). */
  call<T>(
    endpoint: string,
    tenantId: string,
    run: (api: AccountingApi) => Answer<T>,
  ): Promise<T> {
    // One span per logical call (its attempts, token refresh and waits for the limiter inside).
    return xeroCall(
      endpoint,
      () => this.attempts(endpoint, tenantId, run),
      () => this.limiter(tenantId).dayLeft(),
    );
  }

  private async attempts<T>(
    endpoint: string,
    tenantId: string,
    run: (api: AccountingApi) => Answer<T>,
  ): Promise<T> {
    const api = await this.accounting();
    const limiter = this.limiter(tenantId);
    let rejected: string | undefined;
    let authRetried = false;
    let failures = 0;
    let rateLimited = 0;
    for (;;) {
      const token = await this.opts.tokens.accessToken(rejected);
      const release = await limiter.acquire();
      let err: XeroError;
      try {
        this.opts.count(endpoint);
        countXeroCall(endpoint);
        api.accessToken = token;
        const answer = await withTimeout(run(api), this.opts.timeoutMs);
        const headers = headerMap(answer.response?.headers);
        this.opts.egress?.(answerBytes(headers, answer.response?.data));
        limiter.observe(headers);
        // A 2xx whose body is not JSON (a proxy's HTML page) leaves axios with the raw text and
        // xero-node with an empty model, which read as "no bills found": reconcile would then
        // create a second bill, and an update was skipped for good (found by tests/reliability).
        if (typeof answer.response?.data === "string") {
          throw new XeroError(`Xero ${endpoint}: the answer was not valid JSON`, {
            status: 502,
            kind: "server",
          });
        }
        return answer.body;
      } catch (raw) {
        const parsed = parseRejection(raw);
        if (parsed.status) this.opts.egress?.(answerBytes(parsed.headers, parsed.body));
        limiter.observe(parsed.headers);
        err = fromRejection(raw, endpoint, [token, ...this.opts.tokens.knownSecrets()]);
      } finally {
        release();
      }
      if (err.status === 401 && !authRetried) {
        authRetried = true; // one fresh token per call, then give up
        rejected = token;
        continue;
      }
      if (err.kind === "daily_limit") {
        limiter.markDayExhausted(err.retryAfterMs);
        throw err;
      }
      if (!err.retryable) throw err;
      let wait: number;
      if (err.kind === "rate_limit") {
        if (++rateLimited > 10) throw err;
        wait = err.retryAfterMs ?? (err.problem === "concurrent" ? 250 * rateLimited : 1000);
        if (wait > this.opts.maxWaitMs) throw err;
        limiter.pause(wait);
      } else {
        if (++failures >= this.opts.attempts) throw err;
        wait = Math.min(this.opts.maxWaitMs, 200 * 2 ** (failures - 1)) *
          (0.75 + Math.random() * 0.5);
      }
      await sleep(wait);
    }
  }
}

/** Size of an answer: its Content-Length, else its body as JSON (what came over the wire, about). */
function answerBytes(headers: Record<string, string | undefined>, data: unknown): number {
  const length = Number(headers["content-length"]);
  if (headers["content-length"] && Number.isFinite(length) && length >= 0) return length;
  if (data === undefined || data === null) return 0;
  const text = typeof data === "string" ? data : JSON.stringify(data) ?? "";
  return new TextEncoder().encode(text).length;
}

/** Xero-node takes no abort signal: stop waiting, and keep the late answer from going unhandled. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new XeroError(`Xero did not answer within ${Math.round(ms / 1000)} s`, {
            status: 0,
            kind: "network",
          }),
        ),
      ms,
    );
  });
  p.catch(() => {});
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
