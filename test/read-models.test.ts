import { beforeAll, describe, expect, it } from 'vitest';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { graphql } from './gql/index.js';
import { factories, gid, uuidv7, type Tenant } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

// No approval job: rewards keep the statuses seeded here.
const fixture = useTwoWorkspaces({ env: { APPROVAL_JOB_INTERVAL_MS: '0' }, names: ['Read models A', 'Read models B'] });

let mine: Seeded;
let live: Seeded;
let foreign: Seeded;

const at = (iso: string) => new Date(iso);
type Seeded = Awaited<ReturnType<typeof seed>>;

/** Referrals, conversions, rewards and payouts with known order and timestamps; seeded into three tenants. */
async function seed(prisma: PrismaClient, tenant: Tenant) {
  const f = factories(prisma, tenant);
  const friends = await f.program({ name: 'Friends', currency: 'USD' });
  const japan = await f.program({ name: 'Japan', currency: 'JPY' });
  const cash = await f.rule(friends.id, { fixedAmount: 247n });
  const credit = await f.rule(friends.id, { recipient: 'REFERRED', kind: 'CREDIT', fixedAmount: 100n });
  const yen = await f.rule(japan.id, { fixedAmount: 150n, fixedCurrency: 'JPY' });
  const alice = await f.partner({ externalId: 'alice' });
  const bob = await f.partner({ externalId: 'bob' });
  const aliceFriends = await f.enrollment({ programId: friends.id, partnerId: alice.id });
  const bobFriends = await f.enrollment({ programId: friends.id, partnerId: bob.id });
  const aliceJapan = await f.enrollment({ programId: japan.id, partnerId: alice.id });
  const la1 = await f.link(aliceFriends);
  await f.link(bobFriends);
  await f.link(aliceJapan);

  const [ra1, ra2, ra3, rb1] = await f.referrals([
    {
      programId: friends.id,
      partnerId: alice.id,
      linkId: la1.id,
      status: 'PENDING',
      externalId: 'r-1',
      email: 'r1@example.com',
      createdAt: at('2025-01-01T00:00:00Z'),
    },
    {
      programId: friends.id,
      partnerId: alice.id,
      status: 'CONVERTED',
      externalId: 'r-2',
      createdAt: at('2025-01-02T00:00:00Z'),
      convertedAt: at('2025-01-02T00:00:00Z'),
    },
    {
      programId: japan.id,
      partnerId: alice.id,
      status: 'CONVERTED',
      externalId: 'r-3',
      createdAt: at('2025-01-03T00:00:00Z'),
      convertedAt: at('2025-01-03T00:00:00Z'),
    },
    {
      programId: friends.id,
      partnerId: bob.id,
      status: 'REJECTED',
      externalId: 'r-4',
      createdAt: at('2025-01-04T00:00:00Z'),
    },
  ]);
  const [c1, c2, c3, c4, c5, c6] = await f.conversions([
    {
      programId: friends.id,
      partnerId: alice.id,
      referralId: ra1!.id,
      type: 'SIGNUP',
      referredExternalId: 'r-1',
      occurredAt: at('2025-01-01T00:00:00Z'),
    },
    {
      programId: friends.id,
      partnerId: alice.id,
      referralId: ra2!.id,
      type: 'PURCHASE',
      amount: 1235n,
      currency: 'USD',
      occurredAt: at('2025-01-02T00:00:00Z'),
    },
    {
      programId: japan.id,
      partnerId: alice.id,
      referralId: ra3!.id,
      type: 'PURCHASE',
      amount: 1500n,
      currency: 'JPY',
      occurredAt: at('2025-01-03T00:00:00Z'),
    },
    {
      programId: friends.id,
      partnerId: alice.id,
      referralId: ra2!.id,
      type: 'REFUND',
      amount: 1235n,
      currency: 'USD',
      occurredAt: at('2025-01-05T00:00:00Z'),
    },
    {
      type: 'PURCHASE',
      status: 'DISCARDED',
      discardReason: 'UNKNOWN_CODE',
      amount: 500n,
      currency: 'USD',
      occurredAt: at('2025-01-06T00:00:00Z'),
    },
    {
      programId: friends.id,
      partnerId: bob.id,
      referralId: rb1!.id,
      type: 'SIGNUP',
      occurredAt: at('2025-01-04T00:00:00Z'),
    },
  ]);
  await prisma.conversion.update({ where: { id: c4!.id }, data: { refundOfId: c2!.id } });
  const paid = await f.payout({
    partnerId: alice.id,
    amount: 150n,
    currency: 'JPY',
    status: 'PAID',
    externalReference: 'wire-42',
    paidAt: at('2025-01-10T00:00:00Z'),
  });
  const failed = await f.payout({ partnerId: bob.id, amount: 100n, currency: 'USD', status: 'FAILED' });
  const w1Id = uuidv7();
  const [w1, w2, w3, w4, w5] = await f.rewards([
    {
      id: w1Id,
      programId: friends.id,
      partnerId: alice.id,
      conversionId: c2!.id,
      ruleId: cash.id,
      amount: 247n,
      currency: 'USD',
      status: 'APPROVED',
      createdAt: at('2025-01-02T00:00:00Z'),
    },
    {
      programId: friends.id,
      partnerId: alice.id,
      conversionId: c2!.id,
      ruleId: credit.id,
      recipient: 'REFERRED',
      kind: 'CREDIT',
      amount: 100n,
      currency: 'USD',
      createdAt: at('2025-01-02T00:00:00Z'),
    },
    {
      programId: japan.id,
      partnerId: alice.id,
      conversionId: c3!.id,
      ruleId: yen.id,
      amount: 150n,
      currency: 'JPY',
      status: 'PROCESSED',
      payoutId: paid.id,
      createdAt: at('2025-01-03T00:00:00Z'),
    },
    {
      programId: friends.id,
      partnerId: bob.id,
      conversionId: c6!.id,
      ruleId: cash.id,
      amount: 100n,
      currency: 'USD',
      status: 'CANCELED',
      createdAt: at('2025-01-04T00:00:00Z'),
    },
    {
      programId: friends.id,
      partnerId: alice.id,
      conversionId: c4!.id,
      ruleId: cash.id,
      amount: -247n,
      currency: 'USD',
      sourceRewardId: w1Id,
      createdAt: at('2025-01-05T00:00:00Z'),
    },
  ]);
  return {
    friends,
    japan,
    cash,
    credit,
    yen,
    alice,
    bob,
    la1,
    paid,
    failed,
    referrals: { ra1: ra1!, ra2: ra2!, ra3: ra3!, rb1: rb1! },
    conversions: { c1: c1!, c2: c2!, c3: c3!, c4: c4!, c5: c5!, c6: c6! },
    rewards: { w1: w1!, w2: w2!, w3: w3!, w4: w4!, w5: w5! },
  };
}

beforeAll(async () => {
  const prisma = fixture.server.testDb.db.prisma;
  mine = await seed(prisma, fixture.tenant);
  live = await seed(prisma, { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
  foreign = await seed(prisma, fixture.otherTenant);
});

async function partnerToken(partnerId: string): Promise<string> {
  const res = await fixture.gql(
    'mutation($input: CreatePartnerTokenInput!) { createPartnerToken(input: $input) { token userErrors { code message } } }',
    { input: { partnerId: gid('Partner', partnerId) } },
    fixture.admin,
  );
  return (res.data as { createPartnerToken: { token: string } }).createPartnerToken.token;
}

/** Ids that must behave exactly like missing ones: another workspace, the other mode, another type, malformed. */
function outsiders(type: 'Program' | 'Partner', pick: (s: Seeded) => { id: string }) {
  return {
    'another workspace': gid(type, pick(foreign).id),
    'the other mode': gid(type, pick(live).id),
    'another type': gid(type === 'Program' ? 'Partner' : 'Program', pick(mine).id),
    'a malformed uuid': gid(type, 'not-a-uuid'),
    garbage: 'garbage',
  };
}

const REWARDS = graphql(`
  query RM_Rewards($first: Int, $after: String, $filter: RewardFilter) {
    rewards(first: $first, after: $after, filter: $filter) {
      __typename
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id } }
    }
  }
`);

const CONVERSIONS = graphql(`
  query RM_Conversions($first: Int, $after: String, $filter: ConversionFilter) {
    conversions(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id } }
    }
  }
`);

const rewardIds = (...rows: Array<{ id: string }>) => rows.map((r) => gid('Reward', r.id));
const conversionIds = (...rows: Array<{ id: string }>) => rows.map((r) => gid('Conversion', r.id));

describe('Query.rewards', () => {
  async function rewards(filter: Record<string, unknown> | null, token = fixture.admin) {
    const res = await fixture.gql(REWARDS, { filter: filter as never }, token);
    expect(res.errors).toBeUndefined();
    return { ids: res.data!.rewards.edges.map((e) => e.node.id), totalCount: res.data!.rewards.totalCount };
  }

  it('lists the tenant’s rewards newest first with a total', async () => {
    const { w1, w2, w3, w4, w5 } = mine.rewards;
    expect(await rewards(null)).toEqual({ ids: rewardIds(w5, w4, w3, w2, w1), totalCount: 5 });
  });

  it('pages with first/after and keeps the total on every page', async () => {
    const { w1, w2, w3, w4, w5 } = mine.rewards;
    const first = await fixture.gql(REWARDS, { first: 2 }, fixture.admin);
    expect(first.data?.rewards.edges.map((e) => e.node.id)).toEqual(rewardIds(w5, w4));
    expect(first.data?.rewards.pageInfo.hasNextPage).toBe(true);
    const second = await fixture.gql(
      REWARDS,
      { first: 2, after: first.data!.rewards.pageInfo.endCursor },
      fixture.admin,
    );
    expect(second.data?.rewards.edges.map((e) => e.node.id)).toEqual(rewardIds(w3, w2));
    const third = await fixture.gql(
      REWARDS,
      { first: 2, after: second.data!.rewards.pageInfo.endCursor },
      fixture.admin,
    );
    expect(third.data?.rewards.edges.map((e) => e.node.id)).toEqual(rewardIds(w1));
    expect(third.data?.rewards.pageInfo.hasNextPage).toBe(false);
    expect([first, second, third].map((r) => r.data?.rewards.totalCount)).toEqual([5, 5, 5]);
  });

  it('answers an empty page for a cursor that does not hold a row id', async () => {
    const bogus = Buffer.from('GPC:S:not-a-uuid').toString('base64');
    const res = await fixture.gql(REWARDS, { first: 2, after: bogus }, fixture.admin);
    expect(res.errors).toBeUndefined();
    expect(res.data?.rewards.edges).toEqual([]);
    const missing = Buffer.from(`GPC:S:${uuidv7()}`).toString('base64');
    const none = await fixture.gql(REWARDS, { first: 2, after: missing }, fixture.admin);
    expect(none.errors).toBeUndefined();
    expect(none.data?.rewards.edges).toEqual([]);
  });

  it('filters by program, partner, partner externalId, statuses and creation time', async () => {
    const { w1, w2, w3, w4, w5 } = mine.rewards;
    expect(await rewards({ programId: gid('Program', mine.friends.id) })).toEqual({
      ids: rewardIds(w5, w4, w2, w1),
      totalCount: 4,
    });
    expect(await rewards({ programId: gid('Program', mine.japan.id) })).toEqual({ ids: rewardIds(w3), totalCount: 1 });
    expect(await rewards({ partnerId: gid('Partner', mine.bob.id) })).toEqual({ ids: rewardIds(w4), totalCount: 1 });
    expect(await rewards({ partnerExternalId: 'alice' })).toEqual({ ids: rewardIds(w5, w3, w2, w1), totalCount: 4 });
    expect(await rewards({ partnerExternalId: 'nobody' })).toEqual({ ids: [], totalCount: 0 });
    expect(await rewards({ status: ['CREATED', 'CANCELED'] })).toEqual({ ids: rewardIds(w5, w4, w2), totalCount: 3 });
    expect(await rewards({ status: [] })).toEqual({ ids: rewardIds(w5, w4, w3, w2, w1), totalCount: 5 });
    expect(await rewards({ createdFrom: '2025-01-03T00:00:00Z' })).toEqual({
      ids: rewardIds(w5, w4, w3),
      totalCount: 3,
    });
    expect(await rewards({ createdTo: '2025-01-03T00:00:00Z' })).toEqual({ ids: rewardIds(w2, w1), totalCount: 2 });
    expect(await rewards({ createdFrom: '2025-01-02T00:00:00Z', createdTo: '2025-01-04T00:00:00Z' })).toEqual({
      ids: rewardIds(w3, w2, w1),
      totalCount: 3,
    });
    expect(
      await rewards({
        programId: gid('Program', mine.friends.id),
        partnerExternalId: 'alice',
        partnerId: gid('Partner', mine.alice.id),
        status: ['APPROVED'],
      }),
    ).toEqual({ ids: rewardIds(w1), totalCount: 1 });
  });

  it('matches nothing for a programId or partnerId outside the tenant, of another type or malformed', async () => {
    for (const [what, programId] of Object.entries(outsiders('Program', (s) => s.friends))) {
      expect(await rewards({ programId }), what).toEqual({ ids: [], totalCount: 0 });
    }
    for (const [what, partnerId] of Object.entries(outsiders('Partner', (s) => s.alice))) {
      expect(await rewards({ partnerId }), what).toEqual({ ids: [], totalCount: 0 });
    }
  });

  it('never lists another workspace’s or mode’s rewards', async () => {
    const liveRes = await fixture.gql(REWARDS, {}, fixture.liveAdmin);
    expect(liveRes.data?.rewards.edges.map((e) => e.node.id)).toEqual(
      rewardIds(live.rewards.w5, live.rewards.w4, live.rewards.w3, live.rewards.w2, live.rewards.w1),
    );
    const otherRes = await fixture.gql(REWARDS, {}, fixture.otherAdmin);
    expect(otherRes.data?.rewards.totalCount).toBe(5);
    expect(otherRes.data?.rewards.edges.map((e) => e.node.id)).not.toContain(gid('Reward', mine.rewards.w1.id));
  });

  it('is for ADMIN and READ_ONLY credentials only', async () => {
    const created = await fixture.gql(
      'mutation { createApiKey(input: { name: "reader", role: READ_ONLY }) { secret } }',
      {},
      fixture.admin,
    );
    const reader = (created.data as { createApiKey: { secret: string } }).createApiKey.secret;
    expect((await rewards(null, reader)).totalCount).toBe(5);
    const token = await partnerToken(mine.alice.id);
    const refused = await fixture.gql(REWARDS, {}, token);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const anonymous = await fixture.gql(REWARDS, {});
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('Query.conversions', () => {
  async function conversions(filter: Record<string, unknown> | null, token = fixture.admin) {
    const res = await fixture.gql(CONVERSIONS, { filter: filter as never }, token);
    expect(res.errors).toBeUndefined();
    return { ids: res.data!.conversions.edges.map((e) => e.node.id), totalCount: res.data!.conversions.totalCount };
  }

  it('lists accepted and discarded conversions newest first, paged', async () => {
    const { c1, c2, c3, c4, c5, c6 } = mine.conversions;
    expect(await conversions(null)).toEqual({ ids: conversionIds(c6, c5, c4, c3, c2, c1), totalCount: 6 });
    const page = await fixture.gql(CONVERSIONS, { first: 4 }, fixture.admin);
    const rest = await fixture.gql(
      CONVERSIONS,
      { first: 4, after: page.data!.conversions.pageInfo.endCursor },
      fixture.admin,
    );
    expect(rest.data?.conversions.edges.map((e) => e.node.id)).toEqual(conversionIds(c2, c1));
    expect(rest.data?.conversions.pageInfo.hasNextPage).toBe(false);
    const bogus = await fixture.gql(CONVERSIONS, { after: Buffer.from('GPC:S:1').toString('base64') }, fixture.admin);
    expect(bogus.errors).toBeUndefined();
    expect(bogus.data?.conversions.edges).toEqual([]);
  });

  it('filters by program, partner, type, status and occurrence time', async () => {
    const { c1, c2, c3, c4, c5, c6 } = mine.conversions;
    expect(await conversions({ programId: gid('Program', mine.friends.id) })).toEqual({
      ids: conversionIds(c6, c4, c2, c1),
      totalCount: 4,
    });
    expect(await conversions({ partnerId: gid('Partner', mine.bob.id) })).toEqual({
      ids: conversionIds(c6),
      totalCount: 1,
    });
    expect(await conversions({ type: 'PURCHASE' })).toEqual({ ids: conversionIds(c5, c3, c2), totalCount: 3 });
    expect(await conversions({ status: 'DISCARDED' })).toEqual({ ids: conversionIds(c5), totalCount: 1 });
    expect(await conversions({ status: 'ACCEPTED', type: 'PURCHASE' })).toEqual({
      ids: conversionIds(c3, c2),
      totalCount: 2,
    });
    expect(await conversions({ occurredFrom: '2025-01-04T00:00:00Z' })).toEqual({
      ids: conversionIds(c6, c5, c4),
      totalCount: 3,
    });
    expect(await conversions({ occurredTo: '2025-01-03T00:00:00Z' })).toEqual({
      ids: conversionIds(c2, c1),
      totalCount: 2,
    });
    expect(
      await conversions({
        occurredFrom: '2025-01-02T00:00:00Z',
        occurredTo: '2025-01-05T00:00:00Z',
        partnerId: gid('Partner', mine.alice.id),
      }),
    ).toEqual({
      ids: conversionIds(c3, c2),
      totalCount: 2,
    });
  });

  it('matches nothing for ids outside the tenant, of another type or malformed', async () => {
    for (const [what, programId] of Object.entries(outsiders('Program', (s) => s.friends))) {
      expect(await conversions({ programId }), what).toEqual({ ids: [], totalCount: 0 });
    }
    for (const [what, partnerId] of Object.entries(outsiders('Partner', (s) => s.bob))) {
      expect(await conversions({ partnerId }), what).toEqual({ ids: [], totalCount: 0 });
    }
    const liveRes = await conversions(null, fixture.liveAdmin);
    expect(liveRes.totalCount).toBe(6);
    expect(liveRes.ids).not.toContain(gid('Conversion', mine.conversions.c1.id));
  });

  it('is refused to a PARTNER token', async () => {
    const refused = await fixture.gql(CONVERSIONS, {}, await partnerToken(mine.alice.id));
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});

const PARTNER_LISTS = graphql(`
  query RM_PartnerLists($id: ID!, $first: Int, $after: String, $programId: ID, $referralStatus: ReferralStatus, $rewardStatus: [RewardStatus!]) {
    partner(id: $id) {
      referrals(first: $first, after: $after, programId: $programId, status: $referralStatus) {
        __typename
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { node { id externalId } }
      }
      rewards(first: $first, after: $after, programId: $programId, status: $rewardStatus) {
        __typename
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { node { id } }
      }
    }
  }
`);

describe('Partner.referrals and Partner.rewards', () => {
  const referralIds = (...rows: Array<{ id: string }>) => rows.map((r) => gid('Referral', r.id));

  async function lists(variables: Record<string, unknown>, token = fixture.admin) {
    const res = await fixture.gql(PARTNER_LISTS, { id: gid('Partner', mine.alice.id), ...variables } as never, token);
    expect(res.errors).toBeUndefined();
    const p = res.data!.partner!;
    return {
      referrals: { ids: p.referrals.edges.map((e) => e.node.id), totalCount: p.referrals.totalCount },
      rewards: { ids: p.rewards.edges.map((e) => e.node.id), totalCount: p.rewards.totalCount },
      types: [p.referrals.__typename, p.rewards.__typename],
    };
  }

  it('lists a partner’s referrals and rewards newest first, in the shared connection types', async () => {
    const { ra1, ra2, ra3 } = mine.referrals;
    const { w1, w2, w3, w5 } = mine.rewards;
    expect(await lists({})).toEqual({
      referrals: { ids: referralIds(ra3, ra2, ra1), totalCount: 3 },
      rewards: { ids: rewardIds(w5, w3, w2, w1), totalCount: 4 },
      types: ['ReferralConnection', 'RewardConnection'],
    });
  });

  it('filters by program and status', async () => {
    const { ra1, ra2, ra3 } = mine.referrals;
    const { w2, w3, w5 } = mine.rewards;
    const friends = await lists({ programId: gid('Program', mine.friends.id) });
    expect(friends.referrals).toEqual({ ids: referralIds(ra2, ra1), totalCount: 2 });
    const japan = await lists({ programId: gid('Program', mine.japan.id) });
    expect(japan.rewards).toEqual({ ids: rewardIds(w3), totalCount: 1 });
    const byStatus = await lists({ referralStatus: 'CONVERTED', rewardStatus: ['CREATED'] });
    expect(byStatus.referrals).toEqual({ ids: referralIds(ra3, ra2), totalCount: 2 });
    expect(byStatus.rewards).toEqual({ ids: rewardIds(w5, w2), totalCount: 2 });
    const anyStatus = await lists({ rewardStatus: [] });
    expect(anyStatus.rewards.totalCount).toBe(4);
    expect((await lists({ referralStatus: 'REJECTED' })).referrals).toEqual({ ids: [], totalCount: 0 });
  });

  it('pages with first/after', async () => {
    const { ra1, ra2, ra3 } = mine.referrals;
    const first = await fixture.gql(PARTNER_LISTS, { id: gid('Partner', mine.alice.id), first: 2 }, fixture.admin);
    const referrals = first.data!.partner!.referrals;
    expect(referrals.edges.map((e) => e.node.id)).toEqual(referralIds(ra3, ra2));
    expect(referrals.pageInfo.hasNextPage).toBe(true);
    const next = await fixture.gql(
      PARTNER_LISTS,
      { id: gid('Partner', mine.alice.id), first: 2, after: referrals.pageInfo.endCursor },
      fixture.admin,
    );
    expect(next.data!.partner!.referrals.edges.map((e) => e.node.id)).toEqual(referralIds(ra1));
    expect(next.data!.partner!.referrals.totalCount).toBe(3);
    const bogus = await fixture.gql(
      PARTNER_LISTS,
      { id: gid('Partner', mine.alice.id), after: Buffer.from('GPC:S:x').toString('base64') },
      fixture.admin,
    );
    expect(bogus.errors).toBeUndefined();
    expect(bogus.data!.partner!.referrals.edges).toEqual([]);
    expect(bogus.data!.partner!.rewards.edges).toEqual([]);
  });

  it('matches nothing for a programId outside the tenant, of another type or malformed', async () => {
    for (const [what, programId] of Object.entries(outsiders('Program', (s) => s.friends))) {
      const res = await lists({ programId });
      expect(res.referrals, what).toEqual({ ids: [], totalCount: 0 });
      expect(res.rewards, what).toEqual({ ids: [], totalCount: 0 });
    }
  });

  it('shows a PARTNER token its own lists', async () => {
    const token = await partnerToken(mine.alice.id);
    const own = await lists({}, token);
    expect(own.referrals.totalCount).toBe(3);
    expect(own.rewards.totalCount).toBe(4);
  });
});

const REFERRAL_NODE = graphql(`
  query RM_ReferralNode($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on Referral {
        externalId email status createdAt convertedAt
        partner { id } program { id } link { id code }
        conversions { id type }
      }
    }
  }
`);

const CONVERSION_NODE = graphql(`
  query RM_ConversionNode($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on Conversion {
        type status discardReason idempotencyKey occurredAt referredExternalId
        amount { amount currency }
        program { id } partner { id } referral { id } refundOf { id }
        rewards { id amount { amount currency } }
      }
    }
  }
`);

const REWARD_NODE = graphql(`
  query RM_RewardNode($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on Reward {
        status kind recipient createdAt updatedAt approveAfter
        amount { amount currency }
        program { id } partner { id } conversion { id }
        rule { id version fixedAmount { amount currency } }
        sourceReward { id } payout { id }
      }
    }
  }
`);

const PAYOUT_NODE = graphql(`
  query RM_PayoutNode($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on Payout {
        status externalReference paidAt createdAt
        amount { amount currency }
        partner { id }
        rewards { id }
      }
    }
  }
`);

const NODE_QUERIES = {
  Referral: REFERRAL_NODE,
  Conversion: CONVERSION_NODE,
  Reward: REWARD_NODE,
  Payout: PAYOUT_NODE,
} as const;

/** node(id) with the selection of the id's type (decoded from the global id; unknown types use Reward's). */
function nodeQuery(id: string) {
  let type = 'Reward';
  try {
    type = Buffer.from(id, 'base64').toString('utf8').split(':')[0] ?? type;
  } catch {
    // garbage ids are asked with any selection
  }
  return (NODE_QUERIES as Record<string, typeof REWARD_NODE>)[type] ?? REWARD_NODE;
}

describe('node()', () => {
  async function node(id: string, token = fixture.admin) {
    const res = await fixture.gql(nodeQuery(id), { id }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.node as Record<string, unknown> | null;
  }

  it('resolves a referral with its partner, program, link and conversions', async () => {
    const { ra1, ra2 } = mine.referrals;
    expect(await node(gid('Referral', ra1.id))).toEqual({
      __typename: 'Referral',
      id: gid('Referral', ra1.id),
      externalId: 'r-1',
      email: 'r1@example.com',
      status: 'PENDING',
      createdAt: '2025-01-01T00:00:00.000Z',
      convertedAt: null,
      partner: { id: gid('Partner', mine.alice.id) },
      program: { id: gid('Program', mine.friends.id) },
      link: { id: gid('ReferralLink', mine.la1.id), code: mine.la1.code },
      conversions: [{ id: gid('Conversion', mine.conversions.c1.id), type: 'SIGNUP' }],
    });
    expect(await node(gid('Referral', ra2.id))).toMatchObject({
      link: null,
      convertedAt: '2025-01-02T00:00:00.000Z',
      conversions: [
        { id: gid('Conversion', mine.conversions.c2.id), type: 'PURCHASE' },
        { id: gid('Conversion', mine.conversions.c4.id), type: 'REFUND' },
      ],
    });
  });

  it('resolves conversions: amounts, no amount for a signup, refunds, discarded ones', async () => {
    const { c1, c2, c4, c5 } = mine.conversions;
    expect(await node(gid('Conversion', c2.id))).toEqual({
      __typename: 'Conversion',
      id: gid('Conversion', c2.id),
      type: 'PURCHASE',
      status: 'ACCEPTED',
      discardReason: null,
      idempotencyKey: c2.idempotencyKey,
      occurredAt: '2025-01-02T00:00:00.000Z',
      referredExternalId: null,
      amount: { amount: '12.35', currency: 'USD' },
      program: { id: gid('Program', mine.friends.id) },
      partner: { id: gid('Partner', mine.alice.id) },
      referral: { id: gid('Referral', mine.referrals.ra2.id) },
      refundOf: null,
      rewards: [
        { id: gid('Reward', mine.rewards.w1.id), amount: { amount: '2.47', currency: 'USD' } },
        { id: gid('Reward', mine.rewards.w2.id), amount: { amount: '1.00', currency: 'USD' } },
      ],
    });
    expect(await node(gid('Conversion', c1.id))).toMatchObject({
      type: 'SIGNUP',
      amount: null,
      referredExternalId: 'r-1',
      rewards: [],
    });
    expect(await node(gid('Conversion', c4.id))).toMatchObject({
      type: 'REFUND',
      refundOf: { id: gid('Conversion', c2.id) },
      rewards: [{ id: gid('Reward', mine.rewards.w5.id), amount: { amount: '-2.47', currency: 'USD' } }],
    });
    expect(await node(gid('Conversion', c5.id))).toMatchObject({
      status: 'DISCARDED',
      discardReason: 'UNKNOWN_CODE',
      program: null,
      partner: null,
      referral: null,
      amount: { amount: '5.00', currency: 'USD' },
    });
  });

  it('resolves rewards with the rule version that made them, clawbacks and payouts', async () => {
    const { w1, w3, w5 } = mine.rewards;
    expect(await node(gid('Reward', w1.id))).toEqual({
      __typename: 'Reward',
      id: gid('Reward', w1.id),
      status: 'APPROVED',
      kind: 'CASH',
      recipient: 'REFERRER',
      createdAt: '2025-01-02T00:00:00.000Z',
      updatedAt: expect.any(String),
      approveAfter: expect.any(String),
      amount: { amount: '2.47', currency: 'USD' },
      program: { id: gid('Program', mine.friends.id) },
      partner: { id: gid('Partner', mine.alice.id) },
      conversion: { id: gid('Conversion', mine.conversions.c2.id) },
      rule: { id: gid('RewardRule', mine.cash.id), version: 1, fixedAmount: { amount: '2.47', currency: 'USD' } },
      sourceReward: null,
      payout: null,
    });
    expect(await node(gid('Reward', w5.id))).toMatchObject({
      amount: { amount: '-2.47', currency: 'USD' },
      sourceReward: { id: gid('Reward', w1.id) },
    });
    expect(await node(gid('Reward', w3.id))).toMatchObject({
      amount: { amount: '150', currency: 'JPY' },
      payout: { id: gid('Payout', mine.paid.id) },
    });
    expect(await node(gid('Reward', mine.rewards.w2.id))).toMatchObject({
      recipient: 'REFERRED',
      kind: 'CREDIT',
      status: 'CREATED',
    });
  });

  it('keeps the exact rule version after the rule is edited', async () => {
    const prisma = fixture.server.testDb.db.prisma;
    const tenant = fixture.tenant;
    const v1 = await factories(prisma, tenant).rule(mine.friends.id, { fixedAmount: 700n, supersededAt: new Date() });
    const v2 = await factories(prisma, tenant).rule(mine.friends.id, {
      lineageId: v1.id,
      version: 2,
      fixedAmount: 900n,
    });
    const [reward] = await factories(prisma, tenant).rewards([
      {
        programId: mine.friends.id,
        partnerId: mine.bob.id,
        conversionId: mine.conversions.c6.id,
        ruleId: v1.id,
        ruleLineageId: v1.id,
        amount: 700n,
        currency: 'USD',
      },
    ]);
    expect(await node(gid('Reward', reward!.id))).toMatchObject({
      rule: { id: gid('RewardRule', v1.id), version: 1, fixedAmount: { amount: '7.00' } },
    });
    expect(v2.version).toBe(2);
    await prisma.reward.delete({ where: { id: reward!.id } });
  });

  it('resolves payouts with their rewards', async () => {
    expect(await node(gid('Payout', mine.paid.id))).toEqual({
      __typename: 'Payout',
      id: gid('Payout', mine.paid.id),
      status: 'PAID',
      externalReference: 'wire-42',
      paidAt: '2025-01-10T00:00:00.000Z',
      createdAt: expect.any(String),
      amount: { amount: '150', currency: 'JPY' },
      partner: { id: gid('Partner', mine.alice.id) },
      rewards: [{ id: gid('Reward', mine.rewards.w3.id) }],
    });
    expect(await node(gid('Payout', mine.failed.id))).toMatchObject({
      status: 'FAILED',
      externalReference: null,
      rewards: [],
    });
  });

  it('answers null for every new type’s ids from another workspace or mode, of another type, or malformed', async () => {
    const cases: Array<[string, (s: Seeded) => string]> = [
      ['Referral', (s) => s.referrals.ra1.id],
      ['Conversion', (s) => s.conversions.c2.id],
      ['Reward', (s) => s.rewards.w1.id],
      ['Payout', (s) => s.paid.id],
    ];
    for (const [type, pick] of cases) {
      expect(await node(gid(type, pick(mine))), type).not.toBeNull();
      expect(await node(gid(type, pick(foreign))), `${type} of another workspace`).toBeNull();
      expect(await node(gid(type, pick(live))), `${type} of the other mode`).toBeNull();
      expect(
        await node(gid(type === 'Reward' ? 'Conversion' : 'Reward', pick(mine))),
        `${type} id as another type`,
      ).toBeNull();
      expect(await node(gid(type, 'nope')), `${type} malformed`).toBeNull();
    }
    // And the other side sees its own.
    expect(await node(gid('Reward', foreign.rewards.w1.id), fixture.otherAdmin)).not.toBeNull();
    expect(await node(gid('Reward', live.rewards.w1.id), fixture.liveAdmin)).not.toBeNull();
  });
});

describe('a PARTNER token', () => {
  it('reaches its own partner’s referrals, conversions, rewards and payouts only', async () => {
    const token = await partnerToken(mine.alice.id);
    const visible = [
      gid('Referral', mine.referrals.ra1.id),
      gid('Conversion', mine.conversions.c2.id),
      gid('Reward', mine.rewards.w1.id),
      gid('Payout', mine.paid.id),
    ];
    const hidden = [
      gid('Referral', mine.referrals.rb1.id),
      gid('Conversion', mine.conversions.c6.id),
      gid('Conversion', mine.conversions.c5.id), // discarded, attributed to nobody
      gid('Reward', mine.rewards.w4.id),
      gid('Payout', mine.failed.id),
      gid('Reward', foreign.rewards.w1.id),
    ];
    const res = await fixture.gql(
      'query($ids: [ID!]!) { nodes(ids: $ids) { id } }',
      { ids: [...visible, ...hidden] },
      token,
    );
    expect(res.errors).toBeUndefined();
    expect((res.data as { nodes: Array<{ id: string } | null> }).nodes).toEqual([
      ...visible.map((id) => ({ id })),
      ...hidden.map(() => null),
    ]);
  });

  it('follows relations into its own rows only', async () => {
    const token = await partnerToken(mine.alice.id);
    const res = await fixture.gql(CONVERSION_NODE, { id: gid('Conversion', mine.conversions.c2.id) }, token);
    expect(res.errors).toBeUndefined();
    expect(res.data?.node).toMatchObject({
      rewards: [{ id: gid('Reward', mine.rewards.w1.id) }, { id: gid('Reward', mine.rewards.w2.id) }],
    });
    const bob = await partnerToken(mine.bob.id);
    const theirs = await fixture.gql(REFERRAL_NODE, { id: gid('Referral', mine.referrals.ra2.id) }, bob);
    expect(theirs.data?.node ?? null).toBeNull();
  });
});
