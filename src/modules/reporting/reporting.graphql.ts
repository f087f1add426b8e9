import { GraphQLError } from 'graphql';
import type { Context } from '../../context.js';
import { DomainError } from '../../domain/errors.js';
import type { Partner } from '../../generated/prisma/client.js';
import { builder } from '../../graphql/builder.js';
import { loader } from '../../graphql/loaders.js';
import { MoneyRef } from '../../graphql/money.js';
import { tenantOf } from '../../graphql/scope.js';
import { moneyList } from '../stats/stats.service.js';
import { figureLoader, RewardTotalsRef } from '../stats/stats.graphql.js';
import { PartnerRef } from '../partner/partner.graphql.js';
import { filterId } from '../reward/reward.graphql.js';
import {
  type BucketFigures,
  checkSeriesArgs,
  type Interval,
  type LeaderboardMetric,
  type LeaderboardRow,
  leaderboards,
  estimatedBuckets,
  MAX_BUCKETS,
  MAX_LEADERBOARD,
  type SeriesArgs,
  type SeriesDimension,
  seriesFor,
  type WorkspaceFigures,
  workspaceFigures,
} from './reporting.service.js';

// Program/Partner/ReferralLink.timeseries, Program.leaderboard and Query.stats: every parent of a
// list asking for the same arguments is answered by one statement (figureLoader), from the
// rollups. See ./README.md.

/** A service's VALIDATION as the request error a query field gives (BAD_USER_INPUT, naming the argument). */
function asInputError(error: unknown): never {
  if (error instanceof DomainError)
    throw new GraphQLError(error.message, {
      extensions: { code: 'BAD_USER_INPUT', reason: error.code, field: error.field },
    });
  throw error;
}

const IntervalEnum = builder.enumType('Interval', {
  values: ['DAY', 'WEEK', 'MONTH'] as const,
  description:
    'Length of a time series bucket. DAY starts at local midnight (23 or 25 hours on DST changes), WEEK on Monday at local midnight, MONTH on the 1st at local midnight.',
});

const LeaderboardMetricEnum = builder.enumType('LeaderboardMetric', {
  values: {
    CLICKS: { description: 'Unique clicks (as `ProgramStats.clicks`).' },
    CONVERTED_REFERRALS: { description: 'Referrals that converted in the window (by when they converted).' },
    REVENUE: {
      description: 'ACCEPTED purchase and subscription amounts in the program’s currency (others are not counted).',
    },
    REWARDS: {
      description:
        'Rewards not CANCELED or REJECTED (both recipients, net of clawbacks) in the program’s currency, by when they were created.',
    },
  } as const,
  description: 'What a leaderboard ranks partners by.',
});

const TimeBucketRef = builder.objectRef<BucketFigures>('TimeBucket').implement({
  description:
    'What happened in one bucket of a time series, read from the rollups. Clicks by when they occurred, referrals by sign-up, converted referrals by when they converted, conversions and revenue by `occurredAt`, rewards by when they were created.',
  fields: (t) => ({
    start: t.field({
      type: 'DateTime',
      description: 'When the bucket starts: local midnight in the series’ time zone.',
      resolve: (b) => b.start,
    }),
    clicks: t.exposeInt('clicks', {
      description: 'Unique clicks (one per visitor per link per UTC hour; bots’ and discarded clicks not counted).',
    }),
    referrals: t.exposeInt('referrals', { description: 'Referred people who signed up in the bucket.' }),
    convertedReferrals: t.exposeInt('convertedReferrals', {
      description: 'Referred people who converted (first paid) in the bucket.',
    }),
    conversions: t.exposeInt('conversions', { description: 'ACCEPTED conversions other than refunds.' }),
    revenue: t.field({
      type: [MoneyRef],
      description: 'Per currency, ACCEPTED purchase and subscription amounts (refunds not subtracted).',
      resolve: (b) => moneyList(b.revenue),
    }),
    rewards: t.field({
      type: [MoneyRef],
      description:
        'Per currency, rewards not CANCELED or REJECTED (both recipients; clawbacks as negative amounts), by their current status.',
      resolve: (b) => moneyList(b.rewards),
    }),
  }),
});

const seriesArgsDescription = {
  from: 'Start of the window (inclusive): the series starts with the bucket containing it.',
  to: 'End of the window (exclusive): the series ends with the bucket containing the last instant before it.',
  timezone:
    'IANA time zone name (e.g. "Europe/Paris") buckets start at local midnight in. An unknown name is a BAD_USER_INPUT error.',
};

const seriesKey = (a: SeriesArgs) => `${a.interval}:${a.from.toISOString()}..${a.to.toISOString()}:${a.timezone}`;

function loadSeries(
  ctx: Context,
  dimension: SeriesDimension,
  id: string,
  raw: { interval: Interval; from: Date; to: Date; timezone?: string | null },
  programId: string | null = null,
): Promise<BucketFigures[]> {
  let args: SeriesArgs;
  try {
    args = checkSeriesArgs({ interval: raw.interval, from: raw.from, to: raw.to, timezone: raw.timezone ?? 'UTC' });
  } catch (error) {
    asInputError(error);
  }
  return figureLoader(ctx, `series:${dimension}:${programId ?? '*'}:${seriesKey(args)}`, (scope, ids) =>
    seriesFor(ctx.db, scope, dimension, ids, args, programId),
  ).load(id);
}

/** A series costs its (estimated) number of buckets, like a list of that page size. */
const seriesComplexity = (args: { interval: Interval; from: Date; to: Date }) => ({
  field: 1,
  multiplier: estimatedBuckets(args),
});

const seriesDescription = (of: string) =>
  `${of} time series: one bucket per interval from the bucket containing \`from\` to the one containing the last instant before \`to\`, every bucket present (zeros when nothing happened), at most ${MAX_BUCKETS} buckets. Read from the rollups; each bucket counts whole.`;

builder.prismaObjectField('Program', 'timeseries', (t) =>
  t.field({
    type: [TimeBucketRef],
    complexity: seriesComplexity,
    description: seriesDescription('The program’s'),
    authScopes: { reader: true },
    args: {
      interval: t.arg({ type: IntervalEnum, required: true }),
      from: t.arg({ type: 'DateTime', required: true, description: seriesArgsDescription.from }),
      to: t.arg({ type: 'DateTime', required: true, description: seriesArgsDescription.to }),
      timezone: t.arg.string({ defaultValue: 'UTC', description: seriesArgsDescription.timezone }),
    },
    resolve: (program, args, ctx) => loadSeries(ctx, 'programId', program.id, args),
  }),
);

builder.prismaObjectField('Partner', 'timeseries', (t) =>
  t.field({
    type: [TimeBucketRef],
    complexity: seriesComplexity,
    description: `${seriesDescription('The partner’s')} A PARTNER credential sees its own partner’s series only (another partner’s is all zeros).`,
    args: {
      programId: t.arg.id({ description: 'Only this program; an id outside the caller’s scope gives zeros.' }),
      interval: t.arg({ type: IntervalEnum, required: true }),
      from: t.arg({ type: 'DateTime', required: true, description: seriesArgsDescription.from }),
      to: t.arg({ type: 'DateTime', required: true, description: seriesArgsDescription.to }),
      timezone: t.arg.string({ defaultValue: 'UTC', description: seriesArgsDescription.timezone }),
    },
    resolve: (partner, args, ctx) =>
      loadSeries(ctx, 'partnerId', partner.id, args, filterId(args.programId, 'Program') ?? null),
  }),
);

builder.prismaObjectField('ReferralLink', 'timeseries', (t) =>
  t.field({
    type: [TimeBucketRef],
    complexity: seriesComplexity,
    description: `${seriesDescription('The link’s')} Rewards count under the link of their conversion.`,
    args: {
      interval: t.arg({ type: IntervalEnum, required: true }),
      from: t.arg({ type: 'DateTime', required: true, description: seriesArgsDescription.from }),
      to: t.arg({ type: 'DateTime', required: true, description: seriesArgsDescription.to }),
      timezone: t.arg.string({ defaultValue: 'UTC', description: seriesArgsDescription.timezone }),
    },
    resolve: (link, args, ctx) => loadSeries(ctx, 'linkId', link.id, args),
  }),
);

// ---------------------------------------------------------------------------------------------
// Leaderboard
// ---------------------------------------------------------------------------------------------

interface EntrySource extends LeaderboardRow {}

/** Partners by id, one statement per request for every leaderboard entry. */
const partnerById = (ctx: Context, id: string) =>
  loader<string, Partner>(ctx, 'reporting:partnerById', async (ids) => {
    const rows = await ctx.db.prisma.partner.findMany({ where: { ...tenantOf(ctx), id: { in: [...ids] } } });
    const byId = new Map(rows.map((p) => [p.id, p]));
    return ids.map((i) => byId.get(i) ?? new Error(`Partner ${i} not found`));
  }).load(id);

const LeaderboardEntryRef = builder.objectRef<EntrySource>('LeaderboardEntry').implement({
  description: 'One partner’s place on a leaderboard.',
  fields: (t) => ({
    rank: t.exposeInt('rank', {
      description: '1 for the first; partners with the same value share a rank (1, 2, 2, 4).',
    }),
    partner: t.field({ type: PartnerRef, resolve: (e, _args, ctx) => partnerById(ctx, e.partnerId) }),
    value: t.exposeString('value', {
      description:
        'The metric’s value: a whole number for counts, a Decimal string in the program’s currency for REVENUE and REWARDS (e.g. "123.45").',
    }),
  }),
});

builder.prismaObjectField('Program', 'leaderboard', (t) =>
  t.field({
    type: [LeaderboardEntryRef],
    description: `The program’s top partners by a metric over [from, to) (all time when both are null), read from the rollups (in 15-minute UTC steps: \`from\` counts from its quarter hour). Partners with nothing are not listed; ties share a rank and are listed by partner id. At most ${MAX_LEADERBOARD} entries.`,
    authScopes: { reader: true },
    args: {
      metric: t.arg({ type: LeaderboardMetricEnum, required: true }),
      from: t.arg({ type: 'DateTime', description: 'Count from this instant (inclusive).' }),
      to: t.arg({ type: 'DateTime', description: 'Count until this instant (exclusive).' }),
      first: t.arg.int({ defaultValue: 10, description: `How many entries, 1 to ${MAX_LEADERBOARD}.` }),
    },
    resolve: (program, args, ctx) => {
      const first = args.first ?? 10;
      if (!Number.isInteger(first) || first < 1 || first > MAX_LEADERBOARD)
        asInputError(new DomainError('VALIDATION', `first must be between 1 and ${MAX_LEADERBOARD}.`, ['first']));
      if (args.from && args.to && !(args.from < args.to))
        asInputError(new DomainError('VALIDATION', '`from` must be before `to`.', ['from']));
      const window = { from: args.from ?? null, to: args.to ?? null };
      const metric = args.metric as LeaderboardMetric;
      return figureLoader(
        ctx,
        `leaderboard:${metric}:${window.from?.toISOString() ?? ''}..${window.to?.toISOString() ?? ''}:${first}`,
        (scope, ids) => leaderboards(ctx.db, scope, ids, metric, window, first),
      ).load(program.id);
    },
  }),
);

// ---------------------------------------------------------------------------------------------
// Query.stats
// ---------------------------------------------------------------------------------------------

const WorkspaceStatsRef = builder.objectRef<WorkspaceFigures>('WorkspaceStats').implement({
  description:
    'The workspace’s totals in the caller’s mode, over all time or a window. Programs and partners by when they were created; the rest from the rollups, in 15-minute UTC steps.',
  fields: (t) => ({
    programs: t.exposeInt('programs', { description: 'Programs created in the window, whatever their status.' }),
    partners: t.exposeInt('partners', { description: 'Partners created in the window, whatever their status.' }),
    clicks: t.exposeInt('clicks', { description: 'Unique clicks (as `ProgramStats.clicks`), by when they occurred.' }),
    conversions: t.exposeInt('conversions', {
      description: 'ACCEPTED conversions other than refunds, by `occurredAt`.',
    }),
    revenue: t.field({
      type: [MoneyRef],
      description: 'Per currency, ACCEPTED purchase and subscription amounts (refunds not subtracted).',
      resolve: (s) => moneyList(s.revenue),
    }),
    rewards: t.field({
      type: RewardTotalsRef,
      description: 'Every reward (both recipients, clawbacks negative) per current status, by when it was created.',
      resolve: (s) => s.rewards,
    }),
  }),
});

builder.queryField('stats', (t) =>
  t.field({
    type: WorkspaceStatsRef,
    description:
      'Totals of the whole workspace in the caller’s mode, over all time or [from, to) (rollups count whole quarter hours: `from` from its 15-minute UTC step, `to` up to the step containing it). ADMIN and READ_ONLY credentials only.',
    authScopes: { reader: true },
    args: {
      from: t.arg({ type: 'DateTime', description: 'Count from this instant (inclusive).' }),
      to: t.arg({ type: 'DateTime', description: 'Count until this instant (exclusive).' }),
    },
    resolve: (_root, args, ctx) => {
      if (args.from && args.to && !(args.from < args.to))
        asInputError(new DomainError('VALIDATION', '`from` must be before `to`.', ['from']));
      return workspaceFigures(
        ctx.db,
        { ...tenantOf(ctx), partnerId: null },
        { from: args.from ?? null, to: args.to ?? null },
      );
    },
  }),
);
