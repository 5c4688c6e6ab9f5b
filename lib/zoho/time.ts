/**
 * Zoho's datetime format: ISO-8601 to the second with a numeric offset ("2025-07-25T15:26:49+05:30").
 * Zoho rejects milliseconds and "Z", so write-back values and If-Modified-Since use this.
 */
export function zohoDateTime(at: Date | number | string): string {
  const ms = at instanceof Date ? at.getTime() : typeof at === "number" ? at : Date.parse(at);
  if (Number.isNaN(ms)) throw new RangeError("not a valid date-time");
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

/** Seconds since the epoch of a Zoho datetime (second precision, as Zoho compares them). */
export function zohoSeconds(value: string): number {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? NaN : Math.floor(ms / 1000);
}
