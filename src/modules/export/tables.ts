import type { Tenant } from '../../domain/tenant.js';
import { globalId } from '../../lib/global-id.js';
import { formatMinor } from '../../lib/money.js';
import { sql, type SqlClient, type SqlFragment } from '../../lib/sql.js';

/** The names in `GET /export/{name}.csv`. */
export const EXPORT_TABLES = ['rewards', 'conversions', 'payouts', 'ledger'] as const;
export type ExportTableName = (typeof EXPORT_TABLES)[number];

/** Where the next page starts: after this row, in (time, id) order (`at` as `utc` writes it). */
export interface PagePosition {
  at: string;
  id: string;
}

/** One page of a table's rows for a period: the half-open range [from, to) of its time column. */
export interface PageQuery {
  tenant: Tenant;
  from: Date;
  to: Date;
  /** A program's row id, for the tables whose rows belong to one program (`programFilter`). */
  programId: string | null;
  after: PagePosition | null;
  limit: number;
}

/** A row as a page returns it: its position, and its cells in the order of `columns`. */
export interface ExportRow {
  position: PagePosition;
  cells: Array<string | null>;
}

/** Whether a column holds text a client wrote (guarded against formula injection, see csv.ts). */
export type ColumnKind = 'value' | 'text';

/**
 * One exportable table. Adding one (or a column) is a definition here: its header, the column
 * the period applies to, whether `programId` filters it, and one keyset-paged statement. Plain
 * SQL (src/db/README.md, "Exports"): the `(time, id)` row comparison is one index range, the
 * partner is joined in the same statement and the times come as text — 0.18× the time of the
 * same pages through Prisma (BENCHMARKS.md, "exports").
 */
export interface ExportTable {
  name: ExportTableName;
  /** The column the period (`from`, `to`) applies to, as it appears in the header. */
  periodColumn: string;
  /** Whether `programId` filters this table (its rows belong to one program). */
  programFilter: boolean;
  columns: ReadonlyArray<{ name: string; kind: ColumnKind }>;
  page(db: SqlClient, query: PageQuery): Promise<ExportRow[]>;
}

/**
 * The period, the keyset position and the tenant for the table aliased `t`, whose time column is
 * `time`: `[from, to)` and strictly after the last row sent, in (time, id) order. The explicit
 * lower bound on the time column lets PostgreSQL use the tenant's (workspaceId, mode, time) index
 * as a range; the row comparison then skips the rows of the same instant already sent.
 */
function window(t: string, time: string, q: PageQuery): SqlFragment {
  const at = sql.ident(t, time);
  const id = sql.ident(t, 'id');
  const tenant = sql`${sql.ident(t, 'workspaceId')} = ${q.tenant.workspaceId}::uuid AND ${sql.ident(t, 'mode')} = ${q.tenant.mode}::"Mode"`;
  const to = sql`${at} < ${q.to.toISOString()}::timestamptz`;
  if (!q.after) return sql`${tenant} AND ${at} >= ${q.from.toISOString()}::timestamptz AND ${to}`;
  const after = q.after.at;
  return sql`${tenant} AND ${at} >= ${after}::timestamptz AND ${to}
    AND (${at}, ${id}) > (${after}::timestamptz, ${q.after.id}::uuid)`;
}

/**
 * A timestamptz column as ISO 8601 in UTC with milliseconds (`2026-03-10T12:34:56.789Z`), the
 * text the CSV shows, written by the database: parsing every time into a Date and formatting it
 * again cost more than the rest of a page (10 of 14 ms per 1000 conversions, node-postgres).
 * The columns are timestamptz(3), so the text is exact and serves as the page position too.
 */
function utc(t: string, column: string): SqlFragment {
  return sql`to_char(${sql.ident(t, column)} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

const gid = (typename: string, id: string | null): string | null => (id === null ? null : globalId(typename, id));
const money = (amount: string | null, currency: string | null): string | null =>
  amount === null || currency === null ? null : formatMinor(BigInt(amount), currency);
const value = (name: string) => ({ name, kind: 'value' as const });
const text = (name: string) => ({ name, kind: 'text' as const });

interface RewardRow {
  id: string;
  createdAt: string;
  updatedAt: string;
  status: string;
  kind: string;
  recipient: string;
  amount: string;
  currency: string;
  programId: string;
  partnerId: string;
  partnerExternalId: string;
  conversionId: string;
  referredExternalId: string | null;
  ruleId: string;
  sourceRewardId: string | null;
  payoutId: string | null;
}

const rewards: ExportTable = {
  name: 'rewards',
  periodColumn: 'createdAt',
  programFilter: true,
  columns: [
    value('id'),
    value('createdAt'),
    value('updatedAt'),
    value('status'),
    value('kind'),
    value('recipient'),
    value('amount'),
    value('currency'),
    value('programId'),
    value('partnerId'),
    text('partnerExternalId'),
    value('conversionId'),
    text('referredExternalId'),
    value('ruleId'),
    value('sourceRewardId'),
    value('payoutId'),
  ],
  async page(db, q) {
    const rows = await db.sql<RewardRow>`
      SELECT r."id", ${utc('r', 'createdAt')} AS "createdAt", ${utc('r', 'updatedAt')} AS "updatedAt",
             r."status"::text AS "status", r."kind"::text AS "kind",
             r."recipient"::text AS "recipient", r."amount"::text AS "amount", r."currency", r."programId",
             r."partnerId", p."externalId" AS "partnerExternalId", r."conversionId",
             c."referredExternalId", r."ruleId", r."sourceRewardId", r."payoutId"
        FROM "Reward" r
        JOIN "Partner" p ON p."id" = r."partnerId"
        JOIN "Conversion" c ON c."id" = r."conversionId"
       WHERE ${window('r', 'createdAt', q)}
             ${q.programId ? sql`AND r."programId" = ${q.programId}::uuid` : sql.empty}
       ORDER BY r."createdAt", r."id"
       LIMIT ${q.limit}`;
    return rows.map((r) => ({
      position: { at: r.createdAt, id: r.id },
      cells: [
        gid('Reward', r.id),
        r.createdAt,
        r.updatedAt,
        r.status,
        r.kind,
        r.recipient,
        money(r.amount, r.currency),
        r.currency,
        gid('Program', r.programId),
        gid('Partner', r.partnerId),
        r.partnerExternalId,
        gid('Conversion', r.conversionId),
        r.referredExternalId,
        gid('RewardRule', r.ruleId),
        gid('Reward', r.sourceRewardId),
        gid('Payout', r.payoutId),
      ],
    }));
  },
};

interface ConversionRow {
  id: string;
  occurredAt: string;
  createdAt: string;
  type: string;
  status: string;
  discardReason: string | null;
  amount: string | null;
  currency: string | null;
  idempotencyKey: string;
  referredExternalId: string | null;
  programId: string | null;
  partnerId: string | null;
  partnerExternalId: string | null;
  referralId: string | null;
  refundOfId: string | null;
}

const conversions: ExportTable = {
  name: 'conversions',
  periodColumn: 'occurredAt',
  programFilter: true,
  columns: [
    value('id'),
    value('occurredAt'),
    value('createdAt'),
    value('type'),
    value('status'),
    value('discardReason'),
    value('amount'),
    value('currency'),
    text('idempotencyKey'),
    text('referredExternalId'),
    value('programId'),
    value('partnerId'),
    text('partnerExternalId'),
    value('referralId'),
    value('refundOfId'),
  ],
  async page(db, q) {
    const rows = await db.sql<ConversionRow>`
      SELECT c."id", ${utc('c', 'occurredAt')} AS "occurredAt", ${utc('c', 'createdAt')} AS "createdAt",
             c."type"::text AS "type", c."status"::text AS "status",
             c."discardReason", c."amount"::text AS "amount", c."currency", c."idempotencyKey",
             c."referredExternalId", c."programId", c."partnerId", p."externalId" AS "partnerExternalId",
             c."referralId", c."refundOfId"
        FROM "Conversion" c
        LEFT JOIN "Partner" p ON p."id" = c."partnerId"
       WHERE ${window('c', 'occurredAt', q)}
             ${q.programId ? sql`AND c."programId" = ${q.programId}::uuid` : sql.empty}
       ORDER BY c."occurredAt", c."id"
       LIMIT ${q.limit}`;
    return rows.map((c) => ({
      position: { at: c.occurredAt, id: c.id },
      cells: [
        gid('Conversion', c.id),
        c.occurredAt,
        c.createdAt,
        c.type,
        c.status,
        c.discardReason,
        money(c.amount, c.currency),
        c.currency,
        c.idempotencyKey,
        c.referredExternalId,
        gid('Program', c.programId),
        gid('Partner', c.partnerId),
        c.partnerExternalId,
        gid('Referral', c.referralId),
        gid('Conversion', c.refundOfId),
      ],
    }));
  },
};

interface PayoutRow {
  id: string;
  createdAt: string;
  updatedAt: string;
  status: string;
  amount: string;
  currency: string;
  method: string | null;
  externalReference: string | null;
  paidAt: string | null;
  failureReason: string | null;
  releasedAt: string | null;
  partnerId: string;
  partnerExternalId: string;
}

const payouts: ExportTable = {
  name: 'payouts',
  periodColumn: 'createdAt',
  programFilter: false,
  columns: [
    value('id'),
    value('createdAt'),
    value('updatedAt'),
    value('status'),
    value('amount'),
    value('currency'),
    text('method'),
    text('externalReference'),
    value('paidAt'),
    text('failureReason'),
    value('releasedAt'),
    value('partnerId'),
    text('partnerExternalId'),
  ],
  async page(db, q) {
    const rows = await db.sql<PayoutRow>`
      SELECT o."id", ${utc('o', 'createdAt')} AS "createdAt", ${utc('o', 'updatedAt')} AS "updatedAt",
             o."status"::text AS "status", o."amount"::text AS "amount",
             o."currency", o."method", o."externalReference", ${utc('o', 'paidAt')} AS "paidAt",
             o."failureReason", ${utc('o', 'releasedAt')} AS "releasedAt", o."partnerId",
             p."externalId" AS "partnerExternalId"
        FROM "Payout" o
        JOIN "Partner" p ON p."id" = o."partnerId"
       WHERE ${window('o', 'createdAt', q)}
       ORDER BY o."createdAt", o."id"
       LIMIT ${q.limit}`;
    return rows.map((o) => ({
      position: { at: o.createdAt, id: o.id },
      cells: [
        gid('Payout', o.id),
        o.createdAt,
        o.updatedAt,
        o.status,
        money(o.amount, o.currency),
        o.currency,
        o.method,
        o.externalReference,
        o.paidAt,
        o.failureReason,
        o.releasedAt,
        gid('Partner', o.partnerId),
        o.partnerExternalId,
      ],
    }));
  },
};

interface LedgerRow {
  id: string;
  createdAt: string;
  type: string;
  amount: string;
  currency: string;
  partnerId: string;
  partnerExternalId: string;
  rewardId: string | null;
  payoutId: string | null;
  note: string | null;
}

/** The ledger: every entry of the period, signed, with the reward or payout behind it (ledger/README.md). */
const ledger: ExportTable = {
  name: 'ledger',
  periodColumn: 'createdAt',
  programFilter: false,
  columns: [
    value('id'),
    value('createdAt'),
    value('type'),
    value('amount'),
    value('currency'),
    value('partnerId'),
    text('partnerExternalId'),
    value('rewardId'),
    value('payoutId'),
    text('note'),
  ],
  async page(db, q) {
    const rows = await db.sql<LedgerRow>`
      SELECT e."id", ${utc('e', 'createdAt')} AS "createdAt", e."type"::text AS "type", e."amount"::text AS "amount", e."currency",
             e."partnerId", p."externalId" AS "partnerExternalId", e."rewardId", e."payoutId", e."note"
        FROM "LedgerEntry" e
        JOIN "Partner" p ON p."id" = e."partnerId"
       WHERE ${window('e', 'createdAt', q)}
       ORDER BY e."createdAt", e."id"
       LIMIT ${q.limit}`;
    return rows.map((e) => ({
      position: { at: e.createdAt, id: e.id },
      cells: [
        gid('LedgerEntry', e.id),
        e.createdAt,
        e.type,
        money(e.amount, e.currency),
        e.currency,
        gid('Partner', e.partnerId),
        e.partnerExternalId,
        gid('Reward', e.rewardId),
        gid('Payout', e.payoutId),
        e.note,
      ],
    }));
  },
};

export const exportTables: Readonly<Record<ExportTableName, ExportTable>> = { rewards, conversions, payouts, ledger };
