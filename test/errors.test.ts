import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ws.keys.test.secret}`, 'x-request-id': 'req-broken-1' },
        body: JSON.stringify({ query: '{ viewer { workspace { name } } }' }),
      });
      const body = (await res.json()) as { errors: Array<{ message: string; extensions: Record<string, unknown> }> };
      expect(body.errors).toHaveLength(1);
      expect(body.errors[0]).toMatchObject({ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'req-broken-1' } });
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
    const res = await server.gql('{ rewards(first: 2, after: "not-a-cursor") { totalCount } }', {}, ws.keys.test.secret);
    expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res)).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.message).toContain('cursor');
  });
});
