/**
 * The real side of the model-based suite: both simulators (started once, reset between histories),
 * and per history the real app booted by boot.ts on a Deno KV file, so it can die and boot again
 * on the same KV. Nothing of our own code is mocked: the app talks HTTP to the simulators.
 */
import { boot } from "../../boot.ts";
import { loadConfig } from "../../lib/config.ts";
import {
  eligibility,
  parsePurchaseOrder,
  type Settings,
  SettingsSchema,
} from "../../lib/mapping/mod.ts";
import { keys } from "../../lib/store/keys.ts";
import { listAll } from "../../lib/store/kv.ts";
import type { BillIntent } from "../../lib/store/records.ts";
import type { Lease } from "../../lib/store/locks.ts";
import type { Mode, RecordResult, Run, StartRunInput } from "../../lib/sync/types.ts";
import { ORG_CURRENCIES, ORG_SETTINGS, ORG_TAX_RATES } from "../../sandbox/demo_org.ts";
import { startXeroSim, type XeroSim, type XeroSimInvoice } from "../../sandbox/xero.ts";
import { startZohoSim, type ZohoSim } from "../../sandbox/zoho.ts";
import { simEnv } from "../helpers.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Timings of the fault window. A slow Xero write outlasts the client's timeout, then lands. */
export const TIMING = {
  clientTimeoutMs: 250,
  slowMs: 400,
  /** How long a race holds a sync's call at most (within the client's timeout). */
  holdMs: 120,
  /** Slow, but answered within the client's timeout. */
  slowOkMs: 180,
  /** A create with no answer is waited for this long before it is sent again (product: 120 s). */
  unconfirmedWaitMs: 700,
  /** Record locks (product: 120 s): longer than any call here, so only "lock expiry" breaks them. */
  recordLockMs: 1_500,
  /** The lock expiry op: locks shorter than one slow Xero call. */
  shortLockMs: 25,
  runLeaseMs: 600,
  heartbeatMs: 200,
  /** How long a sync waits for a record another holds (product: 20 s, for calls of ~1 s). */
  lockWaitMs: 60,
};

const DAY = 86_400_000;

/** The simulators, shared by every history of a process. */
export interface Shared {
  zohoSim: ZohoSim;
  xeroSim: XeroSim;
  env: Record<string, string>;
  dir: string;
  /** Zoho's clock is the real one plus this (the "clock advance" op moves it). */
  clock: { offsetMs: number };
  close(): Promise<void>;
}

export async function startShared(): Promise<Shared> {
  const clock = { offsetMs: 0 };
  const zohoSim = await startZohoSim({
    now: () => Date.now() + clock.offsetMs,
    // Every history boots on a fresh KV and mints again: Zoho's 10 mints per 10 minutes would
    // end the suite after ten histories.
    mintLimitPer10Min: 1_000_000_000,
  });
  const xeroSim = await startXeroSim({
    taxRates: ORG_TAX_RATES,
    currencies: ORG_CURRENCIES,
    // Rate limits are exercised by the 429 fault op, not by the suite's own pace.
    limits: { perMinute: 1e9, perDay: 1e12, appPerMinute: 1e9, concurrent: 10 },
    // Every history seeds from the same XERO_REFRESH_TOKEN, which the first refresh rotates out.
    refreshGraceMs: 1e12,
  });
  // KV files in memory where the machine has a tmpfs: a disk's fsync per commit made up most of
  // a history's time. Still real files, so an app can die and another boot on the same KV.
  const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
  const dir = await Deno.makeTempDir({ prefix: "model-", ...(shm ? { dir: "/dev/shm" } : {}) });
  return {
    zohoSim,
    xeroSim,
    env: simEnv(zohoSim, xeroSim),
    dir,
    clock,
    async close() {
      await zohoSim.close();
      await xeroSim.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

type Booted = Awaited<ReturnType<typeof boot>>;

export interface ResultEntry {
  id: string;
  result: RecordResult;
  /** "run <window>/<mode>", "button", "settle". */
  source: string;
  /** When the sync that gave it began (ms): it decided under the settings saved before then. */
  startedAt: number;
}

export interface Stats {
  histories: number;
  ops: number;
  faults: number;
  syncs: number;
  billsChecked: number;
  deaths: number;
  violations: number;
}

export const newStats = (): Stats => ({
  histories: 0,
  ops: 0,
  faults: 0,
  syncs: 0,
  billsChecked: 0,
  deaths: 0,
  violations: 0,
});

const DEAD = /BadResource|Bad resource ID|Database closed|closed/i;
/** An error of an app whose KV was closed under it ("process death"): expected, not a finding. */
export const isDeathError = (e: unknown) => DEAD.test(String((e as Error)?.message ?? e));

let historySeq = 0;

/** One history: a fresh KV file, the app booted on it, the simulators emptied. */
export class History {
  app!: Booted;
  readonly kvPath: string;
  /** Ids of every purchase order created in this history, in order. */
  readonly ids: string[] = [];
  /** Purchase orders eligible at some point between two operations. */
  readonly everEligible = new Set<string>();
  /** Every record result the app gave, in the order they came back. */
  readonly results: ResultEntry[] = [];
  /** Runs whose results are in `results` (the engine also starts runs of its own, and goes on
   * with runs whose app died). */
  readonly recordedRuns = new Set<string>();
  /** Work started and not awaited (background syncs, syncs of a dead app). */
  readonly inflight = new Set<Promise<unknown>>();
  /** Findings made during the history (a bill's status lowered). */
  readonly violations: string[] = [];
  /** Each record's fields as its user last left them (the app may write only Xero_* fields). */
  readonly userFields = new Map<string, Record<string, unknown>>();
  /** Highest status rank each bill ever showed. */
  private readonly maxStatus = new Map<string, number>();
  private readonly dead: Booted[] = [];
  settingsInput: Record<string, unknown> = structuredClone(ORG_SETTINGS);
  /** When the last settings change was saved (ms): a sync begun before it used older ones. */
  settingsChangedAt = 0;
  settings: Settings = SettingsSchema.parse(ORG_SETTINGS);
  /** Every settings version the history saved: a bill follows new settings when its order is
   * next synced, not before (an unchanged order keeps the bill its last sync made). */
  readonly settingsSeen: Settings[] = [SettingsSchema.parse(ORG_SETTINGS)];
  recordLockMs = TIMING.recordLockMs;
  /** Counters for the summary line. */
  faults = 0;
  deaths = 0;
  syncs = 0;
  step = 0;

  constructor(readonly shared: Shared) {
    this.kvPath = `${shared.dir}/h${++historySeq}.sqlite3`;
  }

  static async start(shared: Shared): Promise<History> {
    shared.zohoSim.clearFaults();
    shared.zohoSim.records.clear();
    shared.xeroSim.reset();
    // Zoho's clock starts three days back, so "last N days" windows and the clock op matter.
    shared.clock.offsetMs = -3 * DAY;
    const h = new History(shared);
    await h.bootApp();
    const saved = await h.engine.saveSettings(h.settingsInput);
    if (!saved.ok) throw new Error(saved.errors.join("; "));
    // Both tokens minted up front: a death in the middle of a mint leaves the mint claim to
    // expire first (seconds), which would make most of the suite's time, not most of its findings.
    await Promise.all([h.app.ctx.zoho.fieldNames(), h.app.ctx.xero.tenant()]);
    return h;
  }

  get engine() {
    return this.app.ctx.sync;
  }

  get kv() {
    return this.app.ctx.kv;
  }

  async bootApp(): Promise<void> {
    const env = { ...this.shared.env, DENO_KV_PATH: this.kvPath };
    this.app = await boot(loadConfig(env), {
      zoho: {
        timeoutMs: TIMING.clientTimeoutMs,
        retry: { attempts: 3, baseDelayMs: 2, maxDelayMs: 10 },
      },
      xero: {
        requestTimeoutMs: TIMING.clientTimeoutMs,
        retry: { attempts: 3, maxWaitMs: 200 },
        // The client's own limiter is shared by the process: 60 a minute would pace the suite.
        limits: { perMinute: 1e9 },
      },
      engine: {
        lockWaitMs: TIMING.lockWaitMs,
        runLeaseMs: TIMING.runLeaseMs,
        heartbeatMs: TIMING.heartbeatMs,
        recordLockMs: this.recordLockMs,
        unconfirmedWaitMs: TIMING.unconfirmedWaitMs,
      },
    });
  }

  /** Process death: the app's KV is closed under whatever it is doing; a new app boots on the file. */
  async die(): Promise<void> {
    this.deaths++;
    const old = this.app;
    this.dead.push(old);
    old.ctx.kv.close();
    await this.bootApp();
  }

  /** A clean restart (waits for the app's work), optionally with other engine options. */
  async restart(): Promise<void> {
    await this.app.close();
    await this.bootApp();
  }

  /** Moves Zoho's clock: a user action comes at least this much after the previous one. */
  advanceClock(ms: number) {
    this.shared.clock.offsetMs += ms;
  }

  track<T>(p: Promise<T>): Promise<T | undefined> {
    const wrapped = p.then((v) => v, (e) => {
      if (!isDeathError(e)) throw e;
      return undefined;
    });
    this.inflight.add(wrapped);
    wrapped.finally(() => this.inflight.delete(wrapped)).catch(() => {});
    return wrapped;
  }

  /** Remembers a record as the user just left it. */
  userWrote(id: string) {
    const rec = this.shared.zohoSim.records.get(id);
    if (rec) this.userFields.set(id, userOwned(rec));
  }

  // ---- syncs ---------------------------------------------------------------------------------

  async button(id: string, mode: Mode = "create_and_update", source = "button") {
    this.syncs++;
    const startedAt = Date.now();
    const { result } = await this.engine.syncPurchaseOrder(id, { mode });
    this.results.push({ id, result, source, startedAt });
    return result;
  }

  /** A run to its end; false when another run held the lease. */
  async run(input: StartRunInput, source = `run ${input.window}/${input.mode}`) {
    this.syncs++;
    const engine = this.engine;
    const start = await engine.startRun(input, "api");
    if (!start.started) return { started: false as const };
    const run = await start.done;
    const results = await engine.getResults(run.id);
    // A run whose app died is gone on with by another (same id): collectEngineRuns takes it then.
    if (!this.recordedRuns.has(run.id)) {
      this.recordedRuns.add(run.id);
      const startedAt = Date.parse(run.startedAt);
      for (const r of results) {
        this.results.push({ id: r.purchaseOrderId, result: r, source, startedAt });
      }
    }
    return { started: true as const, run, results };
  }

  // ---- observation -----------------------------------------------------------------------------

  bills(): XeroSimInvoice[] {
    return this.shared.xeroSim.invoices().filter((b) => b.Type === "ACCPAY");
  }

  /** After every operation: which records are eligible now, and no bill's status went down. */
  observe(op: string) {
    for (const id of this.ids) {
      const raw = this.shared.zohoSim.records.get(id);
      if (!raw) continue;
      const parsed = parsePurchaseOrder(raw, this.settings);
      if (parsed.ok && eligibility(parsed.po, this.settings).length === 0) {
        this.everEligible.add(id);
      }
    }
    for (const b of this.bills()) {
      const rank = STATUS_RANK[b.Status] ?? 0;
      const max = this.maxStatus.get(b.InvoiceID) ?? rank;
      if (rank < max) {
        this.violations.push(
          `[status-lowered] bill ${b.InvoiceNumber} (${b.Url?.split("/").pop()}) went from ${
            RANK_NAME[max]
          } back to ${b.Status} (seen after: ${op})`,
        );
      }
      this.maxStatus.set(b.InvoiceID, Math.max(rank, max));
    }
  }

  // ---- the end of a history ---------------------------------------------------------------------

  /** Waits (bounded) for every background promise, including those of dead apps. */
  async drain(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.inflight.size) {
      if (Date.now() > until) throw new Error("background syncs did not finish in 30 s");
      await Promise.race([Promise.allSettled([...this.inflight]), sleep(100)]);
    }
    await this.engine.idle();
  }

  /**
   * Waits until no fault window is open: the run lease and record locks of dead syncs expired,
   * and every unanswered create is older than the unconfirmed wait (the product may not resend
   * it sooner; it must not be blamed for waiting).
   */
  async quiet(): Promise<void> {
    const kv = this.kv;
    const until = Date.now() + TIMING.runLeaseMs + TIMING.recordLockMs + 2_000;
    for (;;) {
      const now = Date.now();
      const lease = (await kv.get<Lease>(keys.runLease("Purchase_Orders"))).value;
      const locks = await listAll<Lease>(kv, keys.recordLock("").slice(0, 1) as Deno.KvKey);
      const intents = await listAll<BillIntent>(kv, keys.billIntentPrefix());
      const waits = [
        lease && lease.until > now ? lease.until - now : 0,
        ...locks.map((l) => l.value.until > now ? l.value.until - now : 0),
        ...intents.map((i) =>
          i.value.unconfirmedAt
            ? Date.parse(i.value.unconfirmedAt) + TIMING.unconfirmedWaitMs - now
            : 0
        ),
      ];
      const wait = Math.max(0, ...waits);
      if (wait <= 0 || now > until) return;
      await sleep(Math.min(wait + 20, 500));
    }
  }

  /**
   * The settle of the oracle: faults off, one since_last_sync / create_and_update run, and one
   * more when the first left something owed (a fault window: retry set, queue, failures).
   */
  /**
   * Results of runs the engine started by itself (the webhook pass after a run that saw ids
   * queued meanwhile): what those runs said is part of each record's story.
   */
  async collectEngineRuns(): Promise<void> {
    const { runs } = await this.engine.listRuns({ limit: 20 });
    const done = runs.filter((r) => r.status !== "running" && !this.recordedRuns.has(r.id));
    done.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    for (const run of done) {
      this.recordedRuns.add(run.id);
      for (const r of await this.engine.getResults(run.id)) {
        this.results.push({
          id: r.purchaseOrderId,
          result: r,
          source: `engine ${run.trigger} pass`,
          startedAt: Date.parse(run.startedAt),
        });
      }
    }
  }

  async settle(): Promise<{ last: RecordResult[] }> {
    this.shared.zohoSim.releaseHeld();
    this.shared.xeroSim.releaseHeld();
    await this.drain();
    await this.collectEngineRuns();
    this.shared.zohoSim.clearFaults();
    this.shared.xeroSim.clearFaults();
    let last: RecordResult[] = [];
    for (let pass = 0; pass < 2; pass++) {
      const t0 = Date.now();
      await this.quiet();
      if (Deno.env.get("MODEL_DEBUG")) console.log(`    quiet ${Date.now() - t0} ms`);
      const out = await this.runStarted(
        { window: "since_last_sync", mode: "create_and_update" },
        "settle",
      );
      await this.engine.idle();
      await this.collectEngineRuns();
      last = out.results;
      const owed = (await this.engine.retrySet()).length + (await this.engine.queued()).length;
      if (Deno.env.get("MODEL_DEBUG")) {
        console.log(
          `    pass ${pass} ${Date.now() - t0} ms owed ${owed} ${
            last.map((r) => r.outcome).join(" ")
          }`,
        );
      }
      if (!owed && !last.some((r) => r.outcome === "failed")) break;
    }
    return { last };
  }

  private async runStarted(input: StartRunInput, source: string) {
    let until = Date.now() + TIMING.runLeaseMs + 3_000;
    for (;;) {
      const out = await this.run(input, source);
      if (out.started) return out as { started: true; run: Run; results: RecordResult[] };
      // A run of a dead app that this one went on with holds the lease: it is waited for (it may
      // wait itself, e.g. for a token mint the dead app left claimed), then collected.
      const t0 = Date.now();
      await this.engine.idle();
      await this.collectEngineRuns();
      until += Date.now() - t0;
      if (Date.now() > until) throw new Error("the settle run could never start (lease held)");
      await sleep(50);
    }
  }

  async close(): Promise<void> {
    await this.drain().catch(() => {});
    await this.app.close().catch(() => {});
    for (const d of this.dead) {
      try {
        d.ctx.kv.close();
      } catch { /* already closed */ }
    }
    for (const suffix of ["", "-shm", "-wal"]) {
      await Deno.remove(this.kvPath + suffix).catch(() => {});
    }
  }
}

/** A record's fields minus those Zoho or the app's write-back (Xero_*) change. */
export function userOwned(rec: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) {
    if (k.startsWith("Xero_") || k === "Modified_Time" || k === "Modified_By") continue;
    out[k] = v;
  }
  return out;
}

export const STATUS_RANK: Record<string, number> = {
  DRAFT: 0,
  SUBMITTED: 1,
  AUTHORISED: 2,
  PAID: 3,
  VOIDED: 4,
  DELETED: 4,
};
const RANK_NAME = ["DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED/DELETED"];
