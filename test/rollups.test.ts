// Rollups (src/modules/reporting/README.md) are kept by triggers in the writing statement's
// transaction: after a random workload through the API — conversions (some late: occurredAt days
// in the past), refunds, reward status changes, referral status changes, the approval job, clicks
// through the redirect and the click writer's batches — the rollups equal the raw rows grouped
// the same way, and the reads built on them equal the raw-table stats. Referral, conversion and
// reward writes append grouped deltas (one INSERT per statement) that a fold moves into the
// stored rollups without changing a read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetentionJob } from '../src/modules/events/retention.js';
import { ApprovalJob } from '../src/modules/reward/approval-job.js';
import { graphql } from './gql/index.js';
import { factories, gid, uuidv7 } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { migratedUpTo } from './helpers/migrations.js';
import { rawGroups, rollupGroups, spanMismatches, storedRollupGroups, type Query } from './helpers/rollups.js';
import { BROWSER_USER_AGENT } from './helpers/server.js';

const fixture = useTwoWorkspaces({ env: { APPROVAL_JOB_INTERVAL_MS: '0' }, names: ['Rollups A', 'Rollups B'] });

const RECORD = graphql(`
  mutation RU_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { id status type rewards { id status } }
      userErrors { code message }
    }
  }
`);
const REFUND = graphql(`
  mutation RU_Refund($input: RefundConversionInput!) {
    refundConversion(input: $input) { conversion { id } userErrors { code message } }
  }
`);
const UPDATE = graphql(`
  mutation RU_Update($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) { rewards { id status } userErrors { code message } }
  }
`);
const SET_REFERRAL = graphql(`
  mutation RU_SetReferral($input: SetReferralStatusInput!) {
    setReferralStatus(input: $input) { referral { id status } userErrors { code message } }
  }
`);
const COMPARE = graphql(`
  query RU_Compare($from: DateTime!, $to: DateTime!) {
    programs(first: 10) {
      edges {
        node {
          id
          currency
          stats { clicks referrals convertedReferrals conversions revenue { amount currency } rewards { created { amount currency } approved { amount currency } processed { amount currency } } }
          timeseries(interval: MONTH, from: $from, to: $to, timezone: "Asia/Kolkata") {
            clicks referrals convertedReferrals conversions revenue { amount currency } rewards { amount currency }
          }
        }
      }
    }
    stats { clicks conversions revenue { amount currency } rewards { created { amount currency } approved { amount currency } processed { amount currency } canceled { amount currency } rejected { amount currency } } }
  }
`);

const prisma = () => fixture.server.testDb.db.prisma;
const query: Query = (text) => prisma().$queryRawUnsafe(text);

/** A small deterministic pseudo-random generator (so a failure can be replayed). */
function random(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}

interface Setup {
  links: Array<{ id: string; code: string; programId: string; partnerId: string; currency: string }>;
}

async function setUp(): Promise<Setup> {
  const f = factories(prisma(), fixture.tenant);
  const links: Setup['links'] = [];
  for (const currency of ['USD', 'EUR']) {
    const program = await f.program({ currency, holdDays: 0 });
    await f.rule(program.id, { fixedAmount: 700n, fixedCurrency: currency });
    await f.rule(program.id, {
      trigger: 'PURCHASE',
      amountType: 'PERCENTAGE',
      percentageBasisPoints: 1000,
      fixedAmount: null,
      fixedCurrency: null,
    });
    await f.rule(program.id, {
      trigger: 'SIGNUP',
      fixedAmount: 100n,
      fixedCurrency: currency,
      recipient: 'REFERRED',
      kind: 'CREDIT',
    });
    for (let i = 0; i < 3; i++) {
      const partner = await f.partner();
      const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
      const code = `ru-${currency}-${i}-${uuidv7().slice(-6)}`.toLowerCase();
      const link = await f.link(enrollment, { code });
      links.push({ id: link.id, code, programId: program.id, partnerId: partner.id, currency });
    }
  }
  return { links };
}

async function workload(setup: Setup, seed: number) {
  const rnd = random(seed);
  const gql = fixture.gql;
  const admin = fixture.admin;
  const conversions: Array<{ id: string; currency: string; amount: number; refunded: number }> = [];
  const rewards: string[] = [];
  const referrals = new Set<string>();
  const f = factories(prisma(), fixture.tenant);
  const day = 86_400_000;
  for (let step = 0; step < 60; step++) {
    const op = rnd.int(10);
    const link = rnd.pick(setup.links);
    if (op < 5) {
      // A conversion, often late (up to 40 days ago, at any minute).
      const type = rnd.pick(['SIGNUP', 'PURCHASE', 'PURCHASE', 'SUBSCRIPTION'] as const);
      const amount = 1000 + rnd.int(50_000);
      const occurredAt = new Date(Date.now() - rnd.int(40) * day - rnd.int(1440) * 60_000);
      const res = await gql(
        RECORD,
        {
          input: {
            type,
            idempotencyKey: `ru-${seed}-${step}`,
            referredExternalId: `person-${rnd.int(12)}`,
            code: link.code,
            occurredAt: occurredAt.toISOString(),
            amount: type === 'SIGNUP' ? null : { amount: (amount / 100).toFixed(2), currency: link.currency },
          },
        },
        admin,
      );
      expect(res.errors).toBeUndefined();
      const conversion = res.data!.recordConversion.conversion;
      if (conversion?.status === 'ACCEPTED' && type !== 'SIGNUP')
        conversions.push({ id: conversion.id, currency: link.currency, amount, refunded: 0 });
      for (const r of conversion?.rewards ?? []) rewards.push(r.id);
    } else if (op < 6 && conversions.length) {
      const c = rnd.pick(conversions);
      const left = c.amount - c.refunded;
      if (left <= 0) continue;
      const amount = rnd.next() < 0.5 ? left : 1 + rnd.int(left);
      const res = await gql(
        REFUND,
        {
          input: {
            conversionId: c.id,
            idempotencyKey: `ru-refund-${seed}-${step}`,
            amount: { amount: (amount / 100).toFixed(2), currency: c.currency },
          },
        },
        admin,
      );
      expect(res.errors).toBeUndefined();
      if (res.data!.refundConversion.userErrors.length === 0) c.refunded += amount;
    } else if (op < 8 && rewards.length) {
      const status = rnd.pick(['APPROVED', 'PROCESSED', 'CANCELED', 'REJECTED'] as const);
      const ids = [rnd.pick(rewards), rnd.pick(rewards)];
      const res = await gql(UPDATE, { input: { ids, status, reason: 'test' } }, admin);
      expect(res.errors).toBeUndefined(); // refused transitions are userErrors: nothing changes
    } else if (op < 9) {
      const rows = await prisma().referral.findMany({ where: fixture.tenant, select: { id: true, status: true } });
      if (!rows.length) continue;
      const r = rnd.pick(rows);
      referrals.add(r.id);
      const status = r.status === 'REJECTED' ? rnd.pick(['PENDING', 'CONVERTED'] as const) : ('REJECTED' as const);
      const res = await gql(SET_REFERRAL, { input: { referralId: gid('Referral', r.id), status } }, admin);
      expect(res.errors).toBeUndefined();
    } else {
      // A batch of clicks as the click writer writes them (one INSERT), some late, repeated, discarded.
      await f.clicks(link, 1 + rnd.int(5), {
        occurredAt: new Date(Date.now() - rnd.int(40) * day),
        isUnique: rnd.next() < 0.7,
        discarded: rnd.next() < 0.2,
      });
    }
  }
  // Clicks through the redirect and the real click writer.
  for (const link of setup.links.slice(0, 3)) {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${fixture.server.url}/r/${link.code}`, {
        redirect: 'manual',
        headers: { 'user-agent': BROWSER_USER_AGENT, 'x-forwarded-for': `203.0.113.${i % 2}` },
      });
      expect(res.status).toBe(302);
    }
  }
  // A crawler's click: discarded as a bot's by the click writer, counted in botClicks.
  const crawled = await fetch(`${fixture.server.url}/r/${setup.links[0]!.code}`, {
    redirect: 'manual',
    headers: { 'user-agent': 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' },
  });
  expect(crawled.status).toBe(302);
  await fixture.server.app.services.clicks.flush();
  await new ApprovalJob(prisma(), { intervalMs: 0 }).runOnce(new Date(Date.now() + 1000));
}

const fold = async () => Number((await query(`SELECT "ReportingRollup_fold"()::text AS n`))[0]!.n);
const pending = async () => Number((await query(`SELECT count(*)::text AS n FROM "ReportingRollupDelta"`))[0]!.n);

describe('rollups', () => {
  let setup: Setup;
  beforeAll(async () => {
    setup = await setUp();
    await workload(setup, 17);
  });

  it('equal the raw rows after a random workload with refunds, status changes and late events', async () => {
    const raw = await rawGroups(query);
    expect(raw.length).toBeGreaterThan(20);
    // the workload did reach every kind of figure
    for (const measure of [
      'clicks',
      'referrals',
      'convertedReferrals',
      'conversions',
      'revenue',
      'rewardsApproved',
      'rewardsCanceled',
      'botClicks',
      'pendingReferrals',
      'referrerRewards',
    ])
      expect(
        raw.some((r) => r[measure] !== '0'),
        measure,
      ).toBe(true);
    const refunds = await prisma().conversion.count({ where: { ...fixture.tenant, type: 'REFUND' } });
    const late = await prisma().conversion.count({
      where: { ...fixture.tenant, occurredAt: { lt: new Date(Date.now() - 2 * 86_400_000) } },
    });
    expect(refunds).toBeGreaterThan(0);
    expect(late).toBeGreaterThan(0);
    expect(await rollupGroups(query)).toEqual(raw);
    // the hour, day and month spans are the quarter hours summed, before and after a fold
    expect(await spanMismatches(query)).toEqual([]);
    await fold();
    expect(await spanMismatches(query)).toEqual([]);
    expect(await rollupGroups(query)).toEqual(raw);
  }, 120_000);

  it('give the same figures as the raw-table stats (Program.stats vs timeseries, Query.stats)', async () => {
    const res = await fixture.gql(
      COMPARE,
      {
        from: new Date(Date.now() - 60 * 86_400_000).toISOString(),
        to: new Date(Date.now() + 86_400_000).toISOString(),
      },
      fixture.admin,
    );
    expect(res.errors).toBeUndefined();
    const sum = (xs: Array<{ amount: string; currency: string }>) => {
      const m = new Map<string, number>();
      for (const x of xs) m.set(x.currency, Math.round((m.get(x.currency) ?? 0) + Number(x.amount) * 100));
      return Object.fromEntries([...m].filter(([, v]) => v !== 0).sort());
    };
    const programs = res.data!.programs.edges.map((e) => e.node);
    expect(programs).toHaveLength(2);
    for (const p of programs) {
      const series = p.timeseries;
      const total = (k: 'clicks' | 'referrals' | 'convertedReferrals' | 'conversions') =>
        series.reduce((n, b) => n + b[k], 0);
      expect(total('clicks')).toBe(p.stats.clicks);
      expect(total('referrals')).toBe(p.stats.referrals);
      expect(total('convertedReferrals')).toBe(p.stats.convertedReferrals);
      expect(total('conversions')).toBe(p.stats.conversions);
      expect(sum(series.flatMap((b) => b.revenue))).toEqual(sum(p.stats.revenue));
      const r = p.stats.rewards;
      expect(sum(series.flatMap((b) => b.rewards))).toEqual(sum([...r.created, ...r.approved, ...r.processed]));
    }
    const ws = res.data!.stats;
    expect(ws.clicks).toBe(programs.reduce((n, p) => n + p.stats.clicks, 0));
    expect(ws.conversions).toBe(programs.reduce((n, p) => n + p.stats.conversions, 0));
    expect(sum(ws.revenue)).toEqual(sum(programs.flatMap((p) => p.stats.revenue)));
    expect(sum(ws.rewards.approved)).toEqual(sum(programs.flatMap((p) => p.stats.rewards.approved)));
  }, 60_000);

  it('move a reward’s amount between statuses in the transaction of the change, and not on a refused one', async () => {
    const link = setup.links[0]!;
    const recorded = await fixture.gql(
      RECORD,
      {
        input: {
          type: 'PURCHASE',
          idempotencyKey: `ru-move-${uuidv7()}`,
          referredExternalId: `mover-${uuidv7()}`,
          code: link.code,
          amount: { amount: '80.00', currency: link.currency },
        },
      },
      fixture.admin,
    );
    const rewardId = recorded.data!.recordConversion.conversion!.rewards[0]!.id;
    const before = await rollupGroups(query);
    const refused = await fixture.gql(UPDATE, { input: { ids: [rewardId], status: 'PROCESSED' } }, fixture.admin);
    expect(refused.data!.updateRewardStatus.userErrors).not.toEqual([]);
    expect(await rollupGroups(query)).toEqual(before);
    const ok = await fixture.gql(UPDATE, { input: { ids: [rewardId], status: 'APPROVED' } }, fixture.admin);
    expect(ok.data!.updateRewardStatus.userErrors).toEqual([]);
    const after = await rollupGroups(query);
    expect(after).not.toEqual(before);
    expect(after).toEqual(await rawGroups(query));
    await fold();
    expect(await spanMismatches(query)).toEqual([]);
  });

  it('change with the facts’ transaction only: a rolled-back write leaves them as they were', async () => {
    const before = await rollupGroups(query);
    const link = setup.links[0]!;
    const f = (tx: Parameters<Parameters<ReturnType<typeof prisma>['$transaction']>[0]>[0]) =>
      factories(tx as never, fixture.tenant);
    await expect(
      prisma().$transaction(async (tx) => {
        await f(tx).conversions([
          {
            programId: link.programId,
            partnerId: link.partnerId,
            linkId: link.id,
            amount: 123n,
            currency: link.currency,
          },
        ]);
        await f(tx).clicks(link, 3);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await rollupGroups(query)).toEqual(before);
  });

  it('fold into the stored rollups without changing a read', async () => {
    const window = {
      from: new Date(Date.now() - 60 * 86_400_000).toISOString(),
      to: new Date(Date.now() + 86_400_000).toISOString(),
    };
    await fixture.server.app.rollupFold.stop(); // these tests fold by themselves
    const link = setup.links[1]!;
    await factories(prisma(), fixture.tenant).conversions([
      { programId: link.programId, partnerId: link.partnerId, linkId: link.id, amount: 4200n, currency: link.currency },
    ]);
    const before = await fixture.gql(COMPARE, window, fixture.admin);
    expect(before.errors).toBeUndefined();
    expect(await pending()).toBeGreaterThan(0);
    expect(await fold()).toBeGreaterThan(0);
    expect(await pending()).toBe(0);
    expect(await storedRollupGroups(query)).toEqual(await rawGroups(query));
    expect(await fixture.gql(COMPARE, window, fixture.admin)).toEqual(before);
    expect(await fold()).toBe(0); // nothing left
  }, 120_000);

  it('cost one grouped INSERT for a bulk statement, whatever its rows', async () => {
    const link = setup.links[0]!;
    const at = new Date(Date.now() - 3 * 86_400_000);
    await fold();
    // 2000 conversions in one statement over two quarter hours: two delta rows (one per key)
    await factories(prisma(), fixture.tenant).conversions(
      Array.from({ length: 2000 }, (_, i) => ({
        programId: link.programId,
        partnerId: link.partnerId,
        linkId: link.id,
        amount: BigInt(100 + i),
        currency: link.currency,
        occurredAt: new Date(at.getTime() - (i % 2) * 15 * 60_000),
      })),
    );
    expect(await pending()).toBe(2);
    expect(await rollupGroups(query)).toEqual(await rawGroups(query));
    await query(
      `UPDATE "Conversion" SET "status" = 'DISCARDED', "discardReason" = 'TEST' WHERE "linkId" = '${link.id}' AND "amount" >= 100 AND "amount" < 2100`,
    );
    expect(await rollupGroups(query)).toEqual(await rawGroups(query));
    await fold();
    expect(await storedRollupGroups(query)).toEqual(await rawGroups(query));
  }, 60_000);

  it.skipIf(!process.env.TEST_DATABASE_URL)(
    'lock no rollup row until the end of the writing transaction (PostgreSQL: two transactions on one link and quarter hour)',
    async () => {
      const link = setup.links[0]!;
      const at = new Date();
      const row = () => ({
        programId: link.programId,
        partnerId: link.partnerId,
        linkId: link.id,
        amount: 500n,
        currency: link.currency,
        occurredAt: at,
      });
      let written!: () => void;
      const firstWrote = new Promise<void>((resolve) => (written = resolve));
      let release!: () => void;
      const secondDone = new Promise<void>((resolve) => (release = resolve));
      // The first transaction writes, then stays open until the second one has written, folded and
      // committed the same (link, quarter hour, currency): with a rollup row locked from the write,
      // the second would wait for the first, which waits for it.
      const first = prisma().$transaction(
        async (tx) => {
          await factories(tx as never, fixture.tenant).conversions([row()]);
          written();
          await secondDone;
        },
        { timeout: 60_000 },
      );
      await firstWrote;
      await prisma().$transaction(async (tx) => {
        await factories(tx as never, fixture.tenant).conversions([row()]);
      });
      await fold(); // the first transaction's delta is not visible yet: it stays for a later fold
      release();
      await first;
      expect(await rollupGroups(query)).toEqual(await rawGroups(query));
      await fold();
      expect(await pending()).toBe(0);
      expect(await storedRollupGroups(query)).toEqual(await rawGroups(query));
    },
    60_000,
  );

  it('keep click counts when raw clicks are deleted by CLICK_RETENTION_DAYS', async () => {
    const before = await rollupGroups(query);
    const total = await prisma().click.count({ where: fixture.tenant });
    const retention = new RetentionJob(fixture.server.testDb.db, {
      eventDays: 0,
      webhookDeliveryDays: 0,
      clickDays: 10,
      intervalMs: 0,
      batchSize: 7,
    });
    const { clicks } = await retention.runOnce();
    const left = await prisma().click.count({ where: fixture.tenant });
    expect(clicks).toBeGreaterThan(7); // more than one batch
    expect(left).toBe(total - clicks);
    expect(left).toBeGreaterThan(0); // the recent ones stay
    expect(await prisma().click.count({ where: { occurredAt: { lt: new Date(Date.now() - 10 * 86_400_000) } } })).toBe(
      0,
    );
    expect(await rollupGroups(query)).toEqual(before);
  });
});

describe('the rollup migration on existing data', () => {
  const MIGRATION = '20261207198000_rollups';
  let db: Awaited<ReturnType<typeof migratedUpTo>>;
  afterAll(async () => {
    await db?.close();
  });

  it('backfills rollups from the raw rows already there, then keeps them', async () => {
    db = await migratedUpTo(MIGRATION);
    const [ws, program, partner, enrollment, link, rule, referral, conversion, reward] = Array.from({ length: 9 }, () =>
      uuidv7(),
    );
    await db.pglite.exec(`
      INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES ('${ws}', 'Old shape', now());
      INSERT INTO "Program" ("id", "workspaceId", "mode", "name", "type", "currency", "updatedAt")
        VALUES ('${program}', '${ws}', 'TEST', 'P', 'AFFILIATE', 'INR', now());
      INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt") VALUES ('${partner}', '${ws}', 'TEST', 'alice', now());
      INSERT INTO "Enrollment" ("id", "workspaceId", "mode", "programId", "partnerId", "status", "updatedAt")
        VALUES ('${enrollment}', '${ws}', 'TEST', '${program}', '${partner}', 'APPROVED', now());
      INSERT INTO "ReferralLink" ("id", "workspaceId", "mode", "enrollmentId", "programId", "partnerId", "code", "codeNormalized")
        VALUES ('${link}', '${ws}', 'TEST', '${enrollment}', '${program}', '${partner}', 'old', 'old');
      INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "discarded", "isUnique")
        SELECT gen_random_uuid(), '${ws}', 'TEST', '${link}', '${program}', '${partner}',
               TIMESTAMPTZ '2026-03-01 18:20:00+00' + (i * INTERVAL '7 minutes'), i % 5 = 0, i % 3 <> 0
          FROM generate_series(1, 40) i;
      INSERT INTO "RewardRule" ("id", "workspaceId", "mode", "programId", "lineageId", "trigger", "kind", "amountType", "fixedAmount", "fixedCurrency")
        VALUES ('${rule}', '${ws}', 'TEST', '${program}', '${rule}', 'PURCHASE', 'CASH', 'FIXED', 1000, 'INR');
      INSERT INTO "Referral" ("id", "workspaceId", "mode", "programId", "partnerId", "linkId", "externalId", "status", "createdAt", "convertedAt")
        VALUES ('${referral}', '${ws}', 'TEST', '${program}', '${partner}', '${link}', 'cust-1', 'CONVERTED', '2026-03-01 18:40:00+00', '2026-03-02 09:00:00+00');
      INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "idempotencyKey", "amount", "currency", "occurredAt", "programId", "partnerId", "referralId", "linkId")
        VALUES ('${conversion}', '${ws}', 'TEST', 'PURCHASE', 'ACCEPTED', 'o-1', 5000, 'INR', '2026-03-02 09:00:00+00', '${program}', '${partner}', '${referral}', '${link}');
      INSERT INTO "Reward" ("id", "workspaceId", "mode", "programId", "partnerId", "conversionId", "referralId", "ruleId", "ruleLineageId", "recipient", "kind", "amount", "currency", "approveAfter", "createdAt", "updatedAt")
        VALUES ('${reward}', '${ws}', 'TEST', '${program}', '${partner}', '${conversion}', '${referral}', '${rule}', '${rule}', 'REFERRER', 'CASH', 1000, 'INR', now(), '2026-03-02 09:00:01+00', now());
    `);
    expect(await db.applyRest()).toContain(MIGRATION);
    const q: Query = async (text) => (await db.pglite.query<Record<string, unknown>>(text)).rows;
    const raw = await rawGroups(q);
    expect(raw.length).toBeGreaterThan(5);
    expect(await rollupGroups(q)).toEqual(raw);

    // and the triggers keep them from now on
    await db.pglite.exec(`
      UPDATE "Reward" SET "status" = 'APPROVED' WHERE "id" = '${reward}';
      UPDATE "Click" SET "discarded" = NOT "discarded" WHERE "occurredAt" < '2026-03-01 20:00:00+00';
      UPDATE "Referral" SET "status" = 'REJECTED' WHERE "id" = '${referral}';
      UPDATE "Click" SET "userAgent" = 'scrubbed', "ipHash" = NULL;
    `);
    expect(await rollupGroups(q)).toEqual(await rawGroups(q));
  }, 60_000);
});
