-- Review queue and fraud rules (issue 15, items 2-4; src/modules/review/README.md).

-- A review item's state: OPEN while its rewards wait for a decision, then APPROVED or REJECTED.
CREATE TYPE "ReviewStatus" AS ENUM ('OPEN', 'APPROVED', 'REJECTED');

-- Fraud rules per program. The cheap checks are on by default (existing programs included): they
-- cost nothing when they do not trip (the email checks are pure; the same-IP check only runs for
-- a conversion that gives an IP). The velocity rule counts conversions, so it is off (null) until set.
ALTER TABLE "Program" ADD COLUMN "fraudSameIp" BOOLEAN NOT NULL DEFAULT true,
  ADD COLUMN "fraudEmailDomain" BOOLEAN NOT NULL DEFAULT true,
  ADD COLUMN "fraudDisposableEmail" BOOLEAN NOT NULL DEFAULT true,
  ADD COLUMN "fraudMaxConversionsPerHour" INTEGER;
ALTER TABLE "Program" ADD CONSTRAINT "Program_fraudMaxConversionsPerHour_check"
  CHECK ("fraudMaxConversionsPerHour" IS NULL OR "fraudMaxConversionsPerHour" BETWEEN 1 AND 100000);

-- The referred person's hashed IP (HMAC-SHA256 with the key clicks use, never the address) and
-- User-Agent as recordConversion was given them, and the fraud signals found ([{ type, detail }]).
-- Existing conversions: no IP, no signals.
ALTER TABLE "Conversion" ADD COLUMN "ipHash" TEXT,
  ADD COLUMN "userAgent" TEXT,
  ADD COLUMN "signals" JSONB NOT NULL DEFAULT '[]';
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_signals_check" CHECK (jsonb_typeof("signals") = 'array');

CREATE TABLE "ReviewItem" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "partnerId" UUID NOT NULL,
    "conversionId" UUID NOT NULL,
    "referralId" UUID,
    "status" "ReviewStatus" NOT NULL DEFAULT 'OPEN',
    "signals" JSONB NOT NULL DEFAULT '[]',
    "reason" TEXT,
    "decidedAt" TIMESTAMPTZ(3),
    "actor" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ReviewItem_pkey" PRIMARY KEY ("id"),
    -- Decided exactly when it is no longer OPEN.
    CONSTRAINT "ReviewItem_decidedAt_check" CHECK (("status" = 'OPEN') = ("decidedAt" IS NULL)),
    CONSTRAINT "ReviewItem_signals_check" CHECK (jsonb_typeof("signals") = 'array')
);

CREATE UNIQUE INDEX "ReviewItem_id_workspaceId_mode_key" ON "ReviewItem"("id", "workspaceId", "mode");
-- One review item per conversion: a replay or a second flag cannot open another.
CREATE UNIQUE INDEX "ReviewItem_conversionId_workspaceId_mode_key" ON "ReviewItem"("conversionId", "workspaceId", "mode");
-- reviewQueue: a tenant's items in a status in id order, with or without a program.
CREATE INDEX "ReviewItem_workspaceId_mode_status_id_idx" ON "ReviewItem"("workspaceId", "mode", "status", "id");
CREATE INDEX "ReviewItem_workspaceId_mode_status_programId_id_idx" ON "ReviewItem"("workspaceId", "mode", "status", "programId", "id");
-- Banning a partner closes their OPEN items.
CREATE INDEX "ReviewItem_partnerId_status_idx" ON "ReviewItem"("partnerId", "status");

ALTER TABLE "ReviewItem" ADD CONSTRAINT "ReviewItem_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ReviewItem" ADD CONSTRAINT "ReviewItem_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ReviewItem" ADD CONSTRAINT "ReviewItem_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ReviewItem" ADD CONSTRAINT "ReviewItem_conversionId_workspaceId_mode_fkey" FOREIGN KEY ("conversionId", "workspaceId", "mode") REFERENCES "Conversion"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "ReviewItem" ADD CONSTRAINT "ReviewItem_referralId_workspaceId_mode_fkey" FOREIGN KEY ("referralId", "workspaceId", "mode") REFERENCES "Referral"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- A reward's review item, and whether it is held by it: true exactly while the item is OPEN. The
-- approval job skips held rewards (`AND NOT "held"` after its (status, approveAfter) index
-- condition: held rewards are few), updateRewardStatus refuses them.
ALTER TABLE "Reward" ADD COLUMN "reviewItemId" UUID,
  ADD COLUMN "held" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_held_check" CHECK (NOT "held" OR "reviewItemId" IS NOT NULL);
CREATE INDEX "Reward_reviewItemId_idx" ON "Reward"("reviewItemId");
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_reviewItemId_workspaceId_mode_fkey" FOREIGN KEY ("reviewItemId", "workspaceId", "mode") REFERENCES "ReviewItem"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;
