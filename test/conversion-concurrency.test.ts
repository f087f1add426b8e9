import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import type { RecordConversionInput } from './gql/graphql.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// Real concurrent requests over HTTP. On PostgreSQL (TEST_DATABASE_URL) they run in parallel
// transactions; on the embedded PGlite they are serialized — the results must be the same.

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.testDb.db.prisma;

const RECORD = graphql(`
  mutation RecordConversionConcurrently($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { id status discardReason partner { id } referral { id } }
      rewards { id amount { amount currency } }
      replayed
      userErrors { code message field }
    }
  }
`);

async function setup() {
  const ws = await server.workspace();
  const tenant: Tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
  const f = factories(prisma(), tenant);
  const program = await f.program();
  const partnerA = await f.partner();
  const partnerB = await f.partner();
  const linkA = await f.link(await f.enrollment({ programId: program.id, partnerId: partnerA.id }));
  const linkB = await f.link(await f.enrollment({ programId: program.id, partnerId: partnerB.id }));
  const send = (input: RecordConversionInput) => server.gql(RECORD, { input }, ws.keys.test.secret);
  return { ws, tenant, f, program, partnerA, partnerB, linkA, linkB, send };
}

const purchase = (input: Partial<RecordConversionInput>): RecordConversionInput => ({
  type: 'PURCHASE',
  idempotencyKey: `k-${Math.random()}`,
  referredExternalId: 'someone',
  amount: { amount: '100.00', currency: 'USD' },
  ...input,
});

describe(`recordConversion under concurrency (${process.env.TEST_DATABASE_URL ? 'PostgreSQL' : 'PGlite'})`, () => {
  it('20 concurrent calls with one idempotency key record one conversion and one set of rewards, and all return it', async () => {
    const s = await setup();
    await s.f.rule(s.program.id, { fixedAmount: 1000n });
    await s.f.rule(s.program.id, {
      recipient: 'REFERRED',
      amountType: 'PERCENTAGE',
      fixedAmount: null,
      fixedCurrency: null,
      percentageBasisPoints: 500,
    });
    const input = purchase({ idempotencyKey: 'order-42', referredExternalId: 'buyer-42', code: s.linkA.code });
    const results = await Promise.all(Array.from({ length: 20 }, () => s.send(input)));

    for (const res of results) {
      expect(res.errors).toBeUndefined();
      expect(res.data!.recordConversion.userErrors).toEqual([]);
    }
    const payloads = results.map((r) => r.data!.recordConversion);
    const ids = new Set(payloads.map((p) => p.conversion!.id));
    expect(ids.size).toBe(1);
    expect(payloads.filter((p) => !p.replayed)).toHaveLength(1);
    for (const p of payloads) {
      expect(p.conversion!.status).toBe('ACCEPTED');
      expect(p.rewards.map((r) => r.amount.amount).sort()).toEqual(['10.00', '5.00']);
    }
    expect(
      new Set(
        payloads.map((p) =>
          p.rewards
            .map((r) => r.id)
            .sort()
            .join(),
        ),
      ).size,
    ).toBe(1);

    expect(await prisma().conversion.count({ where: s.tenant })).toBe(1);
    expect(await prisma().reward.count({ where: s.tenant })).toBe(2);
    expect(await prisma().rewardStatusChange.count({ where: s.tenant })).toBe(2);
    expect(await prisma().referral.count({ where: s.tenant })).toBe(1);
    const events = await prisma().event.findMany({ where: s.tenant, orderBy: { sequence: 'asc' } });
    expect(events.map((e) => [e.sequence, e.type])).toEqual([
      [1n, 'reward.created'],
      [2n, 'reward.created'],
      [3n, 'conversion.recorded'],
    ]);
  });

  it('concurrent conversions with different keys for one new referred person create one referral and respect limits', async () => {
    const s = await setup();
    // 10 % per purchase, at most 3 rewards, at most 25.00 in all.
    await s.f.rule(s.program.id, {
      amountType: 'PERCENTAGE',
      fixedAmount: null,
      fixedCurrency: null,
      percentageBasisPoints: 1000,
      maxRewardsPerReferral: 3,
      capAmount: 2500n,
      capCurrency: 'USD',
    });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        s.send(purchase({ idempotencyKey: `order-${i}`, referredExternalId: 'new-person', code: s.linkA.code })),
      ),
    );
    const payloads = results.map((r) => r.data!.recordConversion);
    for (const p of payloads) {
      expect(p.userErrors).toEqual([]);
      expect(p.conversion!.status).toBe('ACCEPTED');
    }
    expect(new Set(payloads.map((p) => p.conversion!.referral!.id)).size).toBe(1);
    expect(await prisma().referral.count({ where: s.tenant })).toBe(1);
    expect(await prisma().conversion.count({ where: s.tenant })).toBe(10);
    const rewards = await prisma().reward.findMany({ where: s.tenant, orderBy: { id: 'asc' } });
    expect(rewards.map((r) => r.amount)).toEqual([1000n, 1000n, 500n]);
  });

  it('two partners racing for one new person: the first touch takes every conversion', async () => {
    const s = await setup();
    await s.f.rule(s.program.id, { fixedAmount: 100n });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        s.send(
          purchase({
            idempotencyKey: `race-${i}`,
            referredExternalId: 'contested',
            code: i % 2 === 0 ? s.linkA.code : s.linkB.code,
          }),
        ),
      ),
    );
    const payloads = results.map((r) => r.data!.recordConversion);
    const referral = await prisma().referral.findFirstOrThrow({ where: { ...s.tenant, externalId: 'contested' } });
    expect(await prisma().referral.count({ where: s.tenant })).toBe(1);
    for (const p of payloads) {
      expect(p.userErrors).toEqual([]);
      expect(p.conversion).toMatchObject({
        status: 'ACCEPTED',
        partner: { id: gid('Partner', referral.partnerId) },
        referral: { id: gid('Referral', referral.id) },
      });
    }
    const rewards = await prisma().reward.findMany({ where: s.tenant });
    expect(rewards).toHaveLength(12);
    expect(new Set(rewards.map((r) => r.partnerId))).toEqual(new Set([referral.partnerId]));
  });
});
