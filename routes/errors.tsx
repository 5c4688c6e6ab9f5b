/** Errors: JSON under /api (and webhooks), a friendly HTML page elsewhere. Never a stack trace. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { Layout } from "../components/Layout.tsx";
import type { Assets } from "./assets.ts";
import { html } from "./render.tsx";

export function wantsJson(c: Context): boolean {
  return c.req.path.startsWith("/api/") || c.req.path === "/api" ||
    (c.req.header("accept") ?? "").startsWith("application/json");
}

function errorPage(c: Context, assets: Assets, status: 404 | 500, title: string, text: string) {
  return html(
    c,
    <Layout title={title} path="" assets={{ css: assets.css, js: assets.js, nonce: "" }}>
      <h1>{title}</h1>
      <p>{text}</p>
      <p>
        <a href="/">Back to the sync page</a>
      </p>
    </Layout>,
    status,
  );
}

export function notFound(assets: Assets) {
  return (c: Context) =>
    wantsJson(c)
      ? c.json({ error: `No such route: ${c.req.method} ${c.req.path}` }, 404)
      : errorPage(c, assets, 404, "Page not found", "There is no page at this address.");
}

export function onError(assets: Assets) {
  return (err: Error, c: Context) => {
    if (err instanceof HTTPException) {
      const res = err.getResponse();
      if (wantsJson(c)) {
        return c.json(
          { error: err.message || res.statusText || "Request refused" },
          res.status as 400,
        );
      }
      return res;
    }
    // Log the kind only: messages of lower layers are already secret-free, stacks are noise.
    console.error(`unhandled error on ${c.req.method} ${c.req.path}: ${err.name}: ${err.message}`);
    return wantsJson(c)
      ? c.json({ error: "Internal error: the request could not be completed." }, 500)
      : errorPage(
        c,
        assets,
        500,
        "Something went wrong",
        "The request could not be completed. Try again.",
      );
  };
}
