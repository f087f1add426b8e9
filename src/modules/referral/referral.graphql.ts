import { builder } from '../../graphql/builder.js';
import {
  METADATA_DESCRIPTION,
  METADATA_FILTER_DESCRIPTION,
  metadataWhere,
  visibleMetadata,
} from '../../graphql/metadata.js';
import { ReferralStatusEnum } from '../../graphql/enums.js';
import { partnerFilter, scopedKey } from '../../graphql/scope.js';
import { cursorGuard, filterId, RewardConnection, totalCountOf } from '../reward/reward.graphql.js';
import { firstArgOptions, LIST_CAP, listComplexity, listTake } from '../../graphql/bounded-list.js';

export const ReferralRef = builder.prismaNode('Referral', {
  description: 'A referred person, bound to the first partner that brought them into a program (first touch).',
  id: { field: 'id' },
  // A node outside the caller's scope is null, never an error; a PARTNER credential sees its own partner's referrals only.
  nullable: true,
  findUnique: (id, ctx) => ({ ...scopedKey(id, ctx), ...partnerFilter(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    externalId: t.exposeString('externalId', { description: 'The referred user’s id in the company’s product.' }),
    email: t.exposeString('email', { nullable: true }),
    status: t.expose('status', { type: ReferralStatusEnum }),
    partner: t.relation('partner', { description: 'The partner the referral is bound to.' }),
    program: t.relation('program'),
    link: t.relation('link', {
      nullable: true,
      description: 'The referral link that brought them, when attribution went through one.',
    }),
    metadata: t.field({
      type: 'JSON',
      nullable: true,
      description: `${METADATA_DESCRIPTION} A referral starts with the metadata of the conversion that created it.`,
      resolve: (row, _args, ctx) => visibleMetadata(row, ctx),
    }),
    createdAt: t.expose('createdAt', {
      type: 'DateTime',
      description: 'When the referred person signed up (was attributed).',
    }),
    convertedAt: t.expose('convertedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When they first paid; null while PENDING.',
    }),
    conversions: t.relation('conversions', {
      description: `The referred person’s conversions, oldest first; at most ${LIST_CAP} (\`first\`): Query.conversions(filter: { referralId }) pages through all of them.`,
      args: { first: t.arg.int(firstArgOptions) },
      complexity: listComplexity,
      query: (args, ctx) => ({
        where: partnerFilter(ctx),
        orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }],
        take: listTake(args.first),
      }),
    }),
  }),
});

export const ReferralConnection = builder.connectionObject(
  {
    type: ReferralRef,
    name: 'ReferralConnection',
    description: 'A page of referrals, newest first.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many referrals match, on every page.',
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'ReferralEdge', description: 'A referral in a page of referrals.' },
);

builder.prismaObjectField('Partner', 'referrals', (t) =>
  t.relatedConnection(
    'referrals',
    {
      cursor: 'id',
      description: 'The people this partner referred, newest first.',
      totalCount: true,
      args: {
        programId: t.arg.id({ description: 'Only referrals into this program.' }),
        status: t.arg({ type: ReferralStatusEnum, description: 'Only referrals in this status.' }),
        metadata: t.arg({ type: 'JSON', description: METADATA_FILTER_DESCRIPTION }),
      },
      query: (args, ctx) => {
        const programId = filterId(args.programId, 'Program');
        return {
          where: {
            ...partnerFilter(ctx),
            ...(programId ? { programId } : {}),
            ...(args.status ? { status: args.status } : {}),
            ...metadataWhere(args.metadata, 'metadata'),
          },
          orderBy: { id: 'desc' },
          ...cursorGuard(args),
        };
      },
    },
    ReferralConnection,
  ),
);

builder.prismaObjectField('Referral', 'rewards', (t) =>
  t.relatedConnection(
    'rewards',
    {
      cursor: 'id',
      description:
        'The rewards earned for this referred person over all their conversions (both recipients, clawbacks of refunds included), newest first. A PARTNER credential sees its own partner’s only.',
      totalCount: true,
      query: (args, ctx) => ({ where: partnerFilter(ctx), orderBy: { id: 'desc' }, ...cursorGuard(args) }),
    },
    RewardConnection,
  ),
);
