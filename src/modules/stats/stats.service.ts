import type { EnrollmentStatus, RewardStatus } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import type { Money } from '../../lib/money.js';
import { sql, type SqlClient, type SqlFragment } from '../../lib/sql.js';

// Counters and sums for dashboards, computed by PostgreSQL: one GROUP BY per kind of figure for
// every parent asked at once (the GraphQL layer batches parents through per-request loaders), so
// a page of 100 partners costs the same number of statements as a page of 10, and no row is ever
// loaded into Node to be counted. The rules of what counts where are in ./README.md.

/** Where figures are read: a tenant, optionally narrowed to one partner (a PARTNER credential). */
export interface StatsScope extends Tenant {
  /** Set: only this partner's rows count; everyone else's figures are zero. */
  partnerId?: string | null;
}

/** A half-open time window [from, to); either end may be open. */
export interface TimeWindow {
  from?: Date | null;
  to?: Date | null;
}

// ---------------------------------------------------------------------------------------------
// SQL plumbing
// ---------------------------------------------------------------------------------------------

// Statements run on a SqlClient (lib/sql.ts): `Database` itself, or a Prisma (transaction) client
// through `prismaSql`, e.g. to read a balance inside a write. Every value sent is a string, a
// Date, a string[] or null, and every figure read back is cast to text in SQL, so node-postgres
// and PGlite (which parse bigint and numeric into different JS types) give the same strings; they
// become BigInt or number here, never a float.

/** `t."workspaceId" = … AND t."mode" = …` (plus the partner restriction) for table alias `t`. */
export function tenantCondition(t: string, scope: StatsScope, partnerColumn: string | null = 'partnerId'): SqlFragment {
  const alias = sql.ident(t);
  const tenant = sql`${alias}."workspaceId" = ${scope.workspaceId}::uuid AND ${alias}."mode" = ${scope.mode}::"Mode"`;
  if (!scope.partnerId || !partnerColumn) return tenant;
  return sql`${tenant} AND ${sql.ident(t, partnerColumn)} = ${scope.partnerId}::uuid`;
}

/** The ids as one uuid[] parameter, for `= ANY(…)`. */
export const uuidArray = (ids: readonly string[]): SqlFragment => sql`${[...ids]}::uuid[]`;

/** A condition on `column` for the window, or TRUE when the window is open on both ends. */
export function windowCondition(column: SqlFragment, window: TimeWindow | undefined): SqlFragment {
  const parts: SqlFragment[] = [];
  if (window?.from) parts.push(sql`${column} >= ${window.from}::timestamptz`);
  if (window?.to) parts.push(sql`${column} < ${window.to}::timestamptz`);
  return parts.length ? sql`(${sql.join(parts, sql` AND `)})` : sql`TRUE`;
}

export const toInt = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value));
export const toBigInt = (value: unknown): bigint =>
  value === null || value === undefined ? 0n : BigInt(String(value));

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
  const rows = await db.sql<{ id: string; clicks: string }>`
    SELECT k."programId" AS id, count(*)::text AS clicks
       FROM "Click" k
      WHERE ${tenantCondition('k', scope)} AND k."programId" = ANY(${uuidArray(programIds)})
        AND NOT k."discarded" AND k."isUnique" AND ${windowCondition(sql`k."occurredAt"`, window)}
      GROUP BY k."programId"`;
  const result = byId(programIds, () => 0);
  for (const row of rows) result.set(row.id, toInt(row.clicks));
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
  const rows = await db.sql<{ id: string; referrals: string; converted: string }>`
    SELECT r."programId" AS id,
            count(*) FILTER (WHERE ${windowCondition(sql`r."createdAt"`, window)})::text AS referrals,
            count(*) FILTER (WHERE r."status" = 'CONVERTED' AND ${windowCondition(sql`coalesce(r."convertedAt", r."createdAt")`, window)})::text AS converted
       FROM "Referral" r
      WHERE ${tenantCondition('r', scope)} AND r."programId" = ANY(${uuidArray(programIds)})
      GROUP BY r."programId"`;
  const result = byId(programIds, () => ({ referrals: 0, convertedReferrals: 0 }));
  for (const row of rows)
    result.set(row.id, { referrals: toInt(row.referrals), convertedReferrals: toInt(row.converted) });
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
  // One row per (program, currency); SIGNUP conversions carry no amount and group under NULL.
  const rows = await db.sql<{ id: string; currency: string | null; conversions: string; revenue: string | null }>`
    SELECT c."programId" AS id, c."currency" AS currency,
            count(*) FILTER (WHERE c."type" <> 'REFUND')::text AS conversions,
            (sum(c."amount") FILTER (WHERE c."type" IN ('PURCHASE', 'SUBSCRIPTION')))::text AS revenue
       FROM "Conversion" c
      WHERE ${tenantCondition('c', scope)} AND c."programId" = ANY(${uuidArray(programIds)})
        AND c."status" = 'ACCEPTED' AND ${windowCondition(sql`c."occurredAt"`, window)}
      GROUP BY c."programId", c."currency"`;
  const result = byId(programIds, () => ({ conversions: 0, revenue: new Map<string, bigint>() }));
  for (const row of rows) {
    const figures = result.get(row.id)!;
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

/** Every reward of the program (both recipients, clawbacks included) by status; window on createdAt. */
export async function programRewardSums(
  db: SqlClient,
  scope: StatsScope,
  programIds: readonly string[],
  window?: TimeWindow,
): Promise<Map<string, RewardSums>> {
  const rows = await db.sql<{ id: string; status: RewardStatus; currency: string; total: string }>`
    SELECT w."programId" AS id, w."status"::text AS status, w."currency" AS currency, sum(w."amount")::text AS total
       FROM "Reward" w
      WHERE ${tenantCondition('w', scope)} AND w."programId" = ANY(${uuidArray(programIds)}) AND ${windowCondition(sql`w."createdAt"`, window)}
      GROUP BY w."programId", w."status", w."currency"`;
  const result = byId(programIds, emptyRewardSums);
  for (const row of rows) addTo(result.get(row.id)![row.status], row.currency, toBigInt(row.total));
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

/**
 * The clicks of each partner, grouped by link: one pass over the partners' clicks gives
 * `PartnerStats.clicks` (unique clicks summed over every link of the partner, or over the links
 * of one program) and `ReferralLink.clicks`, `uniqueClicks` and `botClicks` (one link's counts).
 * A click row carries the partner and the program of its link (copied from the link when the
 * click is recorded), so a link's clicks are all found under its partner. Discarded clicks are
 * read only when they are a bot's (for `botClicks`); the others are not counted anywhere.
 */
export async function partnerClicksByLink(
  db: SqlClient,
  scope: StatsScope,
  partnerIds: readonly string[],
): Promise<Map<string, PartnerClicks>> {
  const rows = await db.sql<{
    partner: string;
    link: string;
    program: string;
    clicks: string;
    unique: string;
    bots: string;
  }>`
    SELECT k."partnerId" AS partner, k."linkId" AS link, k."programId" AS program,
            count(*) FILTER (WHERE NOT k."discarded")::text AS clicks,
            count(*) FILTER (WHERE NOT k."discarded" AND k."isUnique")::text AS unique,
            count(*) FILTER (WHERE k."discarded")::text AS bots
       FROM "Click" k
      WHERE ${tenantCondition('k', scope)} AND k."partnerId" = ANY(${uuidArray(partnerIds)})
        AND (NOT k."discarded" OR k."discardReason" = 'BOT')
      GROUP BY k."partnerId", k."linkId", k."programId"`;
  const result = byId(partnerIds, (): PartnerClicks => ({ total: 0, byLink: new Map(), byProgram: new Map() }));
  for (const row of rows) {
    const figures = result.get(row.partner)!;
    const counts = { clicks: toInt(row.clicks), unique: toInt(row.unique), bots: toInt(row.bots) };
    const link = figures.byLink.get(row.link);
    figures.byLink.set(
      row.link,
      link
        ? { clicks: link.clicks + counts.clicks, unique: link.unique + counts.unique, bots: link.bots + counts.bots }
        : counts,
    );
    figures.total += counts.unique;
    figures.byProgram.set(row.program, (figures.byProgram.get(row.program) ?? 0) + counts.unique);
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
  const program = programId ? sql` AND r."programId" = ${programId}::uuid` : sql.empty;
  const rows = await db.sql<{ id: string; total: string; converted: string; pending: string }>`
    SELECT r."partnerId" AS id,
            count(*)::text AS total,
            count(*) FILTER (WHERE r."status" = 'CONVERTED')::text AS converted,
            count(*) FILTER (WHERE r."status" = 'PENDING')::text AS pending
       FROM "Referral" r
      WHERE ${tenantCondition('r', scope)} AND r."partnerId" = ANY(${uuidArray(partnerIds)})${program}
      GROUP BY r."partnerId"`;
  const result = byId(partnerIds, () => ({ totalReferrals: 0, successfulReferrals: 0, pendingReferrals: 0 }));
  for (const row of rows) {
    result.set(row.id, {
      totalReferrals: toInt(row.total),
      successfulReferrals: toInt(row.converted),
      pendingReferrals: toInt(row.pending),
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
  const program = programId ? sql` AND w."programId" = ${programId}::uuid` : sql.empty;
  const rows = await db.sql<{ id: string; currency: string; total: string }>`
    SELECT w."partnerId" AS id, w."currency" AS currency, sum(w."amount")::text AS total
       FROM "Reward" w
      WHERE ${tenantCondition('w', scope)} AND w."partnerId" = ANY(${uuidArray(partnerIds)})${program}
        AND w."recipient" = 'REFERRER' AND w."status" NOT IN ('CANCELED', 'REJECTED')
      GROUP BY w."partnerId", w."currency"`;
  const result = byId(partnerIds, () => new Map<string, bigint>());
  for (const row of rows) addTo(result.get(row.id)!, row.currency, toBigInt(row.total));
  return result;
}
