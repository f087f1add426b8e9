// setEnrollmentOverrides and Enrollment.overrides (issue 16, item 1): one partner paid otherwise
// by a program's rules — disabled, another fixed amount, another percentage — replaced as a set,
// all or nothing, used by the next conversion; scoped to the caller's workspace and mode.
import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken } from './helpers/money.js';

const fixture = useTwoWorkspaces({ names: ['Overrides A', 'Overrides B'] });

const SET = graphql(`
  mutation OV_Set($input: SetEnrollmentOverridesInput!) {
    setEnrollmentOverrides(input: $input) {
      enrollment { id overrides { rule { id } disabled fixedAmount { amount currency } percentageBasisPoints } }
      userErrors { code field message }
    }
  }
`);
const RECORD = graphql(`
  mutation OV_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { rewards { amount { amount currency } rule { id } } skippedRules { rule { id } reason } }
      userErrors { code field message }
    }
  }
`);

let enrollment = '';
let otherEnrollment = '';
let fixedRule = '';
let percentRule = '';
let foreignRule = '';
let code = '';
let partnerRowId = '';

beforeAll(async () => {
  const f = factories(fixture.server.testDb.db.prisma, fixture.tenant);
  const program = await f.program();
  fixedRule = gid('RewardRule', (await f.rule(program.id, { fixedAmount: 1000n })).id);
  percentRule = gid(
    'RewardRule',
    (
      await f.rule(program.id, {
        amountType: 'PERCENTAGE',
        fixedAmount: null,
        fixedCurrency: null,
        percentageBasisPoints: 1000,
      })
    ).id,
  );
  foreignRule = gid('RewardRule', (await f.rule((await f.program()).id, { fixedAmount: 100n })).id);
  const partner = await f.partner();
  partnerRowId = partner.id;
  const e = await f.enrollment({ programId: program.id, partnerId: partner.id });
  enrollment = gid('Enrollment', e.id);
  code = (await f.link(e)).code;
  const of = factories(fixture.server.testDb.db.prisma, fixture.otherTenant);
  const op = await of.program();
  otherEnrollment = gid(
    'Enrollment',
    (await of.enrollment({ programId: op.id, partnerId: (await of.partner()).id })).id,
  );
});

const set = (overrides: unknown[], token = fixture.admin, id = enrollment) =>
  fixture.gql(SET, { input: { enrollmentId: id, overrides } } as never, token);

let n = 0;
async function purchase() {
  const res = await fixture.gql(
    RECORD,
    {
      input: {
        type: 'PURCHASE',
        idempotencyKey: `ov-${++n}`,
        referredExternalId: `ov-cust-${n}`,
        code,
        amount: { amount: '50.00', currency: 'USD' },
      },
    },
    fixture.admin,
  );
  expect(res.data!.recordConversion.userErrors).toEqual([]);
  return res.data!.recordConversion.conversion!;
}

const eventCount = () => fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant });

describe('setEnrollmentOverrides', () => {
  it('without overrides the rules pay their own terms', async () => {
    const c = await purchase();
    const byRule = Object.fromEntries(c.rewards.map((r) => [r.rule.id, r.amount.amount]));
    expect(byRule).toEqual({ [fixedRule]: '10.00', [percentRule]: '5.00' });
  });

  it('replaces the set; the next conversion pays by it, and says which rule was disabled', async () => {
    const before = await eventCount();
    const res = await set([
      { ruleId: fixedRule, disabled: true },
      { ruleId: percentRule, percentageBasisPoints: 2000 },
    ]);
    expect(res.data!.setEnrollmentOverrides.userErrors).toEqual([]);
    expect(res.data!.setEnrollmentOverrides.enrollment!.overrides).toEqual([
      { rule: { id: fixedRule }, disabled: true, fixedAmount: null, percentageBasisPoints: null },
      { rule: { id: percentRule }, disabled: false, fixedAmount: null, percentageBasisPoints: 2000 },
    ]);
    expect(await eventCount()).toBe(before + 1);
    const [event] = await fixture.server.testDb.db.prisma.event.findMany({
      where: fixture.tenant,
      orderBy: { id: 'desc' },
      take: 1,
    });
    expect(event!.type).toBe('enrollment.overrides_changed');

    const c = await purchase();
    expect(c.rewards.map((r) => [r.rule.id, r.amount.amount])).toEqual([[percentRule, '10.00']]);
    expect(c.skippedRules).toEqual([{ rule: { id: fixedRule }, reason: 'DISABLED_BY_OVERRIDE' }]);

    // A new set replaces the old one entirely.
    const fixed = await set([{ ruleId: fixedRule, fixedAmount: { amount: '12.50', currency: 'USD' } }]);
    expect(fixed.data!.setEnrollmentOverrides.enrollment!.overrides).toEqual([
      {
        rule: { id: fixedRule },
        disabled: false,
        fixedAmount: { amount: '12.50', currency: 'USD' },
        percentageBasisPoints: null,
      },
    ]);
    const c2 = await purchase();
    expect(Object.fromEntries(c2.rewards.map((r) => [r.rule.id, r.amount.amount]))).toEqual({
      [fixedRule]: '12.50',
      [percentRule]: '5.00',
    });

    // An empty list removes them all.
    expect((await set([])).data!.setEnrollmentOverrides.enrollment!.overrides).toEqual([]);
  });

  it('reports every bad override at its index and changes nothing', async () => {
    await set([{ ruleId: fixedRule, disabled: true }]);
    const before = await eventCount();
    const res = await set([
      { ruleId: fixedRule, percentageBasisPoints: 500 },
      { ruleId: percentRule, fixedAmount: { amount: '1.00', currency: 'USD' } },
      { ruleId: foreignRule, disabled: true },
      { ruleId: fixedRule, disabled: true },
      { ruleId: 'not-an-id', disabled: true },
    ]);
    expect(res.data!.setEnrollmentOverrides.enrollment).toBeNull();
    expect(res.data!.setEnrollmentOverrides.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['VALIDATION', ['input', 'overrides', '0', 'percentageBasisPoints']],
      ['VALIDATION', ['input', 'overrides', '1', 'fixedAmount']],
      ['NOT_FOUND', ['input', 'overrides', '2', 'ruleId']],
      ['DUPLICATE', ['input', 'overrides', '3', 'ruleId']],
      ['NOT_FOUND', ['input', 'overrides', '4', 'ruleId']],
    ]);
    for (const override of [
      { ruleId: percentRule },
      { ruleId: fixedRule, disabled: true, fixedAmount: { amount: '1.00', currency: 'USD' } },
    ]) {
      const res = await set([override]);
      expect(res.data!.setEnrollmentOverrides.userErrors).toEqual([
        { code: 'VALIDATION', field: ['input', 'overrides', '0'], message: expect.stringContaining('does one thing') },
      ]);
    }
    const other = await set([{ ruleId: fixedRule, fixedAmount: { amount: '1.00', currency: 'EUR' } }]);
    expect(other.data!.setEnrollmentOverrides.userErrors).toEqual([
      {
        code: 'VALIDATION',
        field: ['input', 'overrides', '0', 'fixedAmount', 'currency'],
        message: expect.stringContaining('pays in USD'),
      },
    ]);
    const rate = await set([{ ruleId: percentRule, percentageBasisPoints: 10_001 }]);
    expect(rate.data!.setEnrollmentOverrides.userErrors[0]!.field).toEqual([
      'input',
      'overrides',
      '0',
      'percentageBasisPoints',
    ]);
    expect(await eventCount()).toBe(before);
    const stored = await fixture.server.testDb.db.prisma.rewardRuleOverride.findMany({ where: fixture.tenant });
    expect(stored.map((o) => o.disabled)).toEqual([true]);
  });

  it('never reaches another workspace’s or mode’s enrollment; READ_ONLY and PARTNER are refused', async () => {
    for (const token of [fixture.admin, fixture.liveAdmin]) {
      const res = await set([], token, otherEnrollment);
      expect(res.data!.setEnrollmentOverrides.userErrors).toEqual([
        expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'enrollmentId'] }),
      ]);
    }
    const live = await set([], fixture.liveAdmin);
    expect(live.data!.setEnrollmentOverrides.userErrors[0]!.code).toBe('NOT_FOUND');
    const partner = await partnerToken(fixture.server, fixture.admin, partnerRowId);
    const refused = await set([], partner);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});
