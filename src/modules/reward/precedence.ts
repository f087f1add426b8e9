// Which terms a rule pays one partner with: the one place that decides between an enrollment's
// override of the rule, the partner's tier's override of it, and the rule's own terms. Pure;
// tested with a table of cases (test/precedence.test.ts). The engine (engine.ts) calls it for
// every rule it evaluates.

/** Where the terms a reward was paid by came from (`RewardExplanation.source`). */
export type TermsSource = 'RULE' | 'TIER' | 'OVERRIDE';

/** An override of a rule lineage, by an enrollment or by a tier (RewardRuleOverride). */
export interface RuleOverrideTerms {
  /** The rule pays nothing. */
  disabled: boolean;
  /** Replaces a FIXED rule's amount (same currency). */
  fixedAmount: bigint | null;
  /** Replaces a PERCENTAGE rule's basis points. */
  percentageBasisPoints: number | null;
}

/** The rule's own terms (one of the two is set, by its amount type). */
export interface RuleTerms {
  fixedAmount: bigint | null;
  percentageBasisPoints: number | null;
}

export interface EffectiveTerms {
  source: TermsSource;
  /** The rule pays this partner nothing (source says who disabled it). */
  disabled: boolean;
  fixedAmount: bigint | null;
  percentageBasisPoints: number | null;
}

/**
 * The terms `rule` pays with, highest precedence first: the enrollment's override of it, else the
 * tier's override of it, else the rule itself. The override that applies decides everything: an
 * enrollment's fixed amount pays even where the tier disables the rule, and an enrollment's
 * `disabled` wins over a tier's better rate. An override sets exactly one thing (validation); a
 * value it leaves null is taken from the rule, so that a stray override never pays zero.
 */
export function effectiveTerms(
  rule: RuleTerms,
  tier: RuleOverrideTerms | null | undefined,
  enrollment: RuleOverrideTerms | null | undefined,
): EffectiveTerms {
  const [override, source] = enrollment
    ? [enrollment, 'OVERRIDE' as const]
    : tier
      ? [tier, 'TIER' as const]
      : [null, 'RULE' as const];
  if (!override) return { source, disabled: false, ...rule };
  return {
    source,
    disabled: override.disabled,
    fixedAmount: override.fixedAmount ?? rule.fixedAmount,
    percentageBasisPoints: override.percentageBasisPoints ?? rule.percentageBasisPoints,
  };
}
