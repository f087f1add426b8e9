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
import { rowIdOf } from '../src/lib/global-id.js';
import { databaseUrlFor, testDatabaseUrl } from './helpers/backend.js';
import { gid } from './helpers/factories.js';

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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Matches a global id of `typename` (base64 of "<typename>:<uuid>"), as the API prints ids. */
const globalIdOf = (typename: string) => ({
  asymmetricMatch: (value: unknown) => typeof value === 'string' && rowIdOf(typename, value) !== null,
  toAsymmetricMatcher: () => `a ${typename} global id`,
});

/** An API key as --json prints it: the fields of the API's ApiKey type, never a secret. */
const apiKeyShape = ({ name, role, mode }: { name: string; role: string; mode: 'test' | 'live' }) => ({
  id: globalIdOf('ApiKey'),
  name,
  role,
  mode: mode.toUpperCase(),
  accessKeyId: expect.stringMatching(new RegExp(`^rgk_${mode}_`)),
  secretHint: expect.stringMatching(new RegExp(`^rg_${mode}_.+…$`)),
  createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
  lastUsedAt: null,
  revokedAt: null,
});

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
      'refgraph key create --workspace ID --mode TEST|LIVE --role ADMIN|READ_ONLY --name NAME [--json]',
      'refgraph key list --workspace ID [--mode TEST|LIVE] [--include-revoked] [--json]',
      'refgraph key revoke KEY_ID [--workspace ID] [--json]',
      'refgraph seed --demo [--json]',
      'refgraph import partners FILE.csv --workspace ID --mode TEST|LIVE [--program ID]',
    ]) {
      expect(run.stdout).toContain(line);
    }
    // Who the commands act as, said where they are listed.
    expect(run.stdout).toContain('act as the operator of the installation');
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

  it('bad key arguments: exit 2 with a message and the usage, before touching the database', async () => {
    const ws = gid('Workspace', '0190a3c4-1111-7222-8333-444455556666');
    const key = gid('ApiKey', '0190a3c4-1111-7222-8333-444455556666');
    const create = (...flags: string[]) => ['key', 'create', ...flags];
    const cases: Array<[string[], string]> = [
      [['key'], 'refgraph key: expected "create", "list" or "revoke" after "key", got nothing'],
      [['key', 'rotate'], 'expected "create", "list" or "revoke" after "key", got "rotate"'],
      [create('--mode', 'TEST', '--role', 'ADMIN', '--name', 'x'), 'refgraph key create: --workspace ID is required'],
      [
        create('--workspace', 'nope', '--mode', 'TEST', '--role', 'ADMIN', '--name', 'x'),
        '--workspace "nope" is not a workspace id',
      ],
      [
        create('--workspace', key, '--mode', 'TEST', '--role', 'ADMIN', '--name', 'x'),
        `--workspace "${key}" is not a workspace id`,
      ],
      [create('--workspace', ws, '--role', 'ADMIN', '--name', 'x'), '--mode TEST|LIVE is required'],
      [
        create('--workspace', ws, '--mode', 'PROD', '--role', 'ADMIN', '--name', 'x'),
        '--mode must be TEST or LIVE, got "PROD"',
      ],
      [create('--workspace', ws, '--mode', 'TEST', '--name', 'x'), '--role ADMIN|READ_ONLY is required'],
      [
        create('--workspace', ws, '--mode', 'TEST', '--role', 'OWNER', '--name', 'x'),
        '--role must be ADMIN or READ_ONLY, got "OWNER"',
      ],
      [
        create('--workspace', ws, '--mode', 'TEST', '--role', 'PARTNER', '--name', 'x'),
        '--role: PARTNER credentials are partner tokens: use createPartnerToken.',
      ],
      [create('--workspace', ws, '--mode', 'TEST', '--role', 'ADMIN'), '--name NAME is required'],
      [
        create('--workspace', ws, '--mode', 'TEST', '--role', 'ADMIN', '--name', '  '),
        '--name: A key name must be 1 to 100 characters long.',
      ],
      [
        create('--workspace', ws, '--mode', 'TEST', '--role', 'ADMIN', '--name', 'x'.repeat(101)),
        '--name: A key name must be 1 to 100 characters long.',
      ],
      [create('--workspace', ws, '--mode', 'TEST', '--role', 'ADMIN', '--name', 'x', '--secret', 's'), "'--secret'"],
      [['key', 'list'], 'refgraph key list: --workspace ID is required'],
      [['key', 'list', '--workspace', ws, '--mode', 'both'], '--mode must be TEST or LIVE, got "both"'],
      [['key', 'list', '--workspace', ws, 'extra'], "Unexpected argument 'extra'"],
      [['key', 'revoke'], 'refgraph key revoke: KEY_ID is required'],
      [['key', 'revoke', key, key], 'expected one KEY_ID, got 2'],
      [
        ['key', 'revoke', '0190a3c4-1111-7222-8333-444455556666'],
        "is a plain UUID: give the key's global id, as `refgraph key list` prints it.",
      ],
      [['key', 'revoke', ws], `"${ws}" is not an API key id`],
      [['key', 'revoke', key, '--workspace', 'nope'], '--workspace "nope" is not a workspace id'],
    ];
    const runs = await Promise.all(cases.map(([args]) => refgraph(args, target)));
    runs.forEach((run, i) => {
      const [args, message] = cases[i]!;
      expect(run.code, `${args.join(' ')}\n${show(run)}`).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr, args.join(' ')).toContain(message);
      expect(run.stderr).toMatch(/\nUsage: refgraph key /);
    });
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
    json?: {
      workspace: { id: string; name: string };
      keys: { test: string; live: string };
      apiKeys: { test: { id: string }; live: { id: string } };
    };
    humanId?: string;
  } = {};
  /** Keys made by `key create`, by global id. */
  const cliKeys: Record<string, { id: string; secret: string }> = {};
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
    const out = JSON.parse(run.stdout) as Record<string, Record<string, unknown>>;
    expect(Object.keys(out).sort()).toEqual(['apiKeys', 'keys', 'workspace']);
    expect(Object.keys(out['workspace']!).sort()).toEqual(['id', 'name']);
    expect(Object.keys(out['keys']!).sort()).toEqual(['live', 'test']);
    expect(out['workspace']).toEqual({ id: globalIdOf('Workspace'), name: 'Acme Inc' });
    expect(out['keys']!['test']).toMatch(/^rg_test_[A-Za-z0-9_-]{20,}$/);
    expect(out['keys']!['live']).toMatch(/^rg_live_[A-Za-z0-9_-]{20,}$/);
    // The keys' ids and public facts, as the API's ApiKey type has them; no secret among them.
    for (const mode of ['test', 'live'] as const) {
      expect(out['apiKeys']![mode]).toEqual(apiKeyShape({ name: 'Default admin key', role: 'ADMIN', mode }));
    }
    expect(JSON.stringify(out['apiKeys'])).not.toContain(out['keys']!['test'] as string);
    expect(JSON.stringify(out['apiKeys'])).not.toContain(out['keys']!['live'] as string);
    created.json = out as never;
  });

  it('workspace create without --json explains what it printed', async () => {
    const run = await refgraph(['workspace', 'create', '--name', 'Human Co'], target);
    expect(run.code, show(run)).toBe(0);
    expect(run.stderr).toBe('');
    const id = /^Workspace "Human Co" created: (\S+)$/m.exec(run.stdout)?.[1];
    expect(rowIdOf('Workspace', id), run.stdout).toMatch(UUID);
    expect(run.stdout).toMatch(/^ {2}test: rg_test_\S+$/m);
    expect(run.stdout).toMatch(/^ {2}live: rg_live_\S+$/m);
    expect(run.stdout).toContain('shown once');
    expect(run.stdout).toContain('Authorization: Bearer <key>');
    // The keys' global ids, for `refgraph key list|revoke` and the API.
    const keyIds = [...run.stdout.matchAll(/^ {2}(test|live): (\S+)$/gm)].filter((m) => !m[2]!.startsWith('rg_'));
    expect(keyIds.map((m) => m[1])).toEqual(['test', 'live']);
    for (const m of keyIds) expect(rowIdOf('ApiKey', m[2]!)).toMatch(UUID);
    created.humanId = id;
  });

  it('key create: a key of the chosen mode and role, its secret shown once; --json like the API', {
    timeout: 150_000,
  }, async () => {
    const workspace = created.json!.workspace.id;
    const json = await refgraph(
      [
        'key',
        'create',
        '--workspace',
        workspace,
        '--mode',
        'live',
        '--role',
        'read_only',
        '--name',
        ' Reporting ',
        '--json',
      ],
      target,
    );
    expect(json.code, show(json)).toBe(0);
    expect(json.stderr).toBe('');
    expect(json.stdout.split('\n')).toHaveLength(2);
    const out = JSON.parse(json.stdout);
    expect(out).toEqual({
      workspace: { id: workspace, name: 'Acme Inc' },
      apiKey: apiKeyShape({ name: 'Reporting', role: 'READ_ONLY', mode: 'live' }),
      secret: expect.stringMatching(/^rg_live_[A-Za-z0-9_-]{20,}$/),
    });
    expect(out.secret.startsWith(out.apiKey.secretHint.replace('…', ''))).toBe(true);
    cliKeys.reporting = { id: out.apiKey.id, secret: out.secret };

    // For people; the plain UUID of a workspace (as older versions printed it) is accepted too.
    const human = await refgraph(
      [
        'key',
        'create',
        '--workspace',
        rowIdOf('Workspace', workspace)!,
        '--mode',
        'TEST',
        '--role',
        'ADMIN',
        '--name',
        'CI bot',
      ],
      target,
    );
    expect(human.code, show(human)).toBe(0);
    expect(human.stderr).toBe('');
    const id = /^API key "CI bot" created: (\S+)$/m.exec(human.stdout)?.[1];
    expect(rowIdOf('ApiKey', id), human.stdout).toMatch(UUID);
    expect(human.stdout).toContain(`  workspace:     ${workspace} ("Acme Inc")`);
    expect(human.stdout).toContain('  mode, role:    TEST, ADMIN');
    expect(human.stdout).toMatch(/^ {2}access key id: rgk_test_\S+$/m);
    const secret = /^ {2}secret key: {4}(rg_test_\S+)$/m.exec(human.stdout)?.[1];
    expect(secret, human.stdout).toBeDefined();
    expect(human.stdout).toContain('shown once');
    cliKeys.bot = { id: id!, secret: secret! };

    // A READ_ONLY key of the other workspace, used below to show that the keys printed work.
    const dashboard = await refgraph(
      [
        'key',
        'create',
        '--workspace',
        created.humanId!,
        '--mode',
        'TEST',
        '--role',
        'READ_ONLY',
        '--name',
        'Dashboard',
        '--json',
      ],
      target,
    );
    expect(dashboard.code, show(dashboard)).toBe(0);
    const d = JSON.parse(dashboard.stdout);
    cliKeys.dashboard = { id: d.apiKey.id, secret: d.secret };

    // An unknown workspace: exit 1, nothing created.
    const unknown = gid('Workspace', '0190a3c4-1111-7222-8333-444455556666');
    const missing = await refgraph(
      ['key', 'create', '--workspace', unknown, '--mode', 'TEST', '--role', 'ADMIN', '--name', 'x'],
      target,
    );
    expect(missing.code, show(missing)).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(
      new RegExp(`^refgraph: no workspace ${unknown.replace(/[+/=]/g, '\\$&')} in .+\\.\n$`),
    );
  });

  it('key list: newest first, both modes unless --mode, revoked ones on request; a table for people', {
    timeout: 150_000,
  }, async () => {
    const workspace = created.json!.workspace.id;
    const json = await refgraph(['key', 'list', '--workspace', workspace, '--json'], target);
    expect(json.code, show(json)).toBe(0);
    expect(json.stderr).toBe('');
    expect(json.stdout.split('\n')).toHaveLength(2);
    const out = JSON.parse(json.stdout);
    expect(out.workspace).toEqual({ id: workspace, name: 'Acme Inc' });
    expect(out.apiKeys.map((k: { name: string; mode: string }) => `${k.name}/${k.mode}`)).toEqual([
      'CI bot/TEST',
      'Reporting/LIVE',
      'Default admin key/LIVE',
      'Default admin key/TEST',
    ]);
    for (const k of out.apiKeys)
      expect(k).toEqual(apiKeyShape({ name: k.name, role: k.role, mode: k.mode.toLowerCase() }));
    expect(out.apiKeys.map((k: { id: string }) => k.id)).toEqual([
      cliKeys.bot!.id,
      cliKeys.reporting!.id,
      created.json!.apiKeys.live.id,
      created.json!.apiKeys.test.id,
    ]);
    expect(json.stdout).not.toContain(cliKeys.bot!.secret);
    expect(json.stdout).not.toContain(created.json!.keys.test);

    const live = await refgraph(['key', 'list', '--workspace', workspace, '--mode', 'LIVE', '--json'], target);
    expect(JSON.parse(live.stdout).apiKeys.map((k: { name: string }) => k.name)).toEqual([
      'Reporting',
      'Default admin key',
    ]);

    const table = await refgraph(['key', 'list', '--workspace', workspace, '--mode', 'TEST'], target);
    expect(table.code, show(table)).toBe(0);
    expect(table.stderr).toBe('');
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`API keys of workspace "Acme Inc" (${workspace}), TEST, newest first (times in UTC):`);
    expect(lines[1]).toBe('');
    expect(lines[2]).toMatch(/^ID {2,}MODE {2}ROLE {3}NAME {2,}SECRET {2,}CREATED {2,}LAST USED {2}REVOKED$/);
    expect(lines.slice(3).map((l) => l.split(/ {2,}/).slice(0, 4))).toEqual([
      [cliKeys.bot!.id, 'TEST', 'ADMIN', 'CI bot'],
      [created.json!.apiKeys.test.id, 'TEST', 'ADMIN', 'Default admin key'],
    ]);
    // Columns line up: every row's MODE starts where the header's does.
    const at = lines[2]!.indexOf('MODE');
    for (const line of lines.slice(3)) expect(line.slice(at, at + 4)).toBe('TEST');
    expect(lines[3]).toMatch(/ {2}rg_test_\S+… {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}never {6}-$/);

    const other = await refgraph(['key', 'list', '--workspace', created.humanId!, '--json'], target);
    expect(JSON.parse(other.stdout).apiKeys.map((k: { name: string }) => k.name)).toEqual([
      'Dashboard',
      'Default admin key',
      'Default admin key',
    ]);
  });

  it('key revoke: by global id; refused for another workspace’s key when --workspace is given; twice is harmless', {
    timeout: 150_000,
  }, async () => {
    const acme = created.json!.workspace.id;
    const human = created.humanId!;
    // --workspace names the workspace the operator means: Acme's key is not Human Co's. Exit 1, nothing revoked.
    const refused = await refgraph(['key', 'revoke', cliKeys.bot!.id, '--workspace', human, '--json'], target);
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toBe(
      `refgraph: no API key ${cliKeys.bot!.id} in workspace ${human}; nothing was revoked.\n`,
    );

    const unknown = gid('ApiKey', '0190a3c4-1111-7222-8333-444455556666');
    const missing = await refgraph(['key', 'revoke', unknown], target);
    expect(missing.code, show(missing)).toBe(1);
    expect(missing.stderr).toMatch(/^refgraph: no API key \S+ in .+; nothing was revoked\.\n$/);

    const json = await refgraph(['key', 'revoke', cliKeys.bot!.id, '--workspace', acme, '--json'], target);
    expect(json.code, show(json)).toBe(0);
    expect(json.stderr).toBe('');
    const out = JSON.parse(json.stdout);
    expect(out).toEqual({
      workspace: { id: acme, name: 'Acme Inc' },
      apiKey: {
        ...apiKeyShape({ name: 'CI bot', role: 'ADMIN', mode: 'test' }),
        id: cliKeys.bot!.id,
        revokedAt: expect.any(String),
      },
    });

    // Without --workspace: whichever workspace the key is in (the operator reaches them all).
    const people = await refgraph(['key', 'revoke', cliKeys.reporting!.id], target);
    expect(people.code, show(people)).toBe(0);
    expect(people.stdout).toContain(
      `API key "Reporting" (LIVE, READ_ONLY) of workspace "Acme Inc" revoked: ${cliKeys.reporting!.id}`,
    );
    const again = await refgraph(['key', 'revoke', cliKeys.reporting!.id], target);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toMatch(
      /^API key "Reporting" \(LIVE, READ_ONLY\) of workspace "Acme Inc" was already revoked at .+ UTC; nothing changed\.\n$/,
    );

    const listed = await refgraph(['key', 'list', '--workspace', acme, '--include-revoked', '--json'], target);
    const byName = Object.fromEntries(
      JSON.parse(listed.stdout).apiKeys.map((k: { name: string; revokedAt: string | null }) => [
        `${k.name}/${k.revokedAt !== null}`,
        true,
      ]),
    );
    expect(Object.keys(byName).sort()).toEqual(['CI bot/true', 'Default admin key/false', 'Reporting/true']);
    const unrevoked = await refgraph(['key', 'list', '--workspace', acme, '--json'], target);
    expect(JSON.parse(unrevoked.stdout).apiKeys).toHaveLength(2);
  });

  it('seed --demo, as JSON and for people', async () => {
    const json = await refgraph(['seed', '--demo', '--json'], target);
    expect(json.code, show(json)).toBe(0);
    expect(json.stdout.split('\n')).toHaveLength(2);
    demo = JSON.parse(json.stdout);
    expect(demo).toEqual({
      workspace: { id: globalIdOf('Workspace'), name: expect.stringMatching(/^Demo /) },
      keys: { test: expect.stringMatching(/^rg_test_/), live: expect.stringMatching(/^rg_live_/) },
      member: {
        email: expect.stringMatching(/^demo(\+\w+)?@example\.com$/),
        password: expect.stringMatching(/^demo-/),
      },
      counts: expect.objectContaining({ programs: expect.any(Number), partners: expect.any(Number) }),
    });
    for (const key of ['programs', 'rewardRules', 'partners', 'links', 'clicks', 'conversions', 'rewards', 'payouts']) {
      expect(demo!.counts[key], key).toBeGreaterThan(0);
    }

    const human = await refgraph(['seed', '--demo'], target);
    expect(human.code, show(human)).toBe(0);
    humanDemoId = /^Demo workspace ".+" created: (\S+)$/m.exec(human.stdout)?.[1];
    expect(rowIdOf('Workspace', humanDemoId), human.stdout).toMatch(UUID);
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
      const acmeId = rowIdOf('Workspace', created.json!.workspace.id)!;
      expect(workspaces).toEqual(
        expect.arrayContaining([
          { id: acmeId, name: 'Acme Inc' },
          { id: rowIdOf('Workspace', created.humanId!), name: 'Human Co' },
          { id: rowIdOf('Workspace', demo!.workspace.id), name: demo!.workspace.name },
          { id: rowIdOf('Workspace', humanDemoId!), name: expect.stringMatching(/^Demo /) },
        ]),
      );
      expect(workspaces).toHaveLength(4); // nothing from the refused commands

      // Every column of the key rows: no secret in clear, SHA-256 hashes only.
      const { test, live } = created.json!.keys;
      const secrets = [test, live, cliKeys.reporting!.secret, cliKeys.bot!.secret];
      const keyRows = await db.query('select * from "ApiKey" where "workspaceId" = $1::uuid', [acmeId]);
      expect(keyRows).toHaveLength(4); // nothing from the refused commands
      const stored = JSON.stringify(keyRows);
      for (const secret of secrets) expect(stored).not.toContain(secret);
      const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
      expect(keyRows.map((r) => r['secretHash']).sort()).toEqual(secrets.map(sha256).sort());
      expect(keyRows.map((r) => `${r['mode']}/${r['role']}/${r['revokedAt'] !== null}`).sort()).toEqual([
        'LIVE/ADMIN/false',
        'LIVE/READ_ONLY/true',
        'TEST/ADMIN/false',
        'TEST/ADMIN/true',
      ]);

      // key create and key revoke appended their events like the API (workspace create appends none);
      // the refused and the repeated revocations appended nothing.
      const events = await db.query<{ mode: string; type: string; apiKeyId: string; name: string }>(
        `select mode::text, type, payload->>'apiKeyId' as "apiKeyId", payload->>'name' as name
           from "Event" where "workspaceId" = $1::uuid order by type, mode`,
        [acmeId],
      );
      expect(events).toEqual([
        { mode: 'LIVE', type: 'api_key.created', apiKeyId: cliKeys.reporting!.id, name: 'Reporting' },
        { mode: 'TEST', type: 'api_key.created', apiKeyId: cliKeys.bot!.id, name: 'CI bot' },
        { mode: 'LIVE', type: 'api_key.revoked', apiKeyId: cliKeys.reporting!.id, name: 'Reporting' },
        { mode: 'TEST', type: 'api_key.revoked', apiKeyId: cliKeys.bot!.id, name: 'CI bot' },
      ]);

      const demoCounts = await db.query<{ programs: number; partners: number }>(
        `select (select count(*)::int from "Program" where "workspaceId" = $1::uuid) as programs,
                (select count(*)::int from "Partner" where "workspaceId" = $1::uuid) as partners`,
        [rowIdOf('Workspace', demo!.workspace.id)],
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
        // A key from `key create` works in its workspace, mode and role; revoked ones are refused.
        expect(await viewer(cliKeys.dashboard!.secret)).toEqual({
          data: { viewer: { workspace: { id: created.humanId, name: 'Human Co' }, mode: 'TEST', role: 'READ_ONLY' } },
        });
        for (const revoked of [cliKeys.bot!.secret, cliKeys.reporting!.secret]) {
          expect(await viewer(revoked)).toMatchObject({
            errors: [{ message: 'This secret key has been revoked.', extensions: { code: 'UNAUTHENTICATED' } }],
          });
        }
      } finally {
        await app.stop();
      }
    } finally {
      await db.close();
    }
  });
});
