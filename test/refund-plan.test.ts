import { describe, expect, it } from 'vitest';
import { planRefund, type RefundableReward, type RefundPlan } from '../src/modules/conversion/refund-plan.js';

// Unit tests of the pure refund plan: no database, no server. The writes and events it leads to
// are tested through the API in test/refund.test.ts.

const NOW = new Date('2026-03-10T12:00:00.000Z');
const LATER = new Date('2026-04-01T00:00:00.000Z');

function reward(id: string, amount: bigint, status: RefundableReward['status'], payoutId: string | null = null) {
  return { id, amount, status, payoutId, approveAfter: LATER } satisfies RefundableReward;
}

const plan = (total: bigint, before: bigint, after: bigint, rewards: RefundableReward[]) =>
  planRefund({ total, before, after, rewards, now: NOW });

/** Refund `total` in the given parts, one plan after the other; the shares each plan claws back. */
function refundInParts(total: bigint, parts: bigint[], rewards: RefundableReward[]): RefundPlan[] {
  let before = 0n;
  return parts.map((part) => {
    const result = plan(total, before, before + part, rewards);
    before += part;
    return result;
  });
}

const clawback = (sourceRewardId: string, amount: bigint) => ({
  sourceRewardId,
  amount,
  clawback: true,
  status: 'PROCESSED',
  approveAfter: NOW,
});

describe('planRefund: shares, rounded half-up on the running total', () => {
  it('takes back exactly the whole reward over several partial refunds (where rounding each refund alone would not)', () => {
    const paid = reward('r1', 1001n, 'PROCESSED');
    const plans = refundInParts(10_000n, [3333n, 1n, 3333n, 3333n], [paid]);
    // round(1001 × 3333/10000) = 334; round(1001 × 3334/10000) = 334 (share 0: nothing);
    // round(1001 × 6667/10000) = 667; 1001.
    expect(plans).toEqual([
      { cancel: [], shares: [clawback('r1', -334n)] },
      { cancel: [], shares: [] },
      { cancel: [], shares: [clawback('r1', -333n)] },
      { cancel: [], shares: [clawback('r1', -334n)] },
    ]);
    const total = plans.flatMap((p) => p.shares).reduce((sum, s) => sum + s.amount, 0n);
    expect(total).toBe(-1001n); // rounding each refund alone: 334 + 0 + 334 + 334 = 1002
  });

  it('adds up to each reward exactly, for any split of the refunds', () => {
    const rewards = [
      reward('a', 1n, 'PROCESSED'),
      reward('b', 7n, 'PROCESSED'),
      reward('c', 999n, 'PROCESSED'),
      reward('d', 12_345n, 'APPROVED', 'payout-1'),
      reward('e', 3n, 'PROCESSED'),
    ];
    const splits: bigint[][] = [
      [1n, 1n, 1n, 9994n, 3n],
      [5000n, 5000n],
      [3333n, 3333n, 3334n],
      [1n, 9999n],
      [9999n, 1n],
      [2500n, 2500n, 2500n, 2499n, 1n],
      Array.from({ length: 16 }, () => 625n),
    ];
    for (const parts of splits) {
      expect(parts.reduce((a, b) => a + b, 0n)).toBe(10_000n);
      const shares = refundInParts(10_000n, parts, rewards).flatMap((p) => p.shares);
      const back = (id: string) => shares.filter((s) => s.sourceRewardId === id).reduce((sum, s) => sum + s.amount, 0n);
      expect(rewards.map((r) => back(r.id))).toEqual([-1n, -7n, -999n, -12_345n, -3n]);
      expect(shares.every((s) => s.amount < 0n)).toBe(true);
    }
  });

  it('rounds a half minor unit up, and creates nothing for a share that rounds to zero', () => {
    const rewards = [reward('half', 1n, 'PROCESSED'), reward('tiny', 1n, 'CREATED'), reward('odd', 3n, 'PROCESSED')];
    // 1 × 1/2 = 0.5 → 1; 3 × 1/2 = 1.5 → 2; the CREATED reward's 0.5 → 1 as an adjustment.
    expect(plan(2n, 0n, 1n, rewards)).toEqual({
      cancel: [],
      shares: [
        clawback('half', -1n),
        { sourceRewardId: 'tiny', amount: -1n, clawback: false, status: 'CREATED', approveAfter: LATER },
        clawback('odd', -2n),
      ],
    });
    // 1 × 1/3 = 0.33 → 0: nothing at all.
    expect(plan(3n, 0n, 1n, [reward('x', 1n, 'PROCESSED'), reward('y', 1n, 'APPROVED')])).toEqual({
      cancel: [],
      shares: [],
    });
    // The rest of the half-refunded conversion: 1 − 1 = 0 for the paid reward, 3 − 2 = 1 for the odd one.
    expect(plan(2n, 1n, 2n, [reward('half', 1n, 'PROCESSED'), reward('odd', 3n, 'PROCESSED')])).toEqual({
      cancel: [],
      shares: [clawback('odd', -1n)],
    });
  });
});

describe('planRefund: cancel, clawback or adjustment', () => {
  const mixed = () => [
    reward('created', 1000n, 'CREATED'),
    reward('approved', 2000n, 'APPROVED'),
    reward('processed', 3000n, 'PROCESSED'),
    reward('in-payout', 500n, 'APPROVED', 'payout-1'),
    reward('canceled', 400n, 'CANCELED'),
    reward('rejected', 300n, 'REJECTED'),
  ];

  it('a full refund cancels unpaid rewards and claws back paid ones and those in a payout', () => {
    expect(plan(10_000n, 0n, 10_000n, mixed())).toEqual({
      cancel: ['created', 'approved'],
      shares: [clawback('processed', -3000n), clawback('in-payout', -500n)],
    });
  });

  it('a partial refund gives unpaid rewards an adjustment in their own status and approveAfter', () => {
    expect(plan(10_000n, 0n, 2500n, mixed())).toEqual({
      cancel: [],
      shares: [
        { sourceRewardId: 'created', amount: -250n, clawback: false, status: 'CREATED', approveAfter: LATER },
        { sourceRewardId: 'approved', amount: -500n, clawback: false, status: 'APPROVED', approveAfter: LATER },
        clawback('processed', -750n),
        clawback('in-payout', -125n),
      ],
    });
  });

  it('the refund that completes the conversion cancels unpaid rewards even when their share is zero, and claws back the rest of paid ones', () => {
    const rewards = [
      reward('created', 1n, 'CREATED'),
      reward('approved', 2000n, 'APPROVED'),
      reward('processed', 3000n, 'PROCESSED'),
      reward('small-paid', 1n, 'PROCESSED'),
    ];
    // 9000 of 10000 refunded before: the 1-unit rewards' shares are round(1) − round(0.9) = 0.
    expect(plan(10_000n, 9000n, 10_000n, rewards)).toEqual({
      cancel: ['created', 'approved'],
      shares: [clawback('processed', -300n)], // 3000 − 2700; nothing for small-paid
    });
  });

  it('ignores CANCELED and REJECTED rewards, partial or full', () => {
    const gone = [reward('canceled', 400n, 'CANCELED'), reward('rejected', 300n, 'REJECTED')];
    expect(plan(10_000n, 0n, 5000n, gone)).toEqual({ cancel: [], shares: [] });
    expect(plan(10_000n, 5000n, 10_000n, gone)).toEqual({ cancel: [], shares: [] });
    expect(plan(10_000n, 0n, 10_000n, [])).toEqual({ cancel: [], shares: [] });
  });

  it('keeps the order of the rewards given', () => {
    const rewards = [reward('z', 100n, 'PROCESSED'), reward('a', 200n, 'CREATED'), reward('m', 300n, 'APPROVED')];
    const full = plan(100n, 0n, 100n, [...rewards, reward('y', 5n, 'CREATED')]);
    expect(full.cancel).toEqual(['a', 'm', 'y']);
    expect(plan(100n, 0n, 50n, rewards).shares.map((s) => [s.sourceRewardId, s.amount])).toEqual([
      ['z', -50n],
      ['a', -100n],
      ['m', -150n],
    ]);
  });
});
