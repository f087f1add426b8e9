import type { Conversion, Prisma, Reward } from '../../generated/prisma/client.js';
import type { Database } from '../../db.js';
import type { ConversionStatus, ConversionType } from '../../generated/prisma/enums.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import { checkMetadata, type Metadata } from '../../domain/metadata.js';
import type { Tenant } from '../../domain/tenant.js';
import { parseCurrency, parseDecimal } from '../../lib/money.js';
import { sql, type SqlTransaction, type SqlTx } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';
import { appendEvents } from '../events/outbox.js';
import { conversionRecorded, referralStatusChanged, reviewOpened, rewardCreated } from '../events/payloads.js';
import { draftRewards, insertRewardsCtes } from '../reward/create-rewards.js';
import { raiseTier } from '../tier/evaluate.js';
import { evaluateFraud } from '../review/fraud-rules.js';
import { insertReviewItemCte, type NewReviewItem } from '../review/review-writes.js';
import { decideAttribution } from './attribution.js';
import { loadFacts, type DecodedClick } from './attribution-facts.js';
import { applyDecision, type Outcome } from './referral-writes.js';

export const IDEMPOTENCY_KEY_MAX = 255;
export const EXTERNAL_ID_MAX = 255;
export const EMAIL_MAX = 320;
export const CODE_MAX = 255;
export const CLICK_ID_MAX = 1024;
export const PRODUCT_ID_MAX = 255;
/** A longer User-Agent is truncated (as clicks do). */
export const USER_AGENT_MAX = 512;
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
  /** A coupon's code: attributes like a link code, and wins over a click and a code. */
  couponCode?: string | null;
  clickId?: string | null;
  amount?: { amount: string; currency: string } | null;
  occurredAt?: Date | null;
  /** The integrator's own fields (a JSON object, see domain/metadata.ts); a new referral starts with them too. */
  metadata?: unknown;
  /** The company's product id: selects the rules limited to products (RewardRule.productIds). */
  productId?: string | null;
  /** The referred person's IP address (IPv4 or IPv6), for the fraud rules: only its keyed hash is stored. */
  ip?: string | null;
  /** The referred person's User-Agent (truncated to USER_AGENT_MAX). */
  userAgent?: string | null;
}

/** Stands for a programId that was given but cannot name a program (answers NOT_FOUND). */
export const INVALID_ID = Symbol('invalid id');

export interface RecordConversionOptions {
  /** Who records it, for the rewards' status history: an api key id, or "system:<job>". */
  actor: string;
  /** Decodes a click id token (null: not a click id of this installation). */
  decodeClick: (token: string) => DecodedClick | null;
  /** The keyed hash clicks use for IP addresses (ClickRecorder.hashIp); null when `ip` is not an IP address. */
  hashIp: (ip: string) => string | null;
  now?: Date;
}

export interface RecordedConversion {
  conversionId: string;
  status: ConversionStatus;
  discardReason: string | null;
  /**
   * The rewards created now; for a replay answered by the key's read, the conversion's rewards as
   * they are now (oldest first, no clawbacks); for another replay, none (read them).
   */
  rewards: Reward[];
  /** The conversion's row as written now, or as stored for a replay answered by the key's read; null: read it. */
  row: Conversion | null;
  /** The idempotency key had been used: this is the first call's conversion, nothing was recorded now. */
  replayed: boolean;
  /** What bound the conversion to its partner (null for a replay, or when nothing did). */
  attributedBy?: AttributedBy | null;
}

export type AttributedBy = 'COUPON' | 'CLICK' | 'CODE' | 'EXISTING_REFERRAL';

interface ValidInput {
  type: ConversionType;
  idempotencyKey: string;
  referredExternalId: string;
  referredEmail: string | null;
  programId: string | null | typeof INVALID_ID;
  code: string | null;
  couponCode: string | null;
  clickId: string | null;
  amount: bigint | null;
  currency: string | null;
  occurredAt: Date;
  metadata: Metadata;
  productId: string | null;
  ipHash: string | null;
  userAgent: string | null;
}

const field = (...path: string[]) => ['input', ...path];

const isIdempotencyKey = (key: string) => key.trim().length > 0 && key.length <= IDEMPOTENCY_KEY_MAX;

/** Every problem of the input at once; money parsed to minor units. */
function validate(input: RecordConversionInput, now: Date, hashIp: (ip: string) => string | null): ValidInput {
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
  const couponCode = input.couponCode?.trim() || null;
  v.check(
    couponCode === null || couponCode.length <= CODE_MAX,
    field('couponCode'),
    `A couponCode is at most ${CODE_MAX} characters long.`,
  );
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
  const metadata = checkMetadata(v, input.metadata, field('metadata')) ?? {};
  const productId = input.productId?.trim() || null;
  v.check(
    productId === null || productId.length <= PRODUCT_ID_MAX,
    field('productId'),
    `A productId is at most ${PRODUCT_ID_MAX} characters long.`,
  );
  const ip = input.ip?.trim() || null;
  const ipHash = ip === null ? null : ip.length <= 100 ? hashIp(ip) : null;
  v.check(
    ip === null || ipHash !== null,
    field('ip'),
    'ip must be an IPv4 or IPv6 address (e.g. "203.0.113.7" or "2001:db8::1"); only a keyed hash of it is stored.',
  );
  const userAgent = input.userAgent?.trim().slice(0, USER_AGENT_MAX) || null;
  v.throwIfAny();
  return {
    type: input.type,
    idempotencyKey: input.idempotencyKey,
    referredExternalId: externalId,
    referredEmail: email,
    programId: input.programId ?? null,
    code,
    couponCode,
    clickId,
    amount,
    currency,
    occurredAt,
    metadata,
    productId,
    ipHash,
    userAgent,
  };
}

/**
 * Record a conversion once per idempotency key, attribute it, and reward it — all in one
 * transaction. A key already used is answered first, by one read without a transaction (a
 * replay writes nothing). Followed as data, the input goes through five steps, each in one place:
 * 1. **load facts** (attribution-facts.ts `loadFacts`): claim the key (INSERT … ON CONFLICT DO
 *    NOTHING, in the same statement) and read everything attribution decides on. A key already
 *    taken — by a concurrent call that blocks us on the unique index until it commits, or an earlier
 *    one — answers with the stored conversion (a replay: no userErrors, whatever its other fields);
 * 2. **decide** (attribution.ts `decideAttribution`, pure): existing referral, new referral, or
 *    discarded, and why;
 * 3. **write the referral** (referral-writes.ts `applyDecision`): create or lock-and-update it,
 *    loading its program's rules in the same statement; a referral created concurrently is
 *    re-read and re-checked there (first touch wins);
 * 4. **reward** (reward/create-rewards.ts `draftRewards`: limits and caps read under the
 *    referral's lock, then reward/engine.ts, pure) and write the conversion's outcome with the
 *    rewards and their history in one statement;
 * 5. **events**: `referral.status_changed` if the referral changed, `reward.created` for each
 *    reward, one `conversion.recorded`, numbered at commit.
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
  const checked = await validOrReplay(db, tenant, input, options, now);
  if ('replay' in checked) return checked.replay;
  // A key already used (a retried webhook): answered by one read, outside any transaction. A key
  // used concurrently, not yet committed, is not seen here: the claim in the transaction waits for it.
  const stored = await storedConversionWithRows(db.prepared, tenant, checked.valid.idempotencyKey);
  if (stored) return stored;
  return db.transaction((tx) => recordInTransaction(tx, tenant, checked.valid, options, now));
}

/**
 * The input checked, or — when it is invalid but its idempotency key was used — the stored
 * conversion: a replay answers with the first result whatever its other fields. One read, no
 * transaction, on that path. Invalid input with an unused key throws its userErrors.
 */
async function validOrReplay(
  db: Database,
  tenant: Tenant,
  input: RecordConversionInput,
  options: RecordConversionOptions,
  now: Date,
): Promise<{ valid: ValidInput } | { replay: RecordedConversion }> {
  try {
    return { valid: validate(input, now, options.hashIp) };
  } catch (error) {
    if (!isIdempotencyKey(input.idempotencyKey)) throw error;
    const stored = await storedConversion(db, tenant, input.idempotencyKey);
    if (stored) return { replay: stored };
    throw error;
  }
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

interface StoredRow extends Omit<Conversion, 'amount' | 'skippedRules' | 'metadata' | 'metadataMatch' | 'signals'> {
  amount: string | null;
  skippedRules: unknown;
  metadata: unknown;
  metadataMatch: unknown;
  signals: unknown;
  rewards: Array<
    Omit<Reward, 'amount' | 'approveAfter' | 'createdAt' | 'updatedAt'> &
      Record<'amount' | 'approveAfter' | 'createdAt' | 'updatedAt', string>
  >;
}

/**
 * The conversion already recorded with this key, as a replay, with its row and its rewards (their
 * current state, oldest first, clawbacks left out: what the payload shows) in one statement, so that
 * the payload needs no read of its own; null when the key is unused. The rewards are found by
 * `conversionId` alone (their foreign key to the conversion includes its tenant), clawbacks left
 * out by the aggregate's FILTER: the only index a plan can take is the conversion's own, where a
 * plan made on a table that looked empty took the tenant's (`workspaceId, mode, createdAt`) and
 * walked every reward of the tenant (seen in the conversions bench's fresh database).
 */
async function storedConversionWithRows(
  db: SqlTx,
  tenant: Tenant,
  idempotencyKey: string,
): Promise<RecordedConversion | null> {
  const [stored] = await db.sql<StoredRow>`
    SELECT c."id", c."workspaceId", c."mode"::text AS "mode", c."type"::text AS "type", c."status"::text AS "status",
           c."discardReason", c."idempotencyKey", c."referredExternalId", c."referredEmail", c."amount"::text AS "amount",
           c."currency", c."occurredAt", c."programId", c."partnerId", c."referralId", c."linkId", c."couponId", c."clickId",
           c."refundOfId", c."skippedRules", c."productId", c."metadata", c."metadataMatch", c."ipHash", c."userAgent",
           c."signals", c."createdAt",
           COALESCE((
             SELECT json_agg(json_build_object(
                      'id', r."id", 'workspaceId', r."workspaceId", 'mode', r."mode", 'programId', r."programId",
                      'partnerId', r."partnerId", 'conversionId', r."conversionId", 'referralId', r."referralId",
                      'ruleId', r."ruleId", 'ruleLineageId', r."ruleLineageId", 'recipient', r."recipient", 'kind', r."kind",
                      'status', r."status", 'amount', r."amount"::text, 'currency', r."currency",
                      'sourceRewardId', r."sourceRewardId", 'payoutId', r."payoutId", 'approveAfter', r."approveAfter",
                      'explanation', r."explanation", 'reviewItemId', r."reviewItemId", 'held', r."held",
                      'createdAt', r."createdAt", 'updatedAt', r."updatedAt") ORDER BY r."id")
                    FILTER (WHERE r."sourceRewardId" IS NULL)
               FROM "Reward" r
              WHERE r."conversionId" = c."id"), '[]'::json) AS "rewards"
      FROM "Conversion" c
     WHERE c."workspaceId" = ${tenant.workspaceId}::uuid AND c."mode" = ${tenant.mode}::"Mode" AND c."idempotencyKey" = ${idempotencyKey}`;
  if (!stored) return null;
  const { rewards: storedRewards, ...columns } = stored;
  const row: Conversion = {
    ...columns,
    amount: columns.amount === null ? null : BigInt(columns.amount),
    occurredAt: new Date(columns.occurredAt),
    createdAt: new Date(columns.createdAt),
    skippedRules: json(columns.skippedRules) as Prisma.JsonValue,
    metadata: json(columns.metadata) as Prisma.JsonValue,
    metadataMatch: json(columns.metadataMatch) as Prisma.JsonValue,
    signals: json(columns.signals) as Prisma.JsonValue,
  };
  const rewards: Reward[] = (json(storedRewards) as StoredRow['rewards']).map((r) => ({
    ...r,
    amount: BigInt(r.amount),
    approveAfter: new Date(r.approveAfter),
    createdAt: new Date(r.createdAt),
    updatedAt: new Date(r.updatedAt),
  }));
  return {
    conversionId: row.id,
    status: row.status,
    discardReason: row.discardReason,
    rewards,
    row,
    replayed: true,
  };
}

/** A json/jsonb column as both drivers give it (parsed; a string only if a driver left it as text). */
const json = (value: unknown): unknown => (typeof value === 'string' ? JSON.parse(value) : value);

async function recordInTransaction(
  tx: SqlTransaction,
  tenant: Tenant,
  input: ValidInput,
  options: RecordConversionOptions,
  now: Date,
): Promise<RecordedConversion> {
  // 1. Load facts: the claim, and in the same statement every fact attribution decides on. The
  // row starts ACCEPTED and gets its final status in step 4, before commit.
  const conversionId = uuidv7();
  const claim = sql`
    INSERT INTO "Conversion" ("id", "workspaceId", "mode", "type", "status", "idempotencyKey", "referredExternalId", "referredEmail",
                              "amount", "currency", "occurredAt", "metadata", "productId", "ipHash", "userAgent", "createdAt")
    VALUES (${conversionId}::uuid, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${input.type}::"ConversionType", 'ACCEPTED',
            ${input.idempotencyKey}, ${input.referredExternalId}, ${input.referredEmail}, ${input.amount}::bigint, ${input.currency},
            ${input.occurredAt}::timestamptz, ${JSON.stringify(input.metadata)}::jsonb, ${input.productId}, ${input.ipHash}::text,
            ${input.userAgent}::text, ${now}::timestamptz)
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
      couponCode: input.couponCode,
      referredExternalId: input.referredExternalId,
    },
    options.decodeClick,
    { ipHash: input.ipHash, occurredAt: input.occurredAt },
  );
  if (facts.claimedId === null) {
    // Taken: by a transaction that has committed (ON CONFLICT waited for it), so this read sees it.
    const stored = await storedConversion(tx, tenant, input.idempotencyKey);
    if (!stored) throw new Error('idempotency key conflict without a stored conversion');
    return stored;
  }
  if (input.programId !== null && facts.givenProgramId === null) throw notFound('Program', field('programId'));

  // 2. Decide (pure).
  const referred = { externalId: input.referredExternalId, email: input.referredEmail, occurredAt: input.occurredAt };
  const decision = decideAttribution({
    programId: facts.givenProgramId,
    signals: facts.signals,
    referral: facts.referral,
    referred,
  });
  const attributedBy: AttributedBy | null =
    decision.outcome === 'existing'
      ? 'EXISTING_REFERRAL'
      : decision.outcome === 'discard'
        ? null
        : (decision.touch.source.toUpperCase() as AttributedBy);
  // 3. Write the referral the decision calls for (with the rules of its program).
  const outcome = await applyDecision(tx, tenant, input, decision, referred);
  const result: Outcome = {
    programId: facts.givenProgramId,
    partnerId: null,
    referralId: null,
    linkId: null,
    couponId: null,
    clickRowId: null,
    ...outcome,
  };
  const status = result.discard ? 'DISCARDED' : 'ACCEPTED';

  // 4. Reward: the rewards an accepted conversion earns (limits and caps read under the referral's lock),
  // and the rules that earned nothing, with why; `rewardable` is only set for one. A conversion that
  // trips a fraud rule of its program (pure: its facts came with the attribution facts) opens a
  // review item in the outcome statement, which holds its rewards.
  const { rewardable } = result;
  const signals = rewardable ? evaluateFraud(rewardable.fraud) : [];
  const reviewItem: NewReviewItem | null =
    rewardable && signals.length > 0
      ? {
          id: uuidv7(),
          programId: rewardable.program.id,
          partnerId: result.partnerId!,
          conversionId,
          referralId: rewardable.referral.id,
          signals,
          createdAt: now,
        }
      : null;
  const { rewards, skipped } = rewardable
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
            productId: input.productId,
          },
          referral: rewardable.referral,
          program: rewardable.program,
          partnerId: result.partnerId!,
          now,
          reviewItemId: reviewItem?.id ?? null,
        },
        rewardable.rules,
      )
    : { rewards: [], skipped: [] };

  // The conversion's outcome with the rewards and their history (and its review item), in one
  // statement, sent without waiting for its answer. The row is found by its id alone: the claim
  // inserted it in this transaction, for this tenant; with the tenant's columns in the condition too,
  // a plan made while the table looked empty walked the tenant's conversions through
  // (workspaceId, mode, referredExternalId) instead of the primary key. Then: the tier statement (if any) and the events' INSERT
  // follow it on the wire, and COMMIT (db.transaction) travels with them; if it fails, so does the transaction.
  tx.sqlBeforeCommit`
    WITH ${insertReviewItemCte(tenant, reviewItem)} ${insertRewardsCtes(tenant, rewards, options.actor)}
    outcome AS (
      UPDATE "Conversion"
         SET "status" = ${status}::"ConversionStatus", "discardReason" = ${result.discard},
             "programId" = ${result.programId}::uuid, "partnerId" = ${result.partnerId}::uuid, "referralId" = ${result.referralId}::uuid,
             "linkId" = ${result.linkId}::uuid, "couponId" = ${result.couponId ?? null}::uuid, "clickId" = ${result.clickRowId}::uuid,
             "skippedRules" = ${JSON.stringify(skipped)}::jsonb, "signals" = ${JSON.stringify(signals)}::jsonb
       WHERE "id" = ${conversionId}::uuid
      RETURNING 1
    )
    SELECT count(*) FROM outcome`;
  // The partner's tier, which a payment may raise (none of this in a program without tiers).
  const tierEvents = rewardable
    ? await raiseTier(tx, tenant, rewardable.tier, {
        type: input.type,
        programId: result.programId!,
        partnerId: result.partnerId!,
        convertedReferral: rewardable.referral.isNew || result.referralChange?.to === 'CONVERTED',
        now,
      })
    : [];
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
    couponId: result.couponId ?? null,
    clickId: result.clickRowId,
    refundOfId: null,
    skippedRules: skipped,
    productId: input.productId,
    metadata: input.metadata as Prisma.JsonObject,
    metadataMatch: [input.metadata as Prisma.JsonObject],
    ipHash: input.ipHash,
    userAgent: input.userAgent,
    signals: signals as unknown as Prisma.JsonArray,
    createdAt: now,
  };
  // 5. Events, numbered at commit; the last statement, sent with the COMMIT (db.transaction).
  const { referralChange } = result;
  await appendEvents(
    tx,
    tenant,
    [
      ...(referralChange && result.referralId
        ? [referralStatusChanged({ ...row, id: result.referralId }, referralChange.from, referralChange.to)]
        : []),
      ...rewards.map(rewardCreated),
      conversionRecorded(
        row,
        rewards.map((r) => r.id),
      ),
      ...(reviewItem
        ? [
            reviewOpened(
              reviewItem,
              rewards.map((r) => r.id),
            ),
          ]
        : []),
      ...tierEvents,
    ],
    { beforeCommit: true },
  );
  return {
    conversionId,
    status,
    discardReason: result.discard,
    rewards,
    row,
    replayed: false,
    attributedBy: result.discard ? null : attributedBy,
  };
}

/** Carries a simulated outcome out of the transaction it rolls back. */
class SimulationRollback extends Error {
  constructor(readonly result: RecordedConversion) {
    super('simulation: rolled back');
  }
}

/**
 * What `recordConversion` would do with `input`, and why — without keeping any of it: the very same
 * transaction runs (validation, the idempotency claim, attribution, fraud rules, the reward engine,
 * the tier, the events) and is rolled back, so nothing is written, no event is appended, no key is
 * consumed, and a real call afterwards gives the same answer (unless something changed meanwhile).
 * Locks it takes (the referral's row, the claimed key) are held only while it runs. A key already
 * used answers like recordConversion: the stored conversion (`replayed`).
 */
export async function simulateConversion(
  db: Database,
  tenant: Tenant,
  input: RecordConversionInput,
  options: RecordConversionOptions,
): Promise<RecordedConversion> {
  const now = options.now ?? new Date();
  const checked = await validOrReplay(db, tenant, input, options, now);
  if ('replay' in checked) return checked.replay;
  try {
    await db.transaction(async (tx) => {
      throw new SimulationRollback(await recordInTransaction(tx, tenant, checked.valid, options, now));
    });
  } catch (error) {
    if (error instanceof SimulationRollback) return error.result;
    throw error;
  }
  throw new Error('simulation: the transaction neither answered nor failed');
}
