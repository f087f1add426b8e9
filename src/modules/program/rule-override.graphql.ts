import { builder } from '../../graphql/builder.js';
import { MoneyInputRef, MoneyRef } from '../../graphql/money.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { EnrollmentRef } from '../partner/enrollment.graphql.js';
import { MAX_OVERRIDES, setEnrollmentOverrides } from './rule-override.service.js';

export const RuleOverrideRef = builder.prismaObject('RewardRuleOverride', {
  name: 'RuleOverride',
  description:
    'How one reward rule pays one partner instead of its own terms: not at all (`disabled`), another fixed amount, or another percentage. ' +
    'Precedence, highest first: an enrollment’s override, the partner’s tier, the rule.',
  fields: (t) => ({
    rule: t.relation('rule', {
      description:
        'The rule overridden (the version the override was set on; it applies to every version of the rule).',
    }),
    disabled: t.exposeBoolean('disabled', { description: 'True: the rule pays this partner nothing.' }),
    fixedAmount: t.field({
      type: MoneyRef,
      nullable: true,
      description: 'The amount a FIXED rule pays instead of its own, in the rule’s currency.',
      resolve: (o) => {
        const currency = (o as { rule?: { fixedCurrency: string | null } }).rule?.fixedCurrency;
        return o.fixedAmount !== null && currency ? { amount: o.fixedAmount, currency } : null;
      },
      select: { fixedAmount: true, rule: { select: { fixedCurrency: true } } },
    }),
    percentageBasisPoints: t.exposeInt('percentageBasisPoints', {
      nullable: true,
      description: 'The rate a PERCENTAGE rule pays instead of its own, in basis points (100 = 1 %).',
    }),
  }),
});

builder.prismaObjectField(EnrollmentRef, 'overrides', (t) =>
  t.relation('overrides', {
    description: `The reward rule overrides of this enrollment (setEnrollmentOverrides), oldest first; at most ${MAX_OVERRIDES}.`,
    query: { orderBy: { id: 'asc' } },
  }),
);

const RuleOverrideInput = builder.inputType('RuleOverrideInput', {
  description:
    'One override: the rule, and exactly one of `disabled: true`, `fixedAmount` (FIXED rules, in the rule’s currency) or `percentageBasisPoints` (PERCENTAGE rules, 1–10 000).',
  fields: (t) => ({
    ruleId: t.id({ required: true, description: 'Any version of a rule of the enrollment’s program.' }),
    disabled: t.boolean({ description: 'True: the rule pays this partner nothing.' }),
    fixedAmount: t.field({ type: MoneyInputRef, description: 'For a FIXED rule: the amount to pay instead.' }),
    percentageBasisPoints: t.int({ description: 'For a PERCENTAGE rule: the rate to pay instead (100 = 1 %).' }),
  }),
});

const SetEnrollmentOverridesInput = builder.inputType('SetEnrollmentOverridesInput', {
  fields: (t) => ({
    enrollmentId: t.id({ required: true }),
    overrides: t.field({
      type: [RuleOverrideInput],
      required: true,
      description: `The whole new set (at most ${MAX_OVERRIDES}, one per rule); an empty list removes every override.`,
    }),
  }),
});

const SetEnrollmentOverridesPayload = payloadType<{ enrollmentId: string }>(
  'SetEnrollmentOverridesPayload',
  'The enrollment with its new overrides.',
  (t) => ({
    enrollment: t.prismaField({
      type: EnrollmentRef,
      nullable: true,
      resolve: (query, p, _args, ctx) => {
        const selection = { ...query };
        return p.enrollmentId
          ? ctx.db.prisma.enrollment.findUnique({ ...selection, where: { id: p.enrollmentId } })
          : null;
      },
    }),
  }),
);

builder.mutationField('setEnrollmentOverrides', (t) =>
  t.field({
    type: SetEnrollmentOverridesPayload,
    description:
      'Replace how the program’s rules pay one partner: disable a rule for them, or pay another fixed amount or percentage. ' +
      'All or nothing: every problem is reported (at ["input","overrides",index,…]) and nothing changes. Rewards already created keep their amounts. ' +
      'Appends `enrollment.overrides_changed`.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SetEnrollmentOverridesInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const enrollment = await setEnrollmentOverrides(ctx.db.prisma, tenantOf(ctx), {
          enrollmentId: rowIdFrom(String(input.enrollmentId), 'Enrollment'),
          overrides: input.overrides.map((o) => ({
            ruleId: rowIdFrom(String(o.ruleId), 'RewardRule'),
            disabled: o.disabled,
            fixedAmount: o.fixedAmount,
            percentageBasisPoints: o.percentageBasisPoints,
          })),
        });
        return { enrollmentId: enrollment.id };
      }),
  }),
);
