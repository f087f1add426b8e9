import type { Prisma } from '../../generated/prisma/client.js';
import * as E from '../../generated/prisma/enums.js';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { NIL_UUID } from '../../lib/ids.js';
import { filterId, guardedQuery, totalCountOf } from '../reward/reward.graphql.js';
import { FraudSignalRef } from './fraud-rules.graphql.js';
import { signalsOf } from './fraud-rules.js';
import { DETAIL_MAX, flagConversion, MAX_RESOLVE_IDS, REASON_MAX, resolveReviewItems } from './review.service.js';

// The review queue in GraphQL: ReviewItem, reviewQueue, resolveReviewItems, flagConversion, and
// Conversion.signals / Conversion.reviewItem. All of it is the company's: a PARTNER credential
// sees no item (null nodes, empty signals) and cannot read the queue or decide.

export const ReviewStatusEnum = builder.enumType(E.ReviewStatus, {
  name: 'ReviewStatus',
  description: 'OPEN: its rewards wait for a decision. APPROVED or REJECTED: decided (final).',
});

export const ReviewDecisionEnum = builder.enumType('ReviewDecision', {
  description: 'What resolveReviewItems does with the items.',
  values: {
    APPROVE: {
      description:
        'Release the rewards into their normal lifecycle: the hold period (`Program.holdDays`) starts now, then the approval job approves them.',
    },
    REJECT: { description: 'Reject the rewards (REJECTED, with the reason in their status history).' },
  },
});

const isPartner = (ctx: Context) => ctx.auth?.role === 'PARTNER';

export const ReviewItemRef = builder.prismaNode('ReviewItem', {
  description:
    'A conversion waiting for a person’s decision: it tripped a fraud rule of its program (or was flagged by hand), and its rewards are held until the item is APPROVED or REJECTED. One per conversion. ADMIN and READ_ONLY credentials only: for a PARTNER credential a review item does not exist (null).',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => scopedKey(isPartner(ctx) ? NIL_UUID : id, ctx),
  authScopes: { authenticated: true },
  fields: (t) => ({
    status: t.expose('status', { type: ReviewStatusEnum }),
    program: t.relation('program'),
    partner: t.relation('partner', { description: 'The partner the conversion is attributed to.' }),
    conversion: t.relation('conversion'),
    referral: t.relation('referral', { nullable: true, description: 'The referred person’s referral.' }),
    signals: t.field({
      type: [FraudSignalRef],
      description: 'Why it was opened: the signals its conversion tripped, or the MANUAL flag with its note.',
      resolve: (item) => signalsOf(item.signals),
    }),
    rewards: t.relation('rewards', {
      description:
        'The rewards it holds (while OPEN) or held: the conversion’s rewards that were CREATED when it opened, oldest first. Rewards already approved are not held.',
      query: { orderBy: { id: 'asc' } },
    }),
    decidedAt: t.expose('decidedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When it was APPROVED or REJECTED; null while OPEN.',
    }),
    reason: t.exposeString('reason', {
      nullable: true,
      description: 'Why it was decided so: the reason given to resolveReviewItems, or the partner’s ban.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When it was opened.' }),
  }),
});

const ReviewItemConnection = builder.connectionObject(
  {
    type: ReviewItemRef,
    name: 'ReviewItemConnection',
    description: 'A page of review items, oldest first.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many items match, on every page.',
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'ReviewItemEdge', description: 'A review item in a page of review items.' },
);

function queueWhere(
  ctx: Context,
  args: { programId?: string | number | bigint | null; status?: E.ReviewStatus | null },
): Prisma.ReviewItemWhereInput {
  const programId = filterId(args.programId, 'Program');
  return { ...tenantOf(ctx), status: args.status ?? 'OPEN', ...(programId ? { programId } : {}) };
}

builder.queryField('reviewQueue', (t) =>
  t.prismaConnection(
    {
      type: ReviewItemRef,
      cursor: 'id',
      description:
        'The review queue: items of the caller’s workspace and mode in one status (OPEN by default: what waits for a decision), oldest first, so the queue is worked through in the order it filled. ' +
        'A live dashboard follows it with the `review.opened` and `review.resolved` events (Subscription.events, webhooks). ADMIN and READ_ONLY credentials.',
      authScopes: { reader: true },
      args: {
        programId: t.arg.id({ description: 'Only this program’s items.' }),
        status: t.arg({
          type: ReviewStatusEnum,
          defaultValue: 'OPEN',
          description: 'OPEN (default), or APPROVED / REJECTED for decided items.',
        }),
      },
      resolve: (query, _root, args, ctx) =>
        ctx.db.prisma.reviewItem.findMany({
          ...guardedQuery(query),
          where: queueWhere(ctx, args),
          orderBy: { id: 'asc' },
        }),
      totalCount: (_root, args, ctx) => ctx.db.prisma.reviewItem.count({ where: queueWhere(ctx, args) }),
    },
    ReviewItemConnection,
  ),
);

builder.prismaObjectFields('Conversion', (t) => ({
  signals: t.field({
    type: [FraudSignalRef],
    description:
      'The fraud signals this conversion tripped when it was recorded (its program’s `fraudRules`), and manual flags. Empty when none, for a DISCARDED conversion (not checked), and for a PARTNER credential.',
    resolve: (c, _args, ctx) => (isPartner(ctx) ? [] : signalsOf(c.signals)),
  }),
  reviewItem: t.field({
    type: ReviewItemRef,
    nullable: true,
    description:
      'The review item that holds (or held) its rewards; null when it tripped nothing, and for a PARTNER credential.',
    select: (_args, _ctx, nestedSelection) => ({ reviewItem: nestedSelection() }),
    resolve: async (c, _args, ctx) => {
      if (isPartner(ctx)) return null;
      // Selected with the conversion, except for a row that was not read through a query (the one
      // recordConversion answers with, just written): then read by the conversion's unique key.
      if (c.reviewItem !== undefined) return c.reviewItem;
      return ctx.db.prisma.reviewItem.findUnique({
        where: { conversionId_workspaceId_mode: { conversionId: c.id, ...tenantOf(ctx) } },
      });
    },
  }),
}));

// --- resolveReviewItems ---------------------------------------------------------------------------

const ResolveReviewItemsInput = builder.inputType('ResolveReviewItemsInput', {
  description: 'Review items to decide, all or none.',
  fields: (t) => ({
    ids: t.idList({
      required: true,
      description: `Global ids of the items, at most ${MAX_RESOLVE_IDS}. Repeats count once.`,
    }),
    decision: t.field({ type: ReviewDecisionEnum, required: true }),
    reason: t.string({
      description: `Why (at most ${REASON_MAX} characters): kept on the items, and for REJECT in each rejected reward’s status history, which the partner sees. Required for REJECT.`,
    }),
  }),
});

const ResolveReviewItemsPayload = payloadType<{ itemIds: string[] }>(
  'ResolveReviewItemsPayload',
  'The items asked for, decided; empty when anything was refused (then nothing changed).',
  (t) => ({
    items: t.prismaField({
      type: [ReviewItemRef],
      description: 'Every item named, in the order asked (repeats once), as it is after the call; empty when refused.',
      resolve: async (query, p, _args, ctx) => {
        // Spread before the empty check: a refused mutation has no items, and that is not an unused query.
        const selection = { ...query };
        const ids = p.itemIds ?? [];
        if (ids.length === 0) return [];
        const rows = await ctx.db.prisma.reviewItem.findMany({
          ...selection,
          where: { id: { in: ids }, ...tenantOf(ctx) },
        });
        const byId = new Map(rows.map((r) => [r.id, r]));
        return ids.flatMap((id) => byId.get(id) ?? []);
      },
    }),
  }),
);

builder.mutationField('resolveReviewItems', (t) =>
  t.field({
    type: ResolveReviewItemsPayload,
    description:
      'Decide review items, all or none. APPROVE releases their rewards into the normal lifecycle, the hold period (`Program.holdDays`) counted from now; REJECT rejects them (REJECTED, with the reason; rewards a refund canceled meanwhile stay CANCELED). ' +
      'Each refused id gets a userError with field ["input", "ids", index]: NOT_FOUND (unknown, malformed, another workspace or mode), or INVALID_TRANSITION for an item already decided the other way; then nothing changes. ' +
      `An item already decided the way asked is left as it is, so retrying is safe. More than ${MAX_RESOLVE_IDS} ids: LIMIT_EXCEEDED; REJECT without a reason, or a reason over ${REASON_MAX} characters: VALIDATION. ` +
      'Appends `review.resolved` per item decided (and `reward.status_changed` per rejected reward).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: ResolveReviewItemsInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const itemIds = await resolveReviewItems(ctx.db.prisma, tenantOf(ctx), {
          ids: input.ids.map((id) => ({ given: String(id), rowId: rowIdFrom(String(id), 'ReviewItem') })),
          decision: input.decision,
          reason: input.reason,
          actor: ctx.auth?.apiKeyId ?? null,
        });
        return { itemIds };
      }),
  }),
);

// --- flagConversion ------------------------------------------------------------------------------

const FlagConversionInput = builder.inputType('FlagConversionInput', {
  description: 'A conversion to put in the review queue by hand.',
  fields: (t) => ({
    conversionId: t.id({ required: true, description: 'An ACCEPTED conversion (not a refund).' }),
    detail: t.string({
      required: true,
      description: `What looks wrong, for the reviewer (1–${DETAIL_MAX} characters): the MANUAL signal’s detail.`,
    }),
  }),
});

const FlagConversionPayload = payloadType<{ itemId: string }>(
  'FlagConversionPayload',
  'The review item opened, or why none was.',
  (t) => ({
    item: t.prismaField({
      type: ReviewItemRef,
      nullable: true,
      description: 'The new OPEN item; null when refused.',
      resolve: (query, p, _args, ctx) => {
        const selection = { ...query };
        return p.itemId ? ctx.db.prisma.reviewItem.findUnique({ ...selection, where: scopedKey(p.itemId, ctx) }) : null;
      },
    }),
  }),
);

builder.mutationField('flagConversion', (t) =>
  t.field({
    type: FlagConversionPayload,
    description:
      'Open a review item by hand for an ACCEPTED conversion (signal MANUAL with your `detail`): its CREATED rewards wait for a decision (resolveReviewItems) and the approval job leaves them alone; rewards already APPROVED are not held. ' +
      'Refused: NOT_FOUND (unknown conversion), INVALID_TRANSITION (a DISCARDED conversion or a refund: nothing to review), DUPLICATE (the conversion has a review item already: one per conversion), VALIDATION (detail). Appends `review.opened`.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: FlagConversionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const itemId = await flagConversion(ctx.db.prisma, tenantOf(ctx), {
          conversionId: rowIdFrom(String(input.conversionId), 'Conversion'),
          detail: input.detail,
        });
        return { itemId };
      }),
  }),
);
