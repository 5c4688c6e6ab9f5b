/**
 * OAuth 2.0 authorization-code flows for Zoho and Xero. `start` keeps a random `state` in KV, bound
 * to the admin's session and good for ten minutes; `callback` accepts a code only with that state,
 * once, from the same session, then swaps the code for tokens through the client.
 *
 * Xero's flow also uses PKCE (S256): the verifier stays in KV with the state (encrypted), so a
 * code intercepted on its way back is useless to anyone else. Zoho documents PKCE only for its
 * mobile and desktop clients, not for server-based ones like this app, so its flow has none.
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
  /** PKCE code_verifier, sealed for this state's KV key. */
  verifier?: string;
}

function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** RFC 7636: a 43-character verifier (256 random bits) and its S256 challenge. */
async function pkcePair(): Promise<{ verifier: string; challenge: string }> {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: b64url(new Uint8Array(digest)) };
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

/**
 * Takes the state out of KV (single use) when it was made by this session for this system;
 * returns it (null otherwise), with its PKCE verifier opened.
 */
async function consumeState(
  ctx: AppContext,
  state: string | undefined,
  system: System,
  sessionId: string,
): Promise<StoredState | null> {
  if (!state || !/^[0-9a-f]{64}$/.test(state)) return null;
  const key = keys.oauthState(state);
  const entry = await ctx.kv.get<StoredState>(key);
  const v = entry.value;
  if (!v) return null;
  const used = await ctx.kv.atomic().check(entry).delete(key).commit();
  if (
    !used.ok || v.system !== system || v.sessionId !== sessionId ||
    Date.now() - v.createdAt >= STATE_MS
  ) return null;
  if (!v.verifier) return v;
  try {
    return { ...v, verifier: await ctx.secrets.decrypt(v.verifier, key) };
  } catch {
    return null;
  }
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
      const pkce = system === "xero" ? await pkcePair() : undefined;
      let url: string;
      try {
        url = client.authorizeUrl(state, redirectUri(ctx, system), pkce?.challenge);
      } catch {
        return back(c, "oauth-unconfigured");
      }
      const key = keys.oauthState(state);
      const value: StoredState = {
        system,
        sessionId: session.id,
        createdAt: Date.now(),
        ...(pkce ? { verifier: await ctx.secrets.encrypt(pkce.verifier, key) } : {}),
      };
      await ctx.kv.set(key, value, { expireIn: STATE_MS });
      c.header("cache-control", "no-store");
      return c.redirect(url, 302);
    });

    app.get(`/oauth/${system}/callback`, guard, async (c) => {
      const session = c.get("session")!;
      const q = c.req.query();
      const stored = await consumeState(ctx, q.state, system, session.id);
      if (!stored) return back(c, "oauth-state");
      if (q.error || !q.code) return back(c, q.error ? "oauth-denied" : "oauth-failed");
      try {
        if (system === "zoho") {
          await ctx.zoho.exchangeCode(q.code, redirectUri(ctx, system), q["accounts-server"]);
        } else {
          await ctx.xero.exchangeCode(q.code, redirectUri(ctx, system), stored.verifier);
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
