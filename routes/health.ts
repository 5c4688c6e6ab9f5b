/**
 * GET /health: connection states for monitors and the status island; never any secret. Anyone may
 * ask, but only a logged-in admin or a caller with the API bearer token sees the details (the
 * Xero organisation's name, why a connection failed): to everyone else they say who our customer
 * is and what is broken.
 */
// Hono with its smallest router (the full app re-adds these routes to its own router): a cold
// instance loads fewer modules and builds no route matcher before its first answer (main.ts).
import { Hono } from "hono/tiny";
import type { ConnStatus, CoreContext } from "../lib/context.ts";
import { useBase } from "./base.ts";
import { bearerOk } from "./bearer.ts";
import { readSession } from "./session.ts";

/** Only the state, its message and the organisation name: nothing token-like leaves here. */
async function safe(get: () => Promise<ConnStatus>): Promise<ConnStatus> {
  try {
    const s = await get();
    return {
      state: s.state,
      ...(s.message ? { message: s.message } : {}),
      ...(typeof s.tenantName === "string" ? { tenantName: s.tenantName } : {}),
    };
  } catch (err) {
    return { state: "error", message: err instanceof Error ? err.message : "status unavailable" };
  }
}

export async function healthBody(ctx: CoreContext, details = true) {
  let kv = "ok";
  try {
    await ctx.kv.get(["health"]);
  } catch {
    kv = "error";
  }
  const [zoho, xero] = await Promise.all([
    safe(() => ctx.zoho.status()),
    safe(() => ctx.xero.status()),
  ]);
  const shown = (s: ConnStatus): ConnStatus => (details ? s : { state: s.state });
  return { ok: kv === "ok", kv, zoho: shown(zoho), xero: shown(xero) };
}

export function healthRoutes(ctx: CoreContext) {
  return new Hono().get("/health", async (c) => {
    let trusted = bearerOk(c, ctx.config.SYNC_API_TOKEN);
    if (!trusted) trusted = !!await readSession(c, ctx).catch(() => null);
    const body = await healthBody(ctx, trusted);
    c.header("cache-control", "no-store");
    c.header("vary", "authorization, cookie");
    return c.json(body, body.ok ? 200 : 503);
  });
}

/**
 * GET /health on its own, behind the same middleware as the full app (routes/app.ts): main.ts
 * answers with it while the sync engine, pages and API are still loading.
 */
export function healthApp(ctx: CoreContext) {
  const app = new Hono();
  useBase(app, ctx.config);
  app.route("/", healthRoutes(ctx));
  return app;
}
