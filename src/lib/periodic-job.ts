import type { Logger } from '../logger.js';

export interface PeriodicJobOptions<R> {
  /** How the job is named in log lines, e.g. "approval job". */
  name: string;
  /** Pause between the end of one run and the start of the next; 0 = start() does nothing (runOnce still works). */
  intervalMs: number;
  /** The first run, this long after start(). */
  firstRunDelayMs: number;
  /** One run. */
  run: (now: Date) => Promise<R>;
  /** What a successful run logs (at info), if anything. */
  report?: (result: R) => { fields: object; message: string } | null;
  logger?: Logger;
}

/**
 * A background job on every instance: runs `firstRunDelayMs` after start(), then `intervalMs` after
 * each run ends (never two runs of one job at once on one instance); a failed run is logged and
 * retried at the next interval. Its timers do not keep the process alive. What makes running it on
 * several instances at once safe is the job's own business (row locks, SKIP LOCKED).
 */
export class PeriodicJob<R> {
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = true;
  /** stop() was called (and start() not since): distinct from `stopped`, which is also true before start(). */
  private stopRequested = false;
  private waiters: Array<() => void> = [];

  constructor(private readonly options: PeriodicJobOptions<R>) {}

  /** Schedule the runs; no-op when intervalMs is 0 or the job is running already. */
  start(): void {
    if (!this.stopped || this.options.intervalMs <= 0) return;
    this.stopped = false;
    this.stopRequested = false;
    this.schedule(this.options.firstRunDelayMs);
  }

  /** No further runs; resolves when the runs in progress have finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopRequested = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.inFlight]);
    this.wake();
  }

  /** stop() was called: a long run should end after its current step. */
  get stopping(): boolean {
    return this.stopRequested;
  }

  get isRunning(): boolean {
    return !this.stopped;
  }

  /** Resolves when the next scheduled run has finished (at once when the job is not running). */
  nextRun(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** One run now, outside the schedule (tests, tools); stop() waits for it too. */
  runOnce(now: Date = new Date()): Promise<R> {
    const run = this.options.run(now);
    this.inFlight.add(run);
    return run.finally(() => this.inFlight.delete(run));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private schedule(delay: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, delay);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const report = this.options.report?.(await this.runOnce());
      if (report) this.options.logger?.info(report.fields, report.message);
    } catch (error) {
      this.options.logger?.error({ err: error }, `${this.options.name} failed; retrying at the next interval`);
    }
    this.wake();
    if (!this.stopped) this.schedule(this.options.intervalMs);
  }
}
