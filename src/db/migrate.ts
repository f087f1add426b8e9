// Apply pending Prisma migrations from code (server start, tests), without the Prisma CLI and without
// the native schema engine: the wasm schema engine of ./schema-engine/engine.ts does the work.
//
// PostgreSQL: safe with several instances starting at once (a session-level advisory lock on a dedicated
// connection serialises them), and cheap when there is nothing to do (the _prisma_migrations table is
// read directly; the 5 MB wasm engine is only loaded when a migration is pending).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import {
  isPgliteUrl,
  isPostgresUrl,
  noFilters,
  openSchemaEngine,
  pgDatabaseName,
  pgliteDataDir,
  pgUrlWithDatabase,
  quoteIdent,
  readMigrationsList,
  splitPgUrl,
  type MigrationList,
} from './schema-engine/engine.js';

export type MigrationTarget = { url: string } | { pglite: PGlite };

export interface ApplyMigrationsOptions {
  /** Default: prisma/migrations of the package root. */
  migrationsDir?: string;
  log?: (msg: string) => void;
  /** PostgreSQL: create the database when it does not exist (default false: fail with a clear error). */
  createDatabase?: boolean;
  /** PostgreSQL: how long to wait for another instance that is migrating (default 5 minutes). */
  lockTimeoutMs?: number;
}

/** Errors of applyMigrations; `code` tells what went wrong. */
export class MigrationError extends Error {
  constructor(
    message: string,
    readonly code:
      | 'UNREACHABLE'
      | 'AUTH_FAILED'
      | 'DATABASE_MISSING'
      | 'FAILED_MIGRATION'
      | 'LOCK_TIMEOUT'
      | 'APPLY_FAILED'
      | 'UNSUPPORTED_URL',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/**
 * Our advisory lock key. Deliberately NOT Prisma's own 72707369: the schema engine takes that one on
 * its own connection while applying, and would wait forever on us if we held it.
 */
export const MIGRATION_LOCK_KEY = 1919248999; // 0x72656667, "refg"

/** The directory holding package.json above this module (works from src/ and from dist/src/). */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`No package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export function defaultMigrationsDir(): string {
  return path.join(packageRoot(), 'prisma', 'migrations');
}

export async function applyMigrations(
  target: MigrationTarget,
  opts: ApplyMigrationsOptions = {},
): Promise<{ applied: string[] }> {
  const migrationsDir = opts.migrationsDir ?? defaultMigrationsDir();
  const log = opts.log ?? (() => {});
  const migrations = readMigrationsList(migrationsDir);
  if ('pglite' in target) return applyOnPglite(target.pglite, migrations, log);
  const { url } = target;
  if (isPgliteUrl(url)) {
    const { PGlite } = await import('@electric-sql/pglite');
    const db = new PGlite(pgliteDataDir(url));
    try {
      return await applyOnPglite(db, migrations, log);
    } finally {
      await db.close();
    }
  }
  if (!isPostgresUrl(url)) {
    throw new MigrationError(
      `Unsupported database URL scheme "${url.split(':')[0]}:": use postgres://, postgresql://, pglite:memory or pglite:<dir>`,
      'UNSUPPORTED_URL',
    );
  }
  return applyOnPostgres(url, migrations, opts, log);
}

// ---------------------------------------------------------------------------------------------------
// Reading the migration history directly
// ---------------------------------------------------------------------------------------------------

interface HistoryRow {
  migration_name: string;
  checksum: string;
  finished: boolean;
  rolled_back: boolean;
  started_at: Date | string;
  logs: string | null;
}

interface HistoryState {
  pending: string[];
  failed: HistoryRow[];
  edited: string[];
}

type Query = (sql: string) => Promise<HistoryRow[]>;

async function readHistory(query: Query, schema: string, migrations: MigrationList): Promise<HistoryState> {
  let rows: HistoryRow[];
  try {
    rows = await query(
      `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished,
              rolled_back_at IS NOT NULL AS rolled_back, started_at, logs
         FROM ${quoteIdent(schema)}."_prisma_migrations" ORDER BY started_at`,
    );
  } catch (error) {
    // 42P01 undefined_table / 3F000 invalid_schema_name: never migrated.
    if (['42P01', '3F000'].includes((error as { code?: string }).code ?? '')) rows = [];
    else throw error;
  }
  const applied = new Map(rows.filter((r) => r.finished && !r.rolled_back).map((r) => [r.migration_name, r]));
  const pending: string[] = [];
  const edited: string[] = [];
  for (const dir of migrations.migrationDirectories) {
    const row = applied.get(dir.path);
    if (!row) pending.push(dir.path);
    else if (dir.migrationFile.content.tag === 'ok' && row.checksum !== sha256(dir.migrationFile.content.value)) {
      edited.push(dir.path);
    }
  }
  return { pending, failed: rows.filter((r) => !r.finished && !r.rolled_back), edited };
}

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

function warnEdited(state: HistoryState, log: (msg: string) => void): void {
  if (state.edited.length) {
    log(
      `warning: migration(s) ${state.edited.join(', ')} were modified after being applied ` +
        '(checksum differs from _prisma_migrations); the database was not changed',
    );
  }
}

/** The engine's error text without the Rust span trace that follows it ("   0: sql_schema_connector::..."). */
const withoutTrace = (text: string) => text.split(/\n\s+0: /)[0]!.trim();

function failedMigrationError(state: HistoryState, where: string, cause?: unknown): MigrationError {
  const [first] = state.failed;
  const name = first?.migration_name ?? '?';
  return new MigrationError(
    `Migration \`${name}\` ${cause ? 'failed' : 'failed earlier'} on ${where} and is marked as failed in ` +
      '_prisma_migrations; no further migration will be applied until it is resolved.\n' +
      `What to do: look at the error below, then either\n` +
      `  - make the database match the migration by hand and run: npx prisma migrate resolve --applied ${name}\n` +
      `  - or undo whatever it changed (migrations run in one transaction, so usually nothing) and run:\n` +
      `    npx prisma migrate resolve --rolled-back ${name}\n` +
      `then start again (DATABASE_URL must point at this database).` +
      (first?.logs ? `\nRecorded error: ${withoutTrace(first.logs)}` : ''),
    'FAILED_MIGRATION',
    { cause },
  );
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------------

function describePg(url: string): { where: string; host: string; port: string; user: string; database: string } {
  const u = new URL(url);
  const host = u.hostname || 'localhost';
  const port = u.port || '5432';
  const database = pgDatabaseName(url);
  const user = decodeURIComponent(u.username) || process.env['USER'] || '?';
  return { where: `PostgreSQL database "${database}" at ${host}:${port}`, host, port, user, database };
}

function connectionError(error: unknown, url: string, canCreate: boolean): MigrationError {
  const e = error as { code?: string; message?: string };
  const { where, host, port, user, database } = describePg(url);
  const message = e.message ?? String(error);
  switch (e.code) {
    case 'ECONNREFUSED':
      return new MigrationError(
        `Cannot connect to ${where}: connection refused. Check that PostgreSQL is running and listening on ` +
          `${host}:${port}, and that DATABASE_URL names the right host and port.`,
        'UNREACHABLE',
        { cause: error },
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new MigrationError(
        `Cannot connect to ${where}: host name "${host}" does not resolve. Check the host in DATABASE_URL and DNS.`,
        'UNREACHABLE',
        { cause: error },
      );
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new MigrationError(
        `Cannot connect to ${where}: ${e.code}. Check the network path to ${host}:${port} (firewall, security group, VPN).`,
        'UNREACHABLE',
        { cause: error },
      );
    case '28P01':
    case '28000':
      return new MigrationError(
        `Cannot connect to ${where}: authentication failed for user "${user}" (${message}). ` +
          "Check the user name and password in DATABASE_URL and the server's pg_hba.conf.",
        'AUTH_FAILED',
        { cause: error },
      );
    case '3D000':
      return new MigrationError(
        `${where} does not exist. Create it first (e.g. createdb -h ${host} -p ${port} -U ${user} ${database})` +
          (canCreate ? '' : ', or let refgraph create it (createDatabase option)') +
          ', or fix the database name in DATABASE_URL.',
        'DATABASE_MISSING',
        { cause: error },
      );
    default:
      if (/timeout/i.test(message)) {
        return new MigrationError(
          `Cannot connect to ${where}: timed out (${message}). Check that the server is up and reachable at ${host}:${port}.`,
          'UNREACHABLE',
          { cause: error },
        );
      }
      return new MigrationError(`Cannot connect to ${where}: ${message}`, 'UNREACHABLE', { cause: error });
  }
}

async function connectPg(url: string, createDatabase: boolean, log: (msg: string) => void): Promise<pg.Client> {
  const { connectionString } = splitPgUrl(url);
  const open = async (cs: string) => {
    const client = new pg.Client({ connectionString: cs, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {}); // reported through the pending query instead of crashing the process
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  };
  try {
    return await open(connectionString);
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000' || !createDatabase)
      throw connectionError(error, url, createDatabase);
  }
  const database = pgDatabaseName(url);
  log(`creating database "${database}"`);
  try {
    const admin = await open(pgUrlWithDatabase(connectionString, 'postgres'));
    try {
      await admin.query(`CREATE DATABASE ${quoteIdent(database)}`);
    } catch (error) {
      // 42P04 duplicate_database / 23505: another instance created it at the same moment.
      if (!['42P04', '23505'].includes((error as { code?: string }).code ?? '')) throw error;
    } finally {
      await admin.end().catch(() => {});
    }
    return await open(connectionString);
  } catch (error) {
    throw error instanceof MigrationError ? error : connectionError(error, url, true);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function acquireLock(client: pg.Client, timeoutMs: number, log: (msg: string) => void, where: string) {
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  for (;;) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [MIGRATION_LOCK_KEY]);
    if (rows[0]?.ok) return;
    if (!announced) {
      log(`waiting for another instance to finish migrating ${where}`);
      announced = true;
    }
    if (Date.now() > deadline) {
      throw new MigrationError(
        `Timed out after ${Math.round(timeoutMs / 1000)} s waiting for the migration lock on ${where} ` +
          `(pg_advisory_lock(${MIGRATION_LOCK_KEY}), held by another refgraph instance). If no instance is ` +
          "migrating, find the holder with: SELECT pid FROM pg_locks WHERE locktype = 'advisory' " +
          `AND objid = ${MIGRATION_LOCK_KEY} — and end that session.`,
        'LOCK_TIMEOUT',
      );
    }
    await sleep(100 + Math.random() * 150);
  }
}

async function applyOnPostgres(
  url: string,
  migrations: MigrationList,
  opts: ApplyMigrationsOptions,
  log: (msg: string) => void,
): Promise<{ applied: string[] }> {
  const { schema = 'public' } = splitPgUrl(url);
  const { where } = describePg(url);
  const client = await connectPg(url, opts.createDatabase ?? false, log);
  const query: Query = async (sql) => (await client.query<HistoryRow>(sql)).rows;
  try {
    // Fast path, without the lock: everything already applied.
    let state = await readHistory(query, schema, migrations);
    if (!state.pending.length) {
      warnEdited(state, log);
      return { applied: [] };
    }
    await acquireLock(client, opts.lockTimeoutMs ?? 5 * 60_000, log, where);
    try {
      // Another instance may have applied them while we waited.
      state = await readHistory(query, schema, migrations);
      if (state.failed.length) throw failedMigrationError(state, where);
      if (!state.pending.length) return { applied: [] };
      return await applyWithEngine({ url }, migrations, state, log, where, () =>
        readHistory(query, schema, migrations),
      );
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function applyWithEngine(
  target: { url: string } | { pglite: PGlite },
  migrations: MigrationList,
  state: HistoryState,
  log: (msg: string) => void,
  where: string,
  reread: () => Promise<HistoryState>,
): Promise<{ applied: string[] }> {
  log(`applying ${state.pending.length} pending migration(s) to ${where}: ${state.pending.join(', ')}`);
  const t0 = Date.now();
  const handle = await openSchemaEngine(target);
  try {
    const { appliedMigrationNames } = await handle.engine.applyMigrations({
      migrationsList: migrations,
      filters: noFilters,
    });
    log(`applied ${appliedMigrationNames.length} migration(s) in ${Date.now() - t0} ms`);
    return { applied: appliedMigrationNames };
  } catch (error) {
    // A migration that failed is recorded as such: report it with what to do about it.
    const after = await reread().catch(() => undefined);
    if (after?.failed.length) throw failedMigrationError(after, where, error);
    const e = error as { message?: string; code?: string };
    const hint =
      e.code === 'P3005'
        ? '\nThe database already contains tables but no Prisma migration history: use an empty database, or ' +
          'baseline it (https://pris.ly/d/migrate-baseline).'
        : '';
    throw new MigrationError(
      `Applying migrations to ${where} failed${e.code ? ` (${e.code})` : ''}: ${withoutTrace(e.message ?? String(error))}${hint}`,
      'APPLY_FAILED',
      { cause: error },
    );
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// PGlite (one process, one connection: an in-process queue per instance replaces the advisory lock)
// ---------------------------------------------------------------------------------------------------

const pgliteQueues = new WeakMap<PGlite, Promise<unknown>>();

async function applyOnPglite(
  db: PGlite,
  migrations: MigrationList,
  log: (msg: string) => void,
): Promise<{ applied: string[] }> {
  const previous = pgliteQueues.get(db) ?? Promise.resolve();
  const run = previous
    .catch(() => {})
    .then(async () => {
      await db.waitReady;
      const where = db.dataDir ? `PGlite database at ${db.dataDir}` : 'in-memory PGlite database';
      const query: Query = async (sql) => (await db.query<HistoryRow>(sql)).rows;
      const state = await readHistory(query, 'public', migrations);
      if (state.failed.length) throw failedMigrationError(state, where);
      if (!state.pending.length) {
        warnEdited(state, log);
        return { applied: [] };
      }
      return applyWithEngine({ pglite: db }, migrations, state, log, where, () =>
        readHistory(query, 'public', migrations),
      );
    });
  pgliteQueues.set(db, run);
  return run;
}
