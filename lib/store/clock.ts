/**
 * KV's own clock. A versionstamp orders every write of a KV, whichever instance made it, so
 * "was this entry written before that read began?" is answered without trusting wall clocks
 * (an instance whose clock runs ahead once kept re-queued webhook entries forever).
 */
import { keys } from "./keys.ts";

/** A versionstamp later than every write committed before this call. */
export async function kvStamp(kv: Deno.Kv): Promise<string> {
  const res = await kv.atomic().set(keys.clock(), Date.now()).commit();
  if (!res.ok) throw new Error("KV refused the clock write");
  return res.versionstamp;
}
