import { builder } from '../../graphql/builder.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { createPayout, EXTERNAL_REFERENCE_MAX, markPayoutPaid } from './payout.service.js';

// The Payout type itself is defined with the partner's balances (ledger/balance.graphql.ts).

const payoutField = (t: Parameters<Parameters<typeof payloadType<{ payoutId: string }>>[2]>[0], description: string) =>
  t.prismaField({
    type: 'Payout',
    nullable: true,
    description,
    resolve: (query, p, _args, ctx) => {
      // Spread before the null check: a refused mutation has no payout, and that is not an unused query.
      const selection = { ...query };
      return p.payoutId ? ctx.db.prisma.payout.findUnique({ ...selection, where: { id: p.payoutId } }) : null;
    },
  });

const CreatePayoutInput = builder.inputType('CreatePayoutInput', {
  fields: (t) => ({
    partnerId: t.id({ required: true }),
    currency: t.string({
      required: true,
      description: 'ISO 4217 code: only the partner’s rewards in this currency are gathered.',
    }),
  }),
});

const CreatePayoutPayload = payloadType<{ payoutId: string }>(
  'CreatePayoutPayload',
  'The new PENDING payout.',
  (t) => ({
    payout: payoutField(t, 'The payout, PENDING, with the rewards it gathered.'),
  }),
);

builder.mutationField('createPayout', (t) =>
  t.field({
    type: CreatePayoutPayload,
    description:
      'Gather every APPROVED reward the partner earned (recipient REFERRER) in one currency and that is in no payout yet into a PENDING payout of their sum. ' +
      'NOTHING_DUE when there is none, or when the partner’s available balance in that currency is not positive (e.g. after clawbacks or debits). ' +
      'Concurrent calls for one partner never put a reward in two payouts. Mark it paid with markPayoutPaid once the money is sent.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreatePayoutInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const payout = await createPayout(ctx.db.prisma, tenantOf(ctx), {
          partnerId: rowIdFrom(String(input.partnerId), 'Partner'),
          currency: input.currency,
        });
        return { payoutId: payout.id };
      }),
  }),
);

const MarkPayoutPaidInput = builder.inputType('MarkPayoutPaidInput', {
  fields: (t) => ({
    payoutId: t.id({ required: true }),
    externalReference: t.string({
      description: `The payment’s reference in the company’s payment system (at most ${EXTERNAL_REFERENCE_MAX} characters).`,
    }),
  }),
});

const MarkPayoutPaidPayload = payloadType<{ payoutId: string }>('MarkPayoutPaidPayload', 'The PAID payout.', (t) => ({
  payout: payoutField(t, 'The payout, PAID; its rewards are PROCESSED.'),
}));

builder.mutationField('markPayoutPaid', (t) =>
  t.field({
    type: MarkPayoutPaidPayload,
    description:
      'Record that a PENDING payout was sent: it becomes PAID and its rewards PROCESSED (they move from the partner’s available balance to paid). ' +
      'Marking a PAID payout paid again is a harmless retry, unless it gives a different externalReference (INVALID_TRANSITION); a FAILED payout cannot become PAID.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: MarkPayoutPaidInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const payout = await markPayoutPaid(ctx.db.prisma, tenantOf(ctx), {
          payoutId: rowIdFrom(String(input.payoutId), 'Payout'),
          externalReference: input.externalReference,
          actor: ctx.auth?.apiKeyId ?? null,
        });
        return { payoutId: payout.id };
      }),
  }),
);
