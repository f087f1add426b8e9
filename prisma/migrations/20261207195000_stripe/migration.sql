-- The Stripe integration (issue 19): src/modules/integration/README.md.
--
-- StripeIntegration: one Stripe webhook endpoint feeding one program of a workspace and mode; its
-- signing secret is sealed (AES-256-GCM, key derived from the installation secret), never shown.
-- StripeEventLog: every Stripe event received, once per (integration, Stripe event id): the unique
-- index is what makes a redelivered or concurrently delivered event apply once.
-- StripeLink: what the integration learned from earlier events, by Stripe id (the payment a charge
-- paid, a customer's external id, a promotion code's code …), so a later event can be tied to it.
-- StripeCharge: refunds applied per Stripe payment (Stripe sends running totals).
-- CreateEnum
CREATE TYPE "StripeCustomerKey" AS ENUM ('CUSTOMER_ID', 'CUSTOMER_METADATA');

-- CreateEnum
CREATE TYPE "StripeEventOutcome" AS ENUM ('RECORDED', 'REFUNDED', 'IGNORED', 'PARKED', 'FAILED');

-- CreateTable
CREATE TABLE "StripeIntegration" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "signingSecret" TEXT NOT NULL,
    "customerKey" "StripeCustomerKey" NOT NULL DEFAULT 'CUSTOMER_ID',
    "customerMetadataKey" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "disconnectedAt" TIMESTAMPTZ(3),

    CONSTRAINT "StripeIntegration_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "StripeEventLog" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "integrationId" UUID NOT NULL,
    "stripeEventId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "outcome" "StripeEventOutcome",
    "reason" TEXT,
    "conversionId" UUID,
    "receivedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "claimedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "payload" JSONB,
    "waitingFor" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "releaseAt" TIMESTAMPTZ(3),
    "refundOfId" UUID,
    "refundAmount" BIGINT,

    CONSTRAINT "StripeEventLog_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "StripeLink" (
    "integrationId" UUID NOT NULL,
    "stripeId" TEXT NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "value" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "StripeLink_pkey" PRIMARY KEY ("integrationId","stripeId")
);

-- CreateTable
CREATE TABLE "StripeCharge" (
    "integrationId" UUID NOT NULL,
    "chargeKey" TEXT NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "refundedTotal" BIGINT NOT NULL DEFAULT 0,
    "refundsSum" BIGINT NOT NULL DEFAULT 0,
    "applied" BIGINT NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "StripeCharge_pkey" PRIMARY KEY ("integrationId","chargeKey")
);

-- CreateIndex
CREATE INDEX "StripeIntegration_workspaceId_mode_createdAt_idx" ON "StripeIntegration"("workspaceId", "mode", "createdAt");

-- CreateIndex
CREATE INDEX "StripeIntegration_programId_workspaceId_mode_idx" ON "StripeIntegration"("programId", "workspaceId", "mode");

-- CreateIndex
CREATE UNIQUE INDEX "StripeIntegration_id_workspaceId_mode_key" ON "StripeIntegration"("id", "workspaceId", "mode");

-- CreateIndex
CREATE INDEX "StripeEventLog_integrationId_outcome_idx" ON "StripeEventLog"("integrationId", "outcome");

-- CreateIndex
CREATE INDEX "StripeEventLog_integrationId_receivedAt_idx" ON "StripeEventLog"("integrationId", "receivedAt");

-- CreateIndex
CREATE UNIQUE INDEX "StripeEventLog_integrationId_stripeEventId_key" ON "StripeEventLog"("integrationId", "stripeEventId");

-- CreateIndex
CREATE UNIQUE INDEX "StripeEventLog_id_workspaceId_mode_key" ON "StripeEventLog"("id", "workspaceId", "mode");

-- AddForeignKey
ALTER TABLE "StripeIntegration" ADD CONSTRAINT "StripeIntegration_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StripeIntegration" ADD CONSTRAINT "StripeIntegration_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StripeEventLog" ADD CONSTRAINT "StripeEventLog_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StripeEventLog" ADD CONSTRAINT "StripeEventLog_integrationId_workspaceId_mode_fkey" FOREIGN KEY ("integrationId", "workspaceId", "mode") REFERENCES "StripeIntegration"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StripeLink" ADD CONSTRAINT "StripeLink_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StripeLink" ADD CONSTRAINT "StripeLink_integrationId_workspaceId_mode_fkey" FOREIGN KEY ("integrationId", "workspaceId", "mode") REFERENCES "StripeIntegration"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StripeCharge" ADD CONSTRAINT "StripeCharge_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StripeCharge" ADD CONSTRAINT "StripeCharge_integrationId_workspaceId_mode_fkey" FOREIGN KEY ("integrationId", "workspaceId", "mode") REFERENCES "StripeIntegration"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;


-- Checks Prisma does not model (its diff leaves them alone).
ALTER TABLE "StripeIntegration" ADD CONSTRAINT "StripeIntegration_customerMetadataKey_check"
  CHECK (("customerKey" = 'CUSTOMER_METADATA') = ("customerMetadataKey" IS NOT NULL));
ALTER TABLE "StripeEventLog" ADD CONSTRAINT "StripeEventLog_refundAmount_check" CHECK ("refundAmount" IS NULL OR "refundAmount" > 0);
ALTER TABLE "StripeCharge" ADD CONSTRAINT "StripeCharge_amounts_check"
  CHECK ("refundedTotal" >= 0 AND "refundsSum" >= 0 AND "applied" >= 0);
