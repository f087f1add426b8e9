import { describe, expect, it } from 'vitest';
import { subscribe, subscriptionTestServer } from './helpers/ws.js';

const realtime = subscriptionTestServer();
const client = (token: string) => realtime.client(token);

const CREATE_PARTNER = `mutation($externalId: String!) { createPartner(input: { externalId: $externalId }) { partner { id } userErrors { code } } }`;
const EVENTS_SUB = `subscription($after: String, $types: [String!]) { events(after: $after, types: $types) { id cursor sequence type payload } }`;
type EventData = { events: { id: string; cursor: string; sequence: string; type: string; payload: string } };

/** The cursor of the newest event the credential can see (or of the start): subscribing after it misses nothing. */
async function latestCursor(token: string): Promise<string> {
  let after: string | null = null;
  for (;;) {
    const res: { data?: { events: { edges: Array<{ cursor: string }>; pageInfo: { hasNextPage: boolean } } } | null } =
      await realtime.server.gql(
        'query($after: String) { events(first: 100, after: $after) { edges { cursor } pageInfo { hasNextPage } } }',
        { after },
        token,
      );
    const { edges, pageInfo } = res.data!.events;
    if (edges.length) after = edges[edges.length - 1]!.cursor;
    if (!pageInfo.hasNextPage) return after ?? Buffer.from('evt:0').toString('base64url');
  }
}

async function createPartner(token: string, externalId: string): Promise<string> {
  const res = await realtime.server.gql<{ createPartner: { partner: { id: string } } }>(
    CREATE_PARTNER,
    { externalId },
    token,
  );
  return res.data!.createPartner.partner.id;
}

describe('Query.events', () => {
  it('pages through the outbox in sequence order with cursors', async () => {
    const ws = await realtime.server.workspace();
    for (const id of ['a', 'b', 'c']) await createPartner(ws.keys.test.secret, id);
    const first = await realtime.server.gql<{
      events: {
        edges: Array<{ cursor: string; node: { type: string; sequence: string; payload: string } }>;
        pageInfo: { hasNextPage: boolean; endCursor: string };
      };
    }>(
      '{ events(first: 2) { edges { cursor node { type sequence payload } } pageInfo { hasNextPage endCursor } } }',
      {},
      ws.keys.test.secret,
    );
    expect(first.data!.events.edges.map((e) => e.node.sequence)).toEqual(['1', '2']);
    expect(first.data!.events.edges[0]!.node.type).toBe('partner.created');
    expect(JSON.parse(first.data!.events.edges[0]!.node.payload)).toMatchObject({
      externalId: 'a',
      partnerId: expect.any(String),
    });
    expect(first.data!.events.pageInfo.hasNextPage).toBe(true);
    const rest = await realtime.server.gql<{ events: { edges: Array<{ node: { sequence: string } }> } }>(
      'query($after: String) { events(first: 10, after: $after) { edges { node { sequence } } } }',
      { after: first.data!.events.pageInfo.endCursor },
      ws.keys.test.secret,
    );
    expect(rest.data!.events.edges.map((e) => e.node.sequence)).toEqual(['3']);
    // The other mode has its own stream.
    const live = await realtime.server.gql<{ events: { edges: unknown[] } }>(
      '{ events { edges { cursor } } }',
      {},
      ws.keys.live.secret,
    );
    expect(live.data!.events.edges).toEqual([]);
  });

  it('refuses a cursor that is not one', async () => {
    const ws = await realtime.server.workspace();
    const res = await realtime.server.gql('{ events(after: "zzz") { edges { cursor } } }', {}, ws.keys.test.secret);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('refuses a cursor whose number no event can have (past bigint), naming the argument, over HTTP and on a socket', async () => {
    const ws = await realtime.server.workspace();
    const token = ws.keys.test.secret;
    const cursor = (n: string) => Buffer.from(`evt:${n}`).toString('base64url');
    for (const n of ['9223372036854775808', '9999999999999999999', '99999999999999999999999']) {
      const res = await realtime.server.gql(
        'query($after: String) { events(after: $after) { edges { cursor } } }',
        { after: cursor(n) },
        token,
      );
      expect(res.errors).toMatchObject([
        {
          message: `after: "${cursor(n)}" is not an event cursor: pass an Event.cursor you received.`,
          extensions: { code: 'BAD_USER_INPUT', field: ['after'] },
        },
      ]);
      const sub = subscribe(client(token), EVENTS_SUB, { after: cursor(n) });
      expect((await sub.next()).errors).toMatchObject([{ extensions: { code: 'BAD_USER_INPUT', field: ['after'] } }]);
    }
    // The largest bigint is a cursor (after which there is nothing).
    const max = await realtime.server.gql<{ events: { edges: unknown[] } }>(
      'query($after: String) { events(after: $after) { edges { cursor } } }',
      { after: cursor('9223372036854775807') },
      token,
    );
    expect(max.errors).toBeUndefined();
    expect(max.data!.events.edges).toEqual([]);
  });
});

describe('Subscription.events', () => {
  it('delivers live events of the caller’s tenant only', async () => {
    const a = await realtime.server.workspace('A');
    const b = await realtime.server.workspace('B');
    const sub = subscribe<EventData>(client(a.keys.test.secret), EVENTS_SUB, {
      after: await latestCursor(a.keys.test.secret),
    });
    await createPartner(a.keys.test.secret, 'first');
    expect((await sub.next()).data?.events).toMatchObject({ type: 'partner.created', sequence: '1' });
    await createPartner(b.keys.test.secret, 'b-only');
    await createPartner(a.keys.live.secret, 'live-only');
    await createPartner(a.keys.test.secret, 'second');
    const next = await sub.next();
    expect(next.data?.events).toMatchObject({ type: 'partner.created', sequence: '2' });
    expect(JSON.parse(next.data!.events.payload).externalId).toBe('second');
    await sub.close();
  });

  it('resumes after a cursor: replays what was committed while away, then goes live, no gap and no duplicate', async () => {
    const ws = await realtime.server.workspace();
    const token = ws.keys.test.secret;
    await createPartner(token, 'p1');
    const cursor = (
      await realtime.server.gql<{ events: { edges: Array<{ cursor: string }> } }>(
        '{ events { edges { cursor } } }',
        {},
        token,
      )
    ).data!.events.edges[0]!.cursor;
    // Committed while "disconnected".
    await createPartner(token, 'p2');
    await createPartner(token, 'p3');
    const sub = subscribe<EventData>(client(token), EVENTS_SUB, { after: cursor });
    const seen: string[] = [];
    seen.push((await sub.next()).data!.events.sequence, (await sub.next()).data!.events.sequence);
    await createPartner(token, 'p4');
    seen.push((await sub.next()).data!.events.sequence);
    expect(seen).toEqual(['2', '3', '4']);
    await sub.close();
  });

  it('filters by type', async () => {
    const ws = await realtime.server.workspace();
    const token = ws.keys.test.secret;
    const partnerId = await createPartner(token, 'x');
    const sub = subscribe<EventData>(client(token), EVENTS_SUB, {
      types: ['partner.status_changed'],
      after: await latestCursor(token),
    });
    await realtime.server.gql(
      'mutation($id: ID!) { setPartnerStatus(input: { partnerId: $id, status: INACTIVE }) { userErrors { code } } }',
      { id: partnerId },
      token,
    );
    const event = (await sub.next()).data!.events;
    expect(event.type).toBe('partner.status_changed');
    expect(JSON.parse(event.payload)).toMatchObject({ from: 'ACTIVE', to: 'INACTIVE' });
    await sub.close();
  });

  it('gives a PARTNER token only its own partner’s events', async () => {
    const ws = await realtime.server.workspace();
    const admin = ws.keys.test.secret;
    const mine = await createPartner(admin, 'mine');
    const other = await createPartner(admin, 'other');
    const token = (
      await realtime.server.gql<{ createPartnerToken: { token: string } }>(
        'mutation($id: ID!) { createPartnerToken(input: { partnerId: $id }) { token } }',
        { id: mine },
        admin,
      )
    ).data!.createPartnerToken.token;
    const sub = subscribe<EventData>(client(token), EVENTS_SUB, { after: await latestCursor(token) });
    const setStatus = (id: string, status: string) =>
      realtime.server.gql(
        'mutation($id: ID!, $s: PartnerStatus!) { setPartnerStatus(input: { partnerId: $id, status: $s }) { userErrors { code } } }',
        { id, s: status },
        admin,
      );
    await setStatus(mine, 'INACTIVE');
    expect(JSON.parse((await sub.next()).data!.events.payload)).toMatchObject({ partnerId: mine, to: 'INACTIVE' });
    await setStatus(other, 'BANNED');
    await setStatus(mine, 'ACTIVE');
    expect(JSON.parse((await sub.next()).data!.events.payload)).toMatchObject({ partnerId: mine, to: 'ACTIVE' });
    await sub.close();
  });
});
