-- The rollup triggers of the conversion path without a parse and a plan per statement (issue 20:
-- recordConversion's write path).
--
-- Their helpers were SQL functions: a LANGUAGE sql function that is not inlined (these cannot be:
-- see 20261207198000_rollups) is parsed, analysed and planned again on every execution of the
-- statement that calls it, nothing kept across statements. Every INSERT or UPDATE of a referral,
-- conversion or reward paid that in its statement trigger: the grouped INSERT of
-- "ReportingRollupDelta_add" and the delta query of each row's "…_rollup_delta". Profiled on
-- PostgreSQL 15 (perf, `scripts/bench/conversions.ts`' new-referral load): 36 % of the backends'
-- CPU was under fmgr_sql, most of it the parser and the planner.
--
-- The same statements in PL/pgSQL functions: a PL/pgSQL function prepares each of its statements
-- once per session and keeps the plan (re-planned when a table it reads changes, as any cached
-- plan). `plan_cache_mode = force_generic_plan`: otherwise the plan cache plans again for the
-- parameters of each call whenever that looks cheaper than the generic plan, and for these it
-- always does (a custom plan folds the row's fields into constants) — a plan per call again. The
-- generic plans have nothing to gain from the values: one row in, at most two out (the deltas'
-- array: the rows of one statement). Same signatures, same results, same search_path settings
-- (the bucket is cast to the column's timestamptz(3), as RETURN QUERY wants the exact column
-- types: a quarter hour has no fraction of a second to lose).
-- The click path's "ReportingRollup_apply" and the span trigger's "ReportingRollupSpan_add" are
-- not changed here.

CREATE OR REPLACE FUNCTION "Referral_rollup_delta"(r "Referral", s int) RETURNS SETOF "ReportingRollup" LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN QUERY
    SELECT r."workspaceId", r."mode", r."programId", r."partnerId",
           coalesce(r."linkId", '00000000-0000-0000-0000-000000000000'::uuid), "rollup_bucket"(r."createdAt")::timestamptz(3), ''::varchar(3),
           0::bigint, 0::bigint, s::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
           0::bigint, CASE WHEN r."status" = 'PENDING' THEN s ELSE 0 END::bigint, 0::bigint,
           0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
    UNION ALL
    SELECT r."workspaceId", r."mode", r."programId", r."partnerId",
           coalesce(r."linkId", '00000000-0000-0000-0000-000000000000'::uuid),
           "rollup_bucket"(coalesce(r."convertedAt", r."createdAt"))::timestamptz(3), ''::varchar(3),
           0::bigint, 0::bigint, 0::bigint, s::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
           0::bigint, 0::bigint, 0::bigint,
           0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
     WHERE r."status" = 'CONVERTED';
END;
$$;

CREATE OR REPLACE FUNCTION "Conversion_rollup_delta"(c "Conversion", s int) RETURNS SETOF "ReportingRollup" LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN QUERY
    SELECT c."workspaceId", c."mode", c."programId", c."partnerId",
           coalesce(c."linkId", '00000000-0000-0000-0000-000000000000'::uuid), "rollup_bucket"(c."occurredAt")::timestamptz(3),
           CASE WHEN c."type" IN ('PURCHASE', 'SUBSCRIPTION') AND c."currency" IS NOT NULL THEN c."currency" ELSE '' END::varchar(3),
           0::bigint, 0::bigint, 0::bigint, 0::bigint, s::bigint,
           CASE WHEN c."type" IN ('PURCHASE', 'SUBSCRIPTION') AND c."currency" IS NOT NULL THEN s * coalesce(c."amount", 0) ELSE 0 END::bigint,
           0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint,
           0::bigint, 0::bigint, 0::bigint,
           0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint
     WHERE c."status" = 'ACCEPTED' AND c."type" <> 'REFUND' AND c."programId" IS NOT NULL AND c."partnerId" IS NOT NULL;
END;
$$;

CREATE OR REPLACE FUNCTION "Reward_rollup_delta"(w "Reward", s int) RETURNS SETOF "ReportingRollup" LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN QUERY
    SELECT w."workspaceId", w."mode", w."programId", w."partnerId",
           coalesce((SELECT c."linkId" FROM "Conversion" c WHERE c."id" = w."conversionId"), '00000000-0000-0000-0000-000000000000'::uuid),
           "rollup_bucket"(w."createdAt")::timestamptz(3), w."currency",
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
           CASE WHEN w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED') THEN s ELSE 0 END::bigint;
END;
$$;

CREATE OR REPLACE FUNCTION "ReportingRollupDelta_add"(deltas "ReportingRollup"[]) RETURNS void LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
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
            OR d."rewardsProcessed" <> 0 OR d."rewardsCanceled" <> 0 OR d."rewardsRejected" <> 0));
END;
$$;
