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
    const config = loadConfig({ DATABASE_URL: 'postgresql://u:p@db:5432/refgraph', PUBLIC_URL: 'https://ref.example.com/', MIGRATE_ON_START: 'false' });
    expect(config.databaseUrl).toBe('postgresql://u:p@db:5432/refgraph');
    expect(config.publicUrl).toBe('https://ref.example.com');
    expect(config.migrateOnStart).toBe(false);
  });
});
