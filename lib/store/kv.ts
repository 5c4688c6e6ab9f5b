/** Opens Deno KV from DENO_KV_PATH: a file path, ":memory:", a KV Connect URL, or Deno's default. */
export function openKv(path?: string): Promise<Deno.Kv> {
  return path ? Deno.openKv(path) : Deno.openKv();
}

/** Reads every entry under a prefix (small sets only: retry set, queue, mappings in tests). */
export async function listAll<T>(
  kv: Deno.Kv,
  prefix: Deno.KvKey,
  options: Deno.KvListOptions = {},
): Promise<Deno.KvEntry<T>[]> {
  const out: Deno.KvEntry<T>[] = [];
  for await (const entry of kv.list<T>({ prefix }, options)) out.push(entry);
  return out;
}

/** getMany in chunks of 10, the KV limit. */
export async function getManyChunked<T>(
  kv: Deno.Kv,
  keys: Deno.KvKey[],
): Promise<Deno.KvEntryMaybe<T>[]> {
  const out: Deno.KvEntryMaybe<T>[] = [];
  for (let i = 0; i < keys.length; i += 10) {
    out.push(...await kv.getMany<T[]>(keys.slice(i, i + 10)));
  }
  return out;
}
