/**
 * Typed Xero errors. xero-node rejects with a JSON *string* `{response:{statusCode, body, headers,
 * request}, body}` whose request part can carry the bearer token; this module turns that (and
 * fetch failures) into a XeroError whose text is built only from Xero's own messages and is
 * scrubbed of any secret we know of.
 */
import type { XeroErrorKind } from "./types.ts";

export class XeroError extends Error {
  readonly status: number;
  readonly kind: XeroErrorKind;
  readonly retryable: boolean;
  /** From Retry-After, when Xero sent one. */
  readonly retryAfterMs?: number;
  /** The limit named by X-Rate-Limit-Problem on a 429 ("minute", "day", "concurrent"). */
  readonly problem?: string;
  /** A stable name for errors a caller treats specially ("INVALID_CLIENT": a wrong client secret). */
  readonly code?: string;

  constructor(
    message: string,
    init: {
      status: number;
      kind: XeroErrorKind;
      retryable?: boolean;
      retryAfterMs?: number;
      problem?: string;
      code?: string;
    },
  ) {
    super(message);
    this.name = "XeroError";
    this.status = init.status;
    this.kind = init.kind;
    this.retryable = init.retryable ??
      (init.kind === "rate_limit" || init.kind === "server" || init.kind === "network");
    this.retryAfterMs = init.retryAfterMs;
    this.problem = init.problem;
    this.code = init.code;
  }
}

const BEARER = /Bearer\s+[A-Za-z0-9\-._~+/]+=*/gi;

/** Removes every known secret and anything shaped like a bearer token from a text. */
export function redact(text: string, secrets: Array<string | undefined>): string {
  let out = text.replace(BEARER, "Bearer [redacted]");
  for (const s of secrets) if (s && s.length >= 6) out = out.split(s).join("[redacted]");
  return out;
}

export type HeaderMap = Record<string, string | undefined>;

/** Lower-cased header map from axios headers, fetch Headers or a plain object. */
export function headerMap(h: unknown): HeaderMap {
  const out: HeaderMap = {};
  if (!h || typeof h !== "object") return out;
  if (h instanceof globalThis.Headers) {
    h.forEach((v, k) => (out[k.toLowerCase()] = v));
    return out;
  }
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined && v !== null) out[k.toLowerCase()] = String(v);
  }
  return out;
}

export function retryAfterMs(headers: HeaderMap): number | undefined {
  const v = headers["retry-after"];
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Xero's messages from an error body: ValidationException elements, Message, Detail. */
export function xeroMessages(body: unknown): string[] {
  if (typeof body === "string") {
    const trimmed = body.trim();
    if (trimmed.startsWith("{")) {
      try {
        return xeroMessages(JSON.parse(trimmed));
      } catch { /* plain text */ }
    }
    return trimmed && !trimmed.startsWith("<") ? [trimmed.slice(0, 300)] : [];
  }
  if (!body || typeof body !== "object") return [];
  const b = body as Record<string, unknown>;
  const out: string[] = [];
  if (Array.isArray(b.Elements)) {
    for (const el of b.Elements) {
      const errs = (el as Record<string, unknown>)?.ValidationErrors;
      if (Array.isArray(errs)) {
        for (const e of errs) {
          const m = (e as Record<string, unknown>)?.Message;
          if (typeof m === "string") out.push(m);
        }
      }
    }
  }
  if (!out.length) {
    for (const k of ["Message", "Detail", "Title", "error_description", "error"]) {
      if (typeof b[k] === "string" && b[k]) {
        out.push(b[k] as string);
        break;
      }
    }
  }
  return [...new Set(out)];
}

/** Maps an HTTP status (and its headers and body) to a XeroError. */
export function errorFromResponse(
  status: number,
  body: unknown,
  headers: HeaderMap,
  what: string,
  secrets: Array<string | undefined>,
): XeroError {
  const messages = xeroMessages(body);
  const detail = messages.join("; ");
  const say = (text: string) => redact(`Xero ${what}: ${text}`, secrets);
  if (status === 429) {
    const problem = headers["x-rate-limit-problem"]?.toLowerCase();
    const wait = retryAfterMs(headers);
    if (problem === "day") {
      return new XeroError(say("the organisation's daily API limit is used up"), {
        status,
        kind: "daily_limit",
        retryable: false,
        retryAfterMs: wait,
        problem,
      });
    }
    return new XeroError(say(`rate limit reached (${problem ?? "unknown limit"})`), {
      status,
      kind: "rate_limit",
      retryAfterMs: wait,
      problem,
    });
  }
  if (status === 401) {
    return new XeroError(say(`not authorised (${detail || "token rejected"})`), {
      status,
      kind: "auth",
      retryable: false,
    });
  }
  if (status === 403) {
    return new XeroError(
      say(`access to the organisation was refused; reconnect Xero (${detail || "forbidden"})`),
      { status, kind: "auth", retryable: false },
    );
  }
  if (status >= 500) {
    return new XeroError(say(`server error ${status}${detail ? ` (${detail})` : ""}`), {
      status,
      kind: "server",
    });
  }
  return new XeroError(say(detail || `request failed with HTTP ${status}`), {
    status,
    kind: "validation",
    retryable: false,
  });
}

export interface ParsedRejection {
  /** 0 when no complete answer arrived. */
  status: number;
  body: unknown;
  headers: HeaderMap;
  /** Why there was no answer (connection refused, stream aborted, ...). */
  reason?: string;
}

/** Reads xero-node's rejection (a JSON string, an object, or an Error) without keeping secrets. */
export function parseRejection(raw: unknown): ParsedRejection {
  let parsed: unknown = raw;
  if (typeof raw === "string") {
    try {
      parsed = JSON.parse(raw);
    } catch {
      return { status: 0, body: undefined, headers: {}, reason: raw.slice(0, 200) };
    }
  }
  if (raw instanceof Error) return { status: 0, body: undefined, headers: {}, reason: raw.message };
  const p = (parsed ?? {}) as { response?: Record<string, unknown>; body?: unknown };
  const res = p.response ?? {};
  const status = Number(res.statusCode ?? res.status ?? 0);
  const body = res.body ?? res.data ?? p.body;
  const headers = headerMap(res.headers);
  // statusCode 0: no answer at all; 2xx in a rejection: the answer was cut off mid-body.
  if (!status || (status >= 200 && status < 300)) {
    return {
      status: 0,
      body: undefined,
      headers,
      reason: typeof body === "string" && body ? body.slice(0, 200) : "no response",
    };
  }
  return { status, body, headers };
}

/** Turns anything xero-node (or our own code around it) rejected with into a XeroError. */
export function fromRejection(
  raw: unknown,
  what: string,
  secrets: Array<string | undefined>,
): XeroError {
  if (raw instanceof XeroError) return raw;
  const p = parseRejection(raw);
  if (!p.status) {
    return new XeroError(redact(`Xero ${what}: connection failed (${p.reason})`, secrets), {
      status: 0,
      kind: "network",
    });
  }
  return errorFromResponse(p.status, p.body, p.headers, what, secrets);
}
