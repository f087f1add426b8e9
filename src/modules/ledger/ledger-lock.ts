import type { Tenant } from '../../domain/tenant.js';
import type { SqlClient } from '../../lib/sql.js';

/**
 * The ledger lock's class (the first key of PostgreSQL's two-key advisory locks, a key space of
 * its own: the one-key locks of migrations and the dispatcher never collide with it).
 */
const LEDGER_LOCK_CLASS = 0x4c_45_44; // "LED"

/** A partner's lock key is hashtext("<workspace>:<mode>:<partner>"); this is its tenant part. */
const keyPrefix = (tenant: Tenant) => `${tenant.workspaceId}:${tenant.mode}:`;

/**
 * Take the ledger locks of these partners until the transaction ends: every transaction that
 * writes a partner's ledger entries, or decides from their sum (a payout), holds its partner's
 * lock first, before any row lock, so that one partner's money moves one change at a time and
 * a payout's amount and the rewards it holds are read from the same state. Locks are taken in
 * one statement, in a fixed order (sorted ids; unnest yields the array in order), so two lockers
 * of several partners never deadlock. The key is hashtext(workspace:mode:partner): a collision only makes two partners
 * wait for each other.
 */
export async function lockLedgers(db: SqlClient, tenant: Tenant, partnerIds: Iterable<string>): Promise<void> {
  const ids = [...new Set(partnerIds)].sort();
  if (ids.length === 0) return;
  await db.sql`
    SELECT pg_advisory_xact_lock(${LEDGER_LOCK_CLASS}::int, hashtext(${keyPrefix(tenant)} || k.id))::text AS locked
      FROM unnest(${ids}::text[]) AS k(id)`;
}

/**
 * The ledger locks of the partners of these rewards (of the tenant), in one statement: for
 * callers that know rewards, not partners, and must lock before they lock the rewards' rows.
 */
export async function lockLedgersOfRewards(db: SqlClient, tenant: Tenant, rewardIds: readonly string[]): Promise<void> {
  if (rewardIds.length === 0) return;
  await db.sql`
    SELECT pg_advisory_xact_lock(${LEDGER_LOCK_CLASS}::int, hashtext(${keyPrefix(tenant)} || p."partnerId"::text))::text AS locked
      FROM (SELECT DISTINCT "partnerId" FROM "Reward"
             WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "id" = ANY(${[...rewardIds]}::uuid[])
             ORDER BY "partnerId") AS p`;
}

/**
 * Try to take the ledger locks of these partners without waiting (the approval job, which holds
 * reward rows already and so must never wait for a ledger lock); returns the partners locked.
 */
export async function tryLockLedgers(
  db: SqlClient,
  tenant: Tenant,
  partnerIds: Iterable<string>,
): Promise<Set<string>> {
  const ids = [...new Set(partnerIds)].sort();
  if (ids.length === 0) return new Set();
  const rows = await db.sql<{ id: string; locked: boolean }>`
    SELECT k.id, pg_try_advisory_xact_lock(${LEDGER_LOCK_CLASS}::int, hashtext(${keyPrefix(tenant)} || k.id)) AS locked
      FROM unnest(${ids}::text[]) AS k(id)`;
  return new Set(rows.filter((r) => r.locked).map((r) => r.id));
}
