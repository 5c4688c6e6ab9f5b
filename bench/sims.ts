/** Starts bench/sim_host.ts in a child process and talks to it. */
import type { SimHostInfo, SimHostOptions, SimStats } from "./sim_host.ts";

export interface SimProcess {
  info: SimHostInfo;
  stats(): Promise<SimStats>;
  close(): Promise<void>;
}

export async function startSims(opts: SimHostOptions): Promise<SimProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./sim_host.ts", import.meta.url).pathname, JSON.stringify(opts)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    // The simulators are not measured: keep them out of a telemetry comparison's load.
    env: { OTEL_DENO: "false" },
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!buffer.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error("the simulator process ended before it started");
    buffer += value;
  }
  const info: SimHostInfo = JSON.parse(buffer.slice(0, buffer.indexOf("\n")));
  // Keep reading so the child never blocks on a full pipe.
  const drained = (async () => {
    while (!(await lines.read()).done) { /* discard */ }
  })();
  return {
    info,
    async stats() {
      return await (await fetch(info.control)).json() as SimStats;
    },
    async close() {
      await child.stdin.close();
      await child.status;
      await drained;
    },
  };
}
