/**
 * Serves the fingerprinted files of `deno task build` with a one-year immutable cache. Files are
 * read once at start: they are small, and an edge instance should not touch the disk per request.
 */
import { Hono } from "hono";

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

export interface Assets {
  css: string;
  js: string;
  files: Map<string, Uint8Array>;
}

export async function loadAssets(): Promise<Assets> {
  const dir = new URL("../static/build/", import.meta.url);
  let manifest: Record<string, string>;
  try {
    manifest = JSON.parse(await Deno.readTextFile(new URL("manifest.json", dir)));
  } catch {
    throw new Error("static/build/manifest.json is missing: run `deno task build` first");
  }
  const files = new Map<string, Uint8Array>();
  for (const path of Object.values(manifest)) {
    files.set(path, await Deno.readFile(new URL(path.replace("/static/", ""), dir)));
  }
  return { css: manifest["app.css"], js: manifest["client.js"], files };
}

export function assetRoutes(assets: Assets) {
  return new Hono().get("/static/:file", (c) => {
    const body = assets.files.get(c.req.path);
    if (!body) return c.text("Not found", 404);
    const ext = c.req.path.split(".").pop() ?? "";
    return c.body(body as Uint8Array<ArrayBuffer>, 200, {
      "content-type": TYPES[ext] ?? "application/octet-stream",
      "cache-control": "public, max-age=31536000, immutable",
    });
  });
}
