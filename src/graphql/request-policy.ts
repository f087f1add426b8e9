import { blockFieldSuggestionsPlugin } from '@escape.tech/graphql-armor-block-field-suggestions';
import { type DocumentNode, getOperationAST, GraphQLError, NoSchemaIntrospectionCustomRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Verdict } from '../lib/rate-limit.js';
import type { AuthResult } from '../modules/auth/authenticate.js';
import { credentialKey } from '../realtime/connections.js';

/** Who may introspect the schema (and get "Did you mean …?" hints in validation errors). */
export type IntrospectionPolicy = 'public' | 'authenticated' | 'off';

/** The mutations that need no credential and mint one: limited per IP. */
const TOKEN_FIELDS = new Set(['issueAccessToken', 'refreshAccessToken']);
/** The mutations a request with a session cookie may send without its CSRF header: they sign in afresh. */
const SIGN_IN_FIELDS = new Set(['signIn', 'acceptInvitation']);

export interface RequestPolicyOptions {
  /** The request's credential; 'csrf': a session cookie without the CSRF header bound to it. */
  authenticate(request: Request): Promise<AuthResult | 'csrf'>;
  consume(limit: 'credential' | 'anonymous' | 'tokens', key: string): Promise<Verdict>;
  introspection: IntrospectionPolicy;
  /** The caller's IP from a GraphQL context (HTTP request or WebSocket connection). */
  clientIp(context: unknown): string | null;
}

/** Over a rate limit: HTTP 429 with Retry-After, `extensions.code` RATE_LIMITED. */
export function rateLimited(what: string, retryAfterSeconds: number): GraphQLError {
  return new GraphQLError(`Too many requests: ${what}. Retry after ${retryAfterSeconds} s.`, {
    extensions: {
      code: 'RATE_LIMITED',
      retryAfter: retryAfterSeconds,
      http: { status: 429, headers: { 'Retry-After': String(retryAfterSeconds) } },
    },
  });
}

const CSRF_MESSAGE =
  'A request authenticated by the session cookie must carry the X-CSRF-Token header with the value of the refgraph_csrf cookie (or use an Authorization header instead).';

/** A session cookie without its CSRF header: HTTP 403, `extensions.code` CSRF_REQUIRED. */
export function csrfRequired(): GraphQLError {
  return new GraphQLError(CSRF_MESSAGE, { extensions: { code: 'CSRF_REQUIRED', http: { status: 403 } } });
}

/**
 * Per request, before anything is parsed: the credential (checked once; the context reuses it)
 * and the rate limits — per credential with one, per IP without (requests without a valid
 * credential, and the token mutations with or without one). Then the introspection policy.
 */
export function useRequestPolicy(options: RequestPolicyOptions): {
  plugin: Plugin;
  authOf(request: Request): AuthResult | undefined;
} {
  const checked = new WeakMap<Request, AuthResult>();
  /** Requests with a session cookie but not its CSRF header. */
  const withoutCsrf = new WeakSet<Request>();
  /** A request without its CSRF header may only sign in. */
  const refusedForCsrf = (args: { document: DocumentNode; operationName?: string | null; contextValue: unknown }) => {
    const request = (args.contextValue as { request?: Request }).request;
    if (!request || !withoutCsrf.has(request)) return false;
    const operation = getOperationAST(args.document, args.operationName);
    return !(
      operation?.operation === 'mutation' &&
      operation.selectionSet.selections.every(
        (s) => s.kind === 'Field' && (SIGN_IN_FIELDS.has(s.name.value) || s.name.value === '__typename'),
      )
    );
  };
  const hideSuggestions = blockFieldSuggestionsPlugin().onValidate!;
  const authenticated = (context: { request?: Request; wsAuth?: AuthResult }): boolean =>
    Boolean(context.wsAuth?.auth ?? (context.request ? checked.get(context.request)?.auth : null));

  const plugin: Plugin = {
    onParams: async ({ request, context, setResult }) => {
      const outcome = await options.authenticate(request);
      const result: AuthResult = outcome === 'csrf' ? { auth: null, error: CSRF_MESSAGE } : outcome;
      checked.set(request, result);
      if (outcome === 'csrf') {
        // The cookie does not count. Only signing in is allowed without the header (a page whose
        // session ended server-side still holds the cookie); anything else is refused before it
        // runs (onExecute, onSubscribe).
        withoutCsrf.add(request);
      }
      const verdict = result.auth
        ? await options.consume('credential', credentialKey(result.auth))
        : await options.consume('anonymous', options.clientIp(context) ?? 'unknown');
      if (!verdict.allowed) {
        setResult({
          errors: [
            rateLimited(
              result.auth
                ? 'this credential’s operations per second (RATE_LIMIT_CREDENTIAL_PER_SECOND)'
                : 'requests without a valid credential from this address (RATE_LIMIT_ANONYMOUS_PER_MINUTE)',
              verdict.retryAfterSeconds,
            ),
          ],
        });
      }
    },
    onValidate: (payload) => {
      const { introspection } = options;
      if (introspection === 'public' || (introspection === 'authenticated' && authenticated(payload.context as never)))
        return;
      payload.addValidationRule(NoSchemaIntrospectionCustomRule);
      return hideSuggestions(payload as never);
    },
    onSubscribe: ({ args, setResultAndStopExecution }) => {
      if (refusedForCsrf(args)) setResultAndStopExecution({ errors: [csrfRequired()] });
    },
    onExecute: async ({ args, setResultAndStopExecution }) => {
      if (refusedForCsrf(args)) {
        setResultAndStopExecution({ errors: [csrfRequired()] });
        return;
      }
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== 'mutation') return;
      if (!operation.selectionSet.selections.some((s) => s.kind === 'Field' && TOKEN_FIELDS.has(s.name.value))) return;
      const verdict = await options.consume('tokens', options.clientIp(args.contextValue) ?? 'unknown');
      if (!verdict.allowed) {
        setResultAndStopExecution({
          errors: [
            rateLimited('token requests from this address (RATE_LIMIT_TOKENS_PER_MINUTE)', verdict.retryAfterSeconds),
          ],
        });
      }
    },
  };
  return { plugin, authOf: (request) => checked.get(request) };
}
