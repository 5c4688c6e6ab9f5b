/** One Hono app with a sub-app per area; the only place routes are mounted. */
import { Hono } from "hono";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { AppContext } from "../lib/context.ts";
import { assetRoutes, type Assets } from "./assets.ts";
import { notFound, onError } from "./errors.tsx";
import { apiRoutes } from "./api.ts";
import { xeroWebhookRoutes } from "./xero_webhook.ts";
import { healthRoutes } from "./health.ts";
import { pageRoutes } from "./pages.tsx";

export function createApp(ctx: AppContext, assets: Assets) {
  const app = new Hono();
  app.use(
    "*",
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", NONCE],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
      },
      strictTransportSecurity: ctx.config.APP_BASE_URL.startsWith("https:")
        ? "max-age=31536000; includeSubDomains"
        : false,
    }),
  );
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
