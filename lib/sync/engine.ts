/**
 * Sync runs and the single-record sync behind the Zoho button (DESIGN §7): one run at a time per
 * module (a KV lease), checkpoints after every batch, a watermark that moves only past records that
 * are done, and a retry set for the ones that failed.
 */
import { type Settings, SettingsSchema, writeBackIssues } from "../mapping/mod.ts";
import { kvStamp } from "../store/clock.ts";
import { getManyChunked, listAll } from "../store/kv.ts";
import { commitChunked, type RecordState } from "../store/records.ts";
import { keys } from "../store/keys.ts";
import { acquire, holder, release, renew } from "../store/locks.ts";
import { getResults, getRun, listRuns, newRunId, saveRun } from "../store/runs.ts";
import { dropPlan, getPlan, PlanHandle, PlanLost, type RunPlan } from "../store/run_plan.ts";
import { type Prefetched, prefetchRecords, processBatch, type WriteBackFields } from "./batch.ts";
import { describe, RunStop } from "./errors.ts";
import { markRetried } from "./retried.ts";
import { LOCK_TTL_MS } from "./stages/lock.ts";
import { listIntoPlan, loadBatch, type LoadedBatch } from "./run_plan.ts";
import { traceRun } from "../telemetry.ts";
import { type BillStatusReport, syncBillStatuses } from "./bill_status.ts";
import { queueDeleted } from "./stages/lifecycle.ts";
import { settingsKey } from "./fingerprint.ts";
import { addUsage, usageMark, usageSince } from "./usage.ts";
import type { XeroPort, ZohoPort } from "./ports.ts";
import {
  emptyCounts,
  type Mode,
  type RecordResult,
  type Run,
  type StartRunInput,
  type Trigger,
} from "./types.ts";

const MODULE = "Purchase_Orders" as const;
const RUN_LEASE_MS = 90_000;
// A stopped run is found two heartbeats after its last (20 s), plus up to a minute for the cron.
const HEARTBEAT_MS = 10_000;
/** When a paused run tries again if the service said nothing (Xero's day, Zoho's mint window). */
const PAUSE_MS = { xero: 3_600_000, zoho: 600_000 } as const;
/** A run older than this is not gone on with: its listing in KV expires at 14 days. */
const PLAN_MAX_AGE_MS = 13 * 86_400_000;

export interface SyncEngineOptions {
  kv: Deno.Kv;
  zoho: ZohoPort;
  xero: XeroPort;
  /** Records per batch (≤ 100: Zoho's write-back limit; the Xero client sends ≤ 50 per call). */
  batchSize?: number;
  /** How far before the watermark a since_last_sync run starts listing. */
  overlapMs?: number;
  /** How long a sync waits for a record another sync holds. */
  lockWaitMs?: number;
  /**
   * Run lease: a run whose heartbeat is older than this is taken for dead and closed by the next
   * start (default 90 s). Tests that kill the process use a shorter one.
   */
  runLeaseMs?: number;
  /** How often a running run renews its lease and heartbeat (default 10 s, < runLeaseMs / 3). */
  heartbeatMs?: number;
  /** How long a per-record lock lasts when its holder dies (default 120 s). */
  recordLockMs?: number;
  /** How long a bill create that got no answer is waited for before it is sent again (120 s). */
  unconfirmedWaitMs?: number;
  /** Requests look for a stopped run to go on with at most this often per instance (30 s). */
  resumeCheckMs?: number;
}

export type StartResult =
  | { started: true; runId: string; done: Promise<Run> }
  | { started: false; runId: string };

export class SyncEngine {
  readonly kv: Deno.Kv;
  readonly zoho: ZohoPort;
  readonly xero: XeroPort;
  private readonly batchSize: number;
  private readonly overlapMs: number;
  private readonly lockWaitMs: number;
  private readonly runLeaseMs: number;
  private readonly heartbeatMs: number;
  private readonly recordLockMs?: number;
  private readonly unconfirmedWaitMs?: number;
  private fieldCache?: { at: number; names: Set<string> };
  /** Runs this instance is executing (never taken over by itself, however late its heartbeat). */
  private readonly executing = new Set<string>();
  private readonly resumeCheckMs: number;
  private lastResumeCheck = 0;
  /** Runs going on in this process (shutdown and tests wait for them). */
  private readonly active = new Set<Promise<unknown>>();

  constructor(o: SyncEngineOptions) {
    this.kv = o.kv;
    this.zoho = o.zoho;
    this.xero = o.xero;
    // 100 records a batch: one Zoho write-back call (≤ 100), two Xero bill calls (≤ 50 each).
    this.batchSize = Math.min(o.batchSize ?? 100, 100);
    this.overlapMs = o.overlapMs ?? 60_000;
    this.lockWaitMs = o.lockWaitMs ?? 20_000;
    this.runLeaseMs = o.runLeaseMs ?? RUN_LEASE_MS;
    this.heartbeatMs = Math.min(o.heartbeatMs ?? HEARTBEAT_MS, this.runLeaseMs / 3);
    this.recordLockMs = o.recordLockMs;
    this.unconfirmedWaitMs = o.unconfirmedWaitMs;
    this.resumeCheckMs = o.resumeCheckMs ?? 30_000;
  }

  // -- settings ----------------------------------------------------------------------------------

  async settings(): Promise<Settings> {
    const stored = (await this.kv.get(keys.settings())).value;
    const parsed = SettingsSchema.safeParse(stored ?? {});
    return parsed.success ? parsed.data : SettingsSchema.parse({});
  }

  async saveSettings(
    input: unknown,
  ): Promise<{ ok: true; settings: Settings } | { ok: false; errors: string[] }> {
    const parsed = SettingsSchema.safeParse(input);
    if (!parsed.success) {
      return {
        ok: false,
        errors: parsed.error.issues.map((i) => `${i.path.join(".") || "settings"}: ${i.message}`),
      };
    }
    // Write-back must never target the order's own fields (the page checks Zoho's field list
    // too; this holds for every caller).
    const clash = writeBackIssues(parsed.data);
    if (clash.length) {
      return {
        ok: false,
        errors: clash.map((c) =>
          `writeBack.fields.${c.key}: ${parsed.data.writeBack.fields[c.key]} ${c.message}`
        ),
      };
    }
    const before = settingsKey(await this.settings());
    await this.kv.set(keys.settings(), parsed.data);
    this.fieldCache = undefined;
    const after = settingsKey(parsed.data);
    if (after !== before) await this.oweUnsettled(after);
    return { ok: true, settings: parsed.data };
  }

  /**
   * After a settings change, records that were skipped or failed may now sync (a tax mapping
   * added, the checkbox field corrected): they are owed, so the next run reads them again even
   * though Zoho shows no change.
   */
  private async oweUnsettled(key: string): Promise<void> {
    const since = new Date().toISOString();
    const ops: Array<(a: Deno.AtomicOperation) => Deno.AtomicOperation> = [];
    for (const e of await listAll<RecordState>(this.kv, keys.billMappingPrefix())) {
      if (e.value.outcome !== "skipped" && e.value.outcome !== "failed") continue;
      const id = String(e.key.at(-1));
      // Paid only by a sync under these settings (a run that began before keeps its own).
      ops.push((a) =>
        a.set(keys.retry(MODULE, id), { since, reason: "settings changed", settingsKey: key })
      );
    }
    await commitChunked(this.kv, ops);
  }

  async watermark(): Promise<{ value: string | null; movedAt?: string }> {
    const v = (await this.kv.get<{ value: string; movedAt: string }>(keys.watermark(MODULE))).value;
    return v ? { value: v.value, movedAt: v.movedAt } : { value: null };
  }

  // -- one record (the Zoho button) --------------------------------------------------------------

  async syncPurchaseOrder(
    id: string,
    { mode = "create_and_update", trigger = "button" }: { mode?: Mode; trigger?: Trigger } = {},
  ): Promise<{ result: RecordResult; notFound: boolean }> {
    const settings = await this.settings();
    const owner = `${trigger}:${crypto.randomUUID()}`;
    try {
      const out = await processBatch([{ id }], this.batchContext(settings, mode, owner));
      const result = out.results[0];
      return { result, notFound: out.notFound.has(id) };
    } catch (err) {
      // Only whole-run stops escape a batch: Zoho or Xero needs reconnecting, or the day is over.
      const reason = describe(err);
      return {
        notFound: false,
        result: {
          purchaseOrderId: id,
          outcome: "failed",
          reasons: [reason],
          message: `Sync failed: ${reason.replace(/\.?$/, ".")}`,
          failedAt: err instanceof RunStop ? err.system : "app",
        },
      };
    }
  }

  // -- runs --------------------------------------------------------------------------------------

  /** Starts a run in the background; if one is running, says which. */
  startRun(input: StartRunInput, trigger: Trigger): Promise<StartResult> {
    // Tracked from the first moment, so idle() also waits for runs that are still starting.
    const starting = this.beginRun(input, trigger);
    this.active.add(starting);
    starting.finally(() => this.active.delete(starting)).catch(() => {});
    return starting;
  }

  private async beginRun(input: StartRunInput, trigger: Trigger): Promise<StartResult> {
    // A run whose instance stopped goes on first (and then holds the lease: this start says so).
    // A paused one does not: a start replaces it (its window decides what is synced now).
    await this.resumeStaleRuns({ paused: false });
    const runId = newRunId();
    if (!await acquire(this.kv, keys.runLease(MODULE), runId, this.runLeaseMs)) {
      const running = await holder(this.kv, keys.runLease(MODULE));
      return { started: false, runId: running?.owner ?? "" };
    }
    await this.supersedePaused(runId);
    const now = new Date().toISOString();
    const run: Run = {
      id: runId,
      module: MODULE,
      window: input.window,
      ...(input.window === "last_days" ? { days: input.days } : {}),
      mode: input.mode,
      trigger,
      status: "running",
      startedAt: now,
      heartbeatAt: now,
      counts: emptyCounts(),
      watermark: { before: (await this.watermark()).value, after: null },
      apiCalls: { zoho: 0, xero: 0 },
    };
    const since = this.sinceFor(input, run.watermark.before);
    const plan: RunPlan = {
      runId,
      // Each execution has its own id: one taken for stopped cannot write over its successor.
      executor: crypto.randomUUID(),
      window: input.window,
      ...(input.window === "last_days" ? { days: input.days } : {}),
      mode: input.mode,
      since,
      movesWatermark: this.coversWatermark(input, since, run.watermark.before),
      listed: false,
      count: 0,
      position: 0,
      duplicates: 0,
      skipped: 0,
      watermark: run.watermark.before,
      calls: { zoho: 0, xero: 0 },
      listMs: 0,
      elapsedMs: 0,
      resumes: 0,
    };
    // The run and its plan appear together: every running run can be gone on with.
    const res = await this.kv.atomic().check({ key: keys.runPlan(runId), versionstamp: null })
      .set(keys.run(runId), run).set(keys.runPlan(runId), plan).commit();
    if (!res.ok) throw new Error("KV refused to store the new run");
    const handle = new PlanHandle(this.kv, plan, res.versionstamp, run);
    const done = traceRun(run, () => this.execute(run, handle));
    this.active.add(done);
    done.finally(() => this.active.delete(done)).catch(() => {});
    return { started: true, runId, done };
  }

  /** Resolves once no run started by this process is going on. */
  async idle(): Promise<void> {
    while (this.active.size) await Promise.allSettled([...this.active]);
  }

  getRun(id: string) {
    return getRun(this.kv, id);
  }

  listRuns(opts: { limit?: number; cursor?: string } = {}) {
    return listRuns(this.kv, opts);
  }

  getResults(id: string) {
    return getResults(this.kv, id);
  }

  /** Queues record ids named by a Zoho webhook; the next run (or tick) syncs them. */
  async enqueue(ids: string[]): Promise<void> {
    const at = new Date().toISOString();
    let atomic = this.kv.atomic();
    for (const [i, id] of ids.entries()) {
      atomic = atomic.set(keys.queue(MODULE, id), { at });
      if ((i + 1) % 500 === 0) {
        await atomic.commit();
        atomic = this.kv.atomic();
      }
    }
    await atomic.commit();
  }

  async queued(): Promise<string[]> {
    return (await listAll(this.kv, keys.queuePrefix(MODULE))).map((e) => String(e.key.at(-1)));
  }

  async retrySet(): Promise<string[]> {
    return (await listAll(this.kv, keys.retryPrefix(MODULE))).map((e) => String(e.key.at(-1)));
  }

  /** Cron tick or webhook pass: close dead runs, then sync what changed since the last run. */
  async tick(trigger: "cron" | "webhook"): Promise<StartResult> {
    // The scheduled tick also brings Xero's side back (bill_status.ts); it never stops the run.
    if (trigger === "cron") await this.syncBillStatuses({ poll: true }).catch(() => {});
    return await this.startRun({ window: "since_last_sync", mode: "create_and_update" }, trigger);
  }

  /**
   * Xero → Zoho (lib/sync/bill_status.ts): the bills a Xero webhook named and, with `poll`, every
   * bill changed since the last look; their status and payments onto the purchase orders.
   */
  syncBillStatuses(opts: { poll: boolean }): Promise<BillStatusReport> {
    const pass = this.settings().then((settings) =>
      syncBillStatuses({
        kv: this.kv,
        zoho: this.zoho,
        xero: this.xero,
        settings,
        fields: () => this.writeBackFields(settings),
        lockWaitMs: this.lockWaitMs,
        lockTtlMs: this.recordLockMs,
      }, opts)
    );
    this.active.add(pass);
    pass.finally(() => this.active.delete(pass)).catch(() => {});
    return pass;
  }

  /**
   * Cheap, at most once per resumeCheckMs per instance, never awaited by the request that calls it
   * (a middleware): a run whose instance stopped goes on within about a minute of the next request.
   */
  resumeIfStale(): void {
    const now = Date.now();
    if (now - this.lastResumeCheck < this.resumeCheckMs) return;
    this.lastResumeCheck = now;
    const check = this.resumeStaleRuns().catch(() => 0);
    this.active.add(check);
    check.finally(() => this.active.delete(check));
  }

  /**
   * Goes on with a run whose instance stopped (no heartbeat for two intervals), from its last
   * checkpoint and under the same id, and with a paused run whose time has come. Called by the
   * cron tick, before every start, and lazily by requests. Returns the id of the run taken up.
   */
  async resumeStaleRuns({ paused = true } = {}): Promise<string | undefined> {
    const lease = await holder(this.kv, keys.runLease(MODULE));
    const { runs } = await listRuns(this.kv, { limit: 10 });
    // A live run's heartbeat is at most one interval old (renewed with the lease).
    const staleMs = Math.min(this.runLeaseMs, 2 * this.heartbeatMs);
    for (const run of runs) {
      // Its time has come, and a run waiting for a reconnect is connected again.
      const due = paused && run.status === "paused" && !lease &&
        (!run.resumeAt || Date.parse(run.resumeAt) <= Date.now()) &&
        (run.waitingFor ? await this.connected(run) : run.resumeAt !== undefined);
      const stale = run.status === "running" &&
        Date.now() - Date.parse(run.heartbeatAt) >= staleMs;
      if ((!due && !stale) || this.executing.has(run.id)) continue;
      const plan = await getPlan(this.kv, run.id);
      if (!plan.value || Date.now() - Date.parse(run.startedAt) > PLAN_MAX_AGE_MS) {
        // Started before runs were durable, or so long ago that its listing may have expired
        // from KV: closed, and the next run (from the watermark) syncs what it had left.
        await this.closeInterrupted(run, plan.value ? "too old" : "stopped");
        if (plan.value) await dropPlan(this.kv, run.id).catch(() => {});
        continue;
      }
      if (lease && lease.owner !== run.id) {
        if (stale) await this.closeInterrupted(run, "stopped");
        continue;
      }
      const handle = await this.claim(run, plan, staleMs);
      if (!handle) continue;
      const done = traceRun(run, () => this.execute(run, handle));
      this.active.add(done);
      done.finally(() => this.active.delete(done)).catch(() => {});
      return run.id;
    }
    return undefined;
  }

  /** A run paused for a reconnect: is that connection made again? */
  private async connected(run: Run): Promise<boolean> {
    if (!run.waitingFor) return false;
    const port = run.waitingFor === "zoho" ? this.zoho : this.xero;
    const state = await port.status?.().then((s) => s.state, () => "error");
    return state === "connected";
  }

  /** Takes a stopped run over: the plan names this instance, the lease the run, in one write. */
  private async claim(
    run: Run,
    plan: Deno.KvEntryMaybe<RunPlan>,
    staleMs: number,
  ): Promise<PlanHandle | null> {
    const runEntry = await this.kv.get<Run>(keys.run(run.id));
    const leaseEntry = await this.kv.get<{ owner: string; until: number }>(keys.runLease(MODULE));
    const l = leaseEntry.value;
    if (l && l.until > Date.now() && l.owner !== run.id) return null;
    // Read again: a heartbeat that came since the listing of runs says its instance lives.
    const now0 = runEntry.value;
    if (
      !now0 || (now0.status === "running" && Date.now() - Date.parse(now0.heartbeatAt) < staleMs) ||
      (now0.status !== "running" && now0.status !== "paused")
    ) return null;
    const taken: RunPlan = {
      ...plan.value!,
      executor: crypto.randomUUID(),
      resumes: plan.value!.resumes + 1,
      calls: { ...(runEntry.value?.apiCalls ?? run.apiCalls) },
      ...(runEntry.value?.usage ? { usage: runEntry.value.usage } : {}),
    };
    const now = new Date().toISOString();
    Object.assign(run, runEntry.value, { status: "running", heartbeatAt: now });
    run.resumes = taken.resumes;
    delete run.resumeAt;
    delete run.waitingFor;
    delete run.finishedAt;
    delete run.message;
    const res = await this.kv.atomic().check(runEntry, plan, leaseEntry)
      .set(keys.runPlan(run.id), taken)
      .set(keys.run(run.id), run)
      .set(keys.runLease(MODULE), { owner: run.id, until: Date.now() + this.runLeaseMs }, {
        expireIn: this.runLeaseMs * 2,
      })
      .commit();
    return res.ok ? new PlanHandle(this.kv, taken, res.versionstamp, run) : null;
  }

  private async closeInterrupted(run: Run, why: "stopped" | "too old"): Promise<void> {
    run.status = "failed";
    run.finishedAt = new Date().toISOString();
    delete run.resumeAt;
    delete run.waitingFor;
    run.message = why === "stopped"
      ? "Interrupted: the app stopped during this run. Records it did not finish are synced by the next run."
      : "Interrupted: this run waited too long to go on (more than 13 days). Records it did not finish are synced by the next run.";
    await saveRun(this.kv, run);
  }

  /** A new run replaces a paused one: the new run's window decides what is synced now. */
  private async supersedePaused(newRunId: string): Promise<void> {
    const { runs } = await listRuns(this.kv, { limit: 10 });
    for (const run of runs) {
      if (run.status !== "paused" || (!run.resumeAt && !run.waitingFor)) continue;
      const why = (run.message ?? "").replace(/ (The run goes on|It tries again) by itself.*$/, "");
      delete run.resumeAt;
      delete run.waitingFor;
      // It will not go on: said so, not left "paused" with a promise it no longer keeps.
      run.status = "failed";
      run.finishedAt ??= new Date().toISOString();
      run.message = `${
        why || "Paused."
      } Replaced by run ${newRunId}, which syncs what this one had left.`;
      await saveRun(this.kv, run);
      await dropPlan(this.kv, run.id).catch(() => {});
    }
  }

  private batchContext(settings: Settings, mode: Mode, owner: string) {
    return {
      kv: this.kv,
      zoho: this.zoho,
      xero: this.xero,
      settings,
      settingsKey: settingsKey(settings),
      mode,
      owner,
      lockWaitMs: this.lockWaitMs,
      lockTtlMs: this.recordLockMs,
      unconfirmedWaitMs: this.unconfirmedWaitMs,
      writeBackFields: () => this.writeBackFields(settings),
      settingsNow: async () => settingsKey(await this.settings()),
    };
  }

  /** Write-back fields that exist in Zoho's field list (cached ten minutes: one call, not one per batch). */
  private async writeBackFields(settings: Settings): Promise<WriteBackFields | null> {
    if (!settings.writeBack.enabled) return null;
    if (!this.fieldCache || Date.now() - this.fieldCache.at > 600_000) {
      this.fieldCache = { at: Date.now(), names: new Set(await this.zoho.fieldNames()) };
    }
    const names = this.fieldCache.names;
    const out: WriteBackFields = {};
    for (const [k, v] of Object.entries(settings.writeBack.fields)) {
      if (v && names.has(v)) out[k as keyof WriteBackFields] = v;
    }
    return out;
  }

  /**
   * Executes a run from its plan's position to its end: lists first (into KV chunks) when the
   * plan has not listed yet, then batch by batch, checkpointing results, counts, watermark and
   * position in one fenced write after each. An instance that stops mid-run leaves the plan for
   * the next (resumeStaleRuns); a run that cannot go on pauses and says when it will.
   */
  private async execute(run: Run, handle: PlanHandle): Promise<Run> {
    this.executing.add(run.id);
    try {
      return await this.executePlan(run, handle);
    } finally {
      this.executing.delete(run.id);
    }
  }

  private async executePlan(run: Run, handle: PlanHandle): Promise<Run> {
    const plan = handle.plan;
    const t0 = Date.now();
    const calls0 = { zoho: this.zoho.calls.total, xero: this.xero.calls.total };
    const calls = () => ({
      zoho: plan.calls.zoho + this.zoho.calls.total - calls0.zoho,
      xero: plan.calls.xero + this.xero.calls.total - calls0.xero,
    });
    const usage0 = usageMark(this.zoho, this.xero);
    const usage = () => addUsage(plan.usage, usageSince(usage0, this.zoho, this.xero));
    const heartbeat = setInterval(() => {
      // Renewed, never taken again: once the run has ended elsewhere (this instance was taken for
      // stopped), its released lease must stay free.
      renew(this.kv, keys.runLease(MODULE), run.id, this.runLeaseMs).catch(() => {});
      handle.heartbeat(new Date().toISOString()).catch(() => {});
    }, this.heartbeatMs);
    const preview = plan.mode === "preview";
    let lost = false;
    try {
      const settings = await this.settings();
      // What the listing kept of each order is good only under the settings it was made with.
      if (!plan.listed && !plan.count) plan.settingsKey = settingsKey(settings);
      const headers = plan.settingsKey === settingsKey(settings);
      // Batches began only once the listing was done (a stop while listing wrote nothing).
      const listedBefore = plan.listed;
      if (!plan.listed) {
        // The scheduled run (and a preview, without keeping anything) also takes the orders Zoho
        // lists as deleted that still own a bill (stages/lifecycle.ts).
        const deleted = new Set<string>();
        if (run.trigger === "cron" || preview) {
          await queueDeleted(this.kv, this.zoho, {
            enqueue: preview
              ? (ids) => void ids.forEach((id) => deleted.add(id))
              : (ids) => this.enqueue(ids),
            keepWatermark: preview,
          }).catch(() => {/* the next tick asks again: the list's watermark did not move */});
        }
        const vendors = await listIntoPlan({
          kv: this.kv,
          zoho: this.zoho,
          handle,
          run,
          settings,
          forced: deleted,
        });
        plan.listMs += Date.now() - t0;
        // Look up the vendors of ticked orders in bulk first (one round of contact calls per run);
        // contacts are created per batch, for eligible orders only: a ticked order that cannot be
        // billed (no lines, an unmapped tax) makes no contact in Xero.
        if (!preview && vendors.size) {
          await this.xero.resolveContacts(
            [...vendors].map(([zohoVendorId, name]) => ({ zohoVendorId, name })),
            { lookupOnly: true },
          ).catch(() => {/* per batch resolution reports it per record */});
        }
      }
      const ctx = {
        ...this.batchContext(settings, plan.mode, run.id),
        reportUnchanged: plan.window !== "since_last_sync",
        lockOwner: `${run.id}/${plan.executor}`,
      };
      // The batch the instance before was in: its locks are its own, and lapse only a lock period
      // after it stopped renewing them (it may be alive, only late: then it writes those orders).
      const inFlightCtx = {
        ...ctx,
        lockWaitMs: Math.max(this.lockWaitMs, (this.recordLockMs ?? LOCK_TTL_MS) + 1_000),
      };
      run.planned = plan.count - plan.duplicates;
      run.processed = plan.position - plan.skipped;
      let watermark = plan.watermark;
      const moves: Array<(a: Deno.AtomicOperation) => Deno.AtomicOperation> = [];
      // Zoho reads of batch k+1 run while batch k is written to Xero (the slower side).
      // readFrom: when the batch began to be read; webhook entries queued before are paid by it
      // (KV's own clock: an instance whose clock runs ahead must not make entries undeletable).
      // A run going on after its instance stopped reads the batch that one was in from Zoho again.
      const inFlight = plan.resumes > 0 && listedBefore ? plan.position : -1;
      const stage = async (from: number) => {
        const readFrom = preview ? "" : await kvStamp(this.kv);
        const batch = await loadBatch(this.kv, handle, from, this.batchSize, {
          fresh: from === inFlight,
          headers,
        });
        const fetched = batch.items.length ? await prefetchRecords(ctx, batch.items) : undefined;
        return { batch, fetched, readFrom };
      };
      let ahead:
        | Promise<{ batch: LoadedBatch; fetched?: Prefetched; readFrom: string }>
        | undefined = plan.position < plan.count ? stage(plan.position) : undefined;
      while (ahead) {
        const { batch, fetched, readFrom } = await ahead;
        const next = batch.from + batch.size;
        ahead = batch.size && next < plan.count ? stage(next) : undefined;
        // A read-ahead error must not go unhandled if this batch throws first.
        ahead?.catch(() => {});
        const out = batch.items.length
          ? await processBatch(batch.items, batch.from === inFlight ? inFlightCtx : ctx, fetched)
          : { results: [] };
        markRetried(out.results, batch.retried);
        for (const r of out.results) {
          run.counts.total++;
          run.counts[r.outcome]++;
        }
        if (plan.movesWatermark) {
          const max = batch.times.reduce<string | null>((m, t) => later(m, t), null);
          if (max && later(watermark, max) !== watermark) {
            watermark = max;
            const movedAt = new Date().toISOString();
            // Moved with the checkpoint (fenced): an instance that lost its run moves nothing.
            const value = { value: watermark, movedAt };
            moves.push((a) => a.set(keys.watermark(MODULE), value));
            run.watermark.movedAt = movedAt;
          }
        }
        if (!preview) await this.dequeue(batch.items.map((b) => b.id), readFrom);
        plan.position = next;
        plan.skipped += batch.size - batch.items.length;
        plan.watermark = watermark;
        run.processed = next - plan.skipped;
        run.watermark.after = watermark;
        run.heartbeatAt = new Date().toISOString();
        run.apiCalls = calls();
        run.usage = usage();
        await handle.checkpoint(run, out.results, moves.splice(0));
      }
      run.status = run.counts.failed ? "completed_with_errors" : "completed";
    } catch (err) {
      if (err instanceof PlanLost || handle.lost) {
        // Another instance took the run for stopped and goes on with it: leave it to that one.
        lost = true;
      } else if (err instanceof RunStop) {
        run.status = err.status;
        run.message = err.message;
        if (err.status === "paused" && err.untilReconnected) {
          run.waitingFor = err.system;
          run.message = `${sentence(err.message)} The run goes on by itself once ${
            err.system === "zoho" ? "Zoho CRM" : "Xero"
          } is connected again (Connections page).`;
          // A connection that says "connected" although the service refused (Xero's 403 when the
          // app's access to the organisation was removed) is no sign of a reconnect: going on at
          // every request would spend a batch of Zoho reads each time. Then it tries hourly.
          if (await this.connected(run)) retryAt(run, PAUSE_MS[err.system]);
        } else if (err.status === "paused") {
          run.message = sentence(err.message);
          retryAt(run, err.retryAfterMs ?? PAUSE_MS[err.system]);
        }
      } else {
        run.status = "failed";
        run.message = `The run stopped: ${describe(err)}`;
      }
    } finally {
      clearInterval(heartbeat);
    }
    if (lost) return run;
    run.finishedAt = new Date().toISOString();
    run.apiCalls = calls();
    run.usage = usage();
    const totalMs = Date.parse(run.finishedAt) - Date.parse(run.startedAt);
    run.timings = { listMs: plan.listMs, processMs: totalMs - plan.listMs, totalMs };
    run.heartbeatAt = run.finishedAt;
    try {
      await handle.commit(run);
    } catch (err) {
      if (err instanceof PlanLost) return run;
      await saveRun(this.kv, run).catch(() => {});
    }
    await release(this.kv, keys.runLease(MODULE), run.id).catch(() => {});
    // A paused run keeps its plan to go on from; any other is done with it.
    if (run.status !== "paused") await dropPlan(this.kv, run.id).catch(() => {});
    // Ids queued by a webhook while this run was going on get their own pass now.
    if (run.status !== "failed" && run.status !== "paused" && plan.mode !== "preview") {
      const waiting = await this.queued().catch(() => []);
      if (waiting.length) await this.tick("webhook").catch(() => {});
    }
    return run;
  }

  /**
   * Only a run that may write everything it lists, over a window that reaches back to the
   * watermark, may move it: a "last 3 days" run must not jump past an older change it never
   * listed, and a create-only or preview run leaves updates undone.
   */
  private coversWatermark(
    input: StartRunInput,
    since: string | undefined,
    watermark: string | null,
  ) {
    if (input.mode !== "create_and_update") return false;
    if (input.window !== "last_days") return true;
    if (!watermark || !since) return false;
    return Date.parse(since) <= Date.parse(watermark) - this.overlapMs;
  }

  private sinceFor(input: StartRunInput, watermark: string | null): string | undefined {
    if (input.window === "all") return undefined;
    if (input.window === "last_days") {
      return zohoTime(new Date(Date.now() - (input.days ?? 1) * 86_400_000));
    }
    return watermark ? zohoTime(new Date(Date.parse(watermark) - this.overlapMs)) : undefined;
  }

  /** Deletes the webhook entries of a batch, except those queued again after it was read. */
  private async dequeue(ids: string[], readFrom: string) {
    for (let i = 0; i < ids.length; i += 100) {
      const entries = await getManyChunked<{ at: string }>(
        this.kv,
        ids.slice(i, i + 100).map((id) => keys.queue(MODULE, id)),
      );
      await Promise.all(entries.map(async (e) => {
        if (!e.value || e.versionstamp! > readFrom) return;
        await this.kv.atomic().check(e).delete(e.key).commit();
      }));
    }
  }
}

/** A message ending in a full stop, so a sentence can follow. */
function sentence(message: string): string {
  return message.replace(/\.?$/, ".");
}

/** A paused run goes on by itself in `ms`: when, stored and said. */
function retryAt(run: Run, ms: number): void {
  const at = new Date(Date.now() + ms);
  run.resumeAt = at.toISOString();
  run.message = `${run.message ?? ""} It tries again by itself at ${
    at.toISOString().slice(0, 16).replace("T", " ")
  } UTC.`.trim();
}

function later(a: string | null, b: string): string {
  if (!a) return b;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

export function zohoTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "+00:00");
}
