import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { applyMigrations, defaultMigrationsDir } from '../../src/db/migrate.js';

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
