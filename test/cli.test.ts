// The `refgraph` command end to end: the real CLI in a child process (from the sources, through tsx,
// so no stale build is involved), on a database of its own: a fresh PostgreSQL database that
// `refgraph migrate` creates (TEST_DATABASE_URL set), else a temporary REFGRAPH_DATA_DIR (PGlite).
// The commands run one after another (the embedded database admits one process at a time); the
// database is opened in this process only at the end, to check what they stored.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db.js';
import { databaseUrlFor, testDatabaseUrl } from './helpers/backend.js';

const root = path.resolve(import.meta.dirname, '..');
const migrationsDir = path.join(root, 'prisma', 'migrations');
/** The migrations of the checkout (read when needed: a migration may be added while the suite runs). */
const migrationNames = () =>
  fs
    .readdirSync(migrationsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(migrationsDir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The variables loadConfig reads (from its source, so this list cannot fall behind), NODE_ENV aside. */
const REFGRAPH_VARS = [
  ...fs.readFileSync(path.join(root, 'src', 'config.ts'), 'utf8').matchAll(/\(env, '([A-Z0-9_]+)'/g),
]
  .map((m) => m[1]!)
  .filter((name) => name !== 'NODE_ENV');

/** `refgraph …args` with `env` on top of a clean environment; at most 60 s. */
function refgraph(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  for (const name of REFGRAPH_VARS) delete base[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: root,
      env: { ...base, ...env },
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

/** A port nobody listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const show = (run: Run) => `exit ${run.code}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`;

const pgBase = testDatabaseUrl();
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-cli-test-'));
const databaseName = `refgraph_cli_${randomBytes(5).toString('hex')}`;
const databaseUrl = pgBase ? databaseUrlFor(pgBase, databaseName) : undefined;
/** Where the commands work: REFGRAPH_DATA_DIR always (so nothing lands in the repository), DATABASE_URL on PostgreSQL. */
const target: Record<string, string> = {
  REFGRAPH_DATA_DIR: dataDir,
  ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
};

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgBase! });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  if (pgBase) await adminQuery(`drop database if exists "${databaseName}" with (force)`);
});
afterAll(async () => {
  if (pgBase) await adminQuery(`drop database if exists "${databaseName}" with (force)`);
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('refgraph (no database needed)', { timeout: 60_000 }, () => {
  it('help: usage on stdout, exit 0', async () => {
    const run = await refgraph(['help']);
    expect(run.code, show(run)).toBe(0);
    expect(run.stderr).toBe('');
    for (const line of [
      'refgraph serve',
      'refgraph migrate',
      'refgraph workspace create --name NAME [--json]',
      'refgraph seed --demo [--json]',
    ]) {
      expect(run.stdout).toContain(line);
    }
    // Every variable the configuration reads is documented.
    expect(REFGRAPH_VARS.length).toBeGreaterThan(8);
    for (const variable of REFGRAPH_VARS) expect(run.stdout, variable).toContain(variable);
  });

  it('an unknown command: exit 2, the usage on stderr', async () => {
    const run = await refgraph(['frobnicate']);
    expect(run.code, show(run)).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('unknown command "frobnicate"');
    expect(run.stderr).toContain('Usage:');
  });

  it('bad arguments: exit 2 with a message and the usage, before touching the database', async () => {
    const [noName, emptyName, noValue, unknownFlag, badSub, seedNoDemo, serveExtra] = await Promise.all([
      refgraph(['workspace', 'create'], target),
      refgraph(['workspace', 'create', '--name', '   '], target),
      refgraph(['workspace', 'create', '--name'], target),
      refgraph(['workspace', 'create', '--name', 'X', '--colour', 'red'], target),
      refgraph(['workspace', 'delete'], target),
      refgraph(['seed'], target),
      refgraph(['serve', 'now'], target),
    ]);
    for (const run of [noName, emptyName, noValue, unknownFlag, badSub, seedNoDemo, serveExtra]) {
      expect(run.code, show(run)).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/\nUsage: refgraph /);
    }
    expect(noName.stderr).toContain('refgraph workspace create: --name NAME is required');
    expect(emptyName.stderr).toContain('--name NAME is required');
    expect(noValue.stderr).toContain("'--name");
    expect(unknownFlag.stderr).toContain("'--colour'");
    expect(badSub.stderr).toContain('expected "create" after "workspace", got "delete"');
    expect(seedNoDemo.stderr).toContain('only --demo is supported');
    expect(serveExtra.stderr).toContain("Unexpected argument 'now'");
    expect(fs.readdirSync(dataDir)).toEqual([]); // no embedded database was even created
  });

  it('a bad environment variable: exit 78, naming the variable', async () => {
    const [port, databaseUrl, logLevel] = await Promise.all([
      refgraph(['serve'], { ...target, PORT: 'abc' }),
      refgraph(['migrate'], { ...target, DATABASE_URL: 'mysql://localhost/x' }),
      refgraph(['workspace', 'create', '--name', 'X'], { ...target, LOG_LEVEL: 'chatty' }),
    ]);
    for (const run of [port, databaseUrl, logLevel]) {
      expect(run.code, show(run)).toBe(78);
      expect(run.stdout).toBe('');
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(port.stderr).toBe('refgraph: Invalid configuration: PORT must be an integer from 0 to 65535, got "abc".\n');
    expect(databaseUrl.stderr).toContain('DATABASE_URL');
    expect(logLevel.stderr).toContain('LOG_LEVEL');
  });

  it('an unreachable PostgreSQL server: exit 1, one line naming host and port', async () => {
    const port = await closedPort();
    const url = `postgresql://postgres@127.0.0.1:${port}/refgraph`;
    const [migrating, notMigrating] = await Promise.all([
      refgraph(['migrate'], { DATABASE_URL: url, REFGRAPH_DATA_DIR: dataDir }),
      refgraph(['workspace', 'create', '--name', 'X'], {
        DATABASE_URL: url,
        REFGRAPH_DATA_DIR: dataDir,
        MIGRATE_ON_START: 'false',
      }),
    ]);
    for (const run of [migrating, notMigrating]) {
      expect(run.code, show(run)).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain(`127.0.0.1:${port}`);
      expect(run.stderr).toContain('connection refused');
    }
  });
});

// Each command is a cold start of Node, tsx and Prisma: allow for a loaded machine.
describe(`refgraph on ${pgBase ? 'PostgreSQL (a fresh database)' : 'the embedded PGlite database'}`, {
  timeout: 60_000,
}, () => {
  const created: {
    json?: { workspace: { id: string; name: string }; keys: { test: string; live: string } };
    humanId?: string;
  } = {};
  let demo:
    | { workspace: { id: string; name: string }; keys: { test: string; live: string }; counts: Record<string, number> }
    | undefined;
  let humanDemoId: string | undefined;

  it('migrate applies the migrations (creating the database), then has nothing to do', async () => {
    const first = await refgraph(['migrate'], target);
    expect(first.code, show(first)).toBe(0);
    const names = migrationNames();
    expect(first.stdout).toMatch(
      new RegExp(`^Applied ${names.length} migration\\(s\\) to .+: ${names.join(', ')}\\.\\n$`),
    );
    if (pgBase) {
      expect(first.stderr).toContain(`creating database "${databaseName}"`);
      expect(first.stdout).toContain(databaseName);
    } else {
      expect(first.stdout).toContain(path.join(dataDir, 'pgdata'));
    }

    const second = await refgraph(['migrate'], target);
    expect(second.code, show(second)).toBe(0);
    expect(second.stdout).toMatch(/^No pending migrations: .+ is up to date\.\n$/);
    expect(second.stderr).toBe('');
  });

  it('workspace create --json prints exactly one line of JSON', async () => {
    const run = await refgraph(['workspace', 'create', '--name', ' Acme Inc ', '--json'], target);
    expect(run.code, show(run)).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout.endsWith('\n')).toBe(true);
    expect(run.stdout.split('\n')).toHaveLength(2); // one line and the final newline
    const out = JSON.parse(run.stdout) as Record<string, Record<string, string>>;
    expect(Object.keys(out).sort()).toEqual(['keys', 'workspace']);
    expect(Object.keys(out['workspace']!).sort()).toEqual(['id', 'name']);
    expect(Object.keys(out['keys']!).sort()).toEqual(['live', 'test']);
    expect(out['workspace']).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), name: 'Acme Inc' });
    expect(out['keys']!['test']).toMatch(/^rg_test_[A-Za-z0-9_-]{20,}$/);
    expect(out['keys']!['live']).toMatch(/^rg_live_[A-Za-z0-9_-]{20,}$/);
    created.json = out as never;
  });

  it('workspace create without --json explains what it printed', async () => {
    const run = await refgraph(['workspace', 'create', '--name', 'Human Co'], target);
    expect(run.code, show(run)).toBe(0);
    expect(run.stderr).toBe('');
    const id = /^Workspace "Human Co" created: ([0-9a-f-]{36})$/m.exec(run.stdout)?.[1];
    expect(id, run.stdout).toBeDefined();
    expect(run.stdout).toMatch(/^ {2}test: rg_test_\S+$/m);
    expect(run.stdout).toMatch(/^ {2}live: rg_live_\S+$/m);
    expect(run.stdout).toContain('shown once');
    expect(run.stdout).toContain('Authorization: Bearer <key>');
    created.humanId = id;
  });

  it('seed --demo, as JSON and for people', async () => {
    const json = await refgraph(['seed', '--demo', '--json'], target);
    expect(json.code, show(json)).toBe(0);
    expect(json.stdout.split('\n')).toHaveLength(2);
    demo = JSON.parse(json.stdout);
    expect(demo).toEqual({
      workspace: { id: expect.any(String), name: expect.stringMatching(/^Demo /) },
      keys: { test: expect.stringMatching(/^rg_test_/), live: expect.stringMatching(/^rg_live_/) },
      counts: expect.objectContaining({ programs: expect.any(Number), partners: expect.any(Number) }),
    });
    for (const key of ['programs', 'rewardRules', 'partners', 'links', 'clicks', 'conversions', 'rewards', 'payouts']) {
      expect(demo!.counts[key], key).toBeGreaterThan(0);
    }

    const human = await refgraph(['seed', '--demo'], target);
    expect(human.code, show(human)).toBe(0);
    humanDemoId = /^Demo workspace ".+" created: ([0-9a-f-]{36})$/m.exec(human.stdout)?.[1];
    expect(humanDemoId, human.stdout).toBeDefined();
    expect(human.stdout).toMatch(/\d+ programs, \d+ reward rules, \d+ partners, \d+ links/);
    expect(human.stdout).toMatch(/^ {2}test: rg_test_\S+$/m);
  });

  it.skipIf(pgBase)('refuses the embedded database while another process has it open', async () => {
    // This test process stands in for a running server.
    fs.writeFileSync(path.join(dataDir, 'pgdata.lock'), `${process.pid}\n`);
    try {
      const run = await refgraph(['workspace', 'create', '--name', 'Blocked'], target);
      expect(run.code, show(run)).toBe(1);
      expect(run.stderr).toBe(
        `refgraph: the embedded database in ${dataDir} is in use by process ${process.pid}; stop it first, or set ` +
          `DATABASE_URL to use PostgreSQL. (If no such process is running, delete ${path.join(dataDir, 'pgdata.lock')}.)\n`,
      );
    } finally {
      fs.rmSync(path.join(dataDir, 'pgdata.lock'));
    }
  });

  it('stored what it printed: migrations once, keys as hashes only, keys that work', async () => {
    expect(created.json && created.humanId && demo && humanDemoId).toBeTruthy();
    const db = await openDatabase({ databaseUrl, dataDir, migrate: false });
    try {
      const history = await db.query<{ migration_name: string }>(
        'select migration_name from _prisma_migrations where finished_at is not null and rolled_back_at is null order by 1',
      );
      expect(history.map((r) => r.migration_name)).toEqual(migrationNames());

      const workspaces = await db.query<{ id: string; name: string }>(
        'select id::text, name from "Workspace" order by name',
      );
      expect(workspaces).toEqual(
        expect.arrayContaining([
          { id: created.json!.workspace.id, name: 'Acme Inc' },
          { id: created.humanId, name: 'Human Co' },
          { id: demo!.workspace.id, name: demo!.workspace.name },
          { id: humanDemoId, name: expect.stringMatching(/^Demo /) },
        ]),
      );
      expect(workspaces).toHaveLength(4); // nothing from the refused commands

      // Every column of the key rows: no secret in clear, SHA-256 hashes only.
      const { test, live } = created.json!.keys;
      const keyRows = await db.query('select * from "ApiKey" where "workspaceId" = $1::uuid', [
        created.json!.workspace.id,
      ]);
      expect(keyRows).toHaveLength(2);
      const stored = JSON.stringify(keyRows);
      expect(stored).not.toContain(test);
      expect(stored).not.toContain(live);
      const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
      expect(keyRows.map((r) => r['secretHash']).sort()).toEqual([sha256(test), sha256(live)].sort());
      expect(keyRows.map((r) => `${r['mode']}/${r['role']}`).sort()).toEqual(['LIVE/ADMIN', 'TEST/ADMIN']);

      const demoCounts = await db.query<{ programs: number; partners: number }>(
        `select (select count(*)::int from "Program" where "workspaceId" = $1::uuid) as programs,
                (select count(*)::int from "Partner" where "workspaceId" = $1::uuid) as partners`,
        [demo!.workspace.id],
      );
      expect(demoCounts[0]).toEqual({ programs: demo!.counts['programs'], partners: demo!.counts['partners'] });

      // The printed keys authenticate, each in its mode, as ADMIN of its workspace.
      const app = await buildApp({ config: loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' }), db });
      const { url } = await app.start();
      try {
        const viewer = async (key: string) => {
          const res = await fetch(`${url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
            body: JSON.stringify({ query: '{ viewer { workspace { id name } mode role } }' }),
          });
          return res.json();
        };
        const workspace = { id: expect.any(String), name: 'Acme Inc' };
        expect(await viewer(test)).toEqual({ data: { viewer: { workspace, mode: 'TEST', role: 'ADMIN' } } });
        expect(await viewer(live)).toEqual({ data: { viewer: { workspace, mode: 'LIVE', role: 'ADMIN' } } });
        expect(await viewer(demo!.keys.test)).toMatchObject({ data: { viewer: { mode: 'TEST', role: 'ADMIN' } } });
      } finally {
        await app.stop();
      }
    } finally {
      await db.close();
    }
  });
});
