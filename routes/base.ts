/**
 * The middleware every response passes through (security headers, body limits), shared by the
 * full app (routes/app.ts) and the /health app main.ts answers with while the rest still loads,
 * so a cold instance's first /health carries exactly the headers of every later one. Kept light:
 * main.ts loads it before the first answer.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { Config } from "../lib/config.ts";

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

/** Security headers, then the body limits: the first middleware of every app that answers. */
export function useBase(app: Hono, config: Config): void {
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
      strictTransportSecurity: config.APP_BASE_URL.startsWith("https:")
        ? "max-age=31536000; includeSubDomains"
        : false,
    }),
  );
  app.use("*", formLimits());
}
