// The issue-14 migrations on data of the old shape: existing partners, referrals and conversions
// get metadata {} (and the generated metadataMatch [{}]) and existing rewards their conversion's
// referral (Referral.rewards). Runs on PGlite whatever the backend: the migrations are plain SQL.
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from './helpers/factories.js';
import { migratedUpTo } from './helpers/migrations.js';

const FIRST = '20261207180000_partner_operations';

let pglite: PGlite;
let db: Awaited<ReturnType<typeof migratedUpTo>>;
const ws = uuidv7();
const partner = uuidv7();
const referral = uuidv7();
const conversion = uuidv7();
const reward = uuidv7();

beforeAll(async () => {
  db = await migratedUpTo(FIRST);
  pglite = db.pglite;
  const program = uuidv7();
  const rule = uuidv7();
  await pglite.exec(`
    INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES ('${ws}', 'Old shape', now());
    INSERT INTO "Program" ("id", "workspaceId", "mode", "name", "type", "currency", "updatedAt")
      VALUES ('${program}', '${ws}', 'TEST', 'P', 'AFFILIATE', 'USD', now());
    INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt") VALUES ('${partner}', '${ws}', 'TEST', 'alice', now());
    INSERT INTO "RewardRule" ("id", "workspaceId", "mode", "programId", "lineageId", "trigger", "kind", "amountType", "fixedAmount", "fixedCurrency")
      VALUES ('${rule}', '${ws}', 'TEST', '${program}', '${rule}', 'PURCHASE', 'CASH', 'FIXED', 1000, 'USD');
    INSERT INTO "Referral" ("id", "workspaceId", "mode", "programId", "partnerId", "externalId", "status")
      VALUES ('${referral}', '${ws}', 'TEST', '${program}', '${partner}', 'cust-1', 'CONVERTED');
    INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "idempotencyKey", "amount", "currency", "occurredAt", "programId", "partnerId", "referralId")
      VALUES ('${conversion}', '${ws}', 'TEST', 'PURCHASE', 'ACCEPTED', 'o-1', 5000, 'USD', now(), '${program}', '${partner}', '${referral}');
    INSERT INTO "Reward" ("id", "workspaceId", "mode", "programId", "partnerId", "conversionId", "ruleId", "ruleLineageId", "recipient", "kind", "amount", "currency", "approveAfter", "updatedAt")
      VALUES ('${reward}', '${ws}', 'TEST', '${program}', '${partner}', '${conversion}', '${rule}', '${rule}', 'REFERRER', 'CASH', 1000, 'USD', now(), now());
  `);
  const applied = await db.applyRest();
  expect(applied).toContain(FIRST);
  expect(applied).toContain('20261207181000_reward_referral');
});
afterAll(async () => {
  await db?.close();
});

describe('partner operations migrations on existing data', () => {
  it('gives existing rows metadata {} and a containment column that matches {}', async () => {
    for (const table of ['Partner', 'Referral', 'Conversion']) {
      const { rows } = await pglite.query<{ metadata: unknown; metadataMatch: unknown; matches: boolean }>(
        `SELECT "metadata", "metadataMatch", "metadataMatch" @> '[{}]'::jsonb AS matches FROM "${table}"`,
      );
      expect(rows).toEqual([{ metadata: {}, metadataMatch: [{}], matches: true }]);
    }
  });

  it('keeps metadataMatch in step with metadata on update', async () => {
    await pglite.query(`UPDATE "Partner" SET "metadata" = '{"plan":"pro"}' WHERE "id" = $1`, [partner]);
    const { rows } = await pglite.query<{ hit: boolean; miss: boolean }>(
      `SELECT "metadataMatch" @> '[{"plan":"pro"}]' AS hit, "metadataMatch" @> '[{"plan":"basic"}]' AS miss FROM "Partner" WHERE "id" = $1`,
      [partner],
    );
    expect(rows).toEqual([{ hit: true, miss: false }]);
  });

  it('backfills each existing reward with its conversion’s referral', async () => {
    const { rows } = await pglite.query<{ referralId: string | null }>(
      `SELECT "referralId" FROM "Reward" WHERE "id" = $1`,
      [reward],
    );
    expect(rows).toEqual([{ referralId: referral }]);
  });
});
