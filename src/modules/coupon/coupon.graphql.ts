import { builder } from '../../graphql/builder.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { partnerFilter, rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { firstArgOptions, LIST_CAP, listComplexity, listTake } from '../../graphql/bounded-list.js';
import { normalizeCode, VANITY_CODE_MAX } from '../link/codes.js';
import { createCoupon, disableCoupon } from './coupon.service.js';

export const CouponRef = builder.prismaNode('Coupon', {
  description:
    'A checkout code of yours tied to a partner in a program: `recordConversion(couponCode)` attributes the conversion to that partner like a link code (and before a click or a code).',
  id: { field: 'id' },
  nullable: true,
  // A PARTNER credential sees only its own partner's coupons.
  findUnique: (id, ctx) => ({ ...scopedKey(id, ctx), ...partnerFilter(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    code: t.exposeString('code', {
      description: 'The code as created (case preserved); unique ignoring case per workspace and mode.',
    }),
    program: t.relation('program'),
    partner: t.relation('partner', { description: 'The partner credited for conversions with this coupon.' }),
    disabled: t.boolean({
      description:
        'A disabled coupon attributes nothing: conversions with it are recorded DISCARDED (COUPON_DISABLED).',
      resolve: (coupon) => coupon.disabledAt !== null,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.prismaObjectField('Partner', 'coupons', (t) =>
  t.relation('coupons', {
    description: `This partner’s coupons in every program, oldest first; disabled ones included. At most ${LIST_CAP} (\`first\`).`,
    args: { first: t.arg.int(firstArgOptions) },
    complexity: listComplexity,
    query: (args) => ({ orderBy: { id: 'asc' }, take: listTake(args.first) }),
  }),
);

builder.queryField('coupon', (t) =>
  t.prismaField({
    type: CouponRef,
    nullable: true,
    description:
      'A coupon of the caller’s workspace and mode by its code, ignoring case; disabled ones included. Null when there is none. A PARTNER credential finds only its own coupons.',
    authScopes: { authenticated: true },
    args: { code: t.arg.string({ required: true, description: 'The code, in any case.' }) },
    resolve: (query, _root, { code }, ctx) => {
      const selection = { ...query };
      const trimmed = code.trim();
      if (trimmed.length === 0 || trimmed.length > VANITY_CODE_MAX) return null;
      return ctx.db.prisma.coupon.findUnique({
        ...selection,
        where: {
          workspaceId_mode_codeNormalized: { ...tenantOf(ctx), codeNormalized: normalizeCode(trimmed) },
          ...partnerFilter(ctx),
        },
      });
    },
  }),
);

const couponPayload = (name: string, description: string) =>
  payloadType<{ couponId: string }>(name, description, (t) => ({
    coupon: t.prismaField({
      type: CouponRef,
      nullable: true,
      resolve: (query, p, _args, ctx) => {
        const selection = { ...query };
        return p.couponId ? ctx.db.prisma.coupon.findUnique({ ...selection, where: { id: p.couponId } }) : null;
      },
    }),
  }));

const CreateCouponInput = builder.inputType('CreateCouponInput', {
  description: 'Which partner (exactly one of `partnerId` or `partnerExternalId`), the program, and the code.',
  fields: (t) => ({
    ...partnerKeyFields(t, 'The partner'),
    programId: t.id({ required: true, description: 'A program the partner has an APPROVED enrollment in.' }),
    code: t.string({
      required: true,
      description: '3–32 characters of A–Z, a–z, 0–9, _ and -; unique ignoring case in the workspace and mode.',
    }),
  }),
});

const CreateCouponPayload = couponPayload('CreateCouponPayload', 'The new coupon.');

builder.mutationField('createCoupon', (t) =>
  t.field({
    type: CreateCouponPayload,
    description:
      'Tie a checkout code of yours to a partner in a program. A taken code is DUPLICATE (ignoring case); the partner must have an APPROVED enrollment and not be BANNED, the program not ARCHIVED. Appends `coupon.created`.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateCouponInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const coupon = await createCoupon(ctx.db.prisma, tenantOf(ctx), {
          ...partnerKeyFrom(input),
          programId: rowIdFrom(String(input.programId), 'Program'),
          code: input.code,
        });
        return { couponId: coupon.id };
      }),
  }),
);

const DisableCouponInput = builder.inputType('DisableCouponInput', {
  fields: (t) => ({ id: t.id({ required: true, description: 'The coupon’s global id.' }) }),
});

const DisableCouponPayload = couponPayload('DisableCouponPayload', 'The disabled coupon.');

builder.mutationField('disableCoupon', (t) =>
  t.field({
    type: DisableCouponPayload,
    description:
      'Stop a coupon attributing: later conversions with it are recorded DISCARDED (COUPON_DISABLED). Disabling twice is harmless. Appends `coupon.disabled`.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: DisableCouponInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const coupon = await disableCoupon(ctx.db.prisma, tenantOf(ctx), rowIdFrom(String(input.id), 'Coupon'));
        return { couponId: coupon.id };
      }),
  }),
);
