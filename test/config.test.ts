import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('has sensible defaults with an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      databaseUrl: undefined,
      migrateOnStart: true,
      redisUrl: undefined,
      secret: undefined,
      publicUrl: 'http://localhost:4000',
      logLevel: 'info',
    });
    expect(config.dataDir).toMatch(/\.refgraph$/);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://localhost/db' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
    [{ MIGRATE_ON_START: 'maybe' }, 'MIGRATE_ON_START'],
    [{ REDIS_URL: 'http://localhost' }, 'REDIS_URL'],
    [{ REFGRAPH_SECRET: 'short' }, 'REFGRAPH_SECRET'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ PUBLIC_URL: 'ftp://x' }, 'PUBLIC_URL'],
  ])('refuses %o naming the variable', (env, variable) => {
    try {
      loadConfig(env);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe(variable);
      expect((error as Error).message).toContain(variable);
    }
  });

  it('never prints a database password in an error', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db/x' })).toThrow(/^(?!.*hunter2)/s);
  });

  it('accepts a PostgreSQL URL and trims a trailing slash from PUBLIC_URL', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://u:p@db:5432/refgraph',
      PUBLIC_URL: 'https://ref.example.com/',
      MIGRATE_ON_START: 'false',
    });
    expect(config.databaseUrl).toBe('postgresql://u:p@db:5432/refgraph');
    expect(config.publicUrl).toBe('https://ref.example.com');
    expect(config.migrateOnStart).toBe(false);
  });
});

describe('APPROVAL_JOB_INTERVAL_MS', () => {
  it('defaults to a minute, accepts 0 (the job never runs on its own) and a custom pause', () => {
    expect(loadConfig({}).approvalJobIntervalMs).toBe(60_000);
    expect(loadConfig({ APPROVAL_JOB_INTERVAL_MS: '0' }).approvalJobIntervalMs).toBe(0);
    expect(loadConfig({ APPROVAL_JOB_INTERVAL_MS: '250' }).approvalJobIntervalMs).toBe(250);
  });

  it.each(['-1', '1.5', 'soon', '86400001'])('refuses %s naming the variable', (value) => {
    expect(() => loadConfig({ APPROVAL_JOB_INTERVAL_MS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ APPROVAL_JOB_INTERVAL_MS: value })).toThrow(/APPROVAL_JOB_INTERVAL_MS/);
  });
});

describe('TIER_JOB_INTERVAL_MS', () => {
  it('defaults to a day, accepts 0 (the job never runs on its own) and a custom pause', () => {
    expect(loadConfig({}).tierJobIntervalMs).toBe(86_400_000);
    expect(loadConfig({ TIER_JOB_INTERVAL_MS: '0' }).tierJobIntervalMs).toBe(0);
    expect(loadConfig({ TIER_JOB_INTERVAL_MS: '3600000' }).tierJobIntervalMs).toBe(3_600_000);
  });

  it.each(['-1', 'daily', '604800001'])('refuses %s naming the variable', (value) => {
    expect(() => loadConfig({ TIER_JOB_INTERVAL_MS: value })).toThrow(/TIER_JOB_INTERVAL_MS/);
  });
});

describe('ROLLUP_FOLD_INTERVAL_MS', () => {
  it('defaults to 5 s, accepts 0 (this instance never folds) and a custom pause', () => {
    expect(loadConfig({}).rollupFoldIntervalMs).toBe(5_000);
    expect(loadConfig({ ROLLUP_FOLD_INTERVAL_MS: '0' }).rollupFoldIntervalMs).toBe(0);
    expect(loadConfig({ ROLLUP_FOLD_INTERVAL_MS: '60000' }).rollupFoldIntervalMs).toBe(60_000);
  });

  it.each(['-1', 'often', '3600001'])('refuses %s naming the variable', (value) => {
    expect(() => loadConfig({ ROLLUP_FOLD_INTERVAL_MS: value })).toThrow(/ROLLUP_FOLD_INTERVAL_MS/);
  });
});

describe('click settings', () => {
  it('default to no trusted proxy, a 10 000-click queue, batches of 500 every 100 ms, two writers, links cached 2 s', () => {
    const config = loadConfig({});
    expect(config.trustProxy).toBe(false);
    expect(config.clicks).toEqual({
      queueSize: 10_000,
      batchSize: 500,
      flushIntervalMs: 100,
      linkCacheTtlMs: 2_000,
      writers: 2,
    });
  });

  it('read TRUST_PROXY and the CLICK_* variables', () => {
    const config = loadConfig({
      TRUST_PROXY: 'true',
      CLICK_QUEUE_SIZE: '2000',
      CLICK_BATCH_SIZE: '2000',
      CLICK_FLUSH_INTERVAL_MS: '25',
      CLICK_LINK_CACHE_TTL_MS: '0',
      CLICK_WRITERS: '4',
    });
    expect(config.trustProxy).toBe(true);
    expect(config.clicks).toEqual({
      queueSize: 2000,
      batchSize: 2000,
      flushIntervalMs: 25,
      linkCacheTtlMs: 0,
      writers: 4,
    });
  });

  it.each([
    [{ TRUST_PROXY: 'sometimes' }, 'TRUST_PROXY'],
    [{ CLICK_QUEUE_SIZE: '0' }, 'CLICK_QUEUE_SIZE'],
    [{ CLICK_BATCH_SIZE: '10001' }, 'CLICK_BATCH_SIZE'],
    [{ CLICK_QUEUE_SIZE: '100', CLICK_BATCH_SIZE: '500' }, 'CLICK_BATCH_SIZE'],
    [{ CLICK_FLUSH_INTERVAL_MS: '0' }, 'CLICK_FLUSH_INTERVAL_MS'],
    [{ CLICK_LINK_CACHE_TTL_MS: '-5' }, 'CLICK_LINK_CACHE_TTL_MS'],
    [{ CLICK_WRITERS: '0' }, 'CLICK_WRITERS'],
  ])('refuse %o naming the variable', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(variable));
  });
});

describe('webhook settings', () => {
  it('default to public targets only, 10 failures, retries for 24 h, 10 s timeout, a 1 s poll and 10 requests in flight', () => {
    expect(loadConfig({}).webhooks).toEqual({
      allowPrivateTargets: false,
      maxConsecutiveFailures: 10,
      retryForMs: 86_400_000,
      timeoutMs: 10_000,
      workerIntervalMs: 1000,
      concurrency: 10,
    });
  });

  it('read the WEBHOOK_* variables', () => {
    const config = loadConfig({
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_MAX_FAILURES: '3',
      WEBHOOK_RETRY_FOR_MS: '0',
      WEBHOOK_TIMEOUT_MS: '2500',
      WEBHOOK_WORKER_INTERVAL_MS: '0',
      WEBHOOK_CONCURRENCY: '50',
    });
    expect(config.webhooks).toEqual({
      allowPrivateTargets: true,
      maxConsecutiveFailures: 3,
      retryForMs: 0,
      timeoutMs: 2500,
      workerIntervalMs: 0,
      concurrency: 50,
    });
  });

  it.each([
    [{ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'maybe' }, 'WEBHOOK_ALLOW_PRIVATE_TARGETS'],
    [{ WEBHOOK_MAX_FAILURES: '0' }, 'WEBHOOK_MAX_FAILURES'],
    [{ WEBHOOK_RETRY_FOR_MS: '-1' }, 'WEBHOOK_RETRY_FOR_MS'],
    [{ WEBHOOK_RETRY_FOR_MS: '2592000001' }, 'WEBHOOK_RETRY_FOR_MS'],
    [{ WEBHOOK_TIMEOUT_MS: '99' }, 'WEBHOOK_TIMEOUT_MS'],
    [{ WEBHOOK_WORKER_INTERVAL_MS: 'often' }, 'WEBHOOK_WORKER_INTERVAL_MS'],
    [{ WEBHOOK_CONCURRENCY: '0' }, 'WEBHOOK_CONCURRENCY'],
  ])('refuse %o naming the variable', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(variable));
  });
});

describe('retention and REDIS_PREFIX', () => {
  it('keeps events 90 days and deliveries 30, runs hourly; 0 keeps forever / never runs here', () => {
    expect(loadConfig({}).retention).toEqual({
      eventDays: 90,
      webhookDeliveryDays: 30,
      clickDays: 0,
      intervalMs: 3_600_000,
    });
    expect(
      loadConfig({
        EVENT_RETENTION_DAYS: '0',
        WEBHOOK_DELIVERY_RETENTION_DAYS: '7',
        CLICK_RETENTION_DAYS: '400',
        RETENTION_INTERVAL_SECONDS: '0',
      }).retention,
    ).toEqual({
      eventDays: 0,
      webhookDeliveryDays: 7,
      clickDays: 400,
      intervalMs: 0,
    });
    expect(loadConfig({}).redisPrefix).toBe('refgraph:');
    expect(loadConfig({ REDIS_PREFIX: 'shop-a:' }).redisPrefix).toBe('shop-a:');
  });

  it.each([
    [{ EVENT_RETENTION_DAYS: '-1' }, 'EVENT_RETENTION_DAYS'],
    [{ EVENT_RETENTION_DAYS: 'ninety' }, 'EVENT_RETENTION_DAYS'],
    [{ CLICK_RETENTION_DAYS: '-1' }, 'CLICK_RETENTION_DAYS'],
    [{ WEBHOOK_DELIVERY_RETENTION_DAYS: '1.5' }, 'WEBHOOK_DELIVERY_RETENTION_DAYS'],
    [{ RETENTION_INTERVAL_SECONDS: '604801' }, 'RETENTION_INTERVAL_SECONDS'],
    [{ REDIS_PREFIX: 'shop a:' }, 'REDIS_PREFIX'],
    [{ REDIS_PREFIX: 'x'.repeat(101) }, 'REDIS_PREFIX'],
  ])('refuses %o naming the variable', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(expect.objectContaining({ variable }));
  });
});
