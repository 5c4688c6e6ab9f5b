/**
 * How a failure from Zoho or Xero affects a sync: one record fails, or the whole run must stop
 * (reconnect needed, Xero's daily limit reached). The clients' error classes are matched by their
 * fields so this module stays free of their imports.
 */

/** Thrown to stop a run as a whole; the run records `status` and the message. */
export class RunStop extends Error {
  constructor(
    readonly status: "failed" | "paused",
    message: string,
    readonly system: "zoho" | "xero",
    /** For a pause: when the service said it may be asked again. */
    readonly retryAfterMs?: number,
    /** For a pause: the run goes on once this system is connected again. */
    readonly untilReconnected = false,
  ) {
    super(message);
    this.name = "RunStop";
  }
}

interface ClientError {
  name?: string;
  message?: string;
  code?: string;
  kind?: string;
  status?: number;
  retryAfterMs?: number;
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Errors that end the whole run, not just one record. */
export function asRunStop(err: unknown, system: "zoho" | "xero"): RunStop | null {
  if (err instanceof RunStop) return err;
  const e = (err ?? {}) as ClientError;
  if (e.code === "INVALID_CLIENT") {
    // A wrong client id or secret: fixed in the environment, not by reconnecting.
    return new RunStop("failed", describe(err), system);
  }
  if (system === "xero" && e.kind === "daily_limit") {
    return new RunStop(
      "paused",
      "Paused: Xero daily limit reached; the rest syncs tomorrow.",
      "xero",
      e.retryAfterMs,
    );
  }
  // A connection to make again pauses the run: it goes on once an admin has reconnected.
  if (system === "xero" && e.kind === "auth") {
    return new RunStop(
      "paused",
      `Xero needs to be reconnected: ${describe(err)}`,
      "xero",
      undefined,
      true,
    );
  }
  if (system === "zoho" && e.code === "TOKEN_RATE_LIMITED") {
    // Every further call would ask Zoho for a token again and extend its block.
    return new RunStop("paused", `Paused: ${describe(err)}`, "zoho");
  }
  if (system === "zoho" && (e.code === "RECONNECT_REQUIRED" || e.code === "NOT_CONNECTED")) {
    return new RunStop(
      "paused",
      `Zoho CRM needs to be reconnected: ${describe(err)}`,
      "zoho",
      undefined,
      true,
    );
  }
  if (system === "xero" && e.kind === "not_connected") {
    return new RunStop("paused", describe(err), "xero", undefined, true);
  }
  return null;
}
