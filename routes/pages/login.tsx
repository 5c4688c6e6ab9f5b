/**
 * Login with ADMIN_PASSWORD, and logout. Attempts are counted per client address in KV (shared by
 * every instance) before the password is looked at: after 5 failures in 15 minutes that address
 * must wait for the window to end, whatever it sends, however many requests it sends at once. A
 * successful login gives its attempt back.
 */
import { Hono } from "hono";
import type { AppContext } from "../../lib/context.ts";
import { safeEqual, sha256Hex } from "../../lib/secrets.ts";
import { keys } from "../../lib/store/keys.ts";
import { hit, refund } from "../../lib/store/rate_limit.ts";
import type { Assets } from "../assets.ts";
import { clientAddress } from "../client_address.ts";
import {
  createSession,
  destroySession,
  readSession,
  REFUSED,
  safeNext,
  sameOrigin,
} from "../session.ts";
import { Flash, type PageContext, type PageEnv, pageGuard, renderPage } from "./shared.tsx";

export const LOGIN_LIMIT = { limit: 5, windowMs: 15 * 60_000 };

function retryAt(now: number): { at: string; seconds: number } {
  const end = (Math.floor(now / LOGIN_LIMIT.windowMs) + 1) * LOGIN_LIMIT.windowMs;
  const seconds = Math.max(1, Math.ceil((end - now) / 1000));
  const at = new Date(end).toISOString().slice(11, 16);
  return { at, seconds };
}

/** Compares hashes so neither the length nor the content of the password leaks through timing. */
async function passwordMatches(given: string, expected: string): Promise<boolean> {
  return safeEqual(await sha256Hex(given), await sha256Hex(expected));
}

function LoginForm(
  { next, error, code }: { next: string; error?: string; code?: string },
) {
  return (
    <div class="login">
      <h1>Log in</h1>
      <p class="muted">
        This page sends Zoho CRM purchase orders to Xero as bills. Enter the admin password to
        continue.
      </p>
      <Flash code={code} />
      {error ? <p class="error-box" role="alert" id="login-error">{error}</p> : null}
      <form method="post" action="/login" class="card">
        <input type="hidden" name="next" value={next} />
        <label for="password">Admin password</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          autofocus
          aria-describedby={error ? "login-error" : undefined}
        />
        <p>
          <button type="submit">Log in</button>
        </p>
      </form>
    </div>
  );
}

export function loginRoutes(ctx: AppContext, assets: Assets) {
  const show = (
    c: PageContext,
    status: 200 | 401 | 403 | 429,
    props: Parameters<typeof LoginForm>[0],
  ) => renderPage(c, assets, { title: "Log in", path: "/login", status }, <LoginForm {...props} />);

  const tooMany = (c: PageContext, now: number, next: string) => {
    const { at, seconds } = retryAt(now);
    c.header("retry-after", String(seconds));
    const minutes = Math.ceil(seconds / 60);
    return show(c, 429, {
      next,
      error:
        `Too many failed log-ins from your address. Try again after ${at} UTC (in about ${minutes} minute${
          minutes === 1 ? "" : "s"
        }).`,
    });
  };

  return new Hono<PageEnv>()
    .get("/login", async (c) => {
      const next = safeNext(c.req.query("next"));
      if (await readSession(c, ctx)) return c.redirect(next, 302);
      return show(c, 200, { next, code: c.req.query("notice") });
    })
    .post("/login", async (c) => {
      const form = await c.req.parseBody();
      const next = safeNext(form["next"]);
      if (!sameOrigin(c, ctx)) return show(c, 403, { next, error: REFUSED.foreignOrigin });
      const bucket = `login:${clientAddress(c, ctx.config)}`;
      const now = Date.now();
      // Count first, compare after: parallel guesses cannot all slip in before the count moves.
      const counted = await hit(ctx.kv, bucket, LOGIN_LIMIT, now);
      if (!counted.ok) return tooMany(c, now, next);
      const password = typeof form["password"] === "string" ? form["password"] : "";
      if (password && await passwordMatches(password, ctx.config.ADMIN_PASSWORD)) {
        await refund(ctx.kv, bucket, LOGIN_LIMIT, now);
        // A fresh session id on every login: a cookie planted before login is never promoted.
        const old = await readSession(c, ctx);
        if (old) await ctx.kv.delete(keys.session(old.id));
        await createSession(c, ctx);
        return c.redirect(next, 303);
      }
      const left = Math.max(0, LOGIN_LIMIT.limit - counted.count);
      return show(c, 401, {
        next,
        error: `That password is not right. ${left} attempt${
          left === 1 ? "" : "s"
        } left before a 15-minute pause.`,
      });
    })
    .post("/logout", pageGuard(ctx, assets), async (c) => {
      await destroySession(c, ctx);
      return c.redirect("/login?notice=logged-out", 303);
    });
}
