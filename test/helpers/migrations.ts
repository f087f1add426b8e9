import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { applyMigrations, defaultMigrationsDir } from '../../src/db/migrate.js';
import { databaseUrlFor, testDatabaseUrl } from './backend.js';

/**
 * An in-memory PGlite migrated up to (not including) `migration`: a database of an installation
 * that has not run it yet, for tests of a migration on data of the old shape. `applyRest()` then
 * runs every remaining migration (answering their names); `close()` ends it and removes the copy.
 */
export async function migratedUpTo(migration: string): Promise<{
  pglite: PGlite;
  applyRest: () => Promise<string[]>;
  close: () => Promise<void>;
}> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-migration-'));
  const all = defaultMigrationsDir();
  const before = path.join(tmp, 'before');
  fs.mkdirSync(before);
  for (const name of fs.readdirSync(all).filter((n) => n < migration && fs.statSync(path.join(all, n)).isDirectory()))
    fs.cpSync(path.join(all, name), path.join(before, name), { recursive: true });
  const pglite = new PGlite();
  await applyMigrations({ pglite }, { migrationsDir: before });
  return {
    pglite,
    applyRest: async () => (await applyMigrations({ pglite }, { migrationsDir: all })).applied,
    close: async () => {
      await pglite.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** A database migrated up to (not including) a migration, on the backend the tests run against. */
export interface MigratedDatabase {
  backend: 'pglite' | 'postgres';
  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** A script of several statements. */
  exec(script: string): Promise<void>;
  applyRest: () => Promise<string[]>;
  close: () => Promise<void>;
}

/**
 * {@link migratedUpTo} on PostgreSQL when the tests run against it (TEST_DATABASE_URL: a database
 * of its own, dropped by close()), else on an in-memory PGlite.
 */
export async function migratedUpToOnTestBackend(migration: string): Promise<MigratedDatabase> {
  const base = testDatabaseUrl();
  if (!base) {
    const db = await migratedUpTo(migration);
    return {
      backend: 'pglite',
      query: async (text, params) => (await db.pglite.query<never>(text, params)).rows,
      exec: async (script) => {
        await db.pglite.exec(script);
      },
      applyRest: db.applyRest,
      close: db.close,
    };
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-migration-'));
  const all = defaultMigrationsDir();
  for (const name of fs.readdirSync(all).filter((n) => n < migration && fs.statSync(path.join(all, n)).isDirectory()))
    fs.cpSync(path.join(all, name), path.join(tmp, name), { recursive: true });
  const name = `refgraph_migration_${randomBytes(6).toString('hex')}`;
  const url = databaseUrlFor(base, name);
  await applyMigrations({ url }, { migrationsDir: tmp, createDatabase: true });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    backend: 'postgres',
    query: async (text, params) => (await client.query(text, params)).rows,
    exec: async (script) => {
      await client.query(script);
    },
    applyRest: async () => (await applyMigrations({ url }, { migrationsDir: all })).applied,
    close: async () => {
      await client.end();
      const admin = new pg.Client({ connectionString: base });
      await admin.connect();
      try {
        await admin.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await admin.end();
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}
