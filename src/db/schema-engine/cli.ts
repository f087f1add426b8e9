// Stand-in for Prisma's native `schema-engine` binary (Prisma CLI 7.10.x), PostgreSQL and PGlite only.
// Run through bin/schema-engine.mjs, which prisma.config.ts sets as PRISMA_SCHEMA_ENGINE_BINARY when
// the native binary is absent. Speaks the native engine's protocol; every call goes to
// @prisma/schema-engine-wasm through ./engine.ts:
//   schema-engine --version
//   schema-engine --datasource '{"url":..}' cli can-connect-to-database|create-database|drop-database
//   schema-engine [--datamodels FILE]... [--datasource JSON] [--enabled-preview-features X] [--extension-types J]
//     -> newline-delimited JSON-RPC requests on stdin; responses (and `print` requests) on stdout;
//        JSON log lines on stderr. stdout carries protocol lines only.
// SCHEMA_ENGINE_SHIM_LOG=<file> appends argv, every request/response and timings to <file>.
import fs from 'node:fs';
import readline from 'node:readline';
import { format } from 'node:util';
import {
  isPgliteUrl,
  isPostgresUrl,
  isWasmTrap,
  lastEnginePanic,
  openSchemaEngine,
  pgDatabaseName,
  pgUrlWithDatabase,
  quoteIdent,
  splitPgUrl,
  wasmEngineVersion,
  type SchemaEngineHandle,
} from './engine.js';

const LOG_FILE = process.env['SCHEMA_ENGINE_SHIM_LOG'];
const shimLog = (entry: Record<string, unknown>): void => {
  if (LOG_FILE) fs.appendFileSync(LOG_FILE, `${JSON.stringify({ pid: process.pid, t: Date.now(), ...entry })}\n`);
};
const stderrLog = (level: 'INFO' | 'WARN' | 'ERROR', message: string, extra: Record<string, unknown> = {}): void => {
  process.stderr.write(
    `${JSON.stringify({
      timestamp: new Date().toISOString(),
      level,
      fields: { message, ...extra },
      target: 'schema_engine::logger',
    })}\n`,
  );
};
const writeProtocol = (message: unknown): void => {
  process.stdout.write(`${JSON.stringify(message)}\n`);
};

// stdout belongs to the protocol: anything a dependency prints goes to stderr as a log line.
console.log = console.info = console.debug = (...args: unknown[]) => stderrLog('INFO', format(...args));
console.warn = (...args: unknown[]) => stderrLog('WARN', format(...args));

// ---------- argv ----------
interface Datasource {
  url?: string;
  shadowDatabaseUrl?: string;
}
const argv = process.argv.slice(2);
const datamodelPaths: string[] = [];
let datasource: Datasource = {};
let cliCommand: string | undefined;
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  if (arg === '--version' || arg === '-V') {
    // The CLI shows this as the engine version; the last part is the engine commit hash.
    process.stdout.write(`schema-engine-cli wasm-shim ${wasmEngineVersion().split('.').pop()}\n`);
    process.exit(0);
  } else if (arg === '--datamodels' || arg === '-d') {
    datamodelPaths.push(argv[++i] ?? '');
  } else if (arg === '--datasource') {
    datasource = JSON.parse(argv[++i] ?? '{}') as Datasource;
  } else if (arg === '--enabled-preview-features' || arg === '--extension-types') {
    i++; // the engine reads these from the schema itself
  } else if (arg === 'cli') {
    cliCommand = argv[++i];
  }
}
shimLog({ argv, cwd: process.cwd() });
const url = datasource.url ?? process.env['DATABASE_URL'];

// ---------- `cli <command>`: used by the CLI to check / create the database ----------
interface PgError {
  code?: string;
  message?: string;
}
function pgErrorToPrisma(error: PgError, databaseUrl: string): { code: string; message: string } {
  const u = new URL(databaseUrl);
  const host = `\`${u.hostname}\`:\`${u.port || '5432'}\``;
  switch (error.code) {
    case '3D000':
      return {
        code: 'P1003',
        message: `Database \`${pgDatabaseName(databaseUrl)}\` does not exist on the database server at ${host}.`,
      };
    case '28P01':
    case '28000':
      return {
        code: 'P1000',
        message: `Authentication failed against database server at ${host}, the provided database credentials for \`${decodeURIComponent(u.username)}\` are not valid.`,
      };
    case '42P04':
      return {
        code: 'P1009',
        message: `Database \`${pgDatabaseName(databaseUrl)}\` already exists on the database server at ${host}`,
      };
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
      return {
        code: 'P1001',
        message: `Can't reach database server at ${host}\n\nPlease make sure your database server is running at ${host}.`,
      };
    default:
      return { code: 'P1000', message: String(error.message ?? error) };
  }
}

async function pgAdmin(databaseUrl: string, sql: string | null, onMaintenanceDb: boolean): Promise<void> {
  const pg = (await import('pg')).default;
  const { connectionString } = splitPgUrl(databaseUrl);
  const target = onMaintenanceDb ? pgUrlWithDatabase(connectionString, 'postgres') : connectionString;
  const client = new pg.Client({ connectionString: target, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    if (sql) await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

async function runCliCommand(command: string): Promise<never> {
  // PGlite databases are created when opened: nothing to check or create.
  if (isPgliteUrl(url)) process.exit(0);
  if (!isPostgresUrl(url)) {
    process.stderr.write(`${JSON.stringify({ level: 'INFO', fields: { message: `wasm-shim cli ${command}` } })}\n`);
    process.stderr.write(
      JSON.stringify({
        level: 'ERROR',
        target: 'schema_engine::logger',
        fields: {
          error_code: 'P1013',
          message: 'refgraph schema engine: only postgres(ql):// and pglite: URLs are supported',
        },
      }),
    );
    process.exit(1);
  }
  // The CLI drops the first stderr line and JSON.parses every other one (execa strips the final
  // newline), so: one informational line first, then the error object without a trailing newline.
  process.stderr.write(
    JSON.stringify({ level: 'INFO', fields: { message: `wasm-shim cli ${command}` }, target: 'schema_engine::cli' }) +
      '\n',
  );
  try {
    const db = quoteIdent(pgDatabaseName(splitPgUrl(url).connectionString));
    if (command === 'can-connect-to-database') await pgAdmin(url, null, false);
    else if (command === 'create-database') await pgAdmin(url, `CREATE DATABASE ${db}`, true);
    else if (command === 'drop-database') await pgAdmin(url, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`, true);
    else throw new Error(`unknown cli command ${command}`);
    process.exit(0);
  } catch (error) {
    const { code, message } = pgErrorToPrisma(error as PgError, url);
    shimLog({ cliCommand: command, error: message });
    process.stderr.write(
      JSON.stringify({ level: 'ERROR', target: 'schema_engine::logger', fields: { error_code: code, message } }),
    );
    process.exit(1);
  }
}

// ---------- JSON-RPC ----------
interface RpcRequest {
  jsonrpc: '2.0';
  id: number | string;
  method?: string;
  params?: unknown;
}
interface RpcErrorData {
  is_panic: boolean;
  message: string;
  backtrace?: string;
  meta?: unknown;
  error_code?: string;
}
const rpcError = (data: RpcErrorData) => ({
  code: 4466,
  // The CLI prints this top-level message for panics: make it say what happened.
  message: data.is_panic
    ? `Schema engine (wasm) panicked: ${data.message}`
    : 'An error happened. Check the data field for details.',
  data,
});

let exiting = false;
function exitAfterPanic(): void {
  if (exiting) return;
  exiting = true;
  // A panicked wasm instance is unusable; the native engine exits with 101 and the CLI reports it.
  setTimeout(() => process.exit(101), 50);
}

function toRpcError(error: unknown) {
  const e = error as { message?: unknown; stack?: unknown; code?: unknown; meta?: unknown } | undefined;
  if (isWasmTrap(error) || lastEnginePanic() != null) {
    exitAfterPanic();
    return rpcError({ is_panic: true, message: lastEnginePanic() ?? String(e?.message), backtrace: String(e?.stack) });
  }
  const data: RpcErrorData = { is_panic: false, message: String(e?.message ?? error), meta: e?.meta ?? {} };
  if (typeof e?.code === 'string') data.error_code = e.code; // user-facing Pxxxx errors
  return rpcError(data);
}

async function serve(): Promise<void> {
  const t0 = Date.now();
  const datamodels = datamodelPaths.length
    ? datamodelPaths.map((p): [string, string] => [p, fs.readFileSync(p, 'utf8')])
    : undefined;
  const handle: SchemaEngineHandle = await openSchemaEngine({
    url,
    shadowDatabaseUrl: datasource.shadowDatabaseUrl,
    datamodels,
    log: (message) => shimLog({ engineLog: message }),
  });
  const { engine } = handle;
  shimLog({ startupMs: Date.now() - t0 });

  let printId = 1_000_000;
  type Method = (params: never) => Promise<unknown>;
  const methods: Record<string, Method> = {
    createMigration: handle.createMigration,
    evaluateDataLoss: handle.evaluateDataLoss,
    // Names only the native engine has.
    getDatabaseVersion: () => engine.version(),
    createDatabase: async () => {
      if (!isPostgresUrl(url)) return { databaseName: 'pglite' };
      const name = pgDatabaseName(splitPgUrl(url).connectionString);
      await pgAdmin(url, `CREATE DATABASE ${quoteIdent(name)}`, true);
      return { databaseName: name };
    },
    // The native engine prints `diff` output through a `print` request and returns { exitCode }; the
    // wasm engine returns it as `stdout`: re-emit it as a `print` request.
    diff: async (params: Parameters<typeof engine.diff>[0]) => {
      const { exitCode, stdout } = await engine.diff(params);
      if (stdout != null) {
        writeProtocol({
          jsonrpc: '2.0',
          id: printId++,
          method: 'print',
          params: { content: stdout.replace(/\n$/, '') },
        });
      }
      return { exitCode };
    },
  };
  const engineMethod = (name: string): Method | undefined => {
    const fn = (engine as unknown as Record<string, unknown>)[name];
    return typeof fn === 'function'
      ? (params: never) => (fn as (p: unknown) => Promise<unknown>).call(engine, params)
      : undefined;
  };

  let inFlight: RpcRequest | null = null;
  // Pitfall 7: Rust panics inside wasm surface as uncaught exceptions thrown from wasm-bindgen
  // callbacks, not as rejections of the pending call: answer the pending request and exit 101.
  process.on('uncaughtException', (error) => {
    const message = lastEnginePanic() ?? String(error?.stack ?? error);
    stderrLog('ERROR', message, { is_panic: true });
    shimLog({ panic: message, method: inFlight?.method });
    if (inFlight) {
      writeProtocol({
        jsonrpc: '2.0',
        id: inFlight.id,
        error: rpcError({ is_panic: true, message, backtrace: String(error?.stack) }),
      });
    }
    exitAfterPanic();
  });

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let queue: Promise<void> = Promise.resolve(); // one request at a time, like the native engine
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let req: RpcRequest;
    try {
      req = JSON.parse(line) as RpcRequest;
    } catch {
      stderrLog('ERROR', `invalid JSON-RPC line: ${line.slice(0, 200)}`);
      return;
    }
    const method = req.method;
    if (method === undefined) return; // the CLI's answer to one of our `print` requests
    queue = queue.then(async () => {
      inFlight = req;
      const t = Date.now();
      let res: unknown;
      try {
        const fn = methods[method] ?? engineMethod(method);
        if (!fn) throw new Error(`Method not supported by the wasm schema engine: ${method}`);
        res = { jsonrpc: '2.0', id: req.id, result: (await fn(req.params as never)) ?? null };
      } catch (error) {
        res = { jsonrpc: '2.0', id: req.id, error: toRpcError(error) };
      }
      inFlight = null;
      shimLog({ method, ms: Date.now() - t, params: req.params, response: res });
      writeProtocol(res);
    });
  });
  rl.on('close', () => {
    void queue
      .then(() => handle.close())
      .catch((error: unknown) => stderrLog('WARN', `closing the engine: ${String(error)}`))
      .finally(() => process.exit(0));
  });
}

(cliCommand ? runCliCommand(cliCommand) : serve()).catch((error: unknown) => {
  const e = error as { message?: unknown; stack?: unknown };
  stderrLog('ERROR', String(e?.message ?? error));
  shimLog({ fatal: String(e?.stack ?? error) });
  process.exit(1);
});
