import type { Member } from '../../generated/prisma/client.js';
import { MemberStatus } from '../../generated/prisma/enums.js';
import type { Context } from '../../context.js';
import type { Auth } from '../../domain/auth.js';
import { DomainError } from '../../domain/errors.js';
import { builder } from '../../graphql/builder.js';
import { ModeEnum, RoleEnum } from '../../graphql/enums.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rateLimited } from '../../graphql/request-policy.js';
import { rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { isUuid, NIL_UUID } from '../../lib/ids.js';
import { guardedQuery, totalCountOf } from '../reward/reward.graphql.js';
import { ViewerRef, type ViewerShape } from '../workspace/workspace.graphql.js';
import {
  acceptInvitation,
  endSession,
  invitationUrl,
  inviteMember,
  type OpenedSession,
  removeMember,
  signIn,
  switchSessionMode,
} from './member.service.js';

export const MemberStatusEnum = builder.enumType(MemberStatus, {
  name: 'MemberStatus',
  description: 'INVITED: the invitation is not accepted yet (no password). ACTIVE: may sign in.',
});

export const MemberRef = builder.prismaNode('Member', {
  description:
    'A person of the company who signs in to the dashboard, in one workspace (both modes: a session picks one), with the role ADMIN or READ_ONLY. Visible to ADMIN and READ_ONLY credentials of the workspace.',
  id: { field: 'id' },
  nullable: true,
  // Members are of the workspace, not of a mode.
  findUnique: (id, ctx) => ({ id: isUuid(id) ? id : NIL_UUID, workspaceId: ctx.auth?.workspaceId ?? NIL_UUID }),
  authScopes: { reader: true },
  fields: (t) => ({
    email: t.exposeString('email', { description: 'Lower-cased.' }),
    name: t.exposeString('name', { nullable: true }),
    role: t.expose('role', { type: RoleEnum, description: 'ADMIN or READ_ONLY, in both modes.' }),
    status: t.expose('status', { type: MemberStatusEnum }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When they were first invited.' }),
    joinedAt: t.expose('joinedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When they accepted the invitation; null while INVITED.',
    }),
  }),
});

builder.objectField(ViewerRef, 'member', (t) =>
  t.prismaField({
    type: MemberRef,
    nullable: true,
    description: 'The signed-in member, for a dashboard session; null for keys and tokens.',
    resolve: (query, viewer, _args, ctx) => {
      const selection = { ...query }; // used even when the answer is null without a lookup
      const memberId = viewer.auth.memberId;
      return memberId ? ctx.db.prisma.member.findUnique({ ...selection, where: { id: memberId } }) : null;
    },
  }),
);

// --- Listing ------------------------------------------------------------------------------------

const MemberConnection = builder.connectionObject(
  {
    type: MemberRef,
    name: 'MemberConnection',
    description: 'A page of team members, oldest first.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many members the workspace has, on every page.',
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'MemberEdge', description: 'A member in a page of members.' },
);

builder.queryField('members', (t) =>
  t.prismaConnection(
    {
      type: MemberRef,
      cursor: 'id',
      description:
        'The team members of the caller’s workspace (invited and active), oldest first. ADMIN and READ_ONLY credentials; not PARTNER.',
      authScopes: { reader: true },
      resolve: (query, _root, _args, ctx) =>
        ctx.db.prisma.member.findMany({
          ...guardedQuery(query),
          where: { workspaceId: tenantOf(ctx).workspaceId },
          orderBy: { id: 'asc' },
        }),
      totalCount: (_root, _args, ctx) =>
        ctx.db.prisma.member.count({ where: { workspaceId: tenantOf(ctx).workspaceId } }),
    },
    MemberConnection,
  ),
);

// --- Inviting ------------------------------------------------------------------------------------

const InviteMemberInput = builder.inputType('InviteMemberInput', {
  fields: (t) => ({
    email: t.string({ required: true, description: 'Their email address (stored lower-cased).' }),
    name: t.string({ description: 'At most 200 characters; they may set it when accepting.' }),
    role: t.field({ type: RoleEnum, required: true, description: 'ADMIN or READ_ONLY.' }),
  }),
});

const InviteMemberPayload = payloadType<{ member: Member; invitationUrl: string }>(
  'InviteMemberPayload',
  'The invited member, and the link to send them.',
  (t) => ({
    member: t.field({ type: MemberRef, nullable: true, resolve: (p) => p.member ?? null }),
    invitationUrl: t.string({
      nullable: true,
      description:
        'The one-time invitation link (`<PUBLIC_URL>/app/#invitation=<token>`): it works once, for MEMBER_INVITATION_TTL_HOURS (default 72). Shown this once; only its hash is stored.',
      resolve: (p) => p.invitationUrl ?? null,
    }),
  }),
);

builder.mutationField('inviteMember', (t) =>
  t.field({
    type: InviteMemberPayload,
    description:
      'Invite a person to the dashboard of the caller’s workspace (ADMIN only). Inviting an email still INVITED sends a new link (the old one stops working); an ACTIVE member’s email is DUPLICATE. Appends `member.invited` (to both modes).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: InviteMemberInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const { member, invitationToken } = await inviteMember(
          ctx.db.prisma,
          tenantOf(ctx).workspaceId,
          input,
          ctx.config.members,
        );
        return { member, invitationUrl: invitationUrl(ctx.config.publicUrl, invitationToken) };
      }),
  }),
);

// --- Signing in and out --------------------------------------------------------------------------

/**
 * A session was opened by this request: its cookies are set, and the rest of the request (the
 * payload's `viewer` and `member`) acts as the new session.
 */
async function signedIn(ctx: Context, member: Member, session: OpenedSession): Promise<ViewerShape> {
  await ctx.sessionCookies!.set(session);
  const auth: Auth = {
    workspaceId: session.workspaceId,
    mode: session.mode,
    role: member.role,
    apiKeyId: null,
    partnerId: null,
    credential: 'member_session',
    memberId: member.id,
    sessionId: session.id,
  };
  (ctx as { auth: Auth | null }).auth = auth;
  (ctx as { authError: string | null }).authError = null;
  return { workspaceId: session.workspaceId, auth };
}

/** Signing in sets cookies: only over HTTP. */
function needsHttp(ctx: Context): void {
  if (!ctx.sessionCookies)
    throw new DomainError(
      'VALIDATION',
      'Sign in over HTTP (POST /graphql): a WebSocket cannot set the session cookie.',
    );
}

const SignedInFields = (name: string, description: string) =>
  payloadType<{ member: Member; viewer: ViewerShape }>(name, description, (t) => ({
    member: t.field({ type: MemberRef, nullable: true, resolve: (p) => p.member ?? null }),
    viewer: t.field({
      type: ViewerRef,
      nullable: true,
      description: 'The new session: its workspace, mode and role.',
      resolve: (p) => p.viewer ?? null,
    }),
  }));

const AcceptInvitationInput = builder.inputType('AcceptInvitationInput', {
  fields: (t) => ({
    token: t.string({ required: true, description: 'The token from the invitation link (after `#invitation=`).' }),
    password: t.string({ required: true, description: '12 to 256 characters.' }),
    name: t.string({ description: 'Their name, if the invitation did not have it right.' }),
  }),
});

const AcceptInvitationPayload = SignedInFields(
  'AcceptInvitationPayload',
  'The member, now ACTIVE, and their new session (signed in, TEST mode).',
);

builder.mutationField('acceptInvitation', (t) =>
  t.field({
    type: AcceptInvitationPayload,
    description:
      'Accept an invitation: set a password (12 to 256 characters) and sign in (the session cookie is set, TEST mode). Needs no credential. An invitation works once and expires; a used, unknown or expired one is INVALID_CREDENTIALS. Appends `member.joined`.',
    args: { input: t.arg({ type: AcceptInvitationInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        needsHttp(ctx);
        const { member, session } = await acceptInvitation(ctx.db.prisma, input, ctx.config.members);
        return { member, viewer: await signedIn(ctx, member, session) };
      }),
  }),
);

const SignInInput = builder.inputType('SignInInput', {
  fields: (t) => ({
    email: t.string({ required: true }),
    password: t.string({ required: true }),
    workspaceId: t.id({
      description:
        'The workspace to sign in to, for an email that is a member of several; without it, the oldest membership.',
    }),
    mode: t.field({ type: ModeEnum, defaultValue: 'TEST', description: 'The mode the session starts in.' }),
  }),
});

const SignInPayload = SignedInFields('SignInPayload', 'The member and their new session.');

builder.mutationField('signIn', (t) =>
  t.field({
    type: SignInPayload,
    description:
      'Sign in with email and password: sets the session cookie (HttpOnly, SameSite=Strict, Secure when PUBLIC_URL is https) and the `refgraph_csrf` cookie, whose value later requests must send in `X-CSRF-Token`. Needs no credential. A wrong email or password is INVALID_CREDENTIALS (the same answer for both). Failed sign-ins are limited per email and address and per address (RATE_LIMITED, HTTP 429, over RATE_LIMIT_SIGN_IN_FAILURES / RATE_LIMIT_SIGN_IN_FAILURES_PER_IP in 15 minutes).',
    args: { input: t.arg({ type: SignInInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      if (!ctx.sessionCookies) return withUserErrors(ctx, async () => needsHttp(ctx) as never);
      const ip = ctx.clientIp ?? 'unknown';
      const limits = [
        ['signInFailuresPerIp', ip],
        ['signInFailures', `${input.email.trim().toLowerCase()}|${ip}`],
      ] as const;
      // Every attempt is counted first (so concurrent attempts cannot slip past the limit), and
      // given back when it succeeds: what stays counted are the failures.
      const verdicts = await Promise.all(limits.map(([name, key]) => ctx.rateLimiter.consume(name, key)));
      const refused = verdicts.find((v) => !v.allowed);
      if (refused && !refused.allowed) {
        // A refused attempt is not a failure of its own: only attempts that checked a password count.
        await Promise.all(limits.map(([name, key]) => ctx.rateLimiter.reward(name, key)));
        throw rateLimited(
          'failed sign-ins from this address (RATE_LIMIT_SIGN_IN_FAILURES per email, RATE_LIMIT_SIGN_IN_FAILURES_PER_IP in all, per 15 minutes)',
          refused.retryAfterSeconds,
        );
      }
      return withUserErrors(ctx, async () => {
        const workspaceId = input.workspaceId ? (rowIdFrom(String(input.workspaceId), 'Workspace') ?? NIL_UUID) : null;
        const { member, session } = await signIn(
          ctx.db.prisma,
          { email: input.email, password: input.password, workspaceId, mode: input.mode ?? 'TEST' },
          ctx.config.members,
        );
        await Promise.all(limits.map(([name, key]) => ctx.rateLimiter.reward(name, key)));
        return { member, viewer: await signedIn(ctx, member, session) };
      });
    },
  }),
);

const SignOutPayload = builder.objectRef<{ signedOut: boolean }>('SignOutPayload').implement({
  description: 'The session is over.',
  fields: (t) => ({
    signedOut: t.boolean({
      description:
        'True: this browser is signed out (its session, if any, ended and the cookies cleared). False for a request authenticated with an Authorization header: keys and tokens are not signed out.',
      resolve: (p) => p.signedOut,
    }),
  }),
});

builder.mutationField('signOut', (t) =>
  t.field({
    type: SignOutPayload,
    description:
      'End the dashboard session: it stops working at once (its WebSockets close with 4403) and the cookies are cleared. Needs no credential (a stale cookie is cleared too).',
    resolve: async (_root, _args, ctx) => {
      const sessionId = ctx.auth?.credential === 'member_session' ? ctx.auth.sessionId : null;
      if (ctx.auth && !sessionId) return { signedOut: false };
      if (sessionId) {
        await endSession(ctx.db.prisma, sessionId);
        ctx.authenticator.forgetSession(sessionId);
        ctx.pubsub.publish('memberSessions', { sessionId, ended: true });
      }
      await ctx.sessionCookies?.clear();
      return { signedOut: true };
    },
  }),
);

// --- Mode -----------------------------------------------------------------------------------------

const SwitchModeInput = builder.inputType('SwitchModeInput', {
  fields: (t) => ({ mode: t.field({ type: ModeEnum, required: true }) }),
});

const SwitchModePayload = payloadType<{ viewer: ViewerShape }>(
  'SwitchModePayload',
  'The session, in its new mode.',
  (t) => ({
    viewer: t.field({ type: ViewerRef, nullable: true, resolve: (p) => p.viewer ?? null }),
  }),
);

builder.mutationField('switchMode', (t) =>
  t.field({
    type: SwitchModePayload,
    description:
      'Switch the dashboard session to TEST or LIVE (the next requests see that mode’s data only). Member sessions only: a key or token belongs to one mode (FORBIDDEN_FOR_ROLE). A WebSocket keeps the mode it was opened in: reconnect it.',
    authScopes: { reader: true },
    args: { input: t.arg({ type: SwitchModeInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const auth = ctx.auth!;
        if (auth.credential !== 'member_session' || !auth.sessionId) {
          throw new DomainError(
            'FORBIDDEN_FOR_ROLE',
            'Only a dashboard session can switch modes: a key or token belongs to one mode (use a key of the other mode).',
          );
        }
        await switchSessionMode(ctx.db.prisma, auth.sessionId, input.mode);
        ctx.authenticator.forgetSession(auth.sessionId);
        ctx.pubsub.publish('memberSessions', { sessionId: auth.sessionId, ended: false });
        const switched: Auth = { ...auth, mode: input.mode };
        (ctx as { auth: Auth | null }).auth = switched;
        return { viewer: { workspaceId: switched.workspaceId, auth: switched } };
      }),
  }),
);

// --- Removing -------------------------------------------------------------------------------------

const RemoveMemberInput = builder.inputType('RemoveMemberInput', {
  fields: (t) => ({ id: t.id({ required: true }) }),
});

const RemoveMemberPayload = payloadType<{ member: Member }>(
  'RemoveMemberPayload',
  'The removed member, as they were.',
  (t) => ({
    member: t.field({ type: MemberRef, nullable: true, resolve: (p) => p.member ?? null }),
  }),
);

builder.mutationField('removeMember', (t) =>
  t.field({
    type: RemoveMemberPayload,
    description:
      'Remove a member from the workspace (ADMIN only): their sessions end at once (WebSockets close with 4403), an invitation stops working. You cannot remove yourself. Appends `member.removed` (to both modes).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RemoveMemberInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const id = rowIdFrom(String(input.id), 'Member');
        const member = await removeMember(ctx.db.prisma, tenantOf(ctx).workspaceId, id, ctx.auth?.memberId ?? null);
        ctx.authenticator.forgetMember(member.id);
        ctx.pubsub.publish('memberSessions', { memberId: member.id, ended: true });
        return { member };
      }),
  }),
);
