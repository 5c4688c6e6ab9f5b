/** Per purchase order state: the one Xero bill it owns and what we last saw or wrote in Zoho. */
import { getManyChunked } from "./kv.ts";
import { keys } from "./keys.ts";

export interface RecordState {
  invoiceId?: string;
  invoiceNumber?: string;
  billStatus?: string;
  /** Content hash of the bill body last written to Xero. */
  hash?: string;
  /** Zoho Modified_Time we last processed, or the one our own write-back produced. */
  zohoModifiedTime?: string;
  /** Content fields of the record as the list call shows them (see lib/sync/fingerprint.ts). */
  listFingerprint?: string;
  /** Hash of the write-back values last written, so unchanged values are not written again. */
  writeBackHash?: string;
  outcome?: string;
  /** The Xero organisation the bill is in (absent in states written before it was recorded). */
  tenantId?: string;
  /** Settings fingerprint the record was last decided under (lib/sync/fingerprint.ts). */
  settingsKey?: string;
  /** Left unfinished on purpose (a create-only run did not update its bill): not done yet. */
  owed?: boolean;
  /** Xero's figures last written to Zoho by lib/sync/bill_status.ts (only changes are written). */
  xeroAmounts?: { amountPaid?: number; amountDue?: number; fullyPaidOn?: string | null };
  /** What lib/sync/stages/lifecycle.ts did about the bill once the order was deleted in Zoho. */
  closed?: { case: string; action: string; at: string };
  /** The reasons of the last "skipped" outcome. */
  reasons?: string[];
  syncedAt?: string;
}

export async function getStates(kv: Deno.Kv, ids: string[]): Promise<Map<string, RecordState>> {
  const entries = await getManyChunked<RecordState>(kv, ids.map((id) => keys.billMapping(id)));
  const out = new Map<string, RecordState>();
  entries.forEach((e, i) => e.value && out.set(ids[i], e.value));
  return out;
}

/** The states with the versionstamps they were read at (a later sync's write has a higher one). */
export async function getStatesStamped(
  kv: Deno.Kv,
  ids: string[],
): Promise<Map<string, { state: RecordState; stamp: string }>> {
  const entries = await getManyChunked<RecordState>(kv, ids.map((id) => keys.billMapping(id)));
  const out = new Map<string, { state: RecordState; stamp: string }>();
  entries.forEach((e, i) => e.value && out.set(ids[i], { state: e.value, stamp: e.versionstamp! }));
  return out;
}

export interface BillIntent {
  hash: string;
  invoiceNumber: string;
  url: string;
  at: string;
  /** The create got no answer (timeout, lost connection): Xero may still apply it. */
  unconfirmedAt?: string;
}

/** Write-ahead marks: set before a create is sent, cleared once its result is stored. */
export async function getIntents(kv: Deno.Kv, ids: string[]): Promise<Map<string, BillIntent>> {
  const entries = await getManyChunked<BillIntent>(kv, ids.map((id) => keys.billIntent(id)));
  const out = new Map<string, BillIntent>();
  entries.forEach((e, i) => e.value && out.set(ids[i], e.value));
  return out;
}

/** Commits many small writes in atomic chunks (KV allows 1000 mutations per atomic). */
export async function commitChunked(
  kv: Deno.Kv,
  ops: Array<(a: Deno.AtomicOperation) => Deno.AtomicOperation>,
  chunk = 500,
): Promise<void> {
  for (let i = 0; i < ops.length; i += chunk) {
    let atomic = kv.atomic();
    for (const op of ops.slice(i, i + chunk)) atomic = op(atomic);
    const res = await atomic.commit();
    if (!res.ok) throw new Error("KV commit was refused");
  }
}
