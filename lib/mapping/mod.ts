/**
 * The pure mapping core: a Zoho purchase order in, eligibility reasons or a Xero bill out. No I/O.
 */
export * from "./settings.ts";
export * from "./purchase_order.ts";
export * from "./bill.ts";
export { formatMoney, roundTo } from "./money.ts";
