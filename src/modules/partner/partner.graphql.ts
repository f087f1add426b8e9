import { GraphQLError } from 'graphql';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { firstArgOptions, LIST_CAP, listComplexity, listTake } from '../../graphql/bounded-list.js';
import { PartnerStatusEnum } from '../../graphql/enums.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import {
  METADATA_DESCRIPTION,
  METADATA_FILTER_DESCRIPTION,
  metadataWhere,
  visibleMetadata,
} from '../../graphql/metadata.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { NIL_UUID } from '../../lib/ids.js';
import { createPartner, partnerListWhere, SEARCH_MAX, setPartnerStatus, updatePartner } from './partner.service.js';

/**
 * A PARTNER credential sees exactly one partner: its own. Applied to the row found, not as an
 * extra `id` filter beside a unique key: Prisma batches the findUniques of one tick (aliases,
 * Query.nodes, Event.subject) and matches the rows back by that `id`, which answered another
 * partner's id with the credential's own partner.
 */
function ownPartnerOnly<T extends { id: string }>(ctx: Context, row: T | null): T | null {
  return row && (ctx.auth?.role !== 'PARTNER' || row.id === ctx.auth.partnerId) ? row : null;
}

export const PartnerRef = builder.prismaNode('Partner', {
  description: 'Someone who refers: an affiliate, or a customer who refers friends.',
  id: { field: 'id' },
  // Select mode: a query loads only the columns its fields use (the dashboard lists hundreds of these).
  select: { id: true },
  // A node outside the caller's scope is null, never an error.
  nullable: true,
  // A PARTNER credential asking for another partner asks for no row at all. Not an extra `id`
  // filter beside the key: Prisma batches the findUniques of one tick (Query.nodes, Event.subject)
  // and matches the rows back by that `id`, which answered another partner's id with its own.
  findUnique: (id, ctx) => scopedKey(ctx.auth?.role === 'PARTNER' && id !== ctx.auth.partnerId ? NIL_UUID : id, ctx),
  authScopes: { authenticated: true },
  fields: (t) => ({
    externalId: t.exposeString('externalId', {
      description: 'The company’s own id for this partner; unique per workspace and mode.',
    }),
    name: t.exposeString('name', { nullable: true, description: 'For people; at most 200 characters.' }),
    email: t.exposeString('email', {
      nullable: true,
      description: 'Contact address, as given (also used to detect self-referrals).',
    }),
    status: t.expose('status', {
      type: PartnerStatusEnum,
      description: 'ACTIVE, INACTIVE or BANNED; only ACTIVE partners earn rewards.',
    }),
    metadata: t.field({
      type: 'JSON',
      nullable: true,
      description: METADATA_DESCRIPTION,
      select: { metadata: true },
      resolve: (row, _args, ctx) => visibleMetadata(row, ctx),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When name, email or status last changed.' }),
    enrollments: t.relation('enrollments', {
      description: `The programs this partner is in, oldest first; at most ${LIST_CAP} (\`first\`).`,
      args: { first: t.arg.int(firstArgOptions) },
      complexity: listComplexity,
      query: (args) => ({ orderBy: { id: 'asc' }, take: listTake(args.first) }),
    }),
    links: t.relation('links', {
      description: `All of this partner’s referral links in every program, oldest first; disabled ones included (\`disabled: true\`). At most ${LIST_CAP} (\`first\`).`,
      args: { first: t.arg.int(firstArgOptions) },
      complexity: listComplexity,
      query: (args) => ({ orderBy: { id: 'asc' }, take: listTake(args.first) }),
    }),
  }),
});

builder.queryFields((t) => ({
  partner: t.prismaField({
    type: PartnerRef,
    nullable: true,
    description:
      'One partner, by exactly one of `id` (global id) or `externalId` (the company’s own id). Null when there is no such partner in the caller’s workspace and mode. ' +
      'Giving both or neither is a request error (top-level, code BAD_USER_INPUT), like a missing required argument. A PARTNER credential finds only its own partner.',
    authScopes: { authenticated: true },
    args: {
      id: t.arg.id({ description: 'The partner’s global id.' }),
      externalId: t.arg.string({ description: 'The company’s own id for the partner.' }),
    },
    resolve: (query, _root, args, ctx) => {
      const byId = args.id !== null && args.id !== undefined;
      const byExternalId = args.externalId !== null && args.externalId !== undefined;
      if (byId === byExternalId) {
        throw new GraphQLError('partner: give exactly one of `id` or `externalId`.', {
          extensions: { code: 'BAD_USER_INPUT' },
        });
      }
      const tenant = tenantOf(ctx);
      const selection = { ...query }; // used even when the answer is null without a lookup
      if (byId) {
        const id = rowIdFrom(String(args.id), 'Partner');
        if (!id) return null;
        return ctx.db.prisma.partner
          .findUnique({ ...selection, where: scopedKey(id, ctx) }) // select mode: `id` is always selected
          .then((row) => ownPartnerOnly(ctx, row));
      }
      return ctx.db.prisma.partner
        .findUnique({
          ...selection,
          where: { workspaceId_mode_externalId: { ...tenant, externalId: args.externalId!.trim() } },
        })
        .then((row) => ownPartnerOnly(ctx, row));
    },
  }),
  partners: t.prismaConnection(
    {
      type: PartnerRef,
      cursor: 'id',
      description:
        'The workspace’s partners, oldest first. Filters combine: `status`; `programId` (partners enrolled in that program, any enrollment status); ' +
        '`search`, a case-insensitive substring of name, email or externalId (at most 100 characters; % and _ match themselves); ' +
        '`metadata`, containment (an index serves it).',
      authScopes: { reader: true },
      args: {
        status: t.arg({ type: PartnerStatusEnum }),
        programId: t.arg.id({ description: 'Only partners enrolled in this program.' }),
        search: t.arg.string({ description: 'Case-insensitive substring of name, email or externalId.' }),
        metadata: t.arg({ type: 'JSON', description: METADATA_FILTER_DESCRIPTION }),
      },
      resolve: (query, _root, args, ctx) =>
        ctx.db.prisma.partner.findMany({ ...query, where: listWhere(args, ctx), orderBy: { id: 'asc' } }),
      totalCount: (_connection, args, ctx) => ctx.db.prisma.partner.count({ where: listWhere(args, ctx) }),
    },
    { name: 'PartnerConnection', description: 'A page of partners.' },
    {
      name: 'PartnerEdge',
      description: 'A partner in a page of partners.',
      nodeField: { description: 'The partner.' },
    },
  ),
}));

function listWhere(
  args: {
    status?: 'ACTIVE' | 'INACTIVE' | 'BANNED' | null;
    programId?: string | number | bigint | null;
    search?: string | null;
    metadata?: unknown;
  },
  ctx: Context,
) {
  if (args.search && args.search.length > SEARCH_MAX) {
    throw new GraphQLError(`partners: search must be at most ${SEARCH_MAX} characters long.`, {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  return partnerListWhere(tenantOf(ctx), {
    status: args.status,
    programId:
      args.programId === null || args.programId === undefined
        ? undefined
        : rowIdFrom(String(args.programId), 'Program'),
    search: args.search,
    metadata: metadataWhere(args.metadata, 'metadata'),
  });
}

/** Mutation payloads carry the partner's row id; the field loads it with the client's selection. */
const partnerField = (t: Parameters<Parameters<typeof payloadType<{ partnerId: string }>>[2]>[0]) =>
  t.prismaField({
    type: PartnerRef,
    nullable: true,
    resolve: (query, p, _args, ctx) => {
      // Spread before the null check: a refused mutation has no partner, and that is not an unused query.
      const selection = { ...query };
      return p.partnerId ? ctx.db.prisma.partner.findUnique({ ...selection, where: { id: p.partnerId } }) : null;
    },
  });

const CreatePartnerInput = builder.inputType('CreatePartnerInput', {
  fields: (t) => ({
    externalId: t.string({
      required: true,
      description: 'The company’s own id for this person, 1–255 characters (trimmed); unique per workspace and mode.',
    }),
    name: t.string({ description: 'At most 200 characters.' }),
    email: t.string({ description: 'At most 320 characters, one "@".' }),
    status: t.field({ type: PartnerStatusEnum, description: 'Default ACTIVE.' }),
    metadata: t.field({
      type: 'JSON',
      description: 'Your own fields: a JSON object of at most 50 top-level keys and 8 KiB (VALIDATION otherwise).',
    }),
    programIds: t.idList({
      description:
        'Programs to enroll the partner in at once, as enrollPartner would. Any refused program refuses the whole mutation.',
    }),
  }),
});

const CreatePartnerPayload = payloadType<{ partnerId: string }>('CreatePartnerPayload', 'The new partner.', (t) => ({
  partner: partnerField(t),
}));

builder.mutationField('createPartner', (t) =>
  t.field({
    type: CreatePartnerPayload,
    description:
      'Create a partner, optionally enrolled in programs (`programIds`) in the same transaction. A taken externalId is DUPLICATE; ' +
      'a missing program is NOT_FOUND with field ["input", "programIds", index], and nothing is created.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreatePartnerInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const partner = await createPartner(ctx.db.prisma, tenantOf(ctx), {
          externalId: input.externalId,
          name: input.name,
          email: input.email,
          status: input.status,
          metadata: input.metadata,
          programIds: input.programIds?.map((id) => rowIdFrom(String(id), 'Program')),
        });
        return { partnerId: partner.id };
      }),
  }),
);

const UpdatePartnerInput = builder.inputType('UpdatePartnerInput', {
  description:
    'Which partner (exactly one of `id` or `externalId`) and the fields to change. Omitted fields stay as they are; null clears.',
  fields: (t) => ({
    id: t.id({ description: 'The partner’s global id.' }),
    externalId: t.string({ description: 'The partner’s externalId (it finds the partner; it cannot be changed).' }),
    name: t.string({ description: 'At most 200 characters; null clears it.' }),
    email: t.string({ description: 'At most 320 characters, one "@"; null clears it.' }),
    metadata: t.field({
      type: 'JSON',
      description: 'Replaces the whole metadata (a JSON object, at most 50 keys and 8 KiB); null clears it to {}.',
    }),
  }),
});

const UpdatePartnerPayload = payloadType<{ partnerId: string }>(
  'UpdatePartnerPayload',
  'The updated partner.',
  (t) => ({
    partner: partnerField(t),
  }),
);

builder.mutationField('updatePartner', (t) =>
  t.field({
    type: UpdatePartnerPayload,
    description:
      'Change a partner’s name, email or metadata. Give exactly one of `id` or `externalId` (else VALIDATION); only the fields given change.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdatePartnerInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const partner = await updatePartner(ctx.db.prisma, tenantOf(ctx), {
          id: input.id === null || input.id === undefined ? undefined : rowIdFrom(String(input.id), 'Partner'),
          externalId: input.externalId ?? undefined,
          name: input.name,
          email: input.email,
          metadata: input.metadata,
        });
        return { partnerId: partner.id };
      }),
  }),
);

const SetPartnerStatusInput = builder.inputType('SetPartnerStatusInput', {
  description: 'Which partner (exactly one of `partnerId` or `partnerExternalId`) and its new status.',
  fields: (t) => ({
    ...partnerKeyFields(t, 'The partner'),
    status: t.field({ type: PartnerStatusEnum, required: true, description: 'The status to set.' }),
  }),
});

const SetPartnerStatusPayload = payloadType<{ partnerId: string }>(
  'SetPartnerStatusPayload',
  'The partner with its new status.',
  (t) => ({
    partner: partnerField(t),
  }),
);

builder.mutationField('setPartnerStatus', (t) =>
  t.field({
    type: SetPartnerStatusPayload,
    description:
      'Set a partner ACTIVE, INACTIVE or BANNED (any status to any other; the current one is a no-op). ' +
      'An inactive or banned partner’s new clicks and conversions are recorded as discarded; a banned partner cannot be enrolled or get new links. ' +
      'Banning also rejects the partner’s CREATED rewards and closes their OPEN review items as REJECTED (reason "The partner was banned."), in the same transaction; APPROVED rewards stay (money already due: claw it back by refund).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SetPartnerStatusInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const partner = await setPartnerStatus(ctx.db.prisma, tenantOf(ctx), {
          ...partnerKeyFrom(input),
          status: input.status,
          actor: ctx.auth?.apiKeyId ?? null,
        });
        ctx.clicks.forgetLink(); // the cached link facts carry the partner's status
        return { partnerId: partner.id };
      }),
  }),
);
