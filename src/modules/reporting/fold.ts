import type { Database } from '../../db.js';
import { PeriodicJob } from '../../lib/periodic-job.js';
import type { Logger } from '../../logger.js';

export interface RollupFoldJobOptions {
  /** Pause between the end of one fold and the start of the next; 0 = start() does nothing (runOnce still works). */
  intervalMs: number;
  /** The first fold, this long after start() (default: intervalMs). */
  firstRunDelayMs?: number;
  logger?: Logger;
}

/**
 * Moves the pending "ReportingRollupDelta" rows (appended by the statement triggers on referrals,
 * conversions and rewards) into "ReportingRollup": one statement, `"ReportingRollup_fold"()`
 * (migration 20261207201000_rollup_bulk), which deletes the committed deltas and upserts their
 * grouped sums. Safe on every instance at once: a transaction-level advisory lock lets one fold at
 * a time (the others return at once). Reads add pending deltas, so a fold changes what is
 * stored, never what a read answers; folding keeps the delta table, and the reads' work on it, small.
 */
export class RollupFoldJob {
  private readonly job: PeriodicJob<number>;

  constructor(
    private readonly db: Database,
    options: RollupFoldJobOptions,
  ) {
    this.job = new PeriodicJob({
      name: 'rollup fold job',
      intervalMs: options.intervalMs,
      firstRunDelayMs: options.firstRunDelayMs ?? options.intervalMs,
      run: () => this.runOnce(),
      report: () => null,
      logger: options.logger,
    });
  }

  start(): void {
    this.job.start();
  }

  stop(): Promise<void> {
    return this.job.stop();
  }

  /** One fold now: the rollup rows written, or -1 when another transaction was folding. */
  async runOnce(): Promise<number> {
    const rows = await this.db.sql<{ n: string }>`SELECT "ReportingRollup_fold"()::text AS n`;
    return Number(rows[0]?.n ?? 0);
  }
}
