/** What every admin page shares: the guard, the page shell with the session, and flash notices. */
import type { Context } from "hono";
import type { ComponentChildren } from "preact";
import { renderToString } from "preact-render-to-string";
import { Layout } from "../../components/Layout.tsx";
import type { AppContext } from "../../lib/context.ts";
import type { Assets } from "../assets.ts";
import { requirePageSession, type SessionEnv } from "../session.ts";

export type PageEnv = SessionEnv;
export type PageContext = Context<PageEnv>;

export type PageStatus = 200 | 400 | 401 | 403 | 404 | 409 | 422 | 429 | 500 | 502;

export interface PageOptions {
  title: string;
  path: string;
  islands?: boolean;
  status?: PageStatus;
}

/** Renders a full page; the nav and logout button appear when the request has a session. */
export function renderPage(
  c: PageContext,
  assets: Assets,
  opts: PageOptions,
  children: ComponentChildren,
) {
  const session = c.get("session");
  c.header("cache-control", "no-store");
  const page = (
    <Layout
      title={opts.title}
      path={opts.path}
      islands={opts.islands}
      loggedIn={!!session}
      csrf={session?.csrf}
      assets={{ css: assets.css, js: assets.js, nonce: c.get("secureHeadersNonce") ?? "" }}
    >
      {children}
    </Layout>
  );
  return c.html(`<!doctype html>${renderToString(page)}`, opts.status ?? 200);
}

/** The session guard of every page and form, refusing with a small page instead of bare text. */
export function pageGuard(ctx: AppContext, assets: Assets) {
  return requirePageSession(
    ctx,
    (c, status, message) =>
      renderPage(
        c as PageContext,
        assets,
        { title: "Refused", path: "", status },
        (
          <>
            <h1>{status === 401 ? "Please log in" : "Request refused"}</h1>
            <p class="error-box" role="alert">{message}</p>
            <p>
              <a href={status === 401 ? "/login" : "/"}>
                {status === 401 ? "Go to the login page" : "Back to the sync page"}
              </a>
            </p>
          </>
        ),
      ),
  );
}

/**
 * Notices after a redirect are codes in the query string, mapped to fixed words here, so nothing a
 * link carries is ever echoed into the page.
 */
const NOTICES: Record<string, { kind: "ok" | "error"; text: string }> = {
  "logged-out": { kind: "ok", text: "You are logged out." },
  "settings-saved": { kind: "ok", text: "Settings saved. The next run uses them." },
  "auto-sync-saved": { kind: "ok", text: "Auto sync saved." },
  "contact-saved": { kind: "ok", text: "Vendor link saved. The next run uses it." },
  "contact-removed": { kind: "ok", text: "Vendor link removed." },
  "contact-invalid": {
    kind: "error",
    text: "Enter the Zoho vendor id (15 to 20 digits) and choose a contact from the list.",
  },
  "busy": { kind: "error", text: "Another sync is already running: here it is." },
  "retry-none": { kind: "error", text: "This run has no failed records to retry." },
  "zoho-connected": { kind: "ok", text: "Zoho CRM is connected." },
  "xero-connected": { kind: "ok", text: "Xero is connected." },
  "xero-choose": {
    kind: "ok",
    text: "Xero is connected to several organisations: choose the one to send bills to.",
  },
  "tenant-chosen": { kind: "ok", text: "Organisation chosen. Bills go to it from now on." },
  "zoho-disconnected": { kind: "ok", text: "Zoho CRM is disconnected." },
  "xero-disconnected": { kind: "ok", text: "Xero is disconnected." },
  "oauth-denied": { kind: "error", text: "The connection was not approved. Nothing changed." },
  "oauth-state": {
    kind: "error",
    text: "That connection attempt expired or did not start here. Press Connect again.",
  },
  "oauth-failed": {
    kind: "error",
    text: "The connection could not be completed. Check the client ID and secret, then try again.",
  },
  "oauth-unconfigured": {
    kind: "error",
    text: "The OAuth client is not configured: set the client ID and secret in the environment.",
  },
  "tenant-unknown": { kind: "error", text: "That organisation is not among Xero's connections." },
};

export function Flash({ code }: { code: string | undefined }) {
  const n = code ? NOTICES[code] : undefined;
  if (!n) return null;
  return (
    <p
      class={n.kind === "ok" ? "flash flash-ok" : "error-box"}
      role={n.kind === "ok" ? "status" : "alert"}
    >
      {n.text}
    </p>
  );
}

/** Hidden CSRF field for a form. */
export function Csrf({ c }: { c: PageContext }) {
  return <input type="hidden" name="csrf" value={c.get("session")?.csrf ?? ""} />;
}

/**
 * Waits at most `ms` for a remote call so a slow API never hangs a page; says what went wrong
 * otherwise (lower layers' messages are free of secrets).
 */
export async function attempt<T>(
  ms: number,
  work: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work().then((value) => ({ ok: true as const, value })),
      new Promise<{ ok: false; error: string }>((resolve) =>
        timer = setTimeout(() => resolve({ ok: false, error: "it did not answer in time" }), ms)
      ),
    ]);
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : "unknown error" };
  } finally {
    clearTimeout(timer);
  }
}
