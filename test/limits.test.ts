import { complexityFromQuery } from '@pothos/plugin-complexity';
import { parse } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_QUERY } from '../scripts/bench/seed.js';
import { loadConfig } from '../src/config.js';
import { nestingDepth } from '../src/graphql/limits.js';
import { schema } from '../src/graphql/schema.js';
import { factories, gid } from './helpers/factories.js';
import { partnerToken } from './helpers/money.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { subscribe, wsClient } from './helpers/ws.js';

/** `selection` nested `levels` times around `leaf`: nest('a { ', ' }', 3, 'id') = 'a { a { a { id } } }'. */
function nest(open: string, close: string, levels: number, leaf: string): string {
  return open.repeat(levels) + leaf + close.repeat(levels);
}

async function post(server: TestServer, body: unknown, token?: string, accept = 'application/graphql-response+json') {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    statements: Number(res.headers.get('x-sql-statements')),
    body: JSON.parse(text) as {
      data?: unknown;
      errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
    },
  };
}

describe('operation limits', () => {
  let server: TestServer;
  let admin: string;
  let partner: string;
  let programId: string;

  beforeAll(async () => {
    server = await startTestServer({ MAX_QUERY_TOKENS: '2000' });
    const ws = await server.workspace('Limits');
    admin = ws.keys.test.secret;
    const f = factories(server.testDb.db.prisma, { workspaceId: ws.workspace.id, mode: 'TEST' });
    const program = await f.program();
    programId = gid('Program', program.id);
    await f.rule(program.id);
    await f.rule(program.id, { trigger: 'SIGNUP' });
    const p = await f.partner();
    const enrollment = await f.enrollment({ programId: program.id, partnerId: p.id });
    await f.link(enrollment);
    partner = await partnerToken(server, admin, p.id);
  });
  afterAll(() => server?.close());

  const tooComplex = (body: { errors?: Array<{ extensions?: Record<string, unknown> }> }, limit: string) => {
    expect(body.errors?.map((e) => [e.extensions?.['code'], e.extensions?.['limit']])).toEqual([
      ['QUERY_TOO_COMPLEX', limit],
    ]);
  };

  it('refuses the cyclic documents of the report before running anything (PARTNER token)', async () => {
    // RewardRule.program.rewardRules.program…: 16 and 25 levels, as measured on the old main.
    for (const levels of [8, 12]) {
      const query = `query Cyclic($id: ID!) { program(id: $id) { ${nest('rewardRules { program { ', '} }', levels, 'id')} } }`;
      const res = await post(server, { query, variables: { id: programId } }, partner);
      expect(res.status).toBe(400);
      tooComplex(res.body, 'MAX_QUERY_DEPTH');
      expect(res.body.errors![0]!.message).toMatch(/more than 15 \(MAX_QUERY_DEPTH\)/);
      expect(res.statements).toBe(0);
      expect(res.body).not.toHaveProperty('data');
    }
    // Program.enrollments.partner.enrollments.program… within the depth limit: the cost refuses it.
    const wide = `{ programs(first: 100) { edges { node { ${nest('rewardRules { program { ', '} }', 5, 'id')} } } } }`;
    const res = await post(server, { query: wide }, partner);
    tooComplex(res.body, 'MAX_QUERY_COST');
    expect(res.body.errors![0]!.message).toMatch(/estimated cost is \d+, more than 500000 \(MAX_QUERY_COST\)/);
    expect(res.statements).toBe(0);
    const rewards = `{ rewards(first: 100) { edges { node { ${nest('conversion { rewards { ', '} }', 4, 'id')} } } } }`;
    tooComplex((await post(server, { query: rewards }, partner)).body, 'MAX_QUERY_COST');
  });

  it('answers the report’s attack documents together, nothing executed, while a cheap query is served', async () => {
    // The documents quoted in issue 11, sent at once; a cheap query from another credential goes alongside.
    const cyclic = (levels: number) =>
      `query Cyclic($id: ID!) { program(id: $id) { ${nest('rewardRules { program { ', '} }', Math.ceil(levels / 2), 'id')} } }`;
    const attacks = [
      { query: cyclic(16), variables: { id: programId } },
      { query: cyclic(25), variables: { id: programId } },
      { query: `{ ${Array.from({ length: 1000 }, (_, i) => `r${i}: rewards(first: 100) { totalCount }`).join(' ')} }` },
      { query: `{ ${nest('a { ', '}', 5000, 'b')} }` },
      { query: `{ program(id: ${nest('[', ']', 20_000, '"x"')}) { id } }` },
    ];
    const started = performance.now();
    const [cheap, ...refused] = await Promise.all([
      post(server, { query: '{ viewer { role } }' }, admin),
      ...attacks.map((body) => post(server, body, partner)),
    ]);
    console.log(`attack documents answered in ${Math.round(performance.now() - started)} ms in all`);
    expect(cheap!.body).toEqual({ data: { viewer: { role: 'ADMIN' } } });
    for (const res of refused) {
      expect(res.status).toBe(400);
      expect(res.body.errors![0]!.extensions!['code']).toBe('QUERY_TOO_COMPLEX');
      expect(res.statements).toBe(0);
    }
  });

  it('counts a list’s page size from variables, and lets a query at the limit through', async () => {
    const query =
      'query Page($n: Int) { programs(first: $n) { edges { node { rewardRules { program { rewardRules { id } } } } } } }';
    const cost = (n: number) => complexityFromQuery(query, { schema, variables: { n } }).complexity;
    const limited = await startTestServer({ MAX_QUERY_COST: String(cost(10)) });
    try {
      const ws = await limited.workspace();
      const ok = await post(limited, { query, variables: { n: 10 } }, ws.keys.test.secret);
      expect(ok.body.errors).toBeUndefined();
      const refused = await post(limited, { query, variables: { n: 11 } }, ws.keys.test.secret);
      tooComplex(refused.body, 'MAX_QUERY_COST');
      expect(refused.body.errors![0]!.extensions).toMatchObject({ max: cost(10), actual: cost(11) });
      expect(refused.statements).toBe(0);
      // application/json gets 200 for a request error (GraphQL over HTTP), never a 500.
      expect(
        (await post(limited, { query, variables: { n: 11 } }, ws.keys.test.secret, 'application/json')).status,
      ).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('refuses too many aliases (1000 aliases of rewards(first: 100)) but takes the ten-trackClick batch', async () => {
    const aliases = `{ ${Array.from({ length: 1000 }, (_, i) => `r${i}: rewards(first: 100) { totalCount }`).join(' ')} }`;
    // Tokens allowed so that the aliases are what is counted (by default the tokens refuse it first).
    const big = await startTestServer({ MAX_QUERY_TOKENS: '100000' });
    try {
      const ws = await big.workspace();
      await post(big, { query: '{ viewer { role } }' }, ws.keys.test.secret); // the key's lookup is then cached
      const res = await post(big, { query: aliases }, ws.keys.test.secret);
      tooComplex(res.body, 'MAX_ALIASES');
      expect(res.body.errors![0]!.message).toBe(
        'The operation uses 1000 aliases, more than 30 (MAX_ALIASES). Send several requests, or fewer aliased fields per request.',
      );
      expect(res.statements).toBe(0);
    } finally {
      await big.close();
    }
    tooComplex((await post(server, { query: aliases }, admin)).body, 'MAX_QUERY_TOKENS');
    const batch = `mutation Batch { ${Array.from({ length: 10 }, (_, i) => `c${i}: trackClick(input: { code: "nope-${i}" }) { clickId discarded }`).join(' ')} }`;
    const res = await post(server, { query: batch }, admin);
    expect(res.body.errors).toBeUndefined();
    expect(Object.keys(res.body.data as object)).toHaveLength(10);
  });

  it('refuses documents nested thousands of levels deep with a parse-time error, not a stack overflow', async () => {
    const deep = `{ ${nest('a { ', '}', 5000, 'b')} }`;
    const res = await post(server, { query: deep }, admin);
    tooComplex(res.body, 'MAX_QUERY_NESTING');
    const list = `{ program(id: ${nest('[', ']', 20_000, '"x"')}) { id } }`;
    tooComplex((await post(server, { query: list }, admin)).body, 'MAX_QUERY_NESTING');
    // Brackets inside strings, block strings and comments are not nesting.
    expect(nestingDepth('{ a(s: "{{{{", t: """ [[[ \\""" ((( """) # {{{{{{\n { b } }', 100)).toBe(2);
  });

  it('refuses a document with more tokens than MAX_QUERY_TOKENS', async () => {
    const long = `{ ${'__typename '.repeat(2001)}}`;
    const res = await post(server, { query: long }, admin);
    tooComplex(res.body, 'MAX_QUERY_TOKENS');
    expect(res.body.errors![0]!.message).toMatch(/more than 2000 tokens \(MAX_QUERY_TOKENS\)/);
  });

  it('applies the same limits to subscriptions over WebSocket and SSE', async () => {
    const client = wsClient(server.url, admin);
    try {
      const deep = subscribe(
        client,
        `subscription { conversionRecorded { ${nest('rewards { conversion { ', '} }', 8, 'id')} } }`,
      );
      const result = await deep.next();
      expect(JSON.stringify(result.errors)).toMatch(/QUERY_TOO_COMPLEX|MAX_QUERY_DEPTH/);
      const costly = subscribe(
        client,
        `subscription { conversionRecorded { ${nest('rewards { conversion { ', '} }', 3, 'id')} referral { conversions { rewards { conversion { rewards { id } } } } } } }`,
      );
      const refused = await costly.next();
      expect(JSON.stringify(refused.errors)).toMatch(/MAX_QUERY_COST/);
    } finally {
      await client.dispose();
    }
    const sse = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${admin}` },
      body: JSON.stringify({
        query: `subscription { conversionRecorded { ${nest('rewards { conversion { ', '} }', 8, 'id')} } }`,
      }),
    });
    expect(await sse.text()).toMatch(/QUERY_TOO_COMPLEX/);
  });

  it('lets the benchmarks’ documents through with the default limits', () => {
    const limits = loadConfig({}).limits;
    const clicks = `mutation BenchBatch(${Array.from({ length: 10 }, (_, i) => `$i${i}: TrackClickInput!`).join(', ')}) { ${Array.from({ length: 10 }, (_, i) => `c${i}: trackClick(input: $i${i}) { clickId discarded userErrors { code } }`).join(' ')} }`;
    for (const document of [DASHBOARD_QUERY, clicks]) {
      const { complexity, depth } = complexityFromQuery(parse(document), {
        schema,
        variables: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`i${i}`, { code: 'x' }])),
      });
      expect(complexity).toBeLessThanOrEqual(limits.cost);
      expect(depth).toBeLessThanOrEqual(limits.depth);
    }
  });

  it('keeps plain lists bounded: first at most 100, and the paginated alternatives', async () => {
    const res = await post(
      server,
      {
        query: 'query($id: ID!) { program(id: $id) { rewardRules(first: 101) { id } } }',
        variables: { id: programId },
      },
      admin,
    );
    expect(res.body.errors?.[0]?.extensions?.['code']).toBe('BAD_USER_INPUT');
    const one = await post(
      server,
      {
        query: 'query($id: ID!) { program(id: $id) { rewardRules(first: 1) { id } all: rewardRules { id } } }',
        variables: { id: programId },
      },
      admin,
    );
    expect(one.body.data).toMatchObject({
      program: { rewardRules: [expect.anything()], all: [expect.anything(), expect.anything()] },
    });

    // A payout of 101 rewards lists 100; Query.rewards(filter: { payoutId }) pages through all.
    const prisma = server.testDb.db.prisma;
    const ws = await server.workspace('Paged');
    const f = factories(prisma, { workspaceId: ws.workspace.id, mode: 'TEST' });
    const program = await f.program();
    const rule = await f.rule(program.id);
    const p = await f.partner();
    const [referral] = await f.referrals([{ programId: program.id, partnerId: p.id }]);
    const conversions = await f.conversions(
      Array.from({ length: 101 }, () => ({
        programId: program.id,
        partnerId: p.id,
        referralId: referral!.id,
        amount: 100n,
        currency: 'USD',
      })),
    );
    const payout = await f.payout({ partnerId: p.id, amount: 101_000n, currency: 'USD' });
    await f.rewards(
      conversions.map((c) => ({
        programId: program.id,
        partnerId: p.id,
        conversionId: c.id,
        ruleId: rule.id,
        amount: 1000n,
        currency: 'USD',
        status: 'APPROVED' as const,
        payoutId: payout.id,
      })),
    );
    const lists = await post(
      server,
      {
        query: `query($payout: ID!, $referral: ID!) {
          node(id: $payout) { ... on Payout { rewards { id } } }
          referral: node(id: $referral) { ... on Referral { conversions { id } } }
          rewards(filter: { payoutId: $payout }, first: 100) { totalCount }
          conversions(filter: { referralId: $referral }, first: 100) { totalCount }
        }`,
        variables: { payout: gid('Payout', payout.id), referral: gid('Referral', referral!.id) },
      },
      ws.keys.test.secret,
    );
    expect(lists.body.errors).toBeUndefined();
    const data = lists.body.data as {
      node: { rewards: unknown[] };
      referral: { conversions: unknown[] };
      rewards: { totalCount: number };
      conversions: { totalCount: number };
    };
    expect([
      data.node.rewards.length,
      data.referral.conversions.length,
      data.rewards.totalCount,
      data.conversions.totalCount,
    ]).toEqual([100, 100, 101, 101]);
    // Another workspace's payout id matches nothing.
    const other = await post(
      server,
      {
        query: 'query($p: ID!) { rewards(filter: { payoutId: $p }) { totalCount } }',
        variables: { p: gid('Payout', payout.id) },
      },
      admin,
    );
    expect(other.body.data).toEqual({ rewards: { totalCount: 0 } });
  });
});
