// The `payouts` suite: a batch payout run (createPayouts) for many partners, against a hand-written
// set-based SQL version of the same money movement, on two identical workspaces of one database.
//
// Each partner has one APPROVED CASH reward (with its REWARD_APPROVED entry) and a credit. refgraph
// pays partners in chunks of 200, a transaction each under their ledger locks (payout rows, PAYOUT
// entries, the rewards held, `payout.created` events); the baseline does the same rows for every
// partner in one transaction of six set-based statements, without locks or events — the floor,
// not a competitor. Reported: wall
// time per run, statements sent (db.statements), and the ratio of the two times.
import { performance } from 'node:perf_hooks';
import { openDatabase } from '../../src/db.js';
import type { Tenant } from '../../src/domain/tenant.js';
import { createPayouts } from '../../src/modules/payout/payout.service.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import { bulkInsert, uuidv7 } from '../../test/helpers/factories.js';
import { createThrowawayDatabase, runAlone, type BenchResult, type BenchSuite } from './harness.js';

const SUITE = 'payouts';
const CHUNK = 2_000;

async function seed(prisma: Parameters<typeof bulkInsert>[0], tenant: Tenant, partners: number): Promise<void> {
  const now = new Date();
  const t = { ...tenant, createdAt: now };
  const program = await prisma.program.create({
    data: { ...tenant, name: 'Bench', type: 'AFFILIATE', currency: 'USD' },
  });
  const rule = await prisma.rewardRule.create({
    data: {
      ...tenant,
      programId: program.id,
      lineageId: uuidv7(),
      trigger: 'PURCHASE',
      kind: 'CASH',
      amountType: 'FIXED',
      fixedAmount: 1000n,
      fixedCurrency: 'USD',
    },
  });
  for (let start = 0; start < partners; start += CHUNK) {
    const n = Math.min(CHUNK, partners - start);
    const rows = Array.from({ length: n }, (_, i) => ({
      id: uuidv7(),
      externalId: `p${start + i}`,
      updatedAt: now,
      ...t,
    }));
    const conversions = rows.map((p) => ({
      id: uuidv7(),
      type: 'PURCHASE' as const,
      status: 'ACCEPTED' as const,
      idempotencyKey: `c-${p.id}`,
      referredExternalId: `r-${p.id}`,
      amount: 10_000n,
      currency: 'USD',
      occurredAt: now,
      programId: program.id,
      partnerId: p.id,
      ...t,
    }));
    const rewards = conversions.map((c) => ({
      id: uuidv7(),
      programId: program.id,
      partnerId: c.partnerId,
      conversionId: c.id,
      ruleId: rule.id,
      ruleLineageId: rule.id,
      recipient: 'REFERRER' as const,
      kind: 'CASH' as const,
      status: 'APPROVED' as const,
      amount: 1000n,
      currency: 'USD',
      approveAfter: now,
      updatedAt: now,
      ...t,
    }));
    const entries = [
      ...rewards.map((w) => ({
        id: uuidv7(),
        partnerId: w.partnerId,
        type: 'REWARD_APPROVED' as const,
        amount: 1000n,
        currency: 'USD',
        rewardId: w.id,
        ...t,
      })),
      ...rows.map((p) => ({
        id: uuidv7(),
        partnerId: p.id,
        type: 'CREDIT' as const,
        amount: 250n,
        currency: 'USD',
        ...t,
      })),
    ];
    await bulkInsert(prisma, 'Partner', rows);
    await bulkInsert(prisma, 'Conversion', conversions);
    await bulkInsert(prisma, 'Reward', rewards);
    await bulkInsert(prisma, 'LedgerEntry', entries);
  }
}

/**
 * The same money movement for every due partner, set-based, in one transaction of six statements
 * (no locks, no events): the due partners into an analyzed temporary table (so the planner joins
 * 10 000 of them to their rewards by hash, not row by row), then one INSERT or UPDATE per table.
 */
async function handWritten(db: Awaited<ReturnType<typeof openDatabase>>, workspaceId: string): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.sql`
      CREATE TEMPORARY TABLE due ON COMMIT DROP AS
      SELECT "partnerId", sum("amount") AS amount, gen_random_uuid() AS "payoutId" FROM "LedgerEntry"
       WHERE "workspaceId" = ${workspaceId}::uuid AND "mode" = 'TEST' AND "currency" = 'USD'
       GROUP BY "partnerId" HAVING sum("amount") > 0`;
    await tx.sql`ANALYZE due`;
    const paid = await tx.sql<{ n: string }>`
      WITH po AS (
        INSERT INTO "Payout" ("id", "workspaceId", "mode", "partnerId", "amount", "currency", "status", "updatedAt")
        SELECT "payoutId", ${workspaceId}::uuid, 'TEST', "partnerId", amount, 'USD', 'PENDING', now() FROM due
        RETURNING 1
      ) SELECT count(*)::text AS n FROM po`;
    await tx.sql`
      INSERT INTO "LedgerEntry" ("id", "workspaceId", "mode", "partnerId", "type", "amount", "currency", "payoutId")
      SELECT gen_random_uuid(), ${workspaceId}::uuid, 'TEST', "partnerId", 'PAYOUT', -amount, 'USD', "payoutId" FROM due`;
    await tx.sql`
      UPDATE "Reward" r SET "payoutId" = due."payoutId" FROM due
       WHERE r."workspaceId" = ${workspaceId}::uuid AND r."mode" = 'TEST' AND r."partnerId" = due."partnerId" AND r."currency" = 'USD'
         AND r."recipient" = 'REFERRER' AND r."kind" = 'CASH' AND r."status" = 'APPROVED' AND r."payoutId" IS NULL`;
    return Number(paid[0]!.n);
  });
}

export const payoutsSuite: BenchSuite = {
  name: SUITE,
  description:
    'a createPayouts batch run for 10 000 partners (1 000 with --quick) vs one hand-written set-based statement',
  async run(options, log): Promise<BenchResult[]> {
    const partners = options.quick ? 1_000 : 10_000;
    const database = await createThrowawayDatabase(options.databaseUrl);
    const db = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 4, migrate: false });
    try {
      const ours = await createWorkspace(db.prisma, 'Bench refgraph');
      const theirs = await createWorkspace(db.prisma, 'Bench SQL');
      const a: Tenant = { workspaceId: ours.workspace.id, mode: 'TEST' };
      const b: Tenant = { workspaceId: theirs.workspace.id, mode: 'TEST' };
      log(`${SUITE}: seeding ${partners} partners twice…`);
      await seed(db.prisma, a, partners);
      await seed(db.prisma, b, partners);
      await db.sql`ANALYZE`;

      log(`${SUITE}: createPayouts for ${partners} partners…`);
      let statements = db.statements.count;
      let started = performance.now();
      const result = await createPayouts(db.prisma, a, { currency: 'USD' });
      const refgraphMs = performance.now() - started;
      const refgraphStatements = db.statements.count - statements;
      if (result.payouts.length !== partners)
        throw new Error(`createPayouts paid ${result.payouts.length} of ${partners}`);

      log(`${SUITE}: the hand-written statements…`);
      statements = db.statements.count;
      started = performance.now();
      const handPaid = await handWritten(db, b.workspaceId);
      const sqlMs = performance.now() - started;
      if (handPaid !== partners) throw new Error(`the hand-written run paid ${handPaid} of ${partners}`);

      const line = (scenario: string, ms: number, notes: string): BenchResult => ({
        suite: SUITE,
        scenario,
        unit: 'partner paid',
        ops: partners,
        errors: 0,
        durationS: ms / 1000,
        opsPerSec: partners / (ms / 1000),
        p50Ms: ms / partners,
        p99Ms: ms / partners,
        concurrency: 1,
        notes,
      });
      return [
        line(
          'hand-written SQL (baseline)',
          sqlMs,
          `${db.statements.count - statements} statement(s), ${sqlMs.toFixed(0)} ms`,
        ),
        {
          ...line('createPayouts', refgraphMs, ''),
          vsBaseline: sqlMs / refgraphMs,
          notes: `${refgraphStatements} statements (${(refgraphStatements / partners).toFixed(1)} per partner), ${(refgraphMs / 1000).toFixed(1)} s; ${(refgraphMs / sqlMs).toFixed(1)}× the hand-written time`,
        },
      ];
    } finally {
      await db.close();
      await database.drop();
    }
  },
};

if (import.meta.url === `file://${process.argv[1]}`) runAlone(payoutsSuite, { concurrency: 1 });
