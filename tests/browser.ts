/**
 * Headless Chromium for browser tests (Debian's /usr/bin/chromium via playwright-core). Without
 * Chromium the tests are skipped and say why; under CI=true a missing Chromium is a failure.
 */
import type { Browser } from "playwright-core";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

function chromiumMissing(): string | null {
  try {
    Deno.statSync(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} not found (install Debian's chromium: apt-get install -y chromium)`;
  }
}

export const browserSkipReason = chromiumMissing();
if (browserSkipReason) {
  if (Deno.env.get("CI") === "true") {
    throw new Error(`CI=true but browser tests cannot run: ${browserSkipReason}`);
  }
  console.warn(`SKIPPED browser tests: ${browserSkipReason}`);
}

export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}

/** Where screenshots go, kept as CI artifacts. */
export async function artifactPath(name: string): Promise<string> {
  const dir = new URL("../test-artifacts/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  return new URL(name, dir).pathname;
}
