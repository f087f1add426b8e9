import { builder } from '../../graphql/builder.js';
import { MoneyRef } from '../../graphql/money.js';
import type { RewardExplanation } from './engine.js';
import { explanationOf } from './explanation.js';
import { RewardRef } from './reward.graphql.js';

export const RewardExplanationRef = builder.objectRef<RewardExplanation>('RewardExplanation').implement({
  description:
    'Why a reward’s amount is what it is, stored with the reward when it was created: the rule version, where the terms came from, the amount a percentage was taken of and the rate, whether the cap cut it, and all of it in one sentence.',
  fields: (t) => ({
    ruleVersion: t.int({
      description: 'The version of the rule that produced the reward.',
      resolve: (e) => e.ruleVersion,
    }),
    source: t.string({
      description:
        'Where the terms came from, by precedence: OVERRIDE (the partner’s enrollment overrides the rule), TIER (the partner’s tier does), RULE (the rule’s own terms).',
      resolve: (e) => e.source,
    }),
    base: t.field({
      type: MoneyRef,
      nullable: true,
      description:
        'For a percentage: the conversion amount it was taken of (for a refund’s negative reward: the refund). Null for a fixed amount.',
      resolve: (e) => e.base,
    }),
    basisPoints: t.int({
      nullable: true,
      description: 'For a percentage: the rate applied, in basis points (100 = 1 %). Null for a fixed amount.',
      resolve: (e) => e.basisPoints,
    }),
    capped: t.boolean({
      description:
        'Whether the rule’s cap per referred customer (capPerReferral) reduced the reward to what was left of it.',
      resolve: (e) => e.capped,
    }),
    text: t.string({
      description:
        'The explanation in one sentence a partner understands, e.g. "20 % of 49.00 USD (Gold tier) = 9.80 USD", "10.00 USD per purchase (rule v2)", "…, capped to 5.00 USD: the rule pays at most 50.00 USD per referred customer".',
      resolve: (e) => e.text,
    }),
  }),
});

builder.prismaObjectField(RewardRef, 'explanation', (t) =>
  t.field({
    type: RewardExplanationRef,
    nullable: true,
    description:
      'Why the amount is what it is. Every reward created by a rule has one; a refund’s negative reward explains the share it takes back. Null for rewards created before explanations existed.',
    select: { explanation: true },
    resolve: (reward) => explanationOf(reward.explanation),
  }),
);
