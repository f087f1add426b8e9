// CSV exports (issue 13, item 7): reading 100 000 conversions of a period page after page, 1000
// rows a page, as `GET /export/conversions.csv` does (src/modules/export/tables.ts, plain SQL
// through lib/sql.ts), against the same pages read with Prisma's model API (keyset `where`, the
// partner's external id through `include`, times formatted in JS). Both produce the same cells;
// the CSV writing and HTTP are left out. Rounds alternate between the two; each round reads all
// 100 pages. Prints the time of each round and the statements sent.
//
//   npx tsx scripts/bench/export-pages.ts [--rows 100000] [--rounds 4]
//   (BENCH_DATABASE_URL as for npm run bench; a throw-away database is created and dropped)
import { parseArgs } from 'node:util';
import { openDatabase } from '../../src/db.js';
import type { Conversion } from '../../src/generated/prisma/client.js';
import { globalId } from '../../src/lib/global-id.js';
import { formatMinor } from '../../src/lib/money.js';
import { exportTables, type PagePosition } from '../../src/modules/export/tables.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import { createThrowawayDatabase } from './harness.js';

const { values } = parseArgs({ options: { rows: { type: 'string' }, rounds: { type: 'string' } } });
const ROWS = Number(values.rows ?? 100_000);
const ROUNDS = Number(values.rounds ?? 4);
const PAGE = 1000;

const database = await createThrowawayDatabase(
  process.env.BENCH_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres',
);
const db = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 2, migrate: false });
try {
  const ws = await createWorkspace(db.prisma, 'Export pages');
  const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
  const program = await db.prisma.program.create({ data: { ...tenant, name: 'P', type: 'REFERRAL', currency: 'EUR' } });
  const partner = await db.prisma.partner.create({ data: { ...tenant, externalId: 'partner' } });
  await db.sql`
    INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "idempotencyKey", "referredExternalId",
                              "amount", "currency", "occurredAt", "programId", "partnerId")
    SELECT gen_random_uuid(), ${tenant.workspaceId}::uuid, 'TEST', 'PURCHASE', 'ACCEPTED', 'c-' || i, 'customer-' || i,
           1000 + i % 5000, 'EUR', '2026-01-01T00:00:00Z'::timestamptz + (i / 10) * interval '1 millisecond',
           ${program.id}::uuid, ${partner.id}::uuid
      FROM generate_series(0, ${ROWS}::int - 1) AS i`;
  await db.sql`ANALYZE "Conversion"`;
  const from = new Date('2026-01-01T00:00:00Z');
  const to = new Date('2030-01-01T00:00:00Z');

  const viaSql = async (): Promise<number> => {
    let after: PagePosition | null = null;
    let rows = 0;
    for (;;) {
      const page = await exportTables.conversions.page(db, { tenant, from, to, programId: null, after, limit: PAGE });
      rows += page.length;
      if (page.length < PAGE) return rows;
      after = page[page.length - 1]!.position;
    }
  };
  const gid = (typename: string, id: string | null) => (id === null ? null : globalId(typename, id));
  const viaPrisma = async (): Promise<number> => {
    let after: { at: Date; id: string } | null = null;
    let rows = 0;
    for (;;) {
      const page: Array<Conversion & { partner: { externalId: string } | null }> = await db.prisma.conversion.findMany({
        where: {
          ...tenant,
          occurredAt: { gte: after?.at ?? from, lt: to },
          ...(after ? { OR: [{ occurredAt: { gt: after.at } }, { occurredAt: after.at, id: { gt: after.id } }] } : {}),
        },
        orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }],
        take: PAGE,
        include: { partner: { select: { externalId: true } } },
      });
      for (const c of page) {
        void [
          gid('Conversion', c.id),
          c.occurredAt.toISOString(),
          c.createdAt.toISOString(),
          c.type,
          c.status,
          c.discardReason,
          c.amount === null ? null : formatMinor(c.amount, c.currency!),
          c.currency,
          c.idempotencyKey,
          c.referredExternalId,
          gid('Program', c.programId),
          gid('Partner', c.partnerId),
          c.partner?.externalId ?? null,
          gid('Referral', c.referralId),
          gid('Conversion', c.refundOfId),
        ];
      }
      rows += page.length;
      if (page.length < PAGE) return rows;
      const last: Conversion = page[page.length - 1]!;
      after = { at: last.occurredAt, id: last.id };
    }
  };

  const results: Record<string, { ms: number[]; statements: number }> = {
    'plain SQL (tables.ts)': { ms: [], statements: 0 },
    'Prisma findMany + include': { ms: [], statements: 0 },
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, read] of [
      ['plain SQL (tables.ts)', viaSql],
      ['Prisma findMany + include', viaPrisma],
    ] as const) {
      const statements = db.statements.count;
      const started = performance.now();
      const rows = await read();
      results[name]!.ms.push(Math.round(performance.now() - started));
      results[name]!.statements = db.statements.count - statements;
      if (rows !== ROWS) throw new Error(`${name} read ${rows} rows, not ${ROWS}`);
    }
  }
  for (const [name, r] of Object.entries(results)) {
    const sorted = [...r.ms].sort((a, b) => a - b);
    console.log(
      `${name.padEnd(28)} ${ROWS} rows: ${r.ms.join(', ')} ms (median ${sorted[Math.floor(sorted.length / 2)]}), ${r.statements} statements`,
    );
  }
} finally {
  await db.close();
  await database.drop();
}
