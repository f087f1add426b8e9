-- CSV exports (src/modules/export): each table is read page after page in (time, id) order,
-- `WHERE (time, id) > (last sent) ORDER BY time, id LIMIT 1000`. With indexes ending in (time, id)
-- every page is a range of the index read in order, whatever the planner's statistics say; with
-- (…, time) alone a page may sort every remaining row of the period (seen right after a bulk
-- insert, before ANALYZE: 100 000 conversions took 15–22 s instead of about 2), and payouts and
-- ledger entries had no index by tenant and time at all. The indexes on (…, time) become
-- (…, time, id): the same queries use them, and they cost no more to write.
-- (IF [NOT] EXISTS: a large installation may build them beforehand, CONCURRENTLY; see
-- docs/existing-installations.md.)
DROP INDEX IF EXISTS "Conversion_workspaceId_mode_occurredAt_idx";
CREATE INDEX IF NOT EXISTS "Conversion_workspaceId_mode_occurredAt_id_idx" ON "Conversion"("workspaceId", "mode", "occurredAt", "id");

DROP INDEX IF EXISTS "Conversion_programId_occurredAt_idx";
CREATE INDEX IF NOT EXISTS "Conversion_programId_occurredAt_id_idx" ON "Conversion"("programId", "occurredAt", "id");

DROP INDEX IF EXISTS "Reward_workspaceId_mode_createdAt_idx";
CREATE INDEX IF NOT EXISTS "Reward_workspaceId_mode_createdAt_id_idx" ON "Reward"("workspaceId", "mode", "createdAt", "id");

CREATE INDEX IF NOT EXISTS "Payout_workspaceId_mode_createdAt_id_idx" ON "Payout"("workspaceId", "mode", "createdAt", "id");

CREATE INDEX IF NOT EXISTS "LedgerEntry_workspaceId_mode_createdAt_id_idx" ON "LedgerEntry"("workspaceId", "mode", "createdAt", "id");
