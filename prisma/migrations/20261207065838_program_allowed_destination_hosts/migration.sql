-- AlterTable
ALTER TABLE "Program" ADD COLUMN     "allowedDestinationHosts" TEXT[] DEFAULT ARRAY[]::TEXT[];

-- Mirrors the service's limit (program.service.ts, ALLOWED_HOSTS_MAX); Prisma does not model checks.
ALTER TABLE "Program"
  ADD CONSTRAINT "Program_allowedDestinationHosts_check" CHECK (cardinality("allowedDestinationHosts") <= 50);
