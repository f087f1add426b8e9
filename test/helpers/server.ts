import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';
import { buildApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createWorkspace, type CreatedWorkspace } from '../../src/modules/workspace/workspace.service.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export interface GraphQLResponse<T = Record<string, unknown>> {
  data?: T | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
}

export interface TestServer {
  app: App;
  testDb: TestDatabase;
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** POST a GraphQL operation over real HTTP: a typed document from test/gql, or a string. */
  gql<T = Record<string, unknown>, V = Record<string, unknown>>(
    query: string | TypedDocumentNode<T, V>,
    variables?: V,
    token?: string,
  ): Promise<GraphQLResponse<T>>;
  /** Like gql, plus the number of SQL statements the server ran for this request alone. */
  gqlCounted<T = Record<string, unknown>, V = Record<string, unknown>>(
    query: string | TypedDocumentNode<T, V>,
    variables?: V,
    token?: string,
  ): Promise<{ body: GraphQLResponse<T>; statements: number }>;
  /** A new workspace with ADMIN keys for both modes. */
  workspace(name?: string): Promise<CreatedWorkspace>;
  close(): Promise<void>;
}

/**
 * A browser's User-Agent, for visits that must count as a person's: fetch's own (`node`) and
 * made-up ones (`UA`, `Mozilla/5.0 (test)`) are bots' to `isbot`, so their clicks are discarded (BOT).
 */
export const BROWSER_USER_AGENT =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** The real server on a free port, on a fresh database of its own. */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const testDb = await createTestDatabase();
  // The approval and retention jobs stay idle unless a test asks for them (it can always call runOnce()).
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    APPROVAL_JOB_INTERVAL_MS: '0',
    RETENTION_INTERVAL_SECONDS: '0',
    ...env,
  });
  const app = await buildApp({ config, db: testDb.db });
  const { url } = await app.start();
  return {
    app,
    testDb,
    url,
    gql: async (query, variables, token) => (await post(url, query, variables, token)).json() as never,
    gqlCounted: async (query, variables, token) => {
      const res = await post(url, query, variables, token);
      const header = res.headers.get('x-sql-statements');
      if (header === null) throw new Error('the server sent no X-SQL-Statements header');
      return { body: (await res.json()) as never, statements: Number(header) };
    },
    workspace: (name = 'Test workspace') => createWorkspace(testDb.db.prisma, name),
    close: async () => {
      await app.stop();
      await testDb.destroy();
    },
  };
}

function post(
  url: string,
  query: string | DocumentNode,
  variables: unknown,
  token: string | undefined,
): Promise<Response> {
  return fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query: typeof query === 'string' ? query : print(query), variables }),
  });
}
