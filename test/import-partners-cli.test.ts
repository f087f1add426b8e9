// `refgraph import partners FILE.csv` end to end: the real CLI in a child process (from the sources,
// through tsx), on a database of its own (a fresh PostgreSQL database when TEST_DATABASE_URL is set,
// else a temporary REFGRAPH_DATA_DIR). The embedded database admits one process at a time: the
// test opens it itself only between commands (to add programs, and at the end to check the rows).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db.js';
import { rowIdOf } from '../src/lib/global-id.js';
import { databaseUrlFor, testDatabaseUrl } from './helpers/backend.js';
import { gid } from './helpers/factories.js';

const root = path.resolve(import.meta.dirname, '..');
const pgBase = testDatabaseUrl();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-import-cli-'));
const dataDir = path.join(dir, 'data');
const databaseName = `refgraph_import_cli_${randomBytes(5).toString('hex')}`;
const databaseUrl = pgBase ? databaseUrlFor(pgBase, databaseName) : undefined;
const target: Record<string, string> = {
  REFGRAPH_DATA_DIR: dataDir,
  ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `refgraph …args` with the test's database; stdin, stdout and stderr are pipes (not terminals). */
function refgraph(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  delete env.REFGRAPH_DATA_DIR;
  Object.assign(env, target, { LOG_LEVEL: 'warn' });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
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

async function withDb<T>(fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase({ databaseUrl, dataDir, migrate: false });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgBase! });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A CSV file in the test's directory. */
function csv(name: string, lines: string[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

let workspaceId = ''; // global id
let tenant = { workspaceId: '', mode: 'TEST' as const };
let program = ''; // global id: --program
let otherProgram = ''; // global id: named in a programId column

beforeAll(async () => {
  if (pgBase) await admin(`drop database if exists "${databaseName}" with (force)`);
  const migrated = await refgraph(['migrate']); // creates the PostgreSQL database
  expect(migrated.code, show(migrated)).toBe(0);
  const created = await refgraph(['workspace', 'create', '--name', 'Importers', '--json']);
  expect(created.code, show(created)).toBe(0);
  workspaceId = (JSON.parse(created.stdout) as { workspace: { id: string } }).workspace.id;
  tenant = { workspaceId: rowIdOf('Workspace', workspaceId)!, mode: 'TEST' };
  await withDb(async (db) => {
    const make = (name: string) =>
      db.prisma.program.create({ data: { ...tenant, name, type: 'AFFILIATE', currency: 'USD' }, select: { id: true } });
    program = gid('Program', (await make('Affiliates')).id);
    otherProgram = gid('Program', (await make('Friends')).id);
  });
}, 120_000);

afterAll(async () => {
  if (pgBase) await admin(`drop database if exists "${databaseName}" with (force)`);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe(`refgraph import partners (${pgBase ? 'PostgreSQL' : 'PGlite'})`, { timeout: 120_000 }, () => {
  it('refuses bad arguments with exit 2 and the usage, before reading anything', async () => {
    const file = csv('unused.csv', ['externalId', 'x']);
    const base = ['import', 'partners', file, '--workspace', workspaceId, '--mode', 'TEST'];
    const cases: Array<[string[], string]> = [
      [['import'], 'expected "partners" after "import", got nothing'],
      [['import', 'links', file], 'expected "partners" after "import", got "links"'],
      [['import', 'partners', '--workspace', workspaceId, '--mode', 'TEST'], 'FILE.csv is required'],
      [['import', 'partners', file, '--mode', 'TEST'], '--workspace ID is required'],
      [['import', 'partners', file, '--workspace', workspaceId], '--mode TEST|LIVE is required'],
      [[...base, '--program', workspaceId], 'is not a program id'],
      [[...base, '--batch-size', '0'], '--batch-size must be a whole number from 1 to 1000, got "0"'],
      [[...base, '--batch-size', '1001'], '--batch-size must be a whole number from 1 to 1000, got "1001"'],
      [[...base, '--failed', file], '--failed must name another file than the one imported'],
    ];
    const runs = await Promise.all(cases.map(([args]) => refgraph(args)));
    runs.forEach((run, i) => {
      const [args, message] = cases[i]!;
      expect(run.code, `${args.join(' ')}\n${show(run)}`).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(message);
      expect(run.stderr).toContain('Usage: refgraph import partners FILE.csv --workspace ID --mode TEST|LIVE');
    });
  });

  it('refuses a missing file, an unknown program and a header it does not know (exit 1, nothing imported)', async () => {
    const missing = await refgraph([
      'import',
      'partners',
      path.join(dir, 'nope.csv'),
      '--workspace',
      workspaceId,
      '--mode',
      'TEST',
    ]);
    expect(missing.code, show(missing)).toBe(1);
    expect(missing.stderr).toContain('cannot read');
    expect(missing.stderr).toContain('nothing was imported');

    const file = csv('typo.csv', ['externalId,nmae', 'a,Ann']);
    const unknownProgram = await refgraph([
      'import',
      'partners',
      file,
      '--workspace',
      workspaceId,
      '--mode',
      'LIVE', // the program is a TEST-mode one
      '--program',
      program,
    ]);
    expect(unknownProgram.code, show(unknownProgram)).toBe(1);
    expect(unknownProgram.stderr).toContain(`no program ${program} in workspace ${workspaceId} (LIVE mode)`);

    const broken = csv('broken.csv', ['externalId', 'ok-1', 'ok-2', '"not closed']);
    const unreadable = await refgraph([
      'import',
      'partners',
      broken,
      '--workspace',
      workspaceId,
      '--mode',
      'TEST',
      '--program',
      program,
    ]);
    expect(unreadable.code, show(unreadable)).toBe(1);
    expect(unreadable.stdout).toContain('The file could not be read on: Quote Not Closed');
    expect(unreadable.stdout).toContain('No row was imported.');

    const typo = await refgraph(['import', 'partners', file, '--workspace', workspaceId, '--mode', 'TEST']);
    expect(typo.code, show(typo)).toBe(1);
    expect(typo.stdout).toContain('Imported 0 of 0 partners');
    expect(typo.stdout).toContain('unknown column "nmae" in the header (line 1)');
  });

  it('streams 2500 rows through three batches: a plain line per batch, then the summary', async () => {
    const lines = ['externalId,name,email,code,metadata'];
    for (let i = 0; i < 2500; i++) {
      lines.push(`bulk-${i},Partner ${i},p${i}@example.com,${i % 5 === 0 ? `BULK-${i}` : ''},"{""row"": ${i}}"`);
    }
    const file = csv('bulk.csv', lines);
    const run = await refgraph([
      'import',
      'partners',
      file,
      '--workspace',
      workspaceId,
      '--mode',
      'TEST',
      '--program',
      program,
    ]);
    expect(run.code, show(run)).toBe(0);
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      'refgraph: batch 1 (lines 2–1001): imported 1000; 1000/1000 rows imported so far',
      'refgraph: batch 2 (lines 1002–2001): imported 1000; 2000/2000 rows imported so far',
      'refgraph: batch 3 (lines 2002–2501): imported 500; 2500/2500 rows imported so far',
    ]);
    expect(run.stdout).toBe(
      `Imported 2500 of 2500 partners from ${file} into workspace "Importers" (${workspaceId}), TEST mode (3 batches).\n`,
    );
  });

  it('reports a failed batch by line, goes on with the next, writes its rows to --failed, exits 1 (--json)', async () => {
    const lines = ['externalId,programId,code,email'];
    for (let i = 0; i < 1200; i++) {
      const email = i === 640 ? 'not an email' : '';
      const code = i === 700 ? 'bulk-0' : ''; // taken by the previous import (ignoring case)
      lines.push(`more-${i},${i % 2 ? otherProgram : ''},${code},${email}`);
    }
    lines.splice(300, 0, ''); // an empty line: skipped, and the lines after it still counted
    const file = csv('more.csv', lines);
    const failed = path.join(dir, 'failed.csv');
    const run = await refgraph([
      'import',
      'partners',
      file,
      ...['--workspace', workspaceId, '--mode', 'TEST', '--program', program],
      ...['--batch-size', '500', '--failed', failed, '--json'],
    ]);
    expect(run.code, show(run)).toBe(1);
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      'refgraph: batch 1 (lines 2–502): imported 500; 500/500 rows imported so far',
      'refgraph: batch 2 (lines 503–1002): failed (2 errors), none of its 500 rows imported; 500/1000 rows imported so far',
      'refgraph: batch 3 (lines 1003–1202): imported 200; 700/1200 rows imported so far',
    ]);
    const summary = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(summary).toEqual({
      file,
      workspace: { id: workspaceId, name: 'Importers' },
      mode: 'TEST',
      rows: 1200,
      imported: 700,
      batches: 3,
      failedBatches: [
        {
          batch: 2,
          firstLine: 503,
          lastLine: 1002,
          rows: 500,
          imported: 0,
          errors: [
            {
              line: 643, // row 640: the header, 640 rows before it and the empty line
              column: 'email',
              code: 'VALIDATION',
              message: 'An email address must contain exactly one "@" with text on both sides and no spaces.',
            },
            {
              line: 703,
              column: 'code',
              code: 'DUPLICATE',
              message: 'The code "bulk-0" is already taken; choose another.',
            },
          ],
        },
      ],
      stopped: false,
      failedRowsFile: failed,
      error: null,
    });
    const rejected = fs.readFileSync(failed, 'utf8').trimEnd().split('\n');
    expect(rejected[0]).toBe('externalId,name,email,code,programId,metadata');
    expect(rejected).toHaveLength(501);
    expect(rejected.slice(1, 3)).toEqual(['more-500,,,,,', `more-501,,,,${otherProgram},`]);
    expect(rejected).toContain('more-640,,not an email,,,');

    // Fixed, the failed rows import on their own.
    fs.writeFileSync(failed, fs.readFileSync(failed, 'utf8').replace('not an email', '').replace('bulk-0', 'more-700'));
    const again = await refgraph([
      'import',
      'partners',
      failed,
      '--workspace',
      workspaceId,
      '--mode',
      'TEST',
      '--program',
      program,
    ]);
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toContain('Imported 500 of 500 partners');
  });

  it('--stop-on-error stops after the first failed batch', async () => {
    const file = csv('stop.csv', ['externalId', 'stop-1', 'bulk-1', 'stop-2', 'stop-3']);
    const run = await refgraph([
      'import',
      'partners',
      file,
      ...['--workspace', workspaceId, '--mode', 'TEST', '--program', program, '--batch-size', '2', '--stop-on-error'],
    ]);
    expect(run.code, show(run)).toBe(1);
    expect(run.stdout).toContain('Imported 0 of 2 partners');
    expect(run.stdout).toContain(
      'line 3, externalId: DUPLICATE: A partner with externalId "bulk-1" already exists in this workspace and mode.',
    );
    expect(run.stdout).toContain('Stopped after batch 1 (--stop-on-error): rows after line 3 were not read.');
  });

  it('stored what it said: partners, APPROVED enrollments, links with their codes, three events each', async () => {
    await withDb(async (db) => {
      const partners = await db.prisma.partner.findMany({
        where: tenant,
        include: { enrollments: true, links: true },
        orderBy: { id: 'asc' },
      });
      // 2500 + 700 + the 500 fixed ones; nothing of the failed batches or of the stopped run.
      expect(partners).toHaveLength(3700);
      expect(partners.filter((p) => /^(stop|ok)-/.test(p.externalId))).toEqual([]);
      for (const p of partners) {
        expect(p.enrollments.map((e) => e.status)).toEqual(['APPROVED']);
        expect(p.links.map((l) => l.isDefault)).toEqual([true]);
      }
      const bulk = partners.find((p) => p.externalId === 'bulk-5')!;
      expect(bulk).toMatchObject({ name: 'Partner 5', email: 'p5@example.com', metadata: { row: 5 } });
      expect(bulk.links[0]!.code).toBe('BULK-5');
      const friends = partners.find((p) => p.externalId === 'more-1')!;
      expect(friends.enrollments[0]!.programId).toBe(rowIdOf('Program', otherProgram));
      expect(partners.find((p) => p.externalId === 'more-700')!.links[0]!.code).toBe('more-700');
      expect(await db.prisma.event.count({ where: tenant })).toBe(3 * 3700);
      expect(await db.prisma.reward.count({ where: tenant })).toBe(0);
    });
  });
});
