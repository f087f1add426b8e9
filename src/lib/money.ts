import { DomainError } from '../domain/errors.js';

/** Money as the database keeps it: integer minor units of an ISO 4217 currency. */
export interface Money {
  amount: bigint;
  currency: string;
}

const KNOWN = new Set(Intl.supportedValuesOf('currency'));
const DIGITS = new Map<string, number>();

/** Is this a known ISO 4217 code (upper case)? */
export function isCurrency(code: string): boolean {
  return /^[A-Z]{3}$/.test(code) && KNOWN.has(code);
}

/** Minor-unit digits of a currency: USD 2, JPY 0, KWD 3. */
export function currencyDigits(currency: string): number {
  let digits = DIGITS.get(currency);
  if (digits === undefined) {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    DIGITS.set(currency, digits);
  }
  return digits;
}

/** A currency code as given by a client, validated and upper-cased, or a VALIDATION error on `field`. */
export function parseCurrency(value: string, field: string[]): string {
  const code = value.trim().toUpperCase();
  if (!isCurrency(code)) {
    throw new DomainError(
      'VALIDATION',
      `"${value}" is not a known ISO 4217 currency code (e.g. USD, EUR, JPY).`,
      field,
    );
  }
  return code;
}

/**
 * "12.50" in `currency` → 1250n. Refuses more decimals than the currency has ("1.005" USD) rather
 * than rounding someone's money silently.
 */
export function parseDecimal(amount: string, currency: string, field: string[]): bigint {
  const match = /^(-)?(\d+)(?:\.(\d+))?$/.exec(amount.trim());
  if (!match) throw new DomainError('VALIDATION', `"${amount}" is not a decimal amount such as "12.50".`, field);
  const [, sign, whole, fraction = ''] = match;
  const digits = currencyDigits(currency);
  if (fraction.replace(/0+$/, '').length > digits) {
    throw new DomainError(
      'VALIDATION',
      `${currency} amounts have at most ${digits} decimal places; got "${amount}".`,
      field,
    );
  }
  const minor = BigInt(whole! + fraction.padEnd(digits, '0').slice(0, digits));
  if (minor > 10n ** 15n) throw new DomainError('VALIDATION', `"${amount}" is too large.`, field);
  return sign ? -minor : minor;
}

/** 1250n USD → "12.50"; -5n USD → "-0.05"; 1500n JPY → "1500". */
export function formatMinor(minor: bigint, currency: string): string {
  const digits = currencyDigits(currency);
  const negative = minor < 0n;
  const abs = (negative ? -minor : minor).toString().padStart(digits + 1, '0');
  const text = digits === 0 ? abs : `${abs.slice(0, -digits)}.${abs.slice(-digits)}`;
  return negative ? `-${text}` : text;
}

/** Round half-up (away from zero for halves) of numerator/denominator, in integers. */
export function divideHalfUp(numerator: bigint, denominator: bigint): bigint {
  const negative = numerator < 0n !== denominator < 0n;
  const n = numerator < 0n ? -numerator : numerator;
  const d = denominator < 0n ? -denominator : denominator;
  const q = (n * 2n + d) / (d * 2n);
  return negative ? -q : q;
}
