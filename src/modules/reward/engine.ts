import type {
  AmountType,
  ConversionType,
  RewardKind,
  RewardRecipient,
  RewardTrigger,
} from '../../generated/prisma/enums.js';
import { divideHalfUp, formatMinor, isCurrency } from '../../lib/money.js';

// The reward engine: which rewards one accepted conversion earns under a program's rules.
// Pure — no database, no clock: everything it decides on is in its arguments, so every rule
// feature is unit-tested without a server (test/reward-engine.test.ts). create-rewards.ts loads
// the inputs and writes the result.

const DAY_MS = 86_400_000;

/** "50.00 USD", for the messages of skipped rules. */
const show = (minor: bigint, currency: string | null) =>
  currency && isCurrency(currency)
    ? `${formatMinor(minor, currency)} ${currency}`
    : `${minor} (minor units) ${currency}`;

/** One version of a reward rule, as stored. */
export interface EngineRule {
  id: string;
  lineageId: string;
  version: number;
  trigger: RewardTrigger;
  recipient: RewardRecipient;
  kind: RewardKind;
  amountType: AmountType;
  fixedAmount: bigint | null;
  fixedCurrency: string | null;
  percentageBasisPoints: number | null;
  maxRewardsPerReferral: number | null;
  durationDays: number | null;
  capAmount: bigint | null;
  capCurrency: string | null;
  archivedAt: Date | null;
  supersededAt: Date | null;
  /** The product ids the rule rewards; empty: every product. */
  productIds: readonly string[];
}

/** A per-enrollment override of a rule lineage (RewardRuleOverride). */
export interface EngineOverride {
  ruleLineageId: string;
  /** The rule does not apply to this enrollment. */
  disabled: boolean;
  /** Replaces a FIXED rule's amount (same currency). */
  fixedAmount: bigint | null;
  /** Replaces a PERCENTAGE rule's basis points. */
  percentageBasisPoints: number | null;
}

export interface EngineConversion {
  type: ConversionType;
  /** Minor units; null for a conversion without an amount (a signup). */
  amount: bigint | null;
  currency: string | null;
  occurredAt: Date;
  /** The company's product id, as sent; null when none was given. */
  productId: string | null;
}

/**
 * What a referral already earned under one rule lineage for one recipient: rewards that are not
 * CANCELED or REJECTED. `count` leaves clawbacks out (they are not rewards earned); `totals` are
 * net per currency (clawbacks included), for caps.
 */
export interface PriorRewards {
  count: number;
  totals: ReadonlyMap<string, bigint>;
}

export const priorKey = (lineageId: string, recipient: RewardRecipient) => `${lineageId}:${recipient}`;

export interface EngineInput {
  conversion: EngineConversion;
  /** When the referral was created (its first attributed conversion): `durationDays` counts from here. */
  referralCreatedAt: Date;
  /** The program's rules; superseded and archived versions are ignored. */
  rules: readonly EngineRule[];
  /** The enrollment's overrides, at most one per lineage. */
  overrides: readonly EngineOverride[];
  /** Keyed by priorKey(lineageId, recipient); absent = nothing earned yet. */
  prior: ReadonlyMap<string, PriorRewards>;
}

export interface RewardDraft {
  /** The exact rule version that produced it. */
  ruleId: string;
  ruleLineageId: string;
  ruleVersion: number;
  recipient: RewardRecipient;
  kind: RewardKind;
  amount: bigint;
  currency: string;
  /** True when `capPerReferral` reduced it to what was left of the cap. */
  capped: boolean;
}

/**
 * Why a rule produced nothing for this conversion. Stored on the conversion (`skippedRules`) and
 * part of the API: a new reason is an addition to `Conversion.skippedRules`' description.
 */
export type SkipReason =
  | 'TRIGGER_MISMATCH'
  | 'ARCHIVED'
  | 'SUPERSEDED'
  | 'DUPLICATE_LINEAGE'
  | 'PRODUCT_MISMATCH'
  | 'DISABLED_BY_OVERRIDE'
  | 'DURATION_ENDED'
  | 'MAX_REWARDS_REACHED'
  | 'NO_CONVERSION_AMOUNT'
  | 'CAP_CURRENCY_MISMATCH'
  | 'CAP_REACHED'
  | 'ZERO_AMOUNT';

/**
 * A rule that produced nothing: the exact version, a reason code, and a sentence saying why.
 * (A type, not an interface, so that it is a JSON value for the conversion's column.)
 */
export type SkippedRule = {
  ruleId: string;
  reason: SkipReason;
  message: string;
};

export interface EngineResult {
  rewards: RewardDraft[];
  skipped: SkippedRule[];
}

/**
 * The rewards a conversion earns:
 * - every current (not superseded), non-archived rule whose trigger is the conversion's type and,
 *   for a rule limited to products (`productIds`), whose products include the conversion's;
 * - an override of the rule's lineage may disable it or replace its fixed amount / basis points;
 * - `durationDays`: only conversions that occurred within that many days of the referral's
 *   creation (inclusive);
 * - `maxRewardsPerReferral`: only while the referral has fewer rewards of that lineage and
 *   recipient;
 * - FIXED: the rule's amount and currency. PERCENTAGE: basis points of the conversion's amount,
 *   rounded half-up to the minor unit once, in the conversion's currency; a conversion without an
 *   amount earns nothing from a percentage rule;
 * - `capPerReferral`: a reward never takes the referral's net total of that lineage and recipient
 *   (in the cap's currency) above the cap; the reward that would cross it is reduced to what is
 *   left. Amounts are never converted between currencies (there are no exchange rates), so a
 *   capped rule rewards only in its cap's currency: a reward that would be in another one (a
 *   PERCENTAGE rule on a conversion in another currency) is not made at all —
 *   CAP_CURRENCY_MISMATCH — rather than paid uncapped. A FIXED rule's cap is in its amount's
 *   currency (rule validation), so it always applies;
 * - a reward of zero is not created.
 * Every rule that produces nothing is in `skipped`, with its reason and a sentence for people.
 */
export function evaluateRewards(input: EngineInput): EngineResult {
  const { conversion } = input;
  const overrides = new Map(input.overrides.map((o) => [o.ruleLineageId, o]));
  const result: EngineResult = { rewards: [], skipped: [] };
  const skip = (rule: EngineRule, reason: SkipReason, message: string) =>
    result.skipped.push({ ruleId: rule.id, reason, message });

  // Several current versions of one lineage should not exist; if they do, only the newest counts.
  const newest = new Map<string, EngineRule>();
  for (const rule of input.rules) {
    const seen = newest.get(rule.lineageId);
    if (!seen || rule.version > seen.version) newest.set(rule.lineageId, rule);
  }

  for (const rule of input.rules) {
    if (rule.trigger !== conversion.type) {
      skip(rule, 'TRIGGER_MISMATCH', `The rule rewards ${rule.trigger} conversions, not ${conversion.type}.`);
      continue;
    }
    if (rule.supersededAt) {
      skip(rule, 'SUPERSEDED', `Version ${rule.version} of the rule was replaced by a newer version.`);
      continue;
    }
    if (rule.archivedAt) {
      skip(rule, 'ARCHIVED', 'The rule is archived.');
      continue;
    }
    if (newest.get(rule.lineageId) !== rule) {
      skip(rule, 'DUPLICATE_LINEAGE', `A newer version of the rule than ${rule.version} applies instead.`);
      continue;
    }
    if (
      rule.productIds.length > 0 &&
      !(conversion.productId !== null && rule.productIds.includes(conversion.productId))
    ) {
      const products = rule.productIds.map((id) => `"${id}"`).join(', ');
      skip(
        rule,
        'PRODUCT_MISMATCH',
        conversion.productId === null
          ? `The rule rewards only products ${products}; the conversion names no productId.`
          : `The rule rewards only products ${products}; the conversion is for "${conversion.productId}".`,
      );
      continue;
    }
    const override = overrides.get(rule.lineageId);
    if (override?.disabled) {
      skip(rule, 'DISABLED_BY_OVERRIDE', 'The partner’s enrollment has an override that disables this rule.');
      continue;
    }
    if (rule.durationDays !== null) {
      const elapsed = conversion.occurredAt.getTime() - input.referralCreatedAt.getTime();
      if (elapsed > rule.durationDays * DAY_MS) {
        const end = new Date(input.referralCreatedAt.getTime() + rule.durationDays * DAY_MS);
        skip(
          rule,
          'DURATION_ENDED',
          `The rule rewards conversions within ${rule.durationDays} days of the referral (until ${end.toISOString()}); this one occurred at ${conversion.occurredAt.toISOString()}.`,
        );
        continue;
      }
    }
    const prior = input.prior.get(priorKey(rule.lineageId, rule.recipient));
    if (rule.maxRewardsPerReferral !== null && (prior?.count ?? 0) >= rule.maxRewardsPerReferral) {
      skip(
        rule,
        'MAX_REWARDS_REACHED',
        `The referred customer already has ${prior?.count ?? 0} rewards from this rule, its maximum (maxRewardsPerReferral).`,
      );
      continue;
    }

    let amount: bigint;
    let currency: string;
    if (rule.amountType === 'FIXED') {
      amount = override?.fixedAmount ?? rule.fixedAmount ?? 0n;
      currency = rule.fixedCurrency ?? '';
    } else {
      if (conversion.amount === null || conversion.currency === null) {
        skip(
          rule,
          'NO_CONVERSION_AMOUNT',
          'A PERCENTAGE rule rewards a share of the amount paid, and this conversion has none.',
        );
        continue;
      }
      const basisPoints = BigInt(override?.percentageBasisPoints ?? rule.percentageBasisPoints ?? 0);
      amount = divideHalfUp(conversion.amount * basisPoints, 10_000n);
      currency = conversion.currency;
    }

    let capped = false;
    if (rule.capAmount !== null && rule.capCurrency !== currency) {
      skip(
        rule,
        'CAP_CURRENCY_MISMATCH',
        `The reward would be in ${currency} and the rule’s cap per referred customer (capPerReferral) is ${show(rule.capAmount, rule.capCurrency)}. Amounts are never converted between currencies, so that cap cannot limit it: a capped rule rewards only in its cap’s currency rather than pay uncapped (one rule per currency, each with its own cap, covers several).`,
      );
      continue;
    }
    if (rule.capAmount !== null) {
      const earned = prior?.totals.get(currency) ?? 0n;
      const left = rule.capAmount - earned;
      if (left <= 0n) {
        skip(
          rule,
          'CAP_REACHED',
          `The referred customer already earned ${show(earned, currency)} from this rule, whose cap per referred customer (capPerReferral) is ${show(rule.capAmount, currency)}: nothing is left.`,
        );
        continue;
      }
      if (amount > left) {
        amount = left;
        capped = true;
      }
    }
    if (amount <= 0n) {
      skip(
        rule,
        'ZERO_AMOUNT',
        `The reward comes to ${show(amount, currency)} (rounded to the currency’s minor unit), and a reward of zero is not created.`,
      );
      continue;
    }
    result.rewards.push({
      ruleId: rule.id,
      ruleLineageId: rule.lineageId,
      ruleVersion: rule.version,
      recipient: rule.recipient,
      kind: rule.kind,
      amount,
      currency,
      capped,
    });
  }
  return result;
}

/** Does any of these rules look at what the referral already earned? (Else the lookup is skipped.) */
export function needsPriorRewards(rules: readonly EngineRule[]): boolean {
  return rules.some((r) => r.maxRewardsPerReferral !== null || r.capAmount !== null);
}
