import * as E from '../generated/prisma/enums.js';
import { builder } from './builder.js';

// The domain's enums, shared by several modules. Values come from the Prisma schema so the two
// can never drift apart.

export const ModeEnum = builder.enumType(E.Mode, {
  name: 'Mode',
  description: 'The isolated data set a credential works in: TEST (sandbox) or LIVE (production).',
});
export const RoleEnum = builder.enumType(E.Role, {
  name: 'Role',
  description: 'What a credential may do: ADMIN everything, READ_ONLY reads, PARTNER its own partner’s data.',
});
export const PartnerStatusEnum = builder.enumType(E.PartnerStatus, {
  name: 'PartnerStatus',
  description: 'An INACTIVE or BANNED partner’s new clicks and conversions are recorded as discarded, never rewarded.',
});
export const ProgramTypeEnum = builder.enumType(E.ProgramType, {
  name: 'ProgramType',
  description: 'REFERRAL: customers refer friends. AFFILIATE: partners promote for commission.',
});
export const ProgramStatusEnum = builder.enumType(E.ProgramStatus, {
  name: 'ProgramStatus',
  description: 'DRAFT → ACTIVE ⇄ PAUSED → ARCHIVED (final). Only ACTIVE programs reward conversions.',
});
export const EnrollmentStatusEnum = builder.enumType(E.EnrollmentStatus, {
  name: 'EnrollmentStatus',
  description: 'A partner’s membership of a program. APPROVED enrollments get a default referral link.',
});
export const ConversionTypeEnum = builder.enumType(E.ConversionType, {
  name: 'ConversionType',
  description: 'What happened in the company’s product.',
});
export const ConversionStatusEnum = builder.enumType(E.ConversionStatus, {
  name: 'ConversionStatus',
  description:
    'ACCEPTED: attributed and evaluated for rewards. DISCARDED: stored with a `discardReason`, never rewarded.',
});
export const ReferralStatusEnum = builder.enumType(E.ReferralStatus, {
  name: 'ReferralStatus',
  description: 'PENDING: signed up, nothing paid. CONVERTED: paid at least once. REJECTED: e.g. self-referral.',
});
export const RewardStatusEnum = builder.enumType(E.RewardStatus, {
  name: 'RewardStatus',
  description:
    'CREATED → APPROVED → PROCESSED; CREATED/APPROVED → CANCELED | REJECTED. Any other transition is refused.',
});
export const RewardKindEnum = builder.enumType(E.RewardKind, {
  name: 'RewardKind',
  description: 'What the reward is paid as.',
});
export const RewardRecipientEnum = builder.enumType(E.RewardRecipient, {
  name: 'RewardRecipient',
  description: 'REFERRER: the partner. REFERRED: the new customer (double-sided rewards).',
});
export const RewardTriggerEnum = builder.enumType(E.RewardTrigger, {
  name: 'RewardTrigger',
  description: 'The conversion type a rule rewards.',
});
export const AmountTypeEnum = builder.enumType(E.AmountType, {
  name: 'AmountType',
  description: 'FIXED: `fixedAmount`. PERCENTAGE: `percentageBasisPoints` of the conversion amount (1 bp = 0.01 %).',
});
export const PayoutStatusEnum = builder.enumType(E.PayoutStatus, {
  name: 'PayoutStatus',
  description:
    'PENDING holds the money it pays until it is PAID (markPayoutPaid), FAILED (markPayoutFailed) or CANCELED (cancelPayout); FAILED and CANCELED give it back to the partner’s available balance.',
});
export const LedgerEntryTypeEnum = builder.enumType(E.LedgerEntryType, {
  name: 'LedgerEntryType',
  description:
    'Why an entry moved a partner’s available CASH balance: REWARD_APPROVED (+), REWARD_REVERSED (− an approved reward canceled or rejected), CREDIT (± creditBalance), ADJUSTMENT (− a refund’s share of an unpaid reward), CLAWBACK (− a refund’s share of a paid reward), PAYOUT (− a payout’s amount, or a reward marked PROCESSED outside any payout), PAYOUT_REVERSED (+ a failed or canceled payout’s amount).',
});
export const AttributionModelEnum = builder.enumType(E.AttributionModel, {
  name: 'AttributionModel',
  description:
    'Who a referred person belongs to when a later conversion names another partner. FIRST_TOUCH (default): the first partner who brought them, for good. LAST_TOUCH: a conversion with another partner’s coupon, code or click (inside the attribution window) moves them to that partner from then on; rewards already created stay with the partners that earned them.',
});
