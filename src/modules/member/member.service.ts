import type { Member, PrismaClient } from '../../generated/prisma/client.js';
import type { Mode, Role } from '../../generated/prisma/enums.js';
import { DomainError, notFound } from '../../domain/errors.js';
import { appendEvents } from '../events/outbox.js';
import { memberInvited, memberJoined, memberRemoved } from '../events/payloads.js';
import { checkNewPassword, checkPassword, hashPassword } from './passwords.js';
import { generateInvitationToken, generateSessionToken, sessionIdOf } from './session-tokens.js';

/** MEMBER_INVITATION_TTL_HOURS and MEMBER_SESSION_TTL_HOURS. */
export interface MemberSettings {
  invitationTtlHours: number;
  sessionTtlHours: number;
}

/** A session just opened: the token goes into the cookie (only its hash is stored). */
export interface OpenedSession {
  token: string;
  id: string;
  memberId: string;
  workspaceId: string;
  mode: Mode;
  expiresAt: Date;
}

const MODES: readonly Mode[] = ['TEST', 'LIVE'];

/**
 * Member events belong to the workspace, not to a mode (a member acts in both): each is appended
 * to both modes' event streams, so either mode's webhooks and subscriptions see the team change.
 */
async function appendToBothModes(
  tx: Parameters<typeof appendEvents>[0],
  workspaceId: string,
  event: Parameters<typeof appendEvents>[2][number],
): Promise<void> {
  for (const mode of MODES) await appendEvents(tx, { workspaceId, mode }, [event]);
}

/** An email as stored: trimmed, lower-cased, shaped like an address (VALIDATION otherwise). */
export function normalizeEmail(email: string, field: string[] = ['input', 'email']): string {
  const normalized = email.trim().toLowerCase();
  if (normalized.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(normalized))
    throw new DomainError('VALIDATION', `"${email.slice(0, 80)}" is not an email address.`, field);
  return normalized;
}

function checkRole(role: Role): 'ADMIN' | 'READ_ONLY' {
  if (role !== 'ADMIN' && role !== 'READ_ONLY')
    throw new DomainError('VALIDATION', 'A member is ADMIN or READ_ONLY (partners get partner tokens).', [
      'input',
      'role',
    ]);
  return role;
}

function checkName(name: string | null | undefined): string | null {
  const trimmed = name?.trim() ?? '';
  if (trimmed.length > 200)
    throw new DomainError('VALIDATION', 'A name must be at most 200 characters.', ['input', 'name']);
  return trimmed.length > 0 ? trimmed : null;
}

/**
 * Invite a person into a workspace (an ADMIN's request, or `refgraph member create`): the member
 * row (INVITED) with a one-time invitation that expires, and `member.invited`, in one transaction.
 * Inviting an email that is INVITED already replaces its invitation (the old link stops working);
 * an ACTIVE member's email is DUPLICATE. Returns the invitation token, which exists only here.
 */
export async function inviteMember(
  prisma: PrismaClient,
  workspaceId: string,
  input: { email: string; name?: string | null; role: Role },
  settings: Pick<MemberSettings, 'invitationTtlHours'>,
): Promise<{ member: Member; invitationToken: string }> {
  const email = normalizeEmail(input.email);
  const role = checkRole(input.role);
  const name = checkName(input.name);
  const invitationToken = generateInvitationToken();
  const invitation = {
    invitationHash: sessionIdOf(invitationToken),
    invitationExpiresAt: new Date(Date.now() + settings.invitationTtlHours * 3_600_000),
  };
  const member = await prisma.$transaction(async (tx) => {
    const existing = await tx.member.findUnique({ where: { workspaceId_email: { workspaceId, email } } });
    if (existing?.status === 'ACTIVE')
      throw new DomainError('DUPLICATE', `${email} is a member of this workspace already.`, ['input', 'email']);
    const member = existing
      ? await tx.member.update({
          where: { id: existing.id },
          data: { role, name: name ?? existing.name, ...invitation },
        })
      : await tx.member.create({ data: { workspaceId, email, name, role, status: 'INVITED', ...invitation } });
    await appendToBothModes(tx, workspaceId, memberInvited(member));
    return member;
  });
  return { member, invitationToken };
}

/**
 * A member who can sign in at once, without an invitation (the demo seed): ACTIVE with this
 * password, and `member.joined`, in one transaction.
 */
export async function createActiveMember(
  prisma: PrismaClient,
  workspaceId: string,
  input: { email: string; name: string | null; role: Role; password: string },
): Promise<Member> {
  const email = normalizeEmail(input.email);
  const role = checkRole(input.role);
  const passwordHash = await hashPassword(checkNewPassword(input.password, ['input', 'password']));
  return prisma.$transaction(async (tx) => {
    const member = await tx.member.create({
      data: {
        workspaceId,
        email,
        name: checkName(input.name),
        role,
        status: 'ACTIVE',
        passwordHash,
        joinedAt: new Date(),
      },
    });
    await appendToBothModes(tx, workspaceId, memberJoined(member));
    return member;
  });
}

/** `${PUBLIC_URL}/app/#invitation=<token>`: the fragment never reaches a server's or proxy's log. */
export function invitationUrl(publicUrl: string, token: string): string {
  return `${publicUrl}/app/#invitation=${encodeURIComponent(token)}`;
}

async function openSession(
  prisma: Pick<PrismaClient, 'memberSession'>,
  member: Pick<Member, 'id' | 'workspaceId'>,
  mode: Mode,
  settings: Pick<MemberSettings, 'sessionTtlHours'>,
): Promise<OpenedSession> {
  const token = generateSessionToken();
  const expiresAt = new Date(Date.now() + settings.sessionTtlHours * 3_600_000);
  const session = await prisma.memberSession.create({
    data: { id: sessionIdOf(token), memberId: member.id, workspaceId: member.workspaceId, mode, expiresAt },
  });
  return { token, id: session.id, memberId: member.id, workspaceId: member.workspaceId, mode, expiresAt };
}

const invalidInvitation = () =>
  new DomainError(
    'INVALID_CREDENTIALS',
    'This invitation link is not valid (it may have been used already): ask an ADMIN of the workspace for a new one.',
    ['input', 'token'],
  );

/**
 * The invitee sets their password (and name): the member becomes ACTIVE, the invitation is spent
 * (of two concurrent uses exactly one wins), `member.joined` is appended, and a session (TEST
 * mode) is opened: accepting signs in.
 */
export async function acceptInvitation(
  prisma: PrismaClient,
  input: { token: string; password: string; name?: string | null },
  settings: Pick<MemberSettings, 'sessionTtlHours'>,
): Promise<{ member: Member; session: OpenedSession }> {
  const password = checkNewPassword(input.password, ['input', 'password']);
  const name = checkName(input.name);
  const invitationHash = sessionIdOf(input.token.trim());
  const invited = await prisma.member.findUnique({ where: { invitationHash } });
  if (invited?.status !== 'INVITED') throw invalidInvitation();
  if (!invited.invitationExpiresAt || invited.invitationExpiresAt <= new Date()) {
    throw new DomainError(
      'INVALID_CREDENTIALS',
      'This invitation has expired: ask an ADMIN of the workspace to invite you again.',
      ['input', 'token'],
    );
  }
  const passwordHash = await hashPassword(password);
  return prisma.$transaction(async (tx) => {
    const now = new Date();
    const spent = await tx.member.updateMany({
      where: { id: invited.id, invitationHash, status: 'INVITED', invitationExpiresAt: { gt: now } },
      data: {
        status: 'ACTIVE',
        passwordHash,
        joinedAt: now,
        invitationHash: null,
        invitationExpiresAt: null,
        ...(name ? { name } : {}),
      },
    });
    if (spent.count !== 1) throw invalidInvitation();
    const member = await tx.member.findUniqueOrThrow({ where: { id: invited.id } });
    await appendToBothModes(tx, member.workspaceId, memberJoined(member));
    return { member, session: await openSession(tx, member, 'TEST', settings) };
  });
}

const wrongEmailOrPassword = () =>
  new DomainError('INVALID_CREDENTIALS', 'Wrong email or password.', ['input', 'password']);

/**
 * Sign in with email and password into `workspaceId`, or, without one, into the oldest of the
 * email's memberships. An unknown email, a member not yet ACTIVE and a wrong password get the
 * same answer after the same work (a dummy hash is verified): nothing tells whether an email is
 * known.
 */
export async function signIn(
  prisma: PrismaClient,
  input: { email: string; password: string; workspaceId: string | null; mode: Mode },
  settings: Pick<MemberSettings, 'sessionTtlHours'>,
): Promise<{ member: Member; session: OpenedSession }> {
  const email = input.email.trim().toLowerCase();
  const member = await prisma.member.findFirst({
    where: { email, status: 'ACTIVE', ...(input.workspaceId ? { workspaceId: input.workspaceId } : {}) },
    orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
  });
  const ok = await checkPassword(member?.passwordHash ?? null, input.password);
  if (!member || !ok) throw wrongEmailOrPassword();
  // Expired sessions of this member are dropped here: the table does not grow with every sign-in.
  await prisma.memberSession.deleteMany({ where: { memberId: member.id, expiresAt: { lte: new Date() } } });
  return { member, session: await openSession(prisma, member, input.mode, settings) };
}

/** End a session (sign-out). Ending one that is gone already is harmless. */
export async function endSession(prisma: PrismaClient, sessionId: string): Promise<void> {
  await prisma.memberSession.deleteMany({ where: { id: sessionId } });
}

/** A member session changes mode (the dashboard's TEST/LIVE toggle). */
export async function switchSessionMode(prisma: PrismaClient, sessionId: string, mode: Mode): Promise<void> {
  const { count } = await prisma.memberSession.updateMany({
    where: { id: sessionId, expiresAt: { gt: new Date() } },
    data: { mode },
  });
  if (count !== 1) throw new DomainError('INVALID_CREDENTIALS', 'This session has ended: sign in again.');
}

/**
 * Remove a member of the workspace: the row and its sessions go, `member.removed` is appended, in
 * one transaction. An ADMIN cannot remove themself (another ADMIN or the command line can).
 * Returns the member as it was.
 */
export async function removeMember(
  prisma: PrismaClient,
  workspaceId: string,
  memberId: string | null,
  actorMemberId: string | null,
): Promise<Member> {
  if (memberId && memberId === actorMemberId) {
    throw new DomainError('VALIDATION', 'You cannot remove yourself: another ADMIN of the workspace can remove you.', [
      'input',
      'id',
    ]);
  }
  return prisma.$transaction(async (tx) => {
    const member = memberId ? await tx.member.findFirst({ where: { id: memberId, workspaceId } }) : null;
    if (!member) throw notFound('Member', ['input', 'id']);
    await tx.member.delete({ where: { id: member.id } });
    await appendToBothModes(tx, workspaceId, memberRemoved(member));
    return member;
  });
}
