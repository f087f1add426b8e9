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

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The instant `text` names, or why it names none (a sentence for the client). */
export function parseDateTime(text: string): { date: Date } | { problem: string } {
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  const match = FORMAT.exec(text);
  if (!match) return { problem: `DateTime must be an ISO 8601 date and time, ${EXAMPLE}; got ${shown}.` };
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  if (h !== undefined && zulu === undefined && sign === undefined) {
    return { problem: `DateTime ${shown} has no time zone: add "Z" for UTC or an offset such as "+02:00".` };
  }
  if (month < 1 || month > 12) return { problem: `DateTime ${shown} is not a date: there is no month ${month}.` };
  if (day < 1 || day > daysIn(year, month)) {
    return {
      problem: `DateTime ${shown} is not a date: ${MONTHS[month - 1]} ${year} has ${daysIn(year, month)} days.`,
    };
  }
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  if (hour > 23 || minute > 59 || second > 59) {
    return {
      problem: `DateTime ${shown} is not a time of day: hours go from 00 to 23, minutes and seconds from 00 to 59.`,
    };
  }
  const offsetHours = Number(oh ?? 0);
  const offsetMinutes = Number(om ?? 0);
  if (offsetHours > 23 || offsetMinutes > 59)
    return { problem: `DateTime ${shown} has an impossible offset from UTC.` };
  const millis = Number((fraction ?? '').padEnd(3, '0').slice(0, 3));
  const offsetMs = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  // Date.UTC reads years 0–99 as 1900–1999; setUTCFullYear does not.
  const local = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, millis));
  local.setUTCFullYear(year);
  const date = new Date(local.getTime() - offsetMs);
  if (!(date >= DATETIME_MIN && date <= DATETIME_MAX)) {
    return {
      problem: `DateTime ${shown} is out of range: from ${DATETIME_MIN.toISOString()} to ${DATETIME_MAX.toISOString()}.`,
    };
  }
  return { date };
}
