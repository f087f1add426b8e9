// The nested reads of conversions, rewards, referrals and payouts run the same number of SQL
// statements whatever the number of rows: every relation is loaded once per level (plugin-prisma's
// selections or a dataloader), never once per row. Each query runs on a small and a large
// workspace and the counts must be equal; the count itself is pinned so that a change in the SQL a
// resolver runs shows up in review.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { factories, seedNetwork } from './helpers/factories.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
const keys: Record<'small' | 'large', string> = { small: '', large: '' };
const SIZES = { small: 3, large: 20 } as const;

beforeAll(async () => {
  // Every request looks its key up (one statement): counts do not depend on the credential cache's timing.
  server = await startTestServer({ AUTH_CACHE_TTL_MS: '0' });
  for (const size of ['small', 'large'] as const) {
    const ws = await server.workspace(`Nested ${size}`);
    keys[size] = ws.keys.test.secret;
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const network = await seedNetwork(server.testDb.db.prisma, tenant, { partners: SIZES[size] });
    // One PENDING payout per partner holding that partner's rewards.
    const f = factories(server.testDb.db.prisma, tenant);
    // Events (from real mutations), two webhook endpoints, and a delivery of every event to each.
    for (let i = 0; i < SIZES[size]; i++)
      await server.gql(
        `mutation { createPartner(input: { externalId: "hooked-${i}" }) { partner { id } } }`,
        {},
        keys[size],
      );
    const events = await server.testDb.db.prisma.event.findMany({ where: tenant, select: { id: true } });
    for (const n of [1, 2]) {
      const endpoint = await server.testDb.db.prisma.webhookEndpoint.create({
        data: { ...tenant, url: `https://hooks.example.com/${n}`, secret: `whsec_${n}`, eventTypes: [] },
      });
      await server.testDb.db.prisma.webhookDelivery.createMany({
        data: events.map((e) => ({
          ...tenant,
          endpointId: endpoint.id,
          eventId: e.id,
          status: 'SUCCEEDED' as const,
          attempts: 1,
        })),
      });
    }
    // Each reward's status history: created with the admin key, approved by the job.
    await server.testDb.db.prisma.rewardStatusChange.createMany({
      data: network.rewards.flatMap((r) => [
        { ...tenant, rewardId: r.id, fromStatus: null, toStatus: 'CREATED' as const, actor: ws.keys.test.id },
        {
          ...tenant,
          rewardId: r.id,
          fromStatus: 'CREATED' as const,
          toStatus: 'APPROVED' as const,
          actor: 'system:approval-job',
        },
      ]),
    });
    // A review item for every rewarded conversion, holding (having held) its reward.
    for (const r of network.rewards) {
      const item = await server.testDb.db.prisma.reviewItem.create({
        data: {
          ...tenant,
          programId: r.programId,
          partnerId: r.partnerId,
          conversionId: r.conversionId,
          referralId: r.referralId,
          signals: [{ type: 'MANUAL', detail: 'seeded' }],
        },
      });
      await server.testDb.db.prisma.reward.update({ where: { id: r.id }, data: { reviewItemId: item.id } });
    }
    for (const partner of network.partners) {
      const rewards = network.rewards.filter((r) => r.partnerId === partner.id);
      const payout = await f.payout({ partnerId: partner.id, amount: 500n * BigInt(rewards.length), currency: 'USD' });
      await server.testDb.db.prisma.reward.updateMany({
        where: { id: { in: rewards.map((r) => r.id) } },
        data: { payoutId: payout.id },
      });
    }
  }
});
afterAll(() => server?.close());

/** The statements `query` runs on each workspace, after checking that both answered without errors and with rows. */
async function statementsFor(query: string, rows: (data: Record<string, unknown>) => number) {
  const counts: Record<string, number> = {};
  for (const size of ['small', 'large'] as const) {
    const { body, statements } = await server.gqlCounted(query, {}, keys[size]);
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    expect(rows(body.data as Record<string, unknown>)).toBeGreaterThanOrEqual(SIZES[size]);
    counts[size] = statements;
  }
  return counts;
}

type Edges<T> = { edges: Array<{ node: T }> };

describe('nested reads run a fixed number of SQL statements', () => {
  it('conversions → partner, program, referral → link, rewards → rule, payout', async () => {
    const counts = await statementsFor(
      `{ conversions(first: 100) { edges { node {
          id amount { amount currency } partner { id externalId } program { id name }
          referral { id status link { code } }
          rewards { id status amount { amount } rule { id } payout { id status } }
        } } } }`,
      (data) => (data['conversions'] as Edges<unknown>).edges.length,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`9`);
  });

  it('rewards → conversion → referral, partner, program, rule, payout → partner', async () => {
    const counts = await statementsFor(
      `{ rewards(first: 100) { edges { node {
          id status conversion { id type referral { id } } partner { id externalId } program { id }
          rule { id } payout { id status partner { id } }
        } } } }`,
      (data) => (data['rewards'] as Edges<unknown>).edges.length,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`9`);
  });

  it('rewards → statusHistory (actors shown as key ids), conversion', async () => {
    const counts = await statementsFor(
      `{ rewards(first: 100) { edges { node {
          id status statusHistory { from to reason actor at } conversion { id }
        } } } }`,
      (data) =>
        (data['rewards'] as Edges<{ statusHistory: Array<{ actor: string | null }> }>).edges.filter(
          (e) => e.node.statusHistory.length === 2 && e.node.statusHistory[1]!.actor === 'system:approval-job',
        ).length,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`4`);
  });

  it('partners → referrals → link, conversions → rewards', async () => {
    const counts = await statementsFor(
      `{ partners(first: 100) { edges { node {
          id referrals(first: 5) { edges { node {
            id status link { code } conversions(first: 5) { id rewards(first: 5) { id status } }
          } } }
        } } } }`,
      (data) => (data['partners'] as Edges<unknown>).edges.length,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`6`);
  });

  it('partners → referrals (metadata) → rewards → conversion (metadata)', async () => {
    const counts = await statementsFor(
      `{ partners(first: 100) { edges { node {
          id metadata referrals(first: 5) { totalCount edges { node {
            id metadata rewards(first: 5) { totalCount edges { node { id status conversion { id metadata } } } }
          } } }
        } } } }`,
      (data) =>
        (
          data['partners'] as Edges<{
            referrals: Edges<{ rewards: { totalCount: number } }>;
          }>
        ).edges.filter((p) => p.node.referrals.edges.some((r) => r.node.rewards.totalCount === 1)).length,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`5`);
  });

  it('payouts (through rewards) → partner, rewards → conversion', async () => {
    const counts = await statementsFor(
      `{ rewards(first: 100) { edges { node {
          payout { id amount { amount currency } partner { id } rewards { id conversion { id } } }
        } } } }`,
      (data) => (data['rewards'] as Edges<unknown>).edges.length,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`6`);
  });

  it('partners → links (clicks, uniqueClicks, botClicks), stats (unique clicks)', async () => {
    // Every link's three counts and every partner's unique clicks come from one GROUP BY.
    const counts = await statementsFor(
      `{ partners(first: 100) { edges { node {
          id stats { clicks } links { code clicks uniqueClicks botClicks }
        } } } }`,
      (data) =>
        (data['partners'] as Edges<{ links: Array<{ clicks: number }> }>).edges.filter((e) =>
          e.node.links.some((l) => l.clicks > 0),
        ).length,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`4`);
  });

  it('reviewQueue → signals, program, partner, referral, conversion (signals, reviewItem), rewards → rule, conversion', async () => {
    const counts = await statementsFor(
      `{ reviewQueue(first: 100) { totalCount edges { node {
          id status signals { type detail } createdAt program { id } partner { id externalId } referral { id status }
          conversion { id signals { type } reviewItem { id } }
          rewards { id status rule { id } conversion { id } }
        } } } }`,
      (data) => (data['reviewQueue'] as Edges<unknown>).edges.length,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`11`);
  });

  it('webhook endpoints → deliveries → event, endpoint', async () => {
    const counts = await statementsFor(
      `{ webhookEndpoints(first: 10) { edges { node {
          id url deliveries(first: 50) { edges { node { id status attempts event { id type sequence } endpoint { id } } } }
        } } } }`,
      (data) =>
        (data['webhookEndpoints'] as Edges<{ deliveries: Edges<unknown> }>).edges.reduce(
          (sum, e) => sum + e.node.deliveries.edges.length,
          0,
        ) / 2,
    );
    expect(counts['large']).toBe(counts['small']);
    expect(counts['small']).toMatchInlineSnapshot(`5`);
  });
});
