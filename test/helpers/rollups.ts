// Rollups against raw rows (test/rollups.test.ts, the rollup migration's test): the same grouping
// computed two ways — from "ReportingRollup" as the triggers kept it, and from the raw tables
// with the definitions of src/modules/reporting/README.md written out here on their own.

/** Runs one SQL statement and returns its rows (pglite.query, or Prisma's $queryRawUnsafe). */
export type Query = (text: string) => Promise<Array<Record<string, unknown>>>;

const MEASURES = [
  'clicks',
  'uniqueClicks',
  'referrals',
  'convertedReferrals',
  'conversions',
  'revenue',
  'rewardsCreated',
  'rewardsApproved',
  'rewardsProcessed',
  'rewardsCanceled',
  'rewardsRejected',
] as const;

const KEY = `"workspaceId"::text AS w, "mode"::text AS m, "programId"::text AS p, "partnerId"::text AS q, "linkId"::text AS l, to_char("bucket" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS b, "currency"::text AS c`;
const SUMS = MEASURES.map((m) => `sum("${m}")::text AS "${m}"`).join(', ');
const NONZERO = MEASURES.map((m) => `sum("${m}") <> 0`).join(' OR ');
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
  SELECT r."workspaceId", r."mode", r."programId", r."partnerId", coalesce(r."linkId", ${NIL}), ${bucket('r."createdAt"')}, '',
         ${zeros({ referrals: '1' })}
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
         })}
    FROM "Reward" w JOIN "Conversion" c ON c."id" = w."conversionId"`;

const grouped = (from: string) =>
  `SELECT ${KEY}, ${SUMS} FROM (${from}) t GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING ${NONZERO} ORDER BY 1, 2, 3, 4, 5, 6, 7`;

/** Every (program, partner, link, 15-minute bucket, currency) with something in it, from the raw tables. */
export const rawGroups = (query: Query) => query(grouped(RAW));

const COLUMNS = `"workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency", ${MEASURES.map((m) => `"${m}"`).join(', ')}`;

/** The same from the rollups as reads see them: "ReportingRollup" plus the deltas not folded yet. */
export const rollupGroups = (query: Query) =>
  query(grouped(`SELECT ${COLUMNS} FROM "ReportingRollup" UNION ALL SELECT ${COLUMNS} FROM "ReportingRollupDelta"`));

/** The same from "ReportingRollup" alone (what is stored once folded). */
export const storedRollupGroups = (query: Query) => query(grouped(`SELECT ${COLUMNS} FROM "ReportingRollup"`));
