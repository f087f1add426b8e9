// Time series, leaderboards and Query.stats (src/modules/reporting/README.md), read from the
// rollups: bucket edges in time zones with DST and half-hour offsets, empty buckets, `from`
// inclusive / `to` exclusive, money per currency, validation, isolation, statement counts.
import { beforeAll, describe, expect, it } from 'vitest';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { seriesFor } from '../src/modules/reporting/reporting.service.js';
import { graphql } from './gql/index.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken } from './helpers/money.js';

// AUTH_CACHE_TTL_MS=0: the statement counts below include the key lookup every time (a cache that expired
// between two requests made one count 6 and the other 5 on a loaded machine).
const fixture = useTwoWorkspaces({
  env: { APPROVAL_JOB_INTERVAL_MS: '0', AUTH_CACHE_TTL_MS: '0' },
  names: ['Reporting A', 'Reporting B'],
});

const at = (iso: string) => new Date(iso);
const usd = (amount: string) => ({ amount, currency: 'USD' });
const eur = (amount: string) => ({ amount, currency: 'EUR' });

/**
 * The same small world in three tenants (A TEST, A LIVE, B TEST): a figure leaking across a
 * workspace or mode would double. Times are chosen on bucket edges (see the tests).
 */
async function seed(prisma: PrismaClient, tenant: Tenant) {
  const f = factories(prisma, tenant);
  const program = await f.program({ currency: 'USD' });
  const rule = await f.rule(program.id);
  const enroll = async (externalId: string) => {
    const partner = await f.partner({ externalId });
    const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
    return { partner, link: await f.link(enrollment) };
  };
  const alice = await enroll('alice');
  const bob = await enroll('bob');
  const carol = await enroll('carol');
  const fillers = [];
  for (let i = 0; i < 8; i++) fillers.push(await enroll(`filler-${i}`));
  // Alice: Paris DST start (29 March 2026, a 23-hour day): 23:59 local on the 29th, then 00:00 and 00:05 on the 30th.
  await f.clicks(alice.link, 1, { occurredAt: at('2026-01-15T12:00:00Z') });
  await f.clicks(alice.link, 1, { occurredAt: at('2026-03-29T21:59:00Z') });
  await f.clicks(alice.link, 1, { occurredAt: at('2026-03-29T22:00:00Z') });
  await f.clicks(alice.link, 1, { occurredAt: at('2026-03-29T22:05:00Z'), isUnique: false });
  await f.clicks(alice.link, 1, { occurredAt: at('2026-03-29T22:06:00Z'), discarded: true });
  // Bob: Asia/Kolkata (+05:30): 23:59 local on 10 May, then 00:00 on the 11th.
  await f.clicks(bob.link, 1, { occurredAt: at('2026-05-10T18:29:00Z') });
  await f.clicks(bob.link, 1, { occurredAt: at('2026-05-10T18:30:00Z') });
  // Carol: Paris DST end (25 October 2026, a 25-hour day): 23:30 local on the 25th, then 00:00 on the 26th.
  await f.clicks(carol.link, 1, { occurredAt: at('2026-10-25T22:30:00Z') });
  await f.clicks(carol.link, 1, { occurredAt: at('2026-10-25T23:00:00Z') });

  const [referral] = await f.referrals([
    {
      programId: program.id,
      partnerId: alice.partner.id,
      linkId: alice.link.id,
      status: 'CONVERTED',
      createdAt: at('2026-03-29T09:00:00Z'),
      convertedAt: at('2026-03-30T09:00:00Z'),
    },
  ]);
  const base = { programId: program.id, referralId: referral!.id };
  const [aliceUsd, , bobUsd] = await f.conversions([
    {
      ...base,
      partnerId: alice.partner.id,
      linkId: alice.link.id,
      amount: 5000n,
      currency: 'USD',
      occurredAt: at('2026-03-29T10:00:00Z'),
    },
    {
      ...base,
      partnerId: alice.partner.id,
      linkId: alice.link.id,
      amount: 2000n,
      currency: 'EUR',
      occurredAt: at('2026-03-29T10:00:00Z'),
    },
    {
      ...base,
      partnerId: bob.partner.id,
      linkId: bob.link.id,
      amount: 1000n,
      currency: 'USD',
      occurredAt: at('2026-05-10T12:00:00Z'),
    },
    {
      ...base,
      partnerId: bob.partner.id,
      linkId: bob.link.id,
      amount: 9999n,
      currency: 'USD',
      status: 'DISCARDED',
      occurredAt: at('2026-05-10T12:00:00Z'),
    },
  ]);
  await f.rewards([
    {
      programId: program.id,
      partnerId: alice.partner.id,
      conversionId: aliceUsd!.id,
      ruleId: rule.id,
      amount: 500n,
      currency: 'USD',
      status: 'APPROVED',
      createdAt: at('2026-03-29T10:00:00Z'),
    },
    {
      programId: program.id,
      partnerId: bob.partner.id,
      conversionId: bobUsd!.id,
      ruleId: rule.id,
      amount: 100n,
      currency: 'USD',
      status: 'CANCELED',
      createdAt: at('2026-05-10T12:00:00Z'),
    },
  ]);
  return { program, alice, bob, carol, fillers };
}

let data: Awaited<ReturnType<typeof seed>>;

beforeAll(async () => {
  const prisma = fixture.server.testDb.db.prisma;
  data = await seed(prisma, fixture.tenant);
  await seed(prisma, { workspaceId: fixture.tenant.workspaceId, mode: 'LIVE' });
  await seed(prisma, fixture.otherTenant);
});

const PROGRAM_SERIES = graphql(`
  query RP_ProgramSeries($id: ID!, $interval: Interval!, $from: DateTime!, $to: DateTime!, $tz: String) {
    node(id: $id) {
      ... on Program {
        timeseries(interval: $interval, from: $from, to: $to, timezone: $tz) {
          start clicks referrals convertedReferrals conversions revenue { amount currency } rewards { amount currency }
        }
      }
    }
  }
`);

const PARTNER_SERIES = graphql(`
  query RP_PartnerSeries($id: ID!, $from: DateTime!, $to: DateTime!, $tz: String) {
    node(id: $id) {
      ... on Partner { timeseries(interval: DAY, from: $from, to: $to, timezone: $tz) { start clicks conversions } }
      ... on ReferralLink { timeseries(interval: DAY, from: $from, to: $to, timezone: $tz) { start clicks conversions } }
    }
  }
`);

async function programSeries(
  vars: { interval: 'DAY' | 'WEEK' | 'MONTH'; from: string; to: string; tz?: string },
  token = fixture.admin,
) {
  const res = await fixture.gql(PROGRAM_SERIES, { id: gid('Program', data.program.id), ...vars }, token);
  return res;
}

const series = async (vars: Parameters<typeof programSeries>[0]) => {
  const res = await programSeries(vars);
  expect(res.errors).toBeUndefined();
  return (res.data!.node as { timeseries: Array<Record<string, unknown>> }).timeseries;
};

const empty = { clicks: 0, referrals: 0, convertedReferrals: 0, conversions: 0, revenue: [], rewards: [] };

describe('Program.timeseries', () => {
  it('starts DAY buckets at local midnight, 23 hours on the DST start, every bucket present, from inclusive / to exclusive', async () => {
    // from: 13:00 local on the 28th (inside the first bucket); to: local midnight of the 31st (excluded).
    const buckets = await series({
      interval: 'DAY',
      from: '2026-03-28T12:00:00Z',
      to: '2026-03-30T22:00:00Z',
      tz: 'Europe/Paris',
    });
    expect(buckets).toEqual([
      { start: '2026-03-27T23:00:00.000Z', ...empty },
      {
        start: '2026-03-28T23:00:00.000Z',
        clicks: 1,
        referrals: 1,
        convertedReferrals: 0,
        conversions: 2,
        revenue: [eur('20.00'), usd('50.00')],
        rewards: [usd('5.00')],
      },
      // 23 hours after the previous start; the repeat (not unique) and the discarded click do not count
      { start: '2026-03-29T22:00:00.000Z', ...empty, clicks: 1, convertedReferrals: 1 },
    ]);
  });

  it('has 25-hour days on the DST end', async () => {
    const buckets = await series({
      interval: 'DAY',
      from: '2026-10-24T22:00:00Z',
      to: '2026-10-26T23:00:00Z',
      tz: 'Europe/Paris',
    });
    expect(buckets.map((b) => [b.start, b.clicks])).toEqual([
      ['2026-10-24T22:00:00.000Z', 1],
      ['2026-10-25T23:00:00.000Z', 1],
    ]);
  });

  it('splits days exactly at a half-hour offset’s midnight (Asia/Kolkata)', async () => {
    const buckets = await series({
      interval: 'DAY',
      from: '2026-05-09T18:30:00Z',
      to: '2026-05-11T18:30:00Z',
      tz: 'Asia/Kolkata',
    });
    expect(buckets.map((b) => [b.start, b.clicks, b.conversions])).toEqual([
      ['2026-05-09T18:30:00.000Z', 1, 1],
      ['2026-05-10T18:30:00.000Z', 1, 0],
    ]);
    // the same instants in UTC are one day
    const utc = await series({ interval: 'DAY', from: '2026-05-10T00:00:00Z', to: '2026-05-11T00:00:00Z' });
    expect(utc.map((b) => [b.start, b.clicks])).toEqual([['2026-05-10T00:00:00.000Z', 2]]);
  });

  it('starts WEEK on Monday and MONTH on the 1st, at local midnight; a `to` on a bucket start excludes it', async () => {
    const weeks = await series({
      interval: 'WEEK',
      from: '2026-03-29T10:00:00Z',
      to: '2026-03-31T00:00:00Z',
      tz: 'Europe/Paris',
    });
    expect(weeks.map((b) => [b.start, b.clicks])).toEqual([
      ['2026-03-22T23:00:00.000Z', 1], // Monday 23 March, local midnight (CET)
      ['2026-03-29T22:00:00.000Z', 1], // Monday 30 March (CEST)
    ]);
    const months = await series({ interval: 'MONTH', from: '2026-01-01T00:00:00Z', to: '2026-04-01T00:00:00Z' });
    expect(months.map((b) => [b.start, b.clicks])).toEqual([
      ['2026-01-01T00:00:00.000Z', 1],
      ['2026-02-01T00:00:00.000Z', 0],
      ['2026-03-01T00:00:00.000Z', 2],
    ]);
  });

  it('refuses an unknown time zone, an offset, a reversed window and too many buckets (BAD_USER_INPUT)', async () => {
    for (const [vars, field] of [
      [
        { interval: 'DAY', from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', tz: 'Mars/Olympus_Mons' },
        'timezone',
      ],
      [{ interval: 'DAY', from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', tz: '+05:30' }, 'timezone'],
      [{ interval: 'DAY', from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', tz: 'UTC+3' }, 'timezone'],
      [{ interval: 'DAY', from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }, 'from'],
      [{ interval: 'DAY', from: '2020-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, 'to'],
    ] as const) {
      const res = await programSeries(vars);
      expect(res.errors?.[0]?.extensions, JSON.stringify(vars)).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: [field],
      });
    }
    // the longest DAY window allowed
    const ok = await series({ interval: 'DAY', from: '2024-01-01T00:00:00Z', to: '2026-09-25T00:00:00Z' });
    expect(ok.length).toBeLessThanOrEqual(1000);
  });
});

const LEADERBOARD = graphql(`
  query RP_Leaderboard($id: ID!, $metric: LeaderboardMetric!, $first: Int) {
    node(id: $id) { ... on Program { leaderboard(metric: $metric, first: $first) { rank value partner { externalId } } } }
  }
`);

describe('Program.leaderboard', () => {
  const board = async (metric: 'CLICKS' | 'CONVERTED_REFERRALS' | 'REVENUE' | 'REWARDS', first = 10) => {
    const res = await fixture.gql(LEADERBOARD, { id: gid('Program', data.program.id), metric, first }, fixture.admin);
    expect(res.errors).toBeUndefined();
    return (
      res.data!.node as { leaderboard: Array<{ rank: number; value: string; partner: { externalId: string } }> }
    ).leaderboard.map((e) => [e.rank, e.partner.externalId, e.value]);
  };

  it('ranks partners, ties sharing a rank, money in the program’s currency, zeros left out', async () => {
    const clicks = await board('CLICKS');
    expect(clicks[0]).toEqual([1, 'alice', '3']);
    expect(clicks.slice(1).map(([rank, , value]) => [rank, value])).toEqual([
      [2, '2'],
      [2, '2'],
    ]);
    expect(await board('REVENUE')).toEqual([
      [1, 'alice', '50.00'],
      [2, 'bob', '10.00'],
    ]);
    expect(await board('REWARDS')).toEqual([[1, 'alice', '5.00']]);
    expect(await board('CONVERTED_REFERRALS')).toEqual([[1, 'alice', '1']]);
    expect(await board('CLICKS', 1)).toHaveLength(1);
    const res = await fixture.gql(
      LEADERBOARD,
      { id: gid('Program', data.program.id), metric: 'CLICKS', first: 101 },
      fixture.admin,
    );
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: ['first'] });
  });
});

const STATS = graphql(`
  query RP_Stats($from: DateTime, $to: DateTime) {
    stats(from: $from, to: $to) {
      programs partners clicks conversions revenue { amount currency }
      rewards { created { amount currency } approved { amount currency } canceled { amount currency } }
    }
  }
`);

describe('Query.stats', () => {
  it('totals the workspace in the caller’s mode, over all time or a window', async () => {
    const all = await fixture.gql(STATS, {}, fixture.admin);
    expect(all.errors).toBeUndefined();
    expect(all.data!.stats).toEqual({
      programs: 1,
      partners: 11,
      clicks: 7,
      conversions: 3,
      revenue: [eur('20.00'), usd('60.00')],
      rewards: { created: [], approved: [usd('5.00')], canceled: [usd('1.00')] },
    });
    const march = await fixture.gql(STATS, { from: '2026-03-01T00:00:00Z', to: '2026-04-01T00:00:00Z' }, fixture.admin);
    expect(march.data!.stats).toMatchObject({
      programs: 0,
      clicks: 2,
      conversions: 2,
      revenue: [eur('20.00'), usd('50.00')],
    });
  });

  it('is refused to a PARTNER credential', async () => {
    const token = await partnerToken(fixture.server, fixture.admin, data.alice.partner.id);
    const res = await fixture.gql(STATS, {}, token);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});

describe('isolation', () => {
  it('a PARTNER token reads its own partner’s and links’ series, not the program’s', async () => {
    const token = await partnerToken(fixture.server, fixture.admin, data.bob.partner.id);
    const vars = { from: '2026-05-09T18:30:00Z', to: '2026-05-11T18:30:00Z', tz: 'Asia/Kolkata' };
    const own = await fixture.gql(PARTNER_SERIES, { id: gid('Partner', data.bob.partner.id), ...vars }, token);
    expect(own.errors).toBeUndefined();
    expect(own.data!.node).toEqual({
      timeseries: [
        { start: '2026-05-09T18:30:00.000Z', clicks: 1, conversions: 1 },
        { start: '2026-05-10T18:30:00.000Z', clicks: 1, conversions: 0 },
      ],
    });
    const link = await fixture.gql(PARTNER_SERIES, { id: gid('ReferralLink', data.bob.link.id), ...vars }, token);
    expect(link.data!.node).toEqual(own.data!.node);
    // another partner: not reachable, or all zeros
    const other = await fixture.gql(PARTNER_SERIES, { id: gid('Partner', data.alice.partner.id), ...vars }, token);
    const otherSeries = (other.data?.node as { timeseries?: Array<{ clicks: number; conversions: number }> } | null)
      ?.timeseries;
    for (const b of otherSeries ?? []) expect([b.clicks, b.conversions]).toEqual([0, 0]);
    // and the statement itself is narrowed to the credential's partner: asked for Alice as Bob, zeros
    const db = fixture.server.testDb.db;
    const args = {
      interval: 'DAY' as const,
      from: at('2026-03-29T00:00:00Z'),
      to: at('2026-03-31T00:00:00Z'),
      timezone: 'UTC',
    };
    const asBob = await seriesFor(
      db,
      { ...fixture.tenant, partnerId: data.bob.partner.id },
      'partnerId',
      [data.alice.partner.id],
      args,
    );
    const asAlice = await seriesFor(
      db,
      { ...fixture.tenant, partnerId: data.alice.partner.id },
      'partnerId',
      [data.alice.partner.id],
      args,
    );
    expect(asBob.get(data.alice.partner.id)!.map((b) => b.clicks + b.conversions)).toEqual([0, 0]);
    expect(asAlice.get(data.alice.partner.id)!.map((b) => b.clicks + b.conversions)).toEqual([4, 0]);
    const program = await programSeries({ interval: 'DAY', ...vars }, token);
    expect(program.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });

  it('another workspace’s and the other mode’s credentials see their own copies, not these', async () => {
    // The LIVE copy answers the LIVE key alone: its own program id, same figures.
    const prisma = fixture.server.testDb.db.prisma;
    const live = await prisma.program.findFirstOrThrow({
      where: { workspaceId: fixture.tenant.workspaceId, mode: 'LIVE' },
    });
    const res = await fixture.gql(
      PROGRAM_SERIES,
      { id: gid('Program', live.id), interval: 'MONTH', from: '2026-01-01T00:00:00Z', to: '2026-04-01T00:00:00Z' },
      fixture.liveAdmin,
    );
    expect((res.data!.node as { timeseries: Array<{ clicks: number }> }).timeseries.map((b) => b.clicks)).toEqual([
      1, 0, 2,
    ]);
    // A's TEST program through B's key: not found
    const foreign = await fixture.gql(
      PROGRAM_SERIES,
      {
        id: gid('Program', data.program.id),
        interval: 'MONTH',
        from: '2026-01-01T00:00:00Z',
        to: '2026-04-01T00:00:00Z',
      },
      fixture.otherAdmin,
    );
    expect(foreign.data?.node ?? null).toBeNull();
    const otherStats = await fixture.gql(STATS, {}, fixture.otherAdmin);
    expect(otherStats.data!.stats.clicks).toBe(7);
  });
});

const PARTNER_LIST = graphql(`
  query RP_PartnerList($n: Int!) {
    partners(first: $n) {
      edges {
        node {
          timeseries(interval: MONTH, from: "2026-01-01T00:00:00Z", to: "2026-12-01T00:00:00Z", timezone: "Europe/Paris") { start clicks revenue { amount currency } }
        }
      }
    }
    programs(first: 5) { edges { node { leaderboard(metric: CLICKS) { rank partner { id } } } } }
  }
`);

const LINK_LIST = graphql(`
  query RP_LinkList($ids: [ID!]!) {
    nodes(ids: $ids) {
      ... on ReferralLink { timeseries(interval: DAY, from: "2026-03-01T00:00:00Z", to: "2026-04-01T00:00:00Z") { clicks } }
    }
  }
`);

describe('statement counts', () => {
  it('are the same for 2 partners as for 11', async () => {
    const counts = [];
    for (const n of [2, 11]) {
      const { body, statements } = await fixture.server.gqlCounted(PARTNER_LIST, { n }, fixture.admin);
      expect(body.errors).toBeUndefined();
      expect(body.data!.partners.edges).toHaveLength(n);
      counts.push(statements);
    }
    expect(counts[0]).toBe(counts[1]);
  });

  it('are the same for 2 links as for 11', async () => {
    const links = [data.alice, data.bob, data.carol, ...data.fillers].map((e) => gid('ReferralLink', e.link.id));
    const counts = [];
    for (const ids of [links.slice(0, 2), links]) {
      const { body, statements } = await fixture.server.gqlCounted(LINK_LIST, { ids }, fixture.admin);
      expect(body.errors).toBeUndefined();
      expect(body.data!.nodes).toHaveLength(ids.length);
      counts.push(statements);
    }
    expect(counts[0]).toBe(counts[1]);
  });
});

describe('the database connections', () => {
  // The reads' row estimates (a series of 366 buckets, each cut into pieces) put them above
  // PostgreSQL's jit_above_cost: JIT compiled for 0.7 s to run 30 ms (BENCHMARKS.md, "scale").
  it('run without JIT on PostgreSQL, for the app and Prisma alike', async () => {
    const db = fixture.server.testDb.db;
    if (db.kind !== 'postgres') return; // PGlite has no JIT
    expect(await db.sql<{ jit: string }>`SHOW jit`).toEqual([{ jit: 'off' }]);
    expect(await db.prisma.$queryRawUnsafe('SHOW jit')).toEqual([{ jit: 'off' }]);
  });
});
