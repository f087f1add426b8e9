import type { ConversionType, EnrollmentStatus, TierMetric } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import { currencyDigits } from '../../lib/money.js';
import { sql, type SqlClient, type SqlFragment } from '../../lib/sql.js';
import type { NewEvent } from '../events/outbox.js';
import { tierChanged } from '../events/payloads.js';
import type { TierFacts } from '../reward/create-rewards.js';

// Which tier each partner of a program is in, decided and written by one statement (README.md,
// "Evaluation"): used by recordConversion (one partner, up only), the daily job and tier edits
// (every partner of the program, up and down).

/**
 * The tier lock's class (the first key of a two-key advisory lock, a key space of its own; see
 * ledger/ledger-lock.ts). The second key is hashtext(workspace:mode:program). Held by whatever
 * moves many of a program's partners at once — the daily job, createTier, updateTier,
 * deleteTier — so that they run one after the other (no two of them update the same
 * enrollments in different orders). recordConversion does not take it.
 */
export const TIER_LOCK_CLASS = 0x54_49_52; // "TIR"

export const tierLockKey = (tenant: Tenant, programId: string) => `${tenant.workspaceId}:${tenant.mode}:${programId}`;

/** Wait for the program's tier lock until the transaction ends. */
export async function lockProgramTiers(tx: SqlClient, tenant: Tenant, programId: string): Promise<void> {
  await tx.sql`SELECT pg_advisory_xact_lock(${TIER_LOCK_CLASS}::int, hashtext(${tierLockKey(tenant, programId)}))::text AS "locked"`;
}

/** Take the program's tier lock until the transaction ends if nobody holds it; false when someone does. */
export async function tryLockProgramTiers(tx: SqlClient, tenant: Tenant, programId: string): Promise<boolean> {
  const [row] = await tx.sql<{ locked: boolean }>`
    SELECT pg_try_advisory_xact_lock(${TIER_LOCK_CLASS}::int, hashtext(${tierLockKey(tenant, programId)})) AS "locked"`;
  return row?.locked === true;
}

export interface TierEvaluation {
  programId: string;
  /** The metric of the program's tiers (they share one). */
  metric: TierMetric;
  /** The program's currency: REVENUE counts conversions in it, and thresholds are in its whole units. */
  currency: string;
  /** The end of the trailing periods. */
  now: Date;
  /**
   * 'up': only to a higher tier than the current one (a conversion can only add to the metric);
   * 'both': to whichever tier is reached now, none included (the daily job, tier edits).
   */
  direction: 'up' | 'both';
  /** Only this partner's enrollment (a conversion); absent: every enrollment of the program. */
  partnerId?: string;
  /** Leave this tier out (deleteTier: its partners move to the tier they reach without it). */
  withoutTierId?: string;
}

/** One enrollment that changed tier (`tier.changed`). */
export interface TierChange {
  enrollmentId: string;
  programId: string;
  partnerId: string;
  status: EnrollmentStatus;
  from: { id: string; name: string; threshold: number } | null;
  to: { id: string; name: string; threshold: number } | null;
}

/**
 * What each metric counts, per partner and tier, over the tier's trailing period ending `now`
 * (columns: partnerId, tierId, threshold, value). For the whole program: the rows of the longest
 * period, each joined to the tiers whose period it falls in, grouped. For one partner (a
 * conversion): one subquery per tier, each a range scan of that partner's rows in the tier's
 * period (`Referral_partnerId_programId_convertedAt_idx`, `Conversion_partnerId_occurredAt_idx`);
 * a count stops at the tier's threshold, so a partner with many referrals costs no more than one
 * who just reaches it.
 */
function activityQuery(tenant: Tenant, e: TierEvaluation): SqlFragment {
  const since = sql`${e.now}::timestamptz - make_interval(days => t."periodDays")`;
  if (e.partnerId !== undefined) {
    const partner = e.partnerId;
    const value =
      e.metric === 'CONVERTED_REFERRALS'
        ? sql`(SELECT count(*) FROM (
                 SELECT 1 FROM "Referral" r
                  WHERE r."partnerId" = ${partner}::uuid AND r."programId" = ${e.programId}::uuid AND r."convertedAt" > ${since}
                    AND r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode" AND r."status" = 'CONVERTED'
                  LIMIT t."threshold") AS counted)::numeric`
        : sql`(SELECT COALESCE(sum(CASE WHEN c."type" = 'REFUND' THEN -c."amount" ELSE c."amount" END), 0)::numeric
                 FROM "Conversion" c
                WHERE c."partnerId" = ${partner}::uuid AND c."occurredAt" > ${since} AND c."programId" = ${e.programId}::uuid
                  AND c."workspaceId" = ${tenant.workspaceId}::uuid AND c."mode" = ${tenant.mode}::"Mode"
                  AND c."status" = 'ACCEPTED' AND c."type" IN ('PURCHASE', 'SUBSCRIPTION', 'REFUND') AND c."currency" = ${e.currency})
               / ${10 ** currencyDigits(e.currency)}::numeric`;
    return sql`SELECT ${partner}::uuid AS "partnerId", t."id" AS "tierId", t."threshold", ${value} AS "value" FROM tiers t`;
  }
  if (e.metric === 'CONVERTED_REFERRALS') {
    // Referrals the partner brought that converted (their first payment) within the period and
    // were not rejected since.
    return sql`
      SELECT r."partnerId", t."id" AS "tierId", t."threshold", count(*)::numeric AS "value"
        FROM "Referral" r
        JOIN tiers t ON r."convertedAt" > ${since}
       WHERE r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode" AND r."programId" = ${e.programId}::uuid
         AND r."status" = 'CONVERTED'
         AND r."convertedAt" > ${e.now}::timestamptz - make_interval(days => (SELECT max("periodDays") FROM tiers))
       GROUP BY r."partnerId", t."id", t."threshold"`;
  }
  // Revenue: accepted payments in the program's currency within the period, less the refunds
  // recorded within it; thresholds are whole units of that currency.
  return sql`
    SELECT c."partnerId", t."id" AS "tierId", t."threshold",
           sum(CASE WHEN c."type" = 'REFUND' THEN -c."amount" ELSE c."amount" END)::numeric
             / ${10 ** currencyDigits(e.currency)}::numeric AS "value"
      FROM "Conversion" c
      JOIN tiers t ON c."occurredAt" > ${since}
     WHERE c."programId" = ${e.programId}::uuid AND c."workspaceId" = ${tenant.workspaceId}::uuid AND c."mode" = ${tenant.mode}::"Mode"
       AND c."partnerId" IS NOT NULL
       AND c."status" = 'ACCEPTED' AND c."type" IN ('PURCHASE', 'SUBSCRIPTION', 'REFUND') AND c."currency" = ${e.currency}
       AND c."occurredAt" > ${e.now}::timestamptz - make_interval(days => (SELECT max("periodDays") FROM tiers))
     GROUP BY c."partnerId", t."id", t."threshold"`;
}

/**
 * Move the program's enrollments (or one partner's) to the tier they reach at `now`, in one
 * statement; returns what changed, for the `tier.changed` events. A partner's tier is the tier
 * with the highest threshold their metric reaches over its period; none reached: no tier.
 *
 * Safe against concurrent writers: an enrollment changed by someone else since this statement's
 * snapshot keeps that change (the UPDATE requires the tier it read), so `from` is always what was
 * replaced; a tier deleted meanwhile is never assigned (the target tiers are locked FOR KEY SHARE,
 * which waits for a deleteTier in progress and then skips the deleted row).
 */
export async function evaluateTiers(tx: SqlClient, tenant: Tenant, e: TierEvaluation): Promise<TierChange[]> {
  const partner = e.partnerId ?? null;
  const without = e.withoutTierId ?? null;
  const up = e.direction === 'up';
  const rows = await tx.sql<{
    enrollmentId: string;
    partnerId: string;
    status: EnrollmentStatus;
    fromTierId: string | null;
    toTierId: string | null;
    fromName: string | null;
    toName: string | null;
    fromThreshold: number | null;
    toThreshold: number | null;
  }>`
    WITH tiers AS (
      SELECT t."id", t."name", t."threshold", t."periodDays" FROM "Tier" t
       WHERE t."programId" = ${e.programId}::uuid AND t."workspaceId" = ${tenant.workspaceId}::uuid AND t."mode" = ${tenant.mode}::"Mode"
         AND t."metric" = ${e.metric}::"TierMetric" AND (${without}::uuid IS NULL OR t."id" <> ${without}::uuid)
         -- Up: only the tiers above the one held (one partner: its enrollment; all: no cut here).
         AND (NOT ${up}::boolean OR ${partner}::uuid IS NULL OR t."threshold" > COALESCE((
               SELECT c."threshold" FROM "Enrollment" ce JOIN "Tier" c ON c."id" = ce."tierId"
                WHERE ce."programId" = ${e.programId}::uuid AND ce."partnerId" = ${partner}::uuid), 0))
    ),
    activity AS (${activityQuery(tenant, e)}),
    reached AS (
      SELECT DISTINCT ON (a."partnerId") a."partnerId", a."tierId", a."threshold"
        FROM activity a WHERE a."value" >= a."threshold"
       ORDER BY a."partnerId", a."threshold" DESC
    ),
    target AS (
      SELECT e."id", e."tierId" AS "fromTierId", x."tierId" AS "toTierId"
        FROM "Enrollment" e
        LEFT JOIN reached x ON x."partnerId" = e."partnerId"
        LEFT JOIN "Tier" cur ON cur."id" = e."tierId"
       WHERE e."programId" = ${e.programId}::uuid AND e."workspaceId" = ${tenant.workspaceId}::uuid AND e."mode" = ${tenant.mode}::"Mode"
         AND (${partner}::uuid IS NULL OR e."partnerId" = ${partner}::uuid)
         AND e."tierId" IS DISTINCT FROM x."tierId"
         AND (NOT ${up}::boolean OR (x."tierId" IS NOT NULL AND (cur."id" IS NULL OR x."threshold" > cur."threshold")))
    ),
    usable AS (
      SELECT t."id" FROM "Tier" t WHERE t."id" IN (SELECT "toTierId" FROM target) FOR KEY SHARE
    ),
    changed AS (
      UPDATE "Enrollment" e SET "tierId" = g."toTierId", "tierSince" = ${e.now}::timestamptz
        FROM target g
       WHERE e."id" = g."id" AND e."tierId" IS NOT DISTINCT FROM g."fromTierId"
         AND (g."toTierId" IS NULL OR g."toTierId" IN (SELECT "id" FROM usable))
      RETURNING e."id", e."partnerId", e."status", g."fromTierId", g."toTierId"
    )
    SELECT c."id" AS "enrollmentId", c."partnerId", c."status"::text AS "status", c."fromTierId", c."toTierId",
           f."name" AS "fromName", t."name" AS "toName", f."threshold" AS "fromThreshold", t."threshold" AS "toThreshold"
      FROM changed c
      LEFT JOIN "Tier" f ON f."id" = c."fromTierId"
      LEFT JOIN "Tier" t ON t."id" = c."toTierId"
     ORDER BY c."id"`;
  return rows.map((row) => ({
    enrollmentId: row.enrollmentId,
    programId: e.programId,
    partnerId: row.partnerId,
    status: row.status,
    from: row.fromTierId
      ? { id: row.fromTierId, name: row.fromName ?? '', threshold: Number(row.fromThreshold ?? 0) }
      : null,
    to: row.toTierId ? { id: row.toTierId, name: row.toName ?? '', threshold: Number(row.toThreshold ?? 0) } : null,
  }));
}

/** UP when the new tier's threshold is higher than the old one's (none counts as lowest), else DOWN. */
export const directionOf = (change: TierChange): 'UP' | 'DOWN' =>
  (change.to?.threshold ?? 0) > (change.from?.threshold ?? 0) ? 'UP' : 'DOWN';

/** The `tier.changed` events of these changes. */
export const tierChangedEvents = (changes: readonly TierChange[]): NewEvent[] =>
  changes.map((change) => tierChanged(change, directionOf(change)));

/**
 * After recordConversion rewarded a payment (the rewards used the tier held before it): raise the
 * partner's tier if the payment made them reach a higher one; the `tier.changed` event, if any. No
 * statement at all for a program without tiers (`tier.tierMetric` null, from rulesQuery) or a
 * conversion that cannot add to its metric (a SIGNUP; for CONVERTED_REFERRALS, a payment of a
 * referral converted before), nor for a partner already in the program's highest tier; one
 * otherwise.
 */
export async function raiseTier(
  tx: SqlClient,
  tenant: Tenant,
  tier: TierFacts,
  conversion: {
    type: ConversionType;
    programId: string;
    partnerId: string;
    /** This payment converted its referral (a new one, or its first payment): CONVERTED_REFERRALS grew. */
    convertedReferral: boolean;
    now: Date;
  },
): Promise<NewEvent[]> {
  if (!tier.tierMetric || !tier.tierCurrency) return [];
  if (conversion.type !== 'PURCHASE' && conversion.type !== 'SUBSCRIPTION') return [];
  // Already in the program's highest tier: nowhere to go up to.
  if (tier.tierId !== null && tier.tierThreshold !== null && tier.tierThreshold >= (tier.tierTopThreshold ?? 0))
    return [];
  // A later payment of a referral converted before adds no converted referral.
  if (tier.tierMetric === 'CONVERTED_REFERRALS' && !conversion.convertedReferral) return [];
  const changes = await evaluateTiers(tx, tenant, {
    programId: conversion.programId,
    metric: tier.tierMetric,
    currency: tier.tierCurrency,
    now: conversion.now,
    direction: 'up',
    partnerId: conversion.partnerId,
  });
  return tierChangedEvents(changes);
}
