/** The shapes of sync results and runs (DESIGN §5), and the zod schemas of their inputs. */
import { z } from "zod";

export const OUTCOMES = ["created", "updated", "unchanged", "skipped", "failed"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const ModeSchema = z.enum(["create_and_update", "create_only", "preview"], {
  message: "mode must be one of create_and_update, create_only, preview",
});
export type Mode = z.infer<typeof ModeSchema>;

export const WindowSchema = z.enum(["since_last_sync", "last_days", "all"], {
  message: "window must be one of since_last_sync, last_days, all",
});
export type RunWindow = z.infer<typeof WindowSchema>;

export type Trigger = "page" | "api" | "cron" | "webhook" | "button";

/** Zoho record ids are 15-20 digit strings; never parse them as numbers (they exceed 2^53). */
export const ZohoIdSchema = z.string().regex(
  /^[0-9]{15,20}$/,
  "a Zoho record id is a string of 15 to 20 digits",
);

export const StartRunSchema = z.object({
  window: WindowSchema.default("since_last_sync"),
  days: z.coerce.number({ message: "days must be a whole number from 1 to 3650" }).int(
    "days must be a whole number from 1 to 3650",
  ).min(1, "days must be a whole number from 1 to 3650").max(
    3650,
    "days must be a whole number from 1 to 3650",
  ).optional(),
  mode: ModeSchema.default("create_and_update"),
}).refine((v) => v.window !== "last_days" || v.days !== undefined, {
  message: "days is required when window is last_days",
  path: ["days"],
});
export type StartRunInput = z.infer<typeof StartRunSchema>;

export interface BillRef {
  invoiceId: string;
  invoiceNumber: string;
  status: string;
  url: string;
}

/** lib/sync/stages/lifecycle.ts: the order was deleted, cancelled or unticked with a bill. */
export type LifecycleCase = "deleted" | "cancelled" | "unticked";
/** What was done about its bill ("none": it was already voided, deleted or not found). */
export type LifecycleAction = "left" | "deleted" | "voided" | "kept" | "none";

export interface RecordResult {
  purchaseOrderId: string;
  outcome: Outcome;
  reasons: string[];
  message: string;
  bill?: BillRef;
  /** Which system failed, for failed results: the API answers 502 for zoho/xero, 409 for busy. */
  failedAt?: "zoho" | "xero" | "app" | "busy";
  warnings?: string[];
  /** Zoho's PO number or subject, for people reading the run. */
  reference?: string;
  /** Read again whatever Zoho showed: owed from an earlier sync (with why), or named by a webhook. */
  retried?: { via: "retry" | "webhook"; since: string; reason?: string };
  /** Set on the rows of lib/sync/stages/lifecycle.ts (previews list them first). */
  lifecycle?: { case: LifecycleCase; action: LifecycleAction };
}

export type RunStatus = "running" | "completed" | "completed_with_errors" | "failed" | "paused";

export interface Counts {
  total: number;
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
  failed: number;
}

export interface Run {
  id: string;
  module: "Purchase_Orders";
  window: RunWindow;
  days?: number;
  mode: Mode;
  trigger: Trigger;
  status: RunStatus;
  startedAt: string;
  finishedAt?: string;
  /** Last checkpoint; a running run whose heartbeat is old was interrupted. */
  heartbeatAt: string;
  counts: Counts;
  /** Records the run will look at (known once the listing is done), and how many it has. */
  planned?: number;
  processed?: number;
  watermark: { before: string | null; after: string | null; movedAt?: string };
  apiCalls: { zoho: number; xero: number };
  /** What the run cost in Zoho credits and Xero calls and egress (lib/sync/usage.ts). */
  usage?: Usage;
  /** Plain words on why a run stopped early or failed as a whole. */
  message?: string;
  timings?: { listMs: number; processMs: number; totalMs: number };
  /** A paused run: when it goes on by itself. */
  resumeAt?: string;
  /** A paused run that goes on once this connection is made again. */
  waitingFor?: "zoho" | "xero";
  /** How often another instance went on with the run after its own stopped. */
  resumes?: number;
}

export interface Usage {
  /** Zoho API credits: 1 a call, COQL by its LIMIT (1–200 rows 1, 201–1,000 2, 1,001–2,000 3). */
  zohoCredits: number;
  /** Zoho API calls by kind: list, get, coql, update, fields (retries included). */
  zohoCalls: Record<string, number>;
  xeroCalls: number;
  /** Bytes Xero's answers carried. */
  xeroEgressBytes: number;
}

export function emptyCounts(): Counts {
  return { total: 0, created: 0, updated: 0, unchanged: 0, skipped: 0, failed: 0 };
}
