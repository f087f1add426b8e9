import type { WebSocket } from 'ws';

/** What the registry needs of one graphql-transport-ws connection (transport-ws.ts). */
export interface Connection {
  socket: WebSocket;
  /** The operations in flight on this connection (subscriptions and single results). */
  operations: { readonly size: number };
}

/**
 * The open graphql-transport-ws connections, by the keys that can end them or limit them together:
 * `key:<apiKeyId>` (revoking the key closes every connection made with it or its tokens),
 * `family:<refreshFamilyId>` (a replayed refresh token closes its access tokens' connections) and
 * `credential:…` (operations counted across one credential's connections, see `credentialKey`).
 * Per instance: each instance knows its own sockets; revocations reach every instance by pub/sub.
 */
export class ConnectionRegistry {
  private readonly byKey = new Map<string, Set<Connection>>();

  /** Register `connection` under `keys` until its socket closes. */
  add(connection: Connection, keys: readonly string[]): void {
    for (const key of keys) {
      const set = this.byKey.get(key) ?? new Set();
      set.add(connection);
      this.byKey.set(key, set);
    }
    connection.socket.once('close', () => {
      for (const key of keys) {
        const set = this.byKey.get(key);
        set?.delete(connection);
        if (set?.size === 0) this.byKey.delete(key);
      }
    });
  }

  /** Close every connection registered under `key`. */
  close(key: string, code: number, reason: string): void {
    for (const connection of this.byKey.get(key) ?? []) connection.socket.close(code, reason);
  }

  /** Operations in flight on all connections registered under `key`. */
  operations(key: string): number {
    let total = 0;
    for (const connection of this.byKey.get(key) ?? []) total += connection.operations.size;
    return total;
  }
}

/**
 * The key under which one credential's operations are counted: a key (and its access tokens), one
 * partner's tokens of a key, or one member (all their sessions).
 */
export function credentialKey(auth: {
  apiKeyId: string | null;
  partnerId: string | null;
  memberId?: string | null;
}): string {
  if (auth.memberId) return `credential:member:${auth.memberId}`;
  return auth.partnerId ? `credential:${auth.apiKeyId}:${auth.partnerId}` : `credential:${auth.apiKeyId}`;
}

/** setTimeout takes at most 2^31-1 ms (~24.8 days); a partner token may live 30 days. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Run `fn` at `at` (however far away); returns a function that cancels it. */
export function runAt(at: Date, fn: () => void): () => void {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const wait = at.getTime() - Date.now();
    if (wait <= 0) return fn();
    timer = setTimeout(arm, Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}
