import type { Server } from 'node:http';
import { type DocumentNode, type ExecutionResult, GraphQLError, getOperationAST, getVariableValues } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { isAsyncIterable } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { IncomingMessage } from 'node:http';
import { parse as parseCookies } from '@whatwg-node/cookie-store';
import type { Config } from '../config.js';
import type { Auth } from '../domain/auth.js';
import { rateLimited } from '../graphql/request-policy.js';
import type { ApiYoga, ServerContext } from '../graphql/yoga.js';
import type { RateLimiter } from '../lib/rate-limit.js';
import { requestIdFrom, withRequestId } from '../lib/request-context.js';
import type { Logger } from '../logger.js';
import type { Authenticator, AuthResult } from '../modules/auth/authenticate.js';
import { visitorIp } from '../modules/click/redirect.js';
import type { AppPubSub } from '../pubsub.js';
import { ConnectionRegistry, credentialKey, runAt } from './connections.js';
import type { CsrfTokens } from '../modules/member/session-tokens.js';
import { SESSION_COOKIE } from '../modules/member/session-tokens.js';
import { type DeliverNext, SocketSubscription } from './shared-execution.js';
import { type Operation, serveTransport, type TransportConnection, type TransportHooks } from './transport-ws.js';

/** A connection's state once connection_init has been accepted. */
interface SocketState {
  auth: AuthResult & { auth: Auth };
  ip: string | null;
  /** Its token has expired (the socket is being closed). */
  expired: boolean;
}

export interface GraphQLWebSocketOptions {
  /** The HTTP server whose upgrades on `path` are taken. */
  server: Server;
  path: string;
  config: Config;
  logger: Logger;
  yoga: ApiYoga;
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  /** Where key and token-family revocations arrive from every instance. */
  pubsub: AppPubSub;
  /** The CSRF values of member sessions (a cookie-authenticated socket must present its session's). */
  csrf: CsrfTokens;
}

export interface GraphQLWebSocket {
  /** Open sockets (for the metrics). */
  readonly openSockets: number;
  /** Operations in flight across every connection (for the metrics). */
  operations(): number;
  /** Close every socket with 1001 and stop taking upgrades. */
  close(): Promise<void>;
  /** Stop listening for revocations. */
  stopRevocations(): Promise<void>;
}

/**
 * graphql-transport-ws (transport-ws.ts) on the HTTP server's port, each operation routed through
 * `yoga.getEnveloped` so every plugin also runs over WebSockets: authentication in
 * connection_init, the limits per operation, and revocations that close the connections of a key
 * or token family.
 */
export function serveGraphQLWebSocket(options: GraphQLWebSocketOptions): GraphQLWebSocket {
  const { server, path, config, logger, yoga, authenticator, rateLimiter, pubsub, csrf } = options;
  const publicOrigin = new URL(config.publicUrl).origin;
  const wsServer = new WebSocketServer({ server, path, maxPayload: 1024 * 1024 });
  // Open connections by API key, refresh-token family and credential: revoking a key or a family
  // (on any instance) closes its connections; operations are limited per credential.
  const connections = new ConnectionRegistry();
  const revocations = pubsub.subscribe('keyRevoked');
  void (async () => {
    for await (const { apiKeyId } of revocations) {
      authenticator.forget(apiKeyId);
      connections.close(`key:${apiKeyId}`, CloseCode.Forbidden, 'The credential was revoked.');
    }
  })().catch((error: unknown) => logger.error({ err: error }, 'revocation listener failed'));
  const familyRevocations = pubsub.subscribe('tokenFamilyRevoked');
  void (async () => {
    for await (const { familyId } of familyRevocations) {
      authenticator.revokeFamily(familyId);
      connections.close(
        `family:${familyId}`,
        CloseCode.Forbidden,
        'The token was revoked: a refresh token of its family was used twice.',
      );
    }
  })().catch((error: unknown) => logger.error({ err: error }, 'token family revocation listener failed'));
  const sessionChanges = pubsub.subscribe('memberSessions');
  void (async () => {
    for await (const { sessionId, memberId, ended } of sessionChanges) {
      if (sessionId) authenticator.forgetSession(sessionId);
      if (memberId) authenticator.forgetMember(memberId);
      if (!ended) continue;
      const reason = 'The session has ended (signed out, or the member was removed): sign in again.';
      if (sessionId) connections.close(`session:${sessionId}`, CloseCode.Forbidden, reason);
      if (memberId) connections.close(`member:${memberId}`, CloseCode.Forbidden, reason);
    }
  })().catch((error: unknown) => logger.error({ err: error }, 'member session listener failed'));
  /**
   * The dashboard's socket: no `authorization` param, the session cookie on the upgrade. Taken only
   * from a page of this installation (the upgrade's Origin is PUBLIC_URL's origin, or the Host it
   * came in on) that also knows the session's CSRF value (`csrfToken` in connection_init): a page of
   * another site can open a WebSocket with the cookie (browsers do not apply CORS to them) but
   * knows neither.
   */
  const cookieSession = async (
    request: IncomingMessage,
    params: Record<string, unknown> | undefined,
  ): Promise<AuthResult | null> => {
    const token = parseCookies(request.headers.cookie ?? '').get(SESSION_COOKIE)?.value;
    if (!token) return null;
    const origin = request.headers.origin;
    const hostOrigins = request.headers.host
      ? [`http://${request.headers.host}`, `https://${request.headers.host}`]
      : [];
    if (!origin || (origin !== publicOrigin && !hostOrigins.includes(origin)))
      return { auth: null, error: 'A session cookie is accepted only from this installation’s own pages (Origin).' };
    const presented = typeof params?.['csrfToken'] === 'string' ? params['csrfToken'] : null;
    if (!csrf.matches(token, presented))
      return { auth: null, error: 'Send { "csrfToken": <the refgraph_csrf cookie> } in connection_init.' };
    return authenticator.session(token);
  };
  type Operate = TransportHooks<SocketState>['operate'];
  const operate: Operate = async (connection, operation, payload) => {
    const socket = connection.socket;
    const state = connection.state!;
    const auth = state.auth;
    if (state.expired || (auth.expiresAt && auth.expiresAt.getTime() <= Date.now())) {
      socket.close(CloseCode.Forbidden, 'The token has expired: reconnect with a new one.');
      return operation.error([
        new GraphQLError('The token has expired: reconnect with a new one.', {
          extensions: { code: 'UNAUTHENTICATED' },
        }),
      ]);
    }
    // This operation is counted in connection.operations already.
    if (connection.operations.size > config.maxSubscriptionsPerConnection) {
      return operation.error([
        limitExceeded(
          `At most ${config.maxSubscriptionsPerConnection} operations at once on one connection (MAX_SUBSCRIPTIONS_PER_CONNECTION): complete one first, or open another connection.`,
        ),
      ]);
    }
    if (connections.operations(credentialKey(auth.auth)) > config.maxSubscriptionsPerCredential) {
      return operation.error([
        limitExceeded(
          `At most ${config.maxSubscriptionsPerCredential} operations at once for one credential on this server (MAX_SUBSCRIPTIONS_PER_CREDENTIAL): complete some first.`,
        ),
      ]);
    }
    const verdict = await rateLimiter.consume('credential', credentialKey(auth.auth));
    if (!verdict.allowed)
      return operation.error([
        rateLimited(
          'this credential’s operations per second (RATE_LIMIT_CREDENTIAL_PER_SECOND)',
          verdict.retryAfterSeconds,
        ),
      ]);
    // A subscription's events are sent from SharedExecution with the payload serialized once per
    // group of identical subscribers, straight to the socket: no iterator carries them.
    const deliverNext = nextSender(connection, operation);
    const outcome = await withRequestId(requestIdFrom(null), async () => {
      // Yoga's envelop: its parser and validation caches, every plugin (policy, limits, metrics,
      // shared execution), its error masking.
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        extra: { ip: state.ip },
        wsAuth: auth,
        deliverNext,
      } as ServerContext);
      let document: DocumentNode;
      try {
        document = parse(payload.query);
      } catch (error) {
        return [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
      }
      const errors = validate(schema, document);
      if (errors.length > 0) return errors.map(withoutHttpHints);
      const operation = getOperationAST(document, payload.operationName);
      if (!operation) return [new GraphQLError('Unable to identify operation')];
      // A variable its type refuses is a request error: an `error` message, as for validation.
      const variables = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {}, {
        maxErrors: 50,
      });
      if (variables.errors) return variables.errors.map(withoutHttpHints);
      const args = {
        schema,
        document,
        operationName: payload.operationName,
        variableValues: payload.variables,
        contextValue: await contextFactory(),
      };
      return { result: (await (operation.operation === 'subscription' ? subscribe(args) : execute(args))) as unknown };
    });
    if (Array.isArray(outcome)) return operation.error(outcome);
    const { result } = outcome;
    // A subscription: its events go through deliverNext; it runs on after this returns (nothing
    // here waits on it) and tells the operation when it ends.
    if (result instanceof SocketSubscription) return runOn(operation, result);
    if (!isAsyncIterable(result)) return operation.next(resultJson(result as ExecutionResult));
    // An incremental result (or a subscription through a transport without deliverNext).
    const iterator = (result as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    if (!operation.started(() => void iterator.return?.()?.catch(() => {}))) return;
    try {
      for (;;) {
        const step = await iterator.next();
        if (step.done || !operation.inFlight) return;
        operation.next(resultJson(step.value));
      }
    } catch (error) {
      // As graphql-ws reports a source stream's failure.
      const original = error instanceof Error ? error : new Error(String(error));
      operation.error([new GraphQLError(original.message, { originalError: original })]);
    }
  };

  const transport = serveTransport<SocketState>({
    server: wsServer,
    maxBufferedBytes: config.wsMaxBufferedBytes,
    hooks: {
      init: async (connection, params, request) => {
        const header = params?.['authorization'];
        const result =
          (typeof header === 'string' && header ? null : await cookieSession(request, params)) ??
          (await authenticator.authenticate(typeof header === 'string' ? header : null));
        const socket = connection.socket;
        if (!result.auth) {
          const reason =
            result.error ??
            'Authentication required: send { "authorization": "Bearer <key or token>" } in connection_init.';
          socket.close(CloseCode.Forbidden, reason.slice(0, 120));
          return false;
        }
        if (socket.readyState !== socket.OPEN) return false;
        const state: SocketState = {
          auth: result as AuthResult & { auth: Auth },
          ip: visitorIp(request, config.trustProxy),
          expired: false,
        };
        connection.state = state;
        const { apiKeyId } = result.auth;
        connections.add(connection, [
          credentialKey(result.auth),
          ...(apiKeyId ? [`key:${apiKeyId}`] : []),
          ...(result.familyId ? [`family:${result.familyId}`] : []),
          ...(result.auth.sessionId ? [`session:${result.auth.sessionId}`] : []),
          ...(result.auth.memberId ? [`member:${result.auth.memberId}`] : []),
        ]);
        // A token ends its connection when it expires: nothing runs on the socket after that.
        if (result.expiresAt) {
          const cancel = runAt(result.expiresAt, () => {
            state.expired = true;
            socket.close(CloseCode.Forbidden, 'The token has expired: reconnect with a new one.');
          });
          socket.once('close', cancel);
        }
        return true;
      },
      operate,
      slowClient: (bufferedAmount) =>
        logger.warn({ bufferedAmount }, 'closing a WebSocket client that does not keep up'),
      internalError: (error) => logger.error({ err: error }, 'WebSocket message handling failed'),
    },
  });

  return {
    get openSockets() {
      return transport.openSockets;
    },
    operations: () => transport.operations(),
    close: () => transport.close(),
    stopRevocations: async () => {
      await revocations.return();
      await familyRevocations.return();
      await sessionChanges.return();
    },
  };
}

/**
 * What sends a subscription's events on its socket (SharedExecution's `deliverNext`). Made apart
 * from `operate`: a closure there would keep its whole scope (the message, the socket state) for
 * the subscription's life.
 */
function nextSender(connection: TransportConnection<SocketState>, operation: Operation): DeliverNext {
  const prefix = `{"id":${JSON.stringify(operation.id)},"type":"next","payload":`;
  return (payloadJson) => {
    if (operation.inFlight) connection.send(`${prefix}${payloadJson}}`);
  };
}

/** A subscription's operation runs on with it: stopped with it, ended when it ends. */
function runOn(operation: Operation, subscription: SocketSubscription): void {
  if (!operation.continues(() => subscription.stop())) return;
  // A failure as graphql-ws reports a source stream's (see operate), masked as Yoga masks it.
  subscription.onEnd((error) =>
    error ? operation.error([new GraphQLError(error.message, { originalError: error })]) : operation.complete(),
  );
}

/** The payload of a `next` message, as graphql-ws builds it (errors only when there are some). */
function resultJson({ errors, ...rest }: ExecutionResult): string {
  return JSON.stringify(errors ? { ...rest, errors: errors.map((e) => e.toJSON()) } : rest);
}

/** A refused WebSocket operation: too many at once on a connection or for a credential. */
function limitExceeded(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'LIMIT_EXCEEDED' } });
}

/** An error for a graphql-ws `error` message: Yoga's HTTP status hints (`extensions.http`) mean nothing on a socket. */
function withoutHttpHints(error: GraphQLError): GraphQLError {
  if (!('http' in error.extensions)) return error;
  const { http: _http, ...extensions } = error.extensions;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    path: error.path,
    originalError: error.originalError,
    extensions,
  });
}
