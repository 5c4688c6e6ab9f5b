/**
 * Who may call the API: the Zoho button/webhook with `Authorization: Bearer $SYNC_API_TOKEN`
 * (compared in constant time), or a logged-in page carrying its CSRF token in `x-csrf-token`.
 * Plus rate limits in KV, shared by every instance.
 */
import type { MiddlewareHandler } from "hono";
import type { AppContext } from "../lib/context.ts";
import { hit } from "../lib/store/rate_limit.ts";
import { bearerOk } from "./bearer.ts";
import { clientAddress } from "./client_address.ts";
import { csrfValid, readSession } from "./session.ts";

export type ApiEnv = { Variables: { caller: "token" | "session" } };

export { bearerOk };

function tooMany(retryAfterSec: number): Response {
  return new Response(
    JSON.stringify({ error: `Too many requests: try again in ${retryAfterSec} s.` }),
    {
      status: 429,
      headers: { "content-type": "application/json", "retry-after": String(retryAfterSec) },
    },
  );
}

/**
 * 120 requests a minute per address (per /64 for IPv6), in two separate budgets so strangers
 * sharing an address (Zoho's outbound ones) cannot spend the button's: a request with the right
 * bearer token is counted in the token's budget before it runs (a wall for a runaway script); a
 * request refused as unauthenticated (401) in the address's own, and past the limit that address
 * gets 429 instead. Logged-in pages are not counted.
 */
export function rateLimit(ctx: AppContext, limit = 120): MiddlewareHandler {
  const window = { limit, windowMs: 60_000 };
  return async (c, next) => {
    const address = clientAddress(c, ctx.config);
    if (bearerOk(c, ctx.config.SYNC_API_TOKEN)) {
      const r = await hit(ctx.kv, `api:token:${address}`, window);
      if (!r.ok) return tooMany(r.retryAfterSec);
      return await next();
    }
    await next();
    if (c.res.status !== 401) return;
    const r = await hit(ctx.kv, `api:${address}`, window);
    if (!r.ok) {
      await c.res.body?.cancel();
      c.res = undefined;
      c.res = tooMany(r.retryAfterSec);
    }
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
