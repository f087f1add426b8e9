import type { EnrollmentStatus, PartnerStatus, ProgramStatus, ReferralStatus } from '../../generated/prisma/enums.js';
import type { FraudRules } from '../review/fraud-rules.js';

// Attribution: who, if anyone, brought the referred person of a conversion. The rules (and the
// reading of DOMAIN.md they implement) are in README.md next to this file. Everything here is
// pure: plain facts in, a Decision out. attribution-facts.ts loads the facts (one statement);
// referral-writes.ts carries out the decision.

const DAY_MS = 86_400_000;

/** Machine-readable reasons a conversion is stored DISCARDED (Conversion.discardReason). */
export const DISCARD_REASONS = {
  NO_ATTRIBUTION: 'Neither a click id nor a code was given, and the referred person has no referral.',
  UNKNOWN_CLICK: 'The click id is not a valid click id of a link in this workspace and mode.',
  UNKNOWN_CODE: 'No referral link has this code in this workspace and mode.',
  UNKNOWN_COUPON: 'No coupon has this code in this workspace and mode.',
  CLICK_DISCARDED: 'The click was recorded as not rewardable when it happened (e.g. the partner was inactive then).',
  LINK_DISABLED: 'The referral link is disabled.',
  COUPON_DISABLED: 'The coupon is disabled.',
  PARTNER_INACTIVE: 'The partner is INACTIVE.',
  PARTNER_BANNED: 'The partner is BANNED.',
  PROGRAM_NOT_ACTIVE: 'The program is not ACTIVE (DRAFT, PAUSED or ARCHIVED).',
  ENROLLMENT_NOT_APPROVED: 'The partner’s enrollment in the program is not APPROVED.',
  ATTRIBUTION_WINDOW_EXPIRED: 'The conversion happened more than the program’s attributionWindowDays after the click.',
  SELF_REFERRAL:
    'The referred person is the partner (same externalId or email) and the program does not allow self-referrals.',
  PROGRAM_MISMATCH: 'The click or code belongs to another program than the given programId.',
  REFERRAL_REJECTED: 'The referred person’s referral in the program is REJECTED (e.g. an earlier self-referral).',
} as const;

export type DiscardReason = keyof typeof DISCARD_REASONS;

export interface ProgramFacts {
  id: string;
  status: ProgramStatus;
  attributionWindowDays: number;
  allowSelfReferral: boolean;
  holdDays: number;
  attributionModel: 'FIRST_TOUCH' | 'LAST_TOUCH';
  /** The program's fraud rules (review/fraud-rules.ts): attribution ignores them, recordConversion applies them. */
  fraudRules: FraudRules;
}

/**
 * The facts of the fraud rules that need the database, for one (partner, program) a conversion
 * may be attributed to: loaded with the attribution facts, only for rules that are on (null otherwise).
 */
export interface CandidateFraudFacts {
  ipMatchesPartner: boolean | null;
  recentConversions: number | null;
}

export interface PartnerFacts {
  id: string;
  externalId: string;
  email: string | null;
  status: PartnerStatus;
}

export type SignalSource = 'coupon' | 'click' | 'code';

/** A referral link (through a click id or a code) or a coupon, with everything attribution checks. */
export interface TouchFacts {
  source: SignalSource;
  /** The link of a click or code; null for a coupon. */
  linkId: string | null;
  /** The coupon of a couponCode; null for a click or code. */
  couponId: string | null;
  /** The link or the coupon is disabled. */
  disabled: boolean;
  program: ProgramFacts;
  partner: PartnerFacts;
  enrollment: { id: string; status: EnrollmentStatus };
  /** Click ids only: the click row and when the click happened. */
  click: { rowId: string; clickedAt: Date; discarded: boolean } | null;
  fraud: CandidateFraudFacts;
}

/** An explicit attribution signal of the conversion: resolved to a link, or not. */
export type Signal =
  | { source: SignalSource; touch: TouchFacts }
  | { source: SignalSource; unknown: 'UNKNOWN_CLICK' | 'UNKNOWN_CODE' | 'UNKNOWN_COUPON' };

export interface ReferralFacts {
  id: string;
  status: ReferralStatus;
  email: string | null;
  createdAt: Date;
  linkId: string | null;
  program: ProgramFacts;
  partner: PartnerFacts;
  /** null if the enrollment was deleted. */
  enrollment: { id: string; status: EnrollmentStatus } | null;
  fraud: CandidateFraudFacts;
}

/** The referred person as the conversion describes them. */
export interface Referred {
  externalId: string;
  email: string | null;
  occurredAt: Date;
}

export type Decision =
  /** Bound to an existing referral (first touch); `discard` says why it is not rewarded, if so. */
  | { outcome: 'existing'; referral: ReferralFacts; discard: DiscardReason | null }
  /** A new referral through this touch; SELF_REFERRAL still records it, as REJECTED. */
  | { outcome: 'new'; touch: TouchFacts; discard: 'SELF_REFERRAL' | null }
  /** LAST_TOUCH: the existing referral moves to this touch's partner (and link) from now on. */
  | { outcome: 'rebind'; referral: ReferralFacts; touch: TouchFacts }
  /** Not attributed: no referral is created or changed. */
  | { outcome: 'discard'; reason: DiscardReason; touch: TouchFacts | null };

/** Is the referred person the partner themself? Same externalId (exact), or same email ignoring case. */
export function isSelfReferral(
  partner: Pick<PartnerFacts, 'externalId' | 'email'>,
  referred: { externalId: string; email: string | null },
): boolean {
  if (referred.externalId === partner.externalId) return true;
  const a = referred.email?.trim().toLowerCase();
  const b = partner.email?.trim().toLowerCase();
  return Boolean(a && b && a === b);
}

function partnerReason(partner: PartnerFacts): DiscardReason | null {
  if (partner.status === 'BANNED') return 'PARTNER_BANNED';
  if (partner.status === 'INACTIVE') return 'PARTNER_INACTIVE';
  return null;
}

/** Why a conversion of an existing referral is not rewarded, or null when it is. */
export function checkReferral(referral: ReferralFacts, referred: Referred): DiscardReason | null {
  if (referral.status === 'REJECTED') return 'REFERRAL_REJECTED';
  if (referral.program.status !== 'ACTIVE') return 'PROGRAM_NOT_ACTIVE';
  const partner = partnerReason(referral.partner);
  if (partner) return partner;
  if (referral.enrollment?.status !== 'APPROVED') return 'ENROLLMENT_NOT_APPROVED';
  const email = referred.email ?? referral.email;
  if (
    !referral.program.allowSelfReferral &&
    isSelfReferral(referral.partner, { externalId: referred.externalId, email })
  )
    return 'SELF_REFERRAL';
  return null;
}

/** Why this touch cannot bind the referred person in `programId`, or null when it can. */
export function checkTouch(touch: TouchFacts, programId: string | null, referred: Referred): DiscardReason | null {
  if (programId !== null && touch.program.id !== programId) return 'PROGRAM_MISMATCH';
  if (touch.program.status !== 'ACTIVE') return 'PROGRAM_NOT_ACTIVE';
  if (touch.disabled) return touch.source === 'coupon' ? 'COUPON_DISABLED' : 'LINK_DISABLED';
  const partner = partnerReason(touch.partner);
  if (partner) return partner;
  if (touch.enrollment.status !== 'APPROVED') return 'ENROLLMENT_NOT_APPROVED';
  if (touch.click) {
    if (touch.click.discarded) return 'CLICK_DISCARDED';
    const elapsed = referred.occurredAt.getTime() - touch.click.clickedAt.getTime();
    if (elapsed > touch.program.attributionWindowDays * DAY_MS) return 'ATTRIBUTION_WINDOW_EXPIRED';
  }
  if (!touch.program.allowSelfReferral && isSelfReferral(touch.partner, referred)) return 'SELF_REFERRAL';
  return null;
}

/** The program a conversion is about: the given one, else the first signal's that resolved. */
export function programInScope(givenProgramId: string | null, signals: readonly Signal[]): string | null {
  if (givenProgramId) return givenProgramId;
  for (const signal of signals) if ('touch' in signal) return signal.touch.program.id;
  return null;
}

/**
 * Decide the attribution of a conversion:
 * 1. an existing referral of the person in the program in scope wins (FIRST_TOUCH, the default)
 *    — signals cannot move them to another partner. Under LAST_TOUCH, the first signal of
 *    another partner that passes every check (a click inside the window, a code, a coupon) moves
 *    the referral to that partner (`rebind`); a REJECTED referral never moves;
 * 2. else the signals in order (coupon, then click id, then code — a coupon wins over a click,
 *    as in Rewardful): the first that passes every check binds the person (a new referral);
 * 3. else DISCARDED with the reason of the first signal (NO_ATTRIBUTION without any).
 */
export function decideAttribution(args: {
  programId: string | null;
  signals: readonly Signal[];
  referral: ReferralFacts | null;
  referred: Referred;
}): Decision {
  const { referral, referred } = args;
  if (referral) {
    if (referral.program.attributionModel === 'LAST_TOUCH' && referral.status !== 'REJECTED') {
      for (const signal of args.signals) {
        if (!('touch' in signal) || signal.touch.partner.id === referral.partner.id) continue;
        if (checkTouch(signal.touch, referral.program.id, referred) === null)
          return { outcome: 'rebind', referral, touch: signal.touch };
      }
    }
    return { outcome: 'existing', referral, discard: checkReferral(referral, referred) };
  }
  if (args.signals.length === 0) return { outcome: 'discard', reason: 'NO_ATTRIBUTION', touch: null };

  const programId = programInScope(args.programId, args.signals);
  // The reason reported: the first resolved signal's (it says more than "unknown"), else the first's.
  let failure: { reason: DiscardReason; touch: TouchFacts | null; resolved: boolean } | null = null;
  for (const signal of args.signals) {
    if (!('touch' in signal)) {
      failure ??= { reason: signal.unknown, touch: null, resolved: false };
      continue;
    }
    const reason = checkTouch(signal.touch, programId, referred);
    if (reason === null) return { outcome: 'new', touch: signal.touch, discard: null };
    // Another program's partner is not recorded on a PROGRAM_MISMATCH conversion.
    if (!failure?.resolved)
      failure = { reason, touch: reason === 'PROGRAM_MISMATCH' ? null : signal.touch, resolved: true };
  }
  const { reason, touch } = failure!;
  // A self-referral still records who they are, as a REJECTED referral: later events stay discarded.
  if (reason === 'SELF_REFERRAL' && touch) return { outcome: 'new', touch, discard: 'SELF_REFERRAL' };
  return { outcome: 'discard', reason, touch };
}
