import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { applyMigrations } from '../src/db/migrate.js';
import { testDatabaseUrl } from './helpers/backend.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** PostgreSQL: the migrated template database each test file copies. */
    pgTemplate: string | null;
    /** PGlite: a migrated data directory dump each test file loads. */
    pgliteDump: string | null;
  }
}

const migrationsDir = path.resolve(import.meta.dirname, '../prisma/migrations');

/** A hash of every migration file: the template is rebuilt only when migrations change. */
function migrationsHash(): string {
  const hash = createHash('sha256');
  for (const dir of fs.readdirSync(migrationsDir).sort()) {
    const file = path.join(migrationsDir, dir, 'migration.sql');
    if (fs.existsSync(file)) hash.update(dir).update(fs.readFileSync(file));
  }
  return hash.digest('hex').slice(0, 12);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = testDatabaseUrl();
  if (url) {
    const template = `refgraph_test_tmpl_${migrationsHash()}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const exists = await admin.query('select 1 from pg_database where datname = $1', [template]);
      if (exists.rowCount === 0) {
        const building = `${template}_build_${process.pid}`;
        await admin.query(`create database "${building}"`);
        const u = new URL(url);
        u.pathname = `/${building}`;
        await applyMigrations({ url: u.toString() });
        // Rename into place only when complete, so a crashed setup never leaves a half-built template.
        await admin.query(`alter database "${building}" rename to "${template}"`).catch(async (error: unknown) => {
          await admin.query(`drop database if exists "${building}" with (force)`);
          const again = await admin.query('select 1 from pg_database where datname = $1', [template]);
          if (again.rowCount === 0) throw error;
        });
      }
    } finally {
      await admin.end();
    }
    project.provide('pgTemplate', template);
    project.provide('pgliteDump', null);
    return async () => {};
  }
  const db = new PGlite();
  await applyMigrations({ pglite: db });
  const dump = await db.dumpDataDir('none');
  await db.close();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-test-'));
  const file = path.join(dir, 'migrated.tar');
  fs.writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  project.provide('pgTemplate', null);
  project.provide('pgliteDump', file);
  return async () => fs.rmSync(dir, { recursive: true, force: true });
}
