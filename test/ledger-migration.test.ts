// The money-operations migration (prisma/migrations/20261207150000_ledger_money_operations) on data
// of the old shape: balances before and after agree, except for the two changes it exists for —
// what a PENDING payout holds leaves `available`, and in-product (CREDIT) rewards leave the cash
// balances. Runs on PGlite whatever the backend: the migration is plain SQL, the same on both.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, defaultMigrationsDir } from '../src/db/migrate.js';
import { sqlClient } from '../src/lib/sql.js';
import { partnerBalances, partnerCreditBalances } from '../src/modules/ledger/balance.service.js';
import { uuidv7 } from './helpers/factories.js';

const MIGRATION = '20261207150000_ledger_money_operations';

let pglite: PGlite;
let tmp: string;
const ws = uuidv7();
const tenant = { workspaceId: ws, mode: 'TEST' as const };
const alice = uuidv7();
const bob = uuidv7();

/** Partner.balances as the code before this migration computed them (src/modules/ledger/balance.service.ts then). */
const OLD_BALANCES = `
  SELECT id, currency, sum(pending)::text AS pending, sum(available)::text AS available, sum(paid)::text AS paid FROM (
    SELECT w."partnerId" AS id, w."currency" AS currency,
           sum(w."amount") FILTER (WHERE w."status" = 'CREATED') AS pending,
           sum(w."amount") FILTER (WHERE w."status" = 'APPROVED' AND po."status" IS DISTINCT FROM 'PAID') AS available,
           sum(w."amount") FILTER (WHERE w."status" = 'PROCESSED' OR (w."status" = 'APPROVED' AND po."status" = 'PAID')) AS paid
      FROM "Reward" w
      LEFT JOIN "Payout" po ON po."id" = w."payoutId"
     WHERE w."workspaceId" = $1 AND w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED')
       AND NOT EXISTS (SELECT 1 FROM "LedgerEntry" c WHERE c."rewardId" = w."id" AND c."type" = 'CLAWBACK')
     GROUP BY w."partnerId", w."currency"
    UNION ALL
    SELECT l."partnerId", l."currency", NULL, sum(l."amount"), NULL FROM "LedgerEntry" l
     WHERE l."workspaceId" = $1 AND l."type" IN ('MANUAL_CREDIT', 'CLAWBACK')
     GROUP BY l."partnerId", l."currency") b
   GROUP BY id, currency ORDER BY id, currency`;

type Figures = { partner: string; currency: string; pending: bigint; available: bigint; paid: bigint };

async function oldBalances(): Promise<Figures[]> {
  const { rows } = await pglite.query<{
    id: string;
    currency: string;
    pending: string | null;
    available: string | null;
    paid: string | null;
  }>(OLD_BALANCES, [ws]);
  return rows.map((r) => ({
    partner: r.id === alice ? 'alice' : 'bob',
    currency: r.currency,
    pending: BigInt(r.pending ?? 0),
    available: BigInt(r.available ?? 0),
    paid: BigInt(r.paid ?? 0),
  }));
}

async function newBalances(credit = false): Promise<Figures[]> {
  const db = sqlClient(async (text, values) => (await pglite.query(text, values)).rows);
  const byPartner = await (credit ? partnerCreditBalances : partnerBalances)(db, tenant, [alice, bob]);
  return [...byPartner.entries()].flatMap(([id, balances]) =>
    balances.map((b) => ({ partner: id === alice ? 'alice' : 'bob', ...b })),
  );
}

beforeAll(async () => {
  // Every migration before this one, then data of the old shape.
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-ledger-migration-'));
  const all = defaultMigrationsDir();
  const before = path.join(tmp, 'before');
  fs.mkdirSync(before);
  for (const name of fs.readdirSync(all).filter((n) => n < MIGRATION && fs.statSync(path.join(all, n)).isDirectory()))
    fs.cpSync(path.join(all, name), path.join(before, name), { recursive: true });
  pglite = new PGlite();
  await applyMigrations({ pglite }, { migrationsDir: before });

  const program = uuidv7();
  const rule = uuidv7();
  const creditRule = uuidv7();
  await pglite.exec(`
    INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES ('${ws}', 'Old shape', now());
    INSERT INTO "Program" ("id", "workspaceId", "mode", "name", "type", "currency", "updatedAt")
      VALUES ('${program}', '${ws}', 'TEST', 'P', 'AFFILIATE', 'USD', now());
    INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt") VALUES
      ('${alice}', '${ws}', 'TEST', 'alice', now()), ('${bob}', '${ws}', 'TEST', 'bob', now());
    INSERT INTO "RewardRule" ("id", "workspaceId", "mode", "programId", "lineageId", "trigger", "kind", "amountType", "fixedAmount", "fixedCurrency") VALUES
      ('${rule}', '${ws}', 'TEST', '${program}', '${rule}', 'PURCHASE', 'CASH', 'FIXED', 1000, 'USD'),
      ('${creditRule}', '${ws}', 'TEST', '${program}', '${creditRule}', 'PURCHASE', 'CREDIT', 'FIXED', 400, 'USD');
  `);
  const ids: Record<string, string> = {};
  const conversion = async (key: string) => {
    ids[key] = uuidv7();
    await pglite.query(
      `INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "idempotencyKey", "occurredAt", "amount", "currency", "programId", "partnerId")
       VALUES ($1, $2, 'TEST', 'PURCHASE', 'ACCEPTED', $3, now(), 10000, 'USD', $4, $5)`,
      [ids[key], ws, key, program, alice],
    );
    return ids[key]!;
  };
  const paidPayout = uuidv7();
  const pendingPayout = uuidv7();
  await pglite.query(
    `INSERT INTO "Payout" ("id", "workspaceId", "mode", "partnerId", "amount", "currency", "status", "paidAt", "updatedAt") VALUES
       ($1, $3, 'TEST', $4, 500, 'USD', 'PAID', now(), now()), ($2, $3, 'TEST', $4, 700, 'USD', 'PENDING', NULL, now())`,
    [paidPayout, pendingPayout, ws, alice],
  );
  const reward = async (
    name: string,
    r: { amount: number; status: string; kind?: string; payoutId?: string; source?: string },
  ) => {
    ids[name] = uuidv7();
    await pglite.query(
      `INSERT INTO "Reward" ("id", "workspaceId", "mode", "programId", "partnerId", "conversionId", "ruleId", "ruleLineageId", "recipient", "kind",
                             "status", "amount", "currency", "approveAfter", "updatedAt", "payoutId", "sourceRewardId")
       VALUES ($1, $2, 'TEST', $3, $4, $5, $6, $6, 'REFERRER', $7, $8, $9, 'USD', now(), now(), $10, $11)`,
      [
        ids[name],
        ws,
        program,
        alice,
        await conversion(`c-${name}`),
        r.kind === 'CREDIT' ? creditRule : rule,
        r.kind ?? 'CASH',
        r.status,
        r.amount,
        r.payoutId ?? null,
        r.source ? ids[r.source] : null,
      ],
    );
  };
  const entry = async (
    partner: string,
    type: string,
    amount: number,
    currency: string,
    rewardName?: string,
    payoutId?: string,
  ) =>
    pglite.query(
      `INSERT INTO "LedgerEntry" ("id", "workspaceId", "mode", "partnerId", "type", "amount", "currency", "rewardId", "payoutId")
       VALUES ($1, $2, 'TEST', $3, $4, $5, $6, $7, $8)`,
      [uuidv7(), ws, partner, type, amount, currency, rewardName ? ids[rewardName] : null, payoutId ?? null],
    );

  await reward('approved', { amount: 1000, status: 'APPROVED' });
  await entry(alice, 'REWARD_APPROVED', 1000, 'USD', 'approved');
  await reward('paidInPayout', { amount: 500, status: 'PROCESSED', payoutId: paidPayout });
  await entry(alice, 'REWARD_APPROVED', 500, 'USD', 'paidInPayout');
  await entry(alice, 'REWARD_PROCESSED', -500, 'USD', 'paidInPayout', paidPayout);
  await reward('paidOutside', { amount: 300, status: 'PROCESSED' });
  await entry(alice, 'REWARD_APPROVED', 300, 'USD', 'paidOutside');
  await entry(alice, 'REWARD_PROCESSED', -300, 'USD', 'paidOutside');
  await reward('created', { amount: 200, status: 'CREATED' });
  await reward('held', { amount: 700, status: 'APPROVED', payoutId: pendingPayout });
  await entry(alice, 'REWARD_APPROVED', 700, 'USD', 'held');
  await reward('clawback', { amount: -100, status: 'PROCESSED', source: 'paidInPayout' });
  await entry(alice, 'CLAWBACK', -100, 'USD', 'clawback');
  await reward('adjustment', { amount: -50, status: 'APPROVED', source: 'approved' });
  await entry(alice, 'REWARD_APPROVED', -50, 'USD', 'adjustment');
  await reward('inProduct', { amount: 400, status: 'APPROVED', kind: 'CREDIT' });
  await entry(alice, 'REWARD_APPROVED', 400, 'USD', 'inProduct');
  await entry(alice, 'MANUAL_CREDIT', 250, 'USD');
  await entry(alice, 'MANUAL_CREDIT', -40, 'USD');
  await entry(bob, 'MANUAL_CREDIT', -300, 'EUR');
});

afterAll(async () => {
  await pglite?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the money-operations migration', () => {
  it('keeps every balance, except what a PENDING payout holds and in-product rewards, which leave available', async () => {
    const byName = (a: Figures, b: Figures) => a.partner.localeCompare(b.partner);
    const before = (await oldBalances()).sort(byName);
    expect(before).toEqual([
      {
        partner: 'alice',
        currency: 'USD',
        pending: 200n,
        available: 1000n + 700n - 50n + 400n + 250n - 40n - 100n,
        paid: 800n,
      },
      { partner: 'bob', currency: 'EUR', pending: 0n, available: -300n, paid: 0n },
    ]);

    await applyMigrations({ pglite });

    const after = await newBalances();
    const expected = before.map((b) =>
      b.partner === 'alice'
        ? { ...b, available: b.available - 700n /* held by the PENDING payout */ - 400n /* CREDIT reward */ }
        : b,
    );
    expect(after.sort(byName)).toEqual(expected);
    // The in-product reward has its own balance now.
    expect(await newBalances(true)).toEqual([
      { partner: 'alice', currency: 'USD', pending: 0n, available: 400n, paid: 0n },
    ]);
  });

  it('leaves a ledger whose sum is `available`, with the new entry types', async () => {
    const { rows } = await pglite.query<{ type: string; n: number; sum: string }>(
      `SELECT "type"::text AS type, count(*)::int AS n, sum("amount")::text AS sum FROM "LedgerEntry"
        WHERE "partnerId" = $1 GROUP BY 1 ORDER BY 1`,
      [alice],
    );
    expect(rows).toEqual([
      { type: 'ADJUSTMENT', n: 1, sum: '-50' },
      { type: 'CLAWBACK', n: 1, sum: '-100' },
      { type: 'CREDIT', n: 2, sum: '210' },
      { type: 'PAYOUT', n: 3, sum: '-1500' },
      { type: 'REWARD_APPROVED', n: 4, sum: '2500' },
    ]);
    expect(2500n - 1500n + 210n - 100n - 50n).toBe(1060n);
  });
});
