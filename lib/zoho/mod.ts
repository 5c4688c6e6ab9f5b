/** The Zoho CRM client: import from here. */
export { ZOHO_SCOPES, ZohoClient } from "./client.ts";
export type { LineItemsByParent } from "./coql.ts";
export type {
  ConnectionStatus,
  ZohoClientOptions,
  ZohoListRecord,
  ZohoUpdateResult,
} from "./client.ts";
export { RECONNECT_MESSAGE, ZohoError } from "./errors.ts";
export { zohoDateTime, zohoSeconds } from "./time.ts";
