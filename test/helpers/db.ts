import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase, type Database } from '../../src/db.js';
import { databaseUrlFor, testDatabaseUrl } from './backend.js';

export interface TestDatabase {
  db: Database;
  /** PostgreSQL connection string of this test database (null on PGlite). */
  url: string | null;
  /** Close and throw the database away. */
  destroy(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file: a copy of the migrated template on PostgreSQL,
 * or an in-memory PGlite loaded from the migrated dump. No test sees another file's data.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const base = testDatabaseUrl();
  const template = inject('pgTemplate');
  if (base && template) {
    const name = `refgraph_test_${randomBytes(6).toString('hex')}`;
    await withAdmin(base, (admin) => admin.query(`create database "${name}" template "${template}"`));
    const url = databaseUrlFor(base, name);
    const db = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 10, migrate: false });
    return {
      db,
      url,
      destroy: async () => {
        await db.close();
        await withAdmin(base, (admin) => admin.query(`drop database if exists "${name}" with (force)`));
      },
    };
  }
  const dump = inject('pgliteDump');
  if (!dump) throw new Error('global setup provided neither a PostgreSQL template nor a PGlite dump');
  const pglite = new PGlite({ loadDataDir: new Blob([fs.readFileSync(dump)]) });
  const db = await openDatabase({ databaseUrl: undefined, dataDir: '', pglite, migrate: false });
  return {
    db,
    url: null,
    destroy: async () => {
      await db.close();
      await pglite.close();
    },
  };
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
