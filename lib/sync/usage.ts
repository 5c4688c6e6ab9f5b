/**
 * What a run cost (DESIGN §5 `usage`): Zoho credits and calls by kind, Xero calls and the bytes
 * Xero sent back (data egress, billed since March 2026). Taken as the difference of the clients'
 * counters between the run's start and now, so a button sync during a run counts in it too.
 */
import type { XeroPort, ZohoPort } from "./ports.ts";
import type { Usage } from "./types.ts";

/** Not API calls: OAuth token mints and revocations cost no credits. */
const NOT_API = new Set(["token", "revoke", "authorize", "connections"]);

export interface UsageMark {
  zohoCredits: number;
  zohoCalls: Record<string, number>;
  xeroCalls: number;
  xeroEgressBytes: number;
}

export function usageMark(zoho: ZohoPort, xero: XeroPort): UsageMark {
  return {
    zohoCredits: zoho.calls.credits ?? zoho.calls.total,
    zohoCalls: { ...zoho.calls.byEndpoint },
    xeroCalls: xero.calls.total,
    xeroEgressBytes: xero.calls.egressBytes ?? 0,
  };
}

export function usageSince(mark: UsageMark, zoho: ZohoPort, xero: XeroPort): Usage {
  const now = usageMark(zoho, xero);
  const zohoCalls: Record<string, number> = {};
  for (const [kind, n] of Object.entries(now.zohoCalls)) {
    const d = n - (mark.zohoCalls[kind] ?? 0);
    if (d > 0 && !NOT_API.has(kind)) zohoCalls[kind] = d;
  }
  return {
    zohoCredits: now.zohoCredits - mark.zohoCredits,
    zohoCalls,
    xeroCalls: now.xeroCalls - mark.xeroCalls,
    xeroEgressBytes: now.xeroEgressBytes - mark.xeroEgressBytes,
  };
}

/** Usage of earlier executions of a run (resumed in another instance) plus this one's. */
export function addUsage(a: Usage | undefined, b: Usage): Usage {
  if (!a) return b;
  const zohoCalls = { ...a.zohoCalls };
  for (const [kind, n] of Object.entries(b.zohoCalls)) zohoCalls[kind] = (zohoCalls[kind] ?? 0) + n;
  return {
    zohoCredits: a.zohoCredits + b.zohoCredits,
    zohoCalls,
    xeroCalls: a.xeroCalls + b.xeroCalls,
    xeroEgressBytes: a.xeroEgressBytes + b.xeroEgressBytes,
  };
}
