/** CPU time, wall time and peak memory of one piece of work in this process. */

export interface Measured<T> {
  value: T;
  wallMs: number;
  cpuMs: number;
  /** Highest resident set size seen while the work ran (sampled every 50 ms), in bytes. */
  peakRss: number;
  /** Highest V8 heap in use seen while the work ran, in bytes. */
  peakHeap: number;
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
  const sample = () => {
    const m = Deno.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
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
    return { value, wallMs, cpuMs: cpu, peakRss, peakHeap };
  } finally {
    clearInterval(timer);
  }
}
