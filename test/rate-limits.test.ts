import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { redisReachable, testRedisUrl } from './helpers/backend.js';
import { factories } from './helpers/factories.js';
import { partnerToken } from './helpers/money.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { subscribe, wsClient } from './helpers/ws.js';

async function post(server: TestServer, query: string, token?: string, variables?: Record<string, unknown>) {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as {
      data?: unknown;
      errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
    },
  };
}

const refusedWith = (res: Awaited<ReturnType<typeof post>>) => ({
  status: res.status,
  code: res.body.errors?.[0]?.extensions?.['code'],
  retryAfter: Number(res.retryAfter) > 0,
});

describe('rate limits (in memory, one instance)', () => {
  let server: TestServer;
  let key: string;
  let partner: string;
  beforeAll(async () => {
    server = await startTestServer({
      RATE_LIMIT_CREDENTIAL_PER_SECOND: '5',
      RATE_LIMIT_ANONYMOUS_PER_MINUTE: '3',
      RATE_LIMIT_TOKENS_PER_MINUTE: '2',
      RATE_LIMIT_REDIRECT_PER_MINUTE: '2',
    });
    const ws = await server.workspace();
    key = ws.keys.test.secret;
    const f = factories(server.testDb.db.prisma, { workspaceId: ws.workspace.id, mode: 'TEST' });
    const p = await f.partner();
    const program = await f.program();
    const enrollment = await f.enrollment({ programId: program.id, partnerId: p.id });
    await f.link(enrollment, { code: 'LIMITED', destinationUrl: 'https://shop.example.com/' });
    partner = await partnerToken(server, key, p.id);
  });
  afterAll(() => server?.close());

  it('limits one credential’s operations per second with 429, Retry-After and RATE_LIMITED; other credentials keep going', async () => {
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 30 }, () => post(server, '{ viewer { role } }', key)));
    const elapsed = performance.now() - started;
    const refused = results.filter((r) => r.status === 429);
    // Five a second (the key minted the partner token within the same second, perhaps). On a loaded
    // machine the burst can straddle windows: five per one-second window it touched.
    const windows = Math.ceil(elapsed / 1000) + 1;
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);
    expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(5 * windows);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(refusedWith(r)).toEqual({ status: 429, code: 'RATE_LIMITED', retryAfter: true });
      expect(r.body.errors![0]!.message).toMatch(/RATE_LIMIT_CREDENTIAL_PER_SECOND/);
      expect(r.body.errors![0]!.extensions).not.toHaveProperty('http');
      expect(r.body).not.toHaveProperty('data');
    }
    // A partner token minted by the same key has a budget of its own.
    expect((await post(server, '{ viewer { role } }', partner)).body.data).toEqual({ viewer: { role: 'PARTNER' } });
  });

  it('limits requests without a valid credential per address, wrong keys included', async () => {
    const statuses: number[] = [];
    for (const token of [undefined, 'rg_test_wrongwrongwrongwrongwrongwrongwrong', undefined, undefined]) {
      statuses.push((await post(server, '{ __typename }', token)).status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    // A valid credential is counted on its own budget.
    expect((await post(server, '{ __typename }', (await server.workspace()).keys.test.secret)).status).toBe(200);
  });

  it('limits issueAccessToken and refreshAccessToken per address, with or without a credential', async () => {
    const issue =
      'mutation($input: RefreshAccessTokenInput!) { refreshAccessToken(input: $input) { userErrors { code } } }';
    const codes: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(server, issue, partner, { input: { refreshToken: 'rgr_nope' } });
      codes.push(
        res.status === 429
          ? 'RATE_LIMITED'
          : (res.body.data as { refreshAccessToken: { userErrors: Array<{ code: string }> } }).refreshAccessToken
              .userErrors[0]!.code,
      );
    }
    expect(codes).toEqual(['INVALID_CREDENTIALS', 'INVALID_CREDENTIALS', 'RATE_LIMITED']);
  });

  it('limits a WebSocket’s operations like HTTP requests', async () => {
    const ws = await server.workspace();
    const client = wsClient(server.url, ws.keys.test.secret);
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, async () => await subscribe(client, '{ viewer { role } }').next()),
      );
      const codes = results.map((r) =>
        r.errors ? JSON.stringify(r.errors).includes('RATE_LIMITED') : r.data ? 'ok' : 'other',
      );
      expect(codes.filter((c) => c === 'ok').length).toBeGreaterThanOrEqual(4);
      expect(codes.filter((c) => c === true).length).toBeGreaterThan(0);
    } finally {
      await client.dispose();
    }
  });

  it('limits /r/{code} per address with 429 and Retry-After', async () => {
    const statuses: Array<[number, string | null]> = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.url}/r/LIMITED`, { redirect: 'manual' });
      statuses.push([res.status, res.status === 429 ? res.headers.get('retry-after') : null]);
      await res.body?.cancel();
    }
    expect(statuses.map(([s]) => s)).toEqual([302, 302, 429]);
    expect(Number(statuses[2]![1])).toBeGreaterThan(0);
  });

  it('defaults: generous, and 0 turns a limit off', () => {
    const config = loadConfig({});
    expect(config.rateLimits).toEqual({
      credential: { points: 1000, durationSeconds: 1 },
      anonymous: { points: 600, durationSeconds: 60 },
      tokens: { points: 60, durationSeconds: 60 },
      redirect: { points: 1200, durationSeconds: 60 },
      stripe: { points: 200, durationSeconds: 1 },
      signInFailures: { points: 5, durationSeconds: 900 },
      signInFailuresPerIp: { points: 20, durationSeconds: 900 },
    });
    expect(loadConfig({ RATE_LIMIT_REDIRECT_PER_MINUTE: '0' }).rateLimits.redirect.points).toBe(0);
    expect(() => loadConfig({ RATE_LIMIT_ANONYMOUS_PER_MINUTE: 'lots' })).toThrow(/RATE_LIMIT_ANONYMOUS_PER_MINUTE/);
  });
});

const redisSkip = (await redisReachable(testRedisUrl)) ? null : `Redis is not reachable at ${testRedisUrl}`;

describe.skipIf(redisSkip !== null)(
  `rate limits shared through Redis${redisSkip ? ` (skipped: ${redisSkip})` : ''}`,
  () => {
    it('counts one address across two instances of one installation, and not across installations', async () => {
      const prefix = `rg-test-${randomUUID()}:`;
      const env = { REDIS_URL: testRedisUrl, RATE_LIMIT_ANONYMOUS_PER_MINUTE: '3' };
      const a = await startTestServer({ ...env, REDIS_PREFIX: prefix });
      const b = await startTestServer({ ...env, REDIS_PREFIX: prefix });
      const other = await startTestServer({ ...env, REDIS_PREFIX: `${prefix}other:` });
      try {
        const statuses = [];
        for (const server of [a, b, a, b]) statuses.push((await post(server, '{ __typename }')).status);
        expect(statuses).toEqual([200, 200, 200, 429]);
        expect((await post(other, '{ __typename }')).status).toBe(200);
      } finally {
        await Promise.all([a.close(), b.close(), other.close()]);
      }
    });
  },
);

describe('introspection policy', () => {
  const INTROSPECT = '{ __schema { queryType { name } } }';
  const TYPO = '{ viewr { role } }';
  let servers: Record<'public' | 'authenticated' | 'off', TestServer>;
  let keys: Record<string, string>;
  beforeAll(async () => {
    servers = {
      public: await startTestServer({ INTROSPECTION: 'public' }),
      authenticated: await startTestServer({ INTROSPECTION: 'authenticated' }),
      off: await startTestServer({ INTROSPECTION: 'off' }),
    };
    keys = {};
    for (const [name, server] of Object.entries(servers)) keys[name] = (await server.workspace()).keys.test.secret;
  });
  afterAll(() => Promise.all(Object.values(servers ?? {}).map((s) => s.close())));

  const allowed = async (policy: keyof typeof servers, authenticated: boolean) => {
    const res = await post(servers[policy], INTROSPECT, authenticated ? keys[policy] : undefined);
    return res.body.errors ? res.body.errors[0]!.message : 'allowed';
  };
  const suggests = async (policy: keyof typeof servers, authenticated: boolean) =>
    /Did you mean/.test(
      (await post(servers[policy], TYPO, authenticated ? keys[policy] : undefined)).body.errors![0]!.message,
    );

  it('public: everyone; authenticated: callers with a valid credential; off: nobody — and "Did you mean" follows it', async () => {
    expect([await allowed('public', false), await allowed('public', true)]).toEqual(['allowed', 'allowed']);
    expect(await allowed('authenticated', true)).toBe('allowed');
    expect(await allowed('authenticated', false)).toMatch(/introspection/i);
    expect(await allowed('off', true)).toMatch(/introspection/i);
    expect([
      await suggests('public', false),
      await suggests('authenticated', true),
      await suggests('authenticated', false),
      await suggests('off', true),
    ]).toEqual([true, true, false, false]);
    // The answers do not leak between callers through Yoga's validation cache.
    expect(await allowed('authenticated', true)).toBe('allowed');
    expect(await suggests('authenticated', true)).toBe(true);
  });

  it('applies over WebSocket too, and defaults to authenticated in production', async () => {
    const client = wsClient(servers.off.url, keys['off']!);
    try {
      const result = await subscribe(client, INTROSPECT).next();
      expect(JSON.stringify(result.errors)).toMatch(/introspection/i);
    } finally {
      await client.dispose();
    }
    expect(loadConfig({ NODE_ENV: 'production' }).introspection).toBe('authenticated');
    expect(loadConfig({}).introspection).toBe('public');
    expect(() => loadConfig({ INTROSPECTION: 'sometimes' })).toThrow(/INTROSPECTION/);
  });
});
