/**
 * Typed errors of the Zoho client. A message names Zoho's code and message (what a person needs to
 * act), never a token or the client secret: every text that came from outside passes a Redactor.
 */
export interface ZohoErrorInit {
  code: string;
  message: string;
  status?: number;
  retryable?: boolean;
  details?: Record<string, unknown>;
}

export class ZohoError extends Error {
  override name = "ZohoError";
  /** Zoho's code (INVALID_TOKEN, INVALID_DATA, ...) or ours (RECONNECT_REQUIRED, NETWORK_ERROR, ...). */
  readonly code: string;
  /** HTTP status of the answer that caused it; 0 when no answer arrived. */
  readonly status: number;
  /** Worth trying again later (rate limit, outage); false when only a person can fix it. */
  readonly retryable: boolean;
  readonly details?: Record<string, unknown>;

  constructor(init: ZohoErrorInit) {
    super(init.message);
    this.code = init.code;
    this.status = init.status ?? 0;
    this.retryable = init.retryable ?? false;
    this.details = init.details;
  }
}

/** Message a person can act on when the stored refresh token no longer works. */
export const RECONNECT_MESSAGE =
  "Zoho rejected the stored refresh token (revoked or expired): reconnect Zoho on the Connections page.";

/** Replaces every known secret in a text with "[redacted]". */
export class Redactor {
  #secrets = new Set<string>();

  add(secret: string | undefined | null): void {
    if (secret && secret.length >= 8) this.#secrets.add(secret);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) out = out.replaceAll(s, "[redacted]");
    // Belt and braces: anything shaped like a Zoho token (1000.<hex>.<hex>) or an auth header.
    return out
      .replace(/1000\.[0-9a-f]{16,}\.[0-9a-f]{16,}/gi, "[redacted]")
      .replace(/(Zoho-oauthtoken|Bearer)\s+\S+/gi, "$1 [redacted]");
  }
}

/** The last retryable failure, saying that the retry budget is spent. */
export function giveUp(err: ZohoError, attempts: number): ZohoError {
  return new ZohoError({
    code: err.code,
    message: `${err.message} (gave up after ${attempts} attempts)`,
    status: err.status,
    retryable: err.retryable,
    details: err.details,
  });
}
