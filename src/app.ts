import type { AddressInfo } from 'node:net';
import type { GraphQLError } from 'graphql';
import type { Config } from './config.js';
import type { AppServices } from './context.js';
import { type Database, openDatabase } from './db.js';
import { GraphiQLAssets } from './graphiql.js';
import { WebAssets } from './http/web-assets.js';
import { type ApiYoga, createApiYoga, GRAPHQL_PATH, maskError } from './graphql/yoga.js';
import { createHttpServer } from './http/routes.js';
import { RateLimiter } from './lib/rate-limit.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { Authenticator } from './modules/auth/authenticate.js';
import { TokenSigner } from './modules/auth/tokens.js';
import { ClickRecorder } from './modules/click/click.service.js';
import { EventDispatcher } from './modules/events/dispatcher.js';
import { ExportMonitor } from './modules/export/export-monitor.js';
import { RetentionJob } from './modules/events/retention.js';
import { RollupFoldJob } from './modules/reporting/fold.js';
import { ApprovalJob } from './modules/reward/approval-job.js';
import { TierJob } from './modules/tier/tier-job.js';
import { WebhookWorker } from './modules/webhook/delivery-worker.js';
import { createAppPubSub } from './pubsub.js';
import { SharedExecution } from './realtime/shared-execution.js';
import { serveGraphQLWebSocket } from './realtime/websocket-server.js';
import { loadInstallationSecret } from './secret.js';
import { SecretBox } from './lib/secret-box.js';
import { CsrfTokens } from './modules/member/session-tokens.js';

export interface App {
  /** Listen on config.port (0: a free port). Resolves with the bound URL, e.g. http://127.0.0.1:4000. */
  start(): Promise<{ url: string; port: number }>;
  /** Stop accepting, close WebSockets with 1001, finish in-flight requests, close the database. */
  stop(): Promise<void>;
  readonly services: AppServices;
  readonly yoga: ApiYoga;
  /** Approves rewards whose hold period ended; runs every APPROVAL_JOB_INTERVAL_MS once started. */
  readonly approvalJob: ApprovalJob;
  /** Moves partners to the tier they reach (up and down); runs every TIER_JOB_INTERVAL_MS once started, `runOnce(now)` for tests. */
  readonly tierJob: TierJob;
  /** Delivers committed outbox events to subscribers; `drain()` waits until all are published. */
  readonly dispatcher: EventDispatcher;
  /** Turns committed events into signed webhook deliveries and sends them; `runOnce(now)` for tests. */
  readonly webhooks: WebhookWorker;
  /** Deletes events and webhook deliveries past their retention; runs every RETENTION_INTERVAL_SECONDS, `runOnce(now)` for tests. */
  readonly retention: RetentionJob;
  /** Folds pending reporting deltas into the rollups; runs every ROLLUP_FOLD_INTERVAL_MS, `runOnce()` for tests. */
  readonly rollupFold: RollupFoldJob;
  /** Subscription events executed once per group of identical subscribers; counts for tests. */
  readonly subscriptionExecution: SharedExecution;
  /** The CSV exports streaming on this instance; `whenIdle()` resolves once none reads the database. */
  readonly exports: ExportMonitor;
}

export interface BuildAppOptions {
  config: Config;
  /** Use this database instead of opening the configured one (tests); the app will not close it. */
  db?: Database;
  logger?: Logger;
}

/** Everything refgraph serves, on one port: GraphQL over HTTP and WebSocket, health checks. */
export async function buildApp(options: BuildAppOptions): Promise<App> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  const ownsDb = !options.db;
  const db =
    options.db ??
    (await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolSize: config.databasePoolSize,
      migrate: config.migrateOnStart,
      logger,
    }));
  const secret = await loadInstallationSecret(db, config.secret);
  const tokens = new TokenSigner(secret);
  const clicks = new ClickRecorder({ ...config.clicks, query: db.query, secret, logger });
  const bus = await createAppPubSub({ redisUrl: config.redisUrl, redisPrefix: config.redisPrefix });
  const dispatcher = new EventDispatcher(db, bus, logger, { pollIntervalMs: config.eventPollIntervalMs });
  const authenticator = new Authenticator(db, tokens, config.authCacheTtlMs);
  const providerSecrets = new SecretBox(secret, 'payment-provider-signing-secrets');
  const rateLimiter = new RateLimiter(config.rateLimits, { redis: bus.redis, keyPrefix: config.redisPrefix, logger });
  const services: AppServices = {
    config,
    db,
    logger,
    tokens,
    authenticator,
    clicks,
    pubsub: bus.pubsub,
    providerSecrets,
    rateLimiter,
    csrf: new CsrfTokens(secret),
  };
  const approvalJob = new ApprovalJob(db.prisma, { intervalMs: config.approvalJobIntervalMs, logger });
  const tierJob = new TierJob(db, { intervalMs: config.tierJobIntervalMs, logger });
  const webhooks = new WebhookWorker(db, { ...config.webhooks, intervalMs: config.webhooks.workerIntervalMs, logger });
  const retention = new RetentionJob(db, {
    ...config.retention,
    dispatchedThrough: (workspaceId, mode) => dispatcher.dispatchedThrough(workspaceId, mode),
    logger,
  });
  const rollupFold = new RollupFoldJob(db, { intervalMs: config.rollupFoldIntervalMs, logger });
  // Yoga's masking, for subscription results that go straight to a socket (see SharedExecution).
  const subscriptionExecution = new SharedExecution({
    maskError: (error) => maskError(error, 'Unexpected error.', logger) as GraphQLError,
  });

  const exports = new ExportMonitor();
  const metrics = new Metrics({
    db,
    exports,
    clicks,
    dispatcher,
    webhooks,
    subscriptions: subscriptionExecution,
    openSockets: () => sockets.openSockets,
    socketOperations: () => sockets.operations(),
    logger,
  });
  const graphiql = new GraphiQLAssets();
  const yoga = createApiYoga({
    config,
    logger,
    services,
    authenticator,
    rateLimiter,
    metrics,
    subscriptionExecution,
    graphiql,
  });
  const server = createHttpServer({
    config,
    logger,
    db,
    services,
    yoga,
    metrics,
    graphiql,
    web: new WebAssets(),
    rateLimiter,
    exports,
  });
  const sockets = serveGraphQLWebSocket({
    server,
    path: GRAPHQL_PATH,
    config,
    logger,
    yoga,
    authenticator,
    rateLimiter,
    pubsub: bus.pubsub,
    csrf: services.csrf,
  });

  let stopping: Promise<void> | null = null;
  return {
    services,
    yoga,
    approvalJob,
    tierJob,
    dispatcher,
    webhooks,
    retention,
    rollupFold,
    subscriptionExecution,
    exports,
    start: async () => {
      await dispatcher.start();
      await webhooks.start();
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          const { port } = server.address() as AddressInfo;
          const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
          logger.info({ port, database: db.describe }, `refgraph listening on http://${host}:${port}${GRAPHQL_PATH}`);
          approvalJob.start();
          tierJob.start();
          retention.start();
          rollupFold.start();
          resolve({ url: `http://${host}:${port}`, port });
        });
      });
    },
    stop: () =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await sockets.close(); // every socket with 1001
        server.closeIdleConnections();
        const forced = setTimeout(() => server.closeAllConnections(), 5000);
        await closed;
        clearTimeout(forced);
        await yoga.dispose();
        await clicks.stop(); // every acknowledged click is written before the database closes
        await approvalJob.stop(); // a batch in progress commits before the database closes
        await tierJob.stop(); // a program in progress commits before the database closes
        await webhooks.stop(); // attempts in flight are recorded before the database closes
        await retention.stop(); // a batch in progress commits before the database closes
        await rollupFold.stop(); // a fold in progress commits before the database closes
        await sockets.stopRevocations();
        await dispatcher.stop();
        await bus.close();
        metrics.close();
        if (ownsDb) await db.close();
        logger.info('refgraph stopped');
      })()),
  };
}
