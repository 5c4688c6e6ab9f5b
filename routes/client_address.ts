/**
 * Who is calling, for the login throttle and the API limit: the socket's address, or with the
 * opt-in trusted-proxy setting the address the proxy wrote into its header. IPv6 clients are
 * counted per /64, since one host usually holds a whole /64 and could rotate through it.
 */
import type { Context } from "hono";
import type { Config } from "../lib/config.ts";

type ProxyConfig = Pick<Config, "TRUSTED_PROXY_HEADER" | "TRUSTED_PROXY_HOPS">;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The 8 groups of an IPv6 address (canonical form from the URL parser), or null. */
function ipv6Groups(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return null;
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const [head, tail] = host.includes("::") ? host.split("::") : [host, undefined];
  const part = (s: string | undefined) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const a = part(head);
  const b = part(tail);
  if (tail === undefined) return a.length === 8 ? a : null;
  return [...a, ...Array(8 - a.length - b.length).fill(0), ...b];
}

/**
 * A bucket name for an address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 as its /64 prefix;
 * null for anything that is not an address.
 */
export function addressBucket(address: string): string | null {
  let a = address.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracketed) a = bracketed[1];
  else if (/^[\d.]+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(":")); // "1.2.3.4:5678"
  a = a.replace(/%[\w.-]+$/, ""); // zone id
  if (IPV4.test(a)) return a;
  const groups = ipv6Groups(a);
  if (!groups) return null;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 255, groups[7] >> 8, groups[7] & 255].join(".");
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

function socketAddress(c: Context): string | undefined {
  const env = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return env?.remoteAddr?.hostname;
}

/**
 * The caller's bucket. With TRUSTED_PROXY_HEADER set, the address `TRUSTED_PROXY_HOPS` entries
 * from the right of that header (each proxy appends the address it saw, so entries further left
 * are the client's own claims); when the header is missing, too short or not an address, the
 * socket's address (such a request did not come through the proxies).
 */
export function clientAddress(c: Context, config: ProxyConfig): string {
  if (config.TRUSTED_PROXY_HEADER) {
    const entries = (c.req.header(config.TRUSTED_PROXY_HEADER) ?? "").split(",")
      .map((s) => s.trim()).filter(Boolean);
    const hops = config.TRUSTED_PROXY_HOPS ?? 1;
    const claimed = entries.length >= hops ? entries[entries.length - hops] : undefined;
    const bucket = claimed ? addressBucket(claimed) : null;
    if (bucket) return bucket;
  }
  const socket = socketAddress(c);
  return (socket && addressBucket(socket)) ?? "unknown"; // app.request() in tests has no socket
}
