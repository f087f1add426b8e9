import { SqlFragment, sql, sqlClient, type QueryRunner, type SqlClient, type SqlTransaction } from './lib/sql.js';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { redact } from './config.js';
import { applyMigrations } from './db/migrate.js';
import { readPgliteTemplate } from './db/pglite-template.js';
import { lockDataDir, type DataDirLock } from './lib/data-dir-lock.js';
import { PrismaClient } from './generated/prisma/client.js';
import { currentRequest, outsideRequest } from './lib/request-context.js';
import type { Logger } from './logger.js';

export { PrismaClient };

/** Counts every SQL statement sent to the database (tests assert on it; cheap enough to keep on). */
export interface StatementCounter {
  count: number;
  /**
   * Told how long each statement took (seconds) and whether it failed: the metrics of the apps
   * on this database. Statements a driver runs implicitly (PGlite's BEGIN/COMMIT of a
   * transaction) are counted but not timed.
   */
  observers: Set<(seconds: number, failed: boolean) => void>;
}

/** The database refgraph runs on: a PostgreSQL server, or the embedded PGlite. */
export interface Database extends SqlClient {
  kind: 'postgres' | 'pglite';
  prisma: PrismaClient;
  /**
   * The driver's own `query(text, params)`: for lib/sql.ts, tests and tools. Application code
   * writes `db.sql`…`` (SqlClient: one statement, its values numbered as parameters by lib/sql.ts).
   */
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  statements: StatementCounter;
  /**
   * `prepared.sql`…``: one statement on any pooled connection, like `db.sql`, but as a named
   * prepared statement on PostgreSQL (each connection parses it once and keeps its plan, as in
   * `transaction`), for a hot read outside a transaction — recordConversion's idempotency-key read,
   * which is also the whole of a replay. The same as `db.sql` on PGlite. Only for statements whose
   * text is one of a few shapes (see `statementName`).
   */
  prepared: SqlClient;
  /**
   * Run `fn` in a transaction on one connection, with plain SQL (see lib/sql.ts): COMMIT when it
   * resolves, ROLLBACK when it throws. For hot paths only; everything else uses `prisma.$transaction`.
   */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Human-readable location, password hidden. */
  describe: string;
  /** LISTEN on a channel (a dedicated connection on PostgreSQL); resolves with a function that stops listening. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Take a session-level advisory lock without waiting: null when another session holds it.
   * Held until released or until this process's connection ends (so a dead holder frees it).
   */
  tryAdvisoryLock(key: number): Promise<AdvisoryLock | null>;
}

/** A session-level advisory lock held on a connection of its own. */
export interface AdvisoryLock {
  release(): Promise<void>;
  /**
   * Called once if the lock's connection fails or ends before `release()`: the server has then
   * let go of the lock (another session may hold it already), so the holder must stop acting on it.
   */
  onLost(listener: (reason: string) => void): void;
}

export interface OpenDatabaseOptions {
  databaseUrl: string | undefined;
  dataDir: string;
  poolSize?: number;
  migrate?: boolean;
  logger?: Logger;
  /** An existing PGlite instance (tests): used instead of opening `dataDir`. */
  pglite?: PGlite;
  /** The migrated template a new PGlite directory starts from (default: the build's, if any; null: never). */
  pgliteTemplate?: string | null;
}

/** Prisma URLs carry `?schema=`; node-postgres ignores it, so it becomes the connection's search_path. */
export function pgPoolConfig(url: string, max: number): { config: pg.PoolConfig; schema: string | undefined } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? undefined;
  u.searchParams.delete('schema');
  // JIT off: its compile time (0.7 s per statement, seen on the reporting reads at their row
  // estimates) is far above what this application's statements take (BENCHMARKS.md, "scale").
  const options = ['-c jit=off'];
  if (schema) options.push(`-c search_path="${schema.replace(/"/g, '""')}"`);
  const config: pg.PoolConfig = { connectionString: u.toString(), max, options: options.join(' ') };
  return { config, schema };
}

/** Open the configured database, applying pending migrations first when asked to. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  return options.databaseUrl ? openPostgres(options.databaseUrl, options) : openPGlite(options);
}

async function openPostgres(url: string, options: OpenDatabaseOptions): Promise<Database> {
  if (options.migrate) {
    const { applied } = await applyMigrations({ url }, { log: (m) => options.logger?.info(m) });
    if (applied.length) options.logger?.info({ applied }, 'migrations applied');
  }
  const { config, schema } = pgPoolConfig(url, options.poolSize ?? 10);
  const pool = new pg.Pool(config);
  const statements: StatementCounter = { count: 0, observers: new Set() };
  pool.on('connect', (client) => countQueries(client, statements));
  pool.on('error', (error) => options.logger?.error({ err: error }, 'idle database connection failed'));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool, schema ? { schema } : undefined) });
  return {
    kind: 'postgres',
    prisma,
    statements,
    describe: redact(url),
    query: async (text, params) => (await pool.query(text, params as unknown[])).rows,
    ...sqlClient(async (text, params) => (await pool.query(text, params)).rows),
    prepared: sqlClient(
      async (text, params) => (await pool.query({ name: statementName(text), text, values: params })).rows,
    ),
    transaction: async (fn) => {
      const client = (await pool.connect()) as pg.PoolClient & { pipeline: boolean };
      let broken: Error | undefined;
      // Pipelined while the transaction runs (pg's pipeline mode: a statement is written without
      // waiting for the answer to the one before; the answers come back in order), so that BEGIN
      // travels with the first statement and COMMIT with a statement sent by `sqlBeforeCommit`: two
      // round trips fewer. Statements of `fn` still run one after the other as it awaits them.
      client.pipeline = true;
      try {
        // Sent now, answered with the first statement; never fails alone (a broken connection fails both).
        let begin: Promise<unknown> | null = client.query('BEGIN');
        begin.catch(() => {});
        const run = async (text: string, params: unknown[]) => {
          const result = client.query({ name: statementName(text), text, values: params });
          if (begin) {
            const sent = begin;
            begin = null;
            await sent;
          }
          return (await result).rows;
        };
        const atCommit = beforeCommit(run);
        try {
          const result = await fn({ ...sqlClient(run), sqlBeforeCommit: atCommit.sql });
          if (begin) await begin;
          // COMMIT right behind the statements sent by sqlBeforeCommit (after a failed one, PostgreSQL
          // answers COMMIT with a rollback: nothing is kept, and its error is thrown below).
          const commit = client.query('COMMIT');
          commit.catch(() => {});
          await atCommit.settled();
          await commit;
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
          // Every answer is in: a sqlBeforeCommit statement that failed came first, and doomed what followed.
          throw atCommit.failure() ?? error;
        }
      } finally {
        client.pipeline = false; // every answer is in (ROLLBACK or COMMIT was the last)
        client.release(broken); // a connection that could not roll back is discarded, not reused
      }
    },
    ping: async () => {
      await pool.query('select 1');
    },
    listen: async (channel, onNotify) => {
      const client = new pg.Client(config);
      client.on('error', (error) =>
        options.logger?.warn({ err: error, channel }, 'LISTEN connection failed; polling continues'),
      );
      await client.connect();
      client.on('notification', (message) => {
        if (message.channel === channel) onNotify(message.payload ?? '');
      });
      await client.query(`LISTEN "${channel.replace(/"/g, '""')}"`);
      return async () => {
        await client.end().catch(() => {});
      };
    },
    tryAdvisoryLock: async (key) => {
      // keepAlive: a connection that silently died (a network cut) is noticed, and with it the lock.
      const client = new pg.Client({ ...config, keepAlive: true });
      let lostReason: string | null = null;
      let releasing = false;
      const listeners: Array<(reason: string) => void> = [];
      const lose = (reason: string) => {
        if (releasing || lostReason !== null) return;
        lostReason = reason;
        for (const listener of listeners) listener(reason);
      };
      client.on('error', (error) => lose(error.message));
      client.on('end', () => lose('its connection ended'));
      await client.connect();
      const { rows } = await client.query<{ locked: boolean }>(
        sql`SELECT pg_try_advisory_lock(${key}) AS locked`.toQuery(),
      );
      if (!rows[0]?.locked) {
        releasing = true;
        await client.end().catch(() => {});
        return null;
      }
      return {
        release: async () => {
          releasing = true;
          await client.query(sql`SELECT pg_advisory_unlock(${key})`.toQuery()).catch(() => {});
          await client.end().catch(() => {});
        },
        onLost: (listener) => {
          if (lostReason !== null) listener(lostReason);
          else listeners.push(listener);
        },
      };
    },
    close: async () => {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

function countQueries(client: pg.PoolClient, statements: StatementCounter): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    count(statements);
    if (statements.observers.size === 0) return query(...args);
    const started = performance.now();
    // pg-pool passes a callback; Prisma's adapter and db.query use the promise.
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (error: unknown, result: unknown) => {
        observe(statements, started, Boolean(error));
        return (callback as (e: unknown, r: unknown) => unknown)(error, result);
      };
      return query(...args);
    }
    return timed(statements, started, query(...args));
  };
}

/** One more statement, for the database and for the request that sent it (if any). */
function count(statements: StatementCounter): void {
  statements.count++;
  const request = currentRequest();
  if (request) request.statements++;
}

function observe(statements: StatementCounter, started: number, failed: boolean): void {
  const seconds = (performance.now() - started) / 1000;
  for (const observer of statements.observers) observer(seconds, failed);
}

/** `result` (a statement's promise) timed for the observers; anything else (a pg Submittable) as is. */
function timed<T>(statements: StatementCounter, started: number, result: T): T {
  if (!(result instanceof Promise)) return result;
  return result.then(
    (value: unknown) => {
      observe(statements, started, false);
      return value;
    },
    (error: unknown) => {
      observe(statements, started, true);
      throw error;
    },
  ) as T;
}

/** Count (and time, when observed) one statement that `run` sends. */
function counted<T>(statements: StatementCounter, run: () => T): T {
  count(statements);
  if (statements.observers.size === 0) return run();
  return timed(statements, performance.now(), run());
}

/**
 * Counts what PGlite runs, the way PostgreSQL would see it: one per query/exec call, and for a
 * transaction its BEGIN, every statement and its COMMIT or ROLLBACK. The Prisma adapter runs
 * interactive transactions through `pglite.transaction(tx => …)`, whose `tx` methods and
 * BEGIN/COMMIT bypass the instance's query/exec, so they are counted here too — the same total
 * that Prisma's pg adapter produces on PostgreSQL, where BEGIN and COMMIT are ordinary queries.
 */
function countPGliteQueries(pglite: PGlite, statements: StatementCounter): void {
  for (const method of ['query', 'exec'] as const) {
    const original = pglite[method].bind(pglite) as (...args: unknown[]) => Promise<unknown>;
    (pglite as unknown as Record<string, unknown>)[method] = (...args: unknown[]) =>
      counted(statements, () => original(...args));
  }
  type Tx = Parameters<Parameters<PGlite['transaction']>[0]>[0];
  const transaction = pglite.transaction.bind(pglite);
  pglite.transaction = <T>(callback: (tx: Tx) => Promise<T>): Promise<T> =>
    transaction(async (tx) => {
      count(statements); // BEGIN
      let rolledBack = false;
      const countedTx = new Proxy(tx, {
        get(target, property) {
          const value = Reflect.get(target, property, target) as unknown;
          if (typeof value !== 'function') return value;
          if (property === 'query' || property === 'sql' || property === 'exec' || property === 'rollback') {
            return (...args: unknown[]) => {
              if (property === 'rollback') rolledBack = true;
              return counted(statements, () => (value as (...a: unknown[]) => unknown).apply(target, args));
            };
          }
          return (value as (...a: unknown[]) => unknown).bind(target);
        },
      });
      try {
        const result = await callback(countedTx);
        if (!rolledBack) count(statements); // COMMIT
        return result;
      } catch (error) {
        if (!rolledBack) count(statements); // ROLLBACK
        throw error;
      }
    });
}

/**
 * PGlite on `dir`. A new (empty) directory is unpacked from the build's migrated template when
 * there is one (db/pglite-template.ts); if that fails, the directory is emptied again and PGlite
 * creates it as usual.
 */
async function openDataDir(dir: string, options: OpenDatabaseOptions): Promise<PGlite> {
  if (options.pgliteTemplate === null || fs.readdirSync(dir).length > 0) return new PGlite(dir);
  let db: PGlite | undefined;
  try {
    const template = readPgliteTemplate(options.pgliteTemplate);
    if (!template) return new PGlite(dir);
    db = new PGlite(dir, { loadDataDir: template });
    await db.waitReady;
    options.logger?.info('new embedded database created from the build template');
    return db;
  } catch (error) {
    await db?.close().catch(() => {});
    options.logger?.warn(
      { err: error },
      'the build template of the embedded database could not be used; creating it from scratch',
    );
    for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    return new PGlite(dir);
  }
}

async function openPGlite(options: OpenDatabaseOptions): Promise<Database> {
  let db = options.pglite;
  let owned = false;
  let lock: DataDirLock | undefined;
  if (!db) {
    const dir = path.join(options.dataDir, 'pgdata');
    fs.mkdirSync(dir, { recursive: true });
    lock = await lockDataDir(options.dataDir); // one process at a time: PGlite corrupts a shared directory
    db = await openDataDir(dir, options);
    owned = true;
  }
  try {
    await db.waitReady;
    if (options.migrate) {
      const { applied } = await applyMigrations({ pglite: db }, { log: (m) => options.logger?.info(m) });
      if (applied.length) options.logger?.info({ applied }, 'migrations applied');
    }
  } catch (error) {
    if (owned) await db.close().catch(() => {});
    lock?.release();
    throw error;
  }
  const statements: StatementCounter = { count: 0, observers: new Set() };
  const pglite = db;
  countPGliteQueries(pglite, statements);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  return {
    kind: 'pglite',
    prisma,
    statements,
    describe: options.pglite
      ? 'embedded PGlite (in memory)'
      : `embedded PGlite at ${path.join(options.dataDir, 'pgdata')}`,
    query: async (text, params) => (await pglite.query(text, params as unknown[])).rows as never,
    ...sqlClient(async (text, params) => (await pglite.query(text, params)).rows),
    prepared: sqlClient(async (text, params) => (await pglite.query(text, params)).rows),
    transaction: (fn) =>
      pglite.transaction(async (tx) => {
        const run = async (text: string, params: unknown[]) => (await tx.query(text, params)).rows;
        const atCommit = beforeCommit(run);
        try {
          const result = await fn({ ...sqlClient(run), sqlBeforeCommit: atCommit.sql });
          await atCommit.settled();
          return result;
        } catch (error) {
          await atCommit.settled().catch(() => {});
          throw atCommit.failure() ?? error;
        }
      }),
    ping: async () => {
      await pglite.query('select 1');
    },
    // PGlite delivers a NOTIFY while the COMMIT that sent it runs, inside that request's context:
    // what a listener starts is background work (as on PostgreSQL, where it comes from the
    // listening connection), not the request's, so it must not count in its X-SQL-Statements.
    listen: async (channel, onNotify) => pglite.listen(channel, (payload) => outsideRequest(() => onNotify(payload))),
    // One process owns an embedded database: it always holds every lock.
    tryAdvisoryLock: async () => ({ release: async () => {}, onLost: () => {} }),
    close: async () => {
      await prisma.$disconnect();
      if (owned) await pglite.close();
      lock?.release();
    },
  };
}

/**
 * `sqlBeforeCommit` of a transaction: each statement is sent at once and not awaited; `settled()`
 * resolves when all have answered, or throws the first one's error. When the transaction fails
 * otherwise, such a failure is still the error thrown: it came first (a statement after it only
 * finds the transaction aborted), and the function's result was worked out on a doomed transaction. The first error is kept as soon
 * as it comes, so that a failure is never an unhandled rejection, whatever the transaction does next.
 */
function beforeCommit(run: QueryRunner): {
  sql: SqlTransaction['sqlBeforeCommit'];
  settled: () => Promise<void>;
  /** The first failure among the statements answered so far (undefined: none). */
  failure: () => unknown;
} {
  const pending: Promise<unknown>[] = [];
  let failure: { error: unknown } | null = null;
  return {
    sql: (strings, ...values) => {
      const statement = new SqlFragment(strings, values).toQuery();
      pending.push(
        run(statement.text, statement.values).catch((error: unknown) => {
          failure ??= { error };
        }),
      );
    },
    settled: async () => {
      await Promise.all(pending);
      if (failure) throw failure.error;
    },
    failure: () => failure?.error,
  };
}

const statementNames = new Map<string, string>();
/** More distinct texts than the hot paths have: past this, statements run unnamed (parsed each time). */
const MAX_STATEMENT_NAMES = 200;

/**
 * A name for a hot-path statement (of `transaction` or `prepared`), so that each connection parses
 * and analyses it once (a named prepared statement) instead of on every call: for the large
 * statements of recordConversion that is most of what PostgreSQL spends on them. The texts come
 * from the call sites of lib/sql.ts
 * (a few shapes each), never from client input; still, at most MAX_STATEMENT_NAMES are named, so
 * neither this map nor each connection's prepared statements can grow without bound.
 */
function statementName(text: string): string | undefined {
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= MAX_STATEMENT_NAMES) return undefined;
    name = `rg_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return name;
}
