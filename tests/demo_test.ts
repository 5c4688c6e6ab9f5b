/**
 * The demo a new user runs first, started the way the README says (`deno run -A demo.ts`, what
 * `deno task demo` runs) in a subprocess: sync from the page's API with the token it prints, then
 * find the bills in the Xero simulator's page.
 */
import assert from "node:assert/strict";
import { demoSeed } from "../sandbox/demo_seed.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Starts the demo and reads its banner until it says it is ready. */
async function startDemo(kvDir: string) {
  const ports = { app: freePort(), zoho: freePort(), xero: freePort() };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "demo.ts"],
    cwd: ROOT,
    env: {
      PORT: String(ports.app),
      ZOHO_SIM_PORT: String(ports.zoho),
      XERO_SIM_PORT: String(ports.xero),
      HOST: "127.0.0.1",
      DEMO_KV_PATH: `${kvDir}/demo.sqlite`,
      // Whatever the developer's shell holds, the demo's own values apply.
      ADMIN_PASSWORD: "",
      SYNC_API_TOKEN: "",
      ENCRYPTION_KEY: "",
      APP_BASE_URL: "",
      AUTO_SYNC_CRON: "",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let out = "";
  let err = "";
  const drainOut = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) out += chunk;
  })();
  const drainErr = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) err += chunk;
  })();
  const deadline = Date.now() + 25_000;
  while (!out.includes("Press Ctrl-C") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const field = (label: string) => new RegExp(`${label}:\\s+(\\S+)`).exec(out)?.[1];
  return {
    child,
    ports,
    output: () => out,
    errors: () => err,
    banner: {
      app: field("App"),
      password: field("Password"),
      token: field("Sync API token"),
      xero: field("Xero \\(sandbox\\)"),
    },
    /** SIGTERM, then wait for it to exit and for its output to end. */
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const status = await child.status;
      await Promise.all([drainOut, drainErr]);
      return status;
    },
  };
}

/** The rows of the Xero simulator's bills page: Reference, Contact, Date, Status, Total. */
function billRows(html: string): Map<string, { contact: string; status: string; total: string }> {
  const rows = new Map<string, { contact: string; status: string; total: string }>();
  for (
    const m of html.matchAll(
      /<tr><td>([^<]*)<\/td><td>([^<]*)<\/td><td>[^<]*<\/td><td[^>]*>([^<]*)<\/td><td[^>]*>([^<]*)<\/td>/g,
    )
  ) {
    rows.set(m[1], { contact: m[2], status: m[3], total: m[4] });
  }
  return rows;
}

Deno.test("the demo: sync from the API with the printed token, the bills show up in Xero", async () => {
  const kvDir = await Deno.makeTempDir({ prefix: "demo-test-" });
  const demo = await startDemo(kvDir);
  const { expected } = demoSeed();
  try {
    const { banner } = demo;
    assert.ok(demo.output().includes("Press Ctrl-C"), `demo did not start:\n${demo.errors()}`);
    assert.equal(banner.app, `http://127.0.0.1:${demo.ports.app}`);
    assert.equal(banner.xero, `http://127.0.0.1:${demo.ports.xero}/`);
    assert.ok(banner.password && banner.token, demo.output());
    assert.match(demo.output(), /curl -X POST .*\/api\/purchase-orders\/\d{19}\/sync/);

    // Connected before anything was synced, and Xero holds no bill yet.
    const health = await (await fetch(`${banner.app}/health`)).json();
    assert.equal(health.zoho.state, "connected");
    assert.equal(health.xero.state, "connected");
    assert.equal(billRows(await (await fetch(banner.xero!)).text()).size, 0);

    // The printed password opens the sync page.
    const login = await fetch(`${banner.app}/login`, {
      method: "POST",
      headers: { origin: banner.app! },
      body: new URLSearchParams({ password: banner.password!, next: "/" }),
      redirect: "manual",
    });
    await login.body?.cancel();
    assert.equal(login.status, 303);
    const cookie = login.headers.get("set-cookie")?.split(";")[0] ?? "";
    const page = await fetch(`${banner.app}/`, { headers: { cookie }, redirect: "manual" });
    await page.body?.cancel();
    assert.equal(page.status, 200);

    const auth = { authorization: `Bearer ${banner.token}` };
    const start = await fetch(`${banner.app}/api/sync-runs`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ window: "since_last_sync", mode: "create_and_update" }),
    });
    assert.equal(start.status, 202);
    const { runId } = await start.json();

    let run: Record<string, unknown> & {
      status: string;
      counts: Record<string, number>;
      results: Array<{ purchaseOrderId: string; outcome: string; message: string }>;
    };
    const deadline = Date.now() + 20_000;
    do {
      await new Promise((r) => setTimeout(r, 100));
      const res: Response = await fetch(`${banner.app}/api/sync-runs/${runId}`, { headers: auth });
      assert.equal(res.status, 200);
      run = await res.json();
    } while (run.status === "running" && Date.now() < deadline);

    assert.equal(run.status, "completed_with_errors");
    assert.deepEqual(run.counts, {
      total: 50,
      created: expected.eligible.length,
      updated: 0,
      unchanged: 0,
      skipped: expected.ineligible.length,
      failed: 1,
    });
    const byId = new Map(run.results.map((r) => [r.purchaseOrderId, r]));
    for (const e of expected.eligible) assert.equal(byId.get(e.id)?.outcome, "created", e.poNumber);
    for (const e of expected.ineligible) {
      assert.equal(byId.get(e.id)?.outcome, "skipped", e.poNumber);
      assert.match(byId.get(e.id)!.message, e.reason);
    }
    const rejected = byId.get(expected.rejected.id);
    assert.equal(rejected?.outcome, "failed");
    assert.ok(
      rejected.message.includes(expected.rejected.message),
      `Xero's message is shown: ${rejected.message}`,
    );

    // "Xero" has exactly the eligible orders as bills, none of the others.
    const rows = billRows(await (await fetch(banner.xero!)).text());
    assert.deepEqual(
      [...rows.keys()].sort(),
      expected.eligible.map((e) => e.poNumber).sort(),
    );
    for (const e of [...expected.ineligible, expected.rejected]) {
      assert.ok(!rows.has(e.poNumber), `${e.poNumber} has no bill`);
    }
    for (const row of rows.values()) assert.equal(row.status, "DRAFT");
    // The supplier that already existed in Xero is used as it is.
    assert.ok([...rows.values()].some((r) => r.contact === "Acme Industrial Supply"));

    // The Zoho button on the rejected order: a 502 that carries Xero's reason.
    const button = await fetch(
      `${banner.app}/api/purchase-orders/${expected.rejected.id}/sync`,
      { method: "POST", headers: auth },
    );
    assert.equal(button.status, 502);
    assert.match((await button.json()).message, /not subscribed to currency JPY/);
  } finally {
    const status = await demo.stop();
    await Deno.remove(kvDir, { recursive: true }).catch(() => {});
    assert.equal(status.code, 0, `demo exited with ${status.code}:\n${demo.errors()}`);
  }
});
