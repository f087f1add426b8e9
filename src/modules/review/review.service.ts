import type { Prisma, PrismaClient, Reward, ReviewItem } from '../../generated/prisma/client.js';
import { DomainError, DomainErrors, notFound } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { globalId } from '../../lib/global-id.js';
import { prismaSql } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';
import { appendEvents, type NewEvent } from '../events/outbox.js';
import { reviewOpened, reviewResolved, rewardStatusChanged } from '../events/payloads.js';
import { lockLedgers } from '../ledger/ledger-lock.js';
import { applyStatusChange, canTransition, lockRewards, MONEY_TX_OPTIONS } from '../reward/lifecycle.js';
import { type FraudSignal, signalsOf } from './fraud-rules.js';

// The review queue's decisions (README.md next to this file): resolveReviewItems, flagConversion,
// and what banning a partner does to their queue. Items are opened by recordConversion itself
// (review-writes.ts), in its own transaction.

/** How many items one resolveReviewItems may name. */
export const MAX_RESOLVE_IDS = 100;
/** A decision's reason, a manual flag's detail: at most this many characters (after trimming). */
export const REASON_MAX = 500;
export const DETAIL_MAX = 500;
/** The reason given to the rewards and review items a ban rejects. */
export const BAN_REASON = 'The partner was banned.';
/** The history actor of a ban's rejections when no key is known. */
export const BAN_ACTOR = 'system:setPartnerStatus';

export type ReviewDecision = 'APPROVE' | 'REJECT';

const itemGid = (id: string) => globalId('ReviewItem', id);

/**
 * Lock the ledgers of these review items' partners (an item's partner never changes, so it is read
 * without a lock), then the tenant's items themselves in id order; returns them by id. The
 * ledger lock comes first, as for every change that may move a partner's rewards
 * (ledger/ledger-lock.ts): items → rewards after it, never the other way round.
 */
async function lockItems(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  ids: readonly string[],
): Promise<Map<string, ReviewItem>> {
  if (ids.length === 0) return new Map();
  const db = prismaSql(tx);
  const partners = await db.sql<{ partnerId: string }>`
    SELECT DISTINCT "partnerId" FROM "ReviewItem"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "id" = ANY(${[...ids]}::uuid[])`;
  await lockLedgers(
    db,
    tenant,
    partners.map((p) => p.partnerId),
  );
  const locked = await db.sql<{ id: string }>`
    SELECT "id" FROM "ReviewItem"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "id" = ANY(${[...ids]}::uuid[])
     ORDER BY "id" FOR UPDATE`;
  const rows = await tx.reviewItem.findMany({ where: { id: { in: locked.map((r) => r.id) } } });
  return new Map(rows.map((row) => [row.id, row]));
}

/** The rewards these (locked) items hold or held, locked in id order (lifecycle.ts lockRewards). */
async function lockRewardsOf(tx: Prisma.TransactionClient, tenant: Tenant, itemIds: readonly string[]) {
  if (itemIds.length === 0) return [];
  const ids = await prismaSql(tx).sql<{ id: string }>`
    SELECT "id" FROM "Reward"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "reviewItemId" = ANY(${[...itemIds]}::uuid[])`;
  return lockRewards(
    tx,
    tenant,
    ids.map((r) => r.id),
  );
}

interface Decided {
  items: ReviewItem[];
  status: 'APPROVED' | 'REJECTED';
  reason: string | null;
  actor: string | null;
  now: Date;
  /** false: the caller has rejected the rewards already (a ban rejects all of the partner's). */
  moveRewards?: boolean;
}

/**
 * Decide locked OPEN items and move the rewards they hold, in the caller's transaction; returns
 * the events to append (reward.status_changed of rejected rewards, then one review.resolved per
 * item). APPROVED: the rewards are released (`held` false) with approveAfter = the decision +
 * their program's holdDays, so the approval job approves them when that hold ends. REJECTED: the
 * rewards still CREATED or APPROVED are REJECTED through the lifecycle (history, ledger, events)
 * with the reason; any already final (canceled by a refund meanwhile) stay as they are.
 */
async function decide(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  rewards: readonly Reward[],
  d: Decided,
): Promise<NewEvent[]> {
  if (d.items.length === 0) return [];
  const itemIds = d.items.map((item) => item.id);
  const events: NewEvent[] = [];
  if (d.status === 'REJECTED' && d.moveRewards !== false) {
    const rejectable = rewards.filter((r) => r.status !== 'REJECTED' && canTransition(r.status, 'REJECTED'));
    const changes = await applyStatusChange(tx, tenant, rejectable, 'REJECTED', {
      actor: d.actor,
      reason: d.reason,
      now: d.now,
    });
    events.push(...changes.map(rewardStatusChanged));
  }
  const db = prismaSql(tx);
  // Released (or rejected): no longer held. Approved ones get their hold period from now.
  await db.sql`
    UPDATE "Reward" w
       SET "held" = false, "updatedAt" = ${d.now}::timestamptz,
           "approveAfter" = CASE WHEN ${d.status === 'APPROVED'}::boolean AND w."status" = 'CREATED'
                                 THEN ${d.now}::timestamptz + make_interval(days => g."holdDays") ELSE w."approveAfter" END
      FROM "Program" g
     WHERE g."id" = w."programId" AND w."workspaceId" = ${tenant.workspaceId}::uuid AND w."mode" = ${tenant.mode}::"Mode"
       AND w."reviewItemId" = ANY(${itemIds}::uuid[]) AND w."held"`;
  await tx.reviewItem.updateMany({
    where: { id: { in: itemIds }, ...tenant, status: 'OPEN' },
    data: { status: d.status, reason: d.reason, decidedAt: d.now, actor: d.actor, updatedAt: d.now },
  });
  for (const item of d.items) {
    const held = rewards.filter((r) => r.reviewItemId === item.id).map((r) => r.id);
    events.push(reviewResolved(item, d.status, d.reason, d.now, held));
  }
  return events;
}

export interface ResolveReviewItemsInput {
  /** As given (global ids), for messages; `rowId` null when malformed or of another type. */
  ids: ReadonlyArray<{ given: string; rowId: string | null }>;
  decision: ReviewDecision;
  reason?: string | null;
  /** Who decides: an api key id. */
  actor: string | null;
  now?: Date;
}

/**
 * Decide review items, all or none: every item is locked (ledgers first, then items, then their
 * rewards, each in id order), every refusal is reported (NOT_FOUND, or INVALID_TRANSITION for an
 * item already decided the other way, field ["input", "ids", index]) and then nothing changes.
 * An item already decided the way asked is left as it is (a retry is safe). Returns the row ids
 * in the order asked, without repeats.
 */
export async function resolveReviewItems(
  prisma: PrismaClient,
  tenant: Tenant,
  input: ResolveReviewItemsInput,
): Promise<string[]> {
  if (input.ids.length > MAX_RESOLVE_IDS) {
    throw new DomainError(
      'LIMIT_EXCEEDED',
      `At most ${MAX_RESOLVE_IDS} review items per call; got ${input.ids.length}. Split the ids into several calls.`,
      ['input', 'ids'],
    );
  }
  const reason = input.reason?.trim() || null;
  if (reason && reason.length > REASON_MAX) {
    throw new DomainError('VALIDATION', `A reason must be at most ${REASON_MAX} characters long.`, ['input', 'reason']);
  }
  if (input.decision === 'REJECT' && !reason) {
    throw new DomainError(
      'VALIDATION',
      'Rejecting needs a reason (kept on the items and in each rejected reward’s status history, which the partner sees).',
      ['input', 'reason'],
    );
  }
  const status = input.decision === 'APPROVE' ? 'APPROVED' : 'REJECTED';
  const rowIds = [...new Set(input.ids.map((i) => i.rowId).filter((id): id is string => id !== null))];
  return prisma.$transaction(async (tx) => {
    const items = await lockItems(tx, tenant, rowIds);
    const errors: DomainError[] = [];
    input.ids.forEach(({ given, rowId }, index) => {
      const field = ['input', 'ids', String(index)];
      const item = rowId ? items.get(rowId) : undefined;
      if (!item) {
        errors.push(new DomainError('NOT_FOUND', `Review item ${JSON.stringify(given)} not found.`, field));
      } else if (item.status !== 'OPEN' && item.status !== status) {
        errors.push(
          new DomainError(
            'INVALID_TRANSITION',
            `Review item ${itemGid(item.id)} was ${item.status} at ${item.decidedAt?.toISOString()}: a decision is final, it cannot be ${status} now.`,
            field,
          ),
        );
      }
    });
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new DomainErrors(errors);

    const open = [...items.values()].filter((item) => item.status === 'OPEN');
    const rewards = await lockRewardsOf(
      tx,
      tenant,
      open.map((item) => item.id),
    );
    const events = await decide(tx, tenant, rewards, {
      items: open,
      status,
      reason,
      actor: input.actor,
      now: input.now ?? new Date(),
    });
    await appendEvents(tx, tenant, events);
    return rowIds;
  }, MONEY_TX_OPTIONS);
}

export interface FlagConversionInput {
  /** Row id; null when the given id is malformed or of another type. */
  conversionId: string | null;
  detail: string;
  now?: Date;
}

/**
 * Open a review item by hand for an accepted conversion (signal MANUAL with `detail`): its
 * CREATED rewards are held until the item is decided; rewards already approved or final are not
 * (their money moved already: updateRewardStatus or a refund handles them). Refused: an unknown
 * conversion (NOT_FOUND), a DISCARDED one or a refund (INVALID_TRANSITION: nothing to review), a
 * conversion that has an item already (DUPLICATE: one per conversion).
 */
export async function flagConversion(
  prisma: PrismaClient,
  tenant: Tenant,
  input: FlagConversionInput,
): Promise<string> {
  const detail = input.detail.trim();
  if (detail.length < 1 || detail.length > DETAIL_MAX) {
    throw new DomainError(
      'VALIDATION',
      `A detail must be 1 to ${DETAIL_MAX} characters long: say what looks wrong, e.g. "same card as the partner".`,
      ['input', 'detail'],
    );
  }
  const field = ['input', 'conversionId'];
  const now = input.now ?? new Date();
  return prisma.$transaction(async (tx) => {
    const conversion = input.conversionId
      ? await tx.conversion.findUnique({ where: { id_workspaceId_mode: { id: input.conversionId, ...tenant } } })
      : null;
    if (!conversion) throw notFound('Conversion', field);
    const cgid = globalId('Conversion', conversion.id);
    if (conversion.type === 'REFUND') {
      throw new DomainError(
        'INVALID_TRANSITION',
        `Conversion ${cgid} is a REFUND: it earns nothing to review. Flag the conversion it refunds.`,
        field,
      );
    }
    if (conversion.status !== 'ACCEPTED' || !conversion.partnerId || !conversion.programId) {
      throw new DomainError(
        'INVALID_TRANSITION',
        `Conversion ${cgid} is ${conversion.status} (${conversion.discardReason ?? 'not attributed'}): it earned nothing, there is nothing to review.`,
        field,
      );
    }
    await lockLedgers(prismaSql(tx), tenant, [conversion.partnerId]);
    const existing = await tx.reviewItem.findUnique({
      where: { conversionId_workspaceId_mode: { conversionId: conversion.id, ...tenant } },
    });
    if (existing) {
      throw new DomainError(
        'DUPLICATE',
        existing.status === 'OPEN'
          ? `Conversion ${cgid} is already in review item ${itemGid(existing.id)} (OPEN): decide it with resolveReviewItems.`
          : `Conversion ${cgid} was reviewed already (item ${itemGid(existing.id)}, ${existing.status}): its rewards follow their lifecycle now; change them with updateRewardStatus.`,
        field,
      );
    }
    const ids = await prismaSql(tx).sql<{ id: string }>`
      SELECT "id" FROM "Reward"
       WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "conversionId" = ${conversion.id}::uuid
         AND "status" = 'CREATED' AND "sourceRewardId" IS NULL
       ORDER BY "id" FOR UPDATE`;
    const signal: FraudSignal = { type: 'MANUAL', detail };
    const item = await tx.reviewItem.create({
      data: {
        id: uuidv7(),
        ...tenant,
        programId: conversion.programId,
        partnerId: conversion.partnerId,
        conversionId: conversion.id,
        referralId: conversion.referralId,
        signals: [signal] as unknown as Prisma.InputJsonArray,
        createdAt: now,
        updatedAt: now,
      },
    });
    const rewardIds = ids.map((r) => r.id);
    if (rewardIds.length > 0) {
      await tx.reward.updateMany({
        where: { id: { in: rewardIds }, status: 'CREATED' },
        data: { reviewItemId: item.id, held: true, updatedAt: now },
      });
    }
    await tx.conversion.update({
      where: { id: conversion.id },
      data: { signals: [...signalsOf(conversion.signals), signal] as unknown as Prisma.InputJsonArray },
    });
    await appendEvents(tx, tenant, [reviewOpened({ ...item, signals: [signal] }, rewardIds)]);
    return item.id;
  }, MONEY_TX_OPTIONS);
}

/**
 * What banning a partner does to their money not yet due, in the caller's transaction (which
 * sets the status afterwards): their CREATED rewards are REJECTED (held or not, with `reason`,
 * through the lifecycle) and their OPEN review items are closed REJECTED. APPROVED rewards stay:
 * money already due is the company's to claw back (by refund). Locks: the partner's ledger, then
 * their OPEN items, then their CREATED rewards, each in id order. Returns the events to append.
 */
export async function rejectForBan(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  partnerId: string,
  options: { reason: string; actor: string | null; now?: Date },
): Promise<NewEvent[]> {
  const now = options.now ?? new Date();
  const db = prismaSql(tx);
  await lockLedgers(db, tenant, [partnerId]);
  const openIds = await db.sql<{ id: string }>`
    SELECT "id" FROM "ReviewItem"
     WHERE "partnerId" = ${partnerId}::uuid AND "status" = 'OPEN'
       AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
     ORDER BY "id" FOR UPDATE`;
  const items = openIds.length
    ? await tx.reviewItem.findMany({ where: { id: { in: openIds.map((r) => r.id) } }, orderBy: { id: 'asc' } })
    : [];
  const createdIds = await db.sql<{ id: string }>`
    SELECT "id" FROM "Reward"
     WHERE "partnerId" = ${partnerId}::uuid AND "status" = 'CREATED' AND "sourceRewardId" IS NULL
       AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"`;
  const rewards = await lockRewards(
    tx,
    tenant,
    createdIds.map((r) => r.id),
  );
  // The items' own rewards are among the partner's CREATED ones (held rewards are never APPROVED).
  const changes = await applyStatusChange(tx, tenant, rewards, 'REJECTED', {
    actor: options.actor,
    reason: options.reason,
    now,
  });
  const events: NewEvent[] = changes.map(rewardStatusChanged);
  events.push(
    ...(await decide(
      tx,
      tenant,
      rewards.filter((r) => r.reviewItemId !== null),
      { items, status: 'REJECTED', reason: options.reason, actor: options.actor, now, moveRewards: false },
    )),
  );
  return events;
}
