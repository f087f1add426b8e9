import path from 'node:path';
import type { OperationLimits } from './graphql/limits.js';
import type { IntrospectionPolicy } from './graphql/request-policy.js';
import type { RateLimitConfig } from './lib/rate-limit.js';

/** Everything refgraph reads from the environment, parsed and validated once at start-up. */
export interface Config {
  /** TCP port of the HTTP/WebSocket server (0 = any free port). */
  port: number;
  host: string;
  /** PostgreSQL connection string; undefined = the embedded PGlite database in `dataDir`. */
  databaseUrl: string | undefined;
  /** Where the embedded database and other local state live. */
  dataDir: string;
  /** Apply pending migrations when the server starts. */
  migrateOnStart: boolean;
  /** Connections in the PostgreSQL pool. */
  databasePoolSize: number;
  redisUrl: string | undefined;
  /** Prefix of every Redis key and channel of this installation, so that installations can share one Redis. */
  redisPrefix: string;
  /** Installation secret for signing tokens and hashing IPs; undefined = generated and kept in the database. */
  secret: string | undefined;
  /** Base URL that referral links are built from, e.g. https://ref.example.com. */
  publicUrl: string;
  logLevel: LogLevel;
  production: boolean;
  /** Behind a reverse proxy: take a visitor's IP from the first X-Forwarded-For hop instead of the socket. */
  trustProxy: boolean;
  /** How clicks are written: in the background, in batches (see src/modules/click/README.md). */
  clicks: ClickConfig;
  /** Pause between runs of the job that approves rewards whose hold period ended; 0 = never run it in this instance. */
  approvalJobIntervalMs: number;
  /** Pause between runs of the daily evaluation of partners' tiers (src/modules/tier/README.md); 0 = never run it in this instance. */
  tierJobIntervalMs: number;
  /** Pause between folds of pending reporting deltas into the rollups; 0 = this instance never folds. */
  rollupFoldIntervalMs: number;
  /** Fallback poll of the outbox when no NOTIFY arrives (ms). */
  eventPollIntervalMs: number;
  /** programStatsChanged sends at most one update per program per this many ms. */
  statsThrottleMs: number;
  /** How long an API key looked up for authentication is reused without asking the database (ms; 0 = always ask). */
  authCacheTtlMs: number;
  /** A WebSocket client with more than this many bytes unsent is closed (1013). */
  wsMaxBufferedBytes: number;
  /** A GraphQL request body (HTTP) larger than this is refused with 413. */
  maxRequestBodyBytes: number;
  /** Operations (subscriptions included) at once on one WebSocket connection. */
  maxSubscriptionsPerConnection: number;
  /** Operations at once over all WebSocket connections of one credential, per instance. */
  maxSubscriptionsPerCredential: number;
  /** Webhook deliveries (see src/modules/webhook/README.md). */
  webhooks: WebhookConfig;
  /** Rate limits (0 points: off); shared through Redis when REDIS_URL is set. */
  rateLimits: RateLimitConfig;
  /** Who may introspect the schema: everyone, authenticated callers, or nobody. */
  introspection: IntrospectionPolicy;
  /** What one GraphQL document may ask for, checked before it runs (see src/graphql/limits.ts). */
  limits: OperationLimits;
  /** `GET /metrics` requires `Authorization: Bearer <this>` when set; open when undefined. */
  metricsToken: string | undefined;
  /** One JSON line per HTTP request at info level (method, path, status, duration, operation, request id). */
  accessLog: boolean;
  /** How long events and webhook deliveries are kept (see src/modules/events/retention.ts). */
  retention: RetentionConfig;
  /** Team members' invitations and sessions (see src/modules/member/README.md). */
  members: MemberConfig;
}

export interface MemberConfig {
  /** An invitation link works this many hours (MEMBER_INVITATION_TTL_HOURS). */
  invitationTtlHours: number;
  /** A dashboard session (its cookie) lasts this many hours (MEMBER_SESSION_TTL_HOURS). */
  sessionTtlHours: number;
}

export interface RetentionConfig {
  /** Events older than this many days are deleted (once dispatched); 0 = kept forever. */
  eventDays: number;
  /** Finished (succeeded or failed) webhook deliveries older than this many days are deleted; 0 = kept forever. */
  webhookDeliveryDays: number;
  /** Raw clicks older than this many days are deleted (their counts stay in the reporting rollups); 0 = kept forever. */
  clickDays: number;
  /** Pause between runs of the retention job; 0 = this instance never runs it. */
  intervalMs: number;
}

export interface WebhookConfig {
  /** Allow loopback, private, link-local… targets (tests, private networks). Default false. */
  allowPrivateTargets: boolean;
  /** Consecutive failed attempts after which an endpoint is disabled. */
  maxConsecutiveFailures: number;
  /** How long after its first attempt a failing delivery is retried before it is FAILED (ms). */
  retryForMs: number;
  /** One request, until the response headers (ms). */
  timeoutMs: number;
  /** Poll for due deliveries every this many ms (NOTIFY wakes it sooner); 0 = no delivery worker in this instance. */
  workerIntervalMs: number;
  /** Requests in flight at once per instance. */
  concurrency: number;
}

export interface ClickConfig {
  /** Clicks acknowledged but not yet written, at most; a full queue makes new clicks wait for the next write. */
  queueSize: number;
  /** Clicks per INSERT statement, at most; a write starts as soon as this many are queued. */
  batchSize: number;
  /** A smaller batch is written at the latest this long after its first click. */
  flushIntervalMs: number;
  /** How long a link's facts (destination, statuses) are reused by the redirect without asking the database; 0 = never. */
  linkCacheTtlMs: number;
  /** Batches written at once, at most (a second one starts only while a full batch waits). */
  writers: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/** A configuration problem, naming the variable and saying what is expected. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}, got "${raw}".`);
  }
  return Number(raw);
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(raw)) return true;
  if (['false', '0', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}".`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be a URL (${protocols.join(' or ')}), got "${redact(raw)}".`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(
      name,
      `must start with ${protocols.map((p) => `${p}//`).join(' or ')}, got "${parsed.protocol}//…".`,
    );
  }
  return raw;
}

/** Hide a password in a URL before it goes into an error message. */
export function redact(value: string): string {
  return value.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}

/** Parse and validate the environment. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const port = integer(env, 'PORT', 4000, 0, 65535);
  const host = read(env, 'HOST') ?? '0.0.0.0';
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const dataDir = path.resolve(read(env, 'REFGRAPH_DATA_DIR') ?? '.refgraph');
  const migrateOnStart = boolean(env, 'MIGRATE_ON_START', true);
  const databasePoolSize = integer(env, 'DATABASE_POOL_SIZE', 10, 1, 1000);
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const redisPrefix = read(env, 'REDIS_PREFIX') ?? 'refgraph:';
  if (redisPrefix.length > 100 || !/^[\x21-\x7e]+$/.test(redisPrefix)) {
    throw new ConfigError(
      'REDIS_PREFIX',
      `must be 1 to 100 printable ASCII characters without spaces (e.g. "shop-a:"), got "${redisPrefix.slice(0, 100)}".`,
    );
  }
  const secret = read(env, 'REFGRAPH_SECRET');
  if (secret !== undefined && secret.length < 32) {
    throw new ConfigError(
      'REFGRAPH_SECRET',
      `must be at least 32 characters long (got ${secret.length}); generate one with \`openssl rand -base64 48\`.`,
    );
  }
  const publicUrl = (url(env, 'PUBLIC_URL', ['http:', 'https:']) ?? `http://localhost:${port || 4000}`).replace(
    /\/+$/,
    '',
  );
  const logLevel = (read(env, 'LOG_LEVEL') ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}".`);
  }
  const production = read(env, 'NODE_ENV') === 'production';
  const trustProxy = boolean(env, 'TRUST_PROXY', false);
  const clicks: ClickConfig = {
    queueSize: integer(env, 'CLICK_QUEUE_SIZE', 10_000, 1, 1_000_000),
    batchSize: integer(env, 'CLICK_BATCH_SIZE', 500, 1, 10_000),
    flushIntervalMs: integer(env, 'CLICK_FLUSH_INTERVAL_MS', 100, 1, 60_000),
    linkCacheTtlMs: integer(env, 'CLICK_LINK_CACHE_TTL_MS', 2_000, 0, 60_000),
    writers: integer(env, 'CLICK_WRITERS', 2, 1, 32),
  };
  if (clicks.batchSize > clicks.queueSize) {
    throw new ConfigError(
      'CLICK_BATCH_SIZE',
      `must not exceed CLICK_QUEUE_SIZE (${clicks.queueSize}), got ${clicks.batchSize}.`,
    );
  }
  const approvalJobIntervalMs = integer(env, 'APPROVAL_JOB_INTERVAL_MS', 60_000, 0, 86_400_000);
  const tierJobIntervalMs = integer(env, 'TIER_JOB_INTERVAL_MS', 86_400_000, 0, 7 * 86_400_000);
  const rollupFoldIntervalMs = integer(env, 'ROLLUP_FOLD_INTERVAL_MS', 5_000, 0, 3_600_000);
  const eventPollIntervalMs = integer(env, 'EVENT_POLL_INTERVAL_MS', 1000, 50, 60_000);
  const statsThrottleMs = integer(env, 'STATS_THROTTLE_MS', 1000, 0, 60_000);
  const authCacheTtlMs = integer(env, 'AUTH_CACHE_TTL_MS', 5_000, 0, 60_000);
  const wsMaxBufferedBytes = integer(env, 'WS_MAX_BUFFERED_BYTES', 4 * 1024 * 1024, 1024, 1024 * 1024 * 1024);
  const maxRequestBodyBytes = integer(env, 'MAX_REQUEST_BODY_BYTES', 1024 * 1024, 1024, 100 * 1024 * 1024);
  const maxSubscriptionsPerConnection = integer(env, 'MAX_SUBSCRIPTIONS_PER_CONNECTION', 100, 1, 100_000);
  const maxSubscriptionsPerCredential = integer(env, 'MAX_SUBSCRIPTIONS_PER_CREDENTIAL', 10_000, 1, 10_000_000);
  const webhooks: WebhookConfig = {
    allowPrivateTargets: boolean(env, 'WEBHOOK_ALLOW_PRIVATE_TARGETS', false),
    maxConsecutiveFailures: integer(env, 'WEBHOOK_MAX_FAILURES', 10, 1, 10_000),
    retryForMs: integer(env, 'WEBHOOK_RETRY_FOR_MS', 86_400_000, 0, 30 * 86_400_000),
    timeoutMs: integer(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
    workerIntervalMs: integer(env, 'WEBHOOK_WORKER_INTERVAL_MS', 1000, 0, 3_600_000),
    concurrency: integer(env, 'WEBHOOK_CONCURRENCY', 10, 1, 1000),
  };
  const rateLimits: RateLimitConfig = {
    credential: { points: integer(env, 'RATE_LIMIT_CREDENTIAL_PER_SECOND', 1000, 0, 1_000_000), durationSeconds: 1 },
    anonymous: { points: integer(env, 'RATE_LIMIT_ANONYMOUS_PER_MINUTE', 600, 0, 100_000_000), durationSeconds: 60 },
    tokens: { points: integer(env, 'RATE_LIMIT_TOKENS_PER_MINUTE', 60, 0, 100_000_000), durationSeconds: 60 },
    redirect: { points: integer(env, 'RATE_LIMIT_REDIRECT_PER_MINUTE', 1200, 0, 100_000_000), durationSeconds: 60 },
    stripe: { points: integer(env, 'RATE_LIMIT_STRIPE_PER_SECOND', 200, 0, 1_000_000), durationSeconds: 1 },
    signInFailures: { points: integer(env, 'RATE_LIMIT_SIGN_IN_FAILURES', 5, 0, 1_000_000), durationSeconds: 15 * 60 },
    signInFailuresPerIp: {
      points: integer(env, 'RATE_LIMIT_SIGN_IN_FAILURES_PER_IP', 20, 0, 1_000_000),
      durationSeconds: 15 * 60,
    },
  };
  const introspection = (
    read(env, 'INTROSPECTION') ?? (production ? 'authenticated' : 'public')
  ).toLowerCase() as IntrospectionPolicy;
  if (!['public', 'authenticated', 'off'].includes(introspection)) {
    throw new ConfigError('INTROSPECTION', `must be public, authenticated or off, got "${introspection}".`);
  }
  const limits: OperationLimits = {
    depth: integer(env, 'MAX_QUERY_DEPTH', 15, 1, 1000),
    cost: integer(env, 'MAX_QUERY_COST', 500_000, 1, 1_000_000_000),
    aliases: integer(env, 'MAX_ALIASES', 30, 0, 100_000),
    tokens: integer(env, 'MAX_QUERY_TOKENS', 5_000, 100, 1_000_000),
    nesting: integer(env, 'MAX_QUERY_NESTING', 64, 8, 1_000),
  };
  const members: MemberConfig = {
    invitationTtlHours: integer(env, 'MEMBER_INVITATION_TTL_HOURS', 72, 1, 30 * 24),
    sessionTtlHours: integer(env, 'MEMBER_SESSION_TTL_HOURS', 12, 1, 30 * 24),
  };
  const metricsToken = read(env, 'METRICS_TOKEN');
  const accessLog = boolean(env, 'ACCESS_LOG', true);
  const retention: RetentionConfig = {
    eventDays: integer(env, 'EVENT_RETENTION_DAYS', 90, 0, 36_500),
    webhookDeliveryDays: integer(env, 'WEBHOOK_DELIVERY_RETENTION_DAYS', 30, 0, 36_500),
    clickDays: integer(env, 'CLICK_RETENTION_DAYS', 0, 0, 36_500),
    intervalMs: integer(env, 'RETENTION_INTERVAL_SECONDS', 3600, 0, 7 * 86_400) * 1000,
  };
  return {
    port,
    host,
    databaseUrl,
    dataDir,
    migrateOnStart,
    databasePoolSize,
    redisUrl,
    redisPrefix,
    secret,
    publicUrl,
    logLevel,
    production,
    trustProxy,
    clicks,
    approvalJobIntervalMs,
    tierJobIntervalMs,
    rollupFoldIntervalMs,
    eventPollIntervalMs,
    statsThrottleMs,
    authCacheTtlMs,
    wsMaxBufferedBytes,
    maxRequestBodyBytes,
    maxSubscriptionsPerConnection,
    maxSubscriptionsPerCredential,
    webhooks,
    rateLimits,
    introspection,
    limits,
    metricsToken,
    accessLog,
    retention,
    members,
  };
}
