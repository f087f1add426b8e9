// Where referral links may send visitors. A PARTNER token may create links (DOMAIN.md), so
// without a rule `/r/{code}` on the company's domain would be an open redirect: a partner's link
// may only point at a host its program allows (Program.allowedDestinationHosts; by default the
// host of the program's destination, else of PUBLIC_URL). ADMIN keys may point anywhere.
// Destination URLs are stored in their WHATWG serialisation, so a Location header never carries
// what was not checked (CR/LF, user:password@).
import { decodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, it } from 'vitest';
import {
  effectiveDestinationHosts,
  hostAllowed,
  normalizeDestinationUrl,
  normalizeHostPattern,
} from '../src/lib/destination-url.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const PUBLIC_URL = 'https://ref.example.org';

const fixture = useTwoWorkspaces({ env: { PUBLIC_URL }, names: ['Destinations A', 'Destinations B'] });

type Body = {
  data?: Record<string, any> | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
};
type UserError = { code: string; field: string[] | null; message: string };

const prisma = () => fixture.server.testDb.db.prisma;

const CREATE_LINK =
  'mutation($input: CreateReferralLinkInput!) { createReferralLink(input: $input) { link { id code destinationUrl } userErrors { code field message } } }';
const PROGRAM_FIELDS = 'id destinationUrl allowedDestinationHosts updatedAt';

async function createLink(
  token: string,
  input: { partnerId: string; programId: string; destinationUrl?: string | null; code?: string },
) {
  const res = (await fixture.gql(CREATE_LINK, { input }, token)) as Body;
  expect(res.errors, JSON.stringify(res)).toBeUndefined();
  return res.data!['createReferralLink'] as {
    link: { id: string; code: string; destinationUrl: string } | null;
    userErrors: UserError[];
  };
}

async function createProgram(input: Record<string, unknown>, token = fixture.admin) {
  const res = (await fixture.gql(
    `mutation($input: CreateProgramInput!) { createProgram(input: $input) { program { ${PROGRAM_FIELDS} } userErrors { code field message } } }`,
    { input: { name: 'Shop', type: 'AFFILIATE', currency: 'USD', ...input } },
    token,
  )) as Body;
  expect(res.errors, JSON.stringify(res)).toBeUndefined();
  return res.data!['createProgram'] as {
    program: { id: string; destinationUrl: string | null; allowedDestinationHosts: string[]; updatedAt: string } | null;
    userErrors: UserError[];
  };
}

async function updateProgram(input: Record<string, unknown>, token = fixture.admin) {
  const res = (await fixture.gql(
    `mutation($input: UpdateProgramInput!) { updateProgram(input: $input) { program { ${PROGRAM_FIELDS} } userErrors { code field message } } }`,
    { input },
    token,
  )) as Body;
  expect(res.errors, JSON.stringify(res)).toBeUndefined();
  return res.data!['updateProgram'] as {
    program: { id: string; destinationUrl: string | null; allowedDestinationHosts: string[]; updatedAt: string } | null;
    userErrors: UserError[];
  };
}

async function partnerToken(partnerId: string, token = fixture.admin): Promise<string> {
  const res = (await fixture.gql(
    'mutation($input: CreatePartnerTokenInput!) { createPartnerToken(input: $input) { token userErrors { code } } }',
    { input: { partnerId } },
    token,
  )) as Body;
  return res.data!['createPartnerToken'].token as string;
}

/** A program (rows written directly), an enrolled partner and that partner's token. */
async function setup(
  program: { destinationUrl?: string | null; allowedDestinationHosts?: string[] } = {},
  tenant: Tenant = fixture.tenant,
  enrollment: 'APPROVED' | 'PENDING' = 'APPROVED',
) {
  const f = factories(prisma(), tenant);
  const row = await f.program({
    destinationUrl: program.destinationUrl ?? null,
    allowedDestinationHosts: program.allowedDestinationHosts ?? [],
  });
  const partner = await f.partner();
  await f.enrollment({ programId: row.id, partnerId: partner.id, status: enrollment });
  const adminKey =
    tenant.workspaceId === fixture.ws.workspace.id
      ? tenant.mode === 'TEST'
        ? fixture.admin
        : fixture.liveAdmin
      : fixture.otherAdmin;
  return {
    programId: gid('Program', row.id),
    partnerId: gid('Partner', partner.id),
    token: await partnerToken(gid('Partner', partner.id), adminKey),
    row,
  };
}

/** Links and events of a tenant: a refused mutation leaves them as they were. */
async function counts(tenant: Tenant = fixture.tenant) {
  return {
    links: await prisma().referralLink.count({ where: tenant }),
    events: await prisma().event.count({ where: tenant }),
  };
}

describe('normalizeDestinationUrl', () => {
  it('stores the WHATWG serialisation: no raw tab, CR or LF, lower-case host, punycode, no default port', () => {
    const cases: Array<[string, string]> = [
      ['https://example.com', 'https://example.com/'],
      ['  HTTPS://Shop.Example.COM:443/a b?x=<y>#Frag  ', 'https://shop.example.com/a%20b?x=%3Cy%3E#Frag'],
      ['https://exa\r\nmple.com/pa\tth?q=1\r\n', 'https://example.com/path?q=1'],
      ['http://bücher.example/straße', 'http://xn--bcher-kva.example/stra%C3%9Fe'],
      ['http://example.com:8080/x', 'http://example.com:8080/x'],
      ['https://example.com/\u0001\u007f', 'https://example.com/%01%7F'],
    ];
    for (const [given, stored] of cases) {
      const result = normalizeDestinationUrl(given);
      expect('href' in result ? result.href : result.problem, JSON.stringify(given)).toBe(stored);
    }
  });

  it('refuses anything but an absolute http(s) URL without user name or password, of at most 2048 characters', () => {
    for (const given of [
      '',
      '   ',
      '/relative',
      'example.com',
      'javascript:alert(1)',
      'data:text/html,x',
      'mailto:a@example.com',
      'ftp://example.com/',
      'https://',
      'http://exa mple.com/',
    ]) {
      expect(normalizeDestinationUrl(given), JSON.stringify(given)).toEqual({
        problem: 'A destination URL must be an absolute http:// or https:// URL.',
      });
    }
    // 2048 characters as given, and once serialised (percent-encoding makes "é" six characters).
    expect(normalizeDestinationUrl(`https://example.com/?q=${'x'.repeat(2025)}`)).toEqual({
      href: expect.any(String),
      hostname: 'example.com',
    });
    for (const given of [`https://example.com/${'a'.repeat(2030)}`, `https://example.com/${'é'.repeat(700)}`]) {
      expect(normalizeDestinationUrl(given)).toEqual({
        problem: 'A destination URL must be at most 2048 characters long.',
      });
    }
    for (const given of [
      'https://user@example.com/',
      'https://shop.example.com:pw@evil.example.net/',
      'https://:pw@example.com/',
    ]) {
      expect(normalizeDestinationUrl(given), given).toEqual({
        problem: expect.stringContaining('user name or password'),
      });
    }
  });
});

describe('host patterns', () => {
  it('normalise host names, IP addresses and "*." domains, and refuse the rest', () => {
    const cases: Array<[string, string]> = [
      [' Shop.Example.COM ', 'shop.example.com'],
      ['*.Example.com', '*.example.com'],
      ['example.com.', 'example.com'],
      ['bücher.example', 'xn--bcher-kva.example'],
      ['*.co.uk', '*.co.uk'],
      ['192.0.2.7', '192.0.2.7'],
      ['[2001:DB8::1]', '[2001:db8::1]'],
      ['localhost', 'localhost'],
    ];
    for (const [given, pattern] of cases) expect(normalizeHostPattern(given), given).toEqual({ pattern });
    for (const given of [
      '',
      '*',
      '*.',
      '*.com',
      '*.192.0.2.7',
      'https://example.com',
      'example.com:8080',
      'example.com/path',
      'user@example.com',
      'exa mple.com',
      '*example.com',
      'ex*ample.com',
      '%65xample.com',
      'a'.repeat(254),
    ]) {
      expect(normalizeHostPattern(given), given).toEqual({ problem: expect.any(String) });
    }
  });

  it('match a destination host exactly, or a subdomain at any depth for "*."', () => {
    const patterns = ['shop.example.com', '*.example.net', '[2001:db8::1]'];
    for (const host of [
      'shop.example.com',
      'SHOP.example.com',
      'shop.example.com.',
      'a.example.net',
      'a.b.c.example.net',
      '[2001:db8::1]',
    ])
      expect(hostAllowed(host, patterns), host).toBe(true);
    for (const host of [
      'example.com',
      'www.shop.example.com',
      'shop.example.com.evil.org',
      'evilshop.example.com',
      'example.net',
      'evilexample.net',
      'example.net.evil.org',
      '[2001:db8::2]',
    ]) {
      expect(hostAllowed(host, patterns), host).toBe(false);
    }
  });

  it('default to the host of the program’s destination, else of PUBLIC_URL', () => {
    expect(
      effectiveDestinationHosts(
        { allowedDestinationHosts: [], destinationUrl: 'https://Shop.example.com:8443/x' },
        PUBLIC_URL,
      ),
    ).toEqual(['shop.example.com']);
    expect(effectiveDestinationHosts({ allowedDestinationHosts: [], destinationUrl: null }, PUBLIC_URL)).toEqual([
      'ref.example.org',
    ]);
    expect(
      effectiveDestinationHosts(
        { allowedDestinationHosts: ['*.example.com'], destinationUrl: 'https://shop.example.com/' },
        PUBLIC_URL,
      ),
    ).toEqual(['*.example.com']);
  });
});

describe('Program.allowedDestinationHosts', () => {
  it('is empty by default, stored normalised without duplicates, replaced by updateProgram and reset by null or []', async () => {
    expect((await createProgram({})).program!.allowedDestinationHosts).toEqual([]);
    const created = await createProgram({
      destinationUrl: 'https://Shop.Example.com',
      allowedDestinationHosts: [' Shop.Example.com ', '*.EXAMPLE.com', 'shop.example.com.', 'bücher.example'],
    });
    expect(created.userErrors).toEqual([]);
    expect(created.program).toMatchObject({
      destinationUrl: 'https://shop.example.com/',
      allowedDestinationHosts: ['shop.example.com', '*.example.com', 'xn--bcher-kva.example'],
    });
    const id = created.program!.id;

    const same = await updateProgram({
      id,
      allowedDestinationHosts: ['shop.example.com', '*.example.com', 'xn--bcher-kva.example'],
    });
    expect(same.program!.updatedAt).toBe(created.program!.updatedAt); // nothing changed: no write
    expect(
      (await updateProgram({ id, allowedDestinationHosts: ['partners.example.com'] })).program!.allowedDestinationHosts,
    ).toEqual(['partners.example.com']);
    expect((await updateProgram({ id, name: 'Renamed' })).program!.allowedDestinationHosts).toEqual([
      'partners.example.com',
    ]);
    expect((await updateProgram({ id, allowedDestinationHosts: null })).program!.allowedDestinationHosts).toEqual([]);
    await updateProgram({ id, allowedDestinationHosts: ['a.example.com'] });
    expect((await updateProgram({ id, allowedDestinationHosts: [] })).program!.allowedDestinationHosts).toEqual([]);
  });

  it('refuses bad entries one by one, and more than 50 (VALIDATION), changing nothing', async () => {
    const bad = await createProgram({
      allowedDestinationHosts: ['fine.example.com', 'https://example.com/x', '*', 'example.com:443'],
    });
    expect(bad).toEqual({
      program: null,
      userErrors: [1, 2, 3].map((i) => ({
        code: 'VALIDATION',
        field: ['input', 'allowedDestinationHosts', String(i)],
        message: expect.any(String),
      })),
    });
    const tooMany = await createProgram({
      allowedDestinationHosts: Array.from({ length: 51 }, (_, i) => `h${i}.example.com`),
    });
    expect(tooMany.userErrors).toEqual([
      {
        code: 'VALIDATION',
        field: ['input', 'allowedDestinationHosts'],
        message: expect.stringContaining('at most 50'),
      },
    ]);

    const { program } = await createProgram({ allowedDestinationHosts: ['kept.example.com'] });
    const refused = await updateProgram({
      id: program!.id,
      name: 'New name',
      allowedDestinationHosts: ['ok.example.com', 'not a host'],
    });
    expect(refused.userErrors).toEqual([
      {
        code: 'VALIDATION',
        field: ['input', 'allowedDestinationHosts', '1'],
        message: expect.stringContaining('"not a host"'),
      },
    ]);
    const row = await prisma().program.findUniqueOrThrow({ where: { id: decodeGlobalID(program!.id).id } });
    expect(row).toMatchObject({ name: 'Shop', allowedDestinationHosts: ['kept.example.com'] });
  });

  it('is not writable with a READ_ONLY key or a PARTNER token', async () => {
    const { programId, token } = await setup();
    const reader = (await fixture.gql(
      'mutation { createApiKey(input: { name: "reader", role: READ_ONLY }) { secret } }',
      {},
      fixture.admin,
    )) as Body;
    for (const credential of [reader.data!['createApiKey'].secret as string, token]) {
      const res = (await fixture.gql(
        'mutation($input: UpdateProgramInput!) { updateProgram(input: $input) { userErrors { code } } }',
        { input: { id: programId, allowedDestinationHosts: ['evil.example.net'] } },
        credential,
      )) as Body;
      expect(res.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN_FOR_ROLE');
    }
  });

  it('is visible to readers of the program only: its workspace and mode, and partners enrolled in it', async () => {
    const mine = await setup({ allowedDestinationHosts: ['shop.example.com'] });
    const notEnrolled = await setup();
    const query = `query($id: ID!) { node(id: $id) { ... on Program { allowedDestinationHosts } } }`;
    expect(((await fixture.gql(query, { id: mine.programId }, mine.token)) as Body).data).toEqual({
      node: { allowedDestinationHosts: ['shop.example.com'] },
    });
    expect(((await fixture.gql(query, { id: mine.programId }, notEnrolled.token)) as Body).data).toEqual({
      node: null,
    });
    expect(((await fixture.gql(query, { id: mine.programId }, fixture.liveAdmin)) as Body).data).toEqual({
      node: null,
    });
    expect(((await fixture.gql(query, { id: mine.programId }, fixture.otherAdmin)) as Body).data).toEqual({
      node: null,
    });
  });
});

describe('createReferralLink destinations', () => {
  it('lets a PARTNER token point only at the program’s destination host by default; VALIDATION names the allowed hosts; nothing is stored', async () => {
    const s = await setup({ destinationUrl: 'https://shop.example.com/welcome' });
    const ok = await createLink(s.token, {
      partnerId: s.partnerId,
      programId: s.programId,
      destinationUrl: 'https://SHOP.example.com:8443/deal?x=1',
    });
    expect(ok).toMatchObject({ link: { destinationUrl: 'https://shop.example.com:8443/deal?x=1' }, userErrors: [] });
    expect((await createLink(s.token, { partnerId: s.partnerId, programId: s.programId })).link!.destinationUrl).toBe(
      'https://shop.example.com/welcome',
    );

    const before = await counts();
    for (const destinationUrl of [
      'https://evil.example.net/',
      'https://example.com/',
      'https://www.shop.example.com/',
      'https://shop.example.com.evil.example.net/',
      'http://ref.example.org/',
    ]) {
      const refused = await createLink(s.token, {
        partnerId: s.partnerId,
        programId: s.programId,
        destinationUrl,
        code: 'never-stored',
      });
      expect(refused, destinationUrl).toEqual({
        link: null,
        userErrors: [
          {
            code: 'VALIDATION',
            field: ['input', 'destinationUrl'],
            message: expect.stringContaining('may only send visitors to shop.example.com;'),
          },
        ],
      });
    }
    expect(await counts()).toEqual(before);
  });

  it('falls back to PUBLIC_URL’s host for a program without destination', async () => {
    const s = await setup();
    expect(
      (
        await createLink(s.token, {
          partnerId: s.partnerId,
          programId: s.programId,
          destinationUrl: 'https://ref.example.org/landing',
        })
      ).userErrors,
    ).toEqual([]);
    expect(
      (
        await createLink(s.token, {
          partnerId: s.partnerId,
          programId: s.programId,
          destinationUrl: 'https://shop.example.com/',
        })
      ).userErrors[0]?.message,
    ).toContain('may only send visitors to ref.example.org;');
  });

  it('follows the program’s list when there is one: exact hosts, subdomains for "*.", any port', async () => {
    const s = await setup({
      destinationUrl: 'https://shop.example.com/',
      allowedDestinationHosts: ['*.example.com', 'partner-landing.example.net'],
    });
    for (const destinationUrl of [
      'https://a.example.com/',
      'https://a.b.example.com:8443/x',
      'http://partner-landing.example.net/',
    ]) {
      expect(
        (await createLink(s.token, { partnerId: s.partnerId, programId: s.programId, destinationUrl })).userErrors,
        destinationUrl,
      ).toEqual([]);
    }
    for (const destinationUrl of [
      'https://example.com/',
      'https://evilexample.com/',
      'https://x.partner-landing.example.net/',
      'https://ref.example.org/',
    ]) {
      const { userErrors } = await createLink(s.token, {
        partnerId: s.partnerId,
        programId: s.programId,
        destinationUrl,
      });
      expect(userErrors, destinationUrl).toEqual([
        {
          code: 'VALIDATION',
          field: ['input', 'destinationUrl'],
          message: expect.stringContaining('*.example.com, partner-landing.example.net'),
        },
      ]);
    }
  });

  it('lets ADMIN keys point anywhere (http or https), stored normalised', async () => {
    const s = await setup({ destinationUrl: 'https://shop.example.com/' });
    const link = await createLink(fixture.admin, {
      partnerId: s.partnerId,
      programId: s.programId,
      destinationUrl: ' HTTP://Elsewhere.Example.NET/a b\r\n?q=<1> ',
    });
    expect(link).toMatchObject({
      link: { destinationUrl: 'http://elsewhere.example.net/a%20b?q=%3C1%3E' },
      userErrors: [],
    });
    const row = await prisma().referralLink.findFirstOrThrow({ where: { code: link.link!.code } });
    expect(row.destinationUrl).toBe('http://elsewhere.example.net/a%20b?q=%3C1%3E');
  });

  it('refuses a user name or password in the URL, from any credential (https://trusted@evil/)', async () => {
    const s = await setup({ destinationUrl: 'https://shop.example.com/' });
    for (const token of [fixture.admin, s.token]) {
      const { userErrors } = await createLink(token, {
        partnerId: s.partnerId,
        programId: s.programId,
        destinationUrl: 'https://shop.example.com@evil.example.net/',
      });
      expect(userErrors).toEqual([
        {
          code: 'VALIDATION',
          field: ['input', 'destinationUrl'],
          message: expect.stringContaining('user name or password'),
        },
      ]);
    }
  });

  it('tells a partner nothing about the hosts of a program it cannot create links in', async () => {
    const pending = await setup({ allowedDestinationHosts: ['secret-host.example.com'] }, fixture.tenant, 'PENDING');
    const strangerProgram = await setup({ allowedDestinationHosts: ['secret-host.example.com'] });
    const outsider = await setup();
    const attempts = [
      {
        token: pending.token,
        input: { partnerId: pending.partnerId, programId: pending.programId },
        code: 'INVALID_TRANSITION',
      },
      {
        token: outsider.token,
        input: { partnerId: outsider.partnerId, programId: strangerProgram.programId },
        code: 'NOT_FOUND',
      },
      {
        token: outsider.token,
        input: { partnerId: strangerProgram.partnerId, programId: strangerProgram.programId },
        code: 'NOT_FOUND',
      },
    ];
    for (const { token, input, code } of attempts) {
      const { userErrors } = await createLink(token, { ...input, destinationUrl: 'https://evil.example.net/' });
      expect(userErrors.map((e) => e.code)).toEqual([code]);
      expect(JSON.stringify(userErrors)).not.toContain('secret-host');
    }
  });

  it('uses the list of the link’s own program only: another workspace’s or mode’s settings change nothing', async () => {
    const mine = await setup({ destinationUrl: 'https://shop.example.com/' });
    // Same names elsewhere, with the evil host allowed: in another workspace, and in LIVE mode of this one.
    await setup(
      { destinationUrl: 'https://shop.example.com/', allowedDestinationHosts: ['evil.example.net'] },
      fixture.otherTenant,
    );
    const live = await setup(
      { destinationUrl: 'https://shop.example.com/', allowedDestinationHosts: ['evil.example.net'] },
      { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' },
    );
    const refused = await createLink(mine.token, {
      partnerId: mine.partnerId,
      programId: mine.programId,
      destinationUrl: 'https://evil.example.net/',
    });
    expect(refused.userErrors[0]).toMatchObject({ code: 'VALIDATION', field: ['input', 'destinationUrl'] });
    // The LIVE program allows it for its own partner; the TEST token cannot reach it.
    expect(
      (
        await createLink(live.token, {
          partnerId: live.partnerId,
          programId: live.programId,
          destinationUrl: 'https://evil.example.net/',
        })
      ).userErrors,
    ).toEqual([]);
    expect(
      (
        await createLink(mine.token, {
          partnerId: mine.partnerId,
          programId: live.programId,
          destinationUrl: 'https://evil.example.net/',
        })
      ).userErrors.map((e) => e.code),
    ).toEqual(['NOT_FOUND']);
  });
});

describe('GET /r/{code}', () => {
  it('redirects a partner’s link to its allowed host, and never puts CR, LF or a password in Location, even for a row stored before normalisation', async () => {
    const s = await setup({ destinationUrl: 'https://shop.example.com/' });
    const { link } = await createLink(s.token, {
      partnerId: s.partnerId,
      programId: s.programId,
      destinationUrl: 'https://shop.example.com/deal',
    });
    const res = await fetch(`${fixture.server.url}/r/${link!.code}`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!).host).toBe('shop.example.com');

    // A row written before this check (or by hand): the redirect serialises it again.
    const f = factories(prisma(), fixture.tenant);
    const enrollment = await prisma().enrollment.findFirstOrThrow({ where: { programId: s.row.id } });
    await f.link(enrollment, {
      code: 'legacy-crlf',
      destinationUrl: 'https://shop.example.com/a\r\nSet-Cookie: x=1\r\n?q=1',
    });
    const legacy = await fetch(`${fixture.server.url}/r/legacy-crlf`, { redirect: 'manual' });
    expect(legacy.status).toBe(302);
    expect(legacy.headers.get('set-cookie')).toBeNull();
    expect(legacy.headers.get('location')).toMatch(
      /^https:\/\/shop\.example\.com\/aSet-Cookie:%20x=1\?q=1&ref=legacy-crlf&rg_click=/,
    );
  });
});
