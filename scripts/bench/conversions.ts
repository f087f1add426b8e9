// recordConversion under load, through the real server (its own process), next to two baselines
// measured in the same run on the same throw-away database, at the same concurrency:
//   - a raw single-row INSERT of a conversion row through `pg` (no HTTP, no GraphQL);
//   - a bare graphql-yoga server (its own process too) whose only mutation does that one INSERT;
//     the distance between the two is the price of HTTP + GraphQL alone.
// Scenarios, all with a program of two reward rules (a FIXED referrer rule and a PERCENTAGE
// double-sided one, limited to 12 per referral):
//   - a PURCHASE of a new referred person with a referral code: attribution, a new referral, two
//     rewards with their history rows, three outbox events;
//   - a SUBSCRIPTION payment of an already referred person: the referral row lock and the
//     prior-rewards lookup for the limit;
//   - a replay of an idempotency key already used.
// Each of the three runs in two programs: one with the rules only, one that also has fraud rules
// (same IP as the partner, email domain, disposable email; BENCH_VELOCITY sets a velocity limit)
// and CONVERTED_REFERRALS tiers (BENCH_TIERS, default 1000,5000: above what a quick run converts,
// so every new referral's payment evaluates the tier). The bare Yoga server stays up, and a slice of its load
// runs right before each scenario: each scenario's ratio is to that slice (the load of a shared
// machine drifts within a run), as is its server CPU per operation.
//
//   npm run bench -- --suite conversions --concurrency 20
//
// Also runs alone: `npx tsx scripts/bench/conversions.ts` (same options through env:
// BENCH_CONCURRENCY, BENCH_DURATION seconds, BENCH_QUICK=1).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { openDatabase, type PrismaClient } from '../../src/db.js';
import { uuidv7 } from '../../src/lib/uuid.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import { cpuProfileArgs, exitWithParent, startChildServer } from './seed.js';
import {
  createThrowawayDatabase,
  httpClient,
  runAlone,
  runLoad,
  startServerProcess,
  withClient,
  type BenchOptions,
  type BenchResult,
  type BenchSuite,
  type LoadResult,
} from './harness.js';

const SUITE = 'conversions';
/** Already referred people the SUBSCRIPTION scenario pays for (spread so the referral locks rarely collide). */
const PEOPLE = 500;

const RECORD = `mutation Bench($input: RecordConversionInput!) {
  recordConversion(input: $input) { conversion { id status discardReason } rewards { id amount { amount currency } } replayed userErrors { code message } }
}`;
const INSERT_MUTATION =
  'mutation Bench($key: String!, $amount: String!) { insertConversion(key: $key, amount: $amount) }';
const RAW_INSERT = `INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "idempotencyKey", "referredExternalId", "amount", "currency", "occurredAt")
VALUES (gen_random_uuid(), $1, 'LIVE', 'PURCHASE', 'ACCEPTED', $2, $3, $4, 'USD', now()) RETURNING "id"`;

/** The two programs the scenarios run against: the same rules, partner and referrals; `guarded` adds fraud rules and tiers. */
type Variant = 'plain' | 'guarded';
const VARIANTS: readonly Variant[] = ['plain', 'guarded'];
/**
 * The guarded program's velocity limit (per partner and hour; BENCH_VELOCITY): off by default, as in a
 * new program. The bench's one partner gets thousands of conversions an hour, so a limit that never
 * trips (up to 100 000) would count them all on every conversion: a worst case, not the common one.
 */
const VELOCITY_LIMIT = process.env.BENCH_VELOCITY ? Number(process.env.BENCH_VELOCITY) : null;

interface ProgramFixture {
  programGlobalId: string;
  code: string;
}

interface Fixture {
  workspaceId: string;
  secret: string;
  programs: Record<Variant, ProgramFixture>;
}

async function createFixture(url: string): Promise<Fixture> {
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 2, migrate: false });
  try {
    const prisma = db.prisma;
    const ws = await createWorkspace(prisma, 'Benchmark');
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const partner = await prisma.partner.create({
      data: { ...tenant, externalId: 'bench-partner', email: 'bench@partner.test' },
    });
    // The partner's own signup as a customer, with an IP: what the guarded program's same-IP rule compares with.
    await prisma.conversion.create({
      data: {
        ...tenant,
        type: 'SIGNUP',
        status: 'DISCARDED',
        discardReason: 'NO_ATTRIBUTION',
        idempotencyKey: 'partner-own-signup',
        referredExternalId: partner.externalId,
        occurredAt: new Date(),
        ipHash: randomBytes(32).toString('hex'),
      },
    });
    const programs = {} as Record<Variant, ProgramFixture>;
    for (const variant of VARIANTS) {
      const guarded = variant === 'guarded';
      programs[variant] = await createProgram(prisma, tenant, partner.id, {
        name: `Bench program (${variant})`,
        people: variant,
        guarded,
        tiers: guarded
          ? (process.env.BENCH_TIERS ?? '1000,5000').split(',').filter(Boolean).map(Number)
          : (process.env.BENCH_PLAIN_TIERS ?? '').split(',').filter(Boolean).map(Number),
      });
    }
    return { workspaceId: ws.workspace.id, secret: ws.keys.test.secret, programs };
  } finally {
    await db.close();
  }
}

/** A program with the bench's four rules, the partner enrolled with a link, and PEOPLE referrals already converted. */
async function createProgram(
  prisma: PrismaClient,
  tenant: { workspaceId: string; mode: 'TEST' },
  partnerId: string,
  options: { name: string; guarded: boolean; tiers: number[]; people: string },
): Promise<ProgramFixture> {
  const program = await prisma.program.create({
    data: {
      ...tenant,
      name: options.name,
      type: 'AFFILIATE',
      currency: 'USD',
      holdDays: 14,
      fraudSameIp: options.guarded,
      fraudEmailDomain: options.guarded,
      fraudDisposableEmail: options.guarded,
      fraudMaxConversionsPerHour: options.guarded ? VELOCITY_LIMIT : null,
    },
  });
  for (const data of [
    {
      trigger: 'PURCHASE' as const,
      recipient: 'REFERRER' as const,
      kind: 'CASH' as const,
      amountType: 'FIXED' as const,
      fixedAmount: 1000n,
      fixedCurrency: 'USD',
    },
    {
      trigger: 'PURCHASE' as const,
      recipient: 'REFERRED' as const,
      kind: 'DISCOUNT' as const,
      amountType: 'PERCENTAGE' as const,
      percentageBasisPoints: 1000,
      maxRewardsPerReferral: 12,
    },
    {
      trigger: 'SUBSCRIPTION' as const,
      recipient: 'REFERRER' as const,
      kind: 'CASH' as const,
      amountType: 'PERCENTAGE' as const,
      percentageBasisPoints: 2000,
      maxRewardsPerReferral: 12,
    },
    {
      trigger: 'SUBSCRIPTION' as const,
      recipient: 'REFERRED' as const,
      kind: 'CREDIT' as const,
      amountType: 'FIXED' as const,
      fixedAmount: 100n,
      fixedCurrency: 'USD',
      capAmount: 1_000_000n,
      capCurrency: 'USD',
    },
  ]) {
    const id = uuidv7();
    await prisma.rewardRule.create({ data: { ...tenant, id, lineageId: id, programId: program.id, ...data } });
  }
  for (const [i, threshold] of options.tiers.entries()) {
    await prisma.tier.create({
      data: { ...tenant, programId: program.id, name: `Tier ${i + 1}`, metric: 'CONVERTED_REFERRALS', threshold },
    });
  }
  const enrollment = await prisma.enrollment.create({
    data: { ...tenant, programId: program.id, partnerId, status: 'APPROVED' },
  });
  const code = `bench${randomBytes(4).toString('hex')}`;
  const link = await prisma.referralLink.create({
    data: {
      ...tenant,
      enrollmentId: enrollment.id,
      programId: program.id,
      partnerId,
      code,
      codeNormalized: code,
    },
  });
  await prisma.referral.createMany({
    data: Array.from({ length: PEOPLE }, (_, i) => ({
      ...tenant,
      programId: program.id,
      partnerId,
      linkId: link.id,
      externalId: `subscriber-${options.people}-${i}`,
      status: 'CONVERTED' as const,
    })),
  });
  return { programGlobalId: encodeGlobalID('Program', program.id), code };
}

/** The bare baseline server: graphql-yoga, one mutation, one INSERT. Runs in a child process (see the end of this file). */
async function serveBareYoga(databaseUrl: string, port: number): Promise<void> {
  const { createSchema, createYoga } = await import('graphql-yoga');
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  const workspaceId = process.env.BENCH_WORKSPACE_ID!;
  const yoga = createYoga({
    schema: createSchema({
      typeDefs: 'type Query { ok: Boolean } type Mutation { insertConversion(key: String!, amount: String!): ID! }',
      resolvers: {
        Mutation: {
          insertConversion: async (_: unknown, args: { key: string; amount: string }) =>
            (await pool.query<{ id: string }>(RAW_INSERT, [workspaceId, args.key, `yoga-${args.key}`, args.amount]))
              .rows[0]!.id,
        },
      },
    }),
    logging: false,
    graphiql: false,
  });
  const server = http.createServer(yoga);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))));
}

export const conversionsSuite: BenchSuite = {
  name: SUITE,
  description:
    'recordConversion (2 reward rules) through the server vs a bare Yoga one-INSERT mutation and a raw INSERT through pg',
  async run(options: BenchOptions, log): Promise<BenchResult[]> {
    const database = await createThrowawayDatabase(options.databaseUrl);
    log(`${SUITE}: throw-away database ${database.name}`);
    const results: BenchResult[] = [];
    const load = { concurrency: options.concurrency, durationMs: options.durationMs, warmupMs: options.warmupMs };
    const run = randomBytes(3).toString('hex');
    let n = 0;
    const row = (
      scenario: string,
      unit: string,
      r: LoadResult,
      baseline: LoadResult | null,
      notes?: string,
    ): BenchResult => {
      if (r.errors > 0) log(`  ${scenario}: ${r.errors} errors, first: ${r.firstError}`);
      return {
        suite: SUITE,
        scenario,
        unit,
        ops: r.ops,
        errors: r.errors,
        durationS: r.durationS,
        opsPerSec: r.opsPerSec,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        concurrency: options.concurrency,
        vsBaseline: baseline ? r.opsPerSec / baseline.opsPerSec : undefined,
        notes,
      };
    };
    /** Runs `fn` (a runLoad) and the server CPU it cost per operation started, warm-up included. */
    const withCpu = async (
      cpuMs: () => number,
      fn: () => Promise<LoadResult>,
    ): Promise<{ result: LoadResult; cpuPerOp: number }> => {
      const [cpu0, n0] = [cpuMs(), n];
      const result = await fn();
      return { result, cpuPerOp: (cpuMs() - cpu0) / (n - n0) };
    };
    /** The ratios to the bare Yoga slice run right before the scenario (the load of a shared machine drifts within a run). */
    const adjacent = (r: LoadResult, cpuPerOp: number, b: { result: LoadResult; cpuPerOp: number }) =>
      `${(r.opsPerSec / b.result.opsPerSec).toFixed(2)}× the bare Yoga INSERT run right before it (${Math.round(b.result.opsPerSec)}/s); ` +
      `server CPU ${cpuPerOp.toFixed(2)} ms per operation (${(cpuPerOp / b.cpuPerOp).toFixed(1)}× the bare Yoga's ${b.cpuPerOp.toFixed(2)} ms)`;
    try {
      const fx = await createFixture(database.url);

      log(`${SUITE}: raw single-row INSERT through pg…`);
      const pool = new pg.Pool({ connectionString: database.url, max: options.concurrency });
      const raw = await runLoad(async () => {
        const i = n++;
        await pool.query(RAW_INSERT, [fx.workspaceId, `raw-${run}-${i}`, `raw-${i}`, 4999]);
        return true;
      }, load);
      await pool.end();
      results.push(
        row('raw INSERT (1 row/statement, pg)', 'INSERT', raw, raw, `pg.Pool max ${options.concurrency}; autocommit`),
      );

      log(`${SUITE}: bare Yoga mutation (one INSERT)…`);
      const bare = await startChildServer('scripts/bench/conversions.ts', {
        BENCH_CHILD: 'bare',
        BENCH_DB: database.url,
        BENCH_WORKSPACE_ID: fx.workspaceId,
      });
      const bareClient = httpClient(bare.url, options.concurrency);
      /** A slice of the bare Yoga load: run first, and again right before each recordConversion scenario. */
      const bareSlice = () =>
        withCpu(bare.cpuMs, () =>
          runLoad(async () => {
            const i = n++;
            const res = await bareClient.request(
              'POST',
              '/graphql',
              JSON.stringify({ query: INSERT_MUTATION, variables: { key: `yoga-${run}-${i}`, amount: '4999' } }),
            );
            return res.status === 200 && !res.body.includes('"errors"');
          }, load),
        );
      const stopBare = async () => {
        bareClient.close();
        await bare.stop();
      };
      let bareResult: LoadResult;
      let bareCpu: number;
      try {
        ({ result: bareResult, cpuPerOp: bareCpu } = await bareSlice());
      } catch (error) {
        await stopBare();
        throw error;
      }
      results.push(
        row(
          'bare Yoga mutation: one INSERT',
          'mutation',
          bareResult,
          raw,
          `graphql-yoga + pg.Pool max 10, own process; server CPU ${bareCpu.toFixed(2)} ms per operation`,
        ),
      );

      const server = await startServerProcess(
        {
          DATABASE_URL: database.url,
          REFGRAPH_SECRET: randomBytes(32).toString('base64url'),
          APPROVAL_JOB_INTERVAL_MS: '0',
        },
        cpuProfileArgs(),
      );
      const client = httpClient(server.url, options.concurrency);
      /** True when recorded as expected (`rewards`: how many, or null for any number). */
      const record = async (input: Record<string, unknown>, expect: { rewards: number | null; replayed?: boolean }) => {
        const res = await client.request('POST', '/graphql', JSON.stringify({ query: RECORD, variables: { input } }), {
          authorization: `Bearer ${fx.secret}`,
        });
        if (res.status !== 200) return false;
        const payload = (
          JSON.parse(res.body) as {
            data?: {
              recordConversion?: {
                conversion: { status: string } | null;
                rewards: unknown[];
                replayed: boolean;
                userErrors: unknown[];
              };
            };
          }
        ).data?.recordConversion;
        return Boolean(
          payload &&
            payload.userErrors.length === 0 &&
            payload.conversion?.status === 'ACCEPTED' &&
            (expect.rewards === null || payload.rewards.length === expect.rewards) &&
            payload.replayed === (expect.replayed ?? false),
        );
      };
      try {
        for (const variant of VARIANTS) {
          const program = fx.programs[variant];
          const label = variant === 'guarded' ? ' (fraud rules + tiers)' : '';
          // The same input in both programs: an ip, a userAgent and an email, which only the guarded one checks.
          const signals = (i: number) => ({
            referredEmail: `buyer-${i}@customer.test`,
            ip: `198.51.${(i >> 8) & 255}.${i & 255}`,
            userAgent: 'Mozilla/5.0 (bench)',
          });
          log(`${SUITE}: recordConversion${label}, new referred person (PURCHASE with a code)…`);
          const used: string[] = [];
          const freshBare = await bareSlice();
          const { result: fresh, cpuPerOp: freshCpu } = await withCpu(server.cpuMs, () =>
            runLoad(async () => {
              const i = n++;
              const ok = await record(
                {
                  type: 'PURCHASE',
                  idempotencyKey: `order-${run}-${i}`,
                  referredExternalId: `buyer-${run}-${i}`,
                  code: program.code,
                  programId: program.programGlobalId,
                  amount: { amount: '49.99', currency: 'USD' },
                  ...signals(i),
                },
                { rewards: 2 },
              );
              if (ok && used.length < 1000) used.push(`order-${run}-${i}`);
              return ok;
            }, load),
          );
          results.push(
            row(
              `recordConversion: new referral, 2 rewards${label}`,
              'conversion',
              fresh,
              raw,
              adjacent(fresh, freshCpu, freshBare),
            ),
          );

          log(`${SUITE}: recordConversion${label}, payment of an existing referral (SUBSCRIPTION)…`);
          const repeatBare = await bareSlice();
          const { result: repeat, cpuPerOp: repeatCpu } = await withCpu(server.cpuMs, () =>
            runLoad(() => {
              const i = n++;
              return record(
                {
                  type: 'SUBSCRIPTION',
                  idempotencyKey: `invoice-${run}-${i}`,
                  referredExternalId: `subscriber-${variant}-${i % PEOPLE}`,
                  programId: program.programGlobalId,
                  amount: { amount: '19.00', currency: 'USD' },
                  ...signals(i),
                },
                { rewards: null },
              );
            }, load),
          );
          results.push(
            row(
              `recordConversion: existing referral${label}`,
              'conversion',
              repeat,
              raw,
              `${adjacent(repeat, repeatCpu, repeatBare)}; ${PEOPLE} referrals, limits and caps checked`,
            ),
          );

          log(`${SUITE}: recordConversion${label} replays (idempotency key already used)…`);
          const replayBare = await bareSlice();
          const { result: replay, cpuPerOp: replayCpu } = await withCpu(server.cpuMs, () =>
            runLoad(() => {
              const idempotencyKey = used[n++ % used.length]!;
              return record(
                {
                  type: 'PURCHASE',
                  idempotencyKey,
                  referredExternalId: 'whoever',
                  amount: { amount: '1.00', currency: 'USD' },
                },
                { rewards: 2, replayed: true },
              );
            }, load),
          );
          results.push(
            row(
              `recordConversion: replay of a used key${label}`,
              'replay',
              replay,
              raw,
              adjacent(replay, replayCpu, replayBare),
            ),
          );
        }
      } finally {
        client.close();
        await server.stop();
        await stopBare();
      }

      // Exactly once: every acknowledged conversion stored once, with its rewards.
      await withClient(database.url, async (c) => {
        const counts = (
          await c.query<{ conversions: string; rewards: string; referrals: string }>(
            `SELECT (SELECT count(*) FROM "Conversion" WHERE "mode" = 'TEST') AS conversions,
                    (SELECT count(*) FROM "Reward") AS rewards,
                    (SELECT count(*) FROM "Referral") AS referrals`,
          )
        ).rows[0]!;
        log(
          `${SUITE}: stored ${counts.conversions} conversions, ${counts.rewards} rewards, ${counts.referrals} referrals (warm-ups included)`,
        );
      });
    } finally {
      await database.drop();
    }
    return results;
  },
};

// Run alone, or as the bare Yoga child process.
const invokedDirectly = process.argv[1]?.endsWith('conversions.ts') ?? false;
if (invokedDirectly && process.env.BENCH_CHILD === 'bare') {
  exitWithParent();
  await serveBareYoga(process.env.BENCH_DB!, Number(process.env.BENCH_PORT));
} else if (invokedDirectly) {
  runAlone(conversionsSuite, { concurrency: 20 });
}
