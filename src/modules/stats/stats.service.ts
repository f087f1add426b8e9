import type { EnrollmentStatus, RewardStatus } from '../../generated/prisma/enums.js';
import type { Money } from '../../lib/money.js';
import { sql, type SqlClient, type SqlFragment } from '../../lib/sql.js';
import {
  ceilQuarter,
  floorQuarter,
  type Measure,
  type SpanFilter,
  type SpanLevel,
  spanRows,
  windowPieces,
} from '../reporting/spans.js';
import {
  type StatsScope,
  type TimeWindow,
  tenantCondition,
  toBigInt,
  toInt,
  uuidArray,
  windowCondition,
} from './scope.js';

// Counters and sums for dashboards, computed by PostgreSQL: one GROUP BY per kind of figure for
// every parent asked at once (the GraphQL layer batches parents through per-request loaders), so
// a page of 100 partners costs the same number of statements as a page of 10, and no row is ever
// loaded into Node to be counted. The rules of what counts where are in ./README.md.

/** Amounts per currency, sorted by currency code (a currency is listed once it has a row, even if it sums to zero). */
export function moneyList(byCurrency: Map<string, bigint> | undefined): Money[] {
  if (!byCurrency) return [];
  return [...byCurrency.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([currency, amount]) => ({ amount, currency }));
}

function addTo(map: Map<string, bigint>, currency: string, amount: bigint): void {
  map.set(currency, (map.get(currency) ?? 0n) + amount);
}

function byId<T>(ids: readonly string[], empty: () => T): Map<string, T> {
  return new Map(ids.map((id) => [id, empty()]));
}

// ---------------------------------------------------------------------------------------------
// Programs
// ---------------------------------------------------------------------------------------------

export interface ProgramEnrollmentCounts {
  /** Enrollments, whatever their status. */
  partners: number;
  /** APPROVED enrollments whose partner is ACTIVE. */
  activePartners: number;
  /** Enrollments per status (the `totalCount` of `Program.enrollments(status:)`). */
  byStatus: Record<EnrollmentStatus, number>;
}

/** Enrollments per program; the window applies to the enrollment's createdAt. */
export async function programEnrollmentCounts(
  db: SqlClient,
  scope: StatsScope,
  programIds: readonly string[],
  window?: TimeWindow,
): Promise<Map<string, ProgramEnrollmentCounts>> {
  const rows = await db.sql<{
    id: string;
    partners: string;
    active: string;
    pending: string;
    approved: string;
    rejected: string;
  }>`
    SELECT e."programId" AS id,
            count(*)::text AS partners,
            count(*) FILTER (WHERE e."status" = 'APPROVED' AND pa."status" = 'ACTIVE')::text AS active,
            count(*) FILTER (WHERE e."status" = 'PENDING')::text AS pending,
            count(*) FILTER (WHERE e."status" = 'APPROVED')::text AS approved,
            count(*) FILTER (WHERE e."status" = 'REJECTED')::text AS rejected
       FROM "Enrollment" e
       JOIN "Partner" pa ON pa."id" = e."partnerId" AND pa."workspaceId" = e."workspaceId" AND pa."mode" = e."mode"
      WHERE ${tenantCondition('e', scope)} AND e."programId" = ANY(${uuidArray(programIds)}) AND ${windowCondition(sql`e."createdAt"`, window)}
      GROUP BY e."programId"`;
  const result = byId(
    programIds,
    (): ProgramEnrollmentCounts => ({
      partners: 0,
      activePartners: 0,
      byStatus: { PENDING: 0, APPROVED: 0, REJECTED: 0 },
    }),
  );
  for (const row of rows) {
    result.set(row.id, {
      partners: toInt(row.partners),
      activePartners: toInt(row.active),
      byStatus: { PENDING: toInt(row.pending), APPROVED: toInt(row.approved), REJECTED: toInt(row.rejected) },
    });
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Figures from the rollups
// ---------------------------------------------------------------------------------------------

// Clicks, referrals, conversions and rewards are read from the reporting rollups (spans of
// months, days and hours, quarter hours at the edges; ../reporting/spans.ts), so a figure costs
// the same at ten million clicks as at a hundred, and keeps its clicks when raw clicks are
// dropped for retention. A window whose ends are not on a quarter hour takes the minutes between
// an end and its quarter hour from the raw rows (`edges`): at most two slivers of 15 minutes.

type Row = Record<string, string | null>;

/** [from, to) cut into the quarter hours inside it (from the rollups) and the slivers at its ends (raw). */
export function splitWindow(window: TimeWindow | undefined): { inner: TimeWindow | null; edges: TimeWindow[] } {
  const from = window?.from ?? null;
  const to = window?.to ?? null;
  const cf = from ? ceilQuarter(from) : null;
  const ft = to ? floorQuarter(to) : null;
  if (from && to && cf && ft && cf.getTime() >= ft.getTime())
    return { inner: null, edges: from.getTime() < to.getTime() ? [{ from, to }] : [] };
  const edges: TimeWindow[] = [];
  if (from && cf && from.getTime() < cf.getTime()) edges.push({ from, to: cf });
  if (to && ft && ft.getTime() < to.getTime()) edges.push({ from: ft, to });
  return { inner: { from: cf, to: ft }, edges };
}

/** Either of the windows (none: FALSE). */
function anyWindow(column: SqlFragment, windows: readonly TimeWindow[]): SqlFragment {
  return windows.length
    ? sql`(${sql.join(
        windows.map((w) => windowCondition(column, w)),
        sql` OR `,
      )})`
    : sql`FALSE`;
}

/** Sums of `measures` over the window's inner quarter hours, grouped by `keys`, in one statement. */
async function rollupSums(
  db: SqlClient,
  scope: StatsScope,
  level: SpanLevel,
  filter: SpanFilter,
  inner: TimeWindow | null,
  keys: readonly ('programId' | 'partnerId' | 'linkId' | 'currency')[],
  measures: readonly Measure[],
): Promise<Row[]> {
  if (!inner) return [];
  const keyList = sql.raw(keys.map((k) => `x."${k}"::text AS "${k}"`).join(', '));
  const sums = sql.raw(measures.map((m) => `sum(x."${m}")::text AS "${m}"`).join(', '));
  return db.sql<Row>`
    WITH p AS (${windowPieces(inner.from, inner.to)})
    SELECT ${keyList}, ${sums} FROM ${spanRows('p', level, scope, filter)} x
     GROUP BY ${sql.raw(keys.map((_, i) => String(i + 1)).join(', '))}`;
}

/**
 * Unique clicks per program: counted (not discarded, so no bot's) and the first of their visitor
 * on their link in their UTC hour (`Click.isUnique`); the window applies to occurredAt.
 */
export async function programClickCounts(
  db: SqlClient,
  scope: StatsScope,
  programIds: readonly string[],
  window?: TimeWindow,
): Promise<Map<string, number>> {
  const { inner, edges } = splitWindow(window);
  const result = byId(programIds, () => 0);
  const add = (id: string | null | undefined, n: unknown) => id && result.set(id, (result.get(id) ?? 0) + toInt(n));
  const [rolled, raw] = await Promise.all([
    rollupSums(db, scope, 'program', { programIds }, inner, ['programId'], ['uniqueClicks']),
    edges.length
      ? db.sql<{ id: string; clicks: string }>`
    SELECT k."programId" AS id, count(*)::text AS clicks
       FROM "Click" k
      WHERE ${tenantCondition('k', scope)} AND k."programId" = ANY(${uuidArray(programIds)})
        AND NOT k."discarded" AND k."isUnique" AND ${anyWindow(sql`k."occurredAt"`, edges)}
      GROUP BY k."programId"`
      : [],
  ]);
  for (const row of rolled) add(row.programId, row.uniqueClicks);
  for (const row of raw) add(row.id, row.clicks);
  return result;
}

export interface ProgramReferralCounts {
  /** Referrals created in the window. */
  referrals: number;
  /** CONVERTED referrals that converted in the window (convertedAt, else createdAt). */
  convertedReferrals: number;
}

export async function programReferralCounts(
  db: SqlClient,
  scope: StatsScope,
  programIds: readonly string[],
  window?: TimeWindow,
): Promise<Map<string, ProgramReferralCounts>> {
  const { inner, edges } = splitWindow(window);
  const result = byId(programIds, () => ({ referrals: 0, convertedReferrals: 0 }));
  const add = (id: string | null | undefined, referrals: unknown, converted: unknown) => {
    const figures = id ? result.get(id) : undefined;
    if (!figures) return;
    figures.referrals += toInt(referrals);
    figures.convertedReferrals += toInt(converted);
  };
  const [rolled, raw] = await Promise.all([
    rollupSums(db, scope, 'program', { programIds }, inner, ['programId'], ['referrals', 'convertedReferrals']),
    edges.length
      ? db.sql<{ id: string; referrals: string; converted: string }>`
    SELECT r."programId" AS id,
            count(*) FILTER (WHERE ${anyWindow(sql`r."createdAt"`, edges)})::text AS referrals,
            count(*) FILTER (WHERE r."status" = 'CONVERTED' AND ${anyWindow(sql`coalesce(r."convertedAt", r."createdAt")`, edges)})::text AS converted
       FROM "Referral" r
      WHERE ${tenantCondition('r', scope)} AND r."programId" = ANY(${uuidArray(programIds)})
        AND (${anyWindow(sql`r."createdAt"`, edges)} OR ${anyWindow(sql`r."convertedAt"`, edges)})
      GROUP BY r."programId"`
      : [],
  ]);
  for (const row of rolled) add(row.programId, row.referrals, row.convertedReferrals);
  for (const row of raw) add(row.id, row.referrals, row.converted);
  return result;
}

export interface ProgramConversionFigures {
  /** ACCEPTED conversions other than refunds. */
  conversions: number;
  /** Per currency: the sum of ACCEPTED PURCHASE and SUBSCRIPTION amounts. */
  revenue: Map<string, bigint>;
}

/** Conversions and revenue per program; the window applies to occurredAt. */
export async function programConversionFigures(
  db: SqlClient,
  scope: StatsScope,
  programIds: readonly string[],
  window?: TimeWindow,
): Promise<Map<string, ProgramConversionFigures>> {
  const { inner, edges } = splitWindow(window);
  const result = byId(programIds, () => ({ conversions: 0, revenue: new Map<string, bigint>() }));
  // Rollup rows in a currency count only PURCHASE and SUBSCRIPTION conversions: one of them lists its currency.
  const [rolled, raw] = await Promise.all([
    rollupSums(db, scope, 'program', { programIds }, inner, ['programId', 'currency'], ['conversions', 'revenue']),
    edges.length
      ? db.sql<{ id: string; currency: string | null; conversions: string; revenue: string | null }>`
    SELECT c."programId" AS id, c."currency" AS currency,
            count(*) FILTER (WHERE c."type" <> 'REFUND')::text AS conversions,
            (sum(c."amount") FILTER (WHERE c."type" IN ('PURCHASE', 'SUBSCRIPTION')))::text AS revenue
       FROM "Conversion" c
      WHERE ${tenantCondition('c', scope)} AND c."programId" = ANY(${uuidArray(programIds)})
        AND c."status" = 'ACCEPTED' AND ${anyWindow(sql`c."occurredAt"`, edges)}
      GROUP BY c."programId", c."currency"`
      : [],
  ]);
  for (const row of rolled) {
    const figures = row.programId ? result.get(row.programId) : undefined;
    if (!figures) continue;
    figures.conversions += toInt(row.conversions);
    if (row.currency && toInt(row.conversions) !== 0) addTo(figures.revenue, row.currency, toBigInt(row.revenue));
  }
  for (const row of raw) {
    const figures = result.get(row.id);
    if (!figures) continue;
    figures.conversions += toInt(row.conversions);
    if (row.currency && row.revenue !== null) addTo(figures.revenue, row.currency, toBigInt(row.revenue));
  }
  return result;
}

/** Sums of rewards per status and currency. */
export type RewardSums = Record<RewardStatus, Map<string, bigint>>;

const emptyRewardSums = (): RewardSums => ({
  CREATED: new Map(),
  APPROVED: new Map(),
  PROCESSED: new Map(),
  CANCELED: new Map(),
  REJECTED: new Map(),
});

const STATUS_MEASURE: Record<RewardStatus, [amount: Measure, count: Measure]> = {
  CREATED: ['rewardsCreated', 'rewardsCreatedCount'],
  APPROVED: ['rewardsApproved', 'rewardsApprovedCount'],
  PROCESSED: ['rewardsProcessed', 'rewardsProcessedCount'],
  CANCELED: ['rewardsCanceled', 'rewardsCanceledCount'],
  REJECTED: ['rewardsRejected', 'rewardsRejectedCount'],
};

/** Every reward of the program (both recipients, clawbacks included) by status; window on createdAt. */
export async function programRewardSums(
  db: SqlClient,
  scope: StatsScope,
  programIds: readonly string[],
  window?: TimeWindow,
): Promise<Map<string, RewardSums>> {
  const { inner, edges } = splitWindow(window);
  const result = byId(programIds, emptyRewardSums);
  const statuses = Object.keys(STATUS_MEASURE) as RewardStatus[];
  const [rolled, raw] = await Promise.all([
    rollupSums(
      db,
      scope,
      'program',
      { programIds },
      inner,
      ['programId', 'currency'],
      statuses.flatMap((s) => STATUS_MEASURE[s]),
    ),
    edges.length
      ? db.sql<{ id: string; status: RewardStatus; currency: string; total: string }>`
    SELECT w."programId" AS id, w."status"::text AS status, w."currency" AS currency, sum(w."amount")::text AS total
       FROM "Reward" w
      WHERE ${tenantCondition('w', scope)} AND w."programId" = ANY(${uuidArray(programIds)}) AND ${anyWindow(sql`w."createdAt"`, edges)}
      GROUP BY w."programId", w."status", w."currency"`
      : [],
  ]);
  for (const row of rolled) {
    const sums = row.programId ? result.get(row.programId) : undefined;
    if (!sums || !row.currency) continue;
    for (const status of statuses) {
      const [amount, count] = STATUS_MEASURE[status];
      // listed once a reward is in it, even when it sums to zero (paid, then clawed back)
      if (toInt(row[count]) !== 0) addTo(sums[status], row.currency, toBigInt(row[amount]));
    }
  }
  for (const row of raw) addTo(result.get(row.id)![row.status], row.currency, toBigInt(row.total));
  return result;
}

// ---------------------------------------------------------------------------------------------
// Partners and links
// ---------------------------------------------------------------------------------------------

/** One link's clicks. */
export interface LinkClicks {
  /** Counted: not discarded (no bot's, none while its partner, program or enrollment was not active). */
  clicks: number;
  /** Counted and the first of their visitor on the link in their UTC hour (`Click.isUnique`). */
  unique: number;
  /** Discarded as a bot's or a link preview's (discardReason BOT). */
  bots: number;
}

/** A partner's clicks per link; the partner's figures (unique clicks) are sums of these. */
export interface PartnerClicks {
  /** Unique clicks of the partner (all programs, disabled links included). */
  total: number;
  /** Per referral link id. */
  byLink: Map<string, LinkClicks>;
  /** Unique clicks per program id. */
  byProgram: Map<string, number>;
}

export const NO_CLICKS: LinkClicks = Object.freeze({ clicks: 0, unique: 0, bots: 0 });

const ALL_TIME: TimeWindow = { from: null, to: null };

/**
 * The clicks of each partner, grouped by link: one read of the partners' link rollups gives
 * `PartnerStats.clicks` (unique clicks summed over every link of the partner, or over the links
 * of one program) and `ReferralLink.clicks`, `uniqueClicks` and `botClicks` (one link's counts).
 * A click carries the partner and the program of its link (copied from the link when the click
 * is recorded), so a link's clicks are all found under its partner.
 */
export async function partnerClicksByLink(
  db: SqlClient,
  scope: StatsScope,
  partnerIds: readonly string[],
): Promise<Map<string, PartnerClicks>> {
  const rows = await rollupSums(
    db,
    scope,
    'link',
    { partnerIds },
    ALL_TIME,
    ['partnerId', 'linkId', 'programId'],
    ['clicks', 'uniqueClicks', 'botClicks'],
  );
  const result = byId(partnerIds, (): PartnerClicks => ({ total: 0, byLink: new Map(), byProgram: new Map() }));
  for (const row of rows) {
    const figures = row.partnerId ? result.get(row.partnerId) : undefined;
    if (!figures || !row.linkId || !row.programId) continue;
    const counts = { clicks: toInt(row.clicks), unique: toInt(row.uniqueClicks), bots: toInt(row.botClicks) };
    if (counts.clicks === 0 && counts.unique === 0 && counts.bots === 0) continue;
    const link = figures.byLink.get(row.linkId);
    figures.byLink.set(
      row.linkId,
      link
        ? { clicks: link.clicks + counts.clicks, unique: link.unique + counts.unique, bots: link.bots + counts.bots }
        : counts,
    );
    figures.total += counts.unique;
    figures.byProgram.set(row.programId, (figures.byProgram.get(row.programId) ?? 0) + counts.unique);
  }
  return result;
}

export interface PartnerReferralCounts {
  totalReferrals: number;
  /** CONVERTED. */
  successfulReferrals: number;
  /** PENDING. */
  pendingReferrals: number;
}

export async function partnerReferralCounts(
  db: SqlClient,
  scope: StatsScope,
  partnerIds: readonly string[],
  programId?: string | null,
): Promise<Map<string, PartnerReferralCounts>> {
  const rows = await rollupSums(
    db,
    scope,
    'partner',
    { partnerIds, ...(programId ? { programIds: [programId] } : {}) },
    ALL_TIME,
    ['partnerId'],
    ['referrals', 'convertedReferrals', 'pendingReferrals'],
  );
  const result = byId(partnerIds, () => ({ totalReferrals: 0, successfulReferrals: 0, pendingReferrals: 0 }));
  for (const row of rows) {
    if (!row.partnerId || !result.has(row.partnerId)) continue;
    result.set(row.partnerId, {
      totalReferrals: toInt(row.referrals),
      successfulReferrals: toInt(row.convertedReferrals),
      pendingReferrals: toInt(row.pendingReferrals),
    });
  }
  return result;
}

/**
 * What each partner earned, per currency: their REFERRER rewards (clawbacks included, so the
 * figure is net of refunds) except CANCELED and REJECTED ones. Rewards for the referred customer
 * (recipient REFERRED) are the customer's, not the partner's.
 */
export async function partnerRewardTotals(
  db: SqlClient,
  scope: StatsScope,
  partnerIds: readonly string[],
  programId?: string | null,
): Promise<Map<string, Map<string, bigint>>> {
  const rows = await rollupSums(
    db,
    scope,
    'partner',
    { partnerIds, ...(programId ? { programIds: [programId] } : {}) },
    ALL_TIME,
    ['partnerId', 'currency'],
    ['referrerRewards', 'referrerRewardsCount'],
  );
  const result = byId(partnerIds, () => new Map<string, bigint>());
  for (const row of rows) {
    const totals = row.partnerId ? result.get(row.partnerId) : undefined;
    if (totals && row.currency && toInt(row.referrerRewardsCount) !== 0)
      addTo(totals, row.currency, toBigInt(row.referrerRewards));
  }
  return result;
}
