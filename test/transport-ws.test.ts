import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { appendEvents } from '../src/modules/events/outbox.js';
import { eventCursor } from '../src/modules/events/events.graphql.js';
import { parseMessage, serveTransport, type Transport } from '../src/realtime/transport-ws.js';
import { rawSocket, subscribe, subscriptionTestServer } from './helpers/ws.js';

// The graphql-transport-ws protocol as src/realtime/transport-ws.ts serves it: every message type
// and every close code the graphql-ws client relies on. With the official client where it can
// provoke the case, with a raw `ws` socket where it cannot.

const realtime = subscriptionTestServer();
const wsUrl = () => `${realtime.server.url.replace(/^http/, 'ws')}/graphql`;

/** A graphql-ws client with its own options (not lazy: it connects at once). */
function client(options: Partial<Parameters<typeof createClient>[0]> & { token?: string }): Client {
  const { token, ...rest } = options;
  const c = createClient({
    url: wsUrl(),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: false,
    ...rest,
  });
  clients.push(c);
  return c;
}
const clients: Client[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
});

/** The close event the client's `error` sink receives for `query` (its socket closed by the server). */
function closedWith(c: Client, query = '{ viewer { mode } }'): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    c.subscribe(
      { query },
      {
        next: (value) => reject(new Error(`expected a close, got ${JSON.stringify(value)}`)),
        error: (error) => resolve(error as { code: number; reason: string }),
        complete: () => reject(new Error('expected a close, got complete')),
      },
    );
  });
}

/** A raw socket (no connection_init sent): resolves with how the server closed it. */
function rawClose(
  send: (socket: WebSocket) => void,
  protocol: string | undefined = 'graphql-transport-ws',
): Promise<{ code: number; reason: string; received: string[] }> {
  return new Promise((resolve) => {
    const socket = protocol ? new WebSocket(wsUrl(), protocol) : new WebSocket(wsUrl());
    const received: string[] = [];
    socket.on('open', () => send(socket));
    socket.on('message', (data) => received.push(String(data)));
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString(), received }));
  });
}

async function token(): Promise<string> {
  return (await realtime.server.workspace()).keys.test.secret;
}

const EVENTS = 'subscription($after: String) { events(after: $after) { sequence type } }';

describe('graphql-transport-ws: messages', () => {
  it('connection_init → connection_ack, then a query: next with its result, then complete', async () => {
    const raw = await rawSocket(realtime.server.url, await token());
    try {
      expect(raw.received).toEqual([{ type: 'connection_ack' }]);
      raw.send({ id: 'q1', type: 'subscribe', payload: { query: '{ viewer { mode } }' } });
      expect(await raw.next('q1')).toEqual({ id: 'q1', type: 'next', payload: { data: { viewer: { mode: 'TEST' } } } });
      expect(await raw.next('q1')).toEqual({ id: 'q1', type: 'complete' });
    } finally {
      raw.close();
    }
  });

  it('answers ping with pong (with its payload, if any) and takes pong without an answer', async () => {
    const raw = await rawSocket(realtime.server.url, await token());
    try {
      raw.send({ type: 'pong' });
      raw.send({ type: 'ping' });
      expect(await raw.next('pong')).toEqual({ type: 'pong' });
      raw.send({ type: 'ping', payload: { at: 1 } });
      expect(await raw.next('pong')).toEqual({ type: 'pong', payload: { at: 1 } });
      expect(raw.socket.readyState).toBe(WebSocket.OPEN);
      expect(raw.received.map((m) => m.type)).toEqual(['connection_ack', 'pong', 'pong']);
    } finally {
      raw.close();
    }
  });

  it('the graphql-ws client: query, mutation and its keep-alive pings over the socket', async () => {
    const pongs: unknown[] = [];
    const c = client({ token: await token(), keepAlive: 50, on: { pong: (received) => pongs.push(received) } });
    const query = subscribe<{ viewer: { mode: string } }>(c, '{ viewer { mode } }');
    expect(await query.next()).toEqual({ data: { viewer: { mode: 'TEST' } } });
    const mutation = subscribe<{ createProgram: { program: { name: string } } }>(
      c,
      'mutation { createProgram(input: { name: "Over a socket", type: REFERRAL, currency: "USD" }) { program { name } } }',
    );
    expect(await mutation.next()).toEqual({ data: { createProgram: { program: { name: 'Over a socket' } } } });
    await expect.poll(() => pongs.length, { timeout: 10_000 }).toBeGreaterThan(0);
  });

  it('a request error (parse, validation, variables, no such operation) is an error message; the id is free again', async () => {
    const raw = await rawSocket(realtime.server.url, await token());
    try {
      raw.send({ id: 'a', type: 'subscribe', payload: { query: '{ viewer {' } });
      const parse = await raw.next('a');
      expect(parse.type).toBe('error');
      raw.send({ id: 'a', type: 'subscribe', payload: { query: '{ nope }' } });
      const validation = (await raw.next('a')) as { type: string; payload: Array<{ message: string }> };
      expect(validation.type).toBe('error');
      expect(validation.payload[0]!.message).toMatch(/nope/);
      raw.send({ id: 'a', type: 'subscribe', payload: { query: EVENTS, variables: { after: 42 } } });
      expect((await raw.next('a')).type).toBe('error');
      raw.send({ id: 'a', type: 'subscribe', payload: { query: '{ viewer { mode } }', operationName: 'Missing' } });
      expect(await raw.next('a')).toEqual({
        id: 'a',
        type: 'error',
        payload: [{ message: 'Unable to identify operation' }],
      });
      raw.send({ id: 'a', type: 'subscribe', payload: { query: '{ viewer { mode } }' } });
      expect((await raw.next('a')).type).toBe('next');
      expect((await raw.next('a')).type).toBe('complete');
    } finally {
      raw.close();
    }
  });

  it('masks an unexpected error in a result as over HTTP', async () => {
    const raw = await rawSocket(realtime.server.url, await token());
    try {
      // An unknown global id is the caller's mistake (BAD_USER_INPUT), not a leaked exception.
      raw.send({ id: 'm', type: 'subscribe', payload: { query: '{ node(id: "bm9wZQ==") { id } }' } });
      const result = (await raw.next('m')) as { type: string; payload: { errors?: Array<{ message: string }> } };
      expect(result.type).toBe('next');
      for (const error of result.payload.errors ?? []) expect(error.message).not.toMatch(/prisma|sql|stack/i);
      expect((await raw.next('m')).type).toBe('complete');
    } finally {
      raw.close();
    }
  });

  it('subscription: next per event; complete from the client stops it (no complete back, nothing more)', async () => {
    const ws = await realtime.server.workspace();
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const append = async (n: number) => {
      await realtime.server.testDb.db.prisma.$transaction((tx) =>
        appendEvents(tx, tenant, [{ type: 'balance.credited', partnerId: null, payload: { n } }]),
      );
      await realtime.server.app.dispatcher.drain();
    };
    await append(1);
    const raw = await rawSocket(realtime.server.url, ws.keys.test.secret);
    try {
      raw.send({ id: 's', type: 'subscribe', payload: { query: EVENTS, variables: { after: eventCursor(0n) } } });
      const first = (await raw.next('s')) as { type: string; payload: { data: { events: { type: string } } } };
      expect(first.type).toBe('next');
      expect(first.payload.data.events.type).toBe('balance.credited');
      await append(2);
      expect((await raw.next('s')).type).toBe('next');
      raw.send({ id: 's', type: 'complete' });
      // Completed on the server once the subscription is no longer counted.
      await expect.poll(() => realtime.server.app.subscriptionExecution.active).toBe(0);
      await append(3);
      // The same id may be used again at once; what arrives for it is the new operation's.
      raw.send({ id: 's', type: 'subscribe', payload: { query: '{ viewer { mode } }' } });
      expect(await raw.next('s')).toMatchObject({ type: 'next', payload: { data: { viewer: { mode: 'TEST' } } } });
      expect(await raw.next('s')).toEqual({ id: 's', type: 'complete' });
      expect(raw.received.filter((m) => m.id === 's').map((m) => m.type)).toEqual(['next', 'next', 'next', 'complete']);
    } finally {
      raw.close();
    }
  });

  it('ends a subscription when its socket closes', async () => {
    const raw = await rawSocket(realtime.server.url, await token());
    raw.send({ id: 'x', type: 'subscribe', payload: { query: EVENTS } });
    await expect.poll(() => realtime.server.app.subscriptionExecution.active).toBe(1);
    raw.close();
    await expect.poll(() => realtime.server.app.subscriptionExecution.active).toBe(0);
  });
});

describe('graphql-transport-ws: close codes', () => {
  it('4400 for a message that is not JSON, of an unknown type, a server message, or malformed', async () => {
    for (const text of [
      'not json',
      '[]',
      JSON.stringify({ type: 'hello' }),
      JSON.stringify({ type: 'next', id: '1', payload: {} }),
      JSON.stringify({ type: 'connection_init', payload: 'x' }),
    ]) {
      const closed = await rawClose((socket) => socket.send(text));
      expect(closed, text).toMatchObject({ code: 4400, reason: 'Invalid message received' });
    }
    const t = await token();
    for (const message of [
      { type: 'subscribe', payload: { query: '{ viewer { mode } }' } },
      { type: 'subscribe', id: '', payload: { query: '{ viewer { mode } }' } },
      { type: 'subscribe', id: '1', payload: { query: 1 } },
      { type: 'subscribe', id: '1', payload: { query: '{ viewer { mode } }', variables: [] } },
      { type: 'complete' },
    ]) {
      const closed = await rawClose((socket) => {
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${t}` } }));
        socket.once('message', () => socket.send(JSON.stringify(message)));
      });
      expect(closed, JSON.stringify(message)).toMatchObject({ code: 4400 });
    }
  });

  it('4401 for a subscribe before the connection is acknowledged', async () => {
    const closed = await rawClose((socket) =>
      socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ viewer { mode } }' } })),
    );
    expect(closed).toMatchObject({ code: 4401, reason: 'Unauthorized', received: [] });
  });

  it('4403 for a refused credential (the graphql-ws client)', async () => {
    const closed = await closedWith(client({ token: 'rg_test_nope' }));
    expect(closed.code).toBe(4403);
    expect(closed.reason.length).toBeGreaterThan(0);
  });

  it('4406 for a socket without the graphql-transport-ws subprotocol (the graphql-ws client, and raw)', async () => {
    // Asks for no subprotocol at all (one the server does not speak fails the handshake in `ws` itself).
    class OtherProtocol extends WebSocket {
      constructor(url: string) {
        super(url);
      }
    }
    const closed = await closedWith(client({ token: await token(), webSocketImpl: OtherProtocol }));
    expect(closed.code).toBe(4406);
    expect(await rawClose(() => {}, '')).toMatchObject({ code: 4406, reason: 'Subprotocol not acceptable' });
  });

  it('4408 when no connection_init comes within 3 s (the graphql-ws client that never sends it)', async () => {
    const closed = await closedWith(client({ connectionParams: () => new Promise(() => {}) }));
    expect(closed).toMatchObject({ code: 4408, reason: 'Connection initialisation timeout' });
  });

  it('4409 for a second subscribe with the id of an operation in flight (the graphql-ws client)', async () => {
    const c = client({ token: await token(), generateID: () => 'same' });
    const first = subscribe(c, EVENTS);
    const second = subscribe(c, EVENTS);
    const errors = [await first.next(), await second.next()].flatMap((r) => r.errors ?? []);
    expect(errors).toContainEqual(
      expect.objectContaining({ code: 4409, reason: 'Subscriber for same already exists' }),
    );
  });

  it('4429 for a second connection_init', async () => {
    const t = await token();
    const init = JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${t}` } });
    const closed = await rawClose((socket) => {
      socket.send(init);
      socket.once('message', () => socket.send(init));
    });
    expect(closed).toMatchObject({ code: 4429, reason: 'Too many initialisation requests' });
    expect(closed.received).toEqual(['{"type":"connection_ack"}']);
  });
});

describe('graphql-transport-ws: the transport on its own', () => {
  let http: Server;
  let transport: Transport;
  let url: string;
  beforeAll(async () => {
    http = createServer();
    transport = serveTransport<{ name: string }>({
      server: new WebSocketServer({ server: http }),
      maxBufferedBytes: 1024 * 1024,
      keepAliveMs: 100,
      hooks: {
        init: async (connection, params) => {
          connection.state = { name: String(params?.['name'] ?? '') };
          return params?.['name'] !== 'refused';
        },
        operate: async (connection, operation, payload) => {
          if (payload.query === 'throw') throw new Error('a bug');
          if (payload.query === 'wait') {
            // Ends only when stopped, then still tries to send: nothing may go out, and its end
            // must not complete another operation that reuses its id meanwhile.
            await new Promise<void>((resolve) => operation.started(resolve));
            operation.next(JSON.stringify({ data: { late: true } }));
            return;
          }
          operation.next(JSON.stringify({ data: { hello: connection.state!.name } }));
        },
      },
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await transport?.close();
    await new Promise((resolve) => http?.close(resolve));
  });

  const open = (name: string, options: WebSocket.ClientOptions = {}) =>
    new Promise<{ socket: WebSocket; closed: Promise<number> }>((resolve) => {
      const socket = new WebSocket(url, 'graphql-transport-ws', options);
      const closed = new Promise<number>((done) => socket.on('close', (code) => done(code)));
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { name } })));
      socket.once('message', () => resolve({ socket, closed }));
      socket.once('close', () => resolve({ socket, closed }));
    });

  it('4403 "Forbidden" when init refuses without closing the socket itself; the hooks’ state otherwise', async () => {
    const refused = await open('refused');
    expect(await refused.closed).toBe(4403);
    const { socket } = await open('ann');
    const message = new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data))));
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'x' } }));
    expect(JSON.parse(await message)).toEqual({ id: '1', type: 'next', payload: { data: { hello: 'ann' } } });
    socket.close();
  });

  it('a completed operation sends nothing more, and its end leaves a new one with its id alone', async () => {
    const { socket } = await open('cy');
    const received: string[] = [];
    socket.on('message', (data) => received.push(String(data)));
    const send = (message: object) => socket.send(JSON.stringify(message));
    send({ id: '1', type: 'subscribe', payload: { query: 'wait' } });
    send({ id: '1', type: 'complete' });
    send({ id: '1', type: 'subscribe', payload: { query: 'wait' } });
    send({ id: '2', type: 'subscribe', payload: { query: 'x' } }); // answered after the above were handled
    await expect.poll(() => received.length).toBe(2);
    send({ id: '1', type: 'complete' });
    send({ id: '3', type: 'subscribe', payload: { query: 'x' } });
    await expect.poll(() => received.length).toBe(4);
    expect(received.map((m) => JSON.parse(m) as { id: string; type: string })).toEqual([
      { id: '2', type: 'next', payload: { data: { hello: 'cy' } } },
      { id: '2', type: 'complete' },
      { id: '3', type: 'next', payload: { data: { hello: 'cy' } } },
      { id: '3', type: 'complete' },
    ]);
    socket.close();
  });

  it('4500 when handling a message fails', async () => {
    const { socket, closed } = await open('bob');
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'throw' } }));
    expect(await closed).toBe(4500);
  });

  it('pings every socket; one that does not answer is terminated, one that does stays', async () => {
    const answering = await open('a');
    const silent = await open('b', { autoPong: false });
    const pinged = new Promise<void>((resolve) => answering.socket.once('ping', () => resolve()));
    await pinged;
    expect(await silent.closed).toBe(1006);
    expect(answering.socket.readyState).toBe(WebSocket.OPEN);
    answering.socket.close();
  });

  it('checks client messages as graphql-ws does', () => {
    expect(parseMessage('{"type":"connection_init"}')).toEqual({ type: 'connection_init' });
    expect(parseMessage('{"type":"ping","payload":null}')).toEqual({ type: 'ping', payload: null });
    expect(parseMessage('{"type":"complete","id":"1"}')).toEqual({ type: 'complete', id: '1' });
    expect(parseMessage('{"type":"subscribe","id":"1","payload":{"query":"{a}","operationName":1}}')).toBeNull();
    expect(parseMessage('{"type":"subscribe","id":"1","payload":{"query":"{a}","extensions":[]}}')).toBeNull();
    expect(parseMessage('{"type":"connection_ack"}')).toBeNull();
    expect(parseMessage('{"type":"error","id":"1","payload":[{"message":"x"}]}')).toBeNull();
  });
});
