import { createHash } from 'node:crypto';
import { Prisma, type Partner, type PrismaClient } from '../../generated/prisma/client.js';
import { DomainError } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { prismaSql } from '../../lib/sql.js';
import { appendEvents, type NewEvent } from '../events/outbox.js';
import { linkDisabled, partnerErased } from '../events/payloads.js';
import { findPartnerByKey, type PartnerKey } from './partner-key.js';

// Erasure (GDPR, "right to be forgotten"): a partner's personal data is replaced by a tombstone
// while every money record stays as it is and still adds up. See README.md, "Erasure and export".

/** What a tombstoned externalId starts with. */
export const TOMBSTONE_PREFIX = 'erased:';

/**
 * The fields `partner.erased` reports as changed (`PartnerEventData.changedFields`): the personal
 * ones replaced by the tombstone, and the status.
 */
export const ERASED_FIELDS = ['externalId', 'name', 'email', 'metadata', 'status'] as const;

/**
 * The externalId an erased partner gets: `erased:` + the first 24 hex digits (96 bits) of the
 * SHA-256 of its row id. Derived from the id, never from personal data, so it reveals nothing
 * about the person; stable, so erasing again gives the same value; unique in practice.
 */
export function tombstoneOf(partnerId: string): string {
  return `${TOMBSTONE_PREFIX}${createHash('sha256').update(partnerId).digest('hex').slice(0, 24)}`;
}

/**
 * The refusal of a change an erased partner cannot take (personal data set again, another status,
 * a partner token): INVALID_TRANSITION at `field`, saying what to do instead.
 */
export function erasedPartnerError(
  partner: Pick<Partner, 'externalId' | 'erasedAt'>,
  what: string,
  field: string[] | null,
): DomainError {
  return new DomainError(
    'INVALID_TRANSITION',
    `Partner "${partner.externalId}" was erased on ${partner.erasedAt?.toISOString() ?? 'an earlier date'}: ${what}. ` +
      'An erasure cannot be undone; if the person comes back, create a new partner.',
    field,
  );
}

/** Whether `error` is Prisma's "no row matched" of an `update` whose where clause no longer holds. */
export function isRecordNotFound(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2025';
}

/**
 * Clear what a click tells about a person (the keyed hash of the visitor's IP, their user agent
 * and the page that sent them) on every click of the partner's links. The partner's own visits to
 * their links are among these clicks, so their IP hash goes with them. One UPDATE (the
 * `(partnerId, occurredAt)` index), touching only rows that still hold something. Resolves with
 * the number of rows cleared.
 */
export async function scrubClicks(
  db: PrismaClient | Prisma.TransactionClient,
  tenant: Tenant,
  partnerId: string,
): Promise<number> {
  const { count } = await db.click.updateMany({
    where: {
      ...tenant,
      partnerId,
      OR: [{ ipHash: { not: null } }, { userAgent: { not: null } }, { referrerUrl: { not: null } }],
    },
    data: { ipHash: null, userAgent: null, referrerUrl: null },
  });
  return count;
}

/**
 * Erase a partner's personal data, in one transaction:
 *
 * - the partner: `externalId` → its tombstone (`tombstoneOf`), `name` and `email` → null,
 *   `metadata` → {}, `erasedAt` → now, `status` → BANNED (no new clicks, conversions, enrollments
 *   or links count for it, and it cannot be set back: see `setPartnerStatus`);
 * - its enrollments' `answers` (their own words when they applied) → null;
 * - its clicks: `scrubClicks`;
 * - its links are disabled (`link.disabled` each): `GET /r/{code}` answers 404 and records nothing;
 * - the payloads of its earlier `partner.created` / `partner.updated` events carry the tombstone
 *   instead of the old externalId;
 * - `partner.erased` is appended.
 *
 * Rewards, ledger entries, payouts, conversions and referrals are not touched: balances,
 * statements and program figures stay exactly as they were.
 *
 * Erasing an erased partner is a success that appends no `partner.erased`: it applies the same
 * clearing again to whatever arrived since (a click written late by another instance, a link made
 * by a request that raced the erasure), which is usually nothing. Two erasures at once: the
 * partner row's update is guarded on `erasedAt IS NULL`, so exactly one of them appends the event.
 */
export async function erasePartner(prisma: PrismaClient, tenant: Tenant, key: PartnerKey): Promise<Partner> {
  return prisma.$transaction(async (tx) => {
    const found = await findPartnerByKey(tx, tenant, key);
    const tombstone = tombstoneOf(found.id);
    const now = new Date();
    const events: NewEvent[] = [];
    if (found.erasedAt === null) {
      const { count } = await tx.partner.updateMany({
        where: { ...tenant, id: found.id, erasedAt: null },
        data: { externalId: tombstone, name: null, email: null, metadata: {}, status: 'BANNED', erasedAt: now },
      });
      // 0: a concurrent erasure committed first (this one then only clears what is left).
      if (count === 1) events.push(partnerErased({ id: found.id, erasedAt: now, status: 'BANNED' }, found.status));
    }
    await tx.enrollment.updateMany({
      where: { ...tenant, partnerId: found.id, answers: { not: Prisma.DbNull } },
      data: { answers: Prisma.DbNull },
    });
    await scrubClicks(tx, tenant, found.id);
    const disabled = await tx.referralLink.updateManyAndReturn({
      where: { ...tenant, partnerId: found.id, disabledAt: null },
      data: { disabledAt: now },
    });
    events.push(...disabled.sort((a, b) => (a.id < b.id ? -1 : 1)).map(linkDisabled));
    // Earlier events named the partner by its externalId, which may be personal (an email, say).
    await prismaSql(tx).sql`
      UPDATE "Event" SET "payload" = jsonb_set("payload", '{externalId}', to_jsonb(${tombstone}::text))
       WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
         AND "partnerId" = ${found.id}::uuid AND "type" IN ('partner.created', 'partner.updated')
         AND "payload" ? 'externalId' AND "payload"->>'externalId' IS DISTINCT FROM ${tombstone}`;
    await appendEvents(tx, tenant, events);
    return tx.partner.findUniqueOrThrow({ where: { id: found.id } });
  });
}
