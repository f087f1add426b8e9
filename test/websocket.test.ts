import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

function wsUrl(): string {
  return `${server.url.replace(/^http/, 'ws')}/graphql`;
}

function client(connectionParams: Record<string, unknown>): Client {
  return createClient({
    url: wsUrl(),
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
  });
}

function once<T>(c: Client, query: string): Promise<{ data?: T; errors?: unknown }> {
  return new Promise((resolve, reject) => {
    let result: { data?: T; errors?: unknown } | undefined;
    c.subscribe<T>(
      { query },
      { next: (value) => (result = value as never), error: reject, complete: () => resolve(result!) },
    );
  });
}

describe('graphql-ws on the same port and path', () => {
  it('runs an operation over a real WebSocket with the key from connection_init', async () => {
    const ws = await server.workspace('Socket Co');
    const c = client({ authorization: `Bearer ${ws.keys.live.secret}` });
    try {
      const result = await once<{ viewer: { mode: string; workspace: { name: string } } }>(
        c,
        '{ viewer { mode workspace { name } } }',
      );
      expect(result.errors).toBeUndefined();
      expect(result.data).toEqual({ viewer: { mode: 'LIVE', workspace: { name: 'Socket Co' } } });
    } finally {
      await c.dispose();
    }
  });

  /** Open a raw socket, send connection_init with `payload`, resolve with the close event. */
  function refused(payload: Record<string, unknown>): Promise<{ code: number; reason: string }> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(wsUrl(), 'graphql-transport-ws');
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload })));
      socket.on('message', (data) => reject(new Error(`expected a close, got ${String(data)}`)));
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  it('closes a connection without a credential with 4403 and a reason', async () => {
    const event = await refused({});
    expect(event.code).toBe(4403);
    expect(event.reason).toContain('Authentication required');
  });

  it('closes a connection with an unknown key with 4403', async () => {
    expect(await refused({ authorization: 'Bearer rg_live_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' })).toEqual({
      code: 4403,
      reason: 'Unknown secret key.',
    });
  });
});

describe('graceful stop', () => {
  it('closes open sockets with 1001 and stops answering', async () => {
    const own = await startTestServer();
    const ws = await own.workspace();
    const closed = new Promise<number>((resolve) => {
      const socket = new WebSocket(`${own.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
      socket.on('open', () =>
        socket.send(
          JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${ws.keys.test.secret}` } }),
        ),
      );
      socket.on('message', (data) => {
        if (JSON.parse(String(data)).type === 'connection_ack') void own.close();
      });
      socket.on('close', (code) => resolve(code));
    });
    expect(await closed).toBe(1001);
    await expect(fetch(`${own.url}/healthz`)).rejects.toThrow();
  });
});
