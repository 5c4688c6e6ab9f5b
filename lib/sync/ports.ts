/**
 * What the sync needs of the Zoho and Xero clients, structurally. The real clients (lib/zoho,
 * lib/xero) satisfy these; naming them here keeps lib/sync readable on its own.
 */
import type { XeroInvoice } from "../mapping/mod.ts";

export type ZohoListRecord = { id: string; Modified_Time: string } & Record<string, unknown>;

export interface ZohoPort {
  /** Calls made (retries included); by kind and the credits Zoho charged, where the client counts them. */
  readonly calls: { total: number; byEndpoint?: Record<string, number>; credits?: number };
  listChanged(opts: { since?: string; fields: string[] }): AsyncGenerator<ZohoListRecord[]>;
  getPurchaseOrder(id: string): Promise<Record<string, unknown> | null>;
  /**
   * Line items of many orders in bulk (parent id → lines, GET shape), or null when Zoho does not
   * offer it; absent on a client without bulk reads. Either way the GET is the fallback.
   */
  readLineItems?(parentIds: string[]): Promise<Map<string, Record<string, unknown>[]> | null>;
  updateRecords(
    records: Array<{ id: string } & Record<string, unknown>>,
    opts?: { ifUnmodifiedSince?: string },
  ): Promise<
    Array<{ id: string; ok: boolean; modifiedTime?: string; code?: string; message?: string }>
  >;
  fieldNames(): Promise<string[]>;
  /** Records deleted in Zoho (recycle bin or for good) since a moment, page by page. */
  listDeleted(
    opts: { since?: string },
  ): AsyncGenerator<Array<{ id: string; deletedTime?: string }>>;
  /** The connection's state (KV only): a run paused for a reconnect goes on once "connected". */
  status?(): Promise<{ state: string }>;
}

export type BillResult =
  | {
    ok: true;
    invoiceID: string;
    invoiceNumber: string;
    status: string;
    total: number;
    subTotal?: number;
    totalTax?: number;
  }
  | { ok: false; message: string; retryable: boolean; kind?: string };

export interface XeroBillSummary {
  invoiceID: string;
  invoiceNumber: string;
  status: string;
  url?: string;
  total?: number;
  updatedAt?: string;
  type?: string;
  amountPaid?: number;
  amountDue?: number;
  /** YYYY-MM-DD */
  fullyPaidOn?: string;
}

export interface XeroPort {
  /** Calls made; and the bytes Xero sent back (data egress, billed), where the client counts them. */
  readonly calls: { total: number; egressBytes?: number };
  /** Why vendors were left out of the last resolveContacts result (vendor id → Xero's words). */
  readonly contactFailures?: Map<string, string>;
  /** The connection's state: a run paused for a reconnect goes on once "connected". */
  status?(): Promise<{ state: string }>;
  tenant(): Promise<{ tenantId: string; tenantName: string }>;
  /** Vendor id → ContactID, with Xero's reasons for vendors left out and warnings per vendor. */
  resolveContacts(
    vendors: Array<{ zohoVendorId: string; name: string }>,
    opts?: { recheck?: boolean; lookupOnly?: boolean },
  ): Promise<
    Map<string, string> & { failures?: Map<string, string>; warnings?: Map<string, string> }
  >;
  /** The contacts KV already knows (admin links included), with no Xero call: for previews. */
  cachedContacts(zohoVendorIds: string[]): Promise<Map<string, string>>;
  /** The organisation's active tax rates (cached a minute by the client). */
  taxRates(): Promise<Array<{ taxType: string; name: string; rate: number }>>;
  upsertBills(
    items: Array<{ key: string; invoice: XeroInvoice }>,
  ): Promise<Map<string, BillResult>>;
  getBills(invoiceIDs: string[]): Promise<Map<string, XeroBillSummary>>;
  findBills(invoiceNumbers: string[]): Promise<XeroBillSummary[]>;
  listBillsSince(modifiedSince?: Date): AsyncGenerator<XeroBillSummary[]>;
  /** ACCPAY bills changed since a moment, status and amounts only, 1,000 a page. */
  listBillChanges(modifiedSince?: Date): AsyncGenerator<XeroBillSummary[]>;
  /** Status and amounts of the named bills, without lines. */
  billStates(invoiceIDs: string[]): Promise<Map<string, XeroBillSummary>>;
  /** Deletes or voids bills, each with Xero's answer (keyed by InvoiceID). */
  setBillStatuses(
    changes: Array<{ invoiceID: string; status: "DELETED" | "VOIDED" }>,
  ): Promise<Map<string, BillResult>>;
}
