/**
 * Who may call the API: the Zoho button/webhook with `Authorization: Bearer $SYNC_API_TOKEN`
 * (compared in constant time), or a logged-in page carrying its CSRF token in `x-csrf-token`.
 * Plus a per-caller rate limit in KV, shared by every instance.
 */
import type { Context, MiddlewareHandler } from "hono";
import { getConnInfo } from "hono/deno";
import type { AppContext } from "../lib/context.ts";
import { safeEqual } from "../lib/secrets.ts";
import { hit } from "../lib/store/rate_limit.ts";
import { csrfValid, readSession } from "./session.ts";

export type ApiEnv = { Variables: { caller: "token" | "session" } };

export function bearerOk(c: Context, token: string): boolean {
  const header = c.req.header("authorization") ?? "";
  const m = header.match(/^Bearer\s+(.+)$/i);
  return !!m && safeEqual(m[1].trim(), token);
}

export function clientIp(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown"; // app.request() in tests has no socket
  }
}

/** 120 requests a minute per caller: generous for Zoho, a wall for a runaway script. */
export function rateLimit(ctx: AppContext, limit = 120): MiddlewareHandler {
  return async (c, next) => {
    const r = await hit(ctx.kv, `api:${clientIp(c)}`, { limit, windowMs: 60_000 });
    if (!r.ok) {
      c.header("retry-after", String(r.retryAfterSec));
      return c.json({ error: `Too many requests: try again in ${r.retryAfterSec} s.` }, 429);
    }
    await next();
  };
}

export function requireToken(ctx: AppContext): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (!bearerOk(c, ctx.config.SYNC_API_TOKEN)) {
      return c.json({ error: "Unauthorized: send Authorization: Bearer <SYNC_API_TOKEN>." }, 401);
    }
    c.set("caller", "token");
    await next();
  };
}

export function requireTokenOrSession(ctx: AppContext): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (bearerOk(c, ctx.config.SYNC_API_TOKEN)) {
      c.set("caller", "token");
      return await next();
    }
    const session = await readSession(c, ctx);
    if (!session) {
      return c.json({
        error: "Unauthorized: log in, or send Authorization: Bearer <SYNC_API_TOKEN>.",
      }, 401);
    }
    const safe = c.req.method === "GET" || c.req.method === "HEAD";
    if (!safe && !csrfValid(session, c.req.header("x-csrf-token"))) {
      return c.json({ error: "Forbidden: missing or wrong x-csrf-token header." }, 403);
    }
    c.set("caller", "session");
    await next();
  };
}
