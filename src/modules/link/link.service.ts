import type { Prisma, PrismaClient, ReferralLink } from '../../generated/prisma/client.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { effectiveDestinationHosts, hostAllowed, normalizeDestinationUrl } from '../../lib/destination-url.js';
import { appendEvent, inTransaction } from '../events/outbox.js';
import { linkCreated, linkDisabled, linkUpdated } from '../events/payloads.js';
import { approvedEnrollmentFor } from '../partner/approved-enrollment.js';
import { findPartnerByKey, partnerKeyError, partnerKeyField, type PartnerKey } from '../partner/partner-key.js';
import { generateCode, isReservedCode, normalizeCode, vanityCodeProblems } from './codes.js';

/** A client or an interactive transaction: services work inside either. */
export type Db = PrismaClient | Prisma.TransactionClient;

/** Attempts at a free generated code before giving up (31^8 codes: a second attempt is already rare). */
const GENERATED_CODE_ATTEMPTS = 10;

/** The message for a taken code. Identical whoever holds it, so it reveals nothing about other workspaces. */
export const codeTakenMessage = (code: string) => `The code "${code}" is already taken; choose another.`;

interface LinkOwner {
  workspaceId: string;
  mode: Tenant['mode'];
  enrollmentId: string;
  programId: string;
  partnerId: string;
}

/**
 * Insert a link with the given vanity code, or with a generated one (retried on collision).
 * `ON CONFLICT DO NOTHING` keeps a collision from aborting the surrounding transaction, and makes
 * the uniqueness check atomic with the insert.
 */
async function insertLink(
  db: Db,
  owner: LinkOwner,
  options: { code?: string; destinationUrl?: string | null; isDefault: boolean },
): Promise<ReferralLink> {
  const attempts = options.code === undefined ? GENERATED_CODE_ATTEMPTS : 1;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const code = options.code ?? generateCode();
    if (options.code === undefined && isReservedCode(code)) continue;
    const codeNormalized = normalizeCode(code);
    const { count } = await db.referralLink.createMany({
      data: [
        {
          ...owner,
          code,
          codeNormalized,
          destinationUrl: options.destinationUrl ?? null,
          isDefault: options.isDefault,
        },
      ],
      skipDuplicates: true,
    });
    if (count === 1) {
      const link = await db.referralLink.findUniqueOrThrow({ where: { codeNormalized } });
      await appendEvent(db, owner, linkCreated(link));
      return link;
    }
  }
  if (options.code !== undefined) throw new DomainError('DUPLICATE', codeTakenMessage(options.code), ['input', 'code']);
  throw new Error(`no free referral code after ${GENERATED_CODE_ATTEMPTS} attempts`);
}

/** The link an enrollment gets when it is approved: a generated code, the program's destination. */
export function createDefaultLink(
  db: Db,
  enrollment: { id: string; workspaceId: string; mode: Tenant['mode']; programId: string; partnerId: string },
): Promise<ReferralLink> {
  return insertLink(
    db,
    {
      workspaceId: enrollment.workspaceId,
      mode: enrollment.mode,
      enrollmentId: enrollment.id,
      programId: enrollment.programId,
      partnerId: enrollment.partnerId,
    },
    { isDefault: true },
  );
}

export interface CreateReferralLinkInput extends PartnerKey {
  /** Row id; null when the given global id was malformed or of another type. */
  programId: string | null;
  /** A vanity code; absent or null: a generated one. */
  code?: string | null;
  destinationUrl?: string | null;
}

export interface LinkCaller {
  /** A PARTNER credential's partner: any other partner answers exactly like a missing one, and the destination must be allowed. */
  partnerId: string | null;
  /** PUBLIC_URL: its host is where a partner's links may go when the program names no host. */
  publicUrl: string;
}

/**
 * A new link for a partner in a program where their enrollment is APPROVED. A destination URL is
 * stored normalised; from a PARTNER credential it must point at a host the program allows
 * (`partnerDestinationError`), checked last so that a partner learns nothing about a program it is
 * not in.
 */
export async function createReferralLink(
  prisma: PrismaClient,
  tenant: Tenant,
  input: CreateReferralLinkInput,
  caller: LinkCaller,
): Promise<ReferralLink> {
  const onlyForPartnerId = caller.partnerId;
  const code = input.code ?? undefined;
  let destinationUrl: string | null = null;
  let destinationHost: string | null = null;
  const v = new Validator();
  if (code !== undefined) for (const problem of vanityCodeProblems(code)) v.check(false, ['input', 'code'], problem);
  if (input.destinationUrl?.trim()) {
    const normalized = normalizeDestinationUrl(input.destinationUrl);
    if ('problem' in normalized) v.check(false, ['input', 'destinationUrl'], normalized.problem);
    else ({ href: destinationUrl, hostname: destinationHost } = normalized);
  }
  const keyProblem = partnerKeyError(input);
  if (keyProblem) v.add(keyProblem);
  v.throwIfAny();

  const partner = await findPartnerByKey(prisma, tenant, input, { onlyPartnerId: onlyForPartnerId });
  const program = input.programId
    ? await prisma.program.findUnique({ where: { id_workspaceId_mode: { id: input.programId, ...tenant } } })
    : null;
  if (!program) throw notFound('Program', ['input', 'programId']);

  const enrollment = await prisma.enrollment.findUnique({
    where: { programId_partnerId: { programId: program.id, partnerId: partner.id } },
  });
  if (!enrollment) {
    throw new DomainError(
      'NOT_FOUND',
      `Partner "${partner.externalId}" is not enrolled in program "${program.name}": enroll them first (enrollPartner).`,
      ['input', 'programId'],
    );
  }
  if (enrollment.status !== 'APPROVED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `The enrollment of partner "${partner.externalId}" in program "${program.name}" is ${enrollment.status}; links can only be created for an APPROVED enrollment.`,
      ['input', 'programId'],
    );
  }
  if (partner.status === 'BANNED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Partner "${partner.externalId}" is BANNED; a banned partner cannot get new links.`,
      partnerKeyField(input),
    );
  }
  if (program.status === 'ARCHIVED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Program "${program.name}" is ARCHIVED; an archived program cannot get new links.`,
      ['input', 'programId'],
    );
  }
  if (destinationHost !== null && onlyForPartnerId !== null) {
    const refusal = partnerDestinationError(program, destinationHost, caller.publicUrl);
    if (refusal) throw refusal;
  }
  return inTransaction(prisma, (tx) =>
    insertLink(
      tx,
      { ...tenant, enrollmentId: enrollment.id, programId: program.id, partnerId: partner.id },
      { code, destinationUrl, isDefault: false },
    ),
  );
}

/**
 * Why a PARTNER credential may not send a program's visitors to `hostname` (a normalised
 * destination's), or null when it may. Every link a partner creates or changes goes through this:
 * otherwise `/r/{code}` on the company's domain would redirect anywhere a partner likes.
 */
export function partnerDestinationError(
  program: { name: string; allowedDestinationHosts: readonly string[]; destinationUrl: string | null },
  hostname: string,
  publicUrl: string,
): DomainError | null {
  const allowed = effectiveDestinationHosts(program, publicUrl);
  if (hostAllowed(hostname, allowed)) return null;
  return new DomainError(
    'VALIDATION',
    `Links of program "${program.name}" may only send visitors to ${allowed.join(', ')}; ${hostname} is not allowed. ` +
      'Leave destinationUrl out to use the program’s destination, or ask the program’s admin to allow the host (allowedDestinationHosts).',
    ['input', 'destinationUrl'],
  );
}

/** Disable a link: it stays readable (disabled: true) but no longer tracks. Disabling twice is harmless. */
export async function disableReferralLink(
  prisma: PrismaClient,
  tenant: Tenant,
  linkId: string | null,
): Promise<ReferralLink> {
  const link = linkId
    ? await prisma.referralLink.findUnique({ where: { id_workspaceId_mode: { id: linkId, ...tenant } } })
    : null;
  if (!link) throw notFound('Referral link');
  if (link.disabledAt) return link;
  return prisma.$transaction(async (tx) => {
    const disabled = await tx.referralLink.update({ where: { id: link.id }, data: { disabledAt: new Date() } });
    await appendEvent(tx, tenant, linkDisabled(disabled));
    return disabled;
  });
}

export interface UpdateReferralLinkInput {
  /** Row id; null when the given id was malformed or of another type. */
  linkId: string | null;
  /** Row id of the program to move it to; undefined: stay; null: given but not a program id. */
  programId?: string | null;
  /** undefined: keep; null or blank: clear (the program's destination); else a new destination. */
  destinationUrl?: string | null;
}

/**
 * Move a link to another program of its partner (the partner must have an APPROVED enrollment
 * there; the program must not be ARCHIVED) and/or change its destination. The code stays, so a
 * promoted customer keeps sharing the link they have; clicks, referrals and conversions already
 * recorded keep their program (they carry it themselves). A moved link is no longer its old
 * enrollment's default. Appends `link.updated` with the fields that changed; nothing changed:
 * no write, no event.
 */
export async function updateReferralLink(
  prisma: PrismaClient,
  tenant: Tenant,
  input: UpdateReferralLinkInput,
): Promise<ReferralLink> {
  const v = new Validator();
  let destinationUrl: string | null | undefined;
  if (input.destinationUrl !== undefined) {
    if (!input.destinationUrl?.trim()) destinationUrl = null;
    else {
      const normalized = normalizeDestinationUrl(input.destinationUrl);
      if ('problem' in normalized) v.check(false, ['input', 'destinationUrl'], normalized.problem);
      else destinationUrl = normalized.href;
    }
  }
  v.throwIfAny();
  const link = input.linkId
    ? await prisma.referralLink.findUnique({ where: { id_workspaceId_mode: { id: input.linkId, ...tenant } } })
    : null;
  if (!link) throw notFound('Referral link', ['input', 'id']);

  const data: Prisma.ReferralLinkUncheckedUpdateInput = {};
  const changed: string[] = [];
  if (input.programId !== undefined && input.programId !== link.programId) {
    const program = input.programId
      ? await prisma.program.findUnique({ where: { id_workspaceId_mode: { id: input.programId, ...tenant } } })
      : null;
    if (!program) throw notFound('Program', ['input', 'programId']);
    const enrollment = await approvedEnrollmentFor(
      prisma,
      program,
      { id: link.partnerId, label: "The link's partner" },
      { what: 'links moved into it', field: ['input', 'programId'] },
    );
    Object.assign(data, { programId: program.id, enrollmentId: enrollment.id, isDefault: false });
    changed.push('programId');
  }
  if (destinationUrl !== undefined && destinationUrl !== link.destinationUrl) {
    data.destinationUrl = destinationUrl;
    changed.push('destinationUrl');
  }
  if (changed.length === 0) return link;
  return prisma.$transaction(async (tx) => {
    const updated = await tx.referralLink.update({ where: { id: link.id }, data });
    await appendEvent(tx, tenant, linkUpdated(updated, changed, link.programId));
    return updated;
  });
}

/** The unique key of a code inside a tenant (codes are looked up ignoring case). */
export function codeKey(tenant: Tenant, code: string): Prisma.ReferralLinkWhereUniqueInput {
  return { workspaceId_mode_codeNormalized: { ...tenant, codeNormalized: normalizeCode(code) } };
}
