import { GraphQLError } from 'graphql';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { RewardStatusEnum } from '../../graphql/enums.js';
import { forbiddenError } from '../../graphql/errors.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import type { RewardStatus } from '../../generated/prisma/enums.js';
import { NIL_UUID } from '../../lib/ids.js';
import type { OutboxEvent } from '../../pubsub.js';
import { endOnReturn, type StreamStop, streamIterator } from '../../realtime/event-stream.js';
import { throttle } from '../../realtime/throttle.js';
import { ProgramStatsRef, type ProgramStatsSource } from '../stats/stats.graphql.js';
import { tenantEventStream } from './events.graphql.js';

// Live subscriptions built on the outbox stream (events.graphql.ts): each filters the tenant's
// events and resolves its subject with fresh data per event.

// The events a subscriber does not keep only advance its stream's sequence (EventStream's `wanted`).
function filtered(
  ctx: Context,
  types: string[],
  keep: (event: OutboxEvent) => boolean,
  stop: StreamStop,
): AsyncGenerator<OutboxEvent> {
  return tenantEventStream(ctx, null, types, { keep, stop }).events();
}

/** null: no filter. A foreign or malformed id filters everything out, like an id with no events. */
function optionalRowId(globalId: string | number | null | undefined, type: string): string | null {
  if (globalId === null || globalId === undefined) return null;
  return rowIdFrom(String(globalId), type) ?? NIL_UUID;
}

builder.subscriptionField('conversionRecorded', (t) =>
  t.prismaField({
    type: 'Conversion',
    description:
      'Each conversion as it is recorded (accepted or discarded), with its rewards. Program-wide: ADMIN and READ_ONLY credentials.',
    authScopes: { reader: true },
    args: { programId: t.arg.id({ description: 'Only this program’s conversions.' }) },
    subscribe: (_root, args, ctx) => {
      const programId = optionalRowId(args.programId, 'Program');
      return streamIterator(
        tenantEventStream(ctx, null, ['conversion.recorded'], {
          keep: (e) => programId === null || e.programId === programId,
        }),
      );
    },
    resolve: (query, event, _args, ctx) => {
      const id = rowIdFrom(String((event as unknown as OutboxEvent).payload['conversionId']), 'Conversion') ?? NIL_UUID;
      return ctx.db.prisma.conversion.findUniqueOrThrow({ ...query, where: scopedKey(id, ctx) });
    },
  }),
);

interface StatusChangeShape {
  rewardId: string;
  from: RewardStatus | null;
  to: RewardStatus;
  at: Date;
}

const RewardStatusChangeRef = builder.objectRef<StatusChangeShape>('RewardStatusChange').implement({
  description: 'A reward moved from one status to another (`from` is null when it was created).',
  fields: (t) => ({
    reward: t.prismaField({
      type: 'Reward',
      resolve: (query, change, _args, ctx) =>
        ctx.db.prisma.reward.findUniqueOrThrow({ ...query, where: scopedKey(change.rewardId, ctx) }),
    }),
    from: t.field({ type: RewardStatusEnum, nullable: true, resolve: (c) => c.from }),
    to: t.field({ type: RewardStatusEnum, resolve: (c) => c.to }),
    at: t.field({ type: 'DateTime', resolve: (c) => c.at }),
  }),
});

function statusChange(event: OutboxEvent): StatusChangeShape {
  const p = event.payload;
  const created = event.type === 'reward.created';
  return {
    rewardId: rowIdFrom(String(p['rewardId']), 'Reward') ?? NIL_UUID,
    from: created ? null : ((p['from'] as RewardStatus | undefined) ?? null),
    // A refund's share rewards are born in their source's status (see the payout README).
    to: created ? ((p['status'] as RewardStatus | undefined) ?? 'CREATED') : (p['to'] as RewardStatus),
    at: new Date(String(created ? event.occurredAt : (p['at'] ?? event.occurredAt))),
  };
}

builder.subscriptionField('rewardStatusChanged', (t) =>
  t.field({
    type: RewardStatusChangeRef,
    description:
      'Each reward status change, with the old and new status (a new reward counts as null → CREATED). A PARTNER token sees only its own partner’s rewards.',
    authScopes: { authenticated: true },
    args: { programId: t.arg.id(), partnerId: t.arg.id() },
    subscribe: (_root, args, ctx) => {
      const programId = optionalRowId(args.programId, 'Program');
      const partnerId = optionalRowId(args.partnerId, 'Partner');
      if (ctx.auth?.role === 'PARTNER' && partnerId !== null && partnerId !== ctx.auth.partnerId)
        throw forbiddenError('PARTNER');
      return streamIterator(
        tenantEventStream(ctx, null, ['reward.created', 'reward.status_changed'], {
          keep: (e) =>
            (programId === null || e.programId === programId) && (partnerId === null || e.partnerId === partnerId),
        }),
      );
    },
    resolve: (event) => {
      return statusChange(event as unknown as OutboxEvent);
    },
  }),
);

builder.subscriptionField('programStatsChanged', (t) =>
  t.field({
    type: ProgramStatsRef,
    description:
      'The program’s live counters after changes, at most one update per program per STATS_THROTTLE_MS (default 1 s), always the latest figures. ADMIN and READ_ONLY credentials.',
    authScopes: { reader: true },
    args: { programId: t.arg.id({ required: true }) },
    subscribe: (_root, args, ctx) =>
      endOnReturn(async function* (stop) {
        const programId = rowIdFrom(String(args.programId), 'Program');
        const program = programId
          ? await ctx.db.prisma.program.findUnique({ where: scopedKey(programId, ctx), select: { id: true } })
          : null;
        if (!program) throw new GraphQLError('Program not found.', { extensions: { code: 'NOT_FOUND' } });
        tenantOf(ctx);
        for await (const _ of throttle(
          filtered(ctx, [], (e) => e.programId === program.id, stop),
          ctx.config.statsThrottleMs,
        )) {
          yield { programId: program.id, window: { from: null, to: null } } satisfies ProgramStatsSource;
        }
      }),
    resolve: (source) => {
      return source as ProgramStatsSource;
    },
  }),
);
