// Rollups against raw rows (test/rollups.test.ts, the rollup migration's test): the same grouping
// computed two ways — from "ReportingRollup" as the triggers kept it, and from the raw tables
// with the definitions of src/modules/reporting/README.md written out here on their own.

import { MEASURES as ROLLUP_MEASURES } from '../../src/modules/reporting/spans.js';

/** Runs one SQL statement and returns its rows (pglite.query, or Prisma's $queryRawUnsafe). */
export type Query = (text: string) => Promise<Array<Record<string, unknown>>>;

// The measures are the application's (their definitions below are written out on their own).
const MEASURES = ROLLUP_MEASURES;

/** The measures before the migration 20261208100000_rollup_spans (for tests of older migrations). */
export const FIRST_MEASURES = MEASURES.slice(0, 11);
type Measures = readonly (typeof MEASURES)[number][];

const KEY = `"workspaceId"::text AS w, "mode"::text AS m, "programId"::text AS p, "partnerId"::text AS q, "linkId"::text AS l, to_char("bucket" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS b, "currency"::text AS c`;
const sums = (measures: Measures) => measures.map((m) => `sum("${m}")::text AS "${m}"`).join(', ');
const nonzero = (measures: Measures) => measures.map((m) => `sum("${m}") <> 0`).join(' OR ');
const NIL = `'00000000-0000-0000-0000-000000000000'::uuid`;
const Q = `date_bin('15 minutes', %, TIMESTAMPTZ '2000-01-01 00:00:00+00')`;
const bucket = (column: string) => Q.replace('%', column);
const zeros = (set: Partial<Record<(typeof MEASURES)[number], string>>) =>
  MEASURES.map((m) => `${set[m] ?? '0'}::bigint AS "${m}"`).join(', ');

const RAW = `
  SELECT k."workspaceId", k."mode", k."programId", k."partnerId", k."linkId", ${bucket('k."occurredAt"')} AS "bucket", '' AS "currency",
         ${zeros({ clicks: '1', uniqueClicks: 'CASE WHEN k."isUnique" THEN 1 ELSE 0 END' })}
    FROM "Click" k WHERE NOT k."discarded"
  UNION ALL
  SELECT k."workspaceId", k."mode", k."programId", k."partnerId", k."linkId", ${bucket('k."occurredAt"')} AS "bucket", '' AS "currency",
         ${zeros({ botClicks: '1' })}
    FROM "Click" k WHERE k."discarded" AND k."discardReason" = 'BOT'
  UNION ALL
  SELECT r."workspaceId", r."mode", r."programId", r."partnerId", coalesce(r."linkId", ${NIL}), ${bucket('r."createdAt"')}, '',
         ${zeros({ referrals: '1', pendingReferrals: `CASE WHEN r."status" = 'PENDING' THEN 1 ELSE 0 END` })}
    FROM "Referral" r
  UNION ALL
  SELECT r."workspaceId", r."mode", r."programId", r."partnerId", coalesce(r."linkId", ${NIL}), ${bucket('coalesce(r."convertedAt", r."createdAt")')}, '',
         ${zeros({ convertedReferrals: '1' })}
    FROM "Referral" r WHERE r."status" = 'CONVERTED'
  UNION ALL
  SELECT c."workspaceId", c."mode", c."programId", c."partnerId", coalesce(c."linkId", ${NIL}), ${bucket('c."occurredAt"')},
         CASE WHEN c."type" IN ('PURCHASE', 'SUBSCRIPTION') THEN coalesce(c."currency", '') ELSE '' END,
         ${zeros({ conversions: '1', revenue: `CASE WHEN c."type" IN ('PURCHASE', 'SUBSCRIPTION') THEN coalesce(c."amount", 0) ELSE 0 END` })}
    FROM "Conversion" c WHERE c."status" = 'ACCEPTED' AND c."type" <> 'REFUND' AND c."programId" IS NOT NULL AND c."partnerId" IS NOT NULL
  UNION ALL
  SELECT w."workspaceId", w."mode", w."programId", w."partnerId", coalesce(c."linkId", ${NIL}), ${bucket('w."createdAt"')}, w."currency",
         ${zeros({
           rewardsCreated: `CASE WHEN w."status" = 'CREATED' THEN w."amount" ELSE 0 END`,
           rewardsApproved: `CASE WHEN w."status" = 'APPROVED' THEN w."amount" ELSE 0 END`,
           rewardsProcessed: `CASE WHEN w."status" = 'PROCESSED' THEN w."amount" ELSE 0 END`,
           rewardsCanceled: `CASE WHEN w."status" = 'CANCELED' THEN w."amount" ELSE 0 END`,
           rewardsRejected: `CASE WHEN w."status" = 'REJECTED' THEN w."amount" ELSE 0 END`,
           referrerRewards: `CASE WHEN w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED') THEN w."amount" ELSE 0 END`,
           rewardsCreatedCount: `CASE WHEN w."status" = 'CREATED' THEN 1 ELSE 0 END`,
           rewardsApprovedCount: `CASE WHEN w."status" = 'APPROVED' THEN 1 ELSE 0 END`,
           rewardsProcessedCount: `CASE WHEN w."status" = 'PROCESSED' THEN 1 ELSE 0 END`,
           rewardsCanceledCount: `CASE WHEN w."status" = 'CANCELED' THEN 1 ELSE 0 END`,
           rewardsRejectedCount: `CASE WHEN w."status" = 'REJECTED' THEN 1 ELSE 0 END`,
           referrerRewardsCount: `CASE WHEN w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED') THEN 1 ELSE 0 END`,
         })}
    FROM "Reward" w JOIN "Conversion" c ON c."id" = w."conversionId"`;

const grouped = (from: string, measures: Measures) =>
  `SELECT ${KEY}, ${sums(measures)} FROM (${from}) t GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING ${nonzero(measures)} ORDER BY 1, 2, 3, 4, 5, 6, 7`;

const measuresOf = (measures: Measures) =>
  `SELECT "workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency", ${measures.map((m) => `"${m}"`).join(', ')} FROM`;

/** Every (program, partner, link, 15-minute bucket, currency) with something in it, from the raw tables. */
export const rawGroups = (query: Query, measures: Measures = MEASURES) =>
  query(grouped(`${measuresOf(measures)} (${RAW}) raw`, measures));

const COLUMNS = `"workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency"`;
const columns = (measures: Measures) => `${COLUMNS}, ${measures.map((m) => `"${m}"`).join(', ')}`;

/** The same from the rollups as reads see them: "ReportingRollup" plus the deltas not folded yet. */
export const rollupGroups = (query: Query, measures: Measures = MEASURES) =>
  query(
    grouped(
      `SELECT ${columns(measures)} FROM "ReportingRollup" UNION ALL SELECT ${columns(measures)} FROM "ReportingRollupDelta"`,
      measures,
    ),
  );

/** The same from "ReportingRollup" alone (what is stored once folded). */
export const storedRollupGroups = (query: Query, measures: Measures = MEASURES) =>
  query(grouped(`SELECT ${columns(measures)} FROM "ReportingRollup"`, measures));

/**
 * The span rows ("ReportingRollupSpan") that differ from "ReportingRollup" summed per level and
 * grain the same way (written out here on its own): empty when the spans are right.
 */
export const spanMismatches = (query: Query) => {
  const sumsOf = MEASURES.map((m) => `sum("${m}")::bigint AS "${m}"`).join(', ');
  const expected = `
    SELECT x."workspaceId", x."mode", l.level::smallint AS "level", g.grain::smallint AS "grain", x."programId",
           CASE WHEN l.level >= 1 THEN x."partnerId" ELSE ${NIL} END AS "partnerId",
           CASE WHEN l.level = 2 THEN x."linkId" ELSE ${NIL} END AS "linkId",
           date_trunc(g.unit, x."bucket" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS "bucket", x."currency", ${sumsOf}
      FROM "ReportingRollup" x, (VALUES (0), (1), (2)) l(level), (VALUES (1, 'hour'), (2, 'day'), (3, 'month')) g(grain, unit)
     GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9`;
  const stored = `SELECT "workspaceId", "mode", "level", "grain", "programId", "partnerId", "linkId", "bucket", "currency", ${MEASURES.map((m) => `"${m}"`).join(', ')} FROM "ReportingRollupSpan"`;
  return query(`(${expected} EXCEPT ${stored}) UNION ALL (${stored} EXCEPT ${expected}) LIMIT 10`);
};
