/**
 * Runs the two simulators for one bench pass in their own process, so the CPU time and memory the
 * bench measures are the pipeline's alone (and the simulators get the second core). Started by
 * bench/sims.ts with the options as JSON in argv[0]; prints one JSON line with the addresses and
 * credentials; serves `GET /stats` on a control port; exits when its stdin closes.
 *
 * Xero is reached through a small counting proxy: Xero's answer codes (429s above all) are
 * counted per endpoint, which the simulator's own counters do not tell apart.
 */
import { startXeroSim } from "../sandbox/xero.ts";
import { startZohoSim } from "../sandbox/zoho.ts";
import { ORG_CURRENCIES, ORG_TAX_RATES } from "../sandbox/demo_org.ts";
import { generatePurchaseOrder, seededRandom } from "../sandbox/po_generator.ts";

export interface SimHostOptions {
  n: number;
  vendors: number;
  seed: number;
  /** Simulated time runs this many times faster than real time (latency and the minute window). */
  clockScale: number;
  zohoLatencyMs: number;
  xeroLatencyMs: number;
  /** Zoho's concurrency limit per org (its complex-API limit, 10, always applies). */
  zohoConcurrency?: number;
  /** false: Zoho refuses COQL, so every order is read with the single-record GET. */
  bulk?: boolean;
}

export interface SimHostInfo {
  zoho: { url: string; clientId: string; clientSecret: string; refreshToken: string };
  xero: {
    url: string;
    clientId: string;
    clientSecret: string;
    refreshToken: string;
    tenantId: string;
  };
  control: string;
}

export interface SimStats {
  zoho: Record<string, number>;
  /** Zoho credits charged, by endpoint; and 429s for going over its concurrency limits. */
  zohoCredits: Record<string, number>;
  zohoConcurrency: { peak: number; peakComplex: number; refused: number };
  /** Xero calls by endpoint ("invoices.put") and by endpoint and answer ("invoices.put 429"). */
  xero: Record<string, number>;
  bills: number;
  contacts: number;
}

export function benchVendors(count: number): { id: string; name: string }[] {
  return Array.from({ length: count }, (_, i) => ({
    id: String(5876543000000200000n + BigInt(i)),
    name: `Vendor ${String(i).padStart(4, "0")} Pty Ltd`,
  }));
}

/** n eligible purchase orders (the same for both pipelines), ids counting up. */
function orders(o: SimHostOptions): Record<string, unknown>[] {
  const rand = seededRandom(o.seed);
  const vendors = benchVendors(o.vendors);
  return Array.from(
    { length: o.n },
    (_, i) =>
      generatePurchaseOrder(rand, { PO_Number: `PO-${100001 + i}` }, {
        id: String(5876543000001000000n + BigInt(i)),
        vendors,
      }),
  );
}

/** Xero's endpoint names as the simulator counts them. */
function endpointOf(method: string, path: string): string {
  if (path === "/connect/token") return "token";
  if (path === "/connections" || path.startsWith("/connections/")) return "connections";
  const m = /^\/api\.xro\/2\.0\/([^/]+)/i.exec(path);
  if (!m) return "other";
  const r = m[1].toLowerCase();
  return r === "contacts" || r === "invoices" ? `${r}.${method.toLowerCase()}` : r;
}

async function main() {
  const o: SimHostOptions = JSON.parse(Deno.args[0]);
  const scale = o.clockScale;
  const zoho = await startZohoSim({
    records: orders(o),
    latencyMs: o.zohoLatencyMs / scale,
    utcOffset: "+05:30",
    concurrency: { perOrg: o.zohoConcurrency, complex: 10 },
    ...(o.bulk === false ? { coql: { refuse: "INVALID_QUERY" as const } } : {}),
  });
  const xero = await startXeroSim({
    taxRates: ORG_TAX_RATES,
    currencies: ORG_CURRENCIES,
    latencyMs: o.xeroLatencyMs / scale,
    clockScale: scale,
    // 10,000 bills is two days of Xero's 5,000-call day limit for a naive pipeline; the bench
    // measures the minute limit, so the day limit is lifted.
    limits: { perDay: 1_000_000 },
  });

  const xeroCounts: Record<string, number> = {};
  const bump = (k: string) => (xeroCounts[k] = (xeroCounts[k] ?? 0) + 1);
  const proxy = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const ep = endpointOf(req.method, url.pathname);
    const body = req.body ? await req.arrayBuffer() : undefined;
    const res = await fetch(`${xero.url}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      body,
      redirect: "manual",
    });
    bump(ep);
    bump(`${ep} ${res.status}`);
    return new Response(res.body, { status: res.status, headers: res.headers });
  });
  const proxyUrl = `http://127.0.0.1:${proxy.addr.port}`;

  const control = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    const stats: SimStats = {
      zoho: { ...zoho.counts },
      zohoCredits: { ...zoho.credits },
      zohoConcurrency: { ...zoho.concurrency },
      xero: { ...xeroCounts },
      bills: xero.invoices().length,
      contacts: xero.contacts().length,
    };
    return Response.json(stats);
  });

  const info: SimHostInfo = {
    zoho: {
      url: zoho.url,
      clientId: zoho.clientId,
      clientSecret: zoho.clientSecret,
      refreshToken: zoho.refreshToken,
    },
    xero: {
      url: proxyUrl,
      clientId: xero.clientId,
      clientSecret: xero.clientSecret,
      refreshToken: xero.refreshToken,
      tenantId: xero.tenantId,
    },
    control: `http://127.0.0.1:${control.addr.port}`,
  };
  console.log(JSON.stringify(info));

  // The bench closes our stdin when it is done with us (or when it dies).
  for await (const _ of Deno.stdin.readable) { /* wait for EOF */ }
  await Promise.all([proxy.shutdown(), control.shutdown(), zoho.close(), xero.close()]);
  Deno.exit(0);
}

if (import.meta.main) await main();
