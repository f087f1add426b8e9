import type { PrismaClient } from '../../generated/prisma/client.js';
import type { ReferralStatus } from '../../generated/prisma/enums.js';
import { DomainError, notFound } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { globalId } from '../../lib/global-id.js';
import { prismaSql } from '../../lib/sql.js';
import { appendEvent } from '../events/outbox.js';
import { referralStatusChanged } from '../events/payloads.js';

// An admin's say over a referral's status (README.md next to this file): reject it, or reinstate
// a rejected one. PENDING → CONVERTED stays the business of a payment (recordConversion). The
// referral row is locked as recordConversion locks it (conversion/referral-writes.ts), so a
// conversion of the same person runs entirely before or entirely after the change.

/** Longest reason kept, after trimming (the same bound as a reward's status reason). */
export const REFERRAL_REASON_MAX = 500;

/** Interactive transactions here may wait for the row lock of a conversion in progress. */
const TX_OPTIONS = { maxWait: 10_000, timeout: 30_000 } as const;

export interface SetReferralStatusInput {
  /** The row id; null when the given global id was malformed or of another type. */
  referralId: string | null;
  /** As given by the client, for messages. */
  given: string;
  status: ReferralStatus;
  reason?: string | null;
}

/** The referral as locked: what the transition rules look at. */
export interface LockedReferral {
  id: string;
  status: ReferralStatus;
  /** When it first paid (an accepted PURCHASE or SUBSCRIPTION), or null. */
  convertedAt: Date | null;
}

/** The status a rejected referral comes back to: CONVERTED if it had paid before, else PENDING. */
export const reinstatedStatus = (referral: Pick<LockedReferral, 'convertedAt'>): ReferralStatus =>
  referral.convertedAt ? 'CONVERTED' : 'PENDING';

/**
 * Why an admin may not move `referral` to `to` (null: allowed, or already there). Allowed:
 * PENDING or CONVERTED → REJECTED, and REJECTED → the status its history gives it back
 * (`reinstatedStatus`). Everything else belongs to conversions.
 */
export function referralTransitionError(referral: LockedReferral, to: ReferralStatus): DomainError | null {
  const from = referral.status;
  if (from === to || to === 'REJECTED') return null;
  const refused = (why: string) =>
    new DomainError(
      'INVALID_TRANSITION',
      `Referral ${globalId('Referral', referral.id)} is ${from} and cannot become ${to}: ${why}`,
      ['input', 'status'],
    );
  if (from === 'REJECTED') {
    if (to === reinstatedStatus(referral)) return null;
    return to === 'PENDING'
      ? refused(
          `it paid before it was rejected (first payment at ${referral.convertedAt!.toISOString()}), so it is reinstated as CONVERTED; ask for CONVERTED.`,
        )
      : refused(
          'it has never paid (its first payment makes a referral CONVERTED), so it is reinstated as PENDING; ask for PENDING.',
        );
  }
  return to === 'CONVERTED'
    ? refused('only its first payment (recordConversion) converts a referral; an admin can only reject it (REJECTED).')
    : refused('a referral that paid stays CONVERTED; an admin can only reject it (REJECTED).');
}

/**
 * Set a referral's status as an admin: reject it (PENDING/CONVERTED → REJECTED) or reinstate a
 * rejected one (→ PENDING, or CONVERTED if it had paid). One `referral.status_changed` event with
 * the reason, in the same transaction; asking the current status changes nothing and appends
 * nothing. Rewards already created are left as they are; the change applies from the referral's
 * next conversion on. Returns the referral's row id.
 */
export async function setReferralStatus(
  prisma: PrismaClient,
  tenant: Tenant,
  input: SetReferralStatusInput,
): Promise<{ referralId: string; changed: boolean }> {
  const reason = input.reason?.trim() || null;
  if (reason && reason.length > REFERRAL_REASON_MAX) {
    throw new DomainError(
      'VALIDATION',
      `A reason must be at most ${REFERRAL_REASON_MAX} characters long (after trimming); got ${reason.length}.`,
      ['input', 'reason'],
    );
  }
  const notFoundError = notFound(`Referral ${JSON.stringify(input.given)}`, ['input', 'referralId']);
  if (!input.referralId) throw notFoundError;
  const referralId = input.referralId;
  return prisma.$transaction(async (tx) => {
    // Row lock: Prisma's model API has no locking read (src/db/README.md, "Row locks and claims").
    const [locked] = await prismaSql(tx).sql<{ id: string; status: ReferralStatus; convertedAt: Date | null }>`
      SELECT "id", "status"::text AS "status", "convertedAt"
        FROM "Referral"
       WHERE "id" = ${referralId}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
         FOR UPDATE`;
    if (!locked) throw notFoundError;
    const error = referralTransitionError(locked, input.status);
    if (error) throw error;
    if (locked.status === input.status) return { referralId, changed: false };
    const updated = await tx.referral.update({
      where: { id_workspaceId_mode: { id: referralId, ...tenant } },
      data: { status: input.status },
      select: { id: true, programId: true, partnerId: true },
    });
    await appendEvent(tx, tenant, referralStatusChanged(updated, locked.status, input.status, reason));
    return { referralId, changed: true };
  }, TX_OPTIONS);
}
