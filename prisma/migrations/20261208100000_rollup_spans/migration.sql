-- Rollups that stay cheap to read over long windows, and the figures the dashboard counters need
-- (src/modules/reporting/README.md, "Spans"; issue 17).
--
-- 1. Three more measures on the quarter-hour rollups (and their deltas), so that Program.stats,
--    Partner.stats and the link counters can be read from rollups instead of raw rows:
--    "botClicks" (clicks discarded as a bot's), "pendingReferrals" (PENDING referrals, by
--    createdAt), "referrerRewards" (the partner's own REFERRER rewards except CANCELED and
--    REJECTED, by the reward's createdAt, per currency) and the number of rewards per status
--    ("rewardsCreatedCount" …) and of the referrer's ("referrerRewardsCount"): a currency is listed
--    by a figure as soon as a reward is in it, even when its amounts sum to zero (a reward paid,
--    then clawed back). Filled from the raw rows.
-- 2. "ReportingRollupSpan": the same measures summed per UTC hour, day and month (grain 1, 2, 3)
--    at three levels: per program (level 0: partner and link nil), per program and partner
--    (level 1: link nil) and per link (level 2, as the quarter-hour rows). A statement-level
--    trigger on "ReportingRollup" adds every change of its rows (new minus old) to the spans in
--    the same statement, so the click writer's batches and the fold keep them without a change of
--    their own. A read decomposes its window into months, days, hours and quarter hours (see
--    "rollup_pieces") and reads a few hundred span rows where it read every quarter hour.

-- 1. The new measures -------------------------------------------------------------------------

ALTER TABLE "ReportingRollup" ADD COLUMN "botClicks" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "pendingReferrals" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "referrerRewards" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsCreatedCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsApprovedCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsProcessedCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsCanceledCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsRejectedCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "referrerRewardsCount" BIGINT NOT NULL DEFAULT 0;
ALTER TABLE "ReportingRollupDelta" ADD COLUMN "botClicks" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "pendingReferrals" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "referrerRewards" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsCreatedCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsApprovedCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsProcessedCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsCanceledCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "rewardsRejectedCount" BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN "referrerRewardsCount" BIGINT NOT NULL DEFAULT 0;

-- The contribution functions return rows of "ReportingRollup", which has three more columns now.
CREATE OR REPLACE FUNCTION "Click_rollup_delta"(k "Click", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT k."workspaceId", k."mode", k."programId", k."partnerId", k."linkId", "rollup_bucket"(k."occurredAt"), ''::varchar(3),
         CASE WHEN NOT k."discarded" THEN s ELSE 0 END::bigint,
         CASE WHEN NOT k."discarded" AND k."isUnique" THEN s ELSE 0 END::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
         CASE WHEN k."discarded" THEN s ELSE 0 END::bigint, 0::bigint, 0::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
   WHERE NOT k."discarded" OR k."discardReason" = 'BOT'
$$;

CREATE OR REPLACE FUNCTION "Referral_rollup_delta"(r "Referral", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT r."workspaceId", r."mode", r."programId", r."partnerId",
         coalesce(r."linkId", '00000000-0000-0000-0000-000000000000'::uuid), "rollup_bucket"(r."createdAt"), ''::varchar(3),
         0::bigint, 0::bigint, s::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
         0::bigint, CASE WHEN r."status" = 'PENDING' THEN s ELSE 0 END::bigint, 0::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
  UNION ALL
  SELECT r."workspaceId", r."mode", r."programId", r."partnerId",
         coalesce(r."linkId", '00000000-0000-0000-0000-000000000000'::uuid),
         "rollup_bucket"(coalesce(r."convertedAt", r."createdAt")), ''::varchar(3),
         0::bigint, 0::bigint, 0::bigint, s::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
         0::bigint, 0::bigint, 0::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
   WHERE r."status" = 'CONVERTED'
$$;

CREATE OR REPLACE FUNCTION "Conversion_rollup_delta"(c "Conversion", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
  SELECT c."workspaceId", c."mode", c."programId", c."partnerId",
         coalesce(c."linkId", '00000000-0000-0000-0000-000000000000'::uuid), "rollup_bucket"(c."occurredAt"),
         CASE WHEN c."type" IN ('PURCHASE', 'SUBSCRIPTION') AND c."currency" IS NOT NULL THEN c."currency" ELSE '' END::varchar(3),
         0::bigint, 0::bigint, 0::bigint, 0::bigint, s::bigint,
         CASE WHEN c."type" IN ('PURCHASE', 'SUBSCRIPTION') AND c."currency" IS NOT NULL THEN s * coalesce(c."amount", 0) ELSE 0 END::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
         0::bigint, 0::bigint, 0::bigint,
         0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
   WHERE c."status" = 'ACCEPTED' AND c."type" <> 'REFUND' AND c."programId" IS NOT NULL AND c."partnerId" IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION "Reward_rollup_delta"(w "Reward", s int) RETURNS SETOF "ReportingRollup" LANGUAGE sql STABLE
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
         CASE WHEN w."status" = 'REJECTED' THEN s * w."amount" ELSE 0 END::bigint,
         0::bigint, 0::bigint,
         CASE WHEN w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED') THEN s * w."amount" ELSE 0 END::bigint,
         CASE WHEN w."status" = 'CREATED' THEN s ELSE 0 END::bigint,
         CASE WHEN w."status" = 'APPROVED' THEN s ELSE 0 END::bigint,
         CASE WHEN w."status" = 'PROCESSED' THEN s ELSE 0 END::bigint,
         CASE WHEN w."status" = 'CANCELED' THEN s ELSE 0 END::bigint,
         CASE WHEN w."status" = 'REJECTED' THEN s ELSE 0 END::bigint,
         CASE WHEN w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED') THEN s ELSE 0 END::bigint
$$;

-- Groups kept: any measure not zero, or a currency listed for the first time (a zero-amount purchase or reward).
CREATE OR REPLACE FUNCTION "ReportingRollup_apply"(deltas "ReportingRollup"[]) RETURNS void LANGUAGE sql
AS $$
  INSERT INTO "ReportingRollup" AS r ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency",
         "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
         "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected",
         "botClicks", "pendingReferrals", "referrerRewards",
         "rewardsCreatedCount", "rewardsApprovedCount", "rewardsProcessedCount", "rewardsCanceledCount", "rewardsRejectedCount", "referrerRewardsCount")
  SELECT d."workspaceId", d."mode", d."programId", d."partnerId", d."linkId", d."bucket", d."currency",
         sum(d."clicks")::bigint, sum(d."uniqueClicks")::bigint, sum(d."referrals")::bigint, sum(d."convertedReferrals")::bigint,
         sum(d."conversions")::bigint, sum(d."revenue")::bigint, sum(d."rewardsCreated")::bigint, sum(d."rewardsApproved")::bigint,
         sum(d."rewardsProcessed")::bigint, sum(d."rewardsCanceled")::bigint, sum(d."rewardsRejected")::bigint,
         sum(d."botClicks")::bigint, sum(d."pendingReferrals")::bigint, sum(d."referrerRewards")::bigint,
         sum(d."rewardsCreatedCount")::bigint, sum(d."rewardsApprovedCount")::bigint, sum(d."rewardsProcessedCount")::bigint, sum(d."rewardsCanceledCount")::bigint, sum(d."rewardsRejectedCount")::bigint, sum(d."referrerRewardsCount")::bigint
    FROM unnest(deltas) d
   WHERE EXISTS (SELECT 1 FROM "Workspace" ws WHERE ws."id" = d."workspaceId")
   GROUP BY 1, 2, 3, 4, 5, 6, 7
  HAVING sum(d."clicks") <> 0 OR sum(d."uniqueClicks") <> 0 OR sum(d."referrals") <> 0 OR sum(d."convertedReferrals") <> 0
      OR sum(d."conversions") <> 0 OR sum(d."revenue") <> 0 OR sum(d."rewardsCreated") <> 0 OR sum(d."rewardsApproved") <> 0
      OR sum(d."rewardsProcessed") <> 0 OR sum(d."rewardsCanceled") <> 0 OR sum(d."rewardsRejected") <> 0
      OR sum(d."botClicks") <> 0 OR sum(d."pendingReferrals") <> 0 OR sum(d."referrerRewards") <> 0
      OR sum(d."rewardsCreatedCount") <> 0 OR sum(d."rewardsApprovedCount") <> 0 OR sum(d."rewardsProcessedCount") <> 0 OR sum(d."rewardsCanceledCount") <> 0 OR sum(d."rewardsRejectedCount") <> 0 OR sum(d."referrerRewardsCount") <> 0
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
         "rewardsRejected" = r."rewardsRejected" + EXCLUDED."rewardsRejected",
         "botClicks" = r."botClicks" + EXCLUDED."botClicks",
         "pendingReferrals" = r."pendingReferrals" + EXCLUDED."pendingReferrals",
         "referrerRewards" = r."referrerRewards" + EXCLUDED."referrerRewards",
         "rewardsCreatedCount" = r."rewardsCreatedCount" + EXCLUDED."rewardsCreatedCount",
         "rewardsApprovedCount" = r."rewardsApprovedCount" + EXCLUDED."rewardsApprovedCount",
         "rewardsProcessedCount" = r."rewardsProcessedCount" + EXCLUDED."rewardsProcessedCount",
         "rewardsCanceledCount" = r."rewardsCanceledCount" + EXCLUDED."rewardsCanceledCount",
         "rewardsRejectedCount" = r."rewardsRejectedCount" + EXCLUDED."rewardsRejectedCount",
         "referrerRewardsCount" = r."referrerRewardsCount" + EXCLUDED."referrerRewardsCount"
$$;

CREATE OR REPLACE FUNCTION "ReportingRollupDelta_add"(deltas "ReportingRollup"[]) RETURNS void LANGUAGE sql
AS $$
  INSERT INTO "ReportingRollupDelta" ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency",
         "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
         "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected",
         "botClicks", "pendingReferrals", "referrerRewards",
         "rewardsCreatedCount", "rewardsApprovedCount", "rewardsProcessedCount", "rewardsCanceledCount", "rewardsRejectedCount", "referrerRewardsCount")
  SELECT d."workspaceId", d."mode", d."programId", d."partnerId", d."linkId", d."bucket", d."currency",
         sum(d."clicks")::bigint, sum(d."uniqueClicks")::bigint, sum(d."referrals")::bigint, sum(d."convertedReferrals")::bigint,
         sum(d."conversions")::bigint, sum(d."revenue")::bigint, sum(d."rewardsCreated")::bigint, sum(d."rewardsApproved")::bigint,
         sum(d."rewardsProcessed")::bigint, sum(d."rewardsCanceled")::bigint, sum(d."rewardsRejected")::bigint,
         sum(d."botClicks")::bigint, sum(d."pendingReferrals")::bigint, sum(d."referrerRewards")::bigint,
         sum(d."rewardsCreatedCount")::bigint, sum(d."rewardsApprovedCount")::bigint, sum(d."rewardsProcessedCount")::bigint, sum(d."rewardsCanceledCount")::bigint, sum(d."rewardsRejectedCount")::bigint, sum(d."referrerRewardsCount")::bigint
    FROM unnest(deltas) d
   WHERE EXISTS (SELECT 1 FROM "Workspace" ws WHERE ws."id" = d."workspaceId")
   GROUP BY 1, 2, 3, 4, 5, 6, 7
  HAVING sum(d."clicks") <> 0 OR sum(d."uniqueClicks") <> 0 OR sum(d."referrals") <> 0 OR sum(d."convertedReferrals") <> 0
      OR sum(d."conversions") <> 0 OR sum(d."revenue") <> 0 OR sum(d."rewardsCreated") <> 0 OR sum(d."rewardsApproved") <> 0
      OR sum(d."rewardsProcessed") <> 0 OR sum(d."rewardsCanceled") <> 0 OR sum(d."rewardsRejected") <> 0
      OR sum(d."botClicks") <> 0 OR sum(d."pendingReferrals") <> 0 OR sum(d."referrerRewards") <> 0
      OR sum(d."rewardsCreatedCount") <> 0 OR sum(d."rewardsApprovedCount") <> 0 OR sum(d."rewardsProcessedCount") <> 0 OR sum(d."rewardsCanceledCount") <> 0 OR sum(d."rewardsRejectedCount") <> 0 OR sum(d."referrerRewardsCount") <> 0
      OR (d."currency" <> '' AND bool_or(d."conversions" > 0 OR d."rewardsCreated" <> 0 OR d."rewardsApproved" <> 0
          OR d."rewardsProcessed" <> 0 OR d."rewardsCanceled" <> 0 OR d."rewardsRejected" <> 0))
$$;

CREATE OR REPLACE FUNCTION "ReportingRollup_fold"() RETURNS bigint LANGUAGE plpgsql
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
         "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected",
         "botClicks", "pendingReferrals", "referrerRewards",
         "rewardsCreatedCount", "rewardsApprovedCount", "rewardsProcessedCount", "rewardsCanceledCount", "rewardsRejectedCount", "referrerRewardsCount")
  SELECT d."workspaceId", d."mode", d."programId", d."partnerId", d."linkId", d."bucket", d."currency",
         sum(d."clicks")::bigint, sum(d."uniqueClicks")::bigint, sum(d."referrals")::bigint, sum(d."convertedReferrals")::bigint,
         sum(d."conversions")::bigint, sum(d."revenue")::bigint, sum(d."rewardsCreated")::bigint, sum(d."rewardsApproved")::bigint,
         sum(d."rewardsProcessed")::bigint, sum(d."rewardsCanceled")::bigint, sum(d."rewardsRejected")::bigint,
         sum(d."botClicks")::bigint, sum(d."pendingReferrals")::bigint, sum(d."referrerRewards")::bigint,
         sum(d."rewardsCreatedCount")::bigint, sum(d."rewardsApprovedCount")::bigint, sum(d."rewardsProcessedCount")::bigint, sum(d."rewardsCanceledCount")::bigint, sum(d."rewardsRejectedCount")::bigint, sum(d."referrerRewardsCount")::bigint
    FROM d
   WHERE EXISTS (SELECT 1 FROM "Workspace" ws WHERE ws."id" = d."workspaceId")
   GROUP BY 1, 2, 3, 4, 5, 6, 7
  HAVING sum(d."clicks") <> 0 OR sum(d."uniqueClicks") <> 0 OR sum(d."referrals") <> 0 OR sum(d."convertedReferrals") <> 0
      OR sum(d."conversions") <> 0 OR sum(d."revenue") <> 0 OR sum(d."rewardsCreated") <> 0 OR sum(d."rewardsApproved") <> 0
      OR sum(d."rewardsProcessed") <> 0 OR sum(d."rewardsCanceled") <> 0 OR sum(d."rewardsRejected") <> 0
      OR sum(d."botClicks") <> 0 OR sum(d."pendingReferrals") <> 0 OR sum(d."referrerRewards") <> 0
      OR sum(d."rewardsCreatedCount") <> 0 OR sum(d."rewardsApprovedCount") <> 0 OR sum(d."rewardsProcessedCount") <> 0 OR sum(d."rewardsCanceledCount") <> 0 OR sum(d."rewardsRejectedCount") <> 0 OR sum(d."referrerRewardsCount") <> 0
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
         "rewardsRejected" = r."rewardsRejected" + EXCLUDED."rewardsRejected",
         "botClicks" = r."botClicks" + EXCLUDED."botClicks",
         "pendingReferrals" = r."pendingReferrals" + EXCLUDED."pendingReferrals",
         "referrerRewards" = r."referrerRewards" + EXCLUDED."referrerRewards",
         "rewardsCreatedCount" = r."rewardsCreatedCount" + EXCLUDED."rewardsCreatedCount",
         "rewardsApprovedCount" = r."rewardsApprovedCount" + EXCLUDED."rewardsApprovedCount",
         "rewardsProcessedCount" = r."rewardsProcessedCount" + EXCLUDED."rewardsProcessedCount",
         "rewardsCanceledCount" = r."rewardsCanceledCount" + EXCLUDED."rewardsCanceledCount",
         "rewardsRejectedCount" = r."rewardsRejectedCount" + EXCLUDED."rewardsRejectedCount",
         "referrerRewardsCount" = r."referrerRewardsCount" + EXCLUDED."referrerRewardsCount";
  GET DIAGNOSTICS written = ROW_COUNT;
  RETURN written;
END;
$$;

-- The click trigger: a change of discardReason moves a click in or out of "botClicks".
CREATE OR REPLACE FUNCTION "Click_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM new_rows n CROSS JOIN LATERAL "Click_rollup_delta"(n, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM "ReportingRollup_apply"(ARRAY(
      SELECT d FROM new_rows n JOIN old_rows o ON o."id" = n."id"
                       AND (o."linkId", o."programId", o."partnerId", o."occurredAt", o."discarded", o."discardReason", o."isUnique", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."linkId", n."programId", n."partnerId", n."occurredAt", n."discarded", n."discardReason", n."isUnique", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Click_rollup_delta"(n, 1) d
      UNION ALL
      SELECT d FROM old_rows o JOIN new_rows n ON o."id" = n."id"
                       AND (o."linkId", o."programId", o."partnerId", o."occurredAt", o."discarded", o."discardReason", o."isUnique", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."linkId", n."programId", n."partnerId", n."occurredAt", n."discarded", n."discardReason", n."isUnique", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Click_rollup_delta"(o, -1) d));
  ELSE
    PERFORM "ReportingRollup_apply"(ARRAY(SELECT d FROM old_rows o CROSS JOIN LATERAL "Click_rollup_delta"(o, -1) d));
  END IF;
  RETURN NULL;
END;
$$;

-- The reward trigger: its recipient now counts too ("referrerRewards").
CREATE OR REPLACE FUNCTION "Reward_rollup"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollupDelta_add"(ARRAY(SELECT d FROM new_rows n CROSS JOIN LATERAL "Reward_rollup_delta"(n, 1) d));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM "ReportingRollupDelta_add"(ARRAY(
      SELECT d FROM new_rows n JOIN old_rows o ON o."id" = n."id"
                       AND (o."programId", o."partnerId", o."conversionId", o."createdAt", o."status", o."recipient", o."amount", o."currency", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."programId", n."partnerId", n."conversionId", n."createdAt", n."status", n."recipient", n."amount", n."currency", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Reward_rollup_delta"(n, 1) d
      UNION ALL
      SELECT d FROM old_rows o JOIN new_rows n ON o."id" = n."id"
                       AND (o."programId", o."partnerId", o."conversionId", o."createdAt", o."status", o."recipient", o."amount", o."currency", o."workspaceId", o."mode")
                           IS DISTINCT FROM (n."programId", n."partnerId", n."conversionId", n."createdAt", n."status", n."recipient", n."amount", n."currency", n."workspaceId", n."mode")
        CROSS JOIN LATERAL "Reward_rollup_delta"(o, -1) d));
  ELSE
    PERFORM "ReportingRollupDelta_add"(ARRAY(SELECT d FROM old_rows o CROSS JOIN LATERAL "Reward_rollup_delta"(o, -1) d));
  END IF;
  RETURN NULL;
END;
$$;

-- Backfill of the new measures from the raw rows (the deltas pending hold none of them).
INSERT INTO "ReportingRollup" AS r ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency", "botClicks")
SELECT k."workspaceId", k."mode", k."programId", k."partnerId", k."linkId", "rollup_bucket"(k."occurredAt"), '', count(*)
  FROM "Click" k
 WHERE k."discarded" AND k."discardReason" = 'BOT'
 GROUP BY 1, 2, 3, 4, 5, 6
 ORDER BY 1, 2, 3, 6, 4, 5
ON CONFLICT ON CONSTRAINT "ReportingRollup_pkey" DO UPDATE SET "botClicks" = EXCLUDED."botClicks";

INSERT INTO "ReportingRollup" AS r ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency", "pendingReferrals")
SELECT x."workspaceId", x."mode", x."programId", x."partnerId", coalesce(x."linkId", '00000000-0000-0000-0000-000000000000'::uuid),
       "rollup_bucket"(x."createdAt"), '', count(*)
  FROM "Referral" x
 WHERE x."status" = 'PENDING'
 GROUP BY 1, 2, 3, 4, 5, 6
 ORDER BY 1, 2, 3, 6, 4, 5
ON CONFLICT ON CONSTRAINT "ReportingRollup_pkey" DO UPDATE SET "pendingReferrals" = EXCLUDED."pendingReferrals";

INSERT INTO "ReportingRollup" AS r ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency", "referrerRewards",
       "rewardsCreatedCount", "rewardsApprovedCount", "rewardsProcessedCount", "rewardsCanceledCount", "rewardsRejectedCount", "referrerRewardsCount")
SELECT w."workspaceId", w."mode", w."programId", w."partnerId",
       coalesce(c."linkId", '00000000-0000-0000-0000-000000000000'::uuid), "rollup_bucket"(w."createdAt"), w."currency",
       coalesce(sum(w."amount") FILTER (WHERE w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED')), 0),
       count(*) FILTER (WHERE w."status" = 'CREATED'), count(*) FILTER (WHERE w."status" = 'APPROVED'),
       count(*) FILTER (WHERE w."status" = 'PROCESSED'), count(*) FILTER (WHERE w."status" = 'CANCELED'),
       count(*) FILTER (WHERE w."status" = 'REJECTED'),
       count(*) FILTER (WHERE w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED'))
  FROM "Reward" w LEFT JOIN "Conversion" c ON c."id" = w."conversionId"
 GROUP BY 1, 2, 3, 4, 5, 6, 7
 ORDER BY 1, 2, 3, 6, 4, 5, 7
ON CONFLICT ON CONSTRAINT "ReportingRollup_pkey" DO UPDATE SET "referrerRewards" = EXCLUDED."referrerRewards",
  "rewardsCreatedCount" = EXCLUDED."rewardsCreatedCount",
  "rewardsApprovedCount" = EXCLUDED."rewardsApprovedCount",
  "rewardsProcessedCount" = EXCLUDED."rewardsProcessedCount",
  "rewardsCanceledCount" = EXCLUDED."rewardsCanceledCount",
  "rewardsRejectedCount" = EXCLUDED."rewardsRejectedCount",
  "referrerRewardsCount" = EXCLUDED."referrerRewardsCount";

-- 2. Spans --------------------------------------------------------------------------------------

-- CreateTable
CREATE TABLE "ReportingRollupSpan" (
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "level" SMALLINT NOT NULL,
    "grain" SMALLINT NOT NULL,
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
    "botClicks" BIGINT NOT NULL DEFAULT 0,
    "pendingReferrals" BIGINT NOT NULL DEFAULT 0,
    "referrerRewards" BIGINT NOT NULL DEFAULT 0,
    "rewardsCreatedCount" BIGINT NOT NULL DEFAULT 0,
    "rewardsApprovedCount" BIGINT NOT NULL DEFAULT 0,
    "rewardsProcessedCount" BIGINT NOT NULL DEFAULT 0,
    "rewardsCanceledCount" BIGINT NOT NULL DEFAULT 0,
    "rewardsRejectedCount" BIGINT NOT NULL DEFAULT 0,
    "referrerRewardsCount" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "ReportingRollupSpan_pkey" PRIMARY KEY ("workspaceId","mode","level","grain","programId","bucket","partnerId","linkId","currency")
);

-- CreateIndex
CREATE INDEX "ReportingRollupSpan_partner_idx" ON "ReportingRollupSpan"("workspaceId", "mode", "level", "grain", "partnerId", "bucket");

-- CreateIndex
CREATE INDEX "ReportingRollupSpan_link_idx" ON "ReportingRollupSpan"("linkId", "level", "grain", "bucket");

-- AddForeignKey
ALTER TABLE "ReportingRollupSpan" ADD CONSTRAINT "ReportingRollupSpan_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Adds quarter-hour rows (`added`) and subtracts others (`removed`) from the spans: 3 levels × 3 grains per row,
-- grouped, in key order. Groups of an update that sum to nothing write nothing; a new
-- quarter-hour row always makes its spans exist (so a currency listed by a zero amount is too).
CREATE FUNCTION "ReportingRollupSpan_add"(added "ReportingRollup"[], removed "ReportingRollup"[], keep_empty boolean) RETURNS void LANGUAGE sql
AS $$
  INSERT INTO "ReportingRollupSpan" AS t ("workspaceId", "mode", "level", "grain", "programId", "partnerId", "linkId", "bucket", "currency",
         "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
         "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected",
         "botClicks", "pendingReferrals", "referrerRewards",
         "rewardsCreatedCount", "rewardsApprovedCount", "rewardsProcessedCount", "rewardsCanceledCount", "rewardsRejectedCount", "referrerRewardsCount")
  SELECT x."workspaceId", x."mode", l.level::smallint, g.grain::smallint, x."programId",
         CASE WHEN l.level >= 1 THEN x."partnerId" ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
         CASE WHEN l.level = 2 THEN x."linkId" ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
         date_trunc(g.unit, x."bucket", 'UTC'), x."currency",
         sum(x.s * x."clicks")::bigint, sum(x.s * x."uniqueClicks")::bigint, sum(x.s * x."referrals")::bigint,
         sum(x.s * x."convertedReferrals")::bigint, sum(x.s * x."conversions")::bigint, sum(x.s * x."revenue")::bigint,
         sum(x.s * x."rewardsCreated")::bigint, sum(x.s * x."rewardsApproved")::bigint, sum(x.s * x."rewardsProcessed")::bigint,
         sum(x.s * x."rewardsCanceled")::bigint, sum(x.s * x."rewardsRejected")::bigint,
         sum(x.s * x."botClicks")::bigint, sum(x.s * x."pendingReferrals")::bigint, sum(x.s * x."referrerRewards")::bigint,
         sum(x.s * x."rewardsCreatedCount")::bigint, sum(x.s * x."rewardsApprovedCount")::bigint, sum(x.s * x."rewardsProcessedCount")::bigint, sum(x.s * x."rewardsCanceledCount")::bigint, sum(x.s * x."rewardsRejectedCount")::bigint, sum(x.s * x."referrerRewardsCount")::bigint
    FROM (SELECT a.*, 1 AS s FROM unnest(added) a UNION ALL SELECT r.*, -1 AS s FROM unnest(removed) r) x
   CROSS JOIN (VALUES (0), (1), (2)) AS l(level)
   CROSS JOIN (VALUES (1, 'hour'), (2, 'day'), (3, 'month')) AS g(grain, unit)
   WHERE EXISTS (SELECT 1 FROM "Workspace" ws WHERE ws."id" = x."workspaceId")
   GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
  HAVING keep_empty
      OR sum(x.s * x."clicks") <> 0 OR sum(x.s * x."uniqueClicks") <> 0 OR sum(x.s * x."referrals") <> 0
      OR sum(x.s * x."convertedReferrals") <> 0 OR sum(x.s * x."conversions") <> 0 OR sum(x.s * x."revenue") <> 0
      OR sum(x.s * x."rewardsCreated") <> 0 OR sum(x.s * x."rewardsApproved") <> 0 OR sum(x.s * x."rewardsProcessed") <> 0
      OR sum(x.s * x."rewardsCanceled") <> 0 OR sum(x.s * x."rewardsRejected") <> 0
      OR sum(x.s * x."botClicks") <> 0 OR sum(x.s * x."pendingReferrals") <> 0 OR sum(x.s * x."referrerRewards") <> 0
      OR sum(x.s * x."rewardsCreatedCount") <> 0 OR sum(x.s * x."rewardsApprovedCount") <> 0 OR sum(x.s * x."rewardsProcessedCount") <> 0 OR sum(x.s * x."rewardsCanceledCount") <> 0 OR sum(x.s * x."rewardsRejectedCount") <> 0 OR sum(x.s * x."referrerRewardsCount") <> 0
   ORDER BY 1, 2, 3, 4, 5, 8, 6, 7, 9
  ON CONFLICT ON CONSTRAINT "ReportingRollupSpan_pkey" DO UPDATE SET
         "clicks" = t."clicks" + EXCLUDED."clicks",
         "uniqueClicks" = t."uniqueClicks" + EXCLUDED."uniqueClicks",
         "referrals" = t."referrals" + EXCLUDED."referrals",
         "convertedReferrals" = t."convertedReferrals" + EXCLUDED."convertedReferrals",
         "conversions" = t."conversions" + EXCLUDED."conversions",
         "revenue" = t."revenue" + EXCLUDED."revenue",
         "rewardsCreated" = t."rewardsCreated" + EXCLUDED."rewardsCreated",
         "rewardsApproved" = t."rewardsApproved" + EXCLUDED."rewardsApproved",
         "rewardsProcessed" = t."rewardsProcessed" + EXCLUDED."rewardsProcessed",
         "rewardsCanceled" = t."rewardsCanceled" + EXCLUDED."rewardsCanceled",
         "rewardsRejected" = t."rewardsRejected" + EXCLUDED."rewardsRejected",
         "botClicks" = t."botClicks" + EXCLUDED."botClicks",
         "pendingReferrals" = t."pendingReferrals" + EXCLUDED."pendingReferrals",
         "referrerRewards" = t."referrerRewards" + EXCLUDED."referrerRewards",
         "rewardsCreatedCount" = t."rewardsCreatedCount" + EXCLUDED."rewardsCreatedCount",
         "rewardsApprovedCount" = t."rewardsApprovedCount" + EXCLUDED."rewardsApprovedCount",
         "rewardsProcessedCount" = t."rewardsProcessedCount" + EXCLUDED."rewardsProcessedCount",
         "rewardsCanceledCount" = t."rewardsCanceledCount" + EXCLUDED."rewardsCanceledCount",
         "rewardsRejectedCount" = t."rewardsRejectedCount" + EXCLUDED."rewardsRejectedCount",
         "referrerRewardsCount" = t."referrerRewardsCount" + EXCLUDED."referrerRewardsCount"
$$;

CREATE FUNCTION "ReportingRollup_span"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM "ReportingRollupSpan_add"(ARRAY(SELECT ROW(n.*)::"ReportingRollup" FROM new_rows n), '{}'::"ReportingRollup"[], TRUE);
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM "ReportingRollupSpan_add"(ARRAY(SELECT ROW(n.*)::"ReportingRollup" FROM new_rows n), ARRAY(SELECT ROW(o.*)::"ReportingRollup" FROM old_rows o), FALSE);
  ELSE
    PERFORM "ReportingRollupSpan_add"('{}'::"ReportingRollup"[], ARRAY(SELECT ROW(o.*)::"ReportingRollup" FROM old_rows o), FALSE);
  END IF;
  RETURN NULL;
END;
$$;

-- Backfill from the quarter hours as they are now, then keep up with every change.
INSERT INTO "ReportingRollupSpan" ("workspaceId", "mode", "level", "grain", "programId", "partnerId", "linkId", "bucket", "currency",
       "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
       "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected",
       "botClicks", "pendingReferrals", "referrerRewards",
         "rewardsCreatedCount", "rewardsApprovedCount", "rewardsProcessedCount", "rewardsCanceledCount", "rewardsRejectedCount", "referrerRewardsCount")
SELECT x."workspaceId", x."mode", l.level::smallint, g.grain::smallint, x."programId",
       CASE WHEN l.level >= 1 THEN x."partnerId" ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
       CASE WHEN l.level = 2 THEN x."linkId" ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
       date_trunc(g.unit, x."bucket", 'UTC'), x."currency",
       sum(x."clicks"), sum(x."uniqueClicks"), sum(x."referrals"), sum(x."convertedReferrals"), sum(x."conversions"),
       sum(x."revenue"), sum(x."rewardsCreated"), sum(x."rewardsApproved"), sum(x."rewardsProcessed"),
       sum(x."rewardsCanceled"), sum(x."rewardsRejected"), sum(x."botClicks"), sum(x."pendingReferrals"), sum(x."referrerRewards"),
       sum(x."rewardsCreatedCount"), sum(x."rewardsApprovedCount"), sum(x."rewardsProcessedCount"), sum(x."rewardsCanceledCount"), sum(x."rewardsRejectedCount"), sum(x."referrerRewardsCount")
  FROM "ReportingRollup" x
 CROSS JOIN (VALUES (0), (1), (2)) AS l(level)
 CROSS JOIN (VALUES (1, 'hour'), (2, 'day'), (3, 'month')) AS g(grain, unit)
 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
 ORDER BY 1, 2, 3, 4, 5, 8, 6, 7, 9;

CREATE TRIGGER "ReportingRollup_span_insert" AFTER INSERT ON "ReportingRollup"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ReportingRollup_span"();
CREATE TRIGGER "ReportingRollup_span_update" AFTER UPDATE ON "ReportingRollup"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ReportingRollup_span"();
CREATE TRIGGER "ReportingRollup_span_delete" AFTER DELETE ON "ReportingRollup"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "ReportingRollup_span"();

-- 3. Reading a window from the spans -------------------------------------------------------------

-- The window [lo, hi) (quarter-hour instants; NULL: open on that side) as signed pieces of one
-- grain each (0 quarter hour, 1 hour, 2 day, 3 month; `lo`/`hi` on that grain's boundaries, or
-- ±infinity): the sum over the window is the sum of sign × (the rows of the piece's grain with
-- a bucket in [lo, hi)). With F(t) = everything before t, the window is F(hi) − F(lo); F(t) is
-- taken from the UTC midnight nearest to t, plus (t after it) or minus (t before it) the whole
-- hours and then the quarter hours in between; the days between the two midnights are whole
-- months where they can be. So a local day in Europe/Paris (23:00 to 23:00 UTC) is one day and
-- two hours; a window's cost does not grow with its length or with the facts in it.
CREATE FUNCTION "rollup_pieces"(from_at timestamptz, to_at timestamptz)
RETURNS TABLE ("grain" smallint, "lo" timestamptz, "hi" timestamptz, "sign" int) LANGUAGE plpgsql IMMUTABLE
ROWS 4
AS $$
DECLARE
  t timestamptz;
  s int;
  d timestamptz;
  h timestamptz;
  a timestamptz;
  b timestamptz;
  m1 timestamptz;
  m2 timestamptz;
BEGIN
  -- open ends: everything before a month start, or from a month start on, in month rows
  IF from_at IS NULL AND to_at IS NULL THEN
    grain := 3; "lo" := '-infinity'; "hi" := 'infinity'; sign := 1; RETURN NEXT; RETURN;
  END IF;
  IF from_at IS NULL THEN
    m2 := date_trunc('month', to_at, 'UTC');
    grain := 3; "lo" := '-infinity'; "hi" := m2; sign := 1; RETURN NEXT;
    IF m2 < to_at THEN RETURN QUERY SELECT * FROM "rollup_pieces"(m2, to_at); END IF;
    RETURN;
  END IF;
  IF to_at IS NULL THEN
    m1 := date_trunc('month', from_at, 'UTC');
    IF m1 < from_at THEN m1 := m1 + interval '1 month'; END IF;
    grain := 3; "lo" := m1; "hi" := 'infinity'; sign := 1; RETURN NEXT;
    IF from_at < m1 THEN RETURN QUERY SELECT * FROM "rollup_pieces"(from_at, m1); END IF;
    RETURN;
  END IF;
  IF NOT from_at < to_at THEN RETURN; END IF;
  -- the whole days between the midnights nearest to from_at and to_at, months where whole
  a := date_trunc('day', from_at + interval '12 hours', 'UTC');
  b := date_trunc('day', to_at + interval '12 hours', 'UTC');
  IF a < b THEN
    m1 := date_trunc('month', a, 'UTC');
    IF m1 < a THEN m1 := m1 + interval '1 month'; END IF;
    m2 := date_trunc('month', b, 'UTC');
    IF m1 < m2 THEN
      IF a < m1 THEN grain := 2; "lo" := a; "hi" := m1; sign := 1; RETURN NEXT; END IF;
      grain := 3; "lo" := m1; "hi" := m2; sign := 1; RETURN NEXT;
      IF m2 < b THEN grain := 2; "lo" := m2; "hi" := b; sign := 1; RETURN NEXT; END IF;
    ELSE
      grain := 2; "lo" := a; "hi" := b; sign := 1; RETURN NEXT;
    END IF;
  END IF;
  -- from each midnight to its instant: + for to_at, − for from_at (reversed when the instant is before it)
  FOREACH t IN ARRAY ARRAY[to_at, from_at] LOOP
    s := CASE WHEN t = to_at THEN 1 ELSE -1 END;
    d := date_trunc('day', t + interval '12 hours', 'UTC');
    h := date_trunc('hour', t, 'UTC');
    IF t >= d THEN
      IF d < h THEN grain := 1; "lo" := d; "hi" := h; sign := s; RETURN NEXT; END IF;
      IF h < t THEN grain := 0; "lo" := h; "hi" := t; sign := s; RETURN NEXT; END IF;
    ELSE
      IF h < t THEN h := h + interval '1 hour'; END IF;
      IF h < d THEN grain := 1; "lo" := h; "hi" := d; sign := -s; RETURN NEXT; END IF;
      IF t < h THEN grain := 0; "lo" := t; "hi" := h; sign := -s; RETURN NEXT; END IF;
    END IF;
  END LOOP;
  RETURN;
END;
$$;
