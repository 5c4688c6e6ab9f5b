/**
 * The API's bearer token check, on its own so GET /health (loaded before the first answer) uses
 * it without loading the rest of the API's guard (routes/api_auth.ts: rate limits, sessions).
 */
import type { Context } from "hono";
import { safeEqual } from "../lib/secrets.ts";

/** `Authorization: Bearer <token>`, compared in constant time. */
export function bearerOk(c: Context, token: string): boolean {
  const header = c.req.header("authorization") ?? "";
  const m = header.match(/^Bearer\s+(.+)$/i);
  return !!m && safeEqual(m[1].trim(), token);
}
