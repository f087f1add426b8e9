import type { Prisma } from '../../generated/prisma/client.js';
import type { Context } from '../../context.js';
import { DomainError } from '../../domain/errors.js';
import { builder } from '../../graphql/builder.js';
import { LedgerEntryTypeEnum } from '../../graphql/enums.js';
import { MoneyRef } from '../../graphql/money.js';
import { partnerFilter, tenantOf } from '../../graphql/scope.js';
import { parseCurrency } from '../../lib/money.js';
import { cursorGuard, guardedQuery, totalCountOf } from '../reward/reward.graphql.js';
import { figureLoader, statsScope } from '../stats/stats.graphql.js';
import { BalanceRef } from './balance.graphql.js';
import { moneyOf, partnerBalance, partnerBalances, partnerCreditBalances } from './balance.service.js';

// Reading the ledger: entries, a partner's ledger and statements, balances at a past instant,
// in-product balances. Who may read: wherever the partner is visible (a PARTNER credential: its
// own only), and every query is also scoped to the caller's workspace and mode.

export const LedgerEntryRef = builder.prismaNode('LedgerEntry', {
  description:
    'One movement of a partner’s available CASH balance, append-only. The sum of a partner’s entries in a currency up to an instant is their available balance then.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ id, ...tenantOf(ctx), ...partnerFilter(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    type: t.expose('type', { type: LedgerEntryTypeEnum }),
    amount: t.field({
      type: MoneyRef,
      description: 'Signed: positive adds to available, negative takes from it.',
      resolve: (e) => moneyOf(e.amount, e.currency),
    }),
    partner: t.relation('partner'),
    reward: t.relation('reward', { nullable: true, description: 'The reward behind it, if any.' }),
    payout: t.relation('payout', { nullable: true, description: 'The payout behind it (PAYOUT, PAYOUT_REVERSED).' }),
    note: t.exposeString('note', {
      nullable: true,
      description: 'A credit’s note, or why a payout was released.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const LedgerEntryConnection = builder.connectionObject(
  {
    type: LedgerEntryRef,
    name: 'LedgerEntryConnection',
    description: 'A page of ledger entries, oldest first.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many entries match, on every page.',
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'LedgerEntryEdge', description: 'A ledger entry in a page.' },
);

/** Chronological: the order a statement adds its entries in (ids break ties within one instant). */
const CHRONOLOGICAL: Prisma.LedgerEntryOrderByWithRelationInput[] = [{ createdAt: 'asc' }, { id: 'asc' }];

function currencyArg(value: string, field: string): string {
  return parseCurrency(value, [field]);
}

builder.prismaObjectField('Partner', 'ledger', (t) =>
  t.relatedConnection(
    'ledgerEntries',
    {
      cursor: 'id',
      description:
        'The partner’s ledger entries, oldest first: optionally in one currency, and written in (from, to] (from exclusive, to inclusive — as in `statement`).',
      totalCount: true,
      args: {
        currency: t.arg.string({ description: 'ISO 4217 code.' }),
        from: t.arg({ type: 'DateTime', description: 'Entries written after this instant.' }),
        to: t.arg({ type: 'DateTime', description: 'Entries written at or before this instant.' }),
      },
      query: (args, ctx) => ({
        where: {
          ...partnerFilter(ctx),
          ...(args.currency != null ? { currency: currencyArg(args.currency, 'currency') } : {}),
          createdAt: { ...(args.from ? { gt: args.from } : {}), ...(args.to ? { lte: args.to } : {}) },
        },
        orderBy: CHRONOLOGICAL,
        ...cursorGuard(args),
      }),
    },
    LedgerEntryConnection,
  ),
);

builder.prismaObjectField('Payout', 'entries', (t) =>
  t.relatedConnection(
    'ledgerEntries',
    {
      cursor: 'id',
      description:
        'The payout’s own ledger entries, oldest first: its PAYOUT entry (the amount leaving available when it was created) and, once FAILED or CANCELED, the PAYOUT_REVERSED that gave it back.',
      totalCount: true,
      query: (args, ctx) => ({ where: partnerFilter(ctx), orderBy: CHRONOLOGICAL, ...cursorGuard(args) }),
    },
    LedgerEntryConnection,
  ),
);

builder.prismaObjectField('Partner', 'balancesAt', (t) =>
  t.field({
    type: [BalanceRef],
    description:
      'The partner’s CASH balances as they were at `at` (entries written until then; pending: rewards CREATED then; paid: payouts PAID by then), sorted by currency.',
    args: { at: t.arg({ type: 'DateTime', required: true }) },
    resolve: (partner, args, ctx) =>
      figureLoader(ctx, `partner.balancesAt:${args.at.toISOString()}`, (scope, ids) =>
        partnerBalances(ctx.db, scope, ids, args.at),
      ).load(partner.id),
  }),
);

builder.prismaObjectField('Partner', 'creditBalances', (t) =>
  t.field({
    type: [BalanceRef],
    description:
      'In-product rewards (kind CREDIT and DISCOUNT) per currency: pending = CREATED, available = APPROVED (to apply in your product), paid = PROCESSED (applied: mark them with updateRewardStatus). They never enter a cash payout.',
    resolve: (partner, _args, ctx) =>
      figureLoader(ctx, 'partner.creditBalances', (scope, ids) => partnerCreditBalances(ctx.db, scope, ids)).load(
        partner.id,
      ),
  }),
);

interface StatementSource {
  partnerId: string;
  currency: string;
  from: Date;
  to: Date;
}

const StatementRef = builder.objectRef<StatementSource>('Statement').implement({
  description:
    'A partner’s CASH account in one currency for a period: `opening` is the balance at `from`, `closing` at `to`, and the entries written in (from, to] add up from one available balance to the other.',
  fields: (t) => ({
    currency: t.string({ resolve: (s) => s.currency }),
    from: t.field({ type: 'DateTime', resolve: (s) => s.from }),
    to: t.field({ type: 'DateTime', resolve: (s) => s.to }),
    opening: t.field({
      type: BalanceRef,
      description: 'Partner.balancesAt(from), in this currency.',
      resolve: (s, _args, ctx) => balanceAt(ctx, s, s.from),
    }),
    closing: t.field({
      type: BalanceRef,
      description: 'Partner.balancesAt(to), in this currency.',
      resolve: (s, _args, ctx) => balanceAt(ctx, s, s.to),
    }),
    entries: t.prismaConnection(
      {
        type: LedgerEntryRef,
        cursor: 'id',
        description: 'The entries written in (from, to], oldest first.',
        resolve: (query, s, _args, ctx) =>
          ctx.db.prisma.ledgerEntry.findMany({
            ...guardedQuery(query),
            where: statementWhere(ctx, s),
            orderBy: CHRONOLOGICAL,
          }),
        totalCount: (s, _args, ctx) => ctx.db.prisma.ledgerEntry.count({ where: statementWhere(ctx, s) }),
      },
      LedgerEntryConnection,
    ),
  }),
});

const statementWhere = (ctx: Context, s: StatementSource): Prisma.LedgerEntryWhereInput => ({
  ...tenantOf(ctx),
  partnerId: s.partnerId,
  currency: s.currency,
  createdAt: { gt: s.from, lte: s.to },
});

const balanceAt = (ctx: Context, s: StatementSource, at: Date) =>
  partnerBalance(ctx.db, statsScope(ctx), s.partnerId, s.currency, at);

/** How long a statement may span (a year and a day: a calendar year in any time zone). */
export const STATEMENT_MAX_DAYS = 367;

builder.prismaObjectField('Partner', 'statement', (t) =>
  t.field({
    type: StatementRef,
    description: `The partner’s statement in one currency for (from, to]: opening and closing balances and the entries between them. At most ${STATEMENT_MAX_DAYS} days.`,
    args: {
      currency: t.arg.string({ required: true }),
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
    },
    resolve: (partner, args) => {
      const currency = currencyArg(args.currency, 'currency');
      if (args.from.getTime() > args.to.getTime()) {
        throw new DomainError(
          'VALIDATION',
          `from (${args.from.toISOString()}) is after to (${args.to.toISOString()}): a statement runs forward in time.`,
          ['from'],
        );
      }
      if (args.to.getTime() - args.from.getTime() > STATEMENT_MAX_DAYS * 86_400_000) {
        throw new DomainError(
          'VALIDATION',
          `A statement spans at most ${STATEMENT_MAX_DAYS} days; ask for several periods (each closing balance is the next opening one).`,
          ['to'],
        );
      }
      return { partnerId: partner.id, currency, from: args.from, to: args.to };
    },
  }),
);
