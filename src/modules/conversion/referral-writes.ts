import type { ConversionType, ReferralStatus } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import type { SqlTx } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';
import { rulesQuery, type RuleRow } from '../reward/create-rewards.js';
import type { FraudFacts } from '../review/fraud-rules.js';
import {
  checkReferral,
  type Decision,
  type DiscardReason,
  type ReferralFacts,
  type Referred,
  type TouchFacts,
} from './attribution.js';
import { loadReferral } from './attribution-facts.js';

// Carrying out an attribution Decision (attribution.ts): the referral it creates or updates,
// and what the conversion row records. Step 3 of recordConversion (README.md). The statement
// that writes the referral also loads its program's rules for this conversion, so the reward
// engine needs no further round trip for them.

/** What of the conversion being recorded the referral writes need. */
export interface ReferredConversion {
  type: ConversionType;
  referredExternalId: string;
  referredEmail: string | null;
  occurredAt: Date;
  /** The conversion's metadata: a referral it creates starts with it. */
  metadata: Record<string, unknown>;
  /** The referred person's hashed IP, for the fraud rules (null: not given). */
  ipHash: string | null;
}

export interface Outcome {
  discard: DiscardReason | null;
  programId: string | null;
  partnerId: string | null;
  referralId: string | null;
  linkId: string | null;
  couponId: string | null;
  clickRowId: string | null;
  /** Set when accepted: what the reward engine needs. */
  rewardable?: {
    referral: { id: string; createdAt: Date; isNew: boolean };
    program: { id: string; holdDays: number };
    /** The program's rules for this conversion, with the enrollment's overrides. */
    rules: RuleRow[];
    /** What the program's fraud rules decide on (review/fraud-rules.ts evaluateFraud). */
    fraud: FraudFacts;
  };
  /** An existing referral whose status this conversion changed (a `referral.status_changed` event). */
  referralChange?: { from: ReferralStatus; to: ReferralStatus };
}

const isPayment = (type: ConversionType) => type === 'PURCHASE' || type === 'SUBSCRIPTION';

/** The rule rows of a statement that LEFT JOINed rulesQuery (no rules: one row of NULLs). */
const rulesOf = (rows: ReadonlyArray<Partial<RuleRow>>): RuleRow[] =>
  rows.filter((row): row is RuleRow => row.id != null);

/**
 * Create or update the referral the decision calls for; what the conversion row records. The
 * statement that writes the referral also loads the rules of its program for this conversion.
 */
export async function applyDecision(
  tx: SqlTx,
  tenant: Tenant,
  input: ReferredConversion,
  decision: Decision,
  referred: Referred,
): Promise<Partial<Outcome> & { discard: DiscardReason | null }> {
  switch (decision.outcome) {
    case 'discard':
      return { discard: decision.reason, ...touchColumns(decision.touch) };
    case 'existing':
      return bindToExisting(tx, tenant, input, decision.referral, decision.discard);
    case 'rebind':
      return bindToExisting(tx, tenant, input, decision.referral, null, decision.touch);
    case 'new': {
      const { touch } = decision;
      const status: ReferralStatus = decision.discard ? 'REJECTED' : isPayment(input.type) ? 'CONVERTED' : 'PENDING';
      const rows = await tx.sql<Partial<RuleRow> & { createdId: string | null; referralCreatedAt: Date | null }>`
        WITH created AS (
          INSERT INTO "Referral" ("id", "workspaceId", "mode", "programId", "partnerId", "linkId", "clickId", "externalId", "email",
                                  "status", "metadata", "createdAt", "convertedAt")
          VALUES (${uuidv7()}::uuid, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${touch.program.id}::uuid, ${touch.partner.id}::uuid,
                  ${touch.linkId}::uuid, ${touch.click?.rowId ?? null}::uuid, ${input.referredExternalId}, ${input.referredEmail},
                  ${status}::"ReferralStatus", ${JSON.stringify(input.metadata)}::jsonb, ${input.occurredAt}::timestamptz, ${status === 'CONVERTED' ? input.occurredAt : null}::timestamptz)
          ON CONFLICT DO NOTHING
          RETURNING "id", "createdAt"
        )
        SELECT c."id" AS "createdId", c."createdAt" AS "referralCreatedAt", rule.*
          FROM (SELECT 1) AS head
          LEFT JOIN created c ON true
          LEFT JOIN (${rulesQuery(tenant, touch.program.id, input.type, touch.enrollment.id)}) AS rule ON true`;
      const { createdId, referralCreatedAt } = rows[0]!;
      if (createdId === null) {
        // Someone else bound them first (a concurrent conversion, committed meanwhile): first touch,
        // unless the program is LAST_TOUCH.
        const existing = await loadReferral(tx, tenant, input.referredExternalId, touch.program.id, {
          ipHash: input.ipHash,
          occurredAt: input.occurredAt,
        });
        if (!existing) throw new Error('referral conflict without a stored referral');
        // LAST_TOUCH: this conversion's touch (it passed every check) takes the person over.
        if (
          !decision.discard &&
          existing.program.attributionModel === 'LAST_TOUCH' &&
          existing.status !== 'REJECTED' &&
          existing.partner.id !== touch.partner.id
        )
          return bindToExisting(tx, tenant, input, existing, null, touch);
        return bindToExisting(tx, tenant, input, existing, checkReferral(existing, referred));
      }
      return {
        discard: decision.discard,
        ...touchColumns(touch),
        referralId: createdId,
        rewardable: decision.discard
          ? undefined
          : {
              referral: { id: createdId, createdAt: referralCreatedAt!, isNew: true },
              program: { id: touch.program.id, holdDays: touch.program.holdDays },
              rules: rulesOf(rows),
              fraud: {
                rules: touch.program.fraudRules,
                partner: touch.partner,
                referredEmail: input.referredEmail,
                ...touch.fraud,
              },
            },
      };
    }
  }
}

function touchColumns(touch: TouchFacts | null): Partial<Outcome> {
  if (!touch) return {};
  return {
    programId: touch.program.id,
    partnerId: touch.partner.id,
    linkId: touch.linkId,
    couponId: touch.couponId,
    clickRowId: touch.click?.rowId ?? null,
  };
}

/**
 * A conversion of a person who already has a referral. The referral row is updated (and so
 * locked until commit) before any reward is evaluated: conversions of one referral are rewarded
 * one at a time, each seeing the rewards of the ones before it. With `rebindTo` (LAST_TOUCH), the
 * same update moves the referral to that touch's partner, link and click — unless it was
 * REJECTED meanwhile — and the conversion is rewarded under that partner's enrollment; rewards
 * already created stay with the partners that earned them.
 */
async function bindToExisting(
  tx: SqlTx,
  tenant: Tenant,
  input: ReferredConversion,
  referral: ReferralFacts,
  discard: DiscardReason | null,
  rebindTo?: TouchFacts,
): Promise<Partial<Outcome> & { discard: DiscardReason | null }> {
  const columns = rebindTo
    ? { ...touchColumns(rebindTo), referralId: referral.id }
    : {
        programId: referral.program.id,
        partnerId: referral.partner.id,
        referralId: referral.id,
        linkId: referral.linkId,
        couponId: null,
      };
  const enrollmentId = rebindTo ? rebindTo.enrollment.id : referral.enrollment!.id;
  const rebind = rebindTo !== undefined;
  if (discard) {
    // A self-referral found only now (e.g. the email came with a later event) rejects the referral.
    if (discard === 'SELF_REFERRAL') {
      // The status before, read under the row lock (the latest committed one), for the event.
      const [changed] = await tx.sql<{ from: ReferralStatus }>`
        WITH prior AS (
          SELECT "status" AS "priorStatus" FROM "Referral"
           WHERE "id" = ${referral.id}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
             FOR UPDATE
        )
        UPDATE "Referral" r SET "status" = 'REJECTED'
          FROM prior
         WHERE r."id" = ${referral.id}::uuid AND r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode"
           AND prior."priorStatus" <> 'REJECTED'
        RETURNING prior."priorStatus"::text AS "from"`;
      if (changed) return { discard, ...columns, referralChange: { from: changed.from, to: 'REJECTED' } };
    }
    return { discard, ...columns };
  }
  const payment = isPayment(input.type);
  const rows = await tx.sql<
    Partial<RuleRow> & {
      lockedStatus: ReferralStatus | null;
      priorStatus: ReferralStatus | null;
      referralCreatedAt: Date | null;
    }
  >`
    WITH prior AS (
      -- The status before this conversion, read under the row lock (the latest committed one).
      SELECT "status" AS "priorStatus" FROM "Referral"
       WHERE "id" = ${referral.id}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
         FOR UPDATE
    ),
    locked AS (
      UPDATE "Referral" r
         SET "status" = CASE WHEN ${payment} AND r."status" = 'PENDING' THEN 'CONVERTED'::"ReferralStatus" ELSE r."status" END,
             "convertedAt" = CASE WHEN ${payment} THEN COALESCE(r."convertedAt", ${input.occurredAt}::timestamptz) ELSE r."convertedAt" END,
             "email" = COALESCE(r."email", ${input.referredEmail}),
             "partnerId" = CASE WHEN ${rebind} AND r."status" <> 'REJECTED' THEN ${rebindTo?.partner.id ?? null}::uuid ELSE r."partnerId" END,
             "linkId" = CASE WHEN ${rebind} AND r."status" <> 'REJECTED' THEN ${rebindTo?.linkId ?? null}::uuid ELSE r."linkId" END,
             "clickId" = CASE WHEN ${rebind} AND r."status" <> 'REJECTED' THEN ${rebindTo?.click?.rowId ?? null}::uuid ELSE r."clickId" END
        FROM prior
       WHERE r."id" = ${referral.id}::uuid AND r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode"
       RETURNING r."status"::text AS "status", r."createdAt", prior."priorStatus"::text AS "priorStatus"
    )
    SELECT l."status" AS "lockedStatus", l."priorStatus", l."createdAt" AS "referralCreatedAt", rule.*
      FROM (SELECT 1) AS head
      LEFT JOIN locked l ON true
      LEFT JOIN (${rulesQuery(tenant, referral.program.id, input.type, enrollmentId)}) AS rule ON true`;
  const { lockedStatus, priorStatus, referralCreatedAt } = rows[0]!;
  if (lockedStatus === null) throw new Error('referral vanished');
  const referralChange =
    priorStatus !== null && priorStatus !== lockedStatus ? { from: priorStatus, to: lockedStatus } : undefined;
  // Rejected meanwhile by a concurrent transaction (whose commit we waited for).
  if (lockedStatus === 'REJECTED')
    return {
      discard: 'REFERRAL_REJECTED',
      ...columns,
      partnerId: referral.partner.id,
      linkId: referral.linkId,
      couponId: null,
      clickRowId: null,
    };
  return {
    discard: null,
    ...columns,
    referralChange,
    rewardable: {
      referral: { id: referral.id, createdAt: referralCreatedAt!, isNew: false },
      program: { id: referral.program.id, holdDays: referral.program.holdDays },
      rules: rulesOf(rows),
      // The partner the conversion goes to (LAST_TOUCH: the one it moves to), and the facts loaded for them.
      fraud: {
        rules: referral.program.fraudRules,
        partner: rebindTo?.partner ?? referral.partner,
        referredEmail: input.referredEmail ?? referral.email,
        ...(rebindTo?.fraud ?? referral.fraud),
      },
    },
  };
}
