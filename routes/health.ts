/** GET /health: connection states for monitors and the status island; never any secret. */
import { Hono } from "hono";
import type { AppContext, ConnStatus } from "../lib/context.ts";

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

export async function healthBody(ctx: AppContext) {
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
  return { ok: kv === "ok", kv, zoho, xero };
}

export function healthRoutes(ctx: AppContext) {
  return new Hono().get("/health", async (c) => {
    const body = await healthBody(ctx);
    c.header("cache-control", "no-store");
    return c.json(body, body.ok ? 200 : 503);
  });
}
