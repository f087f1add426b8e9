-- Referral.rewards (issue 14): a reward's referred person, kept on the reward itself (it is its
-- conversion's referral, which never changes), so a page of referrals loads its rewards in one
-- statement through a relation instead of one join per referral.
ALTER TABLE "Reward" ADD COLUMN "referralId" UUID;

-- Existing rewards: their conversion's referral (every rewarded conversion has one).
UPDATE "Reward" w SET "referralId" = c."referralId"
  FROM "Conversion" c
 WHERE c."id" = w."conversionId" AND w."referralId" IS NULL AND c."referralId" IS NOT NULL;

CREATE INDEX IF NOT EXISTS "Reward_referralId_id_idx" ON "Reward"("referralId", "id");

ALTER TABLE "Reward" ADD CONSTRAINT "Reward_referralId_workspaceId_mode_fkey" FOREIGN KEY ("referralId", "workspaceId", "mode") REFERENCES "Referral"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;
