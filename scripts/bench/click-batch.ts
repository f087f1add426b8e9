// What deciding unique visitors costs the database: the click writer's batch statement
// (clickBatchStatement: the ClickVisitor claims and the Click rows in one statement) next to the
// plain batch INSERT it replaced (the same rows, no claims), on one connection, in rotating
// order, on a throw-away PostgreSQL database. Not a suite of `npm run bench` (no server, no HTTP):
//
//   npx tsx scripts/bench/click-batch.ts [--rounds 30] [--batch 500]
//
// BENCH_DATABASE_URL as for `npm run bench`. Visitors: "one visitor" (every click the same IP and
// user agent over 20 links, as in the clicks suite's redirects: after the first batch every claim
// conflicts) and "new visitors" (every click a visitor never seen: every claim is inserted, the
// worst case).
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDatabase } from '../../src/db.js';
import { formatUuid, uuidv7Bytes } from '../../src/lib/uuid.js';
import { clickBatchStatement, type ClickRow } from '../../src/modules/click/click.service.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import { createThrowawayDatabase } from './harness.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '30' }, batch: { type: 'string', default: '500' } },
});
const rounds = Number(values.rounds);
const batchSize = Number(values.batch);
const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 refgraph-bench';

/** The batch INSERT before unique visitors (12 arrays, no claims): the baseline. */
const PLAIN = `
INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent", "referrerUrl", "landingUrl", "discarded")
SELECT u."id", u."workspaceId", u."mode"::"Mode", u."linkId", u."programId", u."partnerId", u."occurredAt", u."ipHash", u."userAgent", u."referrerUrl", u."landingUrl", u."discarded"
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::boolean[])
    AS u("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent", "referrerUrl", "landingUrl", "discarded")
    ON CONFLICT DO NOTHING`;

interface Links {
  workspaceId: string;
  programId: string;
  partnerId: string;
  linkIds: string[];
}

async function seed(url: string): Promise<Links> {
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 1, migrate: false });
  try {
    const ws = await createWorkspace(db.prisma, 'Click batch');
    const base = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const program = await db.prisma.program.create({
      data: { ...base, name: 'P', type: 'AFFILIATE', currency: 'USD' },
    });
    const partner = await db.prisma.partner.create({ data: { ...base, externalId: 'p' } });
    const enrollment = await db.prisma.enrollment.create({
      data: { ...base, programId: program.id, partnerId: partner.id, status: 'APPROVED' },
    });
    const linkIds: string[] = [];
    for (let i = 0; i < 20; i++) {
      const code = `batch${i}${randomBytes(3).toString('hex')}`;
      const link = await db.prisma.referralLink.create({
        data: {
          ...base,
          enrollmentId: enrollment.id,
          programId: program.id,
          partnerId: partner.id,
          code,
          codeNormalized: code,
        },
      });
      linkIds.push(link.id);
    }
    return { workspaceId: ws.workspace.id, programId: program.id, partnerId: partner.id, linkIds };
  } finally {
    await db.close();
  }
}

function rows(links: Links, visitor: 'one' | 'new'): ClickRow[] {
  return Array.from({ length: batchSize }, (_, i) => {
    const { bytes, ms } = uuidv7Bytes();
    return {
      id: formatUuid(bytes),
      workspaceId: links.workspaceId,
      mode: 'TEST',
      linkId: links.linkIds[i % links.linkIds.length]!,
      programId: links.programId,
      partnerId: links.partnerId,
      occurredAt: new Date(ms).toISOString(),
      ipHash: visitor === 'one' ? 'a'.repeat(64) : createHash('sha256').update(randomBytes(16)).digest('hex'),
      userAgent: USER_AGENT,
      referrerUrl: 'https://blog.example.org/review',
      landingUrl: 'https://shop.example.com/landing',
      discarded: false,
      discardReason: null,
    };
  });
}

/** The 12 arrays of PLAIN. */
function plainValues(batch: ClickRow[]): unknown[][] {
  const keys = [
    'id',
    'workspaceId',
    'mode',
    'linkId',
    'programId',
    'partnerId',
    'occurredAt',
    'ipHash',
    'userAgent',
    'referrerUrl',
    'landingUrl',
    'discarded',
  ] as const;
  return keys.map((k) => batch.map((r) => r[k]));
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function main(): Promise<void> {
  const baseUrl = process.env.BENCH_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres';
  const database = await createThrowawayDatabase(baseUrl);
  try {
    const links = await seed(database.url);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const variants = {
        'plain INSERT (before)': (batch: ClickRow[]) => client.query(PLAIN, plainValues(batch)),
        'with unique visitors': (batch: ClickRow[]) => {
          const { text, values } = clickBatchStatement(batch).toQuery();
          return client.query(text, values);
        },
      };
      const names = Object.keys(variants) as Array<keyof typeof variants>;
      const cells = (['one', 'new'] as const).flatMap((visitor) => names.map((name) => ({ visitor, name })));
      const times: Record<string, number[]> = {};
      for (const { visitor, name } of cells) await variants[name](rows(links, visitor)); // warm-up
      // Every round runs each cell once, starting one cell later than the round before, so that a
      // busy moment of a shared machine falls on every cell alike.
      for (let r = 0; r < rounds; r++) {
        for (let c = 0; c < cells.length; c++) {
          const { visitor, name } = cells[(r + c) % cells.length]!;
          const batch = rows(links, visitor);
          const t0 = performance.now();
          await variants[name](batch);
          const cell = `${visitor}|${name}`;
          times[cell] = [...(times[cell] ?? []), performance.now() - t0];
        }
      }
      const [load1] = os.loadavg();
      console.log(
        `click batch statement, ${batchSize} rows, ${rounds} rounds per cell, median ms per batch (load average ${load1!.toFixed(1)}):`,
      );
      console.log('| visitors | plain INSERT (before) | with unique visitors | ratio | extra per click |');
      console.log('|---|---:|---:|---:|---:|');
      for (const visitor of ['one', 'new'] as const) {
        const plain = median(times[`${visitor}|plain INSERT (before)`]!);
        const unique = median(times[`${visitor}|with unique visitors`]!);
        console.log(
          `| ${visitor === 'one' ? 'one visitor (repeats)' : 'new visitors'} | ${plain.toFixed(2)} | ${unique.toFixed(2)} | ${(unique / plain).toFixed(2)}× | ${(((unique - plain) / batchSize) * 1000).toFixed(1)} µs |`,
        );
      }
    } finally {
      await client.end();
    }
  } finally {
    await database.drop();
  }
}

await main();
