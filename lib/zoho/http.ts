/** One HTTP exchange with a deadline, plus the pieces of a polite retry policy (back-off, cap). */
import { Redactor, ZohoError } from "./errors.ts";

export interface HttpAnswer {
  status: number;
  /** Parsed JSON body; undefined when the body was empty. */
  json: unknown;
  /** True when a body arrived but was not JSON. */
  malformed: boolean;
  retryAfterMs?: number;
}

/**
 * Sends one request and reads the whole body within `timeoutMs`. A connection that fails, drops
 * mid-body or stays silent becomes a retryable ZohoError (NETWORK_ERROR / TIMEOUT).
 */
export async function fetchOnce(
  label: string,
  url: string,
  init: RequestInit,
  timeoutMs: number,
  redactor: Redactor,
): Promise<HttpAnswer> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: abort.signal, redirect: "manual" });
    const text = await res.text();
    let json: unknown = undefined;
    let malformed = false;
    if (text.trim()) {
      try {
        json = JSON.parse(text);
      } catch {
        malformed = true;
      }
    }
    return { status: res.status, json, malformed, retryAfterMs: retryAfter(res.headers) };
  } catch (err) {
    if (abort.signal.aborted) {
      throw new ZohoError({
        code: "TIMEOUT",
        message: `Zoho ${label}: no answer within ${timeoutMs} ms`,
        retryable: true,
      });
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new ZohoError({
      code: "NETWORK_ERROR",
      message: `Zoho ${label}: network error (${redactor.redact(why)})`,
      retryable: true,
    });
  } finally {
    clearTimeout(timer);
  }
}

/** Retry-After as seconds or an HTTP date, in ms (Zoho itself usually sends none). */
function retryAfter(headers: Headers): number | undefined {
  const value = headers.get("retry-after");
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Longest Retry-After we wait inside one call; beyond it the caller gets the error to retry later. */
const MAX_RETRY_AFTER_MS = 60_000;

/** Exponential back-off with jitter (half fixed, half random), or the server's Retry-After. */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfterMs?: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + Math.random() * (exp / 2);
  if (retryAfterMs !== undefined) {
    return Math.min(MAX_RETRY_AFTER_MS, Math.max(retryAfterMs, jittered));
  }
  return jittered;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Caps requests in flight (Zoho allows 5-25 concurrent calls per org and app). */
export class Semaphore {
  #free: number;
  #waiting: Array<() => void> = [];

  constructor(size: number) {
    this.#free = Math.max(1, size);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
