import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { GraphQLError } from 'graphql';
import { CloseCode } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';

/** The subprotocol this server speaks (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md). */
export const GRAPHQL_TRANSPORT_WS = 'graphql-transport-ws';

/** A `subscribe` message's payload. */
export interface SubscribePayload {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  extensions?: Record<string, unknown> | null;
}

export interface TransportHooks<S> {
  /**
   * `connection_init`: true to acknowledge (with `connection.state` set), false to refuse. A
   * refusal that closes the socket itself (with its own code and reason) is kept; otherwise the
   * socket is closed with 4403 "Forbidden".
   */
  init(
    connection: TransportConnection<S>,
    params: Record<string, unknown> | undefined,
    request: IncomingMessage,
  ): Promise<boolean>;
  /**
   * `subscribe`: run the operation. It reports with `next` / `error` on the connection and
   * registers what stops it (`started`); when it returns and the operation is still in flight (no
   * `error`, no `complete` from the client), `complete` is sent — unless it was handed on
   * (`continues`): then what runs it ends it later (`complete` / `error`), with no promise pending
   * here meanwhile.
   */
  operate(connection: TransportConnection<S>, operation: Operation, payload: SubscribePayload): Promise<void>;
  /** A socket closed for not reading its messages (past `maxBufferedBytes`). */
  slowClient?(bufferedAmount: number): void;
  /** Something failed while handling a message: the socket is closed with 4500. */
  internalError?(error: unknown): void;
}

export interface TransportOptions<S> {
  server: WebSocketServer;
  hooks: TransportHooks<S>;
  /** Past this much unsent data a socket is closed with 1013 (the client does not keep up). */
  maxBufferedBytes: number;
  /** Close a socket that sent no `connection_init` within this long with 4408 (graphql-ws: 3 s). */
  connectionInitWaitMs?: number;
  /** Ping every socket this often; one that has not answered the last ping by then is terminated (graphql-ws: 12 s). */
  keepAliveMs?: number;
}

/** Waiting for connection_init → it arrived (being checked) → acknowledged. */
const WAITING = 0;
const INITIALISING = 1;
const ACKNOWLEDGED = 2;

/** The connection of a socket (one property on the ws object rather than a closure per listener). */
const CONNECTION = Symbol('refgraph.transportConnection');
type Attached<S> = WebSocket & { [CONNECTION]?: TransportConnection<S> };

/** Connections whose TCP socket was corked in this tick (uncorked together, see `send`). */
let corked: Array<TransportConnection<unknown>> = [];
const uncorkAll = () => {
  const list = corked;
  corked = [];
  for (const connection of list) {
    connection.corked = false;
    connection.tcp.uncork();
  }
};

/**
 * One graphql-transport-ws connection: its phase, its state once acknowledged (the hooks'), and
 * its operations in flight.
 */
export class TransportConnection<S> {
  phase = WAITING;
  /** Set by `init` before it accepts. */
  state: S | undefined = undefined;
  /** Operations in flight by id. */
  readonly operations = new Map<string, Operation>();
  /** Not answered the last keep-alive ping yet. */
  awaitingPong = false;
  corked = false;
  initTimer: NodeJS.Timeout | null = null;
  /** The upgrade request, until connection_init has been checked (then dropped: ~1 KiB of headers). */
  request: IncomingMessage | null;

  constructor(
    readonly socket: WebSocket,
    readonly tcp: Socket,
    private readonly maxBufferedBytes: number,
    private readonly slowClient: ((bufferedAmount: number) => void) | undefined,
    request: IncomingMessage,
  ) {
    this.request = request;
  }

  /**
   * Write a message now. Messages sent in one tick leave in one write (the TCP socket is corked
   * at the first and uncorked on process.nextTick). What the client has not read shows in
   * bufferedAmount; past maxBufferedBytes the socket is closed with 1013.
   */
  send(text: string): void {
    const { socket } = this;
    if (socket.readyState !== socket.OPEN) return;
    if (!this.corked) {
      this.corked = true;
      this.tcp.cork();
      if (corked.length === 0) process.nextTick(uncorkAll);
      corked.push(this as TransportConnection<unknown>);
    }
    socket.send(text);
    if (socket.bufferedAmount > this.maxBufferedBytes && socket.readyState === socket.OPEN) {
      this.slowClient?.(socket.bufferedAmount);
      socket.close(1013, 'Client too slow: too many unsent messages; reconnect and resume with events(after).');
    }
  }

  /** An `error` message for a refused operation (it ends without `complete`), if it is in flight. */
  error(operation: Operation, errors: readonly GraphQLError[]): void {
    if (!operation.inFlight) return;
    this.end(operation);
    this.send(JSON.stringify({ id: operation.id, type: 'error', payload: errors.map((e) => e.toJSON()) }));
  }

  /** `operation` is no longer in flight: out of the map (its id free again), nothing more sent for it. */
  end(operation: Operation): void {
    operation.ended = true;
    if (this.operations.get(operation.id) === operation) this.operations.delete(operation.id);
  }

  /** Close the socket (a no-op once it is closing). */
  close(code: number, reason: string): void {
    this.socket.close(code, reason);
  }
}

/**
 * One operation in flight on a connection. Its messages are sent only while it is the one filed
 * under its id: once the client has completed it (and perhaps reused the id for another), nothing
 * it still produces goes out, and its end does not complete the other.
 */
export class Operation {
  /** What stops it (a source stream), once it has one. */
  stop: (() => void) | null = null;
  /** Out of its connection's map (see TransportConnection.end): a flag, so a delivery needs no Map lookup. */
  ended = false;
  /** Runs on after `operate` returned (`continues`): ended by `complete` or `error`. */
  detached = false;

  constructor(
    readonly id: string,
    private readonly connection: TransportConnection<unknown>,
  ) {}

  /** Not completed by the client, not ended, its socket not closed. */
  get inFlight(): boolean {
    return !this.ended;
  }

  /**
   * It has something to stop: registered, or — when the client completed it or the socket closed
   * meanwhile — stopped at once (false).
   */
  started(stop: () => void): boolean {
    if (!this.inFlight) {
      stop();
      return false;
    }
    this.stop = stop;
    return true;
  }

  /**
   * Like `started`, and it runs on after `operate` returns: whatever runs it calls `complete` or
   * `error` when it ends.
   */
  continues(stop: () => void): boolean {
    this.detached = true;
    return this.started(stop);
  }

  /** A `complete` message (it ends), if it is in flight. */
  complete(): void {
    if (!this.inFlight) return;
    this.connection.end(this);
    this.connection.send(`{"id":${JSON.stringify(this.id)},"type":"complete"}`);
  }

  /** A `next` message with this payload JSON, if it is in flight. */
  next(payloadJson: string): void {
    if (this.inFlight) this.connection.send(`{"id":${JSON.stringify(this.id)},"type":"next","payload":${payloadJson}}`);
  }

  /** An `error` message (it ends without `complete`), if it is in flight. */
  error(errors: readonly GraphQLError[]): void {
    this.connection.error(this, errors);
  }
}

export interface Transport {
  /** Open sockets. */
  readonly openSockets: number;
  /** Operations in flight across every connection. */
  operations(): number;
  /** Close every socket with 1001 and stop taking upgrades. */
  close(): Promise<void>;
}

/**
 * A graphql-transport-ws server on a `ws` WebSocketServer: the protocol (connection_init and its
 * timeout, ping/pong, subscribe/next/error/complete, the close codes the graphql-ws client relies
 * on), keep-alive pings from one timer for all sockets, and nothing per operation but an entry in
 * its connection's map: what runs the operation is the hooks' business.
 */
export function serveTransport<S>(options: TransportOptions<S>): Transport {
  const { server, hooks, maxBufferedBytes } = options;
  const initWaitMs = options.connectionInitWaitMs ?? 3_000;
  const keepAliveMs = options.keepAliveMs ?? 12_000;
  const connections = new Set<TransportConnection<S>>();

  server.options.handleProtocols = (protocols) => (protocols.has(GRAPHQL_TRANSPORT_WS) ? GRAPHQL_TRANSPORT_WS : false);

  const internal = (connection: TransportConnection<S>, error: unknown) => {
    hooks.internalError?.(error);
    connection.close(CloseCode.InternalServerError, 'Internal server error');
  };

  const keepAlive =
    keepAliveMs > 0 && Number.isFinite(keepAliveMs)
      ? setInterval(() => {
          for (const connection of connections) {
            const { socket } = connection;
            if (socket.readyState !== socket.OPEN) continue;
            if (connection.awaitingPong) {
              socket.terminate();
              continue;
            }
            connection.awaitingPong = true;
            socket.ping();
          }
        }, keepAliveMs)
      : null;
  keepAlive?.unref();

  async function onMessage(this: Attached<S>, data: Buffer | ArrayBuffer | Buffer[]): Promise<void> {
    const connection = this[CONNECTION];
    if (!connection) return;
    const message = parseMessage(String(data));
    if (!message) return connection.close(CloseCode.BadRequest, 'Invalid message received');
    try {
      switch (message.type) {
        case 'connection_init': {
          if (connection.phase !== WAITING)
            return connection.close(CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
          connection.phase = INITIALISING;
          if (connection.initTimer) clearTimeout(connection.initTimer);
          connection.initTimer = null;
          const request = connection.request!;
          connection.request = null;
          const accepted = await hooks.init(connection, message.payload ?? undefined, request);
          const { socket } = connection;
          if (socket.readyState !== socket.OPEN) return;
          if (!accepted) return connection.close(CloseCode.Forbidden, 'Forbidden');
          connection.phase = ACKNOWLEDGED;
          connection.send('{"type":"connection_ack"}');
          return;
        }
        case 'ping':
          connection.send(
            message.payload ? JSON.stringify({ type: 'pong', payload: message.payload }) : '{"type":"pong"}',
          );
          return;
        case 'pong':
          return;
        case 'subscribe': {
          if (connection.phase !== ACKNOWLEDGED) return connection.close(CloseCode.Unauthorized, 'Unauthorized');
          const { id, payload } = message;
          if (connection.operations.has(id))
            return connection.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`);
          const operation = new Operation(id, connection as TransportConnection<unknown>);
          connection.operations.set(id, operation);
          await hooks.operate(connection, operation, payload);
          if (!operation.detached) operation.complete();
          return;
        }
        case 'complete': {
          const operation = connection.operations.get(message.id);
          if (!operation) return;
          connection.end(operation);
          operation.stop?.();
          return;
        }
      }
    } catch (error) {
      internal(connection, error);
    }
  }

  function onPong(this: Attached<S>): void {
    const connection = this[CONNECTION];
    if (connection) connection.awaitingPong = false;
  }

  function onClose(this: Attached<S>): void {
    const connection = this[CONNECTION];
    if (!connection) return;
    connections.delete(connection);
    connection.request = null;
    if (connection.initTimer) clearTimeout(connection.initTimer);
    connection.initTimer = null;
    const operations = [...connection.operations.values()];
    for (const operation of operations) connection.end(operation);
    for (const operation of operations) operation.stop?.();
  }

  function onError(this: Attached<S>, error: Error): void {
    const connection = this[CONNECTION];
    if (connection) internal(connection, error);
  }

  server.on('connection', (socket: Attached<S>, request: IncomingMessage) => {
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS) {
      socket.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    const connection = new TransportConnection<S>(
      socket,
      request.socket as Socket,
      maxBufferedBytes,
      hooks.slowClient?.bind(hooks),
      request,
    );
    socket[CONNECTION] = connection;
    connections.add(connection);
    if (initWaitMs > 0 && Number.isFinite(initWaitMs)) {
      connection.initTimer = setTimeout(() => {
        connection.initTimer = null;
        if (connection.phase === WAITING)
          connection.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
      }, initWaitMs);
    }
    socket.on('message', onMessage);
    socket.on('pong', onPong);
    socket.once('close', onClose);
    socket.once('error', onError);
  });

  return {
    get openSockets() {
      return server.clients.size;
    },
    operations: () => {
      let total = 0;
      for (const connection of connections) total += connection.operations.size;
      return total;
    },
    close: async () => {
      if (keepAlive) clearInterval(keepAlive);
      for (const socket of server.clients) socket.close(1001, 'Server shutting down');
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type ClientMessage =
  | { type: 'connection_init'; payload?: Record<string, unknown> | null }
  | { type: 'ping'; payload?: Record<string, unknown> | null }
  | { type: 'pong'; payload?: Record<string, unknown> | null }
  | { type: 'subscribe'; id: string; payload: SubscribePayload }
  | { type: 'complete'; id: string };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A message a client may send, checked as graphql-ws checks it; null for anything else (not JSON,
 * a wrong shape, an unknown type, or a type only the server sends): the socket is closed with 4400.
 */
export function parseMessage(text: string): ClientMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(value) || typeof value['type'] !== 'string') return null;
  switch (value['type']) {
    case 'connection_init':
    case 'ping':
    case 'pong':
      return value['payload'] == null || isObject(value['payload']) ? (value as ClientMessage) : null;
    case 'subscribe': {
      const payload = value['payload'];
      if (typeof value['id'] !== 'string' || !value['id'] || !isObject(payload)) return null;
      if (typeof payload['query'] !== 'string') return null;
      if (payload['variables'] != null && !isObject(payload['variables'])) return null;
      if (payload['operationName'] != null && typeof payload['operationName'] !== 'string') return null;
      if (payload['extensions'] != null && !isObject(payload['extensions'])) return null;
      return value as ClientMessage;
    }
    case 'complete':
      return typeof value['id'] === 'string' && value['id'] ? (value as ClientMessage) : null;
    default:
      return null;
  }
}
