import { Redis } from 'ioredis';

/**
 * The PostgreSQL server tests run against: TEST_DATABASE_URL, else DATABASE_URL; null means the
 * embedded PGlite, so `npm test` passes on any machine.
 */
export function testDatabaseUrl(): string | null {
  const url = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  return url ? url : null;
}

/** The same server, another database on it. */
export function databaseUrlFor(base: string, database: string): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The Redis the multi-instance tests use: TEST_REDIS_URL, else the local default. */
export const testRedisUrl = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** True when a Redis server answers PING at `url` within 2 s (tests that need one skip otherwise). */
export async function redisReachable(url: string): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}
