import { afterAll, beforeAll } from 'vitest';
import type { CreatedWorkspace } from '../../src/modules/workspace/workspace.service.js';
import type { Tenant } from './factories.js';
import { startTestServer, type TestServer } from './server.js';

/** What {@link useTwoWorkspaces} gives a test file: read in tests and hooks, once its beforeAll has run. */
export interface TwoWorkspaces {
  /** The server, on a database of its own. */
  readonly server: TestServer;
  /** The workspace the tests act in. */
  readonly ws: CreatedWorkspace;
  /** A second workspace on the same server: what `ws`'s keys must not reach. */
  readonly other: CreatedWorkspace;
  /** The TEST-mode ADMIN secret of `ws`. */
  readonly admin: string;
  /** The LIVE-mode ADMIN secret of `ws`. */
  readonly liveAdmin: string;
  /** The TEST-mode ADMIN secret of `other`. */
  readonly otherAdmin: string;
  /** `ws` in TEST mode, as factories and services take a tenant. */
  readonly tenant: Tenant;
  /** `other` in TEST mode. */
  readonly otherTenant: Tenant;
  /** `server.gql`: POST an operation to the server over HTTP. */
  readonly gql: TestServer['gql'];
}

/**
 * The set-up most API test files share: a test server started with `env` (startTestServer's
 * defaults otherwise) and two workspaces on it, `names[0]` then `names[1]`, each with ADMIN keys
 * for both modes. Registers the file's (or the enclosing describe's) beforeAll that makes them and
 * afterAll that closes the server; a beforeAll registered after this call runs after it and may
 * read the fields.
 *
 * @example
 * const fixture = useTwoWorkspaces({ env: { PUBLIC_URL }, names: ['Links A', 'Links B'] });
 * it('…', async () => {
 *   const res = await fixture.gql(CREATE, { input }, fixture.admin);
 * });
 */
export function useTwoWorkspaces(
  options: { env?: Record<string, string>; names?: [string, string] } = {},
): TwoWorkspaces {
  const { env = {}, names = ['Workspace A', 'Workspace B'] } = options;
  let server: TestServer | undefined; // set first, so that afterAll closes it even if a workspace fails
  let made:
    | { server: TestServer; ws: CreatedWorkspace; other: CreatedWorkspace; tenant: Tenant; otherTenant: Tenant }
    | undefined;
  beforeAll(async () => {
    server = await startTestServer(env);
    const ws = await server.workspace(names[0]);
    const other = await server.workspace(names[1]);
    made = {
      server,
      ws,
      other,
      tenant: { workspaceId: ws.workspace.id, mode: 'TEST' },
      otherTenant: { workspaceId: other.workspace.id, mode: 'TEST' },
    };
  });
  afterAll(async () => {
    await server?.close();
  });
  const ready = () => {
    if (!made) throw new Error('useTwoWorkspaces: its server and workspaces are made in beforeAll');
    return made;
  };
  return {
    get server() {
      return ready().server;
    },
    get ws() {
      return ready().ws;
    },
    get other() {
      return ready().other;
    },
    get admin() {
      return ready().ws.keys.test.secret;
    },
    get liveAdmin() {
      return ready().ws.keys.live.secret;
    },
    get otherAdmin() {
      return ready().other.keys.test.secret;
    },
    get tenant() {
      return ready().tenant;
    },
    get otherTenant() {
      return ready().otherTenant;
    },
    get gql() {
      return ready().server.gql;
    },
  };
}
