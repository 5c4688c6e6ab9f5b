/**
 * POST /api/xero/webhook (DESIGN §5): Xero's signed webhook. The signature is checked over the raw
 * body, the events' bill ids are stored in KV and the answer (200, empty body, no cookies) goes back
 * at once: Xero wants it within 5 s. The bills are worked afterwards (lib/sync/bill_status.ts).
 * Mounted ahead of the rest of /api: Xero is neither rate-limited as a caller nor held to the API's
 * 16 KB body limit, since a refused delivery is retried and, after 24 h, disables the webhook.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppContext } from "../lib/context.ts";
import { receiveXeroWebhook, type WebhookOutcome } from "../lib/sync/bill_status.ts";

const MAX_BODY = 1024 * 1024;

/** The one place a webhook outcome becomes an HTTP answer. */
function answer(o: WebhookOutcome): { status: 200 | 400 | 401 | 404; error?: string } {
  switch (o.kind) {
    case "accepted":
      return { status: 200 };
    case "bad_signature":
      return { status: 401 };
    case "malformed":
      return { status: 400, error: o.message };
    case "not_configured":
      return { status: 404, error: "The Xero webhook is not set up (XERO_WEBHOOK_KEY)." };
  }
}

export function xeroWebhookRoutes(ctx: AppContext) {
  const app = new Hono();
  app.post(
    "/webhook",
    bodyLimit({ maxSize: MAX_BODY, onError: (c) => c.body(null, 413) }),
    async (c) => {
      const body = new Uint8Array(await c.req.arrayBuffer());
      const outcome = await receiveXeroWebhook(
        ctx.kv,
        ctx.config.XERO_WEBHOOK_KEY,
        body,
        c.req.header("x-xero-signature"),
      );
      const { status, error } = answer(outcome);
      if (outcome.kind === "accepted" && outcome.stored > 0) {
        // Worked after the answer; the scheduled tick takes whatever this pass could not.
        ctx.sync.syncBillStatuses({ poll: false }).catch(() => {});
      }
      return error ? c.json({ error }, status) : c.body(null, status);
    },
  );
  return app;
}
