/**
 * Fixed-window counters in KV, shared by every instance: API callers and login attempts.
 * Returns how long to wait when over the limit.
 */
import { keys } from "./keys.ts";

export async function hit(
  kv: Deno.Kv,
  bucket: string,
  { limit, windowMs }: { limit: number; windowMs: number },
  now = Date.now(),
): Promise<{ ok: boolean; retryAfterSec: number; count: number }> {
  const window = Math.floor(now / windowMs);
  const key = keys.rateLimit(bucket, window);
  // Optimistic increment; a few retries settle concurrent hits on the same counter.
  for (let attempt = 0; attempt < 5; attempt++) {
    const cur = await kv.get<number>(key);
    const count = (cur.value ?? 0) + 1;
    const res = await kv.atomic().check(cur).set(key, count, { expireIn: windowMs * 2 }).commit();
    if (res.ok) {
      const retryAfterSec = Math.max(1, Math.ceil(((window + 1) * windowMs - now) / 1000));
      return { ok: count <= limit, retryAfterSec, count };
    }
  }
  return { ok: true, retryAfterSec: 0, count: 0 };
}
