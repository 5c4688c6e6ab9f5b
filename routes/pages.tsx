/**
 * The admin pages (server-rendered; interactive parts are islands): login, the manual sync, run
 * history, settings and connections, and the OAuth flows behind "Connect". Every route but /login
 * carries its own session guard, so nothing here touches requests meant for other sub-apps.
 */
import { Hono } from "hono";
import type { AppContext } from "../lib/context.ts";
import type { Assets } from "./assets.ts";
import { oauthRoutes } from "./oauth.ts";
import { connectionRoutes } from "./pages/connections.tsx";
import { loginRoutes } from "./pages/login.tsx";
import { runRoutes } from "./pages/runs.tsx";
import { settingsRoutes } from "./pages/settings.tsx";
import type { PageEnv } from "./pages/shared.tsx";
import { syncRoutes } from "./pages/sync.tsx";

export type { PageEnv };

export function pageRoutes(ctx: AppContext, assets: Assets) {
  return new Hono<PageEnv>()
    .route("/", loginRoutes(ctx, assets))
    .route("/", syncRoutes(ctx, assets))
    .route("/", runRoutes(ctx, assets))
    .route("/", settingsRoutes(ctx, assets))
    .route("/", connectionRoutes(ctx, assets))
    .route("/", oauthRoutes(ctx));
}
