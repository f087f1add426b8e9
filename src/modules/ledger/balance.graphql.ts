import { builder } from '../../graphql/builder.js';
import { PayoutStatusEnum } from '../../graphql/enums.js';
import { MoneyRef } from '../../graphql/money.js';
import { partnerFilter, scopedKey } from '../../graphql/scope.js';
import { figureLoader } from '../stats/stats.graphql.js';
import { moneyOf, partnerBalances, type Balance } from './balance.service.js';
import { firstArgOptions, LIST_CAP, listComplexity, listTake } from '../../graphql/bounded-list.js';

export const BalanceRef = builder.objectRef<Balance>('Balance').implement({
  description:
    'A partner’s money in one currency. Cash (Partner.balances, balancesAt, Statement): pending = CREATED CASH rewards; available = the sum of the ledger (approved rewards, credits, adjustments, clawbacks, minus payouts; negative after a clawback of money already paid); paid = payouts PAID (and rewards marked PROCESSED outside a payout). What a PENDING payout holds is in neither available nor paid. In-product (Partner.creditBalances): pending/available/paid = CREATED/APPROVED/PROCESSED CREDIT and DISCOUNT rewards.',
  fields: (t) => ({
    currency: t.string({ description: 'ISO 4217 code.', resolve: (b) => b.currency }),
    pending: t.field({
      type: MoneyRef,
      description: 'Rewards waiting for the hold period or an approval.',
      resolve: (b) => moneyOf(b.pending, b.currency),
    }),
    available: t.field({
      type: MoneyRef,
      description: 'What the next payout would pay: the sum of the ledger entries. May be negative.',
      resolve: (b) => moneyOf(b.available, b.currency),
    }),
    paid: t.field({
      type: MoneyRef,
      description: 'Paid out: PAID payouts, and rewards marked PROCESSED outside any payout.',
      resolve: (b) => moneyOf(b.paid, b.currency),
    }),
  }),
});

builder.prismaObjectField('Partner', 'balances', (t) =>
  t.field({
    type: [BalanceRef],
    description:
      'The partner’s balance in each currency they have money in, sorted by currency. A PARTNER credential sees its own partner’s only.',
    resolve: (partner, _args, ctx) =>
      figureLoader(ctx, 'partner.balances', (scope, ids) => partnerBalances(ctx.db, scope, ids)).load(partner.id),
  }),
);

// Payouts are written by the payout mutations; the type lives here, with the rest of the partner's money.
export const PayoutRef = builder.prismaNode('Payout', {
  description:
    'Money sent to a partner: their whole available CASH balance in one currency when it was created. It holds that money and the approved rewards in it until it is PAID (the rewards become PROCESSED), FAILED or CANCELED (both give everything back).',
  id: { field: 'id' },
  // A node outside the caller's scope is null, never an error; a PARTNER credential sees its own partner's payouts only.
  nullable: true,
  findUnique: (id, ctx) => ({ ...scopedKey(id, ctx), ...partnerFilter(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    partner: t.relation('partner'),
    amount: t.field({ type: MoneyRef, resolve: (p) => moneyOf(p.amount, p.currency) }),
    status: t.expose('status', { type: PayoutStatusEnum }),
    method: t.exposeString('method', {
      nullable: true,
      description: 'How it was sent (free text, e.g. "bank_transfer", "paypal").',
    }),
    externalReference: t.exposeString('externalReference', {
      nullable: true,
      description: 'The payment’s reference in the company’s payment system.',
    }),
    paidAt: t.expose('paidAt', { type: 'DateTime', nullable: true }),
    failureReason: t.exposeString('failureReason', {
      nullable: true,
      description: 'Why it FAILED (markPayoutFailed) or was CANCELED (cancelPayout, when a reason was given).',
    }),
    releasedAt: t.expose('releasedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When it became FAILED or CANCELED.',
    }),
    rewards: t.relation('rewards', {
      description: `The rewards this payout pays, oldest first; at most ${LIST_CAP} (\`first\`): Query.rewards(filter: { payoutId }) pages through all of them.`,
      args: { first: t.arg.int(firstArgOptions) },
      complexity: listComplexity,
      query: (args, ctx) => ({ where: partnerFilter(ctx), orderBy: { id: 'asc' }, take: listTake(args.first) }),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});
