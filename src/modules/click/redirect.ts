import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';
import { normalizeIp, type ClickRecorder } from './click.service.js';

/** The path prefix of referral links: `GET /r/{code}`. */
export const REDIRECT_PREFIX = '/r/';

export interface RedirectDeps {
  clicks: ClickRecorder;
  config: Pick<Config, 'publicUrl' | 'trustProxy'>;
  logger: Logger;
}

const COMMON_HEADERS = {
  'cache-control': 'no-store',
  // The destination learns the origin of the page that linked here, never its full URL.
  'referrer-policy': 'strict-origin-when-cross-origin',
  'x-content-type-options': 'nosniff',
  'x-robots-tag': 'noindex, nofollow',
} as const;

/**
 * `GET /r/{code}`: records a click and answers 302 to the link's destination (its own, else its
 * program's, else PUBLIC_URL) with `ref={code}` and `rg_click={clickId}` added to the query
 * string. Unknown or disabled code: 404 page, nothing recorded. `HEAD` answers the same way
 * without recording a click (nor adding `rg_click`): link checkers and unfurlers send it.
 * One database statement at most (the link lookup, itself cached briefly); the click row is
 * written in the background.
 */
export async function serveRedirect(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  deps: RedirectDeps,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...COMMON_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('Referral links answer GET.\n');
    return;
  }
  const code = codeFromPath(path);
  let link: Awaited<ReturnType<typeof deps.clicks.findLink>>;
  try {
    link = code === null ? null : await deps.clicks.findLink(code);
  } catch (error) {
    deps.logger.error({ err: error }, 'referral link lookup failed');
    return page(
      res,
      503,
      'Try again in a moment',
      'This link cannot be followed right now. Please try again in a moment.',
      { 'retry-after': '5' },
    );
  }
  if (!link || link.disabled) {
    return page(res, 404, 'Link not found', 'This referral link does not exist or is no longer active.');
  }

  const destination = destinationOf(link.destinationUrl, deps);
  const params: Array<[string, string]> = [['ref', link.code]];
  if (req.method === 'GET') {
    const click = await deps.clicks.record(link, {
      ip: visitorIp(req, deps.config.trustProxy),
      userAgent: header(req, 'user-agent'),
      referrerUrl: header(req, 'referer'),
      landingUrl: destination,
    });
    params.push(['rg_click', click.clickId]);
  }
  res.writeHead(302, { ...COMMON_HEADERS, location: withParams(destination, params), 'content-length': '0' });
  res.end();
}

/** The code in `/r/{code}` (one path segment, percent-decoded; a trailing slash allowed), or null. */
export function codeFromPath(path: string): string | null {
  let raw = path.slice(REDIRECT_PREFIX.length);
  if (raw.endsWith('/')) raw = raw.slice(0, -1);
  if (raw === '' || raw.includes('/')) return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/** The visitor's IP: the socket's peer, or behind a trusted proxy the first X-Forwarded-For hop. */
export function visitorIp(req: IncomingMessage, trustProxy: boolean): string | null {
  if (trustProxy) {
    const forwarded = header(req, 'x-forwarded-for')?.split(',')[0];
    const ip = forwarded ? normalizeIp(forwarded) : null;
    if (ip) return ip;
  }
  return req.socket.remoteAddress ?? null;
}

/**
 * `destination` with `params` set in its query string. The existing query is kept as written
 * (pairs with the same names as `params` are replaced), and so is the fragment.
 *
 * Parsing and re-serializing the URL is done once per destination and parameter names (a few per
 * program): the result is kept as a template with the values' places marked, and each click only
 * fills the values in. A link is followed many times; its URL work need not be repeated.
 */
export function withParams(destination: string, params: Array<[string, string]>): string {
  const template = urlTemplate(
    destination,
    params.map(([name]) => name),
  );
  if (template === null) return serialize(destination, params);
  let href = template[0]!;
  for (let i = 0; i < params.length; i++) href += encodeURIComponent(params[i]![1]) + template[i + 1]!;
  return href;
}

/** Destinations remembered at most (a bound on memory; they are few in practice). */
const TEMPLATE_CACHE_MAX = 1000;
const templates = new Map<string, string[]>();
/** Marks a value's place; letters and digits only, so URL serialization leaves it as it is. */
const SLOT = 'RGSLOT7Q3X';

/**
 * The href of `destination` with `names` set, split at the values' places: [before, between…,
 * after]; null for the odd destination that contains the marker itself.
 */
function urlTemplate(destination: string, names: string[]): string[] | null {
  const key = `${names.join('&')} ${destination}`;
  let template = templates.get(key);
  if (template === undefined) {
    template = serialize(
      destination,
      names.map((name) => [name, SLOT]),
    ).split(SLOT);
    if (template.length !== names.length + 1) return null;
    if (templates.size >= TEMPLATE_CACHE_MAX) templates.clear();
    templates.set(key, template);
  }
  return template;
}

function serialize(destination: string, params: Array<[string, string]>): string {
  const url = new URL(destination);
  const names = new Set(params.map(([name]) => name));
  const kept = url.search
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '' && !names.has(decodeName(pair)));
  for (const [name, value] of params) kept.push(`${name}=${encodeURIComponent(value)}`);
  url.search = kept.join('&');
  return url.href;
}

function decodeName(pair: string): string {
  const name = pair.split('=', 1)[0]!;
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/** An absolute http(s) URL to send the visitor to; PUBLIC_URL when there is none or it is unusable. */
function destinationOf(configured: string | null, deps: RedirectDeps): string {
  if (configured) {
    const usable = usableDestinations.get(configured) ?? checkDestination(configured);
    if (usable !== false) return usable;
    deps.logger.warn({ destinationUrl: configured }, 'unusable destination URL; redirecting to PUBLIC_URL');
  }
  return deps.config.publicUrl;
}

/** Configured destination → its normalized href, or false when it is not an absolute http(s) URL. */
const usableDestinations = new Map<string, string | false>();

function checkDestination(configured: string): string | false {
  let usable: string | false = false;
  try {
    const url = new URL(configured);
    if (url.protocol === 'http:' || url.protocol === 'https:') usable = url.href;
  } catch {
    // not a URL
  }
  if (usableDestinations.size >= TEMPLATE_CACHE_MAX) usableDestinations.clear();
  usableDestinations.set(configured, usable);
  return usable;
}

function header(req: IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function page(
  res: ServerResponse,
  status: number,
  title: string,
  text: string,
  extra: Record<string, string> = {},
): void {
  const body =
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head>` +
    `<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">` +
    `<h1>${title}</h1><p>${text}</p></body></html>\n`;
  res.writeHead(status, {
    ...COMMON_HEADERS,
    ...extra,
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
  });
  res.end(body);
}
