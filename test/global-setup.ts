import { spawnSync } from 'node:child_process';
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

const root = path.resolve(import.meta.dirname, '..');
const migrationsDir = path.join(root, 'prisma/migrations');

/** A hash of every migration file: the template is rebuilt only when migrations change. */
function migrationsHash(): string {
  const hash = createHash('sha256');
  for (const dir of fs.readdirSync(migrationsDir).sort()) {
    const file = path.join(migrationsDir, dir, 'migration.sql');
    if (fs.existsSync(file)) hash.update(dir).update(fs.readFileSync(file));
  }
  return hash.digest('hex').slice(0, 12);
}

/** The web build's inputs: src/web (but not its generated documents), the schema, the lock file. */
function webSourcesHash(): string {
  const hash = createHash('sha256');
  const web = path.join(root, 'src/web');
  const files = fs
    .readdirSync(web, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter((file) => !file.startsWith(path.join(web, 'gql') + path.sep))
    .concat(['schema.graphql', 'codegen.ts', 'package-lock.json'].map((name) => path.join(root, name)))
    .sort();
  for (const file of files) hash.update(path.relative(root, file)).update('\0').update(fs.readFileSync(file));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Builds the web app (dist/web: the dashboard, the portal, /widget.js) when it is missing or was
 * built from other sources than src/web's current ones: the stamp beside it holds the hash of what
 * it was built from, so a focused test run pays for the build (a few seconds) only after a change.
 * The typed documents (src/web/gql) are generated first, as `npm run build` does.
 */
function buildWebIfStale(): void {
  const stamp = path.join(root, 'dist/.web-build-stamp');
  const hash = webSourcesHash();
  const built = fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === hash;
  const output = ['dist/web/app/index.html', 'dist/web/widget.js'].map((file) => path.join(root, file));
  if (built && output.every((file) => fs.existsSync(file))) return;
  const run = (args: string[]) => {
    const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
    if (result.status !== 0)
      throw new Error(`test setup: \`${args.slice(1).join(' ')}\` failed (exit ${result.status})`);
  };
  run(['node_modules/@graphql-codegen/cli/cjs/bin.js', '--config', 'codegen.ts', '--silent']);
  run(['node_modules/vite/bin/vite.js', 'build', '-c', 'src/web/vite.config.ts']);
  run(['node_modules/vite/bin/vite.js', 'build', '-c', 'src/web/widget/vite.config.ts']);
  fs.writeFileSync(stamp, `${hash}\n`);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  buildWebIfStale();
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
