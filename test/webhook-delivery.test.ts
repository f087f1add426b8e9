import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db.js';
import { WebhookWorker, type WebhookWorkerOptions } from '../src/modules/webhook/delivery-worker.js';
import { graphql } from './gql/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';

// Deliveries to a real HTTP receiver on 127.0.0.1. The server's own worker is off
// (WEBHOOK_WORKER_INTERVAL_MS=0): tests drive it with app.webhooks.runOnce(now), moving the clock
// instead of sleeping, or start workers of their own.

const MAX_FAILURES = 4;
let server: TestServer;
const receivers: Receiver[] = [];
const workers: WebhookWorker[] = [];
const databases: Database[] = [];

beforeAll(async () => {
  server = await startTestServer({
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    WEBHOOK_WORKER_INTERVAL_MS: '0',
    WEBHOOK_MAX_FAILURES: String(MAX_FAILURES),
  });
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  // Each test starts without endpoints: nothing left over is sent to the next test's receiver.
  await server.testDb.db.prisma.webhookEndpoint.deleteMany({});
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});
afterAll(async () => {
  await Promise.all(databases.map((db) => db.close()));
  await server?.close();
});

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
type Answer = { status: number; body?: string; headers?: Record<string, string> } | 'hang';

/** A webhook receiver: records every request and answers with `answer(request, n)` (n from 1). */
class Receiver {
  readonly requests: Received[] = [];
  private consumed = 0;
  private waiters: Array<(request: Received) => void> = [];
  private hanging: ServerResponse[] = [];
  answer: (request: Received, n: number) => Answer = () => ({ status: 200, body: 'ok' });
  url = '';

  private constructor(private readonly server: Server) {}

  static async start(): Promise<Receiver> {
    const receiver: Receiver = new Receiver(
      createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const request = {
            method: req.method!,
            url: req.url!,
            headers: req.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          };
          receiver.requests.push(request);
          const answer = receiver.answer(request, receiver.requests.length);
          if (answer === 'hang') receiver.hanging.push(res);
          else {
            res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
            res.end(answer.body ?? '');
          }
          const waiter = receiver.waiters.shift();
          if (waiter) {
            receiver.consumed++;
            waiter(request);
          }
        });
      }),
    );
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}`;
    receivers.push(receiver);
    return receiver;
  }

  /** The next request not yet taken (waits for it to arrive). */
  next(): Promise<Received> {
    if (this.consumed < this.requests.length) return Promise.resolve(this.requests[this.consumed++]!);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const CREATE = graphql(`
  mutation DeliveryCreateEndpoint($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) { webhookEndpoint { id } secret userErrors { code message field } }
  }
`);
const UPDATE = graphql(`
  mutation DeliveryUpdateEndpoint($input: UpdateWebhookEndpointInput!) {
    updateWebhookEndpoint(input: $input) { webhookEndpoint { id enabled disabledReason consecutiveFailures } userErrors { code message field } }
  }
`);
const ROTATE = graphql(`
  mutation DeliveryRotateSecret($input: RotateWebhookSecretInput!) {
    rotateWebhookSecret(input: $input) { secret userErrors { code } }
  }
`);
const REDELIVER = graphql(`
  mutation DeliveryRedeliver($input: RedeliverWebhookInput!) {
    redeliverWebhook(input: $input) { webhookDelivery { id status attempts nextAttemptAt } userErrors { code message field } }
  }
`);
const CREATE_PARTNER = graphql(`
  mutation DeliveryCreatePartner($input: CreatePartnerInput!) {
    createPartner(input: $input) { partner { id } userErrors { code } }
  }
`);
const SET_STATUS = graphql(`
  mutation DeliverySetPartnerStatus($input: SetPartnerStatusInput!) {
    setPartnerStatus(input: $input) { partner { id status } userErrors { code } }
  }
`);
const DELIVERIES = graphql(`
  query DeliveryLog($id: ID!, $first: Int, $after: String, $status: WebhookDeliveryStatus) {
    webhookEndpoint(id: $id) {
      id
      enabled
      disabledReason
      consecutiveFailures
      deliveries(first: $first, after: $after, status: $status) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges {
          node {
            id
            status
            attempts
            nextAttemptAt
            lastAttemptAt
            responseStatus
            responseBody
            lastError
            durationMs
            endpoint { id }
            event { id type sequence payload }
          }
        }
      }
    }
  }
`);
const CREATE_KEY = graphql(`
  mutation DeliveryReaderKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { secret }
  }
`);

async function endpoint(
  ws: CreatedWorkspace,
  url: string,
  eventTypes?: string[],
): Promise<{ id: string; secret: string }> {
  const res = await server.gql(CREATE, { input: { url, eventTypes } }, ws.keys.test.secret);
  expect(res.data!.createWebhookEndpoint.userErrors).toEqual([]);
  return { id: res.data!.createWebhookEndpoint.webhookEndpoint!.id, secret: res.data!.createWebhookEndpoint.secret! };
}

async function createPartner(ws: CreatedWorkspace, externalId: string, token = ws.keys.test.secret): Promise<string> {
  const res = await server.gql(CREATE_PARTNER, { input: { externalId } }, token);
  return res.data!.createPartner.partner!.id;
}

async function log(
  ws: CreatedWorkspace,
  id: string,
  variables: { first?: number; after?: string; status?: 'PENDING' | 'SUCCEEDED' | 'FAILED' } = {},
) {
  const res = await server.gql(DELIVERIES, { id, ...variables }, ws.keys.test.secret);
  expect(res.errors).toBeUndefined();
  return res.data!.webhookEndpoint!;
}

/** The receiver's own verification, independent of the server's code. */
function verify(header: string, body: string, secret: string): { t: number; valid: string[] } {
  const parts = header.split(',').map((p) => p.split('=') as [string, string]);
  const t = Number(parts.find(([k]) => k === 't')![1]);
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return { t, valid: parts.filter(([k, v]) => k === 'v1' && v === expected).map(([, v]) => v) };
}

function worker(options: Partial<WebhookWorkerOptions> = {}, db: Database = server.testDb.db): WebhookWorker {
  const w = new WebhookWorker(db, {
    intervalMs: 0,
    concurrency: 10,
    timeoutMs: 10_000,
    retryForMs: 86_400_000,
    maxConsecutiveFailures: 10,
    allowPrivateTargets: true,
    random: () => 0.5, // no jitter: backoffs are exactly 10 s, 20 s, 40 s…
    ...options,
  });
  workers.push(w);
  return w;
}

const seconds = (at: Date, s: number) => new Date(at.getTime() + s * 1000);

describe('a delivery', () => {
  it('POSTs the event as JSON with a Refgraph-Signature the receiver can verify, and logs the answer', async () => {
    const receiver = await Receiver.start();
    receiver.answer = () => ({ status: 200, body: 'thanks' });
    const ws = await server.workspace();
    const hook = await endpoint(ws, `${receiver.url}/hooks/refgraph?tenant=acme`);
    const partnerId = await createPartner(ws, 'alice');
    const before = Math.floor(Date.now() / 1000);
    const run = await server.app.webhooks.runOnce();
    expect(run).toMatchObject({ created: 1, attempted: 1, succeeded: 1, failed: 0 });
    const request = await receiver.next();
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/hooks/refgraph?tenant=acme');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['user-agent']).toBe('refgraph-webhooks');
    expect(request.headers['refgraph-event-type']).toBe('partner.created');
    const body = JSON.parse(request.body) as Record<string, unknown>;
    expect(body).toEqual({
      id: request.headers['refgraph-event-id'],
      type: 'partner.created',
      sequence: '1',
      occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      workspaceId: expect.any(String),
      mode: 'TEST',
      data: { partnerId, externalId: 'alice', status: 'ACTIVE' },
    });
    expect(Buffer.from(body.workspaceId as string, 'base64').toString()).toBe(`Workspace:${ws.workspace.id}`);
    const { t, valid } = verify(request.headers['refgraph-signature'] as string, request.body, hook.secret);
    expect(valid).toHaveLength(1);
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(verify(request.headers['refgraph-signature'] as string, request.body, 'whsec_wrong').valid).toEqual([]);

    const logged = await log(ws, hook.id);
    expect(logged.deliveries.totalCount).toBe(1);
    const delivery = logged.deliveries.edges[0]!.node;
    expect(delivery).toMatchObject({
      status: 'SUCCEEDED',
      attempts: 1,
      nextAttemptAt: null,
      responseStatus: 200,
      responseBody: 'thanks',
      lastError: null,
      endpoint: { id: hook.id },
      event: { id: body.id, type: 'partner.created', sequence: '1' },
    });
    expect(delivery.lastAttemptAt).not.toBeNull();
    expect(delivery.durationMs).toBeGreaterThanOrEqual(0);
    expect(request.headers['refgraph-delivery-id']).toBe(delivery.id);
    expect(request.headers['refgraph-delivery-attempt']).toBe('1');
    // Nothing more to do.
    expect(await server.app.webhooks.runOnce()).toEqual({ created: 0, attempted: 0, succeeded: 0, failed: 0 });
  });

  it('only carries events committed after the endpoint was created, and only the types it asked for', async () => {
    const receiver = await Receiver.start();
    const ws = await server.workspace();
    const early = await createPartner(ws, 'before-the-endpoint');
    const statusOnly = await endpoint(ws, `${receiver.url}/status-only`, ['partner.status_changed']);
    const everything = await endpoint(ws, `${receiver.url}/all`);
    const partnerId = await createPartner(ws, 'bob');
    const banned = await server.gql(SET_STATUS, { input: { partnerId, status: 'BANNED' } }, ws.keys.test.secret);
    expect(banned.data!.setPartnerStatus.userErrors).toEqual([]);
    expect(early).toBeTruthy();
    await server.app.webhooks.runOnce();
    const seen = receiver.requests
      .map((r) => `${r.url} ${r.headers['refgraph-event-type']} ${JSON.parse(r.body).sequence}`)
      .sort();
    expect(seen).toEqual([
      '/all partner.created 2',
      '/all partner.status_changed 3',
      '/status-only partner.status_changed 3',
    ]);
    const data = JSON.parse(receiver.requests.find((r) => r.url === '/status-only')!.body).data;
    expect(data).toEqual({ partnerId, from: 'ACTIVE', to: 'BANNED' });
    expect((await log(ws, statusOnly.id)).deliveries.totalCount).toBe(1);
    expect((await log(ws, everything.id)).deliveries.totalCount).toBe(2);
  });

  it('never carries another workspace’s or the other mode’s events', async () => {
    const receiver = await Receiver.start();
    const ws = await server.workspace();
    const other = await server.workspace();
    const hook = await endpoint(ws, receiver.url);
    await createPartner(other, 'elsewhere');
    await createPartner(ws, 'live-only', ws.keys.live.secret);
    await createPartner(ws, 'mine');
    await server.app.webhooks.runOnce();
    expect(receiver.requests.map((r) => JSON.parse(r.body).data.externalId)).toEqual(['mine']);
    expect((await log(ws, hook.id)).deliveries.totalCount).toBe(1);
  });
});

describe('retries', () => {
  it('retries a 500 with backoff: 500, 500, 200 → three attempts, then SUCCEEDED', async () => {
    const receiver = await Receiver.start();
    receiver.answer = (_r, n) => (n <= 2 ? { status: 500, body: `boom ${n}` } : { status: 204 });
    const ws = await server.workspace();
    const hook = await endpoint(ws, receiver.url);
    await createPartner(ws, 'carol');
    const t0 = new Date();
    expect(await server.app.webhooks.runOnce(t0)).toMatchObject({ created: 1, attempted: 1, failed: 1 });
    let node = (await log(ws, hook.id)).deliveries.edges[0]!.node;
    expect(node).toMatchObject({
      status: 'PENDING',
      attempts: 1,
      responseStatus: 500,
      responseBody: 'boom 1',
      lastError: 'HTTP 500 Internal Server Error',
    });
    const firstRetry = Date.parse(node.nextAttemptAt!) - t0.getTime();
    expect(firstRetry).toBeGreaterThanOrEqual(8_000); // 10 s ± 20 %
    expect(firstRetry).toBeLessThanOrEqual(12_000);
    expect((await log(ws, hook.id)).consecutiveFailures).toBe(1);

    // Not due yet: nothing is sent.
    expect(await server.app.webhooks.runOnce(seconds(t0, 7))).toMatchObject({ attempted: 0 });
    expect(receiver.requests).toHaveLength(1);

    const t1 = seconds(t0, 13);
    expect(await server.app.webhooks.runOnce(t1)).toMatchObject({ attempted: 1, failed: 1 });
    node = (await log(ws, hook.id)).deliveries.edges[0]!.node;
    expect(node).toMatchObject({ status: 'PENDING', attempts: 2, responseBody: 'boom 2' });
    const secondRetry = Date.parse(node.nextAttemptAt!) - t1.getTime();
    expect(secondRetry).toBeGreaterThanOrEqual(16_000); // 20 s ± 20 %
    expect(secondRetry).toBeLessThanOrEqual(24_000);

    expect(await server.app.webhooks.runOnce(seconds(t1, 25))).toMatchObject({ attempted: 1, succeeded: 1 });
    const after = await log(ws, hook.id);
    expect(after.consecutiveFailures).toBe(0);
    expect(after.deliveries.edges[0]!.node).toMatchObject({
      status: 'SUCCEEDED',
      attempts: 3,
      responseStatus: 204,
      lastError: null,
      nextAttemptAt: null,
    });
    // The same event each time, signed afresh, numbered.
    expect(new Set(receiver.requests.map((r) => r.body)).size).toBe(1);
    expect(receiver.requests.map((r) => r.headers['refgraph-delivery-attempt'])).toEqual(['1', '2', '3']);
    expect(new Set(receiver.requests.map((r) => r.headers['refgraph-event-id'])).size).toBe(1);
    for (const request of receiver.requests)
      expect(verify(request.headers['refgraph-signature'] as string, request.body, hook.secret).valid).toHaveLength(1);
  });

  it('gives up after the retry window: FAILED', async () => {
    const receiver = await Receiver.start();
    receiver.answer = () => ({ status: 503 });
    const ws = await server.workspace();
    const hook = await endpoint(ws, receiver.url);
    await createPartner(ws, 'dave');
    const w = worker({ retryForMs: 60_000 });
    const t0 = new Date();
    await w.runOnce(t0); // next at +10 s
    await w.runOnce(seconds(t0, 10)); // next at +30 s
    await w.runOnce(seconds(t0, 30)); // next would be +70 s, after the 60 s window
    const node = (await log(ws, hook.id)).deliveries.edges[0]!.node;
    expect(node).toMatchObject({
      status: 'FAILED',
      attempts: 3,
      nextAttemptAt: null,
      responseStatus: 503,
      lastError: 'HTTP 503 Service Unavailable',
    });
    expect(await w.runOnce(seconds(t0, 3600))).toMatchObject({ attempted: 0 });
    expect(receiver.requests).toHaveLength(3);
  });

  it('retries a connection error and a timeout, and records them', async () => {
    const receiver = await Receiver.start();
    receiver.answer = () => 'hang';
    const ws = await server.workspace();
    const slow = await endpoint(ws, `${receiver.url}/slow`);
    const closed = await Receiver.start();
    await closed.close();
    const refused = await endpoint(ws, `${closed.url}/closed`);
    await createPartner(ws, 'erin');
    await worker({ timeoutMs: 300 }).runOnce();
    const slowNode = (await log(ws, slow.id)).deliveries.edges[0]!.node;
    expect(slowNode).toMatchObject({
      status: 'PENDING',
      attempts: 1,
      responseStatus: null,
      lastError: 'timed out after 300 ms',
    });
    expect(slowNode.durationMs).toBeGreaterThanOrEqual(290);
    const refusedNode = (await log(ws, refused.id)).deliveries.edges[0]!.node;
    expect(refusedNode).toMatchObject({
      status: 'PENDING',
      attempts: 1,
      responseStatus: null,
      lastError: expect.stringContaining('ECONNREFUSED'),
    });
  });

  it('does not follow redirects and reads at most 1 KiB of an answer', async () => {
    const receiver = await Receiver.start();
    receiver.answer = (request) =>
      request.url === '/moved'
        ? { status: 307, headers: { location: `${receiver.url}/target` } }
        : { status: 200, body: 'reached the target' };
    const big = await Receiver.start();
    big.answer = () => ({ status: 500, body: 'é'.repeat(50_000) });
    const ws = await server.workspace();
    const moved = await endpoint(ws, `${receiver.url}/moved`);
    const large = await endpoint(ws, big.url);
    await createPartner(ws, 'frank');
    await server.app.webhooks.runOnce();
    expect(receiver.requests.map((r) => r.url)).toEqual(['/moved']);
    expect((await log(ws, moved.id)).deliveries.edges[0]!.node).toMatchObject({
      status: 'PENDING',
      responseStatus: 307,
      lastError: 'HTTP 307 Temporary Redirect',
    });
    const largeNode = (await log(ws, large.id)).deliveries.edges[0]!.node;
    expect(largeNode.responseStatus).toBe(500);
    expect(Buffer.byteLength(largeNode.responseBody!)).toBeLessThanOrEqual(1024 + 3);
    expect(largeNode.responseBody!.startsWith('éé')).toBe(true);
  });
});

describe('automatic disable', () => {
  it(`disables an endpoint after ${MAX_FAILURES} consecutive failed attempts (WEBHOOK_MAX_FAILURES); re-enabling resumes its pending deliveries`, async () => {
    const receiver = await Receiver.start();
    let healthy = false;
    receiver.answer = () => (healthy ? { status: 200 } : { status: 500, body: 'down' });
    const ws = await server.workspace();
    const hook = await endpoint(ws, receiver.url);
    for (let i = 0; i < 3; i++) await createPartner(ws, `g${i}`);
    const t0 = new Date();
    await server.app.webhooks.runOnce(t0); // three failures
    expect(await log(ws, hook.id)).toMatchObject({ enabled: true, consecutiveFailures: 3 });
    await server.app.webhooks.runOnce(seconds(t0, 15)); // the fourth one disables it
    const disabled = await log(ws, hook.id);
    expect(disabled.enabled).toBe(false);
    expect(disabled.consecutiveFailures).toBeGreaterThanOrEqual(MAX_FAILURES);
    expect(disabled.disabledReason).toContain(`${MAX_FAILURES} consecutive failed delivery attempts`);
    expect(disabled.disabledReason).toContain('HTTP 500');
    const sent = receiver.requests.length;

    // Disabled: nothing is sent, and events committed meanwhile are not picked up.
    await createPartner(ws, 'while-disabled');
    expect(await server.app.webhooks.runOnce(seconds(t0, 3600))).toMatchObject({ created: 0, attempted: 0 });
    expect(receiver.requests).toHaveLength(sent);

    healthy = true;
    const on = await server.gql(UPDATE, { input: { id: hook.id, enabled: true } }, ws.keys.test.secret);
    expect(on.data!.updateWebhookEndpoint.webhookEndpoint).toMatchObject({
      enabled: true,
      disabledReason: null,
      consecutiveFailures: 0,
    });
    await createPartner(ws, 'after-enabling');
    await server.app.webhooks.runOnce(seconds(t0, 7200));
    const after = await log(ws, hook.id);
    expect(after).toMatchObject({ enabled: true, consecutiveFailures: 0 });
    expect(after.deliveries.totalCount).toBe(4);
    expect(after.deliveries.edges.every((e) => e.node.status === 'SUCCEEDED')).toBe(true);
    const delivered = receiver.requests
      .slice(sent)
      .map((r) => JSON.parse(r.body).data.externalId)
      .sort();
    expect(delivered).toEqual(['after-enabling', 'g0', 'g1', 'g2']);
  });
});

describe('redeliverWebhook', () => {
  it('sends a SUCCEEDED or FAILED delivery again now, with a new retry window', async () => {
    const receiver = await Receiver.start();
    receiver.answer = (_r, n) => (n === 2 ? { status: 500 } : { status: 200 });
    const ws = await server.workspace();
    const hook = await endpoint(ws, receiver.url);
    await createPartner(ws, 'henry');
    await server.app.webhooks.runOnce();
    const delivery = (await log(ws, hook.id)).deliveries.edges[0]!.node;
    expect(delivery.status).toBe('SUCCEEDED');

    const res = await server.gql(REDELIVER, { input: { deliveryId: delivery.id } }, ws.keys.test.secret);
    expect(res.data!.redeliverWebhook.userErrors).toEqual([]);
    expect(res.data!.redeliverWebhook.webhookDelivery).toMatchObject({
      id: delivery.id,
      status: 'PENDING',
      attempts: 1,
    });
    expect(Math.abs(Date.parse(res.data!.redeliverWebhook.webhookDelivery!.nextAttemptAt!) - Date.now())).toBeLessThan(
      10_000,
    );
    // The second attempt fails (500); it is retried; a FAILED one can be redelivered as well.
    const w = worker({ retryForMs: 0 });
    await w.runOnce();
    expect((await log(ws, hook.id)).deliveries.edges[0]!.node).toMatchObject({ status: 'FAILED', attempts: 2 });
    const again = await server.gql(REDELIVER, { input: { deliveryId: delivery.id } }, ws.keys.test.secret);
    expect(again.data!.redeliverWebhook.webhookDelivery).toMatchObject({ status: 'PENDING', attempts: 2 });
    await w.runOnce();
    expect((await log(ws, hook.id)).deliveries.edges[0]!.node).toMatchObject({ status: 'SUCCEEDED', attempts: 3 });
    expect(receiver.requests).toHaveLength(3);
    expect(new Set(receiver.requests.map((r) => r.body)).size).toBe(1);
  });

  it('is refused while the endpoint is disabled, to other roles, and for another workspace’s or mode’s delivery', async () => {
    const receiver = await Receiver.start();
    const ws = await server.workspace();
    const hook = await endpoint(ws, receiver.url);
    await createPartner(ws, 'iris');
    await server.app.webhooks.runOnce();
    const delivery = (await log(ws, hook.id)).deliveries.edges[0]!.node;

    const other = await server.workspace();
    for (const token of [other.keys.test.secret, ws.keys.live.secret]) {
      const res = await server.gql(REDELIVER, { input: { deliveryId: delivery.id } }, token);
      expect(res.data!.redeliverWebhook).toEqual({
        webhookDelivery: null,
        userErrors: [{ code: 'NOT_FOUND', field: ['input', 'deliveryId'], message: 'Webhook delivery not found.' }],
      });
      const node = await server.gql<{ node: unknown }>(
        `query($id: ID!) { node(id: $id) { id } }`,
        { id: delivery.id },
        token,
      );
      expect(node.data!.node).toBeNull();
    }
    const reader = (await server.gql(CREATE_KEY, { input: { name: 'r', role: 'READ_ONLY' } }, ws.keys.test.secret))
      .data!.createApiKey.secret!;
    const forbidden = await server.gql(REDELIVER, { input: { deliveryId: delivery.id } }, reader);
    expect(forbidden.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const readerNode = await server.gql<{ node: unknown }>(
      `query($id: ID!) { node(id: $id) { id ... on WebhookDelivery { status } } }`,
      { id: delivery.id },
      reader,
    );
    expect(readerNode.data?.node ?? null).toBeNull();

    await server.gql(UPDATE, { input: { id: hook.id, enabled: false } }, ws.keys.test.secret);
    const disabled = await server.gql(REDELIVER, { input: { deliveryId: delivery.id } }, ws.keys.test.secret);
    expect(disabled.data!.redeliverWebhook.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        field: ['input', 'deliveryId'],
        message: expect.stringMatching(/SUCCEEDED.*disabled.*PENDING/),
      },
    ]);
    // Nothing changed.
    expect((await log(ws, hook.id)).deliveries.edges[0]!.node).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    // The owner reads it through node().
    const own = await server.gql<{ node: { status: string } }>(
      `query($id: ID!) { node(id: $id) { ... on WebhookDelivery { status } } }`,
      { id: delivery.id },
      ws.keys.test.secret,
    );
    expect(own.data!.node).toEqual({ status: 'SUCCEEDED' });
    expect(receiver.requests).toHaveLength(1);
  });
});

describe('the delivery log', () => {
  it('pages newest first with totalCount and a status filter', async () => {
    const receiver = await Receiver.start();
    receiver.answer = (request) =>
      JSON.parse(request.body).data.externalId === 'j1' ? { status: 500 } : { status: 200 };
    const ws = await server.workspace();
    const hook = await endpoint(ws, receiver.url);
    for (const id of ['j0', 'j1', 'j2']) await createPartner(ws, id);
    await server.app.webhooks.runOnce();
    const first = await log(ws, hook.id, { first: 2 });
    expect(first.deliveries.totalCount).toBe(3);
    expect(first.deliveries.edges.map((e) => JSON.parse(e.node.event.payload).externalId)).toEqual(['j2', 'j1']);
    const rest = await log(ws, hook.id, { first: 2, after: first.deliveries.pageInfo.endCursor! });
    expect(rest.deliveries.edges.map((e) => JSON.parse(e.node.event.payload).externalId)).toEqual(['j0']);
    const pending = await log(ws, hook.id, { status: 'PENDING' });
    expect(pending.deliveries).toMatchObject({ totalCount: 1 });
    expect(JSON.parse(pending.deliveries.edges[0]!.node.event.payload).externalId).toBe('j1');
    expect((await log(ws, hook.id, { status: 'FAILED' })).deliveries.totalCount).toBe(0);
  });
});

describe('signing secrets', () => {
  it('signs with the new secret after a rotation, and with both during the overlap', async () => {
    const receiver = await Receiver.start();
    const ws = await server.workspace();
    const hook = await endpoint(ws, receiver.url);
    const rotated = await server.gql(ROTATE, { input: { id: hook.id, overlapSeconds: 600 } }, ws.keys.test.secret);
    const fresh = rotated.data!.rotateWebhookSecret.secret!;
    await createPartner(ws, 'kim');
    const t0 = new Date();
    await server.app.webhooks.runOnce(t0);
    const during = await receiver.next();
    const header = during.headers['refgraph-signature'] as string;
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verify(header, during.body, fresh).valid).toHaveLength(1);
    expect(verify(header, during.body, hook.secret).valid).toHaveLength(1);
    expect(verify(header, during.body, fresh).t).toBe(Math.floor(t0.getTime() / 1000));

    await createPartner(ws, 'lee');
    await server.app.webhooks.runOnce(seconds(t0, 601));
    const after = await receiver.next();
    const late = after.headers['refgraph-signature'] as string;
    expect(late.match(/v1=/g)).toHaveLength(1);
    expect(verify(late, after.body, fresh).valid).toHaveLength(1);
    expect(verify(late, after.body, hook.secret).valid).toEqual([]);
  });
});

describe('target checks at delivery time', () => {
  it('refuses to connect to a private address even when the endpoint was saved with it (DNS rebinding)', async () => {
    const receiver = await Receiver.start();
    const ws = await server.workspace();
    const byIp = await endpoint(ws, `${receiver.url}/ip`);
    const byName = await endpoint(ws, `${receiver.url.replace('127.0.0.1', 'localhost')}/name`);
    const mapped = await endpoint(ws, `${receiver.url.replace('127.0.0.1', '[::ffff:127.0.0.1]')}/mapped`);
    await createPartner(ws, 'mallory');
    const strict = worker({ allowPrivateTargets: false });
    expect(await strict.runOnce()).toMatchObject({ attempted: 3, failed: 3 });
    expect(receiver.requests).toEqual([]);
    expect((await log(ws, byIp.id)).deliveries.edges[0]!.node).toMatchObject({
      status: 'PENDING',
      responseStatus: null,
      lastError: 'refused: 127.0.0.1 is a loopback address',
    });
    expect((await log(ws, byName.id)).deliveries.edges[0]!.node.lastError).toMatch(
      /^refused: localhost resolves to .*loopback address$/,
    );
    expect((await log(ws, mapped.id)).deliveries.edges[0]!.node.lastError).toBe(
      'refused: ::ffff:7f00:1 is a loopback (127.0.0.1 mapped to IPv6) address',
    );
  });
});

describe('workers', () => {
  it('two workers running at once deliver each event once', async () => {
    const receiver = await Receiver.start();
    const ws = await server.workspace();
    const hooks = [await endpoint(ws, `${receiver.url}/a`), await endpoint(ws, `${receiver.url}/b`)];
    const partners = 25;
    for (let i = 0; i < partners; i++) await createPartner(ws, `w${i}`);
    // On PostgreSQL the second worker is another instance: its own connection pool.
    let second = server.testDb.db;
    if (server.testDb.url) {
      second = await openDatabase({ databaseUrl: server.testDb.url, dataDir: '', poolSize: 5, migrate: false });
      databases.push(second);
    }
    const a = worker({ concurrency: 3 });
    const b = worker({ concurrency: 3 }, second);
    const runs = await Promise.all([a.runOnce(), b.runOnce(), a.runOnce(), b.runOnce()]);
    expect(runs.reduce((n, r) => n + r.created, 0)).toBe(partners * 2);
    expect(runs.reduce((n, r) => n + r.attempted, 0)).toBe(partners * 2);
    const keys = receiver.requests.map((r) => `${r.url} ${r.headers['refgraph-event-id']}`);
    expect(keys).toHaveLength(partners * 2);
    expect(new Set(keys).size).toBe(partners * 2);
    for (const hook of hooks) {
      const logged = await log(ws, hook.id, { first: 100 });
      expect(logged.deliveries.totalCount).toBe(partners);
      expect(logged.deliveries.edges.every((e) => e.node.status === 'SUCCEEDED' && e.node.attempts === 1)).toBe(true);
    }
  });

  it('a started worker wakes up on the commit (LISTEN/NOTIFY) without waiting for its poll', async () => {
    const receiver = await Receiver.start();
    const ws = await server.workspace();
    const live = worker({ intervalMs: 3_600_000 }); // the poll would come in an hour
    await live.start();
    await endpoint(ws, receiver.url);
    await createPartner(ws, 'nina');
    const request = await receiver.next();
    expect(JSON.parse(request.body).data.externalId).toBe('nina');
    await createPartner(ws, 'oscar');
    expect(JSON.parse((await receiver.next()).body).data.externalId).toBe('oscar');
  });

  it('a slow receiver does not hold up the other deliveries of a started worker', async () => {
    const slow = await Receiver.start();
    slow.answer = () => 'hang';
    const fast = await Receiver.start();
    const ws = await server.workspace();
    const live = worker({ intervalMs: 3_600_000, timeoutMs: 60_000, concurrency: 4 });
    await live.start();
    await endpoint(ws, `${slow.url}/slow`);
    await endpoint(ws, `${fast.url}/fast`);
    await createPartner(ws, 'q1');
    expect(JSON.parse((await fast.next()).body).data.externalId).toBe('q1');
    expect(JSON.parse((await slow.next()).body).data.externalId).toBe('q1');
    // The slow receiver still holds q1 when q2 is committed: q2 reaches the fast one at once.
    await createPartner(ws, 'q2');
    expect(JSON.parse((await fast.next()).body).data.externalId).toBe('q2');
    expect(JSON.parse((await slow.next()).body).data.externalId).toBe('q2');
    await slow.close(); // the hanging attempts fail now, so stopping the worker does not wait for their timeout
  });

  it('the app starts its worker with WEBHOOK_WORKER_INTERVAL_MS and stops it before closing the database', async () => {
    const running = await startTestServer({
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_WORKER_INTERVAL_MS: '60000',
    });
    try {
      const receiver = await Receiver.start();
      const ws = await running.workspace();
      const res = await running.gql(CREATE, { input: { url: receiver.url } }, ws.keys.test.secret);
      expect(res.data!.createWebhookEndpoint.userErrors).toEqual([]);
      await running.gql(CREATE_PARTNER, { input: { externalId: 'pat' } }, ws.keys.test.secret);
      expect(JSON.parse((await receiver.next()).body).data.externalId).toBe('pat');
    } finally {
      await running.close();
    }
  });
});
