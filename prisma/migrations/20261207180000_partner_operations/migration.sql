-- Partner and program operations (issue 14).

-- metadata: the integrator's own small JSON object (≤ 50 keys, ≤ 8 KiB, checked by the API) on
-- partners, referrals and conversions. Never null: an empty object when none was given.
--
-- Lists filter it by containment (`metadata @> '{"plan":"pro"}'`). Prisma cannot say `@>` of an
-- object (its `array_contains` adds `jsonb_typeof(column) = 'array'`), but one-element arrays
-- contain each other exactly when their objects do, so each table also has "metadataMatch", a
-- generated `[metadata]` (`'[]' || metadata`: metadata is always an object) that Prisma filters with `array_contains: [filter]`. Its GIN index
-- (jsonb_path_ops: only @>, smaller than the default class) keeps such a filter an index scan
-- however many rows a tenant has. On a large existing table, build the indexes first with
-- CREATE INDEX CONCURRENTLY (same names) and these statements do nothing.
ALTER TABLE "Partner" ADD COLUMN "metadata" JSONB NOT NULL DEFAULT '{}';
ALTER TABLE "Referral" ADD COLUMN "metadata" JSONB NOT NULL DEFAULT '{}';
ALTER TABLE "Conversion" ADD COLUMN "metadata" JSONB NOT NULL DEFAULT '{}';
ALTER TABLE "Partner" ADD COLUMN "metadataMatch" JSONB GENERATED ALWAYS AS ('[]'::jsonb || "metadata") STORED;
ALTER TABLE "Referral" ADD COLUMN "metadataMatch" JSONB GENERATED ALWAYS AS ('[]'::jsonb || "metadata") STORED;
ALTER TABLE "Conversion" ADD COLUMN "metadataMatch" JSONB GENERATED ALWAYS AS ('[]'::jsonb || "metadata") STORED;
CREATE INDEX IF NOT EXISTS "Partner_metadataMatch_idx" ON "Partner" USING GIN ("metadataMatch" jsonb_path_ops);
CREATE INDEX IF NOT EXISTS "Referral_metadataMatch_idx" ON "Referral" USING GIN ("metadataMatch" jsonb_path_ops);
CREATE INDEX IF NOT EXISTS "Conversion_metadataMatch_idx" ON "Conversion" USING GIN ("metadataMatch" jsonb_path_ops);

-- Erasure (GDPR): when the partner's personal data was replaced by a tombstone.
ALTER TABLE "Partner" ADD COLUMN "erasedAt" TIMESTAMPTZ(3);

-- Applications: the questions a program asks ([{ key, label, required }]), and on an enrollment
-- the answers given, when it was applied for and reviewed, and why it was rejected.
ALTER TABLE "Program" ADD COLUMN "applicationQuestions" JSONB NOT NULL DEFAULT '[]';
ALTER TABLE "Enrollment" ADD COLUMN "answers" JSONB;
ALTER TABLE "Enrollment" ADD COLUMN "appliedAt" TIMESTAMPTZ(3);
ALTER TABLE "Enrollment" ADD COLUMN "reviewedAt" TIMESTAMPTZ(3);
ALTER TABLE "Enrollment" ADD COLUMN "rejectionReason" TEXT;
-- The workspace-wide "pending approval" list: enrollments by status across programs, oldest first.
CREATE INDEX IF NOT EXISTS "Enrollment_workspaceId_mode_status_createdAt_idx" ON "Enrollment"("workspaceId", "mode", "status", "createdAt");
