/**
 * The Xero connection as KV holds it: the stored token set and organisation, and the connection's
 * state read from KV and the limiter alone (no call to Xero). GET /health needs only this, so a
 * cold instance answers it without loading the API client (client.ts); XeroTokens (tokens.ts) and
 * XeroClient own the writes and read through here.
 */
import { z } from "zod/v3";
import { sha256Hex } from "../secrets.ts";
import { keys } from "../store/keys.ts";
import { existingLimiter } from "./limiter.ts";
import type { XeroStatus } from "./types.ts";

/** What KV holds under keys.xeroToken() (secrets sealed, see lib/secrets.ts). */
export const StoredXeroToken = z.object({
  refreshToken: z.string(),
  accessToken: z.string().optional(),
  expiresAt: z.number().optional(),
  scope: z.string().optional(),
  updatedAt: z.number(),
  /** A refresh in progress somewhere: others wait for it instead of spending the same token. */
  claim: z.object({ by: z.string(), until: z.number() }).optional(),
  /** Xero refused this refresh token (invalid_grant): reconnecting is the only way on. */
  failure: z.string().optional(),
  /**
   * Xero refused the client id or secret (invalid_client) that hash to `client`: the refresh
   * token was not spent and stays; fixing XERO_CLIENT_ID/SECRET (another hash) clears it.
   */
  clientFailure: z.object({ client: z.string(), message: z.string() }).optional(),
  /** sha256 of the XERO_REFRESH_TOKEN this token set descends from: that seed is spent. */
  seedHash: z.string().optional(),
});
export type StoredXeroToken = z.infer<typeof StoredXeroToken>;

/** What KV holds under keys.xeroTenant(). */
export const StoredTenant = z.object({
  tenantId: z.string(),
  tenantName: z.string(),
  /** "choice": picked in the app; "env": XERO_TENANT_ID; "default": the first connection. */
  source: z.enum(["choice", "env", "default"]).optional(),
});

/** What the state depends on besides KV (XERO_* of the environment). */
export interface XeroConnectionConfig {
  kv: Deno.Kv;
  /** XERO_API_URL: names the limiter whose last rate-limit headers the state shows. */
  apiUrl: string;
  clientId?: string;
  clientSecret?: string;
  refreshTokenSeed?: string;
}

/** A configured base URL as every part of the client uses it. */
export const trimUrl = (u: string) => u.replace(/\/+$/, "");

export async function readStoredToken(kv: Deno.Kv): Promise<StoredXeroToken | null> {
  const entry = await kv.get(keys.xeroToken());
  const parsed = StoredXeroToken.safeParse(entry.value);
  return parsed.success ? parsed.data : null;
}

/** The env seed may be used: it is set and is not the one an admin disconnected. */
export async function seedUsable(kv: Deno.Kv, seed: string | undefined): Promise<boolean> {
  if (!seed) return false;
  const gone = (await kv.get<string>(keys.xeroDisconnectedSeed())).value;
  return gone !== await sha256Hex(seed);
}

/** Names the configured client id and secret without storing either. */
export async function clientHash(clientId?: string, clientSecret?: string): Promise<string> {
  return (await sha256Hex(`${clientId}:${clientSecret}`)).slice(0, 32);
}

/** Why Xero refuses the configured client (for status), if it last did. */
export async function clientProblem(
  stored: StoredXeroToken | null,
  clientId?: string,
  clientSecret?: string,
): Promise<string | undefined> {
  const f = stored?.clientFailure;
  return f && f.client === await clientHash(clientId, clientSecret) ? f.message : undefined;
}

/** Cheap: reads KV and the last rate-limit headers seen; makes no call to Xero. */
export async function xeroStatus(c: XeroConnectionConfig): Promise<XeroStatus> {
  if (!c.clientId || !c.clientSecret) {
    return {
      state: "not_connected",
      message: "XERO_CLIENT_ID and XERO_CLIENT_SECRET are not set",
    };
  }
  const [token, tenantEntry] = await Promise.all([
    readStoredToken(c.kv),
    c.kv.get(keys.xeroTenant()),
  ]);
  if (!token && !await seedUsable(c.kv, c.refreshTokenSeed)) {
    return { state: "not_connected", message: "Xero is not connected" };
  }
  const tenant = StoredTenant.safeParse(tenantEntry.value);
  const base: XeroStatus = {
    state: "connected",
    ...(tenant.success
      ? { tenantId: tenant.data.tenantId, tenantName: tenant.data.tenantName }
      : {}),
    ...(token?.expiresAt ? { tokenExpiresAt: new Date(token.expiresAt).toISOString() } : {}),
  };
  if (token?.failure) return { ...base, state: "error", message: token.failure };
  const wrongClient = await clientProblem(token, c.clientId, c.clientSecret);
  if (wrongClient) return { ...base, state: "error", message: wrongClient };
  const limiter = tenant.success
    ? existingLimiter(trimUrl(c.apiUrl), tenant.data.tenantId)
    : undefined;
  const day = limiter?.dayLeft();
  return {
    ...base,
    ...(day !== undefined ? { dayLimitRemaining: day } : {}),
    ...(limiter?.minRemaining !== undefined ? { minLimitRemaining: limiter.minRemaining } : {}),
  };
}
