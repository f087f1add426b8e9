import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { boundedLabel } from '../src/metrics.js';
import { createWorkspace, type CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { factories } from './helpers/factories.js';
import { BROWSER_USER_AGENT } from './helpers/server.js';
import { subscribe, wsClient } from './helpers/ws.js';

const METRICS_TOKEN = 'metrics-token-for-the-test-0123456789';

let testDb: TestDatabase;
let app: App;
let url: string;
let ws: CreatedWorkspace;
const lines: string[] = [];

beforeAll(async () => {
  testDb = await createTestDatabase();
  const stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    APPROVAL_JOB_INTERVAL_MS: '0',
    METRICS_TOKEN,
    // Webhooks are sent by runOnce only, to a closed port: every attempt fails and stays PENDING.
    WEBHOOK_WORKER_INTERVAL_MS: '0',
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
  });
  app = await buildApp({ config, db: testDb.db, logger: pino({ level: 'info' }, stream) });
  ({ url } = await app.start());
  ws = await createWorkspace(testDb.db.prisma, 'Metrics');
});
afterAll(async () => {
  await app?.stop();
  await testDb?.destroy();
});

async function gql(
  query: string,
  options: { token?: string; variables?: Record<string, unknown>; operationName?: string } = {},
) {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: JSON.stringify({ query, variables: options.variables, operationName: options.operationName }),
  });
  return (await res.json()) as { data?: Record<string, never>; errors?: Array<{ extensions?: { code?: string } }> };
}

async function scrape(): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

/**
 * The value of a sample: `name` exactly, with every label in `labels` (others may be present),
 * summed when several samples match; undefined when none does.
 */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (!Object.entries(labels).every(([k, v]) => have[k] === v)) continue;
    total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

describe('GET /metrics', () => {
  it('requires METRICS_TOKEN when it is set: 401 without it or with another, 200 with it', async () => {
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer not-the-token' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await wrong.text()).not.toContain('# TYPE');
    await scrape();
  });

  it('is open when METRICS_TOKEN is not set', async () => {
    const open = await buildApp({
      config: loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        APPROVAL_JOB_INTERVAL_MS: '0',
        WEBHOOK_WORKER_INTERVAL_MS: '0',
      }),
      db: testDb.db,
    });
    try {
      const { url: openUrl } = await open.start();
      const res = await fetch(`${openUrl}/metrics`);
      expect(res.status).toBe(200);
      // A registry per app: this app's counters start at zero, whatever the other app counted.
      const text = await res.text();
      expect(sample(text, 'graphql_envelop_request')).toBeUndefined();
      expect(text).toContain('# TYPE refgraph_click_queue_depth gauge');
    } finally {
      await open.stop();
    }
  });

  it('counts GraphQL operations and their durations by operation name, and SQL statements', async () => {
    const before = await scrape();
    const statementsBefore = sample(before, 'refgraph_sql_statements_total')!;
    for (let i = 0; i < 3; i++)
      expect((await gql('query MetricsViewer { viewer { role } }', { token: ws.keys.test.secret })).data).toEqual({
        viewer: { role: 'ADMIN' },
      });
    const text = await scrape();
    const op = { operationName: 'MetricsViewer', operationType: 'query' };
    expect(sample(text, 'graphql_envelop_request', op)).toBe(3);
    expect(sample(text, 'graphql_envelop_request_duration_count', op)).toBe(3);
    // Per-phase and Yoga's HTTP histograms are off: they cost the overhead goal (BENCHMARKS.md, overhead).
    expect(text).not.toMatch(/graphql_envelop_phase_|graphql_yoga_http_duration/);
    expect(sample(text, 'graphql_envelop_error_result', { operationName: 'MetricsViewer' })).toBeUndefined();
    expect(
      sample(text, 'refgraph_http_request_duration_seconds_count', { route: 'graphql', status: '200' }),
    ).toBeGreaterThanOrEqual(3);
    expect(
      sample(text, 'refgraph_http_request_duration_seconds_count', { route: 'metrics', status: '200' }),
    ).toBeGreaterThanOrEqual(1);
    // The key is looked up once, then cached: at least one statement, and each one timed.
    expect(sample(text, 'refgraph_sql_statements_total')!).toBeGreaterThan(statementsBefore);
    expect(sample(text, 'refgraph_sql_statement_duration_seconds_count')!).toBeGreaterThan(0);
    // Process metrics of prom-client.
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    // No label holds a URL, a query string or a credential.
    expect(text).not.toContain(ws.keys.test.secret);
    expect(text).not.toMatch(/url="/);
  });

  it('counts a failed operation’s errors by operation name, phase and code', async () => {
    const unauthenticated = await gql('query MetricsNoKey { viewer { role } }');
    expect(unauthenticated.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    await gql('query MetricsInvalid { noSuchField }', { token: ws.keys.test.secret });
    const text = await scrape();
    expect(
      sample(text, 'graphql_envelop_error_result', {
        operationName: 'MetricsNoKey',
        phase: 'execute',
        code: 'UNAUTHENTICATED',
      }),
    ).toBe(1);
    expect(sample(text, 'graphql_envelop_error_result', { operationName: 'MetricsInvalid', phase: 'validate' })).toBe(
      1,
    );
    expect(sample(text, 'graphql_envelop_error_result', { operationName: 'MetricsViewer' })).toBeUndefined();
  });

  it('bounds the operation names it keeps as label values', () => {
    const label = boundedLabel(2, '__other__');
    expect(['A', 'B', 'A', 'C', 'B'].map((name) => label(name, 'Anonymous'))).toEqual([
      'A',
      'B',
      'A',
      '__other__',
      'B',
    ]);
    expect(label(undefined, 'Anonymous')).toBe('Anonymous');
    expect(boundedLabel(10, '__other__')('not a name {', 'Anonymous')).toBe('__other__');
  });

  it('reports the click queue: acknowledged, written, discarded and bots’ clicks, queue depth', async () => {
    const f = factories(testDb.db.prisma, { workspaceId: ws.workspace.id, mode: 'TEST' });
    const program = await f.program();
    const active = await f.partner();
    const inactive = await f.partner({ status: 'INACTIVE' });
    await f.link(await f.enrollment({ programId: program.id, partnerId: active.id }), {
      code: 'METRICS-ACTIVE',
      destinationUrl: 'https://shop.example.com/',
    });
    await f.link(await f.enrollment({ programId: program.id, partnerId: inactive.id }), {
      code: 'METRICS-INACTIVE',
      destinationUrl: 'https://shop.example.com/',
    });
    const before = await scrape();
    const visits: Array<[string, string]> = [
      ['METRICS-ACTIVE', BROWSER_USER_AGENT],
      ['METRICS-ACTIVE', BROWSER_USER_AGENT],
      ['METRICS-INACTIVE', BROWSER_USER_AGENT],
      ['METRICS-ACTIVE', 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)'],
    ];
    for (const [code, userAgent] of visits) {
      const headers = { 'user-agent': userAgent };
      expect((await fetch(`${url}/r/${code}`, { redirect: 'manual', headers })).status).toBe(302);
    }
    await app.services.clicks.flush();
    const text = await scrape();
    const grew = (name: string) => sample(text, name)! - sample(before, name)!;
    expect(grew('refgraph_clicks_acknowledged_total')).toBe(4);
    expect(grew('refgraph_clicks_written_total')).toBe(4);
    expect(grew('refgraph_clicks_discarded_total')).toBe(2);
    expect(grew('refgraph_clicks_bot_total')).toBe(1);
    expect(sample(text, 'refgraph_clicks_dropped_total')).toBe(0);
    expect(sample(text, 'refgraph_click_queue_depth')).toBe(0);
    expect(sample(text, 'refgraph_http_request_duration_seconds_count', { route: 'redirect', status: '302' })).toBe(4);
  });

  it('reports open sockets, subscriptions and shared executions', async () => {
    const client = wsClient(url, ws.keys.test.secret);
    const subs = [
      subscribe(client, 'subscription MetricsEvents { events { id } }'),
      subscribe(client, 'subscription MetricsEvents { events { id } }'),
    ];
    try {
      let text = '';
      for (let i = 0; i < 50 && sample(text, 'refgraph_subscriptions_active') !== 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        text = await scrape();
      }
      expect(sample(text, 'refgraph_websocket_connections')).toBe(1);
      expect(sample(text, 'refgraph_websocket_operations')).toBe(2);
      expect(sample(text, 'refgraph_subscriptions_active')).toBe(2);
      const executed = sample(text, 'refgraph_subscription_executions_total')!;
      // One event, two identical subscribers: executed once, reused once.
      await gql('mutation { createPartner(input: { externalId: "metrics-live" }) { partner { id } } }', {
        token: ws.keys.test.secret,
      });
      await app.dispatcher.drain();
      await Promise.all(subs.map((s) => s.next()));
      text = await scrape();
      expect(sample(text, 'refgraph_subscription_executions_total')! - executed).toBe(1);
      expect(sample(text, 'refgraph_subscription_executions_shared_total')).toBeGreaterThanOrEqual(1);
    } finally {
      await Promise.all(subs.map((s) => s.close()));
      await client.dispose();
    }
    let text = '';
    for (let i = 0; i < 50 && sample(text, 'refgraph_websocket_connections') !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      text = await scrape();
    }
    expect(sample(text, 'refgraph_websocket_connections')).toBe(0);
    expect(sample(text, 'refgraph_subscriptions_active')).toBe(0);
    // A subscription is observed (counted, timed) when it ends.
    expect(
      sample(text, 'graphql_envelop_request', { operationName: 'MetricsEvents', operationType: 'subscription' }),
    ).toBe(2);
  });

  it('reports the webhook backlog and failed attempts, and the outbox lag (committed minus dispatched)', async () => {
    const created = await gql(
      'mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { userErrors { code } } }',
      {
        token: ws.keys.test.secret,
        variables: { input: { url: 'http://127.0.0.1:1/hook' } }, // nothing listens on port 1
      },
    );
    expect(created.data).toEqual({ createWebhookEndpoint: { userErrors: [] } });
    await gql('mutation { createPartner(input: { externalId: "metrics-hook" }) { partner { id } } }', {
      token: ws.keys.test.secret,
    });
    await app.dispatcher.drain();
    const run = await app.webhooks.runOnce();
    expect(run.failed).toBeGreaterThanOrEqual(1);
    let text = await scrape();
    expect(sample(text, 'refgraph_webhook_deliveries_pending')).toBe(run.created);
    expect(sample(text, 'refgraph_webhook_attempts_total', { outcome: 'failed' })).toBe(run.failed);
    expect(sample(text, 'refgraph_webhook_attempts_total', { outcome: 'succeeded' })).toBe(0);
    expect(sample(text, 'refgraph_outbox_lag_events')).toBe(0);
    expect(sample(text, 'refgraph_outbox_events_dispatched_total')).toBeGreaterThanOrEqual(1);

    // With the dispatcher stopped, what is committed now is the lag.
    await app.dispatcher.stop();
    const count = async () =>
      Number((await testDb.db.query<{ n: string }>('SELECT count(*)::text AS n FROM "Event"'))[0]!.n);
    const eventsBefore = await count();
    await gql(
      'mutation { a: createPartner(input: { externalId: "metrics-lag-1" }) { partner { id } } b: createPartner(input: { externalId: "metrics-lag-2" }) { partner { id } } }',
      {
        token: ws.keys.test.secret,
      },
    );
    const committed = (await count()) - eventsBefore;
    expect(committed).toBeGreaterThanOrEqual(2);
    text = await scrape();
    expect(sample(text, 'refgraph_outbox_lag_events')).toBe(committed);
  });
});

describe('access log', () => {
  it('writes one JSON line per HTTP request: method, path without query string, status, duration, operation, request id; no credential, no document', async () => {
    const document = 'query MetricsLogged { viewer { role } }';
    const graphqlGet = await fetch(
      `${url}/graphql?query=${encodeURIComponent(document)}&variables=${encodeURIComponent('{"secretish":"v4riable"}')}`,
      {
        headers: {
          accept: 'application/json',
          authorization: `Bearer ${ws.keys.test.secret}`,
          'x-request-id': 'metrics-log-1',
        },
      },
    );
    expect(graphqlGet.status).toBe(200);
    await fetch(`${url}/healthz?probe=1`);
    await fetch(`${url}/r/METRICS-ACTIVE?utm_source=test`, { redirect: 'manual' });
    await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong-token-value' } });
    await new Promise((resolve) => setTimeout(resolve, 50)); // the 'close' of the last response

    const requests = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry['msg'] === 'request');
    const graphqlLine = requests.find((entry) => entry['requestId'] === 'metrics-log-1');
    expect(graphqlLine).toMatchObject({
      level: 30,
      method: 'GET',
      path: '/graphql',
      status: 200,
      operation: 'MetricsLogged',
    });
    expect(graphqlLine!['durationMs']).toEqual(expect.any(Number));
    expect(requests).toContainEqual(
      expect.objectContaining({ method: 'GET', path: '/healthz', status: 200, requestId: expect.any(String) }),
    );
    expect(requests).toContainEqual(expect.objectContaining({ method: 'GET', path: '/r/METRICS-ACTIVE', status: 302 }));
    expect(requests).toContainEqual(expect.objectContaining({ method: 'GET', path: '/metrics', status: 401 }));
    // Every request of this file so far has a line (POSTs included).
    expect(
      requests.filter((entry) => entry['method'] === 'POST' && entry['operation'] === 'MetricsViewer'),
    ).toHaveLength(3);

    const all = requests.map((entry) => JSON.stringify(entry)).join('\n');
    expect(all).not.toContain(ws.keys.test.secret);
    expect(all).not.toContain('wrong-token-value');
    expect(all).not.toContain(METRICS_TOKEN);
    expect(all).not.toContain('viewer');
    expect(all).not.toContain('v4riable');
    expect(all).not.toContain('utm_source');
    expect(all).not.toContain('?');
    expect(all.toLowerCase()).not.toContain('authorization');
  });

  it('is off with ACCESS_LOG=off', async () => {
    const quiet: string[] = [];
    const stream = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        quiet.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const other = await buildApp({
      config: loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        ACCESS_LOG: 'off',
        APPROVAL_JOB_INTERVAL_MS: '0',
        WEBHOOK_WORKER_INTERVAL_MS: '0',
      }),
      db: testDb.db,
      logger: pino({ level: 'info' }, stream),
    });
    try {
      const { url: otherUrl } = await other.start();
      expect((await fetch(`${otherUrl}/healthz`)).status).toBe(200);
    } finally {
      await other.stop();
    }
    expect(quiet.map((line) => (JSON.parse(line) as { msg: string }).msg)).not.toContain('request');
  });
});
