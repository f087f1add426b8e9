import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { getOperationAST, getVariableValues, GraphQLError, print, type DocumentNode } from 'graphql';
import { createYoga, isAsyncIterable, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Config } from './config.js';
import type { AppServices, Auth, Context } from './context.js';
import { openDatabase, type Database } from './db.js';
import { isDatabaseUnavailable } from './db/unavailable.js';
import { GRAPHIQL_ASSETS_PREFIX, GRAPHIQL_OPTIONS, GraphiQLAssets } from './graphiql.js';
import { schema } from './graphql/schema.js';
import { useOperationLimits } from './graphql/limits.js';
import { rateLimited, useRequestPolicy } from './graphql/request-policy.js';
import { RateLimiter } from './lib/rate-limit.js';
import { useRequestBodyLimit } from './lib/body-limit.js';
import { currentRequest, currentRequestId, requestIdFrom, withRequestId } from './lib/request-context.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics, metricsAuthorized, type Route } from './metrics.js';
import { Authenticator, type AuthResult } from './modules/auth/authenticate.js';
import { TokenSigner } from './modules/auth/tokens.js';
import { ClickRecorder } from './modules/click/click.service.js';
import { REDIRECT_PREFIX, serveRedirect, visitorIp } from './modules/click/redirect.js';
import { ApprovalJob } from './modules/reward/approval-job.js';
import { EventDispatcher } from './modules/events/dispatcher.js';
import { RetentionJob } from './modules/events/retention.js';
import { WebhookWorker } from './modules/webhook/delivery-worker.js';
import { createAppPubSub } from './pubsub.js';
import { ConnectionRegistry, credentialKey, runAt } from './realtime/connections.js';
import { SharedExecution, type DeliverNext } from './realtime/shared-execution.js';
import { loadInstallationSecret } from './secret.js';

export interface App {
  /** Listen on config.port (0: a free port). Resolves with the bound URL, e.g. http://127.0.0.1:4000. */
  start(): Promise<{ url: string; port: number }>;
  /** Stop accepting, close WebSockets with 1001, finish in-flight requests, close the database. */
  stop(): Promise<void>;
  readonly services: AppServices;
  readonly yoga: YogaServerInstance<ServerContext, Context>;
  /** Approves rewards whose hold period ended; runs every APPROVAL_JOB_INTERVAL_MS once started. */
  readonly approvalJob: ApprovalJob;
  /** Delivers committed outbox events to subscribers; `drain()` waits until all are published. */
  readonly dispatcher: EventDispatcher;
  /** Turns committed events into signed webhook deliveries and sends them; `runOnce(now)` for tests. */
  readonly webhooks: WebhookWorker;
  /** Deletes events and webhook deliveries past their retention; runs every RETENTION_INTERVAL_SECONDS, `runOnce(now)` for tests. */
  readonly retention: RetentionJob;
  /** Subscription events executed once per group of identical subscribers; counts for tests. */
  readonly subscriptionExecution: SharedExecution;
}

interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  /** Set for graphql-ws operations: the credential checked at connection_init. */
  wsAuth?: AuthResult;
}

export interface BuildAppOptions {
  config: Config;
  /** Use this database instead of opening the configured one (tests); the app will not close it. */
  db?: Database;
  logger?: Logger;
}

const GRAPHQL_PATH = '/graphql';
const METRICS_PATH = '/metrics';

/** A request's route, for the metrics: a fixed set of values whatever the path. */
function routeOf(path: string): Route {
  if (path === GRAPHQL_PATH) return 'graphql';
  if (path.startsWith(REDIRECT_PREFIX)) return 'redirect';
  if (path === '/healthz') return 'healthz';
  if (path === '/readyz') return 'readyz';
  if (path === METRICS_PATH) return 'metrics';
  return 'other';
}

/** Everything refgraph serves, on one port: GraphQL over HTTP and WebSocket, health checks. */
export async function buildApp(options: BuildAppOptions): Promise<App> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  const ownsDb = !options.db;
  const db =
    options.db ??
    (await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolSize: config.databasePoolSize,
      migrate: config.migrateOnStart,
      logger,
    }));
  const secret = await loadInstallationSecret(db, config.secret);
  const tokens = new TokenSigner(secret);
  const clicks = new ClickRecorder({ ...config.clicks, query: db.query, secret, logger });
  const bus = await createAppPubSub({ redisUrl: config.redisUrl, redisPrefix: config.redisPrefix });
  const dispatcher = new EventDispatcher(db, bus, logger, { pollIntervalMs: config.eventPollIntervalMs });
  const authenticator = new Authenticator(db, tokens, config.authCacheTtlMs);
  const services: AppServices = { config, db, logger, tokens, authenticator, clicks, pubsub: bus.pubsub };
  const approvalJob = new ApprovalJob(db.prisma, { intervalMs: config.approvalJobIntervalMs, logger });
  const webhooks = new WebhookWorker(db, { ...config.webhooks, intervalMs: config.webhooks.workerIntervalMs, logger });
  const retention = new RetentionJob(db, {
    ...config.retention,
    dispatchedThrough: (workspaceId, mode) => dispatcher.dispatchedThrough(workspaceId, mode),
    logger,
  });
  const rateLimiter = new RateLimiter(config.rateLimits, { redis: bus.redis, keyPrefix: config.redisPrefix, logger });
  const policy = useRequestPolicy({
    authenticate: (header) => authenticator.authenticate(header),
    consume: (limit, key) => rateLimiter.consume(limit, key),
    introspection: config.introspection,
    clientIp: (context) => {
      const { req, extra } = context as { req?: IncomingMessage; extra?: { ip?: string | null } };
      return req ? visitorIp(req, config.trustProxy) : (extra?.ip ?? null);
    },
  });
  // Yoga's masking, for subscription results that go straight to a socket (see SharedExecution).
  const subscriptionExecution = new SharedExecution({
    maskError: (error) => maskError(error, 'Unexpected error.', logger) as GraphQLError,
  });

  const metrics = new Metrics({
    db,
    clicks,
    dispatcher,
    webhooks,
    subscriptions: subscriptionExecution,
    openSockets: () => wsServer.clients.size,
    socketOperations: () => connections.totalOperations(),
    logger,
  });
  const graphiql = new GraphiQLAssets();

  const yoga = createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    // GraphiQL from the installed package, nothing from another host (src/graphiql.ts).
    graphiql: GRAPHIQL_OPTIONS,
    renderGraphiQL: graphiql.render,
    // Yoga's own lines go through the app's logger, GraphQL errors without their source excerpt:
    // a document can carry secrets in its string literals.
    logging: {
      debug: (...args) => logger.debug(args.map(loggable).join(' ')),
      info: (...args) => logger.info(args.map(loggable).join(' ')),
      warn: (...args) => logger.warn(args.map(loggable).join(' ')),
      // Yoga logs every error its masking replaced. A client's mistake thrown on purpose (a
      // GraphQLError inside the located one, e.g. UNAUTHENTICATED) is not a server error: debug.
      // Unexpected errors are logged by maskError, with the request id.
      error: (...args) =>
        (args.length > 0 && args.every(isClientError) ? logger.debug : logger.error).call(
          logger,
          args.map(loggable).join(' '),
        ),
    },
    maskedErrors: {
      maskError: (error, message) => maskError(error, message, logger),
    },
    // Yoga's own body limit streams every body through a TransformStream; useRequestBodyLimit
    // checks Content-Length instead, and counts only chunked bodies (src/lib/body-limit.ts).
    maxRequestBodySize: false,
    plugins: [
      policy.plugin, // first: the credential and the rate limits, before any parsing
      metrics.plugin(),
      useOperationLimits(config.limits), // before subscriptionExecution: a refused subscription never starts
      useOperationIdentity(),
      useCursorErrorCode(),
      subscriptionExecution.plugin(),
      ...(config.production ? [] : [useStatementCountHeader()]),
      graphiql.plugin(),
      useRequestBodyLimit(config.maxRequestBodyBytes), // last: wraps the request parser Yoga selected
    ],
    context: async ({ request, wsAuth }): Promise<Context> => {
      const result =
        wsAuth ?? policy.authOf(request) ?? (await authenticator.authenticate(request.headers.get('authorization')));
      return {
        ...services,
        requestId: currentRequestId() ?? requestIdFrom(null),
        auth: result.auth,
        authError: result.error,
        loaders: new Map(),
      };
    },
  });

  const server: Server = createServer((req, res) => {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id'] as string | undefined);
    res.setHeader('x-request-id', requestId);
    withRequestId(requestId, () => {
      const scope = currentRequest()!;
      res.once('close', () => finished(req, res, started, scope.operation?.name ?? null));
      return route(req, res);
    }).catch((error: unknown) => {
      logger.error({ err: error, requestId }, 'request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'internal error', requestId }));
    });
  });

  /**
   * Once a response has ended (or its connection closed): the request's duration for the metrics
   * and its access-log line. The line has no query string (a GET /graphql carries its document
   * there), no headers, no variables.
   */
  function finished(req: IncomingMessage, res: ServerResponse, started: number, operation: string | null): void {
    const seconds = (performance.now() - started) / 1000;
    const path = (req.url ?? '/').split('?', 1)[0]!;
    metrics.observeHttp(routeOf(path), res.statusCode, seconds);
    if (!config.accessLog || !logger.isLevelEnabled('info')) return;
    logger.info(
      {
        method: req.method,
        path: path.length > 256 ? `${path.slice(0, 255)}…` : path,
        status: res.statusCode,
        durationMs: Math.round(seconds * 10_000) / 10,
        ...(operation ? { operation: operation.slice(0, 100) } : {}),
        ...(res.writableFinished ? {} : { aborted: true }),
        requestId: res.getHeader('x-request-id'),
      },
      'request',
    );
  }

  // Longer than any client's or proxy's idle timeout, so a client never reuses a connection the
  // server is closing at the same moment (ECONNRESET on the next request).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      return json(res, 200, { status: 'ok' });
    }
    if (path === '/readyz' && (req.method === 'GET' || req.method === 'HEAD')) {
      try {
        await withTimeout(db.ping(), 2000, 'database did not answer within 2 s');
        return json(res, 200, { status: 'ready', database: db.kind });
      } catch (error) {
        logger.warn({ err: error }, 'readiness check failed');
        return json(res, 503, { status: 'unavailable', database: db.kind, reason: 'database not reachable' });
      }
    }
    if (path === GRAPHQL_PATH) {
      await yoga.handle(req, res, { req, res });
      return;
    }
    if (path === METRICS_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      if (!metricsAuthorized(config.metricsToken, req.headers.authorization)) {
        res.writeHead(401, {
          'content-type': 'text/plain; charset=utf-8',
          'www-authenticate': 'Bearer realm="metrics"',
          'cache-control': 'no-store',
        });
        res.end('Send Authorization: Bearer <METRICS_TOKEN>.\n');
        return;
      }
      const { body, contentType } = await metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path?.startsWith(GRAPHIQL_ASSETS_PREFIX)) {
      return graphiql.serve(req, res, path);
    }
    if (path?.startsWith(REDIRECT_PREFIX)) {
      const verdict = await rateLimiter.consume('redirect', visitorIp(req, config.trustProxy) ?? 'unknown');
      if (!verdict.allowed) {
        res.writeHead(429, {
          'content-type': 'text/plain; charset=utf-8',
          'retry-after': String(verdict.retryAfterSeconds),
          'cache-control': 'no-store',
        });
        res.end(`Too many requests from your address. Retry after ${verdict.retryAfterSeconds} s.\n`);
        return;
      }
      return serveRedirect(req, res, path, services);
    }
    return json(res, 404, { error: `No route for ${req.method} ${path}. GraphQL is served at ${GRAPHQL_PATH}.` });
  }

  const wsServer = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: 1024 * 1024 });
  // Open connections by API key, refresh-token family and credential: revoking a key or a family
  // (on any instance) closes its connections; operations are limited per credential.
  const connections = new ConnectionRegistry();
  const revocations = bus.pubsub.subscribe('keyRevoked');
  void (async () => {
    for await (const { apiKeyId } of revocations) {
      authenticator.forget(apiKeyId);
      connections.close(`key:${apiKeyId}`, CloseCode.Forbidden, 'The credential was revoked.');
    }
  })().catch((error: unknown) => logger.error({ err: error }, 'revocation listener failed'));
  const familyRevocations = bus.pubsub.subscribe('tokenFamilyRevoked');
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
  useServer<{ authorization?: unknown }, { auth?: AuthResult & { auth: Auth }; expired?: boolean; ip?: string | null }>(
    {
      onConnect: async (ctx) => {
        const header = ctx.connectionParams?.authorization;
        const result = await authenticator.authenticate(typeof header === 'string' ? header : null);
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

  let stopping: Promise<void> | null = null;
  return {
    services,
    yoga,
    approvalJob,
    dispatcher,
    webhooks,
    retention,
    subscriptionExecution,
    start: async () => {
      await dispatcher.start();
      await webhooks.start();
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          const { port } = server.address() as AddressInfo;
          const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
          logger.info({ port, database: db.describe }, `refgraph listening on http://${host}:${port}${GRAPHQL_PATH}`);
          approvalJob.start();
          retention.start();
          resolve({ url: `http://${host}:${port}`, port });
        });
      });
    },
    stop: () =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of wsServer.clients) socket.close(1001, 'Server shutting down');
        await new Promise<void>((resolve) => wsServer.close(() => resolve()));
        server.closeIdleConnections();
        const forced = setTimeout(() => server.closeAllConnections(), 5000);
        await closed;
        clearTimeout(forced);
        await yoga.dispose();
        await clicks.stop(); // every acknowledged click is written before the database closes
        await approvalJob.stop(); // a batch in progress commits before the database closes
        await webhooks.stop(); // attempts in flight are recorded before the database closes
        await retention.stop(); // a batch in progress commits before the database closes
        await revocations.return();
        await familyRevocations.return();
        await dispatcher.stop();
        await bus.close();
        metrics.close();
        if (ownsDb) await db.close();
        logger.info('refgraph stopped');
      })()),
  };
}

/** Notes the operation's name and document hash in the request scope, for the logs. */
function useOperationIdentity(): Plugin {
  const hashes = new WeakMap<DocumentNode, string>();
  const note = (args: { document: DocumentNode; operationName?: string | null }) => {
    const scope = currentRequest();
    if (!scope) return;
    let documentHash = hashes.get(args.document);
    if (documentHash === undefined) {
      documentHash = createHash('sha256')
        .update(args.document.loc?.source.body ?? print(args.document))
        .digest('hex')
        .slice(0, 16);
      hashes.set(args.document, documentHash);
    }
    scope.operation = {
      name: args.operationName ?? getOperationAST(args.document, args.operationName)?.name?.value ?? null,
      documentHash,
    };
  };
  return { onExecute: ({ args }) => note(args), onSubscribe: ({ args }) => note(args) };
}

/**
 * Pothos refuses a malformed connection cursor with a GraphQLError of its own, which skips
 * masking and carries no code: give it BAD_USER_INPUT so clients can tell it is their mistake.
 */
function useCursorErrorCode(): Plugin {
  const tag = (error: GraphQLError) =>
    /^(Invalid cursor|Cursor must be)/.test(error.message) && !error.extensions['code']
      ? new GraphQLError(`${error.message}. Pass a cursor you received from this connection.`, {
          nodes: error.nodes,
          path: error.path,
          extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
        })
      : error;
  return {
    onExecute: () => ({
      onExecuteDone: ({ result, setResult }) => {
        if (!isAsyncIterable(result) && result.errors?.length) setResult({ ...result, errors: result.errors.map(tag) });
      },
    }),
  };
}

/**
 * Outside production, every GraphQL response says how many SQL statements the request sent
 * (`X-SQL-Statements`; background work is not counted): the tests use it to catch N+1 queries.
 */
function useStatementCountHeader(): Plugin {
  return {
    onResponse: ({ response }) => {
      response.headers.set('x-sql-statements', String(currentRequest()?.statements ?? 0));
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A refused WebSocket operation: too many at once on a connection or for a credential. */
function limitExceeded(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'LIMIT_EXCEEDED' } });
}

/**
 * A value Yoga logs, as text. A GraphQLError prints the document lines it points at, string
 * literals and all: only its message, path and code are kept.
 */
function loggable(value: unknown): string {
  if (value instanceof GraphQLError) {
    const path = value.path?.join('.');
    const code = value.extensions['code'];
    return `${value.message}${path ? ` (at ${path})` : ''}${code ? ` [${String(code)}]` : ''}`;
  }
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return String(value);
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

/** A GraphQL error that wraps one thrown on purpose for the client (see maskError). */
function isClientError(value: unknown): boolean {
  return value instanceof GraphQLError && value.originalError instanceof GraphQLError;
}

/** What a client is told to wait while the database is unreachable. */
const RETRY_AFTER_OUTAGE_SECONDS = 5;

/**
 * Unexpected errors reach the client as "Unexpected error." with the request id; the cause is
 * logged. The database being unreachable is not unexpected: SERVICE_UNAVAILABLE, HTTP 503.
 */
function maskError(error: unknown, message: string, logger: Logger): Error {
  const requestId = currentRequestId();
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (error instanceof GraphQLError && !original) return error; // already a client-facing error
  // A variable refused by its type (a scalar threw a GraphQLError): GraphQL's wrapper names the variable.
  if (error instanceof GraphQLError && !error.path && original instanceof GraphQLError && !original.originalError)
    return error;
  if (original instanceof GraphQLError) return original;
  if (isDatabaseUnavailable(original)) {
    logger.warn({ err: original, requestId }, 'request failed: database unreachable'); // folded to one line a second (logger.ts)
    return new GraphQLError('The service is temporarily unavailable (its database cannot be reached): retry later.', {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: {
        code: 'SERVICE_UNAVAILABLE',
        requestId,
        http: { status: 503, headers: { 'Retry-After': String(RETRY_AFTER_OUTAGE_SECONDS) } },
      },
    });
  }
  // The operation's name and document hash identify it; its text (which may hold secrets) is never logged.
  logger.error(
    {
      err: original,
      requestId,
      operation: currentRequest()?.operation,
      path: error instanceof GraphQLError ? error.path : undefined,
    },
    'unexpected error',
  );
  return new GraphQLError(message, {
    nodes: error instanceof GraphQLError ? error.nodes : undefined,
    path: error instanceof GraphQLError ? error.path : undefined,
    extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
  });
}
