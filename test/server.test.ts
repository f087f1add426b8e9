import http from 'node:http';
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('HTTP server', () => {
  it('answers /healthz', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers /readyz after checking the database', async () => {
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', database: server.testDb.db.kind });
  });

  it('serves GraphiQL to a browser at GET /graphql', async () => {
    const res = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('graphiql');
  });

  it('answers unknown paths with 404 and a hint', async () => {
    const res = await fetch(`${server.url}/nope`);
    expect(res.status).toBe(404);
    expect((await res.json()).error).toContain('/graphql');
  });

  it('echoes a sane X-Request-Id and makes one up otherwise', async () => {
    const given = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers.get('x-request-id')).toBe('abc-123');
    const made = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('viewer over HTTP', () => {
  const VIEWER = graphql(`
    query Viewer {
      viewer {
        workspace { id name }
        mode
        role
        partner { id }
      }
    }
  `);

  it('refuses a request without a credential with UNAUTHENTICATED', async () => {
    const res = await server.gql(VIEWER);
    expect(res.data ?? null).toBeNull();
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses an unknown secret key and says so', async () => {
    const res = await server.gql(VIEWER, {}, 'rg_test_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.errors?.[0]?.message).toBe('Unknown secret key.');
  });

  it('refuses a malformed Authorization header', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic xyz' },
      body: JSON.stringify({ query: print(VIEWER) }),
    });
    const body = (await res.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    expect(body.errors[0]?.extensions.code).toBe('UNAUTHENTICATED');
    expect(body.errors[0]?.message).toContain('Bearer');
  });

  it('answers with the workspace, mode and role of each key', async () => {
    const ws = await server.workspace('Acme');
    const test = await server.gql(VIEWER, {}, ws.keys.test.secret);
    expect(test.errors).toBeUndefined();
    expect(test.data).toEqual({
      viewer: { workspace: { id: expect.any(String), name: 'Acme' }, mode: 'TEST', role: 'ADMIN', partner: null },
    });
    const live = await server.gql(VIEWER, {}, ws.keys.live.secret);
    expect(live.data?.viewer.mode).toBe('LIVE');
    expect(live.data?.viewer.workspace.id).toBe(test.data?.viewer.workspace.id);
  });

  // Revocation (and the key cache in front of the lookup): test/auth-cache.test.ts, test/auth.test.ts.

  it('resolves a workspace node only inside the caller’s own workspace', async () => {
    const a = await server.workspace('A');
    const b = await server.workspace('B');
    const viewer = await server.gql(VIEWER, {}, a.keys.test.secret);
    const globalId = viewer.data!.viewer.workspace.id;
    const own = await server.gql(
      'query($id: ID!) { node(id: $id) { id ... on Workspace { name } } }',
      { id: globalId },
      a.keys.test.secret,
    );
    expect(own.data).toEqual({ node: { id: globalId, name: 'A' } });
    const other = await server.gql('query($id: ID!) { node(id: $id) { id } }', { id: globalId }, b.keys.test.secret);
    expect(other.errors).toBeUndefined();
    expect(other.data).toEqual({ node: null });
  });

  it('answers null, not an error, for a malformed global id', async () => {
    const ws = await server.workspace();
    const garbage = Buffer.from('Partner:not-a-uuid').toString('base64');
    const res = await server.gql('query($id: ID!) { node(id: $id) { id } }', { id: garbage }, ws.keys.test.secret);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ node: null });
  });

  it('touches lastUsedAt without a write on every request', async () => {
    const ws = await server.workspace();
    await server.gql(VIEWER, {}, ws.keys.test.secret);
    await expect
      .poll(
        async () =>
          (await server.testDb.db.prisma.apiKey.findUniqueOrThrow({ where: { id: ws.keys.test.id } })).lastUsedAt,
      )
      .not.toBeNull();
    const first = (await server.testDb.db.prisma.apiKey.findUniqueOrThrow({ where: { id: ws.keys.test.id } }))
      .lastUsedAt;
    await server.gql(VIEWER, {}, ws.keys.test.secret);
    const second = (await server.testDb.db.prisma.apiKey.findUniqueOrThrow({ where: { id: ws.keys.test.id } }))
      .lastUsedAt;
    expect(second).toEqual(first);
  });
});

describe('node and nodes', () => {
  it('require a credential', async () => {
    const id = Buffer.from('Workspace:00000000-0000-0000-0000-000000000000').toString('base64');
    const res = await server.gql('query($id: ID!) { node(id: $id) { id } }', { id });
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const many = await server.gql('query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids: [id] });
    expect(many.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('limit nodes to 100 ids', async () => {
    const ws = await server.workspace();
    const id = Buffer.from('Workspace:00000000-0000-0000-0000-000000000000').toString('base64');
    const res = await server.gql(
      'query($ids: [ID!]!) { nodes(ids: $ids) { id } }',
      { ids: Array(101).fill(id) },
      ws.keys.test.secret,
    );
    expect(res.errors?.[0]?.message).toContain('at most 100');
    const ok = await server.gql(
      'query($ids: [ID!]!) { nodes(ids: $ids) { id } }',
      { ids: [id, id] },
      ws.keys.test.secret,
    );
    expect(ok).toEqual({ data: { nodes: [null, null] } });
  });
});

describe('request body limit (MAX_REQUEST_BODY_BYTES)', () => {
  const LIMIT = 4096;
  let small: TestServer;
  beforeAll(async () => {
    small = await startTestServer({ MAX_REQUEST_BODY_BYTES: String(LIMIT) });
  });
  afterAll(async () => {
    await small?.close();
  });

  /** A JSON body of exactly `size` bytes asking `{ __typename }` (padded with a variable). */
  const bodyOf = (size: number) => {
    const base = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
    return JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(size - base.length) } });
  };

  /** POST with node:http: with a Content-Length, or chunked (no length announced) in pieces of 1000 bytes. */
  function post(body: string, chunked: boolean): Promise<{ status: number; json: any }> {
    return new Promise((resolve, reject) => {
      const req = http.request(`${small.url}/graphql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(chunked ? {} : { 'content-length': Buffer.byteLength(body) }),
        },
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
      });
      // The server may answer 413 and close before the whole body is sent.
      req.on('error', reject);
      if (chunked) for (let i = 0; i < body.length; i += 1000) req.write(body.slice(i, i + 1000));
      req.end(chunked ? undefined : body);
    });
  }

  it('answers bodies up to the limit, with a Content-Length or chunked', async () => {
    for (const chunked of [false, true]) {
      const res = await post(bodyOf(LIMIT), chunked);
      expect(res).toEqual({ status: 200, json: { data: { __typename: 'Query' } } });
    }
  });

  it('refuses a larger body with 413 and says what the limit is, with a Content-Length or chunked', async () => {
    for (const chunked of [false, true]) {
      const res = await post(bodyOf(LIMIT + 1), chunked);
      expect(res.status).toBe(413);
      expect(res.json.data).toBeUndefined();
      expect(res.json.errors).toHaveLength(1);
      expect(res.json.errors[0].extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');
      expect(res.json.errors[0].message).toContain(`larger than ${LIMIT} bytes (MAX_REQUEST_BODY_BYTES)`);
    }
  });

  it('defaults to 1 MiB', async () => {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bodyOf(1024 * 1024 + 1),
    });
    expect(res.status).toBe(413);
    const ok = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bodyOf(1024 * 1024),
    });
    expect(await ok.json()).toEqual({ data: { __typename: 'Query' } });
  });
});
