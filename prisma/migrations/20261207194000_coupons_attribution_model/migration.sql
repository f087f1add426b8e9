-- Coupons and the attribution model (issue 16, items 4 and 5).

-- FIRST_TOUCH (as before): a referred person stays with the first partner that brought them.
-- LAST_TOUCH: a conversion that arrives with another partner's click (inside the window), code
-- or coupon re-binds them to that partner from then on.
CREATE TYPE "AttributionModel" AS ENUM ('FIRST_TOUCH', 'LAST_TOUCH');
ALTER TABLE "Program" ADD COLUMN "attributionModel" "AttributionModel" NOT NULL DEFAULT 'FIRST_TOUCH';

-- A coupon: a code of the company's checkout tied to a partner in a program. recordConversion(
-- couponCode) attributes like a link code. Codes are unique per workspace and mode, ignoring case.
CREATE TABLE "Coupon" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "partnerId" UUID NOT NULL,
    "enrollmentId" UUID NOT NULL,
    "code" TEXT NOT NULL,
    "codeNormalized" TEXT NOT NULL,
    "disabledAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "Coupon_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "Coupon_workspaceId_mode_codeNormalized_key" ON "Coupon"("workspaceId", "mode", "codeNormalized");
CREATE UNIQUE INDEX "Coupon_id_workspaceId_mode_key" ON "Coupon"("id", "workspaceId", "mode");
CREATE INDEX "Coupon_partnerId_workspaceId_mode_idx" ON "Coupon"("partnerId", "workspaceId", "mode");
CREATE INDEX "Coupon_enrollmentId_workspaceId_mode_idx" ON "Coupon"("enrollmentId", "workspaceId", "mode");
ALTER TABLE "Coupon" ADD CONSTRAINT "Coupon_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Coupon" ADD CONSTRAINT "Coupon_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Coupon" ADD CONSTRAINT "Coupon_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Coupon" ADD CONSTRAINT "Coupon_enrollmentId_workspaceId_mode_fkey" FOREIGN KEY ("enrollmentId", "workspaceId", "mode") REFERENCES "Enrollment"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- The coupon a conversion was attributed through (no foreign key needed for reads; kept like linkId).
ALTER TABLE "Conversion" ADD COLUMN "couponId" UUID;
ALTER TABLE "Conversion" ADD CONSTRAINT "Conversion_couponId_workspaceId_mode_fkey" FOREIGN KEY ("couponId", "workspaceId", "mode") REFERENCES "Coupon"("id", "workspaceId", "mode") ON DELETE RESTRICT ON UPDATE CASCADE;
