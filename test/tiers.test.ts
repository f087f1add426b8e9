// Tiers (issue 16, item 2): createTier / updateTier / deleteTier with a metric, a threshold over a
// trailing period and rule overrides; a partner's tier raised by their conversions and moved up
// and down by the daily job, with `tier.changed`; read as Enrollment.tier, Partner.tier(programId)
// and Program.tiers within the caller's workspace, mode and partner. And the explanations rewards
// carry (item 6) as the API shows them.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from './helpers/backend.js';
import { graphql } from './gql/index.js';
import { factories, gid, uuidv7 } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';
import { startTestServer } from './helpers/server.js';

// Every request looks its key up (one statement), so statement counts do not depend on the credential cache's timing.
const fixture = useTwoWorkspaces({ names: ['Tiers A', 'Tiers B'], env: { AUTH_CACHE_TTL_MS: '0' } });
const DAY = 86_400_000;

const CREATE = graphql(`
  mutation TI_Create($input: CreateTierInput!) {
    createTier(input: $input) {
      tier { id name metric threshold periodDays program { id } overrides { rule { id } disabled fixedAmount { amount currency } percentageBasisPoints } }
      userErrors { code field message }
    }
  }
`);
const UPDATE = graphql(`
  mutation TI_Update($input: UpdateTierInput!) {
    updateTier(input: $input) {
      tier { id name metric threshold periodDays overrides { rule { id } fixedAmount { amount } percentageBasisPoints disabled } }
      userErrors { code field message }
    }
  }
`);
const DELETE = graphql(`
  mutation TI_Delete($input: DeleteTierInput!) {
    deleteTier(input: $input) { deletedTierId userErrors { code field message } }
  }
`);
const RECORD = graphql(`
  mutation TI_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion {
        id
        rewards {
          id amount { amount currency } rule { id }
          explanation { ruleVersion source base { amount currency } basisPoints capped text }
        }
        skippedRules { rule { id } reason message }
      }
      userErrors { code field message }
    }
  }
`);
const PROGRAM_TIERS = graphql(`
  query TI_ProgramTiers($id: ID!) {
    program(id: $id) { id tiers { id name threshold } }
  }
`);
const READS = graphql(`
  query TI_Reads($partnerId: ID!, $programId: ID!, $enrollmentId: ID!, $tierId: ID!) {
    partner(id: $partnerId) { id tier(programId: $programId) { id name } }
    enrollment: node(id: $enrollmentId) { ... on Enrollment { id tier { id name overrides { rule { id } } } } }
    tier: node(id: $tierId) { ... on Tier { id name program { id } } }
  }
`);
const REFUND = graphql(`
  mutation TI_Refund($input: RefundConversionInput!) {
    refundConversion(input: $input) {
      rewards { id amount { amount currency } explanation { source ruleVersion base { amount currency } basisPoints capped text } }
      userErrors { code field message }
    }
  }
`);

const db = () => fixture.server.testDb.db.prisma;
const eventsSince = async (since: number) =>
  (await db().event.findMany({ where: fixture.tenant, orderBy: { id: 'asc' } })).slice(since);
const eventCount = () => db().event.count({ where: fixture.tenant });

interface Setup {
  programId: string;
  programRowId: string;
  fixedRule: string;
  percentRule: string;
  partners: Array<{ rowId: string; id: string; enrollment: string; enrollmentRowId: string; code: string }>;
}

/** A USD program with a FIXED 10.00 and a PERCENTAGE 10 % purchase rule, and `partners` enrolled partners with a link each. */
async function setup(partners = 2, tenant = fixture.tenant): Promise<Setup> {
  const f = factories(db(), tenant);
  const program = await f.program();
  const fixed = await f.rule(program.id, { fixedAmount: 1000n });
  const percent = await f.rule(program.id, {
    amountType: 'PERCENTAGE',
    fixedAmount: null,
    fixedCurrency: null,
    percentageBasisPoints: 1000,
  });
  const list = [];
  for (let i = 0; i < partners; i++) {
    const partner = await f.partner();
    const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
    const link = await f.link(enrollment);
    list.push({
      rowId: partner.id,
      id: gid('Partner', partner.id),
      enrollment: gid('Enrollment', enrollment.id),
      enrollmentRowId: enrollment.id,
      code: link.code,
    });
  }
  return {
    programId: gid('Program', program.id),
    programRowId: program.id,
    fixedRule: gid('RewardRule', fixed.id),
    percentRule: gid('RewardRule', percent.id),
    partners: list,
  };
}

/** The row id inside a global id. */
const rowId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

function createTier(input: Record<string, unknown>, token = fixture.admin) {
  return fixture.gql(CREATE, { input: { overrides: [], metric: 'CONVERTED_REFERRALS', ...input } } as never, token);
}
async function createdTier(input: Record<string, unknown>) {
  const res = await createTier(input);
  expect(res.errors).toBeUndefined();
  expect(res.data!.createTier.userErrors).toEqual([]);
  return res.data!.createTier.tier!;
}

let n = 0;
/** A purchase by a new referred person through `code` (a new CONVERTED referral). */
async function purchase(code: string, amount = '49.00', extra: Record<string, unknown> = {}) {
  const res = await fixture.gql(
    RECORD,
    {
      input: {
        type: 'PURCHASE',
        idempotencyKey: `ti-${++n}`,
        referredExternalId: `ti-cust-${n}`,
        code,
        amount: { amount, currency: 'USD' },
        ...extra,
      },
    } as never,
    fixture.admin,
  );
  expect(res.errors).toBeUndefined();
  expect(res.data!.recordConversion.userErrors).toEqual([]);
  return res.data!.recordConversion.conversion!;
}

const tierOf = async (enrollmentRowId: string) =>
  (await db().enrollment.findUnique({ where: { id: enrollmentRowId }, include: { tier: true } }))!.tier?.name ?? null;

describe('createTier, updateTier, deleteTier', () => {
  it('creates a tier with overrides (periodDays 90 by default), lists it on Program.tiers lowest first, and appends tier.created', async () => {
    const s = await setup(1);
    const before = await eventCount();
    const gold = await createdTier({
      programId: s.programId,
      name: '  Gold ',
      threshold: 10,
      overrides: [
        { ruleId: s.percentRule, percentageBasisPoints: 2000 },
        { ruleId: s.fixedRule, disabled: true },
      ],
    });
    expect(gold).toMatchObject({
      name: 'Gold',
      metric: 'CONVERTED_REFERRALS',
      threshold: 10,
      periodDays: 90,
      program: { id: s.programId },
      overrides: [
        { rule: { id: s.percentRule }, disabled: false, fixedAmount: null, percentageBasisPoints: 2000 },
        { rule: { id: s.fixedRule }, disabled: true, fixedAmount: null, percentageBasisPoints: null },
      ],
    });
    const silver = await createdTier({ programId: s.programId, name: 'Silver', threshold: 3, periodDays: 30 });
    const tiers = await fixture.gql(PROGRAM_TIERS, { id: s.programId }, fixture.admin);
    expect(tiers.data!.program!.tiers).toEqual([
      { id: silver.id, name: 'Silver', threshold: 3 },
      { id: gold.id, name: 'Gold', threshold: 10 },
    ]);
    const events = await eventsSince(before);
    expect(events.map((e) => e.type)).toEqual(['tier.created', 'tier.created']);
    expect(events[0]!.payload).toEqual({
      tierId: gold.id,
      programId: s.programId,
      name: 'Gold',
      metric: 'CONVERTED_REFERRALS',
      threshold: 10,
      periodDays: 90,
      overrides: 2,
    });
    expect(events[0]!.programId).toBe(s.programRowId);
  });

  it('refuses bad input with a userError per problem, and changes and appends nothing', async () => {
    const s = await setup(1);
    const foreign = await setup(0);
    await createdTier({ programId: s.programId, name: 'Gold', threshold: 10 });
    const before = await eventCount();
    const tiersBefore = await db().tier.count({ where: fixture.tenant });
    const codes = async (input: Record<string, unknown>) =>
      (await createTier({ programId: s.programId, name: 'X', threshold: 5, ...input })).data!.createTier.userErrors.map(
        (e) => [e.code, e.field],
      );
    expect(await codes({ name: '   ', threshold: 0, periodDays: 0 })).toEqual([
      ['VALIDATION', ['input', 'name']],
      ['VALIDATION', ['input', 'threshold']],
      ['VALIDATION', ['input', 'periodDays']],
    ]);
    expect(await codes({ name: 'x'.repeat(101), periodDays: 3651, threshold: 1_000_000_001 })).toEqual([
      ['VALIDATION', ['input', 'name']],
      ['VALIDATION', ['input', 'threshold']],
      ['VALIDATION', ['input', 'periodDays']],
    ]);
    // One metric per program; names (ignoring case) and thresholds are unique in it.
    expect(await codes({ metric: 'REVENUE' })).toEqual([['VALIDATION', ['input', 'metric']]]);
    expect(await codes({ name: 'gOLD', threshold: 10 })).toEqual([
      ['DUPLICATE', ['input', 'name']],
      ['DUPLICATE', ['input', 'threshold']],
    ]);
    // Overrides are checked like setEnrollmentOverrides', each at its index.
    expect(
      await codes({
        overrides: [
          { ruleId: s.fixedRule, percentageBasisPoints: 500 },
          { ruleId: foreign.fixedRule, disabled: true },
          { ruleId: s.percentRule },
          { ruleId: 'nonsense', disabled: true },
        ],
      }),
    ).toEqual([
      ['VALIDATION', ['input', 'overrides', '0', 'percentageBasisPoints']],
      ['NOT_FOUND', ['input', 'overrides', '1', 'ruleId']],
      ['VALIDATION', ['input', 'overrides', '2']],
      ['NOT_FOUND', ['input', 'overrides', '3', 'ruleId']],
    ]);
    const many = Array.from({ length: 51 }, () => ({ ruleId: s.fixedRule, disabled: true }));
    expect(await codes({ overrides: many })).toEqual([['LIMIT_EXCEEDED', ['input', 'overrides']]]);
    expect(await codes({ programId: gid('Program', uuidv7()) })).toEqual([['NOT_FOUND', ['input', 'programId']]]);
    expect(await codes({ programId: s.fixedRule })).toEqual([['NOT_FOUND', ['input', 'programId']]]);
    await db().program.update({ where: { id: foreign.programRowId }, data: { status: 'ARCHIVED' } });
    expect(await codes({ programId: foreign.programId })).toEqual([['INVALID_TRANSITION', ['input', 'programId']]]);
    expect(await eventCount()).toBe(before);
    expect(await db().tier.count({ where: fixture.tenant })).toBe(tiersBefore);
    expect(await db().rewardRuleOverride.count({ where: { tier: { programId: s.programRowId } } })).toBe(0);
  });

  it(`refuses a program's 21st tier (LIMIT_EXCEEDED)`, async () => {
    const s = await setup(0);
    for (let i = 1; i <= 20; i++) await createdTier({ programId: s.programId, name: `T${i}`, threshold: i });
    const res = await createTier({ programId: s.programId, name: 'T21', threshold: 21 });
    expect(res.data!.createTier.userErrors.map((e) => e.code)).toEqual(['LIMIT_EXCEEDED']);
  });

  it('updateTier changes what is given, replaces the overrides, says what changed; a no-op appends nothing; null is refused', async () => {
    const s = await setup(1);
    const tier = await createdTier({
      programId: s.programId,
      name: 'Gold',
      threshold: 10,
      overrides: [{ ruleId: s.fixedRule, fixedAmount: { amount: '15.00', currency: 'USD' } }],
    });
    const before = await eventCount();
    const res = await fixture.gql(
      UPDATE,
      {
        input: {
          id: tier.id,
          name: 'Platinum',
          periodDays: 365,
          overrides: [{ ruleId: s.percentRule, percentageBasisPoints: 2500 }],
        },
      },
      fixture.admin,
    );
    expect(res.data!.updateTier.userErrors).toEqual([]);
    expect(res.data!.updateTier.tier).toEqual({
      id: tier.id,
      name: 'Platinum',
      metric: 'CONVERTED_REFERRALS',
      threshold: 10,
      periodDays: 365,
      overrides: [{ rule: { id: s.percentRule }, fixedAmount: null, percentageBasisPoints: 2500, disabled: false }],
    });
    const [updated, ...more] = await eventsSince(before);
    expect(more).toEqual([]);
    expect(updated).toMatchObject({
      type: 'tier.updated',
      payload: { tierId: tier.id, name: 'Platinum', changedFields: ['name', 'periodDays', 'overrides'], overrides: 1 },
    });
    // The same values again (the overrides named by another version of the same rule would be the same too): nothing.
    const same = await fixture.gql(
      UPDATE,
      { input: { id: tier.id, name: 'Platinum', overrides: [{ ruleId: s.percentRule, percentageBasisPoints: 2500 }] } },
      fixture.admin,
    );
    expect(same.data!.updateTier.userErrors).toEqual([]);
    // Refused: null for a field, a bad threshold, an unknown tier.
    const refused = await fixture.gql(UPDATE, { input: { id: tier.id, name: null, threshold: -1 } }, fixture.admin);
    expect(refused.data!.updateTier.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['VALIDATION', ['input', 'name']],
      ['VALIDATION', ['input', 'threshold']],
    ]);
    const unknown = await fixture.gql(UPDATE, { input: { id: gid('Tier', uuidv7()), name: 'x' } }, fixture.admin);
    expect(unknown.data!.updateTier.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    expect(await eventCount()).toBe(before + 1);
    // A metric change is allowed while the tier is the program's only one, not against the others'.
    const alone = await fixture.gql(UPDATE, { input: { id: tier.id, metric: 'REVENUE' } }, fixture.admin);
    expect(alone.data!.updateTier.tier!.metric).toBe('REVENUE');
    await createdTier({ programId: s.programId, name: 'Silver', threshold: 5, metric: 'REVENUE' });
    const mixed = await fixture.gql(UPDATE, { input: { id: tier.id, metric: 'CONVERTED_REFERRALS' } }, fixture.admin);
    expect(mixed.data!.updateTier.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['VALIDATION', ['input', 'metric']],
    ]);
  });

  it('tier.created, tier.updated, tier.deleted: the tier is the subject (null once deleted), no data member', async () => {
    const s = await setup(0);
    const tier = await createdTier({ programId: s.programId, name: 'Gold', threshold: 10 });
    await fixture.gql(UPDATE, { input: { id: tier.id, threshold: 11 } }, fixture.admin);
    const subjects = async () => {
      const res = await fixture.gql(
        graphql(`
          query TI_TierEvents {
            events(first: 100) { edges { node { type payload subject { __typename id } data { __typename } } } }
          }
        `),
        {},
        fixture.admin,
      );
      return res
        .data!.events.edges.map((e) => e.node)
        .filter((e) => e.type.startsWith('tier.') && JSON.parse(e.payload).tierId === tier.id)
        .map((e) => [e.type, e.subject, e.data]);
    };
    expect(await subjects()).toEqual([
      ['tier.created', { __typename: 'Tier', id: tier.id }, null],
      ['tier.updated', { __typename: 'Tier', id: tier.id }, null],
    ]);
    await fixture.gql(DELETE, { input: { id: tier.id } }, fixture.admin);
    expect(await subjects()).toEqual([
      ['tier.created', null, null],
      ['tier.updated', null, null],
      ['tier.deleted', null, null],
    ]);
  });

  it('deleteTier moves its partners to the tier they reach without it (tier.changed DOWN), then deletes it with its overrides', async () => {
    const s = await setup(1);
    const [p] = s.partners;
    await createdTier({ programId: s.programId, name: 'Silver', threshold: 1 });
    const gold = await createdTier({
      programId: s.programId,
      name: 'Gold',
      threshold: 2,
      overrides: [{ ruleId: s.fixedRule, disabled: true }],
    });
    await purchase(p!.code);
    await purchase(p!.code);
    expect(await tierOf(p!.enrollmentRowId)).toBe('Gold');
    const before = await eventCount();
    const res = await fixture.gql(DELETE, { input: { id: gold.id } }, fixture.admin);
    expect(res.data!.deleteTier).toEqual({ deletedTierId: gold.id, userErrors: [] });
    expect(await tierOf(p!.enrollmentRowId)).toBe('Silver');
    const events = await eventsSince(before);
    expect(events.map((e) => e.type)).toEqual(['tier.deleted', 'tier.changed']);
    expect(events[1]!.payload).toMatchObject({
      enrollmentId: p!.enrollment,
      partnerId: p!.id,
      fromTier: { tierId: gold.id, name: 'Gold' },
      toTier: { name: 'Silver' },
      direction: 'DOWN',
    });
    expect(await db().rewardRuleOverride.count({ where: { tierId: rowId(gold.id) } })).toBe(0);
    const again = await fixture.gql(DELETE, { input: { id: gold.id } }, fixture.admin);
    expect(again.data!.deleteTier.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
  });
});

describe('evaluation', () => {
  it('a payment that converts a referral raises the tier (tier.changed UP); from then on the tier’s overrides pay, and the rewards say so', async () => {
    const s = await setup(2);
    const [p, other] = s.partners;
    const silver = await createdTier({
      programId: s.programId,
      name: 'Silver',
      threshold: 2,
      overrides: [{ ruleId: s.percentRule, percentageBasisPoints: 1500 }],
    });
    const gold = await createdTier({
      programId: s.programId,
      name: 'Gold',
      threshold: 3,
      overrides: [
        { ruleId: s.percentRule, percentageBasisPoints: 2000 },
        { ruleId: s.fixedRule, fixedAmount: { amount: '25.00', currency: 'USD' } },
      ],
    });
    const first = await purchase(p!.code);
    expect(first.rewards.map((r) => r.explanation!.text).sort()).toEqual([
      '10 % of 49.00 USD (rule v1) = 4.90 USD',
      '10.00 USD per purchase (rule v1)',
    ]);
    expect(await tierOf(p!.enrollmentRowId)).toBeNull();
    // The second converted referral reaches Silver, after its rewards.
    const before = await eventCount();
    await purchase(p!.code, '49.00');
    const events = await eventsSince(before);
    expect(events.map((e) => e.type)).toEqual([
      'reward.created',
      'reward.created',
      'conversion.recorded',
      'tier.changed',
    ]);
    expect(events[3]!).toMatchObject({
      programId: s.programRowId,
      partnerId: p!.rowId,
      payload: {
        enrollmentId: p!.enrollment,
        programId: s.programId,
        partnerId: p!.id,
        from: 'APPROVED',
        to: 'APPROVED',
        fromTier: null,
        toTier: { tierId: silver.id, name: 'Silver' },
        direction: 'UP',
      },
    });
    // The conversion that reached Silver was paid before it; the next one is paid by Silver.
    const third = await purchase(p!.code);
    const byRule = Object.fromEntries(third.rewards.map((r) => [r.rule.id, r]));
    expect(byRule[s.percentRule]!.amount).toEqual({ amount: '7.35', currency: 'USD' });
    expect(byRule[s.percentRule]!.explanation).toEqual({
      ruleVersion: 1,
      source: 'TIER',
      base: { amount: '49.00', currency: 'USD' },
      basisPoints: 1500,
      capped: false,
      text: '15 % of 49.00 USD (Silver tier) = 7.35 USD',
    });
    expect(byRule[s.fixedRule]!.explanation!.source).toBe('RULE');
    expect(await tierOf(p!.enrollmentRowId)).toBe('Gold');
    const fourth = await purchase(p!.code);
    expect(fourth.rewards.map((r) => r.explanation!.text).sort()).toEqual([
      '20 % of 49.00 USD (Gold tier) = 9.80 USD',
      '25.00 USD per purchase (Gold tier)',
    ]);
    // The other partner is untouched; a later payment of an already converted referral adds nothing.
    expect(await tierOf(other!.enrollmentRowId)).toBeNull();
    const enrollment = await db().enrollment.findUnique({ where: { id: p!.enrollmentRowId } });
    expect(enrollment!.tierId).toBe(rowId(gold.id));
    expect(enrollment!.tierSince!.getTime()).toBeGreaterThan(Date.now() - 60_000);
    // An enrollment override still wins over the tier.
    await db().rewardRuleOverride.create({
      data: {
        ...fixture.tenant,
        enrollmentId: p!.enrollmentRowId,
        ruleId: rowId(s.fixedRule),
        ruleLineageId: rowId(s.fixedRule),
        fixedAmount: 3000n,
      },
    });
    const fifth = await purchase(p!.code);
    expect(fifth.rewards.map((r) => r.explanation!.text).sort()).toEqual([
      '20 % of 49.00 USD (Gold tier) = 9.80 USD',
      '30.00 USD per purchase (personal rate)',
    ]);
  });

  it('REVENUE tiers count accepted payments in the program’s currency over the period, less refunds, in whole units', async () => {
    const s = await setup(1);
    const [p] = s.partners;
    await createdTier({ programId: s.programId, name: 'Seller', metric: 'REVENUE', threshold: 100, periodDays: 30 });
    await purchase(p!.code, '60.00');
    // Another currency never counts (amounts are never converted).
    await purchase(p!.code, '500.00', { amount: { amount: '500.00', currency: 'EUR' } });
    expect(await tierOf(p!.enrollmentRowId)).toBeNull();
    const c = await purchase(p!.code, '40.00');
    expect(await tierOf(p!.enrollmentRowId)).toBe('Seller');
    // A refund takes the revenue back below the threshold: the daily job moves the partner down.
    const refund = await fixture.gql(
      REFUND,
      {
        input: { conversionId: c.id, idempotencyKey: `ti-refund-${++n}`, amount: { amount: '0.01', currency: 'USD' } },
      },
      fixture.admin,
    );
    expect(refund.data!.refundConversion.userErrors).toEqual([]);
    expect(await tierOf(p!.enrollmentRowId)).toBe('Seller');
    const result = await fixture.server.app.tierJob.runOnce(new Date());
    expect(result.changed).toBeGreaterThanOrEqual(1);
    expect(await tierOf(p!.enrollmentRowId)).toBeNull();
  });

  it('the daily job moves partners up and down as their activity enters and leaves the period, with one event per move', async () => {
    const s = await setup(3);
    const [a, b, c] = s.partners;
    await createdTier({ programId: s.programId, name: 'Silver', threshold: 1, periodDays: 10 });
    await createdTier({ programId: s.programId, name: 'Gold', threshold: 2, periodDays: 30 });
    const f = factories(db(), fixture.tenant);
    const now = Date.now();
    const converted = (partnerId: string, daysAgo: number) => ({
      programId: s.programRowId,
      partnerId,
      status: 'CONVERTED' as const,
      convertedAt: new Date(now - daysAgo * DAY),
    });
    // Written behind recordConversion's back: only the job sees them.
    await f.referrals([
      converted(a!.rowId, 1),
      converted(a!.rowId, 20),
      converted(b!.rowId, 5),
      converted(c!.rowId, 40),
    ]);
    const before = await eventCount();
    const moves = async () =>
      (await eventsSince(before)).filter((e) => e.type === 'tier.changed' && e.programId === s.programRowId);
    expect(await fixture.server.app.tierJob.runOnce(new Date(now))).toMatchObject({ skipped: 0 });
    expect(await moves()).toHaveLength(2);
    expect(await tierOf(a!.enrollmentRowId)).toBe('Gold'); // 2 in 30 days
    expect(await tierOf(b!.enrollmentRowId)).toBe('Silver'); // 1 in 10 days
    expect(await tierOf(c!.enrollmentRowId)).toBeNull(); // 40 days ago counts for neither
    // Again at the same instant: nothing moves, nothing is appended.
    await fixture.server.app.tierJob.runOnce(new Date(now));
    expect(await moves()).toHaveLength(2);
    // Twelve days later: a's 1-day-old referral is 13 days old (Gold: 1 in 30 days, Silver: 0 in 10); b's is 17.
    await fixture.server.app.tierJob.runOnce(new Date(now + 12 * DAY));
    expect(await tierOf(a!.enrollmentRowId)).toBeNull();
    expect(await tierOf(b!.enrollmentRowId)).toBeNull();
    const events = await moves();
    expect(
      events.map((e) => {
        const p = e.payload as {
          enrollmentId: string;
          fromTier: { name: string } | null;
          toTier: { name: string } | null;
          direction: string;
        };
        return [p.enrollmentId, p.fromTier?.name ?? null, p.toTier?.name ?? null, p.direction];
      }),
    ).toEqual(
      expect.arrayContaining([
        [a!.enrollment, null, 'Gold', 'UP'],
        [b!.enrollment, null, 'Silver', 'UP'],
        [a!.enrollment, 'Gold', null, 'DOWN'],
        [b!.enrollment, 'Silver', null, 'DOWN'],
      ]),
    );
    expect(events).toHaveLength(4);
  });

  it('runs on its own every TIER_JOB_INTERVAL_MS inside the app and stops with it; not at all with 0', async () => {
    expect(fixture.server.app.tierJob.isRunning).toBe(false);
    const app = await startTestServer({ TIER_JOB_INTERVAL_MS: '20' });
    try {
      const created = await app.workspace('Tier job');
      const tenant = { workspaceId: created.workspace.id, mode: 'TEST' as const };
      const f = factories(app.testDb.db.prisma, tenant);
      const program = await f.program();
      const partner = await f.partner();
      const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
      await app.testDb.db.prisma.tier.create({
        data: { ...tenant, programId: program.id, name: 'Silver', metric: 'CONVERTED_REFERRALS', threshold: 1 },
      });
      await f.referrals([
        { programId: program.id, partnerId: partner.id, status: 'CONVERTED', convertedAt: new Date() },
      ]);
      expect(app.app.tierJob.isRunning).toBe(true);
      // A run that started before the referral existed may miss it; the one after cannot.
      await app.app.tierJob.nextRun();
      await app.app.tierJob.nextRun();
      const row = await app.testDb.db.prisma.enrollment.findUniqueOrThrow({
        where: { id: enrollment.id },
        include: { tier: true },
      });
      expect(row.tier?.name).toBe('Silver');
    } finally {
      await app.close();
    }
    expect(app.app.tierJob.isRunning).toBe(false);
  });

  it('two jobs at once (two instances) move each partner once', async () => {
    const s = await setup(2);
    await createdTier({ programId: s.programId, name: 'Silver', threshold: 1 });
    const f = factories(db(), fixture.tenant);
    await f.referrals(
      s.partners.map((p) => ({
        programId: s.programRowId,
        partnerId: p.rowId,
        status: 'CONVERTED' as const,
        convertedAt: new Date(),
      })),
    );
    const before = await eventCount();
    const { TierJob } = await import('../src/modules/tier/tier-job.js');
    const other = new TierJob(fixture.server.testDb.db, { intervalMs: 0 });
    await Promise.all([fixture.server.app.tierJob.runOnce(), other.runOnce()]);
    const moved = (await eventsSince(before)).filter(
      (e) => e.type === 'tier.changed' && e.programId === s.programRowId,
    );
    expect(moved).toHaveLength(2);
    for (const p of s.partners) expect(await tierOf(p.enrollmentRowId)).toBe('Silver');
  });

  it.skipIf(!testDatabaseUrl())(
    'a conversion that would raise a partner into a tier being deleted waits for the deletion, then leaves the tier alone (PostgreSQL)',
    async () => {
      const s = await setup(1);
      const silver = await createdTier({ programId: s.programId, name: 'Silver', threshold: 1 });
      const before = await eventCount();
      // What deleteTier holds while it moves the tier's partners: the tier's row, FOR UPDATE.
      const deleter = new pg.Client({ connectionString: fixture.server.testDb.url! });
      await deleter.connect();
      try {
        await deleter.query('BEGIN');
        await deleter.query('SELECT 1 FROM "Tier" WHERE "id" = $1 FOR UPDATE', [rowId(silver.id)]);
        const recorded = purchase(s.partners[0]!.code);
        // Until the conversion's tier statement (evaluate.ts) waits for that lock: polled, no fixed delay.
        // (From another connection: inside a transaction, pg_stat_activity keeps its first answer.
        // It shows the statement's first kilobyte: its start.)
        for (;;) {
          const waiting = await fixture.server.testDb.db.query(
            `SELECT 1 FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%WITH tiers AS%'`,
          );
          if (waiting.length) break;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await deleter.query('DELETE FROM "Tier" WHERE "id" = $1', [rowId(silver.id)]);
        await deleter.query('COMMIT');
        const conversion = await recorded;
        expect(conversion.rewards).toHaveLength(2);
      } finally {
        await deleter.end();
      }
      expect(await tierOf(s.partners[0]!.enrollmentRowId)).toBeNull();
      expect((await eventsSince(before)).map((e) => e.type)).toEqual([
        'reward.created',
        'reward.created',
        'conversion.recorded',
      ]);
    },
  );

  it('costs no statement in a program without tiers, one for a new referral’s payment with tiers, none once in the highest tier', async () => {
    const plain = await setup(1);
    const tiered = await setup(1);
    await createdTier({ programId: tiered.programId, name: 'Silver', threshold: 2 });
    const LEAN = `mutation TI_Lean($input: RecordConversionInput!) { recordConversion(input: $input) { replayed userErrors { code } } }`;
    const send = async (code: string, person: string) => {
      const res = await fixture.server.gqlCounted(
        LEAN,
        {
          input: {
            type: 'PURCHASE',
            idempotencyKey: `ti-lean-${++n}`,
            referredExternalId: person,
            code,
            amount: { amount: '10.00', currency: 'USD' },
          },
        },
        fixture.admin,
      );
      expect(
        (res.body as { data: { recordConversion: { userErrors: unknown[] } } }).data.recordConversion.userErrors,
      ).toEqual([]);
      return res.statements;
    };
    const [a, b] = [`lean-a-${uuidv7()}`, `lean-b-${uuidv7()}`];
    // Warm (the credential cache).
    await send(plain.partners[0]!.code, `lean-warm-${uuidv7()}`);
    const plainNew = await send(plain.partners[0]!.code, a);
    const tieredNew = await send(tiered.partners[0]!.code, b);
    expect(tieredNew).toBe(plainNew + 1);
    // A later payment of a converted referral adds no converted referral: no tier statement.
    const plainAgain = await send(plain.partners[0]!.code, a);
    const tieredAgain = await send(tiered.partners[0]!.code, b);
    expect(tieredAgain).toBe(plainAgain);
    // The second converted referral reaches Silver (one statement, and the move)…
    expect(await send(tiered.partners[0]!.code, `lean-b-${uuidv7()}`)).toBe(plainNew + 1);
    expect(await tierOf(tiered.partners[0]!.enrollmentRowId)).toBe('Silver');
    // …the program's highest tier: the next ones cost nothing for tiers.
    expect(await send(tiered.partners[0]!.code, `lean-b-${uuidv7()}`)).toBe(plainNew);
  });
});

describe('reads and isolation', () => {
  let s: Setup;
  let gold = '';
  let silver = '';
  beforeAll(async () => {
    s = await setup(2);
    silver = (await createdTier({ programId: s.programId, name: 'Silver', threshold: 1 })).id;
    gold = (
      await createdTier({
        programId: s.programId,
        name: 'Gold',
        threshold: 2,
        overrides: [{ ruleId: s.fixedRule, disabled: true }],
      })
    ).id;
    await purchase(s.partners[0]!.code);
    await purchase(s.partners[0]!.code);
    await purchase(s.partners[1]!.code);
  });
  const reads = (token: string, partner = s.partners[0]!, tierId = gold) =>
    fixture.gql(
      READS,
      { partnerId: partner.id, programId: s.programId, enrollmentId: partner.enrollment, tierId },
      token,
    );

  it('Partner.tier(programId), Enrollment.tier and node(tier) for the workspace’s keys', async () => {
    const res = await reads(fixture.admin);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      partner: { id: s.partners[0]!.id, tier: { id: gold, name: 'Gold' } },
      enrollment: {
        id: s.partners[0]!.enrollment,
        tier: { id: gold, name: 'Gold', overrides: [{ rule: { id: s.fixedRule } }] },
      },
      tier: { id: gold, name: 'Gold', program: { id: s.programId } },
    });
    const reader = await readOnlyKey(fixture.server, fixture.admin);
    expect((await reads(reader)).data).toEqual(res.data);
    // Another program (or none): null.
    const elsewhere = await fixture.gql(
      READS,
      {
        partnerId: s.partners[0]!.id,
        programId: gid('Program', uuidv7()),
        enrollmentId: s.partners[0]!.enrollment,
        tierId: gold,
      },
      fixture.admin,
    );
    expect(elsewhere.data!.partner!.tier).toBeNull();
  });

  it('another workspace or mode sees no tier and cannot change one', async () => {
    for (const token of [fixture.otherAdmin, fixture.liveAdmin]) {
      const res = await reads(token);
      expect(res.data).toEqual({ partner: null, enrollment: null, tier: null });
      const tiers = await fixture.gql(PROGRAM_TIERS, { id: s.programId }, token);
      expect(tiers.data!.program).toBeNull();
      const update = await fixture.gql(UPDATE, { input: { id: gold, name: 'Mine' } }, token);
      expect(update.data!.updateTier.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
      const del = await fixture.gql(DELETE, { input: { id: gold } }, token);
      expect(del.data!.deleteTier.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
      const create = await createTier({ programId: s.programId, name: 'Mine', threshold: 7 }, token);
      expect(create.data!.createTier.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    }
    expect((await db().tier.findUnique({ where: { id: rowId(gold) } }))!.name).toBe('Gold');
  });

  it('a PARTNER credential sees its own tier only, and cannot change tiers; READ_ONLY cannot either', async () => {
    const mine = await partnerToken(fixture.server, fixture.admin, s.partners[1]!.rowId);
    const own = await reads(mine, s.partners[1]!, silver);
    expect(own.data).toEqual({
      partner: { id: s.partners[1]!.id, tier: { id: silver, name: 'Silver' } },
      enrollment: { id: s.partners[1]!.enrollment, tier: { id: silver, name: 'Silver', overrides: [] } },
      tier: { id: silver, name: 'Silver', program: { id: s.programId } },
    });
    // Gold is another partner's tier: not a node for it, nor in Program.tiers; the other partner is not either.
    const theirs = await reads(mine, s.partners[0]!, gold);
    expect(theirs.data).toEqual({ partner: null, enrollment: null, tier: null });
    // (Query.program is for the company's keys; a partner reads its programs as nodes.)
    const tiers = await fixture.gql(
      graphql(`query TI_NodeTiers($id: ID!) { node(id: $id) { ... on Program { id tiers { id name threshold } } } }`),
      { id: s.programId },
      mine,
    );
    expect(tiers.data!.node).toEqual({ id: s.programId, tiers: [{ id: silver, name: 'Silver', threshold: 1 }] });
    const reader = await readOnlyKey(fixture.server, fixture.admin);
    for (const token of [mine, reader]) {
      const create = await createTier({ programId: s.programId, name: 'Mine', threshold: 7 }, token);
      expect(create.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
      const update = await fixture.gql(UPDATE, { input: { id: silver, name: 'Mine' } }, token);
      expect(update.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
      const del = await fixture.gql(DELETE, { input: { id: silver } }, token);
      expect(del.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
  });

  it('tier.changed events reach the partner’s own credential, with the enrollment as subject and data', async () => {
    const mine = await partnerToken(fixture.server, fixture.admin, s.partners[1]!.rowId);
    const res = await fixture.gql(
      graphql(`
        query TI_Events {
          events(first: 100) { edges { node { type subject { __typename id } data { __typename ... on EnrollmentEventData { enrollment { id tier { name } } } } } } }
        }
      `),
      {},
      mine,
    );
    const changed = res.data!.events.edges.map((e) => e.node).filter((e) => e.type === 'tier.changed');
    expect(changed).toEqual([
      {
        type: 'tier.changed',
        subject: { __typename: 'Enrollment', id: s.partners[1]!.enrollment },
        data: {
          __typename: 'EnrollmentEventData',
          enrollment: { id: s.partners[1]!.enrollment, tier: { name: 'Silver' } },
        },
      },
    ]);
    // tier.created is the company's: a partner sees none.
    expect(res.data!.events.edges.some((e) => e.node.type === 'tier.created')).toBe(false);
  });
});

describe('explanations through the API', () => {
  it('a refund’s negative reward explains the share it takes back; rewards from before explanations have none', async () => {
    const s = await setup(1);
    const c = await purchase(s.partners[0]!.code, '50.00');
    const res = await fixture.gql(
      REFUND,
      {
        input: { conversionId: c.id, idempotencyKey: `ti-refund-${++n}`, amount: { amount: '20.00', currency: 'USD' } },
      },
      fixture.admin,
    );
    expect(res.data!.refundConversion.userErrors).toEqual([]);
    const texts = res.data!.refundConversion.rewards.map((r) => [r.amount.amount, r.explanation]);
    expect(texts).toEqual(
      expect.arrayContaining([
        [
          '-4.00',
          {
            source: 'RULE',
            ruleVersion: 1,
            base: { amount: '20.00', currency: 'USD' },
            basisPoints: null,
            capped: false,
            text: 'Refund of 20.00 USD of 50.00 USD paid: −4.00 USD of the 10.00 USD reward',
          },
        ],
        [
          '-2.00',
          expect.objectContaining({ text: 'Refund of 20.00 USD of 50.00 USD paid: −2.00 USD of the 5.00 USD reward' }),
        ],
      ]),
    );
    // A reward written without an explanation (as before issue 16) reads as null.
    const f = factories(db(), fixture.tenant);
    const rule = await db().rewardRule.findFirst({ where: { programId: s.programRowId } });
    const [conversion] = await f.conversions([
      { programId: s.programRowId, partnerId: s.partners[0]!.rowId, amount: 100n, currency: 'USD' },
    ]);
    const [old] = await f.rewards([
      {
        programId: s.programRowId,
        partnerId: s.partners[0]!.rowId,
        conversionId: conversion!.id,
        ruleId: rule!.id,
        amount: 100n,
        currency: 'USD',
      },
    ]);
    const read = await fixture.gql(
      graphql(`query TI_Old($id: ID!) { node(id: $id) { ... on Reward { id explanation { text } } } }`),
      { id: gid('Reward', old!.id) },
      fixture.admin,
    );
    expect(read.data!.node).toEqual({ id: gid('Reward', old!.id), explanation: null });
  });
});
