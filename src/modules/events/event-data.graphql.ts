import type {
  ApiKey,
  Member,
  Conversion,
  Enrollment,
  EnrollmentStatus,
  LedgerEntry,
  Coupon,
  Partner,
  Payout,
  PayoutStatus,
  Program,
  Referral,
  ReferralLink,
  ReferralStatus,
  ReviewItem,
  Reward,
  RewardRule,
  RewardStatus,
  Tier,
  StripeIntegration,
} from '../../generated/prisma/client.js';
import { brandWithType } from '@pothos/core';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { EnrollmentStatusEnum, PayoutStatusEnum, ReferralStatusEnum, RewardStatusEnum } from '../../graphql/enums.js';
import { loader } from '../../graphql/loaders.js';
import { partnerFilter, rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { NIL_UUID } from '../../lib/ids.js';
import type { OutboxEvent } from '../../pubsub.js';
import { ConversionRef } from '../conversion/conversion.graphql.js';
import { PayoutRef } from '../ledger/balance.graphql.js';
import { ReferralLinkRef } from '../link/link.graphql.js';
import { EnrollmentRef } from '../partner/enrollment.graphql.js';
import { PartnerRef } from '../partner/partner.graphql.js';
import { ERASED_FIELDS } from '../partner/erasure.service.js';
import { ProgramRef } from '../program/program.graphql.js';
import { LedgerEntryRef } from '../ledger/ledger.graphql.js';
import { ReferralRef } from '../referral/referral.graphql.js';
import { RewardRef } from '../reward/reward.graphql.js';
import { ReviewItemRef } from '../review/review.graphql.js';
import { EventRef } from './events.graphql.js';
import type { EventType } from './outbox.js';
import { EVENT_SUBJECTS } from './payloads.js';

// `Event.subject` and `Event.data`: the typed view of an event, loaded fresh from the ids in its
// payload (payloads.ts). Both are null when the object is not visible to the caller: another
// workspace or mode can never be named in a payload, and a PARTNER credential sees the objects
// its own nodes would show it (the same filters as the types' `findUnique`). Objects are loaded
// per request through one DataLoader per model, so a page of events costs one statement per model.

type Models = {
  Program: Program;
  RewardRule: RewardRule;
  Referral: Referral;
  ApiKey: ApiKey;
  Member: Member;
  Partner: Partner;
  Enrollment: Enrollment;
  ReferralLink: ReferralLink;
  Conversion: Conversion;
  Reward: Reward;
  Payout: Payout;
  LedgerEntry: LedgerEntry;
  Tier: Tier;
  Coupon: Coupon;
  ReviewItem: ReviewItem;
  StripeIntegration: StripeIntegration;
};
type Model = keyof Models;

/** What the caller may see of `model`, beside the tenant: the filters of the types' own `findUnique`. */
function scopeOf(ctx: Context, model: Model): Record<string, unknown> {
  const partnerId = ctx.auth?.role === 'PARTNER' ? (ctx.auth.partnerId ?? NIL_UUID) : null;
  if (!partnerId) return {};
  // The review queue is the company's: a PARTNER credential sees no item.
  if (model === 'ReviewItem') return { id: NIL_UUID };
  // Integrations are the company's business: a PARTNER credential never sees one.
  if (model === 'StripeIntegration') return { id: NIL_UUID };
  // Team members likewise.
  if (model === 'Member') return { id: NIL_UUID };
  if (model === 'Program') return { enrollments: { some: { partnerId } } };
  if (model === 'RewardRule') return { program: { enrollments: { some: { partnerId } } } };
  if (model === 'Partner') return { id: partnerId };
  // A partner sees only the tier it is in (the Tier type's own scope).
  if (model === 'Tier') return { enrollments: { some: { partnerId } } };
  return partnerFilter(ctx);
}

/** A selection from plugin-prisma (`select` or `include`), or none: every scalar. */
type Selection = { select?: Record<string, unknown>; include?: Record<string, unknown> };

/** `findMany` of `model` (the delegates differ only in their types). */
function findMany(ctx: Context, model: Model, args: Selection & { where: Record<string, unknown> }) {
  const p = ctx.db.prisma;
  const delegates: Record<Model, (a: typeof args) => Promise<Array<{ id: string }>>> = {
    Program: (a) => p.program.findMany(a as never),
    RewardRule: (a) => p.rewardRule.findMany(a as never),
    Referral: (a) => p.referral.findMany(a as never),
    ApiKey: (a) => p.apiKey.findMany(a as never),
    Member: (a) => p.member.findMany(a as never),
    Partner: (a) => p.partner.findMany(a as never),
    Enrollment: (a) => p.enrollment.findMany(a as never),
    ReferralLink: (a) => p.referralLink.findMany(a as never),
    Conversion: (a) => p.conversion.findMany(a as never),
    Reward: (a) => p.reward.findMany(a as never),
    Payout: (a) => p.payout.findMany(a as never),
    LedgerEntry: (a) => p.ledgerEntry.findMany(a as never),
    Tier: (a) => p.tier.findMany(a as never),
    Coupon: (a) => p.coupon.findMany(a as never),
    ReviewItem: (a) => p.reviewItem.findMany(a as never),
    StripeIntegration: (a) => p.stripeIntegration.findMany(a as never),
  };
  return delegates[model](args);
}

/**
 * The visible row of `model` with this row id, loaded with `selection` (plugin-prisma's, for the
 * fields asked beneath it), or null. One DataLoader per model and selection: a page of events
 * costs one statement per model and selection, whatever its length.
 */
function loadRow<M extends Model>(ctx: Context, model: M, id: string, selection: Selection = {}) {
  const key = `event-data:${model}:${JSON.stringify(selection)}`;
  return loader<string, Models[M] | null>(ctx, key, async (ids) => {
    const args = selection.select ? { select: { ...selection.select, id: true } } : selection;
    const rows = await findMany(ctx, model, {
      ...args,
      // Members are of the workspace, not of a mode.
      where:
        model === 'Member'
          ? { id: { in: [...ids] }, workspaceId: tenantOf(ctx).workspaceId, ...scopeOf(ctx, model) }
          : { id: { in: [...ids] }, ...tenantOf(ctx), ...scopeOf(ctx, model) },
    });
    const byId = new Map(rows.map((row) => [row.id, row as Models[M]]));
    return ids.map((rowId) => byId.get(rowId) ?? null);
  }).load(id);
}

/** The row id of `model` named by a global id in a payload, or null. */
const idIn = (model: Model, globalId: unknown): string | null =>
  typeof globalId === 'string' ? rowIdFrom(globalId, model) : null;

/**
 * Whether the caller may see the row of `model` named by a global id in a payload (its row id when
 * so). The member's own field then loads it with the fields asked (see loadRow).
 */
async function visible(ctx: Context, model: Model, globalId: unknown): Promise<string | null> {
  const id = idIn(model, globalId);
  // The full-row loader `subject` uses too: one statement per model serves both.
  return id && (await loadRow(ctx, model, id)) ? id : null;
}

// The members hold row ids already checked as visible; their object fields load the rows with the
// selection asked beneath them (t.prismaField), so nested fields need no query of their own.
interface ConversionData {
  kind: 'ConversionEventData';
  conversionId: string;
  rewardIds: string[];
}
interface RewardData {
  kind: 'RewardEventData';
  rewardId: string;
}
interface RewardStatusData {
  kind: 'RewardStatusEventData';
  rewardId: string;
  from: RewardStatus | null;
  to: RewardStatus;
  reason: string | null;
}
interface PartnerData {
  kind: 'PartnerEventData';
  partnerId: string;
  changedFields: string[];
}
interface EnrollmentData {
  kind: 'EnrollmentEventData';
  enrollmentId: string;
  from: EnrollmentStatus | null;
  to: EnrollmentStatus;
}
interface ProgramData {
  kind: 'ProgramEventData';
  programId: string;
  changedFields: string[];
}
interface LinkData {
  kind: 'LinkEventData';
  linkId: string;
}
interface ReferralData {
  kind: 'ReferralEventData';
  referralId: string;
  from: ReferralStatus | null;
  to: ReferralStatus;
  reason: string | null;
}
interface PayoutData {
  kind: 'PayoutEventData';
  payoutId: string;
  from: PayoutStatus | null;
  to: PayoutStatus;
}
interface LedgerData {
  kind: 'LedgerEventData';
  entryId: string;
}
interface ReviewData {
  kind: 'ReviewEventData';
  itemId: string;
}
type EventData =
  | LedgerData
  | ReviewData
  | ConversionData
  | RewardData
  | RewardStatusData
  | PartnerData
  | EnrollmentData
  | ProgramData
  | LinkData
  | ReferralData
  | PayoutData;

/** A row checked as visible by `eventData`; gone since (deleted in between): an error, the field is non-null. */
async function present<T>(row: Promise<T | null>): Promise<T> {
  const found = await row;
  if (!found) throw new Error('The object of this event is no longer there.');
  return found;
}

const ConversionEventData = builder.objectRef<ConversionData>('ConversionEventData').implement({
  description: '`conversion.recorded`: the conversion (a refund too) and the rewards it created that you may see.',
  fields: (t) => ({
    conversion: t.prismaField({
      type: ConversionRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'Conversion', d.conversionId, query)),
    }),
    rewards: t.prismaField({
      type: [RewardRef],
      nullable: false,
      resolve: async (query, d, _args, ctx) =>
        (await Promise.all(d.rewardIds.map((id) => loadRow(ctx, 'Reward', id, query)))).filter(
          (r): r is Reward => r !== null,
        ),
    }),
  }),
});

const RewardEventData = builder.objectRef<RewardData>('RewardEventData').implement({
  description: '`reward.created`: the new reward (a clawback too), as it is now.',
  fields: (t) => ({
    reward: t.prismaField({
      type: RewardRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'Reward', d.rewardId, query)),
    }),
  }),
});

const RewardStatusEventData = builder.objectRef<RewardStatusData>('RewardStatusEventData').implement({
  description: '`reward.status_changed`: the reward as it is now, and the change this event records.',
  fields: (t) => ({
    reward: t.prismaField({
      type: RewardRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'Reward', d.rewardId, query)),
    }),
    from: t.field({ type: RewardStatusEnum, nullable: true, resolve: (d) => d.from }),
    to: t.field({ type: RewardStatusEnum, resolve: (d) => d.to }),
    reason: t.string({ nullable: true, resolve: (d) => d.reason }),
  }),
});

const PartnerEventData = builder.objectRef<PartnerData>('PartnerEventData').implement({
  description:
    '`partner.created`, `partner.updated`, `partner.status_changed`, `partner.erased`: the partner as it is now, and the fields the event changed (empty for a creation; for an erasure the personal fields replaced and the status).',
  fields: (t) => ({
    partner: t.prismaField({
      type: PartnerRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'Partner', d.partnerId, query)),
    }),
    changedFields: t.stringList({ resolve: (d) => d.changedFields }),
  }),
});

const EnrollmentEventData = builder.objectRef<EnrollmentData>('EnrollmentEventData').implement({
  description:
    '`enrollment.applied`, `enrollment.status_changed`, `enrollment.overrides_changed`, `tier.changed`: the enrollment as it is now (its `tier` included); `from` is null for a new enrollment (for overrides and tiers, `from` and `to` are both its status; the tiers are in the payload).',
  fields: (t) => ({
    enrollment: t.prismaField({
      type: EnrollmentRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'Enrollment', d.enrollmentId, query)),
    }),
    from: t.field({ type: EnrollmentStatusEnum, nullable: true, resolve: (d) => d.from }),
    to: t.field({ type: EnrollmentStatusEnum, resolve: (d) => d.to }),
  }),
});

const ProgramEventData = builder.objectRef<ProgramData>('ProgramEventData').implement({
  description:
    '`program.created`, `program.updated`: the program as it is now, and the fields the event changed (empty for a creation).',
  fields: (t) => ({
    program: t.prismaField({
      type: ProgramRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'Program', d.programId, query)),
    }),
    changedFields: t.stringList({ resolve: (d) => d.changedFields }),
  }),
});

const LinkEventData = builder.objectRef<LinkData>('LinkEventData').implement({
  description: '`link.created`, `link.updated`, `link.disabled`: the referral link as it is now.',
  fields: (t) => ({
    link: t.prismaField({
      type: ReferralLinkRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'ReferralLink', d.linkId, query)),
    }),
  }),
});

const ReferralEventData = builder.objectRef<ReferralData>('ReferralEventData').implement({
  description:
    '`referral.status_changed`: the referral as it is now, and the change: by a conversion (its first payment, or a self-referral found later; `reason` null) or by an admin (`setReferralStatus`, with their reason).',
  fields: (t) => ({
    referral: t.prismaField({
      type: ReferralRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'Referral', d.referralId, query)),
    }),
    from: t.field({ type: ReferralStatusEnum, nullable: true, resolve: (d) => d.from }),
    to: t.field({ type: ReferralStatusEnum, resolve: (d) => d.to }),
    reason: t.string({ nullable: true, resolve: (d) => d.reason }),
  }),
});

const PayoutEventData = builder.objectRef<PayoutData>('PayoutEventData').implement({
  description:
    '`payout.created` (from null), `payout.paid`, `payout.failed`, `payout.canceled`: the payout as it is now, and the change.',
  fields: (t) => ({
    payout: t.prismaField({
      type: PayoutRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'Payout', d.payoutId, query)),
    }),
    from: t.field({ type: PayoutStatusEnum, nullable: true, resolve: (d) => d.from }),
    to: t.field({ type: PayoutStatusEnum, resolve: (d) => d.to }),
  }),
});

const LedgerEventData = builder.objectRef<LedgerData>('LedgerEventData').implement({
  description: '`balance.credited`: the ledger entry the credit (or debit) wrote.',
  fields: (t) => ({
    entry: t.prismaField({
      type: LedgerEntryRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'LedgerEntry', d.entryId, query)),
    }),
  }),
});

const ReviewEventData = builder.objectRef<ReviewData>('ReviewEventData').implement({
  description:
    '`review.opened`, `review.resolved`: the review item as it is now (its status, signals, rewards). Never shown to a PARTNER credential.',
  fields: (t) => ({
    item: t.prismaField({
      type: ReviewItemRef,
      nullable: false,
      resolve: (query, d, _args, ctx) => present(loadRow(ctx, 'ReviewItem', d.itemId, query)),
    }),
  }),
});

const EventDataUnion = builder.unionType('EventData', {
  description: 'The typed content of an event, one member per family of event types, with its objects loaded fresh.',
  types: [
    ConversionEventData,
    RewardEventData,
    RewardStatusEventData,
    PartnerEventData,
    EnrollmentEventData,
    ProgramEventData,
    LinkEventData,
    ReferralEventData,
    PayoutEventData,
    ReviewEventData,
    LedgerEventData,
  ],
  resolveType: (data) => data.kind,
});

const fieldsOf = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

const PAYOUT_STATUS_AFTER = {
  'payout.created': 'PENDING',
  'payout.paid': 'PAID',
  'payout.failed': 'FAILED',
  'payout.canceled': 'CANCELED',
} as const satisfies Record<string, PayoutStatus>;

/** The typed data of an event, or null (a type without a member yet, or an object not visible). */
async function eventData(event: OutboxEvent, ctx: Context): Promise<EventData | null> {
  const p = event.payload as Record<string, unknown>;
  const type = event.type as EventType;
  switch (type) {
    case 'conversion.recorded': {
      const ids = Array.isArray(p.rewardIds) ? p.rewardIds : [];
      const [conversionId, ...rewardIds] = await Promise.all([
        visible(ctx, 'Conversion', p.conversionId),
        ...ids.map((id) => visible(ctx, 'Reward', id)),
      ]);
      if (!conversionId) return null;
      return {
        kind: 'ConversionEventData',
        conversionId,
        rewardIds: rewardIds.filter((id): id is string => id !== null),
      };
    }
    case 'reward.created': {
      const rewardId = await visible(ctx, 'Reward', p.rewardId);
      return rewardId ? { kind: 'RewardEventData', rewardId } : null;
    }
    case 'reward.status_changed': {
      const rewardId = await visible(ctx, 'Reward', p.rewardId);
      return rewardId
        ? {
            kind: 'RewardStatusEventData',
            rewardId,
            from: (p.from as RewardStatus | null) ?? null,
            to: p.to as RewardStatus,
            reason: (p.reason as string | null) ?? null,
          }
        : null;
    }
    case 'partner.created':
    case 'partner.updated':
    case 'partner.status_changed':
    case 'partner.erased': {
      const partnerId = await visible(ctx, 'Partner', p.partnerId);
      const changedFields =
        type === 'partner.status_changed'
          ? ['status']
          : type === 'partner.updated'
            ? fieldsOf(p.changedFields)
            : type === 'partner.erased'
              ? [...ERASED_FIELDS]
              : [];
      return partnerId ? { kind: 'PartnerEventData', partnerId, changedFields } : null;
    }
    case 'enrollment.applied':
    case 'enrollment.status_changed':
    case 'enrollment.overrides_changed':
    case 'tier.changed': {
      const enrollmentId = await visible(ctx, 'Enrollment', p.enrollmentId);
      return enrollmentId
        ? {
            kind: 'EnrollmentEventData',
            enrollmentId,
            from: (p.from as EnrollmentStatus | null) ?? null,
            to: p.to as EnrollmentStatus,
          }
        : null;
    }
    case 'program.created':
    case 'program.updated': {
      const programId = await visible(ctx, 'Program', p.programId);
      const changedFields = type === 'program.updated' ? fieldsOf(p.changedFields) : [];
      return programId ? { kind: 'ProgramEventData', programId, changedFields } : null;
    }
    case 'link.created':
    case 'link.updated':
    case 'link.disabled': {
      const linkId = await visible(ctx, 'ReferralLink', p.linkId);
      return linkId ? { kind: 'LinkEventData', linkId } : null;
    }
    case 'referral.status_changed': {
      const referralId = await visible(ctx, 'Referral', p.referralId);
      return referralId
        ? {
            kind: 'ReferralEventData',
            referralId,
            from: (p.from as ReferralStatus | null) ?? null,
            to: p.to as ReferralStatus,
            reason: (p.reason as string | null) ?? null,
          }
        : null;
    }
    case 'payout.created':
    case 'payout.paid':
    case 'payout.failed':
    case 'payout.canceled': {
      const payoutId = await visible(ctx, 'Payout', p.payoutId);
      const to: PayoutStatus = PAYOUT_STATUS_AFTER[type];
      return payoutId
        ? { kind: 'PayoutEventData', payoutId, from: type === 'payout.created' ? null : 'PENDING', to }
        : null;
    }
    case 'balance.credited': {
      // Events appended before entries were named in the payload have no entryId: no data.
      const entryId = await visible(ctx, 'LedgerEntry', p.entryId);
      return entryId ? { kind: 'LedgerEventData', entryId } : null;
    }
    case 'review.opened':
    case 'review.resolved': {
      const itemId = await visible(ctx, 'ReviewItem', p.reviewItemId);
      return itemId ? { kind: 'ReviewEventData', itemId } : null;
    }
    default:
      // reward_rule.*, tier.created/updated/deleted, api_key.*, member.*, coupon.*, integration.*: no member yet (they have `subject`).
      return null;
  }
}

builder.objectFields(EventRef, (t) => ({
  subject: t.field({
    type: builder.nodeInterfaceRef(),
    nullable: true,
    description:
      'The object the event is about (a Program, RewardRule, Tier, Partner, Enrollment, ReferralLink, Coupon, Conversion, Referral, Reward, Payout, ReviewItem, ApiKey, Member or StripeIntegration), loaded fresh; null when it is not visible to this credential (and for a deleted tier).',
    resolve: async (event, _args, ctx) => {
      const subject = EVENT_SUBJECTS[event.type as EventType];
      if (!subject) return null;
      const model = subject.typename as Model;
      // API keys are an ADMIN's business (the ApiKey type's own scope).
      if (model === 'ApiKey' && ctx.auth?.role !== 'ADMIN') return null;
      const id = idIn(model, (event.payload as Record<string, unknown>)[subject.field]);
      // The same scoped loader as `data`: one statement per model for a page of events.
      const row = id ? await loadRow(ctx, model, id) : null;
      if (row) brandWithType(row, subject.typename as never);
      return row as never;
    },
  }),
  data: t.field({
    type: EventDataUnion,
    nullable: true,
    description:
      'The typed payload, its objects loaded fresh; null for types without a member yet (reward_rule.*, tier.created, tier.updated, tier.deleted, api_key.*, member.*, coupon.*, integration.*) and when the object is not visible to this credential.',
    resolve: (event, _args, ctx) => eventData(event, ctx),
  }),
}));
