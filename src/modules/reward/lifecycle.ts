import { globalId } from '../../lib/global-id.js';
import type { Prisma, PrismaClient, Reward } from '../../generated/prisma/client.js';
import type { LedgerEntryType, RewardStatus } from '../../generated/prisma/enums.js';
import { DomainError, DomainErrors } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { appendEvents } from '../events/outbox.js';
import { rewardStatusChanged } from '../events/payloads.js';
import { prismaSql } from '../../lib/sql.js';
import { lockLedgersOfRewards } from '../ledger/ledger-lock.js';

// The reward lifecycle (DOMAIN.md) and the one function that moves rewards along it, writing
// the status history, the ledger entries and the outbox events in the caller's transaction.
// The money rules are in ../payout/README.md.

/** CREATED → APPROVED → PROCESSED; CREATED/APPROVED → CANCELED | REJECTED. Everything else is final. */
export const TRANSITIONS: Readonly<Record<RewardStatus, readonly RewardStatus[]>> = {
  CREATED: ['APPROVED', 'CANCELED', 'REJECTED'],
  APPROVED: ['PROCESSED', 'CANCELED', 'REJECTED'],
  PROCESSED: [],
  CANCELED: [],
  REJECTED: [],
};

export const canTransition = (from: RewardStatus, to: RewardStatus): boolean => TRANSITIONS[from].includes(to);

/** The history actor of the background approval job. */
export const APPROVAL_JOB_ACTOR = 'system:approval-job';

/** How many rewards one `updateRewardStatus` may name. */
export const MAX_STATUS_UPDATE_IDS = 100;

/** Interactive transactions here may wait for row locks held by concurrent writers. */
export const MONEY_TX_OPTIONS = { maxWait: 10_000, timeout: 30_000 } as const;

export const rewardGid = (id: string) => globalId('Reward', id);

/** The refusal for asking `to` of a reward whose lifecycle does not allow it (null: allowed, or already there). */
export function transitionError(
  reward: Pick<Reward, 'id' | 'status'>,
  to: RewardStatus,
  field: string[] | null = null,
): DomainError | null {
  if (reward.status === to || canTransition(reward.status, to)) return null;
  const allowed = TRANSITIONS[reward.status];
  const hint = allowed.length
    ? `from ${reward.status} it can only become ${allowed.join(', ')}`
    : `${reward.status} is final`;
  return new DomainError(
    'INVALID_TRANSITION',
    `Reward ${rewardGid(reward.id)} is ${reward.status} and cannot become ${to}: ${hint}.`,
    field,
  );
}

/**
 * The refusal for a change asked by a person (updateRewardStatus), which is stricter than the
 * lifecycle: a reward in a payout moves with its payout (markPayoutPaid), a refund's
 * negative reward moves with the reward it adjusts, and a reward held by an OPEN review item
 * moves with the item's decision (resolveReviewItems).
 */
export function manualTransitionError(
  reward: Reward,
  to: RewardStatus,
  field: string[] | null = null,
): DomainError | null {
  const basic = transitionError(reward, to, field);
  if (basic || reward.status === to) return basic;
  if (reward.sourceRewardId) {
    return new DomainError(
      'INVALID_TRANSITION',
      `Reward ${rewardGid(reward.id)} is ${reward.status} and cannot become ${to} by itself: it is a refund adjustment of reward ${rewardGid(reward.sourceRewardId)} and follows that reward's status.`,
      field,
    );
  }
  if (reward.held && reward.reviewItemId) {
    return new DomainError(
      'INVALID_TRANSITION',
      `Reward ${rewardGid(reward.id)} is ${reward.status} and cannot become ${to} by itself: it waits in review item ${globalId('ReviewItem', reward.reviewItemId)}; decide the item with resolveReviewItems.`,
      field,
    );
  }
  if (reward.payoutId) {
    return new DomainError(
      'INVALID_TRANSITION',
      `Reward ${rewardGid(reward.id)} is ${reward.status} and cannot become ${to}: it is part of payout ${globalId('Payout', reward.payoutId)}, which moves it to PROCESSED when marked paid.`,
      field,
    );
  }
  return null;
}

/**
 * Lock the ledgers of the rewards' partners (ledger/ledger-lock.ts), then the tenant's rewards
 * with these ids (in id order, so concurrent lockers never deadlock), and return them in id
 * order. Ids outside the tenant are simply absent.
 */
export async function lockRewards(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  ids: readonly string[],
): Promise<Reward[]> {
  if (ids.length === 0) return [];
  await lockLedgersOfRewards(prismaSql(tx), tenant, ids);
  const locked = await prismaSql(tx).sql<{ id: string }>`
    SELECT "id" FROM "Reward"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "id" = ANY(${[...ids]}::uuid[])
     ORDER BY "id" FOR UPDATE`;
  return loadRewards(
    tx,
    locked.map((r) => r.id),
  );
}

export async function loadRewards(tx: Prisma.TransactionClient, ids: readonly string[]): Promise<Reward[]> {
  if (ids.length === 0) return [];
  return tx.reward.findMany({ where: { id: { in: [...ids] } }, orderBy: { id: 'asc' } });
}

export interface TransitionOptions {
  /** Who asked: an api key id, or "system:<job>". */
  actor: string | null;
  reason: string | null;
  /** The payout that moves the rewards to PROCESSED (its PAYOUT entry holds their money: they write none). */
  payoutId?: string | null;
  /**
   * Move the rewards' refund adjustments (negative rewards of partial refunds, in the same status
   * and in no payout) along with them. Default true; a payout moves exactly its own rewards.
   */
  cascade?: boolean;
  now?: Date;
}

/** One reward's change of status, as written. */
export interface StatusChange {
  /** The reward as it was before the change. */
  reward: Reward;
  from: RewardStatus;
  to: RewardStatus;
  reason: string | null;
  at: Date;
}

/**
 * The ledger entry a reward moving from → to writes (null: no money moves). Only CASH rewards of
 * the partner (recipient REFERRER) are in the ledger. Approval makes the amount available (a
 * refund's negative adjustment reward: an ADJUSTMENT); leaving APPROVED takes it out again:
 * canceled or rejected (REWARD_REVERSED), or marked PROCESSED outside any payout (PAYOUT: paid by
 * the company by other means). Processed by its payout, it writes nothing: the payout's own
 * PAYOUT entry took the money out when the payout was created.
 */
export function ledgerTypeFor(
  reward: Pick<Reward, 'kind' | 'recipient' | 'amount' | 'sourceRewardId'>,
  from: RewardStatus,
  to: RewardStatus,
  byPayout: boolean,
): { type: LedgerEntryType; sign: 1n | -1n } | null {
  if (reward.kind !== 'CASH' || reward.recipient !== 'REFERRER' || reward.amount === 0n) return null;
  if (from === 'CREATED' && to === 'APPROVED')
    return { type: reward.sourceRewardId ? 'ADJUSTMENT' : 'REWARD_APPROVED', sign: 1n };
  if (from === 'APPROVED' && to === 'PROCESSED') return byPayout ? null : { type: 'PAYOUT', sign: -1n };
  if (from === 'APPROVED' && (to === 'CANCELED' || to === 'REJECTED')) return { type: 'REWARD_REVERSED', sign: -1n };
  return null;
}

/**
 * Move locked rewards to `to` inside the caller's transaction: status, one history row each,
 * the ledger entries of CASH REFERRER rewards (ledgerTypeFor; the caller holds their partners'
 * ledger locks) (never two of a kind per reward: the unique
 * (rewardId, type) refuses it), and, with `cascade`, the same for their refund adjustments.
 * The rewards must be locked by the caller and allowed to move (see transitionError); those
 * already in `to` are skipped. Outbox events are appended separately (appendStatusEvents); they
 * are numbered at commit, so the tenant's event counter is locked last.
 */
export async function applyStatusChange(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  rewards: readonly Reward[],
  to: RewardStatus,
  options: TransitionOptions,
): Promise<StatusChange[]> {
  const now = options.now ?? new Date();
  const moving = rewards.filter((r) => r.status !== to);
  for (const reward of moving) {
    const error = transitionError(reward, to);
    if (error) throw error;
  }
  if (moving.length === 0) return [];

  let all = [...moving];
  if (options.cascade !== false) {
    const parents = new Map(moving.map((r) => [r.id, r]));
    const children = await prismaSql(tx).sql<{ id: string }>`
      SELECT "id" FROM "Reward"
       WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
         AND "sourceRewardId" = ANY(${[...parents.keys()]}::uuid[]) AND "payoutId" IS NULL
       ORDER BY "id" FOR UPDATE`;
    const followers = (
      await loadRewards(
        tx,
        children.map((c) => c.id),
      )
    ).filter(
      (child) =>
        !parents.has(child.id) &&
        child.status === parents.get(child.sourceRewardId!)?.status &&
        canTransition(child.status, to),
    );
    all = [...all, ...followers];
  }

  const changes: StatusChange[] = all.map((reward) => ({
    reward,
    from: reward.status,
    to,
    reason: options.reason,
    at: now,
  }));
  // One UPDATE per previous status keeps the statement count flat for large batches.
  for (const from of new Set(changes.map((c) => c.from))) {
    const ids = changes.filter((c) => c.from === from).map((c) => c.reward.id);
    const { count } = await tx.reward.updateMany({
      where: { id: { in: ids }, status: from },
      data: { status: to, updatedAt: now },
    });
    if (count !== ids.length)
      throw new Error(`Reward status changed under a lock: expected ${ids.length} rows in ${from}, updated ${count}.`);
  }
  await tx.rewardStatusChange.createMany({
    data: changes.map((c) => ({
      ...tenant,
      rewardId: c.reward.id,
      fromStatus: c.from,
      toStatus: to,
      reason: options.reason,
      actor: options.actor,
      createdAt: now,
    })),
  });
  const entries: Prisma.LedgerEntryCreateManyInput[] = [];
  for (const { reward, from } of changes) {
    const movement = ledgerTypeFor(reward, from, to, Boolean(options.payoutId));
    if (!movement) continue;
    entries.push({
      ...tenant,
      partnerId: reward.partnerId,
      type: movement.type,
      amount: movement.sign * reward.amount,
      currency: reward.currency,
      rewardId: reward.id,
      createdAt: now,
    });
  }
  if (entries.length) await tx.ledgerEntry.createMany({ data: entries });
  return changes;
}

/** One `reward.status_changed` outbox event per change, in the caller's transaction. */
export async function appendStatusEvents(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  changes: readonly StatusChange[],
): Promise<void> {
  await appendEvents(tx, tenant, changes.map(rewardStatusChanged));
}

export interface UpdateRewardStatusInput {
  /** As given by the client (global ids), for messages; `rowId` null when malformed or of another type. */
  ids: ReadonlyArray<{ given: string; rowId: string | null }>;
  status: RewardStatus;
  reason?: string | null;
  actor: string | null;
}

export const REASON_MAX = 500;

/**
 * Move many rewards to one status, all or none: every id is locked (in id order), every refusal
 * is reported (NOT_FOUND / INVALID_TRANSITION with field ["input", "ids", index]) and then
 * nothing changes. A reward already in the status asked is left alone (no history row), so a
 * retry after success answers the same rewards with no errors. Returns the row ids in the order
 * asked, without repeats.
 */
export async function updateRewardStatuses(
  prisma: PrismaClient,
  tenant: Tenant,
  input: UpdateRewardStatusInput,
): Promise<string[]> {
  if (input.ids.length > MAX_STATUS_UPDATE_IDS) {
    throw new DomainError(
      'LIMIT_EXCEEDED',
      `At most ${MAX_STATUS_UPDATE_IDS} rewards per call; got ${input.ids.length}. Split the ids into several calls.`,
      ['input', 'ids'],
    );
  }
  const reason = input.reason?.trim() || null;
  if (reason && reason.length > REASON_MAX) {
    throw new DomainError('VALIDATION', `A reason must be at most ${REASON_MAX} characters long.`, ['input', 'reason']);
  }
  const rowIds = [...new Set(input.ids.map((i) => i.rowId).filter((id): id is string => id !== null))];
  return prisma.$transaction(async (tx) => {
    const rewards = new Map((await lockRewards(tx, tenant, rowIds)).map((r) => [r.id, r]));
    const errors: DomainError[] = [];
    input.ids.forEach(({ given, rowId }, index) => {
      const field = ['input', 'ids', String(index)];
      const reward = rowId ? rewards.get(rowId) : undefined;
      if (!reward) {
        errors.push(new DomainError('NOT_FOUND', `Reward ${JSON.stringify(given)} not found.`, field));
        return;
      }
      const error = manualTransitionError(reward, input.status, field);
      if (error) errors.push(error);
    });
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new DomainErrors(errors);

    const changes = await applyStatusChange(tx, tenant, [...rewards.values()], input.status, {
      actor: input.actor,
      reason,
    });
    await appendStatusEvents(tx, tenant, changes);
    return rowIds;
  }, MONEY_TX_OPTIONS);
}
