import type { Prisma } from '../../generated/prisma/client.js';
import { formatMinor } from '../../lib/money.js';
import type { RewardExplanation } from './engine.js';
import type { TermsSource } from './precedence.js';

// A reward's explanation as stored in `Reward.explanation` (jsonb) and read back: the engine's
// RewardExplanation with the base amount in minor units as a string (JSON has no 64-bit
// integers). Rewards created before issue 16 have none (null).

/** The JSON stored in `Reward.explanation`. */
export function storedExplanation(explanation: RewardExplanation): Prisma.JsonObject {
  const { base, ...rest } = explanation;
  return { ...rest, base: base ? { amount: base.amount.toString(), currency: base.currency } : null };
}

const SOURCES: readonly string[] = ['RULE', 'TIER', 'OVERRIDE'] satisfies TermsSource[];

/** `Reward.explanation` as the engine made it; null for none (or anything that is not one). */
export function explanationOf(value: Prisma.JsonValue | null | undefined): RewardExplanation | null {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  if (typeof v.text !== 'string' || typeof v.ruleVersion !== 'number' || !SOURCES.includes(v.source as string)) {
    return null;
  }
  const base = v.base as { amount?: unknown; currency?: unknown } | null | undefined;
  return {
    ruleVersion: v.ruleVersion,
    source: v.source as TermsSource,
    base:
      base && typeof base.amount === 'string' && typeof base.currency === 'string'
        ? { amount: BigInt(base.amount), currency: base.currency }
        : null,
    basisPoints: typeof v.basisPoints === 'number' ? v.basisPoints : null,
    capped: v.capped === true,
    text: v.text,
  };
}

const show = (minor: bigint, currency: string) => `${formatMinor(minor, currency)} ${currency}`;

/**
 * The explanation of a refund's negative reward (a refund share or a clawback): the rule version
 * and source of the reward it takes back, the refund as its base, and what it takes, e.g.
 * "Refund of 20.00 USD of 50.00 USD paid: −4.00 USD of the 10.00 USD reward".
 * Null when the reward taken back has no explanation (created before issue 16).
 */
export function refundShareExplanation(
  source: { explanation: Prisma.JsonValue | null; amount: bigint; currency: string },
  refund: { amount: bigint; currency: string; of: bigint },
  share: bigint,
): Prisma.JsonObject | null {
  const original = explanationOf(source.explanation);
  if (!original) return null;
  const sign = share < 0n ? '−' : '';
  const magnitude = share < 0n ? -share : share;
  const text =
    `Refund of ${show(refund.amount, refund.currency)} of ${show(refund.of, refund.currency)} paid: ` +
    `${sign}${show(magnitude, source.currency)} of the ${show(source.amount, source.currency)} reward`;
  return storedExplanation({
    ruleVersion: original.ruleVersion,
    source: original.source,
    base: { amount: refund.amount, currency: refund.currency },
    basisPoints: null,
    capped: false,
    text,
  });
}
