/**
 * Admin sessions: a random id in a signed, HttpOnly, SameSite=Lax cookie, the session itself in KV
 * so logout really ends it. Over https the cookie is `__Host-` prefixed (Secure, Path=/, no
 * Domain: no subdomain can set or shadow it); on loopback http it keeps its plain name, since
 * browsers drop `__Host-` cookies that are not Secure. The signature covers a hash of
 * ADMIN_PASSWORD, so changing the password ends every session. Each session has a CSRF token that
 * every form and page-initiated POST must carry (hidden field `csrf` or header `x-csrf-token`), and
 * a POST from a foreign origin is refused before anything else is looked at.
 */
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { AppContext, CoreContext } from "../lib/context.ts";
import type { Config } from "../lib/config.ts";
import { safeEqual, sha256Hex } from "../lib/secrets.ts";
import { keys } from "../lib/store/keys.ts";

/** The cookie's name on loopback http; over https it is `__Host-zx_session`. */
export const SESSION_COOKIE = "zx_session";
const SESSION_MS = 12 * 3600_000;
const TOKEN = /^[0-9a-f]{48}$/;

export interface Session {
  id: string;
  csrf: string;
  expiresAt: number;
}

export type SessionEnv = { Variables: { session?: Session; secureHeadersNonce?: string } };

/** How a refusal is shown: pages render a small HTML page, the default is plain text. */
export type Refuse = (
  c: Context,
  status: 401 | 403,
  message: string,
) => Response | Promise<Response>;

const textRefusal: Refuse = (c, status, message) => c.text(message, status);

export const REFUSED = {
  noSession: "You are not logged in (or your session ended). Log in and try again.",
  badCsrf: "This form has expired or did not come from this app. Reload the page and try again.",
  foreignOrigin: "This request came from another site and was refused.",
} as const;

function randomToken(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(24)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

function isSafeMethod(method: string): boolean {
  return method === "GET" || method === "HEAD" || method === "OPTIONS";
}

function isHttps(config: Config): boolean {
  return config.APP_BASE_URL.startsWith("https:");
}

export function sessionCookieName(config: Config): string {
  return isHttps(config) ? `__Host-${SESSION_COOKIE}` : SESSION_COOKIE;
}

const passwordHashes = new WeakMap<Config, Promise<string>>();

/** What a session cookie's signature covers: its id and the current admin password's hash. */
async function signed(ctx: CoreContext, id: string): Promise<string> {
  let hash = passwordHashes.get(ctx.config);
  if (!hash) {
    hash = sha256Hex(`zoho-xero/admin-password\n${ctx.config.ADMIN_PASSWORD}`);
    passwordHashes.set(ctx.config, hash);
  }
  return `session:${id}:${await hash}`;
}

export async function createSession(c: Context, ctx: AppContext): Promise<Session> {
  const session: Session = {
    id: randomToken(),
    csrf: randomToken(),
    expiresAt: Date.now() + SESSION_MS,
  };
  await ctx.kv.set(keys.session(session.id), session, { expireIn: SESSION_MS });
  const signature = await ctx.secrets.sign(await signed(ctx, session.id));
  setCookie(c, sessionCookieName(ctx.config), `${session.id}.${signature}`, {
    httpOnly: true,
    secure: isHttps(ctx.config),
    sameSite: "Lax",
    path: "/",
    maxAge: SESSION_MS / 1000,
  });
  return session;
}

export async function readSession(c: Context, ctx: CoreContext): Promise<Session | null> {
  const cookie = getCookie(c, sessionCookieName(ctx.config));
  if (!cookie) return null;
  const [id, sig, extra] = cookie.split(".");
  if (!id || !sig || extra !== undefined || !TOKEN.test(id)) return null;
  if (!await ctx.secrets.verify(await signed(ctx, id), sig)) return null;
  const session = (await ctx.kv.get<Session>(keys.session(id))).value;
  if (!session || session.id !== id || session.expiresAt < Date.now()) return null;
  return session;
}

export async function destroySession(c: Context, ctx: AppContext): Promise<void> {
  const session = await readSession(c, ctx);
  if (session) await ctx.kv.delete(keys.session(session.id));
  deleteCookie(c, sessionCookieName(ctx.config), { path: "/", secure: isHttps(ctx.config) });
}

/** The CSRF token a request carries, from the header or a form field. */
export async function csrfOf(c: Context): Promise<string | undefined> {
  const header = c.req.header("x-csrf-token");
  if (header) return header;
  const type = c.req.header("content-type") ?? "";
  if (
    type.includes("application/x-www-form-urlencoded") || type.includes("multipart/form-data")
  ) {
    const form = await c.req.parseBody();
    const v = form["csrf"];
    return typeof v === "string" ? v : undefined;
  }
  return undefined;
}

export function csrfValid(session: Session, token: string | undefined): boolean {
  return !!token && safeEqual(token, session.csrf);
}

/**
 * A state-changing request must come from this app: the browser says it is same-origin
 * (Sec-Fetch-Site), and its Origin, when it names one, is the app's own. Chromium sends
 * `Origin: null` on form posts from pages with `Referrer-Policy: no-referrer` (ours), so "null"
 * counts as not named. Requests with neither header (old browsers, scripts) still need the
 * session's CSRF token.
 */
export function sameOrigin(c: Context, ctx: AppContext): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined && site !== "same-origin" && site !== "none") return false;
  const origin = c.req.header("origin");
  if (origin === undefined || origin === "null") return true;
  const allowed = new Set([new URL(c.req.url).origin, new URL(ctx.config.APP_BASE_URL).origin]);
  return allowed.has(origin);
}

/**
 * Pages: a session is required; GETs without one go to /login, other methods are refused (401),
 * and they also need the same origin and the CSRF token (403).
 */
export function requirePageSession(
  ctx: AppContext,
  refuse: Refuse = textRefusal,
): MiddlewareHandler<SessionEnv> {
  return async (c, next) => {
    const safe = isSafeMethod(c.req.method);
    if (!safe && !sameOrigin(c, ctx)) return await refuse(c, 403, REFUSED.foreignOrigin);
    const session = await readSession(c, ctx);
    if (!session) {
      if (safe) {
        const back = encodeURIComponent(c.req.path + (new URL(c.req.url).search || ""));
        return c.redirect(`/login?next=${back}`, 302);
      }
      return await refuse(c, 401, REFUSED.noSession);
    }
    if (!safe && !csrfValid(session, await csrfOf(c))) {
      return await refuse(c, 403, REFUSED.badCsrf);
    }
    c.set("session", session);
    await next();
  };
}

/**
 * Where to go after logging in: only a path on this app, never another site ("//host", "/\\host"),
 * and only printable ASCII without spaces, since it becomes the Location header (a DEL there once
 * took the whole process down; other bytes make invalid or garbled headers).
 */
export function safeNext(next: unknown): string {
  if (typeof next !== "string" || next.length > 2048) return "/";
  if (!/^\/[\x21-\x7e]*$/.test(next) || next.startsWith("//") || next.includes("\\")) return "/";
  return next;
}
