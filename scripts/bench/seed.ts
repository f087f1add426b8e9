// Shared by the dashboard, overhead and coldstart suites of `npm run bench`: a dashboard-sized
// network seeded in bulk (the test factories' `bulkInsert`: one `INSERT … SELECT FROM unnest(…)`
// per chunk of rows), the dashboard query itself, small child servers that say "ready", and result
// rows that carry latency ratios next to the throughput ratio.
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { bulkInsert, factories, uuidv7, type Tenant } from '../../test/helpers/factories.js';
import { processCpuMs, ROOT, runLoad, type BenchOptions, type BenchResult, type LoadResult } from './harness.js';

// ---------------------------------------------------------------------------------------------
// The dashboard query (taken verbatim from test/stats.test.ts, `ST_Dashboard`)
// ---------------------------------------------------------------------------------------------

/** programs → stats, enrollments → partner → stats, balances, links → clicks. */
export const DASHBOARD_QUERY = `query BenchDashboard {
  programs(first: 10) {
    edges {
      node {
        name
        stats { partners activePartners clicks referrals convertedReferrals conversions revenue { amount currency } rewards { approved { amount currency } } }
        enrollments(first: 100) {
          totalCount
          edges {
            node {
              status
              partner {
                externalId
                stats { clicks totalReferrals successfulReferrals pendingReferrals totalRewards { amount currency } }
                balances { currency pending { amount } available { amount } paid { amount } }
                links { code clicks }
              }
            }
          }
        }
      }
    }
  }
}`;

// ---------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------

export interface NetworkSize {
  partners: number;
  /** Clicks over all the network's links (3 % of them discarded). */
  clicks: number;
  /** Conversions (5 % of them DISCARDED); two per converted referral. */
  conversions: number;
}

export interface SeededNetwork {
  programs: number;
  partners: number;
  enrollments: number;
  links: number;
  clicks: number;
  referrals: number;
  conversions: number;
  rewards: number;
  ledgerEntries: number;
  payouts: number;
  ms: number;
}

/** Rows per INSERT statement: large enough to be fast, small enough for comfortable parameter arrays. */
const CHUNK = 20_000;

async function insertAll(
  prisma: PrismaClient,
  table: string,
  rows: ReadonlyArray<Record<string, unknown>>,
): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) await bulkInsert(prisma, table, rows.slice(i, i + CHUNK));
}

/** A small deterministic PRNG (mulberry32), so every run seeds the same shapes. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DAY = 86_400_000;

/**
 * A network for the dashboard: two programs ("Main" with every partner, "Second" with every
 * other one), partners (every tenth INACTIVE), enrollments (some PENDING), one default link per
 * enrollment plus a second link (some disabled) for every third partner in Main, `clicks` clicks
 * spread at random over the links (the last 90 days; a fourth of them repeats, some discarded as bots'), converted referrals with a PURCHASE and a
 * SUBSCRIPTION each (90 % USD, 10 % EUR), pending referrals, a REFERRER reward per accepted
 * conversion (CREATED / APPROVED / PROCESSED / CANCELED / REJECTED) and a REFERRED credit for
 * every fourth, PAID payouts holding the PROCESSED rewards, the ledger's audit entries for them
 * and a manual credit for every fourth partner. Ends with VACUUM ANALYZE (PostgreSQL) so plans
 * are those of a settled database.
 */
export async function seedDashboardNetwork(
  prisma: PrismaClient,
  tenant: Tenant,
  size: NetworkSize,
  seed = 1,
): Promise<SeededNetwork> {
  const started = performance.now();
  const rnd = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const t = tenant;
  const f = factories(prisma, tenant);
  const now = Date.now();
  const ago = (maxDays: number) => new Date(now - Math.floor(rnd() * maxDays * DAY));

  const main = await f.program({ name: `Main ${size.partners}`, type: 'AFFILIATE', currency: 'USD' });
  const second = await f.program({ name: `Second ${size.partners}`, type: 'REFERRAL', currency: 'USD' });
  const rules = new Map<
    string,
    { cash: { id: string; lineageId: string }; credit: { id: string; lineageId: string } }
  >();
  for (const program of [main, second]) {
    const cash = await f.rule(program.id, { fixedAmount: 500n });
    const credit = await f.rule(program.id, { recipient: 'REFERRED', kind: 'CREDIT', fixedAmount: 300n });
    rules.set(program.id, { cash, credit });
  }

  const updatedAt = new Date(now);
  const partners = Array.from({ length: size.partners }, (_, i) => ({
    id: uuidv7(),
    externalId: `bench-${size.partners}-${i}`,
    name: `Partner ${i}`,
    email: `partner${i}@example.com`,
    status: i % 10 === 9 ? ('INACTIVE' as const) : ('ACTIVE' as const),
    createdAt: ago(365),
    updatedAt,
    ...t,
  }));
  const enrollments = partners.flatMap((p, i) => [
    {
      id: uuidv7(),
      programId: main.id,
      partnerId: p.id,
      status: i % 7 === 3 ? ('PENDING' as const) : ('APPROVED' as const),
      createdAt: ago(300),
      updatedAt,
      ...t,
    },
    ...(i % 2 === 0
      ? [
          {
            id: uuidv7(),
            programId: second.id,
            partnerId: p.id,
            status: 'APPROVED' as const,
            createdAt: ago(300),
            updatedAt,
            ...t,
          },
        ]
      : []),
  ]);
  const links = enrollments.flatMap((e, i) => {
    const link = (n: number, extra: { isDefault: boolean; disabledAt: Date | null }) => {
      const code = `b${size.partners}-${i}-${n}-${uuidv7().slice(-6)}`;
      return {
        id: uuidv7(),
        enrollmentId: e.id,
        programId: e.programId,
        partnerId: e.partnerId,
        code,
        codeNormalized: code.toLowerCase(),
        ...extra,
        ...t,
      };
    };
    const rows = [link(0, { isDefault: true, disabledAt: null })];
    if (e.programId === main.id && i % 3 === 0)
      rows.push(link(1, { isDefault: false, disabledAt: i % 6 === 0 ? updatedAt : null }));
    return rows;
  });

  await insertAll(prisma, 'Partner', partners);
  await insertAll(prisma, 'Enrollment', enrollments);
  await insertAll(prisma, 'ReferralLink', links);

  // Clicks, written chunk by chunk (200 000 rows are too many to hold as objects for nothing).
  // Every fourth counted click is a visitor's repeat (not unique) and every other discarded one a
  // bot's, by position (no extra random draws: the rest of the data stays what it was).
  for (let done = 0; done < size.clicks; done += CHUNK) {
    const rows = Array.from({ length: Math.min(CHUNK, size.clicks - done) }, (_, i) => {
      const l = pick(links);
      const occurredAt = ago(90);
      const discarded = rnd() < 0.03;
      return {
        id: uuidv7(),
        linkId: l.id,
        programId: l.programId,
        partnerId: l.partnerId,
        occurredAt,
        discarded,
        discardReason: discarded ? ((done + i) % 2 === 0 ? 'BOT' : 'PARTNER_INACTIVE') : null,
        isUnique: !discarded && (done + i) % 4 !== 0,
        ...t,
      };
    });
    await bulkInsert(prisma, 'Click', rows);
  }

  // Referrals: converted ones (two conversions each), then pending ones.
  const convertedCount = Math.ceil(size.conversions / 2);
  const pendingCount = Math.ceil(size.conversions / 5);
  const referrals = Array.from({ length: convertedCount + pendingCount }, (_, i) => {
    const l = pick(links);
    const converted = i < convertedCount;
    const createdAt = ago(120);
    return {
      id: uuidv7(),
      programId: l.programId,
      partnerId: l.partnerId,
      linkId: l.id,
      externalId: `ref-${size.partners}-${i}`,
      status: converted ? ('CONVERTED' as const) : ('PENDING' as const),
      createdAt,
      convertedAt: converted ? new Date(createdAt.getTime() + DAY) : null,
      ...t,
    };
  });
  await insertAll(prisma, 'Referral', referrals);

  const conversions = referrals.slice(0, convertedCount).flatMap((r, i) => {
    const currency = rnd() < 0.1 ? 'EUR' : 'USD';
    return (['PURCHASE', 'SUBSCRIPTION'] as const).slice(0, i * 2 + 1 < size.conversions ? 2 : 1).map((type, k) => {
      const discarded = rnd() < 0.05;
      return {
        id: uuidv7(),
        type,
        status: discarded ? ('DISCARDED' as const) : ('ACCEPTED' as const),
        discardReason: discarded ? 'BENCH' : null,
        idempotencyKey: `conv-${size.partners}-${i}-${k}`,
        referredExternalId: r.externalId,
        amount: BigInt(1000 + Math.floor(rnd() * 19_000)),
        currency,
        occurredAt: new Date(r.createdAt.getTime() + DAY + k * 30 * DAY),
        programId: r.programId,
        partnerId: r.partnerId,
        referralId: r.id,
        linkId: r.linkId,
        ...t,
      };
    });
  });
  await insertAll(prisma, 'Conversion', conversions);

  // Rewards, and PAID payouts grouping the PROCESSED ones (one per partner and currency).
  const statuses = ['CREATED', 'APPROVED', 'PROCESSED', 'CANCELED', 'REJECTED'] as const;
  const weights = [0.3, 0.7, 0.95, 0.98, 1];
  const payouts = new Map<string, { id: string; partnerId: string; currency: string; amount: bigint }>();
  const rewards: Array<
    Record<string, unknown> & {
      id: string;
      partnerId: string;
      status: string;
      amount: bigint;
      currency: string;
      recipient: string;
      payoutId: string | null;
    }
  > = [];
  for (const [i, c] of conversions.entries()) {
    if (c.status !== 'ACCEPTED') continue;
    const rule = rules.get(c.programId)!;
    const draw = rnd();
    const status = statuses[weights.findIndex((w) => draw < w)]!;
    let payoutId: string | null = null;
    const amount = c.amount / 10n;
    if (status === 'PROCESSED') {
      const key = `${c.partnerId}:${c.currency}`;
      let payout = payouts.get(key);
      if (!payout) {
        payout = { id: uuidv7(), partnerId: c.partnerId, currency: c.currency, amount: 0n };
        payouts.set(key, payout);
      }
      payout.amount += amount;
      payoutId = payout.id;
    }
    const base = {
      programId: c.programId,
      partnerId: c.partnerId,
      conversionId: c.id,
      approveAfter: new Date(now + 14 * DAY),
      createdAt: c.occurredAt,
      updatedAt,
      ...t,
    };
    rewards.push({
      ...base,
      id: uuidv7(),
      ruleId: rule.cash.id,
      ruleLineageId: rule.cash.lineageId,
      recipient: 'REFERRER',
      kind: 'CASH',
      status,
      amount,
      currency: c.currency,
      payoutId,
    });
    if (i % 4 === 0) {
      rewards.push({
        ...base,
        id: uuidv7(),
        ruleId: rule.credit.id,
        ruleLineageId: rule.credit.lineageId,
        recipient: 'REFERRED',
        kind: 'CREDIT',
        status: 'APPROVED',
        amount: 300n,
        currency: c.currency,
        payoutId: null,
      });
    }
  }
  const payoutRows = [...payouts.values()].map((p) => ({
    ...p,
    status: 'PAID' as const,
    method: 'bank_transfer',
    paidAt: updatedAt,
    updatedAt,
    ...t,
  }));
  await insertAll(prisma, 'Payout', payoutRows);
  await insertAll(prisma, 'Reward', rewards);

  // The ledger: audit entries of approved and paid rewards (never summed), and manual credits.
  const ledger: Array<Record<string, unknown>> = [];
  for (const w of rewards) {
    if (w.recipient !== 'REFERRER' || (w.status !== 'APPROVED' && w.status !== 'PROCESSED')) continue;
    ledger.push({
      id: uuidv7(),
      partnerId: w.partnerId,
      type: 'REWARD_APPROVED',
      amount: w.amount,
      currency: w.currency,
      rewardId: w.id,
      payoutId: null,
      note: null,
      ...t,
    });
    if (w.status === 'PROCESSED') {
      ledger.push({
        id: uuidv7(),
        partnerId: w.partnerId,
        type: 'PAYOUT',
        amount: -w.amount,
        currency: w.currency,
        rewardId: w.id,
        payoutId: w.payoutId,
        note: null,
        ...t,
      });
    }
  }
  partners.forEach((p, i) => {
    if (i % 4 === 0)
      ledger.push({
        id: uuidv7(),
        partnerId: p.id,
        type: 'CREDIT',
        amount: 100n,
        currency: 'EUR',
        rewardId: null,
        payoutId: null,
        note: 'goodwill',
        ...t,
      });
  });
  await insertAll(prisma, 'LedgerEntry', ledger);

  return {
    programs: 2,
    partners: partners.length,
    enrollments: enrollments.length,
    links: links.length,
    clicks: size.clicks,
    referrals: referrals.length,
    conversions: conversions.length,
    rewards: rewards.length,
    ledgerEntries: ledger.length,
    payouts: payoutRows.length,
    ms: performance.now() - started,
  };
}

// ---------------------------------------------------------------------------------------------
// Child servers
// ---------------------------------------------------------------------------------------------

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface ChildServer {
  url: string;
  /** CPU time (user + system) the child has used so far, in ms (see processCpuMs). */
  cpuMs(): number;
  stop(): Promise<void>;
}

/**
 * `node --import tsx <script>` in its own process (NODE_ENV=production), with BENCH_PORT set;
 * resolves once the child prints "ready" on stdout. The child gets an IPC channel: calling
 * `exitWithParent()` there ends it when this process goes away, even without a SIGTERM.
 */
export async function startChildServer(script: string, env: Record<string, string>): Promise<ChildServer> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', BENCH_PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  child.channel?.unref();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not become ready within 60 s`));
    }, 60_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited during start-up (code ${code})`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    cpuMs: () => processCpuMs(child.pid!),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** In a child of startChildServer: exit when the parent process is gone (its IPC channel closes). */
export function exitWithParent(): void {
  process.on('disconnect', () => process.exit(0));
  process.channel?.unref();
}

/** Wait for servers started in parallel; if one fails, stop the others and throw its error. */
export async function startedTogether<T extends { stop(): Promise<unknown> }>(starts: Array<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  for (const s of settled) if (s.status === 'fulfilled') await s.value.stop().catch(() => {});
  throw failed.reason;
}

/**
 * `BENCH_CPU_PROF=<dir>`: node flags that make the server under test write a V8 CPU profile
 * (`--cpu-prof`) into that directory when it stops; open it in Chrome DevTools or speedscope.
 */
export function cpuProfileArgs(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/** A result line with latency ratios against the scenario's baseline (same run, same concurrency). */
export interface RatioResult extends BenchResult {
  /** The scenario this one is compared with. */
  baseline?: string;
  /** p50 / the baseline's p50 (lower is better; 1.5 means 50 % slower); the median over rounds. */
  p50Ratio?: number;
  /** p99 / the baseline's p99; the median over rounds. */
  p99Ratio?: number;
  /** SQL statements one operation sent, where counted. */
  statementsPerOp?: number;
  /** Load average (1 minute) when the scenario started. */
  loadAverage?: number;
  /** Each round's throughput, p50 and p99 (see measureRounds). */
  rounds?: Array<{ opsPerSec: number; p50Ms: number; p99Ms: number }>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** A scenario measured in rounds: every round's result, and the whole. */
export interface Measured {
  rounds: LoadResult[];
  /** Operations and time summed over the rounds; p50 and p99 are the medians of the rounds'. */
  combined: LoadResult;
  /** 1-minute load average when the first round started. */
  loadAverage: number;
}

/**
 * Measure several scenarios in interleaved rounds (A B C, A B C, …), each round a share of the
 * measured time, so that drift on a shared machine hits every scenario alike and each ratio can
 * be taken between neighbours in time (see `ratios`). The first round warms up as the harness
 * does; later rounds only briefly (the servers are warm).
 */
export async function measureRounds<K extends string>(
  scenarios: Record<K, () => Promise<boolean>>,
  timing: { concurrency: number; durationMs: number; warmupMs: number },
  rounds: number,
  log: (line: string) => void,
  label: (name: K) => string = (name) => name,
): Promise<Record<K, Measured>> {
  const out = {} as Record<K, Measured>;
  for (let round = 0; round < rounds; round++) {
    for (const name of Object.keys(scenarios) as K[]) {
      log(`  ${label(name)}${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ''}…`);
      const loadAverage = os.loadavg()[0]!;
      const r = await runLoad(scenarios[name], {
        concurrency: timing.concurrency,
        durationMs: timing.durationMs / rounds,
        warmupMs: round === 0 ? timing.warmupMs : Math.min(timing.warmupMs, 300),
      });
      if (r.errors) log(`    ${r.errors} errors, first: ${r.firstError}`);
      out[name] ??= { rounds: [], combined: r, loadAverage };
      out[name].rounds.push(r);
    }
  }
  for (const m of Object.values(out) as Measured[]) {
    const ops = m.rounds.reduce((n, r) => n + r.ops, 0);
    const durationS = m.rounds.reduce((n, r) => n + r.durationS, 0);
    m.combined = {
      ops,
      errors: m.rounds.reduce((n, r) => n + r.errors, 0),
      durationS,
      opsPerSec: ops / durationS,
      p50Ms: median(m.rounds.map((r) => r.p50Ms)),
      p99Ms: median(m.rounds.map((r) => r.p99Ms)),
      firstError: m.rounds.find((r) => r.firstError)?.firstError,
    };
  }
  return out;
}

/** Ratios to a baseline measured in the same rounds: the median over rounds of each round's ratio. */
export function ratios(x: Measured, base: Measured): { throughput: number; p50: number; p99: number } {
  const each = (f: (r: LoadResult, b: LoadResult) => number) =>
    median(x.rounds.map((r, i) => f(r, base.rounds[i] ?? base.combined)));
  return {
    throughput: each((r, b) => r.opsPerSec / b.opsPerSec),
    p50: each((r, b) => r.p50Ms / b.p50Ms),
    p99: each((r, b) => r.p99Ms / b.p99Ms),
  };
}

export function ratioRow(
  suite: string,
  scenario: string,
  unit: string,
  m: Measured,
  concurrency: number,
  baseline?: { name: string; measured: Measured },
  extra: Partial<RatioResult> = {},
): RatioResult {
  const r = m.combined;
  const q = baseline ? ratios(m, baseline.measured) : undefined;
  return {
    suite,
    scenario,
    unit,
    ops: r.ops,
    errors: r.errors,
    durationS: r.durationS,
    opsPerSec: r.opsPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    concurrency,
    ...(baseline && q ? { baseline: baseline.name, vsBaseline: q.throughput, p50Ratio: q.p50, p99Ratio: q.p99 } : {}),
    loadAverage: m.loadAverage,
    ...(m.rounds.length > 1
      ? { rounds: m.rounds.map((x) => ({ opsPerSec: x.opsPerSec, p50Ms: x.p50Ms, p99Ms: x.p99Ms })) }
      : {}),
    ...extra,
  };
}

/** `1.23×` */
export const times = (x: number | undefined): string =>
  x === undefined || !Number.isFinite(x) ? '–' : `${x.toFixed(2)}×`;

/**
 * Measured time per scenario for the suites that run many short scenarios (dashboard, overhead):
 * the harness's in full mode (split into `rounds`); in quick mode at most 1 s after 0.25 s of
 * warm-up and one round, so that every suite together stays well under the 3-minute budget of
 * `--quick` (quick numbers are a smoke test: a quarter second does not warm V8 up).
 */
export function scenarioTiming(
  options: BenchOptions,
  concurrency: number,
): { concurrency: number; durationMs: number; warmupMs: number; rounds: number } {
  return options.quick
    ? {
        concurrency,
        durationMs: Math.min(options.durationMs, 1_000),
        warmupMs: Math.min(options.warmupMs, 250),
        rounds: 1,
      }
    : { concurrency, durationMs: options.durationMs, warmupMs: options.warmupMs, rounds: 3 };
}
