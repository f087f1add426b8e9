import { builder } from '../../graphql/builder.js';
import { MoneyInputRef } from '../../graphql/money.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { IDEMPOTENCY_KEY_MAX, refundConversion } from './refund.service.js';

const RefundConversionInput = builder.inputType('RefundConversionInput', {
  description: 'A refund of (part of) a purchase or subscription payment.',
  fields: (t) => ({
    conversionId: t.id({ required: true, description: 'The PURCHASE or SUBSCRIPTION conversion refunded.' }),
    idempotencyKey: t.string({
      required: true,
      description: `Unique per workspace and mode among all conversions (1–${IDEMPOTENCY_KEY_MAX} characters): sending the same refund again returns the first result.`,
    }),
    amount: t.field({
      type: MoneyInputRef,
      description:
        'How much was refunded, in the conversion’s currency, at most what is not refunded yet. Omitted: all of that (a full refund).',
    }),
  }),
});

const RefundConversionPayload = payloadType<{ conversionId: string; rewardIds: string[] }>(
  'RefundConversionPayload',
  'The REFUND conversion and the rewards it created or canceled.',
  (t) => ({
    conversion: t.prismaField({
      type: 'Conversion',
      nullable: true,
      description: 'The REFUND conversion recorded (its `refundOf` is the refunded conversion).',
      resolve: (query, p, _args, ctx) => {
        // Spread before the null check: a refused mutation has no conversion, and that is not an unused query.
        const selection = { ...query };
        return p.conversionId
          ? ctx.db.prisma.conversion.findUnique({ ...selection, where: { id: p.conversionId } })
          : null;
      },
    }),
    rewards: t.prismaField({
      type: ['Reward'],
      description:
        'The negative rewards this refund created (clawbacks of money paid, or shares of unpaid rewards) and the rewards it canceled, oldest first; the same list on every replay.',
      resolve: (query, p, _args, ctx) => {
        const selection = { ...query };
        return p.rewardIds?.length
          ? ctx.db.prisma.reward.findMany({
              ...selection,
              where: { id: { in: p.rewardIds }, ...tenantOf(ctx) },
              orderBy: { id: 'asc' },
            })
          : [];
      },
    }),
  }),
);

builder.mutationField('refundConversion', (t) =>
  t.field({
    type: RefundConversionPayload,
    description:
      'Record a refund of a PURCHASE or SUBSCRIPTION conversion (a REFUND conversion) and take back its rewards pro rata: ' +
      'a full refund cancels the rewards not paid yet (CREATED, or APPROVED and in no payout); a partial one gives each of them a negative reward of its share that follows it through its lifecycle; ' +
      'rewards already PROCESSED (or in a payout) get a negative clawback reward, PROCESSED at once, taken out of the partner’s available balance (which may go negative). ' +
      'Shares are rounded half-up on the running total of refunds, so refunds that add up to the whole take back exactly the whole reward. ' +
      'Refunds of one conversion accumulate and may not exceed its amount (VALIDATION). The same idempotencyKey again returns the first result; ' +
      'a key already used by another conversion is DUPLICATE.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RefundConversionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, () =>
        refundConversion(ctx.db.prisma, tenantOf(ctx), {
          conversionId: rowIdFrom(String(input.conversionId), 'Conversion'),
          idempotencyKey: input.idempotencyKey,
          amount: input.amount,
          actor: ctx.auth?.apiKeyId ?? null,
        }),
      ),
  }),
);
