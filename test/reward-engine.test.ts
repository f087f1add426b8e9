import { describe, expect, it } from 'vitest';
import {
  evaluateRewards,
  needsPriorRewards,
  priorKey,
  type EngineInput,
  type EngineRule,
  type PriorRewards,
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
  } = {},
) {
  return evaluateRewards({
    conversion: {
      type: over.type ?? 'PURCHASE',
      amount: over.amount === undefined ? 10_000n : over.amount,
      currency: over.currency === undefined ? 'USD' : over.currency,
      occurredAt: over.at ?? T0,
    },
    referralCreatedAt: over.referralCreatedAt ?? T0,
    rules,
    overrides: over.overrides ?? [],
    prior: over.prior ?? new Map(),
  });
}

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
    expect(result.skipped).toEqual([
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
    expect(run([r], { type: 'SIGNUP', amount: null, currency: null }).skipped).toEqual([
      { ruleId: r.id, reason: 'NO_CONVERSION_AMOUNT' },
    ]);
    const p = pct(100);
    expect(run([p], { amount: 0n }).skipped).toEqual([{ ruleId: p.id, reason: 'ZERO_AMOUNT' }]);
    expect(run([p], { amount: 49n }).skipped).toEqual([{ ruleId: p.id, reason: 'ZERO_AMOUNT' }]); // 1 % of 0.49 = 0.0049 → 0.00
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
    expect(run([r], { prior: prior(r, 3) }).skipped).toEqual([{ ruleId: r.id, reason: 'MAX_REWARDS_REACHED' }]);
    // Another lineage's rewards do not count.
    const other = rule();
    expect(run([r], { prior: prior(other, 5) }).rewards).toHaveLength(1);
  });

  it('pays only within durationDays of the referral’s creation, the last day included', () => {
    const r = rule({ durationDays: 30 });
    const created = new Date(T0.getTime() - 30 * DAY);
    expect(run([r], { referralCreatedAt: created, at: T0 }).rewards).toHaveLength(1);
    expect(run([r], { referralCreatedAt: new Date(created.getTime() - 1), at: T0 }).skipped).toEqual([
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
    expect(run([r], { amount: 10_000n, prior: prior(r, 5, { USD: 5000n }) }).skipped).toEqual([
      { ruleId: r.id, reason: 'CAP_REACHED' },
    ]);
    // A cap in another currency does not apply to EUR rewards.
    expect(run([r], { amount: 10_000n, currency: 'EUR', prior: prior(r, 5, { USD: 5000n }) }).rewards[0]).toMatchObject(
      { amount: 1000n, currency: 'EUR' },
    );
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
    expect(result.skipped).toEqual([{ ruleId: off.id, reason: 'DISABLED_BY_OVERRIDE' }]);
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
      }).skipped,
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
    expect(result.skipped).toEqual([
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
