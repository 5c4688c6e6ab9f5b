/**
 * `/connections`: the state of the Zoho CRM and Xero connections, Connect/Reconnect (the OAuth
 * flows in routes/oauth.ts), the choice of Xero organisation, and Disconnect.
 */
import { Hono } from "hono";
import { z } from "zod";
import { Time } from "../../components/RunParts.tsx";
import type { AppContext, ConnStatus } from "../../lib/context.ts";
import { keys } from "../../lib/store/keys.ts";
import type { Assets } from "../assets.ts";
import {
  attempt,
  Csrf,
  Flash,
  type PageContext,
  type PageEnv,
  pageGuard,
  renderPage,
} from "./shared.tsx";

const WAIT_MS = 8000;

type Detailed = ConnStatus & { [detail: string]: unknown };

const STATE_LABEL = {
  connected: "Connected",
  not_connected: "Not connected",
  error: "Needs attention",
} as const;

function text(v: unknown): string | undefined {
  return typeof v === "string" && v ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function host(url: string | undefined): string | undefined {
  try {
    return url ? new URL(url).host : undefined;
  } catch {
    return undefined;
  }
}

/** "valid until …" from an ISO time or epoch ms, else how it is renewed. */
function TokenFreshness({ expiresAt }: { expiresAt: unknown }) {
  const iso = typeof expiresAt === "number" ? new Date(expiresAt).toISOString() : text(expiresAt);
  if (!iso || Number.isNaN(Date.parse(iso))) return <>Renewed automatically on the next call</>;
  return Date.parse(iso) > Date.now()
    ? (
      <>
        Access token valid until <Time iso={iso} />, then renewed automatically
      </>
    )
    : <>Access token expired; renewed automatically on the next call</>;
}

function StatusLine({ status }: { status: ConnStatus }) {
  return (
    <p class={`conn conn-${status.state}`}>
      <span class="conn-state" data-testid="state">
        {STATE_LABEL[status.state] ?? status.state}
      </span>
      {status.message ? <span class="muted">{` — ${status.message}`}</span> : null}
    </p>
  );
}

function ConnectButton(
  { system, status, configured, envNames }: {
    system: "zoho" | "xero";
    status: ConnStatus;
    configured: boolean;
    envNames: string;
  },
) {
  if (!configured) {
    return <p class="notice">Set {envNames} in the app's environment to connect.</p>;
  }
  const again = status.state !== "not_connected";
  const name = system === "zoho" ? "Zoho CRM" : "Xero";
  return (
    <a class="button" href={`/oauth/${system}/start`} id={`connect-${system}`}>
      {again ? `Reconnect ${name}` : `Connect ${name}`}
    </a>
  );
}

function DisconnectButton({ c, system }: { c: PageContext; system: "zoho" | "xero" }) {
  const name = system === "zoho" ? "Zoho CRM" : "Xero";
  return (
    <form method="post" action={`/connections/${system}/disconnect`} class="inline">
      <Csrf c={c} />
      <button type="submit" class="danger" id={`disconnect-${system}`}>Disconnect {name}</button>
    </form>
  );
}

async function connectionsPage(c: PageContext, ctx: AppContext, assets: Assets) {
  const session = c.get("session")!;
  const [zoho, xero, lastError] = await Promise.all([
    attempt(WAIT_MS, () => ctx.zoho.status()),
    attempt(WAIT_MS, () => ctx.xero.status()),
    ctx.kv.get<{ system: string; reason: string }>(keys.oauthError(session.id)),
  ]);
  if (lastError.value) await ctx.kv.delete(keys.oauthError(session.id));
  // The clients add details (data centre, tenant, token expiry, limits) beyond ConnStatus.
  const zs = (zoho.ok ? zoho.value : { state: "error", message: zoho.error }) as Detailed;
  const xs = (xero.ok ? xero.value : { state: "error", message: xero.error }) as Detailed;
  const tenants = xs.state === "connected"
    ? await attempt(WAIT_MS, () => ctx.xero.connections())
    : null;
  const cfg = ctx.config;
  const zohoAccounts = text(zs.accountsUrl) ?? cfg.ZOHO_ACCOUNTS_URL;
  const zohoCallsLeft = num(zs.callsLeftToday) ?? num(zs.dayLimitRemaining);
  const xeroCallsLeft = num(xs.dayLimitRemaining);
  const currentTenant = text(xs.tenantId);

  return renderPage(
    c,
    assets,
    { title: "Connections", path: "/connections" },
    (
      <>
        <h1>Connections</h1>
        <p class="muted">
          The app reads purchase orders from Zoho CRM and writes bills to Xero. Each needs a
          connection, made once by an administrator of that system.
        </p>
        <Flash code={c.req.query("notice")} />
        {lastError.value
          ? (
            <p class="error-box" role="alert">
              {lastError.value.system === "zoho" ? "Zoho CRM" : "Xero"} said:{" "}
              {lastError.value.reason}
            </p>
          )
          : null}
        <div class="grid">
          <section class="card" aria-labelledby="zoho-h" id="zoho">
            <h2 id="zoho-h">Zoho CRM</h2>
            <StatusLine status={zs} />
            <dl class="summary">
              {text(zs.orgName) ?? text(zs.organizationName)
                ? (
                  <>
                    <dt>Organisation</dt>
                    <dd>{text(zs.orgName) ?? text(zs.organizationName)}</dd>
                  </>
                )
                : null}
              <dt>Data centre</dt>
              <dd data-testid="zoho-dc">{host(zohoAccounts) ?? zohoAccounts}</dd>
              {text(zs.apiDomain)
                ? (
                  <>
                    <dt>API server</dt>
                    <dd>{host(text(zs.apiDomain))}</dd>
                  </>
                )
                : null}
              {zs.state === "connected"
                ? (
                  <>
                    <dt>Token</dt>
                    <dd>
                      <TokenFreshness expiresAt={zs.tokenExpiresAt} />
                    </dd>
                  </>
                )
                : null}
              <dt>API calls left today</dt>
              <dd>{zohoCallsLeft ?? "Not reported by Zoho"}</dd>
            </dl>
            <div class="actions">
              <ConnectButton
                system="zoho"
                status={zs}
                configured={!!(cfg.ZOHO_CLIENT_ID && cfg.ZOHO_CLIENT_SECRET)}
                envNames="ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET"
              />
              {zs.state !== "not_connected" ? <DisconnectButton c={c} system="zoho" /> : null}
            </div>
          </section>

          <section class="card" aria-labelledby="xero-h" id="xero">
            <h2 id="xero-h">Xero</h2>
            <StatusLine status={xs} />
            <dl class="summary">
              {text(xs.tenantName)
                ? (
                  <>
                    <dt>Organisation</dt>
                    <dd data-testid="xero-org">{text(xs.tenantName)}</dd>
                  </>
                )
                : null}
              <dt>Login server</dt>
              <dd>{host(cfg.XERO_LOGIN_URL)}</dd>
              {xs.state === "connected"
                ? (
                  <>
                    <dt>Token</dt>
                    <dd>
                      <TokenFreshness expiresAt={xs.tokenExpiresAt} />
                    </dd>
                  </>
                )
                : null}
              <dt>API calls left today</dt>
              <dd>{xeroCallsLeft ?? "Known after the next call to Xero"}</dd>
            </dl>
            {tenants && tenants.ok && tenants.value.length > 1
              ? (
                <form method="post" action="/connections/xero/tenant" class="tenant-form">
                  <Csrf c={c} />
                  <fieldset>
                    <legend>Organisation to send bills to</legend>
                    {tenants.value.map((t, i) => (
                      <div class="choice">
                        <input
                          type="radio"
                          name="tenantId"
                          id={`tenant-${i}`}
                          value={t.tenantId}
                          checked={t.tenantId === currentTenant}
                          required
                        />
                        <label for={`tenant-${i}`}>{t.tenantName}</label>
                      </div>
                    ))}
                  </fieldset>
                  <button type="submit">Use this organisation</button>
                </form>
              )
              : null}
            {tenants && !tenants.ok
              ? (
                <p class="notice">
                  Xero's list of organisations could not be read ({tenants.error}).
                </p>
              )
              : null}
            <div class="actions">
              <ConnectButton
                system="xero"
                status={xs}
                configured={!!(cfg.XERO_CLIENT_ID && cfg.XERO_CLIENT_SECRET)}
                envNames="XERO_CLIENT_ID and XERO_CLIENT_SECRET"
              />
              {xs.state !== "not_connected" ? <DisconnectButton c={c} system="xero" /> : null}
            </div>
          </section>
        </div>
      </>
    ),
  );
}

const TenantForm = z.object({ tenantId: z.string().trim().min(1).max(100) });

export function connectionRoutes(ctx: AppContext, assets: Assets) {
  const guard = pageGuard(ctx, assets);
  return new Hono<PageEnv>()
    .get("/connections", guard, (c) => connectionsPage(c, ctx, assets))
    .post("/connections/zoho/disconnect", guard, async (c) => {
      await ctx.zoho.disconnect();
      return c.redirect("/connections?notice=zoho-disconnected", 303);
    })
    .post("/connections/xero/disconnect", guard, async (c) => {
      await ctx.xero.disconnect();
      return c.redirect("/connections?notice=xero-disconnected", 303);
    })
    .post("/connections/xero/tenant", guard, async (c) => {
      const parsed = TenantForm.safeParse(await c.req.parseBody());
      const tenants = parsed.success ? await ctx.xero.connections().catch(() => []) : [];
      if (!parsed.success || !tenants.some((t) => t.tenantId === parsed.data.tenantId)) {
        return c.redirect("/connections?notice=tenant-unknown", 303);
      }
      await ctx.xero.chooseTenant(parsed.data.tenantId);
      return c.redirect("/connections?notice=tenant-chosen", 303);
    });
}
