import dns from 'node:dns';
import net from 'node:net';

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

type V4Range = [base: number, bits: number, reason: string];

const v4 = (address: string): number => address.split('.').reduce((n, part) => n * 256 + Number(part), 0);

const V4_REFUSED: V4Range[] = [
  [v4('0.0.0.0'), 8, 'unspecified ("this network")'],
  [v4('10.0.0.0'), 8, 'private'],
  [v4('100.64.0.0'), 10, 'shared (carrier-grade NAT)'],
  [v4('127.0.0.0'), 8, 'loopback'],
  [v4('169.254.0.0'), 16, 'link-local'],
  [v4('172.16.0.0'), 12, 'private'],
  [v4('192.0.0.0'), 24, 'reserved (IETF protocol assignments)'],
  [v4('192.0.2.0'), 24, 'reserved for documentation'],
  [v4('192.168.0.0'), 16, 'private'],
  [v4('198.18.0.0'), 15, 'reserved for benchmarking'],
  [v4('198.51.100.0'), 24, 'reserved for documentation'],
  [v4('203.0.113.0'), 24, 'reserved for documentation'],
  [v4('224.0.0.0'), 4, 'multicast'],
  [v4('240.0.0.0'), 4, 'reserved (or broadcast)'],
];

function refusedV4(value: number): string | null {
  for (const [base, bits, reason] of V4_REFUSED) {
    const size = 2 ** (32 - bits);
    if (value >= base && value < base + size) return reason;
  }
  return null;
}

/** The eight 16-bit groups of an IPv6 address (zone id dropped; a dotted IPv4 tail allowed); null if malformed. */
export function ipv6Groups(address: string): number[] | null {
  let text = address.replace(/%.*$/, '');
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    if (net.isIPv4(tail[1]!) === false) return null;
    const n = v4(tail[1]!);
    text = `${text.slice(0, -tail[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string) =>
    part === '' ? [] : part.split(':').map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? head.length !== 8 : missing < 1) return null;
  const groups = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...rest];
  return groups.some((g) => Number.isNaN(g)) ? null : groups;
}

function refusedV6(address: string): string | null {
  const g = ipv6Groups(address);
  if (!g) return 'not a valid IPv6 address';
  const embeddedV4 = (hi: number, lo: number) => hi * 65536 + lo;
  if (g.every((x) => x === 0)) return 'unspecified';
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback';
  // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) reach an IPv4 address: judge that one.
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return refusedV4(embeddedV4(g[6]!, g[7]!));
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0))
    return refusedV4(embeddedV4(g[6]!, g[7]!));
  if ((g[0]! & 0xfe00) === 0xfc00) return 'private (unique local)';
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0]! & 0xffc0) === 0xfec0) return 'site-local';
  if ((g[0]! & 0xff00) === 0xff00) return 'multicast';
  // Everything else outside global unicast (2000::/3) is reserved or special-purpose.
  if ((g[0]! & 0xe000) !== 0x2000) return 'reserved (not global unicast)';
  if (g[0] === 0x2001 && g[1] === 0x0db8) return 'reserved for documentation';
  if (g[0] === 0x2001 && g[1]! < 0x0200) return 'reserved (IETF protocol assignments, Teredo)';
  // 6to4 (2002:a.b.c.d::/48) reaches the embedded IPv4 address.
  if (g[0] === 0x2002) return refusedV4(embeddedV4(g[1]!, g[2]!));
  return null;
}

/**
 * Why an IP address may not be a webhook target (loopback, private, link-local, multicast,
 * unspecified, reserved…), or null for a public address. Anything that is not an IP is refused.
 */
export function refusedAddressReason(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, '');
  if (net.isIPv4(bare)) return refusedV4(v4(bare));
  if (net.isIPv6(bare)) return refusedV6(bare);
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
