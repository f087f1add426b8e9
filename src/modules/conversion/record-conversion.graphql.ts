import type { Conversion, Reward } from '../../generated/prisma/client.js';
import { builder } from '../../graphql/builder.js';
import { ConversionTypeEnum } from '../../graphql/enums.js';
import { MoneyInputRef } from '../../graphql/money.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { decodeClickId } from '../click/click-id.js';
import { RewardRef } from '../reward/reward.graphql.js';
import { ConversionRef } from './conversion.graphql.js';
import {
  INVALID_ID,
  recordConversion,
  type RecordConversionInput as ServiceInput,
  type RecordConversionOptions,
  USER_AGENT_MAX,
} from './record.service.js';
import type { Context } from '../../context.js';

export const RecordConversionInput = builder.inputType('RecordConversionInput', {
  description:
    'An event from the company’s backend. Attribution: a person already referred in the program stays with the partner who brought them first (FIRST_TOUCH, the default), or moves to another partner whose coupon, click or code this conversion carries (a program with attributionModel LAST_TOUCH). Otherwise, in order: `couponCode`, then `clickId`, then `code`.',
  fields: (t) => ({
    type: t.field({
      type: ConversionTypeEnum,
      required: true,
      description: 'SIGNUP, PURCHASE or SUBSCRIPTION (a payment of one). Refunds go through refundConversion.',
    }),
    idempotencyKey: t.string({
      required: true,
      description:
        '1–255 characters, unique per workspace and mode (e.g. your event or order id). Sending it again — even concurrently — records nothing new and returns the first result.',
    }),
    referredExternalId: t.string({
      required: true,
      description: 'The referred user’s id in your product (1–255 characters).',
    }),
    referredEmail: t.string({
      description: 'The referred user’s email; used to detect self-referrals (compared ignoring case).',
    }),
    programId: t.id({
      description:
        'The program the event belongs to. Optional: taken from the click or code, or from the person’s referral. When given, a click or code of another program does not attribute (PROGRAM_MISMATCH).',
    }),
    code: t.string({ description: 'A referral code the person arrived with or entered (case-insensitive).' }),
    clickId: t.string({
      description: 'The `clickId` from trackClick, or the `rg_click` parameter the redirect added.',
    }),
    amount: t.field({
      type: MoneyInputRef,
      description: 'What was paid: required for PURCHASE and SUBSCRIPTION, optional for SIGNUP. Never negative.',
    }),
    couponCode: t.string({
      description:
        'A coupon code used at your checkout (createCoupon): attributes the conversion to the coupon’s partner like a link code. Precedence when several are given: couponCode, then clickId, then code — a coupon wins over a click.',
    }),
    productId: t.string({
      description:
        'Your product id (≤ 255 characters): rules limited to products (`RewardRule.productIds`) reward only conversions of theirs; rules without products reward every conversion.',
    }),
    metadata: t.field({
      type: 'JSON',
      description:
        'Your own fields for this conversion: a JSON object of at most 50 top-level keys and 8 KiB (VALIDATION otherwise), e.g. { "plan": "pro" }. ' +
        'A referral this conversion creates starts with the same metadata. `conversions(filter: { metadata })` finds it by containment.',
    }),
    occurredAt: t.field({
      type: 'DateTime',
      description:
        'When it happened in your product; defaults to now. Not before 2000-01-01T00:00:00Z and at most 5 minutes in the future (VALIDATION otherwise).',
    }),
    ip: t.string({
      description:
        'The referred person’s IPv4 or IPv6 address, as your server saw it (anything else is a VALIDATION error). Only a keyed hash of it is stored, never the address: ' +
        'the program’s `fraudRules.sameIpAsPartner` compares it with the partner’s own signup, and a partner’s own signup recorded with an IP is what it is compared with.',
    }),
    userAgent: t.string({
      description: `The referred person’s User-Agent. Longer than ${USER_AGENT_MAX} characters: truncated.`,
    }),
  }),
});

/** What the mutation resolves to; `recorded` (rows just written, or read with a used key) answers the payload without reading them again. */
type RecordConversionResult = {
  conversionId: string;
  replayed: boolean;
  recorded?: { row: Conversion; rewards: Reward[] };
};

const RecordConversionPayload = payloadType<RecordConversionResult>(
  'RecordConversionPayload',
  'The recorded conversion (ACCEPTED, or DISCARDED with a `discardReason`) and the rewards it earned. A replay of an idempotency key returns the first call’s conversion and rewards.',
  (t) => ({
    conversion: t.prismaField({
      type: ConversionRef,
      nullable: true,
      description: 'Null only when the input was refused (see userErrors).',
      resolve: (query, p, _args, ctx) => {
        const selection = { ...query }; // read on refusal too: plugin-prisma reports unread queries
        // Just recorded: every column is at hand (relations asked for are loaded by plugin-prisma).
        if (p.recorded) return p.recorded.row;
        return p.conversionId
          ? ctx.db.prisma.conversion.findUnique({ ...selection, where: { id: p.conversionId, ...tenantOf(ctx) } })
          : null;
      },
    }),
    rewards: t.prismaField({
      type: [RewardRef],
      description:
        'The rewards the conversion earned (their current state), oldest first; empty when discarded or when no rule applied.',
      resolve: (query, p, _args, ctx) => {
        const selection = { ...query };
        // Created by this call (in id order, none changed since), or read with the key for a replay.
        if (p.recorded) return p.recorded.rewards;
        return p.conversionId
          ? ctx.db.prisma.reward.findMany({
              ...selection,
              where: { conversionId: p.conversionId, ...tenantOf(ctx), sourceRewardId: null },
              orderBy: { id: 'asc' },
            })
          : [];
      },
    }),
    replayed: t.boolean({
      description:
        'True when the idempotency key had already been used: the first call’s result is returned and nothing new was recorded.',
      resolve: (p) => p.replayed ?? false,
    }),
  }),
);

builder.mutationField('recordConversion', (t) =>
  t.field({
    type: RecordConversionPayload,
    description:
      'Record a signup, purchase or subscription payment exactly once per idempotency key: attribute it to a partner, update the referral, and create the rewards of the program’s rules. A conversion that cannot be attributed or rewarded is still stored, DISCARDED with a machine-readable `discardReason` (NO_ATTRIBUTION, UNKNOWN_CLICK, UNKNOWN_CODE, CLICK_DISCARDED, LINK_DISABLED, PARTNER_INACTIVE, PARTNER_BANNED, PROGRAM_NOT_ACTIVE, ENROLLMENT_NOT_APPROVED, ATTRIBUTION_WINDOW_EXPIRED, SELF_REFERRAL, PROGRAM_MISMATCH, REFERRAL_REJECTED). ' +
      'An accepted conversion that trips one of its program’s `fraudRules` is recorded all the same, with its `signals`, and its rewards wait in a review item (`Conversion.reviewItem`, `reviewQueue`) instead of being approved when the hold period ends; `review.opened` is appended.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RecordConversionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const recorded = await recordConversion(ctx.db, tenantOf(ctx), ...recordArgs(input, ctx));
        return {
          conversionId: recorded.conversionId,
          replayed: recorded.replayed,
          recorded: recorded.row ? { row: recorded.row, rewards: recorded.rewards } : undefined,
        };
      }),
  }),
);

/** The service's input and options for a RecordConversionInput (recordConversion and simulateConversion). */
export function recordArgs(
  input: typeof RecordConversionInput.$inferInput,
  ctx: Context,
): [ServiceInput, RecordConversionOptions] {
  const programId = input.programId == null ? null : (rowIdFrom(String(input.programId), 'Program') ?? INVALID_ID);
  return [
    {
      type: input.type,
      idempotencyKey: input.idempotencyKey,
      referredExternalId: input.referredExternalId,
      referredEmail: input.referredEmail,
      programId,
      code: input.code,
      clickId: input.clickId,
      amount: input.amount,
      occurredAt: input.occurredAt,
      metadata: input.metadata,
      productId: input.productId,
      couponCode: input.couponCode,
      ip: input.ip,
      userAgent: input.userAgent,
    },
    {
      actor: ctx.auth?.apiKeyId ?? 'system:recordConversion',
      decodeClick: (token) => decodeClickId(token, ctx.clicks.codec),
      hashIp: (ip) => ctx.clicks.hashIp(ip),
    },
  ];
}
