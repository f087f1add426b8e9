import dns from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';

// Webhook targets are URLs typed by a workspace admin and fetched by the server: without a guard
// they reach the server's own network (loopback, the cloud metadata address, private ranges).
// A target is checked when it is saved and again when it is sent to, on the very addresses the
// connection uses, so a name that resolves elsewhere later (DNS rebinding) is refused too.

export const URL_MAX = 2048;

/** A webhook target the server refuses to send to; the message says why. */
export class RefusedTargetError extends Error {
  readonly code = 'WEBHOOK_TARGET_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'RefusedTargetError';
  }
}

// The ranges are ipaddr.js's (its `range()`); these say which of them are public and, for the
// others, what to call them in a message. A range not listed here (a new one in a later ipaddr.js)
// is refused: an address is public only when it is known to be.
const V4_PUBLIC = new Set(['unicast', 'as112', 'amt']);
const V6_PUBLIC = new Set(['unicast', 'as112v6']);
const REASONS: Record<string, string> = {
  unspecified: 'unspecified',
  broadcast: 'reserved (limited broadcast)',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'shared (carrier-grade NAT)',
  private: 'private',
  reserved: 'reserved (IETF protocol assignments, documentation, benchmarking or future use)',
  uniqueLocal: 'private (unique local)',
  deprecatedSiteLocal: 'site-local',
  discard: 'reserved (discard-only)',
  benchmarking: 'reserved for benchmarking',
  amt: 'reserved (IETF protocol assignments)',
  orchid2: 'reserved (ORCHID identifiers)',
  deprecatedOrchid: 'reserved (ORCHID identifiers)',
  droneRemoteIdProtocolEntityTags: 'reserved (drone remote ID tags)',
  segmentRouting: 'reserved (segment routing)',
};
const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');
const NAT64_LOCAL = ipaddr.IPv6.parseCIDR('64:ff9b:1::/48');

const reasonFor = (range: string): string => REASONS[range] ?? `special-purpose (${range})`;

function refusedV4(address: ipaddr.IPv4): string | null {
  const range = address.range();
  return V4_PUBLIC.has(range) ? null : reasonFor(range);
}

/** The IPv4 address in groups `hi` and `lo` of an IPv6 address. */
const embeddedV4 = (parts: number[], hi: number, lo: number, mask = 0): ipaddr.IPv4 =>
  new ipaddr.IPv4(
    [parts[hi]! >> 8, parts[hi]! & 0xff, parts[lo]! >> 8, parts[lo]! & 0xff].map((octet) => (octet ^ mask) & 0xff),
  );

/** An IPv6 address that reaches an IPv4 one is judged by that one, named in the reason. */
function throughV4(v4: ipaddr.IPv4, how: string): string | null {
  const reason = refusedV4(v4);
  return reason && `${reason} (${v4.toString()} ${how})`;
}

function refusedV6(address: ipaddr.IPv6): string | null {
  const range = address.range() as string; // ipaddr.js's type lists fewer ranges than it returns
  const parts = address.parts;
  switch (range) {
    case 'ipv4Mapped':
      return throughV4(address.toIPv4Address(), 'mapped to IPv6');
    case 'rfc6145':
      return throughV4(embeddedV4(parts, 6, 7), 'translated to IPv6');
    case 'rfc6052':
      // 64:ff9b::/96 carries the IPv4 address in its last 32 bits; 64:ff9b:1::/48 is for
      // translators into private networks, its very purpose: refused.
      return address.match(NAT64_LOCAL)
        ? 'private (local-use NAT64)'
        : throughV4(embeddedV4(parts, 6, 7), 'through NAT64');
    case '6to4':
      return throughV4(embeddedV4(parts, 1, 2), 'through 6to4');
    case 'teredo':
      // 2001::/32 is a tunnel: where a packet ends up is the relay's choice (its server and client
      // addresses inside are no promise), and no webhook receiver needs one. Refused outright.
      return 'a Teredo tunnel address (2001::/32)';
  }
  if (!V6_PUBLIC.has(range)) return reasonFor(range);
  // ipaddr.js calls everything it does not name unicast; outside 2000::/3 nothing is assigned.
  if (!address.match(GLOBAL_UNICAST)) return 'reserved (not global unicast)';
  return null;
}

/**
 * The address in hexadecimal groups, as the WHATWG URL parser writes it (zone id dropped):
 * ipaddr.js reads the deprecated IPv4-compatible form `::a.b.c.d` as IPv4-mapped `::ffff:a.b.c.d`.
 */
const hexIPv6 = (address: string): string => new URL(`http://[${address.replace(/%.*$/, '')}]`).hostname.slice(1, -1);

/**
 * Why an IP address may not be a webhook target (loopback, private, link-local, multicast,
 * unspecified, reserved…), or null for a public address. Anything that is not an IP is refused.
 */
export function refusedAddressReason(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, '');
  // net.isIP first: ipaddr.js also reads forms such as "127.1" or "0x7f.1" that are not addresses here.
  if (net.isIPv4(bare)) return refusedV4(ipaddr.IPv4.parse(bare));
  if (net.isIPv6(bare)) return refusedV6(ipaddr.IPv6.parse(hexIPv6(bare)));
  return 'not an IP address';
}

export type Resolve = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemResolve: Resolve = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

export interface UrlCheckOptions {
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS: skip the address checks (the scheme is still checked). */
  allowPrivateTargets: boolean;
  /** Name resolution (tests inject one); default: the system resolver, as connections use it. */
  resolve?: Resolve;
}

/** A webhook URL that cannot be used: `problem` is a sentence for people. */
export class InvalidWebhookUrl extends Error {
  constructor(readonly problem: string) {
    super(problem);
    this.name = 'InvalidWebhookUrl';
  }
}

/**
 * Parse and check a webhook URL: http or https, no credentials, at most URL_MAX characters and,
 * unless private targets are allowed, a host that is (or resolves only to) public addresses.
 * Returns the normalized URL; throws InvalidWebhookUrl.
 */
export async function checkWebhookUrl(raw: string, options: UrlCheckOptions): Promise<string> {
  const text = raw.trim();
  if (text.length === 0) throw new InvalidWebhookUrl('A webhook URL is required.');
  if (text.length > URL_MAX) throw new InvalidWebhookUrl(`A webhook URL must be at most ${URL_MAX} characters long.`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidWebhookUrl(`"${text.slice(0, 100)}" is not an absolute URL: use https://… (or http://…).`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InvalidWebhookUrl(
      `Only http and https URLs can receive webhooks, not ${url.protocol.replace(/:$/, '')}.`,
    );
  }
  if (url.username || url.password) {
    throw new InvalidWebhookUrl(
      'A webhook URL may not contain a user name or password: verify requests with the Refgraph-Signature header instead.',
    );
  }
  if (!url.hostname) throw new InvalidWebhookUrl('A webhook URL needs a host.');
  if (!options.allowPrivateTargets) await checkHost(url.hostname, options.resolve ?? systemResolve);
  return url.href;
}

async function checkHost(hostname: string, resolve: Resolve): Promise<void> {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) {
    const reason = refusedAddressReason(host);
    if (reason)
      throw new InvalidWebhookUrl(`${host} is a ${reason} address: webhooks are only sent to public addresses.`);
    return;
  }
  let addresses: Array<{ address: string }>;
  try {
    addresses = await resolve(host);
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new InvalidWebhookUrl(
      code === 'ENOTFOUND' || code === 'ENODATA'
        ? `The host ${host} does not resolve to any address.`
        : `The host ${host} could not be resolved right now (${code ?? 'DNS error'}); check it and try again.`,
    );
  }
  if (addresses.length === 0) throw new InvalidWebhookUrl(`The host ${host} does not resolve to any address.`);
  for (const { address } of addresses) {
    const reason = refusedAddressReason(address);
    if (reason)
      throw new InvalidWebhookUrl(
        `The host ${host} resolves to ${address}, a ${reason} address: webhooks are only sent to public addresses.`,
      );
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http(s).request that resolves like the system does and refuses non-public
 * addresses: the connection goes to exactly the addresses checked here.
 */
export function guardedLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const list = addresses as dns.LookupAddress[];
    for (const { address } of list) {
      const reason = refusedAddressReason(address);
      if (reason)
        return callback(new RefusedTargetError(`refused: ${hostname} resolves to ${address}, a ${reason} address`), []);
    }
    if (list.length === 0)
      return callback(Object.assign(new Error(`${hostname} does not resolve`), { code: 'ENOTFOUND' }), []);
    if (options.all) return callback(null, list);
    return callback(null, list[0]!.address, list[0]!.family);
  });
}
