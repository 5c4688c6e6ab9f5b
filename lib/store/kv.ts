/** Opens Deno KV from DENO_KV_PATH: a file path, ":memory:", a KV Connect URL, or Deno's default. */
export async function openKv(path?: string): Promise<Deno.Kv> {
  return retryWhenBusy(await whenBusy(() => path ? Deno.openKv(path) : Deno.openKv()));
}

/**
 * Several processes may share one local KV file (two instances on one host). SQLite then refuses
 * a write while another process holds the file's lock ("database is locked"), which surfaced as
 * HTTP 500s and failed runs (found by tests/reliability). Such a write did not happen, so it is
 * tried again after a short random pause; any other error, or a lock held for seconds, is thrown.
 * Deno Deploy's KV never answers this way, so there the wrapper changes nothing.
 */
function retryWhenBusy(kv: Deno.Kv): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = () => whenBusy(commit);
          return op;
        };
      }
      if (prop === "get" || prop === "getMany" || prop === "set" || prop === "delete") {
        return (...args: unknown[]) =>
          whenBusy(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const BUSY = /database is locked|database is busy/i;

async function whenBusy<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 60 || !(err instanceof Error) || !BUSY.test(err.message)) throw err;
      await new Promise((r) => setTimeout(r, Math.min(50, attempt * 5) * (0.5 + Math.random())));
    }
  }
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
