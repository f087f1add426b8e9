// Prisma's WebAssembly schema engine (@prisma/schema-engine-wasm) driven by Prisma 7 driver adapters,
// for PostgreSQL (@prisma/adapter-pg) and PGlite (pglite-prisma-adapter) only.
//
// Used by ./cli.ts only (the stand-in for the native `schema-engine` binary that `prisma migrate *`
// spawns): a development tool. The server applies migrations without it (../migrate.ts), and nothing it
// runs may import this directory (test/start-path-imports.test.ts). The wasm engine's API and the
// adapters' internals patched below are internal to Prisma: versions are pinned exactly in package.json,
// and test/migrate-cli.test.ts exercises the whole CLI workflow. See docs/prisma-offline.md.
//
// Heavy modules (pg, adapters, PGlite, the 5 MB wasm) are imported lazily so that `schema-engine cli ...`
// commands never pay for them.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { PGlite } from '@electric-sql/pglite';
import type {
  SqlDriverAdapter,
  SqlMigrationAwareDriverAdapterFactory,
  SqlQuery,
  SqlResultSet,
} from '@prisma/driver-adapter-utils';
import type {
  CreateMigrationInput,
  CreateMigrationOutput,
  EvaluateDataLossInput,
  EvaluateDataLossOutput,
  MigrationList,
  SchemaEngine as WasmSchemaEngine,
  SchemaFilter,
} from '@prisma/schema-engine-wasm/schema_engine_bg';
import {
  isPgliteUrl,
  isPostgresUrl,
  pgDatabaseName,
  pgliteDataDir,
  pgUrlWithDatabase,
  quoteIdent,
  splitPgUrl,
} from '../url.js';

export type {
  ApplyMigrationsOutput,
  DiagnoseMigrationHistoryOutput,
  DiffParams,
  DiffResult,
  MigrationList,
  SchemaFilter,
} from '@prisma/schema-engine-wasm/schema_engine_bg';
export type { WasmSchemaEngine };
export { isPgliteUrl, isPostgresUrl, pgDatabaseName, pgliteDataDir, pgUrlWithDatabase, quoteIdent, splitPgUrl };

const require = createRequire(import.meta.url);

/** Directory of the installed @prisma/schema-engine-wasm package. */
export function wasmPackageDir(): string {
  return path.dirname(require.resolve('@prisma/schema-engine-wasm/schema_engine_bg'));
}

/** Version of the installed @prisma/schema-engine-wasm package (e.g. 8.1.0-2.<engine hash>). */
export function wasmEngineVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(wasmPackageDir(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

// ---------------------------------------------------------------------------------------------------
// Loading the wasm engine
// ---------------------------------------------------------------------------------------------------

// Pitfall 7: a Rust panic inside the wasm engine reaches JS without its message; the wasm-bindgen glue
// reports the message through this global registry first. Keep it so panics can be reported.
let lastPanic: string | null = null;
/** Message of the last wasm engine panic in this process, if any (a panicked instance is unusable). */
export function lastEnginePanic(): string | null {
  return lastPanic;
}
(globalThis as { PRISMA_WASM_PANIC_REGISTRY?: { set_message(message: string): void } }).PRISMA_WASM_PANIC_REGISTRY = {
  set_message: (message: string) => {
    lastPanic = message;
  },
};

/** The few WebAssembly globals we use (lib ES2023 + @types/node 20 do not declare them). */
interface WasmGlobals {
  instantiate(
    bytes: Uint8Array,
    imports: Record<string, object>,
  ): Promise<{ instance: { exports: Record<string, unknown> } }>;
  RuntimeError: new (...args: never[]) => Error;
}
const wasmGlobals = (): WasmGlobals => (globalThis as unknown as { WebAssembly: WasmGlobals }).WebAssembly;

/** True for errors raised by a trapped (panicked) wasm instance. */
export function isWasmTrap(error: unknown): boolean {
  return error instanceof wasmGlobals().RuntimeError;
}

type SchemaEngineClass = typeof WasmSchemaEngine;
let engineClass: Promise<SchemaEngineClass> | undefined;

/**
 * Load the wasm engine class once per process. Instantiated by hand: the package's ESM entry imports
 * the .wasm file as a module, which Node only allows with --experimental-wasm-modules.
 */
export function loadSchemaEngineClass(): Promise<SchemaEngineClass> {
  engineClass ??= (async () => {
    const bg = await import('@prisma/schema-engine-wasm/schema_engine_bg');
    const bytes = await fs.promises.readFile(path.join(wasmPackageDir(), 'schema_engine_bg.wasm'));
    // The engine races its advisory-lock wait (and similar waits) against setTimeout(10 s) and never
    // clears the timer: every applyMigrations kept the process alive for 10 s after finishing. Hand it
    // unref'd timers (a real wait still holds the process open through its socket).
    const glue: Record<string, unknown> = { ...bg };
    for (const name of Object.keys(glue)) {
      if (name.startsWith('__wbg_setTimeout_')) {
        glue[name] = (callback: () => void, ms: number) => setTimeout(callback, ms >>> 0).unref();
      }
    }
    const { instance } = await wasmGlobals().instantiate(bytes, { './schema_engine_bg.js': glue });
    bg.__wbg_set_wasm(instance.exports);
    (instance.exports['__wbindgen_start'] as () => void)();
    return bg.SchemaEngine;
  })();
  engineClass.catch(() => {
    engineClass = undefined; // allow a retry after e.g. a transient read error
  });
  return engineClass;
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL over TCP (@prisma/adapter-pg)
// ---------------------------------------------------------------------------------------------------

/** The internals of adapter-pg 7.10.1's PgQueryable that the patches below touch (private in its typings). */
interface PgQueryableInternals {
  performIO(query: SqlQuery): Promise<{ fields?: Array<{ dataTypeID: number }> } | undefined>;
  queryRaw(query: SqlQuery): Promise<SqlResultSet>;
  executeScript?: (script: string) => Promise<void>;
  startTransaction?: (...args: never[]) => Promise<object>;
  client: { query(text: string): Promise<unknown> };
  onError(error: unknown): never;
}

// Pitfall 1: adapter-pg 7.10.1 maps pg type OIDs to Prisma column types and throws
// UnsupportedNativeDataType for catalog types the schema describer selects: "char" (OID 18:
// pg_class.relkind, pg_constraint.contype, attidentity...), int2vector, oidvector, regclass,
// pg_node_tree... The native engine reads "char" as a Character and the rest as text. "char" must be
// mapped to Character explicitly: reading it as plain text crashes the engine (seen on PostgreSQL 18).
const KNOWN_OIDS = new Set([
  16, 17, 19, 20, 21, 23, 25, 26, 114, 142, 650, 700, 701, 790, 869, 1042, 1043, 1082, 1083, 1114, 1184, 1266, 1560,
  1562, 1700, 2950, 3802, 143, 199, 651, 791, 1000, 1001, 1002, 1005, 1007, 1009, 1014, 1015, 1016, 1021, 1022, 1028,
  1041, 1115, 1182, 1183, 1185, 1231, 1561, 1563, 2951, 3807,
]);
const CHAR_OID = 18;
const TEXT_OID = 25;
const FIRST_NORMAL_OBJECT_ID = 16384; // user-defined types (enums...): adapter-pg already reads them as text
const COLUMN_TYPE_CHARACTER = 6; // ColumnTypeEnum.Character in @prisma/driver-adapter-utils

function patchPgQueryable<T extends object>(queryable: T): T {
  const q = queryable as unknown as PgQueryableInternals;
  const performIO = q.performIO.bind(q);
  const queryRaw = q.queryRaw.bind(q);
  const charColumns = new WeakMap<SqlQuery, number[]>();
  q.performIO = async (query) => {
    const res = await performIO(query);
    const chars: number[] = [];
    res?.fields?.forEach((field, i) => {
      if (field.dataTypeID === CHAR_OID) chars.push(i);
      if (field.dataTypeID < FIRST_NORMAL_OBJECT_ID && !KNOWN_OIDS.has(field.dataTypeID)) field.dataTypeID = TEXT_OID;
    });
    if (chars.length) charColumns.set(query, chars);
    return res;
  };
  q.queryRaw = async (query) => {
    const res = await queryRaw(query);
    for (const i of charColumns.get(query) ?? []) {
      res.columnTypes[i] = COLUMN_TYPE_CHARACTER;
    }
    return res;
  };
  if (q.executeScript) {
    // Pitfall 3: adapter-pg 7.10.1's executeScript() does script.split(";") and runs the pieces one by
    // one: that breaks $$-quoted function/trigger bodies, DO blocks and ';' inside strings, and leaves a
    // failing migration half applied. Send the whole script as one simple-protocol query, which
    // PostgreSQL runs as one implicit transaction (like the native engine does).
    q.executeScript = async (script) => {
      try {
        await q.client.query(script);
      } catch (error) {
        q.onError(error);
      }
    };
  }
  if (q.startTransaction) {
    const startTransaction = q.startTransaction.bind(q);
    q.startTransaction = async (...args) => patchPgQueryable(await startTransaction(...args));
  }
  return queryable;
}

/** Drops every non-system schema and recreates an empty `public` (PostgreSQL and PGlite). */
export const WIPE_PG_SQL = `DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT nspname FROM pg_namespace
           WHERE nspname NOT LIKE 'pg\\_%' ESCAPE '\\' AND nspname <> 'information_schema' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname);
  END LOOP;
  CREATE SCHEMA public;
END $$;`;

/** An adapter factory for the wasm engine that remembers what it opened, so it can all be released. */
export interface ManagedAdapterFactory extends SqlMigrationAwareDriverAdapterFactory {
  /** Dispose every connection (pool) still open, drop leftover shadow databases, close owned PGlite. */
  closeAll(): Promise<void>;
}

class DisposableSet {
  private readonly open = new Set<() => Promise<void>>();
  /** Make adapter.dispose() idempotent and remembered until called. */
  track<A extends SqlDriverAdapter>(adapter: A, extra?: () => Promise<void>): A {
    const original = adapter.dispose.bind(adapter);
    let done: Promise<void> | undefined;
    const dispose = () => {
      done ??= (async () => {
        this.open.delete(dispose);
        try {
          await original();
        } finally {
          await extra?.();
        }
      })();
      return done;
    };
    adapter.dispose = dispose;
    this.open.add(dispose);
    return adapter;
  }
  async disposeAll(): Promise<void> {
    const errors: unknown[] = [];
    for (const dispose of [...this.open]) {
      await dispose().catch((e: unknown) => errors.push(e));
    }
    if (errors.length) throw errors[0];
  }
}

async function pgAdapterFactory(url: string, shadowDatabaseUrl?: string): Promise<ManagedAdapterFactory> {
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const pg = (await import('pg')).default;
  const open = new DisposableSet();
  const make = (u: string) => {
    const { connectionString, schema } = splitPgUrl(u);
    return new PrismaPg({ connectionString }, schema ? { schema } : undefined);
  };
  const main = make(url);
  const { connectionString, schema } = splitPgUrl(url);

  let connectToShadowDb: () => Promise<SqlDriverAdapter>;
  if (shadowDatabaseUrl) {
    // Pitfall 6: an explicit shadow database is not wiped by the wasm engine before use (the native
    // engine does; otherwise the second `migrate dev` fails with P3006 "relation ... already exists").
    // The migrations are replayed into the shadow's schema and compared with the main one: a
    // `?schema=` on the main URL only (the usual case) must apply to the shadow too, or every table
    // shows up as drift ("added schema app / removed table X").
    const shadowUrl = new URL(shadowDatabaseUrl);
    if (schema && !shadowUrl.searchParams.has('schema')) shadowUrl.searchParams.set('schema', schema);
    const shadow = make(shadowUrl.toString());
    connectToShadowDb = async () => {
      const adapter = open.track(patchPgQueryable(await shadow.connect()));
      await adapter.executeScript(WIPE_PG_SQL);
      return adapter;
    };
  } else {
    // Pitfall 2 (DANGEROUS): adapter-pg 7.10.1's own connectToShadowDb() does
    // new Pool({ connectionString, database: shadow }); node-postgres lets connectionString win, so its
    // "shadow" database is the MAIN database and a shadow reset would wipe real data. Create and drop a
    // throw-away database ourselves, and verify where we actually landed.
    const admin = async (sql: string) => {
      // The main database normally exists (the CLI creates it first); fall back to `postgres` if not.
      for (const target of [connectionString, pgUrlWithDatabase(connectionString, 'postgres')]) {
        const client = new pg.Client({ connectionString: target });
        try {
          await client.connect();
        } catch (error) {
          await client.end().catch(() => {});
          if ((error as { code?: string }).code === '3D000' && target === connectionString) continue;
          throw error;
        }
        try {
          await client.query(sql);
          return;
        } finally {
          await client.end();
        }
      }
    };
    connectToShadowDb = async () => {
      const name = `prisma_migrate_shadow_db_${globalThis.crypto.randomUUID()}`;
      await admin(`CREATE DATABASE ${quoteIdent(name)}`);
      const drop = () => admin(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      let adapter: SqlDriverAdapter;
      try {
        const shadowUrl = pgUrlWithDatabase(connectionString, name);
        adapter = open.track(
          patchPgQueryable(
            await new PrismaPg({ connectionString: shadowUrl }, schema ? { schema } : undefined).connect(),
          ),
          drop,
        );
      } catch (error) {
        await drop().catch(() => {});
        throw error;
      }
      // Servers that ignore the database name (e.g. pglite-socket) would hand us the main database.
      const current = await adapter.queryRaw({ sql: 'select current_database()', args: [], argTypes: [] });
      const landed = current.rows[0]?.[0];
      if (landed !== name) {
        await adapter.dispose();
        throw new Error(
          `Shadow database ${name} was created but the server connected us to "${String(landed)}"; ` +
            'set SHADOW_DATABASE_URL (datasource.shadowDatabaseUrl) to a dedicated database',
        );
      }
      return adapter;
    };
  }

  return {
    provider: 'postgres',
    adapterName: main.adapterName,
    connect: async () => open.track(patchPgQueryable(await main.connect())),
    connectToShadowDb,
    closeAll: () => open.disposeAll(),
  };
}

// ---------------------------------------------------------------------------------------------------
// PGlite in-process (pglite-prisma-adapter)
// ---------------------------------------------------------------------------------------------------

interface PgliteAdapterInternals {
  executeScript(script: string): Promise<void>;
  client: { exec(script: string): Promise<unknown> };
  onError(error: unknown): never;
}

// Pitfall 8: pglite-prisma-adapter 0.7.2's executeScript() does not await PGlite.exec(): a failing
// migration would be reported as applied (and crash later as an unhandled rejection). Await it.
function fixPgliteScript(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const a = adapter as unknown as PgliteAdapterInternals;
  a.executeScript = async (script) => {
    try {
      await a.client.exec(script);
    } catch (error) {
      a.onError(error);
    }
  };
  return adapter;
}

async function pgliteAdapterFactory(
  url: string | undefined,
  instance: PGlite | undefined,
): Promise<ManagedAdapterFactory> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PrismaPGlite } = await import('pglite-prisma-adapter');
  const ownsDb = !instance;
  const db = instance ?? new PGlite(url ? pgliteDataDir(url) : undefined);
  const factory = new PrismaPGlite(db);
  const open = new DisposableSet();
  // The adapter's own connectToShadowDb boots a new in-memory PGlite at every call (seconds each).
  // Boot one lazily per factory and wipe it between uses.
  let shadowDb: PGlite | undefined;
  return {
    provider: 'postgres',
    adapterName: factory.adapterName,
    connect: async () => open.track(fixPgliteScript(await factory.connect())),
    connectToShadowDb: async () => {
      if (!shadowDb) shadowDb = new PGlite();
      else await shadowDb.exec(WIPE_PG_SQL);
      return open.track(fixPgliteScript(await new PrismaPGlite(shadowDb).connect()));
    },
    closeAll: async () => {
      await open.disposeAll();
      await shadowDb?.close();
      shadowDb = undefined;
      // Pitfall 9: a PGlite data directory can be open in one process only; close ours promptly.
      if (ownsDb && !db.closed) await db.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------

export interface EngineTarget {
  /** postgres:// or postgresql:// (honours ?schema=), or pglite:memory / pglite:<dir> (relative to cwd). */
  url?: string;
  /** An open PGlite instance to use instead of `url` (left open by close()). */
  pglite?: PGlite;
  /** Explicit shadow database (PostgreSQL only); wiped before each use. */
  shadowDatabaseUrl?: string;
}

/** Build the migration-aware driver adapter factory (with every fix) for a target. */
export async function makeAdapterFactory(target: EngineTarget): Promise<ManagedAdapterFactory> {
  const url: string | undefined = target.url;
  if (target.pglite || isPgliteUrl(url)) return pgliteAdapterFactory(url, target.pglite);
  if (isPostgresUrl(url)) return pgAdapterFactory(url, target.shadowDatabaseUrl || undefined);
  const scheme = url ? `"${url.split(':')[0]}:"` : 'none';
  throw new Error(
    `Unsupported datasource URL for refgraph's schema engine (scheme ${scheme}): ` +
      'use postgres://, postgresql://, pglite:memory or pglite:<dir>',
  );
}

/** Load a migrations directory the way the Prisma CLI does (the engine API's MigrationList). */
export function readMigrationsList(dir: string, shadowDbInitScript = ''): MigrationList {
  const baseDir = path.resolve(dir);
  const lockPath = path.join(baseDir, 'migration_lock.toml');
  const names = fs.existsSync(baseDir)
    ? fs
        .readdirSync(baseDir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
    : [];
  return {
    baseDir,
    lockfile: {
      path: 'migration_lock.toml',
      content: fs.existsSync(lockPath) ? fs.readFileSync(lockPath, 'utf8') : null,
    },
    migrationDirectories: names.map((name) => {
      const file = path.join(baseDir, name, 'migration.sql');
      let content: MigrationList['migrationDirectories'][number]['migrationFile']['content'];
      try {
        content = { tag: 'ok', value: fs.readFileSync(file, 'utf8') };
      } catch (error) {
        content = { tag: 'error', value: (error as Error).message };
      }
      return { path: name, migrationFile: { path: 'migration.sql', content } };
    }),
    shadowDbInitScript,
  };
}

export const noFilters: SchemaFilter = { externalTables: [], externalEnums: [] };

export interface OpenSchemaEngineOptions extends EngineTarget {
  /** [path, content] of the Prisma schema files (the CLI's --datamodels); optional. */
  datamodels?: Array<[string, string]>;
  /** Receives the engine's log lines (JSON strings). */
  log?: (message: string) => void;
}

export interface SchemaEngineHandle {
  /** The raw wasm engine. Prefer the wrappers below where one exists. */
  engine: WasmSchemaEngine;
  createMigration(input: CreateMigrationInput): Promise<CreateMigrationOutput>;
  evaluateDataLoss(input: EvaluateDataLossInput): Promise<EvaluateDataLossOutput>;
  /** Free the engine and release every connection, shadow database and owned PGlite. Idempotent. */
  close(): Promise<void>;
}

/** Open a wasm schema engine on a PostgreSQL / PGlite target, with the workarounds applied. */
export async function openSchemaEngine(options: OpenSchemaEngineOptions): Promise<SchemaEngineHandle> {
  const SchemaEngine = await loadSchemaEngineClass();
  const { bindMigrationAwareSqlAdapterFactory } = await import('@prisma/driver-adapter-utils');
  const factory = await makeAdapterFactory(options);
  let engine: WasmSchemaEngine;
  try {
    engine = await SchemaEngine.new(
      { datamodels: options.datamodels },
      options.log ?? (() => {}),
      bindMigrationAwareSqlAdapterFactory(factory),
    );
  } catch (error) {
    await factory.closeAll().catch(() => {});
    throw error;
  }

  // Pitfall 4: createMigration / evaluateDataLoss are not handed the shadow-database factory by the
  // wasm engine; they only work when the migrations' schema is already in the per-engine cache, which
  // diagnoseMigrationHistory(optInToShadowDatabase) fills. Warm it and retry once.
  const withWarmCache =
    <I extends { migrationsList: MigrationList; filters: SchemaFilter }, O>(call: (input: I) => Promise<O>) =>
    async (input: I): Promise<O> => {
      try {
        return await call(input);
      } catch (error) {
        if (!/shadow DB must be provided through an external factory/.test(String((error as Error)?.message))) {
          throw error;
        }
        await engine.diagnoseMigrationHistory({
          migrationsList: input.migrationsList,
          optInToShadowDatabase: true,
          filters: input.filters ?? noFilters,
        });
        return await call(input);
      }
    };

  let closing: Promise<void> | undefined;
  return {
    engine,
    createMigration: withWarmCache((input: CreateMigrationInput) => engine.createMigration(input)),
    evaluateDataLoss: withWarmCache((input: EvaluateDataLossInput) => engine.evaluateDataLoss(input)),
    close: () => {
      closing ??= (async () => {
        try {
          engine.free();
        } catch {
          // already freed, or the instance panicked
        }
        // The wasm engine does not dispose its adapters when freed: without this, adapter-pg pools
        // (and the session advisory lock 72707369 the engine takes on one of their connections)
        // would stay open until the process exits.
        await factory.closeAll();
      })();
      return closing;
    },
  };
}
