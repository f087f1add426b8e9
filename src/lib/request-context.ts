import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

interface RequestScope {
  requestId: string;
  /** SQL statements this request sent (background work is not counted: it runs outside). */
  statements: number;
  /** The GraphQL operation being run: its name and a hash of its document (never the text: it may hold secrets). */
  operation?: { name: string | null; documentHash: string };
}

const storage = new AsyncLocalStorage<RequestScope>();

/** Run `fn` with a request id visible to everything it calls (error masking, logs, SQL counting). */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId, statements: 0 }, fn);
}

/** The current request's id, if inside one. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** The current request's scope, if inside one. */
export function currentRequest(): RequestScope | undefined {
  return storage.getStore();
}

/** Run `fn` outside any request, e.g. fire-and-forget work a request starts but does not own. */
export function outsideRequest<T>(fn: () => T): T {
  return storage.exit(fn);
}

/** A caller-supplied X-Request-Id when it is sane, else a new one. */
export function requestIdFrom(header: string | null | undefined): string {
  return header && /^[A-Za-z0-9._:-]{1,128}$/.test(header) ? header : randomUUID();
}
