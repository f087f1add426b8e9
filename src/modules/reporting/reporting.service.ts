import { DomainError } from '../../domain/errors.js';
import type { RewardStatus } from '../../generated/prisma/enums.js';
import { formatMinor } from '../../lib/money.js';
import { sql, type SqlClient, type SqlFragment } from '../../lib/sql.js';
import { ceilQuarter, floorQuarter, type SpanFilter, type SpanLevel, spanRows, windowPieces } from './spans.js';
import { type StatsScope, type TimeWindow, tenantCondition, toBigInt, toInt, uuidArray } from '../stats/scope.js';

// Time series, leaderboards and workspace totals, read from the rollups only (never the raw rows):
// each window or bucket is cut into months, days and hours of "ReportingRollupSpan" and quarter
// hours of "ReportingRollup", with the pending "ReportingRollupDelta" rows added (./spans.ts,
// ./README.md). Every function answers many parents with one statement.

export type Interval = 'DAY' | 'WEEK' | 'MONTH';
export type LeaderboardMetric = 'CLICKS' | 'CONVERTED_REFERRALS' | 'REVENUE' | 'REWARDS';

/** The most buckets a series may have. */
export const MAX_BUCKETS = 1000;
/** The most entries a leaderboard may list. */
export const MAX_LEADERBOARD = 100;

const NOMINAL_DAYS: Record<Interval, number> = { DAY: 1, WEEK: 7, MONTH: 28 };
const UNIT: Record<Interval, string> = { DAY: 'day', WEEK: 'week', MONTH: 'month' };
const STEP: Record<Interval, string> = { DAY: '1 day', WEEK: '7 days', MONTH: '1 month' };

const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

/**
 * An IANA time zone name (`Europe/Paris`, `UTC`), or VALIDATION. Offsets (`+05:30`) and POSIX
 * strings (`EST5EDT`-like `UTC+3`, whose sign PostgreSQL reads the other way round) are refused:
 * only names both Node's ICU and the IANA database know.
 */
export function checkTimezone(timezone: string, field: string[] = ['timezone']): string {
  const fail = () =>
    new DomainError(
      'VALIDATION',
      `Unknown time zone "${timezone.slice(0, 64)}": give an IANA time zone name such as "Europe/Paris", "America/New_York" or "UTC".`,
      field,
    );
  if (timezone.length > 64 || !ZONE_NAME.test(timezone) || /^(UTC|GMT)[+-]/i.test(timezone)) throw fail();
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw fail();
  }
  return timezone;
}

export interface SeriesArgs {
  interval: Interval;
  from: Date;
  to: Date;
  timezone: string;
}

/** Validates a series' arguments (VALIDATION naming the argument at fault). */
export function checkSeriesArgs(args: SeriesArgs): SeriesArgs {
  const timezone = checkTimezone(args.timezone);
  if (!(args.from.getTime() < args.to.getTime()))
    throw new DomainError('VALIDATION', '`from` must be before `to` (`from` is inclusive, `to` exclusive).', ['from']);
  const days = (args.to.getTime() - args.from.getTime()) / 86_400_000;
  if (days / NOMINAL_DAYS[args.interval] > MAX_BUCKETS - 2)
    throw new DomainError(
      'VALIDATION',
      `A series has at most ${MAX_BUCKETS} buckets: shorten the window to at most ${(MAX_BUCKETS - 2) * NOMINAL_DAYS[args.interval]} days for ${args.interval}, or use a longer interval.`,
      ['to'],
    );
  return { ...args, timezone };
}

/** About how many buckets a series has (for the query cost), 1 to MAX_BUCKETS. */
export function estimatedBuckets(args: { interval: Interval; from: Date; to: Date }): number {
  const days = (args.to.getTime() - args.from.getTime()) / 86_400_000;
  const n = Math.ceil(days / NOMINAL_DAYS[args.interval]) + 1;
  return Number.isFinite(n) ? Math.min(Math.max(n, 1), MAX_BUCKETS) : MAX_BUCKETS;
}

export interface BucketFigures {
  start: Date;
  clicks: number;
  referrals: number;
  convertedReferrals: number;
  conversions: number;
  revenue: Map<string, bigint>;
  rewards: Map<string, bigint>;
}

/** Which rollup column the parents' ids are matched against. */
export type SeriesDimension = 'programId' | 'partnerId' | 'linkId';

const SERIES_LEVEL: Record<SeriesDimension, SpanLevel> = { programId: 'program', partnerId: 'partner', linkId: 'link' };

function seriesFilter(dimension: SeriesDimension, ids: readonly string[], programId: string | null): SpanFilter {
  if (dimension === 'programId') return { programIds: ids };
  if (dimension === 'partnerId') return { partnerIds: ids, ...(programId ? { programIds: [programId] } : {}) };
  return { linkIds: ids, ...(programId ? { programIds: [programId] } : {}) };
}

/**
 * The series of each parent (programs, partners or links) in one statement: buckets of the
 * interval starting at local midnight in `timezone` (Monday for WEEK, the 1st for MONTH), from the
 * bucket containing `from` to the bucket containing the last instant before `to`, every one
 * present. Each bucket counts whole: its rollup quarter hours from its start to the next bucket's
 * start (23 or 25 hours on DST days). `programId` narrows partners' series to one program.
 */
export async function seriesFor(
  db: SqlClient,
  scope: StatsScope,
  dimension: SeriesDimension,
  ids: readonly string[],
  args: SeriesArgs,
  programId: string | null = null,
): Promise<Map<string, BucketFigures[]>> {
  const tz = args.timezone;
  const unit = UNIT[args.interval];
  const step = STEP[args.interval];
  const rows = await db.sql<{
    id: string;
    start: Date | string;
    currency: string | null;
    clicks: string | null;
    referrals: string | null;
    converted: string | null;
    conversions: string | null;
    revenue: string | null;
    rewards: string | null;
    has_revenue: boolean | null;
    has_rewards: boolean | null;
  }>`
    WITH b AS (
      SELECT (s AT TIME ZONE ${tz}::text) AS start, ((s + ${step}::interval) AT TIME ZONE ${tz}::text) AS stop
        FROM generate_series(date_trunc(${unit}::text, ${args.from}::timestamptz AT TIME ZONE ${tz}::text),
                             date_trunc(${unit}::text, (${args.to}::timestamptz - interval '1 millisecond') AT TIME ZONE ${tz}::text),
                             ${step}::interval) s
    ), p AS (
      SELECT b.start AS tag, q.* FROM b CROSS JOIN LATERAL "rollup_pieces"(b.start, b.stop) q
    ), f AS (
      SELECT x.${sql.ident(dimension)} AS id, x.tag AS start, x."currency",
             sum(x."uniqueClicks")::text AS clicks, sum(x."referrals")::text AS referrals,
             sum(x."convertedReferrals")::text AS converted, sum(x."conversions")::text AS conversions,
             sum(x."revenue")::text AS revenue,
             sum(x."rewardsCreated" + x."rewardsApproved" + x."rewardsProcessed")::text AS rewards,
             x."currency" <> '' AND (sum(x."revenue") <> 0 OR sum(x."conversions") <> 0) AS has_revenue,
             x."currency" <> '' AND (sum(x."rewardsCreatedCount") <> 0 OR sum(x."rewardsApprovedCount") <> 0 OR sum(x."rewardsProcessedCount") <> 0) AS has_rewards
        FROM ${spanRows('p', SERIES_LEVEL[dimension], scope, seriesFilter(dimension, ids, programId))} x
       GROUP BY 1, 2, 3
    )
    SELECT i.id::text AS id, b.start, f."currency", f.clicks, f.referrals, f.converted, f.conversions, f.revenue, f.rewards,
           f.has_revenue, f.has_rewards
      FROM b CROSS JOIN unnest(${uuidArray(ids)}) AS i(id)
      LEFT JOIN f ON f.id = i.id AND f.start = b.start
     ORDER BY i.id, b.start, f."currency"`;
  const result = new Map<string, BucketFigures[]>(ids.map((id) => [id, []]));
  for (const row of rows) {
    const list = result.get(row.id) ?? [];
    result.set(row.id, list);
    const start = new Date(row.start);
    let bucket = list.at(-1);
    if (!bucket || bucket.start.getTime() !== start.getTime()) {
      bucket = {
        start,
        clicks: 0,
        referrals: 0,
        convertedReferrals: 0,
        conversions: 0,
        revenue: new Map(),
        rewards: new Map(),
      };
      list.push(bucket);
    }
    if (row.currency === null) continue;
    bucket.clicks += toInt(row.clicks);
    bucket.referrals += toInt(row.referrals);
    bucket.convertedReferrals += toInt(row.converted);
    bucket.conversions += toInt(row.conversions);
    if (row.has_revenue) bucket.revenue.set(row.currency, toBigInt(row.revenue));
    if (row.has_rewards) bucket.rewards.set(row.currency, toBigInt(row.rewards));
  }
  return result;
}

export interface LeaderboardRow {
  rank: number;
  partnerId: string;
  value: string;
}

const METRIC_VALUE: Record<LeaderboardMetric, SqlFragment> = {
  CLICKS: sql`sum(x."uniqueClicks")`,
  CONVERTED_REFERRALS: sql`sum(x."convertedReferrals")`,
  REVENUE: sql`sum(x."revenue") FILTER (WHERE x."currency" = p."currency")`,
  REWARDS: sql`sum(x."rewardsCreated" + x."rewardsApproved" + x."rewardsProcessed") FILTER (WHERE x."currency" = p."currency")`,
};

/**
 * The top `first` partners of each program by `metric` over [from, to) (rollup quarter hours
 * starting in it), in one statement. Money metrics count the program's currency only. Partners
 * with nothing (0) are not listed; ties share a rank (1, 2, 2, 4), ordered by partner id.
 */
export async function leaderboards(
  db: SqlClient,
  scope: StatsScope,
  programIds: readonly string[],
  metric: LeaderboardMetric,
  window: TimeWindow,
  first: number,
): Promise<Map<string, LeaderboardRow[]>> {
  const rows = await db.sql<{ programId: string; partnerId: string; value: string; currency: string; rank: string }>`
    WITH p AS (${windowPieces(window.from ? floorQuarter(window.from) : null, window.to ? ceilQuarter(window.to) : null)})
    SELECT t."programId", t."partnerId", t.value, t.currency, t.rank::text AS rank FROM (
      SELECT v.*, rank() OVER (PARTITION BY v."programId" ORDER BY v.amount DESC) AS rank,
             row_number() OVER (PARTITION BY v."programId" ORDER BY v.amount DESC, v."partnerId") AS n
        FROM (
          SELECT x."programId", x."partnerId"::text AS "partnerId", p."currency",
                 coalesce(${METRIC_VALUE[metric]}, 0) AS amount, coalesce(${METRIC_VALUE[metric]}, 0)::text AS value
            FROM ${spanRows('p', 'partner', scope, { programIds })} x
            JOIN "Program" p ON p."id" = x."programId"
           GROUP BY x."programId", x."partnerId", p."currency"
        ) v
       WHERE v.amount > 0
    ) t
     WHERE t.n <= ${String(first)}::int
     ORDER BY t."programId", t.n`;
  const result = new Map<string, LeaderboardRow[]>(programIds.map((id) => [id, []]));
  for (const row of rows) {
    const value =
      metric === 'REVENUE' || metric === 'REWARDS' ? formatMinor(toBigInt(row.value), row.currency) : row.value;
    result.get(row.programId)?.push({ rank: toInt(row.rank), partnerId: row.partnerId, value });
  }
  return result;
}

export interface WorkspaceFigures {
  programs: number;
  partners: number;
  clicks: number;
  conversions: number;
  revenue: Map<string, bigint>;
  rewards: Record<RewardStatus, Map<string, bigint>>;
}

/**
 * The workspace's totals in the caller's mode over [from, to): programs and partners by their
 * createdAt; the rest from the rollups (quarter hours starting in the window). One statement.
 */
export async function workspaceFigures(
  db: SqlClient,
  scope: StatsScope,
  window: TimeWindow,
): Promise<WorkspaceFigures> {
  const created = (alias: string) =>
    sql`${window.from ? sql`AND ${sql.ident(alias, 'createdAt')} >= ${window.from}::timestamptz` : sql``} ${window.to ? sql`AND ${sql.ident(alias, 'createdAt')} < ${window.to}::timestamptz` : sql``}`;
  const rows = await db.sql<{
    programs: string;
    partners: string;
    currency: string | null;
    clicks: string | null;
    conversions: string | null;
    revenue: string | null;
    has_revenue: boolean | null;
    created: string | null;
    approved: string | null;
    processed: string | null;
    canceled: string | null;
    rejected: string | null;
    has_created: boolean | null;
    has_approved: boolean | null;
    has_processed: boolean | null;
    has_canceled: boolean | null;
    has_rejected: boolean | null;
  }>`
    WITH p AS (${windowPieces(window.from ? floorQuarter(window.from) : null, window.to ? ceilQuarter(window.to) : null)}),
    f AS (
      SELECT x."currency", sum(x."uniqueClicks")::text AS clicks, sum(x."conversions")::text AS conversions,
             sum(x."revenue")::text AS revenue,
             x."currency" <> '' AND (sum(x."revenue") <> 0 OR sum(x."conversions") <> 0) AS has_revenue,
             sum(x."rewardsCreated")::text AS created, sum(x."rewardsApproved")::text AS approved,
             sum(x."rewardsProcessed")::text AS processed, sum(x."rewardsCanceled")::text AS canceled,
             sum(x."rewardsRejected")::text AS rejected,
             sum(x."rewardsCreatedCount") <> 0 AS has_created, sum(x."rewardsApprovedCount") <> 0 AS has_approved,
             sum(x."rewardsProcessedCount") <> 0 AS has_processed, sum(x."rewardsCanceledCount") <> 0 AS has_canceled,
             sum(x."rewardsRejectedCount") <> 0 AS has_rejected
        FROM ${spanRows('p', 'program', { ...scope, partnerId: null }, {})} x
       GROUP BY x."currency"
    )
    SELECT (SELECT count(*) FROM "Program" p WHERE ${tenantCondition('p', { ...scope, partnerId: null })} ${created('p')})::text AS programs,
           (SELECT count(*) FROM "Partner" q WHERE ${tenantCondition('q', { ...scope, partnerId: null })} ${created('q')})::text AS partners,
           f.*
      FROM (SELECT 1) one LEFT JOIN f ON TRUE`;
  const figures: WorkspaceFigures = {
    programs: toInt(rows[0]?.programs),
    partners: toInt(rows[0]?.partners),
    clicks: 0,
    conversions: 0,
    revenue: new Map(),
    rewards: {
      CREATED: new Map(),
      APPROVED: new Map(),
      PROCESSED: new Map(),
      CANCELED: new Map(),
      REJECTED: new Map(),
    },
  };
  for (const row of rows) {
    if (row.currency === null) continue;
    figures.clicks += toInt(row.clicks);
    figures.conversions += toInt(row.conversions);
    if (row.has_revenue) figures.revenue.set(row.currency, toBigInt(row.revenue));
    if (row.currency === '') continue;
    if (row.has_created) figures.rewards.CREATED.set(row.currency, toBigInt(row.created));
    if (row.has_approved) figures.rewards.APPROVED.set(row.currency, toBigInt(row.approved));
    if (row.has_processed) figures.rewards.PROCESSED.set(row.currency, toBigInt(row.processed));
    if (row.has_canceled) figures.rewards.CANCELED.set(row.currency, toBigInt(row.canceled));
    if (row.has_rejected) figures.rewards.REJECTED.set(row.currency, toBigInt(row.rejected));
  }
  return figures;
}
