/** The JSON API of DESIGN §5: the Zoho button, runs, and the Zoho webhook. */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { AppContext } from "../lib/context.ts";
import { ModeSchema, type RecordResult, StartRunSchema, ZohoIdSchema } from "../lib/sync/types.ts";
import { traceButton } from "../lib/telemetry.ts";
import { type ApiEnv, rateLimit, requireToken, requireTokenOrSession } from "./api_auth.ts";
import { notifyRoutes } from "./notify.ts";

const MAX_BODY = 16 * 1024;
const RUN_ID = /^r[0-9a-z]{9}[0-9a-f]{8}$/;

export const limitBody = bodyLimit({
  maxSize: MAX_BODY,
  onError: (c) => c.json({ error: `Request body too large: at most ${MAX_BODY} bytes.` }, 413),
});

/** Reads an optional JSON body: empty → {}, malformed → a 400 message. */
export async function jsonBody(
  c: Context,
): Promise<{ ok: true; value: unknown } | { ok: false; error: string }> {
  const text = await c.req.text();
  if (!text.trim()) return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, error: "The request body is not valid JSON." };
  }
}

export function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ` : "") + i.message).join(
    "; ",
  );
}

const SyncBodySchema = z.object({ mode: ModeSchema.optional() });

function statusFor(r: RecordResult, notFound: boolean): 200 | 404 | 409 | 422 | 500 | 502 {
  if (notFound) return 404;
  switch (r.outcome) {
    case "created":
    case "updated":
    case "unchanged":
      return 200;
    case "skipped":
      return 422;
    case "failed":
      return r.failedAt === "busy" ? 409 : r.failedAt === "app" ? 500 : 502;
  }
}

export function apiRoutes(ctx: AppContext) {
  const api = new Hono<ApiEnv>();
  api.use("*", rateLimit(ctx), limitBody);

  api.post("/purchase-orders/:id/sync", requireToken(ctx), async (c) => {
    const id = ZohoIdSchema.safeParse(c.req.param("id"));
    if (!id.success) {
      return c.json({ error: `Invalid purchase order id: ${zodMessage(id.error)}.` }, 400);
    }
    const body = await jsonBody(c);
    if (!body.ok) return c.json({ error: body.error }, 400);
    const parsed = SyncBodySchema.safeParse(body.value);
    if (!parsed.success) return c.json({ error: zodMessage(parsed.error) }, 400);
    const { result, notFound } = await traceButton(
      id.data,
      parsed.data.mode,
      () =>
        ctx.sync.syncPurchaseOrder(id.data, {
          mode: parsed.data.mode,
          trigger: "button",
        }),
    );
    const payload = {
      outcome: result.outcome,
      purchaseOrderId: result.purchaseOrderId,
      ...(result.bill ? { bill: result.bill } : {}),
      reasons: result.reasons,
      message: notFound
        ? "Not synced: Zoho CRM has no purchase order with this id."
        : result.message,
      ...(result.warnings?.length ? { warnings: result.warnings } : {}),
    };
    return c.json(payload, statusFor(result, notFound));
  });

  // An empty path segment (/purchase-orders//sync) is a malformed id too, not an unknown route.
  api.post(
    "/purchase-orders//sync",
    requireToken(ctx),
    (c) => c.json({ error: "Invalid purchase order id: it is empty." }, 400),
  );

  api.post("/sync-runs", requireTokenOrSession(ctx), async (c) => {
    const body = await jsonBody(c);
    if (!body.ok) return c.json({ error: body.error }, 400);
    const parsed = StartRunSchema.safeParse(body.value);
    if (!parsed.success) return c.json({ error: zodMessage(parsed.error) }, 400);
    const trigger = c.get("caller") === "session" ? "page" : "api";
    const start = await ctx.sync.startRun(parsed.data, trigger);
    if (!start.started) {
      return c.json({ error: "A sync run is already in progress.", runId: start.runId }, 409);
    }
    start.done.catch(() => {}); // the run records its own failure
    return c.json({ runId: start.runId }, 202);
  });

  api.get("/sync-runs", requireTokenOrSession(ctx), async (c) => {
    const limit = z.coerce.number().int().min(1).max(100).catch(20).parse(
      c.req.query("limit") ?? 20,
    );
    const cursor = c.req.query("cursor") || undefined;
    try {
      const page = await ctx.sync.listRuns({ limit, cursor });
      return c.json({ runs: page.runs, ...(page.cursor ? { cursor: page.cursor } : {}) });
    } catch {
      return c.json({ error: "Invalid cursor." }, 400);
    }
  });

  api.get("/sync-runs/:id", requireTokenOrSession(ctx), async (c) => {
    const id = c.req.param("id");
    if (!RUN_ID.test(id)) return c.json({ error: "Invalid run id." }, 400);
    const run = await ctx.sync.getRun(id);
    if (!run) return c.json({ error: `No run with id ${id}.` }, 404);
    // ?results=0 for cheap progress polling: the run without its (possibly thousands of) rows.
    if (c.req.query("results") === "0") return c.json(run);
    return c.json({ ...run, results: await ctx.sync.getResults(id) });
  });

  api.route("/zoho", notifyRoutes(ctx));
  return api;
}
