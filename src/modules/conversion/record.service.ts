import type { Conversion, Reward } from '../../generated/prisma/client.js';
import type { Database } from '../../db.js';
import type { ConversionStatus, ConversionType, ReferralStatus } from '../../generated/prisma/enums.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { parseCurrency, parseDecimal } from '../../lib/money.js';
import { sql, type SqlTx } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';
import { appendEvents } from '../events/outbox.js';
import { conversionRecorded, referralStatusChanged, rewardCreated } from '../events/payloads.js';
import { draftRewards, insertRewardsCtes, rulesQuery, type RuleRow } from '../reward/create-rewards.js';
import {
  checkReferral,
  decideAttribution,
  loadFacts,
  loadReferral,
  type Decision,
  type DecodedClick,
  type DiscardReason,
  type ReferralFacts,
  type TouchFacts,
} from './attribution.js';

export const IDEMPOTENCY_KEY_MAX = 255;
export const EXTERNAL_ID_MAX = 255;
export const EMAIL_MAX = 320;
export const CODE_MAX = 255;
export const CLICK_ID_MAX = 1024;
/** How far in the future `occurredAt` may be (clock skew between the caller and us). */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;
/**
 * The earliest `occurredAt`: older events are typos or placeholder dates (e.g. year 0), not
 * referrals; stored, they would skew every report and attribution window.
 */
export const OCCURRED_AT_MIN = new Date('2000-01-01T00:00:00.000Z');

const EMAIL = /^[^\s@]+@[^\s@]+$/;

export interface RecordConversionInput {
  type: ConversionType;
  idempotencyKey: string;
  referredExternalId: string;
  referredEmail?: string | null;
  /** Row id; undefined/null: not given; INVALID_ID: a global id that is malformed or of another type. */
  programId?: string | null | typeof INVALID_ID;
  code?: string | null;
  clickId?: string | null;
  amount?: { amount: string; currency: string } | null;
  occurredAt?: Date | null;
}

/** Stands for a programId that was given but cannot name a program (answers NOT_FOUND). */
export const INVALID_ID = Symbol('invalid id');

export interface RecordConversionOptions {
  /** Who records it, for the rewards' status history: an api key id, or "system:<job>". */
  actor: string;
  /** Decodes a click id token (null: not a click id of this installation). */
  decodeClick: (token: string) => DecodedClick | null;
  now?: Date;
}

export interface RecordedConversion {
  conversionId: string;
  status: ConversionStatus;
  discardReason: string | null;
  /** The rewards created now (a replay created none: read the conversion's rewards). */
  rewards: Reward[];
  /** The conversion's row as written now, every column (null for a replay: read it). */
  row: Conversion | null;
  /** The idempotency key had been used: this is the first call's conversion, nothing was recorded now. */
  replayed: boolean;
}

interface ValidInput {
  type: ConversionType;
  idempotencyKey: string;
  referredExternalId: string;
  referredEmail: string | null;
  programId: string | null | typeof INVALID_ID;
  code: string | null;
  clickId: string | null;
  amount: bigint | null;
  currency: string | null;
  occurredAt: Date;
}

const field = (...path: string[]) => ['input', ...path];

const isIdempotencyKey = (key: string) => key.trim().length > 0 && key.length <= IDEMPOTENCY_KEY_MAX;

/** Every problem of the input at once; money parsed to minor units. */
function validate(input: RecordConversionInput, now: Date): ValidInput {
  const v = new Validator();
  v.check(
    isIdempotencyKey(input.idempotencyKey),
    field('idempotencyKey'),
    `An idempotencyKey must be 1 to ${IDEMPOTENCY_KEY_MAX} characters long and not blank.`,
  );
  v.check(
    input.type !== 'REFUND',
    field('type'),
    'A REFUND is not recorded with recordConversion: use refundConversion with the id of the conversion refunded.',
  );
  const externalId = input.referredExternalId.trim();
  v.check(
    externalId.length >= 1 && externalId.length <= EXTERNAL_ID_MAX,
    field('referredExternalId'),
    `referredExternalId must be 1 to ${EXTERNAL_ID_MAX} characters long (after trimming spaces).`,
  );
  const email = input.referredEmail?.trim() || null;
  if (email !== null) {
    v.check(
      email.length <= EMAIL_MAX,
      field('referredEmail'),
      `referredEmail must be at most ${EMAIL_MAX} characters long.`,
    );
    v.check(
      EMAIL.test(email),
      field('referredEmail'),
      'referredEmail must contain exactly one "@" with text on both sides and no spaces.',
    );
  }
  const code = input.code?.trim() || null;
  v.check(code === null || code.length <= CODE_MAX, field('code'), `A code is at most ${CODE_MAX} characters long.`);
  const clickId = input.clickId?.trim() || null;
  v.check(
    clickId === null || clickId.length <= CLICK_ID_MAX,
    field('clickId'),
    `A clickId is at most ${CLICK_ID_MAX} characters long.`,
  );

  let amount: bigint | null = null;
  let currency: string | null = null;
  if (input.amount) {
    try {
      currency = parseCurrency(input.amount.currency, field('amount', 'currency'));
      amount = parseDecimal(input.amount.amount, currency, field('amount', 'amount'));
      if (amount < 0n) {
        v.add(
          new DomainError(
            'VALIDATION',
            `A conversion amount cannot be negative (got "${input.amount.amount}"); refunds go through refundConversion.`,
            field('amount', 'amount'),
          ),
        );
      }
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      v.add(error);
    }
  } else if (input.type === 'PURCHASE' || input.type === 'SUBSCRIPTION') {
    v.add(
      new DomainError(
        'VALIDATION',
        `A ${input.type} needs an amount (what was paid, e.g. { amount: "49.00", currency: "USD" }).`,
        field('amount'),
      ),
    );
  }

  const occurredAt = input.occurredAt ?? now;
  v.check(
    occurredAt.getTime() >= OCCURRED_AT_MIN.getTime(),
    field('occurredAt'),
    `occurredAt is ${occurredAt.toISOString()}, before ${OCCURRED_AT_MIN.toISOString()}; send when it happened (UTC), or leave it out for now.`,
  );
  v.check(
    occurredAt.getTime() <= now.getTime() + FUTURE_TOLERANCE_MS,
    field('occurredAt'),
    `occurredAt is ${occurredAt.toISOString()}, more than 5 minutes in the future; send when it happened (UTC), or leave it out for now.`,
  );
  v.throwIfAny();
  return {
    type: input.type,
    idempotencyKey: input.idempotencyKey,
    referredExternalId: externalId,
    referredEmail: email,
    programId: input.programId ?? null,
    code,
    clickId,
    amount,
    currency,
    occurredAt,
  };
}

/**
 * Record a conversion once per idempotency key, attribute it, and reward it — all in one
 * transaction, in this order:
 * 1. claim the key (INSERT … ON CONFLICT DO NOTHING): a concurrent call with the same key blocks on
 *    the unique index until this one commits, then finds the key taken and returns the stored
 *    conversion and its rewards (a replay: no userErrors, whatever its other fields);
 * 2. attribute (attribution.ts) and create or update the referral;
 * 3. evaluate the program's rules and write the rewards (reward/create-rewards.ts);
 * 4. append `reward.created` events and one `conversion.recorded` event.
 * Invalid input and an unknown programId are refused (userErrors) with nothing stored; a
 * conversion that cannot be attributed or rewarded is stored DISCARDED with its reason.
 *
 * The transaction runs as plain SQL (`db.transaction`), not through Prisma: it is the API's
 * busiest write, and Prisma's per-query cost made up most of its CPU time (BENCHMARKS.md).
 */
export async function recordConversion(
  db: Database,
  tenant: Tenant,
  input: RecordConversionInput,
  options: RecordConversionOptions,
): Promise<RecordedConversion> {
  const now = options.now ?? new Date();
  let valid: ValidInput;
  try {
    valid = validate(input, now);
  } catch (error) {
    // A replay answers with the first result whatever its other fields, even invalid ones.
    if (!isIdempotencyKey(input.idempotencyKey)) throw error;
    // One read, no transaction: nothing is written on this path.
    const stored = await storedConversion(db, tenant, input.idempotencyKey);
    if (stored) return stored;
    throw error;
  }

  return db.transaction((tx) => recordInTransaction(tx, tenant, valid, options, now));
}

/** The conversion already recorded with this key, as a replay; null when the key is unused. */
async function storedConversion(tx: SqlTx, tenant: Tenant, idempotencyKey: string): Promise<RecordedConversion | null> {
  const [stored] = await tx.sql<{ id: string; status: ConversionStatus; discardReason: string | null }>`
    SELECT "id", "status"::text AS "status", "discardReason" FROM "Conversion"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "idempotencyKey" = ${idempotencyKey}`;
  return stored
    ? {
        conversionId: stored.id,
        status: stored.status,
        discardReason: stored.discardReason,
        rewards: [],
        row: null,
        replayed: true,
      }
    : null;
}

async function recordInTransaction(
  tx: SqlTx,
  tenant: Tenant,
  input: ValidInput,
  options: RecordConversionOptions,
  now: Date,
): Promise<RecordedConversion> {
  // 1. The claim, and in the same statement every fact attribution decides on. The row starts
  // ACCEPTED and gets its final status in step 4, before commit.
  const conversionId = uuidv7();
  const claim = sql`
    INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "idempotencyKey", "referredExternalId", "referredEmail",
                              "amount", "currency", "occurredAt", "createdAt")
    VALUES (${conversionId}::uuid, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${input.type}::"ConversionType", 'ACCEPTED',
            ${input.idempotencyKey}, ${input.referredExternalId}, ${input.referredEmail}, ${input.amount}::bigint, ${input.currency},
            ${input.occurredAt}::timestamptz, ${now}::timestamptz)
    ON CONFLICT ("workspaceId", "mode", "idempotencyKey") DO NOTHING
    RETURNING "id"`;
  const facts = await loadFacts(
    tx,
    tenant,
    claim,
    {
      programId: input.programId === INVALID_ID ? null : input.programId,
      clickId: input.clickId,
      code: input.code,
      referredExternalId: input.referredExternalId,
    },
    options.decodeClick,
  );
  if (facts.claimedId === null) {
    // Taken: by a transaction that has committed (ON CONFLICT waited for it), so this read sees it.
    const stored = await storedConversion(tx, tenant, input.idempotencyKey);
    if (!stored) throw new Error('idempotency key conflict without a stored conversion');
    return stored;
  }
  if (input.programId !== null && facts.givenProgramId === null) throw notFound('Program', field('programId'));

  // 2. Attribution, and the referral it creates or updates (with the rules of its program).
  const referred = { externalId: input.referredExternalId, email: input.referredEmail, occurredAt: input.occurredAt };
  const decision = decideAttribution({
    programId: facts.givenProgramId,
    signals: facts.signals,
    referral: facts.referral,
    referred,
  });
  const outcome = await applyDecision(tx, tenant, input, decision, referred);
  const result: Outcome = {
    programId: facts.givenProgramId,
    partnerId: null,
    referralId: null,
    linkId: null,
    clickRowId: null,
    ...outcome,
  };
  const status = result.discard ? 'DISCARDED' : 'ACCEPTED';

  // 3. The rewards an accepted conversion earns (limits and caps read under the referral's lock);
  // `rewardable` is only set for one.
  const { rewardable } = result;
  const rewards = rewardable
    ? await draftRewards(
        tx,
        tenant,
        {
          conversion: {
            id: conversionId,
            type: input.type,
            amount: input.amount,
            currency: input.currency,
            occurredAt: input.occurredAt,
          },
          referral: rewardable.referral,
          program: rewardable.program,
          partnerId: result.partnerId!,
          now,
        },
        rewardable.rules,
      )
    : [];

  // 4. The conversion's outcome with the rewards and their history, in one statement; then the
  // events (the rewards' and the conversion's), numbered at commit.
  await tx.sql`
    WITH ${insertRewardsCtes(tenant, rewards, options.actor)}
    outcome AS (
      UPDATE "Conversion"
         SET "status" = ${status}::"ConversionStatus", "discardReason" = ${result.discard},
             "programId" = ${result.programId}::uuid, "partnerId" = ${result.partnerId}::uuid, "referralId" = ${result.referralId}::uuid,
             "linkId" = ${result.linkId}::uuid, "clickId" = ${result.clickRowId}::uuid
       WHERE "id" = ${conversionId}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
      RETURNING 1
    )
    SELECT count(*) FROM outcome`;
  const row: Conversion = {
    id: conversionId,
    ...tenant,
    type: input.type,
    status,
    discardReason: result.discard,
    idempotencyKey: input.idempotencyKey,
    referredExternalId: input.referredExternalId,
    referredEmail: input.referredEmail,
    amount: input.amount,
    currency: input.currency,
    occurredAt: input.occurredAt,
    programId: result.programId,
    partnerId: result.partnerId,
    referralId: result.referralId,
    linkId: result.linkId,
    clickId: result.clickRowId,
    refundOfId: null,
    createdAt: now,
  };
  const { referralChange } = result;
  await appendEvents(tx, tenant, [
    ...(referralChange && result.referralId
      ? [referralStatusChanged({ ...row, id: result.referralId }, referralChange.from, referralChange.to)]
      : []),
    ...rewards.map(rewardCreated),
    conversionRecorded(
      row,
      rewards.map((r) => r.id),
    ),
  ]);
  return { conversionId, status, discardReason: result.discard, rewards, row, replayed: false };
}

interface Outcome {
  discard: DiscardReason | null;
  programId: string | null;
  partnerId: string | null;
  referralId: string | null;
  linkId: string | null;
  clickRowId: string | null;
  /** Set when accepted: what the reward engine needs. */
  rewardable?: {
    referral: { id: string; createdAt: Date; isNew: boolean };
    program: { id: string; holdDays: number };
    /** The program's rules for this conversion, with the enrollment's overrides. */
    rules: RuleRow[];
  };
  /** An existing referral whose status this conversion changed (a `referral.status_changed` event). */
  referralChange?: { from: ReferralStatus; to: ReferralStatus };
}

const isPayment = (type: ConversionType) => type === 'PURCHASE' || type === 'SUBSCRIPTION';

type Referred = { externalId: string; email: string | null; occurredAt: Date };

/** The rule rows of a statement that LEFT JOINed rulesQuery (no rules: one row of NULLs). */
const rulesOf = (rows: ReadonlyArray<Partial<RuleRow>>): RuleRow[] =>
  rows.filter((row): row is RuleRow => row.id != null);

/**
 * Create or update the referral the decision calls for; what the conversion row records. The
 * statement that writes the referral also loads the rules of its program for this conversion.
 */
async function applyDecision(
  tx: SqlTx,
  tenant: Tenant,
  input: ValidInput,
  decision: Decision,
  referred: Referred,
): Promise<Partial<Outcome> & { discard: DiscardReason | null }> {
  switch (decision.outcome) {
    case 'discard':
      return { discard: decision.reason, ...touchColumns(decision.touch) };
    case 'existing':
      return bindToExisting(tx, tenant, input, decision.referral, decision.discard);
    case 'new': {
      const { touch } = decision;
      const status: ReferralStatus = decision.discard ? 'REJECTED' : isPayment(input.type) ? 'CONVERTED' : 'PENDING';
      const rows = await tx.sql<Partial<RuleRow> & { createdId: string | null; referralCreatedAt: Date | null }>`
        WITH created AS (
          INSERT INTO "Referral" ("id", "workspaceId", "mode", "programId", "partnerId", "linkId", "clickId", "externalId", "email",
                                  "status", "createdAt", "convertedAt")
          VALUES (${uuidv7()}::uuid, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${touch.program.id}::uuid, ${touch.partner.id}::uuid,
                  ${touch.linkId}::uuid, ${touch.click?.rowId ?? null}::uuid, ${input.referredExternalId}, ${input.referredEmail},
                  ${status}::"ReferralStatus", ${input.occurredAt}::timestamptz, ${status === 'CONVERTED' ? input.occurredAt : null}::timestamptz)
          ON CONFLICT DO NOTHING
          RETURNING "id", "createdAt"
        )
        SELECT c."id" AS "createdId", c."createdAt" AS "referralCreatedAt", rule.*
          FROM (SELECT 1) AS head
          LEFT JOIN created c ON true
          LEFT JOIN (${rulesQuery(tenant, touch.program.id, input.type, touch.enrollment.id)}) AS rule ON true`;
      const { createdId, referralCreatedAt } = rows[0]!;
      if (createdId === null) {
        // Someone else bound them first (a concurrent conversion, committed meanwhile): first touch.
        const existing = await loadReferral(tx, tenant, input.referredExternalId, touch.program.id);
        if (!existing) throw new Error('referral conflict without a stored referral');
        return bindToExisting(tx, tenant, input, existing, checkReferral(existing, referred));
      }
      return {
        discard: decision.discard,
        ...touchColumns(touch),
        referralId: createdId,
        rewardable: decision.discard
          ? undefined
          : {
              referral: { id: createdId, createdAt: referralCreatedAt!, isNew: true },
              program: { id: touch.program.id, holdDays: touch.program.holdDays },
              rules: rulesOf(rows),
            },
      };
    }
  }
}

function touchColumns(touch: TouchFacts | null): Partial<Outcome> {
  if (!touch) return {};
  return {
    programId: touch.program.id,
    partnerId: touch.partner.id,
    linkId: touch.linkId,
    clickRowId: touch.click?.rowId ?? null,
  };
}

/**
 * A conversion of a person who already has a referral. The referral row is updated (and so
 * locked until commit) before any reward is evaluated: conversions of one referral are rewarded
 * one at a time, each seeing the rewards of the ones before it.
 */
async function bindToExisting(
  tx: SqlTx,
  tenant: Tenant,
  input: ValidInput,
  referral: ReferralFacts,
  discard: DiscardReason | null,
): Promise<Partial<Outcome> & { discard: DiscardReason | null }> {
  const columns = {
    programId: referral.program.id,
    partnerId: referral.partner.id,
    referralId: referral.id,
    linkId: referral.linkId,
  };
  if (discard) {
    // A self-referral found only now (e.g. the email came with a later event) rejects the referral.
    if (discard === 'SELF_REFERRAL') {
      // The status before, read under the row lock (the latest committed one), for the event.
      const [changed] = await tx.sql<{ from: ReferralStatus }>`
        WITH prior AS (
          SELECT "status" AS "priorStatus" FROM "Referral"
           WHERE "id" = ${referral.id}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
             FOR UPDATE
        )
        UPDATE "Referral" r SET "status" = 'REJECTED'
          FROM prior
         WHERE r."id" = ${referral.id}::uuid AND r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode"
           AND prior."priorStatus" <> 'REJECTED'
        RETURNING prior."priorStatus"::text AS "from"`;
      if (changed) return { discard, ...columns, referralChange: { from: changed.from, to: 'REJECTED' } };
    }
    return { discard, ...columns };
  }
  const payment = isPayment(input.type);
  const rows = await tx.sql<
    Partial<RuleRow> & {
      lockedStatus: ReferralStatus | null;
      priorStatus: ReferralStatus | null;
      referralCreatedAt: Date | null;
    }
  >`
    WITH prior AS (
      -- The status before this conversion, read under the row lock (the latest committed one).
      SELECT "status" AS "priorStatus" FROM "Referral"
       WHERE "id" = ${referral.id}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
         FOR UPDATE
    ),
    locked AS (
      UPDATE "Referral" r
         SET "status" = CASE WHEN ${payment} AND r."status" = 'PENDING' THEN 'CONVERTED'::"ReferralStatus" ELSE r."status" END,
             "convertedAt" = CASE WHEN ${payment} THEN COALESCE(r."convertedAt", ${input.occurredAt}::timestamptz) ELSE r."convertedAt" END,
             "email" = COALESCE(r."email", ${input.referredEmail})
        FROM prior
       WHERE r."id" = ${referral.id}::uuid AND r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode"
       RETURNING r."status"::text AS "status", r."createdAt", prior."priorStatus"::text AS "priorStatus"
    )
    SELECT l."status" AS "lockedStatus", l."priorStatus", l."createdAt" AS "referralCreatedAt", rule.*
      FROM (SELECT 1) AS head
      LEFT JOIN locked l ON true
      LEFT JOIN (${rulesQuery(tenant, referral.program.id, input.type, referral.enrollment!.id)}) AS rule ON true`;
  const { lockedStatus, priorStatus, referralCreatedAt } = rows[0]!;
  if (lockedStatus === null) throw new Error('referral vanished');
  const referralChange =
    priorStatus !== null && priorStatus !== lockedStatus ? { from: priorStatus, to: lockedStatus } : undefined;
  // Rejected meanwhile by a concurrent transaction (whose commit we waited for).
  if (lockedStatus === 'REJECTED') return { discard: 'REFERRAL_REJECTED', ...columns };
  return {
    discard: null,
    ...columns,
    referralChange,
    rewardable: {
      referral: { id: referral.id, createdAt: referralCreatedAt!, isNew: false },
      program: { id: referral.program.id, holdDays: referral.program.holdDays },
      rules: rulesOf(rows),
    },
  };
}
