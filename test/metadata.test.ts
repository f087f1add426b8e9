// metadata on partners, referrals and conversions (issue 14, item 2): set on create, update and
// record; limited (an object, ≤ 50 keys, ≤ 8 KiB); filtered by containment through an index;
// scoped like every read; never shown to a PARTNER credential. And Referral.rewards.
import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken } from './helpers/money.js';

const fixture = useTwoWorkspaces({ names: ['Metadata A', 'Metadata B'] });

const CREATE = graphql(`
  mutation MD_Create($input: CreatePartnerInput!) {
    createPartner(input: $input) { partner { id metadata } userErrors { code field message } }
  }
`);
const UPDATE = graphql(`
  mutation MD_Update($input: UpdatePartnerInput!) {
    updatePartner(input: $input) { partner { id metadata } userErrors { code field message } }
  }
`);
const PARTNERS = graphql(`
  query MD_Partners($metadata: JSON) { partners(first: 100, metadata: $metadata) { totalCount edges { node { externalId } } } }
`);
const RECORD = graphql(`
  mutation MD_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { id metadata referral { id metadata } }
      userErrors { code field message }
    }
  }
`);
const CONVERSIONS = graphql(`
  query MD_Conversions($filter: ConversionFilter) { conversions(first: 50, filter: $filter) { totalCount edges { node { idempotencyKey } } } }
`);
const REFERRALS = graphql(`
  query MD_Referrals($id: ID!, $metadata: JSON) {
    partner(id: $id) { metadata referrals(first: 50, metadata: $metadata) { totalCount edges { node { externalId metadata } } } }
  }
`);
const REFERRAL_REWARDS = graphql(`
  query MD_ReferralRewards($id: ID!, $first: Int, $after: String) {
    node(id: $id) { ... on Referral { rewards(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id recipient amount { amount } partner { id } } } } } }
  }
`);

let code = '';
let partnerId = '';
let partnerRowId = '';

beforeAll(async () => {
  const f = factories(fixture.server.testDb.db.prisma, fixture.tenant);
  const program = await f.program();
  await f.rule(program.id, { fixedAmount: 1000n });
  await f.rule(program.id, { recipient: 'REFERRED', kind: 'CREDIT', fixedAmount: 500n });
  const partner = await f.partner({ metadata: { plan: 'pro' } });
  partnerRowId = partner.id;
  partnerId = gid('Partner', partner.id);
  code = (await f.link(await f.enrollment({ programId: program.id, partnerId: partner.id }))).code;
});

const create = (input: Record<string, unknown>, token = fixture.admin) =>
  fixture.gql(CREATE, { input: { externalId: `md-${Math.random()}`, ...input } }, token);

async function externalIdsMatching(metadata: unknown, token = fixture.admin): Promise<string[]> {
  const res = await fixture.gql(PARTNERS, { metadata }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.partners.edges.map((e) => e.node.externalId).sort();
}

describe('partner metadata', () => {
  it('is set on create, replaced on update, cleared by null; {} when none was given', async () => {
    const created = await create({ metadata: { plan: 'pro', seats: 5, tags: ['a', 'b'], nested: { x: 1 } } });
    expect(created.data!.createPartner.userErrors).toEqual([]);
    const { id, metadata } = created.data!.createPartner.partner!;
    expect(metadata).toEqual({ plan: 'pro', seats: 5, tags: ['a', 'b'], nested: { x: 1 } });

    const replaced = await fixture.gql(UPDATE, { input: { id, metadata: { plan: 'basic' } } }, fixture.admin);
    expect(replaced.data!.updatePartner.partner!.metadata).toEqual({ plan: 'basic' });
    const unchanged = await fixture.gql(UPDATE, { input: { id, name: 'Named' } }, fixture.admin);
    expect(unchanged.data!.updatePartner.partner!.metadata).toEqual({ plan: 'basic' });
    const cleared = await fixture.gql(UPDATE, { input: { id, metadata: null } }, fixture.admin);
    expect(cleared.data!.updatePartner.partner!.metadata).toEqual({});

    const plain = await create({});
    expect(plain.data!.createPartner.partner!.metadata).toEqual({});
  });

  it('an update records partner.updated naming metadata; the same metadata again writes nothing', async () => {
    const { id } = (await create({ metadata: { plan: 'pro' } })).data!.createPartner.partner!;
    const before = await fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant });
    await fixture.gql(UPDATE, { input: { id, metadata: { plan: 'pro' } } }, fixture.admin);
    expect(await fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant })).toBe(before);
    await fixture.gql(UPDATE, { input: { id, metadata: { plan: 'team' } } }, fixture.admin);
    const events = await fixture.server.testDb.db.prisma.event.findMany({
      where: fixture.tenant,
      orderBy: { id: 'desc' },
      take: 1,
    });
    expect(events[0]!.type).toBe('partner.updated');
    expect((events[0]!.payload as { changedFields: string[] }).changedFields).toEqual(['metadata']);
  });

  it('refuses what is not a small object, at the field, and writes nothing', async () => {
    const before = await fixture.server.testDb.db.prisma.partner.count({ where: fixture.tenant });
    const events = await fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant });
    const tooManyKeys = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]));
    const tooBig = { blob: 'x'.repeat(8 * 1024) };
    for (const [metadata, words] of [
      [['plan'], 'got an array'],
      ['{"plan":"pro"}', 'got a string'],
      [42, 'got a number'],
      [tooManyKeys, 'at most 50 top-level keys; got 51'],
      [tooBig, 'at most 8192 bytes'],
    ] as const) {
      const res = await create({ metadata });
      expect(res.errors).toBeUndefined();
      expect(res.data!.createPartner.partner).toBeNull();
      expect(res.data!.createPartner.userErrors).toEqual([
        { code: 'VALIDATION', field: ['input', 'metadata'], message: expect.stringContaining(words) },
      ]);
    }
    // Exactly 50 keys is fine.
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]));
    expect((await create({ metadata: fifty })).data!.createPartner.userErrors).toEqual([]);
    expect(await fixture.server.testDb.db.prisma.partner.count({ where: fixture.tenant })).toBe(before + 1);
    expect(await fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant })).toBe(events + 1);
  });

  it('partners(metadata) matches by containment, nested objects and arrays included', async () => {
    await create({ externalId: 'cont-1', metadata: { tier: 'gold', region: { country: 'DE', city: 'Berlin' } } });
    await create({ externalId: 'cont-2', metadata: { tier: 'gold', region: { country: 'FR' }, tags: ['vip', 'eu'] } });
    await create({ externalId: 'cont-3', metadata: { tier: 'silver' } });
    expect(await externalIdsMatching({ tier: 'gold' })).toEqual(['cont-1', 'cont-2']);
    expect(await externalIdsMatching({ region: { country: 'DE' } })).toEqual(['cont-1']);
    expect(await externalIdsMatching({ tags: ['eu'] })).toEqual(['cont-2']);
    expect(await externalIdsMatching({ tier: 'gold', region: { city: 'Paris' } })).toEqual([]);
    // A filter that is not an object is a request error, not "everything".
    const res = await fixture.gql(PARTNERS, { metadata: ['gold'] }, fixture.admin);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toContain('metadata must be a JSON object');
  });

  it('never finds another workspace’s or mode’s partners', async () => {
    for (const token of [fixture.otherAdmin, fixture.liveAdmin]) {
      await create(
        { externalId: `iso-${token === fixture.liveAdmin ? 'live' : 'other'}`, metadata: { iso: true } },
        token,
      );
    }
    expect(await externalIdsMatching({ iso: true })).toEqual([]);
    expect(await externalIdsMatching({ iso: true }, fixture.otherAdmin)).toEqual(['iso-other']);
    expect(await externalIdsMatching({ iso: true }, fixture.liveAdmin)).toEqual(['iso-live']);
  });
});

describe('conversion and referral metadata', () => {
  const record = (key: string, person: string, metadata?: unknown) =>
    fixture.gql(
      RECORD,
      {
        input: {
          type: 'PURCHASE',
          idempotencyKey: key,
          referredExternalId: person,
          code,
          amount: { amount: '20.00', currency: 'USD' },
          ...(metadata === undefined ? {} : { metadata }),
        },
      },
      fixture.admin,
    );

  it('recordConversion stores it; a new referral starts with it; a later conversion leaves the referral’s', async () => {
    const first = await record('md-order-1', 'md-cust-1', { plan: 'pro', orderRef: 'A1' });
    expect(first.data!.recordConversion.userErrors).toEqual([]);
    expect(first.data!.recordConversion.conversion!.metadata).toEqual({ plan: 'pro', orderRef: 'A1' });
    expect(first.data!.recordConversion.conversion!.referral!.metadata).toEqual({ plan: 'pro', orderRef: 'A1' });
    const second = await record('md-order-2', 'md-cust-1', { plan: 'team', orderRef: 'A2' });
    expect(second.data!.recordConversion.conversion!.metadata).toEqual({ plan: 'team', orderRef: 'A2' });
    expect(second.data!.recordConversion.conversion!.referral!.metadata).toEqual({ plan: 'pro', orderRef: 'A1' });
    const none = await record('md-order-3', 'md-cust-2');
    expect(none.data!.recordConversion.conversion!.metadata).toEqual({});
  });

  it('a replay returns the first conversion, whatever metadata it carries', async () => {
    const replay = await record('md-order-1', 'md-cust-1', { plan: 'other' });
    expect(replay.data!.recordConversion.userErrors).toEqual([]);
    expect(replay.data!.recordConversion.conversion!.metadata).toEqual({ plan: 'pro', orderRef: 'A1' });
  });

  it('refuses bad metadata and records nothing', async () => {
    const res = await record('md-bad', 'md-cust-9', { blob: 'x'.repeat(9000) });
    expect(res.data!.recordConversion.userErrors).toEqual([
      { code: 'VALIDATION', field: ['input', 'metadata'], message: expect.stringContaining('at most 8192 bytes') },
    ]);
    expect(
      await fixture.server.testDb.db.prisma.conversion.count({
        where: { ...fixture.tenant, idempotencyKey: 'md-bad' },
      }),
    ).toBe(0);
  });

  it('conversions(filter: { metadata }) and Partner.referrals(metadata) filter by containment', async () => {
    const conversions = await fixture.gql(CONVERSIONS, { filter: { metadata: { plan: 'team' } } }, fixture.admin);
    expect(conversions.data!.conversions.edges.map((e) => e.node.idempotencyKey)).toEqual(['md-order-2']);
    const referrals = await fixture.gql(REFERRALS, { id: partnerId, metadata: { orderRef: 'A1' } }, fixture.admin);
    expect(referrals.data!.partner!.referrals.edges.map((e) => e.node.externalId)).toEqual(['md-cust-1']);
    // Another workspace or mode: nothing.
    for (const token of [fixture.otherAdmin, fixture.liveAdmin]) {
      const res = await fixture.gql(CONVERSIONS, { filter: { metadata: { plan: 'team' } } }, token);
      expect(res.data!.conversions.totalCount).toBe(0);
    }
  });

  it('a PARTNER credential sees its referrals but none of the company’s metadata', async () => {
    const token = await partnerToken(fixture.server, fixture.admin, partnerRowId);
    const res = await fixture.gql(REFERRALS, { id: partnerId }, token);
    expect(res.errors).toBeUndefined();
    expect(res.data!.partner!.metadata).toBeNull();
    expect(res.data!.partner!.referrals.totalCount).toBeGreaterThan(0);
    expect(res.data!.partner!.referrals.edges.every((e) => e.node.metadata === null)).toBe(true);
  });
});

describe('Referral.rewards', () => {
  it('lists every reward earned for the person over their conversions, newest first, with paging', async () => {
    const referral = await fixture.server.testDb.db.prisma.referral.findFirstOrThrow({
      where: { ...fixture.tenant, externalId: 'md-cust-1' },
    });
    const id = gid('Referral', referral.id);
    const all = await fixture.gql(REFERRAL_REWARDS, { id, first: 10 }, fixture.admin);
    expect(all.errors).toBeUndefined();
    const rewards = (all.data!.node as { rewards: { totalCount: number; edges: Array<{ node: { id: string } }> } })
      .rewards;
    // Two purchases × (referrer CASH + referred CREDIT).
    expect(rewards.totalCount).toBe(4);
    // Newest first: by row id (UUIDv7, time-ordered) — compared decoded, as base64 does not keep their order.
    const rowIds = rewards.edges.map((e) => Buffer.from(e.node.id, 'base64').toString().split(':')[1]!);
    expect([...rowIds].sort().reverse()).toEqual(rowIds);
    const page = await fixture.gql(REFERRAL_REWARDS, { id, first: 3 }, fixture.admin);
    const first = (page.data!.node as { rewards: { pageInfo: { hasNextPage: boolean; endCursor: string } } }).rewards;
    expect(first.pageInfo.hasNextPage).toBe(true);
    const rest = await fixture.gql(REFERRAL_REWARDS, { id, first: 3, after: first.pageInfo.endCursor }, fixture.admin);
    expect((rest.data!.node as { rewards: { edges: unknown[] } }).rewards.edges).toHaveLength(1);
    // The referral is not visible from another workspace or mode.
    for (const token of [fixture.otherAdmin, fixture.liveAdmin]) {
      expect((await fixture.gql(REFERRAL_REWARDS, { id, first: 10 }, token)).data!.node).toBeNull();
    }
  });
});

describe('the metadata filter is an index scan over 100 000 partners', () => {
  it('plans a bitmap scan of the GIN index for the statement partners(metadata) sends', {
    timeout: 120_000,
  }, async () => {
    const db = fixture.server.testDb.db;
    const { workspaceId } = fixture.otherTenant;
    await db.sql`
      INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "metadata", "updatedAt")
      SELECT gen_random_uuid(), ${workspaceId}::uuid, 'LIVE', 'bulk-' || i,
             jsonb_build_object('plan', CASE WHEN i % 10000 = 0 THEN 'rare' ELSE 'basic' END, 'n', i), now()
        FROM generate_series(1, 100000) AS i`;
    await db.sql`ANALYZE "Partner"`;
    // The where clause Prisma writes for partners(metadata: { plan: "rare" }) (graphql/metadata.ts).
    const plan = await db.sql<{ 'QUERY PLAN': string }>`
      EXPLAIN SELECT "id" FROM "Partner"
       WHERE "workspaceId" = ${workspaceId}::uuid AND "mode" = 'LIVE'
         AND "metadataMatch" @> ${JSON.stringify([{ plan: 'rare' }])}::jsonb AND jsonb_typeof("metadataMatch") = 'array'
       ORDER BY "id" LIMIT 21`;
    const text = plan.map((row) => row['QUERY PLAN']).join('\n');
    expect(text, text).toContain('Bitmap Index Scan on "Partner_metadataMatch_idx"');
    const [row] = await db.sql<{ count: number }>`
      SELECT count(*)::int AS count FROM "Partner"
       WHERE "workspaceId" = ${workspaceId}::uuid AND "mode" = 'LIVE' AND "metadataMatch" @> ${JSON.stringify([{ plan: 'rare' }])}::jsonb`;
    expect(row?.count).toBe(10);
  });
});
