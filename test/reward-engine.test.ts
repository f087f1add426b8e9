import { describe, expect, it } from 'vitest';
import {
  evaluateRewards,
  needsPriorRewards,
  priorKey,
  type EngineInput,
  type EngineRule,
  type PriorRewards,
  type SkippedRule,
} from '../src/modules/reward/engine.js';

// Unit tests of the pure reward engine: no database, no server.

const DAY = 86_400_000;
const T0 = new Date('2026-03-01T00:00:00.000Z');
let n = 0;

function rule(data: Partial<EngineRule> = {}): EngineRule {
  const id = data.id ?? `00000000-0000-7000-8000-${String(++n).padStart(12, '0')}`;
  return {
    id,
    lineageId: id,
    version: 1,
    trigger: 'PURCHASE',
    recipient: 'REFERRER',
    kind: 'CASH',
    amountType: 'FIXED',
    fixedAmount: 1000n,
    fixedCurrency: 'USD',
    percentageBasisPoints: null,
    maxRewardsPerReferral: null,
    durationDays: null,
    capAmount: null,
    capCurrency: null,
    archivedAt: null,
    supersededAt: null,
    productIds: [],
    ...data,
  };
}

const pct = (bp: number, data: Partial<EngineRule> = {}) =>
  rule({ amountType: 'PERCENTAGE', fixedAmount: null, fixedCurrency: null, percentageBasisPoints: bp, ...data });

function run(
  rules: EngineRule[],
  over: Partial<EngineInput> & {
    amount?: bigint | null;
    currency?: string | null;
    type?: EngineInput['conversion']['type'];
    at?: Date;
    productId?: string | null;
  } = {},
) {
  return evaluateRewards({
    conversion: {
      type: over.type ?? 'PURCHASE',
      amount: over.amount === undefined ? 10_000n : over.amount,
      currency: over.currency === undefined ? 'USD' : over.currency,
      occurredAt: over.at ?? T0,
      productId: over.productId ?? null,
    },
    referralCreatedAt: over.referralCreatedAt ?? T0,
    rules,
    overrides: over.overrides ?? [],
    prior: over.prior ?? new Map(),
  });
}

/** A skipped rule without its message (the messages have tests of their own). */
const code = ({ ruleId, reason }: SkippedRule) => ({ ruleId, reason });

const prior = (r: EngineRule, count: number, totals: Record<string, bigint> = {}): Map<string, PriorRewards> =>
  new Map([[priorKey(r.lineageId, r.recipient), { count, totals: new Map(Object.entries(totals)) }]]);

describe('reward engine', () => {
  it('pays a FIXED rule its amount and currency, whatever the conversion currency', () => {
    const r = rule({ fixedAmount: 2500n, fixedCurrency: 'EUR', kind: 'CREDIT' });
    const { rewards } = run([r], { amount: 100n, currency: 'JPY' });
    expect(rewards).toEqual([
      {
        ruleId: r.id,
        ruleLineageId: r.lineageId,
        ruleVersion: 1,
        recipient: 'REFERRER',
        kind: 'CREDIT',
        amount: 2500n,
        currency: 'EUR',
        capped: false,
      },
    ]);
  });

  it('pays a FIXED rule on a signup without an amount', () => {
    const r = rule({ trigger: 'SIGNUP' });
    expect(run([r], { type: 'SIGNUP', amount: null, currency: null }).rewards.map((w) => w.amount)).toEqual([1000n]);
  });

  it('applies only rules whose trigger is the conversion type', () => {
    const signup = rule({ trigger: 'SIGNUP' });
    const purchase = rule({ trigger: 'PURCHASE', fixedAmount: 700n });
    const subscription = rule({ trigger: 'SUBSCRIPTION', fixedAmount: 300n });
    const result = run([signup, purchase, subscription], { type: 'SUBSCRIPTION' });
    expect(result.rewards.map((w) => w.ruleId)).toEqual([subscription.id]);
    expect(result.skipped.map(code)).toEqual([
      { ruleId: signup.id, reason: 'TRIGGER_MISMATCH' },
      { ruleId: purchase.id, reason: 'TRIGGER_MISMATCH' },
    ]);
    expect(run([signup], { type: 'REFUND' }).rewards).toEqual([]);
  });

  it('computes a PERCENTAGE in basis points of the amount, in the conversion currency', () => {
    const { rewards } = run([pct(1500)], { amount: 4999n, currency: 'EUR' }); // 15 % of 49.99 = 7.4985 → 7.50
    expect(rewards[0]).toMatchObject({ amount: 750n, currency: 'EUR' });
  });

  it('rounds half-up once: 12.345 → 12.35, 12.344 → 12.34', () => {
    // 10 % of 123.45 = 12.345 → 12.35
    expect(run([pct(1000)], { amount: 12_345n }).rewards[0]!.amount).toBe(1235n);
    // 10 % of 123.44 = 12.344 → 12.34
    expect(run([pct(1000)], { amount: 12_344n }).rewards[0]!.amount).toBe(1234n);
    // 0.5 minor unit exactly rounds up: 50 % of 0.01 = 0.005 → 0.01
    expect(run([pct(5000)], { amount: 1n }).rewards[0]!.amount).toBe(1n);
  });

  it('rounds to the currency minor unit: JPY has none', () => {
    // 3.33 % of ¥1,234 = ¥41.0922 → ¥41; 2.5 % of ¥1,500 = ¥37.5 → ¥38
    expect(run([pct(333)], { amount: 1234n, currency: 'JPY' }).rewards[0]).toMatchObject({
      amount: 41n,
      currency: 'JPY',
    });
    expect(run([pct(250)], { amount: 1500n, currency: 'JPY' }).rewards[0]).toMatchObject({
      amount: 38n,
      currency: 'JPY',
    });
  });

  it('makes no percentage reward without a conversion amount, nor a zero one', () => {
    const r = pct(1000, { trigger: 'SIGNUP' });
    expect(run([r], { type: 'SIGNUP', amount: null, currency: null }).skipped.map(code)).toEqual([
      { ruleId: r.id, reason: 'NO_CONVERSION_AMOUNT' },
    ]);
    const p = pct(100);
    expect(run([p], { amount: 0n }).skipped.map(code)).toEqual([{ ruleId: p.id, reason: 'ZERO_AMOUNT' }]);
    expect(run([p], { amount: 49n }).skipped.map(code)).toEqual([{ ruleId: p.id, reason: 'ZERO_AMOUNT' }]); // 1 % of 0.49 = 0.0049 → 0.00
  });

  it('pays REFERRED recipients alongside REFERRER ones', () => {
    const referrer = rule({ fixedAmount: 1000n });
    const referred = rule({ recipient: 'REFERRED', kind: 'DISCOUNT', fixedAmount: 500n });
    expect(run([referrer, referred]).rewards.map((w) => [w.recipient, w.kind, w.amount])).toEqual([
      ['REFERRER', 'CASH', 1000n],
      ['REFERRED', 'DISCOUNT', 500n],
    ]);
  });

  it('stops at maxRewardsPerReferral, counted per lineage and recipient', () => {
    const r = rule({ maxRewardsPerReferral: 3 });
    expect(run([r], { prior: prior(r, 2) }).rewards).toHaveLength(1);
    expect(run([r], { prior: prior(r, 3) }).skipped.map(code)).toEqual([
      { ruleId: r.id, reason: 'MAX_REWARDS_REACHED' },
    ]);
    // Another lineage's rewards do not count.
    const other = rule();
    expect(run([r], { prior: prior(other, 5) }).rewards).toHaveLength(1);
  });

  it('pays only within durationDays of the referral’s creation, the last day included', () => {
    const r = rule({ durationDays: 30 });
    const created = new Date(T0.getTime() - 30 * DAY);
    expect(run([r], { referralCreatedAt: created, at: T0 }).rewards).toHaveLength(1);
    expect(run([r], { referralCreatedAt: new Date(created.getTime() - 1), at: T0 }).skipped.map(code)).toEqual([
      { ruleId: r.id, reason: 'DURATION_ENDED' },
    ]);
  });

  it('caps the total per referral, reducing the reward that crosses the cap to what is left', () => {
    const r = pct(1000, { capAmount: 5000n, capCurrency: 'USD' });
    // Nothing yet: 10 % of 100.00 = 10.00, under the 50.00 cap.
    expect(run([r], { amount: 10_000n }).rewards[0]).toMatchObject({ amount: 1000n, capped: false });
    // 45.00 earned: only 5.00 left.
    expect(run([r], { amount: 10_000n, prior: prior(r, 4, { USD: 4500n }) }).rewards[0]).toMatchObject({
      amount: 500n,
      capped: true,
    });
    // Exactly at the cap: nothing.
    expect(run([r], { amount: 10_000n, prior: prior(r, 5, { USD: 5000n }) }).skipped.map(code)).toEqual([
      { ruleId: r.id, reason: 'CAP_REACHED' },
    ]);
    // Net totals: clawbacks already subtracted by the caller make room again.
    expect(run([r], { amount: 10_000n, prior: prior(r, 5, { USD: 4800n }) }).rewards[0]).toMatchObject({
      amount: 200n,
      capped: true,
    });
  });

  it('applies enrollment overrides: disabled, replacement fixed amount, replacement basis points', () => {
    const fixed = rule({ fixedAmount: 1000n });
    const percent = pct(1000);
    const off = rule({ fixedAmount: 300n });
    const result = run([fixed, percent, off], {
      amount: 20_000n,
      overrides: [
        { ruleLineageId: fixed.lineageId, disabled: false, fixedAmount: 2500n, percentageBasisPoints: null },
        { ruleLineageId: percent.lineageId, disabled: false, fixedAmount: null, percentageBasisPoints: 250 },
        { ruleLineageId: off.lineageId, disabled: true, fixedAmount: null, percentageBasisPoints: null },
      ],
    });
    expect(result.rewards.map((w) => [w.ruleId, w.amount])).toEqual([
      [fixed.id, 2500n],
      [percent.id, 500n],
    ]);
    expect(result.skipped.map(code)).toEqual([{ ruleId: off.id, reason: 'DISABLED_BY_OVERRIDE' }]);
  });

  it('an override that keeps a field null keeps the rule’s value; a zero override pays nothing', () => {
    const r = rule({ fixedAmount: 1000n });
    expect(
      run([r], {
        overrides: [{ ruleLineageId: r.lineageId, disabled: false, fixedAmount: null, percentageBasisPoints: 50 }],
      }).rewards[0]!.amount,
    ).toBe(1000n);
    expect(
      run([r], {
        overrides: [{ ruleLineageId: r.lineageId, disabled: false, fixedAmount: 0n, percentageBasisPoints: null }],
      }).skipped.map(code),
    ).toEqual([{ ruleId: r.id, reason: 'ZERO_AMOUNT' }]);
  });

  it('ignores archived and superseded versions, and records the version that paid', () => {
    const v1 = rule({ fixedAmount: 100n, supersededAt: T0 });
    const v2 = rule({
      id: '00000000-0000-7000-8000-0000000000f2',
      lineageId: v1.lineageId,
      version: 2,
      fixedAmount: 200n,
    });
    const archived = rule({ archivedAt: T0 });
    const result = run([v1, v2, archived]);
    expect(result.rewards).toEqual([
      expect.objectContaining({ ruleId: v2.id, ruleLineageId: v1.lineageId, ruleVersion: 2, amount: 200n }),
    ]);
    expect(result.skipped.map(code)).toEqual([
      { ruleId: v1.id, reason: 'SUPERSEDED' },
      { ruleId: archived.id, reason: 'ARCHIVED' },
    ]);
  });

  it('keeps only the newest of two current versions of one lineage', () => {
    const v1 = rule({ fixedAmount: 100n });
    const v2 = rule({
      id: '00000000-0000-7000-8000-0000000000f3',
      lineageId: v1.lineageId,
      version: 2,
      fixedAmount: 200n,
    });
    expect(run([v1, v2]).rewards.map((w) => w.ruleId)).toEqual([v2.id]);
  });

  it('knows when prior rewards matter', () => {
    expect(needsPriorRewards([rule(), pct(10)])).toBe(false);
    expect(needsPriorRewards([rule({ maxRewardsPerReferral: 1 })])).toBe(true);
    expect(needsPriorRewards([rule({ capAmount: 1n, capCurrency: 'USD' })])).toBe(true);
  });
});

// What a rule's money means for a conversion in another currency. Amounts are never converted
// (there are no exchange rates): a FIXED amount is paid as is in its own currency; a PERCENTAGE
// reward is in the conversion's currency; a cap is in one currency, so a capped rule rewards only
// in that currency, and says so for the conversions it does not reward.
describe('reward engine: currencies', () => {
  it('an uncapped PERCENTAGE rule pays in each conversion’s currency', () => {
    const r = pct(1000);
    for (const [amount, currency, reward] of [
      [8000n, 'EUR', 800n],
      [8000n, 'USD', 800n],
      [1234n, 'JPY', 123n],
      [12_345n, 'KWD', 1235n], // 12.345 KWD (3 decimals) → 1.2345 → 1.235 (rounded half-up once)
    ] as const) {
      expect(run([r], { amount, currency }).rewards.map((w) => [w.amount, w.currency])).toEqual([[reward, currency]]);
    }
  });

  it('a PERCENTAGE rule capped in USD rewards no EUR conversion, however much is left of the cap, and says why', () => {
    // 100 % of 80.00 EUR, twice, under a 50.00 USD cap: before, 2 × 80.00 EUR was paid uncapped.
    const r = pct(10_000, { capAmount: 5000n, capCurrency: 'USD' });
    for (const earned of [new Map<string, PriorRewards>(), prior(r, 1, { EUR: 8000n })]) {
      const result = run([r], { amount: 8000n, currency: 'EUR', prior: earned });
      expect(result.rewards).toEqual([]);
      expect(result.skipped).toEqual([
        {
          ruleId: r.id,
          reason: 'CAP_CURRENCY_MISMATCH',
          message:
            'The reward would be in EUR and the rule’s cap per referred customer (capPerReferral) is 50.00 USD. Amounts are never converted between currencies, so that cap cannot limit it: a capped rule rewards only in its cap’s currency rather than pay uncapped (one rule per currency, each with its own cap, covers several).',
        },
      ]);
    }
    // The same rule still pays, capped, in USD; rewards in other currencies (paid before this rule
    // existed) do not use up its cap.
    expect(run([r], { amount: 8000n, currency: 'USD', prior: prior(r, 2, { EUR: 16_000n }) }).rewards).toEqual([
      expect.objectContaining({ amount: 5000n, currency: 'USD', capped: true }),
    ]);
  });

  it('a capped PERCENTAGE rule checks the currency before the cap is reached or the amount rounds to zero', () => {
    const r = pct(1, { capAmount: 100n, capCurrency: 'USD' });
    // 0.01 % of 0.10 EUR rounds to zero, and the cap is used up: the currency is the reason given.
    expect(run([r], { amount: 10n, currency: 'EUR', prior: prior(r, 9, { USD: 100n }) }).skipped.map(code)).toEqual([
      { ruleId: r.id, reason: 'CAP_CURRENCY_MISMATCH' },
    ]);
    // Without an amount there is no currency to compare: NO_CONVERSION_AMOUNT.
    const signup = pct(1000, { trigger: 'SIGNUP', capAmount: 100n, capCurrency: 'USD' });
    expect(run([signup], { type: 'SIGNUP', amount: null, currency: null }).skipped.map(code)).toEqual([
      { ruleId: signup.id, reason: 'NO_CONVERSION_AMOUNT' },
    ]);
  });

  it('one capped rule per currency: each conversion is rewarded by the rule of its currency, under that cap', () => {
    const usd = pct(1000, { capAmount: 5000n, capCurrency: 'USD' });
    const eur = pct(1000, { capAmount: 4000n, capCurrency: 'EUR' });
    const inEur = run([usd, eur], { amount: 50_000n, currency: 'EUR' });
    expect(inEur.rewards.map((w) => [w.ruleId, w.amount, w.currency, w.capped])).toEqual([
      [eur.id, 4000n, 'EUR', true],
    ]);
    expect(inEur.skipped.map(code)).toEqual([{ ruleId: usd.id, reason: 'CAP_CURRENCY_MISMATCH' }]);
    const inUsd = run([usd, eur], { amount: 20_000n, currency: 'USD' });
    expect(inUsd.rewards.map((w) => [w.ruleId, w.amount, w.currency, w.capped])).toEqual([
      [usd.id, 2000n, 'USD', false],
    ]);
    expect(inUsd.skipped.map(code)).toEqual([{ ruleId: eur.id, reason: 'CAP_CURRENCY_MISMATCH' }]);
  });

  it('a FIXED USD rule pays its USD amount on a EUR or JPY conversion, and its USD cap counts every one of them', () => {
    const r = rule({ fixedAmount: 2000n, fixedCurrency: 'USD', capAmount: 5000n, capCurrency: 'USD' });
    expect(run([r], { amount: 8000n, currency: 'EUR' }).rewards).toEqual([
      expect.objectContaining({ amount: 2000n, currency: 'USD', capped: false }),
    ]);
    // 40.00 USD already earned (on conversions in any currency): 10.00 USD left.
    expect(run([r], { amount: 1000n, currency: 'JPY', prior: prior(r, 2, { USD: 4000n }) }).rewards).toEqual([
      expect.objectContaining({ amount: 1000n, currency: 'USD', capped: true }),
    ]);
    const full = run([r], { amount: 8000n, currency: 'EUR', prior: prior(r, 3, { USD: 5000n }) });
    expect(full.rewards).toEqual([]);
    expect(full.skipped).toEqual([
      {
        ruleId: r.id,
        reason: 'CAP_REACHED',
        message:
          'The referred customer already earned 50.00 USD from this rule, whose cap per referred customer (capPerReferral) is 50.00 USD: nothing is left.',
      },
    ]);
    // An override replaces the amount, in the rule's currency.
    expect(
      run([r], {
        currency: 'EUR',
        overrides: [{ ruleLineageId: r.lineageId, disabled: false, fixedAmount: 700n, percentageBasisPoints: null }],
      }).rewards.map((w) => [w.amount, w.currency]),
    ).toEqual([[700n, 'USD']]);
  });

  it('a FIXED rule whose cap is in another currency than its amount (refused by validation) pays nothing rather than uncapped', () => {
    const r = rule({ fixedAmount: 2000n, fixedCurrency: 'EUR', capAmount: 5000n, capCurrency: 'USD' });
    expect(run([r]).skipped.map(code)).toEqual([{ ruleId: r.id, reason: 'CAP_CURRENCY_MISMATCH' }]);
  });

  it('says why in a sentence for every reason', () => {
    const created = new Date(T0.getTime() - 31 * DAY);
    const cases: Array<[EngineRule, Parameters<typeof run>[1], string]> = [
      [rule({ trigger: 'SIGNUP' }), {}, 'The rule rewards SIGNUP conversions, not PURCHASE.'],
      [rule({ archivedAt: T0 }), {}, 'The rule is archived.'],
      [
        rule({ durationDays: 30 }),
        { referralCreatedAt: created },
        'The rule rewards conversions within 30 days of the referral (until 2026-02-28T00:00:00.000Z); this one occurred at 2026-03-01T00:00:00.000Z.',
      ],
      [
        pct(100, { trigger: 'SIGNUP' }),
        { type: 'SIGNUP', amount: null, currency: null },
        'A PERCENTAGE rule rewards a share of the amount paid, and this conversion has none.',
      ],
      [
        pct(100),
        { amount: 49n, currency: 'EUR' },
        'The reward comes to 0.00 EUR (rounded to the currency’s minor unit), and a reward of zero is not created.',
      ],
      [
        pct(100),
        { amount: 49n, currency: 'JPY' },
        'The reward comes to 0 JPY (rounded to the currency’s minor unit), and a reward of zero is not created.',
      ],
    ];
    for (const [r, over, message] of cases) expect(run([r], over).skipped.map((s) => s.message)).toEqual([message]);
    const capped = rule({ maxRewardsPerReferral: 2 });
    expect(run([capped], { prior: prior(capped, 2) }).skipped[0]!.message).toBe(
      'The referred customer already has 2 rewards from this rule, its maximum (maxRewardsPerReferral).',
    );
    const off = rule();
    expect(
      run([off], {
        overrides: [{ ruleLineageId: off.lineageId, disabled: true, fixedAmount: null, percentageBasisPoints: null }],
      }).skipped[0]!.message,
    ).toBe('The partner’s enrollment has an override that disables this rule.');
  });
});

describe('rules limited to products', () => {
  it('a rule with productIds rewards only those products; a rule with none rewards every product', () => {
    const limited = rule({ productIds: ['pro', 'team'] });
    const open = rule({ fixedAmount: 200n });
    const forPro = run([limited, open], { productId: 'pro' });
    expect(forPro.rewards.map((r) => r.ruleId)).toEqual([limited.id, open.id]);
    const forBasic = run([limited, open], { productId: 'basic' });
    expect(forBasic.rewards.map((r) => r.ruleId)).toEqual([open.id]);
    expect(forBasic.skipped).toEqual([
      { ruleId: limited.id, reason: 'PRODUCT_MISMATCH', message: expect.stringContaining('is for "basic"') },
    ]);
    const none = run([limited, open]);
    expect(none.rewards.map((r) => r.ruleId)).toEqual([open.id]);
    expect(none.skipped[0]!.message).toContain('names no productId');
  });
});
