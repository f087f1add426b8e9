import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import {
  balanceOf,
  expectLedgerMatchesBalances,
  gid,
  ledgerSum,
  moneyFixtures,
  partnerToken,
  readOnlyKey,
  type World,
} from './helpers/money.js';

const fixture = useTwoWorkspaces({ env: { APPROVAL_JOB_INTERVAL_MS: '0' }, names: ['Ledger A', 'Ledger B'] });

let fx: ReturnType<typeof moneyFixtures>;

beforeAll(async () => {
  fx = moneyFixtures(fixture.server.testDb.db.prisma, fixture.tenant);
});

const CREDIT = graphql(`
  mutation LG_Credit($input: CreditBalanceInput!) {
    creditBalance(input: $input) {
      balance { currency pending { amount currency } available { amount currency } paid { amount currency } }
      userErrors { code message field }
    }
  }
`);

const UPDATE = graphql(`
  mutation LG_Update($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) { rewards { id status } userErrors { code message field } }
  }
`);

const prisma = () => fixture.server.testDb.db.prisma;
let keys = 0;
const newKey = () => `credit-${++keys}-${Math.random().toString(36).slice(2, 8)}`;

async function credit(
  partnerId: string,
  amount: string,
  currency = 'USD',
  key = newKey(),
  note?: string | null,
  token = fixture.admin,
) {
  const res = await fixture.gql(
    CREDIT,
    { input: { partnerId: gid('Partner', partnerId), amount: { amount, currency }, note, idempotencyKey: key } },
    token,
  );
  expect(res.errors).toBeUndefined();
  return res.data!.creditBalance;
}

const entries = (partnerId: string) => prisma().ledgerEntry.findMany({ where: { partnerId }, orderBy: { id: 'asc' } });
const counts = async () => [await prisma().ledgerEntry.count(), await prisma().event.count({ where: fixture.tenant })];

describe('creditBalance', () => {
  let w: World;
  beforeAll(async () => {
    w = await fx.world();
  });

  it('writes one CREDIT entry, answers the balance in that currency and appends balance.credited', async () => {
    const key = newKey();
    const payload = await credit(w.partnerId, '12.5', 'usd', key, '  welcome bonus ');
    expect(payload).toEqual({
      balance: {
        currency: 'USD',
        pending: { amount: '0.00', currency: 'USD' },
        available: { amount: '12.50', currency: 'USD' },
        paid: { amount: '0.00', currency: 'USD' },
      },
      userErrors: [],
    });
    expect(await entries(w.partnerId)).toEqual([
      expect.objectContaining({
        type: 'CREDIT',
        amount: 1250n,
        currency: 'USD',
        idempotencyKey: key,
        note: 'welcome bonus',
        rewardId: null,
        payoutId: null,
      }),
    ]);
    const event = await prisma().event.findFirst({
      where: { ...fixture.tenant, type: 'balance.credited' },
      orderBy: { sequence: 'desc' },
    });
    expect(event).toMatchObject({ partnerId: w.partnerId, programId: null });
    const [entry] = await entries(w.partnerId);
    expect(event!.payload).toEqual({
      entryId: gid('LedgerEntry', entry!.id),
      partnerId: gid('Partner', w.partnerId),
      amount: { amount: '12.50', currency: 'USD' },
      note: 'welcome bonus',
      idempotencyKey: key,
    });
  });

  it('debits with a negative amount, down below zero', async () => {
    const world = await fx.world();
    await credit(world.partnerId, '5.00');
    const payload = await credit(world.partnerId, '-8.25');
    expect(payload.balance!.available).toEqual({ amount: '-3.25', currency: 'USD' });
    expect((await entries(world.partnerId)).map((e) => e.amount)).toEqual([500n, -825n]);
  });

  it('keeps each currency apart, with its own minor digits', async () => {
    const world = await fx.world();
    expect((await credit(world.partnerId, '1500', 'JPY')).balance!.available).toEqual({
      amount: '1500',
      currency: 'JPY',
    });
    expect((await credit(world.partnerId, '1.234', 'KWD')).balance!.available).toEqual({
      amount: '1.234',
      currency: 'KWD',
    });
    expect((await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).available).toBe(0n);
    expect((await balanceOf(fixture.server, fixture.admin, world.partnerId, 'JPY')).available).toBe(1500n);
  });

  it('adds to the rewards’ money in the same balance', async () => {
    const world = await fx.world();
    await fx.reward(world, { status: 'APPROVED', amount: 1000n });
    await fx.reward(world, { status: 'CREATED', amount: 300n });
    await fx.reward(world, { status: 'PROCESSED', amount: 700n });
    const payload = await credit(world.partnerId, '2.00');
    expect(payload.balance).toMatchObject({
      pending: { amount: '3.00' },
      available: { amount: '12.00' },
      paid: { amount: '7.00' },
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, world.partnerId);
  });

  describe('idempotency', () => {
    it('the same key with the same partner and amount writes nothing more and answers the balance', async () => {
      const world = await fx.world();
      const key = newKey();
      const first = await credit(world.partnerId, '3.00', 'USD', key, 'a');
      const before = await counts();
      expect(await credit(world.partnerId, '3.00', 'USD', key, 'a different note')).toEqual(first);
      expect(await credit(world.partnerId, '3', 'usd', key)).toEqual(first);
      expect(await counts()).toEqual(before);
      expect(await entries(world.partnerId)).toHaveLength(1);
    });

    it('the key with a different amount, currency or partner is DUPLICATE and writes nothing', async () => {
      const world = await fx.world();
      const second = await fx.partner();
      const key = newKey();
      await credit(world.partnerId, '3.00', 'USD', key);
      const before = await counts();
      for (const [partnerId, amount, currency] of [
        [world.partnerId, '3.01', 'USD'],
        [world.partnerId, '-3.00', 'USD'],
        [world.partnerId, '3.00', 'EUR'],
        [second.id, '3.00', 'USD'],
      ] as const) {
        const payload = await credit(partnerId, amount, currency, key);
        expect(payload.balance).toBeNull();
        expect(payload.userErrors).toEqual([
          expect.objectContaining({ code: 'DUPLICATE', field: ['input', 'idempotencyKey'] }),
        ]);
        expect(payload.userErrors[0]!.message).toContain('3.00 USD');
      }
      expect(await counts()).toEqual(before);
    });

    it('keys are per workspace and mode', async () => {
      const key = newKey();
      const world = await fx.world();
      const live = moneyFixtures(prisma(), { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
      const liveWorld = await live.world();
      const foreign = moneyFixtures(prisma(), fixture.otherTenant);
      const foreignWorld = await foreign.world();
      expect((await credit(world.partnerId, '1.00', 'USD', key)).userErrors).toEqual([]);
      expect((await credit(liveWorld.partnerId, '2.00', 'USD', key, null, fixture.liveAdmin)).userErrors).toEqual([]);
      expect((await credit(foreignWorld.partnerId, '3.00', 'USD', key, null, fixture.otherAdmin)).userErrors).toEqual(
        [],
      );
      expect(await prisma().ledgerEntry.count({ where: { idempotencyKey: key } })).toBe(3);
    });
  });

  describe('validation', () => {
    it.each([
      ['zero', { amount: '0.00', currency: 'USD' }, ['input', 'amount', 'amount']],
      ['a too large amount', { amount: '100000000000000000', currency: 'USD' }, ['input', 'amount', 'amount']],
      ['too many decimals', { amount: '1.001', currency: 'USD' }, ['input', 'amount', 'amount']],
      ['decimals in JPY', { amount: '1.5', currency: 'JPY' }, ['input', 'amount', 'amount']],
      ['an unknown currency', { amount: '1.00', currency: 'ZZZ' }, ['input', 'amount', 'currency']],
    ])('refuses %s with VALIDATION on its field', async (_name, amount, field) => {
      const before = await counts();
      const res = await fixture.gql(
        CREDIT,
        { input: { partnerId: gid('Partner', (await fx.partner()).id), amount, idempotencyKey: newKey() } },
        fixture.admin,
      );
      expect(res.data!.creditBalance).toEqual({
        balance: null,
        userErrors: [expect.objectContaining({ code: 'VALIDATION', field })],
      });
      expect(await counts()).toEqual(before);
    });

    it('refuses a blank or over-long key and an over-long note, all at once', async () => {
      const partner = await fx.partner();
      const res = await fixture.gql(
        CREDIT,
        {
          input: {
            partnerId: gid('Partner', partner.id),
            amount: { amount: '1.00', currency: 'USD' },
            idempotencyKey: ' ',
            note: 'n'.repeat(501),
          },
        },
        fixture.admin,
      );
      expect(res.data!.creditBalance.userErrors.map((e) => [e.code, e.field])).toEqual([
        ['VALIDATION', ['input', 'idempotencyKey']],
        ['VALIDATION', ['input', 'note']],
      ]);
      const long = await credit(partner.id, '1.00', 'USD', 'k'.repeat(256));
      expect(long.userErrors).toEqual([
        expect.objectContaining({ code: 'VALIDATION', field: ['input', 'idempotencyKey'] }),
      ]);
      expect(await entries(partner.id)).toEqual([]);
    });
  });

  describe('tenancy and roles', () => {
    it('answers NOT_FOUND for another workspace’s or mode’s partner, a malformed id or another type’s id, and writes nothing', async () => {
      const foreign = await moneyFixtures(prisma(), fixture.otherTenant).partner();
      const live = await moneyFixtures(prisma(), { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' }).partner();
      const before = await counts();
      for (const id of [
        gid('Partner', foreign.id),
        gid('Partner', live.id),
        'garbage',
        gid('Reward', foreign.id),
        gid('Partner', 'x'),
      ]) {
        const res = await fixture.gql(
          CREDIT,
          { input: { partnerId: id, amount: { amount: '1.00', currency: 'USD' }, idempotencyKey: newKey() } },
          fixture.admin,
        );
        expect(res.data!.creditBalance).toEqual({
          balance: null,
          userErrors: [expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'partnerId'] })],
        });
      }
      expect(await counts()).toEqual(before);
    });

    it('refuses READ_ONLY and PARTNER credentials with FORBIDDEN_FOR_ROLE', async () => {
      const partner = await fx.partner();
      for (const token of [
        await readOnlyKey(fixture.server, fixture.admin),
        await partnerToken(fixture.server, fixture.admin, partner.id),
      ]) {
        const res = await fixture.gql(
          CREDIT,
          {
            input: {
              partnerId: gid('Partner', partner.id),
              amount: { amount: '1.00', currency: 'USD' },
              idempotencyKey: newKey(),
            },
          },
          token,
        );
        expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
      }
      expect(await entries(partner.id)).toEqual([]);
    });
  });
});

describe('the ledger and Partner.balances agree', () => {
  it('through approvals, reversals, processing, clawbacks and credits, in several currencies', async () => {
    const world = await fx.world();
    const eur = await fx.world({ currency: 'EUR' });
    const rewards = await Promise.all([1, 2, 3, 4, 5].map((i) => fx.reward(world, { amount: BigInt(i * 100) })));
    const eurReward = await fx.reward(eur, { partnerId: world.partnerId, amount: 999n });
    const ids = (list: Array<{ id: string }>) => list.map((r) => gid('Reward', r.id));
    const step = async (list: Array<{ id: string }>, status: 'APPROVED' | 'PROCESSED' | 'CANCELED' | 'REJECTED') => {
      const res = await fixture.gql(UPDATE, { input: { ids: ids(list), status } }, fixture.admin);
      expect(res.data!.updateRewardStatus.userErrors).toEqual([]);
      await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, world.partnerId);
    };
    await step([...rewards, eurReward], 'APPROVED');
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: 1500n,
    });
    await step([rewards[0]!], 'CANCELED');
    await step([rewards[1]!], 'REJECTED');
    await step([rewards[2]!, eurReward], 'PROCESSED');
    await credit(world.partnerId, '-20.00');
    await credit(world.partnerId, '1.00', 'EUR');
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, world.partnerId);
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).toEqual({
      currency: 'USD',
      pending: 0n,
      available: 900n - 2000n,
      paid: 300n,
    });
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'EUR')).toEqual({
      currency: 'EUR',
      pending: 0n,
      available: 100n,
      paid: 999n,
    });
    expect(await ledgerSum(prisma(), fixture.tenant, world.partnerId, 'USD')).toBe(-1100n);
  });
});
