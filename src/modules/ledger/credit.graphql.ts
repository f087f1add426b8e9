import { builder } from '../../graphql/builder.js';
import { MoneyInputRef } from '../../graphql/money.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { tenantOf } from '../../graphql/scope.js';
import { BalanceRef } from './balance.graphql.js';
import type { Balance } from './balance.service.js';
import { CREDIT_KEY_MAX, creditBalance, NOTE_MAX } from './credit.service.js';

const CreditBalanceInput = builder.inputType('CreditBalanceInput', {
  description:
    'A manual credit (or, with a negative amount, a debit) of a partner’s available balance; the partner is named by exactly one of `partnerId` or `partnerExternalId`.',
  fields: (t) => ({
    ...partnerKeyFields(t, 'The partner to credit'),
    amount: t.field({
      type: MoneyInputRef,
      required: true,
      description: 'Positive: a credit; negative: a debit; never zero.',
    }),
    note: t.string({ description: `Why, for people (at most ${NOTE_MAX} characters).` }),
    idempotencyKey: t.string({
      required: true,
      description: `Unique per workspace and mode (1–${CREDIT_KEY_MAX} characters): the same credit sent again is applied once.`,
    }),
  }),
});

const CreditBalancePayload = payloadType<{ balance: Balance }>(
  'CreditBalancePayload',
  'The partner’s balance in the credited currency.',
  (t) => ({
    balance: t.field({
      type: BalanceRef,
      nullable: true,
      description: 'The partner’s balance in the credit’s currency right after it (for a replay: now).',
      resolve: (p) => p.balance ?? null,
    }),
  }),
);

builder.mutationField('creditBalance', (t) =>
  t.field({
    type: CreditBalancePayload,
    description:
      'Credit (or debit, with a negative amount) a partner’s available balance: one manual ledger entry, which may take the balance below zero. ' +
      'Idempotent by key: the same key with the same partner and amount writes nothing more and returns the balance; ' +
      'the key with a different partner or amount is DUPLICATE.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreditBalanceInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const { balance } = await creditBalance(ctx.db.prisma, tenantOf(ctx), {
          ...partnerKeyFrom(input),
          amount: input.amount,
          note: input.note,
          idempotencyKey: input.idempotencyKey,
        });
        return { balance };
      }),
  }),
);
