/**
 * What a batch knows about one purchase order as it moves through the stages of lib/sync/stages,
 * and the builders of its result. Shared by every stage, owned by none.
 */
import type { PurchaseOrder, Settings, XeroInvoice } from "../mapping/mod.ts";
import type { RecordState } from "../store/records.ts";
import { outcomeMessage } from "./messages.ts";
import type { WriteBackFields } from "./stages/write_back.ts";
import type { XeroPort, ZohoPort } from "./ports.ts";
import type { Mode, Outcome, RecordResult } from "./types.ts";

export const MODULE = "Purchase_Orders" as const;

export interface BatchItem {
  id: string;
  /** Modified_Time from the list call; absent for records named directly (button, retry, queue). */
  listedModifiedTime?: string;
  /** Modified_Time the listing showed, even for a record read whatever it showed (retry, webhook). */
  listedTime?: string;
  /** Content fingerprint from the list call (absent when the listing could not read the fields). */
  listedFingerprint?: string;
  /** The listed record, when the listing carried every header field (lib/sync/stages/bulk.ts). */
  listedRecord?: Record<string, unknown>;
}

export interface BatchContext {
  kv: Deno.Kv;
  zoho: ZohoPort;
  xero: XeroPort;
  settings: Settings;
  /** Fingerprint of the settings (lib/sync/fingerprint.ts): a record decided under others is redone. */
  settingsKey: string;
  mode: Mode;
  /** Lock owner (run id or request id). */
  owner: string;
  /**
   * The record locks' owner when not `owner`: each execution of a run has its own, so an instance
   * taken for stopped while still alive and the one going on with its run never both hold an order.
   */
  lockOwner?: string;
  /** How long to wait for a record another sync holds. */
  lockWaitMs: number;
  /** How long a record lock outlives a holder that died (renewed while the holder lives). */
  lockTtlMs?: number;
  /** How long a create that got no answer is waited for before it is sent again. */
  unconfirmedWaitMs?: number;
  /** Give records unchanged since the last sync a result ("all" and "last N days" runs). */
  reportUnchanged?: boolean;
  /** Write-back API names that exist in Zoho (null: write-back off or no such fields). */
  writeBackFields: () => Promise<WriteBackFields | null>;
  /** Why Xero's tax rates could not be read in this batch (said on each record it holds back). */
  taxRatesError?: string;
  /** The settings key saved now (they may change during a run; records decided under older
   * settings then stay owed). */
  settingsNow?: () => Promise<string>;
  /** The connected Xero organisation: a bill KV knows in another one is no bill here. */
  tenantId?: string;
}

/** A record read ahead of its batch: the raw record, null (not in Zoho), or the read's error. */
export type Prefetched = Map<
  string,
  { raw?: Record<string, unknown> | null; error?: unknown; readAt: number; readStamp: string }
>;

export interface Work {
  id: string;
  item: BatchItem;
  /** False for a record another sync holds: this batch may only say it is owed. */
  locked: boolean;
  state?: RecordState;
  /** Versionstamp of the stored state when the batch loaded it. */
  stateStamp?: string;
  raw?: Record<string, unknown>;
  /** KV's clock when the Zoho read began: debts written before it are paid by this sync. */
  readStamp?: string;
  /** Our clock when the Zoho read began (ms), for the write-back's If-Unmodified-Since. */
  readAt?: number;
  po?: PurchaseOrder;
  bill?: { invoice: XeroInvoice; hash: string; warnings: string[] };
  result?: RecordResult;
  /** The Modified_Time to remember once done. */
  modifiedTime?: string;
  /** Not finished although not failed (e.g. create_only left an update): keep it owed. */
  owed?: boolean;
  /** The record was skipped without a read because nothing changed since the last sync. */
  unchanged?: boolean;
}

export function xeroBillUrl(invoiceId: string): string {
  return `https://go.xero.com/AccountsPayable/View.aspx?InvoiceID=${encodeURIComponent(invoiceId)}`;
}

export function billRef(state: RecordState | undefined) {
  if (!state?.invoiceId) return undefined;
  return {
    invoiceId: state.invoiceId,
    invoiceNumber: state.invoiceNumber ?? "",
    status: state.billStatus ?? "",
    url: xeroBillUrl(state.invoiceId),
  };
}

export function result(
  ctx: BatchContext,
  w: Work,
  outcome: Outcome,
  status?: string,
): RecordResult {
  const number = w.bill?.invoice.invoiceNumber ?? w.state?.invoiceNumber;
  return {
    purchaseOrderId: w.id,
    outcome,
    reasons: [],
    message: outcomeMessage(outcome, { number, status, preview: ctx.mode === "preview" }),
    bill: w.state?.invoiceId
      ? {
        invoiceId: w.state.invoiceId,
        invoiceNumber: w.state.invoiceNumber ?? number ?? "",
        status: status ?? w.state.billStatus ?? "",
        url: xeroBillUrl(w.state.invoiceId),
      }
      : undefined,
    warnings: w.bill?.warnings.length ? [...w.bill.warnings] : undefined,
    reference: number,
  };
}

export function skip(ctx: BatchContext, w: Work, reason: string): RecordResult {
  return {
    ...result(ctx, w, "skipped", w.state?.billStatus),
    reasons: [reason],
    message: outcomeMessage("skipped", { reasons: [reason], preview: ctx.mode === "preview" }),
  };
}

export function failure(
  w: Pick<Work, "id" | "po" | "state">,
  failedAt: NonNullable<RecordResult["failedAt"]>,
  reason: string,
): RecordResult {
  return {
    purchaseOrderId: w.id,
    outcome: "failed",
    reasons: [reason],
    message: outcomeMessage("failed", { reasons: [reason] }),
    failedAt,
    bill: billRef(w.state),
    reference: w.state?.invoiceNumber,
  };
}

/** At most `max` entries, the rest counted: KV values and transactions have size limits. */
export function capped(list: string[], max = 10): string[] {
  if (list.length <= max) return list;
  return [...list.slice(0, max), `…and ${list.length - max} more`];
}

export function warn(w: Work | undefined, text: string) {
  if (w?.result) w.result.warnings = [...(w.result.warnings ?? []), text];
}

/** Zoho's DateTime format: second precision with an offset. */
export function zohoDateTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "+00:00");
}
