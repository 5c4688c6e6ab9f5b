/**
 * Cold start (issue 15): main.ts, the production entry, as its own process. GET /health is answered
 * by KV and the two clients before the sync engine, pages and API have loaded, with exactly the
 * answer the full app gives; and a page or API request made right after start waits for the full
 * app instead of being answered by the /health-only one.
 */
import assert from "node:assert/strict";
import { boot } from "../boot.ts";
import { loadConfig } from "../lib/config.ts";
import { startXeroSim } from "../sandbox/xero.ts";
import { startZohoSim } from "../sandbox/zoho.ts";
import { simEnv, TEST_ENV } from "./helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const AUTH = { authorization: `Bearer ${TEST_ENV.SYNC_API_TOKEN}` };

interface MainProcess {
  url: string;
  output(): string;
  exited: Promise<Deno.CommandStatus>;
  stop(): Promise<void>;
}

/** `deno run -A main.ts` in `cwd` on a free port; resolves once it says where it listens. */
async function spawnMain(cwd: string, env: Record<string, string>): Promise<MainProcess> {
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (free.addr as Deno.NetAddr).port;
  free.close();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    cwd,
    env: { ...env, PORT: String(port), NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const chunks: string[] = [];
  let listening: (url: string) => void;
  const url = new Promise<string>((r) => (listening = r));
  const pump = async (stream: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    const decoder = new TextDecoder();
    for await (const bytes of stream) {
      chunks.push(decoder.decode(bytes, { stream: true }));
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(chunks.join(""));
      if (m) listening(m[1]);
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then(async (s) => (await pumps, s));
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await exited;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return {
      url: await Promise.race([
        url,
        exited.then((s) => {
          throw new Error(`main.ts exited (${s.code}) before listening:\n${chunks.join("")}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("main.ts did not listen within 30 s")), 30_000);
        }),
      ]),
      output: () => chunks.join(""),
      exited,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

type Seen = Awaited<ReturnType<typeof seen>>;

/** What a caller sees of an answer; the CSP nonce is random per answer, `date` per second. */
async function seen(res: Response) {
  const headers = [...res.headers]
    .filter(([name]) => name !== "date")
    .map(([name, value]) => [name, value.replace(/'nonce-[^']+'/g, "'nonce-*'")]);
  return { status: res.status, headers, body: await res.text() };
}

/** This project without the islands bundle: the full app cannot load there, /health needs none. */
async function copyWithoutBuild(to: string) {
  const skip = new Set([".git", "tests", "static/build", "node_modules", "test-artifacts"]);
  const copy = async (rel: string) => {
    for await (const e of Deno.readDir(`${ROOT}${rel}`)) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (skip.has(path) || path.includes(".sqlite")) continue;
      if (e.isDirectory) {
        await Deno.mkdir(`${to}/${path}`);
        await copy(path);
      } else if (e.isFile) {
        await Deno.copyFile(`${ROOT}${path}`, `${to}/${path}`);
      }
    }
  };
  await copy("");
}

Deno.test("main.ts answers /health before the rest of the app has loaded, as the full app would", async () => {
  const zohoSim = await startZohoSim({});
  const xeroSim = await startXeroSim({});
  const dir = await Deno.makeTempDir({ prefix: "cold-start-" });
  const env = { ...simEnv(zohoSim, xeroSim), DENO_KV_PATH: `${dir}/kv.sqlite3` };
  const app = `${dir}/app`;
  await Deno.mkdir(app);
  await copyWithoutBuild(app);
  // One process per caller: the first answer starts loading the rest, which fails here (no
  // bundle) and ends the process, so a second request could find it gone. So does a request that
  // comes after the 200 ms fallback load has failed (a slow machine): then it is asked again, of
  // a new process (at most 3 times); whatever answers can only be the /health app.
  const firstAnswer = async (headers: Record<string, string>, attempt = 1): Promise<Seen> => {
    const proc = await spawnMain(app, env);
    try {
      let answer: Seen;
      try {
        answer = await fetch(`${proc.url}/health`, { headers }).then(seen);
      } catch (err) {
        if (attempt >= 3) throw err;
        await proc.stop();
        return await firstAnswer(headers, attempt + 1);
      }
      assert.equal(answer.status, 200, answer.body);
      // Loading the rest fails, which ends the process with the reason, as a missing bundle did
      // before the split: proof that nothing of it answered.
      const status = await proc.exited;
      assert.equal(status.code, 1);
      assert.match(
        proc.output(),
        /the app could not start: static\/build\/manifest\.json is missing/,
      );
      return answer;
    } finally {
      await proc.stop();
    }
  };
  try {
    const anonymous = await firstAnswer({});
    const trusted = await firstAnswer(AUTH);

    // The full app over the same environment and KV gives the same answers, headers included.
    const full = await boot(loadConfig(env));
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      full.app.fetch,
    );
    try {
      const url = `http://127.0.0.1:${server.addr.port}/health`;
      assert.deepEqual(anonymous, await fetch(url).then(seen));
      assert.deepEqual(trusted, await fetch(url, { headers: AUTH }).then(seen));
      assert.ok(anonymous.headers.some(([name]) => name === "content-security-policy"));
      assert.match(trusted.body, /"state":"connected"/);
    } finally {
      await server.shutdown();
      await full.close();
    }
  } finally {
    await Promise.all([zohoSim.close(), xeroSim.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("right after start, pages and the API get the full app and /health keeps its answer", async () => {
  const zohoSim = await startZohoSim({});
  const xeroSim = await startXeroSim({});
  const dir = await Deno.makeTempDir({ prefix: "cold-start-" });
  const env = { ...simEnv(zohoSim, xeroSim), DENO_KV_PATH: `${dir}/kv.sqlite3` };
  const proc = await spawnMain(ROOT, env);
  try {
    const first = await fetch(`${proc.url}/health`).then(seen);
    const [trusted, login, home, runs] = await Promise.all([
      fetch(`${proc.url}/health`, { headers: AUTH }).then(seen),
      fetch(`${proc.url}/login`).then(seen),
      fetch(`${proc.url}/`, { redirect: "manual" }),
      fetch(`${proc.url}/api/sync-runs`, { headers: AUTH }),
    ]);
    assert.equal(first.status, 200, first.body);
    assert.equal(trusted.status, 200, trusted.body);
    assert.equal(login.status, 200, login.body);
    assert.match(login.body, /<form[^>]*action="\/login"/);
    assert.equal(home.status, 302);
    assert.match(home.headers.get("location") ?? "", /^\/login\?next=/);
    await home.body?.cancel();
    assert.equal(runs.status, 200);
    assert.ok(Array.isArray((await runs.json()).runs));

    // Now from the full app: the same answers as before it had loaded.
    assert.deepEqual(await fetch(`${proc.url}/health`).then(seen), first);
    assert.deepEqual(await fetch(`${proc.url}/health`, { headers: AUTH }).then(seen), trusted);
    assert.deepEqual(
      login.headers.find(([name]) => name === "content-security-policy"),
      first.headers.find(([name]) => name === "content-security-policy"),
    );
  } finally {
    await proc.stop();
    await Promise.all([zohoSim.close(), xeroSim.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("before its first line runs, main.ts loads what /health needs and none of the rest", async () => {
  // Deno loads every module an entry names, dynamic imports included, before running it: the
  // sync engine, pages and API must be out of that graph (boot.ts imports them by a computed
  // specifier), or a cold instance waits for all of them before it can answer anything.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  // Code edges only, static and dynamic alike: type-only imports are not loaded.
  type Dep = { code?: { specifier: string } };
  const deps = new Map<string, Dep[]>(
    info.modules.map((m: { specifier: string; dependencies?: Dep[] }) => [
      m.specifier,
      m.dependencies ?? [],
    ]),
  );
  const seen = new Set<string>();
  const queue: string[] = [...info.roots];
  while (queue.length) {
    const spec = queue.shift()!;
    if (seen.has(spec)) continue;
    seen.add(spec);
    for (const dep of deps.get(spec) ?? []) {
      if (dep.code) queue.push(info.redirects?.[dep.code.specifier] ?? dep.code.specifier);
    }
  }
  const local = [...seen]
    .filter((s) => s.startsWith("file://"))
    .map((s) => s.slice(`file://${ROOT}`.length));
  for (
    const needed of [
      "routes/health.ts",
      "routes/base.ts",
      "lib/zoho/connection.ts",
      "lib/xero/connection.ts",
      "boot.ts",
    ]
  ) {
    assert.ok(local.includes(needed), `${needed} is loaded at start`);
  }
  // /health reads the connections' states from KV: the API clients (and xero-node, OTel behind
  // them) load with the rest of the app, as do the API's guard and rate limits, and the sync.
  const early = local.filter((s: string) =>
    /^(routes\/(app\.ts|api\.ts|api_auth\.ts|pages|assets\.ts|oauth\.ts)|lib\/sync\/|lib\/mapping\/|lib\/(zoho|xero)\/(client|tokens|api)\.ts|lib\/telemetry\.ts|lib\/store\/rate_limit\.ts|components\/)/
      .test(s)
  );
  assert.deepEqual(early, []);
  const packages = [...seen].filter((s) => /xero-node|opentelemetry/.test(s));
  assert.deepEqual(packages, []);
  // zod's v3 API validates what /health needs (lib/config.ts): zod 4's entry is 95 modules.
  const zod = [...seen].filter((s) => s.includes("zod"));
  assert.deepEqual(zod.map((s) => s.replace(/@[\d.]+/, "")), ["npm:/zod/v3"]);
});
