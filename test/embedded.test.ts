// The real server as an operator runs it (`refgraph serve` in a child process, from the sources through
// tsx): first start on an empty embedded database, graceful stop on SIGTERM, restart on the same data;
// with TEST_DATABASE_URL, the same on a fresh PostgreSQL database, two instances starting at once.
// Also the lock that keeps a second process off an embedded data directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db.js';
import { defaultTemplateFile } from '../src/db/pglite-template.js';
import { DataDirInUseError, lockDataDir } from '../src/lib/data-dir-lock.js';
import { databaseUrlFor, testDatabaseUrl } from './helpers/backend.js';

const root = path.resolve(import.meta.dirname, '..');
const pgBase = testDatabaseUrl();

const migrationsDir = path.join(root, 'prisma', 'migrations');
const migrationNames = () =>
  fs
    .readdirSync(migrationsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(migrationsDir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort();

/** The variables loadConfig reads: removed from the inherited environment, so only the test's count. */
const REFGRAPH_VARS = [
  ...fs.readFileSync(path.join(root, 'src', 'config.ts'), 'utf8').matchAll(/\(env, '([A-Z0-9_]+)'/g),
]
  .map((m) => m[1]!)
  .filter((name) => name !== 'NODE_ENV');
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const name of REFGRAPH_VARS) delete base[name];
  return { ...base, ...env };
}

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-embedded-test-'));
  tempDirs.push(dir);
  return dir;
};

/** A free port: bind port 0, read it, release it. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface ServerProcess {
  pid: number;
  url: string;
  /** Parsed JSON log lines (stdout) so far. */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  /** Poll /readyz until 200; resolves with the milliseconds since spawn. */
  ready(timeoutMs?: number): Promise<number>;
  /** SIGTERM, then the exit and how long it took. */
  stop(timeoutMs?: number): Promise<Exit & { ms: number }>;
  exited: Promise<Exit>;
}

async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    cwd: root,
    env: cleanEnv({ HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let done: Exit | null = null;
  void exited.then((exit) => (done = exit));
  const url = `http://127.0.0.1:${port}`;
  const describeState = () =>
    `exit: ${JSON.stringify(done)}\nlogs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${stderr}`;
  return {
    pid: child.pid!,
    url,
    logs,
    stderr: () => stderr,
    exited,
    ready: async (timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (done) throw new Error(`the server exited before it was ready\n${describeState()}`);
        const status = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
          (res) => res.status,
          () => 0,
        );
        if (status === 200) return Math.round(performance.now() - t0);
        if (Date.now() > deadline) throw new Error(`not ready within ${timeoutMs} ms\n${describeState()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    stop: async (timeoutMs = 10_000) => {
      const t1 = performance.now();
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const exit = await Promise.race([
        exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no exit within ${timeoutMs} ms of SIGTERM\n${describeState()}`)),
            timeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      return { ...exit, ms: Math.round(performance.now() - t1) };
    },
  };
}

/** `refgraph …args` (one-shot command) with the given environment. */
function refgraph(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: root,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const messages = (server: ServerProcess) => server.logs.map((l) => String(l['msg']));
const appliedBy = (server: ServerProcess) =>
  server.logs.filter((l) => l['msg'] === 'migrations applied').map((l) => l['applied']);

async function checkServes(server: ServerProcess, database: 'pglite' | 'postgres'): Promise<void> {
  const health = await fetch(`${server.url}/healthz`);
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: 'ok' });
  const ready = await fetch(`${server.url}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.text()).toBe(JSON.stringify({ status: 'ready', database }));
  // No credential: a top-level UNAUTHENTICATED error (API contract).
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ viewer { role } }' }),
  });
  const body = (await res.json()) as { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> };
  expect(body.errors?.[0]?.extensions?.code, JSON.stringify(body)).toBe('UNAUTHENTICATED');
}

async function expectGracefulStop(server: ServerProcess): Promise<number> {
  const exit = await server.stop();
  expect(exit, server.stderr()).toMatchObject({ code: 0, signal: null });
  expect(exit.ms).toBeLessThan(5000);
  expect(server.logs).toContainEqual(expect.objectContaining({ msg: 'stopping', signal: 'SIGTERM' }));
  expect(messages(server)).toContain('refgraph stopped');
  expect(server.stderr()).toBe('');
  return exit.ms;
}

/** Timings, for the record (cold start includes loading the code through tsx). */
const timings: string[] = [];
afterAll(() => {
  if (timings.length) console.info(`refgraph serve timings: ${timings.join('; ')}`);
});

describe('refgraph serve on the embedded database (no DATABASE_URL)', () => {
  const dataDir = tempDir();
  const lockFile = path.join(dataDir, 'pgdata.lock');
  const installationSecret = async () => {
    const db = await openDatabase({ databaseUrl: undefined, dataDir, migrate: false });
    try {
      return await db.query<{ value: string }>(`select value from "Setting" where key = 'installation_secret'`);
    } finally {
      await db.close();
    }
  };
  let secretRows: Array<{ value: string }> = [];

  it('first start: migrates, serves, keeps other processes off the data, stops on SIGTERM', async () => {
    const server = await startServer({ REFGRAPH_DATA_DIR: dataDir });
    const readyMs = await server.ready();
    await checkServes(server, 'pglite');
    // Unpacked from the build's migrated template when `npm run build` made one (it has every
    // migration: nothing left to apply), else created and migrated from scratch.
    if (fs.existsSync(defaultTemplateFile())) {
      expect(messages(server)).toContain('new embedded database created from the build template');
      expect(appliedBy(server)).toEqual([]);
    } else {
      expect(appliedBy(server)).toEqual([migrationNames()]);
    }
    expect(messages(server)).toContainEqual(
      expect.stringMatching(/^refgraph listening on http:\/\/127\.0\.0\.1:\d+\/graphql$/),
    );

    // The data directory is the server's while it runs.
    expect(fs.readFileSync(lockFile, 'utf8')).toBe(`${server.pid}\n`);
    const cli = await refgraph(['workspace', 'create', '--name', 'Too early'], { REFGRAPH_DATA_DIR: dataDir });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain(
      `the embedded database in ${dataDir} is in use by process ${server.pid}; stop it first, or set DATABASE_URL`,
    );

    const stopMs = await expectGracefulStop(server);
    expect(fs.existsSync(lockFile)).toBe(false);
    timings.push(`PGlite first start ${readyMs} ms to ready, stop ${stopMs} ms`);

    secretRows = await installationSecret();
    expect(secretRows).toEqual([{ value: expect.stringMatching(/^[A-Za-z0-9_-]{64}$/) }]);
    const db = await openDatabase({ databaseUrl: undefined, dataDir, migrate: false });
    try {
      const recorded = await db.query<{ name: string }>(
        'SELECT "migration_name" AS "name" FROM "_prisma_migrations" WHERE "finished_at" IS NOT NULL ORDER BY 1',
      );
      expect(recorded.map((r) => r.name)).toEqual(migrationNames());
    } finally {
      await db.close();
    }
  }, 90_000);

  it('second start on the same data: nothing to migrate, the same installation secret', async () => {
    expect(secretRows).toHaveLength(1);
    const server = await startServer({ REFGRAPH_DATA_DIR: dataDir });
    const readyMs = await server.ready();
    await checkServes(server, 'pglite');
    expect(appliedBy(server)).toEqual([]);
    expect(messages(server).filter((m) => /migrat/.test(m))).toEqual([]);
    const stopMs = await expectGracefulStop(server);
    timings.push(`PGlite second start ${readyMs} ms to ready, stop ${stopMs} ms`);
    expect(await installationSecret()).toEqual(secretRows);
  }, 90_000);
});

describe.skipIf(!pgBase)('refgraph serve on PostgreSQL (DATABASE_URL, a fresh database)', () => {
  const name = `refgraph_embed_${randomBytes(5).toString('hex')}`;
  const url = pgBase ? databaseUrlFor(pgBase, name) : '';
  const admin = async <T>(fn: (client: pg.Client) => Promise<T>, database?: string): Promise<T> => {
    const client = new pg.Client({ connectionString: database ? databaseUrlFor(pgBase!, database) : pgBase! });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  afterAll(async () => {
    if (pgBase) await admin((c) => c.query(`drop database if exists "${name}" with (force)`));
  });

  it('two instances started at the same moment both become ready; the migrations are applied once', async () => {
    await admin((c) => c.query(`create database "${name}"`));
    const dataDir = tempDir();
    const env = { DATABASE_URL: url, REFGRAPH_DATA_DIR: dataDir };
    const servers = await Promise.all([startServer(env), startServer(env)]);
    const readyMs = await Promise.all(servers.map((s) => s.ready()));
    for (const server of servers) await checkServes(server, 'postgres');

    expect(servers.flatMap(appliedBy)).toEqual([migrationNames()]);
    // One row per migration, as `prisma migrate deploy` would have written it.
    const history = await admin(
      (c) =>
        c.query<{ migration_name: string; finished: boolean; checksum: string; applied_steps_count: number }>(
          `select migration_name, finished_at is not null as finished, checksum, applied_steps_count
             from _prisma_migrations order by 1`,
        ),
      name,
    );
    expect(history.rows).toEqual(
      migrationNames().map((migration_name) => ({
        migration_name,
        finished: true,
        checksum: createHash('sha256')
          .update(fs.readFileSync(path.join(migrationsDir, migration_name, 'migration.sql')))
          .digest('hex'),
        applied_steps_count: 1,
      })),
    );
    // The other instance waited for the lock, or started after the first had finished.
    const waited = servers.filter((s) =>
      messages(s).some((m) => m.startsWith('waiting for another instance to finish migrating')),
    );
    expect(waited.length).toBeLessThanOrEqual(1);
    const secrets = await admin((c) => c.query(`select value from "Setting" where key = 'installation_secret'`), name);
    expect(secrets.rowCount).toBe(1);
    expect(fs.readdirSync(dataDir)).toEqual([]); // no embedded database on the side

    const stopMs = await Promise.all(servers.map(expectGracefulStop));
    timings.push(
      `PostgreSQL fresh database, 2 instances at once: ${readyMs.join(' / ')} ms to ready, stop ${stopMs.join(' / ')} ms`,
    );

    const again = await startServer(env);
    const againMs = await again.ready();
    await checkServes(again, 'postgres');
    expect(appliedBy(again)).toEqual([]);
    await expectGracefulStop(again);
    timings.push(`PostgreSQL restart ${againMs} ms to ready`);
  }, 90_000);
});

describe('the embedded data directory lock', () => {
  it('a second open of the same data directory is refused until the first one closes', async () => {
    const dataDir = tempDir();
    const lockFile = path.join(dataDir, 'pgdata.lock');
    const db = await openDatabase({ databaseUrl: undefined, dataDir, migrate: false });
    try {
      expect(fs.readFileSync(lockFile, 'utf8')).toBe(`${process.pid}\n`);
      const second = openDatabase({ databaseUrl: undefined, dataDir, migrate: false });
      await expect(second).rejects.toThrow(DataDirInUseError);
      await expect(second).rejects.toThrow(`the embedded database in ${dataDir} is already open in this process`);
      await db.ping();
    } finally {
      await db.close();
    }
    expect(fs.existsSync(lockFile)).toBe(false);
    (await lockDataDir(dataDir)).release(); // free again
  });

  it('refuses a data directory that another live process holds, and leaves its lock alone', async () => {
    const dataDir = tempDir();
    const lockFile = path.join(dataDir, 'pgdata.lock');
    fs.writeFileSync(lockFile, `${process.ppid}\n`); // the test runner: alive
    const opening = openDatabase({ databaseUrl: undefined, dataDir, migrate: false });
    await expect(opening).rejects.toThrow(
      `the embedded database in ${dataDir} is in use by process ${process.ppid}; stop it first, or set DATABASE_URL`,
    );
    await expect(opening).rejects.toMatchObject({ code: 'DATA_DIR_IN_USE', pid: process.ppid });
    expect(fs.readFileSync(lockFile, 'utf8')).toBe(`${process.ppid}\n`);
    expect(fs.existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION'))).toBe(false); // never opened
  });

  it('takes over a lock whose process is gone, or that is empty or garbled', async () => {
    const gone = spawn(process.execPath, ['-e', '']);
    const deadPid = gone.pid!;
    await new Promise((resolve) => gone.on('exit', resolve));
    // A previous life of this very pid (a container's pid 1 after a restart) is as good as gone.
    for (const content of [`${deadPid}\n`, `${process.pid}\n`, '', 'not a pid\n']) {
      const dataDir = tempDir();
      const lockFile = path.join(dataDir, 'pgdata.lock');
      fs.writeFileSync(lockFile, content);
      const lock = await lockDataDir(dataDir);
      expect(fs.readFileSync(lockFile, 'utf8'), JSON.stringify(content)).toBe(`${process.pid}\n`);
      lock.release();
      lock.release(); // idempotent
      expect(fs.existsSync(lockFile)).toBe(false);
      expect(fs.readdirSync(dataDir)).toEqual([]); // nothing left aside
    }
  });

  it('of several processes racing for the same directory (free or stale), exactly one wins', async () => {
    const RACERS = 5;
    const race = async (initial: string | null) => {
      const dataDir = tempDir();
      const sync = tempDir(); // barrier files: ready-<pid>, go, tried-<pid>
      if (initial !== null) fs.writeFileSync(path.join(dataDir, 'pgdata.lock'), initial);
      // Each racer: loaded -> waits for "go" -> tries -> the winner holds the lock until all have tried.
      const script = `
        import fs from 'node:fs';
        import path from 'node:path';
        const { lockDataDir } = await import('./src/lib/data-dir-lock.ts');
        const [dataDir, sync] = process.argv.slice(1);
        const until = async (done) => {
          const deadline = Date.now() + 20000;
          while (!done()) {
            if (Date.now() > deadline) throw new Error('barrier timed out');
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
        };
        fs.writeFileSync(path.join(sync, 'ready-' + process.pid), '');
        await until(() => fs.existsSync(path.join(sync, 'go')));
        let result;
        try {
          await lockDataDir(dataDir);
          result = 'won';
        } catch (error) {
          result = error.code === 'DATA_DIR_IN_USE' ? 'refused ' + error.pid : 'error ' + error.message;
        }
        fs.writeFileSync(path.join(sync, 'tried-' + process.pid), '');
        if (result === 'won') await until(() => fs.readdirSync(sync).filter((f) => f.startsWith('tried-')).length === ${RACERS});
        console.log(result);`;
      const racers = Array.from(
        { length: RACERS },
        () =>
          new Promise<{ pid: number; out: string }>((resolve, reject) => {
            const child = spawn(
              process.execPath,
              ['--import', 'tsx', '--input-type=module', '-e', script, dataDir, sync],
              {
                cwd: root,
                stdio: ['ignore', 'pipe', 'inherit'],
                timeout: 40_000,
              },
            );
            children.add(child);
            let out = '';
            child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
            child.on('error', reject);
            child.on('close', () => resolve({ pid: child.pid!, out: out.trim() }));
          }),
      );
      const deadline = Date.now() + 30_000;
      while (fs.readdirSync(sync).filter((f) => f.startsWith('ready-')).length < RACERS) {
        if (Date.now() > deadline) throw new Error('the racers did not start within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      fs.writeFileSync(path.join(sync, 'go'), '');
      const results = await Promise.all(racers);
      const winners = results.filter((r) => r.out === 'won');
      expect(winners, JSON.stringify(results)).toHaveLength(1);
      for (const r of results) if (r !== winners[0]) expect(r.out).toBe(`refused ${winners[0]!.pid}`);
      expect(fs.readdirSync(dataDir)).toEqual([]); // released on exit, nothing left aside
    };
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.on('exit', resolve));
    await Promise.all([race(null), race(`${dead.pid}\n`)]);
  }, 60_000);
});
