import { describe, expect, it } from 'vitest';
import { effectiveTerms, type RuleOverrideTerms } from '../src/modules/reward/precedence.js';

// The one function that decides which terms pay (src/modules/reward/precedence.ts): an
// enrollment's override of a rule, else the partner's tier's, else the rule. Pure; every case here
// is a row of the table.

const FIXED_RULE = { fixedAmount: 1000n, percentageBasisPoints: null };
const PERCENT_RULE = { fixedAmount: null, percentageBasisPoints: 1000 };
const off: RuleOverrideTerms = { disabled: true, fixedAmount: null, percentageBasisPoints: null };
const amount = (fixedAmount: bigint): RuleOverrideTerms => ({
  disabled: false,
  fixedAmount,
  percentageBasisPoints: null,
});
const rate = (percentageBasisPoints: number): RuleOverrideTerms => ({
  disabled: false,
  fixedAmount: null,
  percentageBasisPoints,
});

describe('effectiveTerms: enrollment override > tier override > rule', () => {
  const cases: Array<
    [
      string,
      typeof FIXED_RULE | typeof PERCENT_RULE,
      RuleOverrideTerms | null,
      RuleOverrideTerms | null,
      { source: string; disabled: boolean; fixedAmount: bigint | null; percentageBasisPoints: number | null },
    ]
  > = [
    ['no override: the rule', FIXED_RULE, null, null, { source: 'RULE', disabled: false, ...FIXED_RULE }],
    [
      'no override (percentage): the rule',
      PERCENT_RULE,
      null,
      null,
      { source: 'RULE', disabled: false, ...PERCENT_RULE },
    ],
    [
      'tier amount',
      FIXED_RULE,
      amount(2000n),
      null,
      { source: 'TIER', disabled: false, fixedAmount: 2000n, percentageBasisPoints: null },
    ],
    [
      'tier rate',
      PERCENT_RULE,
      rate(2000),
      null,
      { source: 'TIER', disabled: false, fixedAmount: null, percentageBasisPoints: 2000 },
    ],
    ['tier disables', FIXED_RULE, off, null, { source: 'TIER', disabled: true, ...FIXED_RULE }],
    [
      'enrollment amount',
      FIXED_RULE,
      null,
      amount(1500n),
      { source: 'OVERRIDE', disabled: false, fixedAmount: 1500n, percentageBasisPoints: null },
    ],
    [
      'enrollment rate',
      PERCENT_RULE,
      null,
      rate(500),
      { source: 'OVERRIDE', disabled: false, fixedAmount: null, percentageBasisPoints: 500 },
    ],
    ['enrollment disables', PERCENT_RULE, null, off, { source: 'OVERRIDE', disabled: true, ...PERCENT_RULE }],
    [
      'enrollment amount over tier amount',
      FIXED_RULE,
      amount(2000n),
      amount(1500n),
      { source: 'OVERRIDE', disabled: false, fixedAmount: 1500n, percentageBasisPoints: null },
    ],
    [
      'enrollment rate over a better tier rate',
      PERCENT_RULE,
      rate(3000),
      rate(500),
      { source: 'OVERRIDE', disabled: false, fixedAmount: null, percentageBasisPoints: 500 },
    ],
    [
      'enrollment amount over a tier that disables',
      FIXED_RULE,
      off,
      amount(700n),
      { source: 'OVERRIDE', disabled: false, fixedAmount: 700n, percentageBasisPoints: null },
    ],
    [
      'enrollment disables over a tier amount',
      FIXED_RULE,
      amount(5000n),
      off,
      { source: 'OVERRIDE', disabled: true, ...FIXED_RULE },
    ],
    [
      'enrollment disables over a tier that disables',
      FIXED_RULE,
      off,
      off,
      { source: 'OVERRIDE', disabled: true, ...FIXED_RULE },
    ],
    // An override leaves the value it does not set to the rule (never a silent zero).
    [
      'tier override with the other kind of value: the rule’s amount',
      FIXED_RULE,
      rate(900),
      null,
      { source: 'TIER', disabled: false, fixedAmount: 1000n, percentageBasisPoints: 900 },
    ],
    [
      'zero is a value, not "unset"',
      FIXED_RULE,
      amount(0n),
      null,
      { source: 'TIER', disabled: false, fixedAmount: 0n, percentageBasisPoints: null },
    ],
  ];

  it.each(cases)('%s', (_name, rule, tier, enrollment, expected) => {
    expect(effectiveTerms(rule, tier, enrollment)).toEqual(expected);
  });

  it('treats undefined like null (no override)', () => {
    expect(effectiveTerms(FIXED_RULE, undefined, undefined)).toEqual({
      source: 'RULE',
      disabled: false,
      ...FIXED_RULE,
    });
  });
});
