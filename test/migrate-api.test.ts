// applyMigrations() (src/db/migrate.ts) against a real PostgreSQL server and an in-memory PGlite.
// Server: TEST_DATABASE_URL, else DATABASE_URL (when postgres://), else postgresql://postgres@127.0.0.1:5432.
// Every database created here has a random name and is dropped in afterAll.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, MigrationError, MIGRATION_LOCK_KEY } from '../src/db/migrate.js';

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

let tmp: string;
let migrationsDir: string;
let failingDir: string;
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

    const rows = await adminQuery(
      'SELECT migration_name, finished_at IS NOT NULL AS done FROM _prisma_migrations ORDER BY migration_name',
      db,
    );
    expect(rows).toEqual(NAMES.map((migration_name) => ({ migration_name, done: true })));
    // The whole dollar-quoted script ran: the trigger exists and works.
    await adminQuery(`INSERT INTO "Program"(slug) VALUES ('MiXeD')`, db);
    expect(await adminQuery('SELECT slug FROM "Program"', db)).toEqual([{ slug: 'mixed' }]);

    // Second start: answered from _prisma_migrations, without loading the wasm engine.
    const fastLogs: string[] = [];
    const t0 = performance.now();
    const second = await applyMigrations({ url }, { migrationsDir, log: (m) => fastLogs.push(m) });
    const ms = performance.now() - t0;
    expect(second.applied).toEqual([]);
    expect(fastLogs).toEqual([]);
    expect(ms).toBeLessThan(1000);
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
    // One transaction: the CREATE TABLE before the failing statement did not survive.
    expect(await adminQuery(`SELECT to_regclass('"Half"') AS half`, db)).toEqual([{ half: null }]);
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

describe('applyMigrations on PGlite', () => {
  it('applies to an in-memory instance through the same engine, then nothing', async () => {
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
});
