import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../lib/config.ts";
import { TEST_ENV } from "./helpers.ts";

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail("expected the config to be rejected");
}

Deno.test("a valid environment loads with the documented defaults", () => {
  const c = loadConfig(TEST_ENV);
  assert.equal(c.PORT, 8000);
  assert.equal(c.APP_BASE_URL, "http://localhost:8000");
  assert.equal(c.ZOHO_ACCOUNTS_URL, "https://accounts.zoho.com");
  assert.equal(c.XERO_LOGIN_URL, "https://login.xero.com");
  assert.equal(c.XERO_IDENTITY_URL, "https://identity.xero.com");
  assert.equal(c.XERO_API_URL, "https://api.xero.com");
  assert.equal(c.AUTO_SYNC_CRON, "0 */4 * * *");
  assert.equal(c.demo, false);
});

Deno.test("URLs are read trimmed, as zod 4's z.url() reads them", () => {
  const c = loadConfig({ ...TEST_ENV, APP_BASE_URL: " https://sync.example.com/ " });
  assert.equal(c.APP_BASE_URL, "https://sync.example.com");
  assert.equal(
    loadConfig({ ...TEST_ENV, ZOHO_ACCOUNTS_URL: "\thttps://accounts.zoho.eu/\n" })
      .ZOHO_ACCOUNTS_URL,
    "https://accounts.zoho.eu",
  );
});

Deno.test("the app base URL follows PORT and loses a trailing slash", () => {
  assert.equal(loadConfig({ ...TEST_ENV, PORT: "9001" }).APP_BASE_URL, "http://localhost:9001");
  assert.equal(
    loadConfig({ ...TEST_ENV, APP_BASE_URL: "https://sync.example.com/" }).APP_BASE_URL,
    "https://sync.example.com",
  );
});

const BAD: [string, string | undefined, string][] = [
  ["PORT", "eighty", "PORT: must be a port number"],
  ["PORT", "70000", "PORT: must be 1-65535"],
  ["APP_BASE_URL", "not a url", "APP_BASE_URL: must be an http(s) URL"],
  ["ADMIN_PASSWORD", undefined, "ADMIN_PASSWORD: is required"],
  ["ADMIN_PASSWORD", "short", "ADMIN_PASSWORD: must be at least 8 characters"],
  ["SYNC_API_TOKEN", undefined, "SYNC_API_TOKEN: is required"],
  ["SYNC_API_TOKEN", "tooshort", "SYNC_API_TOKEN: must be at least 16 characters"],
  ["ENCRYPTION_KEY", undefined, "ENCRYPTION_KEY: is required"],
  ["ENCRYPTION_KEY", "x".repeat(31), "ENCRYPTION_KEY: must be at least 32 characters"],
  ["ZOHO_ACCOUNTS_URL", "accounts.zoho.eu", "ZOHO_ACCOUNTS_URL: must be an http(s) URL"],
  ["XERO_LOGIN_URL", "ftp://login.xero.com", "XERO_LOGIN_URL: must be an http(s) URL"],
  ["XERO_IDENTITY_URL", "nope", "XERO_IDENTITY_URL: must be an http(s) URL"],
  ["XERO_API_URL", "::", "XERO_API_URL: must be an http(s) URL"],
  // As zod 4's z.url() with an http(s) protocol, which config.ts's zod/v3 schema stands in for.
  ["XERO_API_URL", "https:api.xero.com", "XERO_API_URL: must be an http(s) URL"],
  ["APP_BASE_URL", "http:/sync.example.com", "APP_BASE_URL: must be an http(s) URL"],
  ["PORT", "Infinity", "PORT: must be a port number"],
  ["ZOHO_MAX_CONCURRENCY", "2.5", "ZOHO_MAX_CONCURRENCY: must be a whole number 1-25"],
  ["AUTO_SYNC_CRON", "every 4 hours", "AUTO_SYNC_CRON: must be a 5-field cron expression or 'off'"],
  [
    "APP_BASE_URL",
    "http://sync.example.com",
    "APP_BASE_URL: must be https unless the host is loopback (localhost, 127.0.0.1)",
  ],
  [
    "APP_BASE_URL",
    "http://10.0.0.5:8000",
    "APP_BASE_URL: must be https unless the host is loopback (localhost, 127.0.0.1)",
  ],
  [
    "TRUSTED_PROXY_HEADER",
    "x forwarded",
    "TRUSTED_PROXY_HEADER: must be a header name, e.g. x-forwarded-for",
  ],
  ["TRUSTED_PROXY_HOPS", "0", "TRUSTED_PROXY_HOPS: must be a whole number 1-10"],
];

for (const [name, value, expected] of BAD) {
  Deno.test(`config rejects ${name}=${value ?? "(unset)"} naming the variable`, () => {
    assert.deepEqual(problemsOf({ ...TEST_ENV, [name]: value }), [expected]);
  });
}

Deno.test("every bad variable is named in one message, and no value is echoed", () => {
  const secret = "sekret-value-that-must-not-leak-0123456789";
  let message = "";
  try {
    loadConfig({ ENCRYPTION_KEY: "short-" + "x", SYNC_API_TOKEN: "s", PORT: secret });
  } catch (err) {
    message = (err as Error).message;
  }
  for (const name of ["ADMIN_PASSWORD", "SYNC_API_TOKEN", "ENCRYPTION_KEY", "PORT"]) {
    assert.match(message, new RegExp(`${name}: `));
  }
  assert.ok(!message.includes(secret));
  assert.ok(!message.includes("short-x"));
});

Deno.test("demo mode fills the three secrets but keeps explicit values", () => {
  const c = loadConfig({ ADMIN_PASSWORD: "my-own-password" }, { demo: true });
  assert.equal(c.ADMIN_PASSWORD, "my-own-password");
  assert.ok(c.ENCRYPTION_KEY.length >= 32);
  assert.equal(c.demo, true);
});

Deno.test("AUTO_SYNC_CRON accepts off and real expressions", () => {
  assert.equal(loadConfig({ ...TEST_ENV, AUTO_SYNC_CRON: "off" }).AUTO_SYNC_CRON, "off");
  assert.equal(
    loadConfig({ ...TEST_ENV, AUTO_SYNC_CRON: "*/15 8-18 * * 1-5" }).AUTO_SYNC_CRON,
    "*/15 8-18 * * 1-5",
  );
});

Deno.test("plain http is accepted for APP_BASE_URL on loopback only", () => {
  for (const url of ["http://localhost:8000", "http://127.0.0.1:9000", "http://[::1]:8000"]) {
    assert.equal(loadConfig({ ...TEST_ENV, APP_BASE_URL: url }).APP_BASE_URL, url);
  }
  assert.equal(
    loadConfig({ ...TEST_ENV, APP_BASE_URL: "https://10.0.0.5" }).APP_BASE_URL,
    "https://10.0.0.5",
  );
});

Deno.test("the trusted proxy is off by default; hops default to 1 and need the header", () => {
  const off = loadConfig(TEST_ENV);
  assert.equal(off.TRUSTED_PROXY_HEADER, undefined);
  const on = loadConfig({ ...TEST_ENV, TRUSTED_PROXY_HEADER: "X-Forwarded-For" });
  assert.equal(on.TRUSTED_PROXY_HEADER, "x-forwarded-for");
  assert.equal(on.TRUSTED_PROXY_HOPS, 1);
  assert.equal(
    loadConfig({ ...TEST_ENV, TRUSTED_PROXY_HEADER: "x-real-ip", TRUSTED_PROXY_HOPS: "2" })
      .TRUSTED_PROXY_HOPS,
    2,
  );
  assert.deepEqual(problemsOf({ ...TEST_ENV, TRUSTED_PROXY_HOPS: "2" }), [
    "TRUSTED_PROXY_HOPS: needs TRUSTED_PROXY_HEADER (which header the proxy sets)",
  ]);
});
