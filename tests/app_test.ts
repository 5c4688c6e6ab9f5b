import assert from "node:assert/strict";
import { escapeJson } from "../components/Island.tsx";
import { boot } from "../boot.ts";
import { testConfig } from "./helpers.ts";
import { Agent, startUiStack } from "./ui_helpers.ts";

async function withApp(fn: (app: Awaited<ReturnType<typeof boot>>["app"]) => Promise<void>) {
  const booted = await boot(testConfig());
  try {
    await fn(booted.app);
  } finally {
    await booted.close();
  }
}

Deno.test("GET /health answers with connection states and no secrets", () =>
  withApp(async (app) => {
    const res = await app.request("/health");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.ok, true);
    assert.equal(body.kv, "ok");
    assert.equal(body.zoho.state, "not_connected");
    assert.equal(body.xero.state, "not_connected");
    assert.deepEqual(Object.keys(body).sort(), ["kv", "ok", "xero", "zoho"]);
    assert.equal(res.headers.get("cache-control"), "no-store");
  }));

Deno.test("an unknown /api route is a JSON 404", () =>
  withApp(async (app) => {
    const res = await app.request("/api/does-not-exist", { method: "POST" });
    assert.equal(res.status, 404);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    assert.deepEqual(await res.json(), { error: "No such route: POST /api/does-not-exist" });
  }));

Deno.test("an unknown page is an HTML 404", () =>
  withApp(async (app) => {
    const res = await app.request("/no-such-page");
    assert.equal(res.status, 404);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await res.text(), /Page not found/);
  }));

/** The home page as a logged-in admin sees it (pages need a session). */
async function withHome(
  fn: (home: { res: Response; html: string; agent: Agent; url: string }) => Promise<void>,
) {
  const stack = await startUiStack();
  try {
    const agent = new Agent(stack.url);
    await agent.login();
    const { res, text } = await agent.get("/");
    await fn({ res, html: text, agent, url: stack.url });
  } finally {
    await stack.close();
  }
}

Deno.test("pages carry a CSP that allows only our scripts, with a fresh nonce", () =>
  withHome(async ({ res, html, agent }) => {
    const again = await agent.get("/");
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self' 'nonce-[A-Za-z0-9+/=]+'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.ok(!csp.includes("unsafe-inline"));
    const nonce = csp.match(/'nonce-([^']+)'/)![1];
    const nonce2 = (again.res.headers.get("content-security-policy") ?? "").match(/'nonce-([^']+)'/)
      ?.[1];
    assert.notEqual(nonce, nonce2);
    assert.ok(html.includes(`nonce="${nonce}"`), "the island script carries the nonce");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  }));

Deno.test("the home page server-renders its islands with escaped props", () =>
  withHome(({ html }) => {
    assert.match(html, /<div data-island="ConnectionStatus">/);
    assert.match(html, /Zoho CRM<\/strong> <span class="conn-state">Connected/);
    assert.match(html, /<script type="application\/json" data-island-props="ConnectionStatus">/);
    return Promise.resolve();
  }));

Deno.test("island props cannot break out of their script element", () => {
  const json = escapeJson({ name: "</script><script>alert(1)</script>", amp: "a&b", ls: "\u2028" });
  assert.ok(!json.includes("<"));
  assert.ok(!json.includes(">"));
  assert.deepEqual(JSON.parse(json), {
    name: "</script><script>alert(1)</script>",
    amp: "a&b",
    ls: "\u2028",
  });
});

Deno.test("built static files are fingerprinted and cached for a year", () =>
  withHome(async ({ html, agent }) => {
    const js = html.match(/src="(\/static\/client\.[0-9a-f]{12}\.js)"/)?.[1];
    const css = html.match(/href="(\/static\/app\.[0-9a-f]{12}\.css)"/)?.[1];
    assert.ok(js && css, "page links hashed assets");
    for (const path of [js, css]) {
      const { res } = await agent.get(path);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
    }
    const { res: missing } = await agent.get("/static/client.000000000000.js");
    assert.equal(missing.status, 404);
  }));

Deno.test("cold start does not import xero-node", async () => {
  // xero-node costs ~0.4 s to import: it must be reached only through a dynamic import (on the
  // first Xero call), never through the static graph of the Xero client, which the app loads
  // right after the first response (main.ts's own graph is checked in cold_start_test.ts).
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "lib/xero/mod.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "null",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  type Dep = { code?: { specifier: string }; isDynamic?: boolean };
  const bySpecifier = new Map<string, { dependencies?: Dep[] }>(
    info.modules.map((m: { specifier: string }) => [m.specifier, m]),
  );
  const seen = new Set<string>();
  const queue: string[] = [...info.roots];
  while (queue.length) {
    const spec = queue.shift()!;
    if (seen.has(spec)) continue;
    seen.add(spec);
    for (const dep of bySpecifier.get(spec)?.dependencies ?? []) {
      if (dep.code && !dep.isDynamic) {
        queue.push(info.redirects?.[dep.code.specifier] ?? dep.code.specifier);
      }
    }
  }
  assert.ok([...seen].some((s) => s.includes("lib/xero/client.ts")), "the graph was walked");
  assert.ok([...seen].some((s) => s.includes("zod")), "npm packages show in the graph");
  assert.ok(![...seen].some((s) => s.includes("xero-node")), "xero-node is imported statically");
  // ...and it is there, behind a dynamic import.
  assert.ok(
    info.modules.some((m: { dependencies?: Dep[] }) =>
      m.dependencies?.some((d) => d.isDynamic && d.code?.specifier.includes("xero-node"))
    ),
  );
});
