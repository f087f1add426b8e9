// Coupons (issue 16, item 4): createCoupon / disableCoupon, Partner.coupons, Query.coupon(code),
// and recordConversion(couponCode) attributing like a code — before a click or a code of another
// partner. Scoped to the caller's workspace, mode and (PARTNER) partner.
import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken } from './helpers/money.js';

const fixture = useTwoWorkspaces({ names: ['Coupons A', 'Coupons B'] });

const CREATE = graphql(`
  mutation CP_Create($input: CreateCouponInput!) {
    createCoupon(input: $input) { coupon { id code disabled partner { id } program { id } } userErrors { code field message } }
  }
`);
const DISABLE = graphql(`
  mutation CP_Disable($input: DisableCouponInput!) {
    disableCoupon(input: $input) { coupon { id disabled } userErrors { code field message } }
  }
`);
const FIND = graphql(`
  query CP_Find($code: String!) { coupon(code: $code) { id code partner { id } } }
`);
const PARTNER_COUPONS = graphql(`
  query CP_PartnerCoupons($id: ID!) { partner(id: $id) { coupons { code disabled } } }
`);
const RECORD = graphql(`
  mutation CP_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { status discardReason partner { id } referral { id partner { id } } rewards { id } }
      userErrors { code field message }
    }
  }
`);

const ids = { program: '', alice: '', bob: '', carol: '', aliceRow: '', bobRow: '', aliceLink: '', bobLink: '' };

beforeAll(async () => {
  const f = factories(fixture.server.testDb.db.prisma, fixture.tenant);
  const program = await f.program();
  await f.rule(program.id, { fixedAmount: 1000n });
  ids.program = gid('Program', program.id);
  const alice = await f.partner({ externalId: 'alice' });
  const bob = await f.partner({ externalId: 'bob' });
  const carol = await f.partner({ externalId: 'carol' });
  ids.aliceRow = alice.id;
  ids.bobRow = bob.id;
  ids.alice = gid('Partner', alice.id);
  ids.bob = gid('Partner', bob.id);
  ids.carol = gid('Partner', carol.id);
  ids.aliceLink = (await f.link(await f.enrollment({ programId: program.id, partnerId: alice.id }))).code;
  ids.bobLink = (await f.link(await f.enrollment({ programId: program.id, partnerId: bob.id }))).code;
  await f.enrollment({ programId: program.id, partnerId: carol.id, status: 'PENDING' });
});

const create = (input: Record<string, unknown>, token = fixture.admin) =>
  fixture.gql(CREATE, { input: { programId: ids.program, ...input } } as never, token);

let n = 0;
const record = (input: Record<string, unknown>) =>
  fixture.gql(
    RECORD,
    {
      input: {
        type: 'PURCHASE',
        idempotencyKey: `cp-${++n}`,
        referredExternalId: `cp-cust-${n}`,
        amount: { amount: '30.00', currency: 'USD' },
        ...input,
      },
    } as never,
    fixture.admin,
  );

describe('createCoupon', () => {
  it('creates a coupon for an enrolled partner, by either id; codes are unique ignoring case', async () => {
    const before = await fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant });
    const res = await create({ partnerId: ids.alice, code: 'ALICE10' });
    expect(res.data!.createCoupon.userErrors).toEqual([]);
    expect(res.data!.createCoupon.coupon).toMatchObject({
      code: 'ALICE10',
      disabled: false,
      partner: { id: ids.alice },
      program: { id: ids.program },
    });
    expect(await fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant })).toBe(before + 1);
    const bob = await create({ partnerExternalId: 'bob', code: 'bob-summer' });
    expect(bob.data!.createCoupon.userErrors).toEqual([]);
    const taken = await create({ partnerId: ids.bob, code: 'alice10' });
    expect(taken.data!.createCoupon.userErrors).toEqual([
      expect.objectContaining({ code: 'DUPLICATE', field: ['input', 'code'] }),
    ]);
  });

  it('refuses bad codes, unenrolled or pending partners, and changes nothing', async () => {
    const before = await fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant });
    const bad = await create({ partnerId: ids.alice, code: 'no spaces!' });
    expect(bad.data!.createCoupon.userErrors[0]).toMatchObject({ code: 'VALIDATION', field: ['input', 'code'] });
    const pending = await create({ partnerId: ids.carol, code: 'CAROL1' });
    expect(pending.data!.createCoupon.userErrors[0]).toMatchObject({
      code: 'INVALID_TRANSITION',
      field: ['input', 'programId'],
    });
    const both = await create({ partnerId: ids.alice, partnerExternalId: 'alice', code: 'BOTH1' });
    expect(both.data!.createCoupon.userErrors[0]).toMatchObject({ code: 'VALIDATION', field: ['input'] });
    expect(await fixture.server.testDb.db.prisma.event.count({ where: fixture.tenant })).toBe(before);
  });

  it('coupon(code) and Partner.coupons stay inside the workspace, mode and partner', async () => {
    expect((await fixture.gql(FIND, { code: 'alice10' }, fixture.admin)).data!.coupon).toMatchObject({
      code: 'ALICE10',
      partner: { id: ids.alice },
    });
    for (const token of [fixture.otherAdmin, fixture.liveAdmin]) {
      expect((await fixture.gql(FIND, { code: 'ALICE10' }, token)).data!.coupon).toBeNull();
      const res = await create({ partnerId: ids.alice, code: 'X-OTHER' }, token);
      expect(res.data!.createCoupon.userErrors[0]!.code).toBe('NOT_FOUND');
    }
    const bobs = await partnerToken(fixture.server, fixture.admin, ids.bobRow);
    expect((await fixture.gql(FIND, { code: 'ALICE10' }, bobs)).data!.coupon).toBeNull();
    expect((await fixture.gql(FIND, { code: 'BOB-SUMMER' }, bobs)).data!.coupon).not.toBeNull();
    expect((await fixture.gql(PARTNER_COUPONS, { id: ids.alice }, fixture.admin)).data!.partner!.coupons).toEqual([
      { code: 'ALICE10', disabled: false },
    ]);
    const refused = await create({ partnerId: ids.bob, code: 'MINE1' }, bobs);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});

describe('recordConversion(couponCode)', () => {
  it('attributes to the coupon’s partner, ignoring case', async () => {
    const res = await record({ couponCode: 'alice10' });
    expect(res.data!.recordConversion.userErrors).toEqual([]);
    const c = res.data!.recordConversion.conversion!;
    expect(c).toMatchObject({
      status: 'ACCEPTED',
      partner: { id: ids.alice },
      referral: { partner: { id: ids.alice } },
    });
    expect(c.rewards).toHaveLength(1);
  });

  it('a coupon wins over a code of another partner', async () => {
    const res = await record({ couponCode: 'ALICE10', code: ids.bobLink });
    expect(res.data!.recordConversion.conversion!.partner).toEqual({ id: ids.alice });
  });

  it('an unknown coupon with a valid code falls back to the code; alone it is UNKNOWN_COUPON', async () => {
    const fallback = await record({ couponCode: 'NOPE99', code: ids.bobLink });
    expect(fallback.data!.recordConversion.conversion!.partner).toEqual({ id: ids.bob });
    const alone = await record({ couponCode: 'NOPE99' });
    expect(alone.data!.recordConversion.conversion).toMatchObject({
      status: 'DISCARDED',
      discardReason: 'UNKNOWN_COUPON',
    });
  });

  it('another workspace’s coupon code is unknown here', async () => {
    const of = factories(fixture.server.testDb.db.prisma, fixture.otherTenant);
    const program = await of.program();
    const partner = await of.partner();
    const enrollment = await of.enrollment({ programId: program.id, partnerId: partner.id });
    await fixture.server.testDb.db.prisma.coupon.create({
      data: {
        ...fixture.otherTenant,
        programId: program.id,
        partnerId: partner.id,
        enrollmentId: enrollment.id,
        code: 'FOREIGN1',
        codeNormalized: 'foreign1',
      },
    });
    const res = await record({ couponCode: 'FOREIGN1' });
    expect(res.data!.recordConversion.conversion).toMatchObject({
      status: 'DISCARDED',
      discardReason: 'UNKNOWN_COUPON',
    });
  });

  it('a disabled coupon discards with COUPON_DISABLED', async () => {
    const coupon = (await create({ partnerId: ids.bob, code: 'BOBOLD' })).data!.createCoupon.coupon!;
    const disabled = await fixture.gql(DISABLE, { input: { id: coupon.id } }, fixture.admin);
    expect(disabled.data!.disableCoupon.coupon!.disabled).toBe(true);
    const res = await record({ couponCode: 'bobold' });
    expect(res.data!.recordConversion.conversion).toMatchObject({
      status: 'DISCARDED',
      discardReason: 'COUPON_DISABLED',
    });
  });
});
