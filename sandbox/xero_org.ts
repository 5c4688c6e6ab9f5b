/**
 * One simulated Xero organisation: its chart of accounts, tax rates, currencies, contacts and
 * invoices, with Xero's validation, totals and status rules (REFERENCE.md, Xero section). Pure
 * state, no HTTP: `sandbox/xero.ts` puts it on the wire. Objects are kept in Xero's PascalCase JSON.
 */
import { compileWhere } from "./xero_where.ts";

export interface SimAccountSeed {
  code: string;
  name: string;
  type: string;
  status?: "ACTIVE" | "ARCHIVED";
  taxType?: string;
  /** Accounts Xero uses itself (e.g. Accounts Payable) cannot be put on a document. */
  systemAccount?: string;
}
export interface SimTaxRateSeed {
  taxType: string;
  name: string;
  effectiveRate: number;
  status?: "ACTIVE" | "DELETED" | "ARCHIVED";
}
export interface SimContactSeed {
  name: string;
  contactNumber?: string;
  contactID?: string;
  status?: "ACTIVE" | "ARCHIVED";
  emailAddress?: string;
}

export interface XeroSimContact {
  ContactID: string;
  ContactNumber?: string;
  ContactStatus: "ACTIVE" | "ARCHIVED";
  Name: string;
  EmailAddress?: string;
  IsSupplier: boolean;
  IsCustomer: boolean;
  UpdatedDateUTC: string;
  Addresses: unknown[];
  Phones: unknown[];
  ContactGroups: unknown[];
  ContactPersons: unknown[];
  HasValidationErrors: boolean;
}

export interface XeroSimLineItem {
  LineItemID: string;
  Description: string;
  Quantity: number;
  UnitAmount: number;
  ItemCode?: string;
  AccountCode?: string;
  TaxType: string;
  TaxAmount: number;
  LineAmount: number;
  Tracking: unknown[];
}

export type InvoiceStatus = "DRAFT" | "SUBMITTED" | "AUTHORISED" | "PAID" | "VOIDED" | "DELETED";

export interface XeroSimInvoice {
  Type: "ACCPAY" | "ACCREC";
  InvoiceID: string;
  InvoiceNumber: string;
  Reference: string;
  Url?: string;
  Contact: { ContactID: string; Name: string; ContactNumber?: string };
  Date: string;
  DateString: string;
  DueDate?: string;
  DueDateString?: string;
  Status: InvoiceStatus;
  LineAmountTypes: "Exclusive" | "Inclusive" | "NoTax";
  LineItems: XeroSimLineItem[];
  SubTotal: number;
  TotalTax: number;
  Total: number;
  AmountDue: number;
  AmountPaid: number;
  AmountCredited: number;
  CurrencyCode: string;
  CurrencyRate: number;
  UpdatedDateUTC: string;
  FullyPaidOnDate?: string;
  HasErrors: boolean;
  HasAttachments: boolean;
  IsDiscounted: boolean;
  SentToContact: boolean;
  Payments: unknown[];
  CreditNotes: unknown[];
  Prepayments: unknown[];
  Overpayments: unknown[];
}

/** Xero's exact texts where REFERENCE.md or public threads give them. */
export const MESSAGES = {
  notEditable: "Invoice not of valid status for modification",
  paid: "This document cannot be edited as it has a payment or credit note allocated to it.",
  description: "The description field is mandatory for each line item.",
  quantity: (q: number) =>
    `The quantity value '${q.toFixed(4)}' is invalid. Quantity must not be less than zero.`,
  account: (code: string) => `Account code '${code}' is not a valid code for this document.`,
  taxType: (t: string) =>
    `The TaxType code ${t} does not exist or cannot be used for this type of transaction.`,
  currency: (c: string) => `Organisation is not subscribed to currency ${c}`,
  contactMissing: "A Contact must be specified for this type of transaction",
  contactNotFound: (id: string) => `The contact with ContactID ${id} could not be found.`,
  contactName: (n: string) =>
    `The contact name ${n} is already assigned to another contact. The contact name must be unique across all active contacts.`,
  contactNumberTaken: "Another contact has this contact number. Please enter a unique number.",
  contactNumberLength: "The contact number must not be longer than 50 characters.",
  contactNameMissing: "The contact name must be specified.",
  // The spec gives Name maxLength 255; the wording is the simulator's.
  contactNameLength: "The contact name must not be longer than 255 characters.",
  // As Xero answers a bill for an archived (or merged-away) contact, quoted by integrators' help
  // pages (Re-Leased, AgriDigital); REFERENCE.md and the spec do not give it.
  contactArchived:
    "The contact with the specified contact details has been archived. The contact must be un-archived before creating new invoices or credit notes.",
  notFound: "The document with the supplied id was not found for this endpoint.",
  discount: "Discounts are not supported on bills (ACCPAY).",
  invoiceNumberLength: "The InvoiceNumber must not be longer than 255 characters.",
  invoiceNumberUnique: "Invoice # must be unique.",
  type: "Invoice Type must be ACCPAY or ACCREC.",
  date: (field: string) => `${field} is not a valid date.`,
  createStatus: (s: string) => `Invoice not of valid status for creation: ${s}.`,
  /** Xero's text for a TaxAmount it will not take (seen on bank transactions, xero-node#768). */
  taxAmount: (given: number, taxType: string, should: number) =>
    `Tax amount ${given.toFixed(2)} is incorrect for ${taxType} tax type, should be ${
      should.toFixed(2)
    }`,
} as const;

export const DEFAULT_ACCOUNTS: SimAccountSeed[] = [
  { code: "090", name: "Business Bank Account", type: "BANK", taxType: "BASEXCLUDED" },
  { code: "200", name: "Sales", type: "REVENUE", taxType: "OUTPUT" },
  { code: "300", name: "Purchases", type: "EXPENSE", taxType: "INPUT" },
  { code: "310", name: "Cost of Goods Sold", type: "DIRECTCOSTS", taxType: "INPUT" },
  { code: "400", name: "Advertising", type: "EXPENSE", taxType: "INPUT" },
  { code: "404", name: "Bank Fees", type: "EXPENSE", taxType: "BASEXCLUDED" },
  { code: "429", name: "General Expenses", type: "EXPENSE", taxType: "INPUT" },
  { code: "453", name: "Office Expenses", type: "EXPENSE", taxType: "INPUT" },
  { code: "461", name: "Printing & Stationery", type: "EXPENSE", taxType: "INPUT" },
  { code: "493", name: "Travel - National", type: "EXPENSE", taxType: "INPUT" },
  { code: "630", name: "Inventory", type: "INVENTORY", taxType: "INPUT" },
  { code: "499", name: "Old Expenses", type: "EXPENSE", taxType: "INPUT", status: "ARCHIVED" },
  {
    code: "800",
    name: "Accounts Payable",
    type: "CURRLIAB",
    taxType: "BASEXCLUDED",
    systemAccount: "CREDITORS",
  },
];

export const DEFAULT_TAX_RATES: SimTaxRateSeed[] = [
  { taxType: "INPUT", name: "GST on Expenses", effectiveRate: 10 },
  { taxType: "OUTPUT", name: "GST on Income", effectiveRate: 10 },
  { taxType: "NONE", name: "No GST", effectiveRate: 0 },
  { taxType: "EXEMPTEXPENSES", name: "GST Free Expenses", effectiveRate: 0 },
  { taxType: "BASEXCLUDED", name: "BAS Excluded", effectiveRate: 0 },
  { taxType: "GSTONIMPORTS", name: "GST on Imports", effectiveRate: 0 },
  { taxType: "INPUTTAXED", name: "Input Taxed", effectiveRate: 0 },
];

export const DEFAULT_CURRENCIES = ["AUD", "USD", "EUR", "GBP", "NZD"];

export const DEFAULT_CONTACTS: SimContactSeed[] = [
  { name: "ABC Furniture" },
  { name: "Bayside Wholesale" },
  { name: "PowerDirect" },
];

const CURRENCY_NAMES: Record<string, string> = {
  AUD: "Australian Dollar",
  USD: "United States Dollar",
  EUR: "Euro",
  GBP: "British Pound",
  NZD: "New Zealand Dollar",
  CAD: "Canadian Dollar",
  INR: "Indian Rupee",
};

export const msDate = (ms: number) => `/Date(${ms}+0000)/`;

/** Rounds half away from zero at `dp` places without binary-float surprises (1.005 → 1.01). */
export function roundTo(x: number, dp: number): number {
  const sign = x < 0 ? -1 : 1;
  return sign * Number(Math.round(Number(`${Math.abs(x)}e${dp}`)) + `e-${dp}`);
}

// Money as Xero does it: exact decimals, rounded half away from zero (4.10 at 15 % is 0.62 tax;
// binary floats make it 0.6149999… and 0.61).
// Inputs here are already rounded to `dp` places, so the scaled float is within a hair of its integer.
const units = (x: number, dp: number): bigint =>
  Number.isFinite(x) ? BigInt(Math.round(x * 10 ** dp)) : 0n;
function divRound(n: bigint, d: bigint): bigint {
  const q = ((n < 0n ? -n : n) + d / 2n) / d;
  return n < 0n ? -q : q;
}
const fromCents = (c: bigint) => Number(c) / 100;

/** Case-insensitive field read, as Xero's JSON binding is. */
export function field(obj: unknown, name: string): unknown {
  if (obj === null || typeof obj !== "object") return undefined;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

const text = (v: unknown): string | undefined =>
  typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v)
    ? v
    : typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))
    ? Number(v)
    : undefined;

/** Accepts `YYYY-MM-DD`, an ISO date-time, or Xero's `/Date(ms)/`; returns `YYYY-MM-DD`. */
function parseDate(v: unknown): string | null | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") return null;
  const ms = /^\/Date\((-?\d+)/.exec(v);
  if (ms) return new Date(Number(ms[1])).toISOString().slice(0, 10);
  const m = /^(\d{4})-(\d{2})-(\d{2})(T[\d:.]+Z?)?$/.exec(v);
  if (!m) return null;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`);
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== `${m[1]}-${m[2]}-${m[3]}`
    ? null
    : `${m[1]}-${m[2]}-${m[3]}`;
}

const dateMs = (d: string) => Date.parse(`${d}T00:00:00Z`);

/**
 * How names are compared for uniqueness and matching: Unicode NFC, trimmed, any case. Xero's docs
 * only say names are unique among active contacts; an NFD "Café" is the same name to a person.
 */
export const nameKey = (name: string) => name.normalize("NFC").trim().toLowerCase();

export interface ListQuery {
  where?: string;
  ids?: string[];
  invoiceNumbers?: string[];
  contactIds?: string[];
  statuses?: string[];
  page?: number;
  pageSize?: number;
  includeArchived?: boolean;
  summaryOnly?: boolean;
  searchTerm?: string;
  order?: string;
  modifiedSince?: number;
  unitdp?: number;
}

export interface Pagination {
  page: number;
  pageSize: number;
  pageCount: number;
  itemCount: number;
}

export interface ElementResult {
  ok: boolean;
  json: Record<string, unknown>;
}

interface StoredInvoice {
  inv: XeroSimInvoice;
  date: string;
  due?: string;
  updated: number;
}

interface StoredContact {
  c: XeroSimContact;
  updated: number;
}

export interface StoredResponse {
  status: number;
  body: string;
}

export class SimOrg {
  readonly accounts: Array<Required<Omit<SimAccountSeed, "systemAccount">> & SimAccountSeed>;
  readonly taxRates: Array<Required<SimTaxRateSeed>>;
  readonly currencies: string[];
  readonly idempotency = new Map<string, StoredResponse>();
  private readonly contacts = new Map<string, StoredContact>();
  private readonly invoices = new Map<string, StoredInvoice>();
  private invoiceSeq = 0;
  connected = true;
  /** Told of every bill created or changed (sandbox/xero.ts sends Xero's webhooks from it). */
  onInvoiceChange?: (invoiceId: string, type: "CREATE" | "UPDATE") => void;
  /** null: a line's TaxAmount is taken as given (Xero's documented behaviour); see buildLine. */
  readonly taxAmountTolerance: number | null;

  constructor(
    readonly tenantId: string,
    readonly tenantName: string,
    seed: {
      accounts: SimAccountSeed[];
      taxRates: SimTaxRateSeed[];
      currencies: string[];
      contacts: SimContactSeed[];
      taxAmountTolerance?: number | null;
    },
  ) {
    this.taxAmountTolerance = seed.taxAmountTolerance ?? null;
    this.accounts = seed.accounts.map((a) => ({
      status: "ACTIVE",
      taxType: "NONE",
      ...a,
      systemAccount: a.systemAccount ?? "",
    }));
    this.taxRates = seed.taxRates.map((t) => ({ status: "ACTIVE", ...t }));
    this.currencies = [...seed.currencies];
    for (const c of seed.contacts) {
      const now = this.tick();
      const contact: XeroSimContact = {
        ContactID: c.contactID ?? crypto.randomUUID(),
        ...(c.contactNumber ? { ContactNumber: c.contactNumber } : {}),
        ContactStatus: c.status ?? "ACTIVE",
        Name: c.name,
        ...(c.emailAddress ? { EmailAddress: c.emailAddress } : {}),
        IsSupplier: false,
        IsCustomer: false,
        UpdatedDateUTC: msDate(now),
        Addresses: [],
        Phones: [],
        ContactGroups: [],
        ContactPersons: [],
        HasValidationErrors: false,
      };
      this.contacts.set(contact.ContactID, { c: contact, updated: now });
    }
  }

  private tick(): number {
    return Date.now();
  }

  baseCurrency(): string {
    return this.currencies[0] ?? "AUD";
  }

  // ---- reference data -------------------------------------------------------------------------

  accountsJson(): Record<string, unknown>[] {
    return this.accounts.map((a) => ({
      AccountID: stableId(`account:${this.tenantId}:${a.code}`),
      Code: a.code,
      Name: a.name,
      Type: a.type,
      TaxType: a.taxType,
      Status: a.status,
      Class: accountClass(a.type),
      EnablePaymentsToAccount: false,
      ShowInExpenseClaims: a.type === "EXPENSE",
      ...(a.systemAccount ? { SystemAccount: a.systemAccount } : {}),
      UpdatedDateUTC: msDate(0),
    }));
  }

  taxRatesJson(): Record<string, unknown>[] {
    return this.taxRates.map((t) => ({
      Name: t.name,
      TaxType: t.taxType,
      ReportTaxType: t.taxType,
      CanApplyToAssets: true,
      CanApplyToEquity: true,
      CanApplyToExpenses: true,
      CanApplyToLiabilities: true,
      CanApplyToRevenue: true,
      DisplayTaxRate: t.effectiveRate,
      EffectiveRate: t.effectiveRate,
      Status: t.status,
      TaxComponents: [
        { Name: t.name, Rate: t.effectiveRate, IsCompound: false, IsNonRecoverable: false },
      ],
    }));
  }

  currenciesJson(): Record<string, unknown>[] {
    return this.currencies.map((c) => ({ Code: c, Description: CURRENCY_NAMES[c] ?? c }));
  }

  // ---- contacts -------------------------------------------------------------------------------

  allContacts(): XeroSimContact[] {
    return [...this.contacts.values()].map((s) => structuredClone(s.c));
  }

  getContact(idOrNumber: string): XeroSimContact | undefined {
    const byId = this.contacts.get(idOrNumber.toLowerCase()) ?? this.contacts.get(idOrNumber);
    if (byId) return structuredClone(byId.c);
    const hit = [...this.contacts.values()].find((s) =>
      s.c.ContactNumber !== undefined && s.c.ContactNumber === idOrNumber
    );
    return hit ? structuredClone(hit.c) : undefined;
  }

  listContacts(q: ListQuery): { items: Record<string, unknown>[]; pagination?: Pagination } {
    const where = q.where ? compileWhere(q.where) : undefined;
    const ids = q.ids?.map((i) => i.toLowerCase());
    const term = q.searchTerm === undefined ? undefined : nameKey(q.searchTerm);
    let rows = [...this.contacts.values()].filter((s) =>
      (q.includeArchived || s.c.ContactStatus === "ACTIVE") &&
      (!ids || ids.includes(s.c.ContactID.toLowerCase())) &&
      (!q.modifiedSince || s.updated >= q.modifiedSince) &&
      (!term ||
        [s.c.Name, s.c.ContactNumber, s.c.EmailAddress].some((f) =>
          f !== undefined && nameKey(f).includes(term)
        )) &&
      (!where || where({ ...s.c, UpdatedDateUTC: new Date(s.updated) }))
    );
    rows = orderRows(rows, q.order, (s, f) => field({ ...s.c, UpdatedDateUTC: s.updated }, f));
    const json = rows.map((s): Record<string, unknown> =>
      q.summaryOnly ? summaryContact(s.c) : { ...structuredClone(s.c) }
    );
    return paginate(json, q);
  }

  /** PUT (create) or POST (create or update by ContactID) of a batch of contacts. */
  saveContacts(elements: unknown[], mode: "put" | "post"): ElementResult[] {
    return elements.map((el) => {
      const errors: string[] = [];
      const id = text(field(el, "ContactID"));
      const existing = id ? this.contacts.get(id) : undefined;
      if (id && !existing) {
        return fail(contactEcho(el), [MESSAGES.contactNotFound(id)], "contact");
      }
      // PUT is Xero's create, but an id it already holds is updated as POST would.
      void mode;
      const name = (text(field(el, "Name")) ?? existing?.c.Name ?? "").trim();
      const number = text(field(el, "ContactNumber")) ?? existing?.c.ContactNumber;
      const status = (text(field(el, "ContactStatus")) ?? existing?.c.ContactStatus ?? "ACTIVE")
        .toUpperCase() as XeroSimContact["ContactStatus"];
      if (!name) errors.push(MESSAGES.contactNameMissing);
      if (name.length > 255) errors.push(MESSAGES.contactNameLength);
      if (number !== undefined && number.length > 50) errors.push(MESSAGES.contactNumberLength);
      const others = [...this.contacts.values()].filter((s) =>
        s.c.ContactID !== existing?.c.ContactID && s.c.ContactStatus === "ACTIVE"
      );
      if (
        name && status === "ACTIVE" &&
        others.some((s) => nameKey(s.c.Name) === nameKey(name))
      ) errors.push(MESSAGES.contactName(name));
      if (number && others.some((s) => s.c.ContactNumber === number)) {
        errors.push(MESSAGES.contactNumberTaken);
      }
      if (errors.length) return fail(contactEcho(el), errors, "contact");
      const now = this.tick();
      const email = text(field(el, "EmailAddress")) ?? existing?.c.EmailAddress;
      const contact: XeroSimContact = {
        ...(existing?.c ?? {
          ContactID: crypto.randomUUID(),
          IsSupplier: false,
          IsCustomer: false,
          Addresses: [],
          Phones: [],
          ContactGroups: [],
          ContactPersons: [],
          HasValidationErrors: false,
        }),
        Name: name,
        ContactStatus: status,
        UpdatedDateUTC: msDate(now),
      } as XeroSimContact;
      if (number !== undefined && number !== "") contact.ContactNumber = number;
      if (email) contact.EmailAddress = email;
      this.contacts.set(contact.ContactID, { c: contact, updated: now });
      return { ok: true, json: { ...structuredClone(contact), StatusAttributeString: "OK" } };
    });
  }

  /** An accountant archiving (or restoring) a contact in Xero. */
  setContactStatus(contactId: string, status: XeroSimContact["ContactStatus"]) {
    const s = this.contacts.get(contactId.toLowerCase()) ?? this.contacts.get(contactId);
    if (!s) throw new Error(`no contact ${contactId}`);
    const now = this.tick();
    s.c.ContactStatus = status;
    s.c.UpdatedDateUTC = msDate(now);
    s.updated = now;
  }

  // ---- invoices -------------------------------------------------------------------------------

  allInvoices(): XeroSimInvoice[] {
    return [...this.invoices.values()].map((s) => structuredClone(s.inv));
  }

  getInvoice(id: string, unitdp?: number): Record<string, unknown> | undefined {
    const s = this.invoices.get(id.toLowerCase()) ?? this.invoices.get(id);
    return s ? invoiceJson(s.inv, unitdp, false) : undefined;
  }

  listInvoices(q: ListQuery): { items: Record<string, unknown>[]; pagination?: Pagination } {
    const where = q.where ? compileWhere(q.where) : undefined;
    const ids = q.ids?.map((i) => i.toLowerCase());
    const numbers = q.invoiceNumbers?.map((n) => n.toLowerCase());
    const contactIds = q.contactIds?.map((i) => i.toLowerCase());
    const statuses = q.statuses?.map((s) => s.toUpperCase());
    const term = q.searchTerm?.toLowerCase();
    let rows = [...this.invoices.values()].filter((s) =>
      (!ids || ids.includes(s.inv.InvoiceID.toLowerCase())) &&
      (!numbers || numbers.includes(s.inv.InvoiceNumber.toLowerCase())) &&
      (!contactIds || contactIds.includes(s.inv.Contact.ContactID.toLowerCase())) &&
      (!statuses || statuses.includes(s.inv.Status)) &&
      (!q.modifiedSince || s.updated >= q.modifiedSince) &&
      (!term ||
        [s.inv.InvoiceNumber, s.inv.Reference].some((f) => f.toLowerCase().includes(term))) &&
      (!where || where(invoiceView(s)))
    );
    rows = orderRows(rows, q.order, (s, f) => field(invoiceView(s), f));
    return paginate(rows.map((s) => invoiceJson(s.inv, q.unitdp, q.summaryOnly ?? false)), q);
  }

  /** A user acting in Xero: approving, paying, voiding or deleting a bill. */
  setInvoiceStatus(id: string, status: InvoiceStatus): void {
    const s = this.invoices.get(id);
    if (!s) throw new Error(`no invoice ${id}`);
    const now = this.tick();
    s.inv.Status = status;
    if (status === "PAID") {
      s.inv.AmountPaid = s.inv.Total;
      s.inv.AmountDue = 0;
      s.inv.FullyPaidOnDate = msDate(now);
    }
    if (status === "VOIDED" || status === "DELETED") s.inv.AmountDue = 0;
    s.inv.UpdatedDateUTC = msDate(now);
    s.updated = now;
    this.onInvoiceChange?.(s.inv.InvoiceID, "UPDATE");
  }

  /**
   * PUT (create), POST (create or update by InvoiceID) or POST /Invoices/{id}. Each element is
   * validated on its own: one bad bill never stops the others in its batch.
   */
  saveInvoices(
    elements: unknown[],
    opts: { mode: "put" | "post"; unitdp: number; pathId?: string },
  ): ElementResult[] {
    return elements.map((el) => this.saveInvoice(el, opts));
  }

  private saveInvoice(
    el: unknown,
    opts: { mode: "put" | "post"; unitdp: number; pathId?: string },
  ): ElementResult {
    const id = opts.pathId ?? text(field(el, "InvoiceID"));
    let existing = id ? this.invoices.get(id.toLowerCase()) ?? this.invoices.get(id) : undefined;
    const typeIn = text(field(el, "Type"))?.toUpperCase();
    const numberIn = text(field(el, "InvoiceNumber"));
    // Xero matches ACCREC invoices by number on POST; bill numbers are not unique, so never ACCPAY.
    if (!existing && !id && opts.mode === "post" && typeIn === "ACCREC" && numberIn) {
      existing = [...this.invoices.values()].find((s) =>
        s.inv.Type === "ACCREC" && s.inv.InvoiceNumber === numberIn
      );
    }
    if (id && !existing) return fail(invoiceEcho(el, id), [MESSAGES.notFound], "invoice");
    if (existing) return this.updateInvoice(existing, el, opts.unitdp);
    return this.createInvoice(el, opts.unitdp);
  }

  private createInvoice(el: unknown, unitdp: number): ElementResult {
    const status = (text(field(el, "Status")) ?? "DRAFT").toUpperCase();
    const built = this.build(el, undefined, unitdp);
    if (!["DRAFT", "SUBMITTED", "AUTHORISED"].includes(status)) {
      built.errors.push(MESSAGES.createStatus(status));
    }
    if (built.errors.length) return fail(invoiceEcho(el), built.errors, "invoice");
    const now = this.tick();
    const inv = built.inv!;
    inv.InvoiceID = crypto.randomUUID();
    inv.Status = status as InvoiceStatus;
    if (inv.Type === "ACCREC" && !inv.InvoiceNumber) {
      inv.InvoiceNumber = `INV-${String(++this.invoiceSeq).padStart(4, "0")}`;
    }
    inv.UpdatedDateUTC = msDate(now);
    this.commitContact(built.contact!, inv.Type);
    this.invoices.set(inv.InvoiceID, { inv, date: built.date!, due: built.due, updated: now });
    this.onInvoiceChange?.(inv.InvoiceID, "CREATE");
    return { ok: true, json: { ...invoiceJson(inv, unitdp, false), StatusAttributeString: "OK" } };
  }

  private updateInvoice(s: StoredInvoice, el: unknown, unitdp: number): ElementResult {
    const requested = text(field(el, "Status"))?.toUpperCase();
    const current = s.inv.Status;
    const echo = () => invoiceEcho(el, s.inv.InvoiceID);
    if (current === "PAID") return fail(echo(), [MESSAGES.paid], "invoice");
    if (current === "VOIDED" || current === "DELETED") {
      return fail(echo(), [MESSAGES.notEditable], "invoice");
    }
    if (current === "AUTHORISED") {
      if (requested !== "VOIDED" || s.inv.AmountPaid > 0) {
        return fail(echo(), [MESSAGES.notEditable], "invoice");
      }
      this.setInvoiceStatus(s.inv.InvoiceID, "VOIDED");
      return ok(s.inv, unitdp);
    }
    // DRAFT or SUBMITTED.
    if (requested === "DELETED") {
      this.setInvoiceStatus(s.inv.InvoiceID, "DELETED");
      return ok(s.inv, unitdp);
    }
    if (requested && !["DRAFT", "SUBMITTED", "AUTHORISED"].includes(requested)) {
      return fail(echo(), [MESSAGES.notEditable], "invoice");
    }
    const built = this.build(el, s, unitdp);
    if (built.errors.length) return fail(echo(), built.errors, "invoice");
    const now = this.tick();
    const inv = built.inv!;
    inv.InvoiceID = s.inv.InvoiceID;
    inv.Status = (requested ?? current) as InvoiceStatus;
    inv.UpdatedDateUTC = msDate(now);
    this.commitContact(built.contact!, inv.Type);
    Object.assign(s, { inv, date: built.date!, due: built.due, updated: now });
    this.onInvoiceChange?.(inv.InvoiceID, "UPDATE");
    return ok(inv, unitdp);
  }

  /** Validates an element (merged over an existing invoice) and computes lines and totals. */
  private build(el: unknown, prev: StoredInvoice | undefined, unitdp: number) {
    const errors: string[] = [];
    const p = prev?.inv;
    const type = (text(field(el, "Type"))?.toUpperCase() ?? p?.Type) as XeroSimInvoice["Type"];
    if (type !== "ACCPAY" && type !== "ACCREC") errors.push(MESSAGES.type);

    const contact = this.resolveInvoiceContact(field(el, "Contact"), p?.Contact, errors);

    const dateIn = parseDate(field(el, "Date"));
    const dueIn = parseDate(field(el, "DueDate"));
    if (dateIn === null) errors.push(MESSAGES.date("Date"));
    if (dueIn === null) errors.push(MESSAGES.date("DueDate"));
    const date = dateIn ?? prev?.date ?? new Date().toISOString().slice(0, 10);
    const due = dueIn ?? prev?.due;

    const currency = (text(field(el, "CurrencyCode")) ?? p?.CurrencyCode ?? this.baseCurrency())
      .toUpperCase();
    if (!this.currencies.includes(currency)) errors.push(MESSAGES.currency(currency));

    const number = text(field(el, "InvoiceNumber")) ?? p?.InvoiceNumber ?? "";
    if (number.length > 255) errors.push(MESSAGES.invoiceNumberLength);
    if (
      type === "ACCREC" && number &&
      [...this.invoices.values()].some((s) =>
        s.inv.Type === "ACCREC" && s.inv.InvoiceNumber === number &&
        s.inv.InvoiceID !== p?.InvoiceID
      )
    ) errors.push(MESSAGES.invoiceNumberUnique);

    const amountTypesIn = text(field(el, "LineAmountTypes"));
    const amountTypes =
      (["Exclusive", "Inclusive", "NoTax"].find((t) =>
        t.toLowerCase() === amountTypesIn?.toLowerCase()
      ) ?? p?.LineAmountTypes ?? "Exclusive") as XeroSimInvoice["LineAmountTypes"];

    const linesIn = field(el, "LineItems");
    const lines = Array.isArray(linesIn)
      ? linesIn.map((l) => this.buildLine(l, type, amountTypes, unitdp, p?.LineItems, errors))
      : p?.LineItems ?? [];

    const lineTotal = lines.reduce((a, l) => a + units(l.LineAmount, 2), 0n);
    const taxCents = lines.reduce((a, l) => a + units(l.TaxAmount, 2), 0n);
    const subCents = amountTypes === "Inclusive" ? lineTotal - taxCents : lineTotal;
    const totalTax = fromCents(taxCents);
    const subTotal = fromCents(subCents);
    const total = fromCents(subCents + taxCents);
    if (errors.length) return { errors };

    const url = text(field(el, "Url")) ?? p?.Url;
    const inv: XeroSimInvoice = {
      Type: type,
      InvoiceID: "",
      InvoiceNumber: number,
      Reference: text(field(el, "Reference")) ?? p?.Reference ?? "",
      ...(url ? { Url: url } : {}),
      Contact: {
        ContactID: contact!.ContactID,
        Name: contact!.Name,
        ...(contact!.ContactNumber ? { ContactNumber: contact!.ContactNumber } : {}),
      },
      Date: msDate(dateMs(date)),
      DateString: `${date}T00:00:00`,
      ...(due ? { DueDate: msDate(dateMs(due)), DueDateString: `${due}T00:00:00` } : {}),
      Status: "DRAFT",
      LineAmountTypes: amountTypes,
      LineItems: lines,
      SubTotal: subTotal,
      TotalTax: totalTax,
      Total: total,
      AmountDue: total,
      AmountPaid: 0,
      AmountCredited: 0,
      CurrencyCode: currency,
      CurrencyRate: num(field(el, "CurrencyRate")) ?? p?.CurrencyRate ?? 1,
      UpdatedDateUTC: "",
      HasErrors: false,
      HasAttachments: false,
      IsDiscounted: false,
      SentToContact: false,
      Payments: [],
      CreditNotes: [],
      Prepayments: [],
      Overpayments: [],
    };
    return { errors, inv, contact, date, due };
  }

  private buildLine(
    l: unknown,
    type: string,
    amountTypes: XeroSimInvoice["LineAmountTypes"],
    unitdp: number,
    prevLines: XeroSimLineItem[] | undefined,
    errors: string[],
  ): XeroSimLineItem {
    const description = text(field(l, "Description")) ?? "";
    if (!description.trim()) errors.push(MESSAGES.description);
    const quantity = roundTo(num(field(l, "Quantity")) ?? 1, 4);
    if (quantity < 0) errors.push(MESSAGES.quantity(quantity));
    const lineAmountIn = num(field(l, "LineAmount"));
    const unitIn = num(field(l, "UnitAmount")) ??
      (lineAmountIn !== undefined && quantity ? lineAmountIn / quantity : 0);
    const unitAmount = roundTo(unitIn, unitdp === 4 ? 4 : 2);
    if (
      type === "ACCPAY" &&
      (num(field(l, "DiscountRate")) || num(field(l, "DiscountAmount")))
    ) errors.push(MESSAGES.discount);

    const accountCode = text(field(l, "AccountCode"));
    const account = accountCode !== undefined
      ? this.accounts.find((a) => a.code === accountCode)
      : undefined;
    if (
      accountCode !== undefined &&
      (!account || account.status !== "ACTIVE" || account.systemAccount ||
        account.type === "BANK")
    ) errors.push(MESSAGES.account(accountCode));

    let taxType = text(field(l, "TaxType")) ?? account?.taxType ?? "NONE";
    if (amountTypes === "NoTax" && !text(field(l, "TaxType"))) taxType = "NONE";
    const rate = this.taxRates.find((t) => t.taxType === taxType && t.status === "ACTIVE");
    if (text(field(l, "TaxType")) !== undefined && !rate) errors.push(MESSAGES.taxType(taxType));

    const lineCents = divRound(units(quantity, 4) * units(unitAmount, 4), 10n ** 6n);
    const lineAmount = fromCents(lineCents);
    const r = units(amountTypes === "NoTax" ? 0 : rate?.effectiveRate ?? 0, 6);
    // Tax per line, to the cent: amount × r / 100 (exclusive) or amount × r / (100 + r) (inclusive).
    const computed = fromCents(
      amountTypes === "Inclusive"
        ? divRound(lineCents * r, 100n * 10n ** 6n + r)
        : divRound(lineCents * r, 100n * 10n ** 6n),
    );
    // A given TaxAmount overrides Xero's ("can be overriden if the calculated TaxAmount is not
    // correct"); Xero documents no limit for invoices. `taxAmountTolerance` makes this org refuse
    // one further than that from its own, so tests can prove how far a client moves tax.
    const taxIn = num(field(l, "TaxAmount"));
    let taxAmount = computed;
    if (amountTypes !== "NoTax" && taxIn !== undefined) {
      taxAmount = roundTo(taxIn, 2);
      const limit = this.taxAmountTolerance;
      const off = units(taxAmount, 2) - units(computed, 2);
      if (limit !== null && (off < 0n ? -off : off) > units(limit, 2)) {
        errors.push(MESSAGES.taxAmount(taxAmount, taxType, computed));
      }
    }

    const idIn = text(field(l, "LineItemID"));
    const keepId = idIn && prevLines?.some((p) => p.LineItemID === idIn);
    const itemCode = text(field(l, "ItemCode"));
    return {
      LineItemID: keepId ? idIn! : crypto.randomUUID(),
      Description: description,
      Quantity: quantity,
      UnitAmount: unitAmount,
      ...(itemCode ? { ItemCode: itemCode } : {}),
      ...(accountCode !== undefined ? { AccountCode: accountCode } : {}),
      TaxType: taxType,
      TaxAmount: taxAmount,
      LineAmount: lineAmount,
      Tracking: Array.isArray(field(l, "Tracking")) ? field(l, "Tracking") as unknown[] : [],
    };
  }

  /** ContactID must exist; otherwise ContactNumber, then Name, find one or make a new contact. */
  private resolveInvoiceContact(
    c: unknown,
    prev: XeroSimInvoice["Contact"] | undefined,
    errors: string[],
  ): XeroSimContact | undefined {
    if (c === undefined && prev) return this.contacts.get(prev.ContactID)?.c;
    const id = text(field(c, "ContactID"));
    if (id) {
      const hit = this.contacts.get(id.toLowerCase()) ?? this.contacts.get(id);
      if (!hit) errors.push(MESSAGES.contactNotFound(id));
      else if (hit.c.ContactStatus === "ARCHIVED") errors.push(MESSAGES.contactArchived);
      return hit?.c;
    }
    const number = text(field(c, "ContactNumber"));
    const name = text(field(c, "Name"))?.trim();
    const active = [...this.contacts.values()].filter((s) => s.c.ContactStatus === "ACTIVE");
    const hit = (number && active.find((s) => s.c.ContactNumber === number)) ||
      (name && active.find((s) => nameKey(s.c.Name) === nameKey(name)));
    if (hit) return hit.c;
    if (!name) {
      errors.push(MESSAGES.contactMissing);
      return undefined;
    }
    // A new contact, stored only if the invoice itself is valid (see commitContact).
    return {
      ContactID: crypto.randomUUID(),
      ...(number ? { ContactNumber: number } : {}),
      ContactStatus: "ACTIVE",
      Name: name,
      IsSupplier: false,
      IsCustomer: false,
      UpdatedDateUTC: "",
      Addresses: [],
      Phones: [],
      ContactGroups: [],
      ContactPersons: [],
      HasValidationErrors: false,
    };
  }

  private commitContact(contact: XeroSimContact, type: XeroSimInvoice["Type"]) {
    const stored = this.contacts.get(contact.ContactID);
    const role = type === "ACCPAY" ? "IsSupplier" : "IsCustomer";
    if (stored && stored.c[role]) return;
    const now = this.tick();
    const c = stored?.c ?? contact;
    c[role] = true;
    c.UpdatedDateUTC = msDate(now);
    this.contacts.set(c.ContactID, { c, updated: now });
  }
}

function ok(inv: XeroSimInvoice, unitdp: number): ElementResult {
  return { ok: true, json: { ...invoiceJson(inv, unitdp, false), StatusAttributeString: "OK" } };
}

function fail(
  echo: Record<string, unknown>,
  errors: string[],
  kind: "invoice" | "contact",
): ElementResult {
  return {
    ok: false,
    json: {
      ...echo,
      ...(kind === "invoice" ? { HasErrors: true } : { HasValidationErrors: true }),
      StatusAttributeString: "ERROR",
      ValidationErrors: errors.map((Message) => ({ Message })),
    },
  };
}

/** The submitted element as Xero echoes it back next to its errors. */
function invoiceEcho(el: unknown, id?: string): Record<string, unknown> {
  const base = el && typeof el === "object" ? structuredClone(el) as Record<string, unknown> : {};
  return id ? { ...base, InvoiceID: id } : base;
}

function contactEcho(el: unknown): Record<string, unknown> {
  return el && typeof el === "object" ? structuredClone(el) as Record<string, unknown> : {};
}

/** What an API response shows: UnitAmount at 2 dp unless the caller asked for unitdp=4. */
function invoiceJson(
  inv: XeroSimInvoice,
  unitdp: number | undefined,
  summaryOnly: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...structuredClone(inv) };
  if (summaryOnly) {
    delete out.LineItems;
    delete out.Payments;
    delete out.CreditNotes;
    delete out.Prepayments;
    delete out.Overpayments;
    return out;
  }
  if (unitdp !== 4) {
    out.LineItems = inv.LineItems.map((l) => ({ ...l, UnitAmount: roundTo(l.UnitAmount, 2) }));
  }
  return out;
}

/** The record `where` filters see, with real dates instead of Xero's `/Date()/` strings. */
function invoiceView(s: StoredInvoice): Record<string, unknown> {
  return {
    ...s.inv,
    Date: new Date(dateMs(s.date)),
    DueDate: s.due ? new Date(dateMs(s.due)) : null,
    UpdatedDateUTC: new Date(s.updated),
  };
}

function summaryContact(c: XeroSimContact): Record<string, unknown> {
  return {
    ContactID: c.ContactID,
    ...(c.ContactNumber ? { ContactNumber: c.ContactNumber } : {}),
    ContactStatus: c.ContactStatus,
    Name: c.Name,
    ...(c.EmailAddress ? { EmailAddress: c.EmailAddress } : {}),
    IsSupplier: c.IsSupplier,
    IsCustomer: c.IsCustomer,
    UpdatedDateUTC: c.UpdatedDateUTC,
    HasValidationErrors: false,
  };
}

function orderRows<T>(rows: T[], order: string | undefined, get: (r: T, f: string) => unknown) {
  if (!order) return rows;
  const [fieldName, dir] = order.trim().split(/\s+/);
  const sign = dir?.toUpperCase() === "DESC" ? -1 : 1;
  const key = (r: T) => {
    const v = get(r, fieldName);
    return v instanceof Date ? v.getTime() : typeof v === "string" ? v.toLowerCase() : v as number;
  };
  return [...rows].sort((a, b) => {
    const x = key(a), y = key(b);
    return x === y ? 0 : (x ?? "") > (y ?? "") ? sign : -sign;
  });
}

/** Xero pages by 100 (pageSize up to 1000) only when `page` is given; without it, all rows. */
function paginate<T>(rows: T[], q: ListQuery): { items: T[]; pagination?: Pagination } {
  if (q.page === undefined) return { items: rows };
  const pageSize = Math.min(Math.max(q.pageSize ?? 100, 1), 1000);
  const page = Math.max(q.page, 1);
  return {
    items: rows.slice((page - 1) * pageSize, page * pageSize),
    pagination: {
      page,
      pageSize,
      pageCount: Math.ceil(rows.length / pageSize),
      itemCount: rows.length,
    },
  };
}

function accountClass(type: string): string {
  if (["REVENUE", "SALES", "OTHERINCOME"].includes(type)) return "REVENUE";
  if (["EXPENSE", "DIRECTCOSTS", "OVERHEADS", "DEPRECIATN"].includes(type)) return "EXPENSE";
  if (["CURRLIAB", "LIABILITY", "TERMLIAB"].includes(type)) return "LIABILITY";
  if (type === "EQUITY") return "EQUITY";
  return "ASSET";
}

/** A deterministic UUID-shaped id from a name, so reference data keeps its ids. */
function stableId(name: string): string {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (const ch of name) {
    h1 = Math.imul(h1 ^ ch.charCodeAt(0), 16777619);
    h2 = Math.imul(h2 + ch.charCodeAt(0), 2246822507);
  }
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
  const s = hex(h1) + hex(h2) + hex(h1 ^ h2) + hex(Math.imul(h1, h2));
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-4${s.slice(13, 16)}-a${s.slice(17, 20)}-${
    s.slice(20, 32)
  }`;
}
