// simulateConversion (issue 16, item 7): what recordConversion would do, and why, without
// writing anything — no row, no event, no idempotency key consumed — and a later real call gives
// the same answer.
import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';

const fixture = useTwoWorkspaces({ names: ['Simulation A', 'Simulation B'] });

const SIMULATE = graphql(`
  mutation SIM_Simulate($input: RecordConversionInput!) {
    simulateConversion(input: $input) {
      simulation {
        accepted discardReason attributedBy partner { id } program { id }
        rewards { rule { id } recipient kind amount { amount currency } explanation { source basisPoints capped text } }
        skipped { rule { id } reason }
        signals { type detail }
      }
      userErrors { code field message }
    }
  }
`);
const RECORD = graphql(`
  mutation SIM_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      replayed
      conversion { status partner { id } rewards { rule { id } amount { amount currency } explanation { text } } }
      userErrors { code field }
    }
  }
`);

const ids = { partner: '', partnerRow: '', program: '', percent: '', limited: '', code: '' };

beforeAll(async () => {
  const f = factories(fixture.server.testDb.db.prisma, fixture.tenant);
  const program = await f.program();
  ids.program = gid('Program', program.id);
  ids.percent = gid(
    'RewardRule',
    (
      await f.rule(program.id, {
        amountType: 'PERCENTAGE',
        fixedAmount: null,
        fixedCurrency: null,
        percentageBasisPoints: 2000,
      })
    ).id,
  );
  ids.limited = gid('RewardRule', (await f.rule(program.id, { fixedAmount: 500n, productIds: ['pro'] })).id);
  const partner = await f.partner({ email: 'alice@acme-partners.example' });
  ids.partnerRow = partner.id;
  ids.partner = gid('Partner', partner.id);
  ids.code = (await f.link(await f.enrollment({ programId: program.id, partnerId: partner.id }))).code;
});

const input = (over: Record<string, unknown> = {}) => ({
  type: 'PURCHASE',
  idempotencyKey: 'sim-order-1',
  referredExternalId: 'sim-cust-1',
  code: ids.code,
  amount: { amount: '49.00', currency: 'USD' },
  ...over,
});

async function counts() {
  const p = fixture.server.testDb.db.prisma;
  const where = fixture.tenant;
  return {
    conversions: await p.conversion.count({ where }),
    referrals: await p.referral.count({ where }),
    rewards: await p.reward.count({ where }),
    events: await p.event.count({ where }),
    reviewItems: await p.reviewItem.count({ where }),
  };
}

describe('simulateConversion', () => {
  it('answers attribution, rewards with explanations and skipped rules, and writes nothing', async () => {
    const before = await counts();
    const res = await fixture.gql(SIMULATE, { input: input() } as never, fixture.admin);
    expect(res.errors).toBeUndefined();
    const sim = res.data!.simulateConversion.simulation!;
    expect(sim).toMatchObject({
      accepted: true,
      discardReason: null,
      attributedBy: 'CODE',
      partner: { id: ids.partner },
      program: { id: ids.program },
    });
    expect(sim.rewards).toEqual([
      {
        rule: { id: ids.percent },
        recipient: 'REFERRER',
        kind: 'CASH',
        amount: { amount: '9.80', currency: 'USD' },
        explanation: expect.objectContaining({ source: 'RULE', basisPoints: 2000, capped: false }),
      },
    ]);
    expect(sim.rewards[0]!.explanation.text).toContain('9.80 USD');
    expect(sim.skipped).toEqual([{ rule: { id: ids.limited }, reason: 'PRODUCT_MISMATCH' }]);
    expect(sim.signals).toEqual([]);
    expect(await counts()).toEqual(before);

    // The key was not consumed: the real call records, with the same outcome.
    const real = await fixture.gql(RECORD, { input: input() } as never, fixture.admin);
    expect(real.data!.recordConversion.replayed).toBe(false);
    expect(real.data!.recordConversion.conversion).toMatchObject({ status: 'ACCEPTED', partner: { id: ids.partner } });
    expect(real.data!.recordConversion.conversion!.rewards).toEqual([
      {
        rule: { id: ids.percent },
        amount: { amount: '9.80', currency: 'USD' },
        explanation: { text: sim.rewards[0]!.explanation.text },
      },
    ]);
  });

  it('an existing referral is named as the reason, and a used key answers with the stored conversion', async () => {
    const again = await fixture.gql(
      SIMULATE,
      { input: input({ idempotencyKey: 'sim-order-2', code: null }) } as never,
      fixture.admin,
    );
    expect(again.data!.simulateConversion.simulation).toMatchObject({
      accepted: true,
      attributedBy: 'EXISTING_REFERRAL',
    });
    const before = await counts();
    const replay = await fixture.gql(SIMULATE, { input: input() } as never, fixture.admin);
    expect(replay.data!.simulateConversion.simulation).toMatchObject({
      accepted: true,
      partner: { id: ids.partner },
      rewards: [expect.objectContaining({ amount: { amount: '9.80', currency: 'USD' } })],
    });
    expect(await counts()).toEqual(before);
  });

  it('says why a conversion would be discarded, and which fraud signals it would trip', async () => {
    const unknown = await fixture.gql(
      SIMULATE,
      { input: input({ idempotencyKey: 'sim-order-3', referredExternalId: 'sim-cust-3', code: 'NOPE-CODE' }) } as never,
      fixture.admin,
    );
    expect(unknown.data!.simulateConversion.simulation).toMatchObject({
      accepted: false,
      discardReason: 'UNKNOWN_CODE',
      attributedBy: null,
      rewards: [],
    });
    const before = await counts();
    const colleague = await fixture.gql(
      SIMULATE,
      {
        input: input({
          idempotencyKey: 'sim-order-4',
          referredExternalId: 'sim-cust-4',
          referredEmail: 'bob@acme-partners.example',
        }),
      } as never,
      fixture.admin,
    );
    expect(colleague.data!.simulateConversion.simulation!.signals).toEqual([
      expect.objectContaining({ type: 'SELF_REFERRAL_EMAIL_DOMAIN' }),
    ]);
    expect(await counts()).toEqual(before);
  });

  it('refuses invalid input like recordConversion, and credentials other than ADMIN', async () => {
    const bad = await fixture.gql(
      SIMULATE,
      { input: input({ idempotencyKey: 'sim-bad', amount: null }) } as never,
      fixture.admin,
    );
    expect(bad.data!.simulateConversion.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'amount'] }),
    ]);
    for (const token of [
      await readOnlyKey(fixture.server, fixture.admin),
      await partnerToken(fixture.server, fixture.admin, ids.partnerRow),
    ]) {
      const res = await fixture.gql(SIMULATE, { input: input({ idempotencyKey: 'sim-x' }) } as never, token);
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    // Another workspace's code is unknown there; nothing is written on either side.
    const other = await fixture.gql(
      SIMULATE,
      { input: input({ idempotencyKey: 'sim-y' }) } as never,
      fixture.otherAdmin,
    );
    expect(other.data!.simulateConversion.simulation).toMatchObject({ accepted: false, discardReason: 'UNKNOWN_CODE' });
  });
});
