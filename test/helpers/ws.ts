import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

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
export function subscribe<T = Record<string, unknown>>(client: Client, query: string, variables?: Record<string, unknown>): Subscription<T> {
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
        const timer = setTimeout(() => reject(new Error(`no subscription result within ${timeoutMs} ms`)), timeoutMs);
        waiting.push((value) => {
          clearTimeout(timer);
          resolve(value);
        });
      });
    },
    close: async () => unsubscribe(),
  };
}
