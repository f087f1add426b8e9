import type { SqlClient, SqlTx } from '../../lib/sql.js';

// The Click table's monthly partitions (migration 20261207200000_click_partitions; README
// "Partitions"). Clicks are partitioned by RANGE of occurredAt, one partition per UTC month
// ("Click_p202612") and a DEFAULT one ("Click_default") for clicks of months without a partition,
// so no insert ever fails. The retention job (events/retention.ts) keeps partitions made ahead and,
// with CLICK_RETENTION_DAYS, drops the months past retention whole.

/** Months made ahead of the current one (the migration makes the same). */
export const CLICK_PARTITION_MONTHS_AHEAD = 3;

/** Serialises partition maintenance across instances (a transaction-level advisory lock). */
export const CLICK_PARTITION_LOCK_KEY = 1919249002;

interface Transactional {
  transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T>;
}

/**
 * One transaction holding the maintenance lock, or null when another instance holds it (it is
 * doing the same work). DDL on the table waits at most 5 s for locks (a long read of "Click"):
 * then it fails, and the next run retries, rather than holding click inserts queued behind it.
 */
async function withPartitionLock<T>(db: Transactional, fn: (tx: SqlTx) => Promise<T>): Promise<T | null> {
  return db.transaction(async (tx) => {
    await tx.sql`SELECT set_config('lock_timeout', '5s', true)`;
    const [row] = await tx.sql<{
      locked: boolean;
    }>`SELECT pg_try_advisory_xact_lock(${CLICK_PARTITION_LOCK_KEY}) AS locked`;
    if (!row?.locked) return null;
    return fn(tx);
  });
}

/**
 * Make the partitions of the month of `now` and of the `ahead` months after it that do not exist
 * (clicks of those months waiting in the DEFAULT partition move into theirs); answers how many it made.
 */
export async function createClickPartitions(
  db: Transactional,
  now: Date,
  ahead: number = CLICK_PARTITION_MONTHS_AHEAD,
): Promise<number> {
  const made = await withPartitionLock(db, async (tx) => {
    const [row] = await tx.sql<{ made: number }>`
      SELECT count(*) FILTER (WHERE "Click_partition_create"(m))::int AS "made"
        FROM (SELECT (date_trunc('month', ${now.toISOString()}::timestamptz AT TIME ZONE 'UTC') + make_interval(months => k)) AT TIME ZONE 'UTC' AS m
                FROM generate_series(0, ${ahead}::int) k) months`;
    return row?.made ?? 0;
  });
  return made ?? 0;
}

/**
 * Drop the month partitions that end at or before `cutoff`; answers how many clicks they held.
 * Clicks before `cutoff` in other partitions (the month containing it, the DEFAULT one) are left
 * to deleteClicksBefore.
 */
export async function dropClickPartitions(db: Transactional, cutoff: Date): Promise<number> {
  const dropped = await withPartitionLock(db, async (tx) => {
    const [row] = await tx.sql<{ clicks: string }>`
      SELECT "Click_partitions_drop"(${cutoff.toISOString()}::timestamptz)::text AS "clicks"`;
    return Number(row?.clicks ?? 0);
  });
  return dropped ?? 0;
}

/**
 * One statement: up to `limit` clicks that occurred before `cutoff` (rows locked by others are
 * skipped). Both conditions name "occurredAt", so only the partitions holding such clicks are read.
 */
export async function deleteClicksBefore(db: SqlClient, cutoff: Date, limit: number): Promise<number> {
  const at = cutoff.toISOString();
  const [row] = await db.sql<{ deleted: number }>`
    WITH gone AS (
       DELETE FROM "Click" WHERE "occurredAt" < ${at}::timestamptz AND ("id", "occurredAt") IN (
         SELECT "id", "occurredAt" FROM "Click" WHERE "occurredAt" < ${at}::timestamptz
          LIMIT ${limit}
            FOR UPDATE SKIP LOCKED)
       RETURNING 1)
     SELECT count(*)::int AS "deleted" FROM gone`;
  return Number(row?.deleted ?? 0);
}
