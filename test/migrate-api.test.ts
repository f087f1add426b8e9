// applyMigrations() (src/db/migrate.ts) against a real PostgreSQL server and an in-memory PGlite.
// Server: TEST_DATABASE_URL, else DATABASE_URL (when postgres://), else postgresql://postgres@127.0.0.1:5432.
// Every database created here has a random name and is dropped in afterAll. `prisma migrate status`
// against a database migrated here runs only with TEST_DATABASE_URL (it spawns the Prisma CLI).
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyMigrations,
  defaultMigrationsDir,
  MigrationError,
  MIGRATION_LOCK_KEY,
  readMigrations,
} from '../src/db/migrate.js';

const serverUrl = (() => {
  const candidate = [process.env['TEST_DATABASE_URL'], process.env['DATABASE_URL']].find(
    (u) => u && /^postgres(ql)?:\/\//.test(u),
  );
  return candidate ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
})();
const withDb = (database: string, query = '') => {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  u.search = query;
  return u.toString();
};
const adminQuery = async (sql: string, database?: string) => {
  const client = new pg.Client({
    connectionString: database ? withDb(database) : serverUrl,
    connectionTimeoutMillis: 3000,
  });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
};
const pgAvailable = await adminQuery('select 1').then(
  () => true,
  () => false,
);

const suffix = crypto.randomBytes(4).toString('hex');
const created: string[] = [];
async function freshDatabase(label: string): Promise<string> {
  const name = `refgraph_mig_${label}_${suffix}`;
  await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await adminQuery(`CREATE DATABASE "${name}"`);
  created.push(name);
  return name;
}

// A small migration history of our own (the project's schema is still being written). The second
// migration has a dollar-quoted body with ';' inside: adapter-pg's naive split on ';' would break it.
const MIGRATIONS: Record<string, string> = {
  '20240101000000_init': `CREATE TABLE "Program" ("id" SERIAL PRIMARY KEY, "slug" TEXT NOT NULL);
CREATE UNIQUE INDEX "Program_slug_key" ON "Program"("slug");
`,
  '20240102000000_slug_trigger': `CREATE FUNCTION program_slug_lower() RETURNS trigger AS $$
BEGIN
  NEW.slug := lower(NEW.slug); -- a ';' inside the body
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER program_slug_lower BEFORE INSERT ON "Program" FOR EACH ROW EXECUTE FUNCTION program_slug_lower();
`,
  '20240103000000_partner': `CREATE TYPE "PartnerStatus" AS ENUM ('ACTIVE', 'PAUSED');
CREATE TABLE "Partner" (
  "id" TEXT PRIMARY KEY,
  "programId" INTEGER NOT NULL REFERENCES "Program"("id") ON DELETE CASCADE,
  "status" "PartnerStatus" NOT NULL DEFAULT 'ACTIVE'
);
`,
};
const NAMES = Object.keys(MIGRATIONS).sort();
const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

/** _prisma_migrations as `prisma migrate` creates it (read from a database the Prisma CLI migrated). */
const PRISMA_HISTORY_COLUMNS = [
  { column_name: 'id', data_type: 'character varying', len: 36, nullable: 'NO', column_default: null },
  { column_name: 'checksum', data_type: 'character varying', len: 64, nullable: 'NO', column_default: null },
  {
    column_name: 'finished_at',
    data_type: 'timestamp with time zone',
    len: null,
    nullable: 'YES',
    column_default: null,
  },
  { column_name: 'migration_name', data_type: 'character varying', len: 255, nullable: 'NO', column_default: null },
  { column_name: 'logs', data_type: 'text', len: null, nullable: 'YES', column_default: null },
  {
    column_name: 'rolled_back_at',
    data_type: 'timestamp with time zone',
    len: null,
    nullable: 'YES',
    column_default: null,
  },
  {
    column_name: 'started_at',
    data_type: 'timestamp with time zone',
    len: null,
    nullable: 'NO',
    column_default: 'now()',
  },
  { column_name: 'applied_steps_count', data_type: 'integer', len: null, nullable: 'NO', column_default: '0' },
];
const HISTORY_COLUMNS_SQL = `SELECT column_name, data_type, character_maximum_length AS len, is_nullable AS nullable, column_default
  FROM information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`;
const HISTORY_SQL = `SELECT migration_name, checksum, length(id) AS id_length, logs, rolled_back_at,
       started_at <= finished_at AS in_order, applied_steps_count
  FROM _prisma_migrations ORDER BY started_at, migration_name`;
const appliedRow = (migration_name: string) => ({
  migration_name,
  checksum: sha256(MIGRATIONS[migration_name]!),
  id_length: 36,
  logs: null,
  rolled_back_at: null,
  in_order: true,
  applied_steps_count: 1,
});

let tmp: string;
let migrationsDir: string;
let failingDir: string;
let concurrentlyDir: string;
function writeMigrations(dir: string, migrations: Record<string, string>) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');
  for (const [name, sql] of Object.entries(migrations)) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'migration.sql'), sql);
  }
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-migrate-api-'));
  migrationsDir = path.join(tmp, 'migrations');
  writeMigrations(migrationsDir, MIGRATIONS);
  failingDir = path.join(tmp, 'failing');
  writeMigrations(failingDir, {
    ...MIGRATIONS,
    '20240104000000_broken': 'CREATE TABLE "Half" ("id" INTEGER);\nSELECT 1 / 0;\n',
    '20240105000000_after': 'CREATE TABLE "After" ("id" INTEGER);\n',
  });
  concurrentlyDir = path.join(tmp, 'concurrently');
  writeMigrations(concurrentlyDir, {
    ...MIGRATIONS,
    '20240104000000_concurrently': 'CREATE INDEX CONCURRENTLY "Program_id_idx" ON "Program"("id");\n',
  });
});

afterAll(async () => {
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const name of created) await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {});
});

describe.skipIf(!pgAvailable)('applyMigrations on PostgreSQL', () => {
  it('applies every migration to a fresh database, then nothing (fast path)', async () => {
    const db = await freshDatabase('fresh');
    const url = withDb(db);
    const logs: string[] = [];
    const first = await applyMigrations({ url }, { migrationsDir, log: (m) => logs.push(m) });
    expect(first.applied).toEqual(NAMES);
    expect(logs.some((m) => m.startsWith('applying 3 pending migration(s)'))).toBe(true);

    // One row per migration, as Prisma writes it: same table, sha256 of the file, one step.
    expect(await adminQuery(HISTORY_COLUMNS_SQL, db)).toEqual(PRISMA_HISTORY_COLUMNS);
    expect(await adminQuery(HISTORY_SQL, db)).toEqual(NAMES.map(appliedRow));
    // The whole dollar-quoted script ran: the trigger exists and works.
    await adminQuery(`INSERT INTO "Program"(slug) VALUES ('MiXeD')`, db);
    expect(await adminQuery('SELECT slug FROM "Program"', db)).toEqual([{ slug: 'mixed' }]);

    // Second start: answered from one read of _prisma_migrations, without the lock; no new row.
    const fastLogs: string[] = [];
    const t0 = performance.now();
    const second = await applyMigrations({ url }, { migrationsDir, log: (m) => fastLogs.push(m) });
    const ms = performance.now() - t0;
    expect(second.applied).toEqual([]);
    expect(fastLogs).toEqual([]);
    expect(ms).toBeLessThan(1000);
    expect(await adminQuery(HISTORY_SQL, db)).toEqual(NAMES.map(appliedRow));
  });

  it('waits while another instance holds the migration lock, then applies', async () => {
    const db = await freshDatabase('wait');
    const url = withDb(db);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      const logs: string[] = [];
      const applying = applyMigrations({ url }, { migrationsDir, log: (m) => logs.push(m) });
      const deadline = Date.now() + 10_000;
      while (!logs.some((m) => m.startsWith('waiting for another instance to finish migrating'))) {
        if (Date.now() > deadline) throw new Error(`never waited: ${JSON.stringify(logs)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Nothing done while waiting.
      expect(await adminQuery(`SELECT to_regclass('_prisma_migrations') AS t`, db)).toEqual([{ t: null }]);
      await holder.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      expect((await applying).applied).toEqual(NAMES);
    } finally {
      await holder.end();
    }
    expect(await adminQuery(HISTORY_SQL, db)).toEqual(NAMES.map(appliedRow));
  });

  it('times out with a clear message when the lock is never released', async () => {
    const db = await freshDatabase('timeout');
    const url = withDb(db);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      const error = await applyMigrations({ url }, { migrationsDir, lockTimeoutMs: 300 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'LOCK_TIMEOUT' });
      expect((error as Error).message).toContain(`pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
    } finally {
      await holder.end();
    }
  });

  it('warns about an applied migration whose file changed, and changes nothing', async () => {
    const db = await freshDatabase('edited');
    const url = withDb(db);
    const dir = path.join(tmp, 'edited');
    writeMigrations(dir, MIGRATIONS);
    await applyMigrations({ url }, { migrationsDir: dir });
    fs.appendFileSync(path.join(dir, NAMES[0]!, 'migration.sql'), '-- edited afterwards\n');
    const logs: string[] = [];
    expect((await applyMigrations({ url }, { migrationsDir: dir, log: (m) => logs.push(m) })).applied).toEqual([]);
    expect(logs).toEqual([
      `warning: migration(s) ${NAMES[0]} were modified after being applied (checksum differs from _prisma_migrations); the database was not changed`,
    ]);
    expect(await adminQuery(HISTORY_SQL, db)).toEqual(NAMES.map(appliedRow));
  });

  it('refuses a database that has tables but no migration history', async () => {
    const db = await freshDatabase('notempty');
    await adminQuery('CREATE TABLE "Program" ("id" INTEGER)', db);
    const error = await applyMigrations({ url: withDb(db) }, { migrationsDir }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NOT_EMPTY' });
    expect((error as Error).message).toContain(
      'is not empty (schema "public" has "Program") but has no migration history',
    );
    expect(await adminQuery(`SELECT to_regclass('_prisma_migrations') AS t`, db)).toEqual([{ t: null }]);
  });

  it('explains a statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY)', async () => {
    const db = await freshDatabase('concurrently');
    const error = await applyMigrations({ url: withDb(db) }, { migrationsDir: concurrentlyDir }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'FAILED_MIGRATION' });
    expect((error as Error).message).toContain('cannot run inside a transaction block');
    expect((error as Error).message).toContain('refgraph applies each migration in one transaction');
  });

  it('applies each migration exactly once when 4 instances start at the same time', async () => {
    const db = await freshDatabase('concurrent');
    const url = withDb(db);
    const results = await Promise.all(Array.from({ length: 4 }, () => applyMigrations({ url }, { migrationsDir })));
    expect(results.flatMap((r) => r.applied).sort()).toEqual(NAMES);
    // The lock holder applied everything; the others found nothing left to do once they got the lock.
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    const rows = await adminQuery(
      'SELECT migration_name, count(*)::int AS n, bool_and(finished_at IS NOT NULL) AS done FROM _prisma_migrations GROUP BY 1 ORDER BY 1',
      db,
    );
    expect(rows).toEqual(NAMES.map((migration_name) => ({ migration_name, n: 1, done: true })));
    // Our lock is released (and the engine's connections, with Prisma's own lock, are gone).
    const locks = await adminQuery(
      `SELECT objid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE l.locktype = 'advisory' AND d.datname = '${db}'`,
    );
    expect(locks.map((l) => Number(l['objid']))).not.toContain(MIGRATION_LOCK_KEY);
    expect(locks.map((l) => Number(l['objid']))).not.toContain(72707369);
  });

  it('honours ?schema=', async () => {
    const db = await freshDatabase('schema');
    const url = withDb(db, '?schema=tenant_a');
    expect((await applyMigrations({ url }, { migrationsDir })).applied).toEqual(NAMES);
    expect((await applyMigrations({ url }, { migrationsDir })).applied).toEqual([]);
    const tables = await adminQuery(
      `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables
        WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
      db,
    );
    expect(tables.map((r) => r['t'])).toEqual(['tenant_a.Partner', 'tenant_a.Program', 'tenant_a._prisma_migrations']);
  });

  it('rolls a failing migration back entirely and refuses to go on until it is resolved', async () => {
    const db = await freshDatabase('failing');
    const url = withDb(db);
    const attempt = () => applyMigrations({ url }, { migrationsDir: failingDir });
    for (const when of ['failed on', 'failed earlier on']) {
      const error = await attempt().then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as MigrationError).code).toBe('FAILED_MIGRATION');
      expect((error as MigrationError).message).toContain(`\`20240104000000_broken\` ${when}`);
      expect((error as MigrationError).message).toContain('division by zero');
      expect((error as MigrationError).message).toContain('prisma migrate resolve --rolled-back 20240104000000_broken');
    }
    // One transaction: the CREATE TABLE before the failing statement did not survive, and nothing
    // after it ran. The failure is recorded as Prisma records one: no finished_at, the error in logs.
    expect(await adminQuery(`SELECT to_regclass('"Half"') AS half, to_regclass('"After"') AS after`, db)).toEqual([
      { half: null, after: null },
    ]);
    const failed = await adminQuery(
      `SELECT migration_name, finished_at, rolled_back_at, applied_steps_count, logs FROM _prisma_migrations
        WHERE finished_at IS NULL`,
      db,
    );
    expect(failed).toEqual([
      {
        migration_name: '20240104000000_broken',
        finished_at: null,
        rolled_back_at: null,
        applied_steps_count: 0,
        logs: expect.stringContaining('Database error code: 22012'),
      },
    ]);
    expect(await adminQuery('SELECT count(*)::int AS n FROM _prisma_migrations', db)).toEqual([{ n: 4 }]);

    // `prisma migrate resolve --rolled-back` sets rolled_back_at: the next start applies it again.
    await adminQuery(`UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL`, db);
    const retry = await applyMigrations({ url }, { migrationsDir: failingDir }).catch((e: unknown) => e);
    expect((retry as MigrationError).message).toContain('`20240104000000_broken` failed on');
    expect(await adminQuery('SELECT count(*)::int AS n FROM _prisma_migrations', db)).toEqual([{ n: 5 }]);
  });

  it('says which server and database it cannot reach', async () => {
    const refused = await applyMigrations(
      { url: 'postgresql://postgres@127.0.0.1:1/nowhere' },
      { migrationsDir },
    ).catch((e: unknown) => e as MigrationError);
    expect(refused).toMatchObject({ code: 'UNREACHABLE' });
    expect((refused as Error).message).toContain('127.0.0.1:1');

    const missing = await applyMigrations({ url: withDb(`refgraph_missing_${suffix}`) }, { migrationsDir }).catch(
      (e: unknown) => e as MigrationError,
    );
    expect(missing).toMatchObject({ code: 'DATABASE_MISSING' });
    expect((missing as Error).message).toContain(`refgraph_missing_${suffix}`);
  });

  it('creates the database when asked to', async () => {
    const name = `refgraph_mig_create_${suffix}`;
    created.push(name);
    const { applied } = await applyMigrations({ url: withDb(name) }, { migrationsDir, createDatabase: true });
    expect(applied).toEqual(NAMES);
  });
});

const statusUrl = process.env['TEST_DATABASE_URL'];
describe.skipIf(!statusUrl || !pgAvailable)(
  'prisma migrate status after refgraph migrated (PostgreSQL with TEST_DATABASE_URL only: spawns the Prisma CLI)',
  () => {
    const root = path.resolve(import.meta.dirname, '..');
    const prisma = (args: string[], databaseUrl: string, cwd = root) =>
      new Promise<{ code: number; output: string }>((resolve) => {
        const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: databaseUrl, CHECKPOINT_DISABLE: '1' };
        delete env['SHADOW_DATABASE_URL'];
        execFile(
          path.join(root, 'node_modules', '.bin', 'prisma'),
          args,
          { cwd, env, timeout: 90_000 },
          (error, stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
            resolve({ code, output: `${stdout}${stderr}` });
          },
        );
      });

    it("accepts the project's migrations as applied: the schema is up to date", async () => {
      const db = await freshDatabase('status');
      const url = withDb(db);
      const names = readMigrations(defaultMigrationsDir()).map((m) => m.name);
      expect((await applyMigrations({ url })).applied).toEqual(names);
      const status = await prisma(['migrate', 'status'], url);
      expect(status.output).toContain(`${names.length} migrations found in prisma/migrations`);
      expect(status.output).toContain('Database schema is up to date!');
      expect(status.code, status.output).toBe(0);
    }, 120_000);

    it('reports a failure refgraph recorded, and resolve --rolled-back lets refgraph apply it again', async () => {
      const db = await freshDatabase('resolve');
      const url = withDb(db);
      // A throw-away project whose last migration fails (the CLI reads prisma.config.ts there). Last:
      // `migrate status` reports migrations not yet applied before failed ones, and stops there.
      const project = path.join(tmp, 'resolve-project');
      const dir = path.join(project, 'prisma', 'migrations');
      writeMigrations(dir, {
        ...MIGRATIONS,
        '20240104000000_broken': 'CREATE TABLE "Half" ("id" INTEGER);\nSELECT 1 / 0;\n',
      });
      fs.writeFileSync(
        path.join(project, 'prisma', 'schema.prisma'),
        'datasource db {\n  provider = "postgresql"\n}\n',
      );
      const shim = JSON.stringify(path.join(root, 'bin', 'schema-engine.mjs'));
      fs.writeFileSync(
        path.join(project, 'prisma.config.ts'),
        `process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= ${shim};
export default {
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL },
};
`,
      );
      const failure = await applyMigrations({ url }, { migrationsDir: dir }).catch((e: unknown) => e);
      expect(failure).toMatchObject({ code: 'FAILED_MIGRATION' });

      const failed = await prisma(['migrate', 'status'], url, project);
      expect(failed.output).toMatch(/migrations? have failed/);
      expect(failed.output).toContain('20240104000000_broken');
      expect(failed.code, failed.output).not.toBe(0);

      const resolved = await prisma(['migrate', 'resolve', '--rolled-back', '20240104000000_broken'], url, project);
      expect(resolved.code, resolved.output).toBe(0);
      fs.writeFileSync(
        path.join(dir, '20240104000000_broken', 'migration.sql'),
        'CREATE TABLE "Half" ("id" INTEGER);\n',
      );
      expect((await applyMigrations({ url }, { migrationsDir: dir })).applied).toEqual(['20240104000000_broken']);

      const fixed = await prisma(['migrate', 'status'], url, project);
      expect(fixed.output).toContain('Database schema is up to date!');
      expect(fixed.code, fixed.output).toBe(0);
    }, 180_000);
  },
);

describe('applyMigrations on PGlite', () => {
  it('applies to an in-memory instance with the same SQL, then nothing', async () => {
    const db = new PGlite();
    try {
      expect((await applyMigrations({ pglite: db }, { migrationsDir })).applied).toEqual(NAMES);
      expect((await applyMigrations({ pglite: db }, { migrationsDir })).applied).toEqual([]);
      expect(db.closed).toBe(false); // the caller's instance stays open
      await db.query(`INSERT INTO "Program"(slug) VALUES ('UPPER')`);
      const { rows } = await db.query<{ slug: string; status: string }>(
        `INSERT INTO "Partner"(id, "programId") SELECT 'p1', id FROM "Program" RETURNING (SELECT slug FROM "Program"), status`,
      );
      expect(rows).toEqual([{ slug: 'upper', status: 'ACTIVE' }]);

      // A failing migration is reported (pglite-prisma-adapter did not await the script) and rolled back.
      const error = await applyMigrations({ pglite: db }, { migrationsDir: failingDir }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'FAILED_MIGRATION' });
      expect((error as Error).message).toContain('division by zero');
      expect((await db.query(`SELECT to_regclass('"Half"') AS half`)).rows).toEqual([{ half: null }]);
    } finally {
      await db.close();
    }
  });

  it('records the same history as on PostgreSQL; two callers at once apply each migration once', async () => {
    const db = new PGlite();
    try {
      const results = await Promise.all([
        applyMigrations({ pglite: db }, { migrationsDir }),
        applyMigrations({ pglite: db }, { migrationsDir }),
      ]);
      expect(results.map((r) => r.applied)).toEqual([NAMES, []]);
      expect((await db.query(HISTORY_COLUMNS_SQL)).rows).toEqual(PRISMA_HISTORY_COLUMNS);
      expect((await db.query(HISTORY_SQL)).rows).toEqual(NAMES.map(appliedRow));

      const error = await applyMigrations({ pglite: db }, { migrationsDir: failingDir }).catch((e: unknown) => e);
      expect((error as Error).message).toContain('`20240104000000_broken` failed on in-memory PGlite database');
      const again = await applyMigrations({ pglite: db }, { migrationsDir: failingDir }).catch((e: unknown) => e);
      expect((again as Error).message).toContain('`20240104000000_broken` failed earlier on');
      expect((again as Error).message).toContain('npx prisma migrate resolve --rolled-back 20240104000000_broken');
      const { rows } = await db.query(
        `SELECT migration_name, finished_at, applied_steps_count FROM _prisma_migrations WHERE finished_at IS NULL`,
      );
      expect(rows).toEqual([{ migration_name: '20240104000000_broken', finished_at: null, applied_steps_count: 0 }]);
      expect((await db.query(`SELECT to_regclass('"After"') AS after`)).rows).toEqual([{ after: null }]);
    } finally {
      await db.close();
    }
  });
});
