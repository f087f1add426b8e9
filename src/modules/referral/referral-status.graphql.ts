import { builder } from '../../graphql/builder.js';
import { ReferralStatusEnum } from '../../graphql/enums.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { ReferralRef } from './referral.graphql.js';
import { REFERRAL_REASON_MAX, setReferralStatus } from './referral-status.service.js';

const SetReferralStatusInput = builder.inputType('SetReferralStatusInput', {
  description: 'Reject a referral, or reinstate a rejected one.',
  fields: (t) => ({
    referralId: t.id({ required: true, description: 'The referral’s global id.' }),
    status: t.field({
      type: ReferralStatusEnum,
      required: true,
      description:
        'REJECTED (from PENDING or CONVERTED), or, for a REJECTED referral, the status it is reinstated to: PENDING if it has never paid, CONVERTED if it paid before it was rejected.',
    }),
    reason: t.string({
      description: `Why, at most ${REFERRAL_REASON_MAX} characters after trimming; kept in the \`referral.status_changed\` event (which the referral’s partner can read too).`,
    }),
  }),
});

const SetReferralStatusPayload = payloadType<{ referralId: string }>(
  'SetReferralStatusPayload',
  'The referral in its status after the call; null when the call was refused.',
  (t) => ({
    referral: t.prismaField({
      type: ReferralRef,
      nullable: true,
      resolve: (query, p, _args, ctx) => {
        // Spread before the null check: a refused mutation has no referral, and that is not an unused query.
        const selection = { ...query };
        return p.referralId
          ? ctx.db.prisma.referral.findUnique({ ...selection, where: { id: p.referralId, ...tenantOf(ctx) } })
          : null;
      },
    }),
  }),
);

builder.mutationField('setReferralStatus', (t) =>
  t.field({
    type: SetReferralStatusPayload,
    description:
      'Reject a referral (PENDING or CONVERTED → REJECTED: its later conversions are DISCARDED with REFERRAL_REJECTED), or reinstate a REJECTED one ' +
      '(→ PENDING, or → CONVERTED if it had paid before it was rejected: it earns again from its next conversion on; conversions discarded meanwhile stay discarded and earn nothing). ' +
      'Rewards already created are left as they are (use updateRewardStatus for them). A reinstated referral still passes the program’s checks on each conversion: ' +
      'a self-referral is rejected again by its next conversion unless the program now allows self-referrals. ' +
      'Asking the status the referral already has changes nothing (no event). Any other change (PENDING ↔ CONVERTED, which payments decide) is INVALID_TRANSITION naming the referral, its status and the one asked; ' +
      'an unknown id, or one of another workspace or mode, is NOT_FOUND. Appends `referral.status_changed` with from, to and the reason.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SetReferralStatusInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const given = String(input.referralId);
        const { referralId } = await setReferralStatus(ctx.db.prisma, tenantOf(ctx), {
          referralId: rowIdFrom(given, 'Referral'),
          given,
          status: input.status,
          reason: input.reason,
        });
        return { referralId };
      }),
  }),
);
