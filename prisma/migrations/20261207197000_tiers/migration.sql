-- Tiers and explained rewards (issue 16, items 2 and 6).

-- A program's tiers: a partner whose converted referrals (or revenue, in whole units of the
-- program's currency) over the trailing "periodDays" reach "threshold" is in the highest such
-- tier. The rules (one metric per program, evaluation on conversions and daily) are in
-- src/modules/tier/README.md.
CREATE TYPE "TierMetric" AS ENUM ('CONVERTED_REFERRALS', 'REVENUE');

CREATE TABLE "Tier" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "metric" "TierMetric" NOT NULL,
    "threshold" INTEGER NOT NULL,
    "periodDays" INTEGER NOT NULL DEFAULT 90,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Tier_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "Tier_threshold_check" CHECK ("threshold" >= 1),
    CONSTRAINT "Tier_periodDays_check" CHECK ("periodDays" BETWEEN 1 AND 3650),
    CONSTRAINT "Tier_name_check" CHECK (char_length("name") BETWEEN 1 AND 100)
);

CREATE UNIQUE INDEX "Tier_id_workspaceId_mode_key" ON "Tier"("id", "workspaceId", "mode");
CREATE UNIQUE INDEX "Tier_programId_threshold_key" ON "Tier"("programId", "threshold");
CREATE INDEX "Tier_programId_workspaceId_mode_idx" ON "Tier"("programId", "workspaceId", "mode");

ALTER TABLE "Tier" ADD CONSTRAINT "Tier_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Tier" ADD CONSTRAINT "Tier_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- A tier's rule overrides live beside the enrollments' ones: an override belongs to exactly one
-- of an enrollment or a tier.
ALTER TABLE "RewardRuleOverride" ALTER COLUMN "enrollmentId" DROP NOT NULL;
ALTER TABLE "RewardRuleOverride" ADD COLUMN "tierId" UUID;
ALTER TABLE "RewardRuleOverride"
  ADD CONSTRAINT "RewardRuleOverride_owner_check" CHECK (("enrollmentId" IS NULL) <> ("tierId" IS NULL));
CREATE UNIQUE INDEX "RewardRuleOverride_tierId_ruleLineageId_key" ON "RewardRuleOverride"("tierId", "ruleLineageId");
ALTER TABLE "RewardRuleOverride" ADD CONSTRAINT "RewardRuleOverride_tierId_workspaceId_mode_fkey" FOREIGN KEY ("tierId", "workspaceId", "mode") REFERENCES "Tier"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- The partner's tier in the program, and since when. deleteTier moves its enrollments first, so
-- a tier in use cannot be deleted by accident (RESTRICT).
ALTER TABLE "Enrollment" ADD COLUMN "tierId" UUID;
ALTER TABLE "Enrollment" ADD COLUMN "tierSince" TIMESTAMPTZ(3);
CREATE INDEX "Enrollment_tierId_idx" ON "Enrollment"("tierId");
ALTER TABLE "Enrollment" ADD CONSTRAINT "Enrollment_tierId_workspaceId_mode_fkey" FOREIGN KEY ("tierId", "workspaceId", "mode") REFERENCES "Tier"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- A partner's referrals converted in a trailing period, for the evaluation on each conversion
-- (src/modules/tier/evaluate.ts): a range scan of the period, however many older referrals the
-- partner has (the (partnerId, …, status, createdAt) index would read those first). On a large
-- existing table, build it first with CREATE INDEX CONCURRENTLY (same name): this does nothing then.
CREATE INDEX IF NOT EXISTS "Referral_partnerId_programId_convertedAt_idx" ON "Referral"("partnerId", "programId", "convertedAt");

-- Why a reward's amount is what it is (reward/engine.ts): rule version, source, base, rate, cap
-- and a sentence. Rewards created before stay without one.
ALTER TABLE "Reward" ADD COLUMN "explanation" JSONB;
