import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/** JSON lines on stdout; `silent` in tests unless LOG_LEVEL says otherwise. */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: 'refgraph' }, timestamp: pino.stdTimeFunctions.isoTime });
}
