import { parsePrismaCursor } from '@pothos/plugin-prisma';
import type { Prisma } from '../../generated/prisma/client.js';
import type { RewardStatus } from '../../generated/prisma/enums.js';
import { builder } from '../../graphql/builder.js';
import type { RewardKind, RewardRecipient } from '../../generated/prisma/enums.js';
import { RewardKindEnum, RewardRecipientEnum, RewardStatusEnum } from '../../graphql/enums.js';
import { MoneyRef } from '../../graphql/money.js';
import { partnerFilter, rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import type { Context } from '../../context.js';
import { globalId } from '../../lib/global-id.js';
import { isUuid, NIL_UUID } from '../../lib/ids.js';

/** How many status changes `Reward.statusHistory` lists at most (the lifecycle makes at most four). */
const HISTORY_CAP = 100;

/**
 * Who made a status change, as a credential may see it: `system:<job>` as it is; an API key as its
 * global id (the `id` of `apiKeys`), and to a PARTNER credential not at all (null): which of the
 * company's keys or people acted is the company's business.
 */
export function actorFor(actor: string | null, ctx: Context): string | null {
  if (actor === null || actor.startsWith('system:')) return actor;
  if (ctx.auth?.role === 'PARTNER') return null;
  return isUuid(actor) ? globalId('ApiKey', actor) : actor;
}

export const RewardStatusHistoryEntryRef = builder.prismaObject('RewardStatusChange', {
  name: 'RewardStatusHistoryEntry',
  description: 'One change of a reward’s status, as kept in its append-only history.',
  fields: (t) => ({
    from: t.expose('fromStatus', {
      type: RewardStatusEnum,
      nullable: true,
      description: 'The status before; null for the reward’s creation.',
    }),
    to: t.expose('toStatus', { type: RewardStatusEnum, description: 'The status after.' }),
    reason: t.exposeString('reason', {
      nullable: true,
      description: 'Why: the reason given to updateRewardStatus, or what the system did (e.g. a refund).',
    }),
    actor: t.string({
      nullable: true,
      description:
        'Who made the change: `system:<job>` (e.g. `system:approval-job`, `system:recordConversion`), or the global id of the API key ' +
        '(as `apiKeys` lists it) whose credential did. Always null for a PARTNER credential when a key of the company acted, and null when unknown.',
      resolve: (change, _args, ctx) => actorFor(change.actor, ctx),
    }),
    at: t.expose('createdAt', { type: 'DateTime', description: 'When the change was committed.' }),
  }),
});

export const RewardRef = builder.prismaNode('Reward', {
  description:
    'What a recipient earns for a conversion, produced by one version of a reward rule. Never two for the same (conversion, rule, recipient); a refund never edits a reward, it adds a negative one (a clawback) pointing at its source.',
  id: { field: 'id' },
  // A node outside the caller's scope is null, never an error; a PARTNER credential sees its own partner's rewards only.
  nullable: true,
  findUnique: (id, ctx) => ({ ...scopedKey(id, ctx), ...partnerFilter(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    status: t.expose('status', { type: RewardStatusEnum }),
    kind: t.expose('kind', { type: RewardKindEnum }),
    recipient: t.expose('recipient', {
      type: RewardRecipientEnum,
      description:
        'REFERRER: the partner earns it. REFERRED: the referred customer does (double-sided programs); `partner` is then the partner who brought them.',
    }),
    amount: t.field({
      type: MoneyRef,
      description: 'Negative for a clawback.',
      resolve: (reward) => ({ amount: reward.amount, currency: reward.currency }),
    }),
    program: t.relation('program'),
    partner: t.relation('partner', {
      description: 'The referring partner (also for REFERRED-recipient rewards, which they brought about).',
    }),
    conversion: t.relation('conversion', { description: 'The conversion that produced this reward.' }),
    rule: t.relation('rule', {
      description:
        'The exact version of the reward rule that produced this reward, even if the rule was edited or archived since.',
    }),
    sourceReward: t.relation('sourceReward', {
      nullable: true,
      description: 'For a clawback (negative reward after a refund): the reward it takes back.',
    }),
    payout: t.relation('payout', { nullable: true, description: 'The payout this reward is part of, if any.' }),
    approveAfter: t.expose('approveAfter', {
      type: 'DateTime',
      description: 'When the program’s hold period ends and a CREATED reward may be approved automatically.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'Last status change.' }),
    statusHistory: t.relation('history', {
      type: RewardStatusHistoryEntryRef,
      description: `Every status change of this reward, oldest first, its creation (from null) included; at most ${HISTORY_CAP}. Loaded for a whole page of rewards at once.`,
      query: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: HISTORY_CAP },
    }),
  }),
});

/** The same connection type for `Query.rewards` and `Partner.rewards`. */
export const RewardConnection = builder.connectionObject(
  {
    type: RewardRef,
    name: 'RewardConnection',
    description: 'A page of rewards, newest first.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many rewards match, on every page.',
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection) => totalCountOf(connection),
      }),
    }),
  },
  { name: 'RewardEdge', description: 'A reward in a page of rewards.' },
);

/** The `totalCount` that plugin-prisma leaves on a connection: a number, or a function that loads it. */
export function totalCountOf(connection: object): number | Promise<number> {
  const { totalCount } = connection as { totalCount?: number | (() => number | Promise<number>) };
  return (typeof totalCount === 'function' ? totalCount() : totalCount) ?? 0;
}

const RewardFilter = builder.inputType('RewardFilter', {
  description:
    'Narrows `rewards`. Conditions combine with AND. An id that is malformed, of another type, or outside the caller’s workspace and mode matches nothing.',
  fields: (t) => ({
    programId: t.id({ description: 'Rewards of this program.' }),
    partnerId: t.id({ description: 'Rewards of this partner.' }),
    partnerExternalId: t.string({ description: 'Rewards of the partner with this externalId.' }),
    payoutId: t.id({
      description: 'Rewards paid (or held) by this payout: every one of them, where Payout.rewards lists at most 100.',
    }),
    status: t.field({
      type: [RewardStatusEnum],
      description: 'Rewards in any of these statuses; null or empty: every status.',
    }),
    createdFrom: t.field({ type: 'DateTime', description: 'Created at or after this instant.' }),
    createdTo: t.field({ type: 'DateTime', description: 'Created before this instant (exclusive).' }),
    referredExternalId: t.string({
      description:
        'Rewards of conversions of the referred person with this externalId (trimmed, exact), in every program: with `recipient: REFERRED`, what the referred customer earned.',
    }),
    recipient: t.field({
      type: RewardRecipientEnum,
      description: 'Rewards for this recipient: REFERRER (the partner) or REFERRED (the referred customer).',
    }),
    kind: t.field({ type: RewardKindEnum, description: 'Rewards of this kind: CASH, CREDIT or DISCOUNT.' }),
  }),
});

/** A row id from an optional global id argument: undefined when absent, NIL_UUID (matches nothing) when not ours. */
export function filterId(globalId: string | number | bigint | null | undefined, typename: string): string | undefined {
  if (globalId === null || globalId === undefined) return undefined;
  return rowIdFrom(String(globalId), typename) ?? NIL_UUID;
}

/**
 * Cursors are opaque but client-supplied: one that decodes to something other than a UUID is
 * replaced by a cursor no row has (an empty page) instead of reaching a uuid column. Returned
 * from a relatedConnection's `query`, whose own `cursor` wins over the one parsed from the args.
 */
export function cursorGuard(args: object): { cursor?: { id: string } } {
  // The field's `query` is typed with the field's own args only, but receives the connection's too.
  const { after, before } = args as { after?: string | null; before?: string | null };
  const raw = after ?? before;
  if (raw === null || raw === undefined) return {};
  let id: unknown;
  try {
    id = parsePrismaCursor(raw);
  } catch {
    return {}; // not a cursor at all: the connection refuses it itself
  }
  return typeof id === 'string' && isUuid(id) ? {} : { cursor: { id: NIL_UUID } };
}

/** A prismaConnection's query with its cursor checked the same way. */
export function guardedQuery<Q extends { cursor?: { id?: unknown } }>(query: Q): Q {
  const id = query.cursor?.id;
  return id !== undefined && !(typeof id === 'string' && isUuid(id)) ? { ...query, cursor: { id: NIL_UUID } } : query;
}

const statusIn = (status: readonly RewardStatus[] | null | undefined): Prisma.RewardWhereInput =>
  status && status.length > 0 ? { status: { in: [...status] } } : {};

function rewardWhere(
  ctx: Context,
  filter:
    | {
        programId?: string | null;
        partnerId?: string | null;
        partnerExternalId?: string | null;
        payoutId?: string | null;
        status?: RewardStatus[] | null;
        createdFrom?: Date | null;
        createdTo?: Date | null;
        referredExternalId?: string | null;
        recipient?: RewardRecipient | null;
        kind?: RewardKind | null;
      }
    | null
    | undefined,
): Prisma.RewardWhereInput {
  const and: Prisma.RewardWhereInput[] = [{ ...tenantOf(ctx), ...partnerFilter(ctx) }];
  const programId = filterId(filter?.programId, 'Program');
  if (programId) and.push({ programId });
  const partnerId = filterId(filter?.partnerId, 'Partner');
  if (partnerId) and.push({ partnerId });
  if (filter?.partnerExternalId != null) and.push({ partner: { externalId: filter.partnerExternalId } });
  const payoutId = filterId(filter?.payoutId, 'Payout');
  if (payoutId) and.push({ payoutId });
  and.push(statusIn(filter?.status));
  if (filter?.createdFrom) and.push({ createdAt: { gte: filter.createdFrom } });
  if (filter?.createdTo) and.push({ createdAt: { lt: filter.createdTo } });
  // Through the referral (its unique (workspaceId, mode, programId, externalId) index leads, then
  // Conversion.referralId and Reward.conversionId): every rewarded conversion has one, with the
  // same trimmed externalId. README.md, "Reads are scoped", has the plan measured.
  if (filter?.referredExternalId != null)
    and.push({ conversion: { referral: { externalId: filter.referredExternalId.trim() } } });
  if (filter?.recipient) and.push({ recipient: filter.recipient });
  if (filter?.kind) and.push({ kind: filter.kind });
  return { AND: and };
}

builder.queryField('rewards', (t) =>
  t.prismaConnection(
    {
      type: RewardRef,
      cursor: 'id',
      description: 'Rewards of the workspace and mode, newest first.',
      authScopes: { reader: true },
      args: { filter: t.arg({ type: RewardFilter }) },
      resolve: (query, _root, args, ctx) =>
        ctx.db.prisma.reward.findMany({
          ...guardedQuery(query),
          where: rewardWhere(ctx, args.filter),
          orderBy: { id: 'desc' },
        }),
      totalCount: (_root, args, ctx) => ctx.db.prisma.reward.count({ where: rewardWhere(ctx, args.filter) }),
    },
    RewardConnection,
  ),
);

builder.prismaObjectField('Partner', 'rewards', (t) =>
  t.relatedConnection(
    'rewards',
    {
      cursor: 'id',
      description: 'This partner’s rewards (both recipients), newest first.',
      totalCount: true,
      args: {
        programId: t.arg.id({ description: 'Only this program’s rewards.' }),
        status: t.arg({ type: [RewardStatusEnum], description: 'Only these statuses; null or empty: every status.' }),
      },
      query: (args, ctx) => {
        const programId = filterId(args.programId, 'Program');
        return {
          where: { ...partnerFilter(ctx), ...(programId ? { programId } : {}), ...statusIn(args.status) },
          orderBy: { id: 'desc' },
          ...cursorGuard(args),
        };
      },
    },
    RewardConnection,
  ),
);
