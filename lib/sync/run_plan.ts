/**
 * The listing and the batches of a durable run (lib/store/run_plan.ts): what a run holds in memory
 * is one Zoho page and one batch, never the organisation. The listing is streamed into KV chunks by
 * position as Zoho pages it (sorted by Modified_Time), batches are read back from there, and a run
 * taken over by another instance goes on from its last checkpoint.
 */
import type { Settings } from "../mapping/mod.ts";
import { keys } from "../store/keys.ts";
import {
  lastChunk,
  listedAt,
  type PlanHandle,
  type PlanItem,
  readItems,
} from "../store/run_plan.ts";
import { forcedAmong, type Retried } from "./retried.ts";
import type { BatchItem } from "./batch.ts";
import { asRunStop, describe } from "./errors.ts";
import { fingerprint, listFields } from "./fingerprint.ts";
import type { ZohoListRecord, ZohoPort } from "./ports.ts";
import type { Run } from "./types.ts";

const MODULE = "Purchase_Orders" as const;
/** A resumed listing reads this much again before where it stopped (pages are nearly sorted). */
const RELIST_OVERLAP_MS = 60_000;

/**
 * Lists every changed record into the plan before any is written (a write-back bumps
 * Modified_Time), then appends the ids of the retry set and the webhook queue it did not list.
 * An order edited while listing shows twice; its last position is the one processed. Returns the
 * vendors of ticked records seen (bounded by the organisation's vendors, not its orders).
 */
export async function listIntoPlan(
  o: {
    kv: Deno.Kv;
    zoho: ZohoPort;
    handle: PlanHandle;
    run: Run;
    settings: Settings;
    /** Ids read whatever they show (a preview's deleted orders, which it does not queue). */
    forced?: Iterable<string>;
  },
): Promise<Map<string, string>> {
  const { kv, zoho, handle, run, settings } = o;
  const plan = handle.plan;
  const vendors = new Map<string, string>();
  let partial = await lastChunk(kv, plan);
  // The bill id written back is listed only if Zoho has the field; unknown, no header is kept.
  const zohoFields = await zoho.fieldNames().catch(() => undefined);
  for (let pass = 0; pass < 2; pass++) {
    const fields = plan.standardFields ? ["Modified_Time"] : listFields(settings, zohoFields);
    const since = resumeSince(plan.since, plan.listedUpTo);
    const content = !plan.standardFields;
    try {
      for await (const page of zoho.listChanged({ since, fields })) {
        const items = page.map((r) =>
          itemOf(r, settings, content, content && !!zohoFields, vendors)
        );
        partial = await handle.append(run, items, partial);
      }
      break;
    } catch (err) {
      // A custom field that does not exist in this org: list again with the standard field only.
      if (!plan.standardFields && /INVALID_DATA|INVALID_REQUEST|field/i.test(describe(err))) {
        plan.standardFields = true;
        plan.count = 0;
        plan.duplicates = 0;
        plan.listedUpTo = undefined;
        partial = [];
        continue;
      }
      // Zoho refusing new tokens (or wanting a reconnect) stops the run with the reason.
      throw asRunStop(err, "zoho") ?? err;
    }
  }
  // Failed records and webhook ids are fetched whatever their Modified_Time says.
  const named = [...new Set(o.forced ?? [])];
  if (named.length) {
    const at = await listedAt(kv, plan.runId, named);
    const extra = named.filter((_, i) => at[i] === undefined).map((id) => ({ id, x: 1 as const }));
    partial = await handle.append(run, extra, partial);
  }
  for (const prefix of [keys.retryPrefix(MODULE), keys.queuePrefix(MODULE)]) {
    let ids: string[] = [];
    const flush = async () => {
      const at = await listedAt(kv, plan.runId, ids);
      const extra = [...new Set(ids.filter((_, i) => at[i] === undefined))];
      partial = await handle.append(run, extra.map((id) => ({ id })), partial);
      ids = [];
    };
    for await (const e of kv.list({ prefix }, { batchSize: 500 })) {
      ids.push(String(e.key.at(-1)));
      if (ids.length >= 500) await flush();
    }
    if (ids.length) await flush();
  }
  plan.listed = true;
  run.planned = plan.count - plan.duplicates;
  await handle.commit(run);
  return vendors;
}

/** Where a listing starts: its window, or shortly before where a stopped listing had got to. */
function resumeSince(since: string | undefined, upTo: string | undefined): string | undefined {
  if (!upTo) return since;
  const from = Date.parse(upTo) - RELIST_OVERLAP_MS;
  if (since && Date.parse(since) >= from) return since;
  return new Date(from).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

function itemOf(
  r: ZohoListRecord,
  settings: Settings,
  withContent: boolean,
  withHeader: boolean,
  vendors: Map<string, string>,
): PlanItem {
  const v = r[settings.vendorField] as { id?: unknown; name?: unknown } | null | undefined;
  if (r[settings.checkboxField] === true && v && typeof v.id === "string") {
    vendors.set(v.id, typeof v.name === "string" ? v.name : v.id);
  }
  return {
    id: r.id,
    t: r.Modified_Time,
    ...(withContent ? { f: fingerprint(r, settings) } : {}),
    ...(withHeader ? { h: r } : {}),
  };
}

export interface LoadedBatch {
  /** First position and how many positions it covers (duplicates included). */
  from: number;
  size: number;
  items: BatchItem[];
  /** The listed Modified_Times of its items (what the watermark may move past). */
  times: string[];
  /** Why the batch reads some of its records whatever they show (retry set, webhook queue). */
  retried: Map<string, Retried>;
}

/**
 * Positions from … from+n-1 as batch items: a record listed again later is left to its last
 * position; one in the retry set or webhook queue is fetched whatever its Modified_Time says.
 * `fresh`: the batch a stopped instance was working on, which it may have written back to Zoho
 * already: what the listing showed of it is out of date, so each record is read again, whole.
 * `headers: false`: the listed headers were read under other settings (not their fields).
 */
export async function loadBatch(
  kv: Deno.Kv,
  handle: PlanHandle,
  from: number,
  n: number,
  { fresh = false, headers = true } = {},
): Promise<LoadedBatch> {
  const runId = handle.plan.runId;
  const listed = await readItems(kv, handle.plan, from, n);
  const ids = listed.map((i) => i.id);
  const [at, retried] = await Promise.all([
    listedAt(kv, runId, ids),
    forcedAmong(kv, MODULE, ids),
  ]);
  const items: LoadedBatch["items"] = [];
  const times: string[] = [];
  listed.forEach((it, i) => {
    if (at[i] !== undefined && at[i] !== from + i) return;
    if (it.t) times.push(it.t);
    if (fresh) return void items.push({ id: it.id });
    const forced = it.x === 1 || retried.has(it.id);
    items.push({
      id: it.id,
      listedModifiedTime: forced ? undefined : it.t,
      listedTime: it.t,
      listedFingerprint: it.f,
      listedRecord: headers ? it.h : undefined,
    });
  });
  return { from, size: listed.length, items, times, retried };
}
