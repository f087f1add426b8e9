// What the click partitions cost an existing installation, and what retention costs with them: on a
// throw-away PostgreSQL database migrated up to 20261207200000_click_partitions, seed `--clicks`
// clicks of the old shape spread over the last 12 months, then time the migration (the rebuild of
// "Click"), dropping the partitions entirely older than 180 days (dropClickPartitions) and deleting
// the older rows left in batches of 1000 (deleteClicksBefore). Not a suite of `npm run bench`:
//
//   npx tsx scripts/bench/click-partitions.ts [--clicks 1000000]
//
// BENCH_DATABASE_URL as for `npm run bench`.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { applyMigrations, defaultMigrationsDir } from '../../src/db/migrate.js';
import { type SqlTx, sqlClient } from '../../src/lib/sql.js';
import { deleteClicksBefore, dropClickPartitions } from '../../src/modules/click/partitions.js';
import { withClient } from './harness.js';

const MIGRATION = '20261207200000_click_partitions';
const { values } = parseArgs({ options: { clicks: { type: 'string', default: '1000000' } } });
const clicks = Number(values.clicks);
const base = process.env.BENCH_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
const name = `refgraph_bench_partitions_${randomBytes(5).toString('hex')}`;
const u = new URL(base);
u.pathname = `/${name}`;
const url = u.toString();

const all = defaultMigrationsDir();
const before = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-partitions-'));
for (const dir of fs.readdirSync(all).filter((n) => n < MIGRATION && fs.statSync(path.join(all, n)).isDirectory()))
  fs.cpSync(path.join(all, dir), path.join(before, dir), { recursive: true });

const ids = Array.from({ length: 5 }, (_, i) => `00000000-0000-7000-8000-00000000000${i + 1}`);
const [ws, program, partner, enrollment, link] = ids;
const client = new pg.Client({ connectionString: url });
try {
  await applyMigrations({ url }, { migrationsDir: before, createDatabase: true, log: () => {} });
  await client.connect();
  await client.query(`
    INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES ('${ws}', 'Bench', now());
    INSERT INTO "Program" ("id", "workspaceId", "mode", "name", "type", "currency", "updatedAt") VALUES ('${program}', '${ws}', 'TEST', 'P', 'AFFILIATE', 'USD', now());
    INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt") VALUES ('${partner}', '${ws}', 'TEST', 'a', now());
    INSERT INTO "Enrollment" ("id", "workspaceId", "mode", "programId", "partnerId", "status", "updatedAt") VALUES ('${enrollment}', '${ws}', 'TEST', '${program}', '${partner}', 'APPROVED', now());
    INSERT INTO "ReferralLink" ("id", "workspaceId", "mode", "enrollmentId", "programId", "partnerId", "code", "codeNormalized") VALUES ('${link}', '${ws}', 'TEST', '${enrollment}', '${program}', '${partner}', 'bench', 'bench');`);
  let t = performance.now();
  await client.query(`SET session_replication_role = replica`); // seeding: not under test, no rollup trigger
  await client.query(
    `INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent")
     SELECT gen_random_uuid(), '${ws}', 'TEST', '${link}', '${program}', '${partner}',
            now() - (i::float / $1) * INTERVAL '365 days', md5(i::text), 'Mozilla/5.0' FROM generate_series(1, $1::int) i`,
    [clicks],
  );
  await client.query(`SET session_replication_role = origin`);
  await client.query(`VACUUM ANALYZE "Click"`);
  const [size] = (await client.query(`SELECT pg_size_pretty(pg_total_relation_size('"Click"')) AS s`)).rows;
  console.log(
    `seeded ${clicks} clicks over 12 months (${size.s} with indexes) in ${Math.round(performance.now() - t)} ms`,
  );

  t = performance.now();
  await applyMigrations({ url }, { migrationsDir: all, log: () => {} });
  const [parts] = (
    await client.query(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = '"Click"'::regclass`)
  ).rows;
  console.log(`migration ${MIGRATION}: ${Math.round(performance.now() - t)} ms (${parts.n} partitions)`);

  const run = sqlClient(async (text, params) => (await client.query(text, params)).rows);
  const db = {
    ...run,
    transaction: async <T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> => {
      await client.query('BEGIN');
      try {
        const result = await fn(run);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    },
  };
  const cutoff = new Date(Date.now() - 180 * 86_400_000);
  t = performance.now();
  const dropped = await dropClickPartitions(db, cutoff);
  console.log(
    `dropped the months before ${cutoff.toISOString()}: ${dropped} clicks in ${Math.round(performance.now() - t)} ms`,
  );
  t = performance.now();
  let deleted = 0;
  let batches = 0;
  for (;;) {
    const n = await deleteClicksBefore(db, cutoff, 1000);
    deleted += n;
    batches++;
    if (n < 1000) break;
  }
  const ms = performance.now() - t;
  console.log(
    `deleted the rest: ${deleted} clicks in ${batches} batches, ${Math.round(ms)} ms (${(ms / batches).toFixed(1)} ms a batch)`,
  );
} finally {
  await client.end().catch(() => {});
  await withClient(base, (c) => c.query(`drop database if exists "${name}" with (force)`));
  fs.rmSync(before, { recursive: true, force: true });
}
