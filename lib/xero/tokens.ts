/**
 * Xero OAuth tokens in KV (encrypted). Refresh tokens rotate on every use, so only one refresh may
 * run at a time across all instances: a refresh first takes a claim written with a KV atomic
 * check on the stored token's versionstamp; whoever loses waits and then uses the winner's token.
 * The new token set is stored before its access token is used, so a crash never loses it.
 */
import { sha256Hex } from "../secrets.ts";
import { z } from "zod";
import type { Secrets } from "../secrets.ts";
import { keys } from "../store/keys.ts";
import { errorFromResponse, headerMap, redact, XeroError } from "./errors.ts";
import { withSpan } from "../telemetry.ts";
import {
  clientHash,
  clientProblem,
  readStoredToken,
  seedUsable,
  type StoredXeroToken,
  StoredXeroToken as storedSchema,
} from "./connection.ts";

export type { StoredXeroToken } from "./connection.ts";

const tokenResponse = z.object({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1),
  expires_in: z.coerce.number().positive(),
  scope: z.string().optional(),
});

/** Refresh this long before expiry, so a token never expires mid-batch. */
const EARLY_MS = 60_000;
const FETCH_TIMEOUT_MS = 20_000;
const TOKEN_ATTEMPTS = 3;
/** Back-off before attempt n (n ≥ 2) of a token call. */
const tokenBackoffMs = (attempt: number) => 200 * 2 ** attempt;
/**
 * A refresh claim outlives the slowest token call (every attempt timing out, plus back-off) with
 * a margin, so no other instance spends the same refresh token while one is still in flight.
 */
const TOKEN_CALL_MAX_MS = TOKEN_ATTEMPTS * FETCH_TIMEOUT_MS +
  Array.from({ length: TOKEN_ATTEMPTS - 1 }, (_, i) => tokenBackoffMs(i + 2))
    .reduce((a, b) => a + b, 0);
const CLAIM_MS = TOKEN_CALL_MAX_MS + 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TokenOptions {
  kv: Deno.Kv;
  secrets: Secrets;
  identityUrl: string;
  clientId?: string;
  clientSecret?: string;
  refreshTokenSeed?: string;
  count: (endpoint: string) => void;
}

export class XeroTokens {
  private readonly id = crypto.randomUUID();
  private cache?: { token: string; expiresAt: number };
  private inflight?: Promise<string>;
  /** Plain secrets this instance has held, for scrubbing error texts. */
  private readonly seen = new Set<string>();

  constructor(private readonly opts: TokenOptions) {
    if (opts.clientSecret) this.seen.add(opts.clientSecret);
    if (opts.refreshTokenSeed) this.seen.add(opts.refreshTokenSeed);
  }

  knownSecrets(): string[] {
    return [...this.seen];
  }

  private remember(s: string) {
    this.seen.add(s);
    if (this.seen.size > 20) this.seen.delete(this.seen.values().next().value!);
  }

  /** A valid access token; `rejected` is one Xero just refused (forces a newer one). */
  accessToken(rejected?: string): Promise<string> {
    const c = this.cache;
    if (c && c.token !== rejected && c.expiresAt - EARLY_MS > Date.now()) {
      return Promise.resolve(c.token);
    }
    if (rejected && c?.token === rejected) this.cache = undefined;
    this.inflight ??= this.obtain(rejected).finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  read(): Promise<StoredXeroToken | null> {
    return readStoredToken(this.opts.kv);
  }

  private async obtain(rejected?: string): Promise<string> {
    const { kv, secrets } = this.opts;
    const key = keys.xeroToken();
    // Bounded: a claim lasts CLAIM_MS (longer than any token call), and we poll about every 100 ms.
    const giveUp = Date.now() + CLAIM_MS + 5_000;
    for (let round = 0; round < 10_000 && Date.now() < giveUp; round++) {
      const entry = await kv.get(key);
      if (entry.value === null) {
        if (!await this.seedUsable()) throw notConnected();
        await this.seed(entry.versionstamp);
        continue;
      }
      const parsed = storedSchema.safeParse(entry.value);
      if (!parsed.success) throw notConnected("the stored Xero token is unreadable");
      const v = parsed.data;
      if (v.clientFailure && v.clientFailure.client === await this.clientHash()) {
        // Same wrong client id or secret: fails fast, and the stored refresh token stays.
        throw invalidClient(v.clientFailure.message);
      }
      if (v.failure) {
        // An operator may have put a fresh XERO_REFRESH_TOKEN in the environment since; the one
        // this token set came from is spent and would only fail again.
        const seed = this.opts.refreshTokenSeed;
        if (
          seed && seed !== await secrets.decrypt(v.refreshToken) &&
          await sha256Hex(seed) !== v.seedHash
        ) {
          await this.seed(entry.versionstamp);
          continue;
        }
        throw new XeroError(v.failure, { status: 400, kind: "auth", retryable: false });
      }
      // After a failure the stored access token is the one that led to it (refused or expired).
      if (v.accessToken && v.expiresAt && v.expiresAt - EARLY_MS > Date.now()) {
        const token = await secrets.decrypt(v.accessToken);
        if (token !== rejected) {
          this.remember(token);
          this.cache = { token, expiresAt: v.expiresAt };
          return token;
        }
      }
      if (v.claim && v.claim.until > Date.now() && v.claim.by !== this.id) {
        await sleep(80 + Math.random() * 60);
        continue;
      }
      const claimed = await kv.atomic().check(entry)
        .set(key, { ...v, claim: { by: this.id, until: Date.now() + CLAIM_MS } }).commit();
      if (!claimed.ok) continue;
      return await withSpan("xero.token.refresh", {}, () => this.refresh(v, claimed.versionstamp));
    }
    throw new XeroError("Xero token refresh by another instance did not finish in time", {
      status: 0,
      kind: "network",
    });
  }

  /** The env seed may be used: it is set and is not the one an admin disconnected. */
  seedUsable(): Promise<boolean> {
    return seedUsable(this.opts.kv, this.opts.refreshTokenSeed);
  }

  /** Names the configured client id and secret without storing either. */
  private clientHash(): Promise<string> {
    return clientHash(this.opts.clientId, this.opts.clientSecret);
  }

  /** Why Xero refuses the configured client (for status), if it last did. */
  clientProblem(stored: StoredXeroToken | null): Promise<string | undefined> {
    return clientProblem(stored, this.opts.clientId, this.opts.clientSecret);
  }

  private async seed(versionstamp: string | null) {
    const value: StoredXeroToken = {
      refreshToken: await this.opts.secrets.encrypt(this.opts.refreshTokenSeed!),
      updatedAt: Date.now(),
      seedHash: await sha256Hex(this.opts.refreshTokenSeed!),
    };
    await this.opts.kv.atomic().check({ key: keys.xeroToken(), versionstamp })
      .set(keys.xeroToken(), value).commit();
  }

  /** We hold the claim: spend the refresh token, store the new set, then hand it out. */
  private async refresh(v: StoredXeroToken, versionstamp: string): Promise<string> {
    const { kv, secrets } = this.opts;
    const key = keys.xeroToken();
    const old = await secrets.decrypt(v.refreshToken);
    this.remember(old);
    let res: z.infer<typeof tokenResponse>;
    try {
      res = await this.tokenCall({ grant_type: "refresh_token", refresh_token: old });
    } catch (e) {
      const wrongClient = e instanceof XeroError && e.code === "INVALID_CLIENT";
      // A wrong client secret is fixed in the environment: not a dead refresh token.
      const failure = e instanceof XeroError && e.kind === "auth" && !wrongClient
        ? e.message
        : undefined;
      const clientFailure = wrongClient
        ? { client: await this.clientHash(), message: (e as XeroError).message }
        : undefined;
      const cur = await kv.get(key);
      if (cur.versionstamp === versionstamp) {
        await kv.atomic().check(cur)
          .set(key, { ...v, claim: undefined, failure, clientFailure }).commit();
      }
      throw e;
    }
    const next = { ...await this.sealed(res), seedHash: v.seedHash };
    let commit = await kv.atomic().check({ key, versionstamp }).set(key, next).commit();
    if (!commit.ok) {
      // Our claim ran out and the entry changed. Still ours to replace only if it holds the token
      // we just spent; otherwise a newer set (a reconnect, another refresh) stays.
      const cur = await kv.get(key);
      const curValue = storedSchema.safeParse(cur.value);
      if (curValue.success && await secrets.decrypt(curValue.data.refreshToken) === old) {
        commit = await kv.atomic().check(cur).set(key, next).commit();
      }
      if (cur.value === null) throw notConnected("Xero was disconnected during a token refresh");
    }
    this.cache = { token: res.access_token, expiresAt: next.expiresAt! };
    return res.access_token;
  }

  private async sealed(res: z.infer<typeof tokenResponse>): Promise<StoredXeroToken> {
    this.remember(res.access_token);
    this.remember(res.refresh_token);
    return {
      refreshToken: await this.opts.secrets.encrypt(res.refresh_token),
      accessToken: await this.opts.secrets.encrypt(res.access_token),
      expiresAt: Date.now() + res.expires_in * 1000,
      scope: res.scope,
      updatedAt: Date.now(),
    };
  }

  /** Finishes the authorize flow: the new token set replaces whatever was stored. */
  async exchangeCode(code: string, redirectUri: string, codeVerifier?: string): Promise<void> {
    const res = await this.tokenCall({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri,
      ...(codeVerifier ? { code_verifier: codeVerifier } : {}), // PKCE
    });
    const next = await this.sealed(res);
    await this.opts.kv.set(keys.xeroToken(), next);
    this.cache = { token: res.access_token, expiresAt: next.expiresAt! };
  }

  /** Forgets the tokens here, and asks Xero to revoke them (best effort). */
  async clear(): Promise<void> {
    const stored = await this.read();
    // Remember which env seed was disconnected, so XERO_REFRESH_TOKEN does not silently reconnect.
    const seed = this.opts.refreshTokenSeed;
    await this.opts.kv.atomic().delete(keys.xeroToken())
      .set(keys.xeroDisconnectedSeed(), seed ? await sha256Hex(seed) : "").commit();
    this.cache = undefined;
    if (!stored || !this.opts.clientId || !this.opts.clientSecret) return;
    try {
      const token = await this.opts.secrets.decrypt(stored.refreshToken);
      this.opts.count("revoke");
      const res = await fetch(`${this.opts.identityUrl}/connect/revocation`, {
        method: "POST",
        headers: this.authHeaders(),
        body: new URLSearchParams({ token, token_type_hint: "refresh_token" }),
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
      await res.body?.cancel();
    } catch {
      // Revocation is a courtesy; the tokens are gone from here either way.
    }
  }

  private authHeaders(): Record<string, string> {
    const basic = btoa(`${this.opts.clientId}:${this.opts.clientSecret}`);
    return {
      authorization: `Basic ${basic}`,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
  }

  /** POST /connect/token, retrying network and 5xx failures (the claim keeps others off). */
  private async tokenCall(form: Record<string, string>) {
    if (!this.opts.clientId || !this.opts.clientSecret) {
      throw notConnected("XERO_CLIENT_ID and XERO_CLIENT_SECRET are not set");
    }
    const secrets = [...this.seen, ...Object.values(form)];
    let last: XeroError | undefined;
    for (let attempt = 1; attempt <= TOKEN_ATTEMPTS; attempt++) {
      if (attempt > 1) await sleep(tokenBackoffMs(attempt));
      this.opts.count("token");
      let res: Response;
      try {
        res = await fetch(`${this.opts.identityUrl}/connect/token`, {
          method: "POST",
          headers: this.authHeaders(),
          body: new URLSearchParams(form),
          signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        });
      } catch (e) {
        last = new XeroError(
          redact(`Xero token endpoint: connection failed (${(e as Error).message})`, secrets),
          { status: 0, kind: "network" },
        );
        continue;
      }
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch { /* keep the text */ }
      if (res.ok) {
        const parsed = tokenResponse.safeParse(body);
        if (parsed.success) return parsed.data;
        last = new XeroError("Xero token endpoint: unexpected answer", {
          status: res.status,
          kind: "server",
        });
        continue;
      }
      const code = (body as { error?: unknown })?.error;
      if ((res.status === 400 || res.status === 401) && code === "invalid_client") {
        throw invalidClient(
          "Xero refused the client id or secret (invalid_client): check XERO_CLIENT_ID and XERO_CLIENT_SECRET",
        );
      }
      if (res.status === 400 || res.status === 401) {
        throw new XeroError(
          code === "invalid_grant"
            ? form.grant_type === "authorization_code"
              ? "Xero refused the authorization code (invalid_grant): it expired or was used already; connect Xero again"
              : "Xero refused the stored refresh token (invalid_grant): reconnect Xero"
            : redact(
              // Stored as the connection's failure until someone reconnects: say so.
              `Xero token endpoint refused the request (${
                String(code ?? res.status)
              }): reconnect Xero on the connections page`,
              secrets,
            ),
          { status: res.status, kind: "auth", retryable: false },
        );
      }
      last = errorFromResponse(res.status, body, headerMap(res.headers), "token endpoint", secrets);
      if (!last.retryable) throw last;
    }
    throw last!;
  }
}

/** Kind "auth" so every path stops on it; the code says a restart with fixed env cures it. */
function invalidClient(message: string) {
  return new XeroError(message, {
    status: 400,
    kind: "auth",
    retryable: false,
    code: "INVALID_CLIENT",
  });
}

function notConnected(detail = "Xero is not connected") {
  return new XeroError(`${detail}: connect Xero on the connections page`, {
    status: 401,
    kind: "auth",
    retryable: false,
  });
}
