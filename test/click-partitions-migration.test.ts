// The click partitions migration on clicks of the old shape (an unpartitioned "Click" with its
// rollups): every row kept as it was, each in its month's partition, the rollups untouched, and
// the triggers, keys and partition maintenance working on the new table. On the tests' backend
// (PostgreSQL with TEST_DATABASE_URL, else PGlite).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickBatchStatement, type ClickRow } from '../src/modules/click/click.service.js';
import { uuidv7 } from './helpers/factories.js';
import { migratedUpToOnTestBackend, type MigratedDatabase } from './helpers/migrations.js';
import { FIRST_MEASURES, rawGroups, storedRollupGroups, type Query } from './helpers/rollups.js';

const MIGRATION = '20261207200000_click_partitions';

let db: MigratedDatabase;
const q: Query = (text) => db.query(text);
const ws = uuidv7();
const program = uuidv7();
const partner = uuidv7();
const link = uuidv7();

/** YYYYMM of the UTC month `months` after the current one. */
function monthName(months: number): string {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + months, 1));
  return `Click_p${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

const rows = () =>
  db
    .query<{ row: string }>(`SELECT row_to_json(k)::text AS "row" FROM "Click" k ORDER BY "id"`)
    .then((r) => r.map((x) => x.row));
const placement = () =>
  db.query<{ part: string; n: number }>(
    `SELECT tableoid::regclass::text AS "part", count(*)::int AS "n" FROM "Click" GROUP BY 1 ORDER BY 1`,
  );
const partitions = () =>
  db
    .query<{ name: string }>(
      `SELECT c.relname AS "name" FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = '"Click"'::regclass ORDER BY 1`,
    )
    .then((r) => r.map((x) => x.name));

let before: { rows: string[]; rollups: unknown[] };

beforeAll(async () => {
  db = await migratedUpToOnTestBackend(MIGRATION);
  const enrollment = uuidv7();
  // Old ids are of any kind (gen_random_uuid: not time-ordered), months with clicks and without.
  await db.exec(`
    INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES ('${ws}', 'Old shape', now());
    INSERT INTO "Program" ("id", "workspaceId", "mode", "name", "type", "currency", "updatedAt")
      VALUES ('${program}', '${ws}', 'TEST', 'P', 'AFFILIATE', 'USD', now());
    INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt") VALUES ('${partner}', '${ws}', 'TEST', 'alice', now());
    INSERT INTO "Enrollment" ("id", "workspaceId", "mode", "programId", "partnerId", "status", "updatedAt")
      VALUES ('${enrollment}', '${ws}', 'TEST', '${program}', '${partner}', 'APPROVED', now());
    INSERT INTO "ReferralLink" ("id", "workspaceId", "mode", "enrollmentId", "programId", "partnerId", "code", "codeNormalized")
      VALUES ('${link}', '${ws}', 'TEST', '${enrollment}', '${program}', '${partner}', 'OLD', 'old');
    INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent",
                         "referrerUrl", "landingUrl", "discarded", "discardReason", "isUnique")
      SELECT gen_random_uuid(), '${ws}', 'TEST', '${link}', '${program}', '${partner}',
             TIMESTAMPTZ '2025-11-30 23:00:00+00' + (i * INTERVAL '7 minutes'), md5(i::text), 'Firefox ' || i,
             'https://ref.example/' || i, 'https://land.example/' || i, i % 5 = 0, CASE WHEN i % 5 = 0 THEN 'BOT' END, i % 3 <> 0
        FROM generate_series(1, 30) i;
    INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "discarded", "isUnique")
      SELECT gen_random_uuid(), '${ws}', 'TEST', '${link}', '${program}', '${partner}',
             TIMESTAMPTZ '2026-03-01 00:00:00+00' + (i * INTERVAL '1 day'), false, true
        FROM generate_series(0, 19) i;
    INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "discarded", "isUnique")
      SELECT gen_random_uuid(), '${ws}', 'TEST', '${link}', '${program}', '${partner}', now() - i * INTERVAL '1 second', false, i % 2 = 0
        FROM generate_series(1, 10) i;
  `);
  before = { rows: await rows(), rollups: await storedRollupGroups(q, FIRST_MEASURES) };
  expect(before.rows).toHaveLength(60);
  expect(before.rollups).toEqual(await rawGroups(q, FIRST_MEASURES));
  expect(await db.applyRest()).toContain(MIGRATION);
}, 120_000);
afterAll(async () => {
  await db?.close();
});

describe('the click partitions migration on existing clicks', () => {
  it('keeps every row as it was, and the rollups as they were', async () => {
    expect(await rows()).toEqual(before.rows);
    expect(await storedRollupGroups(q, FIRST_MEASURES)).toEqual(before.rollups);
  });

  it('makes "Click" partitioned by month of occurredAt, each row in its month, with the key (id, occurredAt)', async () => {
    const [table] = await db.query<{ kind: string; key: string }>(
      `SELECT c.relkind::text AS "kind", pg_get_partkeydef(c.oid) AS "key" FROM pg_class c WHERE c.oid = '"Click"'::regclass`,
    );
    expect(table).toEqual({ kind: 'p', key: 'RANGE ("occurredAt")' });
    const expected = ['Click_default', 'Click_p202511', 'Click_p202512', 'Click_p202603'];
    for (let k = 0; k <= 3; k++) expected.push(monthName(k));
    expect(await partitions()).toEqual([...new Set(expected)].sort());
    // 2025-11-30 23:00 + 7..210 minutes crosses into December (UTC).
    const place = Object.fromEntries((await placement()).map((p) => [p.part.replaceAll('"', ''), p.n]));
    expect(place).toEqual({
      Click_p202511: 8,
      Click_p202512: 22,
      Click_p202603: 20,
      [monthName(0)]: 10,
    });
    const [pk] = await db.query<{ def: string }>(
      `SELECT pg_get_constraintdef(oid) AS "def" FROM pg_constraint WHERE conname = 'Click_pkey'`,
    );
    expect(pk!.def).toBe('PRIMARY KEY (id, "occurredAt")');
    const triggers = await db.query<{ name: string }>(
      `SELECT tgname AS "name" FROM pg_trigger WHERE tgrelid = '"Click"'::regclass AND NOT tgisinternal ORDER BY 1`,
    );
    expect(triggers.map((t) => t.name)).toEqual(['Click_rollup_insert', 'Click_rollup_update']);
  });

  it('routes the click writer’s batches to their partitions, counted in the rollups', async () => {
    const row = (id: string, occurredAt: Date): ClickRow => ({
      id,
      workspaceId: ws,
      mode: 'TEST',
      linkId: link,
      programId: program,
      partnerId: partner,
      occurredAt: occurredAt.toISOString(),
      ipHash: 'b'.repeat(64),
      userAgent: 'Firefox',
      referrerUrl: null,
      landingUrl: null,
      discarded: false,
      discardReason: null,
    });
    const now = new Date();
    const old = new Date('2024-01-15T12:00:00Z'); // a month without a partition: the DEFAULT one
    const batch = [row(uuidv7(), now), row(uuidv7(), now), row(uuidv7(old.getTime()), old)];
    const { text, values } = clickBatchStatement(batch).toQuery();
    await db.query(text, values);
    await db.query(text, values); // a retried batch writes nothing twice
    const written = await db.query<{ id: string; part: string; isUnique: boolean }>(
      `SELECT "id", tableoid::regclass::text AS "part", "isUnique" FROM "Click" WHERE "id" = ANY($1::uuid[]) ORDER BY "occurredAt" DESC, "id"`,
      [batch.map((r) => r.id)],
    );
    expect(written.map((w) => [w.id, w.part.replaceAll('"', ''), w.isUnique])).toEqual([
      [batch[0]!.id, monthName(0), true],
      [batch[1]!.id, monthName(0), false],
      [batch[2]!.id, 'Click_default', true],
    ]);
    expect(await storedRollupGroups(q, FIRST_MEASURES)).toEqual(await rawGroups(q, FIRST_MEASURES));
  });

  it('keeps the rollups on updates through the parent, across partitions', async () => {
    await db.query(
      `UPDATE "Click" SET "discarded" = true, "discardReason" = 'PARTNER_BANNED' WHERE "occurredAt" < '2026-03-05'`,
    );
    expect(await storedRollupGroups(q, FIRST_MEASURES)).toEqual(await rawGroups(q, FIRST_MEASURES));
  });

  it('moves the DEFAULT partition’s clicks of a month into the partition made for it, counting nothing twice', async () => {
    const rollups = await storedRollupGroups(q, FIRST_MEASURES);
    const [made] = await db.query<{ made: boolean }>(
      `SELECT "Click_partition_create"('2024-01-31 23:59:59+00') AS "made"`,
    );
    expect(made!.made).toBe(true);
    const [again] = await db.query<{ made: boolean }>(
      `SELECT "Click_partition_create"('2024-01-01 00:00:00+00') AS "made"`,
    );
    expect(again!.made).toBe(false);
    const place = Object.fromEntries((await placement()).map((p) => [p.part.replaceAll('"', ''), p.n]));
    expect(place.Click_p202401).toBe(1);
    expect(place.Click_default).toBeUndefined();
    expect(await storedRollupGroups(q, FIRST_MEASURES)).toEqual(rollups);
  });
});
