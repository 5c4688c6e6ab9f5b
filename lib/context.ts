/** What the HTTP layer is given by the composition root (boot.ts): config, KV and the services. */
import type { Config } from "./config.ts";
import type { Secrets } from "./secrets.ts";
import type { SyncEngine } from "./sync/engine.ts";
import type { XeroPort, ZohoPort } from "./sync/ports.ts";

export type ConnState = "connected" | "not_connected" | "error";
export interface ConnStatus {
  state: ConnState;
  message?: string;
  tenantName?: string;
}

/** The Zoho client as the pages use it (lib/zoho's ZohoClient). */
export interface ZohoConnection extends ZohoPort {
  status(): Promise<ConnStatus>;
  authorizeUrl(state: string, redirectUri: string): string;
  exchangeCode(code: string, redirectUri: string, accountsServer?: string): Promise<void>;
  disconnect(): Promise<void>;
  /** Custom/read-only flags of the Purchase_Orders fields, to check write-back targets. */
  fieldMetadata?(): Promise<Array<{ apiName: string; custom: boolean; readOnly: boolean }>>;
}

/** The Xero client as the pages use it (lib/xero's XeroClient). */
export interface XeroConnection extends XeroPort {
  status(): Promise<ConnStatus>;
  /** With `codeChallenge` (PKCE S256) the code can be spent only with its verifier. */
  authorizeUrl(state: string, redirectUri: string, codeChallenge?: string): string;
  exchangeCode(code: string, redirectUri: string, codeVerifier?: string): Promise<void>;
  connections(): Promise<Array<{ tenantId: string; tenantName: string }>>;
  chooseTenant(tenantId: string): Promise<void>;
  disconnect(): Promise<void>;
  accounts(): Promise<Array<{ code: string; name: string; type: string }>>;
  taxRates(): Promise<Array<{ taxType: string; name: string; rate: number }>>;
  contactsList(): Promise<Array<{ contactID: string; name: string }>>;
}

export interface AppContext {
  config: Config;
  kv: Deno.Kv;
  secrets: Secrets;
  zoho: ZohoConnection;
  xero: XeroConnection;
  sync: SyncEngine;
}

/**
 * What GET /health and sessions read (boot.ts bootCore): config, KV, secrets and the two
 * connections' states, not the API clients, so a cold instance answers /health without loading
 * them. Every AppContext is one.
 */
export interface CoreContext {
  config: Config;
  kv: Deno.Kv;
  secrets: Secrets;
  zoho: Pick<ZohoConnection, "status">;
  xero: Pick<XeroConnection, "status">;
}
