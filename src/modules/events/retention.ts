import type { Database } from '../../db.js';
import type { Mode } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import { PeriodicJob } from '../../lib/periodic-job.js';
import { createClickPartitions, deleteClicksBefore, dropClickPartitions } from '../click/partitions.js';
import type { Logger } from '../../logger.js';

export interface RetentionJobOptions {
  /** Events older than this many days are deleted; 0 = kept forever. */
  eventDays: number;
  /** Finished webhook deliveries older than this many days are deleted; 0 = kept forever. */
  webhookDeliveryDays: number;
  /**
   * Raw clicks that occurred more than this many days ago are deleted (whole monthly partitions
   * dropped, then the older rows of the rest); 0 (the default) = kept forever. Their counts stay
   * in the reporting rollups (src/modules/reporting/README.md).
   */
  clickDays?: number;
  /** Pause between the end of one run and the start of the next; 0 = start() does nothing (runOnce still works). */
  intervalMs: number;
  /** The first run, this long after start() (default: 30 s, or intervalMs when shorter). */
  firstRunDelayMs?: number;
  /** Rows deleted per statement, at most (default 1000). */
  batchSize?: number;
  /**
   * The tenant's events up to this sequence have been published to subscribers (null: no bound).
   * Retention never deletes an event past it (see EventDispatcher.dispatchedThrough).
   */
  dispatchedThrough?: (workspaceId: string, mode: Mode) => Promise<bigint | null>;
  logger?: Logger;
}

export interface RetentionRunResult {
  /** Events this run deleted. */
  events: number;
  /** Webhook deliveries this run deleted. */
  deliveries: number;
  /** Raw clicks this run deleted (CLICK_RETENTION_DAYS). */
  clicks: number;
}

const DAY_MS = 86_400_000;

/**
 * Deletes events and finished webhook deliveries older than their retention, in small batches
 * (one short statement or transaction each), so no lock is held for long. Safe on every instance
 * at once: deliveries are claimed `FOR UPDATE SKIP LOCKED`; a tenant's events are deleted by one
 * job at a time, the holder of its EventRetention row (`FOR UPDATE SKIP LOCKED`; the others skip
 * the tenant for that batch).
 *
 * Raw clicks (CLICK_RETENTION_DAYS): each run first makes the click partitions of the current
 * month and the next ones (click/partitions.ts; whatever the retention settings), then drops the
 * monthly partitions entirely before the cutoff and deletes the older rows left (the month
 * containing the cutoff, the DEFAULT partition) in batches. Partition DDL is done by one instance
 * at a time (an advisory lock; the others skip it for that run).
 *
 * Never deleted:
 * - a delivery still PENDING (waiting for its next attempt, or for its endpoint to be enabled again);
 * - an event not yet dispatched: after the oldest enabled webhook endpoint's cursor
 *   (`WebhookEndpoint.lastSequence`: not yet turned into deliveries) or after what the dispatcher
 *   has published to subscribers;
 * - an event some webhook delivery still points at (deleting it would delete the delivery):
 *   it stays, below the horizon, until its deliveries are gone, then a later run deletes it.
 *
 * The horizon (EventRetention.horizon, per workspace and mode, raised in the transaction that
 * deletes) is the sequence through which the tenant's stream has been cut: events(after:) with a
 * cursor before it answers CURSOR_EXPIRED instead of silently skipping what was deleted, and a
 * stream read from the start begins after it.
 */
export class RetentionJob {
  private readonly batchSize: number;
  private readonly job: PeriodicJob<RetentionRunResult>;

  constructor(
    private readonly db: Database,
    private readonly options: RetentionJobOptions,
  ) {
    this.batchSize = options.batchSize ?? 1000;
    // Runs even when everything is kept: it also makes the click partitions of the months ahead.
    this.job = new PeriodicJob({
      name: 'retention job',
      intervalMs: options.intervalMs,
      firstRunDelayMs: options.firstRunDelayMs ?? Math.min(30_000, options.intervalMs),
      run: (now) => this.run(now),
      report: (result) =>
        result.events > 0 || result.deliveries > 0 || result.clicks > 0
          ? { fields: result, message: 'retention job deleted old rows' }
          : null,
      logger: options.logger,
    });
  }

  /** Run shortly after start, then every intervalMs after each run ends, until stop(). No-op when intervalMs is 0. */
  start(): void {
    this.job.start();
  }

  /** No further runs, no further batches of the run in progress; resolves when its batch has finished. */
  stop(): Promise<void> {
    return this.job.stop();
  }

  /** Delete everything past its retention at `now`; resolves with what this call deleted. */
  runOnce(now: Date = new Date()): Promise<RetentionRunResult> {
    return this.job.runOnce(now);
  }

  /** stop() was called: a run in progress ends after its current batch. */
  private get closing(): boolean {
    return this.job.stopping;
  }

  private async run(now: Date): Promise<RetentionRunResult> {
    const result: RetentionRunResult = { events: 0, deliveries: 0, clicks: 0 };
    // Partition DDL that fails (lock_timeout behind a long read of "Click") is retried at the next
    // run; the rest of this run goes on (clicks of a month without a partition go to DEFAULT).
    try {
      const made = await createClickPartitions(this.db, now);
      if (made > 0) this.options.logger?.info({ partitions: made }, 'retention job made click partitions ahead');
    } catch (error) {
      this.options.logger?.warn({ err: error }, 'retention job could not make the click partitions ahead');
    }
    if ((this.options.clickDays ?? 0) > 0) {
      const cutoff = new Date(now.getTime() - (this.options.clickDays ?? 0) * DAY_MS);
      // Whole months first (their rows are counted, not deleted one by one), then the rest: the
      // month containing the cutoff and the DEFAULT partition.
      let dropped = true;
      try {
        result.clicks += await dropClickPartitions(this.db, cutoff);
      } catch (error) {
        // not row by row instead (whole months of them): the next run drops them
        dropped = false;
        this.options.logger?.warn({ err: error }, 'retention job could not drop the expired click partitions');
      }
      while (dropped) {
        const deleted = await deleteClicksBefore(this.db, cutoff, this.batchSize);
        result.clicks += deleted;
        if (deleted < this.batchSize || this.closing) break;
      }
    }
    // Deliveries first: an event is kept while a delivery points at it.
    if (this.options.webhookDeliveryDays > 0) {
      const cutoff = new Date(now.getTime() - this.options.webhookDeliveryDays * DAY_MS);
      for (;;) {
        const deleted = await this.deleteDeliveries(cutoff);
        result.deliveries += deleted;
        if (deleted < this.batchSize || this.closing) break;
      }
    }
    if (this.options.eventDays > 0) {
      const cutoff = new Date(now.getTime() - this.options.eventDays * DAY_MS);
      const tenants = await this.db.sql<{
        workspaceId: string;
        mode: Mode;
        lastSequence: string;
        webhooks: string | null;
      }>`
        SELECT c."workspaceId", c."mode"::text AS "mode", c."lastSequence"::text AS "lastSequence",
                (SELECT min(w."lastSequence") FROM "WebhookEndpoint" w
                  WHERE w."workspaceId" = c."workspaceId" AND w."mode" = c."mode" AND w."enabled")::text AS "webhooks"
           FROM "EventCounter" c
          ORDER BY 1, 2`;
      for (const tenant of tenants) {
        if (this.closing) break;
        let bound = BigInt(tenant.lastSequence);
        if (tenant.webhooks !== null && BigInt(tenant.webhooks) < bound) bound = BigInt(tenant.webhooks);
        const dispatched = await this.options.dispatchedThrough?.(tenant.workspaceId, tenant.mode);
        if (dispatched !== undefined && dispatched !== null && dispatched < bound) bound = dispatched;
        if (bound <= 0n) continue;
        result.events += await this.deleteTenantEvents(
          { workspaceId: tenant.workspaceId, mode: tenant.mode },
          cutoff,
          bound,
        );
      }
    }
    return result;
  }

  /** One statement: up to batchSize finished deliveries last changed before `cutoff`, none that another transaction holds. */
  private async deleteDeliveries(cutoff: Date): Promise<number> {
    const [row] = await this.db.sql<{ deleted: number }>`
      WITH gone AS (
         DELETE FROM "WebhookDelivery" WHERE "id" IN (
           SELECT "id" FROM "WebhookDelivery"
            WHERE "status" IN ('SUCCEEDED', 'FAILED') AND "updatedAt" < ${cutoff.toISOString()}::timestamptz
            LIMIT ${this.batchSize}
              FOR UPDATE SKIP LOCKED)
         RETURNING 1)
       SELECT count(*)::int AS "deleted" FROM gone`;
    return Number(row?.deleted ?? 0);
  }

  /** The tenant's events older than `cutoff` and at most `bound`, batch by batch; how many were deleted. */
  private async deleteTenantEvents(tenant: Tenant, cutoff: Date, bound: bigint): Promise<number> {
    await this.db.sql`
      INSERT INTO "EventRetention" ("workspaceId", "mode") VALUES (${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode")
      ON CONFLICT DO NOTHING`;
    let total = 0;
    let sweep = true;
    for (;;) {
      const batch = await this.eventBatch(tenant, cutoff, bound, sweep);
      sweep = batch.swept === this.batchSize;
      total += batch.deleted;
      if (!batch.more || this.closing) return total;
    }
  }

  /**
   * One transaction: hold the tenant's EventRetention row (or skip the tenant: another job has it),
   * delete the next batch of old events in sequence order, and raise the horizon over them.
   * `sweep`: first delete events below the horizon that were kept for their deliveries and have none left (up to batchSize).
   */
  private eventBatch(
    tenant: Tenant,
    cutoff: Date,
    bound: bigint,
    sweep: boolean,
  ): Promise<{ deleted: number; swept: number; more: boolean }> {
    const n = this.batchSize;
    return this.db.transaction(async (tx) => {
      // Never wait long for a row someone else holds: the batch fails and the next run retries.
      await tx.sql`SELECT set_config('lock_timeout', '5s', true)`;
      const [held] = await tx.sql<{ horizon: string }>`
        SELECT "horizon"::text AS "horizon" FROM "EventRetention"
         WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
           FOR UPDATE SKIP LOCKED`;
      if (!held) return { deleted: 0, swept: 0, more: false };
      const horizon = BigInt(held.horizon);
      let swept = 0;
      if (sweep && horizon > 0n) {
        const [row] = await tx.sql<{ deleted: number }>`
          WITH gone AS (
            DELETE FROM "Event" WHERE "id" IN (
              SELECT e."id" FROM "Event" e
               WHERE e."workspaceId" = ${tenant.workspaceId}::uuid AND e."mode" = ${tenant.mode}::"Mode"
                 AND e."sequence" > 0 AND e."sequence" <= ${horizon.toString()}::bigint
                 AND NOT EXISTS (SELECT 1 FROM "WebhookDelivery" d WHERE d."eventId" = e."id")
               LIMIT ${n})
            RETURNING 1)
          SELECT count(*)::int AS "deleted" FROM gone`;
        swept = Number(row?.deleted ?? 0);
      }
      // The next events after the horizon, in order: the old ones among them (occurredAt grows with
      // the sequence) up to the first that is not, and never past `bound` (not yet dispatched).
      const next = await tx.sql<{ seq: string; old: boolean }>`
        SELECT "sequence"::text AS "seq", "occurredAt" < ${cutoff.toISOString()}::timestamptz AS "old" FROM "Event"
         WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
           AND "sequence" > ${horizon.toString()}::bigint AND "sequence" <= ${bound.toString()}::bigint
         ORDER BY "Event"."sequence" LIMIT ${n}`;
      const firstNew = next.findIndex((row) => !row.old);
      const old = firstNew === -1 ? next : next.slice(0, firstNew);
      if (old.length === 0) return { deleted: swept, swept, more: swept === n };
      const through = old[old.length - 1]!.seq;
      const [gone] = await tx.sql<{ deleted: number }>`
        WITH gone AS (
          DELETE FROM "Event" e
           WHERE e."workspaceId" = ${tenant.workspaceId}::uuid AND e."mode" = ${tenant.mode}::"Mode"
             AND e."sequence" > ${horizon.toString()}::bigint AND e."sequence" <= ${through}::bigint
             AND NOT EXISTS (SELECT 1 FROM "WebhookDelivery" d WHERE d."eventId" = e."id")
          RETURNING 1)
        SELECT count(*)::int AS "deleted" FROM gone`;
      const deleted = swept + Number(gone?.deleted ?? 0);
      await tx.sql`
        UPDATE "EventRetention" SET "horizon" = ${through}::bigint, "updatedAt" = now()
         WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"`;
      return { deleted, swept, more: old.length === n || swept === n };
    });
  }
}

/** The tenant's retention horizon: its events up to this sequence are gone (0: none). */
export async function retentionHorizon(db: Database, tenant: Tenant): Promise<bigint> {
  const [row] = await db.sql<{ horizon: string }>`
    SELECT "horizon"::text AS "horizon" FROM "EventRetention"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"`;
  return row ? BigInt(row.horizon) : 0n;
}

/**
 * Where a stream read with `after` begins: after the cursor, or after the horizon when none is
 * given; a cursor before the horizon is CURSOR_EXPIRED (what followed it was deleted).
 */
export async function streamStart(
  db: Database,
  tenant: Tenant,
  after: bigint | null,
  eventDays: number,
): Promise<bigint> {
  const horizon = await retentionHorizon(db, tenant);
  if (after === null) return horizon;
  if (after < horizon) throw new CursorExpired(horizon, eventDays);
  return after;
}

/**
 * A stream read from a cursor older than the retention horizon: what followed it was deleted.
 * The GraphQL layer answers it as CURSOR_EXPIRED (graphql/yoga.ts, maskError).
 */
export class CursorExpired extends Error {
  constructor(
    readonly horizon: bigint,
    eventDays: number,
  ) {
    const window =
      eventDays > 0
        ? `the retention window (events are kept ${eventDays} days, EVENT_RETENTION_DAYS)`
        : 'the retention window';
    super(
      `after: the cursor is older than ${window}: the events after it up to sequence ${horizon} have been deleted. ` +
        'Start again from the beginning (omit after: the oldest event kept) or with a fresh cursor, and reconcile what you missed from the current state.',
    );
    this.name = 'CursorExpired';
  }
}
