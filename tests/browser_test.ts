import assert from "node:assert/strict";
import { artifactPath, browserSkipReason, launchBrowser } from "./browser.ts";
import { startUiStack, TEST_ENV } from "./ui_helpers.ts";

Deno.test({
  name: "browser: the connection island hydrates and refreshes itself from /health",
  ignore: browserSkipReason !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const stack = await startUiStack();
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      await page.goto(stack.url + "/");
      await page.fill("#password", TEST_ENV.ADMIN_PASSWORD);
      await page.click("button:has-text('Log in')");
      await page.waitForURL(stack.url + "/");
      await page.waitForSelector('[data-island="ConnectionStatus"][data-hydrated="true"]');
      assert.equal(await page.textContent(".conn-connected >> text=Zoho CRM"), "Zoho CRM");

      // Change the world behind the page; only a hydrated island can show it after a click.
      await stack.ctx.zoho.disconnect();
      await page.click("text=Check now");
      await page.waitForSelector("[data-testid=checked-at]");
      await page.waitForSelector(".conn-not_connected >> text=Zoho CRM");
      await page.screenshot({ path: await artifactPath("home.png"), fullPage: true });
      assert.deepEqual(errors, [], "no console errors (CSP violations show here)");
    } finally {
      await browser.close();
      await stack.close();
    }
  },
});
