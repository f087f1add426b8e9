import { prismaSql } from '../../lib/sql.js';
import type { Enrollment, Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { appendEvent } from '../events/outbox.js';
import { enrollmentOverridesChanged } from '../events/payloads.js';
import { PERCENTAGE_BASIS_POINTS, parseMoney, type MoneyInput } from './reward-rule.service.js';

/** At most this many overrides per enrollment (a program has few rules; this bounds one call). */
export const MAX_OVERRIDES = 50;

export interface RuleOverrideInput {
  /** Row id of any version of the rule; null when the given global id was malformed or of another type. */
  ruleId: string | null;
  disabled?: boolean | null;
  fixedAmount?: MoneyInput | null;
  percentageBasisPoints?: number | null;
}

export interface SetEnrollmentOverridesInput {
  /** Row id; null when the given global id was malformed or of another type. */
  enrollmentId: string | null;
  overrides: readonly RuleOverrideInput[];
}

/**
 * Replace an enrollment's rule overrides with `input.overrides` (an empty list removes them all).
 * Each override names a rule of the enrollment's program (any version: it applies to the rule's
 * every version) and does exactly one thing: `disabled: true` (the rule pays this partner
 * nothing), a `fixedAmount` for a FIXED rule (in the rule's currency), or `percentageBasisPoints`
 * for a PERCENTAGE rule. Every problem is reported at once; a refused call changes nothing.
 * Rewards already created keep their amounts; the next conversion uses the new set.
 */
export async function setEnrollmentOverrides(
  prisma: PrismaClient,
  tenant: Tenant,
  input: SetEnrollmentOverridesInput,
): Promise<Enrollment> {
  const v = new Validator();
  v.check(
    input.overrides.length <= MAX_OVERRIDES,
    ['input', 'overrides'],
    `An enrollment takes at most ${MAX_OVERRIDES} overrides; got ${input.overrides.length}.`,
  );
  v.throwIfAny();

  return prisma.$transaction(async (tx) => {
    // Locked, so that two concurrent calls replace the set one after the other, never mixed.
    const enrollment = input.enrollmentId
      ? await tx.enrollment.findUnique({ where: { id_workspaceId_mode: { id: input.enrollmentId, ...tenant } } })
      : null;
    if (!enrollment) throw notFound('Enrollment', ['input', 'enrollmentId']);
    await prismaSql(tx).sql`SELECT 1 FROM "Enrollment" WHERE "id" = ${enrollment.id}::uuid FOR UPDATE`;

    const checked = await checkRuleOverrides(tx, v, tenant, enrollment.programId, input.overrides);
    v.throwIfAny();
    const rows = checked.map((row) => ({ ...row, enrollmentId: enrollment.id }));

    await tx.rewardRuleOverride.deleteMany({ where: { enrollmentId: enrollment.id, ...tenant } });
    if (rows.length) await tx.rewardRuleOverride.createMany({ data: rows });
    await appendEvent(tx, tenant, enrollmentOverridesChanged(enrollment, rows.length));
    return enrollment;
  });
}

/** An override checked against its rule, ready to store once given its owner (enrollmentId or tierId). */
export interface CheckedOverride {
  workspaceId: string;
  mode: Tenant['mode'];
  ruleId: string;
  ruleLineageId: string;
  disabled: boolean;
  fixedAmount: bigint | null;
  percentageBasisPoints: number | null;
}

/**
 * Check `overrides` (of an enrollment or a tier, in program `programId`): each names a rule of the
 * program (any version; one override per rule lineage) and does exactly one thing — `disabled:
 * true`, a `fixedAmount` for a FIXED rule in its currency, or `percentageBasisPoints` (1–10 000)
 * for a PERCENTAGE rule. Every problem is added to `v` at `[...field, index, …]`; the rows of the
 * valid ones are returned (the caller throws `v` before storing anything). The count limit
 * (MAX_OVERRIDES) is the caller's.
 */
export async function checkRuleOverrides(
  tx: Prisma.TransactionClient,
  v: Validator,
  tenant: Tenant,
  programId: string,
  overrides: readonly RuleOverrideInput[],
  owner: 'enrollment' | 'tier' = 'enrollment',
  field: readonly string[] = ['input', 'overrides'],
): Promise<CheckedOverride[]> {
  const ruleIds = [...new Set(overrides.map((o) => o.ruleId).filter((id): id is string => id !== null))];
  const rules = await tx.rewardRule.findMany({
    where: { id: { in: ruleIds }, ...tenant, programId },
  });
  const byId = new Map(rules.map((rule) => [rule.id, rule]));
  const lineages = new Map<string, number>();
  return overrides.flatMap((override, index): CheckedOverride[] => {
    const at = (...path: string[]) => [...field, String(index), ...path];
    const rule = override.ruleId ? byId.get(override.ruleId) : undefined;
    if (!rule) {
      v.add(
        new DomainError(
          'NOT_FOUND',
          `No reward rule with this id in the ${owner}’s program (in this workspace and mode).`,
          at('ruleId'),
        ),
      );
      return [];
    }
    const earlier = lineages.get(rule.lineageId);
    if (earlier !== undefined) {
      v.add(
        new DomainError(
          'DUPLICATE',
          `This rule already has an override at index ${earlier} (a rule's versions share their overrides); give one per rule.`,
          at('ruleId'),
        ),
      );
      return [];
    }
    lineages.set(rule.lineageId, index);
    const effects = [
      override.disabled === true,
      override.fixedAmount != null,
      override.percentageBasisPoints != null,
    ].filter(Boolean).length;
    if (effects !== 1) {
      v.add(
        new DomainError(
          'VALIDATION',
          effects === 0
            ? 'An override does one thing: `disabled: true`, a `fixedAmount`, or `percentageBasisPoints`; this one sets none. To remove an override, leave it out of the list.'
            : 'An override does one thing: `disabled: true`, a `fixedAmount`, or `percentageBasisPoints`; this one sets several.',
          at(),
        ),
      );
      return [];
    }
    let fixedAmount: bigint | null = null;
    if (override.fixedAmount != null) {
      if (rule.amountType !== 'FIXED') {
        v.add(
          new DomainError(
            'VALIDATION',
            'This rule pays a percentage: override it with `percentageBasisPoints`, not `fixedAmount`.',
            at('fixedAmount'),
          ),
        );
        return [];
      }
      const money = parseMoney(v, override.fixedAmount, at('fixedAmount'), '`fixedAmount`');
      if (!money) return [];
      if (money.currency !== rule.fixedCurrency) {
        v.add(
          new DomainError(
            'VALIDATION',
            `This rule pays in ${rule.fixedCurrency}; an override of it must too (got ${money.currency}).`,
            at('fixedAmount', 'currency'),
          ),
        );
        return [];
      }
      fixedAmount = money.amount;
    }
    const basisPoints = override.percentageBasisPoints ?? null;
    if (basisPoints !== null) {
      if (rule.amountType !== 'PERCENTAGE') {
        v.add(
          new DomainError(
            'VALIDATION',
            'This rule pays a fixed amount: override it with `fixedAmount`, not `percentageBasisPoints`.',
            at('percentageBasisPoints'),
          ),
        );
        return [];
      }
      if (
        !Number.isInteger(basisPoints) ||
        basisPoints < PERCENTAGE_BASIS_POINTS.min ||
        basisPoints > PERCENTAGE_BASIS_POINTS.max
      ) {
        v.add(
          new DomainError(
            'VALIDATION',
            `percentageBasisPoints must be ${PERCENTAGE_BASIS_POINTS.min} to ${PERCENTAGE_BASIS_POINTS.max} (100 = 1 %); got ${basisPoints}. To pay nothing, use \`disabled: true\`.`,
            at('percentageBasisPoints'),
          ),
        );
        return [];
      }
    }
    return [
      {
        ...tenant,
        ruleId: rule.id,
        ruleLineageId: rule.lineageId,
        disabled: override.disabled === true,
        fixedAmount,
        percentageBasisPoints: basisPoints,
      },
    ];
  });
}
