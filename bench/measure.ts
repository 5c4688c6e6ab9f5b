/** CPU time, wall time and peak memory of one piece of work in this process. */

export interface Measured<T> {
  value: T;
  wallMs: number;
  cpuMs: number;
  /** Highest resident set size seen while the work ran (sampled every 50 ms), in bytes. */
  peakRss: number;
  /** Highest V8 heap in use seen while the work ran, in bytes. */
  peakHeap: number;
  /**
   * Highest anonymous resident memory (Linux RssAnon: heaps, buffers) and file-backed resident
   * memory (RssFile: the Deno binary's pages, and the KV file's SQLite maps), in bytes; 0 where
   * /proc is missing. RSS = both (+ shared memory): a local KV file's pages count in RSS here, and
   * are no memory of an instance on Deno Deploy, whose KV is a service.
   */
  peakAnon: number;
  peakFile: number;
  /** Highest memory V8 counts outside its heap (ArrayBuffers: bodies, KV values), in bytes. */
  peakExternal: number;
}

/** RssAnon and RssFile of this process in bytes, from /proc (Linux); zeros elsewhere. */
export function rssParts(): { anon: number; file: number } {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kb = (name: string) =>
      Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0);
    return { anon: kb("RssAnon") * 1024, file: kb("RssFile") * 1024 };
  } catch {
    return { anon: 0, file: 0 };
  }
}

/** User + system CPU time of this process in ms: Deno.cpuUsage where it exists, else node's. */
async function cpuMs(): Promise<number> {
  const deno = (Deno as unknown as { cpuUsage?: () => { user: number; system: number } }).cpuUsage;
  const u = deno ? deno() : (await import("node:process")).cpuUsage();
  return (u.user + u.system) / 1000;
}

export async function measure<T>(work: () => Promise<T>): Promise<Measured<T>> {
  let peakRss = 0;
  let peakHeap = 0;
  let peakAnon = 0;
  let peakFile = 0;
  let peakExternal = 0;
  const sample = () => {
    const m = Deno.memoryUsage();
    peakExternal = Math.max(peakExternal, m.external);
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
    const parts = rssParts();
    peakAnon = Math.max(peakAnon, parts.anon);
    peakFile = Math.max(peakFile, parts.file);
  };
  sample();
  const timer = setInterval(sample, 50);
  const cpu0 = await cpuMs();
  const t0 = performance.now();
  try {
    const value = await work();
    const wallMs = performance.now() - t0;
    const cpu = (await cpuMs()) - cpu0;
    sample();
    return { value, wallMs, cpuMs: cpu, peakRss, peakHeap, peakAnon, peakFile, peakExternal };
  } finally {
    clearInterval(timer);
  }
}
