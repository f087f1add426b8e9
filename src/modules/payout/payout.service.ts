import { globalId } from '../../lib/global-id.js';
import type { Payout, PrismaClient } from '../../generated/prisma/client.js';
import { DomainError } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { formatMinor, parseCurrency } from '../../lib/money.js';
import { appendEvent } from '../events/outbox.js';
import { payoutCreated, payoutPaid } from '../events/payloads.js';
import { partnerBalance } from '../ledger/balance.service.js';
import { appendStatusEvents, applyStatusChange, loadRewards, MONEY_TX_OPTIONS } from '../reward/lifecycle.js';
import { prismaSql } from '../../lib/sql.js';

// Payouts: createPayout claims a partner's approved rewards, markPayoutPaid settles them.
// The money rules are in ./README.md.

export const EXTERNAL_REFERENCE_MAX = 255;

const payoutGid = (id: string) => globalId('Payout', id);
const partnerGid = (id: string) => globalId('Partner', id);

export interface CreatePayoutInput {
  /** Row id; null when the given id was malformed or of another type. */
  partnerId: string | null;
  currency: string;
}

/**
 * A PENDING payout of every APPROVED REFERRER reward of the partner in `currency` that is in no
 * payout yet (with their refund adjustments). NOTHING_DUE when there is none, or when the
 * partner's available balance in that currency is not positive (clawbacks and debits first).
 *
 * Claiming is atomic: the rewards are locked in id order and taken with
 * `UPDATE … SET "payoutId" = … WHERE … AND "payoutId" IS NULL RETURNING`, so concurrent calls
 * for one partner never put a reward in two payouts; the one that waited finds nothing left.
 */
export async function createPayout(prisma: PrismaClient, tenant: Tenant, input: CreatePayoutInput): Promise<Payout> {
  const currency = parseCurrency(input.currency, ['input', 'currency']);
  if (!input.partnerId) throw new DomainError('NOT_FOUND', 'Partner not found.', ['input', 'partnerId']);
  const partnerId = input.partnerId;

  return prisma.$transaction(async (tx) => {
    const partner = await tx.partner.findUnique({ where: { id_workspaceId_mode: { id: partnerId, ...tenant } } });
    if (!partner) throw new DomainError('NOT_FOUND', 'Partner not found.', ['input', 'partnerId']);

    const balance = await partnerBalance(prismaSql(tx), tenant, partner.id, currency);
    if (balance.available <= 0n) {
      throw new DomainError(
        'NOTHING_DUE',
        `Partner ${partnerGid(partner.id)} has nothing to pay out in ${currency}: the available balance is ${formatMinor(balance.available, currency)}.`,
      );
    }

    const due = await prismaSql(tx).sql<{ id: string }>`
      SELECT "id" FROM "Reward"
       WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
         AND "partnerId" = ${partner.id}::uuid AND "currency" = ${currency} AND "recipient" = 'REFERRER'
         AND "status" = 'APPROVED' AND "payoutId" IS NULL
       ORDER BY "id" FOR UPDATE`;
    // A refund committed while we waited for a lock may have added an adjustment of a reward we
    // now hold: this statement sees it.
    const adjustments = due.length
      ? await prismaSql(tx).sql<{ id: string }>`
          SELECT "id" FROM "Reward"
           WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
             AND "sourceRewardId" = ANY(${due.map((r) => r.id)}::uuid[]) AND NOT ("id" = ANY(${due.map((r) => r.id)}::uuid[]))
             AND "status" = 'APPROVED' AND "payoutId" IS NULL
           ORDER BY "id" FOR UPDATE`
      : [];
    const rewards = await loadRewards(
      tx,
      [...due, ...adjustments].map((r) => r.id),
    );
    const amount = rewards.reduce((sum, r) => sum + r.amount, 0n);
    if (rewards.length === 0 || amount <= 0n) {
      throw new DomainError(
        'NOTHING_DUE',
        `Partner ${partnerGid(partner.id)} has no approved rewards in ${currency} that are not already in a payout.`,
      );
    }

    const payout = await tx.payout.create({
      data: { ...tenant, partnerId: partner.id, amount, currency, status: 'PENDING' },
    });
    const ids = rewards.map((r) => r.id);
    const claimed = await prismaSql(tx).sql<{ id: string }>`
      UPDATE "Reward" SET "payoutId" = ${payout.id}::uuid
       WHERE "id" = ANY(${ids}::uuid[]) AND "status" = 'APPROVED' AND "payoutId" IS NULL
       RETURNING "id"`;
    if (claimed.length !== ids.length)
      throw new Error(`Payout claim raced: ${claimed.length} of ${ids.length} locked rewards claimed.`);

    await appendEvent(tx, tenant, payoutCreated(payout, ids.length));
    return payout;
  }, MONEY_TX_OPTIONS);
}

export interface MarkPayoutPaidInput {
  payoutId: string | null;
  externalReference?: string | null;
  actor: string | null;
}

/**
 * PENDING → PAID, and the payout's rewards APPROVED → PROCESSED (history, REWARD_PROCESSED ledger
 * entries pointing at the payout, events), in one transaction under the payout's row lock.
 * Marking a PAID payout paid again changes nothing (a retry), unless it names a different
 * externalReference: INVALID_TRANSITION. An omitted reference on a retry matches any.
 */
export async function markPayoutPaid(
  prisma: PrismaClient,
  tenant: Tenant,
  input: MarkPayoutPaidInput,
): Promise<Payout> {
  const reference = input.externalReference?.trim() || null;
  if (reference && reference.length > EXTERNAL_REFERENCE_MAX) {
    throw new DomainError(
      'VALIDATION',
      `An externalReference must be at most ${EXTERNAL_REFERENCE_MAX} characters long.`,
      ['input', 'externalReference'],
    );
  }
  if (!input.payoutId) throw new DomainError('NOT_FOUND', 'Payout not found.', ['input', 'payoutId']);
  const payoutId = input.payoutId;

  return prisma.$transaction(async (tx) => {
    const locked = await prismaSql(tx).sql<{ id: string }>`
      SELECT "id" FROM "Payout"
       WHERE "id" = ${payoutId}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
         FOR UPDATE`;
    if (locked.length === 0) throw new DomainError('NOT_FOUND', 'Payout not found.', ['input', 'payoutId']);
    const payout = (await tx.payout.findUnique({ where: { id: payoutId } }))!;
    const gid = payoutGid(payout.id);

    if (payout.status === 'PAID') {
      if (reference !== null && reference !== payout.externalReference) {
        throw new DomainError(
          'INVALID_TRANSITION',
          `Payout ${gid} is PAID with externalReference ${JSON.stringify(payout.externalReference)}; it cannot be marked PAID again with ${JSON.stringify(reference)}.`,
          ['input', 'externalReference'],
        );
      }
      return payout;
    }
    if (payout.status !== 'PENDING') {
      throw new DomainError(
        'INVALID_TRANSITION',
        `Payout ${gid} is ${payout.status} and cannot become PAID: only a PENDING payout can.`,
        ['input', 'payoutId'],
      );
    }

    const now = new Date();
    const inPayout = await prismaSql(tx).sql<{ id: string }>`
      SELECT "id" FROM "Reward"
       WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "payoutId" = ${payout.id}::uuid
       ORDER BY "id" FOR UPDATE`;
    const rewards = (
      await loadRewards(
        tx,
        inPayout.map((r) => r.id),
      )
    ).filter((r) => r.status === 'APPROVED');
    const changes = await applyStatusChange(tx, tenant, rewards, 'PROCESSED', {
      actor: input.actor,
      reason: `Paid in payout ${gid}.`,
      payoutId: payout.id,
      cascade: false,
      now,
    });
    const paid = await tx.payout.update({
      where: { id: payout.id },
      data: { status: 'PAID', paidAt: now, externalReference: reference },
    });

    await appendStatusEvents(tx, tenant, changes);
    await appendEvent(tx, tenant, payoutPaid(paid, now));
    return paid;
  }, MONEY_TX_OPTIONS);
}
