import type {
  Conversion,
  Enrollment,
  EnrollmentStatus,
  Partner,
  Payout,
  PayoutStatus,
  Program,
  ReferralLink,
  Reward,
  RewardStatus,
} from '../../generated/prisma/client.js';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { EnrollmentStatusEnum, PayoutStatusEnum, RewardStatusEnum } from '../../graphql/enums.js';
import { loader } from '../../graphql/loaders.js';
import { partnerFilter, rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { NIL_UUID } from '../../lib/ids.js';
import type { OutboxEvent } from '../../pubsub.js';
import { ConversionRef } from '../conversion/conversion.graphql.js';
import { PayoutRef } from '../ledger/balance.graphql.js';
import { ReferralLinkRef } from '../link/link.graphql.js';
import { EnrollmentRef } from '../partner/enrollment.graphql.js';
import { PartnerRef } from '../partner/partner.graphql.js';
import { ProgramRef } from '../program/program.graphql.js';
import { RewardRef } from '../reward/reward.graphql.js';
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
  Partner: Partner;
  Enrollment: Enrollment;
  ReferralLink: ReferralLink;
  Conversion: Conversion;
  Reward: Reward;
  Payout: Payout;
};
type Model = keyof Models;

/** The rows of `model` with these ids that the caller may see. */
function findVisible<M extends Model>(ctx: Context, model: M, ids: string[]): Promise<Models[M][]> {
  const prisma = ctx.db.prisma;
  const partnerId = ctx.auth?.role === 'PARTNER' ? (ctx.auth.partnerId ?? NIL_UUID) : null;
  const base = { id: { in: ids }, ...tenantOf(ctx) };
  const rows: Promise<unknown[]> = (() => {
    switch (model) {
      case 'Program':
        return prisma.program.findMany({
          where: { ...base, ...(partnerId ? { enrollments: { some: { partnerId } } } : {}) },
        });
      case 'Partner':
        return prisma.partner.findMany({ where: { ...base, ...(partnerId ? { id: partnerId } : {}) } });
      case 'Enrollment':
        return prisma.enrollment.findMany({ where: { ...base, ...partnerFilter(ctx) } });
      case 'ReferralLink':
        return prisma.referralLink.findMany({ where: { ...base, ...partnerFilter(ctx) } });
      case 'Conversion':
        return prisma.conversion.findMany({ where: { ...base, ...partnerFilter(ctx) } });
      case 'Reward':
        return prisma.reward.findMany({ where: { ...base, ...partnerFilter(ctx) } });
      case 'Payout':
        return prisma.payout.findMany({ where: { ...base, ...partnerFilter(ctx) } });
    }
    throw new Error(`no event-data loader for ${model}`);
  })();
  return rows as Promise<Models[M][]>;
}

/** The visible row of `model` named by a global id in a payload, or null. */
function loadVisible<M extends Model>(ctx: Context, model: M, globalId: unknown): Promise<Models[M] | null> {
  const id = typeof globalId === 'string' ? rowIdFrom(globalId, model) : null;
  if (!id) return Promise.resolve(null);
  return loader<string, Models[M] | null>(ctx, `event-data:${model}`, async (ids) => {
    const rows = await findVisible(ctx, model, [...ids]);
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((key) => byId.get(key) ?? null);
  }).load(id);
}

interface ConversionData {
  kind: 'ConversionEventData';
  conversion: Conversion;
  rewards: Reward[];
}
interface RewardData {
  kind: 'RewardEventData';
  reward: Reward;
}
interface RewardStatusData {
  kind: 'RewardStatusEventData';
  reward: Reward;
  from: RewardStatus | null;
  to: RewardStatus;
  reason: string | null;
}
interface PartnerData {
  kind: 'PartnerEventData';
  partner: Partner;
  changedFields: string[];
}
interface EnrollmentData {
  kind: 'EnrollmentEventData';
  enrollment: Enrollment;
  from: EnrollmentStatus | null;
  to: EnrollmentStatus;
}
interface ProgramData {
  kind: 'ProgramEventData';
  program: Program;
  changedFields: string[];
}
interface LinkData {
  kind: 'LinkEventData';
  link: ReferralLink;
}
interface PayoutData {
  kind: 'PayoutEventData';
  payout: Payout;
  from: PayoutStatus | null;
  to: PayoutStatus;
}
type EventData =
  | ConversionData
  | RewardData
  | RewardStatusData
  | PartnerData
  | EnrollmentData
  | ProgramData
  | LinkData
  | PayoutData;

const ConversionEventData = builder.objectRef<ConversionData>('ConversionEventData').implement({
  description: '`conversion.recorded`: the conversion (a refund too) and the rewards it created that you may see.',
  fields: (t) => ({
    conversion: t.field({ type: ConversionRef, nullable: false, resolve: (d) => d.conversion }),
    rewards: t.field({ type: [RewardRef], nullable: false, resolve: (d) => d.rewards }),
  }),
});

const RewardEventData = builder.objectRef<RewardData>('RewardEventData').implement({
  description: '`reward.created`: the new reward (a clawback too), as it is now.',
  fields: (t) => ({ reward: t.field({ type: RewardRef, nullable: false, resolve: (d) => d.reward }) }),
});

const RewardStatusEventData = builder.objectRef<RewardStatusData>('RewardStatusEventData').implement({
  description: '`reward.status_changed`: the reward as it is now, and the change this event records.',
  fields: (t) => ({
    reward: t.field({ type: RewardRef, nullable: false, resolve: (d) => d.reward }),
    from: t.field({ type: RewardStatusEnum, nullable: true, resolve: (d) => d.from }),
    to: t.field({ type: RewardStatusEnum, resolve: (d) => d.to }),
    reason: t.string({ nullable: true, resolve: (d) => d.reason }),
  }),
});

const PartnerEventData = builder.objectRef<PartnerData>('PartnerEventData').implement({
  description:
    '`partner.created`, `partner.updated`, `partner.status_changed`: the partner as it is now, and the fields the event changed (empty for a creation).',
  fields: (t) => ({
    partner: t.field({ type: PartnerRef, nullable: false, resolve: (d) => d.partner }),
    changedFields: t.stringList({ resolve: (d) => d.changedFields }),
  }),
});

const EnrollmentEventData = builder.objectRef<EnrollmentData>('EnrollmentEventData').implement({
  description:
    '`enrollment.applied`, `enrollment.status_changed`: the enrollment as it is now; `from` is null for a new enrollment.',
  fields: (t) => ({
    enrollment: t.field({ type: EnrollmentRef, nullable: false, resolve: (d) => d.enrollment }),
    from: t.field({ type: EnrollmentStatusEnum, nullable: true, resolve: (d) => d.from }),
    to: t.field({ type: EnrollmentStatusEnum, resolve: (d) => d.to }),
  }),
});

const ProgramEventData = builder.objectRef<ProgramData>('ProgramEventData').implement({
  description:
    '`program.created`, `program.updated`: the program as it is now, and the fields the event changed (empty for a creation).',
  fields: (t) => ({
    program: t.field({ type: ProgramRef, nullable: false, resolve: (d) => d.program }),
    changedFields: t.stringList({ resolve: (d) => d.changedFields }),
  }),
});

const LinkEventData = builder.objectRef<LinkData>('LinkEventData').implement({
  description: '`link.created`, `link.disabled`: the referral link as it is now.',
  fields: (t) => ({ link: t.field({ type: ReferralLinkRef, nullable: false, resolve: (d) => d.link }) }),
});

const PayoutEventData = builder.objectRef<PayoutData>('PayoutEventData').implement({
  description: '`payout.created` (from null), `payout.paid`: the payout as it is now, and the change.',
  fields: (t) => ({
    payout: t.field({ type: PayoutRef, nullable: false, resolve: (d) => d.payout }),
    from: t.field({ type: PayoutStatusEnum, nullable: true, resolve: (d) => d.from }),
    to: t.field({ type: PayoutStatusEnum, resolve: (d) => d.to }),
  }),
});

const EventDataUnion = builder.unionType('EventData', {
  description:
    'The typed content of an event, one member per family of event types, with its objects loaded fresh. `ReviewEventData` and `LedgerEventData` of the contract come with review items and ledger entries.',
  types: [
    ConversionEventData,
    RewardEventData,
    RewardStatusEventData,
    PartnerEventData,
    EnrollmentEventData,
    ProgramEventData,
    LinkEventData,
    PayoutEventData,
  ],
  resolveType: (data) => data.kind,
});

const fieldsOf = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

/** The typed data of an event, or null (a type without a member yet, or an object not visible). */
async function eventData(event: OutboxEvent, ctx: Context): Promise<EventData | null> {
  const p = event.payload as Record<string, unknown>;
  const type = event.type as EventType;
  switch (type) {
    case 'conversion.recorded': {
      const ids = Array.isArray(p.rewardIds) ? p.rewardIds : [];
      const [conversion, ...rewards] = await Promise.all([
        loadVisible(ctx, 'Conversion', p.conversionId),
        ...ids.map((id) => loadVisible(ctx, 'Reward', id)),
      ]);
      if (!conversion) return null;
      return {
        kind: 'ConversionEventData',
        conversion: conversion as Conversion,
        rewards: rewards.filter((r): r is Reward => r !== null),
      };
    }
    case 'reward.created': {
      const reward = await loadVisible(ctx, 'Reward', p.rewardId);
      return reward && { kind: 'RewardEventData', reward };
    }
    case 'reward.status_changed': {
      const reward = await loadVisible(ctx, 'Reward', p.rewardId);
      return (
        reward && {
          kind: 'RewardStatusEventData',
          reward,
          from: (p.from as RewardStatus | null) ?? null,
          to: p.to as RewardStatus,
          reason: (p.reason as string | null) ?? null,
        }
      );
    }
    case 'partner.created':
    case 'partner.updated':
    case 'partner.status_changed': {
      const partner = await loadVisible(ctx, 'Partner', p.partnerId);
      const changedFields =
        type === 'partner.status_changed' ? ['status'] : type === 'partner.updated' ? fieldsOf(p.changedFields) : [];
      return partner && { kind: 'PartnerEventData', partner, changedFields };
    }
    case 'enrollment.applied':
    case 'enrollment.status_changed': {
      const enrollment = await loadVisible(ctx, 'Enrollment', p.enrollmentId);
      return (
        enrollment && {
          kind: 'EnrollmentEventData',
          enrollment,
          from: (p.from as EnrollmentStatus | null) ?? null,
          to: p.to as EnrollmentStatus,
        }
      );
    }
    case 'program.created':
    case 'program.updated': {
      const program = await loadVisible(ctx, 'Program', p.programId);
      const changedFields = type === 'program.updated' ? fieldsOf(p.changedFields) : [];
      return program && { kind: 'ProgramEventData', program, changedFields };
    }
    case 'link.created':
    case 'link.disabled': {
      const link = await loadVisible(ctx, 'ReferralLink', p.linkId);
      return link && { kind: 'LinkEventData', link };
    }
    case 'payout.created':
    case 'payout.paid': {
      const payout = await loadVisible(ctx, 'Payout', p.payoutId);
      const [from, to]: [PayoutStatus | null, PayoutStatus] =
        type === 'payout.created' ? [null, 'PENDING'] : ['PENDING', 'PAID'];
      return payout && { kind: 'PayoutEventData', payout, from, to };
    }
    default:
      // reward_rule.*, referral.status_changed, balance.credited, api_key.*: no member yet (they
      // have `subject`; balance.credited waits for LedgerEventData).
      return null;
  }
}

builder.objectFields(EventRef, (t) => ({
  subject: t.node({
    description:
      'The object the event is about (a Program, RewardRule, Partner, Enrollment, ReferralLink, Conversion, Referral, Reward, Payout or ApiKey), loaded fresh; null when it is not visible to this credential.',
    id: (event, _args, ctx) => {
      const subject = EVENT_SUBJECTS[event.type as EventType];
      const id = subject ? (event.payload as Record<string, unknown>)[subject.field] : null;
      if (typeof id !== 'string' || !rowIdFrom(id, subject!.typename)) return null;
      // API keys are an ADMIN's business (the ApiKey type's own scope).
      if (subject!.typename === 'ApiKey' && ctx.auth?.role !== 'ADMIN') return null;
      return id;
    },
  }),
  data: t.field({
    type: EventDataUnion,
    nullable: true,
    description:
      'The typed payload, its objects loaded fresh; null for types without a member yet (reward_rule.*, referral.status_changed, balance.credited, api_key.*) and when the object is not visible to this credential.',
    resolve: (event, _args, ctx) => eventData(event, ctx),
  }),
}));
