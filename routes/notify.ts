/**
 * POST /api/zoho/notify: a Zoho workflow-rule webhook (ids as JSON or form parameters, the token in
 * `Authorization: Bearer`) or a Notification API callback (`{module, ids, operation, token,
 * channel_id}` with the channel token = SYNC_API_TOKEN). Queues the ids and answers 202 at once;
 * a background pass syncs them (and the cron tick, if that pass cannot start).
 */
import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import type { AppContext } from "../lib/context.ts";
import { safeEqual } from "../lib/secrets.ts";
import { ZohoIdSchema } from "../lib/sync/types.ts";
import { annotate, traceWebhook } from "../lib/telemetry.ts";
import { bearerOk } from "./api_auth.ts";

const MAX_IDS = 500;

const idList = z.union([
  z.array(z.union([z.string(), z.number()])),
  z.string(),
  z.number(),
]).transform((v) => (Array.isArray(v) ? v : String(v).split(",")).map((x) => String(x).trim()))
  .pipe(
    z.array(ZohoIdSchema).min(1, "no record id given").max(
      MAX_IDS,
      `at most ${MAX_IDS} ids at once`,
    ),
  );

const NotifySchema = z.object({
  module: z.string().optional(),
  operation: z.string().optional(),
  token: z.string().optional(),
  channel_id: z.union([z.string(), z.number()]).optional(),
  ids: idList.optional(),
  id: idList.optional(),
}).refine((v) => v.ids || v.id, { message: "send the record id(s) as `ids` or `id`" });

/** The `sync.webhook` span around each call (lib/telemetry.ts). */
const webhookSpan: MiddlewareHandler = (c, next) => traceWebhook(() => c.res, next);

export function notifyRoutes(ctx: AppContext) {
  return new Hono().use("/notify", webhookSpan).post("/notify", async (c) => {
    const type = c.req.header("content-type") ?? "";
    let input: Record<string, unknown>;
    try {
      if (
        type.includes("application/x-www-form-urlencoded") || type.includes("multipart/form-data")
      ) {
        input = { ...await c.req.parseBody() };
      } else {
        const text = await c.req.text();
        input = text.trim() ? JSON.parse(text) : {};
      }
    } catch {
      return c.json({ error: "The request body is not valid JSON or form data." }, 400);
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      return c.json({ error: "The request body must be a JSON object." }, 400);
    }
    const channelToken = typeof input.token === "string" ? input.token : undefined;
    const authorized = bearerOk(c, ctx.config.SYNC_API_TOKEN) ||
      (channelToken !== undefined && safeEqual(channelToken, ctx.config.SYNC_API_TOKEN));
    if (!authorized) {
      return c.json({ error: "Unauthorized: wrong or missing token." }, 401);
    }
    const parsed = NotifySchema.safeParse(input);
    if (!parsed.success) {
      return c.json({ error: parsed.error.issues.map((i) => i.message).join("; ") }, 400);
    }
    const { module } = parsed.data;
    if (module && module !== "Purchase_Orders") {
      return c.json({ error: `Only the Purchase_Orders module is synced, not ${module}.` }, 400);
    }
    // A deleted order is queued like any other: the sync finds it gone and deals with its bill
    // (lib/sync/stages/lifecycle.ts).
    const ids = [...new Set([...(parsed.data.ids ?? []), ...(parsed.data.id ?? [])])];
    annotate({ "sync.webhook.ids": ids.length });
    await ctx.sync.enqueue(ids);
    // Start a pass now; if a run is going on, the queue is taken by the pass that follows it.
    ctx.sync.tick("webhook").then((s) => {
      if (s.started) s.done.catch(() => {});
    }).catch(() => {});
    return c.json({ queued: ids.length }, 202);
  });
}
