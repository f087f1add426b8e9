import { beforeAll, describe, expect, it } from 'vitest';
import type { Reward } from '../src/generated/prisma/client.js';
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

const fixture = useTwoWorkspaces({ env: { APPROVAL_JOB_INTERVAL_MS: '0' }, names: ['Refunds A', 'Refunds B'] });

let fx: ReturnType<typeof moneyFixtures>;

beforeAll(async () => {
  fx = moneyFixtures(fixture.server.testDb.db.prisma, fixture.tenant);
});

const REFUND = graphql(`
  mutation RF_Refund($input: RefundConversionInput!) {
    refundConversion(input: $input) {
      conversion { id type status amount { amount currency } idempotencyKey refundOf { id } partner { id } program { id } }
      rewards { id status recipient amount { amount currency } sourceReward { id } }
      userErrors { code message field }
    }
  }
`);

const UPDATE = graphql(`
  mutation RF_Update($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) { rewards { id status } userErrors { code message field } }
  }
`);

const CREATE_PAYOUT = graphql(`
  mutation RF_CreatePayout($input: CreatePayoutInput!) {
    createPayout(input: $input) { payout { id amount { amount currency } rewards { id } } userErrors { code message field } }
  }
`);

const MARK_PAID = graphql(`
  mutation RF_MarkPaid($input: MarkPayoutPaidInput!) {
    markPayoutPaid(input: $input) { payout { id status } userErrors { code message field } }
  }
`);

const prisma = () => fixture.server.testDb.db.prisma;
let keys = 0;
const newKey = () => `refund-${++keys}-${Math.random().toString(36).slice(2, 8)}`;

async function refund(
  conversionId: string,
  amount?: string | null,
  key = newKey(),
  token = fixture.admin,
  currency = 'USD',
) {
  const res = await fixture.gql(
    REFUND,
    {
      input: {
        conversionId: gid('Conversion', conversionId),
        idempotencyKey: key,
        amount: amount ? { amount, currency } : null,
      },
    },
    token,
  );
  expect(res.errors).toBeUndefined();
  return res.data!.refundConversion;
}

async function refundOk(conversionId: string, amount?: string | null, key?: string) {
  const payload = await refund(conversionId, amount, key);
  expect(payload.userErrors).toEqual([]);
  return payload;
}

const reload = (reward: Reward) => prisma().reward.findUniqueOrThrow({ where: { id: reward.id } });
const negativesOf = (sourceRewardId: string) =>
  prisma().reward.findMany({ where: { sourceRewardId }, orderBy: { id: 'asc' } });
const ledgerOf = (rewardId: string) => prisma().ledgerEntry.findMany({ where: { rewardId }, orderBy: { id: 'asc' } });
const counts = async () => ({
  conversions: await prisma().conversion.count({ where: fixture.tenant }),
  rewards: await prisma().reward.count({ where: fixture.tenant }),
  ledger: await prisma().ledgerEntry.count({ where: fixture.tenant }),
  history: await prisma().rewardStatusChange.count({ where: fixture.tenant }),
  events: await prisma().event.count({ where: fixture.tenant }),
});

/** A conversion of `amount` with one REFERRER reward per entry of `rewards` (each under its own rule). */
async function purchase(w: World, amount: bigint, rewards: Array<Parameters<typeof fx.reward>[1]>) {
  const conversion = await fx.conversion(w, { amount });
  const rows: Reward[] = [];
  for (const options of rewards) {
    const rule = await fx.rule(w.programId, {
      fixedAmount: 1n,
      fixedCurrency: w.currency,
      recipient: options?.recipient ?? 'REFERRER',
    });
    rows.push(await fx.reward(w, { ...options, conversionId: conversion.id, ruleId: rule.id }));
  }
  return { conversion, rewards: rows };
}

describe('refundConversion: a full refund', () => {
  it('cancels unpaid rewards, claws back processed ones, leaves canceled ones alone, and records a REFUND conversion', async () => {
    const w = await fx.world();
    const { conversion, rewards } = await purchase(w, 10_000n, [
      { status: 'CREATED', amount: 1000n },
      { status: 'APPROVED', amount: 2000n },
      { status: 'PROCESSED', amount: 3000n },
      { status: 'CANCELED', amount: 400n },
      { status: 'PROCESSED', amount: 500n, recipient: 'REFERRED' },
    ]);
    const [created, approved, processed, canceled, referred] = rewards as [Reward, Reward, Reward, Reward, Reward];
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toEqual({
      currency: 'USD',
      pending: 1000n,
      available: 2000n,
      paid: 3000n,
    });
    const eventsBefore = await prisma().event.count({ where: fixture.tenant });

    const key = newKey();
    const payload = await refundOk(conversion.id, null, key);
    expect(payload.conversion).toMatchObject({
      type: 'REFUND',
      status: 'ACCEPTED',
      amount: { amount: '100.00', currency: 'USD' },
      idempotencyKey: key,
      refundOf: { id: gid('Conversion', conversion.id) },
      partner: { id: gid('Partner', w.partnerId) },
      program: { id: gid('Program', w.programId) },
    });

    expect((await reload(created)).status).toBe('CANCELED');
    expect((await reload(approved)).status).toBe('CANCELED');
    expect((await reload(processed)).status).toBe('PROCESSED');
    expect((await reload(canceled)).status).toBe('CANCELED');
    expect(await negativesOf(created.id)).toEqual([]);
    expect(await negativesOf(canceled.id)).toEqual([]);
    const [clawback] = await negativesOf(processed.id);
    expect(clawback).toMatchObject({
      status: 'PROCESSED',
      amount: -3000n,
      recipient: 'REFERRER',
      conversionId: expect.any(String),
      payoutId: null,
    });
    expect((await ledgerOf(clawback!.id)).map((e) => [e.type, e.amount])).toEqual([['CLAWBACK', -3000n]]);
    expect((await ledgerOf(approved.id)).map((e) => e.type)).toEqual(['REWARD_APPROVED', 'REWARD_REVERSED']);
    const [referredClawback] = await negativesOf(referred.id);
    expect(referredClawback).toMatchObject({ status: 'PROCESSED', amount: -500n, recipient: 'REFERRED' });
    expect(await ledgerOf(referredClawback!.id)).toEqual([]);

    const expected = [created.id, approved.id, clawback!.id, referredClawback!.id]
      .sort()
      .map((id) => gid('Reward', id));
    expect(payload.rewards.map((r) => r.id)).toEqual(expected);
    expect(payload.rewards.find((r) => r.id === gid('Reward', clawback!.id))).toMatchObject({
      status: 'PROCESSED',
      amount: { amount: '-30.00', currency: 'USD' },
      sourceReward: { id: gid('Reward', processed.id) },
    });
    expect(payload.conversion!.id).toBe(gid('Conversion', clawback!.conversionId));

    // Paid money stays paid; what was taken back leaves available, below zero.
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toEqual({
      currency: 'USD',
      pending: 0n,
      available: -3000n,
      paid: 3000n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);

    const events = await prisma().event.findMany({
      where: { ...fixture.tenant, sequence: { gt: BigInt(eventsBefore) } },
      orderBy: { sequence: 'asc' },
    });
    expect(events.map((e) => e.type).sort()).toEqual([
      'conversion.recorded',
      'reward.created',
      'reward.created',
      'reward.status_changed',
      'reward.status_changed',
    ]);
    expect(events.find((e) => e.type === 'conversion.recorded')!.payload).toMatchObject({
      conversionId: payload.conversion!.id,
      type: 'REFUND',
      refundOfId: gid('Conversion', conversion.id),
      amount: { amount: '100.00', currency: 'USD' },
    });
  });

  it('claws back an APPROVED reward already in a pending payout instead of canceling it', async () => {
    const w = await fx.world();
    const { conversion, rewards } = await purchase(w, 5000n, [{ status: 'APPROVED', amount: 1000n }]);
    const payout = await fixture.gql(
      CREATE_PAYOUT,
      { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } },
      fixture.admin,
    );
    expect(payout.data!.createPayout.userErrors).toEqual([]);

    await refundOk(conversion.id);
    const reward = await reload(rewards[0]!);
    expect(reward.status).toBe('APPROVED');
    const [clawback] = await negativesOf(reward.id);
    expect(clawback).toMatchObject({ status: 'PROCESSED', amount: -1000n });
    // The payout still holds (and will pay) the reward: the clawback is owed back from `available`.
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      available: -1000n,
      paid: 0n,
    });

    const paid = await fixture.gql(
      MARK_PAID,
      { input: { payoutId: payout.data!.createPayout.payout!.id } },
      fixture.admin,
    );
    expect(paid.data!.markPayoutPaid.userErrors).toEqual([]);
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: -1000n,
      paid: 1000n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });
});

describe('refundConversion: partial refunds', () => {
  it('claw back processed rewards pro rata, rounded half-up on the running total so the whole comes back exactly', async () => {
    const w = await fx.world();
    const { conversion, rewards } = await purchase(w, 10_000n, [{ status: 'PROCESSED', amount: 1000n }]);
    const reward = rewards[0]!;
    const first = await refundOk(conversion.id, '33.33'); // 1000 × 3333 / 10000 = 333.3 → 333
    expect(first.rewards.map((r) => r.amount.amount)).toEqual(['-3.33']);
    const second = await refundOk(conversion.id, '33.33'); // 666.6 → 667, minus 333
    expect(second.rewards.map((r) => r.amount.amount)).toEqual(['-3.34']);
    const third = await refundOk(conversion.id); // the rest: 1000 − 667
    expect(third.conversion!.amount).toEqual({ amount: '33.34', currency: 'USD' });
    expect(third.rewards.map((r) => r.amount.amount)).toEqual(['-3.33']);
    const clawbacks = await negativesOf(reward.id);
    expect(clawbacks.map((c) => c.amount)).toEqual([-333n, -334n, -333n]);
    expect(clawbacks.every((c) => c.status === 'PROCESSED')).toBe(true);
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toEqual({
      currency: 'USD',
      pending: 0n,
      available: -1000n,
      paid: 1000n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });

  it('rounds a half minor unit up and skips a share that rounds to zero', async () => {
    const w = await fx.world();
    const half = await purchase(w, 1000n, [{ status: 'PROCESSED', amount: 5n }]);
    expect((await refundOk(half.conversion.id, '1.00')).rewards.map((r) => r.amount.amount)).toEqual(['-0.01']); // 0.5 → 1
    const tiny = await purchase(w, 10_000n, [{ status: 'PROCESSED', amount: 1n }]);
    const payload = await refundOk(tiny.conversion.id, '1.00'); // 0.01 → 0
    expect(payload.rewards).toEqual([]);
    expect(payload.conversion!.amount!.amount).toBe('1.00');
  });

  it('give an unpaid reward a negative share that follows it: approved, paid out, then clawed back for the rest', async () => {
    const w = await fx.world();
    const { conversion, rewards } = await purchase(w, 10_000n, [{ status: 'CREATED', amount: 1000n }]);
    const reward = rewards[0]!;
    const payload = await refundOk(conversion.id, '25.00');
    const [share] = await negativesOf(reward.id);
    expect(share).toMatchObject({ status: 'CREATED', amount: -250n, approveAfter: reward.approveAfter });
    expect(payload.rewards).toEqual([
      {
        id: gid('Reward', share!.id),
        status: 'CREATED',
        recipient: 'REFERRER',
        amount: { amount: '-2.50', currency: 'USD' },
        sourceReward: { id: gid('Reward', reward.id) },
      },
    ]);
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      pending: 750n,
      available: 0n,
    });

    // The share cannot be moved by itself…
    const direct = await fixture.gql(
      UPDATE,
      { input: { ids: [gid('Reward', share!.id)], status: 'APPROVED' } },
      fixture.admin,
    );
    expect(direct.data!.updateRewardStatus.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'ids', '0'] }),
    ]);
    expect(direct.data!.updateRewardStatus.userErrors[0]!.message).toContain(gid('Reward', reward.id));
    // …it moves with its reward.
    await new ApprovalJob(prisma(), { intervalMs: 0 }).runOnce();
    expect((await reload(reward)).status).toBe('APPROVED');
    expect((await reload(share!)).status).toBe('APPROVED');
    expect((await ledgerOf(share!.id)).map((e) => [e.type, e.amount])).toEqual([['ADJUSTMENT', -250n]]);
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: 750n,
    });

    const created = await fixture.gql(
      CREATE_PAYOUT,
      { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } },
      fixture.admin,
    );
    expect(created.data!.createPayout.payout!.amount).toEqual({ amount: '7.50', currency: 'USD' });
    expect(created.data!.createPayout.payout!.rewards.map((r) => r.id).sort()).toEqual(
      [gid('Reward', reward.id), gid('Reward', share!.id)].sort(),
    );
    await fixture.gql(
      MARK_PAID,
      { input: { payoutId: created.data!.createPayout.payout!.id, externalReference: 'tx-1' } },
      fixture.admin,
    );
    expect((await reload(share!)).status).toBe('PROCESSED');
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: 0n,
      paid: 750n,
    });

    // The rest of the refund: the reward is paid now, so what is left of it is clawed back.
    const rest = await refundOk(conversion.id);
    expect(rest.rewards.map((r) => [r.status, r.amount.amount])).toEqual([['PROCESSED', '-7.50']]);
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: -750n,
      paid: 750n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });

  it('cancel an approved reward with its earlier shares once the conversion is refunded in full', async () => {
    const w = await fx.world();
    const { conversion, rewards } = await purchase(w, 10_000n, [{ status: 'APPROVED', amount: 1000n }]);
    const reward = rewards[0]!;
    await refundOk(conversion.id, '40.00');
    const [share] = await negativesOf(reward.id);
    expect(share).toMatchObject({ status: 'APPROVED', amount: -400n });
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({ available: 600n });

    const rest = await refundOk(conversion.id, '60.00');
    expect(rest.rewards.map((r) => [r.id, r.status])).toEqual([
      [gid('Reward', reward.id), 'CANCELED'],
      [gid('Reward', share!.id), 'CANCELED'],
    ]);
    expect((await ledgerOf(reward.id)).map((e) => [e.type, e.amount])).toEqual([
      ['REWARD_APPROVED', 1000n],
      ['REWARD_REVERSED', -1000n],
    ]);
    expect((await ledgerOf(share!.id)).map((e) => [e.type, e.amount])).toEqual([
      ['ADJUSTMENT', -400n],
      ['REWARD_REVERSED', 400n],
    ]);
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toEqual({
      currency: 'USD',
      pending: 0n,
      available: 0n,
      paid: 0n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });

  it('cancel a canceled reward’s shares with it when an admin cancels the reward', async () => {
    const w = await fx.world();
    const { conversion, rewards } = await purchase(w, 10_000n, [{ status: 'CREATED', amount: 1000n }]);
    await refundOk(conversion.id, '10.00');
    const [share] = await negativesOf(rewards[0]!.id);
    const payload = await fixture.gql(
      UPDATE,
      { input: { ids: [gid('Reward', rewards[0]!.id)], status: 'CANCELED' } },
      fixture.admin,
    );
    expect(payload.data!.updateRewardStatus.userErrors).toEqual([]);
    expect((await reload(share!)).status).toBe('CANCELED');
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({ pending: 0n });
  });
});

describe('refundConversion: validation', () => {
  let w: World;
  beforeAll(async () => {
    w = await fx.world();
  });

  it('refuses more than what is left to refund, naming it, and records nothing', async () => {
    const { conversion } = await purchase(w, 10_000n, [{ status: 'PROCESSED', amount: 1000n }]);
    await refundOk(conversion.id, '40.00');
    const before = await counts();
    const payload = await refund(conversion.id, '60.01');
    expect(payload.conversion).toBeNull();
    expect(payload.rewards).toEqual([]);
    expect(payload.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'amount', 'amount'] }),
    ]);
    expect(payload.userErrors[0]!.message).toContain('60.00');
    expect(await counts()).toEqual(before);
    await refundOk(conversion.id, '60.00');
    const again = await refund(conversion.id);
    expect(again.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'conversionId'] }),
    ]);
    expect(again.userErrors[0]!.message).toContain('refunded in full');
  });

  it.each([
    ['another currency', { amount: '1.00', currency: 'EUR' }, ['input', 'amount', 'currency']],
    ['an unknown currency', { amount: '1.00', currency: 'ZZZ' }, ['input', 'amount', 'currency']],
    ['too many decimals', { amount: '1.005', currency: 'USD' }, ['input', 'amount', 'amount']],
    ['zero', { amount: '0.00', currency: 'USD' }, ['input', 'amount', 'amount']],
    ['a negative amount', { amount: '-1.00', currency: 'USD' }, ['input', 'amount', 'amount']],
  ])('refuses %s with VALIDATION on its field', async (_name, amount, field) => {
    const { conversion } = await purchase(w, 10_000n, [{ status: 'APPROVED', amount: 100n }]);
    const before = await counts();
    const res = await fixture.gql(
      REFUND,
      { input: { conversionId: gid('Conversion', conversion.id), idempotencyKey: newKey(), amount } },
      fixture.admin,
    );
    expect(res.data!.refundConversion.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field })]);
    expect(await counts()).toEqual(before);
  });

  it('refuses a blank or over-long idempotencyKey', async () => {
    const { conversion } = await purchase(w, 10_000n, []);
    for (const key of ['  ', 'k'.repeat(256)]) {
      const payload = await refund(conversion.id, null, key);
      expect(payload.userErrors).toEqual([
        expect.objectContaining({ code: 'VALIDATION', field: ['input', 'idempotencyKey'] }),
      ]);
    }
  });

  it.each([
    ['a SIGNUP', { type: 'SIGNUP' as const, amount: null }],
    ['a PURCHASE without an amount', { type: 'PURCHASE' as const, amount: null }],
    ['a REFUND', { type: 'REFUND' as const, amount: 100n }],
  ])('refuses to refund %s', async (_name, options) => {
    const conversion = await fx.conversion(w, options);
    const before = await counts();
    const payload = await refund(conversion.id);
    expect(payload.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'conversionId'] }),
    ]);
    expect(payload.userErrors[0]!.message).toContain(gid('Conversion', conversion.id));
    expect(await counts()).toEqual(before);
  });

  it('refunds a SUBSCRIPTION payment', async () => {
    const conversion = await fx.conversion(w, { type: 'SUBSCRIPTION', amount: 999n });
    expect((await refundOk(conversion.id)).conversion!.amount).toEqual({ amount: '9.99', currency: 'USD' });
  });
});

describe('refundConversion: idempotency', () => {
  it('returns the first result for the same key, whatever the amount, and writes nothing more', async () => {
    const w = await fx.world();
    const { conversion } = await purchase(w, 10_000n, [
      { status: 'PROCESSED', amount: 1000n },
      { status: 'CREATED', amount: 200n },
    ]);
    const key = newKey();
    const first = await refundOk(conversion.id, '50.00', key);
    const before = await counts();
    expect(await refundOk(conversion.id, '50.00', key)).toEqual(first);
    expect(await refundOk(conversion.id, '10.00', key)).toEqual(first);
    expect(await refundOk(conversion.id, null, key)).toEqual(first);
    expect(await counts()).toEqual(before);
  });

  it('replays a full refund with the rewards it canceled', async () => {
    const w = await fx.world();
    const { conversion } = await purchase(w, 10_000n, [{ status: 'APPROVED', amount: 1000n }]);
    const key = newKey();
    const first = await refundOk(conversion.id, null, key);
    expect(first.rewards.map((r) => r.status)).toEqual(['CANCELED']);
    expect(await refundOk(conversion.id, null, key)).toEqual(first);
  });

  it('refuses a key already used by another conversion or by a refund of another conversion with DUPLICATE', async () => {
    const w = await fx.world();
    const a = await purchase(w, 10_000n, []);
    const b = await purchase(w, 10_000n, []);
    const key = newKey();
    await refundOk(a.conversion.id, '1.00', key);
    const before = await counts();
    const reused = await refund(b.conversion.id, '1.00', key);
    expect(reused.userErrors).toEqual([
      expect.objectContaining({ code: 'DUPLICATE', field: ['input', 'idempotencyKey'] }),
    ]);
    const purchaseKey = await refund(a.conversion.id, '1.00', a.conversion.idempotencyKey);
    expect(purchaseKey.userErrors).toEqual([
      expect.objectContaining({ code: 'DUPLICATE', field: ['input', 'idempotencyKey'] }),
    ]);
    expect(await counts()).toEqual(before);
  });
});

describe('refundConversion: tenancy and roles', () => {
  it('answers NOT_FOUND for another workspace’s or mode’s conversion, a malformed id or another type’s id, and records nothing', async () => {
    const w = await fx.world();
    const otherWs = moneyFixtures(prisma(), fixture.otherTenant);
    const live = moneyFixtures(prisma(), { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
    const foreign = await otherWs.conversion(await otherWs.world());
    const liveConversion = await live.conversion(await live.world());
    const before = await counts();
    for (const id of [
      gid('Conversion', foreign.id),
      gid('Conversion', liveConversion.id),
      'nope',
      gid('Partner', w.partnerId),
      gid('Conversion', 'x'),
    ]) {
      const res = await fixture.gql(REFUND, { input: { conversionId: id, idempotencyKey: newKey() } }, fixture.admin);
      expect(res.data!.refundConversion).toEqual({
        conversion: null,
        rewards: [],
        userErrors: [expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'conversionId'] })],
      });
    }
    expect(await counts()).toEqual(before);
    expect(await prisma().conversion.count({ where: { refundOfId: { in: [foreign.id, liveConversion.id] } } })).toBe(0);
    // The same key is free in another mode: the LIVE key refunds its own conversion.
    const res = await fixture.gql(
      REFUND,
      { input: { conversionId: gid('Conversion', liveConversion.id), idempotencyKey: 'shared-key' } },
      fixture.liveAdmin,
    );
    expect(res.data!.refundConversion.userErrors).toEqual([]);
    const conversion = await fx.conversion(w);
    expect((await refund(conversion.id, null, 'shared-key')).userErrors).toEqual([]);
  });

  it('refuses READ_ONLY and PARTNER credentials with FORBIDDEN_FOR_ROLE', async () => {
    const w = await fx.world();
    const conversion = await fx.conversion(w);
    for (const token of [
      await readOnlyKey(fixture.server, fixture.admin),
      await partnerToken(fixture.server, fixture.admin, w.partnerId),
    ]) {
      const res = await fixture.gql(
        REFUND,
        { input: { conversionId: gid('Conversion', conversion.id), idempotencyKey: newKey() } },
        token,
      );
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    expect(await prisma().conversion.count({ where: { refundOfId: conversion.id } })).toBe(0);
  });
});
