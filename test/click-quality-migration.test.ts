// The click-quality migration on clicks of the old shape: they keep counting as they did (unique,
// no discard reason: it was not kept), and the batch writer works on top of them. Runs on PGlite
// whatever the backend: the migrations are plain SQL.
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickBatchStatement, type ClickRow } from '../src/modules/click/click.service.js';
import { uuidv7 } from './helpers/factories.js';
import { migratedUpTo } from './helpers/migrations.js';

const MIGRATION = '20261207190000_click_quality';

let pglite: PGlite;
let db: Awaited<ReturnType<typeof migratedUpTo>>;
const ws = uuidv7();
const program = uuidv7();
const partner = uuidv7();
const link = uuidv7();
const counted = uuidv7();
const repeat = uuidv7();
const discarded = uuidv7();
const ipHash = 'a'.repeat(64);

beforeAll(async () => {
  db = await migratedUpTo(MIGRATION);
  pglite = db.pglite;
  const enrollment = uuidv7();
  await pglite.exec(`
    INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES ('${ws}', 'Old shape', now());
    INSERT INTO "Program" ("id", "workspaceId", "mode", "name", "type", "currency", "updatedAt")
      VALUES ('${program}', '${ws}', 'TEST', 'P', 'AFFILIATE', 'USD', now());
    INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt") VALUES ('${partner}', '${ws}', 'TEST', 'alice', now());
    INSERT INTO "Enrollment" ("id", "workspaceId", "mode", "programId", "partnerId", "status", "updatedAt")
      VALUES ('${enrollment}', '${ws}', 'TEST', '${program}', '${partner}', 'APPROVED', now());
    INSERT INTO "ReferralLink" ("id", "workspaceId", "mode", "enrollmentId", "programId", "partnerId", "code", "codeNormalized")
      VALUES ('${link}', '${ws}', 'TEST', '${enrollment}', '${program}', '${partner}', 'OLD', 'old');
    INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent", "discarded")
      VALUES ('${counted}', '${ws}', 'TEST', '${link}', '${program}', '${partner}', now(), '${ipHash}', 'Firefox', false),
             ('${repeat}', '${ws}', 'TEST', '${link}', '${program}', '${partner}', now(), '${ipHash}', 'Firefox', false),
             ('${discarded}', '${ws}', 'TEST', '${link}', '${program}', '${partner}', now(), NULL, NULL, true);
  `);
  const applied = await db.applyRest();
  expect(applied).toContain(MIGRATION);
});
afterAll(async () => {
  await db?.close();
});

describe('click quality migration on existing clicks', () => {
  it('keeps them counting as before: unique (never deduplicated), no discard reason', async () => {
    const { rows } = await pglite.query<{ id: string; isUnique: boolean; discardReason: string | null }>(
      `SELECT "id", "isUnique", "discardReason" FROM "Click" ORDER BY "id"`,
    );
    expect(rows).toEqual([
      { id: counted, isUnique: true, discardReason: null },
      { id: repeat, isUnique: true, discardReason: null },
      { id: discarded, isUnique: true, discardReason: null }, // discarded: counted nowhere all the same
    ]);
  });

  it('writes new clicks on top of them, deciding unique visitors from then on', async () => {
    const row = (id: string): ClickRow => ({
      id,
      workspaceId: ws,
      mode: 'TEST',
      linkId: link,
      programId: program,
      partnerId: partner,
      occurredAt: new Date().toISOString(),
      ipHash,
      userAgent: 'Firefox',
      referrerUrl: null,
      landingUrl: null,
      discarded: false,
      discardReason: null,
    });
    const [first, second] = [uuidv7(), uuidv7()];
    const { text, values } = clickBatchStatement([row(first), row(second)]).toQuery();
    await pglite.query(text, values);
    const { rows } = await pglite.query<{ id: string; isUnique: boolean }>(
      `SELECT "id", "isUnique" FROM "Click" WHERE "id" = ANY($1::uuid[]) ORDER BY "id"`,
      [[first, second]],
    );
    // The old clicks claimed no visitor: the first new click of the same visitor is unique.
    expect(rows).toEqual([
      { id: first, isUnique: true },
      { id: second, isUnique: false },
    ]);
  });
});
