-- Raw clicks partitioned by time (issue 17): "Click" becomes a table partitioned by RANGE of
-- "occurredAt", one partition per UTC month ("Click_p202612" holds December 2026) and a DEFAULT
-- partition ("Click_default") for clicks of months without one, so no insert ever fails. Retention
-- (CLICK_RETENTION_DAYS) drops whole months instead of deleting rows; the rollups keep their counts
-- (Click has no DELETE trigger, and dropping a partition fires none).
--
-- A unique constraint of a partitioned table must include the partition key: the primary key is
-- ("id", "occurredAt") and the unused unique ("id", "workspaceId", "mode") goes (nothing references
-- it since 20261121220614_click_ids_without_foreign_keys). Click ids are UUIDv7s made once in Node,
-- so ids stay unique without a constraint of their own; a retried batch repeats (id, occurredAt)
-- and still does nothing (ON CONFLICT DO NOTHING). A click's "occurredAt" is its id's UUIDv7 time:
-- a lookup by id prunes to one partition when it also says `"occurredAt" = <the id's time>`.
--
-- The table is rebuilt in this migration's transaction: rows copied into the partitioned table
-- (partitions for every month that has clicks, the current month and the next three), the old
-- table dropped, keys, indexes, foreign keys and the rollup triggers made again on the new one
-- (the rollup functions take the row type of "Click", so they are made again too; the rollups
-- themselves are not touched: the copy goes around the triggers).

DROP TRIGGER "Click_rollup_insert" ON "Click";
DROP TRIGGER "Click_rollup_update" ON "Click";
DROP FUNCTION "Click_rollup"();
DROP FUNCTION "Click_rollup_delta"("Click", int);

ALTER TABLE "Click" RENAME TO "Click_unpartitioned";

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
    "discardReason" TEXT,
    "isUnique" BOOLEAN NOT NULL DEFAULT true
) PARTITION BY RANGE ("occurredAt");

CREATE TABLE "Click_default" PARTITION OF "Click" DEFAULT;

-- The month partition containing `month` (UTC), unless it exists: answers whether it made one.
-- Clicks of that month waiting in the DEFAULT partition are moved into it in this transaction
-- (PostgreSQL refuses to attach a range the DEFAULT partition has rows of); writes to the DEFAULT
-- partition wait meanwhile, so none can slip in between. Direct statements on partitions fire no
-- rollup trigger (those are statement triggers of "Click"): moving rows counts nothing twice.
CREATE FUNCTION "Click_partition_create"(month timestamptz) RETURNS boolean LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  lo timestamp := date_trunc('month', month AT TIME ZONE 'UTC');
  hi timestamp := date_trunc('month', month AT TIME ZONE 'UTC') + INTERVAL '1 month';
  name text := 'Click_p' || to_char(lo, 'YYYYMM');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = name AND c.relnamespace = current_schema()::regnamespace) THEN
    RETURN false;
  END IF;
  LOCK TABLE "Click_default" IN EXCLUSIVE MODE;
  EXECUTE format('CREATE TABLE %I (LIKE "Click" INCLUDING DEFAULTS)', name);
  EXECUTE format(
    'WITH moved AS (DELETE FROM "Click_default" WHERE "occurredAt" >= $1 AND "occurredAt" < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
    name) USING lo AT TIME ZONE 'UTC', hi AT TIME ZONE 'UTC';
  EXECUTE format('ALTER TABLE "Click" ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
    name, to_char(lo, 'YYYY-MM-DD"T"HH24:MI:SS"+00"'), to_char(hi, 'YYYY-MM-DD"T"HH24:MI:SS"+00"'));
  RETURN true;
END;
$$;

-- Drops the month partitions that end at or before `cutoff` (UTC); answers how many clicks they
-- held. Partitions not named by Click_partition_create are left alone.
CREATE FUNCTION "Click_partitions_drop"(cutoff timestamptz) RETURNS bigint LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  part text;
  n bigint;
  total bigint := 0;
BEGIN
  FOR part IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = '"Click"'::regclass AND c.relname ~ '^Click_p[0-9]{6}$'
       AND (to_date(substr(c.relname, 8), 'YYYYMM')::timestamp + INTERVAL '1 month') AT TIME ZONE 'UTC' <= cutoff
     ORDER BY c.relname
  LOOP
    EXECUTE format('SELECT count(*) FROM %I', part) INTO n;
    EXECUTE format('DROP TABLE %I', part);
    total := total + n;
  END LOOP;
  RETURN total;
END;
$$;

-- Partitions for every month with clicks, the current one and the next three.
SELECT "Click_partition_create"(m)
  FROM (SELECT DISTINCT date_trunc('month', "occurredAt" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m FROM "Click_unpartitioned"
        UNION
        SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k)) AT TIME ZONE 'UTC'
          FROM generate_series(0, 3) k) months
 ORDER BY m;

INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent",
                     "referrerUrl", "landingUrl", "discarded", "discardReason", "isUnique")
SELECT "id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent",
       "referrerUrl", "landingUrl", "discarded", "discardReason", "isUnique"
  FROM "Click_unpartitioned";

DROP TABLE "Click_unpartitioned";

-- AddPrimaryKey, CreateIndex (on every partition, and on those made later)
ALTER TABLE "Click" ADD CONSTRAINT "Click_pkey" PRIMARY KEY ("id", "occurredAt");
CREATE INDEX "Click_linkId_occurredAt_idx" ON "Click"("linkId", "occurredAt");
CREATE INDEX "Click_programId_occurredAt_idx" ON "Click"("programId", "occurredAt");
CREATE INDEX "Click_partnerId_occurredAt_idx" ON "Click"("partnerId", "occurredAt");

-- AddForeignKey
ALTER TABLE "Click" ADD CONSTRAINT "Click_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Click" ADD CONSTRAINT "Click_linkId_workspaceId_mode_fkey" FOREIGN KEY ("linkId", "workspaceId", "mode") REFERENCES "ReferralLink"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Click" ADD CONSTRAINT "Click_programId_workspaceId_mode_fkey" FOREIGN KEY ("programId", "workspaceId", "mode") REFERENCES "Program"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "Click" ADD CONSTRAINT "Click_partnerId_workspaceId_mode_fkey" FOREIGN KEY ("partnerId", "workspaceId", "mode") REFERENCES "Partner"("id", "workspaceId", "mode") ON DELETE CASCADE ON UPDATE CASCADE;

-- The rollup functions and triggers of 20261207198000_rollups, as they were, on the new table.
-- Statement triggers of a partitioned table fire for statements on "Click" whichever partitions
-- the rows are in (their transition tables hold them all), and not for statements on a
-- partition itself.
CREATE FUNCTION "Click_rollup_delta"(k "Click", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT k."workspaceId", k."mode", k."programId", k."partnerId", k."linkId", "rollup_bucket"(k."occurredAt"), ''::varchar(3),
         s::bigint, CASE WHEN k."isUnique" THEN s ELSE 0 END::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
   WHERE NOT k."discarded"
$$;

CREATE FUNCTION "Click_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM new_rows n CROSS JOIN LATERAL "Click_rollup_delta"(n, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    -- only rows whose counted columns changed: an update of anything else costs no rollup work
    PERFORM "ReportingRollup_apply"(ARRAY(
      SELECT d FROM new_rows n JOIN old_rows o ON o."id" = n."id"
                       AND (o."linkId", o."programId", o."partnerId", o."occurredAt", o."discarded", o."isUnique", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."linkId", n."programId", n."partnerId", n."occurredAt", n."discarded", n."isUnique", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Click_rollup_delta"(n, 1) d
      UNION ALL
      SELECT d FROM old_rows o JOIN new_rows n ON o."id" = n."id"
                       AND (o."linkId", o."programId", o."partnerId", o."occurredAt", o."discarded", o."isUnique", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."linkId", n."programId", n."partnerId", n."occurredAt", n."discarded", n."isUnique", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Click_rollup_delta"(o, -1) d));
  ELSE
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM old_rows o CROSS JOIN LATERAL "Click_rollup_delta"(o, -1) d));
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER "Click_rollup_insert" AFTER INSERT ON "Click"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Click_rollup"();
CREATE TRIGGER "Click_rollup_update" AFTER UPDATE ON "Click"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Click_rollup"();
