import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runAt } from '../src/realtime/connections.js';
import { factories } from './helpers/factories.js';
import { partnerToken } from './helpers/money.js';
import { startTestServer, type TestServer } from './helpers/server.js';

interface RawSocket {
  socket: WebSocket;
  /** The next message of this type, waiting for it (a failed test, not a hang, after 10 s). */
  next(type: string, id?: string): Promise<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
  send(message: Record<string, unknown>): void;
  subscribe(id: string, query: string, variables?: Record<string, unknown>): void;
}

/** A graphql-transport-ws socket, acknowledged, with every message it receives kept in order. */
async function connect(server: TestServer, token: string): Promise<RawSocket> {
  const socket = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const received: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (data) => {
    received.push(JSON.parse(String(data)) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const send = (message: Record<string, unknown>) => socket.send(JSON.stringify(message));
  const next = async (type: string, id?: string) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const index = received.findIndex((m) => m['type'] === type && (id === undefined || m['id'] === id));
      if (index >= 0) return received.splice(index, 1)[0]!;
      if (Date.now() > deadline) throw new Error(`no ${type} message; got ${JSON.stringify(received)}`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => waiters.push(resolve)),
        closed.then(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - Date.now()))),
      ]);
      clearTimeout(timer);
      if (socket.readyState === WebSocket.CLOSED && !received.some((m) => m['type'] === type))
        throw new Error(`socket closed before a ${type} message`);
    }
  };
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
  await next('connection_ack');
  return {
    socket,
    next,
    closed,
    send,
    subscribe: (id, query, variables) => send({ id, type: 'subscribe', payload: { query, variables } }),
  };
}

describe('credentials with an expiry on a WebSocket', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.close());

  it('closes a partner token’s socket with 4403 when it expires, with its subscription on it', async () => {
    const ws = await server.workspace();
    const f = factories(server.testDb.db.prisma, { workspaceId: ws.workspace.id, mode: 'TEST' });
    const partner = await f.partner();
    // A token that lives two seconds (the API's minimum is 60: signed here with the server's own signer).
    const { token, expiresAt } = await server.app.services.tokens.sign(
      {
        typ: 'partner',
        apiKeyId: ws.keys.test.id,
        workspaceId: ws.workspace.id,
        mode: 'TEST',
        role: 'PARTNER',
        partnerId: partner.id,
      },
      2,
    );
    const raw = await connect(server, token);
    raw.subscribe('events', 'subscription { events { type } }');
    raw.subscribe('q', '{ viewer { role } }');
    expect(await raw.next('next', 'q')).toMatchObject({ payload: { data: { viewer: { role: 'PARTNER' } } } });
    const closed = await raw.closed;
    expect(closed).toEqual({ code: 4403, reason: 'The token has expired: reconnect with a new one.' });
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt.getTime());
    // And the same token cannot open a new one.
    const again = new WebSocket(`${server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    again.on('open', () =>
      again.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })),
    );
    const refused = await new Promise<{ code: number; reason: string }>((resolve) =>
      again.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
    );
    expect(refused.code).toBe(4403);
    expect(refused.reason).toMatch(/expired/);
  });

  it('schedules an expiry past setTimeout’s 24.8-day range without firing early', async () => {
    let fired = false;
    const cancel = runAt(new Date(Date.now() + 30 * 86_400_000), () => (fired = true));
    // A timer over 2^31-1 ms would fire after 1 ms (Node's TimeoutOverflowWarning).
    await new Promise((resolve) => setTimeout(resolve, 50));
    cancel();
    expect(fired).toBe(false);
    const now = await new Promise<boolean>((resolve) => runAt(new Date(Date.now() + 5), () => resolve(true)));
    expect(now).toBe(true);
  });

  it('revokes every access token of a family when one of its refresh tokens is replayed, and closes their sockets', async () => {
    const ws = await server.workspace();
    const ISSUE =
      'mutation($input: IssueAccessTokenInput!) { issueAccessToken(input: $input) { accessToken refreshToken userErrors { code } } }';
    const REFRESH =
      'mutation($input: RefreshAccessTokenInput!) { refreshAccessToken(input: $input) { accessToken refreshToken userErrors { code message } } }';
    type Tokens = { accessToken: string; refreshToken: string; userErrors: Array<{ code: string; message: string }> };
    const issued = (
      await server.gql<{ issueAccessToken: Tokens }>(ISSUE, {
        input: { accessKeyId: ws.keys.test.accessKeyId, secret: ws.keys.test.secret },
      })
    ).data!.issueAccessToken;
    const rotated = (
      await server.gql<{ refreshAccessToken: Tokens }>(REFRESH, { input: { refreshToken: issued.refreshToken } })
    ).data!.refreshAccessToken;
    // Another family of the same key is not affected.
    const other = (
      await server.gql<{ issueAccessToken: Tokens }>(ISSUE, {
        input: { accessKeyId: ws.keys.test.accessKeyId, secret: ws.keys.test.secret },
      })
    ).data!.issueAccessToken;
    const viewer = async (token: string) =>
      await server.gql<{ viewer: { role: string } }>('{ viewer { role } }', {}, token);
    expect((await viewer(rotated.accessToken)).data).toEqual({ viewer: { role: 'ADMIN' } });
    const socket = await connect(server, issued.accessToken);
    const otherSocket = await connect(server, other.accessToken);

    const replay = (
      await server.gql<{ refreshAccessToken: Tokens }>(REFRESH, { input: { refreshToken: issued.refreshToken } })
    ).data!.refreshAccessToken;
    expect(replay.userErrors.map((e) => e.code)).toEqual(['INVALID_CREDENTIALS']);

    expect(await socket.closed).toMatchObject({ code: 4403 });
    for (const token of [issued.accessToken, rotated.accessToken]) {
      const refused = await viewer(token);
      expect(refused.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
      expect(refused.errors?.[0]?.message).toMatch(/refresh token of its family was used twice/);
    }
    // The rotated refresh token is revoked too; the other family still works.
    expect(
      (await server.gql<{ refreshAccessToken: Tokens }>(REFRESH, { input: { refreshToken: rotated.refreshToken } }))
        .data!.refreshAccessToken.userErrors[0]!.code,
    ).toBe('INVALID_CREDENTIALS');
    expect((await viewer(other.accessToken)).data).toEqual({ viewer: { role: 'ADMIN' } });
    otherSocket.subscribe('q', '{ viewer { role } }');
    expect(await otherSocket.next('next', 'q')).toMatchObject({ payload: { data: { viewer: { role: 'ADMIN' } } } });
    otherSocket.socket.close();
  });

  it('refuses an access token of a revoked family on an instance that did not see the replay (from the database)', async () => {
    const other = await startTestServer({ AUTH_CACHE_TTL_MS: '0' });
    try {
      const ws = await other.workspace();
      const ISSUE =
        'mutation($input: IssueAccessTokenInput!) { issueAccessToken(input: $input) { accessToken refreshToken } }';
      const issued = (
        await other.gql<{ issueAccessToken: { accessToken: string; refreshToken: string } }>(ISSUE, {
          input: { accessKeyId: ws.keys.test.accessKeyId, secret: ws.keys.test.secret },
        })
      ).data!.issueAccessToken;
      // The replay as another instance would leave it: the family's refresh tokens revoked in the database.
      await other.testDb.db.prisma.refreshToken.updateMany({
        where: { apiKeyId: ws.keys.test.id },
        data: { revokedAt: new Date() },
      });
      const res = await other.gql('{ viewer { role } }', {}, issued.accessToken);
      expect(res.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    } finally {
      await other.close();
    }
  });
});

describe('operations per connection and per credential', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ MAX_SUBSCRIPTIONS_PER_CONNECTION: '3', MAX_SUBSCRIPTIONS_PER_CREDENTIAL: '5' });
  });
  afterAll(() => server?.close());

  it('refuses the subscription past MAX_SUBSCRIPTIONS_PER_CONNECTION, and takes one again when another completes', async () => {
    const ws = await server.workspace();
    const raw = await connect(server, ws.keys.test.secret);
    for (const id of ['a', 'b', 'c']) raw.subscribe(id, 'subscription { events { type } }');
    raw.subscribe('d', 'subscription { events { type } }');
    const refused = await raw.next('error', 'd');
    expect(refused['payload']).toEqual([
      expect.objectContaining({
        message: expect.stringContaining('MAX_SUBSCRIPTIONS_PER_CONNECTION'),
        extensions: { code: 'LIMIT_EXCEEDED' },
      }),
    ]);
    raw.send({ id: 'a', type: 'complete' });
    // The server has processed the complete once the next operation on the socket runs.
    raw.subscribe('e', 'subscription { events { type } }');
    raw.subscribe('f', '{ viewer { role } }');
    expect(await raw.next('error', 'f')).toMatchObject({ payload: [{ extensions: { code: 'LIMIT_EXCEEDED' } }] });
    raw.socket.close();
    await raw.closed;
  });

  it('refuses past MAX_SUBSCRIPTIONS_PER_CREDENTIAL across sockets; other credentials are not counted', async () => {
    const ws = await server.workspace();
    const one = await connect(server, ws.keys.test.secret);
    const two = await connect(server, ws.keys.test.secret);
    for (const id of ['a', 'b', 'c']) one.subscribe(id, 'subscription { events { type } }');
    two.subscribe('a', 'subscription { events { type } }');
    two.subscribe('b', 'subscription { events { type } }');
    two.subscribe('c', 'subscription { events { type } }');
    const refused = await two.next('error', 'c');
    expect(JSON.stringify(refused['payload'])).toContain('MAX_SUBSCRIPTIONS_PER_CREDENTIAL');
    // A partner token minted by the same key is a credential of its own.
    const f = factories(server.testDb.db.prisma, { workspaceId: ws.workspace.id, mode: 'TEST' });
    const partner = await partnerToken(server, ws.keys.test.secret, (await f.partner()).id);
    const three = await connect(server, partner);
    three.subscribe('q', '{ viewer { role } }');
    expect(await three.next('next', 'q')).toMatchObject({ payload: { data: { viewer: { role: 'PARTNER' } } } });
    // Closing a socket gives its share back.
    one.socket.close();
    await one.closed;
    two.subscribe('d', '{ viewer { role } }');
    expect(await two.next('next', 'd')).toMatchObject({ payload: { data: { viewer: { role: 'ADMIN' } } } });
    for (const s of [two, three]) s.socket.close();
  });
});
