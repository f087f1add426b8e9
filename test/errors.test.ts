import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// This file breaks its own database on purpose, so it has a server of its own.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('unexpected errors', () => {
  it('are masked with the request id, and never leak SQL or table names', async () => {
    const ws = await server.workspace();
    await server.testDb.db.query('alter table "Workspace" rename column "name" to "renamed_name"');
    try {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${ws.keys.test.secret}`,
          'x-request-id': 'req-broken-1',
        },
        body: JSON.stringify({ query: '{ viewer { workspace { name } } }' }),
      });
      const body = (await res.json()) as { errors: Array<{ message: string; extensions: Record<string, unknown> }> };
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]).toMatchObject({
        message: 'Unexpected error.',
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'req-broken-1' },
      });
      expect(JSON.stringify(body)).not.toMatch(/renamed_name|\\"Workspace|does not exist|prisma/i);
    } finally {
      await server.testDb.db.query('alter table "Workspace" rename column "renamed_name" to "name"');
    }
  });

  it('reports GraphQL syntax and validation errors to the client as they are', async () => {
    const res = await server.gql('{ viewer { nope } }');
    expect(res.errors?.[0]?.message).toContain('Cannot query field "nope"');
  });
});

describe('bad cursors', () => {
  it('are a client error, not an unexpected one', async () => {
    const ws = await server.workspace();
    const res = await server.gql(
      '{ rewards(first: 2, after: "not-a-cursor") { totalCount } }',
      {},
      ws.keys.test.secret,
    );
    expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res)).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toContain('cursor');
  });
});

describe('malformed global ids', () => {
  it('are BAD_USER_INPUT at their field, for node and nodes', async () => {
    const ws = await server.workspace();
    const node = await server.gql('{ node(id: "garbage") { id } }', {}, ws.keys.test.secret);
    expect(node.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([['BAD_USER_INPUT', ['node']]]);
    expect(node.errors?.[0]?.message).toBe('Invalid global ID: garbage. Ids are opaque: use one this API returned.');
    const nodes = await server.gql('{ nodes(ids: ["garbage"]) { id } }', {}, ws.keys.test.secret);
    expect(nodes.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([['BAD_USER_INPUT', ['nodes']]]);
  });
});

describe('logging', () => {
  it('does not log a client’s mistake as a server error, and still logs an unexpected one', async () => {
    const records: Array<{ level: number; msg: string }> = [];
    const stream = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          records.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    });
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', APPROVAL_JOB_INTERVAL_MS: '0' });
    const app = await buildApp({ config, db: server.testDb.db, logger: pino({ level: 'warn' }, stream) });
    const { url } = await app.start();
    const post = (query: string, token?: string) =>
      fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query }),
      }).then((res) => res.json() as Promise<{ errors?: Array<{ extensions?: { code?: string } }> }>);
    try {
      const ws = await server.workspace();
      expect((await post('{ viewer { role } }')).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      expect(
        (await post('{ rewards(first: 2, after: "not-a-cursor") { totalCount } }', ws.keys.test.secret)).errors?.[0]
          ?.extensions?.code,
      ).toBe('BAD_USER_INPUT');
      expect(records.filter((r) => r.level >= 40)).toEqual([]);
      await server.testDb.db.query('alter table "Workspace" rename column "name" to "renamed_name"');
      try {
        expect(
          (await post('{ viewer { workspace { name } } }', ws.keys.test.secret)).errors?.[0]?.extensions?.code,
        ).toBe('INTERNAL_SERVER_ERROR');
      } finally {
        await server.testDb.db.query('alter table "Workspace" rename column "renamed_name" to "name"');
      }
      expect(records.filter((r) => r.level >= 50).map((r) => r.msg)).toContain('unexpected error');
    } finally {
      await app.stop();
    }
  });
});

describe('logs never hold a document’s text', () => {
  it('logs an unexpected error with the operation’s name and document hash, not its string literals or variables', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    // debug: Yoga's own lines too.
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'debug', APPROVAL_JOB_INTERVAL_MS: '0' });
    const app = await buildApp({ config, db: server.testDb.db, logger: pino({ level: 'debug' }, stream) });
    const { url } = await app.start();
    const secret = 'rg_live_TOPSECRETliteral0123456789abcdef';
    const post = (body: unknown, token?: string) =>
      fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      }).then((res) => res.json() as Promise<{ errors?: Array<{ extensions?: { code?: string } }> }>);
    try {
      const ws = await server.workspace();
      await server.testDb.db.query('alter table "Workspace" rename column "name" to "renamed_name"');
      try {
        const query = `query Leaky($v: String) { viewer { workspace { name } } a: partner(externalId: "${secret}") { id } b: partner(externalId: $v) { id } }`;
        const res = await post(
          { query, variables: { v: `${secret}-variable` }, operationName: 'Leaky' },
          ws.keys.test.secret,
        );
        expect(res.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
        // A syntax error in a document that carries a secret.
        await post({ query: `{ partner(externalId: "${secret}") { id ` }, ws.keys.test.secret);
      } finally {
        await server.testDb.db.query('alter table "Workspace" rename column "renamed_name" to "name"');
      }
      const all = lines.join('\n');
      expect(all).not.toContain('TOPSECRET');
      const unexpected = lines
        .map((l) => JSON.parse(l) as { msg: string; operation?: { name: string; documentHash: string } })
        .find((l) => l.msg === 'unexpected error');
      expect(unexpected?.operation).toEqual({ name: 'Leaky', documentHash: expect.stringMatching(/^[0-9a-f]{16}$/) });
    } finally {
      await app.stop();
    }
  });
});
