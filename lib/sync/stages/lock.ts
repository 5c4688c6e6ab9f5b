/**
 * Stage 1, lock: one writer per purchase order across every sync and instance. A lock is renewed
 * while its holder lives, so a slow Xero call (timeouts × retries, 429 waits) can never outlast
 * it and let a second sync create the same bill; it lapses only when its holder died.
 */
import { keys } from "../../store/keys.ts";
import { acquireMany, release, renew } from "../../store/locks.ts";
import { sleep } from "../limit.ts";

export const LOCK_TTL_MS = 120_000;

export interface HeldLocks {
  /** Records this sync holds. */
  readonly held: Set<string>;
  /** Records whose lock could not be renewed (the holder stalled past the TTL): do not create. */
  readonly lost: Set<string>;
  release(): Promise<void>;
}

export async function lockRecords(
  kv: Deno.Kv,
  ids: string[],
  owner: string,
  { waitMs, ttlMs = LOCK_TTL_MS }: { waitMs: number; ttlMs?: number },
): Promise<HeldLocks> {
  const held = new Set<string>();
  const lost = new Set<string>();
  let renewing: Promise<unknown> = Promise.resolve();
  // Renewing starts at once: locks taken early are kept while the wait for the others goes on.
  let inFlight = false;
  const timer = setInterval(() => {
    // One renewal at a time: a slow one overlapping the next must not race itself.
    if (inFlight) return;
    inFlight = true;
    renewing = Promise.all([...held].map(async (id) => {
      if (lost.has(id)) return;
      // A KV that cannot answer is not proof of loss; the next renewal asks again.
      const ok = await renew(kv, keys.recordLock(id), owner, ttlMs).catch(() => true);
      if (!ok) lost.add(id);
    })).finally(() => inFlight = false);
  }, Math.max(10, Math.floor(ttlMs / 3)));
  let want = ids;
  const deadline = Date.now() + waitMs;
  try {
    while (want.length) {
      const busy = await acquireMany(kv, want.map((id) => keys.recordLock(id)), owner, ttlMs);
      want.forEach((id, i) => busy.has(i) || held.add(id));
      want = want.filter((_, i) => busy.has(i));
      if (!want.length || Date.now() >= deadline) break;
      await sleep(100 + Math.random() * 150);
    }
  } catch (err) {
    clearInterval(timer);
    await Promise.all([...held].map((id) => release(kv, keys.recordLock(id), owner)));
    throw err;
  }
  return {
    held,
    lost,
    async release() {
      clearInterval(timer);
      await renewing.catch(() => {});
      await Promise.all([...held].map((id) => release(kv, keys.recordLock(id), owner)));
    },
  };
}
