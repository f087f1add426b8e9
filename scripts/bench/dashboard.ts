// The nested dashboard query (issue 6, item 1) through the real server (its own process, over
// HTTP), next to the same data computed by hand-written `pg` code behind a tiny HTTP handler (its
// own process too, the same pool size), measured in the same run on the same throw-away database:
//   - "pg batched GROUP BY": the key lookup, the programs page, then the program figures and the
//     enrollments page in parallel, then the partner figures in parallel — one GROUP BY per kind
//     of figure over every parent at once (the app's own strategy, without GraphQL and Prisma;
//     partner clicks (unique ones) summed from the per-link counts, so the clicks are read twice, not three times);
//   - "pg single SQL": one statement (key lookup included) that returns the finished JSON.
// Before measuring, both answers must be deep-equal to the app's. In full mode the three variants
// run in three interleaved rounds and each ratio is the median of the rounds' (seed.ts).
// Seeded: a network of 10 partners and one of 100 (each in its own workspace: two programs,
// 200 000 clicks and 50 000 conversions per network in full mode, a twentieth of that with --quick).
// Each size is measured at concurrency 1 and 20; the p50/p99 ratios are against the faster
// hand-written variant of the same size and concurrency. SQL statements per request are counted
// once per size on an in-process instance of the app (`db.statements`).
//
//   npm run bench -- --suite dashboard [--quick]
//
// Also runs alone: `npx tsx scripts/bench/dashboard.ts` (BENCH_QUICK=1, BENCH_DURATION seconds).
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db.js';
import { formatMinor } from '../../src/lib/money.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import {
  createThrowawayDatabase,
  httpClient,
  runAlone,
  startServerProcess,
  withClient,
  type BenchOptions,
  type BenchResult,
  type BenchSuite,
  type ServerProcess,
} from './harness.js';
import {
  cpuProfileArgs,
  DASHBOARD_QUERY,
  exitWithParent,
  measureRounds,
  ratioRow,
  ratios,
  scenarioTiming,
  seedDashboardNetwork,
  startChildServer,
  startedTogether,
  times,
  type NetworkSize,
  type RatioResult,
} from './seed.js';

const SUITE = 'dashboard';
const SIZES = [10, 100] as const;
const CONCURRENCIES = [1, 20] as const;
/** Per network. */
const FULL: Omit<NetworkSize, 'partners'> = { clicks: 200_000, conversions: 50_000 };
const QUICK: Omit<NetworkSize, 'partners'> = { clicks: 10_000, conversions: 2_500 };
/** The app's default DATABASE_POOL_SIZE; the hand-written server gets the same. */
const POOL = 10;

// ---------------------------------------------------------------------------------------------
// The hand-written versions
// ---------------------------------------------------------------------------------------------

type Row = Record<string, unknown>;
type Run = (sql: string, params: unknown[]) => Promise<Row[]>;

interface Tenant {
  ws: string;
  mode: string;
}

const KEY_SQL = `SELECT "workspaceId" AS ws, "mode"::text AS mode FROM "ApiKey" WHERE "secretHash" = $1 AND "revokedAt" IS NULL`;

const money = (amount: unknown, currency: string) => ({
  amount: formatMinor(BigInt(String(amount ?? 0)), currency),
  currency,
});
const byCurrency = (a: { currency: string }, b: { currency: string }) =>
  a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0;
function group<T>(rows: Row[], key: string, map: (row: Row) => T): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const k = String(row[key]);
    let list = out.get(k);
    if (!list) {
      list = [];
      out.set(k, list);
    }
    list.push(map(row));
  }
  return out;
}

/**
 * The dashboard's data by batched GROUP BYs: 4 round trips (key, programs, program figures +
 * enrollments, partner figures), 12 statements whatever the number of partners.
 */
export async function dashboardBatched(run: Run, secretHash: string): Promise<unknown> {
  const key = (await run(KEY_SQL, [secretHash]))[0] as Tenant | undefined;
  if (!key) return { errors: [{ message: 'Unknown secret key.' }] };
  const t = [key.ws, key.mode];
  const tenant = (alias: string) => `${alias}."workspaceId" = $1::uuid AND ${alias}."mode" = $2::"Mode"`;
  const programs = await run(
    `SELECT p."id", p."name" FROM "Program" p WHERE ${tenant('p')} ORDER BY p."id" DESC LIMIT 10`,
    t,
  );
  const programIds = programs.map((p) => p.id as string);
  const [enrollmentCounts, clicks, referrals, conversions, approved, enrollments] = await Promise.all([
    run(
      `SELECT e."programId" AS id, count(*)::int AS total, (count(*) FILTER (WHERE e."status" = 'APPROVED' AND pa."status" = 'ACTIVE'))::int AS active
         FROM "Enrollment" e JOIN "Partner" pa ON pa."id" = e."partnerId" AND pa."workspaceId" = e."workspaceId" AND pa."mode" = e."mode"
        WHERE ${tenant('e')} AND e."programId" = ANY($3::uuid[]) GROUP BY e."programId"`,
      [...t, programIds],
    ),
    run(
      `SELECT k."programId" AS id, count(*)::int AS n FROM "Click" k WHERE ${tenant('k')} AND k."programId" = ANY($3::uuid[]) AND NOT k."discarded" AND k."isUnique" GROUP BY k."programId"`,
      [...t, programIds],
    ),
    run(
      `SELECT r."programId" AS id, count(*)::int AS total, (count(*) FILTER (WHERE r."status" = 'CONVERTED'))::int AS converted
         FROM "Referral" r WHERE ${tenant('r')} AND r."programId" = ANY($3::uuid[]) GROUP BY r."programId"`,
      [...t, programIds],
    ),
    run(
      `SELECT c."programId" AS id, c."currency", (count(*) FILTER (WHERE c."type" <> 'REFUND'))::int AS n,
              (sum(c."amount") FILTER (WHERE c."type" IN ('PURCHASE', 'SUBSCRIPTION')))::text AS revenue
         FROM "Conversion" c WHERE ${tenant('c')} AND c."programId" = ANY($3::uuid[]) AND c."status" = 'ACCEPTED' GROUP BY c."programId", c."currency"`,
      [...t, programIds],
    ),
    run(
      `SELECT w."programId" AS id, w."currency", sum(w."amount")::text AS total FROM "Reward" w
        WHERE ${tenant('w')} AND w."programId" = ANY($3::uuid[]) AND w."status" = 'APPROVED' GROUP BY w."programId", w."currency"`,
      [...t, programIds],
    ),
    run(
      `SELECT e."id", e."programId", e."status"::text AS status, e."partnerId", pa."externalId"
         FROM unnest($3::uuid[]) AS p("id")
         CROSS JOIN LATERAL (SELECT e.* FROM "Enrollment" e WHERE e."programId" = p."id" AND ${tenant('e')} ORDER BY e."id" LIMIT 100) e
         JOIN "Partner" pa ON pa."id" = e."partnerId" AND pa."workspaceId" = e."workspaceId" AND pa."mode" = e."mode"
        ORDER BY e."programId", e."id"`,
      [...t, programIds],
    ),
  ]);
  const partnerIds = [...new Set(enrollments.map((e) => e.partnerId as string))];
  // A click carries its link's partner: the partners' (unique) clicks are the sums of their links' (one pass over the clicks, not two).
  const [partnerReferrals, rewardTotals, balances, links] = await Promise.all([
    run(
      `SELECT r."partnerId" AS id, count(*)::int AS total, (count(*) FILTER (WHERE r."status" = 'CONVERTED'))::int AS converted,
              (count(*) FILTER (WHERE r."status" = 'PENDING'))::int AS pending
         FROM "Referral" r WHERE ${tenant('r')} AND r."partnerId" = ANY($3::uuid[]) GROUP BY r."partnerId"`,
      [...t, partnerIds],
    ),
    run(
      `SELECT w."partnerId" AS id, w."currency", sum(w."amount")::text AS total FROM "Reward" w
        WHERE ${tenant('w')} AND w."partnerId" = ANY($3::uuid[]) AND w."recipient" = 'REFERRER' AND w."status" NOT IN ('CANCELED', 'REJECTED')
        GROUP BY w."partnerId", w."currency"`,
      [...t, partnerIds],
    ),
    run(
      `SELECT id, currency, sum(pending)::text AS pending, sum(available)::text AS available, sum(paid)::text AS paid FROM (
         SELECT w."partnerId" AS id, w."currency", sum(w."amount") AS pending, NULL::numeric AS available, NULL::numeric AS paid
           FROM "Reward" w
          WHERE ${tenant('w')} AND w."partnerId" = ANY($3::uuid[]) AND w."recipient" = 'REFERRER' AND w."kind" = 'CASH' AND w."status" = 'CREATED'
          GROUP BY w."partnerId", w."currency"
         UNION ALL
         SELECT l."partnerId", l."currency", NULL, sum(l."amount"),
                -sum(l."amount") FILTER (WHERE l."type" = 'PAYOUT' AND (l."payoutId" IS NULL OR po."status" = 'PAID'))
           FROM "LedgerEntry" l LEFT JOIN "Payout" po ON po."id" = l."payoutId"
          WHERE ${tenant('l')} AND l."partnerId" = ANY($3::uuid[])
          GROUP BY l."partnerId", l."currency") b
       GROUP BY id, currency`,
      [...t, partnerIds],
    ),
    run(
      `SELECT l."id", l."partnerId", l."code", coalesce(k.n, 0)::int AS clicks, coalesce(k.u, 0)::int AS "uniqueClicks"
         FROM "ReferralLink" l
         LEFT JOIN (SELECT k."linkId", count(*) AS n, count(*) FILTER (WHERE k."isUnique") AS u FROM "Click" k
                     WHERE ${tenant('k')} AND k."partnerId" = ANY($3::uuid[]) AND NOT k."discarded" GROUP BY k."linkId") k ON k."linkId" = l."id"
        WHERE ${tenant('l')} AND l."partnerId" = ANY($3::uuid[])
        ORDER BY l."id"`,
      [...t, partnerIds],
    ),
  ]);

  const one = <T>(rows: Row[], map: (row: Row) => T) => new Map(rows.map((r) => [String(r.id), map(r)]));
  const enrollmentCountOf = one(enrollmentCounts, (r) => ({ total: r.total as number, active: r.active as number }));
  const clicksOf = one(clicks, (r) => r.n as number);
  const referralsOf = one(referrals, (r) => ({ total: r.total as number, converted: r.converted as number }));
  const conversionsOf = group(conversions, 'id', (r) => r);
  const approvedOf = group(approved, 'id', (r) => money(r.total, r.currency as string));
  const enrollmentsOf = group(enrollments, 'programId', (r) => r);
  const partnerClicksOf = new Map<string, number>();
  for (const l of links)
    partnerClicksOf.set(
      String(l.partnerId),
      (partnerClicksOf.get(String(l.partnerId)) ?? 0) + (l.uniqueClicks as number),
    );
  const partnerReferralsOf = one(partnerReferrals, (r) => r);
  const rewardTotalsOf = group(rewardTotals, 'id', (r) => money(r.total, r.currency as string));
  const balancesOf = group(balances, 'id', (r) => ({
    currency: r.currency as string,
    pending: { amount: formatMinor(BigInt(String(r.pending ?? 0)), r.currency as string) },
    available: { amount: formatMinor(BigInt(String(r.available ?? 0)), r.currency as string) },
    paid: { amount: formatMinor(BigInt(String(r.paid ?? 0)), r.currency as string) },
  }));
  const linksOf = group(links, 'partnerId', (r) => ({ code: r.code as string, clicks: r.clicks as number }));

  const partner = (id: string, externalId: string) => {
    const refs = partnerReferralsOf.get(id);
    return {
      externalId,
      stats: {
        clicks: partnerClicksOf.get(id) ?? 0,
        totalReferrals: (refs?.total as number) ?? 0,
        successfulReferrals: (refs?.converted as number) ?? 0,
        pendingReferrals: (refs?.pending as number) ?? 0,
        totalRewards: (rewardTotalsOf.get(id) ?? []).sort(byCurrency),
      },
      balances: (balancesOf.get(id) ?? []).sort(byCurrency),
      links: linksOf.get(id) ?? [],
    };
  };
  return {
    data: {
      programs: {
        edges: programs.map((p) => {
          const id = p.id as string;
          const counts = enrollmentCountOf.get(id) ?? { total: 0, active: 0 };
          const conv = conversionsOf.get(id) ?? [];
          return {
            node: {
              name: p.name,
              stats: {
                partners: counts.total,
                activePartners: counts.active,
                clicks: clicksOf.get(id) ?? 0,
                referrals: referralsOf.get(id)?.total ?? 0,
                convertedReferrals: referralsOf.get(id)?.converted ?? 0,
                conversions: conv.reduce((n, r) => n + (r.n as number), 0),
                revenue: conv
                  .filter((r) => r.currency !== null && r.revenue !== null)
                  .map((r) => money(r.revenue, r.currency as string))
                  .sort(byCurrency),
                rewards: { approved: (approvedOf.get(id) ?? []).sort(byCurrency) },
              },
              enrollments: {
                totalCount: counts.total,
                edges: (enrollmentsOf.get(id) ?? []).map((e) => ({
                  node: { status: e.status, partner: partner(e.partnerId as string, e.externalId as string) },
                })),
              },
            },
          };
        }),
      },
    },
  };
}

/** The caller's tenant on table alias \`t\`, from the key looked up in CTE k (an InitPlan: no join per row). */
const tk = (t: string) => `${t}."workspaceId" = (SELECT ws FROM k) AND ${t}."mode" = (SELECT "mode" FROM k)`;

/** Money as the API shows it, in SQL: `{ amount: "12.50", currency }` with the currency's minor digits from $2. */
const moneySql = (amount: string, currency: string) =>
  `json_build_object('amount', ${amountSql(amount, currency)}, 'currency', ${currency})`;
const amountSql = (amount: string, currency: string) =>
  `(CASE WHEN coalesce(($2::jsonb ->> ${currency})::int, 2) = 0 THEN (${amount})::text
         ELSE round((${amount})::numeric / (10::numeric ^ coalesce(($2::jsonb ->> ${currency})::int, 2)), coalesce(($2::jsonb ->> ${currency})::int, 2))::text END)`;

/**
 * The dashboard's data in one statement, key lookup included, returned as the finished JSON
 * text (the handler sends it as it comes). Clicks are read twice, each pass through an index:
 * the programs' unique clicks, and the page's partners' clicks per link (unique ones summed per partner).
 */
export const SINGLE_SQL = `
WITH k AS MATERIALIZED (
  SELECT "workspaceId" AS ws, "mode" FROM "ApiKey" WHERE "secretHash" = $1 AND "revokedAt" IS NULL
), pr AS MATERIALIZED (
  SELECT p."id", p."name" FROM "Program" p WHERE ${tk('p')} ORDER BY p."id" DESC LIMIT 10
), en AS MATERIALIZED (
  SELECT e."id", e."programId", e."partnerId", e."status" FROM pr
   CROSS JOIN LATERAL (SELECT e.* FROM "Enrollment" e WHERE ${tk('e')} AND e."programId" = pr."id" ORDER BY e."id" LIMIT 100) e
), pa AS MATERIALIZED (
  SELECT pa."id", pa."externalId" FROM "Partner" pa
   WHERE ${tk('pa')} AND pa."id" = ANY(ARRAY(SELECT DISTINCT "partnerId" FROM en))
), ec AS MATERIALIZED (
  SELECT e."programId" AS id, count(*)::int AS total, (count(*) FILTER (WHERE e."status" = 'APPROVED' AND pa."status" = 'ACTIVE'))::int AS active
    FROM "Enrollment" e
    JOIN "Partner" pa ON pa."id" = e."partnerId" AND pa."workspaceId" = e."workspaceId" AND pa."mode" = e."mode"
   WHERE ${tk('e')} AND e."programId" = ANY(ARRAY(SELECT "id" FROM pr)) GROUP BY e."programId"
), pc AS MATERIALIZED (
  SELECT c."programId" AS id, count(*)::int AS n FROM "Click" c
   WHERE ${tk('c')} AND c."programId" = ANY(ARRAY(SELECT "id" FROM pr)) AND NOT c."discarded" AND c."isUnique" GROUP BY c."programId"
), lc AS MATERIALIZED (
  SELECT c."linkId", c."partnerId", count(*)::int AS n, (count(*) FILTER (WHERE c."isUnique"))::int AS u FROM "Click" c
   WHERE ${tk('c')} AND c."partnerId" = ANY(ARRAY(SELECT "id" FROM pa)) AND NOT c."discarded" GROUP BY c."linkId", c."partnerId"
), rc AS MATERIALIZED (
  SELECT r."programId" AS id, count(*)::int AS total, (count(*) FILTER (WHERE r."status" = 'CONVERTED'))::int AS converted
    FROM "Referral" r WHERE ${tk('r')} AND r."programId" = ANY(ARRAY(SELECT "id" FROM pr)) GROUP BY r."programId"
), cv AS MATERIALIZED (
  SELECT c."programId" AS id, c."currency", count(*) FILTER (WHERE c."type" <> 'REFUND') AS n, sum(c."amount") FILTER (WHERE c."type" IN ('PURCHASE', 'SUBSCRIPTION')) AS revenue
    FROM "Conversion" c
   WHERE ${tk('c')} AND c."programId" = ANY(ARRAY(SELECT "id" FROM pr)) AND c."status" = 'ACCEPTED' GROUP BY c."programId", c."currency"
), ap AS MATERIALIZED (
  SELECT w."programId" AS id, w."currency", sum(w."amount") AS total FROM "Reward" w
   WHERE ${tk('w')} AND w."programId" = ANY(ARRAY(SELECT "id" FROM pr)) AND w."status" = 'APPROVED' GROUP BY w."programId", w."currency"
), prf AS MATERIALIZED (
  SELECT r."partnerId" AS id, count(*)::int AS total, (count(*) FILTER (WHERE r."status" = 'CONVERTED'))::int AS converted,
         (count(*) FILTER (WHERE r."status" = 'PENDING'))::int AS pending
    FROM "Referral" r WHERE ${tk('r')} AND r."partnerId" = ANY(ARRAY(SELECT "id" FROM pa)) GROUP BY r."partnerId"
), rt AS MATERIALIZED (
  SELECT w."partnerId" AS id, w."currency", sum(w."amount") AS total FROM "Reward" w
   WHERE ${tk('w')} AND w."partnerId" = ANY(ARRAY(SELECT "id" FROM pa)) AND w."recipient" = 'REFERRER' AND w."status" NOT IN ('CANCELED', 'REJECTED')
   GROUP BY w."partnerId", w."currency"
), bal AS MATERIALIZED (
  SELECT id, currency, coalesce(sum(pending), 0) AS pending, coalesce(sum(available), 0) AS available, coalesce(sum(paid), 0) AS paid FROM (
    SELECT w."partnerId" AS id, w."currency", sum(w."amount") AS pending, NULL::numeric AS available, NULL::numeric AS paid
      FROM "Reward" w
     WHERE ${tk('w')} AND w."partnerId" = ANY(ARRAY(SELECT "id" FROM pa)) AND w."recipient" = 'REFERRER' AND w."kind" = 'CASH' AND w."status" = 'CREATED'
     GROUP BY w."partnerId", w."currency"
    UNION ALL
    SELECT l."partnerId", l."currency", NULL, sum(l."amount"),
           -sum(l."amount") FILTER (WHERE l."type" = 'PAYOUT' AND (l."payoutId" IS NULL OR po."status" = 'PAID'))
      FROM "LedgerEntry" l LEFT JOIN "Payout" po ON po."id" = l."payoutId"
     WHERE ${tk('l')} AND l."partnerId" = ANY(ARRAY(SELECT "id" FROM pa))
     GROUP BY l."partnerId", l."currency") b
  GROUP BY id, currency
), lj AS MATERIALIZED (
  SELECT l."partnerId" AS id, json_agg(json_build_object('code', l."code", 'clicks', coalesce(lc.n, 0)) ORDER BY l."id") AS links
    FROM "ReferralLink" l LEFT JOIN lc ON lc."linkId" = l."id"
   WHERE ${tk('l')} AND l."partnerId" = ANY(ARRAY(SELECT "id" FROM pa)) GROUP BY l."partnerId"
), pj AS MATERIALIZED (
  SELECT pa."id", json_build_object(
    'externalId', pa."externalId",
    'stats', json_build_object(
      'clicks', coalesce((SELECT sum(u) FROM lc WHERE lc."partnerId" = pa."id"), 0)::int,
      'totalReferrals', coalesce(prf.total, 0), 'successfulReferrals', coalesce(prf.converted, 0), 'pendingReferrals', coalesce(prf.pending, 0),
      'totalRewards', coalesce((SELECT json_agg(${moneySql('rt.total', 'rt.currency')} ORDER BY rt."currency" COLLATE "C") FROM rt WHERE rt.id = pa."id"), '[]')),
    'balances', coalesce((SELECT json_agg(json_build_object('currency', bal.currency,
        'pending', json_build_object('amount', ${amountSql('bal.pending', 'bal.currency')}),
        'available', json_build_object('amount', ${amountSql('bal.available', 'bal.currency')}),
        'paid', json_build_object('amount', ${amountSql('bal.paid', 'bal.currency')})) ORDER BY bal.currency COLLATE "C") FROM bal WHERE bal.id = pa."id"), '[]'),
    'links', coalesce(lj.links, '[]')) AS partner
    FROM pa LEFT JOIN prf ON prf.id = pa."id" LEFT JOIN lj ON lj.id = pa."id"
)
SELECT json_build_object('data', json_build_object('programs', json_build_object('edges', coalesce((
  SELECT json_agg(json_build_object('node', json_build_object(
    'name', pr."name",
    'stats', json_build_object(
      'partners', coalesce(ec.total, 0), 'activePartners', coalesce(ec.active, 0), 'clicks', coalesce(pc.n, 0),
      'referrals', coalesce(rc.total, 0), 'convertedReferrals', coalesce(rc.converted, 0),
      'conversions', coalesce((SELECT sum(n) FROM cv WHERE cv.id = pr."id"), 0)::int,
      'revenue', coalesce((SELECT json_agg(${moneySql('cv.revenue', 'cv.currency')} ORDER BY cv."currency" COLLATE "C") FROM cv
                            WHERE cv.id = pr."id" AND cv."currency" IS NOT NULL AND cv.revenue IS NOT NULL), '[]'),
      'rewards', json_build_object('approved', coalesce((SELECT json_agg(${moneySql('ap.total', 'ap.currency')} ORDER BY ap."currency" COLLATE "C") FROM ap WHERE ap.id = pr."id"), '[]'))),
    'enrollments', json_build_object(
      'totalCount', coalesce(ec.total, 0),
      'edges', coalesce((SELECT json_agg(json_build_object('node', json_build_object('status', en."status", 'partner', pj.partner)) ORDER BY en."id")
                           FROM en JOIN pj ON pj."id" = en."partnerId" WHERE en."programId" = pr."id"), '[]'))
  )) ORDER BY pr."id" DESC)
  FROM pr LEFT JOIN ec ON ec.id = pr."id" LEFT JOIN pc ON pc.id = pr."id" LEFT JOIN rc ON rc.id = pr."id"), '[]'))))::text AS body
 WHERE EXISTS (SELECT 1 FROM k)`;

/** Minor digits of every currency the runtime knows, for the SQL money formatting. */
export function currencyDigitsJson(): string {
  const digits: Record<string, number> = {};
  for (const c of Intl.supportedValuesOf('currency')) {
    digits[c] =
      new Intl.NumberFormat('en', { style: 'currency', currency: c }).resolvedOptions().maximumFractionDigits ?? 2;
  }
  return JSON.stringify(digits);
}

/** The hand-written server (child process): POST /batched or /single with the secret key as bearer. */
async function serveHandWritten(databaseUrl: string, port: number): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: POOL });
  const digits = currencyDigitsJson();
  const run: Run = async (sql, params) => (await pool.query(sql, params)).rows as Row[];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const secret = /^Bearer\s+(\S+)/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const hash = createHash('sha256').update(secret).digest('hex');
      const answer = async (): Promise<string> => {
        if (req.url === '/single') {
          const rows = (await pool.query<{ body: string }>(SINGLE_SQL, [hash, digits])).rows;
          return rows[0]?.body ?? JSON.stringify({ errors: [{ message: 'Unknown secret key.' }] });
        }
        return JSON.stringify(await dashboardBatched(run, hash));
      };
      answer().then(
        (body) => {
          res.writeHead(200, {
            'content-type': 'application/json; charset=utf-8',
            'content-length': Buffer.byteLength(body),
          });
          res.end(body);
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ errors: [{ message: error instanceof Error ? error.message : String(error) }] }));
        },
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    server.close(() => void pool.end().then(() => process.exit(0)));
    server.closeAllConnections();
  });
}

// ---------------------------------------------------------------------------------------------
// Statement counting (in process)
// ---------------------------------------------------------------------------------------------

/** SQL statements of one dashboard request per key, on an in-process app with every background job idle. */
async function countAppStatements(
  databaseUrl: string,
  secrets: Record<number, string>,
): Promise<Record<number, number[]>> {
  const { buildApp } = await import('../../src/app.js');
  const { loadConfig } = await import('../../src/config.js');
  const db: Database = await openDatabase({ databaseUrl, dataDir: '', poolSize: POOL, migrate: false });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    DATABASE_URL: databaseUrl,
    APPROVAL_JOB_INTERVAL_MS: '0',
    WEBHOOK_WORKER_INTERVAL_MS: '0',
    EVENT_POLL_INTERVAL_MS: '60000',
    REFGRAPH_SECRET: randomBytes(32).toString('base64url'),
  });
  const app = await buildApp({ config, db });
  const { url } = await app.start();
  const post = async (secret: string) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body: JSON.stringify({ query: DASHBOARD_QUERY }),
    });
    const body = (await res.json()) as { errors?: unknown };
    if (body.errors) throw new Error(`dashboard query failed: ${JSON.stringify(body.errors).slice(0, 500)}`);
  };
  try {
    const out: Record<number, number[]> = {};
    for (const [size, secret] of Object.entries(secrets)) {
      await post(secret); // the key's first use writes its lastUsedAt in the background
      await new Promise((resolve) => setTimeout(resolve, 300));
      const counts: number[] = [];
      for (let i = 0; i < 3; i++) {
        const before = db.statements.count;
        await post(secret);
        counts.push(db.statements.count - before);
      }
      out[Number(size)] = counts;
    }
    return out;
  } finally {
    await app.stop();
    await db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

/** The first path where two JSON values differ, for an error message. */
function firstDifference(a: unknown, b: unknown, path = '$'): string | null {
  if (isDeepStrictEqual(a, b)) return null;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference((a as Row)[key], (b as Row)[key], `${path}.${key}`);
      if (d) return d;
    }
  }
  return `${path}: ${JSON.stringify(a)?.slice(0, 200)} ≠ ${JSON.stringify(b)?.slice(0, 200)}`;
}

export const dashboardSuite: BenchSuite = {
  name: SUITE,
  description:
    'the nested dashboard query over HTTP vs the same data from hand-written pg (batched GROUP BY and single SQL), 10 and 100 partners, concurrency 1 and 20',
  async run(options: BenchOptions, log): Promise<BenchResult[]> {
    const database = await createThrowawayDatabase(options.databaseUrl);
    log(`${SUITE}: throw-away database ${database.name}`);
    const volume = options.quick ? QUICK : FULL;
    const results: RatioResult[] = [];
    try {
      // Seed one network per size, each in its own workspace.
      const secrets: Record<number, string> = {};
      const seeded: Record<number, string> = {};
      const db = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 2, migrate: false });
      try {
        for (const partners of SIZES) {
          const ws = await createWorkspace(db.prisma, `Dashboard ${partners}`);
          const s = await seedDashboardNetwork(
            db.prisma,
            { workspaceId: ws.workspace.id, mode: 'TEST' },
            { partners, ...volume },
            partners,
          );
          secrets[partners] = ws.keys.test.secret;
          seeded[partners] =
            `${s.partners} partners, ${s.enrollments} enrollments, ${s.links} links, ${s.clicks} clicks, ${s.referrals} referrals, ` +
            `${s.conversions} conversions, ${s.rewards} rewards, ${s.payouts} payouts, ${s.ledgerEntries} ledger entries`;
          log(`${SUITE}: seeded ${seeded[partners]} in ${(s.ms / 1000).toFixed(1)} s`);
        }
      } finally {
        await db.close();
      }
      await withClient(database.url, (c) => c.query('VACUUM ANALYZE'));

      // The two servers boot in their processes while this one counts statements.
      const starting = startedTogether<{ url: string; stop(): Promise<unknown> }>([
        startServerProcess(
          { DATABASE_URL: database.url, APPROVAL_JOB_INTERVAL_MS: '0', WEBHOOK_WORKER_INTERVAL_MS: '0' },
          cpuProfileArgs(),
        ),
        startChildServer('scripts/bench/dashboard.ts', { BENCH_CHILD: 'handwritten', BENCH_DB: database.url }),
      ]);
      log(`${SUITE}: counting SQL statements per request (in-process app)…`);
      let statements: Record<number, number[]>;
      try {
        statements = await countAppStatements(database.url, secrets);
      } catch (error) {
        await starting.then(
          (servers) => Promise.all(servers.map((s) => s.stop())),
          () => {},
        );
        throw error;
      }
      for (const size of SIZES)
        log(`${SUITE}: ${size} partners: ${statements[size]!.join(', ')} statements per request`);
      const [server, hand] = (await starting) as [ServerProcess, { url: string; stop(): Promise<unknown> }];
      const appClient = httpClient(server.url, 20);
      const handClient = httpClient(hand.url, 20);
      const body = JSON.stringify({ query: DASHBOARD_QUERY });
      try {
        // Every request the app's process serves is a dashboard: its CPU over a cell, divided by the requests sent (warm-ups included).
        let appRequests = 0;
        const variants = {
          app: (secret: string) => {
            appRequests++;
            return appClient.request('POST', '/graphql', body, { authorization: `Bearer ${secret}` });
          },
          batched: (secret: string) =>
            handClient.request('POST', '/batched', body, { authorization: `Bearer ${secret}` }),
          single: (secret: string) =>
            handClient.request('POST', '/single', body, { authorization: `Bearer ${secret}` }),
        };
        // Same data, or the comparison means nothing.
        for (const size of SIZES) {
          const answers = await Promise.all(
            Object.entries(variants).map(async ([name, send]) => {
              const res = await send(secrets[size]!);
              if (res.status !== 200)
                throw new Error(`${name} (${size} partners) answered ${res.status}: ${res.body.slice(0, 300)}`);
              return [name, JSON.parse(res.body) as { data?: unknown; errors?: unknown }] as const;
            }),
          );
          const app = answers[0]![1];
          if (app.errors || !app.data)
            throw new Error(`the dashboard query failed: ${JSON.stringify(app.errors).slice(0, 500)}`);
          for (const [name, answer] of answers.slice(1)) {
            const diff = firstDifference(app, answer);
            if (diff)
              throw new Error(`the ${name} version does not produce the app's data (${size} partners): ${diff}`);
          }
          log(
            `${SUITE}: ${size} partners: the hand-written versions return exactly the app's data (${Buffer.byteLength(JSON.stringify(app))} bytes)`,
          );
        }

        const ok = (res: { status: number; body: string }) => res.status === 200 && !res.body.includes('"errors"');
        for (const size of SIZES) {
          for (const concurrency of CONCURRENCIES) {
            const timing = scenarioTiming(options, concurrency);
            log(
              `${SUITE}: ${size} partners, concurrency ${concurrency}${timing.rounds > 1 ? `, ${timing.rounds} interleaved rounds` : ''}:`,
            );
            const send = (name: keyof typeof variants) => async () => ok(await variants[name](secrets[size]!));
            const [cpu0, requests0] = [server.cpuMs(), appRequests];
            const m = await measureRounds(
              { batched: send('batched'), single: send('single'), app: send('app') },
              timing,
              timing.rounds,
              log,
            );
            const appCpuMs = (server.cpuMs() - cpu0) / (appRequests - requests0);
            // The faster hand-written version (by p50) is the baseline of this size and concurrency.
            const singleWins = m.single.combined.p50Ms <= m.batched.combined.p50Ms;
            const base = singleWins
              ? { name: 'pg single SQL', measured: m.single }
              : { name: 'pg batched GROUP BY', measured: m.batched };
            const label = (s: string) => `${s}, ${size} partners, c=${concurrency}`;
            const q = ratios(m.app, base.measured);
            results.push(
              ratioRow(SUITE, label('pg batched GROUP BY'), 'request', m.batched, concurrency, base, {
                statementsPerOp: 12,
                notes: `hand-written, 4 round trips, 12 statements; ${singleWins ? `p50 ${times(ratios(m.batched, m.single).p50)} the single SQL` : 'the baseline (faster)'}`,
              }),
              ratioRow(SUITE, label('pg single SQL'), 'request', m.single, concurrency, base, {
                statementsPerOp: 1,
                notes: `hand-written, one statement returning the JSON; ${singleWins ? 'the baseline (faster)' : `p50 ${times(ratios(m.single, m.batched).p50)} the batched version`}`,
              }),
              ratioRow(SUITE, label('refgraph GraphQL'), 'request', m.app, concurrency, base, {
                statementsPerOp: statements[size]![0],
                notes: `vs ${base.name}: p50 ${times(q.p50)} (goal ≤ 1.5×), p99 ${times(q.p99)} (goal ≤ 2×), requests/s ${times(q.throughput)}; ${statements[size]!.join('/')} SQL statements per request (${SIZES.map((s) => `${s} partners: ${statements[s]![0]}`).join(', ')}); server CPU ${appCpuMs.toFixed(1)} ms per request`,
              }),
            );
          }
        }
        for (const size of SIZES) log(`${SUITE}: seeded for ${size} partners: ${seeded[size]}`);
      } finally {
        appClient.close();
        handClient.close();
        await hand.stop();
        await server.stop();
      }
    } finally {
      await database.drop();
    }
    return results;
  },
};

// Run alone, or as the hand-written server's child process.
const invokedDirectly = process.argv[1]?.endsWith('dashboard.ts') ?? false;
if (invokedDirectly && process.env.BENCH_CHILD === 'handwritten') {
  exitWithParent();
  await serveHandWritten(process.env.BENCH_DB!, Number(process.env.BENCH_PORT));
} else if (invokedDirectly) {
  runAlone(dashboardSuite, { concurrency: 20 });
}
