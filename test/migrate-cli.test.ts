// End-to-end: the real Prisma CLI (node_modules/.bin/prisma) running `migrate *` on our wasm-engine
// stand-in (bin/schema-engine.mjs), in a throw-away project, against PostgreSQL and PGlite.
// The wasm engine API and the CLI <-> engine protocol are internal to Prisma: this test is what tells
// us a version bump broke them. Server: TEST_DATABASE_URL, else DATABASE_URL (when postgres://), else
// postgresql://postgres@127.0.0.1:5432. Databases get random names and are dropped in afterAll.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const PRISMA = path.join(root, 'node_modules', '.bin', 'prisma');
const ENGINE_SHIM = path.join(root, 'bin', 'schema-engine.mjs');

const serverUrl = (() => {
  const candidate = [process.env['TEST_DATABASE_URL'], process.env['DATABASE_URL']].find(
    (u) => u && /^postgres(ql)?:\/\//.test(u),
  );
  return candidate ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
})();
const withDb = (database: string) => {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  u.search = '';
  return u.toString();
};
const sql = async (query: string, database?: string) => {
  const client = new pg.Client({
    connectionString: database ? withDb(database) : serverUrl,
    connectionTimeoutMillis: 3000,
  });
  await client.connect();
  try {
    return (await client.query(query)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
};
const pgAvailable = await sql('select 1').then(
  () => true,
  () => false,
);
const shadowDatabases = async () =>
  (await sql(`SELECT datname FROM pg_database WHERE datname LIKE 'prisma\\_migrate\\_shadow\\_db\\_%'`)).map((r) =>
    String(r['datname']),
  );

const SCHEMA_V1 = `datasource db {
  provider = "postgresql"
}

model Program {
  id        Int      @id @default(autoincrement())
  slug      String   @unique
  createdAt DateTime @default(now())
}
`;
const SCHEMA_V2 = `datasource db {
  provider = "postgresql"
}

enum PartnerStatus {
  ACTIVE
  PAUSED
}

model Program {
  id        Int       @id @default(autoincrement())
  slug      String    @unique
  createdAt DateTime  @default(now())
  partners  Partner[]
}

model Partner {
  id        String        @id @default(uuid())
  programId Int
  program   Program       @relation(fields: [programId], references: [id], onDelete: Cascade)
  email     String
  status    PartnerStatus @default(ACTIVE)

  @@unique([programId, email])
}
`;

interface Run {
  code: number;
  output: string;
  ms: number;
}

/** A throw-away Prisma project: its own prisma.config.ts pointing the CLI at our engine stand-in. */
function makeProject(label: string): { dir: string; prisma: (args: string[], databaseUrl: string) => Promise<Run> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `refgraph-cli-${label}-`));
  fs.mkdirSync(path.join(dir, 'prisma'));
  fs.writeFileSync(path.join(dir, 'prisma', 'schema.prisma'), SCHEMA_V1);
  // A plain object: `prisma/config` cannot be imported from a directory outside the project.
  fs.writeFileSync(
    path.join(dir, 'prisma.config.ts'),
    `process.env.PRISMA_SCHEMA_ENGINE_BINARY = ${JSON.stringify(ENGINE_SHIM)};
export default {
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL },
};
`,
  );
  const env: NodeJS.ProcessEnv = { ...process.env, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' };
  for (const name of ['PRISMA_SCHEMA_ENGINE_BINARY', 'PRISMA_MIGRATION_ENGINE_BINARY', 'SHADOW_DATABASE_URL'])
    delete env[name];
  const prisma = (args: string[], databaseUrl: string) =>
    new Promise<Run>((resolve) => {
      const t0 = performance.now();
      execFile(
        PRISMA,
        args,
        { cwd: dir, env: { ...env, DATABASE_URL: databaseUrl }, timeout: 60_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
          resolve({ code, output: `${stdout}\n${stderr}`, ms: Math.round(performance.now() - t0) });
        },
      );
    });
  return { dir, prisma };
}

const migrationDirs = (dir: string) =>
  fs
    .readdirSync(path.join(dir, 'prisma', 'migrations'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();

const projects: string[] = [];
afterAll(() => {
  for (const dir of projects) fs.rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!pgAvailable)('prisma migrate CLI on PostgreSQL (wasm engine stand-in)', () => {
  const suffix = crypto.randomBytes(4).toString('hex');
  const devDb = `refgraph_cli_dev_${suffix}`;
  const prodDb = `refgraph_cli_prod_${suffix}`;
  let shadowsBefore: string[] = [];

  beforeAll(async () => {
    shadowsBefore = await shadowDatabases();
  });
  afterAll(async () => {
    for (const db of [devDb, prodDb]) await sql(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch(() => {});
  });

  it('dev, dev, status, diff, deploy, reset', async () => {
    const { dir, prisma } = makeProject('pg');
    projects.push(dir);
    const dev = withDb(devDb);
    const expectOk = (run: Run, ...expected: Array<string | RegExp>) => {
      expect(run.code, run.output).toBe(0);
      for (const e of expected) expect(run.output).toMatch(e);
    };

    // The database does not exist yet: the CLI has the engine create it.
    expectOk(await prisma(['migrate', 'dev', '--name', 'init'], dev), `PostgreSQL database ${devDb} created`, /_init/);
    expect(migrationDirs(dir)).toEqual([expect.stringMatching(/^\d{14}_init$/)]);

    // Data in the main database survives `migrate dev`, which replays the history into a shadow
    // database (adapter-pg's own "shadow" database would have been the main one).
    await sql(`INSERT INTO "Program"(slug) VALUES ('kept')`, devDb);
    fs.writeFileSync(path.join(dir, 'prisma', 'schema.prisma'), SCHEMA_V2);
    expectOk(await prisma(['migrate', 'dev', '--name', 'second'], dev), /_second/);
    expect(await sql('SELECT slug FROM "Program"', devDb)).toEqual([{ slug: 'kept' }]);
    const names = migrationDirs(dir);
    expect(names).toEqual([expect.stringMatching(/^\d{14}_init$/), expect.stringMatching(/^\d{14}_second$/)]);
    const second = fs.readFileSync(path.join(dir, 'prisma', 'migrations', names[1]!, 'migration.sql'), 'utf8');
    expect(second).toContain('CREATE TYPE "PartnerStatus" AS ENUM');
    expect(second).toContain('CREATE UNIQUE INDEX "Partner_programId_email_key"');
    expect(second).toContain('FOREIGN KEY ("programId") REFERENCES "Program"("id") ON DELETE CASCADE');

    expectOk(await prisma(['migrate', 'status'], dev), 'Database schema is up to date!');
    expectOk(
      await prisma(
        [
          'migrate',
          'diff',
          '--from-migrations',
          'prisma/migrations',
          '--to-schema',
          'prisma/schema.prisma',
          '--exit-code',
        ],
        dev,
      ),
      'No difference detected',
    );

    // A second, fresh database.
    const deploy = await prisma(['migrate', 'deploy'], withDb(prodDb));
    expectOk(deploy, 'All migrations have been successfully applied');
    const applied = await sql(
      'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY 1',
      prodDb,
    );
    expect(applied.map((r) => r['migration_name'])).toEqual(names);

    expectOk(await prisma(['migrate', 'reset', '--force'], dev), 'Database reset successful');
    expect(await sql('SELECT count(*)::int AS n FROM "Program"', devDb)).toEqual([{ n: 0 }]);
    const tables = await sql(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
      devDb,
    );
    expect(tables.map((r) => r['table_name'])).toEqual(['Partner', 'Program', '_prisma_migrations']);

    // Every throw-away shadow database was dropped again.
    const leftover = (await shadowDatabases()).filter((d) => !shadowsBefore.includes(d));
    expect(leftover).toEqual([]);
  }, 90_000);
});

describe('prisma migrate CLI on PGlite (pglite:<dir>)', () => {
  it('dev, status, diff', async () => {
    const { dir, prisma } = makeProject('pglite');
    projects.push(dir);
    fs.writeFileSync(path.join(dir, 'prisma', 'schema.prisma'), SCHEMA_V2);
    const url = `pglite:${path.join(dir, 'pgdata')}`;

    const dev = await prisma(['migrate', 'dev', '--name', 'init'], url);
    expect(dev.code, dev.output).toBe(0);
    expect(migrationDirs(dir)).toEqual([expect.stringMatching(/^\d{14}_init$/)]);
    expect(fs.existsSync(path.join(dir, 'pgdata', 'PG_VERSION'))).toBe(true);

    const status = await prisma(['migrate', 'status'], url);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toContain('Database schema is up to date!');

    const diff = await prisma(
      [
        'migrate',
        'diff',
        '--from-migrations',
        'prisma/migrations',
        '--to-schema',
        'prisma/schema.prisma',
        '--exit-code',
      ],
      url,
    );
    expect(diff.code, diff.output).toBe(0);
    expect(diff.output).toContain('No difference detected');
  }, 90_000);
});
