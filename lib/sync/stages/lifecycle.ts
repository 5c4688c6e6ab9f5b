/**
 * Stage 3b, lifecycle (after evaluate, before reconcile): a purchase order that owns a bill and is
 * now deleted in Zoho, cancelled, or no longer ticked "Add to Xero" must not leave a bill someone
 * may approve and pay without a word. Per case a setting says what to do: "leave" keeps the bill
 * and says so in the run; "void_or_delete" deletes a DRAFT or SUBMITTED bill and voids an
 * AUTHORISED one without payments, as Xero allows. A bill with a payment is never touched, and the
 * run says why. Each such record is a result row of its own (`lifecycle` set).
 */
import { fieldLabel } from "../../mapping/mod.ts";
import { keys } from "../../store/keys.ts";
import { getStates } from "../../store/records.ts";
import { asRunStop, describe } from "../errors.ts";
import type { XeroBillSummary, ZohoPort } from "../ports.ts";
import type { LifecycleAction, LifecycleCase, RecordResult } from "../types.ts";
import { type BatchContext, billRef, failure, MODULE, type Work } from "../work.ts";

const CLOSED = new Set(["VOIDED", "DELETED"]);

/** Zoho's purchase order status a user sets when the order is off. */
export function isCancelled(raw: Record<string, unknown>): boolean {
  return typeof raw.Status === "string" && raw.Status.trim().toLowerCase() === "cancelled";
}

function caseOf(ctx: BatchContext, w: Work, notFound: Set<string>): LifecycleCase | undefined {
  if (!w.locked || !w.state?.invoiceId) return undefined;
  if (notFound.has(w.id)) return "deleted";
  if (!w.raw || w.result?.outcome === "failed") return undefined;
  if (isCancelled(w.raw)) return "cancelled";
  if (w.raw[ctx.settings.checkboxField] !== true) return "unticked";
  return undefined;
}

function why(ctx: BatchContext, c: LifecycleCase): string {
  switch (c) {
    case "deleted":
      return "The purchase order was deleted in Zoho CRM";
    case "cancelled":
      return "The purchase order is cancelled in Zoho CRM";
    case "unticked":
      return `'${fieldLabel(ctx.settings.checkboxField)}' was unticked after the bill was created`;
  }
}

const lowerFirst = (t: string) => t.charAt(0).toLowerCase() + t.slice(1);

function row(
  ctx: BatchContext,
  w: Work,
  c: LifecycleCase,
  action: LifecycleAction,
  outcome: "updated" | "skipped",
  reason: string,
  message: string,
  status?: string,
): RecordResult {
  const number = w.state?.invoiceNumber;
  const bill = billRef(w.state);
  return {
    purchaseOrderId: w.id,
    outcome,
    reasons: [reason],
    message: (ctx.mode === "preview" ? "Preview: " : "") + message,
    ...(bill ? { bill: { ...bill, status: status ?? bill.status } } : {}),
    reference: number,
    lifecycle: { case: c, action },
  };
}

/**
 * Gives every record of the batch that is deleted, cancelled or unticked with a bill its result
 * (so reconcile and write pass it by), and deletes or voids the bills the settings say to.
 */
export async function closeBills(
  ctx: BatchContext,
  work: Work[],
  notFound: Set<string>,
): Promise<void> {
  const cases = new Map<Work, LifecycleCase>();
  for (const w of work) {
    const c = caseOf(ctx, w, notFound);
    if (c) cases.set(w, c);
  }
  if (!cases.size) return;
  const preview = ctx.mode === "preview";
  const acting: Work[] = [];
  for (const [w, c] of cases) {
    const number = w.state!.invoiceNumber || "";
    const bill = number ? `its bill ${number}` : "its bill";
    if (CLOSED.has(w.state!.billStatus ?? "")) {
      const done = w.state!.billStatus === "VOIDED" ? "voided" : "deleted";
      w.result = row(
        ctx,
        w,
        c,
        "none",
        "skipped",
        `${why(ctx, c)}; ${bill} is ${done} in Xero`,
        `Nothing to do: ${bill} is already ${done} in Xero.`,
      );
    } else if (ctx.settings.lifecycle[c] === "leave") {
      const reason = `${why(ctx, c)}; ${bill} was left in Xero (setting: leave the bill)`;
      w.result = row(ctx, w, c, "left", "skipped", reason, `${reason}.`);
    } else {
      w.result = undefined; // the read's or the eligibility's word is replaced by this stage's
      acting.push(w);
    }
  }

  if (acting.length) {
    let found: Map<string, XeroBillSummary>;
    try {
      found = await ctx.xero.billStates(acting.map((w) => w.state!.invoiceId!));
    } catch (err) {
      const stop = asRunStop(err, "xero");
      if (stop) throw stop;
      for (const w of acting) {
        w.result = failure(
          w,
          "xero",
          `the bill's status could not be read from Xero: ${describe(err)}`,
        );
      }
      found = new Map();
    }
    const changes: Array<{ w: Work; status: "DELETED" | "VOIDED" }> = [];
    for (const w of acting) {
      if (w.result) continue;
      const c = cases.get(w)!;
      const number = w.state!.invoiceNumber || "";
      const bill = number ? `its bill ${number}` : "its bill";
      const b = found.get(w.state!.invoiceId!);
      if (!b) {
        w.result = row(
          ctx,
          w,
          c,
          "none",
          "skipped",
          `${why(ctx, c)}; ${bill} was not found in Xero`,
          `Nothing to do: ${bill} was not found in Xero.`,
        );
        continue;
      }
      const paid = (b.amountPaid ?? 0) > 0 || b.status === "PAID";
      if (paid) {
        const reason = `${why(ctx, c)}; ${bill} has a payment in Xero, so it was not changed`;
        w.result = row(ctx, w, c, "kept", "skipped", reason, `${reason}.`, b.status);
      } else if (CLOSED.has(b.status)) {
        const done = b.status === "VOIDED" ? "voided" : "deleted";
        w.state = { ...w.state, billStatus: b.status };
        w.result = row(
          ctx,
          w,
          c,
          "none",
          "skipped",
          `${why(ctx, c)}; ${bill} is ${done} in Xero`,
          `Nothing to do: ${bill} is already ${done} in Xero.`,
          b.status,
        );
      } else if (b.status === "AUTHORISED") changes.push({ w, status: "VOIDED" });
      else changes.push({ w, status: "DELETED" });
    }

    if (changes.length && !preview) {
      let answers: Awaited<ReturnType<BatchContext["xero"]["setBillStatuses"]>>;
      try {
        answers = await ctx.xero.setBillStatuses(
          changes.map((ch) => ({ invoiceID: ch.w.state!.invoiceId!, status: ch.status })),
        );
      } catch (err) {
        const stop = asRunStop(err, "xero");
        if (stop) throw stop;
        answers = new Map(changes.map((ch) => [ch.w.state!.invoiceId!, {
          ok: false as const,
          message: describe(err),
          retryable: true,
        }]));
      }
      for (const { w, status } of changes) {
        const a = answers.get(w.state!.invoiceId!);
        const verb = status === "VOIDED" ? "voided" : "deleted";
        if (!a?.ok) {
          w.result = failure(
            w,
            "xero",
            `the bill could not be ${verb} in Xero: ${a?.message ?? "no answer"}`,
          );
          continue;
        }
        w.state = { ...w.state, billStatus: a.status || status };
      }
    }
    for (const { w, status } of changes) {
      if (w.result) continue;
      const c = cases.get(w)!;
      const verb = status === "VOIDED" ? "voided" : "deleted";
      const number = w.state!.invoiceNumber || "";
      const its = number ? `its bill ${number}` : "its bill";
      const bill = number ? `Bill ${number}` : "The bill";
      const cause = why(ctx, c);
      w.result = row(
        ctx,
        w,
        c,
        verb,
        "updated",
        `${cause}; ${its} ${preview ? "would be" : "was"} ${verb} in Xero`,
        `${bill} ${preview ? "would be " : ""}${verb} in Xero: ${lowerFirst(cause)}.`,
        preview ? undefined : status,
      );
    }
  }

  // A deleted order is never read again: what was done is kept on its state, so Zoho's
  // deleted-records list does not bring it back (the record stage does not store deleted ones).
  if (!preview) {
    const at = new Date().toISOString();
    const ops = [...cases].filter(([w, c]) =>
      c === "deleted" && w.result && w.result.outcome !== "failed"
    );
    if (ops.length) {
      let atomic = ctx.kv.atomic();
      for (const [w] of ops) {
        w.state = {
          ...w.state,
          closed: { case: "deleted", action: w.result!.lifecycle!.action, at },
        };
        atomic = atomic.set(keys.billMapping(w.id), w.state);
      }
      await atomic.commit();
    }
  }
}

/**
 * Zoho's deleted-records list since the last look (a KV watermark): the orders among them that
 * own a bill not yet dealt with are queued, so the run reads them (Zoho answers "no such record")
 * and this stage handles them.
 */
export async function queueDeleted(
  kv: Deno.Kv,
  zoho: ZohoPort,
  { enqueue, keepWatermark = false }: {
    enqueue: (ids: string[]) => Promise<void> | void;
    /** A preview looks without moving the watermark. */
    keepWatermark?: boolean;
  },
): Promise<number> {
  const mark = (await kv.get<{ value: string }>(keys.deletedWatermark(MODULE))).value;
  const ids: string[] = [];
  let newest = mark?.value;
  for await (const page of zoho.listDeleted({ since: mark?.value })) {
    for (const d of page) {
      ids.push(d.id);
      if (d.deletedTime && (!newest || Date.parse(d.deletedTime) > Date.parse(newest))) {
        newest = d.deletedTime;
      }
    }
  }
  const states = await getStates(kv, [...new Set(ids)]);
  const owed = [...states].filter(([, s]) => s.invoiceId && !s.closed).map(([id]) => id);
  if (owed.length) await enqueue(owed);
  if (!keepWatermark && newest && newest !== mark?.value) {
    await kv.set(keys.deletedWatermark(MODULE), {
      value: newest,
      movedAt: new Date().toISOString(),
    });
  }
  return owed.length;
}
