-- Set-based rollup maintenance for referrals, conversions and rewards
-- (src/modules/reporting/README.md, "How they are kept").
--
-- Until now, deferred row triggers made one upsert into "ReportingRollup" per written row at
-- COMMIT: fine for the product's one-conversion transactions, but one statement inserting 100 000
-- conversions did not commit within 180 s. An immediate statement-level upsert would cost one
-- grouped write per statement, but would lock the hot rollup row (one link, one quarter hour, one
-- currency) from the write to the end of the writing transaction, so that concurrent
-- recordConversions through one link queue behind each other's remaining round trips.
--
-- Now: statement-level AFTER triggers with transition tables append the statement's grouped
-- contributions to "ReportingRollupDelta" — plain INSERTs, no conflict, no row lock another
-- transaction could wait for — in the same transaction as the facts. Reads add the pending deltas
-- of the keys they read to "ReportingRollup". "ReportingRollup_fold"() moves the deltas into
-- "ReportingRollup" in one statement (DELETE … RETURNING, grouped upsert), under a transaction-level
-- advisory lock so that one instance folds at a time; the rollup fold job calls it every
-- ROLLUP_FOLD_INTERVAL_MS. Folding changes what is stored, never what a read answers.
--
-- Clicks keep their own statement-level triggers (they upsert "ReportingRollup" directly, inside
-- the click writer's batch statement).

-- CreateTable
CREATE TABLE "ReportingRollupDelta" (
    "id" BIGSERIAL NOT NULL,
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

    CONSTRAINT "ReportingRollupDelta_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "ReportingRollupDelta" ADD CONSTRAINT "ReportingRollupDelta_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Appends contributions as deltas, grouped by rollup key, with the filter of
-- "ReportingRollup_apply" (groups that sum to nothing are dropped, unless they list a new
-- currency; rows of a workspace being deleted are skipped).
CREATE FUNCTION "ReportingRollupDelta_add"(deltas "ReportingRollup"[]) RETURNS void LANGUAGE sql
AS $$
  INSERT INTO "ReportingRollupDelta" ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency",
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
      OR (d."currency" <> '' AND bool_or(d."conversions" > 0 OR d."rewardsCreated" <> 0 OR d."rewardsApproved" <> 0
          OR d."rewardsProcessed" <> 0 OR d."rewardsCanceled" <> 0 OR d."rewardsRejected" <> 0))
$$;

-- Moves every committed delta into "ReportingRollup" in one statement; returns the rollup rows
-- written, or -1 when another transaction is folding (it does the work). Deltas of transactions
-- still running are invisible here and stay for the next fold. The upsert locks its rows in key
-- order for the length of this statement's transaction only.
CREATE FUNCTION "ReportingRollup_fold"() RETURNS bigint LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  written bigint;
BEGIN
  -- 0x726f6c6c ("roll"): one folder at a time, across instances
  IF NOT pg_try_advisory_xact_lock(1919904876) THEN
    RETURN -1;
  END IF;
  WITH d AS (DELETE FROM "ReportingRollupDelta" RETURNING *)
  INSERT INTO "ReportingRollup" AS r ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency",
         "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
         "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected")
  SELECT d."workspaceId", d."mode", d."programId", d."partnerId", d."linkId", d."bucket", d."currency",
         sum(d."clicks")::bigint, sum(d."uniqueClicks")::bigint, sum(d."referrals")::bigint, sum(d."convertedReferrals")::bigint,
         sum(d."conversions")::bigint, sum(d."revenue")::bigint, sum(d."rewardsCreated")::bigint, sum(d."rewardsApproved")::bigint,
         sum(d."rewardsProcessed")::bigint, sum(d."rewardsCanceled")::bigint, sum(d."rewardsRejected")::bigint
    FROM d
   WHERE EXISTS (SELECT 1 FROM "Workspace" ws WHERE ws."id" = d."workspaceId")
   GROUP BY 1, 2, 3, 4, 5, 6, 7
  HAVING sum(d."clicks") <> 0 OR sum(d."uniqueClicks") <> 0 OR sum(d."referrals") <> 0 OR sum(d."convertedReferrals") <> 0
      OR sum(d."conversions") <> 0 OR sum(d."revenue") <> 0 OR sum(d."rewardsCreated") <> 0 OR sum(d."rewardsApproved") <> 0
      OR sum(d."rewardsProcessed") <> 0 OR sum(d."rewardsCanceled") <> 0 OR sum(d."rewardsRejected") <> 0
      OR (d."currency" <> '' AND bool_or(d."conversions" > 0 OR d."rewardsCreated" <> 0 OR d."rewardsApproved" <> 0
          OR d."rewardsProcessed" <> 0 OR d."rewardsCanceled" <> 0 OR d."rewardsRejected" <> 0))
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
         "rewardsRejected" = r."rewardsRejected" + EXCLUDED."rewardsRejected";
  GET DIAGNOSTICS written = ROW_COUNT;
  RETURN written;
END;
$$;

-- The deferred row triggers go.
DROP TRIGGER "Referral_rollup" ON "Referral";
DROP TRIGGER "Conversion_rollup" ON "Conversion";
DROP TRIGGER "Reward_rollup" ON "Reward";
DROP FUNCTION "Referral_rollup"();
DROP FUNCTION "Conversion_rollup"();
DROP FUNCTION "Reward_rollup"();

-- Statement-level triggers: one grouped INSERT of deltas per writing statement, whatever its
-- number of rows. An UPDATE counts only the rows whose counted columns changed (the old row's
-- contribution subtracted, the new one's added); an update of anything else writes nothing.

CREATE FUNCTION "Referral_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollupDelta_add"(ARRAY(SELECT d FROM new_rows n CROSS JOIN LATERAL "Referral_rollup_delta"(n, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM "ReportingRollupDelta_add"(ARRAY(
      SELECT d FROM new_rows n JOIN old_rows o ON o."id" = n."id"
                       AND (o."programId", o."partnerId", o."linkId", o."createdAt", o."convertedAt", o."status", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."programId", n."partnerId", n."linkId", n."createdAt", n."convertedAt", n."status", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Referral_rollup_delta"(n, 1) d
      UNION ALL
      SELECT d FROM old_rows o JOIN new_rows n ON o."id" = n."id"
                       AND (o."programId", o."partnerId", o."linkId", o."createdAt", o."convertedAt", o."status", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."programId", n."partnerId", n."linkId", n."createdAt", n."convertedAt", n."status", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Referral_rollup_delta"(o, -1) d));
  ELSE
    PERFORM "ReportingRollupDelta_add"(ARRAY(SELECT d FROM old_rows o CROSS JOIN LATERAL "Referral_rollup_delta"(o, -1) d));
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER "Referral_rollup_insert" AFTER INSERT ON "Referral"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Referral_rollup"();
CREATE TRIGGER "Referral_rollup_update" AFTER UPDATE ON "Referral"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Referral_rollup"();
CREATE TRIGGER "Referral_rollup_delete" AFTER DELETE ON "Referral"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "Referral_rollup"();

CREATE FUNCTION "Conversion_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollupDelta_add"(ARRAY(SELECT d FROM new_rows n CROSS JOIN LATERAL "Conversion_rollup_delta"(n, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM "ReportingRollupDelta_add"(ARRAY(
      SELECT d FROM new_rows n JOIN old_rows o ON o."id" = n."id"
                       AND (o."programId", o."partnerId", o."linkId", o."occurredAt", o."type", o."status", o."amount", o."currency", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."programId", n."partnerId", n."linkId", n."occurredAt", n."type", n."status", n."amount", n."currency", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Conversion_rollup_delta"(n, 1) d
      UNION ALL
      SELECT d FROM old_rows o JOIN new_rows n ON o."id" = n."id"
                       AND (o."programId", o."partnerId", o."linkId", o."occurredAt", o."type", o."status", o."amount", o."currency", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."programId", n."partnerId", n."linkId", n."occurredAt", n."type", n."status", n."amount", n."currency", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Conversion_rollup_delta"(o, -1) d));
  ELSE
    PERFORM "ReportingRollupDelta_add"(ARRAY(SELECT d FROM old_rows o CROSS JOIN LATERAL "Conversion_rollup_delta"(o, -1) d));
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER "Conversion_rollup_insert" AFTER INSERT ON "Conversion"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Conversion_rollup"();
CREATE TRIGGER "Conversion_rollup_update" AFTER UPDATE ON "Conversion"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Conversion_rollup"();
CREATE TRIGGER "Conversion_rollup_delete" AFTER DELETE ON "Conversion"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "Conversion_rollup"();

-- A reward counts under its conversion's link ("Reward_rollup_delta" looks it up).
CREATE FUNCTION "Reward_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollupDelta_add"(ARRAY(SELECT d FROM new_rows n CROSS JOIN LATERAL "Reward_rollup_delta"(n, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM "ReportingRollupDelta_add"(ARRAY(
      SELECT d FROM new_rows n JOIN old_rows o ON o."id" = n."id"
                       AND (o."programId", o."partnerId", o."conversionId", o."createdAt", o."status", o."amount", o."currency", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."programId", n."partnerId", n."conversionId", n."createdAt", n."status", n."amount", n."currency", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Reward_rollup_delta"(n, 1) d
      UNION ALL
      SELECT d FROM old_rows o JOIN new_rows n ON o."id" = n."id"
                       AND (o."programId", o."partnerId", o."conversionId", o."createdAt", o."status", o."amount", o."currency", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."programId", n."partnerId", n."conversionId", n."createdAt", n."status", n."amount", n."currency", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Reward_rollup_delta"(o, -1) d));
  ELSE
    PERFORM "ReportingRollupDelta_add"(ARRAY(SELECT d FROM old_rows o CROSS JOIN LATERAL "Reward_rollup_delta"(o, -1) d));
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER "Reward_rollup_insert" AFTER INSERT ON "Reward"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Reward_rollup"();
CREATE TRIGGER "Reward_rollup_update" AFTER UPDATE ON "Reward"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "Reward_rollup"();
CREATE TRIGGER "Reward_rollup_delete" AFTER DELETE ON "Reward"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "Reward_rollup"();
