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
import { acquire, holder, release } from "../store/locks.ts";
import { getResults, getRun, listRuns, newRunId, saveResults, saveRun } from "../store/runs.ts";
import {
  type BatchItem,
  type Prefetched,
  prefetchRecords,
  processBatch,
  type WriteBackFields,
} from "./batch.ts";
import { asRunStop, describe, RunStop } from "./errors.ts";
import { forcedRecords, markRetried } from "./retried.ts";
import { traceRun } from "../telemetry.ts";
import { type BillStatusReport, syncBillStatuses } from "./bill_status.ts";
import { queueDeleted } from "./stages/lifecycle.ts";
import { fingerprint, listFields, settingsKey } from "./fingerprint.ts";
import { usageMark, usageSince } from "./usage.ts";
import type { XeroPort, ZohoListRecord, ZohoPort } from "./ports.ts";
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
const HEARTBEAT_MS = 20_000;

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
  /** How often a running run renews its lease and heartbeat (default 20 s, < runLeaseMs). */
  heartbeatMs?: number;
  /** How long a per-record lock lasts when its holder dies (default 120 s). */
  recordLockMs?: number;
  /** How long a bill create that got no answer is waited for before it is sent again (120 s). */
  unconfirmedWaitMs?: number;
}

export type StartResult =
  | { started: true; runId: string; done: Promise<Run> }
  | { started: false; runId: string };

interface Listed {
  id: string;
  modifiedTime: string;
  fingerprint?: string;
  vendor?: { id: string; name: string };
  ticked?: boolean;
  /** The listed record with every header field, for line items read in bulk. */
  header?: Record<string, unknown>;
}

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
    await this.closeStaleRuns();
    const runId = newRunId();
    if (!await acquire(this.kv, keys.runLease(MODULE), runId, this.runLeaseMs)) {
      const running = await holder(this.kv, keys.runLease(MODULE));
      return { started: false, runId: running?.owner ?? "" };
    }
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
    await saveRun(this.kv, run);
    const done = traceRun(run, () => this.execute(run, input));
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

  /** A run whose process died (no heartbeat, lease gone) is closed; the next run picks up the rest. */
  async closeStaleRuns(): Promise<number> {
    const lease = await holder(this.kv, keys.runLease(MODULE));
    const { runs } = await listRuns(this.kv, { limit: 10 });
    let closed = 0;
    for (const run of runs) {
      if (run.status !== "running" || lease?.owner === run.id) continue;
      // Without the lease, a live run's heartbeat is at most one interval old. Comparing with
      // the whole lease let a dead run whose last batch checkpoint came after its last lease
      // renewal stay "running" next to the run that replaced it (found by tests/reliability).
      const staleMs = Math.min(this.runLeaseMs, 2 * this.heartbeatMs);
      if (Date.now() - Date.parse(run.heartbeatAt) < staleMs) continue;
      run.status = "failed";
      run.finishedAt = new Date().toISOString();
      run.message =
        "Interrupted: the app stopped during this run. Records it did not finish are synced by the next run.";
      await saveRun(this.kv, run);
      closed++;
    }
    return closed;
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

  private async execute(run: Run, input: StartRunInput): Promise<Run> {
    const t0 = Date.now();
    const calls0 = { zoho: this.zoho.calls.total, xero: this.xero.calls.total };
    const usage0 = usageMark(this.zoho, this.xero);
    const heartbeat = setInterval(() => {
      acquire(this.kv, keys.runLease(MODULE), run.id, this.runLeaseMs).catch(() => {});
      run.heartbeatAt = new Date().toISOString();
      saveRun(this.kv, run).catch(() => {});
    }, this.heartbeatMs);
    let listMs = 0;
    try {
      const settings = await this.settings();
      const preview = input.mode === "preview";
      const since = this.sinceFor(input, run.watermark.before);
      const listed = await this.list(since, settings);
      listMs = Date.now() - t0;

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
      const listedIds = new Set(listed.map((l) => l.id));
      // Failed records and webhook ids are fetched whatever their Modified_Time says.
      const why = await forcedRecords(this.kv, MODULE);
      const forced = new Set([...why.keys(), ...deleted]);
      const extra = [...forced].filter((id) => !listedIds.has(id));
      const items: Array<BatchItem & { listed?: Listed }> = [
        ...listed.map((l) => ({
          id: l.id,
          listedModifiedTime: forced.has(l.id) ? undefined : l.modifiedTime,
          listedTime: l.modifiedTime,
          listedFingerprint: l.fingerprint,
          listedRecord: l.header,
          listed: l,
        })),
        ...extra.map((id) => ({ id })),
      ];

      // Look up the vendors of ticked orders in bulk first (one round of contact calls per run);
      // contacts are created per batch, for eligible orders only: a ticked order that cannot be
      // billed (no lines, an unmapped tax) makes no contact in Xero.
      if (!preview) {
        const vendors = new Map<string, string>();
        for (const l of listed) if (l.ticked && l.vendor) vendors.set(l.vendor.id, l.vendor.name);
        if (vendors.size) {
          await this.xero.resolveContacts(
            [...vendors].map(([zohoVendorId, name]) => ({ zohoVendorId, name })),
            { lookupOnly: true },
          ).catch(() => {/* per batch resolution reports it per record */});
        }
      }
      const ctx = {
        ...this.batchContext(settings, input.mode, run.id),
        reportUnchanged: input.window !== "since_last_sync",
      };
      run.planned = items.length;
      run.processed = 0;
      await saveRun(this.kv, run);
      let watermark = run.watermark.before;
      const movesWatermark = this.coversWatermark(input, since, watermark);
      const batches: typeof items[] = [];
      for (let i = 0; i < items.length; i += this.batchSize) {
        batches.push(items.slice(i, i + this.batchSize));
      }
      // Zoho reads of batch k+1 run while batch k is written to Xero (the slower side).
      // When each batch began to be read: webhook entries queued before that are paid by it.
      // (KV's own clock: an instance whose clock runs ahead must not make entries undeletable.)
      const stamp = () => preview ? Promise.resolve("") : kvStamp(this.kv);
      const readStart: string[] = [await stamp()];
      let ahead: Promise<Prefetched> | undefined = batches.length
        ? prefetchRecords(ctx, batches[0])
        : undefined;
      for (const [k, batch] of batches.entries()) {
        const fetched = await ahead!;
        readStart[k + 1] = await stamp();
        ahead = k + 1 < batches.length ? prefetchRecords(ctx, batches[k + 1]) : undefined;
        // A read-ahead error must not go unhandled if this batch throws first.
        ahead?.catch(() => {});
        const out = await processBatch(batch, ctx, fetched);
        markRetried(out.results, why);
        for (const r of out.results) {
          run.counts.total++;
          run.counts[r.outcome]++;
        }
        await saveResults(this.kv, run.id, out.results);
        run.processed = (run.processed ?? 0) + batch.length;
        if (movesWatermark) {
          const times = batch.map((b) => b.listed?.modifiedTime).filter((t): t is string => !!t);
          const max = times.reduce<string | null>((m, t) => later(m, t), null);
          if (max && later(watermark, max) !== watermark) {
            watermark = max;
            const movedAt = new Date().toISOString();
            await this.kv.set(keys.watermark(MODULE), { value: watermark, movedAt });
            run.watermark.movedAt = movedAt;
          }
        }
        if (!preview) await this.dequeue(batch.map((b) => b.id), readStart[k]);
        run.watermark.after = watermark;
        run.heartbeatAt = new Date().toISOString();
        run.apiCalls = {
          zoho: this.zoho.calls.total - calls0.zoho,
          xero: this.xero.calls.total - calls0.xero,
        };
        run.usage = usageSince(usage0, this.zoho, this.xero);
        await saveRun(this.kv, run);
      }
      run.status = run.counts.failed ? "completed_with_errors" : "completed";
    } catch (err) {
      if (err instanceof RunStop) {
        run.status = err.status;
        run.message = err.message;
      } else {
        run.status = "failed";
        run.message = `The run stopped: ${describe(err)}`;
      }
    } finally {
      clearInterval(heartbeat);
      run.finishedAt = new Date().toISOString();
      run.apiCalls = {
        zoho: this.zoho.calls.total - calls0.zoho,
        xero: this.xero.calls.total - calls0.xero,
      };
      run.usage = usageSince(usage0, this.zoho, this.xero);
      const totalMs = Date.now() - t0;
      run.timings = { listMs, processMs: totalMs - listMs, totalMs };
      run.heartbeatAt = run.finishedAt;
      await saveRun(this.kv, run).catch(() => {});
      await release(this.kv, keys.runLease(MODULE), run.id).catch(() => {});
    }
    // Ids queued by a webhook while this run was going on get their own pass now.
    if (run.status !== "failed" && run.status !== "paused" && input.mode !== "preview") {
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

  /**
   * Lists every changed record before any is written (a write-back bumps Modified_Time). The Zoho
   * client pages by Modified_Time as a keyset, so a record deleted or edited during the listing
   * hides no other one; an edit shows the record again, newer, and the newer listing wins.
   */
  private async list(since: string | undefined, settings: Settings): Promise<Listed[]> {
    // The bill id written back is listed only if Zoho has the field; unknown, no header is kept.
    const zohoFields = await this.zoho.fieldNames().catch(() => undefined);
    const wanted = listFields(settings, zohoFields);
    let fields = wanted;
    for (let pass = 0; pass < 2; pass++) {
      const seen = new Map<string, Listed>();
      try {
        for await (const page of this.zoho.listChanged({ since, fields })) {
          for (const r of page) {
            const before = seen.get(r.id);
            if (before && Date.parse(before.modifiedTime) > Date.parse(r.Modified_Time)) continue;
            seen.set(r.id, listedOf(r, settings, fields === wanted, !!zohoFields));
          }
        }
      } catch (err) {
        // A custom field that does not exist in this org: list with the standard field only.
        if (fields === wanted && /INVALID_DATA|INVALID_REQUEST|field/i.test(describe(err))) {
          fields = ["Modified_Time"];
          continue;
        }
        // Zoho refusing new tokens (or wanting a reconnect) stops the run with the reason.
        throw asRunStop(err, "zoho") ?? err;
      }
      return [...seen.values()].sort((a, b) =>
        a.modifiedTime === b.modifiedTime
          ? (a.id < b.id ? -1 : 1)
          : Date.parse(a.modifiedTime) - Date.parse(b.modifiedTime)
      );
    }
    return [];
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

function listedOf(
  r: ZohoListRecord,
  settings: Settings,
  withContent: boolean,
  withHeader = false,
): Listed {
  const v = r[settings.vendorField] as { id?: unknown; name?: unknown } | null | undefined;
  return {
    id: r.id,
    modifiedTime: r.Modified_Time,
    fingerprint: withContent ? fingerprint(r, settings) : undefined,
    vendor: v && typeof v.id === "string"
      ? { id: v.id, name: typeof v.name === "string" ? v.name : v.id }
      : undefined,
    ticked: r[settings.checkboxField] === true,
    header: withContent && withHeader ? r : undefined,
  };
}

function later(a: string | null, b: string): string {
  if (!a) return b;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

export function zohoTime(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "+00:00");
}
