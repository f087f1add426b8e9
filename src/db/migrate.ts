// Apply pending Prisma migrations (server start, `refgraph migrate`, tests) without Prisma: each
// prisma/migrations/<name>/migration.sql, in name order, in a transaction of its own, recorded in
// `_prisma_migrations` the way Prisma records it, so that `prisma migrate status|deploy|resolve` and this
// module read and write one history. Nothing here depends on Prisma's schema engine (db/schema-engine/
// is a development tool for `prisma migrate dev|diff`; test/start-path-imports.test.ts keeps it so).
//
// PostgreSQL: safe with several instances starting at once (a session-level advisory lock on a dedicated
// connection serialises them), and cheap when there is nothing to do (one read of _prisma_migrations,
// without the lock). PGlite: the same SQL, serialised per instance in process.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { type SqlFragment, sql } from '../lib/sql.js';
import {
  isPgliteUrl,
  isPostgresUrl,
  pgDatabaseName,
  pgliteDataDir,
  pgUrlWithDatabase,
  quoteIdent,
  splitPgUrl,
} from './url.js';

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
      | 'NOT_EMPTY'
      | 'INVALID_MIGRATIONS'
      | 'UNSUPPORTED_URL',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

/**
 * Our advisory lock key. Deliberately not Prisma's own 72707369, which `prisma migrate deploy` takes:
 * the two tools do not wait for each other (run one or the other against a database, not both at once).
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

/** One prisma/migrations/<name>/migration.sql. */
export interface Migration {
  name: string;
  sql: string;
  /** What Prisma stores in _prisma_migrations.checksum: the SHA-256 of the file, in hex. */
  checksum: string;
}

/** The migrations of `dir`, in name order (the order Prisma applies them in). */
export function readMigrations(dir: string): Migration[] {
  const names = fs.existsSync(dir)
    ? fs
        .readdirSync(dir, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort()
    : [];
  return names.map((name) => {
    const file = path.join(dir, name, 'migration.sql');
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (error) {
      throw new MigrationError(
        `Cannot read migration ${name}: ${(error as Error).message}. Every directory in ${dir} must hold a migration.sql.`,
        'INVALID_MIGRATIONS',
        { cause: error },
      );
    }
    return { name, sql: bytes.toString('utf8'), checksum: crypto.createHash('sha256').update(bytes).digest('hex') };
  });
}

export async function applyMigrations(
  target: MigrationTarget,
  opts: ApplyMigrationsOptions = {},
): Promise<{ applied: string[] }> {
  const migrations = readMigrations(opts.migrationsDir ?? defaultMigrationsDir());
  const log = opts.log ?? (() => {});
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
// The migration history (_prisma_migrations)
// ---------------------------------------------------------------------------------------------------

/** What the migrator needs of a connection: PostgreSQL's pg.Client or a PGlite instance. */
interface Session {
  /** Where the migrations go, for messages ("PostgreSQL database "x" at host:5432"). */
  where: string;
  /** The schema that holds the application's tables and _prisma_migrations. */
  schema: string;
  query<R>(sql: string, params?: unknown[]): Promise<R[]>;
  /** `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
}

interface Transaction {
  query<R>(sql: string, params?: unknown[]): Promise<R[]>;
  /** A script of several statements (the simple query protocol), as Prisma runs a migration file. */
  exec(script: string): Promise<void>;
}

interface HistoryRow {
  migration_name: string;
  checksum: string;
  finished: boolean;
  rolled_back: boolean;
  logs: string | null;
}

interface HistoryState {
  /** False when _prisma_migrations does not exist yet. */
  exists: boolean;
  pending: Migration[];
  failed: HistoryRow[];
  edited: string[];
}

const historyTable = (schema: string) => `${quoteIdent(schema)}."_prisma_migrations"`;

/** Run a `sql`…`` statement on a migration session or its transaction (parameters numbered by lib/sql.ts). */
function run<R>(
  on: { query<T>(text: string, params?: unknown[]): Promise<T[]> },
  statement: SqlFragment,
): Promise<R[]> {
  const { text, values } = statement.toQuery();
  return on.query<R>(text, values);
}

/** The table exactly as Prisma's schema engine creates it (PostgreSQL flavour). */
const createHistoryTable = (schema: string) => `CREATE TABLE IF NOT EXISTS ${historyTable(schema)} (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

async function readHistory(session: Session, migrations: Migration[]): Promise<HistoryState> {
  let rows: HistoryRow[];
  let exists = true;
  try {
    rows = await session.query<HistoryRow>(
      `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished,
              rolled_back_at IS NOT NULL AS rolled_back, logs
         FROM ${historyTable(session.schema)} ORDER BY started_at`,
    );
  } catch (error) {
    // 42P01 undefined_table / 3F000 invalid_schema_name: never migrated.
    if (!['42P01', '3F000'].includes((error as { code?: string }).code ?? '')) throw error;
    rows = [];
    exists = false;
  }
  const applied = new Map(rows.filter((r) => r.finished && !r.rolled_back).map((r) => [r.migration_name, r]));
  const pending: Migration[] = [];
  const edited: string[] = [];
  for (const migration of migrations) {
    const row = applied.get(migration.name);
    if (!row) pending.push(migration);
    else if (row.checksum !== migration.checksum) edited.push(migration.name);
  }
  return { exists, pending, failed: rows.filter((r) => !r.finished && !r.rolled_back), edited };
}

function warnEdited(state: HistoryState, log: (msg: string) => void): void {
  if (state.edited.length) {
    log(
      `warning: migration(s) ${state.edited.join(', ')} were modified after being applied ` +
        '(checksum differs from _prisma_migrations); the database was not changed',
    );
  }
}

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
      (first?.logs ? `\nRecorded error: ${first.logs}` : ''),
    'FAILED_MIGRATION',
    { cause },
  );
}

/** The error of a failed migration as it is stored in _prisma_migrations.logs (close to Prisma's text). */
function describeFailure(migration: Migration, error: unknown): string {
  const e = error as { code?: string; message?: string; position?: string; detail?: string; hint?: string };
  const lines = [`Migration name: ${migration.name}`, ''];
  if (e.code) lines.push(`Database error code: ${e.code}`, '');
  lines.push('Database error:', `ERROR: ${e.message ?? String(error)}`);
  if (e.detail) lines.push(`DETAIL: ${e.detail}`);
  if (e.hint) lines.push(`HINT: ${e.hint}`);
  if (e.position) lines.push(`Position: character ${e.position} of migration.sql`);
  if (e.code === '25001') {
    // active_sql_transaction: e.g. CREATE INDEX CONCURRENTLY, ALTER SYSTEM, VACUUM.
    lines.push(
      '',
      'refgraph applies each migration in one transaction, and this statement cannot run in one. Write it ' +
        'without CONCURRENTLY (or the like), or run it by hand and mark the migration with ' +
        '`npx prisma migrate resolve --applied`.',
    );
  }
  return lines.join('\n');
}

/**
 * The database has tables but no migration history: refuse, as `prisma migrate deploy` does (P3005),
 * rather than run CREATE TABLEs against a schema someone else made.
 */
async function refuseUnknownSchema(session: Session): Promise<void> {
  const [row] = await run<{ tables: string | null }>(
    session,
    sql`SELECT string_agg(quote_ident(c.relname), ', ' ORDER BY c.relname) AS tables
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ${session.schema} AND c.relkind IN ('r', 'p', 'v', 'm')`,
  );
  if (row?.tables) {
    throw new MigrationError(
      `${session.where} is not empty (schema "${session.schema}" has ${row.tables}) but has no migration ` +
        'history (_prisma_migrations): refusing to apply migrations to it. Use an empty database, or ' +
        'baseline this one (https://pris.ly/d/migrate-baseline).',
      'NOT_EMPTY',
    );
  }
}

/** Apply `state.pending` in order, each in its own transaction with its history row. */
async function applyPending(
  session: Session,
  state: HistoryState,
  log: (msg: string) => void,
): Promise<{ applied: string[] }> {
  const { where, schema } = session;
  if (!state.exists) {
    await refuseUnknownSchema(session);
    try {
      if (schema !== 'public') await session.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
      await session.query(createHistoryTable(schema));
    } catch (error) {
      throw new MigrationError(
        `Cannot create the migration history (_prisma_migrations) in schema "${schema}" of ${where}: ` +
          `${(error as Error).message}. The user in DATABASE_URL needs the CREATE privilege there.`,
        'APPLY_FAILED',
        { cause: error },
      );
    }
  }
  log(
    `applying ${state.pending.length} pending migration(s) to ${where}: ${state.pending.map((m) => m.name).join(', ')}`,
  );
  const t0 = Date.now();
  const applied: string[] = [];
  for (const migration of state.pending) {
    const startedAt = new Date();
    try {
      await session.transaction(async (tx) => {
        await tx.exec(migration.sql);
        await run(
          tx,
          sql`INSERT INTO ${sql.ident(schema, '_prisma_migrations')}
                (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
              VALUES (${crypto.randomUUID()}, ${migration.checksum}, clock_timestamp(), ${migration.name}, NULL, NULL, ${startedAt}, 1)`,
        );
      });
    } catch (error) {
      // Rolled back: nothing of it stays but this row, which stops every later start until the
      // migration is resolved (what Prisma records for a failed migration: no finished_at, the error).
      const logs = describeFailure(migration, error);
      try {
        await run(
          session,
          sql`INSERT INTO ${sql.ident(schema, '_prisma_migrations')}
                (id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
              VALUES (${crypto.randomUUID()}, ${migration.checksum}, NULL, ${migration.name}, ${logs}, NULL, ${startedAt}, 0)`,
        );
      } catch (recording) {
        // E.g. the connection is gone: nothing is recorded, so the next start tries the migration again.
        throw new MigrationError(
          `Migration \`${migration.name}\` failed on ${where} and was rolled back; the failure could not be ` +
            `recorded (${(recording as Error).message}).\n${logs}`,
          'APPLY_FAILED',
          { cause: error },
        );
      }
      const failed = {
        migration_name: migration.name,
        checksum: migration.checksum,
        finished: false,
        rolled_back: false,
        logs,
      };
      throw failedMigrationError({ ...state, failed: [failed] }, where, error);
    }
    applied.push(migration.name);
  }
  log(`applied ${applied.length} migration(s) in ${Date.now() - t0} ms`);
  return { applied };
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
    const lock = sql`SELECT pg_try_advisory_lock(${MIGRATION_LOCK_KEY}) AS ok`.toQuery();
    const { rows } = await client.query<{ ok: boolean }>(lock.text, lock.values);
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

function pgSession(client: pg.Client, where: string, schema: string): Session {
  const query = async <R>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as R[];
  return {
    where,
    schema,
    query,
    transaction: async (fn) => {
      await client.query('BEGIN');
      try {
        // A query without parameters goes through the simple protocol: a whole script in one call.
        const result = await fn({ query, exec: async (script) => void (await client.query(script)) });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    },
  };
}

async function applyOnPostgres(
  url: string,
  migrations: Migration[],
  opts: ApplyMigrationsOptions,
  log: (msg: string) => void,
): Promise<{ applied: string[] }> {
  const { schema = 'public' } = splitPgUrl(url);
  const { where } = describePg(url);
  const client = await connectPg(url, opts.createDatabase ?? false, log);
  const session = pgSession(client, where, schema);
  try {
    // Fast path, without the lock: everything already applied.
    let state = await readHistory(session, migrations);
    if (!state.pending.length) {
      warnEdited(state, log);
      return { applied: [] };
    }
    await acquireLock(client, opts.lockTimeoutMs ?? 5 * 60_000, log, where);
    try {
      // Another instance may have applied them while we waited.
      state = await readHistory(session, migrations);
      if (state.failed.length) throw failedMigrationError(state, where);
      warnEdited(state, log);
      if (!state.pending.length) return { applied: [] };
      return await applyPending(session, state, log);
    } finally {
      const unlock = sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.toQuery();
      await client.query(unlock.text, unlock.values).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------
// PGlite (one process, one connection: an in-process queue per instance replaces the advisory lock)
// ---------------------------------------------------------------------------------------------------

const pgliteQueues = new WeakMap<PGlite, Promise<unknown>>();

function pgliteSession(db: PGlite): Session {
  return {
    where: db.dataDir ? `PGlite database at ${db.dataDir}` : 'in-memory PGlite database',
    schema: 'public',
    query: async <R>(sql: string, params?: unknown[]) => (await db.query(sql, params)).rows as R[],
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          query: async <R>(sql: string, params?: unknown[]) => (await tx.query(sql, params)).rows as R[],
          exec: async (script) => void (await tx.exec(script)),
        }),
      ),
  };
}

async function applyOnPglite(
  db: PGlite,
  migrations: Migration[],
  log: (msg: string) => void,
): Promise<{ applied: string[] }> {
  const previous = pgliteQueues.get(db) ?? Promise.resolve();
  const run = previous
    .catch(() => {})
    .then(async () => {
      await db.waitReady;
      const session = pgliteSession(db);
      const state = await readHistory(session, migrations);
      if (state.failed.length) throw failedMigrationError(state, session.where);
      warnEdited(state, log);
      if (!state.pending.length) return { applied: [] };
      return applyPending(session, state, log);
    });
  pgliteQueues.set(db, run);
  return run;
}
