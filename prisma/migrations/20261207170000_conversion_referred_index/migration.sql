-- conversions(filter: { referredExternalId }) (issue 14, item 2): one person's conversions across
-- programs without scanning the tenant's. On a large existing table, build it first with
-- CREATE INDEX CONCURRENTLY (same name) and this statement does nothing.
CREATE INDEX IF NOT EXISTS "Conversion_workspaceId_mode_referredExternalId_idx" ON "Conversion"("workspaceId", "mode", "referredExternalId");
