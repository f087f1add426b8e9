import { GraphQLDateTime } from 'graphql-scalars';

/**
 * The text form of the `DateTime` scalar: ISO 8601 / RFC 3339 instants that name one real moment.
 *
 * Accepted:
 * - `2026-01-31T12:00:00Z`, with or without fractional seconds (1–9 digits; kept to the
 *   millisecond, further digits are dropped), seconds optional (`2026-01-31T12:00Z`);
 * - a UTC offset instead of `Z`: `2026-01-31T14:00:00+02:00` (`-00:00` is UTC);
 * - `t`, `z` and a space instead of `T` (RFC 3339 allows them);
 * - a date alone, `2026-01-31`: midnight UTC that day.
 *
 * Refused: a time without `Z` or an offset (its meaning would depend on the server's time zone),
 * dates that do not exist (`2026-02-30`, month 13, hour 24, second 60), years that are not four
 * digits, and instants outside DATETIME_MIN…DATETIME_MAX. Narrower ranges (a conversion's
 * `occurredAt`) are the domain's to check.
 *
 * graphql-scalars' `DateTime` (RFC 3339) reads the instant and says whether it exists; this module
 * adds the forms above, the range, and the reason for a refusal that its messages do not give.
 */

/** The earliest instant a DateTime input may name. */
export const DATETIME_MIN = new Date('1970-01-01T00:00:00.000Z');
/** The latest instant a DateTime input may name. */
export const DATETIME_MAX = new Date('9999-12-31T23:59:59.999Z');

const FORMAT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2}):(\d{2}))?)?$/;

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

const EXAMPLE = 'e.g. "2026-01-31T12:00:00Z", "2026-01-31T14:00:00.250+02:00" or "2026-01-31"';

/** The instant `text` names, or why it names none (a sentence for the client). */
export function parseDateTime(text: string): { date: Date } | { problem: string } {
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  const match = FORMAT.exec(text);
  if (!match) return { problem: `DateTime must be an ISO 8601 date and time, ${EXAMPLE}; got ${shown}.` };
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = match;
  if (h !== undefined && zulu === undefined && sign === undefined) {
    return { problem: `DateTime ${shown} has no time zone: add "Z" for UTC or an offset such as "+02:00".` };
  }
  // What this scalar accepts beyond RFC 3339 (a date alone, no seconds, a space for T) written as
  // RFC 3339; graphql-scalars' DateTime decides whether that names a real instant, and reads it.
  const rfc3339 =
    `${y}-${mo}-${d}T${h ?? '00'}:${mi ?? '00'}:${s ?? '00'}` +
    `${fraction === undefined ? '' : `.${fraction}`}${sign === undefined ? 'Z' : `${sign}${oh}:${om}`}`;
  let date: Date;
  try {
    date = GraphQLDateTime.parseValue(rfc3339) as Date;
  } catch {
    return { problem: whyNoInstant(shown, match) };
  }
  if (!(date >= DATETIME_MIN && date <= DATETIME_MAX)) {
    return {
      problem: `DateTime ${shown} is out of range: from ${DATETIME_MIN.toISOString()} to ${DATETIME_MAX.toISOString()}.`,
    };
  }
  return { date };
}

/** Why a well-formed DateTime that graphql-scalars refused names no instant: the part that does not exist. */
function whyNoInstant(shown: string, match: RegExpExecArray): string {
  const [, y, mo, d, h, mi, s, , , , oh, om] = match.map((part) => (part === undefined ? 0 : Number(part)));
  const [year, month, day] = [y!, mo!, d!];
  if (month < 1 || month > 12) return `DateTime ${shown} is not a date: there is no month ${month}.`;
  const days = month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day < 1 || day > days) return `DateTime ${shown} is not a date: ${MONTHS[month - 1]} ${year} has ${days} days.`;
  if (h! > 23 || mi! > 59 || s! > 59) {
    return `DateTime ${shown} is not a time of day: hours go from 00 to 23, minutes and seconds from 00 to 59.`;
  }
  if (oh! > 23 || om! > 59) return `DateTime ${shown} has an impossible offset from UTC.`;
  return `DateTime ${shown} does not name an instant.`;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeapYear = (year: number): boolean => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
