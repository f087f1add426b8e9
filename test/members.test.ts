import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { globalId, rowIdOf } from '../src/lib/global-id.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { factories } from './helpers/factories.js';
import { partnerToken } from './helpers/money.js';
import { startTestServer, type GraphQLResponse, type TestServer } from './helpers/server.js';
import { subscribe } from './helpers/ws.js';

// Team members: invitations, sign-in, the session cookie and its CSRF header, modes, removal,
// WebSockets with the cookie, failed sign-ins limited (src/modules/member/README.md).

const PASSWORD = 'correct horse battery staple';

const INVITE = `mutation Invite($input: InviteMemberInput!) {
  inviteMember(input: $input) { member { id email name role status joinedAt } invitationUrl userErrors { code message field } }
}`;
const ACCEPT = `mutation Accept($input: AcceptInvitationInput!) {
  acceptInvitation(input: $input) { member { id status joinedAt name } viewer { mode role member { email } } userErrors { code message field } }
}`;
const SIGN_IN = `mutation SignIn($input: SignInInput!) {
  signIn(input: $input) { member { id email role } viewer { mode role workspace { id } member { id email } } userErrors { code message field } }
}`;
const SIGN_OUT = 'mutation { signOut { signedOut } }';
const SWITCH = `mutation Switch($mode: Mode!) { switchMode(input: { mode: $mode }) { viewer { mode } userErrors { code message } } }`;
const REMOVE = `mutation Remove($id: ID!) { removeMember(input: { id: $id }) { member { id email } userErrors { code message field } } }`;
const VIEWER = '{ viewer { mode role workspace { id } member { id email role status } } }';
const MEMBERS = '{ members(first: 50) { totalCount edges { node { id email role status } } } }';
const PROGRAMS = '{ programs(first: 50) { edges { node { id name } } } }';

/** A browser's jar: the two cookies a sign-in set. */
interface Session {
  token: string;
  csrf: string;
  /** The raw Set-Cookie lines of the sign-in. */
  setCookies: string[];
}

interface Call<T> {
  status: number;
  headers: Headers;
  body: GraphQLResponse<T>;
}

/** POST an operation as a browser would: with the session cookie and (unless told otherwise) the CSRF header. */
async function call<T = Record<string, unknown>>(
  server: TestServer,
  query: string,
  variables: Record<string, unknown> = {},
  options: { session?: Session | null; csrf?: string | null; headers?: Record<string, string> } = {},
): Promise<Call<T>> {
  const { session, headers = {} } = options;
  const csrf = options.csrf === undefined ? session?.csrf : options.csrf;
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(session ? { cookie: `refgraph_session=${session.token}; refgraph_csrf=${session.csrf}` } : {}),
      ...(csrf ? { 'x-csrf-token': csrf } : {}),
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as GraphQLResponse<T> };
}

function cookieValue(setCookies: string[], name: string): string | null {
  const line = setCookies.find((c) => c.startsWith(`${name}=`));
  return line ? decodeURIComponent(line.slice(name.length + 1).split(';')[0]!) : null;
}

/** Sign in; the session the response's cookies carry. */
async function signIn(
  server: TestServer,
  email: string,
  password = PASSWORD,
  extra: Record<string, unknown> = {},
): Promise<Session> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: SIGN_IN, variables: { input: { email, password, ...extra } } }),
  });
  const body = (await res.json()) as GraphQLResponse<{ signIn: { userErrors: unknown[] } }>;
  expect(body.errors).toBeUndefined();
  expect(body.data!.signIn.userErrors).toEqual([]);
  const setCookies = res.headers.getSetCookie();
  return {
    token: cookieValue(setCookies, 'refgraph_session')!,
    csrf: cookieValue(setCookies, 'refgraph_csrf')!,
    setCookies,
  };
}

/** Invite with an ADMIN key and accept: an ACTIVE member; returns its global id and the accept call's session. */
async function join(
  server: TestServer,
  adminKey: string,
  email: string,
  role: 'ADMIN' | 'READ_ONLY' = 'ADMIN',
): Promise<{ id: string; session: Session }> {
  const invited = await server.gql<{ inviteMember: { member: { id: string }; invitationUrl: string } }>(
    INVITE,
    { input: { email, role, name: 'Someone' } },
    adminKey,
  );
  const token = invitationToken(invited.data!.inviteMember.invitationUrl);
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: ACCEPT, variables: { input: { token, password: PASSWORD } } }),
  });
  const body = (await res.json()) as GraphQLResponse<{ acceptInvitation: { userErrors: unknown[] } }>;
  expect(body.data!.acceptInvitation.userErrors).toEqual([]);
  const setCookies = res.headers.getSetCookie();
  return {
    id: invited.data!.inviteMember.member.id,
    session: {
      token: cookieValue(setCookies, 'refgraph_session')!,
      csrf: cookieValue(setCookies, 'refgraph_csrf')!,
      setCookies,
    },
  };
}

function invitationToken(url: string): string {
  return decodeURIComponent(url.split('#invitation=')[1]!);
}

/** A graphql-ws client that sends the session cookie and an Origin on the upgrade, as a browser does. */
function cookieClient(
  server: TestServer,
  session: Session,
  options: { origin?: string; csrfToken?: string | null } = {},
): { client: Client; closed: Promise<{ code: number; reason: string }> } {
  const origin = options.origin ?? server.url;
  class BrowserSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, { headers: { cookie: `refgraph_session=${session.token}`, origin } });
    }
  }
  let onClosed: (value: { code: number; reason: string }) => void = () => {};
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    onClosed = resolve;
  });
  const csrfToken = options.csrfToken === undefined ? session.csrf : options.csrfToken;
  const client = createClient({
    url: `${server.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: BrowserSocket,
    connectionParams: csrfToken ? { csrfToken } : {},
    retryAttempts: 0,
    lazy: true,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        onClosed({ code, reason });
      },
    },
  });
  return { client, closed };
}

async function eventTypes(server: TestServer, key: string): Promise<string[]> {
  const res = await server.gql<{ events: { edges: Array<{ node: { type: string } }> } }>(
    '{ events(first: 100) { edges { node { type } } } }',
    {},
    key,
  );
  return res.data!.events.edges.map((e) => e.node.type);
}

const fixture = useTwoWorkspaces({ names: ['Members A', 'Members B'] });

describe('invitations', () => {
  it('invite → accept → the member is ACTIVE and signed in; the invitation works once; events in both modes', async () => {
    const { server, admin, liveAdmin } = fixture;
    const before = {
      test: (await eventTypes(server, admin)).length,
      live: (await eventTypes(server, liveAdmin)).length,
    };
    const invited = await server.gql<{
      inviteMember: { member: { id: string; email: string; status: string; role: string }; invitationUrl: string };
    }>(INVITE, { input: { email: '  Ada@Example.COM ', role: 'ADMIN', name: 'Ada' } }, admin);
    const { member, invitationUrl } = invited.data!.inviteMember;
    expect(member).toMatchObject({ email: 'ada@example.com', status: 'INVITED', role: 'ADMIN', name: 'Ada' });
    expect(invitationUrl).toMatch(/^http:\/\/localhost:\d+\/app\/#invitation=rgi_[\w-]{43}$/);
    const token = invitationToken(invitationUrl);
    // Only the hash is stored.
    const row = await server.testDb.db.prisma.member.findUniqueOrThrow({
      where: { id: rowIdOf('Member', member.id)! },
    });
    expect(row.invitationHash).not.toContain(token);
    expect(JSON.stringify(row)).not.toContain(token);

    const short = await call<{ acceptInvitation: { userErrors: Array<{ code: string; message: string }> } }>(
      server,
      ACCEPT,
      { input: { token, password: 'too short' } },
    );
    expect(short.body.data!.acceptInvitation.userErrors[0]).toMatchObject({ code: 'VALIDATION' });
    expect(short.body.data!.acceptInvitation.userErrors[0]!.message).toMatch(/12 to 256 characters/);

    const accepted = await call<{
      acceptInvitation: { member: { status: string; joinedAt: string | null }; viewer: { mode: string; role: string } };
    }>(server, ACCEPT, { input: { token, password: PASSWORD } });
    expect(accepted.body.data!.acceptInvitation).toMatchObject({
      member: { status: 'ACTIVE' },
      viewer: { mode: 'TEST', role: 'ADMIN', member: { email: 'ada@example.com' } },
      userErrors: [],
    });
    expect(accepted.body.data!.acceptInvitation.member.joinedAt).not.toBeNull();
    expect(accepted.headers.getSetCookie().some((c) => c.startsWith('refgraph_session=rgs_'))).toBe(true);

    const again = await call<{ acceptInvitation: { member: null; userErrors: Array<{ code: string }> } }>(
      server,
      ACCEPT,
      { input: { token, password: PASSWORD } },
    );
    expect(again.body.data!.acceptInvitation).toMatchObject({
      member: null,
      userErrors: [{ code: 'INVALID_CREDENTIALS' }],
    });
    expect(again.headers.getSetCookie()).toEqual([]);

    // member.invited and member.joined, in TEST and in LIVE.
    const test = await eventTypes(server, admin);
    const live = await eventTypes(server, liveAdmin);
    expect(test.slice(before.test)).toEqual(['member.invited', 'member.joined']);
    expect(live.slice(before.live)).toEqual(['member.invited', 'member.joined']);
  });

  it('refuses an expired invitation; re-inviting sends a new link and the old one stops working', async () => {
    const { server, admin } = fixture;
    const first = await server.gql<{ inviteMember: { member: { id: string }; invitationUrl: string } }>(
      INVITE,
      { input: { email: 'late@example.com', role: 'READ_ONLY' } },
      admin,
    );
    const id = rowIdOf('Member', first.data!.inviteMember.member.id)!;
    await server.testDb.db.prisma.member.update({
      where: { id },
      data: { invitationExpiresAt: new Date(Date.now() - 1000) },
    });
    const expired = await call<{ acceptInvitation: { userErrors: Array<{ code: string; message: string }> } }>(
      server,
      ACCEPT,
      { input: { token: invitationToken(first.data!.inviteMember.invitationUrl), password: PASSWORD } },
    );
    expect(expired.body.data!.acceptInvitation.userErrors[0]).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    expect(expired.body.data!.acceptInvitation.userErrors[0]!.message).toMatch(/expired/);

    const second = await server.gql<{ inviteMember: { member: { id: string }; invitationUrl: string } }>(
      INVITE,
      { input: { email: 'late@example.com', role: 'READ_ONLY' } },
      admin,
    );
    expect(second.data!.inviteMember.member.id).toBe(first.data!.inviteMember.member.id);
    const old = await call<{ acceptInvitation: { userErrors: Array<{ code: string }> } }>(server, ACCEPT, {
      input: { token: invitationToken(first.data!.inviteMember.invitationUrl), password: PASSWORD },
    });
    expect(old.body.data!.acceptInvitation.userErrors[0]).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    const fresh = await call<{ acceptInvitation: { userErrors: unknown[] } }>(server, ACCEPT, {
      input: { token: invitationToken(second.data!.inviteMember.invitationUrl), password: PASSWORD },
    });
    expect(fresh.body.data!.acceptInvitation.userErrors).toEqual([]);
  });

  it('refuses an ACTIVE member’s email (DUPLICATE), bad emails and the PARTNER role, appending nothing', async () => {
    const { server, admin } = fixture;
    await join(server, admin, 'dup@example.com');
    const before = (await eventTypes(server, admin)).length;
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ email: 'DUP@example.com', role: 'ADMIN' }, 'DUPLICATE'],
      [{ email: 'not an email', role: 'ADMIN' }, 'VALIDATION'],
      [{ email: 'p@example.com', role: 'PARTNER' }, 'VALIDATION'],
    ];
    for (const [input, code] of cases) {
      const res = await server.gql<{ inviteMember: { member: null; userErrors: Array<{ code: string }> } }>(
        INVITE,
        { input },
        admin,
      );
      expect(res.data!.inviteMember).toMatchObject({ member: null, invitationUrl: null, userErrors: [{ code }] });
    }
    expect((await eventTypes(server, admin)).length).toBe(before);
  });
});

describe('sessions', () => {
  let ada: Session;
  beforeAll(async () => {
    await join(fixture.server, fixture.admin, 'session@example.com');
    ada = await signIn(fixture.server, 'Session@Example.com');
  });

  it('sets HttpOnly, SameSite=Strict session and CSRF cookies (not Secure over http)', () => {
    const session = ada.setCookies.find((c) => c.startsWith('refgraph_session='))!;
    const csrf = ada.setCookies.find((c) => c.startsWith('refgraph_csrf='))!;
    expect(session).toMatch(/; Path=\/; Expires=[^;]+; SameSite=Strict; HttpOnly$/);
    expect(csrf).toMatch(/; Path=\/; Expires=[^;]+; SameSite=Strict$/);
    expect(session).not.toMatch(/Secure/);
    const expires = new Date(/Expires=([^;]+)/.exec(session)![1]!).getTime();
    // MEMBER_SESSION_TTL_HOURS: 12 by default.
    expect(Math.abs(expires - (Date.now() + 12 * 3_600_000))).toBeLessThan(120_000);
    expect(ada.token).toMatch(/^rgs_/);
    expect(ada.csrf).not.toBe(ada.token);
  });

  it('answers with the cookie and the CSRF header; 403 CSRF_REQUIRED without the header or with a wrong one', async () => {
    const ok = await call<{ viewer: { mode: string; role: string; member: { email: string } } }>(
      fixture.server,
      VIEWER,
      {},
      { session: ada },
    );
    expect(ok.status).toBe(200);
    expect(ok.body.data!.viewer).toMatchObject({
      mode: 'TEST',
      role: 'ADMIN',
      workspace: { id: globalId('Workspace', fixture.ws.workspace.id) },
      member: { email: 'session@example.com', role: 'ADMIN', status: 'ACTIVE' },
    });
    for (const csrf of [null, 'wrong', `${ada.csrf}x`, ada.token]) {
      const refused = await call(fixture.server, VIEWER, {}, { session: ada, csrf });
      expect(refused.status).toBe(403);
      expect(refused.body.data ?? null).toBeNull();
      expect(refused.body.errors![0]!.extensions!['code']).toBe('CSRF_REQUIRED');
      expect(refused.body.errors![0]!.message).toMatch(/X-CSRF-Token/);
    }
    // A subscription over HTTP (SSE) too.
    const sse = await fetch(`${fixture.server.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        cookie: `refgraph_session=${ada.token}`,
      },
      body: JSON.stringify({ query: 'subscription { events { type } }' }),
    });
    expect(await sse.text()).toContain('CSRF_REQUIRED');
    // A mutation is refused the same way, and changes nothing.
    const refused = await call(
      fixture.server,
      INVITE,
      { input: { email: 'csrf@example.com', role: 'ADMIN' } },
      {
        session: ada,
        csrf: null,
      },
    );
    expect(refused.status).toBe(403);
    expect(await fixture.server.testDb.db.prisma.member.count({ where: { email: 'csrf@example.com' } })).toBe(0);
  });

  it('uses an Authorization header instead of the cookie when both are sent', async () => {
    const res = await call<{ viewer: { member: null; role: string } }>(
      fixture.server,
      VIEWER,
      {},
      {
        session: ada,
        csrf: null,
        headers: { authorization: `Bearer ${fixture.liveAdmin}` },
      },
    );
    expect(res.status).toBe(200);
    expect(res.body.data!.viewer).toMatchObject({ mode: 'LIVE', member: null });
  });

  it('does not run a mutation over GET, even with the cookie and CSRF header', async () => {
    const url = `${fixture.server.url}/graphql?query=${encodeURIComponent('mutation { signOut { signedOut } }')}`;
    const res = await fetch(url, {
      headers: { cookie: `refgraph_session=${ada.token}`, 'x-csrf-token': ada.csrf, accept: 'application/json' },
    });
    expect(res.status).toBe(405);
    const still = await call(fixture.server, VIEWER, {}, { session: ada });
    expect(still.body.errors).toBeUndefined();
  });

  it('never allows credentials cross-origin (CORS preflight from another site)', async () => {
    const res = await fetch(`${fixture.server.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, x-csrf-token',
      },
    });
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('answers a wrong password and an unknown email alike', async () => {
    const wrong = await call<{ signIn: { member: null; userErrors: unknown[] } }>(fixture.server, SIGN_IN, {
      input: { email: 'session@example.com', password: 'not the password at all' },
    });
    const unknown = await call<{ signIn: { member: null; userErrors: unknown[] } }>(fixture.server, SIGN_IN, {
      input: { email: 'nobody@example.com', password: PASSWORD },
    });
    expect(wrong.body.data!.signIn).toEqual({
      member: null,
      viewer: null,
      userErrors: [{ code: 'INVALID_CREDENTIALS', message: 'Wrong email or password.', field: ['input', 'password'] }],
    });
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.headers.getSetCookie()).toEqual([]);
  });

  it('signs out: the cookies are cleared and a replayed cookie no longer works', async () => {
    const session = await signIn(fixture.server, 'session@example.com');
    expect((await call(fixture.server, VIEWER, {}, { session })).body.errors).toBeUndefined();
    const out = await call<{ signOut: { signedOut: boolean } }>(fixture.server, SIGN_OUT, {}, { session });
    expect(out.body.data!.signOut.signedOut).toBe(true);
    const cleared = out.headers.getSetCookie();
    expect(cleared.find((c) => c.startsWith('refgraph_session=;'))).toMatch(/Expires=Thu, 01 Jan 1970/);
    expect(cleared.find((c) => c.startsWith('refgraph_csrf=;'))).toMatch(/Expires=Thu, 01 Jan 1970/);
    const replay = await call(fixture.server, VIEWER, {}, { session });
    expect(replay.body.errors![0]!.extensions!['code']).toBe('UNAUTHENTICATED');
    expect(replay.body.errors![0]!.message).toMatch(/session has ended/);
    // Without the header, a page still holding the old cookie may only sign in again.
    expect((await call(fixture.server, SIGN_OUT, {}, { session, csrf: null })).status).toBe(403);
    const again = await call<{ signIn: { userErrors: unknown[] } }>(
      fixture.server,
      SIGN_IN,
      { input: { email: 'session@example.com', password: PASSWORD } },
      { session, csrf: null },
    );
    expect(again.status).toBe(200);
    expect(again.body.data!.signIn.userErrors).toEqual([]);
    expect(again.headers.getSetCookie().some((c) => c.startsWith('refgraph_session=rgs_'))).toBe(true);
    // The other session of the same member goes on.
    expect((await call(fixture.server, VIEWER, {}, { session: ada })).body.errors).toBeUndefined();
  });

  it('ends a session whose expiry has passed', async () => {
    const session = await signIn(fixture.server, 'session@example.com');
    const id = (await fixture.server.testDb.db.prisma.memberSession.findMany({ orderBy: { createdAt: 'desc' } })).find(
      (s) => s.id !== '',
    )!;
    // The newest session is this one (sign-ins are sequential here).
    await fixture.server.testDb.db.prisma.memberSession.update({
      where: { id: id.id },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    const res = await call(fixture.server, VIEWER, {}, { session });
    expect(res.body.errors![0]!.extensions!['code']).toBe('UNAUTHENTICATED');
  });

  it('switches mode: the other mode’s data becomes visible and the first’s not', async () => {
    const { server, tenant, ws } = fixture;
    const testProgram = await factories(server.testDb.db.prisma, tenant).program({ name: 'Test-mode program' });
    const liveProgram = await factories(server.testDb.db.prisma, {
      workspaceId: ws.workspace.id,
      mode: 'LIVE',
    }).program({
      name: 'Live-mode program',
    });
    const session = await signIn(server, 'session@example.com');
    const names = async () =>
      (
        await call<{ programs: { edges: Array<{ node: { name: string } }> } }>(server, PROGRAMS, {}, { session })
      ).body.data!.programs.edges.map((e) => e.node.name);
    expect(await names()).toContain(testProgram.name);
    expect(await names()).not.toContain(liveProgram.name);
    const switched = await call<{ switchMode: { viewer: { mode: string } } }>(
      server,
      SWITCH,
      { mode: 'LIVE' },
      { session },
    );
    expect(switched.body.data!.switchMode).toEqual({ viewer: { mode: 'LIVE' }, userErrors: [] });
    expect(await names()).toContain(liveProgram.name);
    expect(await names()).not.toContain(testProgram.name);
    // Signing in straight into LIVE, too.
    const live = await signIn(server, 'session@example.com', PASSWORD, { mode: 'LIVE' });
    expect(
      (await call<{ viewer: { mode: string } }>(server, VIEWER, {}, { session: live })).body.data!.viewer.mode,
    ).toBe('LIVE');
    // Keys cannot switch.
    const key = await server.gql<{ switchMode: { userErrors: Array<{ code: string }> } }>(
      SWITCH,
      { mode: 'LIVE' },
      fixture.admin,
    );
    expect(key.data!.switchMode.userErrors[0]!.code).toBe('FORBIDDEN_FOR_ROLE');
  });

  it('a READ_ONLY member reads and lists members, but cannot mutate or invite', async () => {
    const { server, admin } = fixture;
    const reader = await join(server, admin, 'reader@example.com', 'READ_ONLY');
    const list = await call<{ members: { edges: Array<{ node: { email: string } }> } }>(
      server,
      MEMBERS,
      {},
      {
        session: reader.session,
      },
    );
    expect(list.body.data!.members.edges.map((e) => e.node.email)).toContain('reader@example.com');
    const before = (await eventTypes(server, admin)).length;
    const invite = await call(
      server,
      INVITE,
      { input: { email: 'x@example.com', role: 'ADMIN' } },
      { session: reader.session },
    );
    expect(invite.body.errors![0]!.extensions!['code']).toBe('FORBIDDEN_FOR_ROLE');
    const program = await call(
      server,
      'mutation { createProgram(input: { name: "Nope", type: REFERRAL, currency: "USD" }) { program { id } } }',
      {},
      { session: reader.session },
    );
    expect(program.body.errors![0]!.extensions!['code']).toBe('FORBIDDEN_FOR_ROLE');
    expect((await eventTypes(server, admin)).length).toBe(before);
  });

  it('an ADMIN member cannot mint partner tokens (they belong to a key)', async () => {
    const { server, tenant } = fixture;
    const partner = await factories(server.testDb.db.prisma, tenant).partner();
    const res = await call<{ createPartnerToken: { token: null; userErrors: Array<{ code: string }> } }>(
      server,
      'mutation($id: ID!) { createPartnerToken(input: { partnerId: $id }) { token userErrors { code message } } }',
      { id: globalId('Partner', partner.id) },
      { session: ada },
    );
    expect(res.body.data!.createPartnerToken.token).toBeNull();
    expect(res.body.data!.createPartnerToken.userErrors[0]!.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});

describe('isolation', () => {
  it('a member of one workspace sees nothing of another; PARTNER tokens cannot list or invite members', async () => {
    const { server, admin, otherAdmin, other, tenant } = fixture;
    const a = await join(server, admin, 'iso-a@example.com');
    const b = await join(server, otherAdmin, 'iso-b@example.com');
    const otherProgram = await factories(server.testDb.db.prisma, {
      workspaceId: other.workspace.id,
      mode: 'TEST',
    }).program({ name: 'B only' });
    const listA = await call<{ members: { edges: Array<{ node: { email: string } }> } }>(
      server,
      MEMBERS,
      {},
      {
        session: a.session,
      },
    );
    const emails = listA.body.data!.members.edges.map((e) => e.node.email);
    expect(emails).toContain('iso-a@example.com');
    expect(emails).not.toContain('iso-b@example.com');
    const node = await call<{ node: null }>(
      server,
      'query($id: ID!) { node(id: $id) { id } }',
      { id: b.id },
      {
        session: a.session,
      },
    );
    expect(node.body.data!.node).toBeNull();
    const programs = await call<{ programs: { edges: Array<{ node: { name: string } }> } }>(
      server,
      PROGRAMS,
      {},
      {
        session: a.session,
      },
    );
    expect(programs.body.data!.programs.edges.map((e) => e.node.name)).not.toContain(otherProgram.name);
    // Removing another workspace's member is NOT_FOUND, and they stay.
    const remove = await call<{ removeMember: { userErrors: Array<{ code: string }> } }>(
      server,
      REMOVE,
      { id: b.id },
      {
        session: a.session,
      },
    );
    expect(remove.body.data!.removeMember.userErrors[0]!.code).toBe('NOT_FOUND');
    expect((await call(server, VIEWER, {}, { session: b.session })).body.errors).toBeUndefined();
    // Signing in with A's workspace id to an email that is only B's member: the same refusal.
    const wrongWorkspace = await call<{ signIn: { userErrors: Array<{ code: string }> } }>(server, SIGN_IN, {
      input: {
        email: 'iso-b@example.com',
        password: PASSWORD,
        workspaceId: globalId('Workspace', fixture.ws.workspace.id),
      },
    });
    expect(wrongWorkspace.body.data!.signIn.userErrors[0]!.code).toBe('INVALID_CREDENTIALS');

    const partner = await factories(server.testDb.db.prisma, tenant).partner();
    const token = await partnerToken(server, admin, partner.id);
    const list = await server.gql(MEMBERS, {}, token);
    expect(list.errors![0]!.extensions!['code']).toBe('FORBIDDEN_FOR_ROLE');
    const invite = await server.gql(INVITE, { input: { email: 'p2@example.com', role: 'ADMIN' } }, token);
    expect(invite.errors![0]!.extensions!['code']).toBe('FORBIDDEN_FOR_ROLE');
    const viewer = await server.gql<{ viewer: { member: null } }>('{ viewer { member { id } } }', {}, token);
    expect(viewer.data!.viewer.member).toBeNull();
  });

  it('an email in two workspaces signs in to the oldest membership, or to the one named', async () => {
    const { server, admin, otherAdmin, other } = fixture;
    await join(server, admin, 'both@example.com');
    await join(server, otherAdmin, 'both@example.com');
    const oldest = await signIn(server, 'both@example.com');
    const named = await signIn(server, 'both@example.com', PASSWORD, {
      workspaceId: globalId('Workspace', other.workspace.id),
    });
    const workspaceOf = async (session: Session) =>
      (await call<{ viewer: { workspace: { id: string } } }>(server, VIEWER, {}, { session })).body.data!.viewer
        .workspace.id;
    expect(await workspaceOf(oldest)).toBe(globalId('Workspace', fixture.ws.workspace.id));
    expect(await workspaceOf(named)).toBe(globalId('Workspace', other.workspace.id));
  });
});

describe('removal', () => {
  it('ends the member’s sessions over HTTP and closes their WebSocket with 4403; cannot remove oneself', async () => {
    const { server, admin, liveAdmin } = fixture;
    const boss = await join(server, admin, 'boss@example.com');
    const gone = await join(server, admin, 'gone@example.com');
    const self = await call<{ removeMember: { userErrors: Array<{ code: string; message: string }> } }>(
      server,
      REMOVE,
      { id: boss.id },
      { session: boss.session },
    );
    expect(self.body.data!.removeMember.userErrors[0]!.message).toMatch(/cannot remove yourself/);

    const { client, closed } = cookieClient(server, gone.session);
    const sub = subscribe(client, 'subscription { events { type } }');
    // The socket is open and serving once a query over it answers.
    const viewer = await new Promise<unknown>((resolve, reject) => {
      client.subscribe(
        { query: '{ viewer { member { email } } }' },
        { next: resolve, error: reject, complete: () => {} },
      );
    });
    expect(viewer).toMatchObject({ data: { viewer: { member: { email: 'gone@example.com' } } } });

    const before = {
      test: (await eventTypes(server, admin)).length,
      live: (await eventTypes(server, liveAdmin)).length,
    };
    const removed = await call<{ removeMember: { member: { email: string } } }>(
      server,
      REMOVE,
      { id: gone.id },
      {
        session: boss.session,
      },
    );
    expect(removed.body.data!.removeMember).toMatchObject({ member: { email: 'gone@example.com' }, userErrors: [] });
    expect((await closed).code).toBe(4403);
    await sub.close();
    const after = await call(server, VIEWER, {}, { session: gone.session });
    expect(after.body.errors![0]!.extensions!['code']).toBe('UNAUTHENTICATED');
    expect(
      await server.testDb.db.prisma.memberSession.count({ where: { memberId: rowIdOf('Member', gone.id)! } }),
    ).toBe(0);
    expect((await eventTypes(server, admin)).slice(before.test)).toEqual(['member.removed']);
    expect((await eventTypes(server, liveAdmin)).slice(before.live)).toEqual(['member.removed']);
    // The event's subject is gone with the member; the payload keeps who it was.
    const events = await server.gql<{ events: { edges: Array<{ node: { payload: string; subject: null } }> } }>(
      '{ events(first: 100) { edges { node { payload subject { id } } } } }',
      {},
      admin,
    );
    const last = events.data!.events.edges.at(-1)!.node;
    expect(JSON.parse(last.payload)).toMatchObject({ email: 'gone@example.com', role: 'ADMIN' });
    expect(last.subject).toBeNull();
    await client.dispose();
  });
});

describe('WebSockets with the session cookie', () => {
  let session: Session;
  beforeAll(async () => {
    await join(fixture.server, fixture.admin, 'ws@example.com');
    session = await signIn(fixture.server, 'ws@example.com');
  });

  const query = (client: Client) =>
    new Promise<unknown>((resolve, reject) => {
      client.subscribe(
        { query: '{ viewer { member { email } } }' },
        { next: resolve, error: reject, complete: () => {} },
      );
    });

  it('works from this installation’s origin with the csrfToken', async () => {
    const { client } = cookieClient(fixture.server, session);
    expect(await query(client)).toMatchObject({ data: { viewer: { member: { email: 'ws@example.com' } } } });
    await client.dispose();
  });

  it('is refused from another origin, and without or with a wrong csrfToken (4403)', async () => {
    for (const options of [{ origin: 'https://evil.example' }, { csrfToken: null }, { csrfToken: 'wrong' }]) {
      const { client, closed } = cookieClient(fixture.server, session, options);
      await expect(query(client)).rejects.toBeTruthy();
      expect((await closed).code).toBe(4403);
      await client.dispose();
    }
  });

  it('closes with 4403 when the member signs out', async () => {
    const own = await signIn(fixture.server, 'ws@example.com');
    const { client, closed } = cookieClient(fixture.server, own);
    const sub = subscribe(client, 'subscription { events { type } }'); // keeps the socket open
    expect(await query(client)).toBeTruthy();
    await call(fixture.server, SIGN_OUT, {}, { session: own });
    expect((await closed).code).toBe(4403);
    await sub.close();
    await client.dispose();
  });
});

describe('failed sign-ins', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ RATE_LIMIT_SIGN_IN_FAILURES_PER_IP: '12' });
    const ws = await server.workspace('Limits');
    await join(server, ws.keys.test.secret, 'limited@example.com');
    await join(server, ws.keys.test.secret, 'other@example.com');
  });
  afterAll(() => server.close());

  const attempt = (email: string, password: string) =>
    call<{ signIn: { userErrors: Array<{ code: string }> } }>(server, SIGN_IN, { input: { email, password } });

  it('limits failures per email and address (5 in 15 minutes, concurrent ones included): 429 RATE_LIMITED with Retry-After', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () => attempt('limited@example.com', 'wrong password!!')),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const refused = results.find((r) => r.status === 429)!;
    expect(refused.body.errors![0]!.extensions!['code']).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Even the right password now (no hint whether it was right).
    const right = await attempt('limited@example.com', PASSWORD);
    expect(right.status).toBe(429);
    // Another email from the same address is not locked out by these.
    expect((await attempt('other@example.com', PASSWORD)).body.data!.signIn.userErrors).toEqual([]);
  });

  it('a successful sign-in does not count; failures per address in all are limited too', async () => {
    for (let i = 0; i < 6; i++) expect((await attempt('other@example.com', PASSWORD)).status).toBe(200);
    // 5 failures counted above for this address (the refused attempts were not failures); 7 more
    // reach RATE_LIMIT_SIGN_IN_FAILURES_PER_IP = 12.
    for (let i = 0; i < 7; i++) expect((await attempt(`n${i}@example.com`, 'wrong password!!')).status).toBe(200);
    const blocked = await attempt('last@example.com', 'wrong password!!');
    expect(blocked.status).toBe(429);
    expect(blocked.body.errors![0]!.message).toMatch(/RATE_LIMIT_SIGN_IN_FAILURES_PER_IP/);
  });
});

describe('cookies over https', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ PUBLIC_URL: 'https://ref.example.com' });
  });
  afterAll(() => server.close());

  it('are Secure when PUBLIC_URL is https, and the invitation link is on it', async () => {
    const ws = await server.workspace('Secure');
    const invited = await server.gql<{ inviteMember: { invitationUrl: string } }>(
      INVITE,
      { input: { email: 'secure@example.com', role: 'ADMIN' } },
      ws.keys.test.secret,
    );
    expect(invited.data!.inviteMember.invitationUrl).toMatch(/^https:\/\/ref\.example\.com\/app\/#invitation=rgi_/);
    const { session } = await join(server, ws.keys.test.secret, 'secure2@example.com');
    for (const name of ['refgraph_session', 'refgraph_csrf'])
      expect(session.setCookies.find((c) => c.startsWith(`${name}=`))).toMatch(/; Secure; SameSite=Strict/);
  });
});
