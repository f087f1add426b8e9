import type { Coupon, PrismaClient } from '../../generated/prisma/client.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { appendEvent } from '../events/outbox.js';
import { couponCreated, couponDisabled } from '../events/payloads.js';
import { normalizeCode, vanityCodeProblems } from '../link/codes.js';
import { approvedEnrollmentFor } from '../partner/approved-enrollment.js';
import { isUniqueViolation } from '../partner/enrollment.service.js';
import { findPartnerByKey, partnerKeyError, partnerKeyField, type PartnerKey } from '../partner/partner-key.js';

export const couponTaken = (code: string) =>
  new DomainError(
    'DUPLICATE',
    `The coupon code "${code}" is already taken in this workspace and mode; choose another.`,
    ['input', 'code'],
  );

/**
 * A coupon for a partner in a program: a checkout code of the company's that attributes a
 * conversion like a link code (recordConversion(couponCode)). The code follows the vanity link
 * code rules (3–32 of A–Z, a–z, 0–9, _ and -) and is unique per workspace and mode ignoring case
 * (DUPLICATE, also when two creates race). The partner must have an APPROVED enrollment in the
 * program; a BANNED partner or an ARCHIVED program cannot get one (INVALID_TRANSITION).
 */
export async function createCoupon(
  prisma: PrismaClient,
  tenant: Tenant,
  input: PartnerKey & { programId: string | null; code: string },
): Promise<Coupon> {
  const code = input.code.trim();
  const v = new Validator();
  for (const problem of vanityCodeProblems(code)) v.check(false, ['input', 'code'], problem);
  const keyProblem = partnerKeyError(input);
  if (keyProblem) v.add(keyProblem);
  v.throwIfAny();

  const partner = await findPartnerByKey(prisma, tenant, input);
  const program = input.programId
    ? await prisma.program.findUnique({ where: { id_workspaceId_mode: { id: input.programId, ...tenant } } })
    : null;
  if (!program) throw notFound('Program', ['input', 'programId']);
  const enrollment = await approvedEnrollmentFor(
    prisma,
    program,
    { id: partner.id, label: `Partner "${partner.externalId}"` },
    { what: 'coupons', field: ['input', 'programId'] },
  );
  if (partner.status === 'BANNED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Partner "${partner.externalId}" is BANNED; a banned partner cannot get coupons.`,
      partnerKeyField(input),
    );
  }
  try {
    return await prisma.$transaction(async (tx) => {
      const coupon = await tx.coupon.create({
        data: {
          ...tenant,
          programId: program.id,
          partnerId: partner.id,
          enrollmentId: enrollment.id,
          code,
          codeNormalized: normalizeCode(code),
        },
      });
      await appendEvent(tx, tenant, couponCreated(coupon));
      return coupon;
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw couponTaken(code);
    throw error;
  }
}

/** Disable a coupon: conversions with it are recorded DISCARDED (COUPON_DISABLED). Twice is harmless. */
export async function disableCoupon(prisma: PrismaClient, tenant: Tenant, couponId: string | null): Promise<Coupon> {
  const coupon = couponId
    ? await prisma.coupon.findUnique({ where: { id_workspaceId_mode: { id: couponId, ...tenant } } })
    : null;
  if (!coupon) throw notFound('Coupon');
  if (coupon.disabledAt) return coupon;
  return prisma.$transaction(async (tx) => {
    const disabled = await tx.coupon.update({ where: { id: coupon.id }, data: { disabledAt: new Date() } });
    await appendEvent(tx, tenant, couponDisabled(disabled));
    return disabled;
  });
}
