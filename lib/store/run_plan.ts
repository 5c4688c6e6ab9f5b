/**
 * A run as a durable job in KV: its plan (window, mode, where it stands) and what it listed, in
 * chunks of PLAN_CHUNK items keyed by position. Any instance can go on with a run whose instance
 * stopped, and no instance holds a whole listing in memory.
 *
 * Every write of a plan is fenced: it commits only while the plan still names this executor (an
 * atomic check on the plan's versionstamp), so an instance that was taken for dead and then wakes
 * up cannot write over the one that went on with its run.
 */
import type { RecordResult, Run, RunWindow, Usage } from "../sync/types.ts";
import { keys } from "./keys.ts";
import { getManyChunked } from "./kv.ts";

/** Items per listing chunk (one KV value, ≤ 64 KiB: see fitChunk). */
export const PLAN_CHUNK = 50;
/**
 * Above this (UTF-8 bytes of its JSON), a chunk's listed headers are left out. Characters, not
 * bytes, let a chunk of Japanese subjects (two bytes each in KV) past KV's 64 KiB per value.
 */
const CHUNK_BYTES = 56_000;
const utf8 = new TextEncoder();
/** Plans, chunks and their index outlive a run only this long if their clean-up never ran. */
const PLAN_TTL_MS = 14 * 86_400_000;

/** One listed record: id, its listed Modified_Time and content fingerprint. */
export interface PlanItem {
  id: string;
  t?: string;
  f?: string;
  /** The listed header fields, for line items read in bulk (lib/sync/stages/bulk.ts). */
  h?: Record<string, unknown>;
  /** Read whatever its Modified_Time says (a preview's deleted orders: no queue entry). */
  x?: 1;
}

export interface RunPlan {
  runId: string;
  /** The instance going on with the run now (a random id per engine). */
  executor: string;
  window: RunWindow;
  days?: number;
  mode: Run["mode"];
  /** Lower bound of the listing (Zoho time), undefined for every record. */
  since?: string;
  movesWatermark: boolean;
  /** The listing is complete and the forced ids (retry set, webhook queue) are appended. */
  listed: boolean;
  /** Only the standard fields could be listed (a custom field is missing in this org). */
  standardFields?: boolean;
  /**
   * The settings the listing was made under: its headers hold their fields only (the checkbox,
   * the vendor), so an execution under other settings reads each record with the GET instead.
   */
  settingsKey?: string;
  /** Items written so far (positions 0 … count-1). */
  count: number;
  /** The last Modified_Time written: a resumed listing starts again from its second. */
  listedUpTo?: string;
  /** Next position to process. */
  position: number;
  /** Positions holding an order listed again later (edited while listing): left to the later. */
  duplicates: number;
  /** Of those, the ones before `position` (already passed over). */
  skipped: number;
  /** The watermark as this run has moved it. */
  watermark: string | null;
  /** API calls of earlier executors (each instance counts its own). */
  calls: { zoho: number; xero: number };
  /** What earlier executors used (credits, calls by kind, egress). */
  usage?: Usage;
  listMs: number;
  /** Milliseconds spent by earlier executors. */
  elapsedMs: number;
  /** How often another instance went on with the run. */
  resumes: number;
}

export class PlanLost extends Error {
  constructor(runId: string) {
    super(`run ${runId} is going on in another instance`);
    this.name = "PlanLost";
  }
}

type Op = (a: Deno.AtomicOperation) => Deno.AtomicOperation;

export async function getPlan(kv: Deno.Kv, runId: string) {
  return await kv.get<RunPlan>(keys.runPlan(runId));
}

/** A plan this instance executes; every write of it (and of its run) goes through here. */
export class PlanHandle {
  #versionstamp: string;
  #queue: Promise<unknown> = Promise.resolve();
  /** The run as last handed to commit (what a heartbeat renews). */
  #saved?: Run;
  /** Positions already written (a chunk being filled is rewritten with more items). */
  #written: number;
  lost = false;

  constructor(readonly kv: Deno.Kv, readonly plan: RunPlan, versionstamp: string, run?: Run) {
    this.#versionstamp = versionstamp;
    this.#written = plan.count;
    this.#saved = run && structuredClone(run);
  }

  /**
   * Stores the run with the plan and `ops`, as one atomic write. Both are copied now: what the
   * caller changes afterwards (counts of a batch not yet checkpointed) is not written with them.
   */
  commit(run: Run, ops: Op[] = []): Promise<void> {
    const [r, p] = [structuredClone(run), structuredClone(this.plan)];
    this.#saved = r;
    return this.#enqueue(() => this.#commit(r, ops, p));
  }

  /** Renews the stored run's heartbeat: the last checkpointed run, nothing newer. */
  heartbeat(at: string): Promise<void> {
    if (!this.#saved) return Promise.resolve();
    const r = { ...this.#saved, heartbeatAt: at };
    this.#saved = r;
    return this.#enqueue(() => this.#commit(r, [], undefined));
  }

  #enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(work);
    this.#queue = next.catch(() => {});
    return next;
  }

  async #commit(run: Run, ops: Op[], plan: RunPlan | undefined): Promise<void> {
    const withPlan = plan !== undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (this.lost) throw new PlanLost(this.plan.runId);
      let a = this.kv.atomic().check({
        key: keys.runPlan(this.plan.runId),
        versionstamp: this.#versionstamp,
      })
        .set(keys.run(run.id), run);
      if (plan) a = a.set(keys.runPlan(this.plan.runId), plan, { expireIn: PLAN_TTL_MS });
      for (const op of ops) a = op(a);
      const res = await a.commit();
      if (res.ok) {
        if (withPlan) this.#versionstamp = res.versionstamp;
        return;
      }
      const now = await getPlan(this.kv, this.plan.runId);
      if (!now.value || now.value.executor !== this.plan.executor) {
        this.lost = true;
        throw new PlanLost(this.plan.runId);
      }
      this.#versionstamp = now.versionstamp!;
    }
    throw new Error("KV refused the run's checkpoint five times");
  }

  /** Writes listed items at positions count…, with the plan (fenced), in chunks. */
  async append(run: Run, items: PlanItem[], partial: PlanItem[]): Promise<PlanItem[]> {
    // `partial` = items already in the last, unfilled chunk (kept by the caller, ≤ PLAN_CHUNK).
    let buffer = partial;
    for (const item of items) {
      buffer.push(item);
      this.plan.count++;
      if (this.plan.count % PLAN_CHUNK === 0) {
        await this.#writeChunk(run, buffer);
        buffer = [];
      }
    }
    if (buffer.length) await this.#writeChunk(run, buffer);
    return buffer;
  }

  async #writeChunk(run: Run, chunk: PlanItem[]) {
    const runId = this.plan.runId;
    const start = this.plan.count - chunk.length;
    this.plan.listedUpTo = chunk.findLast((i) => i.t)?.t ?? this.plan.listedUpTo;
    // Orders listed before (at an earlier position): the progress counts each order once.
    const at = await listedAt(this.kv, runId, chunk.map((i) => i.id));
    const inChunk = new Map<string, number>();
    chunk.forEach((item, i) => {
      const pos = start + i;
      const before = inChunk.get(item.id) ?? at[i];
      if (pos >= this.#written && before !== undefined && before < pos) this.plan.duplicates++;
      inChunk.set(item.id, pos);
    });
    const ops: Op[] = [
      (a) =>
        a.set(keys.runPlanItems(runId, Math.floor(start / PLAN_CHUNK)), fitChunk(chunk), {
          expireIn: PLAN_TTL_MS,
        }),
    ];
    chunk.forEach((item, i) =>
      ops.push((a) =>
        a.set(keys.runPlanListed(runId, item.id), start + i, { expireIn: PLAN_TTL_MS })
      )
    );
    await this.commit(run, ops);
    this.#written = this.plan.count;
  }

  /** Stores a batch's results (and `ops`: the watermark) with the run and the plan's position. */
  checkpoint(run: Run, results: RecordResult[], ops: Op[] = []): Promise<void> {
    return this.commit(run, [
      ...results.map((r): Op => (a) => a.set(keys.runResult(run.id, r.purchaseOrderId), r)),
      ...ops,
    ]);
  }
}

/**
 * A chunk as stored: whole, or without its listed headers when they would not fit one KV value
 * (long texts): those orders are then read with the single-record GET, as when COQL is refused.
 */
function fitChunk(chunk: PlanItem[]): PlanItem[] {
  if (utf8.encode(JSON.stringify(chunk)).length <= CHUNK_BYTES) return chunk;
  return chunk.map(({ h: _h, ...rest }) => rest);
}

/** The last, possibly unfilled chunk of a listing (a resumed listing goes on filling it). */
export async function lastChunk(kv: Deno.Kv, plan: RunPlan): Promise<PlanItem[]> {
  if (plan.count % PLAN_CHUNK === 0) return [];
  const chunk = Math.floor(plan.count / PLAN_CHUNK);
  return ((await kv.get<PlanItem[]>(keys.runPlanItems(plan.runId, chunk))).value ?? [])
    .slice(0, plan.count % PLAN_CHUNK);
}

/** Items at positions from … from+n-1 (fewer at the end of the listing). */
export async function readItems(
  kv: Deno.Kv,
  plan: RunPlan,
  from: number,
  n: number,
): Promise<PlanItem[]> {
  const end = Math.min(from + n, plan.count);
  const out: PlanItem[] = [];
  for (let c = Math.floor(from / PLAN_CHUNK); c * PLAN_CHUNK < end; c++) {
    const chunk = (await kv.get<PlanItem[]>(keys.runPlanItems(plan.runId, c))).value ?? [];
    const lo = Math.max(from - c * PLAN_CHUNK, 0);
    const hi = Math.min(end - c * PLAN_CHUNK, chunk.length);
    out.push(...chunk.slice(lo, hi));
  }
  return out;
}

/** Positions the ids were last listed at (undefined: not listed by this run). */
export async function listedAt(
  kv: Deno.Kv,
  runId: string,
  ids: string[],
): Promise<Array<number | undefined>> {
  const got = await getManyChunked<number>(kv, ids.map((id) => keys.runPlanListed(runId, id)));
  return got.map((e) => e.value ?? undefined);
}

/** Removes a finished run's plan, chunks and index (the run and its results stay). */
export async function dropPlan(kv: Deno.Kv, runId: string): Promise<void> {
  for (const prefix of [keys.runPlanItemsPrefix(runId), keys.runPlanListedPrefix(runId)]) {
    let a = kv.atomic();
    let n = 0;
    for await (const e of kv.list({ prefix }, { batchSize: 500 })) {
      a = a.delete(e.key);
      if (++n % 500 === 0) {
        await a.commit();
        a = kv.atomic();
      }
    }
    await a.commit();
  }
  await kv.delete(keys.runPlan(runId));
}
