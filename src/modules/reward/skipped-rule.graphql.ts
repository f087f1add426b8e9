import type { Prisma, RewardRule } from '../../generated/prisma/client.js';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { loader } from '../../graphql/loaders.js';
import { tenantOf } from '../../graphql/scope.js';
import { RewardRuleRef } from '../program/reward-rule.graphql.js';
import type { SkippedRule } from './engine.js';

/** The reasons a rule can produce nothing for a recorded conversion, for the descriptions. */
export const SKIP_REASONS_DOC =
  'PRODUCT_MISMATCH (the rule is limited to products and the conversion is for another, or names none), DISABLED_BY_OVERRIDE (the partner’s enrollment disables the rule), DURATION_ENDED (`durationDays` after the referral have passed), MAX_REWARDS_REACHED (`maxRewardsPerReferral`), NO_CONVERSION_AMOUNT (a PERCENTAGE rule and a conversion without amount), CAP_CURRENCY_MISMATCH (the rule’s cap is in another currency than the reward would be: amounts are never converted, so the rule does not reward it rather than pay it uncapped), CAP_REACHED (`capPerReferral` already earned), ZERO_AMOUNT (the reward comes to zero: a small percentage rounded to the minor unit, or an override of zero)';

/** The conversion's `skippedRules` column as stored (a JSON array written by recordConversion). */
export function skippedRulesOf(value: Prisma.JsonValue): SkippedRule[] {
  return Array.isArray(value) ? (value as SkippedRule[]) : [];
}

/**
 * The rule version `id` of the caller's tenant, loaded with plugin-prisma's selection: one
 * statement per selection for every skipped rule of the request (a page of conversions included).
 * Not narrowed for a PARTNER credential, like `Reward.rule`: the conversion it hangs from is
 * already one the caller may see.
 */
function loadRule(ctx: Context, id: string, selection: { select?: object; include?: object }) {
  return loader<string, RewardRule | null>(ctx, `skipped-rule:${JSON.stringify(selection)}`, async (ids) => {
    const args = selection.select ? { select: { ...selection.select, id: true } } : selection;
    const rows = await ctx.db.prisma.rewardRule.findMany({
      ...(args as object),
      where: { id: { in: [...ids] }, ...tenantOf(ctx) },
    });
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((ruleId) => byId.get(ruleId) ?? null);
  }).load(id);
}

export const SkippedRuleRef = builder.objectRef<SkippedRule>('SkippedRule').implement({
  description:
    'A reward rule that produced nothing for a conversion, and why. Nothing about a rule is ignored silently: a rule of the program for the conversion’s type either made a reward or is listed with its reason.',
  fields: (t) => ({
    rule: t.prismaField({
      type: RewardRuleRef,
      description: 'The exact rule version that was evaluated.',
      resolve: async (query, skipped, _args, ctx) => {
        const rule = await loadRule(ctx, skipped.ruleId, query);
        if (!rule) throw new Error(`rule ${skipped.ruleId} of a skipped rule is missing`);
        return rule;
      },
    }),
    reason: t.string({
      description: `Why, as a stable code: ${SKIP_REASONS_DOC}.`,
      resolve: (skipped) => skipped.reason,
    }),
    message: t.string({
      description:
        'The reason in a sentence, with the facts it was decided on (amounts, currencies, dates), for people.',
      resolve: (skipped) => skipped.message,
    }),
  }),
});
