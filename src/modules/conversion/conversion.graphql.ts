import type { Prisma } from '../../generated/prisma/client.js';
import type { ConversionStatus, ConversionType } from '../../generated/prisma/enums.js';
import type { Context } from '../../context.js';
import {
  METADATA_DESCRIPTION,
  METADATA_FILTER_DESCRIPTION,
  metadataWhere,
  visibleMetadata,
} from '../../graphql/metadata.js';
import { builder } from '../../graphql/builder.js';
import { ConversionStatusEnum, ConversionTypeEnum } from '../../graphql/enums.js';
import { MoneyRef } from '../../graphql/money.js';
import { partnerFilter, scopedKey, tenantOf } from '../../graphql/scope.js';
import { filterId, guardedQuery, totalCountOf } from '../reward/reward.graphql.js';
import { SkippedRuleRef, skippedRulesOf } from '../reward/skipped-rule.graphql.js';
import { firstArgOptions, LIST_CAP, listComplexity, listTake } from '../../graphql/bounded-list.js';

export const ConversionRef = builder.prismaNode('Conversion', {
  description:
    'An event from the company’s backend (signup, purchase, subscription payment, refund), recorded once per idempotency key. ACCEPTED conversions are attributed and evaluated for rewards; DISCARDED ones are kept with the reason.',
  id: { field: 'id' },
  // A node outside the caller's scope is null, never an error; a PARTNER credential sees conversions attributed to its own partner only.
  nullable: true,
  findUnique: (id, ctx) => ({ ...scopedKey(id, ctx), ...partnerFilter(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    type: t.expose('type', { type: ConversionTypeEnum }),
    status: t.expose('status', { type: ConversionStatusEnum }),
    discardReason: t.exposeString('discardReason', {
      nullable: true,
      description:
        'Why a DISCARDED conversion was not attributed or rewarded (e.g. UNKNOWN_CODE, WINDOW_EXPIRED); null when ACCEPTED.',
    }),
    amount: t.field({
      type: MoneyRef,
      nullable: true,
      description: 'What was paid (or refunded); null for a signup.',
      resolve: (c) => (c.amount !== null && c.currency !== null ? { amount: c.amount, currency: c.currency } : null),
    }),
    idempotencyKey: t.exposeString('idempotencyKey', {
      description: 'Unique per workspace and mode: a replay returns this conversion.',
    }),
    referredExternalId: t.exposeString('referredExternalId', {
      nullable: true,
      description: 'The referred user’s id in the company’s product, as sent.',
    }),
    productId: t.exposeString('productId', {
      nullable: true,
      description: 'Your product id, as sent to recordConversion; it selected the rules limited to products.',
    }),
    metadata: t.field({
      type: 'JSON',
      nullable: true,
      description: METADATA_DESCRIPTION,
      resolve: (row, _args, ctx) => visibleMetadata(row, ctx),
    }),
    occurredAt: t.expose('occurredAt', {
      type: 'DateTime',
      description: 'When it happened in the company’s product (defaults to when it was recorded).',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When refgraph recorded it.' }),
    program: t.relation('program', {
      nullable: true,
      description: 'Null when the conversion could not be attributed to a program.',
    }),
    partner: t.relation('partner', {
      nullable: true,
      description: 'The partner it was attributed to; null when discarded before attribution.',
    }),
    referral: t.relation('referral', { nullable: true }),
    refundOf: t.relation('refundOf', { nullable: true, description: 'For a REFUND: the conversion refunded.' }),
    rewards: t.relation('rewards', {
      description: `The rewards this conversion produced (clawbacks included, for a refund), oldest first; at most ${LIST_CAP} (\`first\`).`,
      args: { first: t.arg.int(firstArgOptions) },
      complexity: listComplexity,
      query: (args, ctx) => ({ where: partnerFilter(ctx), orderBy: { id: 'asc' }, take: listTake(args.first) }),
    }),
    skippedRules: t.field({
      type: [SkippedRuleRef],
      description:
        'The program’s rules for this conversion’s type that produced no reward, each with the reason (in the order of `Program.rewardRules`). With `rewards`, it accounts for every rule that was evaluated: for example a PERCENTAGE rule capped in USD lists a EUR conversion as CAP_CURRENCY_MISMATCH instead of paying it uncapped. Empty for a DISCARDED conversion (no rule was evaluated), a REFUND, and conversions recorded before refgraph kept this list.',
      resolve: (c) => skippedRulesOf(c.skippedRules),
    }),
  }),
});

const ConversionConnection = builder.connectionObject(
  {
    type: ConversionRef,
    name: 'ConversionConnection',
    description: 'A page of conversions, newest first.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many conversions match, on every page.',
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'ConversionEdge', description: 'A conversion in a page of conversions.' },
);

const ConversionFilter = builder.inputType('ConversionFilter', {
  description:
    'Narrows `conversions`. Conditions combine with AND. An id that is malformed, of another type, or outside the caller’s workspace and mode matches nothing.',
  fields: (t) => ({
    programId: t.id({ description: 'Conversions attributed to this program.' }),
    partnerId: t.id({ description: 'Conversions attributed to this partner.' }),
    referralId: t.id({
      description:
        'Conversions of this referred person: every one of them, where Referral.conversions lists at most 100.',
    }),
    type: t.field({ type: ConversionTypeEnum }),
    status: t.field({ type: ConversionStatusEnum }),
    idempotencyKey: t.string({
      description:
        'The conversion recorded with this idempotencyKey (exact; keys are unique per workspace and mode), e.g. to find the id refundConversion needs from your own order id.',
    }),
    referredExternalId: t.string({
      description:
        'Conversions of the referred person with this externalId (exact, after trimming spaces), in every program.',
    }),
    metadata: t.field({ type: 'JSON', description: METADATA_FILTER_DESCRIPTION }),
    occurredFrom: t.field({ type: 'DateTime', description: 'Occurred at or after this instant.' }),
    occurredTo: t.field({ type: 'DateTime', description: 'Occurred before this instant (exclusive).' }),
  }),
});

function conversionWhere(
  ctx: Context,
  filter:
    | {
        programId?: string | null;
        partnerId?: string | null;
        referralId?: string | null;
        type?: ConversionType | null;
        status?: ConversionStatus | null;
        idempotencyKey?: string | null;
        referredExternalId?: string | null;
        metadata?: unknown;
        occurredFrom?: Date | null;
        occurredTo?: Date | null;
      }
    | null
    | undefined,
): Prisma.ConversionWhereInput {
  const and: Prisma.ConversionWhereInput[] = [{ ...tenantOf(ctx), ...partnerFilter(ctx) }];
  const programId = filterId(filter?.programId, 'Program');
  if (programId) and.push({ programId });
  const partnerId = filterId(filter?.partnerId, 'Partner');
  if (partnerId) and.push({ partnerId });
  const referralId = filterId(filter?.referralId, 'Referral');
  if (referralId) and.push({ referralId });
  if (filter?.type) and.push({ type: filter.type });
  if (filter?.status) and.push({ status: filter.status });
  if (filter?.idempotencyKey != null) and.push({ idempotencyKey: filter.idempotencyKey });
  if (filter?.referredExternalId != null) and.push({ referredExternalId: filter.referredExternalId.trim() });
  const metadata = metadataWhere(filter?.metadata, 'filter.metadata');
  if (metadata) and.push(metadata);
  if (filter?.occurredFrom) and.push({ occurredAt: { gte: filter.occurredFrom } });
  if (filter?.occurredTo) and.push({ occurredAt: { lt: filter.occurredTo } });
  return { AND: and };
}

builder.queryField('conversions', (t) =>
  t.prismaConnection(
    {
      type: ConversionRef,
      cursor: 'id',
      description: 'Conversions of the workspace and mode (accepted and discarded), newest first.',
      authScopes: { reader: true },
      args: { filter: t.arg({ type: ConversionFilter }) },
      resolve: (query, _root, args, ctx) =>
        ctx.db.prisma.conversion.findMany({
          ...guardedQuery(query),
          where: conversionWhere(ctx, args.filter),
          orderBy: { id: 'desc' },
        }),
      totalCount: (_root, args, ctx) => ctx.db.prisma.conversion.count({ where: conversionWhere(ctx, args.filter) }),
    },
    ConversionConnection,
  ),
);
