import type { Partner, Prisma } from '../../generated/prisma/client.js';
import { loader } from '../../graphql/loaders.js';
import type { PayoutStatus } from '../../generated/prisma/enums.js';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { PayoutStatusEnum } from '../../graphql/enums.js';
import { MoneyInputRef, MoneyRef } from '../../graphql/money.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { partnerFilter, rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { parseCurrency } from '../../lib/money.js';
import { PayoutRef } from '../ledger/balance.graphql.js';
import { moneyOf } from '../ledger/balance.service.js';
import { PartnerRef } from '../partner/partner.graphql.js';
import { cursorGuard, filterId, guardedQuery, totalCountOf } from '../reward/reward.graphql.js';
import {
  createPayout,
  createPayouts,
  EXTERNAL_REFERENCE_MAX,
  INVALID_PROGRAM,
  markPayoutPaid,
  METHOD_MAX,
  REASON_MAX,
  releasePayout,
  SKIPS_LISTED_MAX,
  type PayoutSkip,
} from './payout.service.js';

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
  description: 'Whom to pay (exactly one of `partnerId` or `partnerExternalId`), in which currency, and how.',
  fields: (t) => ({
    ...partnerKeyFields(t, 'The partner to pay'),
    currency: t.string({
      required: true,
      description: 'ISO 4217 code: the payout pays the partner’s available CASH balance in this currency.',
    }),
    method: t.string({
      description: `How it will be sent (free text, e.g. "bank_transfer", "paypal"; at most ${METHOD_MAX} characters).`,
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
      'A PENDING payout of the partner’s whole available CASH balance in one currency: approved CASH rewards not yet paid, manual credits, adjustments and clawbacks, netted. ' +
      'It holds that money (no longer `available`) and the approved rewards in it until it is PAID, FAILED or CANCELED. ' +
      'NOTHING_DUE when the available balance is not positive. Concurrent calls for one partner never pay the same money twice. ' +
      'In-product rewards (CREDIT, DISCOUNT) are never paid in cash. Mark it paid with markPayoutPaid once the money is sent.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreatePayoutInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const payout = await createPayout(ctx.db.prisma, tenantOf(ctx), {
          ...partnerKeyFrom(input),
          currency: input.currency,
          method: input.method,
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
      'Record that a PENDING payout was sent: it becomes PAID, its amount counts in the partner’s `paid`, and its rewards become PROCESSED. ' +
      'Marking a PAID payout paid again is a harmless retry, unless it gives a different externalReference (INVALID_TRANSITION); a FAILED or CANCELED payout cannot become PAID.',
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

// --- Releasing a PENDING payout ------------------------------------------------------------------

const CancelPayoutInput = builder.inputType('CancelPayoutInput', {
  fields: (t) => ({
    payoutId: t.id({ required: true }),
    reason: t.string({ description: `Why (at most ${REASON_MAX} characters); kept as the payout’s failureReason.` }),
  }),
});

const CancelPayoutPayload = payloadType<{ payoutId: string }>('CancelPayoutPayload', 'The CANCELED payout.', (t) => ({
  payout: payoutField(t, 'The payout, CANCELED; what it held is available again.'),
}));

builder.mutationField('cancelPayout', (t) =>
  t.field({
    type: CancelPayoutPayload,
    description:
      'Cancel a PENDING payout (it will not be sent): its amount goes back to the partner’s available balance (a PAYOUT_REVERSED entry) and its rewards leave it, still APPROVED, for the next payout; appends `payout.canceled`. ' +
      'Canceling a CANCELED payout again is a harmless retry; a PAID or FAILED one: INVALID_TRANSITION.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CancelPayoutInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const payout = await releasePayout(ctx.db.prisma, tenantOf(ctx), 'CANCELED', {
          payoutId: rowIdFrom(String(input.payoutId), 'Payout'),
          reason: input.reason,
        });
        return { payoutId: payout.id };
      }),
  }),
);

const MarkPayoutFailedInput = builder.inputType('MarkPayoutFailedInput', {
  fields: (t) => ({
    payoutId: t.id({ required: true }),
    reason: t.string({
      required: true,
      description: `What went wrong (e.g. "IBAN rejected by the bank"; at most ${REASON_MAX} characters).`,
    }),
  }),
});

const MarkPayoutFailedPayload = payloadType<{ payoutId: string }>(
  'MarkPayoutFailedPayload',
  'The FAILED payout.',
  (t) => ({
    payout: payoutField(t, 'The payout, FAILED with its reason; what it held is available again.'),
  }),
);

builder.mutationField('markPayoutFailed', (t) =>
  t.field({
    type: MarkPayoutFailedPayload,
    description:
      'Record that sending a PENDING payout failed: like cancelPayout (its amount back to available, its rewards released for the next payout) with a required reason; appends `payout.failed`. ' +
      'Marking a FAILED payout failed again is a harmless retry; a PAID or CANCELED one: INVALID_TRANSITION.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: MarkPayoutFailedInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const payout = await releasePayout(ctx.db.prisma, tenantOf(ctx), 'FAILED', {
          payoutId: rowIdFrom(String(input.payoutId), 'Payout'),
          reason: input.reason,
        });
        return { payoutId: payout.id };
      }),
  }),
);

// --- Batch runs ---------------------------------------------------------------------------------

const CreatePayoutsInput = builder.inputType('CreatePayoutsInput', {
  fields: (t) => ({
    currency: t.string({ required: true, description: 'ISO 4217 code: the run pays balances in this currency only.' }),
    programId: t.id({
      description:
        'Only partners enrolled in this program (each is still paid their whole balance in the currency); its minimumPayout applies when in this currency and no minimumAmount is given.',
    }),
    minimumAmount: t.field({
      type: MoneyInputRef,
      description: 'Skip partners whose available balance is below this (in the run’s currency).',
    }),
    method: t.string({ description: 'Recorded on every payout of the run.' }),
  }),
});

interface SkipSource extends PayoutSkip {
  partnerId: string;
  currency: string;
}

const PayoutSkipRef = builder.objectRef<SkipSource>('PayoutSkip').implement({
  description: 'A partner a batch run did not pay, and why.',
  fields: (t) => ({
    partner: t.prismaField({
      type: PartnerRef,
      nullable: true,
      // Up to SKIPS_LISTED_MAX skips: their partners in one statement per selection.
      resolve: (query, s, _args, ctx) =>
        loader<string, Partner | null>(ctx, `payout-skip.partner:${JSON.stringify(query)}`, async (ids) => {
          const rows = await ctx.db.prisma.partner.findMany({
            ...query,
            where: { id: { in: [...ids] }, ...tenantOf(ctx) },
          });
          const byId = new Map(rows.map((p) => [p.id, p]));
          return ids.map((id) => byId.get(id) ?? null);
        }).load(s.partnerId),
    }),
    reason: t.string({
      description:
        'NOTHING_DUE: nothing positive available when its turn came (e.g. paid by a concurrent run); BELOW_MINIMUM: less than the minimum.',
      resolve: (s) => s.reason,
    }),
    available: t.field({ type: MoneyRef, resolve: (s) => moneyOf(s.available, s.currency) }),
  }),
});

const CreatePayoutsPayload = payloadType<{ payoutIds: string[]; skipped: number; skips: SkipSource[] }>(
  'CreatePayoutsPayload',
  'What a batch run did.',
  (t) => ({
    payouts: t.prismaField({
      type: [PayoutRef],
      description: 'The PENDING payouts created, one per partner paid, in partner order.',
      resolve: async (query, p, _args, ctx) => {
        const selection = { ...query };
        if (!p.payoutIds?.length) return [];
        const rows = await ctx.db.prisma.payout.findMany({ ...selection, where: { id: { in: p.payoutIds } } });
        const order = new Map(p.payoutIds.map((id, i) => [id, i]));
        return rows.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
      },
    }),
    skipped: t.int({
      description: 'How many partners with money in the currency were not paid (see `skips`).',
      resolve: (p) => p.skipped ?? 0,
    }),
    skips: t.field({
      type: [PayoutSkipRef],
      description: `The partners not paid and why (the first ${SKIPS_LISTED_MAX}; \`skipped\` counts them all).`,
      resolve: (p) => p.skips ?? [],
    }),
  }),
);

builder.mutationField('createPayouts', (t) =>
  t.field({
    type: CreatePayoutsPayload,
    description:
      'A batch run: one PENDING payout (like createPayout) for every partner whose available CASH balance in the currency is positive and at least the minimum, optionally only partners of one program. ' +
      'Partners are paid in chunks of 200, a transaction each; a run is safe to repeat and to run twice at once (the second pays nobody twice: it finds nothing available).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreatePayoutsInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const programId =
          input.programId == null ? null : (rowIdFrom(String(input.programId), 'Program') ?? INVALID_PROGRAM);
        const result = await createPayouts(ctx.db.prisma, tenantOf(ctx), {
          currency: input.currency,
          programId,
          minimumAmount: input.minimumAmount,
          method: input.method,
        });
        const currency = parseCurrency(input.currency, ['input', 'currency']);
        return {
          payoutIds: result.payouts.map((p) => p.id),
          skipped: result.skipped,
          skips: result.skips.map((s) => ({ ...s, currency })),
        };
      }),
  }),
);

// --- Listing ------------------------------------------------------------------------------------

export const PayoutConnection = builder.connectionObject(
  {
    type: PayoutRef,
    name: 'PayoutConnection',
    description: 'A page of payouts, newest first.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many payouts match, on every page.',
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'PayoutEdge', description: 'A payout in a page of payouts.' },
);

const PayoutFilter = builder.inputType('PayoutFilter', {
  description:
    'Narrows `payouts`. Conditions combine with AND. An id that is malformed, of another type, or outside the caller’s workspace and mode matches nothing.',
  fields: (t) => ({
    partnerId: t.id({ description: 'Payouts of this partner.' }),
    status: t.field({
      type: [PayoutStatusEnum],
      description: 'In any of these statuses; null or empty: every status.',
    }),
    currency: t.string({ description: 'ISO 4217 code.' }),
    createdFrom: t.field({ type: 'DateTime', description: 'Created at or after this instant.' }),
    createdTo: t.field({ type: 'DateTime', description: 'Created before this instant (exclusive).' }),
  }),
});

const statusIn = (status: readonly PayoutStatus[] | null | undefined): Prisma.PayoutWhereInput =>
  status && status.length > 0 ? { status: { in: [...status] } } : {};

function payoutWhere(
  ctx: Context,
  filter:
    | {
        partnerId?: string | number | null;
        status?: PayoutStatus[] | null;
        currency?: string | null;
        createdFrom?: Date | null;
        createdTo?: Date | null;
      }
    | null
    | undefined,
): Prisma.PayoutWhereInput {
  const and: Prisma.PayoutWhereInput[] = [{ ...tenantOf(ctx), ...partnerFilter(ctx) }, statusIn(filter?.status)];
  const partnerId = filterId(filter?.partnerId, 'Partner');
  if (partnerId) and.push({ partnerId });
  if (filter?.currency != null) and.push({ currency: parseCurrency(filter.currency, ['filter', 'currency']) });
  if (filter?.createdFrom) and.push({ createdAt: { gte: filter.createdFrom } });
  if (filter?.createdTo) and.push({ createdAt: { lt: filter.createdTo } });
  return { AND: and };
}

builder.queryField('payouts', (t) =>
  t.prismaConnection(
    {
      type: PayoutRef,
      cursor: 'id',
      description: 'Payouts of the workspace and mode, newest first. A PARTNER credential sees its own only.',
      authScopes: { authenticated: true },
      args: { filter: t.arg({ type: PayoutFilter }) },
      resolve: (query, _root, args, ctx) =>
        ctx.db.prisma.payout.findMany({
          ...guardedQuery(query),
          where: payoutWhere(ctx, args.filter),
          orderBy: { id: 'desc' },
        }),
      totalCount: (_root, args, ctx) => ctx.db.prisma.payout.count({ where: payoutWhere(ctx, args.filter) }),
    },
    PayoutConnection,
  ),
);

builder.prismaObjectField('Partner', 'payouts', (t) =>
  t.relatedConnection(
    'payouts',
    {
      cursor: 'id',
      description: 'This partner’s payouts, newest first.',
      totalCount: true,
      args: {
        status: t.arg({ type: [PayoutStatusEnum], description: 'Only these statuses; null or empty: every status.' }),
      },
      query: (args, ctx) => ({
        where: { ...partnerFilter(ctx), ...statusIn(args.status) },
        orderBy: { id: 'desc' },
        ...cursorGuard(args),
      }),
    },
    PayoutConnection,
  ),
);
