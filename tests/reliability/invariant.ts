/**
 * The invariant a finance team relies on, checked against the simulators' own state (not against
 * what our app says it did): every eligible purchase order has exactly one Xero bill whose content
 * is the mapping of the record as it is now, linked back on the Zoho record; every ineligible one
 * has no bill and shows its reason in Zoho; nothing is left pending in KV.
 */
import {
  eligibility,
  parsePurchaseOrder,
  recordUrl,
  type Settings,
  SettingsSchema,
  toBill,
  xeroTotal,
} from "../../lib/mapping/mod.ts";
import { keys } from "../../lib/store/keys.ts";
import type { RecordState } from "../../lib/store/records.ts";
import { ORG_SETTINGS, ORG_TAX_RATES } from "../../sandbox/demo_org.ts";
import type { XeroSimInvoice } from "../../sandbox/xero.ts";
import { pending, type Tally } from "./harness.ts";

export const SETTINGS: Settings = SettingsSchema.parse(ORG_SETTINGS);
const TAX_RATES = new Map(ORG_TAX_RATES.map((t) => [t.taxType, t.effectiveRate]));

export interface InvariantReport {
  records: number;
  eligible: number;
  duplicates: number;
  lost: number;
  problems: string[];
}

export interface World {
  zohoRecords: Map<string, Record<string, unknown>>;
  bills: XeroSimInvoice[];
  /** When given: KV must map each bill and hold no retry, queue or intent entry. */
  kv?: Deno.Kv;
  settings?: Settings;
  /** Records whose failure is expected (bad data): checked for a clear reason instead. */
  expectFailed?: Set<string>;
}

const cents = (x: number) => Math.round(x * 100);

export async function checkInvariant(w: World): Promise<InvariantReport> {
  const settings = w.settings ?? SETTINGS;
  const problems: string[] = [];
  const byUrl = new Map<string, XeroSimInvoice[]>();
  for (const b of w.bills) {
    if (b.Type !== "ACCPAY") continue;
    const list = byUrl.get(b.Url ?? "") ?? [];
    list.push(b);
    byUrl.set(b.Url ?? "", list);
  }
  const report: InvariantReport = {
    records: w.zohoRecords.size,
    eligible: 0,
    duplicates: 0,
    lost: 0,
    problems,
  };
  const known = new Set<string>();
  for (const [id, raw] of w.zohoRecords) {
    const url = recordUrl(id, settings);
    known.add(url);
    const bills = byUrl.get(url) ?? [];
    const parsed = parsePurchaseOrder(raw, settings);
    const reasons = parsed.ok ? eligibility(parsed.po, settings) : parsed.reasons;
    if (w.expectFailed?.has(id)) {
      if (bills.length > 1) {
        report.duplicates += bills.length - 1;
        problems.push(`${id}: ${bills.length} bills`);
      }
      if (raw.Xero_Sync_Status !== "Failed" || !String(raw.Xero_Sync_Error ?? "").trim()) {
        problems.push(
          `${id}: expected a failure with its reason in Zoho, got ${
            JSON.stringify([raw.Xero_Sync_Status, raw.Xero_Sync_Error])
          }`,
        );
      }
      continue;
    }
    if (reasons.length) {
      if (bills.length) problems.push(`${id} is not eligible (${reasons[0]}) but has a bill`);
      const shown = reasons.join("; ").slice(0, 255);
      if (raw.Xero_Sync_Status !== "Not synced" || raw.Xero_Sync_Error !== shown) {
        problems.push(
          `${id}: Zoho shows ${
            JSON.stringify([raw.Xero_Sync_Status, raw.Xero_Sync_Error])
          }, expected "Not synced" with "${shown}"`,
        );
      }
      continue;
    }
    report.eligible++;
    if (bills.length === 0) {
      report.lost++;
      problems.push(`${id}: eligible but has no bill in Xero`);
      continue;
    }
    if (bills.length > 1) {
      report.duplicates += bills.length - 1;
      problems.push(`${id}: ${bills.length} bills (${bills.map((b) => b.InvoiceID).join(", ")})`);
    }
    const bill = bills[0];
    if (!parsed.ok) continue;
    const expected = toBill(parsed.po, settings, { contactID: bill.Contact.ContactID });
    const want = expected.invoice;
    const diffs: string[] = [];
    if (bill.InvoiceNumber !== want.invoiceNumber) {
      diffs.push(`number ${bill.InvoiceNumber} ≠ ${want.invoiceNumber}`);
    }
    if (bill.LineItems.length !== want.lineItems.length) {
      diffs.push(`${bill.LineItems.length} lines ≠ ${want.lineItems.length}`);
    } else {
      want.lineItems.forEach((l, i) => {
        const got = bill.LineItems[i];
        const same = got.Quantity === l.quantity && got.UnitAmount === l.unitAmount &&
          got.TaxType === l.taxType && got.AccountCode === l.accountCode &&
          got.Description === l.description;
        if (!same) diffs.push(`line ${i + 1} ${JSON.stringify(got)} ≠ ${JSON.stringify(l)}`);
      });
    }
    // The lines match exactly, so the total can only differ by rounding: the simulator works in
    // floating point, and at an exact half cent (5.1 × 1577.35 = 8044.485) it can round down
    // where decimal arithmetic rounds up. Allow that, a cent per amount and tax of each line.
    const total = xeroTotal(want, TAX_RATES);
    if (Math.abs(cents(bill.Total) - cents(total)) > 2 * want.lineItems.length) {
      diffs.push(`total ${bill.Total} ≠ ${total}`);
    }
    if (want.currencyCode && bill.CurrencyCode !== want.currencyCode) {
      diffs.push(`currency ${bill.CurrencyCode} ≠ ${want.currencyCode}`);
    }
    const vendor = parsed.po.vendor!;
    const contactOk = bill.Contact.ContactNumber === vendor.id ||
      bill.Contact.Name.trim().toLowerCase() === (vendor.name ?? "").trim().toLowerCase();
    if (!contactOk) diffs.push(`contact ${bill.Contact.Name} is not vendor ${vendor.name}`);
    if (diffs.length) problems.push(`${id}: bill differs from the record: ${diffs.join("; ")}`);
    // Linked back in Zoho: a record that does not show its bill is as good as lost to its users.
    if (raw.Xero_Bill_ID !== bill.InvoiceID || raw.Xero_Sync_Status !== "Synced") {
      report.lost++;
      problems.push(
        `${id}: Zoho shows ${
          JSON.stringify([raw.Xero_Bill_ID, raw.Xero_Sync_Status])
        }, expected bill ${bill.InvoiceID} "Synced"`,
      );
    }
    if (w.kv) {
      const state = (await w.kv.get<RecordState>(keys.billMapping(id))).value;
      if (state?.invoiceId !== bill.InvoiceID) {
        problems.push(`${id}: KV maps ${state?.invoiceId} instead of ${bill.InvoiceID}`);
      }
    }
  }
  for (const [url, bills] of byUrl) {
    if (!known.has(url)) {
      report.duplicates += bills.length;
      problems.push(`${bills.length} bill(s) for no known purchase order (${url})`);
    }
  }
  if (w.kv) {
    // Records expected to fail stay in the retry set; nothing else may wait.
    const p = await pending(w.kv);
    if (p.retry !== (w.expectFailed?.size ?? 0) || p.queue || p.intents) {
      problems.push(`KV still holds work: ${JSON.stringify(p)}`);
    }
  }
  return report;
}

/** Adds a report to the tally; returns its problems as one message (empty when none). */
export function record(t: Tally, r: InvariantReport): string {
  t.records += r.records;
  t.duplicates += r.duplicates;
  t.lost += r.lost;
  return r.problems.length
    ? `${r.problems.length} problem(s):\n  ${r.problems.slice(0, 15).join("\n  ")}`
    : "";
}
