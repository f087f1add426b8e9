import { sql, type SqlFragment, type SqlTx } from '../../lib/sql.js';
import type { EnrollmentStatus, PartnerStatus, ProgramStatus, ReferralStatus } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import { NIL_UUID } from '../../lib/ids.js';
import { normalizeCode } from '../link/codes.js';

// Attribution: who, if anyone, brought the referred person of a conversion. The rules (and the
// reading of DOMAIN.md they implement) are in README.md next to this file. The decision itself
// is pure (decideAttribution); loadFacts below fetches the facts it decides on, in one statement.

const DAY_MS = 86_400_000;

/** Machine-readable reasons a conversion is stored DISCARDED (Conversion.discardReason). */
export const DISCARD_REASONS = {
  NO_ATTRIBUTION: 'Neither a click id nor a code was given, and the referred person has no referral.',
  UNKNOWN_CLICK: 'The click id is not a valid click id of a link in this workspace and mode.',
  UNKNOWN_CODE: 'No referral link has this code in this workspace and mode.',
  CLICK_DISCARDED: 'The click was recorded as not rewardable when it happened (e.g. the partner was inactive then).',
  LINK_DISABLED: 'The referral link is disabled.',
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
}

export interface PartnerFacts {
  id: string;
  externalId: string;
  email: string | null;
  status: PartnerStatus;
}

/** A referral link reached through a click id or a code, with everything attribution checks. */
export interface TouchFacts {
  source: 'click' | 'code';
  linkId: string;
  disabled: boolean;
  program: ProgramFacts;
  partner: PartnerFacts;
  enrollment: { id: string; status: EnrollmentStatus };
  /** Click ids only: the click row and when the click happened. */
  click: { rowId: string; clickedAt: Date; discarded: boolean } | null;
}

/** An explicit attribution signal of the conversion: resolved to a link, or not. */
export type Signal =
  | { source: 'click' | 'code'; touch: TouchFacts }
  | { source: 'click' | 'code'; unknown: 'UNKNOWN_CLICK' | 'UNKNOWN_CODE' };

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
  if (touch.disabled) return 'LINK_DISABLED';
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
 * 1. an existing referral of the person in the program in scope wins (first touch) — signals
 *    cannot move them to another partner;
 * 2. else the signals in order (click id, then code): the first that passes every check binds
 *    the person (a new referral);
 * 3. else DISCARDED with the reason of the first signal (NO_ATTRIBUTION without any).
 */
export function decideAttribution(args: {
  programId: string | null;
  signals: readonly Signal[];
  referral: ReferralFacts | null;
  referred: Referred;
}): Decision {
  const { referral, referred } = args;
  if (referral) return { outcome: 'existing', referral, discard: checkReferral(referral, referred) };
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

// ---------------------------------------------------------------------------------------------
// Loaders
// ---------------------------------------------------------------------------------------------

type Tx = SqlTx;

interface FactsRow {
  programId: string;
  programStatus: ProgramStatus;
  attributionWindowDays: number;
  allowSelfReferral: boolean;
  holdDays: number;
  partnerId: string;
  partnerExternalId: string;
  partnerEmail: string | null;
  partnerStatus: PartnerStatus;
}

const programOf = (row: FactsRow): ProgramFacts => ({
  id: row.programId,
  status: row.programStatus,
  attributionWindowDays: Number(row.attributionWindowDays),
  allowSelfReferral: row.allowSelfReferral,
  holdDays: Number(row.holdDays),
});

const partnerOf = (row: FactsRow): PartnerFacts => ({
  id: row.partnerId,
  externalId: row.partnerExternalId,
  email: row.partnerEmail,
  status: row.partnerStatus,
});

export interface DecodedClick {
  clickRowId: string;
  linkId: string;
  clickedAt: Date;
  discarded?: boolean;
}

/** What attribution decides on, loaded in one statement together with the caller's claim. */
export interface AttributionFacts {
  /** The id the caller's claim returned: null when it wrote nothing (the idempotency key was taken). */
  claimedId: string | null;
  /** The given programId when it names a program of the tenant, else null. */
  givenProgramId: string | null;
  /** The conversion's signals, click id first (see toSignals). */
  signals: Signal[];
  /** The referred person's referral in the program in scope (see the `referral` CTE below). */
  referral: ReferralFacts | null;
}

type FactsUnionRow = FactsRow & {
  claimedId: string | null;
  givenProgramId: string | null;
  kind: 'touch' | 'referral' | null;
  linkId: string | null;
  codeNormalized: string | null;
  disabledAt: Date | null;
  referralId: string | null;
  referralStatus: ReferralStatus | null;
  referralEmail: string | null;
  referralCreatedAt: Date | null;
  enrollmentId: string | null;
  enrollmentStatus: EnrollmentStatus | null;
};

/**
 * Everything attribution decides on, in one round trip, with `claim` (the caller's INSERT …
 * RETURNING "id", run first as a CTE):
 * - `touch`: the links the click id and the code lead to, in the caller's tenant (a click id or
 *   code of another workspace or mode resolves to nothing, exactly like an unknown one);
 * - `scope`: the program in scope (programInScope in SQL: the given programId, else the click's
 *   link's program, else the code's);
 * - `referral`: the referred person's referral in that program, or when there is none in scope
 *   their oldest referral that is not REJECTED (failing that, their oldest) across the tenant's
 *   programs;
 * - whether the given programId names a program of the tenant.
 * All in one statement, so one snapshot: none of it sees the caller's claim, nor anything
 * committed after the statement started.
 */
export async function loadFacts(
  tx: Tx,
  tenant: Tenant,
  claim: SqlFragment,
  input: { programId: string | null; clickId: string | null; code: string | null; referredExternalId: string },
  decodeClick: (token: string) => DecodedClick | null,
): Promise<AttributionFacts> {
  const click = input.clickId !== null ? decodeClick(input.clickId) : null;
  const code = input.code !== null ? normalizeCode(input.code) : null;
  const clickLinkId = click?.linkId ?? NIL_UUID;
  const ws = tenant.workspaceId;
  const rows = await tx.sql<FactsUnionRow>`
    WITH claim AS (${claim}),
    touch AS (
      SELECT l."id" AS "linkId", l."codeNormalized", l."disabledAt", l."enrollmentId", e."status"::text AS "enrollmentStatus",
             g."id" AS "programId", g."status"::text AS "programStatus", g."attributionWindowDays", g."allowSelfReferral", g."holdDays",
             p."id" AS "partnerId", p."externalId" AS "partnerExternalId", p."email" AS "partnerEmail", p."status"::text AS "partnerStatus"
        FROM "ReferralLink" l
        JOIN "Enrollment" e ON e."id" = l."enrollmentId"
        JOIN "Program" g ON g."id" = l."programId"
        JOIN "Partner" p ON p."id" = l."partnerId"
       WHERE l."workspaceId" = ${ws}::uuid AND l."mode" = ${tenant.mode}::"Mode"
         AND (l."id" = ${clickLinkId}::uuid OR l."codeNormalized" = ${code ?? ''})
    ),
    scope AS (
      SELECT COALESCE(${input.programId}::uuid,
                      (SELECT "programId" FROM touch WHERE "linkId" = ${clickLinkId}::uuid),
                      (SELECT "programId" FROM touch WHERE "codeNormalized" = ${code ?? ''})) AS "programId"
    ),
    referral AS (${referralQuery(tenant, input.referredExternalId, sql`(SELECT "programId" FROM scope)`)})
    SELECT (SELECT "id" FROM claim) AS "claimedId",
           (SELECT g."id" FROM "Program" g
             WHERE g."id" = ${input.programId}::uuid AND g."workspaceId" = ${ws}::uuid AND g."mode" = ${tenant.mode}::"Mode") AS "givenProgramId",
           f.*
      FROM (SELECT 1) AS head
      LEFT JOIN (
        SELECT 'touch' AS "kind", t."linkId", t."codeNormalized", t."disabledAt",
               NULL::uuid AS "referralId", NULL::text AS "referralStatus", NULL::text AS "referralEmail", NULL::timestamptz AS "referralCreatedAt",
               t."enrollmentId", t."enrollmentStatus", t."programId", t."programStatus", t."attributionWindowDays", t."allowSelfReferral",
               t."holdDays", t."partnerId", t."partnerExternalId", t."partnerEmail", t."partnerStatus"
          FROM touch t
        UNION ALL
        SELECT 'referral', r."linkId", NULL, NULL, r."referralId", r."referralStatus", r."referralEmail", r."referralCreatedAt",
               r."enrollmentId", r."enrollmentStatus", r."programId", r."programStatus", r."attributionWindowDays", r."allowSelfReferral",
               r."holdDays", r."partnerId", r."partnerExternalId", r."partnerEmail", r."partnerStatus"
          FROM referral r
      ) AS f ON true`;
  const head = rows[0]!;
  const touches = rows.filter((row) => row.kind === 'touch');
  const referral = rows.find((row) => row.kind === 'referral');
  return {
    claimedId: head.claimedId,
    givenProgramId: head.givenProgramId,
    signals: toSignals(touches, input, click, code),
    referral: referral ? referralOf(referral) : null,
  };
}

type TouchRow = FactsRow & {
  linkId: string;
  codeNormalized: string;
  disabledAt: Date | null;
  enrollmentId: string;
  enrollmentStatus: EnrollmentStatus;
};

/** The conversion's signals, click id first, each resolved to one of the links found (or not). */
function toSignals(
  rows: readonly Pick<FactsUnionRow, keyof TouchRow>[],
  input: { clickId: string | null },
  click: DecodedClick | null,
  code: string | null,
): Signal[] {
  const touchOf = (row: (typeof rows)[number], source: 'click' | 'code'): TouchFacts => ({
    source,
    linkId: row.linkId!,
    disabled: row.disabledAt !== null,
    program: programOf(row),
    partner: partnerOf(row),
    enrollment: { id: row.enrollmentId!, status: row.enrollmentStatus! },
    click:
      source === 'click' && click
        ? { rowId: click.clickRowId, clickedAt: click.clickedAt, discarded: click.discarded === true }
        : null,
  });
  const signals: Signal[] = [];
  if (input.clickId !== null) {
    const row = click ? rows.find((r) => r.linkId === click.linkId) : undefined;
    signals.push(
      row ? { source: 'click', touch: touchOf(row, 'click') } : { source: 'click', unknown: 'UNKNOWN_CLICK' },
    );
  }
  if (code !== null) {
    const row = rows.find((r) => r.codeNormalized === code);
    signals.push(row ? { source: 'code', touch: touchOf(row, 'code') } : { source: 'code', unknown: 'UNKNOWN_CODE' });
  }
  return signals;
}

function referralOf(
  row: FactsRow & {
    referralId: string | null;
    referralStatus: ReferralStatus | null;
    referralEmail: string | null;
    referralCreatedAt: Date | null;
    linkId: string | null;
    enrollmentId: string | null;
    enrollmentStatus: EnrollmentStatus | null;
  },
): ReferralFacts {
  return {
    id: row.referralId!,
    status: row.referralStatus!,
    email: row.referralEmail,
    createdAt: row.referralCreatedAt!,
    linkId: row.linkId,
    program: programOf(row),
    partner: partnerOf(row),
    enrollment:
      row.enrollmentId && row.enrollmentStatus ? { id: row.enrollmentId, status: row.enrollmentStatus } : null,
  };
}

/**
 * The referred person's referral in `programId` (after a concurrent conversion created it
 * first), or null.
 */
export async function loadReferral(
  tx: Tx,
  tenant: Tenant,
  externalId: string,
  programId: string,
): Promise<ReferralFacts | null> {
  const rows = await tx.sql<ReferralRow>`${referralQuery(tenant, externalId, sql`${programId}::uuid`)}`;
  return rows[0] ? referralOf(rows[0]) : null;
}

type ReferralRow = FactsRow & {
  referralId: string;
  referralStatus: ReferralStatus;
  referralEmail: string | null;
  referralCreatedAt: Date;
  linkId: string | null;
  enrollmentId: string | null;
  enrollmentStatus: EnrollmentStatus | null;
};

/**
 * The referred person's referral (the columns of ReferralRow): in the program `programId` (an SQL
 * expression) when it is not null, else their oldest referral that is not REJECTED (failing that,
 * their oldest) across the tenant's programs.
 */
function referralQuery(tenant: Tenant, externalId: string, programId: SqlFragment): SqlFragment {
  return sql`
    SELECT r."id" AS "referralId", r."status"::text AS "referralStatus", r."email" AS "referralEmail", r."createdAt" AS "referralCreatedAt", r."linkId",
           e."id" AS "enrollmentId", e."status"::text AS "enrollmentStatus",
           g."id" AS "programId", g."status"::text AS "programStatus", g."attributionWindowDays", g."allowSelfReferral", g."holdDays",
           p."id" AS "partnerId", p."externalId" AS "partnerExternalId", p."email" AS "partnerEmail", p."status"::text AS "partnerStatus"
      FROM "Referral" r
      JOIN "Program" g ON g."id" = r."programId"
      JOIN "Partner" p ON p."id" = r."partnerId"
      LEFT JOIN "Enrollment" e ON e."programId" = r."programId" AND e."partnerId" = r."partnerId"
     WHERE r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode" AND r."externalId" = ${externalId}
       AND (${programId} IS NULL OR r."programId" = ${programId})
     ORDER BY (r."status" = 'REJECTED'), r."createdAt", r."id"
     LIMIT 1`;
}
