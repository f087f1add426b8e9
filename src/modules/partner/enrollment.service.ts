import type { Enrollment, EnrollmentStatus, Partner, PrismaClient } from '../../generated/prisma/client.js';
import { Prisma } from '../../generated/prisma/client.js';
import { DomainError, notFound } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { appendEvent } from '../events/outbox.js';
import { enrollmentCreated, enrollmentStatusChanged } from '../events/payloads.js';
import { createDefaultLink, type Db } from '../link/link.service.js';
import { findPartnerByKey, partnerKeyField, type PartnerKey } from './partner-key.js';

/** The status changes an admin may make; anything else is INVALID_TRANSITION. */
const TRANSITIONS: Record<EnrollmentStatus, readonly EnrollmentStatus[]> = {
  PENDING: ['APPROVED', 'REJECTED'],
  APPROVED: ['REJECTED'],
  REJECTED: ['APPROVED'],
};

export function canTransition(from: EnrollmentStatus, to: EnrollmentStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002';
}

/**
 * Enroll an already loaded partner in a program of the same tenant, inside the caller's
 * transaction. `programField` names the input field the program id came from, for userErrors.
 * APPROVED (the program auto-approves) enrollments get their default link in the same transaction.
 */
export async function enrollInTransaction(
  tx: Db,
  tenant: Tenant,
  partner: Pick<Partner, 'id' | 'externalId' | 'status'>,
  programId: string | null,
  fields: { partner: string[] | null; program: string[] },
): Promise<Enrollment> {
  const program = programId
    ? await tx.program.findUnique({ where: { id_workspaceId_mode: { id: programId, ...tenant } } })
    : null;
  if (!program) throw notFound('Program', fields.program);
  if (partner.status === 'BANNED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Partner "${partner.externalId}" is BANNED and cannot be enrolled in program "${program.name}"; set the partner ACTIVE first.`,
      fields.partner,
    );
  }
  if (program.status === 'ARCHIVED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Program "${program.name}" is ARCHIVED and accepts no new partners.`,
      fields.program,
    );
  }
  const existing = await tx.enrollment.findUnique({
    where: { programId_partnerId: { programId: program.id, partnerId: partner.id } },
  });
  if (existing) throw alreadyEnrolled(partner.externalId, program.name, fields.program);
  const enrollment = await tx.enrollment.create({
    data: {
      ...tenant,
      programId: program.id,
      partnerId: partner.id,
      status: program.autoApprovePartners ? 'APPROVED' : 'PENDING',
    },
  });
  await appendEvent(tx, tenant, enrollmentCreated(enrollment));
  if (enrollment.status === 'APPROVED') await createDefaultLink(tx, enrollment);
  return enrollment;
}

const alreadyEnrolled = (externalId: string, programName: string | null, field: string[] | null) =>
  new DomainError(
    'DUPLICATE',
    programName
      ? `Partner "${externalId}" is already enrolled in program "${programName}".`
      : `Partner "${externalId}" is already enrolled in this program.`,
    field,
  );

/** Enroll a partner in a program: PENDING, or APPROVED with a default link when the program auto-approves. */
export async function enrollPartner(
  prisma: PrismaClient,
  tenant: Tenant,
  input: PartnerKey & { programId: string | null },
): Promise<Enrollment> {
  let externalId = '';
  try {
    return await prisma.$transaction(async (tx) => {
      const partner = await findPartnerByKey(tx, tenant, input);
      externalId = partner.externalId;
      return enrollInTransaction(tx, tenant, partner, input.programId, {
        partner: partnerKeyField(input),
        program: ['input', 'programId'],
      });
    });
  } catch (error) {
    // Two concurrent enrollments of the same pair: the loser hits the unique key.
    if (isUniqueViolation(error)) throw alreadyEnrolled(externalId, null, ['input', 'programId']);
    throw error;
  }
}

/**
 * Move an enrollment along PENDING → APPROVED | REJECTED, APPROVED → REJECTED, REJECTED → APPROVED.
 * Approving gives the enrollment its default link when it has no link yet; existing links are kept.
 */
export async function setEnrollmentStatus(
  prisma: PrismaClient,
  tenant: Tenant,
  input: { enrollmentId: string | null; status: EnrollmentStatus },
): Promise<Enrollment> {
  return prisma.$transaction(async (tx) => {
    const enrollment = input.enrollmentId
      ? await tx.enrollment.findUnique({
          where: { id_workspaceId_mode: { id: input.enrollmentId, ...tenant } },
          include: { partner: true, program: true, _count: { select: { links: true } } },
        })
      : null;
    if (!enrollment) throw notFound('Enrollment', ['input', 'enrollmentId']);
    const what = `The enrollment of partner "${enrollment.partner.externalId}" in program "${enrollment.program.name}"`;
    if (!canTransition(enrollment.status, input.status)) {
      throw new DomainError(
        'INVALID_TRANSITION',
        enrollment.status === input.status
          ? `${what} is already ${input.status}.`
          : `${what} is ${enrollment.status} and cannot become ${input.status}.`,
        ['input', 'status'],
      );
    }
    if (input.status === 'APPROVED') {
      if (enrollment.partner.status === 'BANNED') {
        throw new DomainError('INVALID_TRANSITION', `${what} cannot become APPROVED: the partner is BANNED.`, [
          'input',
          'status',
        ]);
      }
      if (enrollment.program.status === 'ARCHIVED') {
        throw new DomainError('INVALID_TRANSITION', `${what} cannot become APPROVED: the program is ARCHIVED.`, [
          'input',
          'status',
        ]);
      }
    }
    // Guarded on the status read above, so of two concurrent changes only one applies.
    const { count } = await tx.enrollment.updateMany({
      where: { id: enrollment.id, status: enrollment.status },
      data: { status: input.status },
    });
    if (count !== 1) {
      throw new DomainError('INVALID_TRANSITION', `${what} changed while this request ran; read it again and retry.`, [
        'input',
        'status',
      ]);
    }
    const updated = await tx.enrollment.findUniqueOrThrow({ where: { id: enrollment.id } });
    await appendEvent(tx, tenant, enrollmentStatusChanged(updated, enrollment.status, updated.status));
    if (input.status === 'APPROVED' && enrollment._count.links === 0) await createDefaultLink(tx, updated);
    return updated;
  });
}
