import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from './server.js';

/**
 * The setup of a subscription test file: a test server (approval job idle) started before its
 * tests and, after them, every client made with `client` disposed and the server closed.
 */
export function subscriptionTestServer(env: Record<string, string> = {}): {
  readonly server: TestServer;
  client(token: string): Client;
} {
  let server: TestServer | undefined;
  const clients: Client[] = [];
  beforeAll(async () => {
    server = await startTestServer({ APPROVAL_JOB_INTERVAL_MS: '0', ...env });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await server?.close();
  });
  return {
    get server() {
      if (!server) throw new Error('the test server is started in beforeAll');
      return server;
    },
    client(token) {
      const c = wsClient(this.server.url, token);
      clients.push(c);
      return c;
    },
  };
}

/** A graphql-ws client against a test server, authenticated with `token`. */
export function wsClient(url: string, token: string | null): Client {
  return createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

export interface Subscription<T> {
  /** The next result, waiting up to `timeoutMs` (a failed test, not a hang, when nothing comes). */
  next(timeoutMs?: number): Promise<{ data?: T; errors?: unknown[] }>;
  /** Resolves once the server has acknowledged the subscription's first message or closed it. */
  close(): Promise<void>;
}

/** Subscribe and buffer results, so a test can await them one by one. */
export function subscribe<T = Record<string, unknown>>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
): Subscription<T> {
  const buffered: Array<{ data?: T; errors?: unknown[] }> = [];
  const waiting: Array<(value: { data?: T; errors?: unknown[] }) => void> = [];
  let failure: unknown = null;
  const push = (value: { data?: T; errors?: unknown[] }) => {
    const waiter = waiting.shift();
    if (waiter) waiter(value);
    else buffered.push(value);
  };
  const unsubscribe = client.subscribe<T>(
    { query, variables },
    {
      next: (value) => push(value as never),
      error: (error) => {
        failure = error;
        push({ errors: [error] });
      },
      complete: () => {},
    },
  );
  return {
    next: (timeoutMs = 10_000) => {
      const ready = buffered.shift();
      if (ready) return Promise.resolve(ready);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        const waiter = (value: { data?: T; errors?: unknown[] }) => {
          clearTimeout(timer);
          resolve(value);
        };
        const timer = setTimeout(() => {
          // Give up this wait only: a later result must go to the next caller, not to this one.
          waiting.splice(waiting.indexOf(waiter), 1);
          reject(new Error(`no subscription result within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.push(waiter);
      });
    },
    close: async () => unsubscribe(),
  };
}

/**
 * A live-only subscription misses what happens before the server has registered it, and a client
 * cannot see that moment. So: run `probe` (an action the subscription reports) until a result
 * arrives, with a deadline. Later reads should use `nextWhere`, since a late probe may still
 * report afterwards.
 */
export async function untilLive<T>(
  sub: Subscription<T>,
  probe: () => Promise<unknown>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await probe();
    try {
      await sub.next(400);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
  }
}

/** The next result that satisfies `predicate`, skipping others (e.g. late probes). */
export async function nextWhere<T>(
  sub: Subscription<T>,
  predicate: (data: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await sub.next(Math.max(1, deadline - Date.now()));
    if (result.errors) throw new Error(`subscription error: ${JSON.stringify(result.errors)}`);
    if (result.data && predicate(result.data)) return result.data;
  }
}

/** A message of the graphql-transport-ws protocol. */
export interface RawMessage {
  type: string;
  id?: string;
  payload?: unknown;
}

/** A socket from {@link rawSocket}. `M` is what it keeps of each message received. */
export interface RawSocket<M extends { type: string; id?: string } = RawMessage> {
  /** The `ws` socket itself: to pause and resume reading, or to watch its close. */
  readonly socket: WebSocket;
  /** Every message received, connection_ack included, in order. */
  readonly received: readonly M[];
  send(message: RawMessage): void;
  /**
   * The first message whose id or type is `key` that no earlier call returned, waiting up to
   * `timeoutMs` for it (a failed test, not a hang, when none comes or the socket closes first).
   */
  next(key: string, timeoutMs?: number): Promise<M>;
  close(): void;
}

/**
 * A raw graphql-transport-ws socket to the server at `url`, opened, initialised with `token` and
 * acknowledged: for what graphql-ws's client hides (protocol messages, close codes, a reader that
 * stops reading). `keep` says what is kept of each message; by default all of it (a test that
 * measures memory keeps less).
 */
export async function rawSocket<M extends { type: string; id?: string } = RawMessage>(
  url: string,
  token: string,
  keep: (message: RawMessage) => M = (message) => message as M,
): Promise<RawSocket<M>> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const received: M[] = [];
  const unread: M[] = [];
  const waiters: Array<{ key: string; resolve(message: M): void; reject(error: Error): void }> = [];
  const matches = (message: M, key: string) => message.id === key || message.type === key;
  socket.on('message', (data) => {
    const message = keep(JSON.parse(String(data)) as RawMessage);
    received.push(message);
    const waiter = waiters.find((w) => matches(message, w.key));
    if (waiter) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(message);
    } else unread.push(message);
  });
  socket.on('close', (code) => {
    for (const waiter of waiters.splice(0))
      waiter.reject(new Error(`socket closed (${code}) before a "${waiter.key}" message`));
  });
  const next = (key: string, timeoutMs = 10_000) => {
    const index = unread.findIndex((message) => matches(message, key));
    if (index >= 0) return Promise.resolve(unread.splice(index, 1)[0]!);
    if (socket.readyState === WebSocket.CLOSED)
      return Promise.reject(new Error(`socket closed before a "${key}" message`));
    return new Promise<M>((resolve, reject) => {
      const waiter = {
        key,
        resolve: (message: M) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no "${key}" message within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push(waiter);
    });
  };
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  const ack = next('connection_ack');
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  await ack;
  return {
    socket,
    received,
    send: (message) => socket.send(JSON.stringify(message)),
    next,
    close: () => socket.close(),
  };
}
