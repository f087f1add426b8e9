import type { Enrollment, PrismaClient, Program } from '../../generated/prisma/client.js';
import { DomainError } from '../../domain/errors.js';

/**
 * The partner's APPROVED enrollment in a program, for what only such an enrollment may have (a
 * link moved into the program, a coupon). Not enrolled: NOT_FOUND; enrolled but PENDING or
 * REJECTED, or the program ARCHIVED: INVALID_TRANSITION — each error at `field`, saying what to do.
 * `partner` names the partner in messages ("The link's partner", `Partner "p-1"`); `purpose` ends
 * the sentences ("coupons", "a link moved there").
 */
export async function approvedEnrollmentFor(
  prisma: Pick<PrismaClient, 'enrollment'>,
  program: Pick<Program, 'id' | 'name' | 'status'>,
  partner: { id: string; label: string },
  purpose: { what: string; field: string[] },
): Promise<Enrollment> {
  const enrollment = await prisma.enrollment.findUnique({
    where: { programId_partnerId: { programId: program.id, partnerId: partner.id } },
  });
  if (!enrollment) {
    throw new DomainError(
      'NOT_FOUND',
      `${partner.label} is not enrolled in program "${program.name}": enroll them first (enrollPartner), then try again.`,
      purpose.field,
    );
  }
  if (enrollment.status !== 'APPROVED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `${partner.label} is ${enrollment.status} in program "${program.name}"; ${purpose.what} need an APPROVED enrollment.`,
      purpose.field,
    );
  }
  if (program.status === 'ARCHIVED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Program "${program.name}" is ARCHIVED; it cannot take ${purpose.what}.`,
      purpose.field,
    );
  }
  return enrollment;
}
