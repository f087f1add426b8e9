import { sql, type SqlFragment } from '../../lib/sql.js';
import { type StatsScope, tenantCondition, uuidArray } from '../stats/scope.js';

// Reading the rollups over any window at a cost that does not grow with the window's length or
// the facts in it: the window is cut into signed pieces of one grain each by the SQL function
// "rollup_pieces" (months, days, hours from "ReportingRollupSpan"; quarter hours from
// "ReportingRollup"), and the pending "ReportingRollupDelta" rows of each piece are added. See
// ./README.md, "Spans", and the migration 20261208100000_rollup_spans.

/** The rollup measures, in the order of the tables' columns. */
export const MEASURES = [
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
  'botClicks',
  'pendingReferrals',
  'referrerRewards',
  'rewardsCreatedCount',
  'rewardsApprovedCount',
  'rewardsProcessedCount',
  'rewardsCanceledCount',
  'rewardsRejectedCount',
  'referrerRewardsCount',
] as const;
export type Measure = (typeof MEASURES)[number];

/** Program totals (0), program-and-partner totals (1), link rows (2): "ReportingRollupSpan"."level". */
export type SpanLevel = 'program' | 'partner' | 'link';
const LEVEL: Record<SpanLevel, number> = { program: 0, partner: 1, link: 2 };
const NIL = '00000000-0000-0000-0000-000000000000';

/** Which rows: of these programs, partners or links (each optional; all given must match). */
export interface SpanFilter {
  programIds?: readonly string[];
  partnerIds?: readonly string[];
  linkIds?: readonly string[];
}

/** A quarter hour in milliseconds: rollup buckets start on multiples of it (UTC). */
export const QUARTER_HOUR_MS = 900_000;
export const floorQuarter = (at: Date): Date => new Date(Math.floor(at.getTime() / QUARTER_HOUR_MS) * QUARTER_HOUR_MS);
export const ceilQuarter = (at: Date): Date => new Date(Math.ceil(at.getTime() / QUARTER_HOUR_MS) * QUARTER_HOUR_MS);

/**
 * Pieces of one window for `WITH p AS (…)`: columns `tag` (NULL), `grain`, `lo`, `hi`, `sign`.
 * `from` and `to` must be on quarter hours (or null: open).
 */
export function windowPieces(from: Date | null | undefined, to: Date | null | undefined): SqlFragment {
  return sql`SELECT NULL::timestamptz AS tag, q.* FROM "rollup_pieces"(${from ?? null}::timestamptz, ${to ?? null}::timestamptz) q`;
}

function conditions(alias: string, scope: StatsScope, filter: SpanFilter): SqlFragment {
  const parts: SqlFragment[] = [tenantCondition(alias, scope)];
  if (filter.programIds) parts.push(sql`${sql.ident(alias, 'programId')} = ANY(${uuidArray(filter.programIds)})`);
  else
    parts.push(
      sql`${sql.ident(alias, 'programId')} IN (SELECT g."id" FROM "Program" g WHERE ${tenantCondition('g', { ...scope, partnerId: null })})`,
    );
  if (filter.partnerIds) parts.push(sql`${sql.ident(alias, 'partnerId')} = ANY(${uuidArray(filter.partnerIds)})`);
  if (filter.linkIds) parts.push(sql`${sql.ident(alias, 'linkId')} = ANY(${uuidArray(filter.linkIds)})`);
  return sql.join(parts, sql` AND `);
}

const columns = (alias: string) =>
  sql.raw(
    ['programId', 'partnerId', 'linkId', 'bucket', 'currency', ...MEASURES].map((c) => `${alias}."${c}"`).join(', '),
  );

/**
 * The rollup rows of every piece of the CTE `pieces` (`tag`, `grain`, `lo`, `hi`, `sign`), each
 * measure multiplied by its piece's sign, for `FROM (…) x`: columns `tag`, `programId`,
 * `partnerId`, `linkId` (nil above the level), `currency` and the measures. Summed per tag (and
 * per whatever of the level's keys the caller groups by), they give each tag's window.
 */
export function spanRows(pieces: string, level: SpanLevel, scope: StatsScope, filter: SpanFilter): SqlFragment {
  const p = sql.ident(pieces);
  const levelKeys =
    level === 'program'
      ? sql`s."partnerId" = ${NIL}::uuid AND s."linkId" = ${NIL}::uuid`
      : level === 'partner'
        ? sql`s."linkId" = ${NIL}::uuid`
        : sql`TRUE`;
  // Quarter-hour rows and deltas carry every key; above the link level, the keys below are nil.
  const project = (alias: string) =>
    sql.raw(
      [
        `${alias}."programId"`,
        level === 'program' ? `'${NIL}'::uuid AS "partnerId"` : `${alias}."partnerId"`,
        level === 'link' ? `${alias}."linkId"` : `'${NIL}'::uuid AS "linkId"`,
        `${alias}."currency"`,
        ...MEASURES.map((m) => `pc.sign * ${alias}."${m}" AS "${m}"`),
      ].join(', '),
    );
  return sql`(
    SELECT pc.tag, ${project('x')}
      FROM ${p} pc CROSS JOIN LATERAL (
        SELECT ${columns('s')} FROM "ReportingRollupSpan" s
         WHERE pc.grain > 0 AND ${conditions('s', scope, filter)} AND s."level" = ${String(LEVEL[level])}::smallint
           AND s."grain" = pc.grain AND ${levelKeys} AND s."bucket" >= pc.lo AND s."bucket" < pc.hi
        UNION ALL
        SELECT ${columns('r')} FROM "ReportingRollup" r
         WHERE pc.grain = 0 AND ${conditions('r', scope, filter)} AND r."bucket" >= pc.lo AND r."bucket" < pc.hi
      ) x
    UNION ALL
    SELECT pc.tag, ${project('d')}
      FROM ${p} pc JOIN "ReportingRollupDelta" d ON d."bucket" >= pc.lo AND d."bucket" < pc.hi
     WHERE ${conditions('d', scope, filter)}
  )`;
}
