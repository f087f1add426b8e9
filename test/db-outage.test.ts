// The database going away under a running server: clients are told to retry later (503,
// SERVICE_UNAVAILABLE; CSV exports too), the log says so once a second, not once per statement, and nothing
// acknowledged is lost. The server reaches PostgreSQL through a TCP proxy that the test cuts and
// restores. PostgreSQL only (the embedded database cannot go away).
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createWorkspace, type CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { testDatabaseUrl } from './helpers/backend.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { factories } from './helpers/factories.js';

const skip = testDatabaseUrl() ? null : 'needs PostgreSQL (TEST_DATABASE_URL)';

/** A TCP proxy to `target` on a fixed port: `cut()` drops every connection and refuses new ones; `restore()` listens again. */
async function tcpProxy(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = net.createServer((client) => {
        const upstream = net.connect(target);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => s.destroy());
        }
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  const port = await listen(0);
  return {
    port,
    cut: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
    restore: () => listen(port).then(() => undefined),
  };
}

describe.skipIf(skip !== null)(`database outage${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 60_000 }, () => {
  let testDb: TestDatabase;
  let proxy: Awaited<ReturnType<typeof tcpProxy>>;
  let app: App;
  let url: string;
  let ws: CreatedWorkspace;
  let code: string;
  const lines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    testDb = await createTestDatabase();
    const real = new URL(testDb.url!);
    proxy = await tcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
    const proxied = new URL(testDb.url!);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const stream = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: proxied.toString(),
      MIGRATE_ON_START: 'false',
      APPROVAL_JOB_INTERVAL_MS: '0',
      EVENT_POLL_INTERVAL_MS: '100',
      WEBHOOK_WORKER_INTERVAL_MS: '100',
      AUTH_CACHE_TTL_MS: '60000',
      CLICK_LINK_CACHE_TTL_MS: '60000',
    });
    app = await buildApp({ config, logger: createLogger('info', stream) });
    url = (await app.start()).url;
    ws = await createWorkspace(testDb.db.prisma, 'Outage');
    const f = factories(testDb.db.prisma, { workspaceId: ws.workspace.id, mode: 'TEST' });
    const program = await f.program();
    const partner = await f.partner();
    const link = await f.link(await f.enrollment({ programId: program.id, partnerId: partner.id }), {
      destinationUrl: 'https://shop.example.com/',
    });
    code = link.code;
  });
  afterAll(async () => {
    await proxy?.restore().catch(() => {});
    await app?.stop();
    await testDb?.destroy();
  });

  const gql = async (query: string, accept = 'application/graphql-response+json', key = ws.keys.test.secret) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept, authorization: `Bearer ${key}` },
      body: JSON.stringify({ query }),
    });
    return {
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      body: (await res.json()) as {
        data?: unknown;
        errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
      },
    };
  };

  it('answers 503 SERVICE_UNAVAILABLE while the database is unreachable, logs it once a second, and recovers', async () => {
    expect((await gql('{ programs { totalCount } }')).body.data).toEqual({ programs: { totalCount: 1 } });
    // Acknowledged before the outage: a click through the link (its link is cached by the redirect).
    const before = await fetch(`${url}/r/${code}`, { redirect: 'manual' });
    expect(before.status).toBe(302);

    const unused = await createWorkspace(testDb.db.prisma, 'Not yet seen');
    await proxy.cut();
    const startedAt = Date.now();
    // A key this server has not looked up yet: authentication itself needs the database.
    const uncached = await gql('{ viewer { role } }', 'application/json', unused.keys.test.secret);
    expect([uncached.status, uncached.body.errors?.[0]?.extensions?.['code']]).toEqual([503, 'SERVICE_UNAVAILABLE']);
    const during = [];
    for (let i = 0; i < 30; i++)
      during.push(
        await gql('{ programs { totalCount } }', i % 2 ? 'application/json' : 'application/graphql-response+json'),
      );
    for (const res of during) {
      expect(res.status).toBe(503);
      expect(Number(res.retryAfter)).toBeGreaterThan(0);
      expect(res.body.errors?.map((e) => e.extensions?.['code'])).toEqual(['SERVICE_UNAVAILABLE']);
      expect(res.body.errors![0]!.message).toMatch(/retry later/);
    }
    // A CSV export is refused before its status is sent, rather than a 200 with a cut body.
    const exported = await fetch(`${url}/export/rewards.csv`, {
      headers: { authorization: `Bearer ${ws.keys.test.secret}` },
    });
    expect([exported.status, exported.headers.get('retry-after')]).toEqual([503, '5']);
    expect(((await exported.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe(
      'SERVICE_UNAVAILABLE',
    );
    // Clicks are still acknowledged while the database is away (links cached): written once it is back.
    const clicks = await Promise.all(
      Array.from({ length: 5 }, () => fetch(`${url}/r/${code}`, { redirect: 'manual' })),
    );
    expect(clicks.map((r) => r.status)).toEqual([302, 302, 302, 302, 302]);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    const elapsedSeconds = (Date.now() - startedAt) / 1000;

    await proxy.restore();
    // Recovery: the pool reconnects on its own; wait for a normal answer.
    let answer = await gql('{ programs { totalCount } }');
    for (let i = 0; i < 100 && answer.status !== 200; i++) answer = await gql('{ programs { totalCount } }');
    expect(answer.body.data).toEqual({ programs: { totalCount: 1 } });
    await app.services.clicks.flush();
    const link = await testDb.db.prisma.referralLink.findFirstOrThrow({ where: { code } });
    expect(await testDb.db.prisma.click.count({ where: { linkId: link.id } })).toBe(6);

    const outageLines = lines.filter((l) => String(l['msg']).startsWith('database unreachable'));
    expect(outageLines.length).toBeGreaterThan(0);
    expect(outageLines.length).toBeLessThanOrEqual(Math.ceil(elapsedSeconds) + 2);
    // No stack traces for it, and no "unexpected error" lines.
    expect(lines.filter((l) => l['msg'] === 'unexpected error')).toEqual([]);
    for (const l of outageLines) expect(JSON.stringify(l)).not.toMatch(/\bat .+\.(js|ts):\d+/);
  });
});
