import { beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db.js';
import type { Reward } from '../src/generated/prisma/client.js';
import { ApprovalJob } from '../src/modules/reward/approval-job.js';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { balanceOf, expectLedgerMatchesBalances, gid, moneyFixtures } from './helpers/money.js';

// Money under concurrency, with real concurrent requests: on PostgreSQL they run in parallel
// transactions (row locks, SKIP LOCKED, unique keys decide); on PGlite they serialize, and the
// same invariants must hold.

const fixture = useTwoWorkspaces({ env: { APPROVAL_JOB_INTERVAL_MS: '0' }, names: ['Concurrency', 'Other'] });

let fx: ReturnType<typeof moneyFixtures>;

beforeAll(async () => {
  fx = moneyFixtures(fixture.server.testDb.db.prisma, fixture.tenant);
});

const UPDATE = graphql(`
  mutation MC_Update($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) { rewards { id status } userErrors { code message field } }
  }
`);
const CREATE_PAYOUT = graphql(`
  mutation MC_CreatePayout($input: CreatePayoutInput!) {
    createPayout(input: $input) { payout { id amount { amount currency } rewards { id } } userErrors { code message field } }
  }
`);
const MARK_PAID = graphql(`
  mutation MC_MarkPaid($input: MarkPayoutPaidInput!) {
    markPayoutPaid(input: $input) { payout { id status } userErrors { code message field } }
  }
`);
const REFUND = graphql(`
  mutation MC_Refund($input: RefundConversionInput!) {
    refundConversion(input: $input) { conversion { id amount { amount } } rewards { id status amount { amount } } userErrors { code message field } }
  }
`);
const CREDIT = graphql(`
  mutation MC_Credit($input: CreditBalanceInput!) {
    creditBalance(input: $input) { balance { currency available { amount } } userErrors { code message field } }
  }
`);

const prisma = () => fixture.server.testDb.db.prisma;
const rids = (rewards: Array<{ id: string }>) => rewards.map((r) => gid('Reward', r.id));

async function gqlOk<T>(promise: Promise<{ data?: T | null; errors?: unknown }>): Promise<T> {
  const res = await promise;
  expect(res.errors).toBeUndefined();
  return res.data!;
}

async function manyRewards(count: number, options: Parameters<typeof fx.reward>[1] = {}) {
  const w = await fx.world();
  const rewards: Reward[] = [];
  for (let i = 0; i < count; i++) rewards.push(await fx.reward(w, { amount: BigInt(100 + i), ...options }));
  return { w, rewards };
}

describe('concurrent updateRewardStatus', () => {
  it('overlapping approvals: every call succeeds and each reward is approved once (one history row, one ledger entry)', async () => {
    const { w, rewards } = await manyRewards(30);
    const windows = Array.from({ length: 10 }, (_, i) => {
      const slice = rewards.slice(i * 2, i * 2 + 12);
      return i % 2 === 0 ? slice : [...slice].reverse();
    });
    const results = await Promise.all(
      windows.map((slice) =>
        gqlOk(fixture.gql(UPDATE, { input: { ids: rids(slice), status: 'APPROVED' } }, fixture.admin)),
      ),
    );
    for (const [i, result] of results.entries()) {
      expect(result.updateRewardStatus.userErrors).toEqual([]);
      expect(result.updateRewardStatus.rewards).toEqual(rids(windows[i]!).map((id) => ({ id, status: 'APPROVED' })));
    }
    const touched = new Set(windows.flat().map((r) => r.id));
    for (const reward of rewards) {
      const approvals = await prisma().rewardStatusChange.count({
        where: { rewardId: reward.id, toStatus: 'APPROVED' },
      });
      const entries = await prisma().ledgerEntry.count({ where: { rewardId: reward.id, type: 'REWARD_APPROVED' } });
      expect([reward.id, approvals, entries]).toEqual([
        reward.id,
        touched.has(reward.id) ? 1 : 0,
        touched.has(reward.id) ? 1 : 0,
      ]);
    }
    expect(
      await prisma().event.count({
        where: { ...fixture.tenant, type: 'reward.status_changed', partnerId: w.partnerId },
      }),
    ).toBe(touched.size);
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });

  it('conflicting cancels and payments of the same rewards: each call all or nothing, each reward moved once, the ledger consistent', async () => {
    const { w, rewards } = await manyRewards(20, { status: 'APPROVED' });
    const calls = Array.from({ length: 10 }, (_, i) => ({
      ids: rids(i % 2 === 0 ? rewards.slice(i, i + 8) : [...rewards.slice(i, i + 8)].reverse()),
      status: i % 2 === 0 ? ('CANCELED' as const) : ('PROCESSED' as const),
    }));
    const results = await Promise.all(calls.map((input) => gqlOk(fixture.gql(UPDATE, { input }, fixture.admin))));
    for (const [i, { updateRewardStatus: payload }] of results.entries()) {
      if (payload.userErrors.length === 0) {
        expect(payload.rewards.map((r) => r.status)).toEqual(calls[i]!.ids.map(() => calls[i]!.status));
      } else {
        expect(payload.rewards).toEqual([]);
        expect(payload.userErrors.every((e) => e.code === 'INVALID_TRANSITION')).toBe(true);
      }
    }
    for (const reward of rewards) {
      const row = await prisma().reward.findUniqueOrThrow({ where: { id: reward.id } });
      const history = await prisma().rewardStatusChange.findMany({
        where: { rewardId: reward.id, fromStatus: 'APPROVED' },
      });
      const entries = (
        await prisma().ledgerEntry.findMany({ where: { rewardId: reward.id }, orderBy: { id: 'asc' } })
      ).map((e) => e.type);
      if (row.status === 'APPROVED') {
        expect(history).toEqual([]);
        expect(entries).toEqual(['REWARD_APPROVED']);
      } else {
        expect(history.map((h) => h.toStatus)).toEqual([row.status]);
        expect(entries).toEqual(['REWARD_APPROVED', row.status === 'CANCELED' ? 'REWARD_REVERSED' : 'PAYOUT']);
      }
    }
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });

  it('the approval job and an admin canceling the same rewards: each ends CANCELED with a consistent ledger', async () => {
    const { w, rewards } = await manyRewards(40);
    const job = new ApprovalJob(prisma(), { intervalMs: 0, batchSize: 5 });
    const [approved, canceled] = await Promise.all([
      job.runOnce(),
      gqlOk(fixture.gql(UPDATE, { input: { ids: rids(rewards), status: 'CANCELED' } }, fixture.admin)),
    ]);
    expect(canceled.updateRewardStatus.userErrors).toEqual([]);
    expect(approved).toBeLessThanOrEqual(40);
    for (const reward of rewards) {
      const entries = (
        await prisma().ledgerEntry.findMany({ where: { rewardId: reward.id }, orderBy: { id: 'asc' } })
      ).map((e) => e.type);
      expect(entries.length === 0 || entries.join() === 'REWARD_APPROVED,REWARD_REVERSED').toBe(true);
      expect((await prisma().reward.findUniqueOrThrow({ where: { id: reward.id } })).status).toBe('CANCELED');
    }
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toEqual({
      currency: 'USD',
      pending: 0n,
      available: 0n,
      paid: 0n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });
});

describe('concurrent createPayout', () => {
  it('never puts a reward in two payouts: the payouts add up to exactly the rewards they hold', async () => {
    const { w, rewards } = await manyRewards(24, { status: 'APPROVED' });
    const late = await Promise.all(Array.from({ length: 6 }, (_, i) => fx.reward(w, { amount: BigInt(1000 + i) })));
    // Eight payouts race each other and approvals of more rewards.
    const results = await Promise.all([
      ...Array.from({ length: 8 }, () =>
        gqlOk(
          fixture.gql(
            CREATE_PAYOUT,
            { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } },
            fixture.admin,
          ),
        ),
      ),
      gqlOk(fixture.gql(UPDATE, { input: { ids: rids(late), status: 'APPROVED' } }, fixture.admin)),
    ]);
    const payouts = results
      .slice(0, 8)
      .map(
        (r) =>
          (r as { createPayout: { payout: { id: string } | null; userErrors: Array<{ code: string }> } }).createPayout,
      );
    const made = payouts.filter((p) => p.payout);
    expect(made.length).toBeGreaterThanOrEqual(1);
    for (const p of payouts.filter((x) => !x.payout)) expect(p.userErrors.map((e) => e.code)).toEqual(['NOTHING_DUE']);

    // Whatever the late approvals missed goes into one more payout.
    const last = await gqlOk(
      fixture.gql(CREATE_PAYOUT, { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } }, fixture.admin),
    );
    const all = await prisma().payout.findMany({ where: { partnerId: w.partnerId }, include: { rewards: true } });
    expect(all).toHaveLength(made.length + (last.createPayout.payout ? 1 : 0));
    const everyReward = [...rewards, ...late];
    const claimed = all.flatMap((p) => p.rewards.map((r) => r.id));
    expect(new Set(claimed).size).toBe(claimed.length);
    expect([...claimed].sort()).toEqual(everyReward.map((r) => r.id).sort());
    for (const payout of all) expect(payout.amount).toBe(payout.rewards.reduce((s, r) => s + r.amount, 0n));
    const total = all.reduce((s, p) => s + p.amount, 0n);
    expect(total).toBe(everyReward.reduce((s, r) => s + r.amount, 0n));

    await Promise.all(
      all.map((p) => gqlOk(fixture.gql(MARK_PAID, { input: { payoutId: gid('Payout', p.id) } }, fixture.admin))),
    );
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toEqual({
      currency: 'USD',
      pending: 0n,
      available: 0n,
      paid: total,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });

  it('concurrent markPayoutPaid of one payout processes its rewards once', async () => {
    const { w } = await manyRewards(10, { status: 'APPROVED' });
    const created = await gqlOk(
      fixture.gql(CREATE_PAYOUT, { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } }, fixture.admin),
    );
    const payoutId = created.createPayout.payout!.id;
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        gqlOk(fixture.gql(MARK_PAID, { input: { payoutId, externalReference: 'same' } }, fixture.admin)),
      ),
    );
    for (const r of results) expect(r.markPayoutPaid.userErrors).toEqual([]);
    // One PAYOUT entry, written when the payout was created; marking it paid writes none.
    expect(await prisma().ledgerEntry.count({ where: { partnerId: w.partnerId, type: 'PAYOUT' } })).toBe(1);
    expect(
      await prisma().event.count({ where: { ...fixture.tenant, type: 'payout.paid', partnerId: w.partnerId } }),
    ).toBe(1);
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });
});

describe('concurrent refunds', () => {
  it('with the same key record one refund and one clawback, and every call answers the same', async () => {
    const w = await fx.world();
    const conversion = await fx.conversion(w, { amount: 10_000n });
    const rule = await fx.rule(w.programId, { fixedAmount: 1n, fixedCurrency: 'USD' });
    const reward = await fx.reward(w, {
      status: 'PROCESSED',
      amount: 1000n,
      conversionId: conversion.id,
      ruleId: rule.id,
    });
    const input = {
      conversionId: gid('Conversion', conversion.id),
      idempotencyKey: `same-refund-${conversion.id}`,
      amount: { amount: '30.00', currency: 'USD' },
    };
    const results = await Promise.all(
      Array.from({ length: 12 }, () => gqlOk(fixture.gql(REFUND, { input }, fixture.admin))),
    );
    for (const r of results) {
      expect(r.refundConversion.userErrors).toEqual([]);
      expect(r.refundConversion).toEqual(results[0]!.refundConversion);
    }
    expect(await prisma().conversion.count({ where: { refundOfId: conversion.id } })).toBe(1);
    const clawbacks = await prisma().reward.findMany({ where: { sourceRewardId: reward.id } });
    expect(clawbacks.map((c) => c.amount)).toEqual([-300n]);
    expect(await prisma().ledgerEntry.count({ where: { partnerId: w.partnerId, type: 'CLAWBACK' } })).toBe(1);
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });

  it('with different keys accumulate up to the conversion’s amount and never beyond, taking back exactly the whole reward', async () => {
    const w = await fx.world();
    const conversion = await fx.conversion(w, { amount: 10_000n });
    const rule = await fx.rule(w.programId, { fixedAmount: 1n, fixedCurrency: 'USD' });
    const reward = await fx.reward(w, {
      status: 'PROCESSED',
      amount: 1001n,
      conversionId: conversion.id,
      ruleId: rule.id,
    });
    const results = await Promise.all(
      Array.from({ length: 7 }, (_, i) =>
        gqlOk(
          fixture.gql(
            REFUND,
            {
              input: {
                conversionId: gid('Conversion', conversion.id),
                idempotencyKey: `part-${i}-${conversion.id}`,
                amount: { amount: '20.00', currency: 'USD' },
              },
            },
            fixture.admin,
          ),
        ),
      ),
    );
    const ok = results.filter((r) => r.refundConversion.userErrors.length === 0);
    expect(ok).toHaveLength(5);
    for (const r of results.filter((x) => x.refundConversion.userErrors.length > 0)) {
      expect(r.refundConversion.userErrors).toEqual([
        expect.objectContaining({ code: 'VALIDATION', field: ['input', 'amount', 'amount'] }),
      ]);
    }
    const refunds = await prisma().conversion.aggregate({
      where: { refundOfId: conversion.id },
      _sum: { amount: true },
    });
    expect(refunds._sum.amount).toBe(10_000n);
    const clawbacks = await prisma().reward.findMany({ where: { sourceRewardId: reward.id } });
    expect(clawbacks.reduce((s, c) => s + c.amount, 0n)).toBe(-1001n);
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      available: -1001n,
      paid: 1001n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });

  it('racing a payout of the same reward: whichever wins, the partner nets the reward minus the refund', async () => {
    const cases = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const w = await fx.world();
        const conversion = await fx.conversion(w, { amount: 10_000n });
        const rule = await fx.rule(w.programId, { fixedAmount: 1n, fixedCurrency: 'USD' });
        await fx.reward(w, { status: 'APPROVED', amount: 1000n, conversionId: conversion.id, ruleId: rule.id });
        return { w, conversion };
      }),
    );
    await Promise.all(
      cases.flatMap(({ w, conversion }) => [
        gqlOk(
          fixture.gql(
            REFUND,
            {
              input: {
                conversionId: gid('Conversion', conversion.id),
                idempotencyKey: `race-${conversion.id}`,
                amount: { amount: '25.00', currency: 'USD' },
              },
            },
            fixture.admin,
          ),
        ),
        gqlOk(
          fixture.gql(
            CREATE_PAYOUT,
            { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } },
            fixture.admin,
          ),
        ),
      ]),
    );
    for (const { w } of cases) {
      for (;;) {
        const payout = await prisma().payout.findFirst({ where: { partnerId: w.partnerId, status: 'PENDING' } });
        if (!payout) break;
        expect(
          (await gqlOk(fixture.gql(MARK_PAID, { input: { payoutId: gid('Payout', payout.id) } }, fixture.admin)))
            .markPayoutPaid.userErrors,
        ).toEqual([]);
      }
      const balance = await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD');
      // Either the refund came first (a -2.50 share paid out with the reward: 7.50 paid) or the
      // payout did (10.00 paid, -2.50 clawed back from available); a payout may also still be due.
      const due = await gqlOk(
        fixture.gql(
          CREATE_PAYOUT,
          { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } },
          fixture.admin,
        ),
      );
      expect(due.createPayout.payout).toBeNull();
      expect(balance.pending).toBe(0n);
      expect(balance.paid + balance.available).toBe(750n);
      await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
    }
  });
});

describe('concurrent credits', () => {
  it('with the same key write one entry and one event, and every call answers the same balance', async () => {
    const w = await fx.world();
    const input = {
      partnerId: gid('Partner', w.partnerId),
      amount: { amount: '5.00', currency: 'USD' },
      idempotencyKey: `same-credit-${w.partnerId}`,
    };
    const results = await Promise.all(
      Array.from({ length: 12 }, () => gqlOk(fixture.gql(CREDIT, { input }, fixture.admin))),
    );
    for (const r of results)
      expect(r.creditBalance).toEqual({ balance: { currency: 'USD', available: { amount: '5.00' } }, userErrors: [] });
    expect(await prisma().ledgerEntry.count({ where: { partnerId: w.partnerId } })).toBe(1);
    expect(
      await prisma().event.count({ where: { ...fixture.tenant, type: 'balance.credited', partnerId: w.partnerId } }),
    ).toBe(1);
  });

  it('with different keys all apply', async () => {
    const w = await fx.world();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        gqlOk(
          fixture.gql(
            CREDIT,
            {
              input: {
                partnerId: gid('Partner', w.partnerId),
                amount: { amount: '1.00', currency: 'USD' },
                idempotencyKey: `credit-${i}-${w.partnerId}`,
              },
            },
            fixture.admin,
          ),
        ),
      ),
    );
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({ available: 1000n });
  });
});

// Last: long stretches without HTTP requests leave the client's pooled keep-alive sockets to a
// race with the server closing them, which a following request can lose (ECONNRESET).
describe('two approval jobs at once (two instances)', () => {
  it('approve every due reward exactly once: one history row and one REWARD_APPROVED entry each', async () => {
    // A second instance: its own connection pool on PostgreSQL; the same embedded database on PGlite.
    let second: Database | null = null;
    if (fixture.server.testDb.url)
      second = await openDatabase({ databaseUrl: fixture.server.testDb.url, dataDir: '', poolSize: 4, migrate: false });
    try {
      await new ApprovalJob(prisma(), { intervalMs: 0 }).runOnce(); // what earlier tests left due
      const live = moneyFixtures(prisma(), { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
      const testWorld = await fx.world();
      const liveWorld = await live.world();
      const convs = await fx.conversions(
        Array.from({ length: 150 }, () => ({
          programId: testWorld.programId,
          partnerId: testWorld.partnerId,
          amount: 100n,
          currency: 'USD',
        })),
      );
      const liveConvs = await live.conversions(
        Array.from({ length: 150 }, () => ({
          programId: liveWorld.programId,
          partnerId: liveWorld.partnerId,
          amount: 100n,
          currency: 'USD',
        })),
      );
      const past = new Date(Date.now() - 1000);
      const rows = [
        ...(await fx.rewards(
          convs.map((c) => ({
            programId: testWorld.programId,
            partnerId: testWorld.partnerId,
            conversionId: c.id,
            ruleId: testWorld.ruleId,
            amount: 10n,
            currency: 'USD',
            approveAfter: past,
          })),
        )),
        ...(await live.rewards(
          liveConvs.map((c) => ({
            programId: liveWorld.programId,
            partnerId: liveWorld.partnerId,
            conversionId: c.id,
            ruleId: liveWorld.ruleId,
            amount: 10n,
            currency: 'USD',
            approveAfter: past,
          })),
        )),
      ];
      const one = new ApprovalJob(prisma(), { intervalMs: 0, batchSize: 20 });
      const two = new ApprovalJob((second ?? fixture.server.testDb.db).prisma, { intervalMs: 0, batchSize: 20 });
      const [a, b] = await Promise.all([one.runOnce(), two.runOnce()]);
      expect(a + b).toBe(300);

      const ids = rows.map((r) => r.id);
      expect(await prisma().reward.count({ where: { id: { in: ids }, status: 'APPROVED' } })).toBe(300);
      const history = await prisma().rewardStatusChange.groupBy({
        by: ['rewardId'],
        where: { rewardId: { in: ids }, toStatus: 'APPROVED' },
        _count: { _all: true },
      });
      expect(history).toHaveLength(300);
      expect(history.every((h) => h._count._all === 1)).toBe(true);
      const entries = await prisma().ledgerEntry.groupBy({
        by: ['rewardId'],
        where: { rewardId: { in: ids }, type: 'REWARD_APPROVED' },
        _count: { _all: true },
      });
      expect(entries).toHaveLength(300);
      expect(entries.every((e) => e._count._all === 1)).toBe(true);
      expect(
        await prisma().event.count({
          where: {
            workspaceId: fixture.ws.workspace.id,
            type: 'reward.status_changed',
            partnerId: { in: [testWorld.partnerId, liveWorld.partnerId] },
          },
        }),
      ).toBe(300);
    } finally {
      await second?.close();
    }
  });
});
