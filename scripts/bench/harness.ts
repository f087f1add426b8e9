// Shared machinery of `npm run bench`: a throw-away PostgreSQL database, the real server in a
// child process, a closed-loop load generator with latency percentiles, and the result shape.
import { readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { applyMigrations } from '../../src/db/migrate.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');

export interface BenchOptions {
  quick: boolean;
  /** Measured time per scenario. */
  durationMs: number;
  /** Unmeasured run before each scenario (connections, caches, JIT). */
  warmupMs: number;
  /** Requests (or statements) in flight at once, each worker sending its next one when the last is answered. */
  concurrency: number;
  /** PostgreSQL server to create the throw-away database on. */
  databaseUrl: string;
  /** The scale suite's sizes in clicks (`--sizes 100k,10M`); each suite's default when absent. */
  sizes?: string;
}

/** One line of the result table. */
export interface BenchResult {
  suite: string;
  scenario: string;
  /** What one operation is, e.g. "click", "INSERT". */
  unit: string;
  ops: number;
  errors: number;
  durationS: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  concurrency: number;
  /** opsPerSec / the suite's baseline opsPerSec (the raw single-row INSERT), when there is one. */
  vsBaseline?: number;
  notes?: string;
}

export interface BenchSuite {
  name: string;
  description: string;
  run(options: BenchOptions, log: (line: string) => void): Promise<BenchResult[]>;
}

// ---------------------------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------------------------

export interface ThrowawayDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A new, migrated database on the server of `baseUrl`; drop() removes it (also when connections linger). */
export async function createThrowawayDatabase(baseUrl: string, prefix = 'refgraph_bench'): Promise<ThrowawayDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await withClient(baseUrl, (c) => c.query(`create database "${name}"`));
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  await applyMigrations({ url }, { log: () => {} });
  return {
    url,
    name,
    drop: () => withClient(baseUrl, (c) => c.query(`drop database if exists "${name}" with (force)`)).then(() => {}),
  };
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// The server under test, in its own process (its own event loop, as in production)
// ---------------------------------------------------------------------------------------------

export interface ServerProcess {
  url: string;
  /** CPU time (user + system) the server process has used so far, in ms (Linux /proc). */
  cpuMs(): number;
  /** SIGTERM and wait for a graceful exit (which writes every acknowledged click). */
  stop(): Promise<number | null>;
}

/**
 * A benchmark's load comes from one address and one key at thousands of requests a second: the
 * rate limiter runs (and costs what it costs) with limits no benchmark reaches. A suite can pass
 * `RATE_LIMIT_…: '0'` to measure without it.
 */
export const BENCH_RATE_LIMITS = {
  RATE_LIMIT_CREDENTIAL_PER_SECOND: '1000000',
  RATE_LIMIT_ANONYMOUS_PER_MINUTE: '100000000',
  RATE_LIMIT_TOKENS_PER_MINUTE: '100000000',
  RATE_LIMIT_REDIRECT_PER_MINUTE: '100000000',
  RATE_LIMIT_STRIPE_PER_SECOND: '1000000',
} as const;

/**
 * `BENCH_SERVER_ENV="NAME=value NAME=value"`: settings applied last to every server under test, to
 * measure with something off or on (`RATE_LIMIT_CREDENTIAL_PER_SECOND=0`, `LOG_LEVEL=info` for the
 * access log, whose lines then go to /dev/null).
 */
export function benchServerEnv(spec = process.env['BENCH_SERVER_ENV'] ?? ''): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of spec.split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`BENCH_SERVER_ENV: "${pair}" is not NAME=value`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** `refgraph serve` in a child process; `nodeArgs` e.g. ['--cpu-prof'] to profile it. */
export async function startServerProcess(
  env: Record<string, string>,
  nodeArgs: string[] = [],
  readyTimeoutMs = 60_000,
): Promise<ServerProcess> {
  const port = await freePort();
  const serverEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    MIGRATE_ON_START: 'false',
    NODE_ENV: 'production',
    ...BENCH_RATE_LIMITS,
    ...env,
    ...benchServerEnv(),
  };
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/cli.ts', 'serve'], {
    cwd: ROOT,
    env: serverEnv,
    // Below warn the server logs every request: written (to /dev/null), not printed among the results.
    stdio: ['ignore', serverEnv.LOG_LEVEL === 'warn' ? 'inherit' : 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited during start-up (code ${child.exitCode})`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not become ready within ${readyTimeoutMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    cpuMs: () => processCpuMs(child.pid!),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * CPU time (user + system) of a process so far, in ms, from /proc/<pid>/stat (Linux; NaN
 * elsewhere). CPU per operation does not depend on how busy the machine is, unlike throughput.
 */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}
/** USER_HZ: 100 on every Linux architecture Node runs on (`getconf CLK_TCK`). */
const CLOCK_TICKS_PER_S = 100;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------------------------

export interface LoadResult {
  ops: number;
  errors: number;
  durationS: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  firstError?: string;
}

/**
 * `concurrency` workers call `op` back to back for `durationMs` (after `warmupMs` unmeasured).
 * `op` resolves true for a success; a false or a rejection counts as an error.
 */
export async function runLoad(
  op: () => Promise<boolean>,
  options: { concurrency: number; durationMs: number; warmupMs: number },
): Promise<LoadResult> {
  if (options.warmupMs > 0) await closedLoop(op, options.concurrency, options.warmupMs, false);
  return closedLoop(op, options.concurrency, options.durationMs, true);
}

async function closedLoop(
  op: () => Promise<boolean>,
  concurrency: number,
  durationMs: number,
  measure: boolean,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const end = started + durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      let ok = false;
      try {
        ok = await op();
      } catch (error) {
        firstError ??= error instanceof Error ? error.message : String(error);
      }
      if (!measure) continue;
      if (ok) {
        ops++;
        latencies.push(performance.now() - t0);
      } else {
        errors++;
        firstError ??= 'operation answered with a failure';
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const durationS = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]! : 0;
  return { ops, errors, durationS, opsPerSec: ops / durationS, p50Ms: pct(50), p99Ms: pct(99), firstError };
}

/** A keep-alive HTTP client: one socket per worker, no redirects followed, body read and dropped. */
export function httpClient(baseUrl: string, maxSockets: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const base = new URL(baseUrl);
  return {
    request(
      method: string,
      path: string,
      body?: string,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
      return new Promise((resolve, reject) => {
        const req = http.request(
          {
            agent,
            host: base.hostname,
            port: base.port,
            method,
            path,
            headers:
              body === undefined
                ? headers
                : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks).toString('utf8'),
              }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

export function formatTable(results: BenchResult[]): string {
  const header = ['suite', 'scenario', 'ops/s', 'p50 ms', 'p99 ms', 'ops', 'errors', 'conc.', 'vs raw INSERT'];
  const rows = results.map((r) => [
    r.suite,
    r.scenario,
    r.opsPerSec.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    String(r.ops),
    String(r.errors),
    String(r.concurrency),
    r.vsBaseline === undefined ? '' : `${r.vsBaseline.toFixed(2)}×`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i >= 2 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

/**
 * Run one suite on its own (`npx tsx scripts/bench/<suite>.ts`), options from the environment:
 * BENCH_QUICK=1, BENCH_DURATION (seconds), BENCH_CONCURRENCY, BENCH_DATABASE_URL. Prints the table
 * and the notes, and exits 0, or 1 when the suite fails.
 */
export function runAlone(
  suite: BenchSuite,
  defaults: { concurrency: number; durationMs?: number; warmupMs?: number },
): void {
  const quick = process.env.BENCH_QUICK === '1';
  const options: BenchOptions = {
    quick,
    durationMs: process.env.BENCH_DURATION
      ? Number(process.env.BENCH_DURATION) * 1000
      : (defaults.durationMs ?? (quick ? 3_000 : 10_000)),
    warmupMs: defaults.warmupMs ?? (quick ? 500 : 2_000),
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? defaults.concurrency),
    databaseUrl: process.env.BENCH_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres',
    ...(process.env.BENCH_SIZES ? { sizes: process.env.BENCH_SIZES } : {}),
  };
  const log = (line: string) => process.stderr.write(`${line}\n`);
  suite.run(options, log).then(
    (results) => {
      process.stdout.write(`\n${formatTable(results)}\n\n`);
      for (const r of results) if (r.notes) process.stdout.write(`- ${r.scenario}: ${r.notes}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(
        `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
