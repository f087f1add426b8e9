// Click quality (issue 15): bots' and link previews' clicks are recorded discarded (BOT) and never
// counted; one visitor's repeat clicks on a link within a UTC hour count once in uniqueClicks;
// program and partner stats count unique clicks.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Mode } from '../src/generated/prisma/enums.js';
import { formatUuid, UuidV7Generator } from '../src/lib/uuid.js';
import {
  ClickRecorder,
  clickBatchStatement,
  type ClickRow,
  type DiscardReason,
} from '../src/modules/click/click.service.js';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { graphql } from './gql/index.js';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { BROWSER_USER_AGENT } from './helpers/server.js';

const fixture = useTwoWorkspaces({ names: ['Click quality', 'Other'] });

const BOTS = {
  slack: 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
  facebook: 'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
  google: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
};
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0';

const LINK_COUNTS = graphql(`
  query CQ_LinkCounts($code: String!) {
    referralLink(code: $code) { clicks uniqueClicks botClicks }
  }
`);
const TRACK = graphql(`
  mutation CQ_Track($input: TrackClickInput!) {
    trackClick(input: $input) { clickId discarded discardReason userErrors { code } }
  }
`);
const STATS = graphql(`
  query CQ_Stats($program: ID!, $partner: ID!) {
    program(id: $program) { stats { clicks } }
    partner(id: $partner) {
      stats { clicks }
      links { code clicks uniqueClicks botClicks }
    }
  }
`);
const PARTNER_TOKEN = graphql(`
  mutation CQ_PartnerToken($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code } }
  }
`);
const PARTNER_VIEW = graphql(`
  query CQ_PartnerView($code: String!) {
    referralLink(code: $code) { code clicks uniqueClicks botClicks }
    viewer { partner { stats { clicks } } }
  }
`);

const code = () => `Q${randomBytes(5).toString('hex')}`;

/** An ACTIVE program, partner and APPROVED enrollment with `links` links, written directly. */
async function network(ws: CreatedWorkspace = fixture.ws, mode: Mode = 'TEST', links = 1) {
  const f = factories(fixture.server.testDb.db.prisma, { workspaceId: ws.workspace.id, mode });
  const program = await f.program({ destinationUrl: 'https://shop.example.com/' });
  const partner = await f.partner();
  const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
  const made = [];
  for (let i = 0; i < links; i++) made.push(await f.link(enrollment, { code: code() }));
  return { program, partner, links: made, link: made[0]! };
}

/** A visit through `/r/{code}` with this user agent (every visit comes from the test's own address). */
function visit(linkCode: string, userAgent: string) {
  return fetch(`${fixture.server.url}/r/${linkCode}`, { redirect: 'manual', headers: { 'user-agent': userAgent } });
}

async function rowsOf(linkId: string) {
  await fixture.server.app.services.clicks.flush();
  return fixture.server.testDb.db.prisma.click.findMany({ where: { linkId }, orderBy: { id: 'asc' } });
}

async function countsOf(linkCode: string, key: string = fixture.admin) {
  await fixture.server.app.services.clicks.flush();
  const res = await fixture.gql(LINK_COUNTS, { code: linkCode }, key);
  expect(res.errors).toBeUndefined();
  return res.data!.referralLink!;
}

/**
 * How many UTC hours the clicks fall in: a visitor's repeats count once per hour, so clicks made
 * a few milliseconds apart are one unique click — unless the hour turned between them.
 */
const hoursOf = (rows: Array<{ occurredAt: Date }>) =>
  new Set(rows.map((r) => Math.floor(r.occurredAt.getTime() / 3_600_000))).size;

describe('bots and link previews', () => {
  it('on /r/{code}: still redirected with a click id, recorded discarded (BOT), counted only in botClicks', async () => {
    const { link } = await network();
    for (const userAgent of Object.values(BOTS)) {
      const res = await visit(link.code, userAgent);
      expect(res.status).toBe(302);
      const location = new URL(res.headers.get('location')!);
      expect(location.origin).toBe('https://shop.example.com');
      const clickId = location.searchParams.get('rg_click')!;
      // The click id says discarded: a signup arriving with it is not rewarded (CLICK_DISCARDED).
      expect(fixture.server.app.services.clicks.decodeClickId(clickId)).toMatchObject({ discarded: true });
    }
    const rows = await rowsOf(link.id);
    expect(rows.map((r) => [r.userAgent, r.discarded, r.discardReason, r.isUnique])).toEqual(
      Object.values(BOTS).map((userAgent) => [userAgent, true, 'BOT', false]),
    );
    expect(await countsOf(link.code)).toEqual({ clicks: 0, uniqueClicks: 0, botClicks: 3 });

    const person = await visit(link.code, BROWSER_USER_AGENT);
    expect(person.status).toBe(302);
    expect(await countsOf(link.code)).toEqual({ clicks: 1, uniqueClicks: 1, botClicks: 3 });
  });

  it('on trackClick: discarded with the reason BOT, recorded, counted only in botClicks', async () => {
    const { link } = await network();
    for (const userAgent of Object.values(BOTS)) {
      const res = await fixture.gql(TRACK, { input: { code: link.code, ip: '203.0.113.5', userAgent } }, fixture.admin);
      expect(res.data?.trackClick).toEqual({
        clickId: expect.stringMatching(/^ck_/),
        discarded: true,
        discardReason: 'BOT',
        userErrors: [],
      });
    }
    // Without a user agent there is nothing to tell: a person's click.
    const bare = await fixture.gql(TRACK, { input: { code: link.code } }, fixture.admin);
    expect(bare.data?.trackClick).toMatchObject({ discarded: false, discardReason: null });
    const rows = await rowsOf(link.id);
    expect(rows.map((r) => r.discardReason)).toEqual(['BOT', 'BOT', 'BOT', null]);
    expect(await countsOf(link.code)).toEqual({ clicks: 1, uniqueClicks: 1, botClicks: 3 });
    expect(fixture.server.app.services.clicks.stats().bots).toBeGreaterThanOrEqual(6);
  });

  it('BOT comes first: a bot’s click on an inactive partner’s link is a bot’s click', async () => {
    const f = factories(fixture.server.testDb.db.prisma, fixture.tenant);
    const program = await f.program();
    const partner = await f.partner({ status: 'INACTIVE' });
    const link = await f.link(await f.enrollment({ programId: program.id, partnerId: partner.id }), { code: code() });
    const bot = await fixture.gql(TRACK, { input: { code: link.code, userAgent: BOTS.google } }, fixture.admin);
    const person = await fixture.gql(TRACK, { input: { code: link.code, userAgent: FIREFOX } }, fixture.admin);
    expect([bot.data?.trackClick.discardReason, person.data?.trackClick.discardReason]).toEqual([
      'BOT',
      'PARTNER_INACTIVE',
    ]);
    expect((await rowsOf(link.id)).map((r) => [r.discarded, r.discardReason])).toEqual([
      [true, 'BOT'],
      [true, 'PARTNER_INACTIVE'],
    ]);
    expect(await countsOf(link.code)).toEqual({ clicks: 0, uniqueClicks: 0, botClicks: 1 });
  });
});

describe('unique clicks', () => {
  it('on /r/{code}: one visitor’s repeats count once per link, another user agent is another visitor', async () => {
    const { links } = await network(fixture.ws, 'TEST', 2);
    const [a, b] = links as [(typeof links)[0], (typeof links)[0]];
    for (let i = 0; i < 3; i++) expect((await visit(a.code, BROWSER_USER_AGENT)).status).toBe(302);
    const repeats = await rowsOf(a.id);
    expect(repeats).toHaveLength(3);
    expect(await countsOf(a.code)).toEqual({ clicks: 3, uniqueClicks: hoursOf(repeats), botClicks: 0 });
    expect(repeats[0]!.isUnique).toBe(true); // the first of them

    await visit(a.code, FIREFOX);
    const withFirefox = await rowsOf(a.id);
    expect(await countsOf(a.code)).toEqual({
      clicks: 4,
      uniqueClicks: hoursOf(repeats) + hoursOf(withFirefox.slice(3)),
      botClicks: 0,
    });

    // The same visitor on another link: a visitor of that link.
    await visit(b.code, BROWSER_USER_AGENT);
    await visit(b.code, BROWSER_USER_AGENT);
    const onB = await rowsOf(b.id);
    expect(await countsOf(b.code)).toEqual({ clicks: 2, uniqueClicks: hoursOf(onB), botClicks: 0 });
  });

  it('on trackClick: the visitor is the IP and the user agent; without an IP every click counts', async () => {
    const { link } = await network();
    const track = (input: { ip?: string; userAgent?: string }) =>
      fixture.gql(TRACK, { input: { code: link.code, ...input } }, fixture.admin);
    for (let i = 0; i < 3; i++) await track({ ip: '198.51.100.7', userAgent: BROWSER_USER_AGENT });
    await track({ ip: '::ffff:198.51.100.7', userAgent: BROWSER_USER_AGENT }); // the same address, spelt otherwise
    await track({ ip: '198.51.100.8', userAgent: BROWSER_USER_AGENT }); // another address
    await track({ ip: '198.51.100.7', userAgent: FIREFOX }); // another browser
    await track({ ip: '198.51.100.7' }); // no user agent: the address alone
    await track({ ip: '198.51.100.7' });
    await track({ userAgent: BROWSER_USER_AGENT }); // no address: cannot be told apart
    await track({ userAgent: BROWSER_USER_AGENT });
    await track({});
    const rows = await rowsOf(link.id);
    expect(rows).toHaveLength(11);
    if (hoursOf(rows) === 1) {
      expect(rows.map((r) => r.isUnique)).toEqual([
        ...[true, false, false, false],
        true,
        true,
        ...[true, false],
        ...[true, true, true],
      ]);
    }
    const counts = await countsOf(link.code);
    expect(counts).toEqual({ clicks: 11, uniqueClicks: rows.filter((r) => r.isUnique).length, botClicks: 0 });
    expect(counts.uniqueClicks).toBeGreaterThanOrEqual(7);
  });

  it('program and partner stats count unique clicks; the link’s clicks count every one', async () => {
    const { program, partner, links } = await network(fixture.ws, 'TEST', 2);
    const [a, b] = links as [(typeof links)[0], (typeof links)[0]];
    for (let i = 0; i < 4; i++) await visit(a.code, BROWSER_USER_AGENT);
    await visit(a.code, BOTS.slack);
    await visit(b.code, FIREFOX);
    await visit(b.code, FIREFOX);
    const rowsA = await rowsOf(a.id);
    const rowsB = await rowsOf(b.id);
    const unique = hoursOf(rowsA.slice(0, 4)) + hoursOf(rowsB);
    const res = await fixture.gql(
      STATS,
      { program: gid('Program', program.id), partner: gid('Partner', partner.id) },
      fixture.admin,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.program?.stats.clicks).toBe(unique);
    expect(res.data?.partner?.stats.clicks).toBe(unique);
    const byCode = new Map(res.data!.partner!.links.map((l) => [l.code, l]));
    expect(byCode.get(a.code)).toEqual({
      code: a.code,
      clicks: 4,
      uniqueClicks: hoursOf(rowsA.slice(0, 4)),
      botClicks: 1,
    });
    expect(byCode.get(b.code)).toEqual({ code: b.code, clicks: 2, uniqueClicks: hoursOf(rowsB), botClicks: 0 });
  });
});

describe('isolation', () => {
  it('another workspace’s or mode’s credentials see nothing of a link’s counts', async () => {
    const { link, program } = await network();
    await visit(link.code, BROWSER_USER_AGENT);
    await visit(link.code, BOTS.facebook);
    expect(await countsOf(link.code)).toMatchObject({ clicks: 1, botClicks: 1 });
    for (const key of [fixture.otherAdmin, fixture.liveAdmin]) {
      const res = await fixture.gql(LINK_COUNTS, { code: link.code }, key);
      expect(res.errors).toBeUndefined();
      expect(res.data?.referralLink).toBeNull();
    }
    // A program of the other workspace with a link of the same shape counts only its own clicks.
    const other = await network(fixture.other);
    await visit(other.link.code, BROWSER_USER_AGENT);
    await fixture.server.app.services.clicks.flush();
    const res = await fixture.gql(
      STATS,
      { program: gid('Program', other.program.id), partner: gid('Partner', other.partner.id) },
      fixture.otherAdmin,
    );
    expect(res.data?.program?.stats.clicks).toBe(1);
    expect(res.data?.partner?.links).toEqual([{ code: other.link.code, clicks: 1, uniqueClicks: 1, botClicks: 0 }]);
    const own = await fixture.gql(
      STATS,
      { program: gid('Program', program.id), partner: gid('Partner', other.partner.id) },
      fixture.admin,
    );
    expect(own.data?.partner).toBeNull(); // the other workspace's partner is not found from here
  });

  it('a PARTNER token sees its own links’ counts and not another partner’s', async () => {
    const mine = await network();
    const theirs = await network();
    for (const n of [mine, theirs]) {
      await visit(n.link.code, BROWSER_USER_AGENT);
      await visit(n.link.code, BROWSER_USER_AGENT);
      await visit(n.link.code, BOTS.google);
    }
    const minted = await fixture.gql(
      PARTNER_TOKEN,
      { input: { partnerId: gid('Partner', mine.partner.id) } },
      fixture.admin,
    );
    const token = minted.data!.createPartnerToken.token!;
    await fixture.server.app.services.clicks.flush();
    const rows = await rowsOf(mine.link.id);
    const own = await fixture.gql(PARTNER_VIEW, { code: mine.link.code }, token);
    expect(own.errors).toBeUndefined();
    expect(own.data?.referralLink).toEqual({
      code: mine.link.code,
      clicks: 2,
      uniqueClicks: hoursOf(rows.slice(0, 2)),
      botClicks: 1,
    });
    expect(own.data?.viewer.partner?.stats.clicks).toBe(hoursOf(rows.slice(0, 2)));
    const other = await fixture.gql(PARTNER_VIEW, { code: theirs.link.code }, token);
    expect(other.errors).toBeUndefined();
    expect(other.data?.referralLink).toBeNull();
  });
});

describe('the batch statement', () => {
  const secret = 'q'.repeat(32);
  const HOUR = 3_600_000;
  /** A row of `link` at `at` from visitor `visitor`, with an id made at that time. */
  const rowAt = (
    link: { id: string; workspaceId: string; mode: Mode; programId: string; partnerId: string },
    at: number,
    visitor: { ipHash: string | null; userAgent: string | null },
    discardReason: DiscardReason | null = null,
  ): ClickRow => ({
    id: formatUuid(new UuidV7Generator().next(at).bytes),
    workspaceId: link.workspaceId,
    mode: link.mode,
    linkId: link.id,
    programId: link.programId,
    partnerId: link.partnerId,
    occurredAt: new Date(at).toISOString(),
    ...visitor,
    referrerUrl: null,
    landingUrl: null,
    discarded: discardReason !== null,
    discardReason,
  });
  const write = (rows: ClickRow[]) => {
    const { text, values } = clickBatchStatement(rows).toQuery();
    return fixture.server.testDb.db.query(text, values);
  };
  const unique = async (linkId: string) =>
    (await fixture.server.testDb.db.prisma.click.findMany({ where: { linkId }, orderBy: { id: 'asc' } })).map(
      (r) => r.isUnique,
    );

  it('counts a visitor once per fixed UTC hour: 10:10 and 10:50 once, 10:59:59.999 and 11:00:00 twice', async () => {
    const { link } = await network();
    const visitor = { ipHash: 'a'.repeat(64), userAgent: BROWSER_USER_AGENT };
    const ten = Date.UTC(2026, 5, 1, 10);
    await write([rowAt(link, ten + 10 * 60_000, visitor), rowAt(link, ten + 50 * 60_000, visitor)]);
    await write([rowAt(link, ten + HOUR - 1, visitor)]); // a later batch, the same hour
    await write([rowAt(link, ten + HOUR, visitor), rowAt(link, ten + HOUR + 1, visitor)]);
    expect(await unique(link.id)).toEqual([true, false, false, true, false]);
  });

  it('marks the earliest click of a visitor in a batch; a bot’s or discarded click is never unique and claims nothing', async () => {
    const { link } = await network();
    const at = Date.UTC(2026, 5, 2, 9);
    const visitor = { ipHash: 'b'.repeat(64), userAgent: FIREFOX };
    const rows = [
      rowAt(link, at, visitor, 'BOT'),
      rowAt(link, at + 1, visitor, 'PARTNER_INACTIVE'),
      rowAt(link, at + 2, visitor),
      rowAt(link, at + 3, visitor),
    ];
    await write([rows[3]!, rows[1]!, rows[2]!, rows[0]!]); // any order in the batch
    expect(await unique(link.id)).toEqual([false, false, true, false]);
  });

  it('writing a committed batch again changes nothing (a retry whose first answer was lost)', async () => {
    const { link } = await network();
    const at = Date.UTC(2026, 5, 3, 9);
    const rows = [
      rowAt(link, at, { ipHash: 'c'.repeat(64), userAgent: null }),
      rowAt(link, at + 1, { ipHash: 'c'.repeat(64), userAgent: null }),
    ];
    await write(rows);
    await write(rows);
    expect(await unique(link.id)).toEqual([true, false]);
  });

  it('two batches written at once with the same visitor make exactly one unique click', async () => {
    const { link } = await network();
    const at = Date.UTC(2026, 5, 4, 9);
    const others = (n: number) =>
      Array.from({ length: 50 }, (_, i) =>
        rowAt(link, at + 10 + i, { ipHash: `${n}${i}`.padEnd(64, 'e'), userAgent: null }),
      );
    const visitor = { ipHash: 'd'.repeat(64), userAgent: FIREFOX };
    // Each batch holds the shared visitor and visitors of its own, in the other's key order too.
    await Promise.all([
      write([rowAt(link, at, visitor), ...others(1), ...others(2).slice(0, 10)]),
      write([rowAt(link, at + 1, visitor), ...others(2).slice(10), ...others(1).slice(0, 5)]),
    ]);
    const rows = await fixture.server.testDb.db.prisma.click.findMany({
      where: { linkId: link.id, ipHash: visitor.ipHash },
    });
    expect(rows.filter((r) => r.isUnique)).toHaveLength(1);
  });

  it('pruneVisitors deletes the hours before the previous one', async () => {
    const { link } = await network();
    const recorder = new ClickRecorder({ query: fixture.server.testDb.db.query, secret });
    const twelve = Date.UTC(2026, 5, 5, 12);
    const visitor = { ipHash: 'f'.repeat(64), userAgent: FIREFOX };
    for (const at of [twelve - 2 * HOUR + 5, twelve - HOUR + 5, twelve + 5]) await write([rowAt(link, at, visitor)]);
    const visitors = () =>
      fixture.server.testDb.db.sql<{ hour: Date }>`
        SELECT "hour" FROM "ClickVisitor" WHERE "linkId" = ${link.id}::uuid ORDER BY "hour"`;
    expect(await visitors()).toHaveLength(3);
    expect(await recorder.pruneVisitors(new Date(twelve + 30 * 60_000))).toBeGreaterThanOrEqual(1);
    expect((await visitors()).map((r) => new Date(r.hour).getTime())).toEqual([twelve - HOUR, twelve]);
    expect(recorder.stats().visitorsPruned).toBeGreaterThanOrEqual(1);
    await recorder.stop();
  });
});
