import type { Enrollment, EnrollmentStatus, Partner, PrismaClient } from '../../generated/prisma/client.js';
import { Prisma } from '../../generated/prisma/client.js';
import { type Answers, checkAnswers, storedQuestions } from '../../domain/application.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
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

/** How an enrollment comes about, beyond the partner and the program. */
export interface EnrollOptions {
  /**
   * The answers to the program's application questions, checked against them (unknown keys and
   * missing required answers refused) at `field`. Absent: no check and no answers (an admin's
   * `createPartner(programIds)`).
   */
  answers?: { value: unknown; field: string[] };
  /**
   * A partner applying with its own credential: the program must be ACTIVE, the enrollment is
   * PENDING even when the program auto-approves, and refusals do not name the program.
   */
  application?: boolean;
}

/**
 * Enroll an already loaded partner in a program of the same tenant, inside the caller's
 * transaction. `fields` name the input fields the partner and the program came from, for userErrors.
 * APPROVED (the program auto-approves) enrollments get their default link in the same transaction;
 * a PENDING one records when it was applied for (`appliedAt`).
 */
export async function enrollInTransaction(
  tx: Db,
  tenant: Tenant,
  partner: Pick<Partner, 'id' | 'externalId' | 'status'>,
  programId: string | null,
  fields: { partner: string[] | null; program: string[] },
  options: EnrollOptions = {},
): Promise<Enrollment> {
  const program = programId
    ? await tx.program.findUnique({ where: { id_workspaceId_mode: { id: programId, ...tenant } } })
    : null;
  if (!program) throw notFound('Program', fields.program);
  // A partner applying may not be in the program yet: it learns neither the program's name nor its status.
  const programLabel = options.application ? 'this program' : `program "${program.name}"`;
  if (partner.status === 'BANNED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Partner "${partner.externalId}" is BANNED and cannot be enrolled in ${programLabel}; set the partner ACTIVE first.`,
      fields.partner,
    );
  }
  if (options.application && program.status !== 'ACTIVE') {
    throw new DomainError(
      'INVALID_TRANSITION',
      'This program does not accept applications now: only an ACTIVE program does.',
      fields.program,
    );
  }
  if (program.status === 'ARCHIVED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Program "${program.name}" is ARCHIVED and accepts no new partners.`,
      fields.program,
    );
  }
  let answers: Answers | null = null;
  if (options.answers) {
    const v = new Validator();
    answers = checkAnswers(
      v,
      storedQuestions(program.applicationQuestions),
      options.answers.value,
      options.answers.field,
    );
    v.throwIfAny();
  }
  const existing = await tx.enrollment.findUnique({
    where: { programId_partnerId: { programId: program.id, partnerId: partner.id } },
  });
  if (existing) throw alreadyEnrolled(partner.externalId, programLabel, fields.program);
  const status = program.autoApprovePartners && !options.application ? 'APPROVED' : 'PENDING';
  const now = new Date();
  const enrollment = await tx.enrollment.create({
    data: {
      ...tenant,
      programId: program.id,
      partnerId: partner.id,
      status,
      ...(answers ? { answers } : {}),
      createdAt: now,
      appliedAt: status === 'PENDING' ? now : null,
    },
  });
  await appendEvent(tx, tenant, enrollmentCreated(enrollment));
  if (enrollment.status === 'APPROVED') await createDefaultLink(tx, enrollment);
  return enrollment;
}

/** `programLabel`: `program "Name"`, or `this program` when the name is not to be told. */
const alreadyEnrolled = (externalId: string, programLabel: string, field: string[] | null) =>
  new DomainError('DUPLICATE', `Partner "${externalId}" is already enrolled in ${programLabel}.`, field);

export interface EnrollPartnerInput extends PartnerKey {
  programId: string | null;
  /** The answers to the program's application questions (a JSON object of strings), as the client sent them. */
  answers?: unknown;
}

/** Who enrolls: an admin (any partner of the tenant), or a PARTNER credential applying for its own partner. */
export interface EnrollCaller {
  /** A PARTNER credential's partner; null for an admin. */
  partnerId: string | null;
}

/**
 * Enroll a partner in a program: PENDING, or APPROVED with a default link when the program
 * auto-approves. Answers are checked against the program's questions. A PARTNER caller applies:
 * only for its own partner (any other answers like an unknown one), only to an ACTIVE program,
 * and always PENDING.
 */
export async function enrollPartner(
  prisma: PrismaClient,
  tenant: Tenant,
  input: EnrollPartnerInput,
  caller: EnrollCaller = { partnerId: null },
): Promise<Enrollment> {
  const application = caller.partnerId !== null;
  let externalId = '';
  try {
    return await prisma.$transaction(async (tx) => {
      const partner = await findPartnerByKey(tx, tenant, input, { onlyPartnerId: caller.partnerId });
      externalId = partner.externalId;
      return enrollInTransaction(
        tx,
        tenant,
        partner,
        input.programId,
        { partner: partnerKeyField(input), program: ['input', 'programId'] },
        { answers: { value: input.answers, field: ['input', 'answers'] }, application },
      );
    });
  } catch (error) {
    // Two concurrent enrollments of the same pair: the loser hits the unique key.
    if (isUniqueViolation(error)) throw alreadyEnrolled(externalId, 'this program', ['input', 'programId']);
    throw error;
  }
}

/** The longest rejection reason (trimmed). */
export const REJECTION_REASON_MAX = 500;

/**
 * The reason as stored: trimmed, blank as null. Only a rejection takes one (VALIDATION at
 * ["input","reason"] otherwise, like one over REJECTION_REASON_MAX characters).
 */
function checkReason(reason: string | null | undefined, status: EnrollmentStatus): string | null {
  const text = reason?.trim() || null;
  if (text === null) return null;
  if (status !== 'REJECTED') {
    throw new DomainError(
      'VALIDATION',
      `A reason goes with REJECTED only (it is kept as the enrollment’s rejectionReason); send ${status} without one.`,
      ['input', 'reason'],
    );
  }
  if (text.length > REJECTION_REASON_MAX) {
    throw new DomainError(
      'VALIDATION',
      `A reason must be at most ${REJECTION_REASON_MAX} characters long; got ${text.length}.`,
      ['input', 'reason'],
    );
  }
  return text;
}

/**
 * Move an enrollment along PENDING → APPROVED | REJECTED, APPROVED → REJECTED, REJECTED → APPROVED.
 * Approving gives the enrollment its default link when it has no link yet; existing links are kept.
 * Every change sets `reviewedAt`; rejecting keeps `reason` as `rejectionReason` (null without
 * one), approving clears it.
 */
export async function setEnrollmentStatus(
  prisma: PrismaClient,
  tenant: Tenant,
  input: { enrollmentId: string | null; status: EnrollmentStatus; reason?: string | null },
): Promise<Enrollment> {
  const reason = checkReason(input.reason, input.status);
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
      data: { status: input.status, reviewedAt: new Date(), rejectionReason: reason },
    });
    if (count !== 1) {
      throw new DomainError('INVALID_TRANSITION', `${what} changed while this request ran; read it again and retry.`, [
        'input',
        'status',
      ]);
    }
    const updated = await tx.enrollment.findUniqueOrThrow({ where: { id: enrollment.id } });
    await appendEvent(
      tx,
      tenant,
      enrollmentStatusChanged(updated, enrollment.status, updated.status, updated.rejectionReason),
    );
    if (input.status === 'APPROVED' && enrollment._count.links === 0) await createDefaultLink(tx, updated);
    return updated;
  });
}
