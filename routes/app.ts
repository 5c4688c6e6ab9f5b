/** One Hono app with a sub-app per area; the only place routes are mounted. */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { AppContext } from "../lib/context.ts";
import { assetRoutes, type Assets } from "./assets.ts";
import { notFound, onError } from "./errors.tsx";
import { apiRoutes } from "./api.ts";
import { xeroWebhookRoutes } from "./xero_webhook.ts";
import { healthRoutes } from "./health.ts";
import { pageRoutes } from "./pages.tsx";

/** Form posts are small: the login form, the settings form (with its lists) and one-button forms. */
export const FORM_LIMITS = { login: 8 * 1024, settings: 64 * 1024, other: 8 * 1024 } as const;

function tooLarge(max: number) {
  return (c: Context) =>
    c.text(`The form is too large: at most ${max / 1024} KiB. Nothing was changed.`, 413);
}

/**
 * Every page body is limited before anything reads it (the session guard parses forms for the
 * CSRF token): a Content-Length over the limit is refused unread, a chunked body is cut off once it
 * passes the limit. /api has its own limit.
 */
function formLimits(): MiddlewareHandler {
  const limit = (max: number) => bodyLimit({ maxSize: max, onError: tooLarge(max) });
  const login = limit(FORM_LIMITS.login);
  const settings = limit(FORM_LIMITS.settings);
  const other = limit(FORM_LIMITS.other);
  return (c, next) => {
    const path = c.req.path;
    if (path === "/api" || path.startsWith("/api/")) return next();
    if (path === "/login") return login(c, next);
    if (path === "/settings" || path.startsWith("/settings/")) return settings(c, next);
    return other(c, next);
  };
}

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
  app.use("*", formLimits());
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
