/**
 * Fixed-window counters in KV, shared by every instance: API callers and login attempts.
 *
 * A hit is counted before anything else, with an atomic `sum` and no version check, so parallel
 * hits never conflict and never retry; then the counter is read back. The n-th hit committed reads
 * at least n, so at most `limit` hits of a window ever see `ok`, however many arrive at once. When
 * KV cannot count, the hit is refused (fail closed).
 */
import { keys } from "./keys.ts";

export interface Limit {
  limit: number;
  windowMs: number;
}

export interface HitResult {
  ok: boolean;
  retryAfterSec: number;
  count: number;
}

const ONE = new Deno.KvU64(1n);

function retryAfter(window: number, windowMs: number, now: number): number {
  return Math.max(1, Math.ceil(((window + 1) * windowMs - now) / 1000));
}

async function add(kv: Deno.Kv, key: Deno.KvKey): Promise<void> {
  try {
    await kv.atomic().mutate({ type: "sum", key, value: ONE }).commit();
  } catch (err) {
    // A counter written by the previous version (a plain number) cannot be summed: convert it
    // once, then count.
    const cur = await kv.get(key);
    if (typeof cur.value !== "number") throw err;
    await kv.atomic().check(cur).set(key, new Deno.KvU64(BigInt(cur.value))).commit();
    await kv.atomic().mutate({ type: "sum", key, value: ONE }).commit();
  }
}

export async function hit(
  kv: Deno.Kv,
  bucket: string,
  { limit, windowMs }: Limit,
  now = Date.now(),
): Promise<HitResult> {
  const window = Math.floor(now / windowMs);
  const key = keys.rateLimit(bucket, window);
  const retryAfterSec = retryAfter(window, windowMs, now);
  try {
    await add(kv, key);
    const entry = await kv.get<Deno.KvU64>(key);
    if (!(entry.value instanceof Deno.KvU64)) return { ok: false, retryAfterSec, count: limit + 1 };
    const count = Number(entry.value.value);
    // `sum` drops a key's expiry; put it back, unchanged value, unless another hit came in
    // between (then that hit does it). Stale windows thus leave KV on their own.
    await kv.atomic().check(entry).set(key, entry.value, { expireIn: windowMs * 2 }).commit();
    return { ok: count <= limit, retryAfterSec, count };
  } catch {
    return { ok: false, retryAfterSec, count: limit + 1 };
  }
}

/**
 * Gives back one hit of the current window (a successful login is not a failed attempt). Only
 * after a `hit()` of the same window, so the counter is at least 1 and the wrapping sum of
 * 2^64 - 1 subtracts one.
 */
export async function refund(
  kv: Deno.Kv,
  bucket: string,
  { windowMs }: Limit,
  now: number,
): Promise<void> {
  const key = keys.rateLimit(bucket, Math.floor(now / windowMs));
  try {
    const cur = await kv.get<Deno.KvU64>(key);
    if (!(cur.value instanceof Deno.KvU64) || cur.value.value === 0n) return;
    await kv.atomic().mutate({ type: "sum", key, value: new Deno.KvU64(2n ** 64n - 1n) })
      .commit();
  } catch {
    // The attempt stays counted: the safe side.
  }
}
