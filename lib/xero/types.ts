/**
 * The Xero shapes the rest of the product uses. camelCase, like xero-node's models (which turn
 * them into Xero's PascalCase on the wire): a PascalCase key here would be silently dropped.
 * No runtime imports, so `lib/mapping` can use these types without loading xero-node.
 */

export type XeroInvoiceStatus =
  | "DRAFT"
  | "SUBMITTED"
  | "AUTHORISED"
  | "PAID"
  | "VOIDED"
  | "DELETED";

export interface XeroLineItem {
  lineItemID?: string;
  description: string;
  quantity?: number;
  /** Up to 4 dp: bills are always sent with unitdp=4. */
  unitAmount?: number;
  itemCode?: string;
  accountCode?: string;
  taxType?: string;
  taxAmount?: number;
  lineAmount?: number;
  tracking?: Array<{ name?: string; option?: string; trackingCategoryID?: string }>;
}

/** A bill (ACCPAY invoice) as we send it. `invoiceID` set = update that bill. */
export interface XeroInvoice {
  type: "ACCPAY";
  invoiceID?: string;
  contact: { contactID: string };
  lineItems: XeroLineItem[];
  /** YYYY-MM-DD */
  date?: string;
  /** YYYY-MM-DD */
  dueDate?: string;
  lineAmountTypes?: "Exclusive" | "Inclusive" | "NoTax";
  /** Shown as "Reference" on a Xero bill; not unique. */
  invoiceNumber?: string;
  reference?: string;
  url?: string;
  currencyCode?: string;
  currencyRate?: number;
  status?: "DRAFT" | "SUBMITTED" | "AUTHORISED";
}

export type BillResult =
  | {
    ok: true;
    invoiceID: string;
    invoiceNumber: string;
    status: XeroInvoiceStatus;
    /** Xero's own figures for the stored bill, to hold against Zoho's Grand_Total. */
    total: number;
    subTotal: number;
    totalTax: number;
  }
  | {
    ok: false;
    /** Xero's validation messages joined with "; ", or what went wrong with the call. */
    message: string;
    retryable: boolean;
    /** Set when the call itself failed (not a per-bill validation error). */
    kind?: XeroErrorKind;
  };

export interface BillSummary {
  invoiceID: string;
  invoiceNumber: string;
  status: XeroInvoiceStatus;
  url?: string;
  total: number;
  contactID?: string;
  currencyCode?: string;
  /** ISO date-time of Xero's last change. */
  updatedAt?: string;
  type?: string;
  amountPaid?: number;
  amountDue?: number;
  /** YYYY-MM-DD, once the bill is fully paid. */
  fullyPaidOn?: string;
}

export type XeroErrorKind =
  | "validation"
  | "auth"
  | "rate_limit"
  | "daily_limit"
  | "server"
  | "network"
  /** A bill refused because its contact is archived in Xero (the vendor can be resolved again). */
  | "contact_archived";

export interface XeroStatus {
  state: "connected" | "not_connected" | "error";
  message?: string;
  tenantName?: string;
  tenantId?: string;
  dayLimitRemaining?: number;
  minLimitRemaining?: number;
  tokenExpiresAt?: string;
}

export interface XeroTenant {
  tenantId: string;
  tenantName: string;
}
