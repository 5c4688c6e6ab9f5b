/** The Xero client and its types (see client.ts). */
export { XERO_SCOPES, XeroClient, type XeroClientOptions } from "./client.ts";
export { XeroError } from "./errors.ts";
export {
  type ContactResolution,
  isArchivedContactRefusal,
  RECHECK_AFTER_MS,
  type ResolveOptions,
} from "./contacts.ts";
export type {
  BillResult,
  BillSummary,
  XeroErrorKind,
  XeroInvoice,
  XeroInvoiceStatus,
  XeroLineItem,
  XeroStatus,
  XeroTenant,
} from "./types.ts";
