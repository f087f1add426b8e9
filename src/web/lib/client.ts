// One urql client per page: queries and mutations over HTTP to /graphql, subscriptions over the
// WebSocket (graphql-ws). A partner token (the portal, the widget) travels as a Bearer header and
// as `authorization` in connection_init; a member's session (the dashboard) is the HttpOnly cookie,
// with the CSRF cookie's value echoed in X-CSRF-Token and in connection_init.
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';

export type Credential = { kind: 'token'; token: string } | { kind: 'session' };

/** The value of the readable CSRF cookie the server sets at sign-in, or ''. */
export function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)refgraph_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1] ?? '') : '';
}

export function graphqlUrl(base: string = location.origin): string {
  return new URL('/graphql', base).href;
}

export function createRefgraphClient(credential: Credential, base: string = location.origin): Client {
  const url = graphqlUrl(base);
  const ws = createWsClient({
    url: url.replace(/^http/, 'ws'),
    lazy: true,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: (event) => !(event && typeof event === 'object' && 'code' in event && event.code === 4403),
    connectionParams: () =>
      credential.kind === 'token' ? { authorization: `Bearer ${credential.token}` } : { csrfToken: csrfToken() },
  });
  return new Client({
    url,
    requestPolicy: 'cache-and-network',
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
    fetchOptions: (): RequestInit =>
      credential.kind === 'token'
        ? { headers: { authorization: `Bearer ${credential.token}` }, credentials: 'omit' }
        : { headers: { 'x-csrf-token': csrfToken() }, credentials: 'same-origin' },
  });
}
