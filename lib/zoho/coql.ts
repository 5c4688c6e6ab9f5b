/**
 * Purchase-order line items in bulk through COQL (REFERENCE "Reading line items in bulk"): one
 * `POST /crm/v8/coql` reads the lines of up to 50 orders, where the single-record GET reads one
 * order for the same credit. What is unverified is handled defensively: the module's name is
 * probed once and the answer kept in KV for a while; a refusal (no COQL, no scope, another module
 * name) turns bulk reads off and the caller reads each order with the GET. The caller also checks
 * every order's lines against its own totals before trusting them (lib/sync/stages/bulk.ts).
 */
import { z } from "zod";
import { keys } from "../store/keys.ts";
import { ZohoError } from "./errors.ts";
import { type HttpAnswer, Semaphore } from "./http.ts";
import { ErrorBody, ZohoId } from "./schemas.ts";

/** Module names tried for purchase-order line items, in order (v8 SDK name, then v7's doc name). */
export const LINE_ITEM_MODULES = ["Purchase_Items", "Purchased_Items"] as const;
/** Values in one `in (…)`: 50 is the documented figure of older versions (v8's is unverified). */
export const COQL_IN_MAX = 50;
/** Rows asked per call: LIMIT 200 costs 1 credit (201–1,000: 2; 1,001–2,000: 3). */
export const COQL_PAGE = 200;
/** OFFSET + LIMIT may not pass 100,000 rows. */
const COQL_MAX_OFFSET = 100_000;
/** How long an answer of the probe is kept: a refusal is asked again sooner (a scope may be granted). */
const ACCEPTED_TTL_MS = 24 * 3600_000;
const REFUSED_TTL_MS = 6 * 3600_000;
/** How long this process reuses what KV said, without reading it again. */
const LOCAL_TTL_MS = 60_000;

/**
 * The columns read: every line field the mapping uses. A lookup comes back from COQL as `{id}`,
 * so the product's name and code are selected with a dot.
 */
const COLUMNS = [
  "id",
  "Parent_Id",
  "Sequence_Number",
  "Product_Name",
  "Product_Name.Product_Name",
  "Product_Name.Product_Code",
  "Quantity",
  "List_Price",
  "Discount",
  "Total",
  "Total_After_Discount",
  "Tax",
  "Line_Tax",
  "Net_Total",
  "Description",
];

/** Credits one COQL call costs by its LIMIT. */
export function coqlCredits(limit: number): number {
  return limit <= 200 ? 1 : limit <= 1000 ? 2 : 3;
}

const CoqlResponse = z.object({
  data: z.array(z.looseObject({})),
  info: z.looseObject({ more_records: z.boolean().optional() }).optional(),
});

const Remembered = z.object({
  module: z.string().nullable(),
  at: z.string(),
  code: z.string().optional(),
});

export interface CoqlDeps {
  kv: Deno.Kv;
  /** COQL calls in flight at once (Zoho: 10 for "complex" APIs on every edition). */
  concurrency: number;
  /** One COQL call through the client (its limiter, retries and credit count). */
  send(query: string, credits: number): Promise<HttpAnswer>;
  errorFrom(answer: HttpAnswer): ZohoError;
}

/** Line items of many purchase orders: parent id → its lines, in Sequence_Number order. */
export type LineItemsByParent = Map<string, Record<string, unknown>[]>;

export class CoqlLineItems {
  #local?: { at: number; module: string | null };
  #probing?: Promise<string | null>;
  readonly #gate: Semaphore;

  constructor(private readonly deps: CoqlDeps) {
    this.#gate = new Semaphore(deps.concurrency);
  }

  /** One call, within the complex-API limit (on top of the client's own). */
  #send(query: string, credits: number): Promise<HttpAnswer> {
    return this.#gate.run(() => this.deps.send(query, credits));
  }

  /**
   * The lines of each parent (a parent with none is absent), or null when Zoho does not answer
   * COQL for line items (remembered; the caller then uses the single-record GET). Other failures
   * (outage, retries spent) throw a ZohoError.
   */
  async read(parentIds: string[]): Promise<LineItemsByParent | null> {
    const ids = [...new Set(parentIds)].filter((id) => ZohoId.safeParse(id).success);
    const out: LineItemsByParent = new Map();
    if (!ids.length) return out;
    const module = await this.module();
    if (!module) return null;
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += COQL_IN_MAX) chunks.push(ids.slice(i, i + COQL_IN_MAX));
    const refused = await Promise.all(chunks.map((chunk) => this.#readChunk(module, chunk, out)));
    if (refused.some(Boolean)) return null;
    // A column Zoho answered for some rows and left out of others is empty there (a column it
    // never answered stays absent: the caller does not trust such lines).
    const answered = new Set<string>();
    for (const lines of out.values()) for (const l of lines) for (const k in l) answered.add(k);
    for (const lines of out.values()) {
      for (const l of lines) for (const k of answered) if (!(k in l)) l[k] = null;
      lines.sort(bySequence);
    }
    return out;
  }

  /** The line-item module name Zoho answers to, or null when it refuses COQL (probed once). */
  async module(): Promise<string | null> {
    if (this.#local && Date.now() - this.#local.at < LOCAL_TTL_MS) return this.#local.module;
    const stored = Remembered.safeParse((await this.deps.kv.get(keys.zohoCoqlLineItems())).value);
    if (stored.success) {
      this.#local = { at: Date.now(), module: stored.data.module };
      return stored.data.module;
    }
    // One probe per process at a time: batches read in parallel share it.
    this.#probing ??= this.#probe().finally(() => (this.#probing = undefined));
    return await this.#probing;
  }

  /** Forgets what the probe found (tests; a changed Zoho set-up). */
  async forget(): Promise<void> {
    this.#local = undefined;
    await this.deps.kv.delete(keys.zohoCoqlLineItems());
  }

  async #probe(): Promise<string | null> {
    let code = "";
    for (const name of LINE_ITEM_MODULES) {
      const answer = await this.#send(`select id, Parent_Id from ${name} limit 1`, 1);
      if (answer.status === 200 || answer.status === 204) {
        await this.#remember(name);
        return name;
      }
      const refusal = refusalCode(answer);
      if (!refusal) throw this.deps.errorFrom(answer);
      code = refusal;
      // Without the scope or the permission no other name will do.
      if (refusal === "OAUTH_SCOPE_MISMATCH" || refusal === "NO_PERMISSION") break;
    }
    await this.#remember(null, code);
    return null;
  }

  async #remember(module: string | null, code?: string): Promise<void> {
    this.#local = { at: Date.now(), module };
    const value = { module, at: new Date().toISOString(), ...(code ? { code } : {}) };
    await this.deps.kv.set(keys.zohoCoqlLineItems(), value, {
      expireIn: module ? ACCEPTED_TTL_MS : REFUSED_TTL_MS,
    });
  }

  /** Reads one chunk's rows page by page into `out`; true when Zoho refused the query. */
  async #readChunk(module: string, ids: string[], out: LineItemsByParent): Promise<boolean> {
    const where = `Parent_Id in (${ids.map((id) => `'${id}'`).join(", ")})`;
    const wanted = new Set(ids);
    for (let offset = 0; offset + COQL_PAGE <= COQL_MAX_OFFSET; offset += COQL_PAGE) {
      const query = `select ${
        COLUMNS.join(", ")
      } from ${module} where ${where} order by id limit ${offset}, ${COQL_PAGE}`;
      const answer = await this.#send(query, coqlCredits(COQL_PAGE));
      if (answer.status === 204) return false;
      if (answer.status !== 200) {
        const refusal = refusalCode(answer);
        if (!refusal) throw this.deps.errorFrom(answer);
        await this.#remember(null, refusal);
        return true;
      }
      const parsed = CoqlResponse.safeParse(answer.json);
      if (!parsed.success) {
        throw new ZohoError({
          code: "UNEXPECTED_RESPONSE",
          message: "Zoho line items in bulk: an answer of an unexpected shape",
          status: answer.status,
        });
      }
      for (const row of parsed.data.data) {
        const parent = parentOf(row.Parent_Id);
        // A row of an order not asked for is dropped (never attached to the wrong order).
        if (!parent || !wanted.has(parent)) continue;
        const lines = out.get(parent) ?? [];
        lines.push(lineOf(row));
        out.set(parent, lines);
      }
      const rows = parsed.data.data.length;
      if (rows < COQL_PAGE || parsed.data.info?.more_records === false) return false;
    }
    return false;
  }
}

/**
 * Zoho's answer means "not this way" (COQL off, no scope, unknown module or column, a limit we
 * guessed wrong): bulk reads stop and the GET takes over. 429 and 5xx never get here (retried).
 */
function refusalCode(answer: HttpAnswer): string | null {
  if (answer.status < 400 || answer.status >= 500 || answer.status === 429) return null;
  const code = ErrorBody.safeParse(answer.json).data?.code ?? `HTTP_${answer.status}`;
  if (code === "INVALID_TOKEN" || code === "AUTHENTICATION_FAILURE") return null;
  return code;
}

function parentOf(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { id?: unknown }).id === "string") {
    return (v as { id: string }).id;
  }
  return null;
}

/**
 * One COQL row in the shape the single-record GET gives a line: `Product_Name` as
 * `{id, name, Product_Code}` (from the lookup and its dotted columns), no Parent_Id.
 */
function lineOf(row: Record<string, unknown>): Record<string, unknown> {
  const line: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (k === "Parent_Id" || k.includes(".")) continue;
    line[k] = v;
  }
  const lookup = row.Product_Name;
  const id = lookup && typeof lookup === "object" ? (lookup as { id?: unknown }).id : undefined;
  const name = row["Product_Name.Product_Name"] ??
    (lookup && typeof lookup === "object" ? (lookup as { name?: unknown }).name : undefined);
  const code = row["Product_Name.Product_Code"] ??
    (lookup && typeof lookup === "object"
      ? (lookup as { Product_Code?: unknown }).Product_Code
      : undefined);
  line.Product_Name = id === undefined || id === null
    ? null
    : { id, name: name ?? null, Product_Code: code ?? null };
  return line;
}

function bySequence(a: Record<string, unknown>, b: Record<string, unknown>): number {
  const x = Number(a.Sequence_Number);
  const y = Number(b.Sequence_Number);
  return (Number.isFinite(x) ? x : Infinity) - (Number.isFinite(y) ? y : Infinity);
}
