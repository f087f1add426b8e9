import type { Reward } from '../../generated/prisma/client.js';
import { builder } from '../../graphql/builder.js';
import { RewardKindEnum, RewardRecipientEnum } from '../../graphql/enums.js';
import { MoneyRef } from '../../graphql/money.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { tenantOf } from '../../graphql/scope.js';
import { PartnerRef } from '../partner/partner.graphql.js';
import { ProgramRef } from '../program/program.graphql.js';
import { RewardRuleRef } from '../program/reward-rule.graphql.js';
import { RewardExplanationRef } from '../reward/explanation.graphql.js';
import { explanationOf } from '../reward/explanation.js';
import { SkippedRuleRef, skippedRulesOf } from '../reward/skipped-rule.graphql.js';
import { FraudSignalRef } from '../review/fraud-rules.graphql.js';
import { signalsOf } from '../review/fraud-rules.js';
import { RecordConversionInput, recordArgs } from './record-conversion.graphql.js';
import { type AttributedBy, simulateConversion } from './record.service.js';

/** What a simulation answers: the outcome recordConversion would have, computed and rolled back. */
interface SimulationResult {
  accepted: boolean;
  discardReason: string | null;
  partnerId: string | null;
  programId: string | null;
  attributedBy: AttributedBy | null;
  rewards: Reward[];
  skipped: unknown;
  signals: unknown;
}

const SimulatedRewardRef = builder.objectRef<Reward>('SimulatedReward').implement({
  description: 'A reward the simulated conversion would create (nothing was written).',
  fields: (t) => ({
    rule: t.prismaField({
      type: RewardRuleRef,
      description: 'The rule version that would produce it.',
      resolve: (query, r, _args, ctx) =>
        ctx.db.prisma.rewardRule.findUniqueOrThrow({ ...query, where: { id: r.ruleId } }),
    }),
    recipient: t.field({ type: RewardRecipientEnum, resolve: (r) => r.recipient }),
    kind: t.field({ type: RewardKindEnum, resolve: (r) => r.kind }),
    amount: t.field({ type: MoneyRef, resolve: (r) => ({ amount: r.amount, currency: r.currency }) }),
    explanation: t.field({
      type: RewardExplanationRef,
      description: 'Why the amount is what it is (as the reward would store it).',
      resolve: (r) =>
        explanationOf(r.explanation) ?? {
          ruleVersion: 0,
          source: 'RULE' as const,
          base: null,
          basisPoints: null,
          capped: false,
          text: 'Created before refgraph kept explanations.',
        },
    }),
  }),
});

const SimulationRef = builder.objectRef<SimulationResult>('Simulation').implement({
  description:
    'What recordConversion would do with the same input, now: attribution, fraud checks and the reward rules ran exactly as a real call would, in a transaction that was rolled back.',
  fields: (t) => ({
    accepted: t.boolean({ resolve: (s) => s.accepted }),
    discardReason: t.string({
      nullable: true,
      description: 'Why it would be DISCARDED (see recordConversion); null when accepted.',
      resolve: (s) => s.discardReason,
    }),
    partner: t.prismaField({
      type: PartnerRef,
      nullable: true,
      description: 'The partner it would be attributed to.',
      resolve: (query, s, _args, ctx) => {
        const selection = { ...query };
        return s.partnerId ? ctx.db.prisma.partner.findUnique({ ...selection, where: { id: s.partnerId } }) : null;
      },
    }),
    program: t.prismaField({
      type: ProgramRef,
      nullable: true,
      resolve: (query, s, _args, ctx) => {
        const selection = { ...query };
        return s.programId ? ctx.db.prisma.program.findUnique({ ...selection, where: { id: s.programId } }) : null;
      },
    }),
    attributedBy: t.string({
      nullable: true,
      description:
        'What would bind it to the partner: COUPON, CLICK, CODE or EXISTING_REFERRAL (the person already belongs to them); null when discarded.',
      resolve: (s) => s.attributedBy,
    }),
    rewards: t.field({ type: [SimulatedRewardRef], resolve: (s) => s.rewards }),
    skipped: t.field({
      type: [SkippedRuleRef],
      description: 'The program’s rules that would produce nothing, each with its reason.',
      resolve: (s) => skippedRulesOf(s.skipped as never),
    }),
    signals: t.field({
      type: [FraudSignalRef],
      description: 'The fraud signals it would trip (its rewards would then wait in the review queue).',
      resolve: (s) => signalsOf(s.signals),
    }),
  }),
});

const SimulateConversionPayload = payloadType<{ simulation: SimulationResult }>(
  'SimulateConversionPayload',
  'The simulated outcome, or why the input was refused (the same userErrors recordConversion would give).',
  (t) => ({
    simulation: t.field({ type: SimulationRef, nullable: true, resolve: (p) => p.simulation }),
  }),
);

builder.mutationField('simulateConversion', (t) =>
  t.field({
    type: SimulateConversionPayload,
    description:
      'Answer what recordConversion would do with this input — who it is attributed to and by what, the rewards with their explanations, the rules that pay nothing and why, the fraud signals — without writing anything: ' +
      'no conversion, no reward, no event, and the idempotency key stays unused, so a real call afterwards gives the same answer (unless something changed meanwhile). A key already used answers with the stored conversion, as recordConversion would.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RecordConversionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const tenant = tenantOf(ctx);
        const outcome = await simulateConversion(ctx.db, tenant, ...recordArgs(input, ctx));
        if (outcome.row) {
          return {
            simulation: {
              accepted: outcome.status === 'ACCEPTED',
              discardReason: outcome.discardReason,
              partnerId: outcome.row.partnerId,
              programId: outcome.row.programId,
              attributedBy: outcome.attributedBy ?? null,
              rewards: outcome.rewards,
              skipped: outcome.row.skippedRules,
              signals: outcome.row.signals,
            },
          };
        }
        // A replay: the stored conversion and its rewards.
        const stored = await ctx.db.prisma.conversion.findUniqueOrThrow({
          where: { id: outcome.conversionId },
          include: { rewards: { where: { sourceRewardId: null }, orderBy: { id: 'asc' } } },
        });
        return {
          simulation: {
            accepted: stored.status === 'ACCEPTED',
            discardReason: stored.discardReason,
            partnerId: stored.partnerId,
            programId: stored.programId,
            attributedBy: null,
            rewards: stored.rewards,
            skipped: stored.skippedRules,
            signals: stored.signals,
          },
        };
      }),
  }),
);
