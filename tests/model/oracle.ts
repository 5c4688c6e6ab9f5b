/**
 * The oracle, checked against the simulators' own state once a history has settled (not against
 * what the app says it did), plus what the app said about each record:
 *  - every purchase order eligible now has exactly one live bill (not VOIDED/DELETED), and it is
 *    the mapping of the record as it is now (number, dates, currency, contact, lines), its total
 *    is Zoho's Grand_Total or a warning said by how much it differs;
 *  - a bill Xero locked (approved, paid) is left as it is, and the record's last result says why;
 *  - no bill for a purchase order that was never eligible, no bill for no known purchase order;
 *  - nothing is still owed after the settle (retry set, queue), and no record's last result is a
 *    failure with every fault gone;
 *  - every record's last result explains itself (a message; reasons when skipped or failed).
 *
 * Lenient on purpose, where the product cannot know or chose so:
 *  - a record that is not eligible now keeps whatever bill it had (the product leaves it);
 *  - a record deleted in Zoho keeps its bill (nothing tells Xero);
 *  - a bill made under settings the history had earlier matches: settings reach a bill when its
 *    order is next synced (or by an "all records" run), not by themselves;
 *  - a bill voided or deleted in Xero is not replaced (product policy: the accountant decided),
 *    provided the record's last result says so;
 *  - totals: the bill's lines are totalled as real Xero does (decimal, per line, at the Xero rate
 *    of each tax type) and one cent from Grand_Total is allowed without a warning (issue 13 point
 *    9 asks for exact totals; tighten to 0 once that lands).
 */
import {
  eligibility,
  parsePurchaseOrder,
  recordUrl,
  taxRateMismatches,
  toBill,
  type XeroInvoice,
  xeroTotal,
} from "../../lib/mapping/mod.ts";
import { ORG_TAX_RATES } from "../../sandbox/demo_org.ts";
import { keys } from "../../lib/store/keys.ts";
import type { RecordState } from "../../lib/store/records.ts";
import type { RecordResult } from "../../lib/sync/types.ts";
import type { XeroSimInvoice } from "../../sandbox/xero.ts";
import { type History, userOwned } from "./world.ts";

const XERO_RATES = new Map(ORG_TAX_RATES.map((t) => [t.taxType, t.effectiveRate]));
const LOCKED = new Set(["AUTHORISED", "PAID"]);
const GONE = new Set(["VOIDED", "DELETED"]);
const cents = (x: number) => Math.round(x * 100);
const norm = (s: string | undefined | null) => (s ?? "").normalize("NFC").trim().toLowerCase();

export interface OracleReport {
  violations: string[];
  billsChecked: number;
}

export async function checkOracle(
  h: History,
  settleResults: RecordResult[],
): Promise<OracleReport> {
  const settings = h.settings;
  const violations = [...h.violations];
  const bills = h.bills();
  const zoho = h.shared.zohoSim.records;
  const kv = h.kv;
  const watermark = (await h.engine.watermark()).value;
  const retry = new Set(await h.engine.retrySet());
  const queue = new Set(await h.engine.queued());
  const last = new Map<string, { result: RecordResult; source: string; startedAt: number }>();
  for (const e of h.results) last.set(e.id, e);
  const warnedTotal = new Set(
    h.results.filter((e) => e.result.warnings?.some((w) => /Grand Total/i.test(w))).map((e) =>
      e.id
    ),
  );
  let billsChecked = 0;
  const heldBack = new Set<string>();

  const byUrl = new Map<string, XeroSimInvoice[]>();
  for (const b of bills) {
    const list = byUrl.get(b.Url ?? "") ?? [];
    list.push(b);
    byUrl.set(b.Url ?? "", list);
  }
  const known = new Set(h.ids.map((id) => recordUrl(id, settings)));
  for (const [url, list] of byUrl) {
    if (!known.has(url)) violations.push(`[stray-bill] ${list.length} bill(s) for ${url}`);
  }

  /** Why a record that is behind could stay behind for good. */
  const owedNote = async (id: string, raw: Record<string, unknown>) => {
    const state = (await kv.get<RecordState>(keys.billMapping(id))).value;
    const mt = String(raw.Modified_Time ?? "");
    const behind = watermark !== null && Date.parse(mt) <= Date.parse(watermark);
    return `Modified_Time ${mt}, watermark ${watermark}${behind ? " (behind it)" : ""}, ` +
      `retry ${retry.has(id)}, queued ${queue.has(id)}, KV ${
        state ? `${state.outcome} ${state.zohoModifiedTime ?? "-"} bill ${state.invoiceId}` : "none"
      }, last result ${describeLast(last.get(id))}`;
  };

  for (const id of h.ids) {
    const url = recordUrl(id, settings);
    const mine = byUrl.get(url) ?? [];
    const live = mine.filter((b) => !GONE.has(b.Status));
    if (mine.length && !h.everEligible.has(id)) {
      violations.push(
        `[bill-never-eligible] ${id} was never eligible but has ${mine.length} bill(s)`,
      );
    }
    if (live.length > 1) {
      violations.push(
        `[duplicate] ${id} has ${live.length} live bills: ${
          live.map((b) => `${b.InvoiceNumber} ${b.Status}`).join(", ")
        }`,
      );
    }
    const raw = zoho.get(id);
    if (!raw) continue; // deleted in Zoho: its bill stays (lenient, see above)
    // The app writes only its own write-back fields, never the order's (issue 19 point 5).
    const before = h.userFields.get(id);
    if (before) {
      const now = userOwned(raw);
      const touched = Object.keys({ ...before, ...now }).filter((k) =>
        JSON.stringify(before[k]) !== JSON.stringify(now[k])
      );
      if (touched.length) {
        violations.push(
          `[order-field-overwritten] the app changed ${id}'s own field(s) ${
            touched.map((k) => `${k}: ${JSON.stringify(before[k])} → ${JSON.stringify(now[k])}`)
              .join(", ")
          }`,
        );
      }
    }
    const parsed = parsePurchaseOrder(raw, settings);
    const reasons = parsed.ok ? eligibility(parsed.po, settings) : parsed.reasons;
    if (reasons.length || !parsed.ok) continue; // not eligible now: an earlier bill is left alone
    // A mapped tax whose Xero rate is not Zoho's percentage holds the record back, kept owed
    // (retry set) until the mapping or the rate is fixed: the last result must say so.
    if (taxRateMismatches(parsed.po, settings, XERO_RATES).length) {
      heldBack.add(id);
      const lastOf = last.get(id);
      // Lenient when its last sync began before the settings that hold it back were saved (a
      // settings change reaches a billed order when it is next synced, README "How it syncs").
      const before = lastOf && lastOf.startedAt <= h.settingsChangedAt &&
        lastOf.result.outcome !== "failed" && lastOf.result.outcome !== "skipped";
      if (
        !before && (lastOf?.result.outcome !== "skipped" || !/tax/i.test(lastOf.result.message))
      ) {
        violations.push(
          `[held-silent] ${id} is held back for a tax rate, but its last result is ${
            describeLast(lastOf)
          }`,
        );
      }
      continue;
    }
    const lastOf = last.get(id);
    if (live.length === 0) {
      const gone = mine.find((b) => GONE.has(b.Status));
      if (gone) {
        // The product learns of a void only when it next looks at the record: owed an
        // explanation only when the record changed since (its bill no longer matches it).
        // (Under any settings the history had: a settings change alone is not a change.)
        const changed = [settings, ...h.settingsSeen].every((st) =>
          billDiffs(
            gone,
            toBill(parsed.po, st, { contactID: gone.Contact.ContactID }).invoice,
            parsed.po.vendor,
          ).length > 0
        );
        if (changed && !explainsSkip(lastOf?.result)) {
          violations.push(
            `[gone-silent] ${id}'s bill was voided/deleted in Xero and its last result does not say so: ${
              describeLast(lastOf)
            }`,
          );
        }
        continue;
      }
      violations.push(
        `[missing-bill] ${id} is eligible but has no bill; ${await owedNote(id, raw)}`,
      );
      continue;
    }
    const bill = live[0];
    billsChecked++;
    const want = toBill(parsed.po, settings, { contactID: bill.Contact.ContactID });
    // The bill of the order as it is now, under the settings now or under settings the history
    // had before (lenient: a settings change reaches a bill when its order is next synced).
    let diffs = billDiffs(bill, want.invoice, parsed.po.vendor);
    for (const older of h.settingsSeen) {
      if (!diffs.length) break;
      const was = toBill(parsed.po, older, { contactID: bill.Contact.ContactID });
      if (!billDiffs(bill, was.invoice, parsed.po.vendor).length) diffs = [];
    }
    if (LOCKED.has(bill.Status)) {
      // Xero refuses changes to approved and paid bills (the simulator enforces it), so
      // "untouched" holds by construction; what must hold is that the app says why.
      if (diffs.length && !explainsSkip(lastOf?.result)) {
        violations.push(
          `[locked-silent] ${id}'s bill is ${bill.Status} and differs from the record (${
            diffs.join("; ")
          }) but its last result does not say why: ${describeLast(lastOf)}`,
        );
      }
      continue;
    }
    if (diffs.length) {
      violations.push(
        `[stale-bill] ${id}'s ${bill.Status} bill differs from the record: ${
          diffs.join("; ")
        }; ${await owedNote(
          id,
          raw,
        )}`,
      );
      continue;
    }
    // What real Xero totals these lines to (decimal, per line, at Xero's rates for the tax types),
    // not the simulator's Total: it rounds in floating point and is a cent off at exact halves.
    const grand = parsed.po.grandTotal;
    const total = xeroTotal(want.invoice, XERO_RATES);
    if (grand !== null && Math.abs(cents(total) - cents(grand)) > 1 && !warnedTotal.has(id)) {
      violations.push(
        `[total-silent] ${id}'s bill totals ${total} in Xero but Zoho's Grand_Total is ${grand}, and no result warned`,
      );
    }
  }

  // Nothing owed once the faults are gone and the settle runs are done (but what is held back).
  for (const id of heldBack) retry.delete(id);
  if (retry.size || queue.size) {
    violations.push(
      `[still-owed] after the settle runs: retry set ${[...retry].join(",") || "-"}, queue ${
        [...queue].join(",") || "-"
      }`,
    );
  }
  for (const r of settleResults) {
    if (r.outcome === "failed") {
      violations.push(`[failed-after-settle] ${r.purchaseOrderId}: ${r.message}`);
    }
  }
  // Every record's last word explains itself.
  for (const [id, e] of last) {
    const r = e.result;
    if (!r.message?.trim()) violations.push(`[unexplained] ${id}: empty message (${e.source})`);
    if (
      (r.outcome === "skipped" || r.outcome === "failed") &&
      (!r.reasons.length || r.reasons.some((x) => !x?.trim()))
    ) {
      violations.push(`[unexplained] ${id}: ${r.outcome} without reasons (${e.source})`);
    }
  }
  return { violations, billsChecked };
}

function explainsSkip(r: RecordResult | undefined): boolean {
  return !!r && r.outcome === "skipped" && r.reasons.length > 0 &&
    r.reasons.every((x) => !!x.trim());
}

function describeLast(
  e: { result: RecordResult; source: string; startedAt: number } | undefined,
): string {
  if (!e) return "none";
  return `${e.result.outcome} "${e.result.message}" (${e.source})`;
}

/** How a bill in the simulator differs from the mapping of the record as it is now. */
export function billDiffs(
  bill: XeroSimInvoice,
  want: XeroInvoice,
  vendor: { id: string; name?: string | null } | null,
): string[] {
  const diffs: string[] = [];
  if (bill.InvoiceNumber !== want.invoiceNumber) {
    diffs.push(`number ${bill.InvoiceNumber} ≠ ${want.invoiceNumber}`);
  }
  if (bill.DateString.slice(0, 10) !== want.date) {
    diffs.push(`date ${bill.DateString.slice(0, 10)} ≠ ${want.date}`);
  }
  if ((bill.DueDateString ?? "").slice(0, 10) !== want.dueDate) {
    diffs.push(`due ${bill.DueDateString?.slice(0, 10)} ≠ ${want.dueDate}`);
  }
  if (want.currencyCode && bill.CurrencyCode !== want.currencyCode) {
    diffs.push(`currency ${bill.CurrencyCode} ≠ ${want.currencyCode}`);
  }
  if (vendor) {
    const ok = bill.Contact.ContactNumber === vendor.id ||
      norm(bill.Contact.Name) === norm(vendor.name);
    if (!ok) diffs.push(`contact ${bill.Contact.Name} is not vendor ${vendor.name}`);
  }
  if (bill.LineItems.length !== want.lineItems.length) {
    diffs.push(`${bill.LineItems.length} lines ≠ ${want.lineItems.length}`);
  } else {
    want.lineItems.forEach((l, i) => {
      const got = bill.LineItems[i];
      const same = got.Quantity === l.quantity && got.UnitAmount === l.unitAmount &&
        got.TaxType === l.taxType && got.AccountCode === l.accountCode &&
        got.Description === l.description;
      if (!same) {
        diffs.push(
          `line ${i + 1} ${
            JSON.stringify([got.Quantity, got.UnitAmount, got.TaxType, got.AccountCode])
          } ≠ ${JSON.stringify([l.quantity, l.unitAmount, l.taxType, l.accountCode])}`,
        );
      }
    });
  }
  return diffs;
}
