/**
 * Stage 6, write-back: the bill's details and the sync status onto the Zoho records, without
 * firing Zoho workflows (trigger: [] in the client) and only when the values changed. The PUT
 * carries If-Unmodified-Since, so a person's edit made while we synced is never taken for our
 * own echo: Zoho refuses the write, and the record is synced again by the next run.
 */
import { keys } from "../../store/keys.ts";
import { commitChunked } from "../../store/records.ts";
import { sha256Hex } from "../../secrets.ts";
import { describe } from "../errors.ts";
import { type BatchContext, MODULE, warn, type Work, zohoDateTime } from "../work.ts";

export type WriteBackFields = Partial<
  Record<"billId" | "billNumber" | "billStatus" | "syncStatus" | "syncError" | "lastSynced", string>
>;

const notFailed = (w: Work) => w.result!.outcome !== "failed";

/**
 * Returns the records whose Zoho side is settled (written, or nothing to write), whose
 * Modified_Time can now be remembered; the others are put in the retry set.
 */
export async function writeBack(ctx: BatchContext, work: Work[]): Promise<Work[]> {
  if (!ctx.settings.writeBack.enabled) return [];
  // Unchanged records too: their earlier write-back may have failed (the hash check skips the rest).
  const candidates = work.filter((w) => w.locked && w.result && w.raw);
  if (!candidates.length) return [];
  let fields: WriteBackFields | null;
  try {
    fields = await ctx.writeBackFields();
  } catch (err) {
    // The field list could not be read: the write-back is still owed (found by tests/reliability).
    const owed = candidates.filter(notFailed);
    for (const w of owed) warn(w, `Could not write the sync status back to Zoho: ${describe(err)}`);
    await owe(ctx, owed.map((w) => w.id), "write-back to Zoho failed");
    return [];
  }
  if (!fields || !Object.keys(fields).length) return candidates.filter(notFailed);
  const upToDate: Work[] = [];
  const rows: Array<{ id: string } & Record<string, unknown>> = [];
  const hashes = new Map<string, string>();
  for (const w of candidates) {
    const values = valuesOf(w, fields);
    const hash = await sha256Hex(JSON.stringify(values));
    if (hash === w.state?.writeBackHash) {
      if (notFailed(w)) upToDate.push(w);
      continue;
    }
    hashes.set(w.id, hash);
    if (fields.lastSynced) values[fields.lastSynced] = zohoDateTime(new Date());
    rows.push({ id: w.id, ...values });
  }
  if (!rows.length) return upToDate;
  const byId = new Map(work.map((w) => [w.id, w]));
  let answers;
  try {
    answers = await sendGuarded(ctx, rows, byId);
  } catch (err) {
    for (const r of rows) {
      warn(byId.get(r.id), `Could not write the sync status back to Zoho: ${describe(err)}`);
    }
    await owe(ctx, rows.map((r) => r.id), "write-back to Zoho failed");
    return upToDate;
  }
  const written: Work[] = [...upToDate];
  const owedIds: string[] = [];
  const editedIds: string[] = [];
  for (const a of answers) {
    const w = byId.get(a.id);
    if (!w) continue;
    if (a.ok) {
      // Remember the Modified_Time our own write produced, so the next run does not refetch.
      if (a.modifiedTime) w.modifiedTime = a.modifiedTime;
      w.state = { ...w.state, writeBackHash: hashes.get(a.id) };
      if (notFailed(w)) written.push(w);
    } else if (a.code === "ALREADY_MODIFIED") {
      warn(
        w,
        "The purchase order was edited in Zoho while it was being synced; the next run syncs the edit",
      );
      editedIds.push(a.id);
    } else if (a.code === "INVALID_DATA") {
      // Zoho will not take these values: the record has not settled, and the run says so.
      const why = `Zoho refused the write-back: ${
        a.message ?? "invalid data"
      }. Check the write-back fields on the settings page.`;
      w.result = {
        ...w.result!,
        outcome: "failed",
        failedAt: "zoho",
        reasons: [why],
        message: `Sync failed: ${why}`,
      };
      owedIds.push(a.id);
    } else {
      warn(
        w,
        `Could not write the sync status back to Zoho: ${a.code ?? ""} ${a.message ?? ""}`.trim(),
      );
      owedIds.push(a.id);
    }
  }
  await owe(ctx, owedIds, "write-back to Zoho failed");
  await owe(ctx, editedIds, "edited in Zoho during the sync");
  return written;
}

type Row = { id: string } & Record<string, unknown>;
type Answer = Awaited<ReturnType<BatchContext["zoho"]["updateRecords"]>>[number];

/**
 * If-Unmodified-Since applies to a whole Zoho call, and Zoho's Modified_Time is the only clock
 * we share with it. Rows Zoho showed the same when listed and when read were last changed before
 * the listing, so every one of their reads came after the latest of their times: that time guards
 * them all (an edit after any read is later). A row changed between listing and read (or not
 * listed: the button, the retry set, a webhook) is guarded by its own time, in a call of its own.
 */
async function sendGuarded(ctx: BatchContext, rows: Row[], work: Map<string, Work>) {
  const modifiedOf = (r: Row) => {
    const t = work.get(r.id)?.raw?.Modified_Time;
    return typeof t === "string" ? t : undefined;
  };
  const steady = rows.filter((r) => {
    const w = work.get(r.id)!;
    return !!modifiedOf(r) && w.item.listedTime === modifiedOf(r);
  });
  const alone = rows.filter((r) => !steady.includes(r));
  const answers: Answer[] = [];
  if (steady.length) answers.push(...await sendSplitting(ctx, steady, modifiedOf));
  for (const r of alone) answers.push(...await sendSplitting(ctx, [r], modifiedOf));
  return answers;
}

/** A refused call is split in halves until the edited rows are alone: one edit costs log n calls. */
async function sendSplitting(
  ctx: BatchContext,
  rows: Row[],
  modifiedOf: (r: Row) => string | undefined,
): Promise<Answer[]> {
  const times = rows.map(modifiedOf).filter((t): t is string => !!t);
  const latest = times.reduce<string | undefined>(
    (m, t) => (!m || Date.parse(t) > Date.parse(m) ? t : m),
    undefined,
  );
  const answers = await ctx.zoho.updateRecords(rows, latest ? { ifUnmodifiedSince: latest } : {});
  const refused = answers.length > 1 && answers.every((a) => a.code === "ALREADY_MODIFIED");
  if (!refused) return answers;
  const half = Math.ceil(rows.length / 2);
  return [
    ...await sendSplitting(ctx, rows.slice(0, half), modifiedOf),
    ...await sendSplitting(ctx, rows.slice(half), modifiedOf),
  ];
}

function valuesOf(w: Work, fields: WriteBackFields): Record<string, unknown> {
  const r = w.result!;
  const values: Record<string, unknown> = {};
  const put = (k: keyof WriteBackFields, v: unknown) => {
    if (fields[k]) values[fields[k]!] = v;
  };
  if (w.state?.invoiceId) {
    put("billId", w.state.invoiceId);
    put("billNumber", w.state.invoiceNumber ?? null);
    put("billStatus", w.state.billStatus ?? null);
  }
  put(
    "syncStatus",
    r.outcome === "failed" ? "Failed" : r.outcome === "skipped" ? "Not synced" : "Synced",
  );
  put(
    "syncError",
    r.outcome === "failed" || r.outcome === "skipped" ? r.reasons.join("; ").slice(0, 255) : null,
  );
  return values;
}

/** A record whose Zoho side did not settle is read again by the next run. */
export async function owe(ctx: BatchContext, ids: string[], reason: string) {
  const since = new Date().toISOString();
  await commitChunked(
    ctx.kv,
    ids.map((id) => (a) => a.set(keys.retry(MODULE, id), { since, reason })),
  );
}
