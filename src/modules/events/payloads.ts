import type {
  ApiKey,
  Member,
  Conversion,
  Coupon,
  Enrollment,
  Partner,
  Payout,
  Program,
  ReferralLink,
  Reward,
  RewardRule,
  StripeIntegration,
  Tier,
} from '../../generated/prisma/client.js';
import type { EnrollmentStatus, PartnerStatus, ReferralStatus, RewardStatus } from '../../generated/prisma/enums.js';
import { globalId } from '../../lib/global-id.js';
import { formatMinor } from '../../lib/money.js';
import type { EventType, NewEvent } from './outbox.js';
import type { TierChange } from '../tier/evaluate.js';

// One builder per event type: the only place that shapes an event's payload and encodes the
// global ids in it. Services call these and append the result (appendEvent/appendEvents) in the
// transaction of their change. The payload is the JSON webhooks receive (`Event.payload`); the
// typed `Event.data` (events.graphql.ts) is resolved from the ids in it, per `EVENT_SUBJECTS`.

const gid = globalId;
const gidOrNull = (typename: string, id: string | null | undefined) => (id ? gid(typename, id) : null);
const money = (amount: bigint, currency: string) => ({ amount: formatMinor(amount, currency), currency });

/** Which payload field holds the global id of the event's subject (`Event.subject`), per type. */
export const EVENT_SUBJECTS: Readonly<Record<EventType, { typename: string; field: string }>> = {
  'program.created': { typename: 'Program', field: 'programId' },
  'program.updated': { typename: 'Program', field: 'programId' },
  'reward_rule.created': { typename: 'RewardRule', field: 'ruleId' },
  'reward_rule.updated': { typename: 'RewardRule', field: 'ruleId' },
  'reward_rule.archived': { typename: 'RewardRule', field: 'ruleId' },
  'tier.created': { typename: 'Tier', field: 'tierId' },
  'tier.updated': { typename: 'Tier', field: 'tierId' },
  'tier.deleted': { typename: 'Tier', field: 'tierId' },
  'tier.changed': { typename: 'Enrollment', field: 'enrollmentId' },
  'partner.created': { typename: 'Partner', field: 'partnerId' },
  'partner.updated': { typename: 'Partner', field: 'partnerId' },
  'partner.status_changed': { typename: 'Partner', field: 'partnerId' },
  'partner.erased': { typename: 'Partner', field: 'partnerId' },
  'enrollment.applied': { typename: 'Enrollment', field: 'enrollmentId' },
  'enrollment.status_changed': { typename: 'Enrollment', field: 'enrollmentId' },
  'enrollment.overrides_changed': { typename: 'Enrollment', field: 'enrollmentId' },
  'link.created': { typename: 'ReferralLink', field: 'linkId' },
  'coupon.created': { typename: 'Coupon', field: 'couponId' },
  'coupon.disabled': { typename: 'Coupon', field: 'couponId' },
  'link.updated': { typename: 'ReferralLink', field: 'linkId' },
  'link.disabled': { typename: 'ReferralLink', field: 'linkId' },
  'conversion.recorded': { typename: 'Conversion', field: 'conversionId' },
  'referral.status_changed': { typename: 'Referral', field: 'referralId' },
  'reward.created': { typename: 'Reward', field: 'rewardId' },
  'reward.status_changed': { typename: 'Reward', field: 'rewardId' },
  'balance.credited': { typename: 'Partner', field: 'partnerId' },
  'payout.created': { typename: 'Payout', field: 'payoutId' },
  'payout.paid': { typename: 'Payout', field: 'payoutId' },
  'payout.failed': { typename: 'Payout', field: 'payoutId' },
  'payout.canceled': { typename: 'Payout', field: 'payoutId' },
  'review.opened': { typename: 'ReviewItem', field: 'reviewItemId' },
  'review.resolved': { typename: 'ReviewItem', field: 'reviewItemId' },
  'api_key.created': { typename: 'ApiKey', field: 'apiKeyId' },
  'api_key.revoked': { typename: 'ApiKey', field: 'apiKeyId' },
  'member.invited': { typename: 'Member', field: 'memberId' },
  'member.joined': { typename: 'Member', field: 'memberId' },
  'member.removed': { typename: 'Member', field: 'memberId' },
  'integration.connected': { typename: 'StripeIntegration', field: 'integrationId' },
  'integration.disconnected': { typename: 'StripeIntegration', field: 'integrationId' },
  'integration.failed': { typename: 'StripeIntegration', field: 'integrationId' },
};

// --- Programs and reward rules ---------------------------------------------------------------

export function programCreated(program: Program): NewEvent {
  return {
    type: 'program.created',
    programId: program.id,
    payload: {
      programId: gid('Program', program.id),
      name: program.name,
      type: program.type,
      status: program.status,
      currency: program.currency,
    },
  };
}

/** `changedFields`: the names of the fields that changed (e.g. `status`, `holdDays`). */
export function programUpdated(before: Program, after: Program, changedFields: readonly string[]): NewEvent {
  return {
    type: 'program.updated',
    programId: after.id,
    payload: {
      programId: gid('Program', after.id),
      changedFields: [...changedFields],
      status: after.status,
      ...(before.status !== after.status ? { from: before.status, to: after.status } : {}),
    },
  };
}

function ruleFacts(rule: RewardRule) {
  return {
    ruleId: gid('RewardRule', rule.id),
    lineageId: gid('RewardRule', rule.lineageId),
    version: rule.version,
    programId: gid('Program', rule.programId),
  };
}

export function rewardRuleCreated(rule: RewardRule): NewEvent {
  return {
    type: 'reward_rule.created',
    programId: rule.programId,
    payload: { ...ruleFacts(rule), trigger: rule.trigger, recipient: rule.recipient, kind: rule.kind },
  };
}

/** `rule` is the new version; `previous` the one it superseded. */
export function rewardRuleUpdated(rule: RewardRule, previous: RewardRule): NewEvent {
  return {
    type: 'reward_rule.updated',
    programId: rule.programId,
    payload: { ...ruleFacts(rule), previousRuleId: gid('RewardRule', previous.id) },
  };
}

export function rewardRuleArchived(rule: RewardRule): NewEvent {
  return {
    type: 'reward_rule.archived',
    programId: rule.programId,
    payload: { ...ruleFacts(rule), archivedAt: rule.archivedAt?.toISOString() ?? null },
  };
}

// --- Tiers -------------------------------------------------------------------------------------

function tierFacts(tier: Tier) {
  return {
    tierId: gid('Tier', tier.id),
    programId: gid('Program', tier.programId),
    name: tier.name,
    metric: tier.metric,
    threshold: tier.threshold,
    periodDays: tier.periodDays,
  };
}

/** `overrides`: how many rule overrides the tier has. */
export function tierCreated(tier: Tier, overrides: number): NewEvent {
  return { type: 'tier.created', programId: tier.programId, payload: { ...tierFacts(tier), overrides } };
}

/** `changedFields`: the fields updateTier changed (`overrides` when the set was replaced). */
export function tierUpdated(tier: Tier, changedFields: readonly string[], overrides: number): NewEvent {
  return {
    type: 'tier.updated',
    programId: tier.programId,
    payload: { ...tierFacts(tier), changedFields: [...changedFields], overrides },
  };
}

export function tierDeleted(tier: Tier): NewEvent {
  return { type: 'tier.deleted', programId: tier.programId, payload: tierFacts(tier) };
}

/**
 * `tier.changed`: a partner moved to another tier of a program (or to none). Filed under the
 * enrollment (`from`/`to` are its status, as for the other enrollment events); `fromTier` and
 * `toTier` are the tiers, null for none; `direction` UP or DOWN (by threshold; losing the tier is DOWN).
 */
export function tierChanged(change: TierChange, direction: 'UP' | 'DOWN'): NewEvent {
  const tier = (t: TierChange['from']) => (t ? { tierId: gid('Tier', t.id), name: t.name } : null);
  return {
    type: 'tier.changed',
    programId: change.programId,
    partnerId: change.partnerId,
    payload: {
      enrollmentId: gid('Enrollment', change.enrollmentId),
      programId: gid('Program', change.programId),
      partnerId: gid('Partner', change.partnerId),
      from: change.status,
      to: change.status,
      fromTier: tier(change.from),
      toTier: tier(change.to),
      direction,
    },
  };
}

// --- Partners, enrollments, links -------------------------------------------------------------

export function partnerCreated(partner: Pick<Partner, 'id' | 'externalId' | 'status'>): NewEvent {
  return {
    type: 'partner.created',
    partnerId: partner.id,
    payload: { partnerId: gid('Partner', partner.id), externalId: partner.externalId, status: partner.status },
  };
}

/** `changedFields`: `name` and/or `email` (updatePartner). */
export function partnerUpdated(
  partner: Pick<Partner, 'id' | 'externalId'>,
  changedFields: readonly string[],
): NewEvent {
  return {
    type: 'partner.updated',
    partnerId: partner.id,
    payload: {
      partnerId: gid('Partner', partner.id),
      externalId: partner.externalId,
      changedFields: [...changedFields],
    },
  };
}

export function partnerStatusChanged(partnerId: string, from: PartnerStatus, to: PartnerStatus): NewEvent {
  return { type: 'partner.status_changed', partnerId, payload: { partnerId: gid('Partner', partnerId), from, to } };
}

/**
 * `partner.erased` (erasePartner): the partner's personal data was replaced by a tombstone and
 * its status set to BANNED (`from` its previous status). Ids and facts only: never the personal
 * data that was erased (the old externalId, name, email or metadata).
 */
export function partnerErased(partner: Pick<Partner, 'id' | 'erasedAt' | 'status'>, from: PartnerStatus): NewEvent {
  return {
    type: 'partner.erased',
    partnerId: partner.id,
    payload: {
      partnerId: gid('Partner', partner.id),
      erasedAt: partner.erasedAt?.toISOString() ?? null,
      from,
      to: partner.status,
    },
  };
}

function enrollmentFacts(enrollment: Pick<Enrollment, 'id' | 'programId' | 'partnerId'>) {
  return {
    enrollmentId: gid('Enrollment', enrollment.id),
    programId: gid('Program', enrollment.programId),
    partnerId: gid('Partner', enrollment.partnerId),
  };
}

/**
 * A new enrollment: `enrollment.applied` when it is PENDING (an application awaiting approval),
 * `enrollment.status_changed` from null when it starts APPROVED (the program auto-approves).
 */
export function enrollmentCreated(enrollment: Pick<Enrollment, 'id' | 'programId' | 'partnerId' | 'status'>): NewEvent {
  return {
    type: enrollment.status === 'PENDING' ? 'enrollment.applied' : 'enrollment.status_changed',
    programId: enrollment.programId,
    partnerId: enrollment.partnerId,
    payload: { ...enrollmentFacts(enrollment), from: null, to: enrollment.status },
  };
}

/** `reason`: why it was REJECTED (`rejectionReason`), null without one and for an approval. */
export function enrollmentStatusChanged(
  enrollment: Pick<Enrollment, 'id' | 'programId' | 'partnerId'>,
  from: EnrollmentStatus,
  to: EnrollmentStatus,
  reason: string | null = null,
): NewEvent {
  return {
    type: 'enrollment.status_changed',
    programId: enrollment.programId,
    partnerId: enrollment.partnerId,
    payload: { ...enrollmentFacts(enrollment), from, to, reason },
  };
}

/** `enrollment.overrides_changed`: the enrollment's rule overrides were replaced (`overrides`: how many it has now). */
export function enrollmentOverridesChanged(
  enrollment: Pick<Enrollment, 'id' | 'programId' | 'partnerId' | 'status'>,
  overrides: number,
): NewEvent {
  return {
    type: 'enrollment.overrides_changed',
    programId: enrollment.programId,
    partnerId: enrollment.partnerId,
    payload: { ...enrollmentFacts(enrollment), from: enrollment.status, to: enrollment.status, overrides },
  };
}

function linkFacts(link: Pick<ReferralLink, 'id' | 'code' | 'programId' | 'partnerId'>) {
  return {
    linkId: gid('ReferralLink', link.id),
    code: link.code,
    programId: gid('Program', link.programId),
    partnerId: gid('Partner', link.partnerId),
  };
}

export function linkCreated(
  link: Pick<ReferralLink, 'id' | 'code' | 'programId' | 'partnerId' | 'isDefault' | 'destinationUrl'>,
): NewEvent {
  return {
    type: 'link.created',
    programId: link.programId,
    partnerId: link.partnerId,
    payload: { ...linkFacts(link), isDefault: link.isDefault, destinationUrl: link.destinationUrl },
  };
}

/** `link.updated`: a link moved to another program (`fromProgramId`) and/or given another destination. */
export function linkUpdated(link: ReferralLink, changedFields: readonly string[], fromProgramId: string): NewEvent {
  return {
    type: 'link.updated',
    programId: link.programId,
    partnerId: link.partnerId,
    payload: {
      ...linkFacts(link),
      changedFields: [...changedFields],
      fromProgramId: gid('Program', fromProgramId),
      destinationUrl: link.destinationUrl,
    },
  };
}

export function linkDisabled(link: ReferralLink): NewEvent {
  return {
    type: 'link.disabled',
    programId: link.programId,
    partnerId: link.partnerId,
    payload: { ...linkFacts(link), disabledAt: link.disabledAt?.toISOString() ?? null },
  };
}

function couponFacts(coupon: Coupon) {
  return {
    couponId: gid('Coupon', coupon.id),
    code: coupon.code,
    programId: gid('Program', coupon.programId),
    partnerId: gid('Partner', coupon.partnerId),
  };
}

export function couponCreated(coupon: Coupon): NewEvent {
  return {
    type: 'coupon.created',
    programId: coupon.programId,
    partnerId: coupon.partnerId,
    payload: couponFacts(coupon),
  };
}

export function couponDisabled(coupon: Coupon): NewEvent {
  return {
    type: 'coupon.disabled',
    programId: coupon.programId,
    partnerId: coupon.partnerId,
    payload: { ...couponFacts(coupon), disabledAt: coupon.disabledAt?.toISOString() ?? null },
  };
}

// --- Conversions and rewards -------------------------------------------------------------------

/**
 * A recorded conversion, accepted or discarded, a refund included (`refundOfId`: the refunded
 * conversion's global id; null otherwise). `rewardIds`: the rewards it created.
 */
export function conversionRecorded(
  conversion: Pick<
    Conversion,
    | 'id'
    | 'type'
    | 'status'
    | 'discardReason'
    | 'refundOfId'
    | 'programId'
    | 'partnerId'
    | 'referralId'
    | 'amount'
    | 'currency'
    | 'occurredAt'
  >,
  rewardIds: readonly string[],
): NewEvent {
  const c = conversion;
  return {
    type: 'conversion.recorded',
    programId: c.programId,
    partnerId: c.partnerId,
    payload: {
      conversionId: gid('Conversion', c.id),
      type: c.type,
      status: c.status,
      discardReason: c.discardReason,
      refundOfId: gidOrNull('Conversion', c.refundOfId),
      programId: gidOrNull('Program', c.programId),
      partnerId: gidOrNull('Partner', c.partnerId),
      referralId: gidOrNull('Referral', c.referralId),
      amount: c.amount !== null && c.currency !== null ? money(c.amount, c.currency) : null,
      occurredAt: c.occurredAt.toISOString(),
      rewardIds: rewardIds.map((id) => gid('Reward', id)),
    },
  };
}

/**
 * An existing referral's status changed: by a conversion, PENDING → CONVERTED (its first payment)
 * or → REJECTED (a self-referral found only later), `reason` null; by an admin
 * (`setReferralStatus`), → REJECTED or a reinstatement, with the admin's `reason` (null when none
 * was given). A new referral is announced by its conversion's `conversion.recorded` (`referralId`).
 */
export function referralStatusChanged(
  referral: { id: string; programId: string | null; partnerId: string | null },
  from: ReferralStatus,
  to: ReferralStatus,
  reason: string | null = null,
): NewEvent {
  return {
    type: 'referral.status_changed',
    programId: referral.programId,
    partnerId: referral.partnerId,
    payload: {
      referralId: gid('Referral', referral.id),
      programId: gidOrNull('Program', referral.programId),
      partnerId: gidOrNull('Partner', referral.partnerId),
      from,
      to,
      reason,
    },
  };
}

/** A new reward, a clawback included (`sourceRewardId`: the reward it claws back; null otherwise). */
export function rewardCreated(reward: Reward): NewEvent {
  return {
    type: 'reward.created',
    programId: reward.programId,
    partnerId: reward.partnerId,
    payload: {
      rewardId: gid('Reward', reward.id),
      sourceRewardId: gidOrNull('Reward', reward.sourceRewardId),
      conversionId: gid('Conversion', reward.conversionId),
      programId: gid('Program', reward.programId),
      partnerId: gid('Partner', reward.partnerId),
      ruleId: gid('RewardRule', reward.ruleId),
      recipient: reward.recipient,
      kind: reward.kind,
      status: reward.status,
      amount: money(reward.amount, reward.currency),
      approveAfter: reward.approveAfter.toISOString(),
    },
  };
}

export function rewardStatusChanged(change: {
  reward: Reward;
  from: RewardStatus;
  to: RewardStatus;
  reason: string | null;
  at: Date;
}): NewEvent {
  const { reward, from, to, reason, at } = change;
  return {
    type: 'reward.status_changed',
    programId: reward.programId,
    partnerId: reward.partnerId,
    payload: {
      rewardId: gid('Reward', reward.id),
      programId: gid('Program', reward.programId),
      partnerId: gid('Partner', reward.partnerId),
      conversionId: gid('Conversion', reward.conversionId),
      recipient: reward.recipient,
      amount: money(reward.amount, reward.currency),
      from,
      to,
      reason,
      at: at.toISOString(),
    },
  };
}

// --- Money -------------------------------------------------------------------------------------

export function balanceCredited(credit: {
  entryId: string;
  partnerId: string;
  amount: bigint;
  currency: string;
  note: string | null;
  idempotencyKey: string | null;
}): NewEvent {
  return {
    type: 'balance.credited',
    partnerId: credit.partnerId,
    payload: {
      entryId: gid('LedgerEntry', credit.entryId),
      partnerId: gid('Partner', credit.partnerId),
      amount: money(credit.amount, credit.currency),
      note: credit.note,
      idempotencyKey: credit.idempotencyKey,
    },
  };
}

/** What every payout event says of its payout. */
function payoutFacts(payout: Payout) {
  return {
    payoutId: gid('Payout', payout.id),
    partnerId: gid('Partner', payout.partnerId),
    amount: money(payout.amount, payout.currency),
    status: payout.status,
  };
}

export function payoutCreated(payout: Payout, rewardCount: number): NewEvent {
  return {
    type: 'payout.created',
    partnerId: payout.partnerId,
    payload: {
      ...payoutFacts(payout),
      method: payout.method,
      rewardCount,
    },
  };
}

/** `payout.failed` / `payout.canceled`: a PENDING payout released what it held (its reason, the rewards let go). */
export function payoutReleased(payout: Payout, releasedRewardIds: readonly string[]): NewEvent {
  return {
    type: payout.status === 'FAILED' ? 'payout.failed' : 'payout.canceled',
    partnerId: payout.partnerId,
    payload: {
      ...payoutFacts(payout),
      reason: payout.failureReason,
      rewardIds: releasedRewardIds.map((id) => gid('Reward', id)),
    },
  };
}

export function payoutPaid(payout: Payout, paidAt: Date): NewEvent {
  return {
    type: 'payout.paid',
    partnerId: payout.partnerId,
    payload: {
      ...payoutFacts(payout),
      externalReference: payout.externalReference,
      paidAt: paidAt.toISOString(),
    },
  };
}

// --- Review queue ------------------------------------------------------------------------------

/** What every review event says of its item. */
function reviewFacts(item: { id: string; conversionId: string; programId: string; partnerId: string }) {
  return {
    reviewItemId: gid('ReviewItem', item.id),
    conversionId: gid('Conversion', item.conversionId),
    programId: gid('Program', item.programId),
    partnerId: gid('Partner', item.partnerId),
  };
}

/**
 * `review.opened`: a conversion tripped its program's fraud rules (or was flagged by hand), and
 * its rewards (`rewardIds`) wait for a decision. The event's partner column stays empty, so a
 * PARTNER credential never sees it (the partner's id is in the payload): the review queue is the
 * company's.
 */
export function reviewOpened(
  item: {
    id: string;
    conversionId: string;
    programId: string;
    partnerId: string;
    signals: ReadonlyArray<{ type: string; detail: string }>;
  },
  rewardIds: readonly string[],
): NewEvent {
  return {
    type: 'review.opened',
    programId: item.programId,
    payload: {
      ...reviewFacts(item),
      signals: item.signals.map(({ type, detail }) => ({ type, detail })),
      rewardIds: rewardIds.map((id) => gid('Reward', id)),
    },
  };
}

/**
 * `review.resolved`: an item was APPROVED (its rewards released into the lifecycle) or REJECTED
 * (its rewards rejected), by resolveReviewItems or a partner's ban, with the reason. No partner
 * column, like `review.opened`.
 */
export function reviewResolved(
  item: { id: string; conversionId: string; programId: string; partnerId: string },
  status: 'APPROVED' | 'REJECTED',
  reason: string | null,
  decidedAt: Date,
  rewardIds: readonly string[],
): NewEvent {
  return {
    type: 'review.resolved',
    programId: item.programId,
    payload: {
      ...reviewFacts(item),
      status,
      reason,
      decidedAt: decidedAt.toISOString(),
      rewardIds: rewardIds.map((id) => gid('Reward', id)),
    },
  };
}

// --- API keys ------------------------------------------------------------------------------------

export function apiKeyCreated(key: Pick<ApiKey, 'id' | 'name' | 'role'>): NewEvent {
  return { type: 'api_key.created', payload: { apiKeyId: gid('ApiKey', key.id), name: key.name, role: key.role } };
}

export function apiKeyRevoked(key: Pick<ApiKey, 'id' | 'name' | 'role'>): NewEvent {
  return { type: 'api_key.revoked', payload: { apiKeyId: gid('ApiKey', key.id), name: key.name, role: key.role } };
}

// --- Team members ------------------------------------------------------------------------------
// A member belongs to the workspace, not to a mode: member.service.ts appends these to both modes.

function memberFacts(member: Pick<Member, 'id' | 'email' | 'role' | 'name'>) {
  return { memberId: gid('Member', member.id), email: member.email, name: member.name, role: member.role };
}

/** `member.invited`: an invitation was sent (again, for an email still INVITED). */
export function memberInvited(
  member: Pick<Member, 'id' | 'email' | 'role' | 'name' | 'invitationExpiresAt'>,
): NewEvent {
  return {
    type: 'member.invited',
    payload: { ...memberFacts(member), invitationExpiresAt: member.invitationExpiresAt?.toISOString() ?? null },
  };
}

/** `member.joined`: the invitee accepted and set their password. */
export function memberJoined(member: Pick<Member, 'id' | 'email' | 'role' | 'name'>): NewEvent {
  return { type: 'member.joined', payload: memberFacts(member) };
}

/** `member.removed`: the member and their sessions are gone. */
export function memberRemoved(member: Pick<Member, 'id' | 'email' | 'role' | 'name'>): NewEvent {
  return { type: 'member.removed', payload: memberFacts(member) };
}

// --- Payment provider integrations -------------------------------------------------------------

/** What every integration event says of its integration. */
function integrationFacts(integration: Pick<StripeIntegration, 'id' | 'programId'>) {
  return {
    integrationId: gid('StripeIntegration', integration.id),
    provider: 'stripe',
    programId: gid('Program', integration.programId),
  };
}

export function integrationConnected(
  integration: Pick<StripeIntegration, 'id' | 'programId' | 'customerKey' | 'customerMetadataKey'>,
): NewEvent {
  return {
    type: 'integration.connected',
    programId: integration.programId,
    payload: {
      ...integrationFacts(integration),
      customerKey: integration.customerKey,
      customerMetadataKey: integration.customerMetadataKey,
    },
  };
}

export function integrationDisconnected(integration: Pick<StripeIntegration, 'id' | 'programId'>): NewEvent {
  return { type: 'integration.disconnected', programId: integration.programId, payload: integrationFacts(integration) };
}

/** A provider event the integration could not apply (its log entry says why; the provider may send it again). */
export function integrationFailed(
  integration: Pick<StripeIntegration, 'id' | 'programId'>,
  failure: { eventLogId: string; providerEventId: string; providerEventType: string; reason: string },
): NewEvent {
  return {
    type: 'integration.failed',
    programId: integration.programId,
    payload: {
      ...integrationFacts(integration),
      eventLogId: gid('StripeEventLog', failure.eventLogId),
      stripeEventId: failure.providerEventId,
      stripeEventType: failure.providerEventType,
      reason: failure.reason,
    },
  };
}
