/**
 * Zoho OAuth tokens: the connection (refresh token, encrypted in KV) and the access token minted
 * from it, cached in KV until shortly before it expires and shared by every client on the same KV.
 * Zoho allows about 10 mints per refresh token per 10 minutes, so: one mint at a time in process
 * (single flight), a KV lease across processes that is renewed for as long as the mint (with its
 * retries) takes, no retries of a refused refresh token, and a refused mint remembered in KV until
 * Zoho's window has passed (asking again meanwhile only extends the block).
 */
import { keys } from "../store/keys.ts";
import { type Secrets, sha256Hex } from "../secrets.ts";
import { giveUp, RECONNECT_MESSAGE, Redactor, ZohoError } from "./errors.ts";
import { backoffMs, fetchOnce, type HttpAnswer, type RetryPolicy, sleep } from "./http.ts";
import { withSpan } from "../telemetry.ts";
import { TokenResponse } from "./schemas.ts";
import {
  accountsBase,
  type ConnectionStatus,
  refusedUntil,
  type StoredAccessToken,
  StoredAccessToken as StoredAccessTokenSchema,
  StoredConnection,
  zohoStatus,
} from "./connection.ts";

export type { ConnectionStatus } from "./connection.ts";

export interface TokenDeps {
  kv: Deno.Kv;
  secrets: Secrets;
  accountsUrl: string;
  clientId?: string;
  clientSecret?: string;
  refreshTokenSeed?: string;
  policy: RetryPolicy;
  timeoutMs: number;
  redactor: Redactor;
  /** How long a refused mint is remembered when Zoho gives no Retry-After (default 10 minutes). */
  mintRefusalMs?: number;
  /** Counts one HTTP call to the accounts server. */
  count: (endpoint: "token" | "revoke") => void;
}

export interface AccessToken {
  token: string;
  apiDomain: string;
  expiresAt: number;
  versionstamp: string;
}

/** Mints in flight, per KV handle: every client instance on one KV shares one mint. */
const inflight = new WeakMap<Deno.Kv, Promise<AccessToken>>();

const EARLY_REFRESH_MS = 5 * 60_000;
/** The mint lease lasts this long unless renewed; its holder renews it every LEASE_RENEW_MS. */
const LEASE_MS = 15_000;
const LEASE_RENEW_MS = 5_000;
/** Zoho counts mints per refresh token over 10 minutes: a refusal holds at most that long. */
const MINT_WINDOW_MS = 10 * 60_000;
const ZOHO_ACCOUNTS =
  /^https:\/\/accounts\.(zoho\.(com|eu|in|com\.au|jp|uk|sa|com\.cn)|zohocloud\.ca)$/;

interface Connection {
  refreshToken: string;
  accountsUrl: string;
  apiDomain?: string;
  /** The KV entry it came from, so failures are recorded only against this very connection. */
  versionstamp: string | null;
  value: StoredConnection;
}

export class ZohoTokens {
  readonly #d: TokenDeps;
  readonly #accountsUrl: string;

  constructor(deps: TokenDeps) {
    this.#d = deps;
    this.#accountsUrl = accountsBase(deps.accountsUrl);
    deps.redactor.add(deps.clientSecret);
    deps.redactor.add(deps.refreshTokenSeed);
  }

  get accountsUrl(): string {
    return this.#accountsUrl;
  }

  /** A usable access token: from KV when fresh, else minted once for everyone waiting. */
  async accessToken(): Promise<AccessToken> {
    const cached = await this.#cached();
    if (cached) return cached;
    const kv = this.#d.kv;
    let flight = inflight.get(kv);
    if (!flight) {
      flight = this.#mintShared().finally(() => inflight.delete(kv));
      inflight.set(kv, flight);
    }
    return await flight;
  }

  /** Drops the cached access token after Zoho refused it, unless someone already replaced it. */
  async invalidate(used: AccessToken): Promise<void> {
    const key = keys.zohoAccessToken();
    const entry = await this.#d.kv.get(key);
    if (entry.versionstamp === used.versionstamp) {
      await this.#d.kv.atomic().check(entry).delete(key).commit();
    }
  }

  async #cached(): Promise<AccessToken | null> {
    const entry = await this.#d.kv.get(keys.zohoAccessToken());
    const parsed = StoredAccessTokenSchema.safeParse(entry.value);
    if (!parsed.success || !entry.versionstamp) return null;
    const expiresAt = Date.parse(parsed.data.expiresAt);
    const minted = parsed.data.mintedAt ? Date.parse(parsed.data.mintedAt) : expiresAt - 3600_000;
    // Refresh 5 minutes early (or halfway through a short-lived token).
    const margin = Math.min(EARLY_REFRESH_MS, (expiresAt - minted) / 2);
    if (!(expiresAt - Date.now() > margin)) return null;
    try {
      const token = await this.#d.secrets.decrypt(parsed.data.accessToken, keys.zohoAccessToken());
      this.#d.redactor.add(token);
      return {
        token,
        apiDomain: parsed.data.apiDomain,
        expiresAt,
        versionstamp: entry.versionstamp,
      };
    } catch {
      return null; // ENCRYPTION_KEY changed: mint a new one
    }
  }

  /**
   * One mint across processes: a KV lease, renewed while the mint and its retries run, so nobody
   * else mints meanwhile; the others wait for its token (or its refusal), never take the lease
   * from a live holder. A holder that died frees the lease within LEASE_MS.
   */
  async #mintShared(): Promise<AccessToken> {
    const kv = this.#d.kv;
    const leaseKey = keys.zohoMintLease();
    const { attempts, maxDelayMs } = this.#d.policy;
    const giveUpWaiting = Date.now() + attempts * (this.#d.timeoutMs + maxDelayMs) + LEASE_MS;
    while (Date.now() < giveUpWaiting) {
      await this.#throwIfRefused();
      const fresh = await this.#cached();
      if (fresh) return fresh;
      const lease = await kv.get<{ until: number }>(leaseKey);
      const held = typeof lease.value?.until === "number" && lease.value.until > Date.now();
      if (held) {
        await sleep(100);
        continue;
      }
      const taken = await kv.atomic().check(lease)
        .set(leaseKey, { until: Date.now() + LEASE_MS }, { expireIn: LEASE_MS }).commit()
        .catch(() => ({ ok: false as const })); // a busy local SQLite file: try again shortly
      if (!taken.ok) {
        await sleep(20 + Math.random() * 30);
        continue;
      }
      let versionstamp = taken.versionstamp;
      let renewing = Promise.resolve();
      const renew = setInterval(() => {
        renewing = renewing.then(async () => {
          const res = await kv.atomic().check({ key: leaseKey, versionstamp })
            .set(leaseKey, { until: Date.now() + LEASE_MS }, { expireIn: LEASE_MS }).commit()
            .catch(() => ({ ok: false as const }));
          if (res.ok) versionstamp = res.versionstamp;
        });
      }, LEASE_RENEW_MS);
      try {
        // Another process may have minted and released the lease between our look at the cache
        // and taking the lease: use its token (two mints per expiry, found by tests/reliability).
        return await this.#cached() ?? await withSpan("zoho.token.refresh", {}, () => this.#mint());
      } finally {
        clearInterval(renew);
        await renewing;
        // Best effort: an unreleased lease simply expires.
        await kv.atomic().check({ key: leaseKey, versionstamp })
          .delete(leaseKey).commit().catch(() => {});
      }
    }
    throw new ZohoError({
      code: "TOKEN_BUSY",
      message: "Zoho access token: another process kept the mint lease; try again shortly",
      retryable: true,
    });
  }

  /** Fails fast while Zoho's refusal to mint is remembered, so nobody extends its block. */
  async #throwIfRefused(): Promise<void> {
    const entry = await this.#d.kv.get(keys.zohoToken());
    const value = StoredConnection.safeParse(entry.value ?? {}).data;
    const refused = refusedUntil(value);
    if (refused !== undefined) {
      throw new ZohoError({
        code: "TOKEN_RATE_LIMITED",
        message: value?.lastError ?? rateLimitedMessage("Access Denied", refused),
        retryable: true,
      });
    }
  }

  async #mint(): Promise<AccessToken> {
    const conn = await this.#connection();
    const { clientId, clientSecret } = this.#requireClient();
    const body = new URLSearchParams({
      grant_type: "refresh_token",
      client_id: clientId,
      client_secret: clientSecret,
      refresh_token: conn.refreshToken,
    });
    const answer = await this.#postToken(conn.accountsUrl, body, true);
    const parsed = TokenResponse.safeParse(answer.json);
    if (!parsed.success) throw this.#unexpected(answer);
    const data = parsed.data;
    if ("error" in data) {
      const err = this.#tokenError(data.error, data.error_description, answer.status);
      if (err.code === "RECONNECT_REQUIRED" || err.code === "INVALID_CLIENT") {
        await this.#recordFailure(conn, err);
      }
      if (err.code === "TOKEN_RATE_LIMITED") {
        // Remembered before the lease is released, so the processes waiting on it do not ask.
        const until = Date.now() +
          (answer.retryAfterMs ?? this.#d.mintRefusalMs ?? MINT_WINDOW_MS);
        const refused = new ZohoError({
          code: err.code,
          message: rateLimitedMessage(data.error, until),
          status: err.status,
          retryable: true,
        });
        await this.#recordFailure(conn, refused, until);
        throw refused;
      }
      throw err;
    }
    const apiDomain = (data.api_domain ?? conn.apiDomain ?? apiDomainFor(conn.accountsUrl))
      .replace(/\/+$/, "");
    const stored = await this.#storeAccess(data.access_token, apiDomain, data.expires_in ?? 3600);
    if (conn.value.lastError || conn.value.apiDomain !== apiDomain) {
      const {
        lastError: _e,
        lastErrorCode: _c,
        lastErrorAt: _a,
        failedClientHash: _f,
        retryAfter: _r,
        ...rest
      } = conn.value;
      await this.#d.kv.atomic()
        .check({ key: keys.zohoToken(), versionstamp: conn.versionstamp })
        .set(keys.zohoToken(), { ...rest, apiDomain }).commit();
    }
    return stored;
  }

  /** POSTs to the token endpoint; retries outages (5xx, network, broken bodies) when allowed. */
  async #postToken(
    accountsUrl: string,
    body: URLSearchParams,
    retry: boolean,
  ): Promise<HttpAnswer> {
    const { policy, timeoutMs, redactor } = this.#d;
    const attempts = retry ? policy.attempts : 1;
    for (let attempt = 1;; attempt++) {
      this.#d.count("token");
      let failure: ZohoError;
      try {
        const answer = await fetchOnce(
          "token endpoint",
          `${accountsUrl}/oauth/v2/token`,
          {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body,
          },
          timeoutMs,
          redactor,
        );
        if (answer.status < 500 && !answer.malformed) return answer;
        failure = new ZohoError({
          code: answer.malformed ? "MALFORMED_RESPONSE" : "TOKEN_ENDPOINT_UNAVAILABLE",
          message: `Zoho token endpoint answered ${
            answer.malformed ? "a body that is not JSON" : `HTTP ${answer.status}`
          }`,
          status: answer.status,
          retryable: true,
        });
      } catch (err) {
        if (!(err instanceof ZohoError) || !err.retryable) throw err;
        failure = err;
      }
      if (attempt >= attempts) throw giveUp(failure, attempt);
      await sleep(backoffMs(policy, attempt));
    }
  }

  #tokenError(error: string, description: string | undefined, status: number): ZohoError {
    const safe = this.#d.redactor.redact(description ? `${error}: ${description}` : error);
    switch (error) {
      case "invalid_code":
        return new ZohoError({ code: "RECONNECT_REQUIRED", message: RECONNECT_MESSAGE, status });
      case "invalid_client":
      case "invalid_client_secret":
        return new ZohoError({
          code: "INVALID_CLIENT",
          message:
            `Zoho rejected the OAuth client (${error}): check ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and ZOHO_ACCOUNTS_URL (data centre).`,
          status,
        });
      case "Access Denied":
        // Too many mints: Zoho blocks for minutes, so retrying now only extends the block.
        return new ZohoError({
          code: "TOKEN_RATE_LIMITED",
          message: `Zoho refused to mint an access token (${safe}); try again in a few minutes.`,
          status,
          retryable: true,
        });
      default:
        return new ZohoError({
          code: "TOKEN_ERROR",
          message: `Zoho token endpoint refused the request (${safe}).`,
          status,
        });
    }
  }

  #unexpected(answer: HttpAnswer): ZohoError {
    return new ZohoError({
      code: "UNEXPECTED_RESPONSE",
      message: `Zoho token endpoint answered HTTP ${answer.status} with an unexpected body`,
      status: answer.status,
      retryable: answer.status === 429,
    });
  }

  async #storeAccess(token: string, apiDomain: string, expiresIn: number): Promise<AccessToken> {
    this.#d.redactor.add(token);
    const now = Date.now();
    const expiresAt = now + expiresIn * 1000;
    const value: StoredAccessToken = {
      accessToken: await this.#d.secrets.encrypt(token, keys.zohoAccessToken()),
      apiDomain,
      expiresAt: new Date(expiresAt).toISOString(),
      mintedAt: new Date(now).toISOString(),
    };
    const res = await this.#d.kv.set(keys.zohoAccessToken(), value);
    return { token, apiDomain, expiresAt, versionstamp: res.versionstamp };
  }

  #requireClient(): { clientId: string; clientSecret: string } {
    const { clientId, clientSecret } = this.#d;
    if (!clientId || !clientSecret) {
      throw new ZohoError({
        code: "NOT_CONFIGURED",
        message: "Zoho is not configured: set ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET.",
      });
    }
    return { clientId, clientSecret };
  }

  async #clientHash(): Promise<string> {
    return (await sha256Hex(`${this.#d.clientId}:${this.#d.clientSecret}`)).slice(0, 32);
  }

  /**
   * The refresh token to mint with: KV's, or the ZOHO_REFRESH_TOKEN seed while KV holds none
   * (adopted into KV so status and later runs see it). A token Zoho refused fails fast here, so a
   * busy run cannot hammer the token endpoint.
   */
  async #connection(): Promise<Connection> {
    const entry = await this.#d.kv.get(keys.zohoToken());
    const value = StoredConnection.safeParse(entry.value ?? {}).data ?? {};
    const seed = this.#d.refreshTokenSeed;
    const seedHash = seed ? await sha256Hex(seed) : undefined;
    if (value.refreshToken) {
      if (value.lastErrorCode === "RECONNECT_REQUIRED") {
        if (seed && value.source === "env" && seedHash !== value.seedHash) {
          return await this.#adoptSeed(entry.versionstamp, seed);
        }
        throw new ZohoError({ code: "RECONNECT_REQUIRED", message: RECONNECT_MESSAGE });
      }
      if (
        value.lastErrorCode === "INVALID_CLIENT" &&
        value.failedClientHash === await this.#clientHash()
      ) {
        throw new ZohoError({ code: "INVALID_CLIENT", message: value.lastError ?? "" });
      }
      let refreshToken: string;
      try {
        refreshToken = await this.#d.secrets.decrypt(value.refreshToken, keys.zohoToken());
      } catch {
        throw new ZohoError({
          code: "RECONNECT_REQUIRED",
          message:
            "The stored Zoho token cannot be decrypted (ENCRYPTION_KEY changed?): reconnect Zoho on the Connections page.",
        });
      }
      this.#d.redactor.add(refreshToken);
      return {
        refreshToken,
        accountsUrl: value.source === "env"
          ? this.#accountsUrl
          : value.accountsUrl ?? this.#accountsUrl,
        apiDomain: value.apiDomain,
        versionstamp: entry.versionstamp,
        value,
      };
    }
    if (seed && value.disconnectedSeedHash !== seedHash) {
      return await this.#adoptSeed(entry.versionstamp, seed);
    }
    throw new ZohoError({
      code: "NOT_CONNECTED",
      message:
        "Zoho is not connected: connect it on the Connections page or set ZOHO_REFRESH_TOKEN.",
    });
  }

  async #adoptSeed(versionstamp: string | null, seed: string): Promise<Connection> {
    const value: StoredConnection = {
      refreshToken: await this.#d.secrets.encrypt(seed, keys.zohoToken()),
      accountsUrl: this.#accountsUrl,
      connectedAt: new Date().toISOString(),
      source: "env",
      seedHash: await sha256Hex(seed),
    };
    const key = keys.zohoToken();
    const res = await this.#d.kv.atomic().check({ key, versionstamp }).set(key, value).commit();
    if (!res.ok) return await this.#connection(); // someone connected meanwhile: theirs wins
    return {
      refreshToken: seed,
      accountsUrl: this.#accountsUrl,
      versionstamp: res.versionstamp,
      value,
    };
  }

  /**
   * Marks this connection failed (for status and fail-fast), unless it was replaced meanwhile. A
   * refused mint (`retryAfter`) keeps the access token: it may still serve until it expires.
   */
  async #recordFailure(conn: Connection, err: ZohoError, retryAfter?: number): Promise<void> {
    const value: StoredConnection = {
      ...conn.value,
      lastError: err.message,
      lastErrorCode: err.code,
      lastErrorAt: new Date().toISOString(),
      failedClientHash: err.code === "INVALID_CLIENT" ? await this.#clientHash() : undefined,
      retryAfter: retryAfter === undefined ? undefined : new Date(retryAfter).toISOString(),
    };
    const key = keys.zohoToken();
    let op = this.#d.kv.atomic().check({ key, versionstamp: conn.versionstamp }).set(key, value);
    if (retryAfter === undefined) op = op.delete(keys.zohoAccessToken());
    await op.commit();
  }

  // ---- connecting ----------------------------------------------------------------------------

  /** The accounts server named in Zoho's redirect, if it is a Zoho one (never send secrets elsewhere). */
  accountsServerFor(server?: string): string {
    if (!server) return this.#accountsUrl;
    let origin: string;
    try {
      origin = new URL(server).origin;
    } catch {
      origin = "";
    }
    if (origin === new URL(this.#accountsUrl).origin || ZOHO_ACCOUNTS.test(origin)) return origin;
    throw new ZohoError({
      code: "INVALID_ACCOUNTS_SERVER",
      message: "The Zoho accounts server in the redirect is not a Zoho data centre.",
    });
  }

  async exchangeCode(code: string, redirectUri: string, accountsServer?: string): Promise<void> {
    const accountsUrl = this.accountsServerFor(accountsServer);
    const { clientId, clientSecret } = this.#requireClient();
    this.#d.redactor.add(code);
    const body = new URLSearchParams({
      grant_type: "authorization_code",
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uri: redirectUri,
      code,
    });
    // No retry: a code is single-use, so a resend after a lost answer would fail anyway.
    const answer = await this.#postToken(accountsUrl, body, false);
    const parsed = TokenResponse.safeParse(answer.json);
    if (!parsed.success) throw this.#unexpected(answer);
    const data = parsed.data;
    if ("error" in data) {
      const err = this.#tokenError(data.error, data.error_description, answer.status);
      if (data.error === "invalid_code") {
        throw new ZohoError({
          code: "INVALID_CODE",
          message:
            "Zoho did not accept the authorization code (invalid_code: expired or already used): connect Zoho again.",
          status: answer.status,
        });
      }
      throw err;
    }
    if (!data.refresh_token) {
      throw new ZohoError({
        code: "NO_REFRESH_TOKEN",
        message:
          "Zoho returned no refresh token: connect again (the app asks for access_type=offline and prompt=consent).",
      });
    }
    this.#d.redactor.add(data.refresh_token);
    const apiDomain = (data.api_domain ?? apiDomainFor(accountsUrl)).replace(/\/+$/, "");
    const value: StoredConnection = {
      refreshToken: await this.#d.secrets.encrypt(data.refresh_token, keys.zohoToken()),
      apiDomain,
      accountsUrl,
      connectedAt: new Date().toISOString(),
      source: "oauth",
    };
    await this.#d.kv.set(keys.zohoToken(), value);
    await this.#storeAccess(data.access_token, apiDomain, data.expires_in ?? 3600);
  }

  /** Forgets the connection (and asks Zoho to revoke the token, best effort). */
  async disconnect(): Promise<void> {
    const key = keys.zohoToken();
    const entry = await this.#d.kv.get(key);
    const value = StoredConnection.safeParse(entry.value ?? {}).data ?? {};
    if (value.refreshToken) {
      try {
        const token = await this.#d.secrets.decrypt(value.refreshToken, keys.zohoToken());
        this.#d.redactor.add(token);
        const accounts = value.source === "env"
          ? this.#accountsUrl
          : value.accountsUrl ?? this.#accountsUrl;
        this.#d.count("revoke");
        await fetchOnce(
          "token revoke",
          `${accounts}/oauth/v2/token/revoke`,
          {
            method: "POST",
            headers: { "content-type": "application/x-www-form-urlencoded" },
            body: new URLSearchParams({ token }),
          },
          Math.min(this.#d.timeoutMs, 10_000),
          this.#d.redactor,
        );
      } catch {
        // Revocation is a courtesy; forgetting the token locally is what matters.
      }
    }
    const seed = this.#d.refreshTokenSeed;
    const tombstone: StoredConnection = {
      disconnectedAt: new Date().toISOString(),
      // The env seed stays in the environment: remember not to adopt it again.
      disconnectedSeedHash: seed ? await sha256Hex(seed) : undefined,
    };
    await this.#d.kv.atomic().set(key, tombstone).delete(keys.zohoAccessToken()).commit();
  }

  /** Connection state from KV only (no API call): cheap enough for /health (connection.ts). */
  status(): Promise<ConnectionStatus> {
    return zohoStatus({ ...this.#d, accountsUrl: this.#accountsUrl });
  }
}

function rateLimitedMessage(error: string, until: number): string {
  return `Zoho refused to issue an access token (${error}: too many requested in 10 minutes); ` +
    `the app asks again after ${new Date(until).toISOString().slice(11, 16)} UTC.`;
}

/** The API domain of a data centre, for the rare token answer without api_domain. */
function apiDomainFor(accountsUrl: string): string {
  const m = /^https:\/\/accounts\.(zoho\.[a-z.]+|zohocloud\.ca)$/.exec(accountsUrl);
  return m
    ? `https://www.${m[1].replace(/^zoho\./, "zohoapis.").replace(/^zohocloud\./, "zohoapis.")}`
    : accountsUrl;
}
