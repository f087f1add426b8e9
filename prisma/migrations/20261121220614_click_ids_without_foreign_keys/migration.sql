-- DropForeignKey
ALTER TABLE "Conversion" DROP CONSTRAINT "Conversion_clickId_workspaceId_mode_fkey";

-- DropForeignKey
ALTER TABLE "Referral" DROP CONSTRAINT "Referral_clickId_workspaceId_mode_fkey";
