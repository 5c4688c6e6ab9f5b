/**
 * Leases in KV with an explicit expiry time in the value (KV's expireIn is only a lower bound):
 * one run per module, one writer per purchase order, across every instance sharing the KV.
 */
export interface Lease {
  owner: string;
  until: number;
}

/**
 * How long KV keeps a lease's key: well past its expiry, so a key that vanished was released by
 * someone (renew then knows it was taken), not swept by KV while its holder was merely slow.
 */
const keepFor = (ttlMs: number) => Math.max(ttlMs * 2, 600_000);

/** Takes the lease if free or expired. Returns true when `owner` holds it. */
export async function acquire(
  kv: Deno.Kv,
  key: Deno.KvKey,
  owner: string,
  ttlMs: number,
  now = Date.now(),
): Promise<boolean> {
  const current = await kv.get<Lease>(key);
  if (current.value && current.value.until > now && current.value.owner !== owner) return false;
  const res = await kv.atomic().check(current).set(key, { owner, until: now + ttlMs }, {
    expireIn: keepFor(ttlMs),
  }).commit();
  return res.ok;
}

/** Takes several leases at once; returns the keys' indexes that could not be taken. */
export async function acquireMany(
  kv: Deno.Kv,
  leaseKeys: Deno.KvKey[],
  owner: string,
  ttlMs: number,
): Promise<Set<number>> {
  const busy = new Set<number>();
  await Promise.all(leaseKeys.map(async (key, i) => {
    if (!await acquire(kv, key, owner, ttlMs)) busy.add(i);
  }));
  return busy;
}

/**
 * Extends a lease its owner still holds. One that someone else took, or took and released, is
 * not taken back: whatever the other holder did meanwhile must not be hidden. One that lapsed but
 * still names its owner was taken by nobody, so it is simply extended.
 */
export async function renew(
  kv: Deno.Kv,
  key: Deno.KvKey,
  owner: string,
  ttlMs: number,
): Promise<boolean> {
  // A conflicting write is read again: only another owner's name means the lease is gone.
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await kv.get<Lease>(key);
    if (current.value?.owner !== owner) return false;
    const res = await kv.atomic().check(current).set(key, {
      owner,
      until: Date.now() + ttlMs,
    }, { expireIn: keepFor(ttlMs) }).commit();
    if (res.ok) return true;
  }
  return true; // still ours at the last read; the next renewal tries again
}

export async function release(kv: Deno.Kv, key: Deno.KvKey, owner: string): Promise<void> {
  const current = await kv.get<Lease>(key);
  if (current.value?.owner !== owner) return;
  await kv.atomic().check(current).delete(key).commit();
}

export async function holder(kv: Deno.Kv, key: Deno.KvKey): Promise<Lease | null> {
  const current = (await kv.get<Lease>(key)).value;
  return current && current.until > Date.now() ? current : null;
}
