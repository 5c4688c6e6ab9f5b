/** The bench's table and the lower bound Xero's minute limit sets. */
import { AUTH_ENDPOINTS, type PassResult } from "./run.ts";

export interface RateFloor {
  /** The fewest accounting API calls N bills can take: bill batches of 50 plus contact calls. */
  calls: number;
  billCalls: number;
  contactCalls: number;
  /** calls / 60: the steady rate the limit allows, in minutes. */
  steadyMinutes: number;
  /** Strict floor: 60 calls may start in the first minute, 60 in each one after. */
  floorMinutes: number;
}

/**
 * N bills and V new suppliers: ⌈N/50⌉ bill calls, one call reading the organisation's contacts
 * (≤ 1,000 a page) and ⌈V/50⌉ contact creates.
 */
export function rateFloor(n: number, vendors: number): RateFloor {
  const billCalls = Math.ceil(n / 50);
  const contactCalls = 1 + Math.ceil(vendors / 50);
  const calls = billCalls + contactCalls;
  return {
    calls,
    billCalls,
    contactCalls,
    steadyMinutes: calls / 60,
    floorMinutes: Math.floor((calls - 1) / 60),
  };
}

/** The same floor for the naive pipeline: a search and a bill per record, a create per vendor. */
export function naiveFloor(n: number, vendors: number): { calls: number; floorMinutes: number } {
  const calls = 2 * n + vendors;
  return { calls, floorMinutes: Math.floor((calls - 1) / 60) };
}

/** Sign-in calls of both systems (not API calls: outside the totals). */
const auth = (p: PassResult) =>
  AUTH_ENDPOINTS.reduce((s, k) => s + (p.zohoCalls[k] ?? 0) + (p.xeroCalls[k] ?? 0), 0);

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const fixed = (x: number, dp: number) =>
  x.toLocaleString("en-US", { minimumFractionDigits: dp, maximumFractionDigits: dp });
const ratio = (a: number, b: number) => (b > 0 && a > 0 ? `${fixed(a / b, 1)}×` : "");

function row(label: string, app: string, naive: string, r = ""): string {
  return `${label.padEnd(34)}${app.padStart(12)}${naive.padStart(12)}${r.padStart(12)}`;
}

const ZOHO_ORDER = ["list", "coql", "get", "update", "fields"];
const XERO_ORDER = [
  "contacts.get",
  "contacts.put",
  "contacts.post",
  "invoices.get",
  "invoices.put",
  "invoices.post",
];

function endpoints(
  order: string[],
  a: Record<string, number>,
  b: Record<string, number> | undefined,
  skip: string[],
): string[] {
  const names = [...new Set([...order, ...Object.keys(a), ...Object.keys(b ?? {})])]
    .filter((k) => !skip.includes(k) && ((a[k] ?? 0) > 0 || (b?.[k] ?? 0) > 0));
  return names.map((k) => row(`  ${k}`, int(a[k] ?? 0), b ? int(b[k] ?? 0) : "", ""));
}

export function table(
  n: number,
  vendors: number,
  app: PassResult,
  naive: PassResult | undefined,
  latency: { zoho: number; xero: number },
): string {
  const floor = rateFloor(n, vendors);
  const nf = naiveFloor(n, vendors);
  const dash = naive ? "" : "–";
  const v = (f: (p: PassResult) => string) => (naive ? f(naive) : dash);
  const lines = [
    `== ${int(n)} purchase orders, ${int(vendors)} vendors ==`,
    `Per call: Zoho ${latency.zoho} ms, Xero ${latency.xero} ms. Xero limits: 5 concurrent, 60 a minute.`,
    "",
    row("", "this app", naive ? "naive" : "", naive ? "naive/app" : ""),
    row(
      "Zoho CRM API calls",
      int(app.zohoTotal),
      v((p) => int(p.zohoTotal)),
      naive ? ratio(naive.zohoTotal, app.zohoTotal) : "",
    ),
    ...endpoints(ZOHO_ORDER, app.zohoCalls, naive?.zohoCalls, AUTH_ENDPOINTS),
    row(
      "Xero API calls",
      int(app.xeroTotal),
      v((p) => int(p.xeroTotal)),
      naive ? ratio(naive.xeroTotal, app.xeroTotal) : "",
    ),
    ...endpoints(XERO_ORDER, app.xeroCalls, naive?.xeroCalls, AUTH_ENDPOINTS),
    row("  + answered 429, retried", int(app.xero429), v((p) => int(p.xero429))),
    row("OAuth token + Xero /connections", int(auth(app)), v((p) => int(auth(p)))),
    row("Bills in Xero afterwards", int(app.bills), v((p) => int(p.bills))),
    row("Wall time, real (s)", fixed(app.wallMs / 1000, 1), v((p) => fixed(p.wallMs / 1000, 1))),
    row("Clock scale (simulated ÷ real)", `${app.clockScale}×`, v((p) => `${p.clockScale}×`)),
    row(
      "Xero minutes (wall × scale)",
      fixed(app.xeroMinutes, 2),
      v((p) => fixed(p.xeroMinutes, 1)),
      naive ? ratio(naive.xeroMinutes, app.xeroMinutes) : "",
    ),
    row(
      "CPU per purchase order (ms)",
      fixed(app.cpuMsPerOrder, 2),
      v((p) => fixed(p.cpuMsPerOrder, 2)),
      naive ? ratio(naive.cpuMsPerOrder, app.cpuMsPerOrder) : "",
    ),
    row("Peak RSS (MB)", int(app.peakRssMb), v((p) => int(p.peakRssMb))),
    row("Peak JS heap used (MB)", int(app.peakHeapMb), v((p) => int(p.peakHeapMb))),
    "",
    `Xero's 60 calls a minute, this app: ${
      int(n)
    } bills need at least ${floor.billCalls} bill calls` +
    ` + ${floor.contactCalls} contact calls = ${floor.calls} calls: ${
      fixed(floor.steadyMinutes, 2)
    } min at 60/min; ` +
    (floor.calls <= 60
      ? "all fit in the first minute's 60, so the limit does not bind at this size."
      : `strictly ≥ ${floor.floorMinutes} min (60 start in the first minute). This run: ${
        fixed(app.xeroMinutes, 2)
      } min = ${fixed(app.xeroMinutes / floor.floorMinutes, 2)}× the strict floor, ${
        fixed(app.xeroMinutes / floor.steadyMinutes, 2)
      }× calls/60.`),
    `Naive: ${int(nf.calls)} calls (a search and a bill per record, a create per vendor): ≥ ${
      int(nf.floorMinutes)
    } min${naive ? `; this run ${fixed(naive.xeroMinutes, 1)} min` : ""}.`,
  ];
  return lines.join("\n");
}

/**
 * The least time the APIs' limits allow one pass, in minutes: Xero's 60 calls a minute over the
 * fewest calls N bills take, and Zoho's: its list pages one after another (each page needs the
 * last one's token), its other calls at most `concurrency` at once, each taking the latency.
 */
export function passFloor(
  p: PassResult,
  vendors: number,
  zoho: { latencyMs: number; concurrency: number },
): { xero: number; zoho: number; minutes: number } {
  const xero = rateFloor(p.n, vendors).steadyMinutes;
  const list = p.zohoCalls.list ?? 0;
  const zohoMs = Math.max(list * zoho.latencyMs, (p.zohoTotal * zoho.latencyMs) / zoho.concurrency);
  const zohoMin = zohoMs / 60_000;
  return { xero, zoho: zohoMin, minutes: Math.max(xero, zohoMin) };
}

const BULK_ZOHO_ORDER = ["list", "coql", "get", "update", "fields"];

/** This app with Zoho's line items in bulk offered and refused, side by side. */
export function bulkTable(
  n: number,
  vendors: number,
  passes: PassResult[],
  zoho: { latencyMs: number; concurrency: number },
  xeroLatencyMs: number,
): string {
  const col = (f: (p: PassResult) => string) => passes.map((p) => f(p).padStart(14)).join("");
  const line = (label: string, f: (p: PassResult) => string) => `${label.padEnd(36)}${col(f)}`;
  const floors = passes.map((p) => passFloor(p, vendors, zoho));
  const at = (p: PassResult) => floors[passes.indexOf(p)];
  const kinds = BULK_ZOHO_ORDER.filter((k) => passes.some((p) => (p.zohoCalls[k] ?? 0) > 0));
  const mb = (b?: number) => (b === undefined ? "–" : fixed(b / 1024 / 1024, 2));
  return [
    `== ${int(n)} purchase orders, ${int(vendors)} vendors: line items in bulk or by GET ==`,
    `Zoho ${zoho.latencyMs} ms a call, ≤ ${zoho.concurrency} at once (COQL ≤ 10); ` +
    `Xero ${xeroLatencyMs} ms, ≤ 5 at once, 60 a minute.`,
    "",
    line("", (p) => (p.bulk ? "bulk (COQL)" : "GET only")),
    line("Zoho credits", (p) => int(p.zohoCredits)),
    line("  per purchase order", (p) => fixed(p.zohoCredits / p.n, 3)),
    line("Zoho API calls", (p) => int(p.zohoTotal)),
    ...kinds.map((k) => line(`  ${k}`, (p) => int(p.zohoCalls[k] ?? 0))),
    line("  + answered 429 (over the limit)", (p) => int(p.zoho429)),
    line("Xero API calls", (p) => int(p.xeroTotal)),
    line("Xero egress (MB received)", (p) => mb(p.xeroEgressBytes)),
    line("Bills in Xero afterwards", (p) => int(p.bills)),
    line("Wall time (simulated min)", (p) => fixed(p.xeroMinutes, 2)),
    line("Floor: Xero 60/min (min)", (p) => fixed(at(p).xero, 2)),
    line("Floor: Zoho latency/limit (min)", (p) => fixed(at(p).zoho, 2)),
    line("Wall time ÷ floor", (p) => `${fixed(p.xeroMinutes / at(p).minutes, 2)}×`),
    line("Peak RSS (MB)", (p) => int(p.peakRssMb)),
    line("CPU per purchase order (ms)", (p) => fixed(p.cpuMsPerOrder, 2)),
    line("Real wall (s) at clock scale", (p) => `${fixed(p.wallMs / 1000, 1)} @${p.clockScale}×`),
  ].join("\n");
}
