import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const VIEWER = graphql(`
  query AuthViewer {
    viewer { role mode workspace { id } partner { id externalId } }
  }
`);
const CREATE_KEY = graphql(`
  mutation AuthCreateKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      apiKey { id name role mode accessKeyId createdAt lastUsedAt revokedAt }
      secret
      userErrors { code message field }
    }
  }
`);
const REVOKE_KEY = graphql(`
  mutation AuthRevokeKey($input: RevokeApiKeyInput!) {
    revokeApiKey(input: $input) { apiKey { id revokedAt } userErrors { code message } }
  }
`);
const ISSUE = graphql(`
  mutation AuthIssue($input: IssueAccessTokenInput!) {
    issueAccessToken(input: $input) { accessToken refreshToken expiresIn userErrors { code message } }
  }
`);
const REFRESH = graphql(`
  mutation AuthRefresh($input: RefreshAccessTokenInput!) {
    refreshAccessToken(input: $input) { accessToken refreshToken expiresIn userErrors { code message } }
  }
`);
const PARTNER_TOKEN = graphql(`
  mutation AuthPartnerToken($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token expiresAt userErrors { code message field } }
  }
`);

async function keyPair(admin: string, role: 'ADMIN' | 'READ_ONLY' = 'ADMIN') {
  const res = await server.gql(CREATE_KEY, { input: { name: `key ${role}`, role } }, admin);
  expect(res.data?.createApiKey.userErrors).toEqual([]);
  return { apiKey: res.data!.createApiKey.apiKey!, secret: res.data!.createApiKey.secret! };
}

async function partnerId(workspaceId: string, mode: 'TEST' | 'LIVE' = 'TEST') {
  const partner = await server.testDb.db.prisma.partner.create({
    data: { workspaceId, mode, externalId: `p-${crypto.randomUUID()}` },
  });
  return {
    rowId: partner.id,
    globalId: Buffer.from(`Partner:${partner.id}`).toString('base64'),
    externalId: partner.externalId,
  };
}

describe('API keys', () => {
  it('creates a READ_ONLY key whose secret is shown once and which may read but not write', async () => {
    const ws = await server.workspace();
    const { apiKey, secret } = await keyPair(ws.keys.test.secret, 'READ_ONLY');
    expect(secret).toMatch(/^rg_test_/);
    expect(apiKey).toMatchObject({ role: 'READ_ONLY', mode: 'TEST', revokedAt: null });
    expect(apiKey.accessKeyId).toMatch(/^rgk_test_/);
    const stored = await server.testDb.db.prisma.apiKey.findFirstOrThrow({
      where: { accessKeyId: apiKey.accessKeyId },
    });
    expect(JSON.stringify(stored)).not.toContain(secret);
    expect((await server.gql(VIEWER, {}, secret)).data?.viewer.role).toBe('READ_ONLY');
    const write = await server.gql(CREATE_KEY, { input: { name: 'x', role: 'ADMIN' } }, secret);
    expect(write.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });

  it('creates keys in the caller’s mode', async () => {
    const ws = await server.workspace();
    const { secret } = await keyPair(ws.keys.live.secret);
    expect(secret).toMatch(/^rg_live_/);
    expect((await server.gql(VIEWER, {}, secret)).data?.viewer.mode).toBe('LIVE');
  });

  it('validates the key name and refuses the PARTNER role', async () => {
    const ws = await server.workspace();
    const empty = await server.gql(CREATE_KEY, { input: { name: '  ', role: 'ADMIN' } }, ws.keys.test.secret);
    expect(empty.data?.createApiKey.userErrors).toEqual([
      { code: 'VALIDATION', message: expect.any(String), field: ['input', 'name'] },
    ]);
    const partner = await server.gql(CREATE_KEY, { input: { name: 'p', role: 'PARTNER' } }, ws.keys.test.secret);
    expect(partner.data?.createApiKey.userErrors[0]).toMatchObject({ code: 'VALIDATION', field: ['input', 'role'] });
    expect(partner.data?.createApiKey.apiKey).toBeNull();
  });

  it('revokes a key at once; another workspace’s key id is NOT_FOUND and stays valid', async () => {
    const a = await server.workspace();
    const b = await server.workspace();
    const { apiKey, secret } = await keyPair(a.keys.test.secret);
    const foreign = await server.gql(REVOKE_KEY, { input: { id: apiKey.id } }, b.keys.test.secret);
    expect(foreign.data?.revokeApiKey).toEqual({
      apiKey: null,
      userErrors: [{ code: 'NOT_FOUND', message: 'API key not found.' }],
    });
    const otherMode = await server.gql(REVOKE_KEY, { input: { id: apiKey.id } }, a.keys.live.secret);
    expect(otherMode.data?.revokeApiKey.userErrors[0]?.code).toBe('NOT_FOUND');
    expect((await server.gql(VIEWER, {}, secret)).errors).toBeUndefined();
    const revoked = await server.gql(REVOKE_KEY, { input: { id: apiKey.id } }, a.keys.test.secret);
    expect(revoked.data?.revokeApiKey.apiKey?.revokedAt).toEqual(expect.any(String));
    expect((await server.gql(VIEWER, {}, secret)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const again = await server.gql(REVOKE_KEY, { input: { id: apiKey.id } }, a.keys.test.secret);
    expect(again.data?.revokeApiKey.userErrors).toEqual([]);
  });
});

describe('access tokens', () => {
  it('exchanges a key pair for an access token without a credential', async () => {
    const ws = await server.workspace();
    const { apiKey, secret } = await keyPair(ws.keys.test.secret);
    const issued = await server.gql(ISSUE, { input: { accessKeyId: apiKey.accessKeyId, secret } });
    expect(issued.data?.issueAccessToken).toMatchObject({ expiresIn: 900, userErrors: [] });
    const viewer = await server.gql(VIEWER, {}, issued.data!.issueAccessToken.accessToken!);
    expect(viewer.data?.viewer).toMatchObject({ role: 'ADMIN', mode: 'TEST', partner: null });
  });

  it('answers a wrong secret and an unknown key id alike', async () => {
    const ws = await server.workspace();
    const { apiKey } = await keyPair(ws.keys.test.secret);
    const wrong = await server.gql(ISSUE, {
      input: { accessKeyId: apiKey.accessKeyId, secret: 'rg_test_wrongwrongwrongwrongwrong' },
    });
    const unknown = await server.gql(ISSUE, { input: { accessKeyId: 'rgk_test_000000000000000000', secret: 'x' } });
    expect(wrong.data?.issueAccessToken.userErrors).toEqual([
      { code: 'INVALID_CREDENTIALS', message: 'Unknown access key id or wrong secret.' },
    ]);
    expect(unknown.data?.issueAccessToken.userErrors).toEqual(wrong.data?.issueAccessToken.userErrors);
    expect(wrong.data?.issueAccessToken.accessToken).toBeNull();
  });

  it('leaves the refresh token unspent when the rotation fails, so a retry is not taken for a replay', async () => {
    const ws = await server.workspace();
    const { apiKey, secret } = await keyPair(ws.keys.test.secret);
    const first = (await server.gql(ISSUE, { input: { accessKeyId: apiKey.accessKeyId, secret } })).data!
      .issueAccessToken;
    // Storing the new refresh token fails (in the database, after the old one was spent in the same transaction).
    const db = server.testDb.db;
    await db.query(`CREATE FUNCTION refuse_refresh_token() RETURNS trigger LANGUAGE plpgsql AS $f$
      BEGIN RAISE EXCEPTION 'refused by the test'; END $f$`);
    await db.query(`CREATE TRIGGER refuse_refresh_token BEFORE INSERT ON "RefreshToken" FOR EACH ROW
      WHEN (NEW."workspaceId" = '${ws.workspace.id}') EXECUTE FUNCTION refuse_refresh_token()`);
    try {
      const failed = await server.gql(REFRESH, { input: { refreshToken: first.refreshToken! } });
      expect(failed.errors?.[0]?.message).toMatch(/Unexpected error/);
    } finally {
      await db.query('DROP TRIGGER refuse_refresh_token ON "RefreshToken"');
      await db.query('DROP FUNCTION refuse_refresh_token()');
    }
    const retried = (await server.gql(REFRESH, { input: { refreshToken: first.refreshToken! } })).data!
      .refreshAccessToken;
    expect(retried.userErrors).toEqual([]);
    expect((await server.gql(VIEWER, {}, retried.accessToken!)).errors).toBeUndefined();
    expect((await server.gql(VIEWER, {}, first.accessToken!)).errors).toBeUndefined(); // the family lives on
  });

  it('rotates the refresh token and refuses a reused one, revoking its family', async () => {
    const ws = await server.workspace();
    const { apiKey, secret } = await keyPair(ws.keys.test.secret);
    const first = (await server.gql(ISSUE, { input: { accessKeyId: apiKey.accessKeyId, secret } })).data!
      .issueAccessToken;
    const second = (await server.gql(REFRESH, { input: { refreshToken: first.refreshToken! } })).data!
      .refreshAccessToken;
    expect(second.userErrors).toEqual([]);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect((await server.gql(VIEWER, {}, second.accessToken!)).errors).toBeUndefined();
    const replay = (await server.gql(REFRESH, { input: { refreshToken: first.refreshToken! } })).data!
      .refreshAccessToken;
    expect(replay.userErrors[0]?.code).toBe('INVALID_CREDENTIALS');
    expect(replay.userErrors[0]?.message).toContain('already used');
    // The family is revoked: the legitimate newer refresh token is refused too.
    const after = (await server.gql(REFRESH, { input: { refreshToken: second.refreshToken! } })).data!
      .refreshAccessToken;
    expect(after.userErrors[0]?.code).toBe('INVALID_CREDENTIALS');
  });

  it('lets exactly one of several concurrent refreshes of the same token win', async () => {
    const ws = await server.workspace();
    const { apiKey, secret } = await keyPair(ws.keys.test.secret);
    const first = (await server.gql(ISSUE, { input: { accessKeyId: apiKey.accessKeyId, secret } })).data!
      .issueAccessToken;
    const results = await Promise.all(
      Array.from({ length: 8 }, () => server.gql(REFRESH, { input: { refreshToken: first.refreshToken! } })),
    );
    const winners = results.filter((r) => r.data?.refreshAccessToken.accessToken);
    expect(winners.length).toBe(1);
    expect(results.filter((r) => r.data?.refreshAccessToken.userErrors[0]?.code === 'INVALID_CREDENTIALS').length).toBe(
      7,
    );
  });

  it('ends access tokens and refresh tokens when their key is revoked', async () => {
    const ws = await server.workspace();
    const { apiKey, secret } = await keyPair(ws.keys.test.secret);
    const issued = (await server.gql(ISSUE, { input: { accessKeyId: apiKey.accessKeyId, secret } })).data!
      .issueAccessToken;
    await server.gql(REVOKE_KEY, { input: { id: apiKey.id } }, ws.keys.test.secret);
    const viewer = await server.gql(VIEWER, {}, issued.accessToken!);
    expect(viewer.errors?.[0]).toMatchObject({
      message: 'The key this token was issued from has been revoked.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
    expect(
      (await server.gql(REFRESH, { input: { refreshToken: issued.refreshToken! } })).data?.refreshAccessToken
        .userErrors[0]?.code,
    ).toBe('INVALID_CREDENTIALS');
    expect(
      (await server.gql(ISSUE, { input: { accessKeyId: apiKey.accessKeyId, secret } })).data?.issueAccessToken
        .userErrors[0]?.code,
    ).toBe('INVALID_CREDENTIALS');
  });

  it('refuses expired and tampered tokens with a reason', async () => {
    const ws = await server.workspace();
    const tokens = server.app.services.tokens;
    const claims = {
      typ: 'access' as const,
      apiKeyId: ws.keys.test.id,
      workspaceId: ws.workspace.id,
      mode: 'TEST' as const,
      role: 'ADMIN' as const,
      partnerId: null,
    };
    const expired = await tokens.sign(claims, -10);
    expect((await server.gql(VIEWER, {}, expired.token)).errors?.[0]?.message).toContain('expired');
    const valid = await tokens.sign(claims, 60);
    const [h, p, s] = valid.token.split('.');
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), mode: 'LIVE' }),
    ).toString('base64url');
    const tampered = await server.gql(VIEWER, {}, `${h}.${forgedPayload}.${s}`);
    expect(tampered.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    expect((await server.gql(VIEWER, {}, valid.token)).errors).toBeUndefined();
  });

  it('leaves introspection open without a credential', async () => {
    const res = await server.gql('{ __schema { queryType { name } } }');
    expect(res).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
  });
});

describe('partner tokens', () => {
  it('mints a PARTNER token that sees its own partner', async () => {
    const ws = await server.workspace();
    const p = await partnerId(ws.workspace.id);
    const minted = await server.gql(
      PARTNER_TOKEN,
      { input: { partnerId: p.globalId, ttlSeconds: 600 } },
      ws.keys.test.secret,
    );
    expect(minted.data?.createPartnerToken.userErrors).toEqual([]);
    const expiresAt = Date.parse(minted.data!.createPartnerToken.expiresAt!);
    expect(Math.abs(expiresAt - (Date.now() + 600_000))).toBeLessThan(5_000);
    const viewer = await server.gql(VIEWER, {}, minted.data!.createPartnerToken.token!);
    expect(viewer.data?.viewer).toMatchObject({
      role: 'PARTNER',
      mode: 'TEST',
      partner: { id: p.globalId, externalId: p.externalId },
    });
    // A PARTNER token may not mint keys or other tokens.
    const escalate = await server.gql(
      CREATE_KEY,
      { input: { name: 'x', role: 'ADMIN' } },
      minted.data!.createPartnerToken.token!,
    );
    expect(escalate.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });

  it('refuses partners of another workspace or mode, malformed ids and bad lifetimes', async () => {
    const a = await server.workspace();
    const b = await server.workspace();
    const pb = await partnerId(b.workspace.id);
    const live = await partnerId(a.workspace.id, 'LIVE');
    for (const id of [pb.globalId, live.globalId, 'garbage', Buffer.from(`Program:${pb.rowId}`).toString('base64')]) {
      const res = await server.gql(PARTNER_TOKEN, { input: { partnerId: id } }, a.keys.test.secret);
      expect(res.data?.createPartnerToken).toEqual({
        token: null,
        expiresAt: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'partnerId'] }],
      });
    }
    const own = await partnerId(a.workspace.id);
    for (const ttlSeconds of [0, 59, 2_592_001]) {
      const res = await server.gql(
        PARTNER_TOKEN,
        { input: { partnerId: own.globalId, ttlSeconds } },
        a.keys.test.secret,
      );
      expect(res.data?.createPartnerToken.userErrors[0]).toMatchObject({
        code: 'VALIDATION',
        field: ['input', 'ttlSeconds'],
      });
    }
  });

  it('is refused to READ_ONLY keys and ends when the minting key is revoked', async () => {
    const ws = await server.workspace();
    const p = await partnerId(ws.workspace.id);
    const reader = await keyPair(ws.keys.test.secret, 'READ_ONLY');
    const refused = await server.gql(PARTNER_TOKEN, { input: { partnerId: p.globalId } }, reader.secret);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const admin = await keyPair(ws.keys.test.secret);
    const token = (await server.gql(PARTNER_TOKEN, { input: { partnerId: p.globalId } }, admin.secret)).data!
      .createPartnerToken.token!;
    expect((await server.gql(VIEWER, {}, token)).errors).toBeUndefined();
    await server.gql(REVOKE_KEY, { input: { id: admin.apiKey.id } }, ws.keys.test.secret);
    expect((await server.gql(VIEWER, {}, token)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});
