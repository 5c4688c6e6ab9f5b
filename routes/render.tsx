/** Server rendering of a Preact page into a Hono response. */
import type { Context } from "hono";
import type { VNode } from "preact";
import { renderToString } from "preact-render-to-string";

export function html(
  c: Context,
  page: VNode,
  status: 200 | 400 | 403 | 404 | 409 | 422 | 429 | 500 = 200,
) {
  c.header("cache-control", "no-store");
  return c.html(`<!doctype html>${renderToString(page)}`, status);
}
