import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import type { Context } from '../../context.js';
import type { EnrollmentStatus } from '../../generated/prisma/enums.js';
import { builder } from '../../graphql/builder.js';
import { loader } from '../../graphql/loaders.js';
import { MoneyRef } from '../../graphql/money.js';
import { partnerFilter, tenantOf } from '../../graphql/scope.js';
import { filterId } from '../reward/reward.graphql.js';
import {
  moneyList,
  NO_CLICKS,
  partnerClicksByLink,
  partnerReferralCounts,
  partnerRewardTotals,
  programClickCounts,
  programConversionFigures,
  programEnrollmentCounts,
  programReferralCounts,
  programRewardSums,
  type PartnerClicks,
  type PartnerReferralCounts,
  type RewardSums,
} from './stats.service.js';
import type { StatsScope, TimeWindow } from './scope.js';

/** The caller's tenant, narrowed to its own partner for a PARTNER credential. */
export function statsScope(ctx: Context): StatsScope {
  return { ...tenantOf(ctx), partnerId: partnerFilter(ctx).partnerId ?? null };
}

/**
 * The request's loader for one kind of figure with one set of arguments: every parent asking
 * for it in this request is answered by a single GROUP BY over all their ids.
 */
export function figureLoader<V>(
  ctx: Context,
  name: string,
  fetch: (scope: StatsScope, ids: readonly string[]) => Promise<Map<string, V>>,
) {
  return loader<string, V>(ctx, `stats:${name}`, async (ids) => {
    const figures = await fetch(statsScope(ctx), ids);
    return ids.map((id) => figures.get(id) as V);
  });
}

const selections = new WeakMap<FieldNode, ReadonlySet<string>>();

/**
 * The names of the fields selected under this field (fragments followed; @skip/@include are not
 * evaluated, so a skipped field counts as selected: loading one figure too many is harmless).
 * Remembered per node of the (cached, parsed) query document, so a page of 100 partners, and the
 * next request with the same query, work it out once.
 */
export function selectedFields(info: GraphQLResolveInfo): ReadonlySet<string> {
  // Several nodes: the same field selected more than once in the document, merged; not cached.
  const key = info.fieldNodes.length === 1 ? info.fieldNodes[0]! : null;
  let names = key ? selections.get(key) : undefined;
  if (!names) {
    const found = new Set<string>();
    const visit = (set: SelectionSetNode | undefined): void => {
      for (const selection of set?.selections ?? []) {
        if (selection.kind === Kind.FIELD) found.add(selection.name.value);
        else if (selection.kind === Kind.INLINE_FRAGMENT) visit(selection.selectionSet);
        else visit(info.fragments[selection.name.value]?.selectionSet);
      }
    };
    for (const node of info.fieldNodes) visit(node.selectionSet);
    names = found;
    if (key) selections.set(key, names);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Program.stats
// ---------------------------------------------------------------------------------------------

/** A program's figures over a window; every field is loaded on demand, batched across programs. */
export interface ProgramStatsSource {
  programId: string;
  window: TimeWindow;
}

const windowKey = (w: TimeWindow) => `${w.from?.toISOString() ?? ''}..${w.to?.toISOString() ?? ''}`;

/** Program figures over all time (the enrollments' `totalCount` shares its statement with `ProgramStats.partners`). */
const ALL_TIME: TimeWindow = { from: null, to: null };

/**
 * `Program.enrollments(status:).totalCount`: from the program figures' enrollment counts, so a
 * dashboard asking for `stats { partners }` too counts enrollments once, and the programs query
 * carries no count of its own (Prisma's `_count` grouped every enrollment in the database).
 */
export async function programEnrollmentTotal(
  ctx: Context,
  programId: string,
  status: EnrollmentStatus | null | undefined,
): Promise<number> {
  const counts = await programFigures.enrollments(ctx, { programId, window: ALL_TIME });
  return status ? counts.byStatus[status] : counts.partners;
}

const programFigures = {
  enrollments: (ctx: Context, s: ProgramStatsSource) =>
    figureLoader(ctx, `program.enrollments:${windowKey(s.window)}`, (scope, ids) =>
      programEnrollmentCounts(ctx.db, scope, ids, s.window),
    ).load(s.programId),
  clicks: (ctx: Context, s: ProgramStatsSource) =>
    figureLoader(ctx, `program.clicks:${windowKey(s.window)}`, (scope, ids) =>
      programClickCounts(ctx.db, scope, ids, s.window),
    ).load(s.programId),
  referrals: (ctx: Context, s: ProgramStatsSource) =>
    figureLoader(ctx, `program.referrals:${windowKey(s.window)}`, (scope, ids) =>
      programReferralCounts(ctx.db, scope, ids, s.window),
    ).load(s.programId),
  conversions: (ctx: Context, s: ProgramStatsSource) =>
    figureLoader(ctx, `program.conversions:${windowKey(s.window)}`, (scope, ids) =>
      programConversionFigures(ctx.db, scope, ids, s.window),
    ).load(s.programId),
  rewards: (ctx: Context, s: ProgramStatsSource) =>
    figureLoader(ctx, `program.rewards:${windowKey(s.window)}`, (scope, ids) =>
      programRewardSums(ctx.db, scope, ids, s.window),
    ).load(s.programId),
};

export const RewardTotalsRef = builder.objectRef<RewardSums>('RewardTotals').implement({
  description: 'Sums of rewards per status, each a list of amounts per currency (sorted by currency).',
  fields: (t) => ({
    created: t.field({
      type: [MoneyRef],
      description: 'Waiting for the hold period or an approval.',
      resolve: (s) => moneyList(s.CREATED),
    }),
    approved: t.field({
      type: [MoneyRef],
      description: 'Approved, not yet paid out.',
      resolve: (s) => moneyList(s.APPROVED),
    }),
    processed: t.field({
      type: [MoneyRef],
      description: 'Paid out or marked processed.',
      resolve: (s) => moneyList(s.PROCESSED),
    }),
    canceled: t.field({ type: [MoneyRef], resolve: (s) => moneyList(s.CANCELED) }),
    rejected: t.field({ type: [MoneyRef], resolve: (s) => moneyList(s.REJECTED) }),
  }),
});

export const ProgramStatsRef = builder.objectRef<ProgramStatsSource>('ProgramStats').implement({
  description:
    'A program’s counters, computed live by the database. With a window, each figure counts what happened in it: enrollments by when they were created, clicks and conversions by when they occurred, referrals by sign-up, converted referrals by when they converted, rewards by when they were created.',
  fields: (t) => ({
    partners: t.int({
      description: 'Partners enrolled in the program, whatever the enrollment’s status.',
      resolve: async (s, _args, ctx) => (await programFigures.enrollments(ctx, s)).partners,
    }),
    activePartners: t.int({
      description: 'Partners with an APPROVED enrollment whose partner status is ACTIVE.',
      resolve: async (s, _args, ctx) => (await programFigures.enrollments(ctx, s)).activePartners,
    }),
    clicks: t.int({
      description:
        'Unique clicks on the program’s links: one visitor (IP and user agent) counts once per link per UTC hour; bots’ and other discarded clicks are not counted. The sum of its links’ `uniqueClicks`.',
      resolve: (s, _args, ctx) => programFigures.clicks(ctx, s),
    }),
    referrals: t.int({
      description: 'Referred people, whatever their status.',
      resolve: async (s, _args, ctx) => (await programFigures.referrals(ctx, s)).referrals,
    }),
    convertedReferrals: t.int({
      description: 'Referred people who paid at least once (CONVERTED).',
      resolve: async (s, _args, ctx) => (await programFigures.referrals(ctx, s)).convertedReferrals,
    }),
    conversions: t.int({
      description: 'ACCEPTED conversions other than refunds (signups, purchases, subscription payments).',
      resolve: async (s, _args, ctx) => (await programFigures.conversions(ctx, s)).conversions,
    }),
    revenue: t.field({
      type: [MoneyRef],
      description:
        'Per currency, the amounts of ACCEPTED purchases and subscription payments (refunds are not subtracted).',
      resolve: async (s, _args, ctx) => moneyList((await programFigures.conversions(ctx, s)).revenue),
    }),
    rewards: t.field({
      type: RewardTotalsRef,
      description: 'Every reward of the program (both recipients; clawbacks included, as negative amounts) per status.',
      resolve: (s, _args, ctx) => programFigures.rewards(ctx, s),
    }),
  }),
});

builder.prismaObjectField('Program', 'stats', (t) =>
  t.field({
    type: ProgramStatsRef,
    description: 'The program’s counters, over all time or over the window [from, to).',
    authScopes: { reader: true },
    args: {
      from: t.arg({ type: 'DateTime', description: 'Count from this instant (inclusive).' }),
      to: t.arg({ type: 'DateTime', description: 'Count until this instant (exclusive).' }),
    },
    resolve: (program, args) => ({ programId: program.id, window: { from: args.from ?? null, to: args.to ?? null } }),
  }),
);

// ---------------------------------------------------------------------------------------------
// Partner.stats and ReferralLink.clicks
// ---------------------------------------------------------------------------------------------

/**
 * A partner's figures. `Partner.stats` loads the figures its selection asks for before returning
 * (one batched statement per kind, as before), so the fields below are plain reads: for a page of
 * 100 partners that is 100 promises instead of 500 and no per-field awaiting in the executor. A
 * figure not loaded up front (a selection the look-ahead did not see) is loaded by its field.
 */
interface PartnerStatsSource {
  partnerId: string;
  /** Row id of the program asked for; null: every program. */
  programId: string | null;
  clicks?: number;
  referrals?: PartnerReferralCounts;
  rewards?: Map<string, bigint>;
}

/** The request's clicks of the partners asked for, per link: shared by `PartnerStats.clicks` and `ReferralLink.clicks`, `uniqueClicks`, `botClicks`. */
const partnerClicks = (ctx: Context, partnerId: string): Promise<PartnerClicks> =>
  figureLoader(ctx, 'partner.clicksByLink', (scope, ids) => partnerClicksByLink(ctx.db, scope, ids)).load(partnerId);

const partnerFigures = {
  clicks: async (ctx: Context, s: PartnerStatsSource) => {
    const clicks = await partnerClicks(ctx, s.partnerId);
    return s.programId === null ? clicks.total : (clicks.byProgram.get(s.programId) ?? 0);
  },
  referrals: (ctx: Context, s: PartnerStatsSource) =>
    figureLoader(ctx, `partner.referrals:${s.programId ?? '*'}`, (scope, ids) =>
      partnerReferralCounts(ctx.db, scope, ids, s.programId),
    ).load(s.partnerId),
  rewards: (ctx: Context, s: PartnerStatsSource) =>
    figureLoader(ctx, `partner.rewards:${s.programId ?? '*'}`, (scope, ids) =>
      partnerRewardTotals(ctx.db, scope, ids, s.programId),
    ).load(s.partnerId),
};

/** Load the figures the selection asks for into `s`. */
async function loadPartnerFigures(
  ctx: Context,
  s: PartnerStatsSource,
  fields: ReadonlySet<string>,
): Promise<PartnerStatsSource> {
  const loads: Array<Promise<unknown>> = [];
  if (fields.has('clicks')) loads.push(partnerFigures.clicks(ctx, s).then((v) => (s.clicks = v)));
  if (fields.has('totalReferrals') || fields.has('successfulReferrals') || fields.has('pendingReferrals')) {
    loads.push(partnerFigures.referrals(ctx, s).then((v) => (s.referrals = v)));
  }
  if (fields.has('totalRewards')) loads.push(partnerFigures.rewards(ctx, s).then((v) => (s.rewards = v)));
  await Promise.all(loads);
  return s;
}

const referralsOf = (s: PartnerStatsSource, ctx: Context): PartnerReferralCounts | Promise<PartnerReferralCounts> =>
  s.referrals ?? partnerFigures.referrals(ctx, s);

const PartnerStatsRef = builder.objectRef<PartnerStatsSource>('PartnerStats').implement({
  description: 'A partner’s counters, in every program or in one, computed live by the database.',
  fields: (t) => ({
    clicks: t.int({
      description:
        'Unique clicks on the partner’s links: one visitor (IP and user agent) counts once per link per UTC hour; bots’ and other discarded clicks are not counted. The sum of its links’ `uniqueClicks`.',
      resolve: (s, _args, ctx) => s.clicks ?? partnerFigures.clicks(ctx, s),
    }),
    totalReferrals: t.int({
      description: 'People the partner referred, whatever their status.',
      resolve: (s, _args, ctx) => then(referralsOf(s, ctx), (r) => r.totalReferrals),
    }),
    successfulReferrals: t.int({
      description: 'Referred people who paid at least once (CONVERTED).',
      resolve: (s, _args, ctx) => then(referralsOf(s, ctx), (r) => r.successfulReferrals),
    }),
    pendingReferrals: t.int({
      description: 'Referred people who signed up and have not paid yet (PENDING).',
      resolve: (s, _args, ctx) => then(referralsOf(s, ctx), (r) => r.pendingReferrals),
    }),
    totalRewards: t.field({
      type: [MoneyRef],
      description:
        'What the partner earned per currency: their own (REFERRER) rewards except CANCELED and REJECTED ones, net of clawbacks. Rewards for the referred customer are not counted.',
      resolve: (s, _args, ctx) => then(s.rewards ?? partnerFigures.rewards(ctx, s), moneyList),
    }),
  }),
});

/** `f(value)`, synchronously when the value is already there. */
function then<T, R>(value: T | Promise<T>, f: (value: T) => R): R | Promise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}

builder.prismaObjectField('Partner', 'stats', (t) =>
  t.field({
    type: PartnerStatsRef,
    description: 'The partner’s counters. A PARTNER credential sees figures for its own partner only.',
    args: { programId: t.arg.id({ description: 'Only this program; an id outside the caller’s scope gives zeros.' }) },
    resolve: (partner, args, ctx, info) =>
      loadPartnerFigures(
        ctx,
        { partnerId: partner.id, programId: filterId(args.programId, 'Program') ?? null },
        selectedFields(info),
      ),
  }),
);

// Counted with the partner's other links in one pass (see partnerClicksByLink); the link's partner picks the batch.
const linkClicks = (ctx: Context, link: { id: string; partnerId: string }) =>
  partnerClicks(ctx, link.partnerId).then((clicks) => clicks.byLink.get(link.id) ?? NO_CLICKS);

builder.prismaObjectFields('ReferralLink', (t) => ({
  clicks: t.int({
    description:
      'Counted clicks through this link, a visitor’s repeats included; bots’ and other discarded clicks are not counted (see `uniqueClicks`, `botClicks`).',
    select: { partnerId: true },
    resolve: async (link, _args, ctx) => (await linkClicks(ctx, link)).clicks,
  }),
  uniqueClicks: t.int({
    description:
      'Visitors through this link: of its counted clicks, one per visitor (the same IP and user agent) per UTC hour — repeats within the hour count once, a visit at 10:59 and another at 11:01 count twice. A click without an IP counts (its visitor cannot be told). Program and partner stats count these.',
    select: { partnerId: true },
    resolve: async (link, _args, ctx) => (await linkClicks(ctx, link)).unique,
  }),
  botClicks: t.int({
    description:
      'Clicks by bots and link previews (crawlers, Slackbot, facebookexternalhit, …, by user agent): recorded as discarded with the reason BOT, never counted in `clicks` or `uniqueClicks`.',
    select: { partnerId: true },
    resolve: async (link, _args, ctx) => (await linkClicks(ctx, link)).bots,
  }),
}));
