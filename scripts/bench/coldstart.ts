// Cold start (issue 6, item 6): from process spawn to the first answered GraphQL query
// (`{ __typename }`, no credential), of the built server (`npm run build`, then
// `node dist/src/cli.js serve` with its defaults: migrations on start, background jobs on):
//   - embedded PGlite: a new, empty data directory (the database is created and migrated), then a
//     second start on that directory;
//   - PostgreSQL: a new, empty database (migrated on start), then a second start on it.
// Next to baselines measured in the same run: a bare graphql-yoga hello world (plain `node`, no
// database), and the same hello world that first opens PGlite (new and existing data directory)
// — the floor for any Node GraphQL process, and for one on the embedded database.
// Several runs (5, or 1 with --quick), median; the slowest run is shown too. --quick also leaves
// out the PGlite-only baselines (about 14 s) and builds only when a file under src/ is newer than
// dist/src/cli.js.
//
//   npm run bench -- --suite coldstart [--quick]
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ROOT, runAlone, withClient, type BenchOptions, type BenchResult, type BenchSuite } from './harness.js';
import { freePort, type RatioResult } from './seed.js';

const SUITE = 'coldstart';
const QUERY = JSON.stringify({ query: '{ __typename }' });
/** Give up on one start after this long. */
const START_TIMEOUT_MS = 120_000;

/** Plain-node baselines, written next to node_modules so their imports resolve to the project's packages. */
const BARE_YOGA = `import http from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';
const dataDir = process.env.BENCH_PGLITE_DIR;
if (dataDir) {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite(dataDir);
  await db.query('select 1');
}
const yoga = createYoga({ schema: createSchema({ typeDefs: 'type Query { hello: String! }', resolvers: { Query: { hello: () => 'world' } } }), logging: false, graphiql: false, landingPage: false });
const server = http.createServer(yoga);
server.listen(Number(process.env.PORT), '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
`;

interface Start {
  /** Spawn → first answered query. */
  ms: number;
  /** Spawn → the server's "listening" log line (refgraph only). */
  listeningMs: number | null;
}

/** Spawn `node args…`, poll `{ __typename }` until answered, then SIGTERM and wait for the exit. */
async function timeStart(args: string[], env: Record<string, string | undefined>): Promise<Start> {
  const port = await freePort();
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) childEnv[k] = v;
  Object.assign(childEnv, { PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production' });
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let listeningMs: number | null = null;
  let output = '';
  const onOutput = (chunk: Buffer) => {
    const text = chunk.toString();
    if (output.length < 20_000) output += text;
    if (listeningMs === null && text.includes('refgraph listening')) listeningMs = performance.now() - started;
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`${args.join(' ')} exited during start-up (code ${child.exitCode}): ${output.slice(-2000)}`);
      if (performance.now() - started > START_TIMEOUT_MS)
        throw new Error(`${args.join(' ')} did not answer within ${START_TIMEOUT_MS / 1000} s: ${output.slice(-2000)}`);
      if (await answers(port)) return { ms: performance.now() - started, listeningMs };
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

/** True when the server answers `{ __typename }` with data (a fresh connection each time). */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/graphql',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(QUERY) },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"__typename"')));
        res.on('error', () => resolve(false));
      },
    );
    req.on('error', () => resolve(false));
    req.setTimeout(5_000, () => req.destroy());
    req.end(QUERY);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
}

/**
 * `npm run build` (with --quick only when dist/ is older than src/). tsc emits even when it
 * reports type errors: then dist/ as emitted is measured, and the notes say so.
 */
function build(log: (line: string) => void, onlyIfStale: boolean): string {
  const cli = path.join(ROOT, 'dist', 'src', 'cli.js');
  if (onlyIfStale && fs.existsSync(cli) && fs.statSync(cli).mtimeMs >= newest(path.join(ROOT, 'src'))) {
    log(`${SUITE}: dist/ is newer than src/: not rebuilt`);
    return 'dist/ newer than src/, not rebuilt';
  }
  const started = performance.now();
  const res = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build', '--silent'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (res.status === 0) {
    log(`${SUITE}: npm run build: ${seconds} s`);
    return `built by npm run build in ${seconds} s`;
  }
  const why = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim().split('\n').slice(0, 5).join(' | ');
  if (!fs.existsSync(cli)) throw new Error(`npm run build failed and there is no dist/: ${why}`);
  log(`${SUITE}: npm run build exited with ${res.status} (${why}); measuring dist/ as emitted`);
  return `npm run build exited with ${res.status} (${why.slice(0, 200)}): dist/ as emitted was measured`;
}

export const coldstartSuite: BenchSuite = {
  name: SUITE,
  description:
    'spawn → first answered query of the built server, on PGlite and PostgreSQL (new and existing database), vs a bare Yoga process',
  async run(options: BenchOptions, log): Promise<BenchResult[]> {
    const runs = options.quick ? 1 : 5;
    const built = build(log, options.quick);
    fs.mkdirSync(path.join(ROOT, '.refgraph', 'bench'), { recursive: true });
    const work = fs.mkdtempSync(path.join(ROOT, '.refgraph', 'bench', 'coldstart-'));
    const bareScript = path.join(work, 'bare-yoga.mjs');
    fs.writeFileSync(bareScript, BARE_YOGA);
    const serve = ['dist/src/cli.js', 'serve'];
    const base = {
      LOG_LEVEL: 'info',
      DATABASE_URL: undefined,
      REFGRAPH_DATA_DIR: undefined,
      REFGRAPH_SECRET: undefined,
      MIGRATE_ON_START: undefined,
    };
    const times: Record<string, Start[]> = {};
    const add = (name: string, s: Start) => {
      times[name] ??= [];
      times[name].push(s);
    };
    const loads: number[] = [];
    try {
      for (let run = 1; run <= runs; run++) {
        loads.push(os.loadavg()[0]!);
        log(`${SUITE}: run ${run}/${runs}…`);
        add('bare', await timeStart([bareScript], {}));

        if (!options.quick) {
          const pgliteBare = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-bench-pglite-'));
          try {
            add('barePgliteNew', await timeStart([bareScript], { BENCH_PGLITE_DIR: pgliteBare }));
            add('barePgliteOld', await timeStart([bareScript], { BENCH_PGLITE_DIR: pgliteBare }));
          } finally {
            fs.rmSync(pgliteBare, { recursive: true, force: true });
          }
        }

        const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-bench-data-'));
        try {
          add('pgliteNew', await timeStart(serve, { ...base, REFGRAPH_DATA_DIR: dataDir }));
          add('pgliteOld', await timeStart(serve, { ...base, REFGRAPH_DATA_DIR: dataDir }));
        } finally {
          fs.rmSync(dataDir, { recursive: true, force: true });
        }

        // An empty database (no tables): the server migrates it on start.
        const name = `refgraph_bench_cold_${process.pid}_${run}`;
        await withClient(options.databaseUrl, (c) =>
          c.query(`drop database if exists "${name}"`).then(() => c.query(`create database "${name}"`)),
        );
        const u = new URL(options.databaseUrl);
        u.pathname = `/${name}`;
        try {
          add('pgNew', await timeStart(serve, { ...base, DATABASE_URL: u.toString() }));
          add('pgOld', await timeStart(serve, { ...base, DATABASE_URL: u.toString() }));
        } finally {
          await withClient(options.databaseUrl, (c) => c.query(`drop database if exists "${name}" with (force)`));
        }
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }

    const bare = median(times.bare!.map((s) => s.ms));
    const barePglite = times.barePgliteNew
      ? { new: median(times.barePgliteNew.map((s) => s.ms)), old: median(times.barePgliteOld!.map((s) => s.ms)) }
      : null;
    const loadAverage = median(loads);
    const row = (key: string, scenario: string, notes: (m: number) => string, floor?: number): RatioResult => {
      const all = times[key]!;
      const ms = all.map((s) => s.ms);
      const m = median(ms);
      const listening = all.map((s) => s.listeningMs).filter((x): x is number => x !== null);
      return {
        suite: SUITE,
        scenario,
        unit: 'start',
        ops: all.length,
        errors: 0,
        durationS: ms.reduce((a, b) => a + b, 0) / 1000,
        opsPerSec: 0,
        p50Ms: m,
        p99Ms: Math.max(...ms),
        concurrency: 1,
        baseline: 'bare Yoga hello world',
        p50Ratio: m / bare,
        loadAverage,
        notes:
          `median of ${all.length}: ${(m / 1000).toFixed(2)} s (${ms.map((x) => (x / 1000).toFixed(2)).join(', ')}); ${(m / bare).toFixed(1)}× the bare Yoga` +
          (floor !== undefined ? `, ${(m / floor).toFixed(2)}× the bare Yoga on PGlite alike` : '') +
          (listening.length ? `; "listening" logged after ${(median(listening) / 1000).toFixed(2)} s` : '') +
          (notes(m) ? `; ${notes(m)}` : ''),
      };
    };
    return [
      row('bare', 'bare Yoga hello world (node, no database)', () => 'the baseline'),
      ...(barePglite
        ? [
            row(
              'barePgliteNew',
              'bare Yoga + PGlite, new data directory',
              () => 'new PGlite(dir) + select 1 before listening',
            ),
            row('barePgliteOld', 'bare Yoga + PGlite, existing data directory', () => ''),
          ]
        : []),
      row(
        'pgliteNew',
        'refgraph on PGlite, new data directory',
        () =>
          `unpacks the build's migrated template (dist/pglite-template-<hash>.tar.gz), or creates and migrates the database without one; ${built}`,
        barePglite?.new,
      ),
      row('pgliteOld', 'refgraph on PGlite, second start', () => '', barePglite?.old),
      row('pgNew', 'refgraph on PostgreSQL, new empty database', () => 'migrates on start'),
      row('pgOld', 'refgraph on PostgreSQL, second start', () => 'nothing to migrate'),
    ];
  },
};

// Run alone: `npx tsx scripts/bench/coldstart.ts` (BENCH_QUICK=1 for one run).
if (process.argv[1]?.endsWith('coldstart.ts')) {
  runAlone(coldstartSuite, { concurrency: 1, durationMs: 0, warmupMs: 0 });
}
