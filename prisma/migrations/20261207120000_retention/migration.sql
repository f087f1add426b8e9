-- Retention (src/modules/events/retention.ts): old events and finished webhook deliveries are
-- deleted in small batches by a background job.

-- The retention horizon per workspace and mode: events up to it are gone, so a cursor before it
-- has expired. A row of its own, locked by the job (FOR UPDATE SKIP LOCKED: one job per tenant at
-- a time), rather than a column of EventCounter, whose row every commit with events locks.
CREATE TABLE "EventRetention" (
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "horizon" BIGINT NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "EventRetention_pkey" PRIMARY KEY ("workspaceId","mode")
);

ALTER TABLE "EventRetention" ADD CONSTRAINT "EventRetention_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Deleting an event finds its webhook deliveries by event (the foreign key's cascade, and the job's
-- check that none is left): without this index, a scan of every delivery per deleted event.
CREATE INDEX IF NOT EXISTS "WebhookDelivery_eventId_idx" ON "WebhookDelivery"("eventId");

-- Finished deliveries by age. (IF NOT EXISTS: a large installation may build both beforehand,
-- CONCURRENTLY; see docs/existing-installations.md.)
CREATE INDEX IF NOT EXISTS "WebhookDelivery_status_updatedAt_idx" ON "WebhookDelivery"("status", "updatedAt");
