import type { Database } from '../../db.js';
import type { Mode, TierMetric } from '../../generated/prisma/enums.js';
import type { Logger } from '../../logger.js';
import { PeriodicJob } from '../../lib/periodic-job.js';
import { appendEvents } from '../events/outbox.js';
import { evaluateTiers, tierChangedEvents, tryLockProgramTiers } from './evaluate.js';

export interface TierJobOptions {
  /** Time between the end of one run and the start of the next; 0 = never on its own (runOnce still works). */
  intervalMs: number;
  /** The first run, this long after start() (default: a minute, or intervalMs if shorter). */
  firstRunDelayMs?: number;
  logger?: Logger;
}

export interface TierJobResult {
  /** Programs evaluated by this run. */
  programs: number;
  /** Programs skipped because another transaction held their tier lock (another instance's run, a tier edit). */
  skipped: number;
  /** Enrollments moved to another tier (or to none). */
  changed: number;
}

/**
 * The daily evaluation of tiers (README.md): every program with tiers that is not ARCHIVED, one
 * transaction each, moves every partner to the tier they reach now — up and down, since a
 * trailing period also lets old activity go — with a `tier.changed` event per move. Each program's
 * transaction takes the program's tier lock without waiting (`pg_try_advisory_xact_lock`): a
 * program another instance (or a tier edit, which re-evaluates it anyway) is working on is
 * skipped, so any number of instances may run the job at once.
 */
export class TierJob {
  private readonly job: PeriodicJob<TierJobResult>;

  constructor(
    private readonly db: Database,
    options: TierJobOptions,
  ) {
    this.job = new PeriodicJob({
      name: 'tier job',
      intervalMs: options.intervalMs,
      firstRunDelayMs: options.firstRunDelayMs ?? Math.min(60_000, options.intervalMs),
      run: (now) => this.run(now),
      report: (result) =>
        result.changed > 0 || result.skipped > 0 ? { fields: result, message: 'tier job moved partners' } : null,
      logger: options.logger,
    });
  }

  /** Run after firstRunDelayMs, then every intervalMs after each run ends, until stop(). No-op when intervalMs is 0. */
  start(): void {
    this.job.start();
  }

  /** No further runs, nor further programs of the run in progress; resolves when its program's transaction has finished. */
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

  /** Evaluate every program's tiers at `now`; resolves with what this call did. */
  runOnce(now: Date = new Date()): Promise<TierJobResult> {
    return this.job.runOnce(now);
  }

  private async run(now: Date): Promise<TierJobResult> {
    const programs = await this.db.sql<{
      workspaceId: string;
      mode: Mode;
      programId: string;
      metric: TierMetric;
      currency: string;
    }>`
      SELECT DISTINCT ON (t."programId") t."workspaceId", t."mode"::text AS "mode", t."programId", t."metric"::text AS "metric", g."currency"
        FROM "Tier" t JOIN "Program" g ON g."id" = t."programId"
       WHERE g."status" <> 'ARCHIVED'
       ORDER BY t."programId"`;
    const result: TierJobResult = { programs: 0, skipped: 0, changed: 0 };
    for (const program of programs) {
      if (this.job.stopping) break;
      const tenant = { workspaceId: program.workspaceId, mode: program.mode };
      const changed = await this.db.transaction(async (tx) => {
        if (!(await tryLockProgramTiers(tx, tenant, program.programId))) return null;
        const changes = await evaluateTiers(tx, tenant, {
          programId: program.programId,
          metric: program.metric,
          currency: program.currency,
          now,
          direction: 'both',
        });
        await appendEvents(tx, tenant, tierChangedEvents(changes));
        return changes.length;
      });
      if (changed === null) result.skipped++;
      else {
        result.programs++;
        result.changed += changed;
      }
    }
    return result;
  }
}
