import { builder } from '../../graphql/builder.js';
import { RewardStatusEnum } from '../../graphql/enums.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { MAX_STATUS_UPDATE_IDS, REASON_MAX, updateRewardStatuses } from './lifecycle.js';

const UpdateRewardStatusInput = builder.inputType('UpdateRewardStatusInput', {
  description: 'Rewards to move to one status, all or none.',
  fields: (t) => ({
    ids: t.idList({
      required: true,
      description: `Global ids of the rewards, at most ${MAX_STATUS_UPDATE_IDS}. Repeats count once.`,
    }),
    status: t.field({
      type: RewardStatusEnum,
      required: true,
      description:
        'The status asked: APPROVED (from CREATED), PROCESSED (from APPROVED, paid outside a payout), CANCELED or REJECTED (from CREATED or APPROVED).',
    }),
    reason: t.string({ description: `Why, kept in each reward’s status history (at most ${REASON_MAX} characters).` }),
  }),
});

const UpdateRewardStatusPayload = payloadType<{ rewardIds: string[] }>(
  'UpdateRewardStatusPayload',
  'The rewards asked for, in their new status; empty when anything was refused.',
  (t) => ({
    rewards: t.prismaField({
      type: ['Reward'],
      description:
        'Every reward named, in the order asked (repeats once), in its status after the call; empty when the call was refused.',
      resolve: async (query, p, _args, ctx) => {
        // Spread before the empty check: a refused mutation has no rewards, and that is not an unused query.
        const selection = { ...query };
        const ids = p.rewardIds ?? [];
        if (ids.length === 0) return [];
        const rows = await ctx.db.prisma.reward.findMany({
          ...selection,
          where: { id: { in: ids }, ...tenantOf(ctx) },
        });
        const byId = new Map(rows.map((r) => [r.id, r]));
        return ids.flatMap((id) => byId.get(id) ?? []);
      },
    }),
  }),
);

builder.mutationField('updateRewardStatus', (t) =>
  t.field({
    type: UpdateRewardStatusPayload,
    description:
      'Move rewards along their lifecycle (CREATED → APPROVED → PROCESSED; CREATED/APPROVED → CANCELED | REJECTED), all or none. ' +
      'Each refused id gets a userError with field ["input", "ids", index]: NOT_FOUND, or INVALID_TRANSITION naming the reward, its status and the one asked ' +
      '(also for a reward inside a payout, which moves with its payout, and for a refund’s negative reward, which follows the reward it adjusts); then nothing changes. ' +
      `A reward already in the status asked is left as it is, so retrying is safe. More than ${MAX_STATUS_UPDATE_IDS} ids: LIMIT_EXCEEDED. ` +
      'Every change is kept in the reward’s status history and moves the partner’s ledger (approval makes money available; canceling, rejecting or processing an approved reward takes it out).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateRewardStatusInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const rewardIds = await updateRewardStatuses(ctx.db.prisma, tenantOf(ctx), {
          ids: input.ids.map((id) => ({ given: String(id), rowId: rowIdFrom(String(id), 'Reward') })),
          status: input.status,
          reason: input.reason,
          actor: ctx.auth?.apiKeyId ?? null,
        });
        return { rewardIds };
      }),
  }),
);
