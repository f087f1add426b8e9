import type { Reward } from '../../generated/prisma/client.js';
import type { ConversionType, RewardRecipient, TierMetric } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import { sql, type SqlFragment, type SqlTx } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';
import {
  evaluateRewards,
  needsPriorRewards,
  priorKey,
  type EngineOverride,
  type EngineRule,
  type PriorRewards,
  type SkippedRule,
} from './engine.js';
import { storedExplanation } from './explanation.js';

const DAY_MS = 86_400_000;

export interface RewardableConversion {
  id: string;
  type: ConversionType;
  amount: bigint | null;
  currency: string | null;
  occurredAt: Date;
  productId: string | null;
}

export interface DraftRewardsArgs {
  conversion: RewardableConversion;
  referral: {
    id: string;
    createdAt: Date;
    /** Created by this very transaction: it cannot have earned anything yet. */
    isNew: boolean;
  };
  program: { id: string; holdDays: number };
  /** The referring partner: the owner of every reward (REFERRED-recipient ones included). */
  partnerId: string;
  now: Date;
  /** The review item that holds the rewards (the conversion tripped a fraud rule); null: none. */
  reviewItemId?: string | null;
}

/** The enrollment's tier facts, as `rulesQuery` selects them on every row. */
export interface TierColumns {
  /** The metric of the program's tiers; null: the program has no tiers. */
  tierMetric: TierMetric | null;
  /** The program's currency when it has tiers (REVENUE thresholds are in its whole units). */
  tierCurrency: string | null;
  /** The enrollment's current tier, and its name (for the rewards' explanations). */
  tierId: string | null;
  tierName: string | null;
  /** The current tier's threshold, and the highest of the program's: a partner at the top cannot go up. */
  tierThreshold: number | null;
  tierTopThreshold: number | null;
}

/** A rule of the program with the enrollment's and its tier's overrides of it, as `rulesQuery` selects them. */
export type RuleRow = EngineRule &
  TierColumns & {
    overrideDisabled: boolean | null;
    overrideFixedAmount: bigint | string | null;
    overrideBasisPoints: number | null;
    tierOverrideDisabled: boolean | null;
    tierOverrideFixedAmount: bigint | string | null;
    tierOverrideBasisPoints: number | null;
  };

/** What a conversion needs to know of tiers: from any row of rulesQuery (each carries them). */
export type TierFacts = TierColumns;

/** The tier facts of rulesQuery's rows (there is always one row, with NULL rule columns when no rule applies). */
export function tierFactsOf(rows: ReadonlyArray<Partial<TierColumns>>): TierFacts {
  const row = rows[0];
  return {
    tierMetric: row?.tierMetric ?? null,
    tierCurrency: row?.tierCurrency ?? null,
    tierId: row?.tierId ?? null,
    tierName: row?.tierName ?? null,
    tierThreshold: row?.tierThreshold ?? null,
    tierTopThreshold: row?.tierTopThreshold ?? null,
  };
}

/**
 * The live rules of `programId` for a conversion of `trigger`, each with `enrollmentId`'s override
 * of it and its current tier's: a SELECT (columns: RuleRow) to splice into a statement of the
 * caller's (recordConversion loads them in the statement that writes the referral). At least one
 * row: without rules, one whose rule columns are NULL, so that the tier facts (TierColumns, the
 * same on every row) always arrive. Not ordered: see draftRewards.
 */
export function rulesQuery(
  tenant: Tenant,
  programId: string,
  trigger: ConversionType,
  enrollmentId: string,
): SqlFragment {
  return sql`
    SELECT f.*, rule.*
      FROM (
        SELECT m."metric" AS "tierMetric", m."currency" AS "tierCurrency", t."id" AS "tierId", t."name" AS "tierName",
               t."threshold" AS "tierThreshold", m."top" AS "tierTopThreshold"
          FROM (SELECT 1) AS one
          LEFT JOIN LATERAL (
            -- No tiers: one row of NULLs (an aggregate without GROUP BY).
            SELECT min(x."metric"::text) AS "metric", min(g."currency") AS "currency", max(x."threshold") AS "top"
              FROM "Tier" x JOIN "Program" g ON g."id" = x."programId"
             WHERE x."programId" = ${programId}::uuid AND x."workspaceId" = ${tenant.workspaceId}::uuid AND x."mode" = ${tenant.mode}::"Mode"
          ) AS m ON true
          LEFT JOIN "Enrollment" e
            ON e."id" = ${enrollmentId}::uuid AND e."workspaceId" = ${tenant.workspaceId}::uuid AND e."mode" = ${tenant.mode}::"Mode"
          LEFT JOIN "Tier" t ON t."id" = e."tierId" AND t."workspaceId" = e."workspaceId" AND t."mode" = e."mode"
      ) AS f
      LEFT JOIN LATERAL (
    SELECT r."id", r."lineageId", r."version", r."trigger"::text AS "trigger", r."recipient"::text AS "recipient",
           r."kind"::text AS "kind", r."amountType"::text AS "amountType", r."fixedAmount", r."fixedCurrency",
           r."percentageBasisPoints", r."maxRewardsPerReferral", r."durationDays", r."capAmount", r."capCurrency",
           r."archivedAt", r."supersededAt", r."productIds",
           o."disabled" AS "overrideDisabled", o."fixedAmount" AS "overrideFixedAmount",
           o."percentageBasisPoints" AS "overrideBasisPoints",
           tov."disabled" AS "tierOverrideDisabled", tov."fixedAmount" AS "tierOverrideFixedAmount",
           tov."percentageBasisPoints" AS "tierOverrideBasisPoints"
      FROM "RewardRule" r
      LEFT JOIN "RewardRuleOverride" o
        ON o."ruleLineageId" = r."lineageId" AND o."enrollmentId" = ${enrollmentId}::uuid
       AND o."workspaceId" = r."workspaceId" AND o."mode" = r."mode"
      LEFT JOIN "RewardRuleOverride" tov
        ON tov."ruleLineageId" = r."lineageId" AND tov."tierId" = f."tierId"
       AND tov."workspaceId" = r."workspaceId" AND tov."mode" = r."mode"
     WHERE r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode"
       AND r."programId" = ${programId}::uuid AND r."trigger"::text = ${trigger}
       AND r."supersededAt" IS NULL AND r."archivedAt" IS NULL
      ) AS rule ON true`;
}

/** What draftRewards decided: the rewards to write, and the rules that produced none, with why. */
export interface DraftedRewards {
  rewards: Reward[];
  /** For the conversion's `skippedRules` column (in rule order, by lineage). */
  skipped: SkippedRule[];
}

/**
 * The rewards an accepted conversion earns under `rules` (rulesQuery's rows), not yet written:
 * each CREATED, approveAfter = now + the program's hold days. For a referral that existed
 * before, what it already earned is read first (limits and caps): the caller must hold the
 * referral's row lock (it updates or inserts the referral first), so concurrent conversions of
 * one referral see each other's rewards. Write them with insertRewardsCtes, and `skipped` in the
 * conversion's row.
 */
export async function draftRewards(
  tx: SqlTx,
  tenant: Tenant,
  args: DraftRewardsArgs,
  ruleRows: readonly RuleRow[],
): Promise<DraftedRewards> {
  const { conversion, referral, program } = args;
  if (conversion.type === 'REFUND' || ruleRows.length === 0) return { rewards: [], skipped: [] };
  const sorted = [...ruleRows].sort((a, b) => (a.lineageId < b.lineageId ? -1 : a.lineageId > b.lineageId ? 1 : 0));
  const rules: EngineRule[] = sorted.map((row) => ({
    ...row,
    fixedAmount: toBigInt(row.fixedAmount),
    capAmount: toBigInt(row.capAmount),
  }));
  const overrides: EngineOverride[] = sorted
    .filter((row) => row.overrideDisabled !== null)
    .map((row) => ({
      ruleLineageId: row.lineageId,
      disabled: row.overrideDisabled === true,
      fixedAmount: toBigInt(row.overrideFixedAmount),
      percentageBasisPoints: row.overrideBasisPoints,
    }));
  const { tierName } = sorted[0]!;
  const tierOverrides: EngineOverride[] = sorted
    .filter((row) => row.tierOverrideDisabled !== null)
    .map((row) => ({
      ruleLineageId: row.lineageId,
      disabled: row.tierOverrideDisabled === true,
      fixedAmount: toBigInt(row.tierOverrideFixedAmount),
      percentageBasisPoints: row.tierOverrideBasisPoints,
    }));
  const prior =
    referral.isNew || !needsPriorRewards(rules)
      ? new Map<string, PriorRewards>()
      : await priorRewards(tx, tenant, referral.id, rules);

  const { rewards: drafts, skipped } = evaluateRewards({
    conversion,
    referralCreatedAt: referral.createdAt,
    rules,
    overrides,
    tier: tierName !== null ? { name: tierName, overrides: tierOverrides } : null,
    prior,
  });
  const approveAfter = new Date(args.now.getTime() + program.holdDays * DAY_MS);
  const rewards = drafts
    .map((draft) => ({
      id: uuidv7(),
      ...tenant,
      programId: program.id,
      partnerId: args.partnerId,
      conversionId: conversion.id,
      referralId: referral.id,
      ruleId: draft.ruleId,
      ruleLineageId: draft.ruleLineageId,
      recipient: draft.recipient,
      kind: draft.kind,
      status: 'CREATED' as const,
      amount: draft.amount,
      currency: draft.currency,
      sourceRewardId: null,
      payoutId: null,
      approveAfter,
      explanation: storedExplanation(draft.explanation),
      reviewItemId: args.reviewItemId ?? null,
      held: Boolean(args.reviewItemId),
      createdAt: args.now,
      updatedAt: args.now,
    }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  return { rewards, skipped };
}

/**
 * Writing `rewards` (from draftRewards) and their first status-history rows (null → CREATED), as
 * CTEs followed by a comma, to splice into a statement of the caller's WITH; nothing when there
 * are none. `actor` caused them: an api key id or "system:<job>". Rewards held by a review item
 * need the item written in the same statement (or before).
 */
export function insertRewardsCtes(tenant: Tenant, rewards: readonly Reward[], actor: string): SqlFragment {
  if (rewards.length === 0) return sql.empty;
  const column = <K extends keyof Reward>(key: K) => rewards.map((reward) => reward[key]);
  const { programId, partnerId, conversionId, referralId, approveAfter, createdAt, reviewItemId, held } = rewards[0]!;
  return sql`
    created_rewards AS (
      INSERT INTO "Reward" ("id", "workspaceId", "mode", "programId", "partnerId", "conversionId", "referralId", "ruleId", "ruleLineageId",
                            "recipient", "kind", "status", "amount", "currency", "approveAfter", "reviewItemId", "held", "explanation", "createdAt", "updatedAt")
      SELECT r.id, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${programId}::uuid, ${partnerId}::uuid, ${conversionId}::uuid, ${referralId}::uuid,
             r."ruleId", r."ruleLineageId", r.recipient::"RewardRecipient", r.kind::"RewardKind", 'CREATED', r.amount, r.currency,
             ${approveAfter}::timestamptz, ${reviewItemId}::uuid, ${held}, r.explanation::jsonb, ${createdAt}::timestamptz, ${createdAt}::timestamptz
        FROM unnest(${column('id')}::uuid[], ${column('ruleId')}::uuid[], ${column('ruleLineageId')}::uuid[], ${column('recipient')}::text[],
                    ${column('kind')}::text[], ${column('amount')}::bigint[], ${column('currency')}::text[],
                    ${rewards.map((reward) => (reward.explanation === null ? null : JSON.stringify(reward.explanation)))}::text[])
               AS r(id, "ruleId", "ruleLineageId", recipient, kind, amount, currency, explanation)
      RETURNING "id"
    ),
    reward_history AS (
      INSERT INTO "RewardStatusChange" ("id", "workspaceId", "mode", "rewardId", "fromStatus", "toStatus", "reason", "actor", "createdAt")
      SELECT h.id, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", h."rewardId", NULL, 'CREATED',
             'Created by a reward rule for an accepted conversion.', ${actor}, ${createdAt}::timestamptz
        FROM unnest(${rewards.map(() => uuidv7())}::uuid[], ${column('id')}::uuid[]) AS h(id, "rewardId")
        JOIN created_rewards c ON c."id" = h."rewardId"
      RETURNING 1
    ),`;
}

/**
 * What the referral already earned per (lineage, recipient) under these rules: its conversions'
 * rewards and their clawbacks, neither CANCELED nor REJECTED. Found by the reward's own
 * `referralId` (its conversion's referral, written with it) through `Reward_referralId_id_idx`,
 * the only condition of the materialized `mine`: a table planned while (nearly) empty gives every
 * index the same estimate, and the plan picked whichever matched more conditions — the tenant's
 * conversions, then the tenant's rewards (`workspaceId, mode, createdAt`) or every reward that is
 * not a clawback (`sourceRewardId IS NULL`), a walk that grew with every conversion of the
 * conversions bench (0.2 to 100 ms within seconds). The tenant's conditions are checked on the
 * referral's rows (they hold anyway: the reward's foreign key to its referral includes them).
 */
async function priorRewards(
  tx: SqlTx,
  tenant: Tenant,
  referralId: string,
  rules: readonly EngineRule[],
): Promise<Map<string, PriorRewards>> {
  const lineages = [...new Set(rules.map((r) => r.lineageId))];
  const rows = await tx.sql<{
    lineageId: string;
    recipient: RewardRecipient;
    currency: string;
    count: bigint | number | string;
    total: bigint | string;
  }>`
    WITH mine AS MATERIALIZED (
      SELECT w."id", w."workspaceId", w."mode", w."ruleLineageId", w."recipient", w."currency", w."amount", w."status", w."sourceRewardId"
        FROM "Reward" w
       WHERE w."referralId" = ${referralId}::uuid
    ),
    earned AS (
      SELECT w."id", w."ruleLineageId", w."recipient", w."currency", w."amount", w."status"
        FROM mine w
       WHERE w."workspaceId" = ${tenant.workspaceId}::uuid AND w."mode" = ${tenant.mode}::"Mode"
         AND w."ruleLineageId" = ANY(${lineages}::uuid[]) AND w."sourceRewardId" IS NULL
    )
    SELECT x."ruleLineageId" AS "lineageId", x."recipient"::text AS "recipient", x."currency",
           count(*) FILTER (WHERE x."clawback" = false) AS "count", sum(x."amount")::text AS "total"
      FROM (
        SELECT e."ruleLineageId", e."recipient", e."currency", e."amount", false AS "clawback" FROM earned e
         WHERE e."status" NOT IN ('CANCELED', 'REJECTED')
        UNION ALL
        SELECT e."ruleLineageId", e."recipient", k."currency", k."amount", true AS "clawback"
          FROM "Reward" k JOIN earned e ON e."id" = k."sourceRewardId"
         WHERE k."status" NOT IN ('CANCELED', 'REJECTED')
      ) x
     GROUP BY x."ruleLineageId", x."recipient", x."currency"`;
  const prior = new Map<string, { count: number; totals: Map<string, bigint> }>();
  for (const row of rows) {
    const key = priorKey(row.lineageId, row.recipient);
    const entry = prior.get(key) ?? { count: 0, totals: new Map<string, bigint>() };
    entry.count += Number(row.count);
    entry.totals.set(row.currency, (entry.totals.get(row.currency) ?? 0n) + BigInt(row.total));
    prior.set(key, entry);
  }
  return prior;
}

function toBigInt(value: bigint | string | number | null): bigint | null {
  return value === null ? null : BigInt(value);
}
