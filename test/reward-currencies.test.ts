// What a rule's money means for a conversion in another currency, end to end through
// recordConversion over HTTP. Amounts are never converted (no exchange rates): a FIXED amount is
// paid as is in its own currency; a PERCENTAGE reward is in the conversion's currency; a cap is in
// one currency, so a capped rule rewards only in it — and a conversion it does not reward lists it
// in `skippedRules` with the reason. The pure rules are in test/reward-engine.test.ts.
import { randomBytes } from 'node:crypto';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import type { CreateRewardRuleInput, RecordConversionInput } from './gql/graphql.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  // Every request looks its key up (one statement): statement counts do not depend on the cache's timing.
  server = await startTestServer({ AUTH_CACHE_TTL_MS: '0' });
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.testDb.db.prisma;

const CREATE_RULE = graphql(`
  mutation CurrenciesCreateRule($input: CreateRewardRuleInput!) {
    createRewardRule(input: $input) {
      rewardRule { id ruleId rewardCurrency capPerReferral { amount currency } }
      userErrors { code message field }
    }
  }
`);

const RECORD = graphql(`
  mutation CurrenciesRecord($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion {
        id
        status
        skippedRules { reason message rule { id ruleId version } }
      }
      rewards { amount { amount currency } rule { id } }
      replayed
      userErrors { code message field }
    }
  }
`);

const CONVERSION_NODE = graphql(`
  query CurrenciesConversionNode($id: ID!) {
    node(id: $id) {
      ... on Conversion { id skippedRules { reason message rule { id } } }
    }
  }
`);

const CONVERSIONS = graphql(`
  query CurrenciesConversions($filter: ConversionFilter) {
    conversions(first: 100, filter: $filter) {
      edges { node { id amount { currency } skippedRules { reason rule { id ruleId } } } }
    }
  }
`);

const PARTNER_TOKEN = graphql(`
  mutation CurrenciesPartnerToken($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code } }
  }
`);

let counter = 0;
const unique = () => `${Date.now()}-${++counter}`;

/** A workspace with a USD program, an enrolled partner with a link, and the rules given (created over GraphQL). */
async function scenario(rules: Array<Omit<CreateRewardRuleInput, 'programId'>>) {
  const ws = await server.workspace();
  const tenant: Tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
  const key = ws.keys.test.secret;
  const f = factories(prisma(), tenant);
  const program = await f.program({ currency: 'USD' });
  const partner = await f.partner();
  const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
  const link = await f.link(enrollment, { code: `Cur-${randomBytes(4).toString('hex')}` });
  const created = [];
  for (const rule of rules) {
    const res = await server.gql(CREATE_RULE, { input: { programId: gid('Program', program.id), ...rule } }, key);
    expect(res.data?.createRewardRule.userErrors).toEqual([]);
    created.push(res.data!.createRewardRule.rewardRule!);
  }
  const record = async (input: Partial<RecordConversionInput>, secret = key) => {
    const res = await server.gql(
      RECORD,
      {
        input: {
          type: 'PURCHASE',
          idempotencyKey: `evt-${unique()}`,
          referredExternalId: `user-${unique()}`,
          ...input,
        },
      },
      secret,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.recordConversion.userErrors).toEqual([]);
    return res.data!.recordConversion;
  };
  /** A referred person, signed up through the partner's link. */
  const person = async () => {
    const referredExternalId = `user-${unique()}`;
    await record({ type: 'SIGNUP', referredExternalId, code: link.code });
    return referredExternalId;
  };
  return { ws, tenant, key, f, program, partner, enrollment, link, rules: created, record, person };
}

const money = (amount: string, currency: string) => ({ amount, currency });
const amounts = (res: { rewards: Array<{ amount: { amount: string; currency: string } }> }) =>
  res.rewards.map((r) => `${r.amount.amount} ${r.amount.currency}`);
const reasons = (res: { conversion?: { skippedRules: Array<{ reason: string }> } | null }) =>
  res.conversion!.skippedRules.map((s) => s.reason);

describe('recordConversion: currencies', () => {
  it('a PERCENTAGE rule capped at 50.00 USD pays nothing on 2 × 80.00 EUR and says why; in USD its cap still applies cumulatively', async () => {
    const s = await scenario([
      {
        trigger: 'PURCHASE',
        kind: 'CASH',
        amountType: 'PERCENTAGE',
        percentageBasisPoints: 10_000,
        capPerReferral: money('50.00', 'USD'),
      },
      // Uncapped: it pays in each conversion's currency.
      { trigger: 'PURCHASE', kind: 'CASH', amountType: 'PERCENTAGE', percentageBasisPoints: 1000 },
    ]);
    const [capped, uncapped] = s.rules as [(typeof s.rules)[number], (typeof s.rules)[number]];
    expect([capped.rewardCurrency, uncapped.rewardCurrency]).toEqual(['USD', null]);
    const person = await s.person();

    const euros = [];
    for (let i = 0; i < 2; i++) {
      euros.push(await s.record({ referredExternalId: person, amount: money('80.00', 'EUR') }));
    }
    for (const res of euros) {
      expect(res.conversion!.status).toBe('ACCEPTED');
      // Only the uncapped rule pays: 10 % in EUR. The capped one is listed with its reason.
      expect(res.rewards.map((r) => [r.rule.id, `${r.amount.amount} ${r.amount.currency}`])).toEqual([
        [uncapped.id, '8.00 EUR'],
      ]);
      expect(res.conversion!.skippedRules).toEqual([
        {
          reason: 'CAP_CURRENCY_MISMATCH',
          message:
            'The reward would be in EUR and the rule’s cap per referred customer (capPerReferral) is 50.00 USD. Amounts are never converted between currencies, so that cap cannot limit it: a capped rule rewards only in its cap’s currency rather than pay uncapped (one rule per currency, each with its own cap, covers several).',
          rule: { id: capped.id, ruleId: capped.ruleId, version: 1 },
        },
      ]);
    }

    // In USD the capped rule pays until its cap: 30.00, then the 20.00 left, then nothing.
    const usd = [];
    for (let i = 0; i < 3; i++) usd.push(await s.record({ referredExternalId: person, amount: money('30.00', 'USD') }));
    expect(usd.map(amounts)).toEqual([['30.00 USD', '3.00 USD'], ['20.00 USD', '3.00 USD'], ['3.00 USD']]);
    expect(usd.map(reasons)).toEqual([[], [], ['CAP_REACHED']]);
    expect(usd[2]!.conversion!.skippedRules[0]!.message).toBe(
      'The referred customer already earned 50.00 USD from this rule, whose cap per referred customer (capPerReferral) is 50.00 USD: nothing is left.',
    );
    // What the capped rule paid, in the database: 50.00 USD, nothing in EUR.
    const paid = await prisma().reward.groupBy({
      by: ['currency'],
      where: { ...s.tenant, ruleLineageId: decodeGlobalID(capped.ruleId).id },
      _sum: { amount: true },
    });
    expect(paid.map((p) => [p.currency, p._sum.amount])).toEqual([['USD', 5000n]]);

    // Read back later: the node and the list say the same.
    const node = await server.gql(CONVERSION_NODE, { id: euros[0]!.conversion!.id }, s.key);
    expect(node.data?.node).toMatchObject({
      skippedRules: [
        { reason: 'CAP_CURRENCY_MISMATCH', message: expect.stringContaining('50.00 USD'), rule: { id: capped.id } },
      ],
    });
    const list = await server.gql(CONVERSIONS, { filter: { programId: gid('Program', s.program.id) } }, s.key);
    expect(
      list.data!.conversions.edges.map((e) => [
        e.node.amount?.currency ?? null,
        e.node.skippedRules.map((r) => r.reason),
      ]),
    ).toEqual([
      ['USD', ['CAP_REACHED']],
      ['USD', []],
      ['USD', []],
      ['EUR', ['CAP_CURRENCY_MISMATCH']],
      ['EUR', ['CAP_CURRENCY_MISMATCH']],
      // The signup: the program has no SIGNUP rule, so no rule was evaluated.
      [null, []],
    ]);
  });

  it('a FIXED 20.00 USD rule pays 20.00 USD on EUR and JPY conversions, and its USD cap counts all of them', async () => {
    const s = await scenario([
      {
        trigger: 'PURCHASE',
        kind: 'CASH',
        amountType: 'FIXED',
        fixedAmount: money('20.00', 'USD'),
        capPerReferral: money('50.00', 'USD'),
      },
    ]);
    expect(s.rules[0]!.rewardCurrency).toBe('USD');
    const person = await s.person();
    const results = [];
    for (const amount of [money('80.00', 'EUR'), money('1000', 'JPY'), money('10.00', 'EUR'), money('10.00', 'EUR')]) {
      results.push(await s.record({ referredExternalId: person, amount }));
    }
    expect(results.map(amounts)).toEqual([['20.00 USD'], ['20.00 USD'], ['10.00 USD'], []]);
    expect(results.map(reasons)).toEqual([[], [], [], ['CAP_REACHED']]);
    // Another referred customer starts from zero, whatever the currency.
    const other = await s.person();
    expect(amounts(await s.record({ referredExternalId: other, amount: money('5.00', 'GBP') }))).toEqual(['20.00 USD']);
  });

  it('a replay, a PARTNER token and the other workspaces and modes', async () => {
    const s = await scenario([
      {
        trigger: 'PURCHASE',
        kind: 'CASH',
        amountType: 'PERCENTAGE',
        percentageBasisPoints: 500,
        capPerReferral: money('10.00', 'USD'),
      },
    ]);
    const idempotencyKey = `evt-${unique()}`;
    const first = await s.record({ idempotencyKey, code: s.link.code, amount: money('80.00', 'EUR') });
    expect(reasons(first)).toEqual(['CAP_CURRENCY_MISMATCH']);
    // A replay reads the stored list.
    const replay = await s.record({ idempotencyKey, code: s.link.code, amount: money('80.00', 'EUR') });
    expect(replay.replayed).toBe(true);
    expect(replay.conversion!.skippedRules).toEqual(first.conversion!.skippedRules);

    const id = first.conversion!.id;
    // The partner's own token sees it; another partner's token, another workspace and the LIVE
    // mode of the same workspace do not see the conversion at all.
    const tokenOf = async (partnerId: string) =>
      (await server.gql(PARTNER_TOKEN, { input: { partnerId: gid('Partner', partnerId) } }, s.key)).data!
        .createPartnerToken.token!;
    const own = await server.gql(CONVERSION_NODE, { id }, await tokenOf(s.partner.id));
    expect(own.data?.node).toMatchObject({
      id,
      skippedRules: [{ reason: 'CAP_CURRENCY_MISMATCH', rule: { id: s.rules[0]!.id } }],
    });
    const otherPartner = await s.f.partner();
    await s.f.enrollment({ programId: s.program.id, partnerId: otherPartner.id });
    const theirs = await server.workspace();
    for (const token of [await tokenOf(otherPartner.id), theirs.keys.test.secret, s.ws.keys.live.secret]) {
      const res = await server.gql(CONVERSION_NODE, { id }, token);
      expect(res.errors).toBeUndefined();
      expect(res.data?.node).toBeNull();
      const list = await server.gql(CONVERSIONS, {}, token);
      expect(list.data?.conversions.edges ?? []).toEqual([]);
    }
  });

  it('discarded conversions and rules that all paid leave skippedRules empty', async () => {
    const s = await scenario([
      { trigger: 'PURCHASE', kind: 'CASH', amountType: 'FIXED', fixedAmount: money('1.00', 'EUR') },
    ]);
    const discarded = await s.record({ code: 'no-such-code', amount: money('80.00', 'EUR') });
    expect(discarded.conversion).toMatchObject({ status: 'DISCARDED', skippedRules: [] });
    const paid = await s.record({ code: s.link.code, amount: money('80.00', 'USD') });
    expect(amounts(paid)).toEqual(['1.00 EUR']);
    expect(paid.conversion!.skippedRules).toEqual([]);
  });

  it('reads the skipped rules of a page of conversions in the same number of statements for 2 and for 8', async () => {
    const counts = [];
    for (const n of [2, 8]) {
      const s = await scenario([
        {
          trigger: 'PURCHASE',
          kind: 'CASH',
          amountType: 'PERCENTAGE',
          percentageBasisPoints: 500,
          capPerReferral: money('10.00', 'USD'),
        },
        {
          trigger: 'PURCHASE',
          kind: 'CASH',
          amountType: 'PERCENTAGE',
          percentageBasisPoints: 10,
          capPerReferral: money('1.00', 'GBP'),
        },
      ]);
      for (let i = 0; i < n; i++) await s.record({ code: s.link.code, amount: money('80.00', 'EUR') });
      const { body, statements } = await server.gqlCounted(CONVERSIONS, {}, s.key);
      expect(body.errors).toBeUndefined();
      const nodes = body.data!.conversions.edges.map((e) => e.node);
      expect(nodes).toHaveLength(n);
      expect(nodes.every((c) => c.skippedRules.length === 2 && c.skippedRules.every((r) => r.rule.id))).toBe(true);
      counts.push(statements);
    }
    // The key lookup, the page of conversions, the skipped rules' rule versions (one loader).
    expect(counts).toEqual([3, 3]);
  });
});
