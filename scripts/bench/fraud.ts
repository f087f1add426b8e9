// recordConversion with a program's fraud rules on vs off (issue 15): the same conversion — a
// PURCHASE of a new referred person through a code, with an `ip`, a `userAgent` and a
// `referredEmail` — into two programs of one partner that differ only in their rules:
//   - off: every rule off (fraudSameIp, fraudEmailDomain, fraudDisposableEmail false, no velocity limit);
//   - on: every rule on, none tripping: the same-IP lookup runs (the partner's own signup has another
//     IP), the email checks run (another domain, not disposable), and the velocity count runs with a
//     limit no partner reaches (1 000 000 would be refused: 100 000).
// Measured in interleaved rounds (off, on, off, on, …) on one server, so drift on a shared machine
// hits both alike; the ratio is the median of the rounds' ratios. Each answer is checked: ACCEPTED,
// one reward, no signals.
//
//   npm run bench -- --suite fraud
//   npx tsx scripts/bench/fraud.ts              # alone: concurrency 20 (BENCH_CONCURRENCY, BENCH_DURATION, BENCH_QUICK=1)
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { openDatabase } from '../../src/db.js';
import { uuidv7 } from '../../src/lib/uuid.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import {
  createThrowawayDatabase,
  httpClient,
  runAlone,
  startServerProcess,
  type BenchOptions,
  type BenchResult,
  type BenchSuite,
} from './harness.js';
import { measureRounds, ratioRow, ratios, scenarioTiming, times } from './seed.js';

const SUITE = 'fraud';

const RECORD = `mutation BenchFraud($input: RecordConversionInput!) {
  recordConversion(input: $input) { conversion { id status signals { type } } rewards { id } userErrors { code message } }
}`;

interface Fixture {
  secret: string;
  codes: { off: string; on: string };
  partnerExternalId: string;
}

async function createFixture(url: string): Promise<Fixture> {
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 2, migrate: false });
  try {
    const prisma = db.prisma;
    const ws = await createWorkspace(prisma, 'Benchmark fraud rules');
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const partner = await prisma.partner.create({
      data: { ...tenant, externalId: 'bench-fraud-partner', email: 'owner@partner-corp.test' },
    });
    // The partner's own signup as a customer, with an IP: what the same-IP rule compares with.
    await prisma.conversion.create({
      data: {
        ...tenant,
        type: 'SIGNUP',
        status: 'DISCARDED',
        discardReason: 'NO_ATTRIBUTION',
        idempotencyKey: 'partner-own-signup',
        referredExternalId: partner.externalId,
        occurredAt: new Date(),
        ipHash: 'f'.repeat(64),
      },
    });
    const codes = { off: '', on: '' };
    for (const variant of ['off', 'on'] as const) {
      const on = variant === 'on';
      const program = await prisma.program.create({
        data: {
          ...tenant,
          name: `Fraud rules ${variant}`,
          type: 'AFFILIATE',
          currency: 'USD',
          holdDays: 14,
          fraudSameIp: on,
          fraudEmailDomain: on,
          fraudDisposableEmail: on,
          fraudMaxConversionsPerHour: on ? 100_000 : null,
        },
      });
      const id = uuidv7();
      await prisma.rewardRule.create({
        data: {
          ...tenant,
          id,
          lineageId: id,
          programId: program.id,
          trigger: 'PURCHASE',
          recipient: 'REFERRER',
          kind: 'CASH',
          amountType: 'FIXED',
          fixedAmount: 1000n,
          fixedCurrency: 'USD',
        },
      });
      const enrollment = await prisma.enrollment.create({
        data: { ...tenant, programId: program.id, partnerId: partner.id, status: 'APPROVED' },
      });
      const code = `fraud${variant}${randomBytes(4).toString('hex')}`;
      await prisma.referralLink.create({
        data: {
          ...tenant,
          enrollmentId: enrollment.id,
          programId: program.id,
          partnerId: partner.id,
          code,
          codeNormalized: code,
        },
      });
      codes[variant] = code;
    }
    return { secret: ws.keys.test.secret, codes, partnerExternalId: partner.externalId };
  } finally {
    await db.close();
  }
}

export const fraudSuite: BenchSuite = {
  name: SUITE,
  description: 'recordConversion with every fraud rule on (none tripping) vs every rule off, interleaved rounds',
  async run(options: BenchOptions, log): Promise<BenchResult[]> {
    const database = await createThrowawayDatabase(options.databaseUrl);
    log(`${SUITE}: throw-away database ${database.name}`);
    const run = randomBytes(3).toString('hex');
    let n = 0;
    try {
      const fx = await createFixture(database.url);
      const server = await startServerProcess({
        DATABASE_URL: database.url,
        REFGRAPH_SECRET: randomBytes(32).toString('base64url'),
        APPROVAL_JOB_INTERVAL_MS: '0',
      });
      const client = httpClient(server.url, options.concurrency);
      const record = (variant: 'off' | 'on') => async () => {
        const i = n++;
        const res = await client.request(
          'POST',
          '/graphql',
          JSON.stringify({
            query: RECORD,
            variables: {
              input: {
                type: 'PURCHASE',
                idempotencyKey: `fraud-${run}-${i}`,
                referredExternalId: `buyer-${run}-${i}`,
                referredEmail: `buyer-${i}@customer.test`,
                code: fx.codes[variant],
                amount: { amount: '49.99', currency: 'USD' },
                ip: `198.51.${(i >> 8) & 255}.${i & 255}`,
                userAgent: 'Mozilla/5.0 (bench)',
              },
            },
          }),
          { authorization: `Bearer ${fx.secret}` },
        );
        if (res.status !== 200) return false;
        const payload = (
          JSON.parse(res.body) as {
            data?: {
              recordConversion?: {
                conversion: { status: string; signals: unknown[] } | null;
                rewards: unknown[];
                userErrors: unknown[];
              };
            };
          }
        ).data?.recordConversion;
        return Boolean(
          payload &&
            payload.userErrors.length === 0 &&
            payload.conversion?.status === 'ACCEPTED' &&
            payload.conversion.signals.length === 0 &&
            payload.rewards.length === 1,
        );
      };
      const timing = scenarioTiming(options, options.concurrency);
      const loadBefore = os.loadavg()[0]!;
      let measured: Awaited<ReturnType<typeof measureRounds<'off' | 'on'>>>;
      try {
        measured = await measureRounds(
          { off: record('off'), on: record('on') },
          timing,
          options.quick ? 2 : 4,
          log,
          (name) => `${SUITE}: recordConversion, fraud rules ${name}`,
        );
      } finally {
        client.close();
        await server.stop();
      }
      const loadAfter = os.loadavg()[0]!;
      const q = ratios(measured.on, measured.off);
      const load = `load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}`;
      return [
        ratioRow(
          SUITE,
          'recordConversion: fraud rules off',
          'conversion',
          measured.off,
          options.concurrency,
          undefined,
          {
            notes: `every rule off; ${load}`,
          },
        ),
        ratioRow(
          SUITE,
          'recordConversion: fraud rules on (none trips)',
          'conversion',
          measured.on,
          options.concurrency,
          { name: 'recordConversion: fraud rules off', measured: measured.off },
          {
            notes:
              `throughput ${times(q.throughput)} the rules-off run, p50 ${times(q.p50)}, p99 ${times(q.p99)} (medians of ${measured.on.rounds.length} interleaved rounds); ` +
              `same IP, email domain, disposable email and velocity all evaluated, in the same statements; ${load}`,
          },
        ),
      ];
    } finally {
      await database.drop();
    }
  },
};

const invokedDirectly = process.argv[1]?.endsWith('fraud.ts') ?? false;
if (invokedDirectly) runAlone(fraudSuite, { concurrency: 20 });
