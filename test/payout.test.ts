import { decodeGlobalID } from '@pothos/plugin-relay';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApprovalJob } from '../src/modules/reward/approval-job.js';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import {
  balanceOf,
  expectLedgerMatchesBalances,
  gid,
  moneyFixtures,
  partnerToken,
  readOnlyKey,
  type World,
} from './helpers/money.js';

const fixture = useTwoWorkspaces({ env: { APPROVAL_JOB_INTERVAL_MS: '0' }, names: ['Payouts A', 'Payouts B'] });

let fx: ReturnType<typeof moneyFixtures>;

beforeAll(async () => {
  fx = moneyFixtures(fixture.server.testDb.db.prisma, fixture.tenant);
});

const CREATE = graphql(`
  mutation PO_Create($input: CreatePayoutInput!) {
    createPayout(input: $input) {
      payout { id status amount { amount currency } externalReference partner { id } rewards { id status } createdAt }
      userErrors { code message field }
    }
  }
`);

const MARK_PAID = graphql(`
  mutation PO_MarkPaid($input: MarkPayoutPaidInput!) {
    markPayoutPaid(input: $input) {
      payout { id status amount { amount currency } externalReference rewards { id status } }
      userErrors { code message field }
    }
  }
`);

const UPDATE = graphql(`
  mutation PO_Update($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) { rewards { id status } userErrors { code message field } }
  }
`);

const CREDIT = graphql(`
  mutation PO_Credit($input: CreditBalanceInput!) {
    creditBalance(input: $input) { balance { available { amount } } userErrors { code message field } }
  }
`);

const prisma = () => fixture.server.testDb.db.prisma;

async function create(partnerId: string, currency = 'USD', token = fixture.admin) {
  const res = await fixture.gql(CREATE, { input: { partnerId: gid('Partner', partnerId), currency } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createPayout;
}

async function markPaid(payoutId: string, externalReference?: string | null, token = fixture.admin) {
  const res = await fixture.gql(MARK_PAID, { input: { payoutId, externalReference } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.markPayoutPaid;
}

const counts = async () => ({
  payouts: await prisma().payout.count(),
  claimed: await prisma().reward.count({ where: { payoutId: { not: null } } }),
  ledger: await prisma().ledgerEntry.count(),
  history: await prisma().rewardStatusChange.count(),
  events: await prisma().event.count({ where: fixture.tenant }),
});

describe('createPayout', () => {
  it('gathers exactly the partner’s APPROVED REFERRER rewards in the currency that are in no payout', async () => {
    const w = await fx.world();
    const eur = await fx.world({ currency: 'EUR' });
    const someoneElse = await fx.world();
    const due = [
      await fx.reward(w, { status: 'APPROVED', amount: 1000n }),
      await fx.reward(w, { status: 'APPROVED', amount: 250n }),
    ];
    const notDue = [
      await fx.reward(w, { status: 'CREATED' }),
      await fx.reward(w, { status: 'PROCESSED' }),
      await fx.reward(w, { status: 'CANCELED' }),
      await fx.reward(w, { status: 'REJECTED' }),
      await fx.reward(w, { status: 'APPROVED', recipient: 'REFERRED' }),
      await fx.reward(eur, { status: 'APPROVED', partnerId: w.partnerId }),
      await fx.reward(someoneElse, { status: 'APPROVED' }),
    ];
    const eventsBefore = await prisma().event.count({ where: fixture.tenant });

    const payload = await create(w.partnerId, ' usd ');
    expect(payload.userErrors).toEqual([]);
    expect(payload.payout).toMatchObject({
      status: 'PENDING',
      amount: { amount: '12.50', currency: 'USD' },
      externalReference: null,
      partner: { id: gid('Partner', w.partnerId) },
    });
    expect(payload.payout!.rewards).toEqual(due.map((r) => ({ id: gid('Reward', r.id), status: 'APPROVED' })));
    for (const reward of notDue)
      expect((await prisma().reward.findUniqueOrThrow({ where: { id: reward.id } })).payoutId).toBeNull();

    // A pending payout holds what it pays: no longer available, not yet paid.
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      pending: 1000n,
      available: 0n,
      paid: 1000n,
    });
    const events = await prisma().event.findMany({
      where: { ...fixture.tenant, sequence: { gt: BigInt(eventsBefore) } },
    });
    expect(events.map((e) => e.type)).toEqual(['payout.created']);
    expect(events[0]).toMatchObject({ partnerId: w.partnerId });
    expect(events[0]!.payload).toEqual({
      payoutId: payload.payout!.id,
      partnerId: gid('Partner', w.partnerId),
      amount: { amount: '12.50', currency: 'USD' },
      status: 'PENDING',
      method: null,
      rewardCount: 2,
    });

    // Everything due is taken: a second payout finds nothing.
    const again = await create(w.partnerId);
    expect(again).toEqual({ payout: null, userErrors: [expect.objectContaining({ code: 'NOTHING_DUE' })] });
  });

  it('refuses with NOTHING_DUE when nothing is approved, and changes nothing', async () => {
    const w = await fx.world();
    await fx.reward(w, { status: 'CREATED' });
    const before = await counts();
    const payload = await create(w.partnerId);
    expect(payload.payout).toBeNull();
    expect(payload.userErrors).toEqual([expect.objectContaining({ code: 'NOTHING_DUE', field: null })]);
    expect(payload.userErrors[0]!.message).toContain(gid('Partner', w.partnerId));
    expect(await counts()).toEqual(before);
  });

  it('refuses with NOTHING_DUE when the available balance is not positive, even with approved rewards', async () => {
    const w = await fx.world();
    const reward = await fx.reward(w, { status: 'APPROVED', amount: 1000n });
    const debit = await fixture.gql(
      CREDIT,
      {
        input: {
          partnerId: gid('Partner', w.partnerId),
          amount: { amount: '-10.00', currency: 'USD' },
          idempotencyKey: `debit-${reward.id}`,
        },
      },
      fixture.admin,
    );
    expect(debit.data!.creditBalance.balance!.available.amount).toBe('0.00');
    const payload = await create(w.partnerId);
    expect(payload.userErrors).toEqual([expect.objectContaining({ code: 'NOTHING_DUE' })]);
    expect(payload.userErrors[0]!.message).toContain('0.00');
    expect((await prisma().reward.findUniqueOrThrow({ where: { id: reward.id } })).payoutId).toBeNull();
  });

  it('refuses an unknown currency with VALIDATION', async () => {
    const w = await fx.world();
    expect((await create(w.partnerId, 'dollars')).userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'currency'] }),
    ]);
  });
});

describe('markPayoutPaid', () => {
  let w: World;
  let payoutId: string;
  let rewardIds: string[];

  beforeAll(async () => {
    w = await fx.world();
    const rewards = [
      await fx.reward(w, { status: 'APPROVED', amount: 400n }),
      await fx.reward(w, { status: 'APPROVED', amount: 600n }),
    ];
    rewardIds = rewards.map((r) => r.id);
    const payload = await create(w.partnerId);
    payoutId = payload.payout!.id;
  });

  it('marks a PENDING payout PAID and its rewards PROCESSED, moving their money from available to paid', async () => {
    // Held by the PENDING payout: neither available nor paid yet.
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      available: 0n,
      paid: 0n,
    });
    const eventsBefore = await prisma().event.count({ where: fixture.tenant });
    const payload = await markPaid(payoutId, '  wire-42 ');
    expect(payload.userErrors).toEqual([]);
    expect(payload.payout).toMatchObject({
      id: payoutId,
      status: 'PAID',
      externalReference: 'wire-42',
      amount: { amount: '10.00', currency: 'USD' },
    });
    expect(payload.payout!.rewards.map((r) => r.status)).toEqual(['PROCESSED', 'PROCESSED']);
    const row = await prisma().payout.findFirstOrThrow({ where: { partnerId: w.partnerId } });
    expect(row.paidAt).toBeInstanceOf(Date);

    for (const id of rewardIds) {
      const ledger = await prisma().ledgerEntry.findMany({ where: { rewardId: id }, orderBy: { id: 'asc' } });
      // Paid by its payout, a reward writes no entry of its own: the payout's PAYOUT entry took the money.
      expect(ledger.map((e) => [e.type, e.payoutId])).toEqual([['REWARD_APPROVED', null]]);
      const history = await prisma().rewardStatusChange.findMany({ where: { rewardId: id }, orderBy: { id: 'asc' } });
      expect(history.at(-1)).toMatchObject({
        fromStatus: 'APPROVED',
        toStatus: 'PROCESSED',
        actor: fixture.ws.keys.test.id,
        reason: `Paid in payout ${payoutId}.`,
      });
    }
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toEqual({
      currency: 'USD',
      pending: 0n,
      available: 0n,
      paid: 1000n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);

    const events = await prisma().event.findMany({
      where: { ...fixture.tenant, sequence: { gt: BigInt(eventsBefore) } },
      orderBy: { sequence: 'asc' },
    });
    expect(events.map((e) => e.type)).toEqual(['reward.status_changed', 'reward.status_changed', 'payout.paid']);
    expect(events[2]!.payload).toMatchObject({
      payoutId,
      partnerId: gid('Partner', w.partnerId),
      amount: { amount: '10.00', currency: 'USD' },
      externalReference: 'wire-42',
      status: 'PAID',
    });
  });

  it('is idempotent: marking it paid again (same or no reference) changes nothing', async () => {
    const before = await counts();
    for (const reference of ['wire-42', null]) {
      const payload = await markPaid(payoutId, reference);
      expect(payload.userErrors).toEqual([]);
      expect(payload.payout).toMatchObject({ status: 'PAID', externalReference: 'wire-42' });
    }
    expect(await counts()).toEqual(before);
  });

  it('refuses a different externalReference for a PAID payout with INVALID_TRANSITION', async () => {
    const payload = await markPaid(payoutId, 'wire-43');
    expect(payload.payout).toBeNull();
    expect(payload.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'externalReference'] }),
    ]);
    expect(payload.userErrors[0]!.message).toContain(payoutId);
    expect(payload.userErrors[0]!.message).toContain('PAID');
    expect((await prisma().payout.findFirstOrThrow({ where: { partnerId: w.partnerId } })).externalReference).toBe(
      'wire-42',
    );
  });

  it('refuses a FAILED payout with INVALID_TRANSITION', async () => {
    const world = await fx.world();
    await fx.reward(world, { status: 'APPROVED' });
    const created = await create(world.partnerId);
    await prisma().payout.updateMany({ where: { partnerId: world.partnerId }, data: { status: 'FAILED' } });
    const payload = await markPaid(created.payout!.id);
    expect(payload.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'payoutId'] }),
    ]);
    expect(payload.userErrors[0]!.message).toContain('FAILED');
  });

  it('refuses an externalReference longer than 255 characters', async () => {
    const world = await fx.world();
    await fx.reward(world, { status: 'APPROVED' });
    const created = await create(world.partnerId);
    const payload = await markPaid(created.payout!.id, 'r'.repeat(256));
    expect(payload.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'externalReference'] }),
    ]);
    expect((await prisma().payout.findFirstOrThrow({ where: { partnerId: world.partnerId } })).status).toBe('PENDING');
  });

  it('keeps the rewards of a pending payout out of updateRewardStatus', async () => {
    const world = await fx.world();
    const reward = await fx.reward(world, { status: 'APPROVED' });
    await create(world.partnerId);
    const res = await fixture.gql(
      UPDATE,
      { input: { ids: [gid('Reward', reward.id)], status: 'CANCELED' } },
      fixture.admin,
    );
    expect(res.data!.updateRewardStatus.userErrors).toEqual([expect.objectContaining({ code: 'INVALID_TRANSITION' })]);
  });
});

describe('payouts: tenancy and roles', () => {
  it('answers NOT_FOUND for another workspace’s or mode’s partner or payout, malformed ids and other types’ ids, and changes nothing', async () => {
    const foreign = moneyFixtures(prisma(), fixture.otherTenant);
    const live = moneyFixtures(prisma(), { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
    const foreignWorld = await foreign.world();
    const liveWorld = await live.world();
    await foreign.reward(foreignWorld, { status: 'APPROVED' });
    await live.reward(liveWorld, { status: 'APPROVED' });
    const foreignPayout = await foreign.payout({ partnerId: foreignWorld.partnerId, amount: 1n, currency: 'USD' });
    const livePayout = await live.payout({ partnerId: liveWorld.partnerId, amount: 1n, currency: 'USD' });
    const before = await counts();

    for (const id of [
      gid('Partner', foreignWorld.partnerId),
      gid('Partner', liveWorld.partnerId),
      'garbage',
      gid('Payout', foreignPayout.id),
      gid('Partner', 'x'),
    ]) {
      const res = await fixture.gql(CREATE, { input: { partnerId: id, currency: 'USD' } }, fixture.admin);
      expect(res.data!.createPayout).toEqual({
        payout: null,
        userErrors: [expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'partnerId'] })],
      });
    }
    for (const id of [
      gid('Payout', foreignPayout.id),
      gid('Payout', livePayout.id),
      'garbage',
      gid('Partner', foreignWorld.partnerId),
      gid('Payout', 'x'),
    ]) {
      const payload = await markPaid(id, 'ref');
      expect(payload).toEqual({
        payout: null,
        userErrors: [expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'payoutId'] })],
      });
    }
    expect(await counts()).toEqual(before);
    expect((await prisma().payout.findUniqueOrThrow({ where: { id: livePayout.id } })).status).toBe('PENDING');

    // The LIVE key works on its own mode's data.
    const res = await fixture.gql(
      CREATE,
      { input: { partnerId: gid('Partner', liveWorld.partnerId), currency: 'USD' } },
      fixture.liveAdmin,
    );
    expect(res.data!.createPayout.userErrors).toEqual([]);
  });

  it('refuses READ_ONLY and PARTNER credentials with FORBIDDEN_FOR_ROLE', async () => {
    const w = await fx.world();
    await fx.reward(w, { status: 'APPROVED' });
    const payout = await fx.payout({ partnerId: w.partnerId, amount: 1n, currency: 'USD' });
    for (const token of [
      await readOnlyKey(fixture.server, fixture.admin),
      await partnerToken(fixture.server, fixture.admin, w.partnerId),
    ]) {
      const created = await fixture.gql(
        CREATE,
        { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } },
        token,
      );
      expect(created.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
      const paid = await fixture.gql(MARK_PAID, { input: { payoutId: gid('Payout', payout.id) } }, token);
      expect(paid.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    expect(await prisma().payout.count({ where: { partnerId: w.partnerId } })).toBe(1);
    expect((await prisma().payout.findUniqueOrThrow({ where: { id: payout.id } })).status).toBe('PENDING');
  });
});

describe('end to end through the API', () => {
  const PROGRAM = graphql(`
    mutation PO_E2E_Program($input: CreateProgramInput!) { createProgram(input: $input) { program { id } userErrors { code message } } }
  `);
  const RULE = graphql(`
    mutation PO_E2E_Rule($input: CreateRewardRuleInput!) { createRewardRule(input: $input) { rewardRule { id } userErrors { code message } } }
  `);
  const PARTNER = graphql(`
    mutation PO_E2E_Partner($input: CreatePartnerInput!) { createPartner(input: $input) { partner { id links { code } } userErrors { code message } } }
  `);
  const RECORD = graphql(`
    mutation PO_E2E_Record($input: RecordConversionInput!) {
      recordConversion(input: $input) { conversion { id status } rewards { id status amount { amount currency } } userErrors { code message } }
    }
  `);
  const REFUND = graphql(`
    mutation PO_E2E_Refund($input: RefundConversionInput!) {
      refundConversion(input: $input) { conversion { id type refundOf { id } rewards { id amount { amount } } } rewards { id status amount { amount } } userErrors { code message } }
    }
  `);
  const BALANCES = graphql(`
    query PO_E2E_Balances($id: ID!) {
      partner(id: $id) { balances { currency pending { amount } available { amount } paid { amount } } }
    }
  `);

  it('records a purchase, approves its reward after the hold period, pays it out, claws back a refund and credits the difference', async () => {
    const e2e = await fixture.server.workspace('End to end');
    const key = e2e.keys.test.secret;
    const ok = async <T>(promise: Promise<{ data?: T | null; errors?: unknown }>) => {
      const res = await promise;
      expect(res.errors).toBeUndefined();
      return res.data!;
    };
    const program = (
      await ok(fixture.gql(PROGRAM, { input: { name: 'Shop', type: 'AFFILIATE', currency: 'USD' } }, key))
    ).createProgram.program!;
    const rule = await ok(
      fixture.gql(
        RULE,
        {
          input: {
            programId: program.id,
            trigger: 'PURCHASE',
            kind: 'CASH',
            amountType: 'PERCENTAGE',
            percentageBasisPoints: 1000,
          },
        },
        key,
      ),
    );
    expect(rule.createRewardRule.userErrors).toEqual([]);
    const partner = (
      await ok(fixture.gql(PARTNER, { input: { externalId: 'affiliate-1', programIds: [program.id] } }, key))
    ).createPartner.partner!;
    const balances = async () => (await ok(fixture.gql(BALANCES, { id: partner.id }, key))).partner!.balances;

    const recorded = (
      await ok(
        fixture.gql(
          RECORD,
          {
            input: {
              type: 'PURCHASE',
              idempotencyKey: 'order-1',
              referredExternalId: 'customer-1',
              code: partner.links[0]!.code,
              amount: { amount: '123.45', currency: 'USD' },
            },
          },
          key,
        ),
      )
    ).recordConversion;
    expect(recorded.userErrors).toEqual([]);
    expect(recorded.rewards).toEqual([
      expect.objectContaining({ status: 'CREATED', amount: { amount: '12.35', currency: 'USD' } }),
    ]);
    expect(await balances()).toEqual([
      { currency: 'USD', pending: { amount: '12.35' }, available: { amount: '0.00' }, paid: { amount: '0.00' } },
    ]);

    expect(await new ApprovalJob(prisma(), { intervalMs: 0 }).runOnce()).toBeGreaterThanOrEqual(1);
    expect(await balances()).toEqual([
      { currency: 'USD', pending: { amount: '0.00' }, available: { amount: '12.35' }, paid: { amount: '0.00' } },
    ]);

    const payout = (await ok(fixture.gql(CREATE, { input: { partnerId: partner.id, currency: 'USD' } }, key)))
      .createPayout;
    expect(payout.payout!.amount).toEqual({ amount: '12.35', currency: 'USD' });
    expect(
      (await ok(fixture.gql(MARK_PAID, { input: { payoutId: payout.payout!.id, externalReference: 'po-1' } }, key)))
        .markPayoutPaid.userErrors,
    ).toEqual([]);
    expect(await balances()).toEqual([
      { currency: 'USD', pending: { amount: '0.00' }, available: { amount: '0.00' }, paid: { amount: '12.35' } },
    ]);

    // 23.45 of 123.45 refunded: 12.35 × 23.45 / 123.45 = 2.3459… → 2.35 back.
    const refund = (
      await ok(
        fixture.gql(
          REFUND,
          {
            input: {
              conversionId: recorded.conversion!.id,
              idempotencyKey: 'refund-1',
              amount: { amount: '23.45', currency: 'USD' },
            },
          },
          key,
        ),
      )
    ).refundConversion;
    expect(refund.userErrors).toEqual([]);
    expect(refund.conversion).toMatchObject({
      type: 'REFUND',
      refundOf: { id: recorded.conversion!.id },
      rewards: [{ amount: { amount: '-2.35' } }],
    });
    expect(refund.rewards).toEqual([expect.objectContaining({ status: 'PROCESSED', amount: { amount: '-2.35' } })]);
    expect(await balances()).toEqual([
      { currency: 'USD', pending: { amount: '0.00' }, available: { amount: '-2.35' }, paid: { amount: '12.35' } },
    ]);

    const credit = await ok(
      fixture.gql(
        CREDIT,
        { input: { partnerId: partner.id, amount: { amount: '2.35', currency: 'USD' }, idempotencyKey: 'goodwill-1' } },
        key,
      ),
    );
    expect(credit.creditBalance.balance!.available.amount).toBe('0.00');
    await expectLedgerMatchesBalances(
      fixture.server,
      key,
      { workspaceId: e2e.workspace.id, mode: 'TEST' },
      decodeGlobalID(partner.id).id,
    );
  });
});
