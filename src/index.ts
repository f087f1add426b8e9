import { constants } from 'node:os';
import { buildApp, type App } from './app.js';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';

/** How long a graceful stop may take before the process exits anyway (orchestrators kill at ~30 s). */
const STOP_DEADLINE_MS = 20_000;

/**
 * Run the server until SIGTERM or SIGINT, then stop gracefully and exit 0. A signal during start-up
 * (e.g. while migrations run) stops the server as soon as start-up is done; a second signal exits
 * at once.
 */
export async function serve(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  let app: App | undefined;
  let stopRequested = false;
  let signals = 0;

  const stop = (running: App) => {
    setTimeout(() => {
      logger.error({ deadlineMs: STOP_DEADLINE_MS }, 'graceful stop took too long: exiting');
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stop failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(128 + (constants.signals[signal] ?? 0));
    }
    stopRequested = true;
    if (app) {
      logger.info({ signal }, 'stopping');
      stop(app);
    } else {
      logger.info({ signal }, 'stopping once start-up is complete (send the signal again to exit now)');
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const built = await buildApp({ config, logger });
  if (stopRequested) return stop(built);
  try {
    await built.start();
  } catch (error) {
    // E.g. the port is taken: release the database before reporting it.
    await built.stop().catch(() => {});
    throw error;
  }
  app = built;
  if (stopRequested) stop(built);
}
