import type { Server } from 'node:http';
import { type DocumentNode, GraphQLError, getOperationAST, getVariableValues } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { IncomingMessage } from 'node:http';
import { parse as parseCookies } from '@whatwg-node/cookie-store';
import type { Config } from '../config.js';
import type { Auth } from '../domain/auth.js';
import { rateLimited } from '../graphql/request-policy.js';
import type { ApiYoga } from '../graphql/yoga.js';
import type { RateLimiter } from '../lib/rate-limit.js';
import { requestIdFrom, withRequestId } from '../lib/request-context.js';
import type { Logger } from '../logger.js';
import type { Authenticator, AuthResult } from '../modules/auth/authenticate.js';
import { visitorIp } from '../modules/click/redirect.js';
import type { AppPubSub } from '../pubsub.js';
import { ConnectionRegistry, credentialKey, runAt } from './connections.js';
import type { CsrfTokens } from '../modules/member/session-tokens.js';
import { SESSION_COOKIE } from '../modules/member/session-tokens.js';
import type { DeliverNext } from './shared-execution.js';

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
 * graphql-ws on the HTTP server's port, routed through `yoga.getEnveloped` so every plugin also
 * runs over WebSockets: authentication in connection_init, the limits per operation, the send
 * patch (backpressure), and revocations that close the connections of a key or token family.
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
  // A client that does not read its messages must not make the server buffer without limit. graphql-ws
  // sends a subscription's next message only once the last one has reached the kernel, so a client
  // that stops reading would silently stall its subscriptions (the backlog piling up upstream) and
  // bufferedAmount would never grow. Messages go to the socket at once instead: what the client has
  // not read shows in bufferedAmount, and past WS_MAX_BUFFERED_BYTES the client is closed with 1013.
  //
  // Messages sent to one socket in one turn of the event loop (a burst of events worked off
  // together, see LiveFeed) leave in one write: the TCP socket is corked at the first and uncorked
  // once the current task and its microtasks are done. One system call per socket and turn rather
  // than per message: the writes are most of the cost of a fan-out.
  wsServer.on('connection', (socket, request) => {
    const send = socket.send.bind(socket);
    const tcp = request.socket;
    let corked = false;
    const uncork = () => {
      corked = false;
      tcp.uncork();
    };
    socket.send = ((data: string, callback?: (error?: Error) => void) => {
      if (!corked) {
        corked = true;
        tcp.cork();
        process.nextTick(uncork);
      }
      send(data);
      if (socket.bufferedAmount > config.wsMaxBufferedBytes && socket.readyState === socket.OPEN) {
        logger.warn({ bufferedAmount: socket.bufferedAmount }, 'closing a WebSocket client that does not keep up');
        socket.close(1013, 'Client too slow: too many unsent messages; reconnect and resume with events(after).');
      }
      callback?.();
    }) as typeof socket.send;
  });
  useServer<
    { authorization?: unknown; csrfToken?: unknown },
    { auth?: AuthResult & { auth: Auth }; expired?: boolean; ip?: string | null }
  >(
    {
      onConnect: async (ctx) => {
        const header = ctx.connectionParams?.authorization;
        const result =
          (typeof header === 'string' && header
            ? null
            : await cookieSession(ctx.extra.request, ctx.connectionParams as Record<string, unknown> | undefined)) ??
          (await authenticator.authenticate(typeof header === 'string' ? header : null));
        if (!result.auth) {
          const reason =
            result.error ??
            'Authentication required: send { "authorization": "Bearer <key or token>" } in connection_init.';
          ctx.extra.socket.close(CloseCode.Forbidden, reason.slice(0, 120));
          return false;
        }
        ctx.extra.auth = result;
        ctx.extra.ip = visitorIp(ctx.extra.request, config.trustProxy);
        // The upgrade request has served its purpose: graphql-ws would keep it (headers and all)
        // for as long as the connection lives, about 1 KiB per subscriber.
        delete (ctx.extra as { request?: unknown }).request;
        const socket = ctx.extra.socket;
        const { apiKeyId } = result.auth;
        connections.add({ socket, subscriptions: ctx.subscriptions }, [
          credentialKey(result.auth),
          ...(apiKeyId ? [`key:${apiKeyId}`] : []),
          ...(result.familyId ? [`family:${result.familyId}`] : []),
          ...(result.auth.sessionId ? [`session:${result.auth.sessionId}`] : []),
          ...(result.auth.memberId ? [`member:${result.auth.memberId}`] : []),
        ]);
        // A token ends its connection when it expires: nothing runs on the socket after that.
        if (result.expiresAt) {
          const cancel = runAt(result.expiresAt, () => {
            ctx.extra.expired = true;
            socket.close(CloseCode.Forbidden, 'The token has expired: reconnect with a new one.');
          });
          socket.once('close', cancel);
        }
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        const requestId = requestIdFrom(null);
        const socket = ctx.extra.socket;
        const auth = ctx.extra.auth!;
        if (ctx.extra.expired || (auth.expiresAt && auth.expiresAt.getTime() <= Date.now())) {
          socket.close(CloseCode.Forbidden, 'The token has expired: reconnect with a new one.');
          return [
            new GraphQLError('The token has expired: reconnect with a new one.', {
              extensions: { code: 'UNAUTHENTICATED' },
            }),
          ];
        }
        // graphql-ws counts this operation in ctx.subscriptions already.
        if (Object.keys(ctx.subscriptions).length > config.maxSubscriptionsPerConnection) {
          return [
            limitExceeded(
              `At most ${config.maxSubscriptionsPerConnection} operations at once on one connection (MAX_SUBSCRIPTIONS_PER_CONNECTION): complete one first, or open another connection.`,
            ),
          ];
        }
        if (connections.operations(credentialKey(auth.auth)) > config.maxSubscriptionsPerCredential) {
          return [
            limitExceeded(
              `At most ${config.maxSubscriptionsPerCredential} operations at once for one credential on this server (MAX_SUBSCRIPTIONS_PER_CREDENTIAL): complete some first.`,
            ),
          ];
        }
        const verdict = await rateLimiter.consume('credential', credentialKey(auth.auth));
        if (!verdict.allowed)
          return [
            rateLimited(
              'this credential’s operations per second (RATE_LIMIT_CREDENTIAL_PER_SECOND)',
              verdict.retryAfterSeconds,
            ),
          ];
        // A subscription's events are sent from SharedExecution with the payload serialized once
        // per group of identical subscribers: the same `next` message graphql-ws would send.
        const prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
        const deliverNext: DeliverNext = (payloadJson) => {
          if (socket.readyState === socket.OPEN) socket.send(`${prefix}${payloadJson}}`);
        };
        return withRequestId(requestId, async () => {
          const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
            ...ctx,
            socket,
            params: payload,
            wsAuth: ctx.extra.auth,
            deliverNext,
          });
          let document: DocumentNode;
          try {
            document = parse(payload.query);
          } catch (error) {
            return [error instanceof GraphQLError ? error : new GraphQLError(String(error))];
          }
          const errors = validate(schema, document);
          if (errors.length > 0) return errors.map(withoutHttpHints);
          // A variable its type refuses is a request error: an `error` message, as for validation.
          const operation = getOperationAST(document, payload.operationName);
          const variables =
            operation &&
            getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {}, { maxErrors: 50 });
          if (variables?.errors) return variables.errors.map(withoutHttpHints);
          return {
            schema,
            document,
            operationName: payload.operationName,
            variableValues: payload.variables,
            contextValue: await contextFactory(),
            rootValue: { execute, subscribe },
          };
        });
      },
      execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof import('graphql').subscribe }).subscribe(args),
    },
    wsServer,
  );

  return {
    get openSockets() {
      return wsServer.clients.size;
    },
    operations: () => connections.totalOperations(),
    close: async () => {
      for (const socket of wsServer.clients) socket.close(1001, 'Server shutting down');
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
    stopRevocations: async () => {
      await revocations.return();
      await familyRevocations.return();
      await sessionChanges.return();
    },
  };
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
