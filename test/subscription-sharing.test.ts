import { describe, expect, it } from 'vitest';
import { eventCursor } from '../src/modules/events/events.graphql.js';
import { appendEvents } from '../src/modules/events/outbox.js';
import { subscribe, subscriptionTestServer, type Subscription } from './helpers/ws.js';

// Subscription events are executed once per group of subscribers with the same document,
// variables and credential (src/realtime/shared-execution.ts). These tests count the executions:
// shared where the results are necessarily identical, never across tenants, modes, roles or
// partners — and each subscriber sees only its own events.

const realtime = subscriptionTestServer();
const client = (token: string) => realtime.client(token);

/** One document and one set of variables for every subscriber below: from the start of the stream, one event type. */
const DOC =
  'subscription($after: String, $types: [String!]) { events(after: $after, types: $types) { sequence type payload } }';
const VARIABLES = { after: eventCursor(0n), types: ['balance.credited'] };
type EventData = { events: { sequence: string; type: string; payload: string } };

type Mode = 'TEST' | 'LIVE';
interface Marked {
  tenant: { workspaceId: string; mode: Mode };
  partnerId?: string;
  mark: string;
}

/** Append `balance.credited` events (one transaction each, as mutations do) and publish them. */
async function append(...events: Marked[]): Promise<void> {
  for (const { tenant, partnerId, mark } of events) {
    await realtime.server.testDb.db.prisma.$transaction((tx) =>
      appendEvents(tx, tenant, [{ type: 'balance.credited', partnerId: partnerId ?? null, payload: { mark } }]),
    );
  }
  await realtime.server.app.dispatcher.drain();
}

/** The marks of the next `count` events a subscriber receives. */
async function marks(sub: Subscription<EventData>, count: number): Promise<string[]> {
  const seen: string[] = [];
  while (seen.length < count) {
    const result = await sub.next();
    if (result.errors) throw new Error(`subscription error: ${JSON.stringify(result.errors)}`);
    seen.push((JSON.parse(result.data!.events.payload) as { mark: string }).mark);
  }
  return seen;
}

async function ok<T>(query: string, variables: Record<string, unknown>, token: string): Promise<T> {
  const res = await realtime.server.gql<T>(query, variables, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

/** A partner of the workspace: its global id and its row id. */
async function partner(token: string, externalId: string): Promise<{ id: string; rowId: string }> {
  const { createPartner } = await ok<{ createPartner: { partner: { id: string } } }>(
    'mutation($e: String!) { createPartner(input: { externalId: $e }) { partner { id } } }',
    { e: externalId },
    token,
  );
  const id = createPartner.partner.id;
  return { id, rowId: Buffer.from(id, 'base64').toString().split(':')[1]! };
}

describe('shared subscription execution', () => {
  it('executes each event once for many identical subscribers, and every one of them receives it', async () => {
    const ws = await realtime.server.workspace();
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const subs = Array.from({ length: 8 }, () => subscribe<EventData>(client(ws.keys.test.secret), DOC, VARIABLES));
    // Every subscriber has this event (by replay or live): from here on, all of them are live.
    await append({ tenant, mark: 'sync' });
    for (const sub of subs) expect(await marks(sub, 1)).toEqual(['sync']);

    const stats = realtime.server.app.subscriptionExecution;
    const before = { executions: stats.executions, reused: stats.reused };
    await append({ tenant, mark: 'one' }, { tenant, mark: 'two' }, { tenant, mark: 'three' });
    for (const sub of subs) expect(await marks(sub, 3)).toEqual(['one', 'two', 'three']);
    // One execution per event, not one per subscriber; the 7 others reuse it.
    expect(stats.executions - before.executions).toBe(3);
    expect(stats.reused - before.reused).toBe(3 * 7);
    await Promise.all(subs.map((s) => s.close()));
  });

  it('never shares across tenants, modes, roles or partners: each subscriber sees only its own events', async () => {
    const a = await realtime.server.workspace('A');
    const b = await realtime.server.workspace('B');
    const aTest = { workspaceId: a.workspace.id, mode: 'TEST' as const };
    const aLive = { workspaceId: a.workspace.id, mode: 'LIVE' as const };
    const bTest = { workspaceId: b.workspace.id, mode: 'TEST' as const };
    const admin = a.keys.test.secret;
    const p1 = await partner(admin, 'p1');
    const p2 = await partner(admin, 'p2');
    const partnerToken = async (id: string) =>
      (
        await ok<{ createPartnerToken: { token: string } }>(
          'mutation($id: ID!) { createPartnerToken(input: { partnerId: $id }) { token } }',
          { id },
          admin,
        )
      ).createPartnerToken.token;
    const readOnly = (
      await ok<{ createApiKey: { secret: string } }>(
        'mutation { createApiKey(input: { name: "reader", role: READ_ONLY }) { secret } }',
        {},
        admin,
      )
    ).createApiKey.secret;
    const p1Token = await partnerToken(p1.id);
    const p2Token = await partnerToken(p2.id);

    // The same document and variables everywhere. Two subscribers share each of two credentials.
    const sub = (token: string) => subscribe<EventData>(client(token), DOC, VARIABLES);
    const s = {
      admin1: sub(admin),
      admin2: sub(admin),
      reader: sub(readOnly),
      p1a: sub(p1Token),
      p1b: sub(p1Token),
      p2: sub(p2Token),
      live: sub(a.keys.live.secret),
      other: sub(b.keys.test.secret),
    };
    // Everyone live (each has its sync event, by replay or live).
    await append(
      { tenant: aTest, partnerId: p1.rowId, mark: 'sync-p1' },
      { tenant: aTest, partnerId: p2.rowId, mark: 'sync-p2' },
      { tenant: aLive, mark: 'sync-live' },
      { tenant: bTest, mark: 'sync-b' },
    );
    for (const x of [s.admin1, s.admin2, s.reader]) expect(await marks(x, 2)).toEqual(['sync-p1', 'sync-p2']);
    for (const x of [s.p1a, s.p1b]) expect(await marks(x, 1)).toEqual(['sync-p1']);
    expect(await marks(s.p2, 1)).toEqual(['sync-p2']);
    expect(await marks(s.live, 1)).toEqual(['sync-live']);
    expect(await marks(s.other, 1)).toEqual(['sync-b']);

    const stats = realtime.server.app.subscriptionExecution;
    const before = stats.executions;
    await append(
      { tenant: aTest, partnerId: p1.rowId, mark: 'a-p1' },
      { tenant: aTest, partnerId: p2.rowId, mark: 'a-p2' },
      { tenant: aTest, mark: 'a-none' },
      { tenant: aLive, mark: 'a-live' },
      { tenant: bTest, mark: 'b' },
      // Last in each stream, so whatever a subscriber was wrongly given would show before them.
      { tenant: aTest, partnerId: p1.rowId, mark: 'end-p1' },
      { tenant: aTest, partnerId: p2.rowId, mark: 'end-p2' },
      { tenant: aLive, mark: 'end-live' },
      { tenant: bTest, mark: 'end-b' },
    );
    for (const x of [s.admin1, s.admin2, s.reader])
      expect(await marks(x, 5)).toEqual(['a-p1', 'a-p2', 'a-none', 'end-p1', 'end-p2']);
    for (const x of [s.p1a, s.p1b]) expect(await marks(x, 2)).toEqual(['a-p1', 'end-p1']);
    expect(await marks(s.p2, 2)).toEqual(['a-p2', 'end-p2']);
    expect(await marks(s.live, 2)).toEqual(['a-live', 'end-live']);
    expect(await marks(s.other, 2)).toEqual(['b', 'end-b']);

    // One execution per event and credential that sees it: admin (2 subscribers), reader, p1
    // (2 subscribers), p2, live, other. The P1 events: admin, reader, p1 = 3 each; the P2 events:
    // admin, reader, p2 = 3 each; a-none: admin, reader = 2; a-live, end-live, b, end-b: 1 each.
    expect(stats.executions - before).toBe(3 + 3 + 3 + 3 + 2 + 1 + 1 + 1 + 1);
    await Promise.all(Object.values(s).map((x) => x.close()));
  });
});
