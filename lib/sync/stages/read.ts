/**
 * Stage 2, read: the full record (with its line items) from Zoho. A run reads the next batch
 * while the current one is written to Xero; records that look unchanged are not read at all.
 * Listed records get their line items in bulk (COQL, up to 50 orders a call) where Zoho allows
 * it and the lines add up to the order's totals; every other record is read with the GET.
 */
import { kvStamp } from "../../store/clock.ts";
import { getStates } from "../../store/records.ts";
import { asRunStop, describe } from "../errors.ts";
import { mapLimit } from "../limit.ts";
import { type BatchContext, type BatchItem, failure, type Prefetched, type Work } from "../work.ts";
import { recordFromBulk } from "./bulk.ts";
import { isUnchanged } from "./evaluate.ts";

// The Zoho client holds its calls to the org's limit (ZOHO_MAX_CONCURRENCY); this only feeds it.
const PARALLEL_READS = 10;

export async function prefetchRecords(ctx: BatchContext, items: BatchItem[]): Promise<Prefetched> {
  const states = await getStates(ctx.kv, items.map((i) => i.id));
  const wanted = items.filter((i) => !isUnchanged(ctx, i, states.get(i.id)));
  const out: Prefetched = new Map();
  if (!wanted.length) return out;
  // A preview writes nothing, not even KV's clock (it pays no debts either).
  const readStamp = ctx.mode === "preview" ? "" : await kvStamp(ctx.kv);
  const single = await readInBulk(ctx, wanted, out, readStamp);
  await mapLimit(single, PARALLEL_READS, async (item) => {
    const readAt = Date.now();
    try {
      out.set(item.id, { raw: await ctx.zoho.getPurchaseOrder(item.id), readAt, readStamp });
    } catch (error) {
      out.set(item.id, { error, readAt, readStamp });
    }
  });
  return out;
}

/**
 * Puts the records it can into `out` from their listing and their lines read in bulk; returns
 * the others. Only records listed in this run with every header field qualify: a record named
 * by the retry set, a webhook or the button is read with the GET, and so is any whose bulk
 * lines do not reproduce its totals. A bulk read that fails costs nothing but the GETs.
 */
async function readInBulk(
  ctx: BatchContext,
  items: BatchItem[],
  out: Prefetched,
  readStamp: string,
): Promise<BatchItem[]> {
  const bulk = items.filter((i) => i.listedRecord && i.listedModifiedTime !== undefined);
  if (!bulk.length || !ctx.zoho.readLineItems) return items;
  const readAt = Date.now();
  let lines: Map<string, Record<string, unknown>[]> | null;
  try {
    lines = await ctx.zoho.readLineItems(bulk.map((i) => i.id));
  } catch {
    lines = null;
  }
  if (!lines) return items;
  const rest: BatchItem[] = [];
  for (const item of items) {
    const raw = item.listedRecord && item.listedModifiedTime !== undefined
      ? recordFromBulk(item.listedRecord, lines.get(item.id), ctx.settings)
      : null;
    if (raw) out.set(item.id, { raw, readAt, readStamp });
    else rest.push(item);
  }
  return rest;
}

/** Reads every record still to do; a record Zoho no longer has is skipped and named in notFound. */
export async function readRecords(
  ctx: BatchContext,
  work: Work[],
  prefetched: Prefetched,
  notFound: Set<string>,
): Promise<void> {
  const todo = work.filter((w) => !w.result);
  if (!todo.length) return;
  const stampNow = ctx.mode === "preview" ? "" : await kvStamp(ctx.kv);
  await mapLimit(todo, PARALLEL_READS, async (w) => {
    let ahead = prefetched.get(w.id);
    // Read ahead before the lock was ours: if another sync stored this record since, read again.
    if (ahead && w.stateStamp && w.stateStamp > ahead.readStamp) ahead = undefined;
    w.readStamp = ahead?.readStamp ?? stampNow;
    w.readAt = ahead?.readAt ?? Date.now();
    try {
      if (ahead && "error" in ahead && ahead.error !== undefined) throw ahead.error;
      const raw = ahead ? ahead.raw ?? null : await ctx.zoho.getPurchaseOrder(w.id);
      if (!raw) {
        notFound.add(w.id);
        const reasons = ["The purchase order no longer exists in Zoho CRM"];
        w.result = {
          purchaseOrderId: w.id,
          outcome: "skipped",
          reasons,
          message: "Not synced: the purchase order no longer exists in Zoho CRM.",
        };
        return;
      }
      w.raw = raw;
      w.modifiedTime = typeof raw.Modified_Time === "string" ? raw.Modified_Time : undefined;
    } catch (err) {
      const stop = asRunStop(err, "zoho");
      if (stop) throw stop;
      w.result = failure(w, "zoho", `Zoho CRM could not be read: ${describe(err)}`);
    }
  });
}
