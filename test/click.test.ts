import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mode, PartnerStatus, ProgramStatus, EnrollmentStatus } from '../src/generated/prisma/enums.js';
import { ClickIdCodec } from '../src/modules/click/click-id.js';
import { formatUuid, UuidV7Generator, uuidv7, uuidv7Time } from '../src/lib/uuid.js';
import { ClickRecorder, clip, normalizeIp, type LinkFacts, type QueryFn } from '../src/modules/click/click.service.js';
import { codeFromPath, withParams } from '../src/modules/click/redirect.js';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { BROWSER_USER_AGENT, startTestServer, type TestServer } from './helpers/server.js';

const fixture = useTwoWorkspaces({ names: ['Clicks', 'Other'] });

const TRACK = graphql(`
  mutation ClickTrack($input: TrackClickInput!) {
    trackClick(input: $input) {
      clickId
      discarded
      discardReason
      link { id code }
      userErrors { code message field }
    }
  }
`);
const LINK_CLICKS = graphql(`
  query ClickLinkClicks($code: String!) {
    referralLink(code: $code) { clicks }
  }
`);
const PARTNER_TOKEN = graphql(`
  mutation ClickPartnerToken($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code } }
  }
`);
const CREATE_KEY = graphql(`
  mutation ClickCreateKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { secret userErrors { code } }
  }
`);

interface FixtureOptions {
  mode?: Mode;
  code?: string;
  linkDestination?: string | null;
  programDestination?: string | null;
  partnerStatus?: PartnerStatus;
  programStatus?: ProgramStatus;
  enrollmentStatus?: EnrollmentStatus;
  disabled?: boolean;
}

const newCode = () => `T${randomBytes(5).toString('hex')}`;

/** Program, partner, enrollment and link rows, written directly (their mutations live elsewhere). */
async function linkFixture(ws: CreatedWorkspace, o: FixtureOptions = {}, target: TestServer = fixture.server) {
  const prisma = target.testDb.db.prisma;
  const workspaceId = ws.workspace.id;
  const mode = o.mode ?? 'TEST';
  const program = await prisma.program.create({
    data: {
      workspaceId,
      mode,
      name: 'Program',
      type: 'REFERRAL',
      currency: 'USD',
      status: o.programStatus ?? 'ACTIVE',
      destinationUrl: o.programDestination === undefined ? 'https://shop.example.com/welcome' : o.programDestination,
    },
  });
  const partner = await prisma.partner.create({
    data: {
      workspaceId,
      mode,
      externalId: `partner-${randomBytes(4).toString('hex')}`,
      status: o.partnerStatus ?? 'ACTIVE',
    },
  });
  const enrollment = await prisma.enrollment.create({
    data: { workspaceId, mode, programId: program.id, partnerId: partner.id, status: o.enrollmentStatus ?? 'APPROVED' },
  });
  const code = o.code ?? newCode();
  const link = await prisma.referralLink.create({
    data: {
      workspaceId,
      mode,
      enrollmentId: enrollment.id,
      programId: program.id,
      partnerId: partner.id,
      code,
      codeNormalized: code.toLowerCase(),
      destinationUrl: o.linkDestination ?? null,
      disabledAt: o.disabled ? new Date() : null,
    },
  });
  return { program, partner, enrollment, link };
}

/** A browser's visit (its user agent unless `headers` says otherwise: fetch's own is a bot's). */
function visit(path: string, headers: Record<string, string> = {}, target: TestServer = fixture.server) {
  return fetch(`${target.url}${path}`, {
    redirect: 'manual',
    headers: { 'user-agent': BROWSER_USER_AGENT, ...headers },
  });
}

/** The rg_click parameter of a redirect. */
function clickIdOf(res: Response): string {
  const location = res.headers.get('location');
  expect(location).toBeTruthy();
  const clickId = new URL(location!).searchParams.get('rg_click');
  expect(clickId).toMatch(/^ck_[A-Za-z0-9_-]{64}$/);
  return clickId!;
}

async function writtenClicks(linkId: string, target: TestServer = fixture.server) {
  await target.app.services.clicks.flush();
  return target.testDb.db.prisma.click.findMany({ where: { linkId }, orderBy: { id: 'asc' } });
}

describe('GET /r/{code}', () => {
  it('redirects to the link’s destination, keeping its query and fragment, with ref and rg_click added', async () => {
    const { link, program, partner } = await linkFixture(fixture.ws, {
      code: 'Summer-Sale_1',
      linkDestination: 'https://shop.example.com/landing?utm_source=news&q=a%20b&flag#pricing',
    });
    const res = await visit('/r/Summer-Sale_1', {
      'user-agent': BROWSER_USER_AGENT,
      referer: 'https://blog.example.org/post?id=7',
    });
    expect(res.status).toBe(302);
    const location = res.headers.get('location')!;
    const clickId = clickIdOf(res);
    expect(location).toBe(
      `https://shop.example.com/landing?utm_source=news&q=a%20b&flag&ref=Summer-Sale_1&rg_click=${clickId}#pricing`,
    );
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('referrer-policy')).toBe('strict-origin-when-cross-origin');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-robots-tag')).toContain('noindex');

    const decoded = fixture.server.app.services.clicks.decodeClickId(clickId)!;
    expect(decoded).toMatchObject({ linkId: link.id, discarded: false });
    const rows = await writtenClicks(link.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: decoded.clickRowId,
      workspaceId: fixture.ws.workspace.id,
      mode: 'TEST',
      linkId: link.id,
      programId: program.id,
      partnerId: partner.id,
      userAgent: BROWSER_USER_AGENT,
      referrerUrl: 'https://blog.example.org/post?id=7',
      landingUrl: 'https://shop.example.com/landing?utm_source=news&q=a%20b&flag#pricing',
      discarded: false,
    });
    expect(rows[0]!.occurredAt.getTime()).toBe(decoded.clickedAt.getTime());
  });

  it('finds a code in any case and passes it on as created', async () => {
    const { link } = await linkFixture(fixture.ws, { code: 'MiXeDCase' });
    const res = await visit('/r/mixedcase');
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!).searchParams.get('ref')).toBe('MiXeDCase');
    expect(await writtenClicks(link.id)).toHaveLength(1);
  });

  it('falls back to the program’s destination, then to PUBLIC_URL', async () => {
    const viaProgram = await linkFixture(fixture.ws, { programDestination: 'https://shop.example.com/join' });
    const res1 = await visit(`/r/${viaProgram.link.code}`);
    expect(res1.headers.get('location')).toMatch(/^https:\/\/shop\.example\.com\/join\?ref=T[0-9a-f]+&rg_click=ck_/);

    const bare = await linkFixture(fixture.ws, { programDestination: null });
    const res2 = await visit(`/r/${bare.link.code}/`);
    expect(res2.status).toBe(302);
    const location = new URL(res2.headers.get('location')!);
    expect(location.origin).toBe(new URL(fixture.server.app.services.config.publicUrl).origin);
    expect(location.searchParams.get('ref')).toBe(bare.link.code);
  });

  it('replaces ref and rg_click parameters already in the destination', async () => {
    const { link } = await linkFixture(fixture.ws, {
      linkDestination: 'https://shop.example.com/?ref=someone-else&x=1&rg_click=old',
    });
    const res = await visit(`/r/${link.code}`);
    const location = res.headers.get('location')!;
    expect(location).toMatch(
      new RegExp(`^https://shop\\.example\\.com/\\?x=1&ref=${link.code}&rg_click=ck_[A-Za-z0-9_-]{64}$`),
    );
  });

  it('answers 404 with a small HTML page for an unknown code, and records nothing', async () => {
    await fixture.server.app.services.clicks.flush();
    const before = await fixture.server.testDb.db.prisma.click.count();
    for (const path of [
      '/r/does-not-exist',
      '/r/%E0%A4%A',
      '/r/a/b',
      '/r/',
      `/r/${'x'.repeat(100)}`,
      '/r/%3Cscript%3E',
    ]) {
      const res = await visit(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await res.text();
      expect(body).toContain('Link not found');
      expect(body).not.toContain('<script>');
    }
    await fixture.server.app.services.clicks.flush();
    expect(await fixture.server.testDb.db.prisma.click.count()).toBe(before);
  });

  it('answers 404 for a disabled link, and records nothing', async () => {
    const { link } = await linkFixture(fixture.ws, { disabled: true });
    const res = await visit(`/r/${link.code}`);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('Link not found');
    expect(await writtenClicks(link.id)).toHaveLength(0);
  });

  it('stops redirecting a link the moment it is disabled when its cached facts are forgotten', async () => {
    const { link } = await linkFixture(fixture.ws);
    expect((await visit(`/r/${link.code}`)).status).toBe(302);
    await fixture.server.testDb.db.prisma.referralLink.update({
      where: { id: link.id },
      data: { disabledAt: new Date() },
    });
    fixture.server.app.services.clicks.forgetLink(link.code.toLowerCase());
    expect((await visit(`/r/${link.code}`)).status).toBe(404);
    expect(await writtenClicks(link.id)).toHaveLength(1);
  });

  it.each([
    ['an INACTIVE partner', { partnerStatus: 'INACTIVE' }],
    ['a BANNED partner', { partnerStatus: 'BANNED' }],
    ['a PAUSED program', { programStatus: 'PAUSED' }],
    ['a PENDING enrollment', { enrollmentStatus: 'PENDING' }],
  ] as const)('still redirects for %s but records the click discarded', async (_what, options) => {
    const { link } = await linkFixture(fixture.ws, options);
    const res = await visit(`/r/${link.code}`);
    expect(res.status).toBe(302);
    const decoded = fixture.server.app.services.clicks.decodeClickId(clickIdOf(res))!;
    expect(decoded.discarded).toBe(true);
    const rows = await writtenClicks(link.id);
    expect(rows.map((r) => [r.id, r.discarded])).toEqual([[decoded.clickRowId, true]]);
  });

  it('answers HEAD like GET without recording a click', async () => {
    const { link } = await linkFixture(fixture.ws);
    const res = await fetch(`${fixture.server.url}/r/${link.code}`, { method: 'HEAD', redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!).searchParams.get('rg_click')).toBeNull();
    expect(await writtenClicks(link.id)).toHaveLength(0);
    const post = await fetch(`${fixture.server.url}/r/${link.code}`, { method: 'POST', redirect: 'manual' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('never stores the raw IP: a keyed hash of the socket’s address, X-Forwarded-For ignored without TRUST_PROXY', async () => {
    const { link } = await linkFixture(fixture.ws);
    const res = await visit(`/r/${link.code}`, { 'x-forwarded-for': '198.51.100.23' });
    expect(res.status).toBe(302);
    const [row] = await writtenClicks(link.id);
    const ip = '127.0.0.1';
    expect(row!.ipHash).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.ipHash).toBe(fixture.server.app.services.clicks.hashIp(ip));
    for (const algorithm of ['sha256', 'sha1', 'md5', 'sha512']) {
      expect(row!.ipHash).not.toBe(createHash(algorithm).update(ip).digest('hex'));
    }
    const text = JSON.stringify(row);
    for (const needle of [ip, '198.51.100.23', '::ffff:']) expect(text).not.toContain(needle);
  });

  it('counts every acknowledged click in ReferralLink.clicks within seconds: 300 concurrent visits, exactly 300 rows', async () => {
    const { link } = await linkFixture(fixture.ws);
    const responses = await Promise.all(Array.from({ length: 300 }, () => visit(`/r/${link.code}`)));
    expect(responses.map((r) => r.status)).toEqual(Array(300).fill(302));
    const clickIds = new Set(responses.map(clickIdOf));
    expect(clickIds.size).toBe(300);

    // No flush, no sleep: poll what integrators see, with a deadline.
    const deadline = Date.now() + 10_000;
    let seen = -1;
    while (Date.now() < deadline) {
      const res = await fixture.gql(LINK_CLICKS, { code: link.code }, fixture.admin);
      seen = res.data?.referralLink?.clicks ?? -1;
      if (seen >= 300) break;
    }
    expect(seen).toBe(300);
    expect(await fixture.server.testDb.db.prisma.click.count({ where: { linkId: link.id } })).toBe(300);
    const rowIds = new Set((await writtenClicks(link.id)).map((r) => r.id));
    for (const clickId of clickIds)
      expect(rowIds.has(fixture.server.app.services.clicks.decodeClickId(clickId)!.clickRowId)).toBe(true);
  });
});

describe('GET /r/{code} behind a trusted proxy', () => {
  let proxied: TestServer;
  beforeAll(async () => {
    proxied = await startTestServer({ TRUST_PROXY: 'true' });
  });
  afterAll(async () => {
    await proxied?.close();
  });

  it('hashes the first X-Forwarded-For hop, and never stores it', async () => {
    const ws = await proxied.workspace();
    const { link } = await linkFixture(ws, {}, proxied);
    const res = await visit(`/r/${link.code}`, { 'x-forwarded-for': '203.0.113.9, 10.0.0.1' }, proxied);
    expect(res.status).toBe(302);
    const res2 = await visit(`/r/${link.code}`, { 'x-forwarded-for': 'garbage' }, proxied);
    expect(res2.status).toBe(302);
    const rows = await writtenClicks(link.id, proxied);
    expect(rows.map((r) => r.ipHash)).toEqual([
      proxied.app.services.clicks.hashIp('203.0.113.9'),
      proxied.app.services.clicks.hashIp('127.0.0.1'),
    ]);
    expect(JSON.stringify(rows)).not.toContain('203.0.113.9');
  });
});

describe('trackClick', () => {
  it('records a click and returns a click id that decodes to it', async () => {
    const { link } = await linkFixture(fixture.ws, { code: 'TrackMe' });
    const res = await fixture.gql(
      TRACK,
      {
        input: {
          code: 'trackme',
          ip: '2001:DB8:0:0::7',
          userAgent: BROWSER_USER_AGENT,
          referrerUrl: 'https://ref.example/',
          landingUrl: 'https://shop.example.com/?ref=TrackMe',
        },
      },
      fixture.admin,
    );
    expect(res.errors).toBeUndefined();
    const payload = res.data!.trackClick;
    expect(payload).toMatchObject({ discarded: false, discardReason: null, userErrors: [], link: { code: 'TrackMe' } });
    const decoded = fixture.server.app.services.clicks.decodeClickId(payload.clickId!)!;
    expect(decoded).toMatchObject({ linkId: link.id, discarded: false });
    const rows = await writtenClicks(link.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: decoded.clickRowId,
      userAgent: BROWSER_USER_AGENT,
      referrerUrl: 'https://ref.example/',
      landingUrl: 'https://shop.example.com/?ref=TrackMe',
      ipHash: fixture.server.app.services.clicks.hashIp('2001:db8::7'),
      discarded: false,
    });
    expect(JSON.stringify(rows[0])).not.toMatch(/2001:db8/i);
  });

  it('truncates a user agent to 512 characters and URLs to 2048', async () => {
    const { link } = await linkFixture(fixture.ws);
    const long = (n: number) => `https://x.example/${'a'.repeat(n)}`;
    const res = await fixture.gql(
      TRACK,
      {
        input: {
          code: link.code,
          userAgent: `${BROWSER_USER_AGENT} ${'U'.repeat(600)}`,
          referrerUrl: long(3000),
          landingUrl: long(2100),
        },
      },
      fixture.admin,
    );
    expect(res.data?.trackClick).toMatchObject({ discarded: false, userErrors: [] });
    const [row] = await writtenClicks(link.id);
    expect(row!.userAgent).toHaveLength(512);
    expect(row!.referrerUrl).toBe(long(3000).slice(0, 2048));
    expect(row!.landingUrl).toHaveLength(2048);
  });

  it('refuses an ip that is not an IP address, recording nothing', async () => {
    const { link } = await linkFixture(fixture.ws);
    const res = await fixture.gql(TRACK, { input: { code: link.code, ip: 'not-an-ip' } }, fixture.admin);
    expect(res.data?.trackClick).toMatchObject({ clickId: null, discarded: true, link: null });
    expect(res.data?.trackClick.userErrors).toEqual([
      { code: 'VALIDATION', field: ['input', 'ip'], message: expect.stringContaining('IPv4 or IPv6') },
    ]);
    expect(await writtenClicks(link.id)).toHaveLength(0);
  });

  it('answers NOT_FOUND for a code that cannot exist, without echoing it', async () => {
    for (const code of ['', 'has space', 'x'.repeat(65), '<b>']) {
      const res = await fixture.gql(TRACK, { input: { code } }, fixture.admin);
      expect(res.data?.trackClick.userErrors).toEqual([
        {
          code: 'NOT_FOUND',
          field: ['input', 'code'],
          message: 'No referral link with the code given in this workspace and mode.',
        },
      ]);
      expect(res.data?.trackClick.discarded).toBe(true);
    }
  });

  it('answers NOT_FOUND and discarded for an unknown code', async () => {
    const res = await fixture.gql(TRACK, { input: { code: 'nope-nope' } }, fixture.admin);
    expect(res.data?.trackClick).toEqual({
      clickId: null,
      discarded: true,
      discardReason: null,
      link: null,
      userErrors: [
        {
          code: 'NOT_FOUND',
          field: ['input', 'code'],
          message: 'No referral link with the code "nope-nope" in this workspace and mode.',
        },
      ],
    });
  });

  it('answers a code of another workspace or of the other mode exactly like an unknown code, recording nothing', async () => {
    const theirs = await linkFixture(fixture.other);
    const live = await linkFixture(fixture.ws, { mode: 'LIVE' });
    for (const code of [theirs.link.code, live.link.code]) {
      const res = await fixture.gql(TRACK, { input: { code } }, fixture.admin);
      expect(res.data?.trackClick).toEqual({
        clickId: null,
        discarded: true,
        discardReason: null,
        link: null,
        userErrors: [
          {
            code: 'NOT_FOUND',
            field: ['input', 'code'],
            message: `No referral link with the code "${code}" in this workspace and mode.`,
          },
        ],
      });
    }
    expect(await writtenClicks(theirs.link.id)).toHaveLength(0);
    expect(await writtenClicks(live.link.id)).toHaveLength(0);
    // The owners themselves can track them.
    const own = await fixture.gql(TRACK, { input: { code: live.link.code } }, fixture.liveAdmin);
    expect(own.data?.trackClick).toMatchObject({ discarded: false, userErrors: [] });
    expect(await writtenClicks(live.link.id)).toHaveLength(1);
  });

  it('answers discarded for a disabled link and records nothing', async () => {
    const { link } = await linkFixture(fixture.ws, { disabled: true });
    const res = await fixture.gql(TRACK, { input: { code: link.code } }, fixture.admin);
    expect(res.data?.trackClick).toEqual({
      clickId: null,
      discarded: true,
      discardReason: 'LINK_DISABLED',
      link: { id: expect.any(String), code: link.code },
      userErrors: [],
    });
    expect(await writtenClicks(link.id)).toHaveLength(0);
  });

  it.each([
    ['an INACTIVE partner', { partnerStatus: 'INACTIVE' }, 'PARTNER_INACTIVE'],
    ['a BANNED partner', { partnerStatus: 'BANNED' }, 'PARTNER_BANNED'],
    ['a PAUSED program', { programStatus: 'PAUSED' }, 'PROGRAM_PAUSED'],
    ['an ARCHIVED program', { programStatus: 'ARCHIVED' }, 'PROGRAM_ARCHIVED'],
    ['a REJECTED enrollment', { enrollmentStatus: 'REJECTED' }, 'ENROLLMENT_REJECTED'],
  ] as const)('records a click on %s as discarded', async (_what, options, reason) => {
    const { link } = await linkFixture(fixture.ws, options);
    const res = await fixture.gql(TRACK, { input: { code: link.code } }, fixture.admin);
    expect(res.data?.trackClick).toMatchObject({
      discarded: true,
      discardReason: reason,
      userErrors: [],
      link: { code: link.code },
    });
    const decoded = fixture.server.app.services.clicks.decodeClickId(res.data!.trackClick.clickId!)!;
    expect(decoded.discarded).toBe(true);
    const rows = await writtenClicks(link.id);
    expect(rows.map((r) => [r.id, r.discarded, r.discardReason])).toEqual([[decoded.clickRowId, true, reason]]);
  });

  it('is refused to a READ_ONLY key, a PARTNER token and without a credential, recording nothing', async () => {
    const { link } = await linkFixture(fixture.ws);
    const key = await fixture.gql(CREATE_KEY, { input: { name: 'reader', role: 'READ_ONLY' } }, fixture.admin);
    const readOnly = key.data!.createApiKey.secret!;
    const refused = await fixture.gql(TRACK, { input: { code: link.code } }, readOnly);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const { partner } = await linkFixture(fixture.ws);
    const minted = await fixture.gql(
      PARTNER_TOKEN,
      { input: { partnerId: Buffer.from(`Partner:${partner.id}`).toString('base64') } },
      fixture.admin,
    );
    const partnerToken = minted.data!.createPartnerToken.token!;
    const asPartner = await fixture.gql(TRACK, { input: { code: link.code } }, partnerToken);
    expect(asPartner.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const anonymous = await fixture.gql(TRACK, { input: { code: link.code } });
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await writtenClicks(link.id)).toHaveLength(0);
  });
});

describe('click ids', () => {
  const codec = new ClickIdCodec('s'.repeat(40));
  const linkId = '0190c5a0-1111-7222-8333-444455556666';

  it('carry the row id, the link id, the click time and the discarded flag', () => {
    const rowId = formatUuid(new UuidV7Generator(() => Date.parse('2026-03-01T10:00:00.123Z')).next().bytes);
    const token = codec.encode(rowId, linkId, false);
    expect(token).toMatch(/^ck_[A-Za-z0-9_-]{64}$/);
    expect(codec.decode(token)).toEqual({
      clickRowId: rowId,
      linkId,
      clickedAt: new Date('2026-03-01T10:00:00.123Z'),
      discarded: false,
    });
    expect(codec.decode(codec.encode(rowId, linkId, true))?.discarded).toBe(true);
  });

  it('refuse any alteration, another installation’s secret, and malformed tokens', () => {
    const token = codec.encode(uuidv7(), linkId, false);
    const flip = (i: number) => token.slice(0, i) + (token[i] === 'A' ? 'B' : 'A') + token.slice(i + 1);
    for (let i = 3; i < token.length; i++) expect(codec.decode(flip(i)), `character ${i}`).toBeNull();
    expect(new ClickIdCodec('t'.repeat(40)).decode(token)).toBeNull();
    for (const bad of [
      '',
      'ck_',
      token.slice(0, -1),
      `${token}A`,
      token.replace('ck_', 'cx_'),
      token.slice(3),
      `ck_${'!'.repeat(64)}`,
    ]) {
      expect(codec.decode(bad)).toBeNull();
    }
    // A UUID that is not a v7 never makes a valid token either (the click time would be meaningless).
    expect(() => codec.encode('not-a-uuid', linkId, false)).toThrow();
  });

  it('refuse a token minted by the server of another installation', async () => {
    const { link } = await linkFixture(fixture.ws);
    const forged = new ClickIdCodec('another installation secret, long enough').encode(uuidv7(), link.id, false);
    expect(fixture.server.app.services.clicks.decodeClickId(forged)).toBeNull();
  });

  it('use UUIDv7 row ids: version 7, RFC variant, millisecond time, strictly increasing', () => {
    let clock = Date.parse('2026-03-01T10:00:00.000Z');
    const generator = new UuidV7Generator(() => clock);
    const ids = Array.from({ length: 10_000 }, () => formatUuid(generator.next().bytes));
    for (const id of ids.slice(0, 50)) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(uuidv7Time(ids[0]!)?.getTime()).toBe(clock);
    // 10 000 ids in one millisecond borrow a few following milliseconds rather than break the order.
    const last = uuidv7Time(ids.at(-1)!)!.getTime();
    expect(last - clock).toBeGreaterThan(0);
    expect(last - clock).toBeLessThan(10);
    clock -= 5_000; // the clock steps back: ids keep increasing from the last time
    const after = generator.next();
    expect(after.ms).toBe(last);
    expect(formatUuid(after.bytes) > ids.at(-1)!).toBe(true);
    clock += 60_000;
    expect(generator.next().ms).toBe(clock);
    // The process-wide generator, with the real clock.
    const real = Array.from({ length: 1000 }, () => uuidv7());
    expect([...real].sort()).toEqual(real);
    expect(Math.abs(uuidv7Time(real[0]!)!.getTime() - Date.now())).toBeLessThan(1000);
    expect(uuidv7Time('0190c5a0-1111-4222-8333-444455556666')).toBeNull();
  });
});

describe('helpers', () => {
  it('normalize IP addresses to one spelling', () => {
    expect(normalizeIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeIp(' 2001:DB8:0:0:0:0:0:1 ')).toBe('2001:db8::1');
    expect(normalizeIp('[2001:db8::1]:443')).toBe('2001:db8::1');
    expect(normalizeIp('203.0.113.9:8080')).toBe('203.0.113.9');
    expect(normalizeIp('example.com')).toBeNull();
    expect(normalizeIp('999.1.1.1')).toBeNull();
  });

  it('clip texts without NULs and without cutting a character in half', () => {
    expect(clip('a\u0000b', 10)).toBe('ab');
    expect(clip('ab😀', 3)).toBe('ab');
    expect(clip('', 3)).toBeNull();
    expect(clip(undefined, 3)).toBeNull();
  });

  it('take the code from the path', () => {
    expect(codeFromPath('/r/abc')).toBe('abc');
    expect(codeFromPath('/r/abc/')).toBe('abc');
    expect(codeFromPath('/r/a%2Db')).toBe('a-b');
    expect(codeFromPath('/r/a/b')).toBeNull();
    expect(codeFromPath('/r/%E0%A4%A')).toBeNull();
  });

  it('add parameters, keeping the query as written and the fragment', () => {
    expect(withParams('https://x.example', [['ref', 'A B']])).toBe('https://x.example/?ref=A%20B');
    expect(withParams('https://x.example/p?a=1&&b=%2F#f', [['ref', 'c']])).toBe(
      'https://x.example/p?a=1&b=%2F&ref=c#f',
    );
    expect(withParams('https://x.example/?Ref=1&r%65f=2', [['ref', 'c']])).toBe('https://x.example/?Ref=1&ref=c');
    // Templates are cached per destination and names: a second value lands in the same place.
    expect(
      withParams('https://x.example/p?a=1#f', [
        ['ref', 'x&y'],
        ['rg_click', 'ck_1'],
      ]),
    ).toBe('https://x.example/p?a=1&ref=x%26y&rg_click=ck_1#f');
    expect(
      withParams('https://x.example/p?a=1#f', [
        ['ref', 'z'],
        ['rg_click', 'ck_2'],
      ]),
    ).toBe('https://x.example/p?a=1&ref=z&rg_click=ck_2#f');
    expect(withParams('https://x.example/p?a=1#f', [['ref', 'z']])).toBe('https://x.example/p?a=1&ref=z#f');
    // A destination that contains the template's marker still gets its parameters right.
    expect(withParams('https://x.example/RGSLOT7Q3X?q=RGSLOT7Q3X', [['ref', 'c']])).toBe(
      'https://x.example/RGSLOT7Q3X?q=RGSLOT7Q3X&ref=c',
    );
  });
});

describe('the click recorder', () => {
  const facts = (link: {
    id: string;
    workspaceId: string;
    mode: Mode;
    programId: string;
    partnerId: string;
    code: string;
  }): LinkFacts => ({
    linkId: link.id,
    workspaceId: link.workspaceId,
    mode: link.mode,
    programId: link.programId,
    partnerId: link.partnerId,
    code: link.code,
    destinationUrl: null,
    disabled: false,
    partnerStatus: 'ACTIVE',
    programStatus: 'ACTIVE',
    enrollmentStatus: 'APPROVED',
  });
  const isInsert = (sql: string) => sql.includes('INSERT INTO "Click"');
  const count = (linkId: string) => fixture.server.testDb.db.prisma.click.count({ where: { linkId } });

  it('looks a link up in one statement, then not at all while cached; writes nothing until the flush', async () => {
    const { link } = await linkFixture(fixture.ws);
    const statements: string[] = [];
    const recorder = new ClickRecorder({
      query: (sql, params) => {
        statements.push(sql);
        return fixture.server.testDb.db.query(sql, params);
      },
      secret: 'x'.repeat(32),
      flushIntervalMs: 60_000,
    });
    const [a, b] = await Promise.all([recorder.findLink(link.code), recorder.findLink(link.code.toLowerCase())]);
    expect(a).toEqual(b);
    expect(a).toMatchObject({
      linkId: link.id,
      code: link.code,
      destinationUrl: 'https://shop.example.com/welcome',
      disabled: false,
    });
    expect(statements).toHaveLength(1);
    for (let i = 0; i < 20; i++) await recorder.record((await recorder.findLink(link.code))!, { ip: '127.0.0.1' });
    expect(statements).toHaveLength(1);
    expect(await recorder.findLink('unknown-code')).toBeNull();
    expect(await recorder.findLink('bad code!')).toBeNull(); // not even asked
    expect(statements).toHaveLength(2);
    await recorder.stop();
    expect(statements.filter(isInsert)).toHaveLength(1); // 20 clicks, one INSERT
    expect(await count(link.id)).toBe(20);
    await expect(recorder.record(a!, {})).rejects.toThrow(/stopped/);
  });

  it('writes a batch as soon as it is full', async () => {
    const { link } = await linkFixture(fixture.ws);
    let inserts = 0;
    let firstBatch: () => void;
    const written = new Promise<void>((resolve) => (firstBatch = resolve));
    const recorder = new ClickRecorder({
      query: async (sql, params) => {
        const rows = await fixture.server.testDb.db.query(sql, params);
        if (isInsert(sql) && ++inserts === 1) firstBatch();
        return rows;
      },
      secret: 'x'.repeat(32),
      batchSize: 10,
      flushIntervalMs: 60_000,
    });
    for (let i = 0; i < 10; i++) await recorder.record(facts(link), {});
    await written;
    expect(await count(link.id)).toBe(10);
    await recorder.stop();
  });

  it('writes a second batch while the first is still being written, and settles flushes in order', async () => {
    const { link } = await linkFixture(fixture.ws);
    const gates: Array<() => void> = [];
    let concurrent = 0;
    let mostConcurrent = 0;
    const recorder = new ClickRecorder({
      query: async (sql, params) => {
        if (isInsert(sql)) {
          mostConcurrent = Math.max(mostConcurrent, ++concurrent);
          await new Promise<void>((resolve) => gates.push(resolve));
          concurrent--;
        }
        return fixture.server.testDb.db.query(sql, params);
      },
      secret: 'x'.repeat(32),
      batchSize: 5,
      writers: 2,
      flushIntervalMs: 60_000,
    });
    for (let i = 0; i < 12; i++) await recorder.record(facts(link), {});
    expect(gates).toHaveLength(2); // two full batches taken at once; the last 2 clicks wait
    expect(recorder.stats().queued).toBe(12);
    let flushed = false;
    const flushing = recorder.flush().then(() => (flushed = true));
    gates[1]!(); // the second batch finishes first…
    while (recorder.stats().written < 5) await new Promise((resolve) => setImmediate(resolve));
    expect(flushed).toBe(false); // …but the first is not written yet, so the flush waits
    gates[0]!();
    while (gates.length < 3) await new Promise((resolve) => setImmediate(resolve));
    gates[2]!(); // the remaining 2 clicks, taken by a writer once its batch was done
    await flushing;
    expect(mostConcurrent).toBe(2);
    expect(recorder.stats()).toMatchObject({ acknowledged: 12, written: 12, batches: 3, queued: 0 });
    expect(await count(link.id)).toBe(12);
    await recorder.stop();
  });

  it('retries a failed batch (the Click table renamed away for a moment) without losing or doubling a click', async () => {
    const { link } = await linkFixture(fixture.ws);
    await fixture.server.app.services.clicks.flush();
    const db = fixture.server.testDb.db;
    let failures = 0;
    let failed: () => void;
    const firstFailure = new Promise<void>((resolve) => (failed = resolve));
    const recorder = new ClickRecorder({
      query: (sql, params) =>
        db.query(sql, params).catch((error: unknown) => {
          if (++failures === 1) failed();
          throw error;
        }),
      secret: 'x'.repeat(32),
      retryDelayMs: 5,
      flushIntervalMs: 1,
    });
    await db.query('ALTER TABLE "Click" RENAME TO "Click_away"');
    let flushed: Promise<void>;
    try {
      for (let i = 0; i < 25; i++) await recorder.record(facts(link), { userAgent: `click ${i}` });
      flushed = recorder.flush();
      await firstFailure;
    } finally {
      await db.query('ALTER TABLE "Click_away" RENAME TO "Click"');
    }
    await flushed;
    expect(recorder.stats()).toMatchObject({ acknowledged: 25, written: 25, dropped: 0, queued: 0 });
    expect(recorder.stats().failedWrites).toBeGreaterThanOrEqual(1);
    const rows = await db.prisma.click.findMany({ where: { linkId: link.id }, orderBy: { id: 'asc' } });
    expect(rows.map((r) => r.userAgent)).toEqual(Array.from({ length: 25 }, (_, i) => `click ${i}`));
    await recorder.stop();
  });

  it('retries an INSERT that failed after it committed without writing a click twice', async () => {
    const { link } = await linkFixture(fixture.ws);
    let first = true;
    const query: QueryFn = async (sql, params) => {
      const rows = await fixture.server.testDb.db.query(sql, params);
      if (isInsert(sql) && first) {
        first = false;
        throw Object.assign(new Error('connection lost after commit'), { code: '08006' });
      }
      return rows;
    };
    const recorder = new ClickRecorder({ query, secret: 'x'.repeat(32), retryDelayMs: 1 });
    for (let i = 0; i < 7; i++) await recorder.record(facts(link), {});
    await recorder.stop();
    expect(recorder.stats()).toMatchObject({ written: 7, failedWrites: 1, dropped: 0 });
    expect(await count(link.id)).toBe(7);
  });

  it('drops only the rows the database refuses for good (their link deleted), and writes the rest', async () => {
    const kept = await linkFixture(fixture.ws);
    const gone = await linkFixture(fixture.ws);
    const recorder = new ClickRecorder({
      query: fixture.server.testDb.db.query,
      secret: 'x'.repeat(32),
      flushIntervalMs: 60_000,
    });
    for (let i = 0; i < 6; i++) await recorder.record(facts(i === 3 ? gone.link : kept.link), {});
    await fixture.server.testDb.db.prisma.referralLink.delete({ where: { id: gone.link.id } });
    await recorder.stop();
    expect(recorder.stats()).toMatchObject({ acknowledged: 6, written: 5, dropped: 1, queued: 0 });
    expect(await count(kept.link.id)).toBe(5);
  });

  it('makes clicks wait for room when the queue is full, then takes them', async () => {
    const { link } = await linkFixture(fixture.ws);
    let release: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const recorder = new ClickRecorder({
      query: async (sql, params) => {
        if (isInsert(sql)) await gate;
        return fixture.server.testDb.db.query(sql, params);
      },
      secret: 'x'.repeat(32),
      queueSize: 5,
      batchSize: 5,
      flushIntervalMs: 60_000,
    });
    for (let i = 0; i < 5; i++) await recorder.record(facts(link), {});
    let sixth = false;
    const pending = recorder.record(facts(link), {}).then(() => (sixth = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sixth).toBe(false);
    expect(recorder.stats()).toMatchObject({ queued: 5, waitedForRoom: 1 });
    release!();
    await pending;
    await recorder.stop();
    expect(recorder.stats()).toMatchObject({ acknowledged: 6, written: 6 });
    expect(await count(link.id)).toBe(6);
  });

  it('gives up at the stop deadline when the database stays unreachable, logging what it could not write', async () => {
    const { link } = await linkFixture(fixture.ws);
    const logged: unknown[] = [];
    const logger = { warn: () => {}, error: (entry: unknown) => logged.push(entry) } as never;
    const recorder = new ClickRecorder({
      query: async (sql, params) => {
        if (isInsert(sql)) throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
        return fixture.server.testDb.db.query(sql, params);
      },
      secret: 'x'.repeat(32),
      logger,
      retryDelayMs: 5,
      stopTimeoutMs: 100,
    });
    for (let i = 0; i < 3; i++) await recorder.record(facts(link), { ip: '192.0.2.1' });
    await recorder.stop();
    expect(recorder.stats()).toMatchObject({ acknowledged: 3, written: 0, dropped: 3 });
    expect(logged).toHaveLength(1);
    expect((logged[0] as { unwritten: unknown[] }).unwritten).toHaveLength(3);
    expect(JSON.stringify(logged)).not.toContain('192.0.2.1');
  });
});

describe('stopping the app', () => {
  let app: TestServer;
  beforeAll(async () => {
    // Nothing is written before stop() unless stop() writes it.
    app = await startTestServer({
      CLICK_FLUSH_INTERVAL_MS: '60000',
      CLICK_BATCH_SIZE: '10000',
      CLICK_LINK_CACHE_TTL_MS: '60000',
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('writes every acknowledged click before it returns, and asks the database once per click at most', async () => {
    const ws = await app.workspace();
    const { link } = await linkFixture(ws, {}, app);
    const clicks = app.app.services.clicks;
    const first = await visit(`/r/${link.code}`, {}, app);
    expect(first.status).toBe(302);
    expect(clicks.stats()).toMatchObject({ linkLookups: 1, acknowledged: 1, written: 0 }); // the lookup; the click is not written yet

    const more = await Promise.all(Array.from({ length: 149 }, () => visit(`/r/${link.code}`, {}, app)));
    expect(more.every((r) => r.status === 302)).toBe(true);
    expect(clicks.stats()).toMatchObject({ linkLookups: 1, acknowledged: 150, written: 0 }); // cached link: no statement at all
    expect(await app.testDb.db.prisma.click.count({ where: { linkId: link.id } })).toBe(0);

    await app.app.stop();
    expect(await app.testDb.db.prisma.click.count({ where: { linkId: link.id } })).toBe(150);
    expect(clicks.stats()).toMatchObject({ acknowledged: 150, written: 150, batches: 1, queued: 0 });
  });
});
