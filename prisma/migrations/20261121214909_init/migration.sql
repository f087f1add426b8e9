-- CreateEnum
CREATE TYPE "Mode" AS ENUM ('TEST', 'LIVE');

-- CreateEnum
CREATE TYPE "Role" AS ENUM ('ADMIN', 'READ_ONLY', 'PARTNER');

-- CreateEnum
CREATE TYPE "ProgramType" AS ENUM ('REFERRAL', 'AFFILIATE');

-- CreateEnum
CREATE TYPE "ProgramStatus" AS ENUM ('DRAFT', 'ACTIVE', 'PAUSED', 'ARCHIVED');

-- CreateEnum
CREATE TYPE "PartnerStatus" AS ENUM ('ACTIVE', 'INACTIVE', 'BANNED');

-- CreateEnum
CREATE TYPE "EnrollmentStatus" AS ENUM ('PENDING', 'APPROVED', 'REJECTED');

-- CreateEnum
CREATE TYPE "ConversionType" AS ENUM ('SIGNUP', 'PURCHASE', 'SUBSCRIPTION', 'REFUND');

-- CreateEnum
CREATE TYPE "ConversionStatus" AS ENUM ('ACCEPTED', 'DISCARDED');

-- CreateEnum
CREATE TYPE "ReferralStatus" AS ENUM ('PENDING', 'CONVERTED', 'REJECTED');

-- CreateEnum
CREATE TYPE "RewardStatus" AS ENUM ('CREATED', 'APPROVED', 'PROCESSED', 'CANCELED', 'REJECTED');

-- CreateEnum
CREATE TYPE "RewardKind" AS ENUM ('CASH', 'CREDIT', 'DISCOUNT');

-- CreateEnum
CREATE TYPE "RewardRecipient" AS ENUM ('REFERRER', 'REFERRED');

-- CreateEnum
CREATE TYPE "RewardTrigger" AS ENUM ('SIGNUP', 'PURCHASE', 'SUBSCRIPTION');

-- CreateEnum
CREATE TYPE "AmountType" AS ENUM ('FIXED', 'PERCENTAGE');

-- CreateEnum
CREATE TYPE "PayoutStatus" AS ENUM ('PENDING', 'PAID', 'FAILED');

-- CreateEnum
CREATE TYPE "LedgerEntryType" AS ENUM ('REWARD_APPROVED', 'REWARD_PROCESSED', 'CLAWBACK', 'MANUAL_CREDIT');

-- CreateEnum
CREATE TYPE "WebhookDeliveryStatus" AS ENUM ('PENDING', 'SUCCEEDED', 'FAILED');

-- CreateTable
CREATE TABLE "Setting" (
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Setting_pkey" PRIMARY KEY ("key")
);

-- CreateTable
CREATE TABLE "Workspace" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Workspace_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "name" TEXT NOT NULL,
    "role" "Role" NOT NULL,
    "accessKeyId" TEXT NOT NULL,
    "secretHash" TEXT NOT NULL,
    "secretHint" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMPTZ(3),
    "revokedAt" TIMESTAMPTZ(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RefreshToken" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "apiKeyId" UUID NOT NULL,
    "familyId" UUID NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,
    "usedAt" TIMESTAMPTZ(3),
    "revokedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "RefreshToken_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Program" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "name" TEXT NOT NULL,
    "type" "ProgramType" NOT NULL,
    "status" "ProgramStatus" NOT NULL DEFAULT 'ACTIVE',
    "currency" VARCHAR(3) NOT NULL,
    "attributionWindowDays" INTEGER NOT NULL DEFAULT 30,
    "holdDays" INTEGER NOT NULL DEFAULT 0,
    "allowSelfReferral" BOOLEAN NOT NULL DEFAULT false,
    "autoApprovePartners" BOOLEAN NOT NULL DEFAULT true,
    "destinationUrl" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Program_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RewardRule" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "lineageId" UUID NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "trigger" "RewardTrigger" NOT NULL,
    "recipient" "RewardRecipient" NOT NULL DEFAULT 'REFERRER',
    "kind" "RewardKind" NOT NULL,
    "amountType" "AmountType" NOT NULL,
    "fixedAmount" BIGINT,
    "fixedCurrency" VARCHAR(3),
    "percentageBasisPoints" INTEGER,
    "maxRewardsPerReferral" INTEGER,
    "durationDays" INTEGER,
    "capAmount" BIGINT,
    "capCurrency" VARCHAR(3),
    "archivedAt" TIMESTAMPTZ(3),
    "supersededAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "RewardRule_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Partner" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "externalId" TEXT NOT NULL,
    "name" TEXT,
    "email" TEXT,
    "status" "PartnerStatus" NOT NULL DEFAULT 'ACTIVE',
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Partner_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Enrollment" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "partnerId" UUID NOT NULL,
    "status" "EnrollmentStatus" NOT NULL DEFAULT 'PENDING',
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Enrollment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RewardRuleOverride" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "enrollmentId" UUID NOT NULL,
    "ruleId" UUID NOT NULL,
    "ruleLineageId" UUID NOT NULL,
    "fixedAmount" BIGINT,
    "percentageBasisPoints" INTEGER,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "RewardRuleOverride_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ReferralLink" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "enrollmentId" UUID NOT NULL,
    "programId" UUID NOT NULL,
    "partnerId" UUID NOT NULL,
    "code" TEXT NOT NULL,
    "codeNormalized" TEXT NOT NULL,
    "destinationUrl" TEXT,
    "isDefault" BOOLEAN NOT NULL DEFAULT false,
    "disabledAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ReferralLink_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Click" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "linkId" UUID NOT NULL,
    "programId" UUID NOT NULL,
    "partnerId" UUID NOT NULL,
    "occurredAt" TIMESTAMPTZ(3) NOT NULL,
    "ipHash" TEXT,
    "userAgent" TEXT,
    "referrerUrl" TEXT,
    "landingUrl" TEXT,
    "discarded" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "Click_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Referral" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "partnerId" UUID NOT NULL,
    "linkId" UUID,
    "clickId" UUID,
    "externalId" TEXT NOT NULL,
    "email" TEXT,
    "status" "ReferralStatus" NOT NULL DEFAULT 'PENDING',
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "convertedAt" TIMESTAMPTZ(3),

    CONSTRAINT "Referral_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Conversion" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "type" "ConversionType" NOT NULL,
    "status" "ConversionStatus" NOT NULL,
    "discardReason" TEXT,
    "idempotencyKey" TEXT NOT NULL,
    "referredExternalId" TEXT,
    "referredEmail" TEXT,
    "amount" BIGINT,
    "currency" VARCHAR(3),
    "occurredAt" TIMESTAMPTZ(3) NOT NULL,
    "programId" UUID,
    "partnerId" UUID,
    "referralId" UUID,
    "linkId" UUID,
    "clickId" UUID,
    "refundOfId" UUID,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Conversion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Reward" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "partnerId" UUID NOT NULL,
    "conversionId" UUID NOT NULL,
    "ruleId" UUID NOT NULL,
    "ruleLineageId" UUID NOT NULL,
    "recipient" "RewardRecipient" NOT NULL,
    "kind" "RewardKind" NOT NULL,
    "status" "RewardStatus" NOT NULL DEFAULT 'CREATED',
    "amount" BIGINT NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "sourceRewardId" UUID,
    "payoutId" UUID,
    "approveAfter" TIMESTAMPTZ(3) NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Reward_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "RewardStatusChange" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "rewardId" UUID NOT NULL,
    "fromStatus" "RewardStatus",
    "toStatus" "RewardStatus" NOT NULL,
    "reason" TEXT,
    "actor" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "RewardStatusChange_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LedgerEntry" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "partnerId" UUID NOT NULL,
    "type" "LedgerEntryType" NOT NULL,
    "amount" BIGINT NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "rewardId" UUID,
    "payoutId" UUID,
    "idempotencyKey" TEXT,
    "note" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LedgerEntry_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Payout" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "partnerId" UUID NOT NULL,
    "amount" BIGINT NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "status" "PayoutStatus" NOT NULL DEFAULT 'PENDING',
    "method" TEXT,
    "externalReference" TEXT,
    "paidAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "Payout_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "EventCounter" (
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "lastSequence" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "EventCounter_pkey" PRIMARY KEY ("workspaceId","mode")
);

-- CreateTable
CREATE TABLE "Event" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "sequence" BIGINT NOT NULL,
    "type" TEXT NOT NULL,
    "programId" UUID,
    "partnerId" UUID,
    "payload" JSONB NOT NULL,
    "occurredAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookEndpoint" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "url" TEXT NOT NULL,
    "description" TEXT,
    "eventTypes" TEXT[],
    "secret" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "disabledReason" TEXT,
    "consecutiveFailures" INTEGER NOT NULL DEFAULT 0,
    "lastSequence" BIGINT NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "WebhookEndpoint_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookDelivery" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "endpointId" UUID NOT NULL,
    "eventId" UUID NOT NULL,
    "status" "WebhookDeliveryStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMPTZ(3),
    "lastAttemptAt" TIMESTAMPTZ(3),
    "responseStatus" INTEGER,
    "lastError" TEXT,
    "durationMs" INTEGER,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "WebhookDelivery_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_accessKeyId_key" ON "ApiKey"("accessKeyId");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_secretHash_key" ON "ApiKey"("secretHash");

-- CreateIndex
CREATE INDEX "ApiKey_workspaceId_mode_createdAt_idx" ON "ApiKey"("workspaceId", "mode", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_id_workspaceId_mode_key" ON "ApiKey"("id", "workspaceId", "mode");

-- CreateIndex
CREATE UNIQUE INDEX "RefreshToken_tokenHash_key" ON "RefreshToken"("tokenHash");

-- CreateIndex
CREATE INDEX "RefreshToken_familyId_idx" ON "RefreshToken"("familyId");

-- CreateIndex
CREATE INDEX "RefreshToken_apiKeyId_workspaceId_mode_idx" ON "RefreshToken"("apiKeyId", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "Program_workspaceId_mode_status_createdAt_idx" ON "Program"("workspaceId", "mode", "status", "createdAt");

-- CreateIndex
CREATE INDEX "Program_workspaceId_mode_createdAt_idx" ON "Program"("workspaceId", "mode", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Program_id_workspaceId_mode_key" ON "Program"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "RewardRule_programId_workspaceId_mode_supersededAt_idx" ON "RewardRule"("programId", "workspaceId", "mode", "supersededAt");

-- CreateIndex
CREATE UNIQUE INDEX "RewardRule_id_workspaceId_mode_key" ON "RewardRule"("id", "workspaceId", "mode");

-- CreateIndex
CREATE UNIQUE INDEX "RewardRule_lineageId_version_key" ON "RewardRule"("lineageId", "version");

-- CreateIndex
CREATE INDEX "Partner_workspaceId_mode_status_createdAt_idx" ON "Partner"("workspaceId", "mode", "status", "createdAt");

-- CreateIndex
CREATE INDEX "Partner_workspaceId_mode_createdAt_idx" ON "Partner"("workspaceId", "mode", "createdAt");

-- CreateIndex
CREATE INDEX "Partner_workspaceId_mode_email_idx" ON "Partner"("workspaceId", "mode", "email");

-- CreateIndex
CREATE UNIQUE INDEX "Partner_workspaceId_mode_externalId_key" ON "Partner"("workspaceId", "mode", "externalId");

-- CreateIndex
CREATE UNIQUE INDEX "Partner_id_workspaceId_mode_key" ON "Partner"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "Enrollment_partnerId_workspaceId_mode_idx" ON "Enrollment"("partnerId", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "Enrollment_programId_workspaceId_mode_status_createdAt_idx" ON "Enrollment"("programId", "workspaceId", "mode", "status", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Enrollment_programId_partnerId_key" ON "Enrollment"("programId", "partnerId");

-- CreateIndex
CREATE UNIQUE INDEX "Enrollment_id_workspaceId_mode_key" ON "Enrollment"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "RewardRuleOverride_ruleId_workspaceId_mode_idx" ON "RewardRuleOverride"("ruleId", "workspaceId", "mode");

-- CreateIndex
CREATE UNIQUE INDEX "RewardRuleOverride_enrollmentId_ruleLineageId_key" ON "RewardRuleOverride"("enrollmentId", "ruleLineageId");

-- CreateIndex
CREATE UNIQUE INDEX "ReferralLink_codeNormalized_key" ON "ReferralLink"("codeNormalized");

-- CreateIndex
CREATE INDEX "ReferralLink_enrollmentId_workspaceId_mode_idx" ON "ReferralLink"("enrollmentId", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "ReferralLink_partnerId_workspaceId_mode_idx" ON "ReferralLink"("partnerId", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "ReferralLink_programId_workspaceId_mode_idx" ON "ReferralLink"("programId", "workspaceId", "mode");

-- CreateIndex
CREATE UNIQUE INDEX "ReferralLink_workspaceId_mode_codeNormalized_key" ON "ReferralLink"("workspaceId", "mode", "codeNormalized");

-- CreateIndex
CREATE UNIQUE INDEX "ReferralLink_id_workspaceId_mode_key" ON "ReferralLink"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "Click_linkId_occurredAt_idx" ON "Click"("linkId", "occurredAt");

-- CreateIndex
CREATE INDEX "Click_programId_occurredAt_idx" ON "Click"("programId", "occurredAt");

-- CreateIndex
CREATE INDEX "Click_partnerId_occurredAt_idx" ON "Click"("partnerId", "occurredAt");

-- CreateIndex
CREATE UNIQUE INDEX "Click_id_workspaceId_mode_key" ON "Click"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "Referral_workspaceId_mode_externalId_idx" ON "Referral"("workspaceId", "mode", "externalId");

-- CreateIndex
CREATE INDEX "Referral_partnerId_workspaceId_mode_status_createdAt_idx" ON "Referral"("partnerId", "workspaceId", "mode", "status", "createdAt");

-- CreateIndex
CREATE INDEX "Referral_programId_workspaceId_mode_status_createdAt_idx" ON "Referral"("programId", "workspaceId", "mode", "status", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Referral_workspaceId_mode_programId_externalId_key" ON "Referral"("workspaceId", "mode", "programId", "externalId");

-- CreateIndex
CREATE UNIQUE INDEX "Referral_id_workspaceId_mode_key" ON "Referral"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "Conversion_programId_occurredAt_idx" ON "Conversion"("programId", "occurredAt");

-- CreateIndex
CREATE INDEX "Conversion_partnerId_occurredAt_idx" ON "Conversion"("partnerId", "occurredAt");

-- CreateIndex
CREATE INDEX "Conversion_referralId_idx" ON "Conversion"("referralId");

-- CreateIndex
CREATE INDEX "Conversion_workspaceId_mode_occurredAt_idx" ON "Conversion"("workspaceId", "mode", "occurredAt");

-- CreateIndex
CREATE INDEX "Conversion_refundOfId_idx" ON "Conversion"("refundOfId");

-- CreateIndex
CREATE UNIQUE INDEX "Conversion_workspaceId_mode_idempotencyKey_key" ON "Conversion"("workspaceId", "mode", "idempotencyKey");

-- CreateIndex
CREATE UNIQUE INDEX "Conversion_id_workspaceId_mode_key" ON "Conversion"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "Reward_partnerId_status_createdAt_idx" ON "Reward"("partnerId", "status", "createdAt");

-- CreateIndex
CREATE INDEX "Reward_programId_status_createdAt_idx" ON "Reward"("programId", "status", "createdAt");

-- CreateIndex
CREATE INDEX "Reward_workspaceId_mode_createdAt_idx" ON "Reward"("workspaceId", "mode", "createdAt");

-- CreateIndex
CREATE INDEX "Reward_status_approveAfter_idx" ON "Reward"("status", "approveAfter");

-- CreateIndex
CREATE INDEX "Reward_payoutId_idx" ON "Reward"("payoutId");

-- CreateIndex
CREATE INDEX "Reward_sourceRewardId_idx" ON "Reward"("sourceRewardId");

-- CreateIndex
CREATE UNIQUE INDEX "Reward_conversionId_ruleLineageId_recipient_key" ON "Reward"("conversionId", "ruleLineageId", "recipient");

-- CreateIndex
CREATE UNIQUE INDEX "Reward_id_workspaceId_mode_key" ON "Reward"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "RewardStatusChange_rewardId_createdAt_idx" ON "RewardStatusChange"("rewardId", "createdAt");

-- CreateIndex
CREATE INDEX "LedgerEntry_partnerId_workspaceId_mode_currency_createdAt_idx" ON "LedgerEntry"("partnerId", "workspaceId", "mode", "currency", "createdAt");

-- CreateIndex
CREATE INDEX "LedgerEntry_payoutId_idx" ON "LedgerEntry"("payoutId");

-- CreateIndex
CREATE UNIQUE INDEX "LedgerEntry_rewardId_type_key" ON "LedgerEntry"("rewardId", "type");

-- CreateIndex
CREATE UNIQUE INDEX "LedgerEntry_workspaceId_mode_idempotencyKey_key" ON "LedgerEntry"("workspaceId", "mode", "idempotencyKey");

-- CreateIndex
CREATE INDEX "Payout_partnerId_workspaceId_mode_createdAt_idx" ON "Payout"("partnerId", "workspaceId", "mode", "createdAt");

-- CreateIndex
CREATE INDEX "Payout_workspaceId_mode_status_createdAt_idx" ON "Payout"("workspaceId", "mode", "status", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Payout_id_workspaceId_mode_key" ON "Payout"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "Event_workspaceId_mode_partnerId_sequence_idx" ON "Event"("workspaceId", "mode", "partnerId", "sequence");

-- CreateIndex
CREATE INDEX "Event_workspaceId_mode_type_sequence_idx" ON "Event"("workspaceId", "mode", "type", "sequence");

-- CreateIndex
CREATE UNIQUE INDEX "Event_workspaceId_mode_sequence_key" ON "Event"("workspaceId", "mode", "sequence");

-- CreateIndex
CREATE UNIQUE INDEX "Event_id_workspaceId_mode_key" ON "Event"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "WebhookEndpoint_workspaceId_mode_createdAt_idx" ON "WebhookEndpoint"("workspaceId", "mode", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookEndpoint_id_workspaceId_mode_key" ON "WebhookEndpoint"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "WebhookDelivery_endpointId_createdAt_idx" ON "WebhookDelivery"("endpointId", "createdAt");

-- CreateIndex
CREATE INDEX "WebhookDelivery_status_nextAttemptAt_idx" ON "WebhookDelivery"("status", "nextAttemptAt");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_endpointId_eventId_key" ON "WebhookDelivery"("endpointId", "eventId");

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RefreshToken" ADD CONSTRAINT "RefreshToken_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RefreshToken" ADD CONSTRAINT "RefreshToken_apiKeyId_workspaceId_mode_fkey" FOREIGN KEY ("apiKeyId", "workspaceId", "mode") REFERENCES "ApiKey"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Program" ADD CONSTRAINT "Program_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RewardRule" ADD CONSTRAINT "RewardRule_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RewardRule" ADD CONSTRAINT "RewardRule_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Partner" ADD CONSTRAINT "Partner_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Enrollment" ADD CONSTRAINT "Enrollment_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Enrollment" ADD CONSTRAINT "Enrollment_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Enrollment" ADD CONSTRAINT "Enrollment_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RewardRuleOverride" ADD CONSTRAINT "RewardRuleOverride_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RewardRuleOverride" ADD CONSTRAINT "RewardRuleOverride_enrollmentId_workspaceId_mode_fkey" FOREIGN KEY ("enrollmentId", "workspaceId", "mode") REFERENCES "Enrollment"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RewardRuleOverride" ADD CONSTRAINT "RewardRuleOverride_ruleId_workspaceId_mode_fkey" FOREIGN KEY ("ruleId", "workspaceId", "mode") REFERENCES "RewardRule"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ReferralLink" ADD CONSTRAINT "ReferralLink_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ReferralLink" ADD CONSTRAINT "ReferralLink_enrollmentId_workspaceId_mode_fkey" FOREIGN KEY ("enrollmentId", "workspaceId", "mode") REFERENCES "Enrollment"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ReferralLink" ADD CONSTRAINT "ReferralLink_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ReferralLink" ADD CONSTRAINT "ReferralLink_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Click" ADD CONSTRAINT "Click_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Click" ADD CONSTRAINT "Click_linkId_workspaceId_mode_fkey" FOREIGN KEY ("linkId", "workspaceId", "mode") REFERENCES "ReferralLink"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Click" ADD CONSTRAINT "Click_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Click" ADD CONSTRAINT "Click_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Referral" ADD CONSTRAINT "Referral_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Referral" ADD CONSTRAINT "Referral_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Referral" ADD CONSTRAINT "Referral_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Referral" ADD CONSTRAINT "Referral_linkId_workspaceId_mode_fkey" FOREIGN KEY ("linkId", "workspaceId", "mode") REFERENCES "ReferralLink"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Referral" ADD CONSTRAINT "Referral_clickId_workspaceId_mode_fkey" FOREIGN KEY ("clickId", "workspaceId", "mode") REFERENCES "Click"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_referralId_workspaceId_mode_fkey" FOREIGN KEY ("referralId", "workspaceId", "mode") REFERENCES "Referral"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_linkId_workspaceId_mode_fkey" FOREIGN KEY ("linkId", "workspaceId", "mode") REFERENCES "ReferralLink"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_clickId_workspaceId_mode_fkey" FOREIGN KEY ("clickId", "workspaceId", "mode") REFERENCES "Click"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_refundOfId_workspaceId_mode_fkey" FOREIGN KEY ("refundOfId", "workspaceId", "mode") REFERENCES "Conversion"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_conversionId_workspaceId_mode_fkey" FOREIGN KEY ("conversionId", "workspaceId", "mode") REFERENCES "Conversion"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_ruleId_workspaceId_mode_fkey" FOREIGN KEY ("ruleId", "workspaceId", "mode") REFERENCES "RewardRule"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_sourceRewardId_workspaceId_mode_fkey" FOREIGN KEY ("sourceRewardId", "workspaceId", "mode") REFERENCES "Reward"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Reward" ADD CONSTRAINT "Reward_payoutId_workspaceId_mode_fkey" FOREIGN KEY ("payoutId", "workspaceId", "mode") REFERENCES "Payout"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RewardStatusChange" ADD CONSTRAINT "RewardStatusChange_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "RewardStatusChange" ADD CONSTRAINT "RewardStatusChange_rewardId_workspaceId_mode_fkey" FOREIGN KEY ("rewardId", "workspaceId", "mode") REFERENCES "Reward"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LedgerEntry" ADD CONSTRAINT "LedgerEntry_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LedgerEntry" ADD CONSTRAINT "LedgerEntry_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LedgerEntry" ADD CONSTRAINT "LedgerEntry_rewardId_workspaceId_mode_fkey" FOREIGN KEY ("rewardId", "workspaceId", "mode") REFERENCES "Reward"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "LedgerEntry" ADD CONSTRAINT "LedgerEntry_payoutId_workspaceId_mode_fkey" FOREIGN KEY ("payoutId", "workspaceId", "mode") REFERENCES "Payout"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Payout" ADD CONSTRAINT "Payout_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Payout" ADD CONSTRAINT "Payout_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "EventCounter" ADD CONSTRAINT "EventCounter_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Event" ADD CONSTRAINT "Event_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Event" ADD CONSTRAINT "Event_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Event" ADD CONSTRAINT "Event_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookEndpoint" ADD CONSTRAINT "WebhookEndpoint_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_endpointId_workspaceId_mode_fkey" FOREIGN KEY ("endpointId", "workspaceId", "mode") REFERENCES "WebhookEndpoint"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_eventId_workspaceId_mode_fkey" FOREIGN KEY ("eventId", "workspaceId", "mode") REFERENCES "Event"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- Check constraints (not expressible in the Prisma schema; Prisma's diff leaves them alone).
ALTER TABLE "Program"
  ADD CONSTRAINT "Program_currency_check" CHECK ("currency" ~ '^[A-Z]{3}$'),
  ADD CONSTRAINT "Program_attributionWindowDays_check" CHECK ("attributionWindowDays" BETWEEN 1 AND 3650),
  ADD CONSTRAINT "Program_holdDays_check" CHECK ("holdDays" BETWEEN 0 AND 3650);

ALTER TABLE "RewardRule"
  ADD CONSTRAINT "RewardRule_version_check" CHECK ("version" >= 1),
  ADD CONSTRAINT "RewardRule_fixedAmount_check" CHECK ("fixedAmount" IS NULL OR "fixedAmount" > 0),
  ADD CONSTRAINT "RewardRule_fixedCurrency_check" CHECK ("fixedCurrency" IS NULL OR "fixedCurrency" ~ '^[A-Z]{3}$'),
  ADD CONSTRAINT "RewardRule_percentageBasisPoints_check" CHECK ("percentageBasisPoints" IS NULL OR "percentageBasisPoints" BETWEEN 1 AND 10000),
  ADD CONSTRAINT "RewardRule_maxRewardsPerReferral_check" CHECK ("maxRewardsPerReferral" IS NULL OR "maxRewardsPerReferral" > 0),
  ADD CONSTRAINT "RewardRule_durationDays_check" CHECK ("durationDays" IS NULL OR "durationDays" > 0),
  ADD CONSTRAINT "RewardRule_capAmount_check" CHECK ("capAmount" IS NULL OR "capAmount" > 0),
  ADD CONSTRAINT "RewardRule_capCurrency_check" CHECK (("capAmount" IS NULL) = ("capCurrency" IS NULL)),
  ADD CONSTRAINT "RewardRule_amount_check" CHECK (
    ("amountType" = 'FIXED' AND "fixedAmount" IS NOT NULL AND "fixedCurrency" IS NOT NULL AND "percentageBasisPoints" IS NULL)
    OR ("amountType" = 'PERCENTAGE' AND "percentageBasisPoints" IS NOT NULL AND "fixedAmount" IS NULL));

ALTER TABLE "RewardRuleOverride"
  ADD CONSTRAINT "RewardRuleOverride_fixedAmount_check" CHECK ("fixedAmount" IS NULL OR "fixedAmount" >= 0),
  ADD CONSTRAINT "RewardRuleOverride_percentageBasisPoints_check" CHECK ("percentageBasisPoints" IS NULL OR "percentageBasisPoints" BETWEEN 0 AND 10000);

ALTER TABLE "Partner"
  ADD CONSTRAINT "Partner_externalId_check" CHECK (char_length("externalId") BETWEEN 1 AND 255);

ALTER TABLE "ReferralLink"
  ADD CONSTRAINT "ReferralLink_code_check" CHECK (char_length("code") BETWEEN 3 AND 64 AND "codeNormalized" = lower("code"));

ALTER TABLE "Conversion"
  ADD CONSTRAINT "Conversion_amount_check" CHECK ("amount" IS NULL OR "amount" >= 0),
  ADD CONSTRAINT "Conversion_currency_check" CHECK (("amount" IS NULL) = ("currency" IS NULL) AND ("currency" IS NULL OR "currency" ~ '^[A-Z]{3}$')),
  ADD CONSTRAINT "Conversion_discardReason_check" CHECK (("status" = 'DISCARDED') = ("discardReason" IS NOT NULL));

ALTER TABLE "Reward"
  ADD CONSTRAINT "Reward_amount_check" CHECK (("sourceRewardId" IS NULL AND "amount" >= 0) OR ("sourceRewardId" IS NOT NULL AND "amount" <= 0)),
  ADD CONSTRAINT "Reward_currency_check" CHECK ("currency" ~ '^[A-Z]{3}$');

ALTER TABLE "LedgerEntry"
  ADD CONSTRAINT "LedgerEntry_amount_check" CHECK ("amount" <> 0),
  ADD CONSTRAINT "LedgerEntry_currency_check" CHECK ("currency" ~ '^[A-Z]{3}$');

ALTER TABLE "Payout"
  ADD CONSTRAINT "Payout_amount_check" CHECK ("amount" > 0),
  ADD CONSTRAINT "Payout_currency_check" CHECK ("currency" ~ '^[A-Z]{3}$');

ALTER TABLE "EventCounter"
  ADD CONSTRAINT "EventCounter_lastSequence_check" CHECK ("lastSequence" >= 0);

ALTER TABLE "Event"
  ADD CONSTRAINT "Event_sequence_check" CHECK ("sequence" > 0);

ALTER TABLE "WebhookEndpoint"
  ADD CONSTRAINT "WebhookEndpoint_consecutiveFailures_check" CHECK ("consecutiveFailures" >= 0),
  ADD CONSTRAINT "WebhookEndpoint_url_check" CHECK ("url" ~ '^https?://');

ALTER TABLE "WebhookDelivery"
  ADD CONSTRAINT "WebhookDelivery_attempts_check" CHECK ("attempts" >= 0);
