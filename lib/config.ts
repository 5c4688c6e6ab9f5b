/**
 * The environment contract (DESIGN §4) as one zod schema. A bad start names every bad variable and
 * what it should be, and never echoes a value (most of these are secrets).
 *
 * Written with zod's v3 API (`zod/v3`, part of the same zod package and kept there for good):
 * main.ts validates the environment before its first answer, and zod 4's own entry is 95 modules
 * (64 of them locales), about as long to load as a whole bare Deno.serve start; zod/v3 is 10.
 * Everything loaded after the first answer uses zod 4.
 */
import { z } from "zod/v3";

const URL_MESSAGE = "must be an http(s) URL";
/** zod 4's words for these, kept so a bad start reads as it did. */
const TOO_SHORT = "Too small: expected string to have >=1 characters";

/**
 * An http(s) URL as zod 4's `z.url({ protocol: /^https?$/ })` takes one: trimmed, `http(s)://`
 * written out, parseable; tabs and line breaks dropped, as the URL parser does.
 */
const httpUrl = () =>
  z.string().transform((raw, ctx) => {
    const value = raw.trim();
    if (!/^https?:\/\//i.test(value) || !URL.canParse(value)) {
      ctx.addIssue({ code: "custom", message: URL_MESSAGE });
      return z.NEVER;
    }
    return value.replace(/[\t\n\r]/g, "");
  });

/** A whole number from the environment; Infinity is no number, as in zod 4. */
const wholeNumber = (message: string, min: number, max: number, range = message) =>
  z.preprocess(
    (v) => Number.isFinite(Number(v)) ? Number(v) : NaN,
    z.number({ invalid_type_error: message }).int(message).min(min, range).max(max, range),
  );

const url = (fallback: string) =>
  httpUrl().default(fallback).transform((u) => u.replace(/\/+$/, ""));

const optionalText = z.string().trim().min(1, TOO_SHORT).optional();

const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;

const schema = z.object({
  PORT: wholeNumber("must be a port number", 1, 65535, "must be 1-65535").default(8000),
  HOST: z.string().trim().min(1, TOO_SHORT).default("0.0.0.0"),
  APP_BASE_URL: httpUrl().optional(),
  DENO_KV_PATH: optionalText,
  ADMIN_PASSWORD: z.string().min(8, "must be at least 8 characters"),
  SYNC_API_TOKEN: z.string().min(16, "must be at least 16 characters"),
  ENCRYPTION_KEY: z.string().min(32, "must be at least 32 characters"),
  ZOHO_ACCOUNTS_URL: url("https://accounts.zoho.com"),
  ZOHO_CLIENT_ID: optionalText,
  ZOHO_CLIENT_SECRET: optionalText,
  ZOHO_REFRESH_TOKEN: optionalText,
  // Zoho's concurrency limit per org and app: 5 (Free) to 25 (Ultimate); COQL is held to 10.
  ZOHO_MAX_CONCURRENCY: wholeNumber("must be a whole number 1-25", 1, 25).default(10),
  XERO_LOGIN_URL: url("https://login.xero.com"),
  XERO_IDENTITY_URL: url("https://identity.xero.com"),
  XERO_API_URL: url("https://api.xero.com"),
  XERO_CLIENT_ID: optionalText,
  XERO_CLIENT_SECRET: optionalText,
  XERO_REFRESH_TOKEN: optionalText,
  XERO_TENANT_ID: optionalText,
  /** Xero webhook signing key; without it POST /api/xero/webhook answers 404. */
  XERO_WEBHOOK_KEY: optionalText,
  AUTO_SYNC_CRON: z.string().trim().default("0 */4 * * *").refine(
    (v) =>
      v === "off" ||
      (v.split(/\s+/).length === 5 && v.split(/\s+/).every((f) => CRON_FIELD.test(f))),
    "must be a 5-field cron expression or 'off'",
  ),
  // Off by default: a client-sent header is forgeable unless a proxy we trust overwrites it.
  TRUSTED_PROXY_HEADER: z.string().trim().toLowerCase().regex(
    /^[a-z0-9][a-z0-9-]*$/,
    "must be a header name, e.g. x-forwarded-for",
  ).optional(),
  TRUSTED_PROXY_HOPS: wholeNumber("must be a whole number 1-10", 1, 10).optional(),
});

/** Hosts where plain http is acceptable: the traffic never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" ||
    /^127(\.\d{1,3}){3}$/.test(h);
}

export type Config = Omit<z.output<typeof schema>, "APP_BASE_URL" | "TRUSTED_PROXY_HOPS"> & {
  APP_BASE_URL: string;
  TRUSTED_PROXY_HOPS: number;
  demo: boolean;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Values the demo fills in so a new user needs no accounts; never used outside demo mode. */
export const DEMO_DEFAULTS = {
  ADMIN_PASSWORD: "demo-password",
  SYNC_API_TOKEN: "demo-sync-token-0123456789",
  ENCRYPTION_KEY: "demo-encryption-key-not-for-production-use",
} as const;

export function loadConfig(
  env: Record<string, string | undefined>,
  options: { demo?: boolean } = {},
): Config {
  // Empty strings count as unset, as a shell `FOO=` usually means.
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== "") input[key] = value;
  }
  if (options.demo) {
    for (const [k, v] of Object.entries(DEMO_DEFAULTS)) input[k] ??= v;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? "environment");
      const missing = input[name] === undefined;
      return `${name}: ${missing ? "is required" : issue.message}`;
    });
    throw new ConfigError([...new Set(problems)]);
  }
  const data = parsed.data;
  const problems: string[] = [];
  const base = (data.APP_BASE_URL ?? `http://localhost:${data.PORT}`).replace(/\/+$/, "");
  const baseUrl = new URL(base);
  // Over plain http the session cookie cannot be Secure nor HSTS be sent: only on loopback.
  if (baseUrl.protocol !== "https:" && !isLoopbackHost(baseUrl.hostname)) {
    problems.push("APP_BASE_URL: must be https unless the host is loopback (localhost, 127.0.0.1)");
  }
  if (data.TRUSTED_PROXY_HOPS !== undefined && !data.TRUSTED_PROXY_HEADER) {
    problems.push("TRUSTED_PROXY_HOPS: needs TRUSTED_PROXY_HEADER (which header the proxy sets)");
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    ...data,
    APP_BASE_URL: base,
    TRUSTED_PROXY_HOPS: data.TRUSTED_PROXY_HOPS ?? 1,
    demo: options.demo ?? false,
  };
}

/** Reads the process environment (all names of the contract) for loadConfig. */
export function processEnv(): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) out[key] = Deno.env.get(key);
  return out;
}
