// Program.attributionModel (issue 16, item 5): FIRST_TOUCH keeps a referred person with the
// first partner; LAST_TOUCH moves them to another partner whose coupon, click (inside the window)
// or code a later conversion carries. Rewards already created stay where they are. Concurrent
// conversions of two partners for one new person, under both models. And the precedence of a
// coupon over a click.
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FRAUD_RULES } from '../src/modules/review/fraud-rules.js';
import { decideAttribution, type ReferralFacts, type TouchFacts } from '../src/modules/conversion/attribution.js';
import { graphql } from './gql/index.js';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const fixture = useTwoWorkspaces({ names: ['Touch A', 'Touch B'] });

const RECORD = graphql(`
  mutation AM_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { id status discardReason partner { id } referral { id partner { id } } rewards { id partner { id } } }
      userErrors { code field message }
    }
  }
`);
const TRACK = graphql(`
  mutation AM_Track($input: TrackClickInput!) { trackClick(input: $input) { clickId discarded } }
`);

type World = { program: string; alice: string; bob: string; aliceCode: string; bobCode: string; bobCoupon: string };

let worlds = 0;
async function world(model: 'FIRST_TOUCH' | 'LAST_TOUCH'): Promise<World> {
  const bobCoupon = `BOB-${model}-${++worlds}`;
  const f = factories(fixture.server.testDb.db.prisma, fixture.tenant);
  const program = await f.program({ attributionModel: model });
  await f.rule(program.id, { trigger: 'PURCHASE', fixedAmount: 1000n });
  const alice = await f.partner();
  const bob = await f.partner();
  const aliceCode = (await f.link(await f.enrollment({ programId: program.id, partnerId: alice.id }))).code;
  const bobEnrollment = await f.enrollment({ programId: program.id, partnerId: bob.id });
  const bobCode = (await f.link(bobEnrollment)).code;
  await fixture.server.testDb.db.prisma.coupon.create({
    data: {
      ...fixture.tenant,
      programId: program.id,
      partnerId: bob.id,
      enrollmentId: bobEnrollment.id,
      code: bobCoupon,
      codeNormalized: bobCoupon.toLowerCase(),
    },
  });
  return {
    program: gid('Program', program.id),
    alice: gid('Partner', alice.id),
    bob: gid('Partner', bob.id),
    aliceCode,
    bobCode,
    bobCoupon,
  };
}

let n = 0;
async function purchase(person: string, signal: Record<string, unknown>) {
  const res = await fixture.gql(
    RECORD,
    {
      input: {
        type: 'PURCHASE',
        idempotencyKey: `am-${++n}`,
        referredExternalId: person,
        amount: { amount: '10.00', currency: 'USD' },
        ...signal,
      },
    } as never,
    fixture.admin,
  );
  expect(res.data!.recordConversion.userErrors).toEqual([]);
  return res.data!.recordConversion.conversion!;
}

describe('FIRST_TOUCH (the default)', () => {
  let w: World;
  beforeAll(async () => {
    w = await world('FIRST_TOUCH');
  });

  it('keeps the person with the first partner whatever later conversions carry', async () => {
    const first = await purchase('ft-1', { code: w.aliceCode });
    expect(first.partner).toEqual({ id: w.alice });
    for (const signal of [{ code: w.bobCode }, { couponCode: w.bobCoupon }]) {
      const later = await purchase('ft-1', signal);
      expect(later.partner).toEqual({ id: w.alice });
      expect(later.referral!.partner).toEqual({ id: w.alice });
    }
  });
});

describe('LAST_TOUCH', () => {
  let w: World;
  beforeAll(async () => {
    w = await world('LAST_TOUCH');
  });

  it('moves the person to the partner of a later code; earlier rewards stay with their partner', async () => {
    const first = await purchase('lt-1', { code: w.aliceCode });
    expect(first.partner).toEqual({ id: w.alice });
    const second = await purchase('lt-1', { code: w.bobCode });
    expect(second.partner).toEqual({ id: w.bob });
    expect(second.referral).toEqual({ id: first.referral!.id, partner: { id: w.bob } });
    expect(second.rewards.map((r) => r.partner.id)).toEqual([w.bob]);
    // From then on the person is Bob's, with no signal at all.
    const third = await purchase('lt-1', {});
    expect(third.partner).toEqual({ id: w.bob });
    // Alice's reward of the first conversion is still hers.
    const aliceRewards = await fixture.server.testDb.db.prisma.reward.count({
      where: { ...fixture.tenant, partnerId: idOf(w.alice) },
    });
    expect(aliceRewards).toBe(1);
  });

  it('a coupon or a click moves them too; the same partner’s signal changes nothing', async () => {
    await purchase('lt-2', { code: w.aliceCode });
    const byCoupon = await purchase('lt-2', { couponCode: w.bobCoupon.toLowerCase() });
    expect(byCoupon.referral!.partner).toEqual({ id: w.bob });
    const click = await fixture.gql(TRACK, { input: { code: w.aliceCode } }, fixture.admin);
    const byClick = await purchase('lt-2', { clickId: click.data!.trackClick.clickId });
    expect(byClick.referral!.partner).toEqual({ id: w.alice });
    const same = await purchase('lt-2', { code: w.aliceCode });
    expect(same.referral!.partner).toEqual({ id: w.alice });
  });

  it('a coupon wins over another partner’s click in the same conversion', async () => {
    const click = await fixture.gql(TRACK, { input: { code: w.aliceCode } }, fixture.admin);
    const c = await purchase('lt-3', { clickId: click.data!.trackClick.clickId, couponCode: w.bobCoupon });
    expect(c.partner).toEqual({ id: w.bob });
  });
});

describe('two partners racing for one new person (real concurrent requests)', () => {
  for (const model of ['FIRST_TOUCH', 'LAST_TOUCH'] as const) {
    it(`${model}: one referral; every conversion rewarded once, to the partner the model says`, async () => {
      const w = await world(model);
      for (let round = 0; round < 3; round++) {
        const person = `race-${model}-${round}`;
        const [a, b] = await Promise.all([
          purchase(person, { code: w.aliceCode }),
          purchase(person, { code: w.bobCode }),
        ]);
        const referrals = await fixture.server.testDb.db.prisma.referral.findMany({
          where: { ...fixture.tenant, externalId: person },
        });
        expect(referrals).toHaveLength(1);
        expect(a.referral!.id).toBe(gid('Referral', referrals[0]!.id));
        expect(b.referral!.id).toBe(gid('Referral', referrals[0]!.id));
        for (const c of [a, b]) {
          expect(c.status).toBe('ACCEPTED');
          expect(c.rewards.map((r) => r.partner.id)).toEqual([c.partner!.id]);
        }
        const final = gid('Partner', referrals[0]!.partnerId);
        if (model === 'FIRST_TOUCH') {
          // Both conversions belong to whoever bound the person first.
          expect(a.partner).toEqual({ id: final });
          expect(b.partner).toEqual({ id: final });
        } else {
          // Each conversion is its own partner's; the person ends with one of them.
          expect(a.partner).toEqual({ id: w.alice });
          expect(b.partner).toEqual({ id: w.bob });
          expect([w.alice, w.bob]).toContain(final);
        }
      }
    });
  }
});

describe('decideAttribution under LAST_TOUCH (pure)', () => {
  const program = {
    id: 'p',
    status: 'ACTIVE' as const,
    attributionWindowDays: 30,
    allowSelfReferral: false,
    holdDays: 0,
    attributionModel: 'LAST_TOUCH' as const,
    fraudRules: DEFAULT_FRAUD_RULES,
  };
  const fraud = { ipMatchesPartner: null, recentConversions: null };
  const partner = (id: string) => ({ id, externalId: id, email: null, status: 'ACTIVE' as const });
  const referral = (status: ReferralFacts['status'] = 'CONVERTED'): ReferralFacts => ({
    id: 'r',
    status,
    email: null,
    createdAt: new Date('2026-01-01'),
    linkId: 'l-alice',
    program,
    partner: partner('alice'),
    enrollment: { id: 'e-alice', status: 'APPROVED' },
    fraud,
  });
  const touch = (clickedAt?: Date): TouchFacts => ({
    source: clickedAt ? 'click' : 'code',
    linkId: 'l-bob',
    couponId: null,
    disabled: false,
    program,
    partner: partner('bob'),
    enrollment: { id: 'e-bob', status: 'APPROVED' },
    click: clickedAt ? { rowId: 'c', clickedAt, discarded: false } : null,
    fraud,
  });
  const referred = { externalId: 'cust', email: null, occurredAt: new Date('2026-03-01') };

  it('rebinds to a passing touch of another partner', () => {
    const d = decideAttribution({
      programId: null,
      signals: [{ source: 'code', touch: touch() }],
      referral: referral(),
      referred,
    });
    expect(d.outcome).toBe('rebind');
  });

  it('keeps the referral for a click outside the window, a rejected referral, or FIRST_TOUCH', () => {
    const old = touch(new Date('2026-01-15'));
    expect(
      decideAttribution({ programId: null, signals: [{ source: 'click', touch: old }], referral: referral(), referred })
        .outcome,
    ).toBe('existing');
    expect(
      decideAttribution({
        programId: null,
        signals: [{ source: 'code', touch: touch() }],
        referral: referral('REJECTED'),
        referred,
      }),
    ).toMatchObject({ outcome: 'existing', discard: 'REFERRAL_REJECTED' });
    const first = { ...referral(), program: { ...program, attributionModel: 'FIRST_TOUCH' as const } };
    expect(
      decideAttribution({ programId: null, signals: [{ source: 'code', touch: touch() }], referral: first, referred })
        .outcome,
    ).toBe('existing');
  });
});

function idOf(globalId: string): string {
  return Buffer.from(globalId, 'base64').toString().split(':')[1]!;
}
