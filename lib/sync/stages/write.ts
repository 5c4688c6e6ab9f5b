/**
 * Stage 5, write: decide create / update / leave for each bill, and send them to Xero in batches.
 * A create is marked in KV before it is sent (the write-ahead mark reconcile looks for); a bill
 * approved, paid or voided in Xero is never changed, and a bill's status is never lowered.
 */
import { toBill, totalMismatch, type XeroInvoice } from "../../mapping/mod.ts";
import { keys } from "../../store/keys.ts";
import { type BillIntent, commitChunked } from "../../store/records.ts";
import { asRunStop, describe } from "../errors.ts";
import type { BillResult, XeroBillSummary } from "../ports.ts";
import { type BatchContext, failure, result, skip, type Work } from "../work.ts";

/** Bills in these states belong to the accountants: we never change them. */
const EDITABLE = new Set(["DRAFT", "SUBMITTED"]);
const STATUS_RANK: Record<string, number> = { DRAFT: 0, SUBMITTED: 1, AUTHORISED: 2 };

export async function writeBills(ctx: BatchContext, pending: Work[], lost: Set<string>) {
  const preview = ctx.mode === "preview";
  const creates: Work[] = [];
  const updates: Work[] = [];
  for (const w of pending) {
    if (w.result) continue;
    const s = w.state;
    if (!s?.invoiceId) creates.push(w);
    else if (s.hash === w.bill!.hash) {
      w.result = result(ctx, w, "unchanged", s.billStatus);
    } else if (ctx.mode === "create_only") {
      w.result = skip(
        ctx,
        w,
        "the bill already exists in Xero and this sync only creates new bills",
      );
      w.owed = true; // the next sync that may update does it
    } else updates.push(w);
  }

  const toUpdate = await checkEditable(ctx, updates);

  if (preview) {
    for (const w of creates) w.result = result(ctx, w, "created", w.bill!.invoice.status);
    for (const w of toUpdate) w.result = result(ctx, w, "updated", w.state!.billStatus);
    return;
  }
  // A lock that could not be renewed may be someone else's now: write nothing for those.
  for (const w of [...creates, ...toUpdate].filter((w) => lost.has(w.id))) {
    w.result = failure(
      w,
      "busy",
      "this sync lost its hold on the purchase order; it will be retried",
    );
  }
  const toCreate = creates.filter((w) => !w.result);
  const updating = toUpdate.filter((w) => !w.result);
  if (!toCreate.length && !updating.length) return;

  const now = new Date().toISOString();
  await commitChunked(
    ctx.kv,
    toCreate.map((w) => (a) => a.set(keys.billIntent(w.id), intentOf(w, now))),
  );
  const payload = [
    ...toCreate.map((w) => ({ key: w.id, invoice: w.bill!.invoice })),
    ...updating.map((w) => ({
      key: w.id,
      invoice: {
        ...w.bill!.invoice,
        invoiceID: w.state!.invoiceId,
        status: raisedStatus(w.bill!.invoice.status, w.state!.billStatus),
      } as XeroInvoice,
    })),
  ];
  let answers;
  try {
    answers = await ctx.xero.upsertBills(payload);
    await resendArchived(ctx, [...toCreate, ...updating], payload, answers);
  } catch (err) {
    const stop = asRunStop(err, "xero");
    if (stop) throw stop;
    for (const w of [...toCreate, ...updating]) {
      w.result = failure(w, "xero", `Xero did not accept the bill: ${describe(err)}`);
    }
    // No answer at all (timeout, dropped connection): a create may still land; reconcile waits
    // for it before sending again. An error answer means Xero did not take the bills.
    if ((err as { kind?: string }).kind === "network") await markUnconfirmed(ctx, toCreate, now);
    return;
  }
  const rejected: string[] = [];
  const unconfirmed: Work[] = [];
  for (const w of [...toCreate, ...updating]) {
    const a = answers.get(w.id);
    const isCreate = !w.state?.invoiceId;
    if (a && !a.ok && isCreate && !a.retryable) rejected.push(w.id);
    else if (isCreate && (!a || (!a.ok && a.kind === "network"))) unconfirmed.push(w);
    if (!a) {
      w.result = failure(w, "xero", "Xero gave no answer for this bill");
    } else if (!a.ok) {
      w.result = failure(w, "xero", `Xero rejected the bill: ${a.message}`);
    } else {
      w.state = {
        ...w.state,
        invoiceId: a.invoiceID,
        invoiceNumber: a.invoiceNumber,
        billStatus: a.status,
        hash: w.bill!.hash,
      };
      // What Xero stored is what counts: its total replaces the mapping's prediction.
      const differs = totalMismatch(w.po!, a.total);
      w.bill!.warnings = w.bill!.warnings.filter((x) => !x.startsWith("Xero will total"));
      if (differs) w.bill!.warnings.push(differs);
      w.result = result(ctx, w, isCreate ? "created" : "updated", a.status);
    }
  }
  // Xero answered "no" for these: nothing was created, so there is nothing to reconcile later.
  await commitChunked(ctx.kv, rejected.map((id) => (a) => a.delete(keys.billIntent(id))));
  await markUnconfirmed(ctx, unconfirmed, now);
}

/**
 * Xero refuses bills for a contact the accountant archived (or merged away). The vendor is
 * resolved again (the archived contact is checked, then ContactNumber, name, or a new contact)
 * and those bills are sent once more, so the supplier's orders do not fail run after run.
 */
async function resendArchived(
  ctx: BatchContext,
  works: Work[],
  payload: Array<{ key: string; invoice: XeroInvoice }>,
  answers: Map<string, BillResult>,
) {
  const refused = works.filter((w) => {
    const a = answers.get(w.id);
    return a && !a.ok && a.kind === "contact_archived";
  });
  if (!refused.length) return;
  const vendors = new Map(refused.map((w) => [w.po!.vendor!.id, w.po!.vendor!.name ?? ""]));
  const contacts = await ctx.xero.resolveContacts(
    [...vendors].map(([zohoVendorId, name]) => ({ zohoVendorId, name })),
    { recheck: true },
  );
  const again: Array<{ key: string; invoice: XeroInvoice }> = [];
  for (const w of refused) {
    const contactID = contacts.get(w.po!.vendor!.id);
    const sent = payload.find((p) => p.key === w.id)!;
    if (!contactID) {
      // No live contact (an admin's link to an archived contact is kept): say what to do.
      const why = contacts.failures?.get(w.po!.vendor!.id);
      if (why) answers.set(w.id, { ok: false, message: why, retryable: false });
      continue;
    }
    if (contactID === sent.invoice.contact.contactID) continue;
    w.bill = { ...w.bill!, ...toBill(w.po!, ctx.settings, { contactID }) };
    again.push({ key: w.id, invoice: { ...sent.invoice, contact: { contactID } } });
  }
  if (!again.length) return;
  for (const [key, a] of await ctx.xero.upsertBills(again)) answers.set(key, a);
}

/** Bills may have been approved or paid in Xero since we wrote them: check before updating. */
async function checkEditable(ctx: BatchContext, updates: Work[]): Promise<Work[]> {
  if (!updates.length) return [];
  let current: Map<string, XeroBillSummary>;
  try {
    current = await ctx.xero.getBills(updates.map((w) => w.state!.invoiceId!));
  } catch (err) {
    const stop = asRunStop(err, "xero");
    if (stop) throw stop;
    for (const w of updates) {
      w.result = failure(w, "xero", `Xero could not be read: ${describe(err)}`);
    }
    return [];
  }
  for (const w of updates) {
    const bill = current.get(w.state!.invoiceId!);
    if (bill?.status) w.state!.billStatus = bill.status;
    if (!bill) {
      w.result = skip(ctx, w, "the bill linked to this purchase order was not found in Xero");
    } else if (!EDITABLE.has(bill.status)) {
      w.result = skip(ctx, w, statusReason(bill.status));
    }
  }
  return updates.filter((w) => !w.result);
}

/**
 * The status an update sends: only a raise (settings SUBMITTED, bill still DRAFT). Otherwise none,
 * and Xero keeps whatever the bill has: an accountant submitting it between our read and our
 * write must not be undone (a status we read and sent back would pull it down to DRAFT).
 */
export function raisedStatus(
  wanted: string | undefined,
  current: string | undefined,
): string | undefined {
  if (!wanted || !current) return undefined;
  return (STATUS_RANK[wanted] ?? -1) > (STATUS_RANK[current] ?? -1) ? wanted : undefined;
}

async function markUnconfirmed(ctx: BatchContext, works: Work[], sentAt: string) {
  const at = new Date().toISOString();
  await commitChunked(
    ctx.kv,
    works.map((w) => (a) => a.set(keys.billIntent(w.id), intentOf(w, sentAt, at))),
  );
}

/** The write-ahead mark of a create (unconfirmedAt: sent, but no answer came back). */
function intentOf(w: Work, at: string, unconfirmedAt?: string): BillIntent {
  return {
    hash: w.bill!.hash,
    invoiceNumber: w.bill!.invoice.invoiceNumber,
    url: w.bill!.invoice.url,
    at,
    ...(unconfirmedAt ? { unconfirmedAt } : {}),
  };
}

export function statusReason(status: string): string {
  switch (status) {
    case "AUTHORISED":
      return "the bill is approved in Xero, so it is not changed";
    case "PAID":
      return "the bill is paid in Xero, so it is not changed";
    case "VOIDED":
      return "the bill is voided in Xero, so it is not changed";
    case "DELETED":
      return "the bill was deleted in Xero; no new bill is created for this purchase order";
    default:
      return `the bill has status ${status} in Xero, so it is not changed`;
  }
}
