/** One Hono app with a sub-app per area; the only place routes are mounted. */
import { Hono } from "hono";
import type { AppContext } from "../lib/context.ts";
import { assetRoutes, type Assets } from "./assets.ts";
import { useBase } from "./base.ts";
import { notFound, onError } from "./errors.tsx";
import { apiRoutes } from "./api.ts";
import { xeroWebhookRoutes } from "./xero_webhook.ts";
import { healthRoutes } from "./health.ts";
import { pageRoutes } from "./pages.tsx";

export { FORM_LIMITS } from "./base.ts";

export function createApp(ctx: AppContext, assets: Assets) {
  const app = new Hono();
  useBase(app, ctx.config);
  // A run whose instance stopped goes on (cheap, throttled, not awaited).
  app.use("*", (_c, next) => (ctx.sync.resumeIfStale(), next()));
  app.route("/", assetRoutes(assets));
  app.route("/", healthRoutes(ctx));
  // Before /api, whose rate limit and 16 KB body limit must not refuse Xero (see the module).
  app.route("/api/xero", xeroWebhookRoutes(ctx));
  app.route("/api", apiRoutes(ctx));
  app.route("/", pageRoutes(ctx, assets));
  app.notFound(notFound(assets));
  app.onError(onError(assets));
  return app;
}
