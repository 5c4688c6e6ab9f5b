/**
 * Accessibility, measured: axe-core on every page (login, sync idle / running / finished, runs,
 * run, settings, connections) with no serious or critical violation, and the sync form used from
 * the keyboard alone: tabbing past the days box changes no choice, arrows pick the mode, Enter
 * starts the run, the progress bar is a named progressbar with values, and "Recent runs" shows the
 * run once it is over. Also: a failed record shows its PO number, and a retried one says why.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { axeViolations, serious } from "./a11y.ts";
import { artifactPath, browserSkipReason, launchBrowser } from "./browser.ts";
import { makeOrders, startUiStack, TEST_ENV } from "./ui_helpers.ts";

async function shot(page: Page, name: string) {
  await page.screenshot({ path: await artifactPath(`${name}.png`), fullPage: true });
}

async function assertAxe(page: Page, name: string) {
  const bad = serious(await axeViolations(page, name));
  assert.deepEqual(bad, [], `axe on ${name}: see test-artifacts/axe-${name}.json`);
}

/** What has the keyboard focus: its id, else its tag and text. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el) return "";
    return el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}:${el.textContent?.trim() ?? ""}`;
  });
}

/** Presses Tab until `target` has the focus (at most 40 times). */
async function tabTo(page: Page, target: string, seen: string[]) {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    const now = await focused(page);
    seen.push(now);
    if (now === target) return;
  }
  throw new Error(`Tab never reached ${target}; focus went ${seen.join(" → ")}`);
}

Deno.test({
  name:
    "browser a11y: axe on every page, the sync form from the keyboard alone, PO numbers, retries",
  ignore: browserSkipReason !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const orders = makeOrders(6);
    // Xero refuses this one (the organisation does not use JPY), as in the demo.
    orders[5] = { ...orders[5], Currency: "JPY", PO_Number: "PO-JPY-1" };
    const stack = await startUiStack({
      records: orders,
      zoho: { latencyMs: 30 },
      overrides: { engine: { batchSize: 2 } },
    });
    const browser = await launchBrowser();
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      const step = async (name: string, fn: () => Promise<void>) => {
        const ok = await t.step(name, async () => {
          try {
            await fn();
          } catch (err) {
            await shot(page, "a11y-failed-step").catch(() => {});
            throw err;
          }
        });
        if (!ok) throw new Error(`step failed: ${name}`);
      };

      await step("login page: no serious axe violation; log in from the keyboard", async () => {
        await page.goto(stack.url + "/login");
        await assertAxe(page, "login");
        await page.fill("#password", TEST_ENV.ADMIN_PASSWORD);
        await page.press("#password", "Enter");
        await page.waitForURL(stack.url + "/");
      });

      await step("sync page, idle: no serious axe violation", async () => {
        await page.waitForSelector('[data-island="SyncPanel"][data-hydrated="true"]');
        await page.waitForSelector('[data-island="AutoSyncSwitch"][data-hydrated="true"]');
        assert.match(
          await page.textContent("section[aria-labelledby=recent-h]") ?? "",
          /No runs yet/,
        );
        await assertAxe(page, "sync-idle");
      });

      let runId = "";
      await step(
        "keyboard only: tab through the form, focus changes no choice, Enter starts the run",
        async () => {
          // The slow GETs keep the run going long enough to see it running.
          stack.zohoSim.fault({ endpoint: "get", kind: "delay", delayMs: 600, times: 4 });
          await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
          const seen: string[] = [];
          await tabTo(page, "#sync-module", seen);
          await tabTo(page, "#w-since", seen);
          await tabTo(page, "#sync-days", seen);
          assert.ok(
            await page.isChecked("#w-since"),
            "focusing the days box left the window as it was",
          );
          assert.ok(!await page.isChecked("#w-days"));
          await tabTo(page, "#m-create_and_update", seen);
          assert.ok(await page.isChecked("#w-since"), "tabbing on left the window as it was");
          // Arrow keys move the choice within the radio group, as in every browser.
          await page.keyboard.press("ArrowDown");
          await page.keyboard.press("ArrowDown");
          assert.equal(await focused(page), "#m-preview");
          assert.ok(await page.isChecked("#m-preview"));
          await tabTo(page, "button:Sync Now", seen);
          await page.keyboard.press("Enter");
          await page.waitForSelector("section.run-panel[data-run-id]");
          runId = (await page.getAttribute("section.run-panel", "data-run-id"))!;
          const run = await stack.engine.getRun(runId);
          assert.equal(
            run?.window,
            "since_last_sync",
            `the window chosen (focus went ${seen.join(" → ")})`,
          );
          assert.equal(run?.mode, "preview");
        },
      );

      await step(
        "sync page, running: a named progressbar with values; no serious axe violation",
        async () => {
          const bar = page.locator('[role="progressbar"]');
          await bar.waitFor();
          assert.equal(await bar.getAttribute("aria-label"), "Sync progress");
          assert.equal(await bar.getAttribute("aria-valuemin"), "0");
          assert.equal(await bar.getAttribute("aria-valuemax"), "100");
          assert.ok(await bar.getAttribute("aria-valuetext"));
          const status = await page.getAttribute("section.run-panel .run-progress", "data-status");
          assert.equal(status, "running", "axe looked at the page while the run was going");
          await assertAxe(page, "sync-running");
          await shot(page, "a11y-sync-running");
        },
      );

      await step(
        "sync page, finished: Recent runs shows the run without a reload; axe",
        async () => {
          await page.waitForSelector('[role="progressbar"][aria-valuenow="100"]', {
            timeout: 20_000,
          });
          await page.waitForSelector(`section[aria-labelledby=recent-h] tr[data-run="${runId}"]`, {
            timeout: 5_000,
          });
          assert.doesNotMatch(
            await page.textContent("section[aria-labelledby=recent-h]") ?? "",
            /No runs yet/,
          );
          assert.match(
            await page.textContent(".run-progress [role=status]") ?? "",
            /Sync finished/,
          );
          await assertAxe(page, "sync-finished");
          await shot(page, "a11y-sync-finished");
        },
      );

      let failedRun = "";
      await step(
        "a failed record shows its PO number; the next run says it was retried and why",
        async () => {
          const first = await stack.run({ window: "all", mode: "create_and_update" }, "page");
          const jpy = first.results.find((r) => r.purchaseOrderId === String(orders[5].id))!;
          assert.equal(jpy.outcome, "failed");
          await page.goto(`${stack.url}/runs/${first.id}?outcome=failed`);
          const row = page.locator(`tr[data-po="${orders[5].id}"]`);
          assert.match(await row.locator("td").first().textContent() ?? "", /PO-JPY-1/);
          const second = await stack.run({ window: "since_last_sync", mode: "create_and_update" });
          failedRun = second.id;
          await page.goto(`${stack.url}/runs/${second.id}`);
          const again = page.locator(`tr[data-po="${orders[5].id}"]`);
          const why = await again.locator("[data-testid=retried]").textContent() ?? "";
          assert.match(why, /^Retried: .*(JPY|currency).*owed since/i);
          assert.match(await page.textContent(".retried-summary") ?? "", /1 record was read again/);
          await page.click(".retried-summary a");
          assert.equal(await page.locator("table.results tbody tr").count(), 1);
        },
      );

      await step(
        "run, run history, settings and connections pages: no serious axe violation",
        async () => {
          await page.goto(`${stack.url}/runs/${failedRun}`);
          await assertAxe(page, "run");
          await page.goto(`${stack.url}/runs`);
          await page.waitForSelector("[data-testid=run-chart]");
          await assertAxe(page, "runs");
          await page.goto(`${stack.url}/settings`);
          await assertAxe(page, "settings");
          await page.goto(`${stack.url}/connections`);
          await assertAxe(page, "connections");
        },
      );

      assert.deepEqual(errors, [], "no console errors (CSP violations show here)");
    } finally {
      await browser.close();
      await stack.close();
    }
  },
});
