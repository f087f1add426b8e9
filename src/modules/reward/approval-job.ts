import type { PrismaClient } from '../../generated/prisma/client.js';
import type { Mode } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import type { Logger } from '../../logger.js';
import {
  APPROVAL_JOB_ACTOR,
  appendStatusEvents,
  applyStatusChange,
  loadRewards,
  MONEY_TX_OPTIONS,
} from './lifecycle.js';
import { PeriodicJob } from '../../lib/periodic-job.js';
import { prismaSql } from '../../lib/sql.js';
import { tryLockLedgers } from '../ledger/ledger-lock.js';

export interface ApprovalJobOptions {
  /** Time between the end of one run and the start of the next; 0 = never on its own (runOnce still works). */
  intervalMs: number;
  /** Rewards approved per transaction. */
  batchSize?: number;
  logger?: Logger;
}

export const APPROVAL_REASON = 'The hold period ended.';

/**
 * Approves CREATED rewards whose hold period is over (approveAfter ≤ now). Safe to run on every
 * instance at once: each batch is claimed with `FOR UPDATE SKIP LOCKED`, and the status is
 * checked under the lock, so a reward is approved (one history row, one REWARD_APPROVED entry)
 * exactly once. Refund adjustments are not picked up themselves: they move with their reward.
 * Rewards held by an OPEN review item (`held`) are never approved: resolveReviewItems releases them.
 */
export class ApprovalJob {
  private readonly batchSize: number;
  private readonly job: PeriodicJob<number>;

  constructor(
    private readonly prisma: PrismaClient,
    options: ApprovalJobOptions,
  ) {
    this.batchSize = options.batchSize ?? 100;
    this.job = new PeriodicJob({
      name: 'approval job',
      intervalMs: options.intervalMs,
      firstRunDelayMs: 0,
      run: (now) => this.approveDue(now),
      report: (approved) => (approved > 0 ? { fields: { approved }, message: 'approval job approved rewards' } : null),
      logger: options.logger,
    });
  }

  /** Run now, then every intervalMs after each run ends, until stop(). No-op when intervalMs is 0. */
  start(): void {
    this.job.start();
  }

  /** No further runs; resolves when the runs in progress have finished. */
  stop(): Promise<void> {
    return this.job.stop();
  }

  /** Resolves when the next scheduled run has finished (at once when the job is not running). */
  nextRun(): Promise<void> {
    return this.job.nextRun();
  }

  get isRunning(): boolean {
    return this.job.isRunning;
  }

  /** Approve every reward due at `now`; resolves with how many this call approved. */
  runOnce(now: Date = new Date()): Promise<number> {
    return this.job.runOnce(now);
  }

  private async approveDue(now: Date): Promise<number> {
    const tenants = await prismaSql(this.prisma).sql<{ workspaceId: string; mode: Mode }>`
      SELECT DISTINCT "workspaceId", "mode"::text AS "mode" FROM "Reward"
       WHERE "status" = 'CREATED' AND "approveAfter" <= ${now.toISOString()}::timestamptz AND "sourceRewardId" IS NULL AND NOT "held"
       ORDER BY 1, 2`;
    let total = 0;
    for (const tenant of tenants) {
      for (;;) {
        const batch = await this.approveBatch({ workspaceId: tenant.workspaceId, mode: tenant.mode }, now);
        total += batch.approved;
        if (!batch.more) break;
      }
    }
    return total;
  }

  /**
   * One transaction in one tenant (so its commit numbers events on one event counter): up to
   * batchSize rewards of partners whose ledger it holds.
   *
   * The ledger locks come first, then the reward rows: a job that finds a partner's ledger busy
   * (another instance's job, or a refund) holds none of that partner's rewards, so it can never
   * make the holder's next batch come back short with rows it is about to give up — which once
   * ended both instances' runs with a batch of due rewards left for the next run. A busy ledger
   * ends this tenant's run here (the holder carries on with that partner; no retry loop).
   */
  private approveBatch(tenant: Tenant, now: Date): Promise<{ approved: number; more: boolean }> {
    return this.prisma.$transaction(async (tx) => {
      // The partners of the next due rewards (no lock: a hint of whose ledgers to take).
      const partners = await prismaSql(tx).sql<{ partnerId: string }>`
        SELECT DISTINCT "partnerId" FROM (
          SELECT "partnerId" FROM "Reward"
           WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
             AND "status" = 'CREATED' AND "approveAfter" <= ${now.toISOString()}::timestamptz AND "sourceRewardId" IS NULL
             AND NOT "held"
           ORDER BY "id" LIMIT ${this.batchSize}) AS next`;
      if (partners.length === 0) return { approved: 0, more: false };
      // Never waits for a ledger (a refund holding one may be waiting for reward rows): partners
      // whose ledger is busy wait for the holder, or the next run.
      const ledgers = await tryLockLedgers(
        prismaSql(tx),
        tenant,
        partners.map((p) => p.partnerId),
      );
      if (ledgers.size === 0) return { approved: 0, more: false };
      const due = await prismaSql(tx).sql<{ id: string; partnerId: string }>`
        SELECT "id", "partnerId" FROM "Reward"
         WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
           AND "partnerId" = ANY(${[...ledgers]}::uuid[])
           AND "status" = 'CREATED' AND "approveAfter" <= ${now.toISOString()}::timestamptz AND "sourceRewardId" IS NULL
           AND NOT "held"
         ORDER BY "id" LIMIT ${this.batchSize}
           FOR UPDATE SKIP LOCKED`;
      const rewards = await loadRewards(
        tx,
        due.map((r) => r.id),
      );
      const changes = await applyStatusChange(tx, tenant, rewards, 'APPROVED', {
        actor: APPROVAL_JOB_ACTOR,
        reason: APPROVAL_REASON,
      });
      await appendStatusEvents(tx, tenant, changes);
      // A batch that was not full, or skipped a busy ledger, ends this tenant's run.
      return { approved: changes.length, more: due.length === this.batchSize && ledgers.size === partners.length };
    }, MONEY_TX_OPTIONS);
  }
}
