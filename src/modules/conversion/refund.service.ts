import { globalId } from '../../lib/global-id.js';
import { Prisma, type Conversion, type PrismaClient, type Reward } from '../../generated/prisma/client.js';
import { DomainError } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { formatMinor, parseCurrency, parseDecimal } from '../../lib/money.js';
import { appendEvents } from '../events/outbox.js';
import { conversionRecorded, rewardCreated } from '../events/payloads.js';
import {
  appendStatusEvents,
  applyStatusChange,
  MONEY_TX_OPTIONS,
  rewardGid,
  type StatusChange,
} from '../reward/lifecycle.js';
import { prismaSql } from '../../lib/sql.js';
import { lockLedgers } from '../ledger/ledger-lock.js';
import { planRefund, type RefundPlan } from './refund-plan.js';
import { refundShareExplanation } from '../reward/explanation.js';

// refundConversion: a REFUND conversion and what it does to the refunded conversion's rewards.
// The rules (pro rata, cumulative rounding, unpaid vs paid rewards) are in ../payout/README.md;
// the decision itself is the pure planRefund (./refund-plan.ts). refundLocked: validate → plan →
// writes → events.

export const IDEMPOTENCY_KEY_MAX = 255;

export interface RefundInput {
  /** Row id of the conversion to refund; null when the given id was malformed or of another type. */
  conversionId: string | null;
  idempotencyKey: string;
  /** Omitted: whatever is not refunded yet. */
  amount?: { amount: string; currency: string } | null;
  actor: string | null;
}

export interface RefundResult {
  /** The REFUND conversion. */
  conversionId: string;
  /** The rewards this refund created (negative ones) or canceled (with their earlier refund adjustments), in id order. */
  rewardIds: string[];
}

const conversionGid = (id: string) => globalId('Conversion', id);

/** The status-history reason of rewards a refund cancels; also how a replay finds them again. */
export const refundReason = (refundId: string) => `Refunded by conversion ${conversionGid(refundId)}.`;

export function checkIdempotencyKey(key: string): string {
  if (key.trim().length === 0 || key.length > IDEMPOTENCY_KEY_MAX) {
    throw new DomainError(
      'VALIDATION',
      `An idempotencyKey must be 1 to ${IDEMPOTENCY_KEY_MAX} characters long and not blank.`,
      ['input', 'idempotencyKey'],
    );
  }
  return key;
}

/**
 * Refund (part of) a PURCHASE or SUBSCRIPTION conversion: records a REFUND conversion, and for
 * each of the refunded conversion's rewards (its share of the refund rounded half-up,
 * cumulatively over all refunds of the conversion, so that refunds adding up to the whole take
 * back exactly the whole reward):
 * - CREATED/APPROVED and in no payout: canceled once the conversion is refunded in full; before
 *   that, a negative reward of its share in the same status that follows it through its lifecycle;
 * - PROCESSED, or APPROVED inside a payout (money on its way): a negative clawback reward,
 *   PROCESSED at once, with a CLAWBACK ledger entry that takes the amount out of `available`;
 * - CANCELED/REJECTED: nothing.
 * Refunds of one conversion are serialized by a lock on it and may not add up to more than its
 * amount. The same idempotencyKey again returns the first result (whatever the amount).
 */
export async function refundConversion(
  prisma: PrismaClient,
  tenant: Tenant,
  input: RefundInput,
): Promise<RefundResult> {
  const key = checkIdempotencyKey(input.idempotencyKey);
  if (!input.conversionId) throw new DomainError('NOT_FOUND', 'Conversion not found.', ['input', 'conversionId']);
  const originalId = input.conversionId;
  try {
    return await prisma.$transaction(async (tx) => {
      const locked = await prismaSql(tx).sql<{ id: string }>`
        SELECT "id" FROM "Conversion"
         WHERE "id" = ${originalId}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
           FOR UPDATE`;
      if (locked.length === 0) throw new DomainError('NOT_FOUND', 'Conversion not found.', ['input', 'conversionId']);

      const earlier = await tx.conversion.findUnique({
        where: { workspaceId_mode_idempotencyKey: { ...tenant, idempotencyKey: key } },
      });
      if (earlier) return replay(tx, tenant, earlier, originalId);

      const original = (await tx.conversion.findUnique({ where: { id: originalId } }))!;
      return refundLocked(tx, tenant, original, key, input);
    }, MONEY_TX_OPTIONS);
  } catch (error) {
    // The key was taken by a concurrent conversion that does not hold our lock (another
    // conversion's refund, or a recordConversion): answer as if it had come first.
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
      const earlier = await prisma.conversion.findUnique({
        where: { workspaceId_mode_idempotencyKey: { ...tenant, idempotencyKey: key } },
      });
      if (earlier) return replay(prisma, tenant, earlier, originalId);
    }
    throw error;
  }
}

async function replay(
  db: Prisma.TransactionClient | PrismaClient,
  tenant: Tenant,
  earlier: Conversion,
  originalId: string,
): Promise<RefundResult> {
  if (earlier.type !== 'REFUND' || earlier.refundOfId !== originalId) {
    throw new DomainError(
      'DUPLICATE',
      `The idempotencyKey ${JSON.stringify(earlier.idempotencyKey)} was already used for conversion ${conversionGid(earlier.id)}` +
        (earlier.type === 'REFUND' ? ', a refund of another conversion.' : ` (a ${earlier.type}).`),
      ['input', 'idempotencyKey'],
    );
  }
  const created = await db.reward.findMany({ where: { ...tenant, conversionId: earlier.id }, select: { id: true } });
  const canceled = await db.rewardStatusChange.findMany({
    where: { ...tenant, reason: refundReason(earlier.id), toStatus: 'CANCELED' },
    select: { rewardId: true },
  });
  return {
    conversionId: earlier.id,
    rewardIds: [...created.map((r) => r.id), ...canceled.map((c) => c.rewardId)].sort(),
  };
}

async function refundLocked(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  original: Conversion,
  key: string,
  input: RefundInput,
): Promise<RefundResult> {
  // 1. Validate: nothing is written unless the refund is acceptable.
  assertRefundable(original);
  const before = await refundedSoFar(tx, tenant, original.id);
  const amount = validateRefund(original, before, input);
  const now = new Date();

  // 2. The REFUND conversion (it claims the key before any reward is locked), then the partner's
  //    ledger lock and the refunded conversion's rewards, locked.
  const refund = await createRefundConversion(tx, tenant, original, key, amount, now);
  if (original.partnerId) await lockLedgers(prismaSql(tx), tenant, [original.partnerId]);
  const rewards = await lockRewards(tx, tenant, original.id);

  // 3. What the refund does to each reward: a pure decision.
  const plan = planRefund({ total: original.amount, before, after: before + amount, rewards, now });

  // 4. Its writes: cancellations, negative rewards with their history, ledger entries.
  const { cancellations, created } = await writeRefundPlan(
    tx,
    tenant,
    { ...refund, refundedOf: original.amount },
    rewards,
    plan,
    input.actor,
    now,
  );

  // 5. Events last (they are numbered at commit: the tenant's event counter is the last lock taken).
  await appendEvents(tx, tenant, [
    conversionRecorded(
      { ...refund, amount, currency: original.currency },
      created.map((r) => r.id),
    ),
    ...created.map(rewardCreated),
  ]);
  await appendStatusEvents(tx, tenant, cancellations);

  const rewardIds = [...created.map((r) => r.id), ...cancellations.map((c) => c.reward.id)];
  return { conversionId: refund.id, rewardIds: rewardIds.sort() };
}

/** A conversion that can be refunded: a PURCHASE or SUBSCRIPTION with an amount. */
export type RefundableConversion = Conversion & {
  type: 'PURCHASE' | 'SUBSCRIPTION';
  amount: bigint;
  currency: string;
};

/** Only PURCHASE and SUBSCRIPTION conversions with an amount can be refunded (else VALIDATION). */
export function assertRefundable(original: Conversion): asserts original is RefundableConversion {
  if (
    (original.type !== 'PURCHASE' && original.type !== 'SUBSCRIPTION') ||
    original.amount === null ||
    original.currency === null
  ) {
    throw new DomainError(
      'VALIDATION',
      `Conversion ${conversionGid(original.id)} is a ${original.type}${original.amount === null ? ' without an amount' : ''}: only PURCHASE and SUBSCRIPTION conversions with an amount can be refunded.`,
      ['input', 'conversionId'],
    );
  }
}

/**
 * The amount this refund takes back, in the conversion's minor units: the one given (in the
 * conversion's currency, positive, at most what is left), else everything not refunded yet
 * (VALIDATION when nothing is left). `refundedBefore`: the sum of the conversion's earlier refunds.
 */
export function validateRefund(
  original: RefundableConversion,
  refundedBefore: bigint,
  input: Pick<RefundInput, 'amount'>,
): bigint {
  const gid = conversionGid(original.id);
  const { amount: total, currency } = original;
  const remaining = total - refundedBefore;
  if (!input.amount) {
    if (remaining <= 0n) {
      throw new DomainError(
        'VALIDATION',
        `Conversion ${gid} is already refunded in full (${formatMinor(total, currency)} ${currency}).`,
        ['input', 'conversionId'],
      );
    }
    return remaining;
  }
  const given = parseCurrency(input.amount.currency, ['input', 'amount', 'currency']);
  if (given !== currency) {
    throw new DomainError(
      'VALIDATION',
      `Conversion ${gid} was paid in ${currency}; a refund of it must be in ${currency} too, not ${given}.`,
      ['input', 'amount', 'currency'],
    );
  }
  const amount = parseDecimal(input.amount.amount, currency, ['input', 'amount', 'amount']);
  if (amount <= 0n)
    throw new DomainError('VALIDATION', 'A refund amount must be positive.', ['input', 'amount', 'amount']);
  if (amount > remaining) {
    throw new DomainError(
      'VALIDATION',
      `Conversion ${gid} has ${formatMinor(remaining, currency)} ${currency} left to refund (of ${formatMinor(total, currency)}; ${formatMinor(refundedBefore, currency)} refunded already); ${formatMinor(amount, currency)} is more.`,
      ['input', 'amount', 'amount'],
    );
  }
  return amount;
}

/** The sum of the conversion's earlier refunds (the caller holds the conversion's lock). */
async function refundedSoFar(tx: Prisma.TransactionClient, tenant: Tenant, conversionId: string): Promise<bigint> {
  const previous = await tx.conversion.aggregate({
    where: { ...tenant, refundOfId: conversionId, type: 'REFUND' },
    _sum: { amount: true },
  });
  return previous._sum.amount ?? 0n;
}

/** The REFUND conversion: the refunded conversion's program, partner, referral and link. */
function createRefundConversion(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  original: RefundableConversion,
  key: string,
  amount: bigint,
  now: Date,
): Promise<Conversion> {
  return tx.conversion.create({
    data: {
      ...tenant,
      type: 'REFUND',
      status: 'ACCEPTED',
      idempotencyKey: key,
      referredExternalId: original.referredExternalId,
      referredEmail: original.referredEmail,
      amount,
      currency: original.currency,
      occurredAt: now,
      programId: original.programId,
      partnerId: original.partnerId,
      referralId: original.referralId,
      linkId: original.linkId,
      refundOfId: original.id,
      createdAt: now,
    },
  });
}

/** The conversion's own rewards (not their refund shares), locked in id order, in id order. */
async function lockRewards(tx: Prisma.TransactionClient, tenant: Tenant, conversionId: string): Promise<Reward[]> {
  const locked = await prismaSql(tx).sql<{ id: string }>`
    SELECT "id" FROM "Reward"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
       AND "conversionId" = ${conversionId}::uuid AND "sourceRewardId" IS NULL
     ORDER BY "id" FOR UPDATE`;
  return tx.reward.findMany({ where: { id: { in: locked.map((r) => r.id) } }, orderBy: { id: 'asc' } });
}

/**
 * Write a refund's plan: cancel its rewards to cancel (status, history, ledger: applyStatusChange),
 * create its negative rewards (they belong to the REFUND conversion) with a history row each, and
 * their ledger entries (CASH REFERRER ones only): CLAWBACK for a PROCESSED clawback, ADJUSTMENT
 * for an APPROVED adjustment. Returns the status changes (for their events) and
 * the rewards created, in id order.
 */
async function writeRefundPlan(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  refund: Conversion & { refundedOf: bigint },
  rewards: readonly Reward[],
  plan: RefundPlan,
  actor: string | null,
  now: Date,
): Promise<{ cancellations: StatusChange[]; created: Reward[] }> {
  const byId = new Map(rewards.map((r) => [r.id, r]));
  const toCancel = plan.cancel.map((id) => byId.get(id)!);
  const negatives = plan.shares.map((share): Prisma.RewardCreateManyInput => {
    const source = byId.get(share.sourceRewardId)!;
    // "Refund of 20.00 USD of 50.00 USD paid: −2.00 USD of the 5.00 USD reward" (none when the reward has none).
    const explanation = refundShareExplanation(
      source,
      { amount: refund.amount!, currency: refund.currency!, of: refund.refundedOf },
      share.amount,
    );
    return {
      ...tenant,
      programId: source.programId,
      partnerId: source.partnerId,
      conversionId: refund.id,
      referralId: source.referralId,
      ruleId: source.ruleId,
      ruleLineageId: source.ruleLineageId,
      recipient: source.recipient,
      kind: source.kind,
      status: share.status,
      amount: share.amount,
      currency: source.currency,
      sourceRewardId: source.id,
      approveAfter: share.approveAfter,
      ...(explanation ? { explanation } : {}),
      createdAt: now,
      updatedAt: now,
    };
  });

  const reason = refundReason(refund.id);
  const cancellations = await applyStatusChange(tx, tenant, toCancel, 'CANCELED', { actor, reason, now });
  const created = negatives.length ? await tx.reward.createManyAndReturn({ data: negatives }) : [];
  created.sort((a, b) => (a.id < b.id ? -1 : 1));
  if (created.length) {
    await tx.rewardStatusChange.createMany({
      data: created.map((r) => ({
        ...tenant,
        rewardId: r.id,
        fromStatus: null,
        toStatus: r.status,
        actor,
        reason: `Refund share of reward ${rewardGid(r.sourceRewardId!)}, by conversion ${conversionGid(refund.id)}.`,
        createdAt: now,
      })),
    });
    const entries: Prisma.LedgerEntryCreateManyInput[] = created
      .filter(
        (r) => r.recipient === 'REFERRER' && r.kind === 'CASH' && (r.status === 'PROCESSED' || r.status === 'APPROVED'),
      )
      .map((r) => ({
        ...tenant,
        partnerId: r.partnerId,
        // Money already paid (or in a payout) is taken back from `available` (CLAWBACK); an approved
        // unpaid reward's share leaves `available` as its approval brought it in (ADJUSTMENT).
        type: r.status === 'PROCESSED' ? ('CLAWBACK' as const) : ('ADJUSTMENT' as const),
        amount: r.amount,
        currency: r.currency,
        rewardId: r.id,
        createdAt: now,
      }));
    if (entries.length) await tx.ledgerEntry.createMany({ data: entries });
  }
  return { cancellations, created };
}
