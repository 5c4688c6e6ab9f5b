/**
 * Hardening against an attacker on the network, with the app as its own process (a crash must show
 * as a dead process, not as a failed test inside this one): every byte through every request value
 * that reaches a response header; the login throttle and the API limit under parallel bursts; body
 * limits measured by the server process's RSS.
 */
import assert from "node:assert/strict";
import { TEST_ENV } from "../helpers.ts";
import { type AppProcess, spawnApp } from "./harness.ts";

async function withApp(
  env: Record<string, string>,
  fn: (app: AppProcess) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "zx-hardening-" });
  const app = await spawnApp({
    ...TEST_ENV,
    AUTO_SYNC_CRON: "off",
    DENO_KV_PATH: `${dir}/kv.sqlite`,
    ...env,
  });
  try {
    await fn(app);
  } finally {
    await app.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

async function alive(app: AppProcess, what: string): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${app.url}/health`, { signal: AbortSignal.timeout(5_000) });
  } catch (err) {
    throw new Error(`the app died after ${what}: ${(err as Error).message}\n${app.output()}`);
  }
  await res.body?.cancel();
  assert.equal(res.status, 200, `after ${what}`);
}

const form = (fields: Record<string, string>) => ({
  "content-type": "application/x-www-form-urlencoded",
  body: new URLSearchParams(fields).toString(),
});

async function login(app: AppProcess): Promise<{ cookie: string; csrf: string }> {
  const f = form({ password: TEST_ENV.ADMIN_PASSWORD, next: "/" });
  const res = await fetch(`${app.url}/login`, {
    method: "POST",
    headers: { "content-type": f["content-type"] },
    body: f.body,
    redirect: "manual",
  });
  await res.body?.cancel();
  assert.equal(res.status, 303);
  const cookie = res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const home = await fetch(`${app.url}/settings`, { headers: { cookie } });
  const csrf = (await home.text()).match(/name="csrf" value="([0-9a-f]+)"/)?.[1];
  assert.ok(csrf, "a CSRF token on the settings page");
  return { cookie, csrf };
}

/** One HTTP/1.1 exchange over a raw socket, so bytes go out exactly as written. */
async function raw(app: AppProcess, head: Uint8Array): Promise<string> {
  const { hostname, port } = new URL(app.url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const timer = setTimeout(() => conn.close(), 5_000);
  try {
    await conn.write(head);
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16 * 1024);
    for (let i = 0; i < 1000; i++) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    return new TextDecoder("latin1").decode(
      Uint8Array.from(chunks.flatMap((c) => [...c])),
    );
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer or the server */ }
  }
}

function rawRequest(template: string, byte: number): Uint8Array {
  const enc = new TextEncoder();
  const [before, after] = template.split("@");
  return Uint8Array.from([
    ...enc.encode(before),
    byte,
    ...enc.encode(`${after}\r\nconnection: close\r\n\r\n`),
  ]);
}

/** A Location the app sets is printable ASCII and a path on this app. */
function assertSafeLocation(location: string | null, what: string) {
  if (location === null) return;
  assert.match(
    location,
    /^\/(?![/\\])[\x21-\x7e]*$/,
    `${what}: Location ${JSON.stringify(location)}`,
  );
}

Deno.test("every byte 0x00-0xFF through every request value that reaches a response header: the process lives", async () => {
  await withApp({ TRUSTED_PROXY_HEADER: "x-forwarded-for" }, async (app) => {
    const { cookie, csrf } = await login(app);
    for (let b = 0; b <= 0xff; b++) {
      const hex = b.toString(16).padStart(2, "0").toUpperCase();
      const what = `byte 0x${hex}`;
      // Percent-encoded: after decoding, the byte is in the value the app reads.
      const gets: Array<[string, HeadersInit]> = [
        [`/login?next=/%${hex}`, { cookie }],
        [`/login?next=/runs%${hex}x`, { cookie }],
        [`/login?next=%${hex}`, { cookie }],
        [`/runs/%${hex}`, {}],
        [`/?q=%${hex}`, {}],
        [`/oauth/xero/callback?code=%${hex}&state=%${hex}`, { cookie }],
      ];
      for (const [path, headers] of gets) {
        const res = await fetch(`${app.url}${path}`, { headers, redirect: "manual" })
          .catch((err) => {
            throw new Error(`${what} GET ${path}: ${err.message}\n${app.output()}`);
          });
        await res.body?.cancel();
        assertSafeLocation(res.headers.get("location"), `${what} GET ${path}`);
      }
      const posts: Array<[string, Record<string, string>, HeadersInit]> = [
        ["/login", { password: TEST_ENV.ADMIN_PASSWORD, next: `/${String.fromCharCode(b)}` }, {}],
        ["/login", { password: "wrong-password", next: `/${String.fromCharCode(b)}` }, {}],
        [`/runs/%${hex}/retry`, { csrf }, { cookie }],
      ];
      for (const [path, fields, headers] of posts) {
        const f = form(fields);
        const res = await fetch(`${app.url}${path}`, {
          method: "POST",
          headers: { ...headers, "content-type": f["content-type"] },
          body: f.body,
          redirect: "manual",
        }).catch((err) => {
          throw new Error(`${what} POST ${path}: ${err.message}\n${app.output()}`);
        });
        await res.body?.cancel();
        assertSafeLocation(res.headers.get("location"), `${what} POST ${path}`);
      }
      // The raw byte, unencoded, in the request target and in headers the app reads ("@" marks
      // where it goes).
      const host = `host: ${new URL(app.url).host}`;
      for (
        const template of [
          `GET /login?next=/@ HTTP/1.1\r\n${host}\r\ncookie: ${cookie}`,
          `GET /runs/@ HTTP/1.1\r\n${host}`,
          `GET /login HTTP/1.1\r\n${host}\r\ncookie: zx_session=a@`,
          `GET /api/sync-runs HTTP/1.1\r\n${host}\r\nauthorization: Bearer x@`,
          `GET /api/sync-runs HTTP/1.1\r\n${host}\r\nx-forwarded-for: 10.0.0.@`,
          `POST /login HTTP/1.1\r\n${host}\r\norigin: http://a@\r\ncontent-length: 0`,
        ]
      ) {
        const answer = await raw(app, rawRequest(template, b));
        const location = /\r\nlocation: ([^\r\n]*)/i.exec(answer)?.[1] ?? null;
        assertSafeLocation(location, `${what} raw ${template.split("\r\n")[0]}`);
      }
      await alive(app, what);
    }
  });
});

Deno.test("200 parallel wrong logins: at most 5 are evaluated, then even the right password waits", async () => {
  await withApp({}, async (app) => {
    const f = form({ password: "wrong-password-guess" });
    const answers = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const res = await fetch(`${app.url}/login`, {
          method: "POST",
          headers: { "content-type": f["content-type"] },
          body: f.body,
        });
        await res.body?.cancel();
        return res.status;
      }),
    );
    const evaluated = answers.filter((s) => s === 401).length;
    const refused = answers.filter((s) => s === 429).length;
    console.log(`hardening: 200 parallel wrong logins → ${evaluated} compared, ${refused} × 429`);
    assert.ok(evaluated <= 5, `${evaluated} wrong passwords were compared`);
    assert.equal(evaluated + refused, 200, `answers: ${[...new Set(answers)]}`);
    const right = form({ password: TEST_ENV.ADMIN_PASSWORD });
    const res = await fetch(`${app.url}/login`, {
      method: "POST",
      headers: { "content-type": right["content-type"] },
      body: right.body,
      redirect: "manual",
    });
    await res.body?.cancel();
    assert.equal(res.status, 429, "the right password waits out the window too");
    assert.equal(res.headers.getSetCookie().length, 0);
    await alive(app, "the burst");
  });
});

Deno.test("400 parallel API requests: 429s past the limit, failed ones counted per address", async () => {
  await withApp({}, async (app) => {
    const burst = (authorization: string) =>
      Promise.all(Array.from({ length: 400 }, async () => {
        const res = await fetch(`${app.url}/api/sync-runs`, { headers: { authorization } });
        await res.body?.cancel();
        return { status: res.status, retry: res.headers.get("retry-after") };
      }));
    const wrong = await burst("Bearer not-the-token-0123456789");
    const unauthorized = wrong.filter((r) => r.status === 401).length;
    const limited = wrong.filter((r) => r.status === 429);
    console.log(
      `hardening: 400 parallel wrong tokens → ${unauthorized} × 401, ${limited.length} × 429`,
    );
    assert.ok(unauthorized <= 120, `${unauthorized} wrong tokens were compared`);
    assert.ok(limited.length >= 280, `${limited.length} answered 429`);
    assert.ok(limited.every((r) => Number(r.retry) >= 1), "429s carry Retry-After");
    // The strangers' failures did not spend the token holder's budget...
    const one = await fetch(`${app.url}/api/sync-runs`, {
      headers: { authorization: `Bearer ${TEST_ENV.SYNC_API_TOKEN}` },
    });
    await one.body?.cancel();
    assert.equal(one.status, 200);
    // ...which holds under a burst too (when counts race, the limit errs on refusing).
    const right = await burst(`Bearer ${TEST_ENV.SYNC_API_TOKEN}`);
    const ok = right.filter((r) => r.status === 200).length;
    assert.ok(ok <= 119, `${ok} token calls answered 200`);
    assert.equal(ok + right.filter((r) => r.status === 429).length, 400);
    await alive(app, "the bursts");
  });
});

function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

Deno.test("a 20 MB form is refused with 413 before it is read; the server's RSS grows < 20 MB", async () => {
  await withApp({}, async (app) => {
    const { cookie, csrf } = await login(app);
    const big = `csrf=${csrf}&password=${"a".repeat(20 * 1024 * 1024)}`;
    // Warm up the routes so their first-use allocations are not counted.
    for (const path of ["/login", "/settings", "/sync"]) {
      const res = await fetch(`${app.url}${path}`, {
        method: "POST",
        headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
        body: `csrf=${csrf}`,
        redirect: "manual",
      });
      await res.body?.cancel();
    }
    const before = rssBytes(app.pid);
    for (const path of ["/login", "/settings", "/sync", "/logout", "/connections/xero/tenant"]) {
      for (const chunked of [false, true]) {
        const bytes = new TextEncoder().encode(big);
        const body = chunked
          ? new ReadableStream<Uint8Array>({
            start(controller) {
              for (let i = 0; i < bytes.length; i += 1 << 20) {
                controller.enqueue(bytes.subarray(i, i + (1 << 20)));
              }
              controller.close();
            },
          })
          : bytes;
        const res = await fetch(`${app.url}${path}`, {
          method: "POST",
          headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
          body,
          redirect: "manual",
        }).catch(() => null); // the server may close the socket once it has answered
        if (res) {
          await res.body?.cancel();
          assert.equal(res.status, 413, `${path}${chunked ? " (chunked)" : ""}`);
        }
        await alive(app, `20 MB to ${path}`);
      }
    }
    const grown = rssBytes(app.pid) - before;
    console.log(
      `hardening: 10 × 20 MB forms → 413; server RSS ${(before / 1048576).toFixed(1)} MB → ` +
        `grew ${(grown / 1048576).toFixed(1)} MB`,
    );
    assert.ok(grown < 20 * 1024 * 1024, `RSS grew ${(grown / 1048576).toFixed(1)} MB`);
  });
});
