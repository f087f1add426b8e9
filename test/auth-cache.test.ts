// The in-process cache of API keys (AUTH_CACHE_TTL_MS, src/modules/auth/authenticate.ts): a busy
// key is looked up once per interval, and revoking it still takes effect at once — on the instance
// that revoked it, on the others through the `keyRevoked` topic (Redis), and from another process
// (the CLI) through the key's api_key.revoked event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createWorkspace, revokeApiKey } from '../src/modules/workspace/workspace.service.js';
import { redisReachable, testRedisUrl } from './helpers/backend.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const VIEWER = '{ viewer { role mode } }';
const REVOKE = 'mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } userErrors { code } } }';
const CREATE_KEY =
  'mutation { createApiKey(input: { name: "cached", role: READ_ONLY }) { apiKey { id accessKeyId } secret } }';
const ISSUE =
  'mutation($input: IssueAccessTokenInput!) { issueAccessToken(input: $input) { accessToken userErrors { code } } }';

async function post(url: string, query: string, variables: Record<string, unknown>, token?: string) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return {
    body: (await res.json()) as { data?: any; errors?: Array<{ message: string; extensions?: { code?: string } }> },
    statements: Number(res.headers.get('x-sql-statements')),
  };
}

async function newKey(url: string, adminSecret: string): Promise<{ id: string; accessKeyId: string; secret: string }> {
  const { body } = await post(url, CREATE_KEY, {}, adminSecret);
  const created = body.data.createApiKey;
  return { id: created.apiKey.id, accessKeyId: created.apiKey.accessKeyId, secret: created.secret };
}

describe('with the default cache', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('looks a secret key up once, then answers from memory', async () => {
    const ws = await server.workspace();
    const first = await post(server.url, VIEWER, {}, ws.keys.test.secret);
    expect(first.body.data.viewer).toEqual({ role: 'ADMIN', mode: 'TEST' });
    expect(first.statements).toBe(1);
    const second = await post(server.url, VIEWER, {}, ws.keys.test.secret);
    expect(second.body.data.viewer).toEqual({ role: 'ADMIN', mode: 'TEST' });
    expect(second.statements).toBe(0);
    // Another key of the same workspace is a lookup of its own, answered with its own mode.
    const live = await post(server.url, VIEWER, {}, ws.keys.live.secret);
    expect(live.body.data.viewer).toEqual({ role: 'ADMIN', mode: 'LIVE' });
    expect(live.statements).toBe(1);
  });

  it('refuses a cached secret key and its cached access tokens right after revokeApiKey', async () => {
    const ws = await server.workspace();
    const key = await newKey(server.url, ws.keys.test.secret);
    const issued = await post(server.url, ISSUE, { input: { accessKeyId: key.accessKeyId, secret: key.secret } });
    const token = issued.body.data.issueAccessToken.accessToken as string;
    // Warm the cache for both credentials.
    for (const credential of [key.secret, token, key.secret, token]) {
      expect((await post(server.url, VIEWER, {}, credential)).body.data.viewer.role).toBe('READ_ONLY');
    }
    expect((await post(server.url, VIEWER, {}, token)).statements).toBe(0);

    const revoked = await post(server.url, REVOKE, { id: key.id }, ws.keys.test.secret);
    expect(revoked.body.data.revokeApiKey).toEqual({ apiKey: { revokedAt: expect.any(String) }, userErrors: [] });

    const bySecret = await post(server.url, VIEWER, {}, key.secret);
    expect(bySecret.body.errors?.[0]).toMatchObject({
      message: 'This secret key has been revoked.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
    const byToken = await post(server.url, VIEWER, {}, token);
    expect(byToken.body.errors?.[0]).toMatchObject({
      message: 'The key this token was issued from has been revoked.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
    // The admin key that revoked it is untouched.
    expect((await post(server.url, VIEWER, {}, ws.keys.test.secret)).body.data.viewer.role).toBe('ADMIN');
  });

  it('refuses a cached key revoked by another process (refgraph key revoke) and closes its sockets, once its event is dispatched', async () => {
    const ws = await server.workspace();
    const key = await newKey(server.url, ws.keys.test.secret);
    expect((await post(server.url, VIEWER, {}, key.secret)).statements).toBe(1);
    expect((await post(server.url, VIEWER, {}, key.secret)).statements).toBe(0); // cached

    // What `refgraph key revoke` does in its own process: the service writes the revocation and its
    // api_key.revoked event; nothing is published to this server. The server learns of it from the
    // event (dispatcher → keyRevoked): it drops the key from its cache, then closes the key's sockets.
    const rowId = Buffer.from(key.id, 'base64').toString().split(':')[1]!;
    const closed = new Promise<number>((resolve) => {
      const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key.secret}` } })),
      );
      socket.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') {
          void revokeApiKey(server.testDb.db.prisma, { workspaceId: ws.workspace.id, mode: 'TEST' }, rowId);
        }
      });
      socket.on('close', (code) => resolve(code));
    });
    expect(await closed).toBe(4403);
    const res = await post(server.url, VIEWER, {}, key.secret);
    expect(res.body.errors?.[0]).toMatchObject({
      message: 'This secret key has been revoked.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  it('never remembers an unknown secret', async () => {
    const ws = await server.workspace();
    const unknown = `${ws.keys.test.secret.slice(0, -4)}zzzz`;
    for (let i = 0; i < 2; i++) {
      const res = await post(server.url, VIEWER, {}, unknown);
      expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      expect(res.statements).toBe(1);
    }
  });
});

describe('AUTH_CACHE_TTL_MS=0', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ AUTH_CACHE_TTL_MS: '0' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('looks the key up on every request, so a revocation written straight to the database is seen at once', async () => {
    const ws = await server.workspace();
    expect((await post(server.url, VIEWER, {}, ws.keys.test.secret)).statements).toBe(1);
    expect((await post(server.url, VIEWER, {}, ws.keys.test.secret)).statements).toBe(1);
    await server.testDb.db.prisma.apiKey.update({ where: { id: ws.keys.test.id }, data: { revokedAt: new Date() } });
    const res = await post(server.url, VIEWER, {}, ws.keys.test.secret);
    expect(res.body.errors?.[0]).toMatchObject({
      message: 'This secret key has been revoked.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });
});

const redisUrl = testRedisUrl;
const redisSkip = (await redisReachable(redisUrl)) ? null : `Redis is not reachable at ${redisUrl} (TEST_REDIS_URL)`;

describe.skipIf(redisSkip !== null)(`two instances sharing Redis${redisSkip ? ` (skipped: ${redisSkip})` : ''}`, () => {
  let testDb: TestDatabase;
  const apps: Array<{ app: App; url: string }> = [];
  beforeAll(async () => {
    testDb = await createTestDatabase();
    for (let i = 0; i < 2; i++) {
      const config = loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        APPROVAL_JOB_INTERVAL_MS: '0',
        REDIS_URL: redisUrl,
      });
      const app = await buildApp({ config, db: testDb.db });
      apps.push({ app, url: (await app.start()).url });
    }
  });
  afterAll(async () => {
    for (const { app } of apps) await app.stop();
    await testDb?.destroy();
  });

  it('a key revoked on A is refused on B, whose cache held it', async () => {
    const [a, b] = [apps[0]!, apps[1]!];
    const ws = await createWorkspace(testDb.db.prisma, 'Two instances');
    const key = await newKey(a.url, ws.keys.test.secret);
    expect((await post(b.url, VIEWER, {}, key.secret)).statements).toBe(1);
    expect((await post(b.url, VIEWER, {}, key.secret)).statements).toBe(0); // cached on B

    // B handles a revocation in one step: it drops the key from its cache, then closes the key's
    // sockets. A socket on B closing with 4403 is the sign that B has processed it.
    const closed = new Promise<number>((resolve) => {
      const socket = new WebSocket(`${b.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${key.secret}` } })),
      );
      socket.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type === 'connection_ack') {
          void post(a.url, REVOKE, { id: key.id }, ws.keys.test.secret);
        }
      });
      socket.on('close', (code) => resolve(code));
    });
    expect(await closed).toBe(4403);
    const res = await post(b.url, VIEWER, {}, key.secret);
    expect(res.body.errors?.[0]).toMatchObject({
      message: 'This secret key has been revoked.',
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });
});
