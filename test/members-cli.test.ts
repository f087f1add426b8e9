import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowIdOf } from '../src/lib/global-id.js';
import { databaseUrlFor, testDatabaseUrl } from './helpers/backend.js';

// `refgraph member create|list` (the contract's "Command line, added in this round").

const root = path.resolve(import.meta.dirname, '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const REFGRAPH_VARS = [
  ...fs.readFileSync(path.join(root, 'src', 'config.ts'), 'utf8').matchAll(/\(env, '([A-Z0-9_]+)'/g),
].map((m) => m[1]!);

function refgraph(args: string[], env: Record<string, string>): Promise<Run> {
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

const show = (run: Run) => `exit ${run.code}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`;

const pgBase = testDatabaseUrl();
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-members-cli-'));
const databaseName = `refgraph_members_cli_${randomBytes(5).toString('hex')}`;
const databaseUrl = pgBase ? databaseUrlFor(pgBase, databaseName) : undefined;
const target: Record<string, string> = {
  REFGRAPH_DATA_DIR: dataDir,
  PUBLIC_URL: 'https://ref.example.com',
  ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
};

beforeAll(async () => {
  // `migrate` creates the PostgreSQL database (the embedded one is made on first open).
  const run = await refgraph(['migrate'], target);
  expect(run.code, show(run)).toBe(0);
}, 180_000);

afterAll(async () => {
  fs.rmSync(dataDir, { recursive: true, force: true });
  if (pgBase) {
    const client = new pg.Client({ connectionString: pgBase });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
    await client.end();
  }
});

describe('refgraph member', { timeout: 180_000 }, () => {
  it('create --json prints exactly the member and the invitation link; list shows it INVITED', async () => {
    const created = await refgraph(['workspace', 'create', '--name', 'Team', '--json'], target);
    expect(created.code, show(created)).toBe(0);
    const workspace = JSON.parse(created.stdout).workspace.id as string;

    const run = await refgraph(
      ['member', 'create', '--workspace', workspace, '--email', 'Owner@Example.com', '--role', 'admin', '--json'],
      target,
    );
    expect(run.code, show(run)).toBe(0);
    expect(run.stdout.split('\n')).toHaveLength(2);
    const out = JSON.parse(run.stdout);
    expect(Object.keys(out)).toEqual(['member', 'invitationUrl']);
    expect(Object.keys(out.member)).toEqual(['id', 'email', 'role']);
    expect(out.member).toEqual({ id: expect.any(String), email: 'owner@example.com', role: 'ADMIN' });
    expect(rowIdOf('Member', out.member.id)).not.toBeNull();
    expect(out.invitationUrl).toMatch(/^https:\/\/ref\.example\.com\/app\/#invitation=rgi_[\w-]{43}$/);

    const human = await refgraph(
      [
        'member',
        'create',
        '--workspace',
        workspace,
        '--email',
        'reader@example.com',
        '--role',
        'READ_ONLY',
        '--name',
        'Rea',
      ],
      target,
    );
    expect(human.code, show(human)).toBe(0);
    expect(human.stdout).toMatch(/^Member reader@example\.com invited: \S+$/m);
    expect(human.stdout).toMatch(/^ {2}https:\/\/ref\.example\.com\/app\/#invitation=rgi_\S+$/m);

    const list = await refgraph(['member', 'list', '--workspace', workspace, '--json'], target);
    expect(list.code, show(list)).toBe(0);
    const listed = JSON.parse(list.stdout);
    expect(
      listed.members.map((m: { email: string; status: string; role: string }) => [m.email, m.role, m.status]),
    ).toEqual([
      ['owner@example.com', 'ADMIN', 'INVITED'],
      ['reader@example.com', 'READ_ONLY', 'INVITED'],
    ]);
    const table = await refgraph(['member', 'list', '--workspace', workspace], target);
    expect(table.stdout).toMatch(/EMAIL\s+NAME\s+ROLE\s+STATUS/);
    expect(table.stdout).toMatch(/reader@example\.com\s+Rea\s+READ_ONLY\s+INVITED/);
  });

  it('refuses a missing or wrong role, a bad email and an unknown workspace', async () => {
    const ws = 'V29ya3NwYWNlOjAxOTAwMDAwLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMA=='; // Workspace:01900000-…
    const [noRole, partner, badEmail, unknown] = await Promise.all([
      refgraph(['member', 'create', '--workspace', ws, '--email', 'a@example.com'], target),
      refgraph(['member', 'create', '--workspace', ws, '--email', 'a@example.com', '--role', 'PARTNER'], target),
      refgraph(['member', 'create', '--workspace', ws, '--email', 'nope', '--role', 'ADMIN'], target),
      refgraph(['member', 'list', '--workspace', ws], target),
    ]);
    expect(noRole.code, show(noRole)).toBe(2);
    expect(noRole.stderr).toContain('--role ADMIN|READ_ONLY is required');
    expect(partner.code).toBe(2);
    expect(partner.stderr).toContain('--role must be ADMIN or READ_ONLY');
    expect(badEmail.code).toBe(2);
    expect(badEmail.stderr).toContain('is not an email address');
    expect(unknown.code, show(unknown)).toBe(1);
    expect(unknown.stderr).toMatch(/no workspace/);
  });
});
