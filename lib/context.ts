/** What the HTTP layer is given by the composition root (main.ts, demo.ts, tests). */
import type { Config } from "./config.ts";
import type { Secrets } from "./secrets.ts";

export type ConnState = "connected" | "not_connected" | "error";
export interface ConnStatus {
  state: ConnState;
  message?: string;
  [detail: string]: unknown;
}

export interface AppContext {
  config: Config;
  kv: Deno.Kv;
  secrets: Secrets;
  status: {
    zoho(): Promise<ConnStatus>;
    xero(): Promise<ConnStatus>;
  };
}
