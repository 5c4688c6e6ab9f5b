/**
 * Stage 3, evaluate: is there anything to do (unchanged records are left alone), is the record
 * eligible (every failed rule is a reason), and what bill does it make (vendor → Xero contact,
 * then the pure mapping).
 */
import {
  eligibility,
  invoiceNumberOf,
  parsePurchaseOrder,
  taxRateMismatches,
  toBill,
} from "../../mapping/mod.ts";
import type { RecordState } from "../../store/records.ts";
import { asRunStop, describe } from "../errors.ts";
import { outcomeMessage } from "../messages.ts";
import type { Mode, RecordResult } from "../types.ts";
import { type BatchContext, type BatchItem, billRef, failure, type Work } from "../work.ts";

/**
 * Nothing to do for a listed record when Zoho shows it as we left it (same Modified_Time and
 * content fields: our own write-back is not a change), it was decided under the same settings,
 * and its last outcome was final for this mode (a failure, or an update that a create-only run
 * left, is never final).
 */
export function isUnchanged(
  ctx: Pick<BatchContext, "settingsKey" | "mode">,
  item: BatchItem,
  state: RecordState | undefined,
): boolean {
  return !!item.listedModifiedTime && !!state &&
    state.zohoModifiedTime === item.listedModifiedTime &&
    (item.listedFingerprint === undefined || item.listedFingerprint === state.listFingerprint) &&
    state.settingsKey === ctx.settingsKey && finalFor(state, ctx.mode);
}

function finalFor(state: RecordState, _mode: Mode): boolean {
  // create_only marks an update it left as owed, so the next run that may update does it.
  return state.outcome !== "failed" && !state.owed;
}

/** Sorts out the unchanged records; the rest are work. */
export function leaveUnchanged(ctx: BatchContext, work: Work[], notChanged: string[]) {
  for (const w of work) {
    if (!w.locked || !isUnchanged(ctx, w.item, w.state)) continue;
    w.unchanged = true;
    notChanged.push(w.id);
    if (ctx.reportUnchanged) w.result = unchangedResult(ctx, w.id, w.state);
  }
}

/**
 * Parses and checks each record read; returns the eligible ones. A mapped tax whose Xero rate is
 * not Zoho's percentage holds the record back (a 10 % tax on a 15 % tax type bills 115 for 110),
 * and keeps it owed: fixing the mapping or the rate in Xero changes nothing Zoho shows.
 */
export async function checkEligibility(ctx: BatchContext, work: Work[]): Promise<Work[]> {
  const read = work.filter((w) => !w.result && w.raw);
  if (!read.length) return [];
  let rates: Awaited<ReturnType<BatchContext["xero"]["taxRates"]>> | undefined;
  try {
    rates = await ctx.xero.taxRates();
  } catch (err) {
    const stop = asRunStop(err, "xero");
    if (stop) throw stop;
    // Without the rates nothing can be checked; the eligible records fail below, and are retried.
    rates = undefined;
    ctx.taxRatesError = describe(err);
  }
  const eligible: Work[] = [];
  for (const w of read) {
    const parsed = parsePurchaseOrder(w.raw!, ctx.settings);
    let reasons = parsed.ok ? eligibility(parsed.po, ctx.settings) : parsed.reasons;
    if (parsed.ok) w.po = parsed.po;
    if (parsed.ok && !reasons.length) {
      if (!rates) {
        w.result = failure(w, "xero", `Xero's tax rates could not be read: ${ctx.taxRatesError}`);
        continue;
      }
      reasons = taxRateMismatches(parsed.po, ctx.settings, rates);
      if (reasons.length) w.owed = true;
    }
    if (reasons.length) {
      w.result = {
        purchaseOrderId: w.id,
        outcome: "skipped",
        reasons,
        message: outcomeMessage("skipped", { reasons, preview: ctx.mode === "preview" }),
        reference: w.po ? invoiceNumberOf(w.po) : undefined,
        bill: billRef(w.state),
      };
      continue;
    }
    eligible.push(w);
  }
  return eligible;
}

/** Finds or creates each vendor's Xero contact (cached only, in a preview), then builds the bill. */
export async function buildBills(ctx: BatchContext, eligible: Work[]) {
  if (!eligible.length) return;
  const vendors = new Map<string, string>();
  for (const w of eligible) vendors.set(w.po!.vendor!.id, w.po!.vendor!.name ?? w.po!.vendor!.id);
  let contacts: Awaited<ReturnType<BatchContext["xero"]["resolveContacts"]>>;
  try {
    contacts = ctx.mode === "preview"
      ? await ctx.xero.cachedContacts([...vendors.keys()])
      : await ctx.xero.resolveContacts(
        [...vendors].map(([zohoVendorId, name]) => ({ zohoVendorId, name })),
      );
  } catch (err) {
    const stop = asRunStop(err, "xero");
    if (stop) throw stop;
    for (const w of eligible) {
      w.result = failure(
        w,
        "xero",
        `the vendor could not be found or created in Xero: ${describe(err)}`,
      );
    }
    return;
  }
  for (const w of eligible) {
    const contactID = contacts.get(w.po!.vendor!.id) ??
      (ctx.mode === "preview" ? "(new contact)" : "");
    if (!contactID) {
      const why = contacts.failures?.get(w.po!.vendor!.id) ??
        ctx.xero.contactFailures?.get(w.po!.vendor!.id);
      w.result = failure(
        w,
        "xero",
        `the vendor "${w.po!.vendor!.name ?? ""}" could not be created in Xero${
          why ? `: ${why}` : ""
        }`,
      );
      continue;
    }
    try {
      w.bill = toBill(w.po!, ctx.settings, { contactID });
      const note = contacts.warnings?.get(w.po!.vendor!.id);
      if (note) w.bill.warnings.push(note);
    } catch (err) {
      w.result = failure(w, "app", `the bill could not be built: ${describe(err)}`);
    }
  }
}

/** A record not changed since the last sync: its bill is as it was, or it is still skipped. */
function unchangedResult(ctx: BatchContext, id: string, state?: RecordState): RecordResult {
  const preview = ctx.mode === "preview";
  // Still skipped for the reasons last given (an approved bill that missed an edit included).
  if (state?.outcome === "skipped" && state.reasons?.length) {
    return {
      purchaseOrderId: id,
      outcome: "skipped",
      reasons: state.reasons,
      message: outcomeMessage("skipped", { reasons: state.reasons, preview }),
      bill: billRef(state),
      reference: state.invoiceNumber,
    };
  }
  return {
    purchaseOrderId: id,
    outcome: "unchanged",
    reasons: [],
    message: outcomeMessage("unchanged", { number: state?.invoiceNumber, preview }),
    bill: billRef(state),
    reference: state?.invoiceNumber,
  };
}
