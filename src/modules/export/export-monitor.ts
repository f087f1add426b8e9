import type { ExportTableName } from './tables.js';

/** How an export ended: every row sent, the client gone before the end, or a server-side failure. */
export type ExportOutcome = 'completed' | 'aborted' | 'failed';

/**
 * The exports of this instance: how many are streaming now, and how many ended and how, with the
 * rows sent (for the metrics). An export counts as running until it has stopped reading the
 * database, not merely until its response closed: `whenIdle()` resolves only then.
 */
export class ExportMonitor {
  private running = 0;
  private readonly ended = new Map<string, number>();
  private readonly rowsSent = new Map<ExportTableName, number>();
  private idle: Array<() => void> = [];

  get active(): number {
    return this.running;
  }

  start(): void {
    this.running++;
  }

  finish(table: ExportTableName, outcome: ExportOutcome, rows: number): void {
    this.running--;
    const key = `${table}:${outcome}`;
    this.ended.set(key, (this.ended.get(key) ?? 0) + 1);
    this.rowsSent.set(table, (this.rowsSent.get(table) ?? 0) + rows);
    if (this.running === 0) {
      const waiters = this.idle;
      this.idle = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Exports ended, by table and outcome. */
  totals(): Array<{ table: string; outcome: string; count: number }> {
    return [...this.ended].map(([key, count]) => {
      const [table, outcome] = key.split(':') as [string, string];
      return { table, outcome, count };
    });
  }

  /** Rows sent, by table (aborted exports included, up to where they stopped). */
  rows(): Array<{ table: string; count: number }> {
    return [...this.rowsSent].map(([table, count]) => ({ table, count }));
  }

  /** Resolves once no export is running (at once if none is). */
  whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
}
