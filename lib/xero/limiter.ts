/**
 * Per-organisation call limiter, shared by every XeroClient in the process: at most `concurrent`
 * calls in flight and `perMinute` started per window, a pause when Xero says Retry-After, and the
 * remaining-calls headers remembered so work is refused up front when the day's calls are gone.
 */
import { type HeaderMap, XeroError } from "./errors.ts";

export interface LimiterOptions {
  concurrent: number;
  perMinute: number;
  windowMs: number;
}

/** How long a seen X-DayLimit-Remaining of 0 is trusted without a Retry-After (rolling 24 h). */
const DAY_KNOWLEDGE_MS = 15 * 60 * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class TenantLimiter {
  private inFlight = 0;
  private starts: number[] = [];
  private pausedUntil = 0;
  private waiters: Array<() => void> = [];
  private dayRemaining?: number;
  private dayKnownAt = 0;
  private dayResetAt?: number;
  minRemaining?: number;

  constructor(readonly opts: LimiterOptions) {}

  /** Waits for a slot; the returned function gives it back. */
  async acquire(): Promise<() => void> {
    for (;;) {
      this.assertDayLeft(1);
      const now = Date.now();
      while (this.starts.length && this.starts[0] <= now - this.opts.windowMs) this.starts.shift();
      if (now < this.pausedUntil) {
        await sleep(this.pausedUntil - now);
      } else if (this.starts.length >= this.opts.perMinute) {
        await sleep(Math.max(1, this.starts[0] + this.opts.windowMs - now));
      } else if (this.inFlight >= this.opts.concurrent) {
        await new Promise<void>((r) => this.waiters.push(r));
      } else {
        this.inFlight++;
        this.starts.push(now);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.inFlight--;
          // Xero counts a call when it arrives, somewhere before its answer: count it from the
          // answer instead of from the send, so the window never frees a slot early (a 429).
          const i = this.starts.indexOf(now);
          if (i >= 0) this.starts.splice(i, 1);
          this.starts.push(Date.now());
          for (const wake of this.waiters.splice(0)) wake();
        };
      }
    }
  }

  /** Everyone waits until then (Retry-After, or a concurrency 429). */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }

  /** Reads X-MinLimit-Remaining and X-DayLimit-Remaining from any answer. */
  observe(headers: HeaderMap): void {
    const min = Number(headers["x-minlimit-remaining"]);
    if (headers["x-minlimit-remaining"] !== undefined && Number.isFinite(min)) {
      // At 0 the next call gets a 429 whose Retry-After says exactly how long to wait.
      this.minRemaining = min;
    }
    const day = Number(headers["x-daylimit-remaining"]);
    if (headers["x-daylimit-remaining"] !== undefined && Number.isFinite(day)) {
      this.dayRemaining = day;
      this.dayKnownAt = Date.now();
      if (day > 0) this.dayResetAt = undefined;
    }
  }

  /** A 429 with X-Rate-Limit-Problem: day. */
  markDayExhausted(retryAfterMs?: number): void {
    this.dayRemaining = 0;
    this.dayKnownAt = Date.now();
    this.dayResetAt = retryAfterMs !== undefined ? Date.now() + retryAfterMs : undefined;
  }

  /** Known calls left today, or undefined when unknown or stale. */
  dayLeft(): number | undefined {
    if (this.dayRemaining === undefined) return undefined;
    const now = Date.now();
    if (this.dayResetAt !== undefined) return now < this.dayResetAt ? this.dayRemaining : undefined;
    return now - this.dayKnownAt < DAY_KNOWLEDGE_MS ? this.dayRemaining : undefined;
  }

  /** Refuses work needing `calls` calls when fewer are known to be left today. */
  assertDayLeft(calls: number): void {
    const left = this.dayLeft();
    if (left !== undefined && left < calls) {
      throw new XeroError(
        left <= 0
          ? "paused: Xero daily limit (no API calls left today for this organisation)"
          : `paused: Xero daily limit (${left} API calls left today, this needs ${calls})`,
        { status: 429, kind: "daily_limit", retryable: false, problem: "day" },
      );
    }
  }
}

const registry = new Map<string, TenantLimiter>();

/** The process-wide limiter of one organisation (first caller's options win). */
export function limiterFor(apiUrl: string, tenantId: string, opts: LimiterOptions): TenantLimiter {
  const key = `${apiUrl}|${tenantId}`;
  let limiter = registry.get(key);
  if (!limiter) {
    limiter = new TenantLimiter(opts);
    registry.set(key, limiter);
  }
  return limiter;
}

/** The limiter if one exists (for cheap status reads). */
export function existingLimiter(apiUrl: string, tenantId: string): TenantLimiter | undefined {
  return registry.get(`${apiUrl}|${tenantId}`);
}
