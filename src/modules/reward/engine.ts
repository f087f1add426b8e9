import type {
  AmountType,
  ConversionType,
  RewardKind,
  RewardRecipient,
  RewardTrigger,
} from '../../generated/prisma/enums.js';
import { divideHalfUp } from '../../lib/money.js';

// The reward engine: which rewards one accepted conversion earns under a program's rules.
// Pure — no database, no clock: everything it decides on is in its arguments, so every rule
// feature is unit-tested without a server (test/reward-engine.test.ts). create-rewards.ts loads
// the inputs and writes the result.

const DAY_MS = 86_400_000;

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

/** Why a rule produced nothing for this conversion (for tests, logs and explanations). */
export type SkipReason =
  | 'TRIGGER_MISMATCH'
  | 'ARCHIVED'
  | 'SUPERSEDED'
  | 'DUPLICATE_LINEAGE'
  | 'DISABLED_BY_OVERRIDE'
  | 'DURATION_ENDED'
  | 'MAX_REWARDS_REACHED'
  | 'NO_CONVERSION_AMOUNT'
  | 'CAP_REACHED'
  | 'ZERO_AMOUNT';

export interface EngineResult {
  rewards: RewardDraft[];
  skipped: Array<{ ruleId: string; reason: SkipReason }>;
}

/**
 * The rewards a conversion earns:
 * - every current (not superseded), non-archived rule whose trigger is the conversion's type;
 * - an override of the rule's lineage may disable it or replace its fixed amount / basis points;
 * - `durationDays`: only conversions that occurred within that many days of the referral's
 *   creation (inclusive);
 * - `maxRewardsPerReferral`: only while the referral has fewer rewards of that lineage and
 *   recipient;
 * - FIXED: the rule's amount and currency. PERCENTAGE: basis points of the conversion's amount,
 *   rounded half-up to the minor unit once, in the conversion's currency; a conversion without an
 *   amount earns nothing from a percentage rule;
 * - `capPerReferral`: rewards in the cap's currency never take the referral's net total of that
 *   lineage and recipient above the cap; the reward that would cross it is reduced to what is
 *   left. A cap in another currency than the reward does not apply (no exchange rates here);
 * - a reward of zero is not created.
 */
export function evaluateRewards(input: EngineInput): EngineResult {
  const { conversion } = input;
  const overrides = new Map(input.overrides.map((o) => [o.ruleLineageId, o]));
  const result: EngineResult = { rewards: [], skipped: [] };
  const skip = (rule: EngineRule, reason: SkipReason) => result.skipped.push({ ruleId: rule.id, reason });

  // Several current versions of one lineage should not exist; if they do, only the newest counts.
  const newest = new Map<string, EngineRule>();
  for (const rule of input.rules) {
    const seen = newest.get(rule.lineageId);
    if (!seen || rule.version > seen.version) newest.set(rule.lineageId, rule);
  }

  for (const rule of input.rules) {
    if (rule.trigger !== conversion.type) {
      skip(rule, 'TRIGGER_MISMATCH');
      continue;
    }
    if (rule.supersededAt) {
      skip(rule, 'SUPERSEDED');
      continue;
    }
    if (rule.archivedAt) {
      skip(rule, 'ARCHIVED');
      continue;
    }
    if (newest.get(rule.lineageId) !== rule) {
      skip(rule, 'DUPLICATE_LINEAGE');
      continue;
    }
    const override = overrides.get(rule.lineageId);
    if (override?.disabled) {
      skip(rule, 'DISABLED_BY_OVERRIDE');
      continue;
    }
    if (rule.durationDays !== null) {
      const elapsed = conversion.occurredAt.getTime() - input.referralCreatedAt.getTime();
      if (elapsed > rule.durationDays * DAY_MS) {
        skip(rule, 'DURATION_ENDED');
        continue;
      }
    }
    const prior = input.prior.get(priorKey(rule.lineageId, rule.recipient));
    if (rule.maxRewardsPerReferral !== null && (prior?.count ?? 0) >= rule.maxRewardsPerReferral) {
      skip(rule, 'MAX_REWARDS_REACHED');
      continue;
    }

    let amount: bigint;
    let currency: string;
    if (rule.amountType === 'FIXED') {
      amount = override?.fixedAmount ?? rule.fixedAmount ?? 0n;
      currency = rule.fixedCurrency ?? '';
    } else {
      if (conversion.amount === null || conversion.currency === null) {
        skip(rule, 'NO_CONVERSION_AMOUNT');
        continue;
      }
      const basisPoints = BigInt(override?.percentageBasisPoints ?? rule.percentageBasisPoints ?? 0);
      amount = divideHalfUp(conversion.amount * basisPoints, 10_000n);
      currency = conversion.currency;
    }

    let capped = false;
    if (rule.capAmount !== null && rule.capCurrency === currency) {
      const earned = prior?.totals.get(currency) ?? 0n;
      const left = rule.capAmount - earned;
      if (left <= 0n) {
        skip(rule, 'CAP_REACHED');
        continue;
      }
      if (amount > left) {
        amount = left;
        capped = true;
      }
    }
    if (amount <= 0n) {
      skip(rule, 'ZERO_AMOUNT');
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
