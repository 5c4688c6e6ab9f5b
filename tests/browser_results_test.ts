/**
 * The sync page in real Chromium (issue 17): auto sync switched and timed from the page, a
 * 50-record run's results at the page's full width (not in the form's column), the run page's
 * search and CSV download, and the run history's chart. Screenshots go to test-artifacts/.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { getAutoSync } from "../lib/sync/auto.ts";
import { artifactPath, browserSkipReason, launchBrowser } from "./browser.ts";
import { makeOrders, startUiStack, TEST_ENV } from "./ui_helpers.ts";

async function box(page: Page, selector: string) {
  const b = await page.locator(selector).first().boundingBox();
  if (!b) throw new Error(`${selector} is not shown`);
  return b;
}

Deno.test({
  name: "browser: auto sync from the page, a 50-record run at full width, search, CSV, chart",
  ignore: browserSkipReason !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const orders = makeOrders(50);
    orders[4] = { ...orders[4], Add_to_Xero: false };
    orders[9] = { ...orders[9], Currency: "JPY" };
    const stack = await startUiStack({
      records: orders,
      env: { AUTO_SYNC_CRON: "0 */4 * * *" },
    });
    const browser = await launchBrowser();
    try {
      const context = await browser.newContext({
        viewport: { width: 1280, height: 900 },
        acceptDownloads: true,
      });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      const step = async (name: string, fn: () => Promise<void>) => {
        const ok = await t.step(name, async () => {
          try {
            await fn();
          } catch (err) {
            await page.screenshot({ path: await artifactPath("results-failed-step.png") })
              .catch(() => {});
            throw err;
          }
        });
        if (!ok) throw new Error(`step failed: ${name}`);
      };

      await step("log in; auto sync is on, every 4 hours, with its next run", async () => {
        await page.goto(stack.url + "/login");
        await page.fill("#password", TEST_ENV.ADMIN_PASSWORD);
        await page.press("#password", "Enter");
        await page.waitForURL(stack.url + "/");
        await page.waitForSelector('[data-island="AutoSyncSwitch"][data-hydrated="true"]');
        assert.match(
          await page.textContent("[data-testid=auto-line]") ?? "",
          /^Auto sync: on, every 4 hours, next around (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC, no auto run yet$/,
        );
        assert.ok(await page.isChecked("#auto-enabled"));
        assert.equal(await page.locator("button:has-text('Save auto sync')").count(), 0);
      });

      await step(
        "one click turns auto sync off; the keyboard turns it on every 8 hours",
        async () => {
          await page.click("#auto-enabled");
          await page.waitForSelector("[data-testid=auto-line]:has-text('Auto sync: off')");
          assert.equal((await getAutoSync(stack.ctx.kv)).enabled, false);
          await page.reload();
          await page.waitForSelector('[data-island="AutoSyncSwitch"][data-hydrated="true"]');
          assert.equal(await page.isChecked("#auto-enabled"), false, "saved, not only shown");
          await page.focus("#auto-enabled");
          await page.keyboard.press("Space");
          await page.waitForSelector("[data-testid=auto-line]:has-text('Auto sync: on')");
          await page.selectOption("#auto-every", "8");
          await page.waitForSelector("[data-testid=auto-line]:has-text('every 8 hours')");
          assert.match(
            await page.textContent("[data-testid=auto-line]") ?? "",
            /next around (\d{4}-\d\d-\d\d )?(00|08|16):00 UTC/,
          );
          assert.deepEqual(
            { ...(await getAutoSync(stack.ctx.kv)), changedAt: undefined },
            { enabled: true, everyHours: 8, changedAt: undefined },
          );
        },
      );

      await step("a 50-record run: results below the form at the page's full width", async () => {
        await page.check("#w-all");
        await page.click('button:has-text("Sync Now")');
        await page.waitForSelector('[role="progressbar"][aria-valuenow="100"]', {
          timeout: 30_000,
        });
        await page.waitForSelector("section.run-panel table.results");
        assert.equal(await page.locator("section.run-panel table.results tbody tr").count(), 50);
        const main = await box(page, "main");
        const form = await box(page, "form.sync-form");
        const panel = await box(page, "section.run-panel");
        const table = await box(page, "section.run-panel table.results");
        assert.ok(panel.y >= form.y + form.height, "the results come after the form");
        // main has 1rem padding each side; the panel spans the content box.
        assert.ok(panel.width >= main.width - 40, `panel ${panel.width}px of main ${main.width}px`);
        assert.ok(table.width > form.width * 1.3, "wider than the form's column");
        // Problems first: the failed and skipped ones head the table.
        const firstTwo = await page.locator("section.run-panel table.results tbody tr")
          .evaluateAll((rows) => rows.slice(0, 2).map((r) => r.getAttribute("data-outcome")));
        assert.deepEqual(firstTwo, ["failed", "skipped"]);
        await page.evaluate(() => scrollTo(0, 0));
        // The top of the page with the first results (README's docs/sync-page.png comes from it).
        await page.screenshot({
          path: await artifactPath("sync-page.png"),
          fullPage: true,
          clip: { x: 0, y: 0, width: 1280, height: 1250 },
        });
      });

      await step("the run page: search by PO number and download the records as CSV", async () => {
        await page.click("a.open-run");
        await page.waitForURL(/\/runs\/r[0-9a-z]+$/);
        await page.fill("#records-q", "PO-1010");
        await page.press("#records-q", "Enter");
        await page.waitForURL(/q=PO-1010/);
        assert.equal(await page.locator("table.results tbody tr").count(), 1);
        assert.equal(
          await page.getAttribute("table.results tbody tr", "data-po"),
          String(orders[9].id),
        );
        await page.click("a:has-text('Clear search')");
        assert.equal(await page.locator("table.results tbody tr").count(), 50);
        await page.screenshot({ path: await artifactPath("run-records.png") });
        const [download] = await Promise.all([
          page.waitForEvent("download"),
          page.click("[data-testid=csv]"),
        ]);
        assert.match(download.suggestedFilename(), /^run-r[0-9a-z]+-records\.csv$/);
        const file = await artifactPath("records.csv");
        await download.saveAs(file);
        const lines = (await Deno.readTextFile(file)).trimEnd().split("\r\n");
        assert.equal(lines.length, 51, "a header and 50 records");
        assert.ok(lines.some((l) => l.includes(",failed,")));
      });

      await step("the run history's chart shows the run", async () => {
        await page.goto(stack.url + "/runs");
        const bars = page.locator("[data-testid=run-chart] g[data-run]");
        assert.equal(await bars.count(), 1);
        assert.equal(await bars.first().getAttribute("data-failed"), "1");
        await page.screenshot({ path: await artifactPath("runs-chart.png") });
      });

      assert.deepEqual(errors, [], "no console errors (CSP violations show here)");
    } finally {
      await browser.close();
      await stack.close();
    }
  },
});
