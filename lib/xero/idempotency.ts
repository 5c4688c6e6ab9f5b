/**
 * Idempotency keys derived from a request's content: the same batch always carries the same key,
 * so a resend (ours, or node:http's silent one on a closed keep-alive socket) is answered by
 * Xero's stored response instead of creating a second bill.
 */
import { sha256Hex } from "../secrets.ts";

/** JSON with object keys sorted at every level and undefined values left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** ≤ 128 characters, as Xero requires. */
export async function idempotencyKey(operation: string, body: unknown): Promise<string> {
  return `zx-${await sha256Hex(`${operation}\n${canonicalJson(body)}`)}`;
}
