-- Reporting rollups (src/modules/reporting/README.md).
--
-- "ReportingRollup" holds, per program, partner and link, per 15-minute UTC bucket and per
-- currency ('' on rows of counts only), what dashboards count: clicks (counted, unique),
-- referrals (new, converted), conversions and revenue, and reward amounts per status. Reads of
-- time series, leaderboards and workspace totals touch it, never the raw tables.
--
-- Why 15 minutes and not an hour: a DAY bucket starts at local midnight in any IANA zone, and
-- zones with 30- and 45-minute offsets (Asia/Kolkata +05:30, Asia/Kathmandu +05:45,
-- Australia/Adelaide +09:30/+10:30, America/St_Johns −03:30/−02:30, Pacific/Chatham +12:45)
-- have midnights that are not on a UTC hour. Every offset in use is a multiple of 15 minutes, so
-- 15-minute buckets add up exactly to local days in all of them; the price is at most 4× the rows
-- of hourly buckets for a link busy every quarter hour (rows never outnumber the facts).
--
-- Maintenance: on "Click" (INSERT, UPDATE), statement-level AFTER triggers with transition
-- tables, run inside the writing statement; on "Referral", "Conversion" and "Reward" (INSERT,
-- UPDATE, DELETE), deferred row triggers run at COMMIT (see below). Either way the rollups change
-- in the same transaction as the facts, whichever code path writes them (recordConversion, refunds, reward status changes, the approval job, payouts,
-- review decisions, imports), and the click writer's batch INSERT costs one grouped upsert for
-- the whole batch — no statement, and no round trip, per click. An UPDATE subtracts the old
-- rows' contributions and adds the new ones', so a reward's status change moves its amount
-- between status columns, a referral converting moves into convertedReferrals, a conversion
-- changing status or amount is recounted, and an update touching nothing counted writes nothing.
-- Clicks have no DELETE trigger: raw clicks deleted by retention keep their counts here.
-- Rows of a workspace being deleted are skipped (the rollups go with the workspace's cascade).

-- CreateTable
CREATE TABLE "ReportingRollup" (
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "programId" UUID NOT NULL,
    "partnerId" UUID NOT NULL,
    "linkId" UUID NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "clicks" BIGINT NOT NULL DEFAULT 0,
    "uniqueClicks" BIGINT NOT NULL DEFAULT 0,
    "referrals" BIGINT NOT NULL DEFAULT 0,
    "convertedReferrals" BIGINT NOT NULL DEFAULT 0,
    "conversions" BIGINT NOT NULL DEFAULT 0,
    "revenue" BIGINT NOT NULL DEFAULT 0,
    "rewardsCreated" BIGINT NOT NULL DEFAULT 0,
    "rewardsApproved" BIGINT NOT NULL DEFAULT 0,
    "rewardsProcessed" BIGINT NOT NULL DEFAULT 0,
    "rewardsCanceled" BIGINT NOT NULL DEFAULT 0,
    "rewardsRejected" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "ReportingRollup_pkey" PRIMARY KEY ("workspaceId","mode","programId","bucket","partnerId","linkId","currency")
);

-- CreateIndex
CREATE INDEX "ReportingRollup_workspaceId_mode_partnerId_bucket_idx" ON "ReportingRollup"("workspaceId", "mode", "partnerId", "bucket");

-- CreateIndex
CREATE INDEX "ReportingRollup_linkId_bucket_idx" ON "ReportingRollup"("linkId", "bucket");

-- CreateIndex
CREATE INDEX "ReportingRollup_workspaceId_mode_bucket_idx" ON "ReportingRollup"("workspaceId", "mode", "bucket");

-- AddForeignKey
ALTER TABLE "ReportingRollup" ADD CONSTRAINT "ReportingRollup_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- The 15-minute UTC bucket of an instant.
CREATE FUNCTION "rollup_bucket"(at timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT date_bin('15 minutes', at, TIMESTAMPTZ '2000-01-01 00:00:00+00') $$;

-- What one row contributes (times s: 1 added, -1 removed), as rollup rows.
-- `SET search_path` keeps them from being inlined: inlined into the LATERAL joins below, the
-- planner fails with "variable not found in subplan target list" (seen on PGlite 17).
CREATE FUNCTION "Click_rollup_delta"(k "Click", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT k."workspaceId", k."mode", k."programId", k."partnerId", k."linkId", "rollup_bucket"(k."occurredAt"), ''::varchar(3),
         s::bigint, CASE WHEN k."isUnique" THEN s ELSE 0 END::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
   WHERE NOT k."discarded"
$$;

CREATE FUNCTION "Referral_rollup_delta"(r "Referral", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT r."workspaceId", r."mode", r."programId", r."partnerId",
         coalesce(r."linkId", '00000000-0000-0000-0000-000000000000'::uuid), "rollup_bucket"(r."createdAt"), ''::varchar(3),
         0::bigint, 0::bigint, s::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
  UNION ALL
  SELECT r."workspaceId", r."mode", r."programId", r."partnerId",
         coalesce(r."linkId", '00000000-0000-0000-0000-000000000000'::uuid),
         "rollup_bucket"(coalesce(r."convertedAt", r."createdAt")), ''::varchar(3),
         0::bigint, 0::bigint, 0::bigint, s::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
   WHERE r."status" = 'CONVERTED'
$$;

CREATE FUNCTION "Conversion_rollup_delta"(c "Conversion", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT c."workspaceId", c."mode", c."programId", c."partnerId",
         coalesce(c."linkId", '00000000-0000-0000-0000-000000000000'::uuid), "rollup_bucket"(c."occurredAt"),
         CASE WHEN c."type" IN ('PURCHASE', 'SUBSCRIPTION') AND c."currency" IS NOT NULL THEN c."currency" ELSE '' END::varchar(3),
         0::bigint, 0::bigint, 0::bigint, 0::bigint, s::bigint,
         CASE WHEN c."type" IN ('PURCHASE', 'SUBSCRIPTION') AND c."currency" IS NOT NULL THEN s * coalesce(c."amount", 0) ELSE 0 END::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
   WHERE c."status" = 'ACCEPTED' AND c."type" <> 'REFUND' AND c."programId" IS NOT NULL AND c."partnerId" IS NOT NULL
$$;

-- A reward counts under its conversion's link.
CREATE FUNCTION "Reward_rollup_delta"(w "Reward", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT w."workspaceId", w."mode", w."programId", w."partnerId",
         coalesce((SELECT c."linkId" FROM "Conversion" c WHERE c."id" = w."conversionId"), '00000000-0000-0000-0000-000000000000'::uuid),
         "rollup_bucket"(w."createdAt"), w."currency",
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
         CASE WHEN w."status" = 'CREATED' THEN s * w."amount" ELSE 0 END::bigint,
         CASE WHEN w."status" = 'APPROVED' THEN s * w."amount" ELSE 0 END::bigint,
         CASE WHEN w."status" = 'PROCESSED' THEN s * w."amount" ELSE 0 END::bigint,
         CASE WHEN w."status" = 'CANCELED' THEN s * w."amount" ELSE 0 END::bigint,
         CASE WHEN w."status" = 'REJECTED' THEN s * w."amount" ELSE 0 END::bigint
$$;

-- Adds contributions into the rollups: grouped, so a batch of clicks on one link in one quarter
-- hour is one row upserted; groups that sum to nothing (an update that changed nothing counted)
-- write nothing.
CREATE FUNCTION "ReportingRollup_apply"(deltas "ReportingRollup"[]) RETURNS void LANGUAGE sql
AS $$
  INSERT INTO "ReportingRollup" AS r ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency",
         "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
         "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected")
  SELECT d."workspaceId", d."mode", d."programId", d."partnerId", d."linkId", d."bucket", d."currency",
         sum(d."clicks")::bigint, sum(d."uniqueClicks")::bigint, sum(d."referrals")::bigint, sum(d."convertedReferrals")::bigint,
         sum(d."conversions")::bigint, sum(d."revenue")::bigint, sum(d."rewardsCreated")::bigint, sum(d."rewardsApproved")::bigint,
         sum(d."rewardsProcessed")::bigint, sum(d."rewardsCanceled")::bigint, sum(d."rewardsRejected")::bigint
    FROM unnest(deltas) d
   WHERE EXISTS (SELECT 1 FROM "Workspace" ws WHERE ws."id" = d."workspaceId")
   GROUP BY 1, 2, 3, 4, 5, 6, 7
  HAVING sum(d."clicks") <> 0 OR sum(d."uniqueClicks") <> 0 OR sum(d."referrals") <> 0 OR sum(d."convertedReferrals") <> 0
      OR sum(d."conversions") <> 0 OR sum(d."revenue") <> 0 OR sum(d."rewardsCreated") <> 0 OR sum(d."rewardsApproved") <> 0
      OR sum(d."rewardsProcessed") <> 0 OR sum(d."rewardsCanceled") <> 0 OR sum(d."rewardsRejected") <> 0
      -- a new currency with nothing in it yet is still listed (a zero-amount purchase or reward)
      OR (d."currency" <> '' AND bool_or(d."conversions" > 0 OR d."rewardsCreated" <> 0 OR d."rewardsApproved" <> 0
          OR d."rewardsProcessed" <> 0 OR d."rewardsCanceled" <> 0 OR d."rewardsRejected" <> 0))
   -- rows locked in key order, so two statements upserting the same rows cannot deadlock
   ORDER BY 1, 2, 3, 4, 5, 6, 7
  ON CONFLICT ON CONSTRAINT "ReportingRollup_pkey" DO UPDATE SET
         "clicks" = r."clicks" + EXCLUDED."clicks",
         "uniqueClicks" = r."uniqueClicks" + EXCLUDED."uniqueClicks",
         "referrals" = r."referrals" + EXCLUDED."referrals",
         "convertedReferrals" = r."convertedReferrals" + EXCLUDED."convertedReferrals",
         "conversions" = r."conversions" + EXCLUDED."conversions",
         "revenue" = r."revenue" + EXCLUDED."revenue",
         "rewardsCreated" = r."rewardsCreated" + EXCLUDED."rewardsCreated",
         "rewardsApproved" = r."rewardsApproved" + EXCLUDED."rewardsApproved",
         "rewardsProcessed" = r."rewardsProcessed" + EXCLUDED."rewardsProcessed",
         "rewardsCanceled" = r."rewardsCanceled" + EXCLUDED."rewardsCanceled",
         "rewardsRejected" = r."rewardsRejected" + EXCLUDED."rewardsRejected"
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

-- Referrals, conversions and rewards: a deferred row trigger, run at COMMIT (as the event
-- numbering is): a rollup row is locked only while the transaction commits, not from the write to
-- the end of the transaction, so writers of the same hot row (one link, one quarter hour, one
-- currency: every conversion of a busy link) do not wait for each other's remaining round trips.
-- The row values are those of the event, so an insert then an update (or a delete) in one
-- transaction add up to the net change.

CREATE FUNCTION "Referral_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM "Referral_rollup_delta"(NEW, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    -- only when a counted column changed: an update of anything else costs no rollup work
    IF (OLD."programId", OLD."partnerId", OLD."linkId", OLD."createdAt", OLD."convertedAt", OLD."status", OLD."workspaceId", OLD."mode") IS DISTINCT FROM (NEW."programId", NEW."partnerId", NEW."linkId", NEW."createdAt", NEW."convertedAt", NEW."status", NEW."workspaceId", NEW."mode") THEN
      PERFORM "ReportingRollup_apply"(ARRAY(
        SELECT d FROM "Referral_rollup_delta"(NEW, 1) d UNION ALL SELECT d FROM "Referral_rollup_delta"(OLD, -1) d));
    END IF;
  ELSE
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM "Referral_rollup_delta"(OLD, -1) d));
  END IF;
  RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER "Referral_rollup" AFTER INSERT OR UPDATE OR DELETE ON "Referral"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION "Referral_rollup"();

CREATE FUNCTION "Conversion_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM "Conversion_rollup_delta"(NEW, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    -- only when a counted column changed: an update of anything else costs no rollup work
    IF (OLD."programId", OLD."partnerId", OLD."linkId", OLD."occurredAt", OLD."type", OLD."status", OLD."amount", OLD."currency", OLD."workspaceId", OLD."mode") IS DISTINCT FROM (NEW."programId", NEW."partnerId", NEW."linkId", NEW."occurredAt", NEW."type", NEW."status", NEW."amount", NEW."currency", NEW."workspaceId", NEW."mode") THEN
      PERFORM "ReportingRollup_apply"(ARRAY(
        SELECT d FROM "Conversion_rollup_delta"(NEW, 1) d UNION ALL SELECT d FROM "Conversion_rollup_delta"(OLD, -1) d));
    END IF;
  ELSE
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM "Conversion_rollup_delta"(OLD, -1) d));
  END IF;
  RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER "Conversion_rollup" AFTER INSERT OR UPDATE OR DELETE ON "Conversion"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION "Conversion_rollup"();

CREATE FUNCTION "Reward_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM "Reward_rollup_delta"(NEW, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    -- only when a counted column changed: an update of anything else costs no rollup work
    IF (OLD."programId", OLD."partnerId", OLD."conversionId", OLD."createdAt", OLD."status", OLD."amount", OLD."currency", OLD."workspaceId", OLD."mode") IS DISTINCT FROM (NEW."programId", NEW."partnerId", NEW."conversionId", NEW."createdAt", NEW."status", NEW."amount", NEW."currency", NEW."workspaceId", NEW."mode") THEN
      PERFORM "ReportingRollup_apply"(ARRAY(
        SELECT d FROM "Reward_rollup_delta"(NEW, 1) d UNION ALL SELECT d FROM "Reward_rollup_delta"(OLD, -1) d));
    END IF;
  ELSE
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM "Reward_rollup_delta"(OLD, -1) d));
  END IF;
  RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER "Reward_rollup" AFTER INSERT OR UPDATE OR DELETE ON "Reward"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION "Reward_rollup"();

-- Backfill from the rows already there (the table is new, so a plain grouped insert).
INSERT INTO "ReportingRollup" ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency",
       "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
       "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected")
SELECT d."workspaceId", d."mode", d."programId", d."partnerId", d."linkId", d."bucket", d."currency",
       sum(d."clicks")::bigint, sum(d."uniqueClicks")::bigint, sum(d."referrals")::bigint, sum(d."convertedReferrals")::bigint,
       sum(d."conversions")::bigint, sum(d."revenue")::bigint, sum(d."rewardsCreated")::bigint, sum(d."rewardsApproved")::bigint,
       sum(d."rewardsProcessed")::bigint, sum(d."rewardsCanceled")::bigint, sum(d."rewardsRejected")::bigint
  FROM (SELECT d.* FROM "Click" k CROSS JOIN LATERAL "Click_rollup_delta"(k, 1) d
        UNION ALL SELECT d.* FROM "Referral" r CROSS JOIN LATERAL "Referral_rollup_delta"(r, 1) d
        UNION ALL SELECT d.* FROM "Conversion" c CROSS JOIN LATERAL "Conversion_rollup_delta"(c, 1) d
        UNION ALL SELECT d.* FROM "Reward" w CROSS JOIN LATERAL "Reward_rollup_delta"(w, 1) d) d
 GROUP BY 1, 2, 3, 4, 5, 6, 7;
