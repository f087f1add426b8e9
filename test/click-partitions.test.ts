// Raw clicks in monthly partitions (src/modules/click/README.md, "Partitions"): clicks land in the
// partition of their UTC month (or the DEFAULT one), the retention job drops months past
// CLICK_RETENTION_DAYS whole and deletes the older rows left, and the rollups — so the time
// series — keep counting what was dropped.
import { describe, expect, it } from 'vitest';
import { createClickPartitions } from '../src/modules/click/partitions.js';
import { RetentionJob } from '../src/modules/events/retention.js';
import { graphql } from './gql/index.js';
import { factories, gid, uuidv7 } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { rawGroups, rollupGroups, type Query } from './helpers/rollups.js';
import { BROWSER_USER_AGENT } from './helpers/server.js';

const fixture = useTwoWorkspaces({ env: { TRUST_PROXY: 'true' }, names: ['Partitions A', 'Partitions B'] });

const LINK_SERIES = graphql(`
  query CP_LinkSeries($id: ID!, $from: DateTime!, $to: DateTime!) {
    node(id: $id) {
      ... on ReferralLink { clicks timeseries(interval: MONTH, from: $from, to: $to) { start clicks } }
    }
  }
`);

const db = () => fixture.server.testDb.db;
const query: Query = (text) => db().prisma.$queryRawUnsafe(text);

/** The first instant of the UTC month `months` after the current one (negative: before). */
function monthStart(months: number): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + months, 1));
}
const partitionName = (at: Date) => `Click_p${at.getUTCFullYear()}${String(at.getUTCMonth() + 1).padStart(2, '0')}`;

async function partitions(): Promise<string[]> {
  const rows = await db().query<{ name: string }>(
    `SELECT c.relname AS "name" FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = '"Click"'::regclass ORDER BY 1`,
  );
  return rows.map((r) => r.name);
}

/** Where the clicks are: partition name → ids. */
async function placement(ids: string[]): Promise<Record<string, string[]>> {
  const rows = await db().query<{ part: string; id: string }>(
    `SELECT replace(tableoid::regclass::text, '"', '') AS "part", "id" FROM "Click" WHERE "id" = ANY($1::uuid[]) ORDER BY 1, 2`,
    [ids],
  );
  const result: Record<string, string[]> = {};
  for (const row of rows) result[row.part] = [...(result[row.part] ?? []), row.id];
  return result;
}

async function newLink() {
  const f = factories(db().prisma, fixture.tenant);
  const program = await f.program();
  const partner = await f.partner();
  const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
  const code = `cp-${uuidv7().slice(-8)}`;
  const link = await f.link(enrollment, { code });
  return { id: link.id, code, programId: program.id, partnerId: partner.id };
}

describe('click partitions', () => {
  it('put clicks in the partition of their UTC month, else the DEFAULT one', async () => {
    const parts = await partitions();
    for (let k = 0; k <= 3; k++) expect(parts).toContain(partitionName(monthStart(k)));
    expect(parts).toContain('Click_default');

    const link = await newLink();
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${fixture.server.url}/r/${link.code}`, {
        redirect: 'manual',
        headers: { 'user-agent': BROWSER_USER_AGENT, 'x-forwarded-for': `203.0.113.${i}` },
      });
      expect(res.status).toBe(302);
    }
    await fixture.server.app.services.clicks.flush();
    const f = factories(db().prisma, fixture.tenant);
    const late = await f.clicks(link, 2, { occurredAt: new Date(monthStart(-20).getTime() + 86_400_000) });
    const live = await db().query<{ id: string }>(
      `SELECT "id" FROM "Click" WHERE "linkId" = $1::uuid AND "occurredAt" > $2`,
      [link.id, monthStart(0)],
    );
    expect(live).toHaveLength(3);
    expect(await placement([...live.map((r) => r.id), ...late.map((r) => r.id)])).toEqual({
      [partitionName(monthStart(0))]: live.map((r) => r.id).sort(),
      Click_default: late.map((r) => r.id).sort(),
    });
    expect(await rollupGroups(query)).toEqual(await rawGroups(query));
  });

  it('are made ahead, moving clicks waiting in the DEFAULT partition into their month, by one job at a time', async () => {
    const link = await newLink();
    const f = factories(db().prisma, fixture.tenant);
    const ahead = await f.clicks(link, 2, { occurredAt: new Date(monthStart(5).getTime() + 3_600_000) });
    expect(Object.keys(await placement(ahead.map((r) => r.id)))).toEqual(['Click_default']);
    const rollups = await rollupGroups(query);
    // Two instances at once: each month is made once, the clicks moved once.
    const made = await Promise.all([
      createClickPartitions(db(), new Date(), 5),
      createClickPartitions(db(), new Date(), 5),
    ]);
    expect(made[0] + made[1]).toBe(2); // months 4 and 5
    expect(await createClickPartitions(db(), new Date(), 5)).toBe(0);
    expect(await placement(ahead.map((r) => r.id))).toEqual({
      [partitionName(monthStart(5))]: ahead.map((r) => r.id).sort(),
    });
    expect(await rollupGroups(query)).toEqual(rollups); // moving rows counts nothing twice
    await db().query(`DROP TABLE "${partitionName(monthStart(4))}"`); // as found (an empty month)
  });

  it('are dropped whole past CLICK_RETENTION_DAYS, the older rows left deleted, and the rollups keep counting them', async () => {
    const link = await newLink();
    const f = factories(db().prisma, fixture.tenant);
    // 14 months ago, in a partition of its own; 40 days ago, in the DEFAULT one (or last month's
    // partition, had one been made); and today.
    const oldMonth = monthStart(-14);
    expect(await createClickPartitions(db(), oldMonth, 0)).toBe(1);
    const old = await f.clicks(link, 5, { occurredAt: new Date(oldMonth.getTime() + 10 * 86_400_000) });
    const older = await f.clicks(link, 3, { occurredAt: new Date(Date.now() - 40 * 86_400_000) });
    const recent = await f.clicks(link, 4, { occurredAt: new Date() });
    expect(Object.keys(await placement(old.map((r) => r.id)))).toEqual([partitionName(oldMonth)]);

    const vars = {
      id: gid('ReferralLink', link.id),
      from: monthStart(-15).toISOString(),
      to: monthStart(1).toISOString(),
    };
    const before = await fixture.gql(LINK_SERIES, vars, fixture.admin);
    expect(before.errors).toBeUndefined();
    const seriesBefore = (before.data!.node as { timeseries: Array<{ clicks: number }> }).timeseries;
    expect(seriesBefore.reduce((sum, b) => sum + b.clicks, 0)).toBe(12);
    expect((before.data!.node as { clicks: number }).clicks).toBe(12);
    const rollups = await rollupGroups(query);
    const everyClick = await db().prisma.click.count();

    const retention = new RetentionJob(db(), {
      eventDays: 0,
      webhookDeliveryDays: 0,
      clickDays: 30,
      intervalMs: 0,
      batchSize: 2,
    });
    const { clicks } = await retention.runOnce();
    // Every click older than 30 days: this test's 5 + 3 and the first test's 2 (20 months ago).
    expect(clicks).toBe(5 + 3 + 2);
    expect(await db().prisma.click.count()).toBe(everyClick - clicks);
    expect(await partitions()).not.toContain(partitionName(oldMonth));
    expect(await placement([...old, ...older].map((r) => r.id))).toEqual({});
    expect(Object.values(await placement(recent.map((r) => r.id))).flat()).toHaveLength(4);
    expect(
      await db().prisma.click.count({ where: { occurredAt: { lt: new Date(Date.now() - 30 * 86_400_000) } } }),
    ).toBe(0);

    expect(await rollupGroups(query)).toEqual(rollups);
    const after = await fixture.gql(LINK_SERIES, vars, fixture.admin);
    expect(after.errors).toBeUndefined();
    const node = after.data!.node as { clicks: number; timeseries: Array<{ clicks: number }> };
    expect(node.timeseries).toEqual(seriesBefore);
    // ReferralLink.clicks reads the rollups too (src/modules/stats/): the dropped clicks still count.
    expect(node.clicks).toBe(12);
    expect(await retention.runOnce()).toEqual({ events: 0, deliveries: 0, clicks: 0 });
  });
});
