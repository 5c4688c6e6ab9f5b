/**
 * The whole stack for page tests, served on a loopback port whose URL is also APP_BASE_URL: the
 * OAuth flows redirect the browser to `${APP_BASE_URL}/oauth/.../callback`, so the app must know
 * its own address before it boots. Plus a small cookie-carrying client for HTTP-level tests.
 */
import { makeOrders, type StackOptions, startStack, TEST_ENV } from "./helpers.ts";

export { makeOrders, TEST_ENV };

export type UiStack = Awaited<ReturnType<typeof startUiStack>>;

export async function startUiStack(opts: Omit<StackOptions, "listen"> = {}) {
  let handler: Deno.ServeHandler = () => new Response("starting", { status: 503 });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) => handler(req, info),
  );
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  try {
    const stack = await startStack({ ...opts, env: { APP_BASE_URL: url, ...opts.env } });
    handler = stack.app.fetch;
    return {
      ...stack,
      url,
      async close() {
        await server.shutdown();
        await stack.close();
      },
    };
  } catch (err) {
    await server.shutdown();
    throw err;
  }
}

/** A browser-like HTTP client: keeps the session cookie, never follows redirects. */
export class Agent {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) {
      headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    const res = await fetch(this.base + path, { ...init, headers, redirect: "manual" });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /** GET and read the body (so no response is left open). */
  async get(path: string, headers: HeadersInit = {}) {
    const res = await this.fetch(path, { headers });
    return { res, text: await res.text() };
  }

  async postForm(path: string, form: Record<string, string>, headers: HeadersInit = {}) {
    const res = await this.fetch(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(form),
    });
    return { res, text: await res.text() };
  }

  async login(password = TEST_ENV.ADMIN_PASSWORD): Promise<string> {
    const { res } = await this.postForm("/login", { password, next: "/" });
    if (res.status !== 303) throw new Error(`login answered ${res.status}`);
    const { text } = await this.get("/");
    const csrf = text.match(/name="csrf" value="([0-9a-f]+)"/)?.[1];
    if (!csrf) throw new Error("no CSRF token on the home page");
    return csrf;
  }
}
