/**
 * Stage 3, evaluate: is there anything to do (unchanged records are left alone), is the record
 * eligible (every failed rule is a reason), and what bill does it make (vendor → Xero contact,
 * then the pure mapping).
 */
import { eligibility, invoiceNumberOf, parsePurchaseOrder, toBill } from "../../mapping/mod.ts";
import { keys } from "../../store/keys.ts";
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

/** Parses and checks each record read; returns the eligible ones. */
export function checkEligibility(ctx: BatchContext, work: Work[]): Work[] {
  const eligible: Work[] = [];
  for (const w of work) {
    if (w.result || !w.raw) continue;
    const parsed = parsePurchaseOrder(w.raw, ctx.settings);
    const reasons = parsed.ok ? eligibility(parsed.po, ctx.settings) : parsed.reasons;
    if (parsed.ok) w.po = parsed.po;
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
  let contacts: Map<string, string>;
  try {
    contacts = ctx.mode === "preview"
      ? await cachedContacts(ctx.kv, [...vendors.keys()])
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
      const why = ctx.xero.contactFailures?.get(w.po!.vendor!.id);
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
    } catch (err) {
      w.result = failure(w, "app", `the bill could not be built: ${describe(err)}`);
    }
  }
}

async function cachedContacts(kv: Deno.Kv, vendorIds: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of vendorIds) {
    const v = (await kv.get<string | { contactID: string }>(keys.contact(id))).value;
    if (v) out.set(id, typeof v === "string" ? v : v.contactID);
  }
  return out;
}

/** A record not changed since the last sync: its bill is as it was, or it is still skipped. */
function unchangedResult(ctx: BatchContext, id: string, state?: RecordState): RecordResult {
  const preview = ctx.mode === "preview";
  if (!state?.invoiceId && state?.reasons?.length) {
    return {
      purchaseOrderId: id,
      outcome: "skipped",
      reasons: state.reasons,
      message: outcomeMessage("skipped", { reasons: state.reasons, preview }),
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
