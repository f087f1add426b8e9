import type { RewardStatus } from '../../generated/prisma/enums.js';
import { divideHalfUp } from '../../lib/money.js';

// What one refund does to the refunded conversion's rewards. Pure — no database, no clock:
// everything it decides on is in its arguments, so every rule is unit-tested without a server
// (test/refund-plan.test.ts). refund.service.ts loads the inputs and writes the result; the rules
// are also described in ../payout/README.md ("Refunds").

/** One of the refunded conversion's own rewards (`sourceRewardId` null), as stored. */
export interface RefundableReward {
  id: string;
  /** Positive, in the reward's minor units. */
  amount: bigint;
  status: RewardStatus;
  /** The payout it is in, if any: an APPROVED reward in a payout is money on its way. */
  payoutId: string | null;
  approveAfter: Date;
}

export interface RefundPlanInput {
  /** The refunded conversion's amount (positive). */
  total: bigint;
  /** What earlier refunds of the conversion took back, in all. */
  before: bigint;
  /** `before` plus this refund's amount; at most `total`. */
  after: bigint;
  rewards: readonly RefundableReward[];
  /** When the refund happens: a clawback's `approveAfter`. */
  now: Date;
}

/** A negative reward the refund creates, for the reward `sourceRewardId`. */
export interface RefundShare {
  sourceRewardId: string;
  /** Minus the reward's share of this refund (never zero). */
  amount: bigint;
  /**
   * A clawback of money paid or on its way: PROCESSED at once, approveAfter = now. Else an
   * adjustment of an unpaid reward: the reward's status and approveAfter, so it follows it.
   */
  clawback: boolean;
  status: RewardStatus;
  approveAfter: Date;
}

export interface RefundPlan {
  /** Rewards to cancel (their earlier refund shares go with them), in the order given. */
  cancel: string[];
  /** Negative rewards to create, in the order of their source rewards. */
  shares: RefundShare[];
}

/**
 * What a refund taking the conversion's refunded total from `before` to `after` (of `total`)
 * does to each of its rewards:
 * - its **share** is its part of everything refunded so far minus its part of the earlier
 *   refunds, each rounded half-up to the minor unit:
 *   `round(amount × after / total) − round(amount × before / total)`, so refunds that add up to
 *   the whole take back exactly the whole reward, however they are split;
 * - CANCELED or REJECTED: nothing;
 * - unpaid (CREATED or APPROVED, in no payout) and the conversion now refunded in full
 *   (`after = total`): canceled, whatever its share;
 * - paid (PROCESSED, or in a payout): a negative **clawback** of −share, PROCESSED at once,
 *   approveAfter = now;
 * - unpaid, partial refund: a negative **adjustment** of −share in the reward's status with its
 *   approveAfter, which follows the reward through its lifecycle;
 * - a share that rounds to zero creates nothing.
 */
export function planRefund(input: RefundPlanInput): RefundPlan {
  const { total, before, after, now } = input;
  const plan: RefundPlan = { cancel: [], shares: [] };
  for (const reward of input.rewards) {
    if (reward.status === 'CANCELED' || reward.status === 'REJECTED') continue;
    const share = divideHalfUp(reward.amount * after, total) - divideHalfUp(reward.amount * before, total);
    const paid = reward.status === 'PROCESSED' || reward.payoutId !== null;
    if (!paid && after === total) {
      plan.cancel.push(reward.id);
      continue;
    }
    if (share === 0n) continue;
    plan.shares.push({
      sourceRewardId: reward.id,
      amount: -share,
      clawback: paid,
      status: paid ? 'PROCESSED' : reward.status,
      approveAfter: paid ? now : reward.approveAfter,
    });
  }
  return plan;
}
