import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DocumentNode, GraphQLError, getOperationAST, print } from 'graphql';
import { PothosValidationError } from '@pothos/core';
import { createYoga, isAsyncIterable, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { useCookies } from '@whatwg-node/server-plugin-cookies';
import type { Config } from '../config.js';
import { type AppServices, type Context, RequestLoaders } from '../context.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { GRAPHIQL_OPTIONS, type GraphiQLAssets } from '../graphiql.js';
import { useRequestBodyLimit } from '../http/body-limit.js';
import type { RateLimiter } from '../lib/rate-limit.js';
import { currentRequest, currentRequestId, requestIdFrom } from '../lib/request-context.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Authenticator, AuthResult } from '../modules/auth/authenticate.js';
import { CursorExpired } from '../modules/events/retention.js';
import { DomainError } from '../domain/errors.js';
import { visitorIp } from '../modules/click/redirect.js';
import type { SharedExecution } from '../realtime/shared-execution.js';
import { sessionCookies } from '../modules/member/session-cookies.js';
import { CSRF_HEADER, SESSION_COOKIE } from '../modules/member/session-tokens.js';
import { useOperationLimits } from './limits.js';
import { useRequestPolicy } from './request-policy.js';
import { schema } from './schema.js';

export const GRAPHQL_PATH = '/graphql';

export interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  /** Set for graphql-ws operations: the credential checked at connection_init. */
  wsAuth?: AuthResult;
}

export type ApiYoga = YogaServerInstance<ServerContext, Context>;

export interface ApiYogaOptions {
  config: Config;
  logger: Logger;
  services: AppServices;
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  metrics: Metrics;
  subscriptionExecution: SharedExecution;
  graphiql: GraphiQLAssets;
}

/** The GraphQL server (HTTP, SSE, and graphql-ws through getEnveloped): the schema, its plugins, the context. */
export function createApiYoga(options: ApiYogaOptions): ApiYoga {
  const { config, logger, services, authenticator, rateLimiter, metrics, subscriptionExecution, graphiql } = options;
  const secureCookies = new URL(config.publicUrl).protocol === 'https:';
  const policy = useRequestPolicy({
    // A request with an Authorization header uses it and ignores cookies. Without one, the
    // dashboard's session cookie counts only with the X-CSRF-Token header bound to it.
    authenticate: async (request) => {
      const header = request.headers.get('authorization');
      if (header) return authenticator.authenticate(header);
      const token = (await request.cookieStore?.get(SESSION_COOKIE))?.value;
      if (!token) return { auth: null, error: null };
      if (!services.csrf.matches(token, request.headers.get(CSRF_HEADER))) return 'csrf';
      return authenticator.session(token);
    },
    consume: (limit, key) => rateLimiter.consume(limit, key),
    introspection: config.introspection,
    clientIp: (context) => {
      const { req, extra } = context as { req?: IncomingMessage; extra?: { ip?: string | null } };
      return req ? visitorIp(req, config.trustProxy) : (extra?.ip ?? null);
    },
  });

  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    // Any origin may call the API with a Bearer credential (the widget on a company's pages, a
    // partner portal of their own), but never with the browser's credentials: a member's session
    // cookie works from refgraph's own pages only.
    cors: { credentials: false },
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
      useCookies(), // request.cookieStore, and Set-Cookie for what resolvers set in it
      policy.plugin, // the credential: the credential and the rate limits, before any parsing
      metrics.plugin(),
      useOperationLimits(config.limits), // before subscriptionExecution: a refused subscription never starts
      useOperationIdentity(),
      useCursorErrorCode(),
      subscriptionExecution.plugin(),
      ...(config.production ? [] : [useStatementCountHeader()]),
      graphiql.plugin(),
      useRequestBodyLimit(config.maxRequestBodyBytes), // last: wraps the request parser Yoga selected
    ],
    context: async (initial): Promise<Context> => {
      const { request, wsAuth, req } = initial;
      const result =
        wsAuth ?? policy.authOf(request) ?? (await authenticator.authenticate(request.headers.get('authorization')));
      const extra = (initial as { extra?: { ip?: string | null } }).extra;
      return {
        ...services,
        requestId: currentRequestId() ?? requestIdFrom(null),
        auth: result.auth,
        authError: result.error,
        clientIp: req ? visitorIp(req, config.trustProxy) : (extra?.ip ?? null),
        sessionCookies:
          !wsAuth && request?.cookieStore ? sessionCookies(request.cookieStore, services.csrf, secureCookies) : null,
        loaders: new RequestLoaders(),
      };
    },
  });
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
export function maskError(error: unknown, message: string, logger: Logger): Error {
  const requestId = currentRequestId();
  const original = error instanceof GraphQLError ? error.originalError : error;
  if (error instanceof GraphQLError && !original) return error; // already a client-facing error
  // A variable refused by its type (a scalar threw a GraphQLError): GraphQL's wrapper names the variable.
  if (error instanceof GraphQLError && !error.path && original instanceof GraphQLError && !original.originalError)
    return error;
  if (original instanceof CursorExpired) {
    return new GraphQLError(original.message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: 'CURSOR_EXPIRED', field: ['after'], horizon: original.horizon.toString() },
    });
  }
  // A query field's argument the domain refused (mutations answer userErrors instead), e.g. a
  // statement whose \`from\` is after its \`to\`: the caller's mistake, with its code and field.
  if (original instanceof DomainError) {
    return new GraphQLError(original.message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: original.code, field: original.field },
    });
  }
  // An argument Pothos could not decode (a malformed global id): the caller's mistake, at its field.
  if (original instanceof PothosValidationError) {
    return new GraphQLError(`${original.message}. Ids are opaque: use one this API returned.`, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
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
