import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';
import { isDatabaseUnavailable } from './db/unavailable.js';

export type { Logger };

/** While the database is out of reach, at most one log line per this many ms says so. */
const OUTAGE_LOG_INTERVAL_MS = 1000;

/**
 * JSON lines on stdout (or `destination`); `silent` in tests unless LOG_LEVEL says otherwise.
 *
 * While the database is unreachable every statement fails, in requests and in every background
 * worker at once: each such line (an `err` that isDatabaseUnavailable) is folded into one
 * "database unreachable" line per second, which counts the ones it stands for, without a stack.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  let lastOutageLine = 0;
  let folded = 0;
  return pino(
    {
      level,
      base: { service: 'refgraph' },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: {
        logMethod(args, method) {
          const fields = args[0] as unknown;
          const err = fields && typeof fields === 'object' ? (fields as { err?: unknown }).err : undefined;
          if (err === undefined || !isDatabaseUnavailable(err)) return method.apply(this, args);
          const now = Date.now();
          folded++;
          if (now - lastOutageLine < OUTAGE_LOG_INTERVAL_MS) return;
          lastOutageLine = now;
          const line = {
            reason: (err as Error).message ?? String(err),
            errors: folded,
            during: typeof args[1] === 'string' ? args[1] : undefined,
          };
          folded = 0;
          this.warn(
            line,
            'database unreachable (one line per second at most; `errors` counts the failures it stands for)',
          );
        },
      },
    },
    destination,
  );
}
