import * as E from '../../generated/prisma/enums.js';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { globalId } from '../../lib/global-id.js';
import { NIL_UUID } from '../../lib/ids.js';
import { EnrollmentRef } from '../partner/enrollment.graphql.js';
import { PartnerRef } from '../partner/partner.graphql.js';
import { MAX_OVERRIDES } from '../program/rule-override.service.js';
import { overrideInputs, RuleOverrideInput } from '../program/rule-override.graphql.js';
import {
  createTier,
  DEFAULT_PERIOD_DAYS,
  deleteTier,
  MAX_TIERS,
  TIER_NAME_MAX,
  TIER_PERIOD_DAYS,
  TIER_THRESHOLD,
  updateTier,
} from './tier.service.js';

/** A PARTNER credential sees only the tier its partner is in (in any of its programs). */
const partnerTierScope = (ctx: Context) =>
  ctx.auth?.role === 'PARTNER' ? { enrollments: { some: { partnerId: ctx.auth.partnerId ?? NIL_UUID } } } : {};

export const TierMetricEnum = builder.enumType(E.TierMetric, {
  name: 'TierMetric',
  description:
    'What a tier counts over its trailing period: CONVERTED_REFERRALS (the partner’s referrals whose first payment was in the period), or REVENUE (what the partner’s referred customers paid in the period in the program’s currency, less refunds recorded in it; thresholds in whole units of that currency).',
});

export const TierRef = builder.prismaNode('Tier', {
  description:
    'A level of a program. A partner whose metric over the trailing `periodDays` reaches `threshold` is in the tier — the highest-threshold tier they reach — and its `overrides` change how the program’s rules pay them (below their enrollment’s own overrides). ' +
    'Evaluated on each conversion (up only) and daily (up and down). A program’s tiers share one metric. A PARTNER credential sees only the tier its partner is in.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => ({ ...scopedKey(id, ctx), ...partnerTierScope(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    program: t.relation('program', { description: 'The program the tier belongs to.' }),
    name: t.exposeString('name', {
      description: `For people, e.g. "Gold"; 1–${TIER_NAME_MAX} characters, unique in the program (ignoring case).`,
    }),
    metric: t.expose('metric', {
      type: TierMetricEnum,
      description: 'What the threshold counts (the same for every tier of the program).',
    }),
    threshold: t.exposeInt('threshold', {
      description:
        'The metric’s value over the period that reaches the tier: converted referrals, or revenue in whole units of the program’s currency (e.g. 5000 = 5000.00 USD). Unique in the program.',
    }),
    periodDays: t.exposeInt('periodDays', {
      description: 'The trailing period the metric is counted over, in days, ending now.',
    }),
    overrides: t.relation('overrides', {
      description: `How the program’s rules pay the tier’s partners instead of their own terms (at most ${MAX_OVERRIDES}, one per rule), oldest first. An enrollment’s own override of a rule wins over the tier’s.`,
      query: { orderBy: { id: 'asc' } },
    }),
  }),
});

builder.prismaObjectField('Program', 'tiers', (t) =>
  t.relation('tiers', {
    description: `The program’s tiers, lowest threshold first (at most ${MAX_TIERS}). A PARTNER credential sees only the tier its partner is in.`,
    query: (_args, ctx) => ({ where: partnerTierScope(ctx), orderBy: { threshold: 'asc' } }),
  }),
);

builder.prismaObjectField(EnrollmentRef, 'tier', (t) =>
  t.relation('tier', {
    nullable: true,
    description:
      'The partner’s tier in the program: the highest-threshold tier their metric reaches, as last evaluated (on their last conversion or the daily run); null: none.',
  }),
);

builder.prismaObjectField(PartnerRef, 'tier', (t) =>
  t.field({
    type: TierRef,
    nullable: true,
    description:
      'The partner’s tier in this program (see `Enrollment.tier`); null when none, or when the partner is not in the program.',
    args: { programId: t.arg.id({ required: true }) },
    select: (args, _ctx, nestedSelection) => ({
      enrollments: {
        where: { programId: rowIdFrom(String(args.programId), 'Program') ?? NIL_UUID },
        take: 1,
        select: { tier: nestedSelection(true) },
      },
    }),
    resolve: (partner) => partner.enrollments[0]?.tier ?? null,
  }),
);

const CreateTierInput = builder.inputType('CreateTierInput', {
  fields: (t) => ({
    programId: t.id({ required: true, description: 'A program that is not ARCHIVED.' }),
    name: t.string({
      required: true,
      description: `1–${TIER_NAME_MAX} characters, unique in the program (ignoring case).`,
    }),
    metric: t.field({
      type: TierMetricEnum,
      required: true,
      description: 'The same as the program’s other tiers (a program’s tiers share one metric).',
    }),
    threshold: t.int({
      required: true,
      description: `${TIER_THRESHOLD.min}–${TIER_THRESHOLD.max}: converted referrals, or revenue in whole units of the program’s currency; unique in the program.`,
    }),
    periodDays: t.int({
      defaultValue: DEFAULT_PERIOD_DAYS,
      description: `The trailing period, ${TIER_PERIOD_DAYS.min}–${TIER_PERIOD_DAYS.max} days (null: ${DEFAULT_PERIOD_DAYS}).`,
    }),
    overrides: t.field({
      type: [RuleOverrideInput],
      required: true,
      description: `How the program’s rules pay the tier’s partners (at most ${MAX_OVERRIDES}, one per rule); may be empty.`,
    }),
  }),
});

const UpdateTierInput = builder.inputType('UpdateTierInput', {
  description: 'Fields left out keep their values; null is refused (except for `overrides`: left as they are).',
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    metric: t.field({ type: TierMetricEnum, description: 'Only to the metric of the program’s other tiers.' }),
    threshold: t.int(),
    periodDays: t.int(),
    overrides: t.field({
      type: [RuleOverrideInput],
      description: `The whole new set (at most ${MAX_OVERRIDES}, one per rule); an empty list removes every override.`,
    }),
  }),
});

const DeleteTierInput = builder.inputType('DeleteTierInput', { fields: (t) => ({ id: t.id({ required: true }) }) });

const CreateTierPayload = payloadType<{ tierId: string }>('CreateTierPayload', 'The new tier.', (t) => ({
  tier: t.prismaField({
    type: TierRef,
    nullable: true,
    resolve: (query, p, _args, ctx) =>
      p.tierId ? ctx.db.prisma.tier.findUnique({ ...query, where: { id: p.tierId } }) : null,
  }),
}));

const UpdateTierPayload = payloadType<{ tierId: string }>('UpdateTierPayload', 'The tier as it is now.', (t) => ({
  tier: t.prismaField({
    type: TierRef,
    nullable: true,
    resolve: (query, p, _args, ctx) =>
      p.tierId ? ctx.db.prisma.tier.findUnique({ ...query, where: { id: p.tierId } }) : null,
  }),
}));

const DeleteTierPayload = payloadType<{ deletedTierId: string }>('DeleteTierPayload', 'The tier deleted.', (t) => ({
  deletedTierId: t.id({
    nullable: true,
    description: 'The global id of the deleted tier.',
    resolve: (p) => p.deletedTierId ?? null,
  }),
}));

builder.mutationFields((t) => ({
  createTier: t.field({
    type: CreateTierPayload,
    description:
      'Add a tier to a program. Its partners are evaluated at once: those who now reach it (and no higher tier) move to it, each with `tier.changed`. ' +
      'Refused: another metric than the program’s other tiers (VALIDATION), a name or threshold already used in the program (DUPLICATE), ' +
      `more than ${MAX_TIERS} tiers (LIMIT_EXCEEDED), an ARCHIVED program (INVALID_TRANSITION), bad overrides (at ["input","overrides",index,…], as setEnrollmentOverrides). ` +
      'Appends `tier.created`.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateTierInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const tier = await createTier(ctx.db.prisma, tenantOf(ctx), {
          programId: rowIdFrom(String(input.programId), 'Program'),
          name: input.name,
          metric: input.metric,
          threshold: input.threshold,
          periodDays: input.periodDays,
          overrides: overrideInputs(input.overrides),
        });
        return { tierId: tier.id };
      }),
  }),
  updateTier: t.field({
    type: UpdateTierPayload,
    description:
      'Change a tier; `overrides` replaces its whole set. A new metric, threshold or period re-evaluates the program’s partners at once (up and down, each move a `tier.changed`); ' +
      'a new name or overrides apply from the next conversion. Same refusals as createTier. Appends `tier.updated` (`changedFields`), nothing when nothing changes.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateTierInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const tier = await updateTier(ctx.db.prisma, tenantOf(ctx), {
          id: rowIdFrom(String(input.id), 'Tier'),
          name: input.name,
          metric: input.metric,
          threshold: input.threshold,
          periodDays: input.periodDays,
          overrides: input.overrides ? overrideInputs(input.overrides) : input.overrides,
        });
        return { tierId: tier.id };
      }),
  }),
  deleteTier: t.field({
    type: DeleteTierPayload,
    description:
      'Delete a tier and its overrides. Its partners move at once to the tier they reach without it, or none (each a `tier.changed`); rewards already created keep their amounts and explanations. Appends `tier.deleted`.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: DeleteTierInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const tier = await deleteTier(ctx.db.prisma, tenantOf(ctx), rowIdFrom(String(input.id), 'Tier'));
        return { deletedTierId: globalId('Tier', tier.id) };
      }),
  }),
}));
