/**
 * Where referral links send visitors: programs' and links' destination URLs, and the hosts a
 * program lets partners choose (`Program.allowedDestinationHosts`).
 */

export const DESTINATION_URL_MAX = 2048;

/**
 * The form a destination URL is stored in: its WHATWG serialisation (`new URL(text).href`), so the
 * redirect's `Location` is exactly what was checked. That form has no raw tab, CR or LF (the
 * parser drops them), no other control or non-ASCII character (percent-encoded; host names in
 * punycode), a lower-case scheme and host, and no default port. Refused: anything but an absolute
 * http(s) URL with a host, a user name or password (`https://trusted.example@evil.example/` is a
 * phishing device; browsers warn about or strip it), and more than DESTINATION_URL_MAX characters
 * before or after serialisation.
 */
export function normalizeDestinationUrl(text: string): { href: string; hostname: string } | { problem: string } {
  const trimmed = text.trim();
  const invalid = { problem: 'A destination URL must be an absolute http:// or https:// URL.' };
  const tooLong = { problem: `A destination URL must be at most ${DESTINATION_URL_MAX} characters long.` };
  if (trimmed.length > DESTINATION_URL_MAX) return tooLong;
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return invalid;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) return invalid;
  if (url.username || url.password)
    return { problem: 'A destination URL must not contain a user name or password ("user:password@").' };
  if (url.href.length > DESTINATION_URL_MAX) return tooLong; // percent-encoding made it longer
  return { href: url.href, hostname: url.hostname };
}

/** At most this many entries in a program's allowedDestinationHosts (a check constraint mirrors it). */
export const ALLOWED_HOSTS_MAX = 50;

/** Letters (punycode for IDNs), digits, "-" and "_" in dot-separated labels of 1–63 characters. */
const DNS_NAME = /^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const HOST_TEXT = /^(?:[^\s/\\?#@:[\]%]+|\[[0-9A-Fa-f:.]+\])$/;

/**
 * An entry of `allowedDestinationHosts` in its stored form, or why it is not one. An entry is a
 * host name (`shop.example.com`; IDN allowed, stored as punycode), an IP address (`192.0.2.7`,
 * `[2001:db8::1]`), or `*.` and a domain of at least two labels (`*.example.com`: every subdomain,
 * at any depth, but not example.com itself — list both for both). No scheme, port, path or user
 * name: a port is never compared (a link may use any port of an allowed host). Lower-cased;
 * a trailing dot is dropped.
 */
export function normalizeHostPattern(text: string): { pattern: string } | { problem: string } {
  const shown = JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
  let rest = text.trim().toLowerCase();
  const wildcard = rest.startsWith('*.');
  if (wildcard) rest = rest.slice(2);
  if (rest.endsWith('.')) rest = rest.slice(0, -1);
  const usage =
    'a host name such as "shop.example.com", "*.example.com" for its subdomains, or an IP address; no scheme, port or path';
  if (rest.length === 0 || rest.length > 253 || !HOST_TEXT.test(rest)) return { problem: `${shown} is not ${usage}.` };
  let hostname: string;
  try {
    hostname = new URL(`http://${rest}/`).hostname;
  } catch {
    return { problem: `${shown} is not ${usage}.` };
  }
  const isIp = hostname.startsWith('[') || /^\d+(\.\d+){3}$/.test(hostname);
  if (!isIp && !DNS_NAME.test(hostname)) return { problem: `${shown} is not ${usage}.` };
  if (wildcard && isIp) return { problem: `${shown}: "*." goes with a domain name, not an IP address.` };
  if (wildcard && !hostname.includes('.'))
    return { problem: `${shown}: a wildcard needs a domain of at least two labels, e.g. "*.example.com".` };
  return { pattern: wildcard ? `*.${hostname}` : hostname };
}

/** Does `hostname` (a parsed URL's) match one of the patterns (normalizeHostPattern's form)? */
export function hostAllowed(hostname: string, patterns: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return patterns.some((pattern) => (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern));
}

/**
 * The hosts a partner's link of a program may point at: the program's list, or when it is empty
 * the host of the program's destination URL, else the host of PUBLIC_URL (where its links go by
 * default).
 */
export function effectiveDestinationHosts(
  program: { allowedDestinationHosts: readonly string[]; destinationUrl: string | null },
  publicUrl: string,
): string[] {
  if (program.allowedDestinationHosts.length > 0) return [...program.allowedDestinationHosts];
  const fallback = program.destinationUrl ?? publicUrl;
  try {
    return [new URL(fallback).hostname.replace(/\.$/, '')];
  } catch {
    return [];
  }
}
