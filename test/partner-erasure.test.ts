// erasePartner and exportPartner (issue 14, item 7): a partner's personal data becomes a tombstone
// while every money record stays and adds up exactly as before; the export holds everything kept
// about one partner. Both ADMIN only, both scoped to the caller's workspace and mode.
import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { bulkInsert, factories, gid, uuidv7 } from './helpers/factories.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';

// Clicks are written only when a test flushes them (or an erasure does): a click acknowledged
// before an erasure and written after it is then certain, not a matter of timing.
const fixture = useTwoWorkspaces({
  // AUTH_CACHE_TTL_MS 0: every request looks its key up, so statement counts do not depend on timing.
  env: { CLICK_FLUSH_INTERVAL_MS: '60000', AUTH_CACHE_TTL_MS: '0' },
  names: ['Erasure A', 'Erasure B'],
});
const prisma = () => fixture.server.testDb.db.prisma;
const flushClicks = () => fixture.server.app.services.clicks.flush();
type Errors = Array<{ code: string; message: string; field?: string[] | null }>;

const CREATE_PROGRAM = graphql(`
  mutation PE_CreateProgram($input: CreateProgramInput!) {
    createProgram(input: $input) { program { id } userErrors { code message } }
  }
`);
const CREATE_RULE = graphql(`
  mutation PE_CreateRule($input: CreateRewardRuleInput!) {
    createRewardRule(input: $input) { rewardRule { id } userErrors { code message } }
  }
`);
const CREATE_PARTNER = graphql(`
  mutation PE_CreatePartner($input: CreatePartnerInput!) {
    createPartner(input: $input) { partner { id externalId links { id code } } userErrors { code message } }
  }
`);
const TRACK_CLICK = graphql(`
  mutation PE_TrackClick($input: TrackClickInput!) {
    trackClick(input: $input) { clickId discarded discardReason userErrors { code message } }
  }
`);
const RECORD = graphql(`
  mutation PE_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) { conversion { id status rewards { id } } userErrors { code message } }
  }
`);
const REWARD_STATUS = graphql(`
  mutation PE_RewardStatus($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) { rewards { id status } userErrors { code message } }
  }
`);
const CREDIT = graphql(`
  mutation PE_Credit($input: CreditBalanceInput!) {
    creditBalance(input: $input) { balance { currency } userErrors { code message } }
  }
`);
const CREATE_PAYOUT = graphql(`
  mutation PE_CreatePayout($input: CreatePayoutInput!) {
    createPayout(input: $input) { payout { id amount { amount currency } } userErrors { code message } }
  }
`);
const MARK_PAID = graphql(`
  mutation PE_MarkPaid($input: MarkPayoutPaidInput!) {
    markPayoutPaid(input: $input) { payout { id status } userErrors { code message } }
  }
`);
const ERASE = graphql(`
  mutation PE_Erase($input: ErasePartnerInput!) {
    erasePartner(input: $input) {
      partner { id externalId name email status erasedAt updatedAt }
      userErrors { code message field }
    }
  }
`);
const UPDATE_PARTNER = graphql(`
  mutation PE_UpdatePartner($input: UpdatePartnerInput!) {
    updatePartner(input: $input) { partner { id } userErrors { code message field } }
  }
`);
const SET_STATUS = graphql(`
  mutation PE_SetStatus($input: SetPartnerStatusInput!) {
    setPartnerStatus(input: $input) { partner { id } userErrors { code message field } }
  }
`);
const PARTNER_TOKEN = graphql(`
  mutation PE_PartnerToken($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code message field } }
  }
`);
const EXPORT = graphql(`
  query PE_Export($id: ID, $externalId: String) {
    exportPartner(id: $id, externalId: $externalId) { partner { id externalId erasedAt } json }
  }
`);
const ERASED_EVENTS = graphql(`
  query PE_ErasedEvents {
    events(first: 10, types: ["partner.erased"]) {
      edges { node { type subject { id } data { ... on PartnerEventData { changedFields partner { id status } } } } }
    }
  }
`);
const VIEWER = graphql(`
  query PE_Viewer { viewer { partner { id externalId name email status erasedAt } } }
`);
/** Every figure of the partner's money and of the program, as the API answers them. */
const MONEY = graphql(`
  query PE_Money($id: ID!, $programId: ID!, $from: DateTime!, $to: DateTime!) {
    partner(id: $id) {
      balances { currency pending { amount currency } available { amount currency } paid { amount currency } }
      creditBalances { currency pending { amount } available { amount } paid { amount } }
      statement(currency: "USD", from: $from, to: $to) {
        opening { pending { amount } available { amount } paid { amount } }
        closing { pending { amount } available { amount } paid { amount } }
        entries(first: 100) { totalCount edges { node { id type amount { amount currency } createdAt } } }
      }
      rewards(first: 100) { totalCount edges { node { id status kind amount { amount currency } } } }
      payouts(first: 100) { totalCount edges { node { id status amount { amount currency } paidAt } } }
      ledger(first: 100) { totalCount edges { node { id type amount { amount currency } } } }
      stats { clicks totalReferrals successfulReferrals pendingReferrals totalRewards { amount currency } }
    }
    program: node(id: $programId) {
      ... on Program {
        stats {
          partners activePartners clicks referrals convertedReferrals conversions
          revenue { amount currency }
          rewards {
            created { amount currency } approved { amount currency } processed { amount currency }
            canceled { amount currency } rejected { amount currency }
          }
        }
      }
    }
  }
`);

/** The personal data Ann starts with: none of it may be found anywhere after her erasure. */
const ANN = {
  externalId: 'ann.example@example.com',
  name: 'Ann Example',
  email: 'ann.example@example.com',
  metadata: { crmId: 'crm-4711', newsletter: true },
  answers: { website: 'https://ann-example.blog', audience: 'parents' },
  ip: '203.0.113.77',
  // A real browser's user agent (isbot would discard a made-up one as a bot), with a marker of Ann's own.
  userAgent:
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 AnnBrowser/1.0',
  referrerUrl: 'https://ann-example.blog/my-favourite-shop',
};

let programId = '';
let ann = ''; // global id
let annRow = '';
let annCode = '';
let bob = ''; // a partner that stays; the refusals are tried on it and on Ann
let bobRow = '';
let setupFrom = '';
let setupTo = '';

async function ok<T extends { userErrors: Errors }>(
  promise: Promise<{ data?: Record<string, T> | null; errors?: unknown }>,
  field: string,
): Promise<T> {
  const res = await promise;
  expect(res.errors).toBeUndefined();
  const payload = res.data![field]!;
  expect(payload.userErrors).toEqual([]);
  return payload;
}

async function money() {
  const res = await fixture.gql(MONEY, { id: ann, programId, from: setupFrom, to: setupTo }, fixture.admin);
  expect(res.errors).toBeUndefined();
  return res.data!;
}

const eventsOf = (partnerId: string, type?: string) =>
  prisma().event.findMany({
    where: { ...fixture.tenant, partnerId, ...(type ? { type } : {}) },
    orderBy: { id: 'asc' },
  });

beforeAll(async () => {
  setupFrom = new Date(Date.now() - 60_000).toISOString();
  const admin = fixture.admin;
  programId = (
    await ok(
      fixture.gql(
        CREATE_PROGRAM,
        { input: { name: 'Friends', type: 'REFERRAL', currency: 'USD', holdDays: 0 } },
        admin,
      ),
      'createProgram',
    )
  ).program!.id;
  await ok(
    fixture.gql(
      CREATE_RULE,
      {
        input: {
          programId,
          trigger: 'PURCHASE',
          kind: 'CASH',
          amountType: 'FIXED',
          fixedAmount: { amount: '10.00', currency: 'USD' },
        },
      },
      admin,
    ),
    'createRewardRule',
  );
  const created = await ok(
    fixture.gql(
      CREATE_PARTNER,
      { input: { externalId: ANN.externalId, name: ANN.name, email: ANN.email, programIds: [programId] } },
      admin,
    ),
    'createPartner',
  );
  ann = created.partner!.id;
  annCode = created.partner!.links[0]!.code;
  annRow = (await prisma().partner.findFirstOrThrow({ where: { ...fixture.tenant, externalId: ANN.externalId } })).id;
  // metadata and application answers: written here, their GraphQL inputs belong to other items.
  await prisma().partner.update({ where: { id: annRow }, data: { metadata: ANN.metadata } });
  await prisma().enrollment.updateMany({ where: { partnerId: annRow }, data: { answers: ANN.answers } });
  const bobCreated = await ok(
    fixture.gql(
      CREATE_PARTNER,
      { input: { externalId: 'bob', name: 'Bob', email: 'bob@example.com', programIds: [programId] } },
      admin,
    ),
    'createPartner',
  );
  bob = bobCreated.partner!.id;
  bobRow = (await prisma().partner.findFirstOrThrow({ where: { ...fixture.tenant, externalId: 'bob' } })).id;

  // Two visits through Ann's link (one of them hers), written before the erasure.
  for (let i = 0; i < 2; i++) {
    await ok(
      fixture.gql(
        TRACK_CLICK,
        {
          input: {
            code: annCode,
            ip: ANN.ip,
            userAgent: ANN.userAgent,
            referrerUrl: ANN.referrerUrl,
            landingUrl: 'https://shop.example.com/',
          },
        },
        admin,
      ),
      'trackClick',
    );
  }
  await flushClicks();

  // Money: three purchases (10.00 each), one reward approved and paid out with a 5.00 credit,
  // one approved after the payout (available), one left CREATED (pending).
  const rewardIds: string[] = [];
  for (const friend of ['friend-1', 'friend-2', 'friend-3']) {
    const recorded = await ok(
      fixture.gql(
        RECORD,
        {
          input: {
            type: 'PURCHASE',
            code: annCode,
            referredExternalId: friend,
            referredEmail: `${friend}@example.org`,
            idempotencyKey: `purchase-${friend}`,
            amount: { amount: '100.00', currency: 'USD' },
          },
        },
        admin,
      ),
      'recordConversion',
    );
    expect(recorded.conversion!.status).toBe('ACCEPTED');
    rewardIds.push(recorded.conversion!.rewards[0]!.id);
  }
  await ok(
    fixture.gql(REWARD_STATUS, { input: { ids: [rewardIds[0]!], status: 'APPROVED' } }, admin),
    'updateRewardStatus',
  );
  await ok(
    fixture.gql(
      CREDIT,
      {
        input: {
          partnerId: ann,
          amount: { amount: '5.00', currency: 'USD' },
          idempotencyKey: 'goodwill-1',
          note: 'goodwill',
        },
      },
      admin,
    ),
    'creditBalance',
  );
  const payout = await ok(
    fixture.gql(CREATE_PAYOUT, { input: { partnerId: ann, currency: 'USD', method: 'bank' } }, admin),
    'createPayout',
  );
  expect(payout.payout!.amount).toEqual({ amount: '15.00', currency: 'USD' });
  await ok(
    fixture.gql(MARK_PAID, { input: { payoutId: payout.payout!.id, externalReference: 'wire-1' } }, admin),
    'markPayoutPaid',
  );
  await ok(
    fixture.gql(REWARD_STATUS, { input: { ids: [rewardIds[1]!], status: 'APPROVED' } }, admin),
    'updateRewardStatus',
  );
  setupTo = new Date().toISOString();
});

describe('erasePartner: isolation and roles', () => {
  it('answers another workspace’s and the other mode’s keys NOT_FOUND, by either id, and changes nothing', async () => {
    const before = await prisma().partner.findUniqueOrThrow({ where: { id: bobRow } });
    const events = await prisma().event.count();
    const cases: Array<[string, Record<string, string>, string[]]> = [
      [fixture.otherAdmin, { partnerId: bob }, ['input', 'partnerId']],
      [fixture.otherAdmin, { partnerExternalId: 'bob' }, ['input', 'partnerExternalId']],
      [fixture.liveAdmin, { partnerId: bob }, ['input', 'partnerId']],
      [fixture.liveAdmin, { partnerExternalId: 'bob' }, ['input', 'partnerExternalId']],
      [fixture.admin, { partnerId: gid('Partner', uuidv7()) }, ['input', 'partnerId']],
      [fixture.admin, { partnerId: gid('Program', bobRow) }, ['input', 'partnerId']],
      [fixture.admin, { partnerExternalId: 'nobody' }, ['input', 'partnerExternalId']],
    ];
    for (const [token, input, field] of cases) {
      const res = await fixture.gql(ERASE, { input }, token);
      expect(res.errors).toBeUndefined();
      expect(res.data!.erasePartner.partner).toBeNull();
      expect(res.data!.erasePartner.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field })]);
    }
    for (const input of [{}, { partnerId: bob, partnerExternalId: 'bob' }]) {
      const res = await fixture.gql(ERASE, { input }, fixture.admin);
      expect(res.data!.erasePartner.userErrors).toEqual([
        expect.objectContaining({ code: 'VALIDATION', field: ['input'] }),
      ]);
    }
    expect(await prisma().partner.findUniqueOrThrow({ where: { id: bobRow } })).toEqual(before);
    expect(await prisma().event.count()).toBe(events);
  });

  it('is refused to READ_ONLY keys, PARTNER tokens (their own partner too) and callers without a credential', async () => {
    const reader = await readOnlyKey(fixture.server, fixture.admin);
    const own = await partnerToken(fixture.server, fixture.admin, bobRow);
    const events = await prisma().event.count();
    for (const [token, code] of [
      [reader, 'FORBIDDEN_FOR_ROLE'],
      [own, 'FORBIDDEN_FOR_ROLE'],
      [undefined, 'UNAUTHENTICATED'],
    ] as const) {
      const res = await fixture.gql(ERASE, { input: { partnerId: bob } }, token);
      expect(res.errors?.[0]?.extensions?.code).toBe(code);
      expect(res.data?.erasePartner ?? null).toBeNull();
    }
    const row = await prisma().partner.findUniqueOrThrow({ where: { id: bobRow } });
    expect(row).toMatchObject({ externalId: 'bob', name: 'Bob', erasedAt: null, status: 'ACTIVE' });
    expect(await prisma().event.count()).toBe(events);
  });
});

describe('exportPartner', () => {
  it('returns everything held about the partner, by id or externalId, with money as Decimal strings', async () => {
    const res = await fixture.gql(EXPORT, { externalId: ANN.externalId }, fixture.admin);
    expect(res.errors).toBeUndefined();
    const exported = res.data!.exportPartner!;
    expect(exported.partner).toEqual({ id: ann, externalId: ANN.externalId, erasedAt: null });
    const json = exported.json as Record<string, any>;
    expect(json).toMatchObject({
      version: 1,
      workspaceId: gid('Workspace', fixture.tenant.workspaceId),
      mode: 'TEST',
      listLimit: 10_000,
      partner: {
        id: ann,
        externalId: ANN.externalId,
        name: ANN.name,
        email: ANN.email,
        status: 'ACTIVE',
        metadata: ANN.metadata,
        erasedAt: null,
      },
      programs: [{ id: programId, name: 'Friends', type: 'REFERRAL' }],
      clicks: { counted: 2, discarded: 0 },
      balances: {
        cash: [
          {
            currency: 'USD',
            pending: { amount: '10.00', currency: 'USD' },
            available: { amount: '10.00', currency: 'USD' },
            paid: { amount: '15.00', currency: 'USD' },
          },
        ],
        inProduct: [],
      },
    });
    expect(Date.parse(json.exportedAt)).not.toBeNaN();
    expect(json.enrollments).toEqual({
      truncated: false,
      items: [expect.objectContaining({ programId, status: 'APPROVED', answers: ANN.answers })],
    });
    expect(json.links).toEqual({
      truncated: false,
      items: [expect.objectContaining({ code: annCode, disabledAt: null, clicks: { counted: 2, discarded: 0 } })],
    });
    // The people Ann referred: the company's ids for them, never their emails.
    expect(json.referrals.truncated).toBe(false);
    expect(json.referrals.items.map((r: { externalId: string }) => r.externalId)).toEqual([
      'friend-1',
      'friend-2',
      'friend-3',
    ]);
    expect(JSON.stringify(json)).not.toContain('@example.org');
    expect(json.conversions.items).toHaveLength(3);
    expect(json.conversions.items[0]).toMatchObject({
      type: 'PURCHASE',
      status: 'ACCEPTED',
      amount: { amount: '100.00', currency: 'USD' },
      referredExternalId: 'friend-1',
      programId,
    });
    expect(json.rewards.items.map((w: { status: string; amount: unknown }) => [w.status, w.amount])).toEqual([
      ['PROCESSED', { amount: '10.00', currency: 'USD' }],
      ['APPROVED', { amount: '10.00', currency: 'USD' }],
      ['CREATED', { amount: '10.00', currency: 'USD' }],
    ]);
    expect(
      json.ledgerEntries.items.map((l: { type: string; amount: { amount: string } }) => [l.type, l.amount.amount]),
    ).toEqual([
      ['REWARD_APPROVED', '10.00'],
      ['CREDIT', '5.00'],
      ['PAYOUT', '-15.00'],
      ['REWARD_APPROVED', '10.00'],
    ]);
    expect(json.ledgerEntries.items[1]).toMatchObject({ note: 'goodwill' });
    expect(json.payouts).toEqual({
      truncated: false,
      items: [
        expect.objectContaining({
          status: 'PAID',
          amount: { amount: '15.00', currency: 'USD' },
          method: 'bank',
          externalReference: 'wire-1',
        }),
      ],
    });
    // The IP, never listed (not even hashed): clicks are counted.
    expect(JSON.stringify(json)).not.toContain(ANN.userAgent);

    const byId = await fixture.gql(EXPORT, { id: ann }, fixture.admin);
    expect(byId.data!.exportPartner!.partner.id).toBe(ann);
    expect((byId.data!.exportPartner!.json as { rewards: unknown }).rewards).toEqual(json.rewards);
  });

  it('is null outside the caller’s workspace and mode, and for unknown or malformed ids', async () => {
    for (const [token, vars] of [
      [fixture.otherAdmin, { id: ann }],
      [fixture.otherAdmin, { externalId: ANN.externalId }],
      [fixture.liveAdmin, { id: ann }],
      [fixture.liveAdmin, { externalId: ANN.externalId }],
      [fixture.admin, { id: gid('Partner', uuidv7()) }],
      [fixture.admin, { id: programId }],
      [fixture.admin, { id: 'not an id' }],
      [fixture.admin, { externalId: 'nobody' }],
    ] as const) {
      const res = await fixture.gql(EXPORT, vars, token);
      expect(res.errors).toBeUndefined();
      expect(res.data!.exportPartner).toBeNull();
    }
  });

  it('is refused to READ_ONLY keys and PARTNER tokens; both or neither argument is a request error', async () => {
    const reader = await readOnlyKey(fixture.server, fixture.admin);
    const own = await partnerToken(fixture.server, fixture.admin, annRow);
    for (const token of [reader, own]) {
      const res = await fixture.gql(EXPORT, { id: ann }, token);
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
      expect(res.data?.exportPartner ?? null).toBeNull();
    }
    for (const vars of [{}, { id: ann, externalId: ANN.externalId }]) {
      const res = await fixture.gql(EXPORT, vars, fixture.admin);
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });

  it('runs the same number of statements for a partner with 1 row per list as for one with 40', async () => {
    const f = factories(prisma(), fixture.tenant);
    const program = await f.program();
    const rule = await f.rule(program.id);
    async function partnerWith(n: number) {
      const partner = await f.partner();
      const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
      for (let i = 0; i < n; i++) await f.link(enrollment);
      const link = await f.link(enrollment);
      await f.clicks(link, n);
      const referrals = await f.referrals(
        Array.from({ length: n }, () => ({ programId: program.id, partnerId: partner.id })),
      );
      const conversions = await f.conversions(
        referrals.map((r) => ({
          programId: program.id,
          partnerId: partner.id,
          referralId: r.id,
          amount: 1000n,
          currency: 'USD',
        })),
      );
      const rewards = await f.rewards(
        conversions.map((c) => ({
          programId: program.id,
          partnerId: partner.id,
          conversionId: c.id,
          ruleId: rule.id,
          amount: 100n,
          currency: 'USD',
        })),
      );
      await f.ledgerEntries(
        rewards.map(() => ({ partnerId: partner.id, type: 'CREDIT' as const, amount: 100n, currency: 'USD' })),
      );
      for (let i = 0; i < n; i++) await f.payout({ partnerId: partner.id, amount: 1n, currency: 'USD' });
      return gid('Partner', partner.id);
    }
    const [one, forty] = [await partnerWith(1), await partnerWith(40)];
    const small = await fixture.server.gqlCounted(EXPORT, { id: one }, fixture.admin);
    const large = await fixture.server.gqlCounted(EXPORT, { id: forty }, fixture.admin);
    expect(small.body.errors).toBeUndefined();
    expect((large.body.data!.exportPartner!.json as { rewards: { items: unknown[] } }).rewards.items).toHaveLength(40);
    expect(large.statements).toBe(small.statements);
  });

  it('lists at most 10 000 items per list and says when it cut one', async () => {
    const f = factories(prisma(), fixture.tenant);
    const program = await f.program();
    const partner = await f.partner();
    const now = new Date();
    await bulkInsert(
      prisma(),
      'Referral',
      Array.from({ length: 10_001 }, (_, i) => ({
        id: uuidv7(),
        workspaceId: fixture.tenant.workspaceId,
        mode: fixture.tenant.mode,
        programId: program.id,
        partnerId: partner.id,
        externalId: `many-${i}`,
        createdAt: now,
      })),
    );
    const res = await fixture.gql(EXPORT, { id: gid('Partner', partner.id) }, fixture.admin);
    expect(res.errors).toBeUndefined();
    const json = res.data!.exportPartner!.json as Record<
      string,
      { items: Array<{ externalId: string }>; truncated: boolean }
    >;
    expect(json.referrals!.truncated).toBe(true);
    expect(json.referrals!.items).toHaveLength(10_000);
    expect(json.referrals!.items[0]!.externalId).toBe('many-0');
    expect(json.rewards).toEqual({ items: [], truncated: false });
  });
});

describe('erasePartner', () => {
  let before: Awaited<ReturnType<typeof money>>;
  let tokenBefore = '';

  it('replaces the personal data with a tombstone, clears the clicks’ visitor data, disables the links, and appends partner.erased once', async () => {
    before = await money();
    tokenBefore = await partnerToken(fixture.server, fixture.admin, annRow);

    const res = await fixture.gql(ERASE, { input: { partnerExternalId: ANN.externalId } }, fixture.admin);
    expect(res.errors).toBeUndefined();
    const { partner, userErrors } = res.data!.erasePartner;
    expect(userErrors).toEqual([]);
    expect(partner).toMatchObject({ id: ann, name: null, email: null, status: 'BANNED' });
    expect(partner!.externalId).toMatch(/^erased:[0-9a-f]{24}$/);
    expect(Date.parse(partner!.erasedAt!)).not.toBeNaN();

    const row = await prisma().partner.findUniqueOrThrow({ where: { id: annRow } });
    expect(row).toMatchObject({
      externalId: partner!.externalId,
      name: null,
      email: null,
      metadata: {},
      status: 'BANNED',
    });
    expect(row.erasedAt?.toISOString()).toBe(partner!.erasedAt);
    const enrollments = await prisma().enrollment.findMany({ where: { partnerId: annRow } });
    expect(enrollments.map((e) => e.answers)).toEqual([null]);
    const clicks = await prisma().click.findMany({ where: { partnerId: annRow } });
    expect(clicks).toHaveLength(2);
    for (const click of clicks) {
      expect(click).toMatchObject({ ipHash: null, userAgent: null, referrerUrl: null, discarded: false });
    }
    const links = await prisma().referralLink.findMany({ where: { partnerId: annRow } });
    expect(links.every((l) => l.disabledAt !== null)).toBe(true);

    const events = await eventsOf(annRow);
    expect(events.filter((e) => e.type === 'partner.erased').map((e) => e.payload)).toEqual([
      { partnerId: ann, erasedAt: partner!.erasedAt, from: 'ACTIVE', to: 'BANNED' },
    ]);
    expect(events.filter((e) => e.type === 'link.disabled')).toHaveLength(links.length);
    expect(events.filter((e) => e.type === 'partner.status_changed')).toEqual([]);
    const listed = await fixture.gql(ERASED_EVENTS, {}, fixture.admin);
    expect(listed.data!.events.edges.map((e) => e.node)).toEqual([
      {
        type: 'partner.erased',
        subject: { id: ann },
        data: {
          changedFields: ['externalId', 'name', 'email', 'metadata', 'status'],
          partner: { id: ann, status: 'BANNED' },
        },
      },
    ]);
    // No event about Ann still names her: partner.created now carries the tombstone.
    const text = JSON.stringify(events.map((e) => e.payload));
    for (const personal of [ANN.externalId, ANN.name, 'crm-4711']) expect(text).not.toContain(personal);
    expect(events.find((e) => e.type === 'partner.created')!.payload).toMatchObject({
      externalId: partner!.externalId,
    });
    // Bob is untouched.
    expect(await prisma().partner.findUniqueOrThrow({ where: { id: bobRow } })).toMatchObject({
      externalId: 'bob',
      name: 'Bob',
      erasedAt: null,
    });
  });

  it('also clears a click acknowledged just before the erasure and written after it', async () => {
    const f = factories(prisma(), fixture.tenant);
    const program = await f.program();
    const carol = await f.partner({ name: 'Carol' });
    const link = await f.link(await f.enrollment({ programId: program.id, partnerId: carol.id }));
    await ok(
      fixture.gql(
        TRACK_CLICK,
        { input: { code: link.code, ip: ANN.ip, userAgent: ANN.userAgent, referrerUrl: ANN.referrerUrl } },
        fixture.admin,
      ),
      'trackClick',
    );
    // Acknowledged, not written (CLICK_FLUSH_INTERVAL_MS is a minute here).
    expect(fixture.server.app.services.clicks.stats().queued).toBe(1);
    expect(await prisma().click.count({ where: { partnerId: carol.id } })).toBe(0);
    const res = await fixture.gql(ERASE, { input: { partnerId: gid('Partner', carol.id) } }, fixture.admin);
    expect(res.data!.erasePartner.userErrors).toEqual([]);
    expect(fixture.server.app.services.clicks.stats().queued).toBe(0);
    const clicks = await prisma().click.findMany({ where: { partnerId: carol.id } });
    expect(clicks).toEqual([expect.objectContaining({ ipHash: null, userAgent: null, referrerUrl: null })]);
  });

  it('leaves every money figure exactly as it was (the erased partner only stops counting as active)', async () => {
    const after = await money();
    expect(after.partner).toEqual(before.partner);
    const programBefore = before.program as { stats: { activePartners: number } };
    expect(after.program).toEqual({
      stats: { ...programBefore.stats, activePartners: programBefore.stats.activePartners - 1 },
    });
  });

  it('exports the tombstone and the money records', async () => {
    const res = await fixture.gql(EXPORT, { id: ann }, fixture.admin);
    const json = res.data!.exportPartner!.json as Record<string, any>;
    expect(json.partner).toMatchObject({ name: null, email: null, metadata: {}, status: 'BANNED' });
    expect(json.partner.externalId).toMatch(/^erased:/);
    expect(json.partner.erasedAt).not.toBeNull();
    expect(json.enrollments.items[0].answers).toBeNull();
    expect(json.rewards.items).toHaveLength(3);
    expect(json.ledgerEntries.items).toHaveLength(4);
    const text = JSON.stringify(json);
    for (const personal of [ANN.externalId, ANN.name, 'crm-4711', 'ann-example.blog']) {
      expect(text).not.toContain(personal);
    }
    // The old externalId names nobody any more.
    expect((await fixture.gql(EXPORT, { externalId: ANN.externalId }, fixture.admin)).data!.exportPartner).toBeNull();
  });

  it('refuses to put personal data back, to change the status or to mint a token, and changes nothing', async () => {
    const row = await prisma().partner.findUniqueOrThrow({ where: { id: annRow } });
    const events = await prisma().event.count();
    const update = await fixture.gql(UPDATE_PARTNER, { input: { id: ann, name: 'Ann again' } }, fixture.admin);
    expect(update.data!.updatePartner.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'id'] }),
    ]);
    const status = await fixture.gql(SET_STATUS, { input: { partnerId: ann, status: 'ACTIVE' } }, fixture.admin);
    expect(status.data!.setPartnerStatus.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'partnerId'] }),
    ]);
    // Asking for the status it has is the usual no-op.
    const banned = await fixture.gql(SET_STATUS, { input: { partnerId: ann, status: 'BANNED' } }, fixture.admin);
    expect(banned.data!.setPartnerStatus.userErrors).toEqual([]);
    const token = await fixture.gql(PARTNER_TOKEN, { input: { partnerId: ann } }, fixture.admin);
    expect(token.data!.createPartnerToken.token).toBeNull();
    expect(token.data!.createPartnerToken.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'partnerId'] }),
    ]);
    expect(token.data!.createPartnerToken.userErrors[0]!.message).toMatch(/erased/);
    // Its links record nothing any more.
    const click = await fixture.gql(TRACK_CLICK, { input: { code: annCode, ip: ANN.ip } }, fixture.admin);
    expect(click.data!.trackClick).toMatchObject({ clickId: null, discarded: true, discardReason: 'LINK_DISABLED' });
    expect(await prisma().partner.findUniqueOrThrow({ where: { id: annRow } })).toEqual(row);
    expect(await prisma().event.count()).toBe(events);
  });

  it('erasing again succeeds, appends nothing and changes nothing', async () => {
    const row = await prisma().partner.findUniqueOrThrow({ where: { id: annRow } });
    const events = await prisma().event.count();
    const res = await fixture.gql(ERASE, { input: { partnerId: ann } }, fixture.admin);
    expect(res.data!.erasePartner.userErrors).toEqual([]);
    expect(res.data!.erasePartner.partner).toMatchObject({ id: ann, externalId: row.externalId });
    expect(await prisma().partner.findUniqueOrThrow({ where: { id: annRow } })).toEqual(row);
    expect(await prisma().event.count()).toBe(events);
    // By the tombstone too.
    const byTombstone = await fixture.gql(ERASE, { input: { partnerExternalId: row.externalId } }, fixture.admin);
    expect(byTombstone.data!.erasePartner.userErrors).toEqual([]);
    expect(await prisma().event.count()).toBe(events);
  });

  it('a token minted before the erasure sees only the tombstone; the money still owed can be paid out', async () => {
    const viewer = await fixture.gql(VIEWER, {}, tokenBefore);
    expect(viewer.data!.viewer.partner).toMatchObject({ id: ann, name: null, email: null, status: 'BANNED' });
    expect(viewer.data!.viewer.partner!.externalId).toMatch(/^erased:/);
    const payout = await ok(
      fixture.gql(CREATE_PAYOUT, { input: { partnerId: ann, currency: 'USD' } }, fixture.admin),
      'createPayout',
    );
    expect(payout.payout!.amount).toEqual({ amount: '10.00', currency: 'USD' });
    // The person may come back: their old externalId is free for a new partner.
    const again = await ok(
      fixture.gql(CREATE_PARTNER, { input: { externalId: ANN.externalId } }, fixture.admin),
      'createPartner',
    );
    expect(again.partner!.id).not.toBe(ann);
  });
});
