// Text no column can hold — a NUL character, or half of a UTF-16 surrogate pair — in any argument
// is refused before a resolver runs (src/graphql/input-text.ts): a mutation answers VALIDATION
// naming the field, a query or a subscription a top-level BAD_USER_INPUT naming the argument.
// Before, PostgreSQL refused it (22021) and the client got "Unexpected error."; a lone surrogate
// was silently stored as U+FFFD. Referral links (`/r/{code}`), whose input comes from browsers,
// never answer 500 whatever bytes they get.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { dottedPath, textProblems, unstorableText } from '../src/graphql/input-text.js';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { subscribe, wsClient } from './helpers/ws.js';

const fixture = useTwoWorkspaces({ env: { PUBLIC_URL: 'https://ref.example.com' }, names: ['Input text', 'Other'] });

const NUL = 'a\u0000b';
const HIGH = 'x\uD800y'; // a high surrogate without its low half
const LOW = '\uDC00'; // a low surrogate without its high half
const REVERSED = '\uDE00\uD83D'; // the halves of 😀 in the wrong order

type Body = {
  data?: Record<string, any> | null;
  errors?: Array<{ message: string; path?: unknown; extensions?: Record<string, unknown> }>;
};

const prisma = () => fixture.server.testDb.db.prisma;

/** Rows and events of the workspace: a refused mutation must leave them as they were. */
async function snapshot() {
  const where = { workspaceId: fixture.ws.workspace.id };
  const p = prisma();
  return {
    programs: await p.program.findMany({ where, orderBy: { id: 'asc' } }),
    partners: await p.partner.findMany({ where, orderBy: { id: 'asc' } }),
    links: await p.referralLink.count({ where }),
    conversions: await p.conversion.count({ where }),
    keys: await p.apiKey.count({ where }),
    events: await p.event.count({ where }),
  };
}

async function partnerToken(partnerId: string): Promise<string> {
  const res = (await fixture.gql(
    'mutation($input: CreatePartnerTokenInput!) { createPartnerToken(input: $input) { token userErrors { code } } }',
    { input: { partnerId } },
    fixture.admin,
  )) as Body;
  return res.data!['createPartnerToken'].token as string;
}

describe('unstorableText', () => {
  it('finds NUL characters and unpaired surrogates, and lets real text through', () => {
    expect(unstorableText(NUL)).toMatch(/^contains a NUL character \(U\+0000\) at position 1/);
    expect(unstorableText(HIGH)).toMatch(/^contains an unpaired UTF-16 surrogate \(U\+D800\) at position 1/);
    expect(unstorableText(LOW)).toMatch(/\(U\+DC00\) at position 0/);
    expect(unstorableText(REVERSED)).toMatch(/\(U\+DE00\) at position 0/);
    expect(unstorableText('end\uD83D')).toMatch(/\(U\+D83D\) at position 3/);
    for (const fine of [
      '',
      'plain',
      'Grüße 😀 日本語 \uD83D\uDE00',
      '\u0001\u001f\u007f\uFFFD\uFEFF',
      'tab\tnew\nline\r',
    ]) {
      expect(unstorableText(fine), JSON.stringify(fine)).toBeNull();
    }
  });

  it('walks arguments, input fields, lists and JSON keys, naming each path', () => {
    const problems = textProblems({
      input: {
        name: 'fine',
        email: NUL,
        amount: { currency: LOW },
        tags: ['ok', HIGH],
        meta: { [NUL]: 1, nested: [{ deep: REVERSED }] },
      },
      code: 'fine',
      at: new Date(),
      n: 3,
    });
    expect(problems.map((p) => [p.path, p.message.split(' contains')[0]])).toEqual([
      [['input', 'email'], 'input.email'],
      [['input', 'amount', 'currency'], 'input.amount.currency'],
      [['input', 'tags', '1'], 'input.tags[1]'],
      [['input', 'meta', NUL], 'A key in input.meta'],
      [['input', 'meta', 'nested', '0', 'deep'], 'input.meta.nested[0].deep'],
    ]);
    expect(dottedPath(['ids', '2'])).toBe('ids[2]');
    // Deep nesting is walked without recursion.
    let deep: unknown = NUL;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(textProblems({ deep })).toHaveLength(1);
  });
});

describe('mutations', () => {
  it('refuse a NUL or an unpaired surrogate in any field with VALIDATION naming it; nothing is written, no event', async () => {
    const f = factories(prisma(), fixture.tenant);
    const program = await f.program();
    const partner = await f.partner();
    await f.enrollment({ programId: program.id, partnerId: partner.id });
    const before = await snapshot();

    const cases: Array<{ query: string; input: Record<string, unknown>; fields: string[][]; field: string }> = [
      {
        field: 'createProgram',
        query:
          'mutation($input: CreateProgramInput!) { createProgram(input: $input) { program { id } userErrors { code field message } } }',
        input: { name: NUL, type: 'REFERRAL', currency: 'USD' },
        fields: [['input', 'name']],
      },
      {
        field: 'createProgram',
        query:
          'mutation($input: CreateProgramInput!) { createProgram(input: $input) { program { id } userErrors { code field message } } }',
        input: { name: 'Fine', type: 'REFERRAL', currency: LOW, destinationUrl: `https://example.com/${HIGH}` },
        fields: [
          ['input', 'currency'],
          ['input', 'destinationUrl'],
        ],
      },
      {
        field: 'updateProgram',
        query:
          'mutation($input: UpdateProgramInput!) { updateProgram(input: $input) { program { id } userErrors { code field message } } }',
        input: { id: gid('Program', program.id), name: REVERSED },
        fields: [['input', 'name']],
      },
      {
        field: 'createPartner',
        query:
          'mutation($input: CreatePartnerInput!) { createPartner(input: $input) { partner { id } userErrors { code field message } } }',
        input: { externalId: NUL, email: `me${HIGH}@example.com`, name: 'Fine' },
        fields: [
          ['input', 'externalId'],
          ['input', 'email'],
        ],
      },
      {
        field: 'recordConversion',
        query:
          'mutation($input: RecordConversionInput!) { recordConversion(input: $input) { conversion { id } replayed rewards { id } userErrors { code field message } } }',
        input: { type: 'SIGNUP', idempotencyKey: NUL, referredExternalId: 'someone', code: HIGH },
        fields: [
          ['input', 'idempotencyKey'],
          ['input', 'code'],
        ],
      },
      {
        field: 'recordConversion',
        query:
          'mutation($input: RecordConversionInput!) { recordConversion(input: $input) { conversion { id } replayed rewards { id } userErrors { code field message } } }',
        input: {
          type: 'PURCHASE',
          idempotencyKey: 'k',
          referredExternalId: 'someone',
          amount: { amount: '1.00', currency: `US${LOW}` },
        },
        fields: [['input', 'amount', 'currency']],
      },
      {
        field: 'createReferralLink',
        query:
          'mutation($input: CreateReferralLinkInput!) { createReferralLink(input: $input) { link { id } userErrors { code field message } } }',
        input: {
          partnerId: gid('Partner', partner.id),
          programId: gid('Program', program.id),
          code: `abc${NUL}`,
          destinationUrl: `https://example.com/?q=${NUL}`,
        },
        fields: [
          ['input', 'code'],
          ['input', 'destinationUrl'],
        ],
      },
      {
        field: 'createApiKey',
        query:
          'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret userErrors { code field message } } }',
        input: { name: HIGH, role: 'ADMIN' },
        fields: [['input', 'name']],
      },
      {
        field: 'trackClick',
        query:
          'mutation($input: TrackClickInput!) { trackClick(input: $input) { clickId discarded userErrors { code field message } } }',
        input: { code: 'whatever', userAgent: `Mozilla${NUL}` },
        fields: [['input', 'userAgent']],
      },
    ];
    for (const c of cases) {
      const res = (await fixture.gql(c.query, { input: c.input }, fixture.admin)) as Body;
      const label = `${c.field} ${JSON.stringify(c.input)}: ${JSON.stringify(res)}`;
      expect(res.errors, label).toBeUndefined();
      const payload = res.data![c.field] as Record<string, unknown> & {
        userErrors: Array<{ code: string; field: string[]; message: string }>;
      };
      expect(payload.userErrors.map((e) => e.field).sort(), label).toEqual([...c.fields].sort());
      for (const e of payload.userErrors) {
        expect(e.code, label).toBe('VALIDATION');
        expect(e.message, label).toMatch(/^input\.\S+ contains (a NUL character|an unpaired UTF-16 surrogate)/);
      }
    }
    // trackClick is acknowledged in memory; make sure nothing was queued either.
    await fixture.server.app.services.clicks.flush();
    expect(await prisma().click.count({ where: { workspaceId: fixture.ws.workspace.id } })).toBe(0);
    expect(await snapshot()).toEqual(before);
  });

  it('refuse it in a literal of the document too', async () => {
    const res = (await fixture.gql(
      'mutation { createProgram(input: { name: "a\\u0000b", type: REFERRAL, currency: "USD" }) { program { id } userErrors { code field } } }',
      {},
      fixture.admin,
    )) as Body;
    expect(res.data?.['createProgram']).toEqual({
      program: null,
      userErrors: [{ code: 'VALIDATION', field: ['input', 'name'] }],
    });
  });

  it('check the credential first: no credential, a READ_ONLY key and a PARTNER token get their own errors', async () => {
    const query =
      'mutation($input: CreateProgramInput!) { createProgram(input: $input) { userErrors { code field } } }';
    const input = { name: NUL, type: 'REFERRAL', currency: 'USD' };
    expect(((await fixture.gql(query, { input })) as Body).errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    const reader = (await fixture.gql(
      'mutation { createApiKey(input: { name: "reader", role: READ_ONLY }) { secret } }',
      {},
      fixture.admin,
    )) as Body;
    const readOnly = reader.data!['createApiKey'].secret as string;
    expect(((await fixture.gql(query, { input }, readOnly)) as Body).errors?.[0]?.extensions?.['code']).toBe(
      'FORBIDDEN_FOR_ROLE',
    );
    const partner = await factories(prisma(), fixture.tenant).partner();
    expect(
      ((await fixture.gql(query, { input }, await partnerToken(gid('Partner', partner.id)))) as Body).errors?.[0]
        ?.extensions?.['code'],
    ).toBe('FORBIDDEN_FOR_ROLE');
  });

  it('refuse it for a PARTNER token creating its own link', async () => {
    const f = factories(prisma(), fixture.tenant);
    const program = await f.program();
    const partner = await f.partner();
    await f.enrollment({ programId: program.id, partnerId: partner.id });
    const token = await partnerToken(gid('Partner', partner.id));
    const res = (await fixture.gql(
      'mutation($input: CreateReferralLinkInput!) { createReferralLink(input: $input) { link { id } userErrors { code field } } }',
      { input: { partnerId: gid('Partner', partner.id), programId: gid('Program', program.id), code: `my${LOW}code` } },
      token,
    )) as Body;
    expect(res.data?.['createReferralLink']).toEqual({
      link: null,
      userErrors: [{ code: 'VALIDATION', field: ['input', 'code'] }],
    });
  });
});

describe('queries', () => {
  it('answer a top-level BAD_USER_INPUT naming the argument, for root and nested fields', async () => {
    const f = factories(prisma(), fixture.tenant);
    await f.program();
    const cases: Array<{ query: string; variables: Record<string, unknown>; field: string[] }> = [
      { query: 'query($c: String!) { referralLink(code: $c) { id } }', variables: { c: NUL }, field: ['code'] },
      { query: 'query($id: ID!) { node(id: $id) { id } }', variables: { id: NUL }, field: ['id'] },
      {
        query: 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }',
        variables: { ids: ['UHJvZ3JhbTox', HIGH] },
        field: ['ids', '1'],
      },
      { query: 'query($id: ID!) { program(id: $id) { id } }', variables: { id: LOW }, field: ['id'] },
      { query: 'query($e: String) { partner(externalId: $e) { id } }', variables: { e: HIGH }, field: ['externalId'] },
      {
        query: 'query($s: String) { partners(first: 5, search: $s) { totalCount } }',
        variables: { s: NUL },
        field: ['search'],
      },
      {
        query: 'query($p: ID) { partners(first: 5, programId: $p) { totalCount } }',
        variables: { p: LOW },
        field: ['programId'],
      },
      {
        query: 'query($id: ID) { conversions(first: 5, filter: { partnerId: $id }) { totalCount } }',
        variables: { id: NUL },
        field: ['filter', 'partnerId'],
      },
      {
        query: 'query($a: String) { events(first: 5, after: $a) { pageInfo { hasNextPage } } }',
        variables: { a: REVERSED },
        field: ['after'],
      },
      {
        query: 'query($t: [String!]) { events(first: 5, types: $t) { pageInfo { hasNextPage } } }',
        variables: { t: ['link.created', NUL] },
        field: ['types', '1'],
      },
      {
        query:
          'query($a: String) { programs(first: 1) { edges { node { rewardRules { id } } } } rewards(first: 1, after: $a) { totalCount } }',
        variables: { a: NUL },
        field: ['after'],
      },
    ];
    for (const c of cases) {
      const res = (await fixture.gql(c.query, c.variables, fixture.admin)) as Body;
      const label = `${c.query} ${JSON.stringify(res)}`;
      expect(res.errors, label).toHaveLength(1);
      expect(res.errors![0]!.extensions, label).toEqual({ code: 'BAD_USER_INPUT', field: c.field });
      expect(res.errors![0]!.message, label).toMatch(
        new RegExp(`^Argument ${dottedPath(c.field).replace(/[[\]]/g, '\\$&')} contains`),
      );
      expect(res.errors![0]!.message, label).not.toContain('Unexpected');
    }
  });
});

describe('subscriptions', () => {
  it('answer BAD_USER_INPUT naming the argument, over graphql-ws', async () => {
    const client = wsClient(fixture.server.url, fixture.admin);
    try {
      for (const [variables, field] of [
        [{ after: NUL }, ['after']],
        [{ types: ['reward.created', HIGH] }, ['types', '1']],
      ] as const) {
        const sub = subscribe(
          client,
          'subscription($after: String, $types: [String!]) { events(after: $after, types: $types) { sequence } }',
          variables,
        );
        const result = await sub.next();
        expect(result.errors, JSON.stringify(result)).toMatchObject([
          { message: expect.stringMatching(/^Argument \S+ contains/), extensions: { code: 'BAD_USER_INPUT', field } },
        ]);
        await sub.close();
      }
    } finally {
      await client.dispose();
    }
  });

  it('refuse a connection whose credential holds such text with 4403, and keep serving', async () => {
    for (const authorization of [`Bearer rg_test_${NUL}`, `Bearer ${HIGH}`, `Bearer ${fixture.admin}${NUL}`]) {
      const socket = new WebSocket(`${fixture.server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization } })));
      expect(await closed).toBe(4403);
    }
    expect(((await fixture.gql('{ viewer { role } }', {}, fixture.admin)) as Body).data).toEqual({
      viewer: { role: 'ADMIN' },
    });
  });
});

describe('GET /r/{code}', () => {
  /** One raw HTTP/1.1 request, bytes as given; resolves with the status code. */
  function raw(request: Buffer): Promise<{ status: number; head: string }> {
    const { port } = new URL(fixture.server.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString('latin1')));
      socket.on('end', () =>
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), head: data.split('\r\n\r\n')[0]! }),
      );
      socket.on('error', reject);
      socket.write(request);
    });
  }
  const request = (path: string, headers: Buffer[] = []) =>
    Buffer.concat([
      Buffer.from(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n`, 'latin1'),
      ...headers.map((h) => Buffer.concat([h, Buffer.from('\r\n')])),
      Buffer.from('\r\n'),
    ]);

  it('never answers 500: odd codes, query strings, user agents and referers are refused or recorded as text', async () => {
    const f = factories(prisma(), fixture.tenant);
    const program = await f.program({ destinationUrl: 'https://shop.example.com/welcome' });
    const partner = await f.partner();
    const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
    const link = await f.link(enrollment, { code: 'odd-bytes' });

    expect((await raw(request('/r/%00'))).status).toBe(404);
    expect((await raw(request('/r/odd-bytes%00'))).status).toBe(404);
    expect((await raw(request('/r/%ED%A0%80'))).status).toBe(404); // UTF-8 of a lone surrogate: not decodable
    expect((await raw(request('/r/%F0%9F%98%80'))).status).toBe(404);
    expect((await raw(request('/r/%'))).status).toBe(404);

    const redirected = await raw(request('/r/odd-bytes?x=%00&y=%ED%A0%80&z=%0d%0aSet-Cookie:%20a=b'));
    expect(redirected.status).toBe(302);
    expect(redirected.head).not.toMatch(/set-cookie/i);
    expect(redirected.head).toMatch(
      /\r\nlocation: https:\/\/shop\.example\.com\/welcome\?ref=odd-bytes&rg_click=[\w.-]+\r\n/i,
    );

    // Header bytes that are not ASCII arrive as Latin-1 text (never a lone surrogate); they are stored as such.
    const latin1 = await raw(
      request('/r/odd-bytes', [
        Buffer.from('User-Agent: Bot \xff\xfe\xed\xa0\x80 end', 'latin1'),
        Buffer.from('Referer: https://example.com/\xf0\x9f\x98\x80', 'latin1'),
      ]),
    );
    expect(latin1.status).toBe(302);
    // Node refuses a NUL or a control character in a header itself (400), before refgraph sees the request.
    for (const header of ['User-Agent: a\x00b', 'Referer: https://example.com/\x00', 'User-Agent: a\x01b']) {
      const res = await raw(request('/r/odd-bytes', [Buffer.from(header, 'latin1')]));
      expect(res.status, JSON.stringify(header)).toBeGreaterThanOrEqual(400);
      expect(res.status, JSON.stringify(header)).toBeLessThan(500);
    }

    await fixture.server.app.services.clicks.flush();
    const clicks = await prisma().click.findMany({ where: { linkId: link.id }, orderBy: { id: 'asc' } });
    expect(clicks).toHaveLength(2);
    expect(clicks[1]).toMatchObject({
      userAgent: 'Bot \xff\xfe\xed\xa0\x80 end',
      referrerUrl: 'https://example.com/\xf0\x9f\x98\x80',
    });
    expect(fixture.server.app.services.clicks.stats().dropped).toBe(0);
    // The server still serves.
    expect((await raw(request('/r/odd-bytes'))).status).toBe(302);
  });
});
