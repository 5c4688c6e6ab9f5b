/**
 * Exact decimal arithmetic for money. Amounts are BigInt counts of 10^-dp units, read from a number's
 * shortest decimal form, so 1.005 is exactly 1.005 (not 1.00499999…) and rounding half away from zero
 * gives what a person (and Zoho, and Xero) would write down.
 */

const pow10 = (n: number): bigint => 10n ** BigInt(n);

/** Divides with rounding half away from zero. */
function divRound(n: bigint, d: bigint): bigint {
  const neg = n < 0n;
  const a = neg ? -n : n;
  const q = (a + d / 2n) / d;
  return neg ? -q : q;
}

/** `x` in units of 10^-dp, rounded half away from zero. */
export function toUnits(x: number, dp: number): bigint {
  if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(x));
  if (!m) throw new RangeError(`cannot read ${x} as a decimal`);
  const [, sign, int, frac = "", exp = "0"] = m;
  const digits = BigInt(int + frac);
  const shift = Number(exp) - frac.length + dp;
  const units = shift >= 0 ? digits * pow10(shift) : divRound(digits, pow10(-shift));
  return sign ? -units : units;
}

/** Back to a number (exact for |units| < 2^53: one correctly rounded division). */
export function fromUnits(units: bigint, dp: number): number {
  return Number(units) / 10 ** dp;
}

/** Changes the scale of a units value, rounding half away from zero when it shrinks. */
export function rescale(units: bigint, fromDp: number, toDp: number): bigint {
  return toDp >= fromDp ? units * pow10(toDp - fromDp) : divRound(units, pow10(fromDp - toDp));
}

export function roundTo(x: number, dp: number): number {
  return fromUnits(toUnits(x, dp), dp);
}

/** Line amount in cents: quantity × unit amount (each at 4 dp), rounded to 2 dp as Xero does. */
export function lineAmountCents(quantity: number, unitAmount: number): bigint {
  return rescale(toUnits(quantity, 4) * toUnits(unitAmount, 4), 8, 2);
}

/** Unrounded tax on an amount in cents at a percentage (up to 6 dp), in units of 10^-10. */
export function taxExact(amountCents: bigint, percentage: number): bigint {
  // cents(2) × percent(6) = scale 8; ÷ 100 for "percent" = scale 10.
  return amountCents * toUnits(percentage, 6);
}

/** Tax in cents on an amount in cents at a percentage (up to 6 dp), rounded to 2 dp. */
export function taxCents(amountCents: bigint, percentage: number): bigint {
  return rescale(taxExact(amountCents, percentage), 10, 2);
}

/** "1234.5" → "1,234.50": amounts in reasons and warnings, as a Zoho user reads them. */
export function formatMoney(x: number): string {
  const cents = toUnits(x, 2);
  const neg = cents < 0n;
  const abs = neg ? -cents : cents;
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const frac = (abs % 100n).toString().padStart(2, "0");
  return `${neg ? "-" : ""}${whole}.${frac}`;
}
