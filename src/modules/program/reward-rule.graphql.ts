import { encodeGlobalID } from '@pothos/plugin-relay';
import { builder } from '../../graphql/builder.js';
import { AmountTypeEnum, RewardKindEnum, RewardRecipientEnum, RewardTriggerEnum } from '../../graphql/enums.js';
import { MoneyInputRef, MoneyRef } from '../../graphql/money.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { NIL_UUID } from '../../lib/ids.js';
import { archiveRewardRule, createRewardRule, updateRewardRule } from './reward-rule.service.js';
import { firstArgOptions, LIST_CAP, listComplexity, listTake } from '../../graphql/bounded-list.js';

export const RewardRuleRef = builder.prismaNode('RewardRule', {
  description:
    'One version of a rule that turns conversions into rewards. Editing a rule creates its next version; rewards keep the version that produced them. A PARTNER credential sees the rules of the programs its partner is enrolled in.',
  id: { field: 'id' },
  // A node outside the caller's scope is null, never an error.
  nullable: true,
  findUnique: (id, ctx) => ({
    ...scopedKey(id, ctx),
    ...(ctx.auth?.role === 'PARTNER'
      ? { program: { enrollments: { some: { partnerId: ctx.auth.partnerId ?? NIL_UUID } } } }
      : {}),
  }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    ruleId: t.id({
      description:
        'The rule’s stable id across versions: the global id of its first version. Any version’s id is accepted by updateRewardRule and archiveRewardRule.',
      resolve: (rule) => encodeGlobalID('RewardRule', rule.lineageId),
    }),
    version: t.exposeInt('version', { description: '1 for the rule as created, + 1 for each edit.' }),
    current: t.boolean({
      description:
        'Whether this is the rule’s newest version (the one that produces rewards). Older versions are kept for the rewards they produced.',
      resolve: (rule) => rule.supersededAt === null,
    }),
    program: t.relation('program', { description: 'The program the rule belongs to.' }),
    trigger: t.expose('trigger', {
      type: RewardTriggerEnum,
      description: 'The conversion type that produces a reward.',
    }),
    recipient: t.expose('recipient', {
      type: RewardRecipientEnum,
      description: 'Who receives the reward: the partner, or the referred customer.',
    }),
    kind: t.expose('kind', { type: RewardKindEnum, description: 'What the reward is paid as.' }),
    amountType: t.expose('amountType', {
      type: AmountTypeEnum,
      description: 'FIXED uses `fixedAmount`; PERCENTAGE uses `percentageBasisPoints`.',
    }),
    fixedAmount: t.field({
      type: MoneyRef,
      nullable: true,
      description:
        'The reward of a FIXED rule, paid as is in its own currency for every conversion the rule rewards, whatever the conversion’s currency (or none, for a signup): amounts are never converted between currencies. Its currency may differ from the program’s.',
      resolve: (rule) =>
        rule.fixedAmount !== null && rule.fixedCurrency
          ? { amount: rule.fixedAmount, currency: rule.fixedCurrency }
          : null,
    }),
    percentageBasisPoints: t.exposeInt('percentageBasisPoints', {
      nullable: true,
      description:
        'The reward of a PERCENTAGE rule in basis points of the conversion amount (1–10000; 100 = 1 %), in the conversion’s currency. A conversion without an amount gets nothing from it.',
    }),
    maxRewardsPerReferral: t.exposeInt('maxRewardsPerReferral', {
      nullable: true,
      description:
        'At most this many rewards per referred customer (e.g. the first 12 subscription payments); null: no limit.',
    }),
    durationDays: t.exposeInt('durationDays', {
      nullable: true,
      description: 'Rewards only within this many days of the referral; null: no limit.',
    }),
    capPerReferral: t.field({
      type: MoneyRef,
      nullable: true,
      description:
        'At most this much in total per referred customer (net of clawbacks, over every version of the rule); null: no cap. A cap is in one currency and amounts are never converted, so a capped rule rewards only in its cap’s currency. For a FIXED rule the cap is in the currency of `fixedAmount`, so it always applies. For a PERCENTAGE rule, a conversion in another currency than the cap’s gets no reward from the rule — never an uncapped one — and lists the rule in its `skippedRules` as CAP_CURRENCY_MISMATCH; to reward several currencies under caps, make one rule per currency, each capped in its own.',
      resolve: (rule) =>
        rule.capAmount !== null && rule.capCurrency ? { amount: rule.capAmount, currency: rule.capCurrency } : null,
    }),
    productIds: t.stringList({
      nullable: true,
      description:
        'The products of yours this rule rewards: only conversions recorded with one of them (`recordConversion(productId)`); others list the rule in `skippedRules` as PRODUCT_MISMATCH. Null: every product.',
      resolve: (rule) => (rule.productIds.length ? rule.productIds : null),
    }),
    rewardCurrency: t.string({
      nullable: true,
      description:
        'The only currency this rule rewards in: the currency of `fixedAmount` for a FIXED rule, of `capPerReferral` for a capped PERCENTAGE rule (conversions in other currencies get nothing from it, see `capPerReferral`); null for a PERCENTAGE rule without cap, whose rewards are in each conversion’s currency.',
      resolve: (rule) => (rule.amountType === 'FIXED' ? rule.fixedCurrency : rule.capCurrency),
    }),
    archived: t.boolean({
      description: 'Whether this version was archived: an archived rule produces no rewards and cannot be edited.',
      resolve: (rule) => rule.archivedAt !== null,
    }),
    archivedAt: t.expose('archivedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When this version was archived.',
    }),
    supersededAt: t.expose('supersededAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When a newer version replaced this one.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When this version was created.' }),
  }),
});

builder.prismaObjectField('Program', 'rewardRules', (t) =>
  t.relation('rewardRules', {
    description: `The current version of each of the program’s reward rules, in the order the rules were created; at most ${LIST_CAP} (\`first\`).`,
    args: {
      includeArchived: t.arg.boolean({ defaultValue: false, description: 'Also list archived rules.' }),
      first: t.arg.int(firstArgOptions),
    },
    complexity: listComplexity,
    query: (args) => ({
      where: { supersededAt: null, ...(args.includeArchived ? {} : { archivedAt: null }) },
      orderBy: { lineageId: 'asc' },
      take: listTake(args.first),
    }),
  }),
);

const CreateRewardRuleInput = builder.inputType('CreateRewardRuleInput', {
  description:
    'A new reward rule. FIXED rules need `fixedAmount`, PERCENTAGE rules `percentageBasisPoints`; the limits are optional.',
  fields: (t) => ({
    programId: t.id({ required: true, description: 'A program that is not ARCHIVED.' }),
    trigger: t.field({
      type: RewardTriggerEnum,
      required: true,
      description: 'The conversion type that produces a reward.',
    }),
    recipient: t.field({
      type: RewardRecipientEnum,
      defaultValue: 'REFERRER',
      description: 'Default REFERRER (the partner).',
    }),
    kind: t.field({ type: RewardKindEnum, required: true, description: 'What the reward is paid as.' }),
    amountType: t.field({
      type: AmountTypeEnum,
      required: true,
      description: 'FIXED (`fixedAmount`) or PERCENTAGE (`percentageBasisPoints`); cannot change later.',
    }),
    fixedAmount: t.field({
      type: MoneyInputRef,
      description: 'FIXED only: greater than zero, in any known currency, with no more decimals than the currency has.',
    }),
    percentageBasisPoints: t.int({ description: 'PERCENTAGE only: 1–10000 (100 = 1 %).' }),
    maxRewardsPerReferral: t.int({ description: '1–1000 rewards per referred customer; omit for no limit.' }),
    durationDays: t.int({ description: '1–3650 days from the referral; omit for no limit.' }),
    capPerReferral: t.field({
      type: MoneyInputRef,
      description:
        'Greater than zero; for a FIXED rule in the currency of `fixedAmount`. A capped PERCENTAGE rule rewards only conversions in the cap’s currency (see `RewardRule.capPerReferral`). Omit for no cap.',
    }),
    productIds: t.stringList({
      description:
        'Limit the rule to these products of yours (at most 100 ids, each ≤ 255 characters): it rewards only conversions recorded with one of them (`recordConversion(productId)`). Omit or [] for every product.',
    }),
  }),
});

const UpdateRewardRuleInput = builder.inputType('UpdateRewardRuleInput', {
  description:
    'An edit of a rule’s terms. Omitted fields keep their values; null clears an optional limit (`maxRewardsPerReferral`, `durationDays`, `capPerReferral`). Trigger, recipient, kind and amount type cannot change: create a new rule instead.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The global id of any version of the rule (or its `ruleId`).' }),
    fixedAmount: t.field({ type: MoneyInputRef, description: 'FIXED rules only.' }),
    percentageBasisPoints: t.int({ description: 'PERCENTAGE rules only: 1–10000.' }),
    maxRewardsPerReferral: t.int({ description: '1–1000; null: no limit.' }),
    durationDays: t.int({ description: '1–3650; null: no limit.' }),
    capPerReferral: t.field({
      type: MoneyInputRef,
      description:
        'Greater than zero; for a FIXED rule in the currency of `fixedAmount`; null: no cap. A capped PERCENTAGE rule rewards only conversions in the cap’s currency (see `RewardRule.capPerReferral`).',
    }),
    productIds: t.stringList({
      description: 'The products the rule rewards from the next version on; null or []: every product.',
    }),
  }),
});

const ArchiveRewardRuleInput = builder.inputType('ArchiveRewardRuleInput', {
  description: 'The rule to archive.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The global id of any version of the rule (or its `ruleId`).' }),
  }),
});

const rewardRulePayload = (name: string, description: string) =>
  payloadType<{ rewardRuleId: string }>(name, description, (t) => ({
    rewardRule: t.prismaField({
      type: RewardRuleRef,
      nullable: true,
      description: 'The rule version; null when the mutation was refused.',
      resolve: (query, p, _args, ctx) => {
        // Spread before the null check: a refused mutation has no rule, and that is not an unused query.
        const selection = { ...query };
        return p.rewardRuleId
          ? ctx.db.prisma.rewardRule.findUnique({ ...selection, where: scopedKey(p.rewardRuleId, ctx) })
          : null;
      },
    }),
  }));

const CreateRewardRulePayload = rewardRulePayload(
  'CreateRewardRulePayload',
  'The new rule (version 1), or why it was refused.',
);
const UpdateRewardRulePayload = rewardRulePayload(
  'UpdateRewardRulePayload',
  'The rule’s new current version (unchanged when the edit changed nothing), or why the edit was refused.',
);
const ArchiveRewardRulePayload = rewardRulePayload('ArchiveRewardRulePayload', 'The rule’s archived current version.');

builder.mutationField('createRewardRule', (t) =>
  t.field({
    type: CreateRewardRulePayload,
    description: 'Add a reward rule to a program that is not ARCHIVED.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateRewardRuleInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const { programId, ...rule } = input;
        const created = await createRewardRule(
          ctx.db.prisma,
          tenantOf(ctx),
          rowIdFrom(String(programId), 'Program'),
          rule,
        );
        return { rewardRuleId: created.id };
      }),
  }),
);

builder.mutationField('updateRewardRule', (t) =>
  t.field({
    type: UpdateRewardRulePayload,
    description:
      'Edit a rule’s terms: creates the next version (rewards already produced keep theirs). Refused with INVALID_TRANSITION for an archived rule or a rule of an ARCHIVED program.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateRewardRuleInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const { id, ...terms } = input;
        const rule = await updateRewardRule(ctx.db.prisma, tenantOf(ctx), rowIdFrom(String(id), 'RewardRule'), terms);
        return { rewardRuleId: rule.id };
      }),
  }),
);

builder.mutationField('archiveRewardRule', (t) =>
  t.field({
    type: ArchiveRewardRulePayload,
    description:
      'Archive a rule: it stops producing rewards and is hidden from `Program.rewardRules` by default. Archiving twice is harmless.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: ArchiveRewardRuleInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const rule = await archiveRewardRule(ctx.db.prisma, tenantOf(ctx), rowIdFrom(String(input.id), 'RewardRule'));
        return { rewardRuleId: rule.id };
      }),
  }),
);
