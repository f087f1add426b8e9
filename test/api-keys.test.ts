// Query.apiKeys: an ADMIN lists the keys of its own workspace and mode, newest first, with their
// hints and never a secret or a hash; other workspaces, the other mode and other roles see nothing.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../src/modules/workspace/workspace.service.js';
import { graphql } from './gql/index.js';
import type { ApiKeysListQuery } from './gql/graphql.js';
import { gid } from './helpers/factories.js';
import { startTestServer, type GraphQLResponse, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  // Every request looks its key up (one statement): counts do not depend on the credential cache's timing.
  server = await startTestServer({ AUTH_CACHE_TTL_MS: '0' });
});
afterAll(async () => {
  await server?.close();
});

const API_KEYS = graphql(`
  query ApiKeysList($first: Int, $after: String, $includeRevoked: Boolean) {
    apiKeys(first: $first, after: $after, includeRevoked: $includeRevoked) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id name role mode accessKeyId secretHint createdAt lastUsedAt revokedAt } }
    }
  }
`);
const CREATE_KEY = graphql(`
  mutation ApiKeysCreate($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { apiKey { id } secret userErrors { code } }
  }
`);
const PARTNER_TOKEN = graphql(`
  mutation ApiKeysPartnerToken($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code } }
  }
`);

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

async function createKey(admin: string, name: string, role: 'ADMIN' | 'READ_ONLY') {
  const res = await server.gql(CREATE_KEY, { input: { name, role } }, admin);
  expect(res.data?.createApiKey.userErrors).toEqual([]);
  return { id: res.data!.createApiKey.apiKey!.id, secret: res.data!.createApiKey.secret! };
}

const names = (res: { data?: { apiKeys: { edges: Array<{ node: { name: string } }> } } | null }) =>
  res.data?.apiKeys.edges.map((e) => e.node.name);

describe('Query.apiKeys', () => {
  it('lists the caller’s keys newest first, with hints and never a secret or a hash; revoked ones on request', async () => {
    const ws = await server.workspace('Keys');
    const admin = ws.keys.test.secret;
    const reader = await createKey(admin, 'Reporting', 'READ_ONLY');
    const bot = await createKey(admin, 'CI bot', 'ADMIN');
    const retired = await createKey(admin, 'Retired', 'ADMIN');
    await server.gql(
      graphql(`mutation ApiKeysRevoke($id: ID!) { revokeApiKey(input: { id: $id }) { userErrors { code } } }`),
      { id: retired.id },
      admin,
    );

    const res = await server.gql(API_KEYS, {}, admin);
    expect(res.errors).toBeUndefined();
    expect(res.data!.apiKeys.totalCount).toBe(3);
    expect(names(res)).toEqual(['CI bot', 'Reporting', 'Default admin key']);
    const rows = await server.testDb.db.prisma.apiKey.findMany({ where: { workspaceId: ws.workspace.id } });
    const row = rows.find((r) => r.name === 'Reporting')!;
    expect(res.data!.apiKeys.edges[1]!.node).toEqual({
      id: reader.id,
      name: 'Reporting',
      role: 'READ_ONLY',
      mode: 'TEST',
      accessKeyId: row.accessKeyId,
      secretHint: row.secretHint,
      createdAt: row.createdAt.toISOString(),
      lastUsedAt: null,
      revokedAt: null,
    });
    expect(res.data!.apiKeys.edges[0]!.node.id).toBe(bot.id);

    const all = await server.gql(API_KEYS, { includeRevoked: true }, admin);
    expect(names(all)).toEqual(['Retired', 'CI bot', 'Reporting', 'Default admin key']);
    expect(all.data!.apiKeys.totalCount).toBe(4);
    expect(all.data!.apiKeys.edges[0]!.node.revokedAt).toEqual(expect.any(String));

    // Nothing secret in the answer: no secret key, no hash of one.
    const text = JSON.stringify(all);
    for (const secret of [ws.keys.test.secret, reader.secret, bot.secret, retired.secret]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(sha256(secret));
    }
    for (const r of rows) expect(text).not.toContain(r.secretHash);
  });

  it('pages with first/after, the same totalCount on every page', async () => {
    const ws = await server.workspace('Paging');
    const admin = ws.keys.test.secret;
    for (const name of ['k1', 'k2', 'k3', 'k4']) await createKey(admin, name, 'READ_ONLY');
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: GraphQLResponse<ApiKeysListQuery> = await server.gql(API_KEYS, { first: 2, after }, admin);
      expect(res.errors).toBeUndefined();
      expect(res.data!.apiKeys.totalCount).toBe(5);
      seen.push(...names(res)!);
      if (!res.data!.apiKeys.pageInfo.hasNextPage) break;
      after = res.data!.apiKeys.pageInfo.endCursor ?? null;
    }
    expect(seen).toEqual(['k4', 'k3', 'k2', 'k1', 'Default admin key']);
    // Not a cursor at all: a request error. A well-formed cursor with a malformed id: an empty page.
    const bad = await server.gql(API_KEYS, { first: 2, after: 'garbage' }, admin);
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const odd = await server.gql(API_KEYS, { first: 2, after: Buffer.from('GPC:S:xyz').toString('base64') }, admin);
    expect(odd.data?.apiKeys).toMatchObject({ totalCount: 5, edges: [] });
  });

  it('sees only its own workspace and mode: another workspace’s keys and the other mode’s are not listed', async () => {
    const a = await server.workspace('Isolation A');
    const b = await server.workspace('Isolation B');
    await createKey(a.keys.test.secret, 'A test key', 'READ_ONLY');
    await createKey(a.keys.live.secret, 'A live key', 'READ_ONLY');
    await createKey(b.keys.test.secret, 'B test key', 'ADMIN');
    // A revoked key of another workspace stays out even with includeRevoked.
    const bRevoked = await createApiKey(server.testDb.db.prisma, {
      workspaceId: b.workspace.id,
      mode: 'TEST',
      role: 'ADMIN',
      name: 'B revoked',
    });
    await revokeApiKey(server.testDb.db.prisma, { workspaceId: b.workspace.id, mode: 'TEST' }, bRevoked.id);

    const aTest = await server.gql(API_KEYS, { includeRevoked: true }, a.keys.test.secret);
    expect(names(aTest)).toEqual(['A test key', 'Default admin key']);
    expect(aTest.data!.apiKeys.edges.map((e) => e.node.mode)).toEqual(['TEST', 'TEST']);
    const aLive = await server.gql(API_KEYS, { includeRevoked: true }, a.keys.live.secret);
    expect(names(aLive)).toEqual(['A live key', 'Default admin key']);
    expect(aLive.data!.apiKeys.edges.map((e) => e.node.mode)).toEqual(['LIVE', 'LIVE']);
    expect(aLive.data!.apiKeys.totalCount).toBe(2);
    const bTest = await server.gql(API_KEYS, { includeRevoked: true }, b.keys.test.secret);
    expect(names(bTest)).toEqual(['B revoked', 'B test key', 'Default admin key']);

    // Another tenant's cursor finds nothing of ours: paging after it starts nowhere near B's keys.
    const cursor = bTest.data!.apiKeys.edges[0]!.cursor;
    const afterForeign = await server.gql(API_KEYS, { after: cursor, includeRevoked: true }, a.keys.test.secret);
    expect(JSON.stringify(afterForeign)).not.toContain('B test key');
    // Nor does the node field: another workspace's or mode's key id is null.
    for (const id of [gid('ApiKey', bRevoked.id), gid('ApiKey', a.keys.live.id)]) {
      expect(await server.gql('query($id: ID!) { node(id: $id) { id } }', { id }, a.keys.test.secret)).toEqual({
        data: { node: null },
      });
    }
  });

  it('is refused to READ_ONLY keys, PARTNER tokens and callers without a credential', async () => {
    const ws = await server.workspace('Roles');
    const reader = await createKey(ws.keys.test.secret, 'Reader', 'READ_ONLY');
    const partner = await server.testDb.db.prisma.partner.create({
      data: { workspaceId: ws.workspace.id, mode: 'TEST', externalId: 'p-1' },
    });
    const minted = await server.gql(
      PARTNER_TOKEN,
      { input: { partnerId: gid('Partner', partner.id) } },
      ws.keys.test.secret,
    );
    const partnerToken = minted.data!.createPartnerToken.token!;
    for (const [credential, code] of [
      [reader.secret, 'FORBIDDEN_FOR_ROLE'],
      [partnerToken, 'FORBIDDEN_FOR_ROLE'],
      [undefined, 'UNAUTHENTICATED'],
    ] as const) {
      const res = await server.gql(API_KEYS, { includeRevoked: true }, credential);
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe(code);
      expect(JSON.stringify(res)).not.toContain('Default admin key');
    }
  });

  it('runs the same number of SQL statements for 2 keys and for 40', async () => {
    const small = await server.workspace('Statements small');
    const large = await server.workspace('Statements large');
    await createKey(small.keys.test.secret, 'one', 'READ_ONLY');
    for (let i = 0; i < 39; i++) {
      await createApiKey(server.testDb.db.prisma, {
        workspaceId: large.workspace.id,
        mode: 'TEST',
        role: 'READ_ONLY',
        name: `bulk ${i}`,
      });
    }
    const counts: number[] = [];
    for (const [ws, expected] of [
      [small, 2],
      [large, 40],
    ] as const) {
      const { body, statements } = await server.gqlCounted(
        API_KEYS,
        { first: 100, includeRevoked: true },
        ws.keys.test.secret,
      );
      expect(body.errors).toBeUndefined();
      expect(body.data!.apiKeys.edges).toHaveLength(expected);
      expect(body.data!.apiKeys.totalCount).toBe(expected);
      counts.push(statements);
    }
    expect(counts[1]).toBe(counts[0]);
    // The key lookup, the page and its count.
    expect(counts[0]).toMatchInlineSnapshot(`3`);
  });
});
