/** The admin pages (server-rendered; interactive parts are islands). */
import { Hono } from "hono";
import type { AppContext } from "../lib/context.ts";
import { Layout, type PageAssets } from "../components/Layout.tsx";
import { Island } from "../components/Island.tsx";
import type { Assets } from "./assets.ts";
import { healthBody } from "./health.ts";
import { html } from "./render.tsx";

export type PageEnv = { Variables: { secureHeadersNonce?: string } };

export function pageAssets(assets: Assets, nonce = ""): PageAssets {
  return { css: assets.css, js: assets.js, nonce };
}

export function pageRoutes(ctx: AppContext, assets: Assets) {
  return new Hono<PageEnv>().get("/", async (c) => {
    const health = await healthBody(ctx);
    return html(
      c,
      <Layout
        title="Sync"
        path="/"
        islands
        assets={pageAssets(assets, c.get("secureHeadersNonce"))}
      >
        <h1>Zoho purchase orders → Xero bills</h1>
        <Island name="ConnectionStatus" props={{ initial: health }} />
      </Layout>,
    );
  });
}
