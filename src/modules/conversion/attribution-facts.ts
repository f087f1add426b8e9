import { sql, type SqlFragment, type SqlTx } from '../../lib/sql.js';
import type { EnrollmentStatus, PartnerStatus, ProgramStatus, ReferralStatus } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import { NIL_UUID } from '../../lib/ids.js';
import { normalizeCode } from '../link/codes.js';
import type {
  CandidateFraudFacts,
  PartnerFacts,
  ProgramFacts,
  ReferralFacts,
  Signal,
  SignalSource,
  TouchFacts,
} from './attribution.js';

// The facts attribution decides on (attribution.ts), loaded from the database: step 1 of
// recordConversion (README.md). Nothing here decides anything; every query is scoped to the
// caller's tenant, so a click id, code or referral of another workspace or mode is never found.

type Tx = SqlTx;

interface FactsRow {
  programId: string;
  programStatus: ProgramStatus;
  attributionWindowDays: number;
  allowSelfReferral: boolean;
  holdDays: number;
  attributionModel: 'FIRST_TOUCH' | 'LAST_TOUCH';
  partnerId: string;
  partnerExternalId: string;
  partnerEmail: string | null;
  partnerStatus: PartnerStatus;
  fraudSameIp: boolean;
  fraudEmailDomain: boolean;
  fraudDisposableEmail: boolean;
  fraudMaxConversionsPerHour: number | null;
  ipMatchesPartner: boolean | null;
  recentConversions: bigint | number | string | null;
}

const programOf = (row: FactsRow): ProgramFacts => ({
  id: row.programId,
  status: row.programStatus,
  attributionWindowDays: Number(row.attributionWindowDays),
  allowSelfReferral: row.allowSelfReferral,
  holdDays: Number(row.holdDays),
  attributionModel: row.attributionModel,
  fraudRules: {
    sameIp: row.fraudSameIp,
    emailDomain: row.fraudEmailDomain,
    disposableEmail: row.fraudDisposableEmail,
    maxConversionsPerHour: row.fraudMaxConversionsPerHour === null ? null : Number(row.fraudMaxConversionsPerHour),
  },
});

const fraudOf = (row: FactsRow): CandidateFraudFacts => ({
  ipMatchesPartner: row.ipMatchesPartner,
  recentConversions: row.recentConversions === null ? null : Number(row.recentConversions),
});

/** What of the conversion being recorded the fraud rules compare: its hashed IP and when it occurred. */
export interface FraudInput {
  ipHash: string | null;
  occurredAt: Date;
}

/**
 * The program's fraud rules and the facts they need from the database, as columns of a candidate
 * (program `g`, partner `p`) of the attribution statement; each fact is a CASE whose subquery runs
 * only when its rule is on (PostgreSQL evaluates a CASE branch's subplan only when it is taken):
 * - `ipMatchesPartner` (fraudSameIp, and an IP given): a conversion of the tenant whose referred
 *   person was the partner (referredExternalId = the partner's externalId: their own signup as a
 *   customer) has the same IP hash (index (workspaceId, mode, referredExternalId));
 * - `recentConversions` (fraudMaxConversionsPerHour set): the partner's ACCEPTED conversions (not
 *   refunds) in the program that occurred in the hour up to this one's occurredAt, both ends
 *   included (index (partnerId, occurredAt)), counted up to the limit only: reaching it is all the
 *   rule needs to know, so a busy partner costs at most `limit` index entries.
 * The conversion being recorded is not among them: its row is the statement's own claim, which no
 * other part of the statement sees.
 */
function fraudColumns(tenant: Tenant, fraud: FraudInput): SqlFragment {
  const ws = tenant.workspaceId;
  return sql`g."fraudSameIp", g."fraudEmailDomain", g."fraudDisposableEmail", g."fraudMaxConversionsPerHour",
           CASE WHEN g."fraudSameIp" AND ${fraud.ipHash}::text IS NOT NULL THEN EXISTS (
             SELECT 1 FROM "Conversion" s
              WHERE s."workspaceId" = ${ws}::uuid AND s."mode" = ${tenant.mode}::"Mode"
                AND s."referredExternalId" = p."externalId" AND s."ipHash" = ${fraud.ipHash}::text) END AS "ipMatchesPartner",
           CASE WHEN g."fraudMaxConversionsPerHour" IS NOT NULL THEN (
             SELECT count(*) FROM (
               SELECT 1 FROM "Conversion" v
                WHERE v."partnerId" = p."id"
                  AND v."occurredAt" BETWEEN ${fraud.occurredAt}::timestamptz - interval '1 hour' AND ${fraud.occurredAt}::timestamptz
                  AND v."programId" = g."id" AND v."workspaceId" = ${ws}::uuid AND v."mode" = ${tenant.mode}::"Mode"
                  AND v."status" = 'ACCEPTED' AND v."type" <> 'REFUND'
                LIMIT g."fraudMaxConversionsPerHour") AS counted) END AS "recentConversions"`;
}

/** The fraud columns a union branch passes on (from the CTE row `alias`). */
const FRAUD_PASS = (alias: string) =>
  sql.raw(
    [
      'fraudSameIp',
      'fraudEmailDomain',
      'fraudDisposableEmail',
      'fraudMaxConversionsPerHour',
      'ipMatchesPartner',
      'recentConversions',
    ]
      .map((c) => `${alias}."${c}"`)
      .join(', '),
  );

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
  /** The conversion's signals: coupon, click id, code (see toSignals). */
  signals: Signal[];
  /** The referred person's referral in the program in scope (see the `referral` CTE below). */
  referral: ReferralFacts | null;
}

type FactsUnionRow = FactsRow & {
  claimedId: string | null;
  givenProgramId: string | null;
  kind: 'touch' | 'referral' | null;
  /** For a touch: a link's (click, code) or a coupon's. */
  touchKind: 'link' | 'coupon' | null;
  linkId: string | null;
  couponId: string | null;
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
  input: {
    programId: string | null;
    clickId: string | null;
    code: string | null;
    couponCode: string | null;
    referredExternalId: string;
  },
  decodeClick: (token: string) => DecodedClick | null,
  fraud: FraudInput,
): Promise<AttributionFacts> {
  const click = input.clickId !== null ? decodeClick(input.clickId) : null;
  const code = input.code !== null ? normalizeCode(input.code) : null;
  const coupon = input.couponCode !== null ? normalizeCode(input.couponCode) : null;
  const clickLinkId = click?.linkId ?? NIL_UUID;
  const ws = tenant.workspaceId;
  const rows = await tx.sql<FactsUnionRow>`
    WITH claim AS (${claim}),
    touch AS (
      SELECT 'link' AS "touchKind", l."id" AS "linkId", NULL::uuid AS "couponId", l."codeNormalized", l."disabledAt", l."enrollmentId",
             e."status"::text AS "enrollmentStatus",
             g."id" AS "programId", g."status"::text AS "programStatus", g."attributionWindowDays", g."allowSelfReferral", g."holdDays",
             g."attributionModel"::text AS "attributionModel",
             p."id" AS "partnerId", p."externalId" AS "partnerExternalId", p."email" AS "partnerEmail", p."status"::text AS "partnerStatus",
             ${fraudColumns(tenant, fraud)}
        FROM "ReferralLink" l
        JOIN "Enrollment" e ON e."id" = l."enrollmentId"
        JOIN "Program" g ON g."id" = l."programId"
        JOIN "Partner" p ON p."id" = l."partnerId"
       WHERE l."workspaceId" = ${ws}::uuid AND l."mode" = ${tenant.mode}::"Mode"
         AND (l."id" = ${clickLinkId}::uuid OR l."codeNormalized" = ${code ?? ''})
      UNION ALL
      SELECT 'coupon', NULL, c."id", c."codeNormalized", c."disabledAt", c."enrollmentId", e."status"::text,
             g."id", g."status"::text, g."attributionWindowDays", g."allowSelfReferral", g."holdDays", g."attributionModel"::text,
             p."id", p."externalId", p."email", p."status"::text, ${fraudColumns(tenant, fraud)}
        FROM "Coupon" c
        JOIN "Enrollment" e ON e."id" = c."enrollmentId"
        JOIN "Program" g ON g."id" = c."programId"
        JOIN "Partner" p ON p."id" = c."partnerId"
       WHERE ${coupon}::text IS NOT NULL AND c."workspaceId" = ${ws}::uuid AND c."mode" = ${tenant.mode}::"Mode"
         AND c."codeNormalized" = ${coupon}
    ),
    scope AS (
      SELECT COALESCE(${input.programId}::uuid,
                      (SELECT "programId" FROM touch WHERE "touchKind" = 'coupon'),
                      (SELECT "programId" FROM touch WHERE "touchKind" = 'link' AND "linkId" = ${clickLinkId}::uuid),
                      (SELECT "programId" FROM touch WHERE "touchKind" = 'link' AND "codeNormalized" = ${code ?? ''})) AS "programId"
    ),
    referral AS (${referralQuery(tenant, input.referredExternalId, sql`(SELECT "programId" FROM scope)`, fraud)})
    SELECT (SELECT "id" FROM claim) AS "claimedId",
           (SELECT g."id" FROM "Program" g
             WHERE g."id" = ${input.programId}::uuid AND g."workspaceId" = ${ws}::uuid AND g."mode" = ${tenant.mode}::"Mode") AS "givenProgramId",
           f.*
      FROM (SELECT 1) AS head
      LEFT JOIN (
        SELECT 'touch' AS "kind", t."touchKind", t."linkId", t."couponId", t."codeNormalized", t."disabledAt",
               NULL::uuid AS "referralId", NULL::text AS "referralStatus", NULL::text AS "referralEmail", NULL::timestamptz AS "referralCreatedAt",
               t."enrollmentId", t."enrollmentStatus", t."programId", t."programStatus", t."attributionWindowDays", t."allowSelfReferral",
               t."holdDays", t."attributionModel", t."partnerId", t."partnerExternalId", t."partnerEmail", t."partnerStatus", ${FRAUD_PASS('t')}
          FROM touch t
        UNION ALL
        SELECT 'referral', NULL, r."linkId", NULL, NULL, NULL, r."referralId", r."referralStatus", r."referralEmail", r."referralCreatedAt",
               r."enrollmentId", r."enrollmentStatus", r."programId", r."programStatus", r."attributionWindowDays", r."allowSelfReferral",
               r."holdDays", r."attributionModel", r."partnerId", r."partnerExternalId", r."partnerEmail", r."partnerStatus", ${FRAUD_PASS('r')}
          FROM referral r
      ) AS f ON true`;
  const head = rows[0]!;
  const touches = rows.filter((row) => row.kind === 'touch');
  const referral = rows.find((row) => row.kind === 'referral');
  return {
    claimedId: head.claimedId,
    givenProgramId: head.givenProgramId,
    signals: toSignals(touches, input, click, code, coupon),
    referral: referral ? referralOf(referral) : null,
  };
}

type TouchRow = FactsRow & {
  touchKind: 'link' | 'coupon';
  linkId: string | null;
  couponId: string | null;
  codeNormalized: string;
  disabledAt: Date | null;
  enrollmentId: string;
  enrollmentStatus: EnrollmentStatus;
};

/**
 * The conversion's signals in precedence order — coupon, click id, code (a coupon wins over a
 * click, as in Rewardful) — each resolved to one of the links or coupons found (or not).
 */
function toSignals(
  rows: readonly Pick<FactsUnionRow, keyof TouchRow>[],
  input: { clickId: string | null },
  click: DecodedClick | null,
  code: string | null,
  coupon: string | null,
): Signal[] {
  const touchOf = (row: (typeof rows)[number], source: SignalSource): TouchFacts => ({
    source,
    linkId: row.linkId,
    couponId: row.couponId,
    disabled: row.disabledAt !== null,
    program: programOf(row),
    partner: partnerOf(row),
    enrollment: { id: row.enrollmentId!, status: row.enrollmentStatus! },
    click:
      source === 'click' && click
        ? { rowId: click.clickRowId, clickedAt: click.clickedAt, discarded: click.discarded === true }
        : null,
    fraud: fraudOf(row),
  });
  const signals: Signal[] = [];
  if (coupon !== null) {
    const row = rows.find((r) => r.touchKind === 'coupon' && r.codeNormalized === coupon);
    signals.push(
      row ? { source: 'coupon', touch: touchOf(row, 'coupon') } : { source: 'coupon', unknown: 'UNKNOWN_COUPON' },
    );
  }
  if (input.clickId !== null) {
    const row = click ? rows.find((r) => r.touchKind === 'link' && r.linkId === click.linkId) : undefined;
    signals.push(
      row ? { source: 'click', touch: touchOf(row, 'click') } : { source: 'click', unknown: 'UNKNOWN_CLICK' },
    );
  }
  if (code !== null) {
    const row = rows.find((r) => r.touchKind === 'link' && r.codeNormalized === code);
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
    fraud: fraudOf(row),
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
  fraud: FraudInput,
): Promise<ReferralFacts | null> {
  const rows = await tx.sql<ReferralRow>`${referralQuery(tenant, externalId, sql`${programId}::uuid`, fraud)}`;
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
function referralQuery(tenant: Tenant, externalId: string, programId: SqlFragment, fraud: FraudInput): SqlFragment {
  return sql`
    SELECT r."id" AS "referralId", r."status"::text AS "referralStatus", r."email" AS "referralEmail", r."createdAt" AS "referralCreatedAt", r."linkId",
           e."id" AS "enrollmentId", e."status"::text AS "enrollmentStatus",
           g."id" AS "programId", g."status"::text AS "programStatus", g."attributionWindowDays", g."allowSelfReferral", g."holdDays",
           g."attributionModel"::text AS "attributionModel",
           p."id" AS "partnerId", p."externalId" AS "partnerExternalId", p."email" AS "partnerEmail", p."status"::text AS "partnerStatus",
           ${fraudColumns(tenant, fraud)}
      FROM "Referral" r
      JOIN "Program" g ON g."id" = r."programId"
      JOIN "Partner" p ON p."id" = r."partnerId"
      LEFT JOIN "Enrollment" e ON e."programId" = r."programId" AND e."partnerId" = r."partnerId"
     WHERE r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode" AND r."externalId" = ${externalId}
       AND (${programId} IS NULL OR r."programId" = ${programId})
     ORDER BY (r."status" = 'REJECTED'), r."createdAt", r."id"
     LIMIT 1`;
}
