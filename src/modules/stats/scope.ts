import type { Tenant } from '../../domain/tenant.js';
import { sql, type SqlFragment } from '../../lib/sql.js';

// The scope and SQL plumbing shared by the figures of stats/ and reporting/ and the balances.

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
