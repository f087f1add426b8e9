// The scaling curve (issue 17, item 4): the same reads against a small and a large database,
// measured in the same run, interleaved, so that a read whose time grows with the raw rows shows.
//
//   npm run bench -- --suite scale [--quick] [--sizes 100k,10M]
//
// Each size gets its own throw-away database: the dashboard network of the dashboard suite
// (two programs, 100 partners, their enrollments and links; seed.ts) and then, by a few
// `INSERT … SELECT FROM generate_series` statements, N clicks and N/10 conversions spread over
// the last 12 months (popular links get most of them), with their referrals (70 % converted, two
// conversions each: a PURCHASE and a SUBSCRIPTION a month later) and rewards (a REFERRER cash
// reward per accepted conversion, a REFERRED credit for every fourth). The facts are inserted with
// the triggers off (`session_replication_role = replica`: no rollup trigger, no foreign-key
// check), then "ReportingRollup" is filled by one grouped INSERT from the raw rows (the clicks'
// definition written out, the others through the migration's `*_rollup_delta` functions) and
// "ReportingRollupSpan" by one more from it; both are checked against the raw totals.
//
// Measured at concurrency 1 (latency, not throughput) over HTTP, one server process per database:
//   - dashboard: the dashboard suite's query (programs → stats, enrollments → partner → stats,
//     balances, links { clicks });
//   - timeseries: `Program.timeseries` of the main program, DAY buckets over the 12 months;
//   - leaderboard: `Program.leaderboard(CLICKS)` of the main program over the 12 months.
// Rounds interleave every query and size; each scenario gets at least `MIN_SAMPLES` requests.
// Statements per request are read from `X-SQL-Statements` on an in-process app (the header is
// off in production, which the measured servers run as).
//
// Sizes: `--sizes` (clicks; `k`/`M` suffixes), default 100k,1M (quick and full); 100k,10M is the
// issue's curve and takes long to seed (50 minutes on a loaded 2-core machine, most of it filling
// the rollups; ~9 GB of disk). BENCH_SCALE_KEEP=1 keeps the seeded databases and prints their
// names; BENCH_SCALE_DATABASES=100k=<db>,10M=<db> measures those again without seeding (a new
// ADMIN key each time; drop them yourself). BENCH_SCALE_SAMPLES=N: N requests per scenario (and
// one counted for statements) instead of 8 (quick) or 30, for sizes where one takes a minute.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { openDatabase, type Database } from '../../src/db.js';
import { globalId } from '../../src/lib/global-id.js';
import { createApiKey, createWorkspace } from '../../src/modules/workspace/workspace.service.js';
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
  type ThrowawayDatabase,
} from './harness.js';
import { DASHBOARD_QUERY, seedDashboardNetwork } from './seed.js';

const SUITE = 'scale';
const DEFAULT_SIZES = '100k,1M';
const PARTNERS = 100;
const DAY_MS = 86_400_000;
/** Requests per scenario at least, whatever the duration (p95 needs a few). */
const MIN_SAMPLES = process.env.BENCH_SCALE_SAMPLES
  ? { quick: Number(process.env.BENCH_SCALE_SAMPLES), full: Number(process.env.BENCH_SCALE_SAMPLES) }
  : { quick: 8, full: 30 };
/** Requests whose statements are counted, per query and size. */
const COUNTED = process.env.BENCH_SCALE_SAMPLES ? 1 : 3;

export function parseSizes(spec: string): number[] {
  const sizes = spec.split(',').map((s) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$/.exec(s);
    if (!m) throw new Error(`--sizes: "${s}" is not a number of clicks such as 100k or 10M`);
    const n = Math.round(Number(m[1]) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1e6));
    if (n < 1000) throw new Error(`--sizes: ${s} is too small (at least 1k clicks)`);
    return n;
  });
  if (sizes.length < 1) throw new Error('--sizes: give at least one size');
  return [...new Set(sizes)].sort((a, b) => a - b);
}

export const sizeLabel = (n: number): string =>
  n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : String(n);

// ---------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------

interface Seeded {
  label: string;
  clicks: number;
  database: ThrowawayDatabase;
  secret: string;
  mainProgramId: string;
  counts: Record<string, number>;
  seedSeconds: Record<string, number>;
  sizes: Array<{ table: string; rows: number; tableMiB: number; indexesMiB: number; totalMiB: number }>;
}

/** A uuid v7 from an instant and a unique integer (time-ordered like the app's). */
const uuidFrom = (at: string, n: string) =>
  `(lpad(to_hex((extract(epoch from ${at}) * 1000)::bigint), 12, '0') || '7' || lpad(to_hex(${n} % 4096), 3, '0') || '8' || lpad(to_hex(${n}), 15, '0'))::uuid`;

async function seedSize(options: BenchOptions, clicks: number, log: (line: string) => void): Promise<Seeded> {
  const database = await createThrowawayDatabase(options.databaseUrl, 'refgraph_scale');
  try {
    return await seedInto(database, clicks, log);
  } catch (error) {
    await database.drop();
    throw error;
  }
}

async function seedInto(database: ThrowawayDatabase, clicks: number, log: (line: string) => void): Promise<Seeded> {
  const label = sizeLabel(clicks);
  log(`${SUITE}: ${label}: throw-away database ${database.name}`);
  const seedSeconds: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await fn();
    seedSeconds[name] = (performance.now() - t0) / 1000;
    log(`${SUITE}: ${label}: ${name} in ${seedSeconds[name]!.toFixed(1)} s`);
    return out;
  };

  const db = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 2, migrate: false });
  let secret: string;
  let tenant: { workspaceId: string; mode: 'TEST' };
  try {
    const ws = await createWorkspace(db.prisma, `Scale ${label}`);
    secret = ws.keys.test.secret;
    tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
    await timed('network (programs, partners, enrollments, links)', () =>
      seedDashboardNetwork(db.prisma, tenant, { partners: PARTNERS, clicks: 0, conversions: 0 }),
    );
  } finally {
    await db.close();
  }

  const conversions = Math.round(clicks / 10);
  const referrals = Math.round(conversions / 1.4); // 70 % converted, two conversions each
  const now = Date.now();
  const start = new Date(now - 365 * DAY_MS).toISOString();
  const spanMs = 365 * DAY_MS - 60_000;
  const ws = `'${tenant.workspaceId}'::uuid`;
  const mode = `'TEST'::"Mode"`;

  const mainProgramId = await withClient(database.url, async (c) => {
    // Facts without triggers: no per-row rollup work and no foreign-key checks; the rollups are
    // filled afterwards from the raw rows.
    await c.query(`SET session_replication_role = replica`);
    await c.query(`SET work_mem = '256MB'`);
    await c.query(`SET maintenance_work_mem = '512MB'`);
    // Links numbered in a fixed random order; a fact picks link floor(L × u²): the first links get
    // most of the traffic, as a few popular partners do.
    await c.query(`SELECT setseed(0.17)`);
    await c.query(`CREATE TEMP TABLE seed_links AS
      SELECT (row_number() OVER (ORDER BY md5(l."id"::text)) - 1)::int AS n, l."id", l."programId", l."partnerId"
        FROM "ReferralLink" l WHERE l."workspaceId" = ${ws} AND l."mode" = ${mode}`);
    const links = Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM seed_links`)).rows[0]!.n);

    await timed(`${label} clicks`, () =>
      c.query(`
        INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "discarded", "discardReason", "isUnique")
        SELECT ${uuidFrom('s.t', 's.g')}, ${ws}, ${mode}, l."id", l."programId", l."partnerId", s.t, s.d,
               CASE WHEN s.d THEN 'BOT' END, NOT s.d AND s.g % 4 <> 0
          FROM (SELECT g, '${start}'::timestamptz + ((g::bigint * ${spanMs}) / ${clicks}) * interval '1 millisecond' AS t,
                       random() < 0.03 AS d, floor(${links} * random() ^ 2)::int AS n
                  FROM generate_series(0, ${clicks - 1}) g) s
          JOIN seed_links l ON l.n = s.n`),
    );
    await timed(`${sizeLabel(referrals)} referrals`, () =>
      c.query(`
        INSERT INTO "Referral" ("id", "workspaceId", "mode", "programId", "partnerId", "linkId", "externalId", "status", "createdAt", "convertedAt")
        SELECT ${uuidFrom('s.t', 's.g')}, ${ws}, ${mode}, l."programId", l."partnerId", l."id", 'ref-' || s.g,
               CASE WHEN s.g % 10 < 7 THEN 'CONVERTED' ELSE 'PENDING' END::"ReferralStatus", s.t,
               CASE WHEN s.g % 10 < 7 THEN s.t + interval '1 day' END
          FROM (SELECT g, '${start}'::timestamptz + ((g::bigint * ${spanMs - 32 * DAY_MS}) / ${referrals}) * interval '1 millisecond' AS t,
                       floor(${links} * random() ^ 2)::int AS n
                  FROM generate_series(0, ${referrals - 1}) g) s
          JOIN seed_links l ON l.n = s.n`),
    );
    await timed(`${sizeLabel(conversions)} conversions`, () =>
      c.query(`
        INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "discardReason", "idempotencyKey", "referredExternalId",
                                  "amount", "currency", "occurredAt", "programId", "partnerId", "referralId", "linkId")
        SELECT gen_random_uuid(), r."workspaceId", r."mode", CASE WHEN k = 0 THEN 'PURCHASE' ELSE 'SUBSCRIPTION' END::"ConversionType",
               CASE WHEN d THEN 'DISCARDED' ELSE 'ACCEPTED' END::"ConversionStatus", CASE WHEN d THEN 'BENCH' END,
               r."externalId" || '-' || k, r."externalId", 1000 + floor(random() * 19000)::bigint,
               CASE WHEN hashtext(r."externalId") % 10 = 0 THEN 'EUR' ELSE 'USD' END,
               r."createdAt" + interval '1 day' + k * interval '30 days', r."programId", r."partnerId", r."id", r."linkId"
          FROM "Referral" r CROSS JOIN generate_series(0, 1) k CROSS JOIN LATERAL (SELECT random() < 0.05 AS d) x
         WHERE r."workspaceId" = ${ws} AND r."mode" = ${mode} AND r."status" = 'CONVERTED'`),
    );
    await timed('rewards', () =>
      c.query(`
        INSERT INTO "Reward" ("id", "workspaceId", "mode", "programId", "partnerId", "conversionId", "referralId", "ruleId", "ruleLineageId",
                              "recipient", "kind", "status", "amount", "currency", "approveAfter", "createdAt", "updatedAt")
        SELECT gen_random_uuid(), c."workspaceId", c."mode", c."programId", c."partnerId", c."id", c."referralId", rr."id", rr."lineageId",
               rr."recipient", rr."kind",
               CASE WHEN rr."recipient" = 'REFERRED' THEN 'APPROVED'
                    -- CREATED only while its approveAfter is ahead: the approval job approves the others
                    WHEN c."occurredAt" + interval '14 days' > now()
                    THEN (ARRAY['CREATED', 'APPROVED', 'APPROVED', 'PROCESSED', 'PROCESSED', 'CANCELED', 'REJECTED'])[1 + floor(random() * 7)::int]
                    ELSE (ARRAY['APPROVED', 'APPROVED', 'PROCESSED', 'PROCESSED', 'CANCELED', 'REJECTED'])[1 + floor(random() * 6)::int] END::"RewardStatus",
               CASE WHEN rr."recipient" = 'REFERRED' THEN 300 ELSE c."amount" / 10 END, c."currency",
               c."occurredAt" + interval '14 days', c."occurredAt", now()
          FROM "Conversion" c JOIN "RewardRule" rr ON rr."programId" = c."programId" AND rr."workspaceId" = c."workspaceId" AND rr."mode" = c."mode"
         WHERE c."workspaceId" = ${ws} AND c."mode" = ${mode} AND c."status" = 'ACCEPTED'
           AND (rr."recipient" = 'REFERRER' OR hashtext(c."idempotencyKey") % 4 = 0)`),
    );
    await timed('rollups (one grouped INSERT from the raw rows)', () =>
      c.query(`
        INSERT INTO "ReportingRollup" ("workspaceId", "mode", "programId", "partnerId", "linkId", "bucket", "currency",
               "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
               "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected",
               "botClicks", "pendingReferrals", "referrerRewards", "rewardsCreatedCount", "rewardsApprovedCount", "rewardsProcessedCount", "rewardsCanceledCount", "rewardsRejectedCount", "referrerRewardsCount")
        SELECT d."workspaceId", d."mode", d."programId", d."partnerId", d."linkId", d."bucket", d."currency",
               sum(d."clicks")::bigint, sum(d."uniqueClicks")::bigint, sum(d."referrals")::bigint, sum(d."convertedReferrals")::bigint,
               sum(d."conversions")::bigint, sum(d."revenue")::bigint, sum(d."rewardsCreated")::bigint, sum(d."rewardsApproved")::bigint,
               sum(d."rewardsProcessed")::bigint, sum(d."rewardsCanceled")::bigint, sum(d."rewardsRejected")::bigint,
               sum(d."botClicks")::bigint, sum(d."pendingReferrals")::bigint, sum(d."referrerRewards")::bigint,
               sum(d."rewardsCreatedCount")::bigint, sum(d."rewardsApprovedCount")::bigint, sum(d."rewardsProcessedCount")::bigint, sum(d."rewardsCanceledCount")::bigint, sum(d."rewardsRejectedCount")::bigint, sum(d."referrerRewardsCount")::bigint
          FROM (SELECT k."workspaceId", k."mode", k."programId", k."partnerId", k."linkId", "rollup_bucket"(k."occurredAt") AS "bucket",
                       ''::varchar(3) AS "currency", (count(*) FILTER (WHERE NOT k."discarded"))::bigint AS "clicks",
                       (count(*) FILTER (WHERE NOT k."discarded" AND k."isUnique"))::bigint AS "uniqueClicks",
                       0::bigint AS "referrals", 0::bigint AS "convertedReferrals", 0::bigint AS "conversions", 0::bigint AS "revenue",
                       0::bigint AS "rewardsCreated", 0::bigint AS "rewardsApproved", 0::bigint AS "rewardsProcessed",
                       0::bigint AS "rewardsCanceled", 0::bigint AS "rewardsRejected",
                       (count(*) FILTER (WHERE k."discarded"))::bigint AS "botClicks", 0::bigint AS "pendingReferrals", 0::bigint AS "referrerRewards",
                       0::bigint AS "rewardsCreatedCount", 0::bigint AS "rewardsApprovedCount", 0::bigint AS "rewardsProcessedCount", 0::bigint AS "rewardsCanceledCount", 0::bigint AS "rewardsRejectedCount", 0::bigint AS "referrerRewardsCount"
                  FROM "Click" k WHERE NOT k."discarded" OR k."discardReason" = 'BOT' GROUP BY 1, 2, 3, 4, 5, 6
                UNION ALL SELECT d.* FROM "Referral" r CROSS JOIN LATERAL "Referral_rollup_delta"(r, 1) d
                UNION ALL SELECT d.* FROM "Conversion" c CROSS JOIN LATERAL "Conversion_rollup_delta"(c, 1) d
                UNION ALL SELECT d.* FROM "Reward" w CROSS JOIN LATERAL "Reward_rollup_delta"(w, 1) d) d
         GROUP BY 1, 2, 3, 4, 5, 6, 7
         -- in primary-key order: the index is written in order instead of at random
         ORDER BY 1, 2, 3, 6, 4, 5, 7`),
    );
    await timed('rollup spans (hours, days, months: one grouped INSERT from the rollups)', () =>
      c.query(SPANS_FROM_ROLLUPS),
    );
    await c.query(`RESET session_replication_role`);
    await timed('VACUUM ANALYZE', () => c.query('VACUUM ANALYZE'));
    return (
      await c.query<{ id: string }>(
        `SELECT "id" FROM "Program" WHERE "workspaceId" = ${ws} AND "mode" = ${mode} AND "name" LIKE 'Main %'`,
      )
    ).rows[0]!.id;
  });

  return describeSeeded(database, clicks, secret, mainProgramId, seedSeconds, log);
}

/**
 * A database seeded before (`BENCH_SCALE_DATABASES`): a new ADMIN key for its workspace, then
 * the same checks and sizes as after seeding.
 */
async function reuseDatabase(
  options: BenchOptions,
  label: string,
  name: string,
  log: (line: string) => void,
): Promise<Seeded> {
  const u = new URL(options.databaseUrl);
  u.pathname = `/${name}`;
  const database: ThrowawayDatabase = { url: u.toString(), name, drop: async () => {} };
  const db = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 2, migrate: true });
  try {
    const ws = await db.prisma.workspace.findFirstOrThrow({ where: { name: { startsWith: 'Scale ' } } });
    const key = await createApiKey(db.prisma, { workspaceId: ws.id, mode: 'TEST', role: 'ADMIN', name: 'scale bench' });
    const program = await db.prisma.program.findFirstOrThrow({
      where: { workspaceId: ws.id, mode: 'TEST', name: { startsWith: 'Main ' } },
    });
    const clicks = await db.prisma.click.count();
    log(`${SUITE}: ${label}: reusing database ${name}`);
    return describeSeeded(database, clicks, key.secret, program.id, {}, log);
  } finally {
    await db.close();
  }
}

async function describeSeeded(
  database: ThrowawayDatabase,
  clicks: number,
  secret: string,
  mainProgramId: string,
  seedSeconds: Record<string, number>,
  log: (line: string) => void,
): Promise<Seeded> {
  const label = sizeLabel(clicks);
  // The rollups must say what the raw rows say, or the reads measured here answer something else.
  const check = await withClient(database.url, async (c) => {
    const raw = (
      await c.query<Record<string, string>>(`SELECT
        (SELECT count(*) FROM "Click" WHERE NOT "discarded")::text AS clicks,
        (SELECT count(*) FROM "Click" WHERE NOT "discarded" AND "isUnique")::text AS "uniqueClicks",
        (SELECT count(*) FROM "Referral")::text AS referrals,
        (SELECT count(*) FROM "Referral" WHERE "status" = 'CONVERTED')::text AS "convertedReferrals",
        (SELECT count(*) FROM "Conversion" WHERE "status" = 'ACCEPTED' AND "type" <> 'REFUND')::text AS conversions,
        (SELECT coalesce(sum("amount"), 0) FROM "Conversion" WHERE "status" = 'ACCEPTED' AND "type" IN ('PURCHASE', 'SUBSCRIPTION'))::text AS revenue,
        (SELECT coalesce(sum("amount"), 0) FROM "Reward" WHERE "status" = 'APPROVED')::text AS "rewardsApproved",
        (SELECT count(*) FROM "Click" WHERE "discarded" AND "discardReason" = 'BOT')::text AS "botClicks",
        (SELECT count(*) FROM "Referral" WHERE "status" = 'PENDING')::text AS "pendingReferrals",
        (SELECT coalesce(sum("amount"), 0) FROM "Reward" WHERE "recipient" = 'REFERRER' AND "status" IN ('CREATED', 'APPROVED', 'PROCESSED'))::text AS "referrerRewards"`)
    ).rows[0]!;
    const rolled = (
      await c.query<
        Record<string, string>
      >(`SELECT sum("clicks")::text AS clicks, sum("uniqueClicks")::text AS "uniqueClicks",
        sum("referrals")::text AS referrals, sum("convertedReferrals")::text AS "convertedReferrals",
        sum("conversions")::text AS conversions, sum("revenue")::text AS revenue, sum("rewardsApproved")::text AS "rewardsApproved",
        sum("botClicks")::text AS "botClicks", sum("pendingReferrals")::text AS "pendingReferrals", sum("referrerRewards")::text AS "referrerRewards"
        FROM "ReportingRollup"`)
    ).rows[0]!;
    // every level and grain of the spans sums to the same totals
    const spans = (
      await c.query<
        Record<string, string>
      >(`SELECT "level"::text || '/' || "grain"::text AS g, sum("clicks")::text AS clicks,
        sum("uniqueClicks")::text AS "uniqueClicks", sum("referrals")::text AS referrals, sum("convertedReferrals")::text AS "convertedReferrals",
        sum("conversions")::text AS conversions, sum("revenue")::text AS revenue, sum("rewardsApproved")::text AS "rewardsApproved",
        sum("botClicks")::text AS "botClicks", sum("pendingReferrals")::text AS "pendingReferrals", sum("referrerRewards")::text AS "referrerRewards"
        FROM "ReportingRollupSpan" GROUP BY 1`)
    ).rows;
    const counts = Object.fromEntries(
      (
        await c.query<{ t: string; n: string }>(
          `SELECT t, n::text FROM (VALUES ('Click', (SELECT count(*) FROM "Click")), ('Referral', (SELECT count(*) FROM "Referral")),
             ('Conversion', (SELECT count(*) FROM "Conversion")), ('Reward', (SELECT count(*) FROM "Reward")),
             ('ReportingRollup', (SELECT count(*) FROM "ReportingRollup")),
             ('ReportingRollupSpan', (SELECT count(*) FROM "ReportingRollupSpan"))) v(t, n)`,
        )
      ).rows.map((r) => [r.t, Number(r.n)]),
    );
    return { raw, rolled, spans, counts };
  });
  for (const key of Object.keys(check.raw)) {
    if (check.raw[key] !== check.rolled[key])
      throw new Error(`${label}: the rollups' ${key} (${check.rolled[key]}) ≠ the raw rows' (${check.raw[key]})`);
    for (const span of check.spans)
      if (span[key] !== check.rolled[key])
        throw new Error(
          `${label}: the spans' ${key} at level/grain ${span.g} (${span[key]}) ≠ the rollups' (${check.rolled[key]})`,
        );
  }
  if (check.spans.length !== 9) throw new Error(`${label}: spans at ${check.spans.length} levels × grains, not 9`);

  const sizes = await withClient(database.url, async (c) =>
    (
      await c.query<{ table: string; rows: string; t: string; i: string; total: string }>(
        `SELECT t AS table, (SELECT reltuples FROM pg_class WHERE oid = format('%I', t)::regclass)::bigint::text AS rows,
                pg_table_size(format('%I', t))::text AS t, pg_indexes_size(format('%I', t))::text AS i,
                pg_total_relation_size(format('%I', t))::text AS total
           FROM unnest(ARRAY['Click', 'Referral', 'Conversion', 'Reward', 'ReportingRollup', 'ReportingRollupSpan']) t`,
      )
    ).rows.map((r) => ({
      table: r.table,
      rows: check.counts[r.table] ?? Number(r.rows),
      tableMiB: Number(r.t) / 2 ** 20,
      indexesMiB: Number(r.i) / 2 ** 20,
      totalMiB: Number(r.total) / 2 ** 20,
    })),
  );
  log(
    `${SUITE}: ${label}: ${Object.entries(check.counts)
      .map(([t, n]) => `${n} ${t}`)
      .join(', ')}; rollups equal the raw totals`,
  );
  return { label, clicks, database, secret, mainProgramId, counts: check.counts, seedSeconds, sizes };
}

/** The spans of the rollups as the migration 20261208100000_rollup_spans backfills them. */
const SPANS_FROM_ROLLUPS = `
  INSERT INTO "ReportingRollupSpan" ("workspaceId", "mode", "level", "grain", "programId", "partnerId", "linkId", "bucket", "currency",
         "clicks", "uniqueClicks", "referrals", "convertedReferrals", "conversions", "revenue",
         "rewardsCreated", "rewardsApproved", "rewardsProcessed", "rewardsCanceled", "rewardsRejected",
         "botClicks", "pendingReferrals", "referrerRewards", "rewardsCreatedCount", "rewardsApprovedCount", "rewardsProcessedCount", "rewardsCanceledCount", "rewardsRejectedCount", "referrerRewardsCount")
  SELECT x."workspaceId", x."mode", l.level::smallint, g.grain::smallint, x."programId",
         CASE WHEN l.level >= 1 THEN x."partnerId" ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
         CASE WHEN l.level = 2 THEN x."linkId" ELSE '00000000-0000-0000-0000-000000000000'::uuid END,
         date_trunc(g.unit, x."bucket", 'UTC'), x."currency",
         sum(x."clicks"), sum(x."uniqueClicks"), sum(x."referrals"), sum(x."convertedReferrals"), sum(x."conversions"),
         sum(x."revenue"), sum(x."rewardsCreated"), sum(x."rewardsApproved"), sum(x."rewardsProcessed"),
         sum(x."rewardsCanceled"), sum(x."rewardsRejected"), sum(x."botClicks"), sum(x."pendingReferrals"), sum(x."referrerRewards"),
         sum(x."rewardsCreatedCount"), sum(x."rewardsApprovedCount"), sum(x."rewardsProcessedCount"), sum(x."rewardsCanceledCount"), sum(x."rewardsRejectedCount"), sum(x."referrerRewardsCount")
    FROM "ReportingRollup" x
   CROSS JOIN (VALUES (0), (1), (2)) AS l(level)
   CROSS JOIN (VALUES (1, 'hour'), (2, 'day'), (3, 'month')) AS g(grain, unit)
   GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
   ORDER BY 1, 2, 3, 4, 5, 8, 6, 7, 9`;

// ---------------------------------------------------------------------------------------------
// The queries
// ---------------------------------------------------------------------------------------------

interface Query {
  name: string;
  body(s: Seeded): string;
}

const to = () => new Date(Date.now() + DAY_MS);
const from = () => new Date(Date.now() - 365 * DAY_MS);

const QUERIES: Query[] = [
  { name: 'dashboard', body: () => JSON.stringify({ query: DASHBOARD_QUERY }) },
  {
    name: 'timeseries (DAY, 12 months)',
    body: (s) =>
      JSON.stringify({
        query: `query ScaleSeries($id: ID!, $from: DateTime!, $to: DateTime!) {
          node(id: $id) { ... on Program { timeseries(interval: DAY, from: $from, to: $to, timezone: "Europe/Paris") {
            start clicks referrals convertedReferrals conversions revenue { amount currency } rewards { amount currency } } } } }`,
        variables: { id: globalId('Program', s.mainProgramId), from: from().toISOString(), to: to().toISOString() },
      }),
  },
  {
    name: 'leaderboard (CLICKS, 12 months)',
    body: (s) =>
      JSON.stringify({
        query: `query ScaleLeaderboard($id: ID!, $from: DateTime!, $to: DateTime!) {
          node(id: $id) { ... on Program { leaderboard(metric: CLICKS, from: $from, to: $to, first: 10) { rank value partner { externalId } } } } }`,
        variables: { id: globalId('Program', s.mainProgramId), from: from().toISOString(), to: to().toISOString() },
      }),
  },
];

/** Statements per request of each query, from `X-SQL-Statements` on an in-process app (not production). */
async function countStatements(s: Seeded): Promise<Record<string, number[]>> {
  const { buildApp } = await import('../../src/app.js');
  const { loadConfig } = await import('../../src/config.js');
  const db: Database = await openDatabase({ databaseUrl: s.database.url, dataDir: '', poolSize: 4, migrate: false });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    DATABASE_URL: s.database.url,
    APPROVAL_JOB_INTERVAL_MS: '0',
    WEBHOOK_WORKER_INTERVAL_MS: '0',
    EVENT_POLL_INTERVAL_MS: '60000',
    // Every request looks its key up (a cache expiring between requests would count it in some only).
    AUTH_CACHE_TTL_MS: '0',
    REFGRAPH_SECRET: randomBytes(32).toString('base64url'),
  });
  const app = await buildApp({ config, db });
  const { url } = await app.start();
  try {
    const out: Record<string, number[]> = {};
    for (const q of QUERIES) {
      out[q.name] = [];
      // The key's first use writes its lastUsedAt (and fills the credential cache): not counted.
      for (let i = 0; i <= COUNTED; i++) {
        const res = await fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${s.secret}` },
          body: q.body(s),
        });
        const text = await res.text();
        if (res.status !== 200 || text.includes('"errors"'))
          throw new Error(`${q.name} (${s.label}) failed: ${text.slice(0, 500)}`);
        if (i === 0) await new Promise((resolve) => setTimeout(resolve, 300));
        else out[q.name]!.push(Number(res.headers.get('x-sql-statements')));
      }
    }
    return out;
  } finally {
    await app.stop();
    await db.close();
  }
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;

export interface ScaleResult extends BenchResult {
  size: string;
  query: string;
  p95Ms: number;
  samples: number;
  statementsPerOp: number[];
  /** p50 / the smallest size's p50 (the goal: ≤ 1.5 at the largest). */
  p50Ratio?: number;
  loadAverage: number[];
}

export const scaleSuite: BenchSuite = {
  name: SUITE,
  description:
    'the dashboard query, a 12-month DAY Program.timeseries and a Program.leaderboard at 100k and 1M clicks (--sizes 100k,10M for the issue’s curve), seeded by SQL',
  async run(options: BenchOptions, log): Promise<BenchResult[]> {
    const clickSizes = parseSizes(options.sizes ?? DEFAULT_SIZES);
    const seeded: Seeded[] = [];
    const servers: ServerProcess[] = [];
    const results: ScaleResult[] = [];
    try {
      const reuse = process.env.BENCH_SCALE_DATABASES;
      if (reuse) {
        for (const pair of reuse.split(',')) {
          const [label, name] = pair.split('=') as [string, string | undefined];
          if (!name || !/^[a-z0-9_]+$/.test(name))
            throw new Error(`BENCH_SCALE_DATABASES: "${pair}" is not label=database_name`);
          seeded.push(await reuseDatabase(options, label, name, log));
        }
      } else {
        for (const n of clickSizes) seeded.push(await seedSize(options, n, log));
        if (process.env.BENCH_SCALE_KEEP === '1') {
          for (const s of seeded) s.database = { ...s.database, drop: async () => {} };
          log(
            `${SUITE}: keeping the databases: BENCH_SCALE_DATABASES=${seeded.map((s) => `${s.label}=${s.database.name}`).join(',')}`,
          );
        }
      }
      const statements: Record<string, Record<string, number[]>> = {};
      for (const s of seeded) {
        statements[s.label] = await countStatements(s);
        log(
          `${SUITE}: ${s.label}: statements per request: ${QUERIES.map((q) => `${q.name} ${statements[s.label]![q.name]!.join('/')}`).join(', ')}`,
        );
      }
      // One at a time, with time to spare: a loaded machine can take more than a minute to start one.
      for (const s of seeded)
        servers.push(
          await startServerProcess(
            { DATABASE_URL: s.database.url, APPROVAL_JOB_INTERVAL_MS: '0', WEBHOOK_WORKER_INTERVAL_MS: '0' },
            [],
            300_000,
          ),
        );
      const clients = servers.map((srv) => httpClient(srv.url, 1));
      try {
        const rounds = options.quick ? 1 : 3;
        const perRoundMs = (options.quick ? Math.min(options.durationMs, 2_000) : options.durationMs) / rounds;
        const minPerRound = Math.ceil((options.quick ? MIN_SAMPLES.quick : MIN_SAMPLES.full) / rounds);
        const samples = new Map<string, number[]>();
        const loads = new Map<string, number[]>();
        const send = async (i: number, q: Query) => {
          const res = await clients[i]!.request('POST', '/graphql', q.body(seeded[i]!), {
            authorization: `Bearer ${seeded[i]!.secret}`,
          });
          if (res.status !== 200 || res.body.includes('"errors"'))
            throw new Error(`${q.name} (${seeded[i]!.label}) answered ${res.status}: ${res.body.slice(0, 300)}`);
        };
        // Warm-up: each server answers each query a few times (plans, caches, JIT).
        const warmups = options.quick ? 1 : 3;
        for (const q of QUERIES)
          for (let i = 0; i < seeded.length; i++) for (let k = 0; k < warmups; k++) await send(i, q);
        for (let round = 0; round < rounds; round++) {
          for (const q of QUERIES) {
            for (let i = 0; i < seeded.length; i++) {
              const key = `${q.name}@${seeded[i]!.label}`;
              log(`  ${key}${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ''}…`);
              const list = samples.get(key) ?? [];
              samples.set(key, list);
              loads.set(key, [...(loads.get(key) ?? []), Number(os.loadavg()[0]!.toFixed(2))]);
              const started = performance.now();
              let n = 0;
              while (n < minPerRound || performance.now() - started < perRoundMs) {
                const t0 = performance.now();
                await send(i, q);
                list.push(performance.now() - t0);
                n++;
              }
            }
          }
        }
        for (const q of QUERIES) {
          let baseP50: number | undefined;
          for (const s of seeded) {
            const key = `${q.name}@${s.label}`;
            const sorted = [...samples.get(key)!].sort((a, b) => a - b);
            const total = sorted.reduce((a, b) => a + b, 0);
            const p50 = percentile(sorted, 50);
            baseP50 ??= p50;
            const ratio = p50 / baseP50;
            const stmts = statements[s.label]![q.name]!;
            results.push({
              suite: SUITE,
              scenario: `${q.name}, ${s.label} clicks`,
              unit: 'request',
              size: s.label,
              query: q.name,
              ops: sorted.length,
              errors: 0,
              durationS: total / 1000,
              opsPerSec: sorted.length / (total / 1000),
              p50Ms: p50,
              p95Ms: percentile(sorted, 95),
              p99Ms: percentile(sorted, 99),
              samples: sorted.length,
              concurrency: 1,
              statementsPerOp: stmts,
              ...(s === seeded[0] ? {} : { p50Ratio: ratio }),
              loadAverage: loads.get(key)!,
              notes:
                `p50 ${p50.toFixed(1)} ms, p95 ${percentile(sorted, 95).toFixed(1)} ms over ${sorted.length} requests` +
                (s === seeded[0]
                  ? ''
                  : `; p50 ${ratio.toFixed(2)}× the ${seeded[0]!.label} size's (goal ≤ 1.5×${ratio <= 1.5 ? ', met' : ', NOT met'})`) +
                `; ${stmts.join('/')} SQL statements per request` +
                (s === seeded[0] || stmts[0] === statements[seeded[0]!.label]![q.name]![0]
                  ? ''
                  : ` (≠ ${statements[seeded[0]!.label]![q.name]![0]} at ${seeded[0]!.label})`),
            });
          }
        }
        for (const s of seeded) {
          const seeding = Object.entries(s.seedSeconds)
            .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
            .join(', ');
          const sizes = s.sizes
            .map(
              (t) =>
                `${t.table} ${t.rows} rows: table ${t.tableMiB.toFixed(1)} MiB + indexes ${t.indexesMiB.toFixed(1)} MiB = ${t.totalMiB.toFixed(1)} MiB`,
            )
            .join('; ');
          results.push({
            suite: SUITE,
            scenario: `seeding ${s.label} clicks`,
            unit: 'seed',
            size: s.label,
            query: 'seed',
            ops: 1,
            errors: 0,
            durationS: Object.values(s.seedSeconds).reduce((a, b) => a + b, 0),
            opsPerSec: NaN,
            p50Ms: NaN,
            p95Ms: NaN,
            p99Ms: NaN,
            samples: 0,
            concurrency: 1,
            statementsPerOp: [],
            loadAverage: [],
            notes: `${seeding}. ${sizes}`,
          });
        }
      } finally {
        for (const c of clients) c.close();
      }
    } finally {
      for (const srv of servers) await srv.stop();
      for (const s of seeded) await s.database.drop();
    }
    return results;
  },
};

if (process.argv[1]?.endsWith('scale.ts')) runAlone(scaleSuite, { concurrency: 1 });
