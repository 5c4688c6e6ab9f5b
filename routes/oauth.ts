/**
 * OAuth 2.0 authorization-code flows for Zoho and Xero. `start` keeps a random `state` in KV, bound
 * to the admin's session and good for ten minutes; `callback` accepts a code only with that state,
 * once, from the same session, then swaps the code for tokens through the client.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { AppContext } from "../lib/context.ts";
import { keys } from "../lib/store/keys.ts";
import { requirePageSession, type SessionEnv } from "./session.ts";

type System = "zoho" | "xero";

const STATE_MS = 10 * 60_000;

interface StoredState {
  system: System;
  sessionId: string;
  createdAt: number;
}

function randomState(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

export function redirectUri(ctx: AppContext, system: System): string {
  return `${ctx.config.APP_BASE_URL}/oauth/${system}/callback`;
}

/** Takes the state out of KV (single use) when it was made by this session for this system. */
async function consumeState(
  ctx: AppContext,
  state: string | undefined,
  system: System,
  sessionId: string,
): Promise<boolean> {
  if (!state || !/^[0-9a-f]{64}$/.test(state)) return false;
  const entry = await ctx.kv.get<StoredState>(keys.oauthState(state));
  const v = entry.value;
  if (!v) return false;
  const used = await ctx.kv.atomic().check(entry).delete(keys.oauthState(state)).commit();
  return used.ok && v.system === system && v.sessionId === sessionId &&
    Date.now() - v.createdAt < STATE_MS;
}

function back(c: Context, notice: string) {
  return c.redirect(`/connections?notice=${notice}`, 302);
}

/**
 * Why a code exchange failed, in the client's own words (they carry no secrets), kept for the
 * connections page to show once.
 */
async function failed(c: Context<SessionEnv>, ctx: AppContext, system: System, err: unknown) {
  const reason = err instanceof Error ? err.message : "unknown error";
  console.error(`oauth ${system}: code exchange failed: ${reason}`);
  const session = c.get("session")!;
  await ctx.kv.set(keys.oauthError(session.id), { system, reason }, { expireIn: STATE_MS });
  return back(c, "oauth-failed");
}

export function oauthRoutes(ctx: AppContext) {
  const guard = requirePageSession(ctx);
  const app = new Hono<SessionEnv>();

  for (const system of ["zoho", "xero"] as const) {
    const client = system === "zoho" ? ctx.zoho : ctx.xero;

    app.get(`/oauth/${system}/start`, guard, async (c) => {
      const session = c.get("session")!;
      const state = randomState();
      let url: string;
      try {
        url = client.authorizeUrl(state, redirectUri(ctx, system));
      } catch {
        return back(c, "oauth-unconfigured");
      }
      const value: StoredState = { system, sessionId: session.id, createdAt: Date.now() };
      await ctx.kv.set(keys.oauthState(state), value, { expireIn: STATE_MS });
      c.header("cache-control", "no-store");
      return c.redirect(url, 302);
    });

    app.get(`/oauth/${system}/callback`, guard, async (c) => {
      const session = c.get("session")!;
      const q = c.req.query();
      if (!await consumeState(ctx, q.state, system, session.id)) return back(c, "oauth-state");
      if (q.error || !q.code) return back(c, q.error ? "oauth-denied" : "oauth-failed");
      try {
        if (system === "zoho") {
          await ctx.zoho.exchangeCode(q.code, redirectUri(ctx, system), q["accounts-server"]);
        } else {
          await ctx.xero.exchangeCode(q.code, redirectUri(ctx, system));
        }
      } catch (err) {
        return await failed(c, ctx, system, err);
      }
      if (system === "xero" && !ctx.config.XERO_TENANT_ID) {
        const tenants = await ctx.xero.connections().catch(() => []);
        if (tenants.length > 1) return back(c, "xero-choose");
      }
      return back(c, `${system}-connected`);
    });
  }
  return app;
}
