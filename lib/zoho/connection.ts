/**
 * The Zoho connection as KV holds it: the stored shapes, and its state read from KV alone (no
 * call to Zoho). GET /health needs only this, so a cold instance answers it without loading the
 * API client (lib/zoho/client.ts); ZohoTokens (tokens.ts) owns the writes and reads through here.
 */
import { z } from "zod/v3";
import { sha256Hex } from "../secrets.ts";
import { keys } from "../store/keys.ts";

/** What KV holds under keys.zohoToken(): the refresh token (encrypted) and the connection state. */
export const StoredConnection = z.object({
  refreshToken: z.string().optional(),
  apiDomain: z.string().optional(),
  accountsUrl: z.string().optional(),
  connectedAt: z.string().optional(),
  source: z.enum(["env", "oauth"]).optional(),
  seedHash: z.string().optional(),
  lastError: z.string().optional(),
  lastErrorCode: z.string().optional(),
  lastErrorAt: z.string().optional(),
  failedClientHash: z.string().optional(),
  /** ISO time before which no mint is tried (Zoho refused one: too many in its 10-minute window). */
  retryAfter: z.string().optional(),
  disconnectedAt: z.string().optional(),
  disconnectedSeedHash: z.string().optional(),
});
export type StoredConnection = z.infer<typeof StoredConnection>;

/** What KV holds under keys.zohoAccessToken(). */
export const StoredAccessToken = z.object({
  accessToken: z.string(),
  apiDomain: z.string(),
  expiresAt: z.string(),
  mintedAt: z.string().optional(),
});
export type StoredAccessToken = z.infer<typeof StoredAccessToken>;

export interface ConnectionStatus {
  state: "connected" | "not_connected" | "error";
  message?: string;
  apiDomain?: string;
  accountsUrl: string;
  tokenExpiresAt?: string;
}

/** What the state depends on besides KV (ZOHO_* of the environment). */
export interface ZohoConnectionConfig {
  kv: Deno.Kv;
  accountsUrl: string;
  clientId?: string;
  clientSecret?: string;
  refreshTokenSeed?: string;
}

/** ZOHO_ACCOUNTS_URL as every part of the client uses it. */
export function accountsBase(url: string): string {
  return url.replace(/\/+$/, "");
}

/** When a remembered refusal to mint ends (ms), or undefined when none holds now. */
export function refusedUntil(value: StoredConnection | undefined): number | undefined {
  if (value?.lastErrorCode !== "TOKEN_RATE_LIMITED" || !value.retryAfter) return undefined;
  const until = Date.parse(value.retryAfter);
  return until > Date.now() ? until : undefined;
}

/** Connection state from KV only (no API call): cheap enough for /health. */
export async function zohoStatus(d: ZohoConnectionConfig): Promise<ConnectionStatus> {
  const [connEntry, accessEntry] = await d.kv.getMany([
    keys.zohoToken(),
    keys.zohoAccessToken(),
  ]);
  const value = StoredConnection.safeParse(connEntry.value ?? {}).data ?? {};
  const access = StoredAccessToken.safeParse(accessEntry.value).data;
  const seed = d.refreshTokenSeed;
  const seedHash = seed ? await sha256Hex(seed) : undefined;
  const configured = Boolean(d.clientId && d.clientSecret);
  const accountsUrl = value.source === "oauth" && value.accountsUrl
    ? value.accountsUrl
    : accountsBase(d.accountsUrl);
  const notConfigured = {
    state: "error" as const,
    message: "ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET must be set to use the Zoho connection.",
    accountsUrl,
  };
  if (value.refreshToken) {
    const newSeed = value.source === "env" && seed && seedHash !== value.seedHash;
    const refusalOver = value.lastErrorCode === "TOKEN_RATE_LIMITED" &&
      refusedUntil(value) === undefined;
    if (
      value.lastError && !refusalOver &&
      !(value.lastErrorCode === "RECONNECT_REQUIRED" && newSeed)
    ) {
      return {
        state: "error",
        message: value.lastError,
        accountsUrl,
        apiDomain: value.apiDomain,
      };
    }
    if (!configured) return notConfigured;
    return {
      state: "connected",
      apiDomain: access?.apiDomain ?? value.apiDomain,
      accountsUrl,
      tokenExpiresAt: access?.expiresAt,
    };
  }
  if (seed && value.disconnectedSeedHash !== seedHash) {
    if (!configured) return notConfigured;
    return {
      state: "connected",
      message: "Using ZOHO_REFRESH_TOKEN (not used yet).",
      accountsUrl,
    };
  }
  return { state: "not_connected", message: "Zoho is not connected.", accountsUrl };
}
