import type { Prisma, PrismaClient, RewardRule } from '../../generated/prisma/client.js';
import type { AmountType, RewardKind, RewardRecipient, RewardTrigger } from '../../generated/prisma/enums.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { parseCurrency, parseDecimal } from '../../lib/money.js';
import { findProgram, type Db } from './program.service.js';
import { uuidv7 } from '../../lib/uuid.js';
import { prismaSql } from '../../lib/sql.js';
import { appendEvent, inTransaction } from '../events/outbox.js';
import { rewardRuleArchived, rewardRuleCreated, rewardRuleUpdated } from '../events/payloads.js';

export const PERCENTAGE_BASIS_POINTS = { min: 1, max: 10_000 } as const;
export const MAX_REWARDS_PER_REFERRAL = { min: 1, max: 1000 } as const;
export const DURATION_DAYS = { min: 1, max: 3650 } as const;

/** Money as a client sends it: a decimal string in major units and a currency code. */
export interface MoneyInput {
  amount: string;
  currency: string;
}

/**
 * The editable terms of a rule. `undefined`: not given (an update keeps the current value);
 * `null`: none (an update clears it).
 */
export interface RewardRuleTermsInput {
  fixedAmount?: MoneyInput | null;
  percentageBasisPoints?: number | null;
  maxRewardsPerReferral?: number | null;
  durationDays?: number | null;
  capPerReferral?: MoneyInput | null;
  /** The product ids the rule rewards; empty or null: every product. */
  productIds?: readonly string[] | null;
}

export interface CreateRewardRuleInput extends RewardRuleTermsInput {
  trigger: RewardTrigger;
  recipient?: RewardRecipient | null;
  kind: RewardKind;
  amountType: AmountType;
}

/** The terms as stored. */
type Terms = Pick<
  RewardRule,
  | 'fixedAmount'
  | 'fixedCurrency'
  | 'percentageBasisPoints'
  | 'maxRewardsPerReferral'
  | 'durationDays'
  | 'capAmount'
  | 'capCurrency'
  | 'productIds'
>;

const NO_TERMS: Terms = {
  fixedAmount: null,
  fixedCurrency: null,
  percentageBasisPoints: null,
  maxRewardsPerReferral: null,
  durationDays: null,
  capAmount: null,
  capCurrency: null,
  productIds: [],
};

/** At most this many product ids per rule, each at most PRODUCT_ID_MAX characters. */
export const MAX_PRODUCT_IDS = 100;
export const PRODUCT_ID_MAX = 255;

const TERM_KEYS = Object.keys(NO_TERMS) as (keyof Terms)[];

/** A money input as minor units, with every bad part recorded on `v`; null when it is invalid. */
export function parseMoney(
  v: Validator,
  money: MoneyInput,
  path: string[],
  what: string,
): { amount: bigint; currency: string } | null {
  let currency: string | null = null;
  try {
    currency = parseCurrency(money.currency, [...path, 'currency']);
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    v.add(error);
  }
  if (!currency) {
    // The amount's decimals depend on the currency; its sign does not.
    v.check(!/^\s*(-|0+(\.0*)?\s*$)/.test(money.amount), [...path, 'amount'], `${what} must be greater than zero.`);
    return null;
  }
  let amount: bigint;
  try {
    amount = parseDecimal(money.amount, currency, [...path, 'amount']);
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    v.add(error);
    return null;
  }
  if (amount <= 0n) {
    v.add(
      new DomainError('VALIDATION', `${what} must be greater than zero; got "${money.amount}".`, [...path, 'amount']),
    );
    return null;
  }
  return { amount, currency };
}

/**
 * The stored terms after applying `input` over `base` (a rule's current terms, or none), checked
 * against the amount type. Every bad field is reported, together.
 */
function resolveTerms(amountType: AmountType, base: Terms, input: RewardRuleTermsInput): Terms {
  const v = new Validator();
  const terms: Terms = { ...base };
  // Fields already reported, so that each bad field gets exactly one userError.
  const reported = new Set<keyof RewardRuleTermsInput>();
  const refuse = (key: keyof RewardRuleTermsInput, message: string) => {
    v.add(new DomainError('VALIDATION', message, ['input', key]));
    reported.add(key);
  };

  if (input.fixedAmount !== undefined) {
    terms.fixedAmount = null;
    terms.fixedCurrency = null;
    if (input.fixedAmount && amountType === 'PERCENTAGE') {
      refuse('fixedAmount', 'A PERCENTAGE rule takes no `fixedAmount`: use `percentageBasisPoints`.');
    } else if (input.fixedAmount) {
      const money = parseMoney(v, input.fixedAmount, ['input', 'fixedAmount'], '`fixedAmount`');
      if (money) [terms.fixedAmount, terms.fixedCurrency] = [money.amount, money.currency];
      else reported.add('fixedAmount');
    }
  }
  if (input.percentageBasisPoints !== undefined) {
    terms.percentageBasisPoints = input.percentageBasisPoints;
    if (input.percentageBasisPoints !== null && amountType === 'FIXED') {
      refuse('percentageBasisPoints', 'A FIXED rule takes no `percentageBasisPoints`: use `fixedAmount`.');
    } else if (input.percentageBasisPoints !== null && !inRange(input.percentageBasisPoints, PERCENTAGE_BASIS_POINTS)) {
      refuse(
        'percentageBasisPoints',
        limitMessage(
          'percentageBasisPoints',
          input.percentageBasisPoints,
          PERCENTAGE_BASIS_POINTS,
          ' basis points (100 = 1 %)',
        ),
      );
    }
  }
  if (input.maxRewardsPerReferral !== undefined) {
    terms.maxRewardsPerReferral = input.maxRewardsPerReferral;
    if (input.maxRewardsPerReferral !== null && !inRange(input.maxRewardsPerReferral, MAX_REWARDS_PER_REFERRAL)) {
      refuse(
        'maxRewardsPerReferral',
        limitMessage('maxRewardsPerReferral', input.maxRewardsPerReferral, MAX_REWARDS_PER_REFERRAL, ' rewards'),
      );
    }
  }
  if (input.durationDays !== undefined) {
    terms.durationDays = input.durationDays;
    if (input.durationDays !== null && !inRange(input.durationDays, DURATION_DAYS)) {
      refuse('durationDays', limitMessage('durationDays', input.durationDays, DURATION_DAYS, ' days'));
    }
  }
  if (input.capPerReferral !== undefined) {
    terms.capAmount = null;
    terms.capCurrency = null;
    if (input.capPerReferral) {
      const money = parseMoney(v, input.capPerReferral, ['input', 'capPerReferral'], '`capPerReferral`');
      if (money) [terms.capAmount, terms.capCurrency] = [money.amount, money.currency];
      else reported.add('capPerReferral');
    }
  }

  if (input.productIds !== undefined) {
    // Trimmed, blanks dropped, each once, in the order given.
    const ids = [...new Set((input.productIds ?? []).map((id) => id.trim()).filter((id) => id.length > 0))];
    terms.productIds = ids;
    if (ids.length > MAX_PRODUCT_IDS) {
      refuse('productIds', `A rule is limited to at most ${MAX_PRODUCT_IDS} products; got ${ids.length}.`);
    } else if (ids.some((id) => id.length > PRODUCT_ID_MAX)) {
      refuse('productIds', `A product id is at most ${PRODUCT_ID_MAX} characters long.`);
    }
  }

  if (amountType === 'FIXED') {
    if (!reported.has('fixedAmount') && terms.fixedAmount === null)
      refuse('fixedAmount', 'A FIXED rule needs `fixedAmount`.');
    // A cap in another currency than the rewards it caps could never apply.
    if (terms.fixedCurrency && terms.capCurrency && terms.fixedCurrency !== terms.capCurrency) {
      v.add(
        new DomainError(
          'VALIDATION',
          `A FIXED rule’s \`capPerReferral\` must be in the currency of its \`fixedAmount\` (${terms.fixedCurrency}); got ${terms.capCurrency}.`,
          input.capPerReferral ? ['input', 'capPerReferral', 'currency'] : ['input', 'fixedAmount', 'currency'],
        ),
      );
    }
  } else if (!reported.has('percentageBasisPoints') && terms.percentageBasisPoints === null) {
    refuse(
      'percentageBasisPoints',
      'A PERCENTAGE rule needs `percentageBasisPoints` (1–10000; 100 basis points = 1 %).',
    );
  }
  v.throwIfAny();
  return terms;
}

const inRange = (value: number, range: { min: number; max: number }) => value >= range.min && value <= range.max;

const limitMessage = (name: string, value: number, range: { min: number; max: number }, unit: string) =>
  `\`${name}\` must be between ${range.min} and ${range.max}${unit}; got ${value}.`;

const ruleNotFound = (field: string[] = ['input', 'id']) => notFound('Reward rule', field);

/** The current (newest) version of a rule lineage in the tenant. */
export function currentVersion(db: Db, tenant: Tenant, lineageId: string): Promise<RewardRule | null> {
  return db.rewardRule.findFirst({ where: { lineageId, ...tenant, supersededAt: null } });
}

/** The lineage of the rule version with this row id (null: not found). */
async function lineageOf(db: Db, tenant: Tenant, id: string | null): Promise<string> {
  const row = id
    ? await db.rewardRule.findUnique({ where: { id_workspaceId_mode: { id, ...tenant } }, select: { lineageId: true } })
    : null;
  if (!row) throw ruleNotFound();
  return row.lineageId;
}

/**
 * Create a rule (its version 1, whose id is also the lineage id) in a program of the tenant that
 * is not ARCHIVED. `programId` is the row id (null: not found).
 */
export async function createRewardRule(
  db: Db,
  tenant: Tenant,
  programId: string | null,
  input: CreateRewardRuleInput,
): Promise<RewardRule> {
  const program = await findProgram(db, tenant, programId);
  if (!program) throw notFound('Program', ['input', 'programId']);
  const terms = resolveTerms(input.amountType, NO_TERMS, input);
  if (program.status === 'ARCHIVED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Program "${program.name}" is ARCHIVED: it cannot get a new reward rule (only DRAFT, ACTIVE and PAUSED programs can).`,
      ['input', 'programId'],
    );
  }
  const id = uuidv7();
  return inTransaction(db, async (tx) => {
    const rule = await tx.rewardRule.create({
      data: {
        id,
        lineageId: id,
        version: 1,
        ...tenant,
        programId: program.id,
        trigger: input.trigger,
        recipient: input.recipient ?? 'REFERRER',
        kind: input.kind,
        amountType: input.amountType,
        ...terms,
      },
    });
    await appendEvent(tx, tenant, rewardRuleCreated(rule));
    return rule;
  });
}

/**
 * Serialise the edits of one rule: lock its first version's row (the lineage anchor, which never
 * goes away) until the transaction ends. NO KEY UPDATE leaves foreign-key checks alone, so rewards
 * pointing at that version can still be inserted meanwhile.
 */
async function lockLineage(tx: Prisma.TransactionClient, tenant: Tenant, lineageId: string): Promise<void> {
  await prismaSql(tx)
    .sql`SELECT 1 FROM "RewardRule" WHERE "id" = ${lineageId}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" FOR NO KEY UPDATE`;
}

/**
 * Edit a rule: `id` may be any version's row id; the edit applies to the current version and
 * produces version + 1 (same lineage), superseding the current one in the same transaction.
 * Fields not given keep their values; null clears an optional limit. An edit that changes nothing
 * returns the current version as is. Archived rules, and rules of ARCHIVED programs, refuse edits.
 */
export async function updateRewardRule(
  prisma: PrismaClient,
  tenant: Tenant,
  id: string | null,
  input: RewardRuleTermsInput,
): Promise<RewardRule> {
  const lineageId = await lineageOf(prisma, tenant, id);
  return prisma.$transaction(async (tx) => {
    await lockLineage(tx, tenant, lineageId);
    const current = await currentVersion(tx, tenant, lineageId);
    if (!current) throw ruleNotFound();
    const terms = resolveTerms(current.amountType, pickTerms(current), input);
    if (current.archivedAt) {
      throw new DomainError(
        'INVALID_TRANSITION',
        `Reward rule (version ${current.version}) is archived: it cannot be updated. Create a new rule instead.`,
        ['input', 'id'],
      );
    }
    const program = await findProgram(tx, tenant, current.programId);
    if (program?.status === 'ARCHIVED') {
      throw new DomainError(
        'INVALID_TRANSITION',
        `Program "${program.name}" is ARCHIVED: its reward rules cannot be updated.`,
        ['input', 'id'],
      );
    }
    if (TERM_KEYS.every((key) => sameTerm(terms[key], current[key]))) return current;

    const now = new Date();
    await tx.rewardRule.update({ where: { id: current.id }, data: { supersededAt: now } });
    const next = await tx.rewardRule.create({
      data: {
        ...tenant,
        programId: current.programId,
        lineageId: current.lineageId,
        version: current.version + 1,
        trigger: current.trigger,
        recipient: current.recipient,
        kind: current.kind,
        amountType: current.amountType,
        ...terms,
        createdAt: now,
      },
    });
    await appendEvent(tx, tenant, rewardRuleUpdated(next, current));
    return next;
  });
}

/**
 * Archive a rule (any version's row id): its current version gets `archivedAt` and it stops
 * producing rewards. Archiving an archived rule is harmless and returns it unchanged.
 */
export async function archiveRewardRule(prisma: PrismaClient, tenant: Tenant, id: string | null): Promise<RewardRule> {
  const lineageId = await lineageOf(prisma, tenant, id);
  return prisma.$transaction(async (tx) => {
    await lockLineage(tx, tenant, lineageId);
    const current = await currentVersion(tx, tenant, lineageId);
    if (!current) throw ruleNotFound();
    if (current.archivedAt) return current;
    const archived = await tx.rewardRule.update({ where: { id: current.id }, data: { archivedAt: new Date() } });
    await appendEvent(tx, tenant, rewardRuleArchived(archived));
    return archived;
  });
}

/** Terms compare by value; productIds element by element. */
function sameTerm(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

function pickTerms(rule: RewardRule): Terms {
  return Object.fromEntries(TERM_KEYS.map((key) => [key, rule[key]])) as Terms;
}
