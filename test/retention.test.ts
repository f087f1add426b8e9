// Retention (src/modules/events/retention.ts): old events and finished webhook deliveries are
// deleted in batches, never what is not yet dispatched nor a pending delivery; a cursor from before
// the horizon is CURSOR_EXPIRED. REDIS_PREFIX keeps installations sharing one Redis apart.
//
// The server's own retention job is off (RETENTION_INTERVAL_SECONDS=0 in startTestServer): tests
// call runOnce on jobs of their own, with rows made old by moving their timestamps back.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db.js';
import type { Mode } from '../src/generated/prisma/enums.js';
import type { Tenant } from '../src/domain/tenant.js';
import { CURSORS_KEY } from '../src/modules/events/dispatcher.js';
import { eventCursor } from '../src/modules/events/events.graphql.js';
import { appendEvents } from '../src/modules/events/outbox.js';
import { RetentionJob, retentionHorizon, type RetentionJobOptions } from '../src/modules/events/retention.js';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import type { OutboxEvent } from '../src/pubsub.js';
import { redisReachable, testRedisUrl } from './helpers/backend.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { subscribe, wsClient } from './helpers/ws.js';

let server: TestServer;
let db: Database;

beforeAll(async () => {
  server = await startTestServer({
    WEBHOOK_WORKER_INTERVAL_MS: '0',
    EVENT_RETENTION_DAYS: '90',
    WEBHOOK_DELIVERY_RETENTION_DAYS: '30',
  });
  db = server.testDb.db;
});
afterAll(async () => {
  await server?.close();
});

const tenantOf = (ws: CreatedWorkspace, mode: Mode = 'TEST'): Tenant => ({ workspaceId: ws.workspace.id, mode });

/** `count` committed events in the tenant, in transactions of up to 50. */
async function append(tenant: Tenant, count: number): Promise<void> {
  for (let done = 0; done < count; done += 50) {
    const n = Math.min(50, count - done);
    await db.prisma.$transaction((tx) =>
      appendEvents(
        tx,
        tenant,
        Array.from({ length: n }, (_, i) => ({ type: 'balance.credited' as const, payload: { i: done + i } })),
      ),
    );
  }
}

/** Move the tenant's events up to `through` back by `days`. */
async function age(tenant: Tenant, through: number, days: number): Promise<void> {
  await db.query(
    `UPDATE "Event" SET "occurredAt" = "occurredAt" - make_interval(days => $4)
      WHERE "workspaceId" = $1::uuid AND "mode" = $2::"Mode" AND "sequence" <= $3`,
    [tenant.workspaceId, tenant.mode, through, days],
  );
}

async function sequences(tenant: Tenant): Promise<number[]> {
  const rows = await db.query<{ s: string }>(
    `SELECT "sequence"::text AS "s" FROM "Event" WHERE "workspaceId" = $1::uuid AND "mode" = $2::"Mode" ORDER BY "Event"."sequence"`,
    [tenant.workspaceId, tenant.mode],
  );
  return rows.map((row) => Number(row.s));
}

/** A retention job of the test's own on the server's database, recording what each event transaction deleted. */
function job(
  options: Partial<RetentionJobOptions> = {},
  database: Database = db,
): { job: RetentionJob; batches: number[] } {
  const batches: number[] = [];
  const recording: Database = {
    ...database,
    transaction: async (fn) => {
      const result = await database.transaction(fn);
      // event batches only (the click partitions' maintenance is a transaction too)
      if (typeof result === 'object' && result !== null && 'deleted' in result) batches.push(result.deleted as number);
      return result;
    },
  };
  return {
    batches,
    job: new RetentionJob(recording, {
      eventDays: 90,
      webhookDeliveryDays: 30,
      intervalMs: 0,
      dispatchedThrough: (workspaceId, mode) => server.app.dispatcher.dispatchedThrough(workspaceId, mode),
      ...options,
    }),
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A webhook endpoint of the tenant, its fan-out cursor at `lastSequence`. */
async function endpoint(tenant: Tenant, lastSequence: number, enabled = true): Promise<string> {
  const row = await db.prisma.webhookEndpoint.create({
    data: {
      ...tenant,
      url: 'http://127.0.0.1:9/hook',
      eventTypes: [],
      secret: 'whsec_test',
      enabled,
      lastSequence: BigInt(lastSequence),
    },
  });
  return row.id;
}

/** A delivery of the tenant's event `sequence`, with its status, last changed `daysAgo`. */
async function delivery(
  tenant: Tenant,
  endpointId: string,
  sequence: number,
  status: 'PENDING' | 'SUCCEEDED' | 'FAILED',
  daysAgo: number,
): Promise<string> {
  const [event] = await db.query<{ id: string }>(
    `SELECT "id" FROM "Event" WHERE "workspaceId" = $1::uuid AND "mode" = $2::"Mode" AND "sequence" = $3`,
    [tenant.workspaceId, tenant.mode, sequence],
  );
  const row = await db.prisma.webhookDelivery.create({ data: { ...tenant, endpointId, eventId: event!.id, status } });
  await db.query(`UPDATE "WebhookDelivery" SET "updatedAt" = now() - make_interval(days => $2) WHERE "id" = $1::uuid`, [
    row.id,
    daysAgo,
  ]);
  return row.id;
}

describe('the retention job', () => {
  it('deletes old, dispatched events only, in batches, and raises the horizon over them', async () => {
    const a = tenantOf(await server.workspace('A'));
    const b = tenantOf(await server.workspace('B'));
    const c = tenantOf(await server.workspace('C'));
    await append(a, 35);
    await age(a, 25, 100); // 1..25 are 100 days old, 26..35 new
    await append(b, 5);
    await age(b, 5, 91);
    await endpoint(b, 2); // an enabled endpoint has turned only 1..2 into deliveries
    await endpoint(b, 0, false); // a disabled one holds nothing back
    await append(c, 6);
    await age(c, 6, 200);
    await server.app.dispatcher.drain();

    const { job: retention, batches } = job({
      batchSize: 10,
      // Subscribers of C have been handed 1..3 only.
      dispatchedThrough: async (workspaceId, mode) =>
        workspaceId === c.workspaceId ? 3n : server.app.dispatcher.dispatchedThrough(workspaceId, mode),
    });
    const result = await retention.runOnce();
    expect(result).toEqual({ events: 25 + 2 + 3, deliveries: 0, clicks: 0 });
    expect(await sequences(a)).toEqual(range(26, 35));
    expect(await sequences(b)).toEqual(range(3, 5));
    expect(await sequences(c)).toEqual(range(4, 6));
    // No statement deleted more than a batch; A took three.
    expect(Math.max(...batches)).toBeLessThanOrEqual(10);
    expect(batches.filter((n) => n > 0).sort((x, y) => x - y)).toEqual([2, 3, 5, 10, 10]);
    expect(await retentionHorizon(db, a)).toBe(25n);
    expect(await retentionHorizon(db, b)).toBe(2n);
    expect(await retentionHorizon(db, c)).toBe(3n);
    // Nothing more to do; the other mode was never touched.
    expect(await retention.runOnce()).toEqual({ events: 0, deliveries: 0, clicks: 0 });
    expect(await retentionHorizon(db, { ...a, mode: 'LIVE' })).toBe(0n);

    // Retention off (0 days): nothing deleted, however old.
    const forever = job({ eventDays: 0, webhookDeliveryDays: 0 }).job;
    expect(await forever.runOnce(new Date(Date.now() + 1000 * 86_400_000))).toEqual({
      events: 0,
      deliveries: 0,
      clicks: 0,
    });
    expect(await sequences(a)).toEqual(range(26, 35));

    // Once C's subscribers have been handed its events, they go too.
    expect(await job().job.runOnce()).toEqual({ events: 3, deliveries: 0, clicks: 0 });
    expect(await sequences(c)).toEqual([]);
  });

  it('deletes finished deliveries past their retention, never pending ones, and keeps an event while a delivery points at it', async () => {
    const t = tenantOf(await server.workspace('Deliveries'));
    await append(t, 6);
    await age(t, 6, 100);
    await server.app.dispatcher.drain();
    const hook = await endpoint(t, 6);
    await delivery(t, hook, 1, 'SUCCEEDED', 40);
    await delivery(t, hook, 2, 'FAILED', 31);
    const pending = await delivery(t, hook, 3, 'PENDING', 40); // retrying, or waiting for its endpoint
    const recent = await delivery(t, hook, 4, 'SUCCEEDED', 29);

    const { job: retention } = job();
    expect(await retention.runOnce()).toEqual({ events: 4, deliveries: 2, clicks: 0 });
    const left = await db.prisma.webhookDelivery.findMany({
      where: { endpointId: hook },
      select: { id: true },
      orderBy: { id: 'asc' },
    });
    expect(left.map((d) => d.id).sort()).toEqual([pending, recent].sort());
    // 3 and 4 stay for their deliveries; the stream is cut after 6 all the same.
    expect(await sequences(t)).toEqual([3, 4]);
    expect(await retentionHorizon(db, t)).toBe(6n);

    // Once their deliveries are done and old, a later run deletes them.
    await db.query(
      `UPDATE "WebhookDelivery" SET "status" = 'SUCCEEDED', "updatedAt" = now() - interval '31 days' WHERE "endpointId" = $1::uuid`,
      [hook],
    );
    expect(await retention.runOnce()).toEqual({ events: 2, deliveries: 2, clicks: 0 });
    expect(await sequences(t)).toEqual([]);
  });

  it('runs on several instances at once without failing or counting a row twice', async () => {
    const tenants = await Promise.all(['P', 'Q', 'R'].map(async (name) => tenantOf(await server.workspace(name))));
    let oldDeliveries = 0;
    for (const t of tenants) {
      await append(t, 40);
      await age(t, 30, 100);
      const hook = await endpoint(t, 40);
      // Deliveries of the new events only (an event with a delivery is kept): 10 old, finished ones.
      for (const sequence of range(31, 40))
        await delivery(t, hook, sequence, sequence % 2 ? 'SUCCEEDED' : 'FAILED', 45);
      oldDeliveries += 10;
    }
    await server.app.dispatcher.drain();
    const one = job({ batchSize: 7 }).job;
    const two = job({ batchSize: 7 }).job;
    const results = await Promise.all([one.runOnce(), two.runOnce(), one.runOnce(), two.runOnce()]);
    expect(results.reduce((sum, r) => sum + r.events, 0)).toBe(3 * 30);
    expect(results.reduce((sum, r) => sum + r.deliveries, 0)).toBe(oldDeliveries);
    for (const t of tenants) {
      expect(await sequences(t)).toEqual(range(31, 40));
      expect(await retentionHorizon(db, t)).toBe(30n);
    }
  });

  it('stops between batches when the app stops', async () => {
    const t = tenantOf(await server.workspace('Stop'));
    await append(t, 30);
    await age(t, 30, 100);
    await server.app.dispatcher.drain();
    const { job: retention, batches } = job({ batchSize: 5 });
    const run = retention.runOnce();
    await retention.stop();
    const result = await run;
    // It finished the batch it was in and did not go on to the next ones.
    expect(result.events).toBeLessThan(30);
    expect(batches.length).toBeLessThanOrEqual(1);
  });
});

describe('events(after:) past the horizon', () => {
  const EVENTS =
    'query($after: String) { events(first: 5, after: $after) { edges { node { sequence } } pageInfo { hasPreviousPage } } }';
  type EventsData = {
    events: { edges: Array<{ node: { sequence: string } }>; pageInfo: { hasPreviousPage: boolean } };
  };

  it('answers CURSOR_EXPIRED for a cursor before the horizon, over HTTP and on a socket; from the start, the stream begins after it', async () => {
    const ws = await server.workspace('Expired');
    const t = tenantOf(ws);
    const token = ws.keys.test.secret;
    await append(t, 12);
    await age(t, 8, 100);
    await server.app.dispatcher.drain();
    // Before retention ran, an old cursor is fine.
    expect(
      (await server.gql<EventsData>(EVENTS, { after: eventCursor(2n) }, token)).data!.events.edges[0]!.node.sequence,
    ).toBe('3');
    await job().job.runOnce();

    const expired = await server.gql<EventsData>(EVENTS, { after: eventCursor(2n) }, token);
    expect(expired.data).toBeNull();
    expect(expired.errors).toHaveLength(1);
    expect(expired.errors![0]!.extensions).toMatchObject({ code: 'CURSOR_EXPIRED', field: ['after'], horizon: '8' });
    expect(expired.errors![0]!.message).toContain('older than the retention window (events are kept 90 days');
    expect(expired.errors![0]!.message).toContain('omit after');
    // At the horizon and after it: as before.
    const atHorizon = await server.gql<EventsData>(EVENTS, { after: eventCursor(8n) }, token);
    expect(atHorizon.errors).toBeUndefined();
    expect(atHorizon.data!.events.edges.map((e) => e.node.sequence)).toEqual(['9', '10', '11', '12']);
    const fromStart = await server.gql<EventsData>(EVENTS, {}, token);
    expect(fromStart.data!.events.edges.map((e) => e.node.sequence)).toEqual(['9', '10', '11', '12']);
    expect(fromStart.data!.events.pageInfo.hasPreviousPage).toBe(false);
    // The other mode has its own horizon.
    expect(
      (await server.gql<EventsData>(EVENTS, { after: eventCursor(0n) }, ws.keys.live.secret)).errors,
    ).toBeUndefined();

    const client = wsClient(server.url, token);
    try {
      const SUB = 'subscription($after: String) { events(after: $after) { sequence } }';
      const stale = subscribe<{ events: { sequence: string } }>(client, SUB, { after: eventCursor(0n) });
      const refused = await stale.next();
      expect(refused.errors).toMatchObject([{ extensions: { code: 'CURSOR_EXPIRED', field: ['after'] } }]);
      const resumed = subscribe<{ events: { sequence: string } }>(client, SUB, { after: eventCursor(10n) });
      expect((await resumed.next()).data?.events.sequence).toBe('11');
      expect((await resumed.next()).data?.events.sequence).toBe('12');
      await resumed.close();
    } finally {
      await client.dispose();
    }
  });
});

const redisSkip = (await redisReachable(testRedisUrl))
  ? null
  : `Redis is not reachable at ${testRedisUrl} (TEST_REDIS_URL)`;

describe.skipIf(redisSkip !== null)(`REDIS_PREFIX${redisSkip ? ` (skipped: ${redisSkip})` : ''}`, () => {
  const run = randomBytes(4).toString('hex');
  const servers: TestServer[] = [];
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(testRedisUrl);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    const keys = await redis.keys(`rgtest-${run}-*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  async function instance(prefix: string): Promise<TestServer> {
    const s = await startTestServer({
      REDIS_URL: testRedisUrl,
      REDIS_PREFIX: `rgtest-${run}-${prefix}:`,
      WEBHOOK_WORKER_INTERVAL_MS: '0',
    });
    servers.push(s);
    return s;
  }

  const event = (n: number): OutboxEvent => ({
    id: `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`,
    workspaceId: '00000000-0000-7000-8000-000000000000',
    mode: 'TEST',
    sequence: String(n),
    type: 'balance.credited',
    programId: null,
    partnerId: null,
    occurredAt: new Date().toISOString(),
    payload: { n },
  });

  /** What `listener` hears on the tenant channel `channel` from a publish on `publisher`, checked after a marker of its own. */
  async function heard(publisher: TestServer, listener: TestServer, channel: string): Promise<string[]> {
    const iteratorOf = (s: TestServer): AsyncIterator<OutboxEvent> =>
      s.app.services.pubsub.subscribe('outbox', channel)[Symbol.asyncIterator]();
    const own = iteratorOf(publisher);
    const other = iteratorOf(listener);
    // A subscription starts listening with its first next().
    const ownFirst = own.next();
    let otherNext = other.next();
    await publisher.app.services.pubsub.listening('outbox', channel);
    await listener.app.services.pubsub.listening('outbox', channel);
    publisher.app.services.pubsub.publish('outbox', channel, event(1));
    // Once the publisher hears its own message, Redis has handed it to every subscriber of that channel.
    expect((await ownFirst).value.sequence).toBe('1');
    // Then the listener publishes a marker of its own: whatever it heard from the publisher came first.
    listener.app.services.pubsub.publish('outbox', channel, event(2));
    const seen: string[] = [];
    for (;;) {
      const { value } = await otherNext;
      seen.push(value.sequence);
      if (value.sequence === '2') break;
      otherNext = other.next();
    }
    await Promise.all([own.return?.(), other.return?.()]);
    return seen;
  }

  it('two installations with different prefixes on one Redis do not hear each other; the same prefix does', async () => {
    const a = await instance('a');
    const b = await instance('b');
    const a2 = await instance('a');
    expect(await heard(a, b, 'tenant-x')).toEqual(['2']);
    expect(await heard(a, a2, 'tenant-y')).toEqual(['1', '2']);
  });

  it('keeps the dispatch cursors under the prefix', async () => {
    const s = await instance('c');
    const ws = await s.workspace();
    await s.gql('mutation { createPartner(input: { externalId: "p" }) { partner { id } } }', {}, ws.keys.test.secret);
    await s.app.dispatcher.drain();
    const cursors = await redis.hgetall(`rgtest-${run}-c:${CURSORS_KEY}`);
    expect(cursors[`${ws.workspace.id}:TEST`]).toBe('1');
    expect(await redis.hget(`refgraph:${CURSORS_KEY}`, `${ws.workspace.id}:TEST`)).toBeNull();
  });
});
