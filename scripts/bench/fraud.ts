// recordConversion with a program's fraud rules on vs off (issue 15): the same conversion — a
// PURCHASE of a new referred person through a code, with an `ip`, a `userAgent` and a
// `referredEmail` — into two programs that differ only in their rules, each with the same 200
// partners (the conversions go round them: a few per partner and hour, as in real traffic):
//   - off: every rule off (fraudSameIp, fraudEmailDomain, fraudDisposableEmail false, no velocity limit);
//   - on: every rule on, none tripping: the same-IP lookup runs (each partner's own signup has another
//     IP), the email checks run (another domain, not disposable), and the velocity count runs with a
//     limit of 50 per hour, which no partner reaches here.
// Measured in ABBA rounds (off on, on off, …) on one server, so drift on a shared machine hits
// both alike; the ratios are the medians of the rounds' ratios, and the server's CPU per conversion
// (its own process: unaffected by how busy the machine is) is reported for each. Each answer is
// checked: ACCEPTED, one reward, no signals.
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
  runLoad,
  startServerProcess,
  type BenchOptions,
  type BenchResult,
  type BenchSuite,
  type LoadResult,
} from './harness.js';
import { times } from './seed.js';

const SUITE = 'fraud';

const RECORD = `mutation BenchFraud($input: RecordConversionInput!) {
  recordConversion(input: $input) { conversion { id status signals { type } } rewards { id } userErrors { code message } }
}`;

/** Partners the conversions go round (a realistic few per partner and hour, so that velocity never trips). */
const PARTNERS = 200;
/** The velocity limit of the rules-on program: above what any partner reaches here. */
const VELOCITY_LIMIT = 50;

type Variant = 'off' | 'on';
type Round = LoadResult & { cpuMs: number; started: number };

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

interface Fixture {
  secret: string;
  /** Per variant, one link code per partner. */
  codes: { off: string[]; on: string[] };
}

async function createFixture(url: string): Promise<Fixture> {
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 2, migrate: false });
  try {
    const prisma = db.prisma;
    const ws = await createWorkspace(prisma, 'Benchmark fraud rules');
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const partners = Array.from({ length: PARTNERS }, (_, i) => ({
      ...tenant,
      id: uuidv7(),
      externalId: `bench-fraud-partner-${i}`,
      email: `owner-${i}@partner-${i}.test`,
    }));
    await prisma.partner.createMany({ data: partners });
    // Each partner's own signup as a customer, with an IP: what the same-IP rule compares with.
    await prisma.conversion.createMany({
      data: partners.map((partner, i) => ({
        ...tenant,
        type: 'SIGNUP' as const,
        status: 'DISCARDED' as const,
        discardReason: 'NO_ATTRIBUTION',
        idempotencyKey: `partner-own-signup-${i}`,
        referredExternalId: partner.externalId,
        occurredAt: new Date(),
        ipHash: randomBytes(32).toString('hex'),
      })),
    });
    const codes: Fixture['codes'] = { off: [], on: [] };
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
          fraudMaxConversionsPerHour: on ? VELOCITY_LIMIT : null,
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
      const enrollments = partners.map((partner) => ({
        ...tenant,
        id: uuidv7(),
        programId: program.id,
        partnerId: partner.id,
        status: 'APPROVED' as const,
      }));
      await prisma.enrollment.createMany({ data: enrollments });
      const links = enrollments.map((e) => {
        const code = `fraud${variant}${randomBytes(5).toString('hex')}`;
        return {
          ...tenant,
          enrollmentId: e.id,
          programId: program.id,
          partnerId: e.partnerId,
          code,
          codeNormalized: code,
        };
      });
      await prisma.referralLink.createMany({ data: links });
      codes[variant] = links.map((l) => l.code);
    }
    return { secret: ws.keys.test.secret, codes };
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
      const record = (variant: Variant) => async () => {
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
                code: fx.codes[variant][i % PARTNERS],
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
      // ABBA rounds (off on, on off, …): a drift in time (tables growing, other work on the
      // machine) falls on both alike instead of always on the second one.
      const rounds = options.quick ? 2 : 6;
      const measured: Record<Variant, Round[]> = { off: [], on: [] };
      const loadBefore = os.loadavg()[0]!;
      try {
        for (let round = 0; round < rounds; round++) {
          for (const variant of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
            log(`  ${SUITE}: recordConversion, fraud rules ${variant} (round ${round + 1}/${rounds})…`);
            const [cpu0, n0] = [server.cpuMs(), n];
            const result = await runLoad(record(variant), {
              concurrency: options.concurrency,
              durationMs: options.durationMs / rounds,
              warmupMs: round === 0 ? options.warmupMs : Math.min(options.warmupMs, 300),
            });
            if (result.errors) log(`    ${result.errors} errors, first: ${result.firstError}`);
            // The scenarios never overlap: the server's CPU meanwhile is this scenario's (warm-up included).
            measured[variant].push({ ...result, cpuMs: server.cpuMs() - cpu0, started: n - n0 });
          }
        }
      } finally {
        client.close();
        await server.stop();
      }
      const loadAfter = os.loadavg()[0]!;
      const load = `load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}`;
      const cpuPerOp = (rs: Round[]) => rs.reduce((a, r) => a + r.cpuMs, 0) / rs.reduce((a, r) => a + r.started, 0);
      const each = (f: (on: Round, off: Round) => number) => median(measured.on.map((r, i) => f(r, measured.off[i]!)));
      const throughput = each((on, off) => on.opsPerSec / off.opsPerSec);
      const p50 = each((on, off) => on.p50Ms / off.p50Ms);
      const cpuOff = cpuPerOp(measured.off);
      const cpuOn = cpuPerOp(measured.on);
      const row = (scenario: string, rs: Round[], notes: string, vsBaseline?: number): BenchResult => {
        const ops = rs.reduce((a, r) => a + r.ops, 0);
        const durationS = rs.reduce((a, r) => a + r.durationS, 0);
        return {
          suite: SUITE,
          scenario,
          unit: 'conversion',
          ops,
          errors: rs.reduce((a, r) => a + r.errors, 0),
          durationS,
          opsPerSec: ops / durationS,
          p50Ms: median(rs.map((r) => r.p50Ms)),
          p99Ms: median(rs.map((r) => r.p99Ms)),
          concurrency: options.concurrency,
          vsBaseline,
          notes,
        };
      };
      return [
        row(
          'recordConversion: fraud rules off',
          measured.off,
          `every rule off; server CPU ${cpuOff.toFixed(2)} ms per conversion; ${load}`,
        ),
        row(
          'recordConversion: fraud rules on (none trips)',
          measured.on,
          `throughput ${times(throughput)} the rules-off run, p50 ${times(p50)} (medians of ${rounds} ABBA rounds' ratios); ` +
            `server CPU ${cpuOn.toFixed(2)} ms per conversion (${times(cpuOn / cpuOff)}); same IP, email domain, disposable email and velocity all evaluated, in the same statements; ${load}`,
          throughput,
        ),
      ];
    } finally {
      await database.drop();
    }
  },
};

const invokedDirectly = process.argv[1]?.endsWith('fraud.ts') ?? false;
if (invokedDirectly) runAlone(fraudSuite, { concurrency: 20 });
