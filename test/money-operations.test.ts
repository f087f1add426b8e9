// Issue 13, money operations: payouts that can be listed, canceled, failed and batched; the
// ledger, statements and balances at a past instant; in-product rewards kept out of cash payouts.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  balanceOf,
  expectLedgerMatchesBalances,
  gid,
  moneyFixtures,
  partnerToken,
  readOnlyKey,
  type World,
} from './helpers/money.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const fixture = useTwoWorkspaces({ env: { APPROVAL_JOB_INTERVAL_MS: '0' }, names: ['Money ops A', 'Money ops B'] });
let fx: ReturnType<typeof moneyFixtures>;

beforeAll(() => {
  fx = moneyFixtures(fixture.server.testDb.db.prisma, fixture.tenant);
});

const prisma = () => fixture.server.testDb.db.prisma;
type Errors = Array<{ code: string; message: string; field: string[] | null }>;

async function ok<T = Record<string, any>>(
  query: string,
  variables: Record<string, unknown>,
  token = fixture.admin,
): Promise<T> {
  const res = await fixture.server.gql<T>(query, variables, token);
  expect(res.errors).toBeUndefined();
  return res.data!;
}

const PAYOUT_FIELDS = 'id status method failureReason releasedAt amount { amount currency } rewards { id status }';
const CREATE = `mutation($input: CreatePayoutInput!) { createPayout(input: $input) { payout { ${PAYOUT_FIELDS} } userErrors { code message field } } }`;
const CANCEL = `mutation($input: CancelPayoutInput!) { cancelPayout(input: $input) { payout { ${PAYOUT_FIELDS} } userErrors { code message field } } }`;
const FAIL = `mutation($input: MarkPayoutFailedInput!) { markPayoutFailed(input: $input) { payout { ${PAYOUT_FIELDS} } userErrors { code message field } } }`;
const PAID = `mutation($input: MarkPayoutPaidInput!) { markPayoutPaid(input: $input) { payout { ${PAYOUT_FIELDS} } userErrors { code message field } } }`;
const BATCH = `mutation($input: CreatePayoutsInput!) { createPayouts(input: $input) {
  payouts { id partner { id } amount { amount currency } method } skipped skips { partner { id } reason available { amount } }
  userErrors { code message field } } }`;

async function createPayout(partnerId: string, currency = 'USD', token = fixture.admin) {
  const data = await ok<{ createPayout: { payout: any; userErrors: Errors } }>(
    CREATE,
    { input: { partnerId: gid('Partner', partnerId), currency, method: 'bank_transfer' } },
    token,
  );
  return data.createPayout;
}

async function eventsSince(sequence: bigint) {
  return prisma().event.findMany({
    where: { ...fixture.tenant, sequence: { gt: sequence } },
    orderBy: { sequence: 'asc' },
  });
}
async function lastSequence(): Promise<bigint> {
  const last = await prisma().event.findFirst({ where: fixture.tenant, orderBy: { sequence: 'desc' } });
  return last?.sequence ?? 0n;
}

describe('payouts: the whole available CASH balance', () => {
  it('nets credits, clawbacks and debits; holds it until paid; never includes in-product rewards', async () => {
    const w = await fx.world();
    await fx.reward(w, { status: 'APPROVED', amount: 1000n });
    const inProduct = await fx.reward(w, { status: 'APPROVED', amount: 400n, kind: 'CREDIT' });
    await ok(`mutation($input: CreditBalanceInput!) { creditBalance(input: $input) { userErrors { code } } }`, {
      input: {
        partnerId: gid('Partner', w.partnerId),
        amount: { amount: '2.50', currency: 'USD' },
        idempotencyKey: `k-${w.partnerId}`,
      },
    });
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      available: 1250n,
      paid: 0n,
    });

    const { payout, userErrors } = await createPayout(w.partnerId);
    expect(userErrors).toEqual([]);
    expect(payout).toMatchObject({
      status: 'PENDING',
      method: 'bank_transfer',
      amount: { amount: '12.50', currency: 'USD' },
    });
    expect(payout.rewards).toHaveLength(1);
    expect((await prisma().reward.findUniqueOrThrow({ where: { id: inProduct.id } })).payoutId).toBeNull();
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      available: 0n,
      paid: 0n,
    });

    const credits = await ok<{ partner: { creditBalances: any[] } }>(
      `query($id: ID!) { partner(id: $id) { creditBalances { currency available { amount } } } }`,
      { id: gid('Partner', w.partnerId) },
    );
    expect(credits.partner.creditBalances).toEqual([{ currency: 'USD', available: { amount: '4.00' } }]);

    const again = await createPayout(w.partnerId);
    expect(again.userErrors.map((e) => e.code)).toEqual(['NOTHING_DUE']);

    const paid = await ok<{ markPayoutPaid: { payout: any } }>(PAID, { input: { payoutId: payout.id } });
    expect(paid.markPayoutPaid.payout.status).toBe('PAID');
    expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
      available: 0n,
      paid: 1250n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
  });
});

describe('cancelPayout and markPayoutFailed', () => {
  for (const [name, mutation, to, event] of [
    ['cancelPayout', CANCEL, 'CANCELED', 'payout.canceled'],
    ['markPayoutFailed', FAIL, 'FAILED', 'payout.failed'],
  ] as const) {
    it(`${name}: releases what a PENDING payout held, appends ${event}, and is a harmless retry`, async () => {
      const w = await fx.world();
      const reward = await fx.reward(w, { status: 'APPROVED', amount: 700n });
      const { payout } = await createPayout(w.partnerId);
      const since = await lastSequence();

      const data = await ok<Record<string, { payout: any; userErrors: Errors }>>(mutation, {
        input: { payoutId: payout.id, reason: 'IBAN rejected' },
      });
      expect(data[name]!.userErrors).toEqual([]);
      expect(data[name]!.payout).toMatchObject({ status: to, failureReason: 'IBAN rejected', rewards: [] });
      expect(data[name]!.payout.releasedAt).toEqual(expect.any(String));
      expect((await prisma().reward.findUniqueOrThrow({ where: { id: reward.id } })).payoutId).toBeNull();
      expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD')).toMatchObject({
        available: 700n,
        paid: 0n,
      });
      const events = await eventsSince(since);
      expect(events.map((e) => e.type)).toEqual([event]);
      expect(events[0]!.payload).toMatchObject({
        payoutId: payout.id,
        reason: 'IBAN rejected',
        rewardIds: [gid('Reward', reward.id)],
      });
      const entries = await prisma().ledgerEntry.findMany({
        where: { partnerId: w.partnerId },
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      });
      expect(entries.map((e) => [e.type, e.amount])).toEqual([
        ['REWARD_APPROVED', 700n],
        ['PAYOUT', -700n],
        ['PAYOUT_REVERSED', 700n],
      ]);

      // Again: nothing changes, no event.
      const retry = await ok<Record<string, { payout: any; userErrors: Errors }>>(mutation, {
        input: { payoutId: payout.id, reason: 'IBAN rejected' },
      });
      expect(retry[name]!.userErrors).toEqual([]);
      expect(await eventsSince(since)).toHaveLength(1);

      // The released money is paid by the next payout.
      const next = await createPayout(w.partnerId);
      expect(next.payout).toMatchObject({ amount: { amount: '7.00' }, rewards: [{ id: gid('Reward', reward.id) }] });
      await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
    });
  }

  it('refuses to cancel a PAID payout or mark a CANCELED one paid, naming both statuses; changes nothing', async () => {
    const w = await fx.world();
    await fx.reward(w, { status: 'APPROVED', amount: 500n });
    const { payout } = await createPayout(w.partnerId);
    await ok(PAID, { input: { payoutId: payout.id } });
    const since = await lastSequence();
    const cancel = await ok<{ cancelPayout: { payout: any; userErrors: Errors } }>(CANCEL, {
      input: { payoutId: payout.id },
    });
    expect(cancel.cancelPayout.payout).toBeNull();
    expect(cancel.cancelPayout.userErrors).toEqual([
      expect.objectContaining({
        code: 'INVALID_TRANSITION',
        message: expect.stringMatching(/is PAID and cannot become CANCELED/),
      }),
    ]);

    const w2 = await fx.world();
    await fx.reward(w2, { status: 'APPROVED', amount: 500n });
    const second = await createPayout(w2.partnerId);
    await ok(CANCEL, { input: { payoutId: second.payout.id } });
    const since2 = await lastSequence();
    const paid = await ok<{ markPayoutPaid: { userErrors: Errors } }>(PAID, { input: { payoutId: second.payout.id } });
    expect(paid.markPayoutPaid.userErrors[0]).toMatchObject({
      code: 'INVALID_TRANSITION',
      message: expect.stringMatching(/is CANCELED and cannot become PAID/),
    });
    const failed = await ok<{ markPayoutFailed: { userErrors: Errors } }>(FAIL, {
      input: { payoutId: second.payout.id, reason: 'x' },
    });
    expect(failed.markPayoutFailed.userErrors[0]).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await eventsSince(since2)).toHaveLength(0);
    expect((await eventsSince(since)).map((e) => e.type)).toEqual(['payout.created', 'payout.canceled']);
  });

  it('requires a reason to mark a payout failed', async () => {
    const w = await fx.world();
    await fx.reward(w, { status: 'APPROVED', amount: 500n });
    const { payout } = await createPayout(w.partnerId);
    const data = await ok<{ markPayoutFailed: { userErrors: Errors } }>(FAIL, {
      input: { payoutId: payout.id, reason: '  ' },
    });
    expect(data.markPayoutFailed.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'reason'] }),
    ]);
  });

  it('a cancel racing a mark-paid: exactly one wins, and the money is either paid or available, never both', async () => {
    for (let round = 0; round < 3; round++) {
      const w = await fx.world();
      await fx.reward(w, { status: 'APPROVED', amount: 900n });
      const { payout } = await createPayout(w.partnerId);
      const [cancel, paid] = await Promise.all([
        ok<{ cancelPayout: { userErrors: Errors } }>(CANCEL, { input: { payoutId: payout.id } }),
        ok<{ markPayoutPaid: { userErrors: Errors } }>(PAID, { input: { payoutId: payout.id } }),
      ]);
      const wins = [cancel.cancelPayout.userErrors.length === 0, paid.markPayoutPaid.userErrors.length === 0];
      expect(wins.filter(Boolean)).toHaveLength(1);
      const balance = await balanceOf(fixture.server, fixture.admin, w.partnerId, 'USD');
      expect(balance.available + balance.paid).toBe(900n);
      expect(wins[0] ? balance.available : balance.paid).toBe(900n);
      await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, w.partnerId);
    }
  });
});

describe('createPayouts: batch runs', () => {
  it('pays every due partner once, skips the ones below the minimum, and a second run pays nobody', async () => {
    const worlds: World[] = [];
    for (const amount of [1500n, 300n, 2500n]) {
      const w = await fx.world({ currency: 'GBP' });
      await fx.reward(w, { status: 'APPROVED', amount });
      worlds.push(w);
    }
    const input = { currency: 'GBP', minimumAmount: { amount: '10.00', currency: 'GBP' }, method: 'wise' };
    const first = await ok<{ createPayouts: any }>(BATCH, { input });
    expect(first.createPayouts.userErrors).toEqual([]);
    expect(first.createPayouts.payouts.map((p: any) => p.amount.amount).sort()).toEqual(['15.00', '25.00']);
    expect(first.createPayouts.payouts.every((p: any) => p.method === 'wise')).toBe(true);
    expect(first.createPayouts.skipped).toBe(1);
    expect(first.createPayouts.skips).toEqual([
      { partner: { id: gid('Partner', worlds[1]!.partnerId) }, reason: 'BELOW_MINIMUM', available: { amount: '3.00' } },
    ]);
    const second = await ok<{ createPayouts: any }>(BATCH, { input });
    expect(second.createPayouts.payouts).toEqual([]);
    expect(second.createPayouts.skipped).toBe(1);
  });

  it('two runs at once pay each partner exactly once', async () => {
    const worlds: World[] = [];
    for (let i = 0; i < 6; i++) {
      const w = await fx.world({ currency: 'CHF' });
      await fx.reward(w, { status: 'APPROVED', amount: 1000n + BigInt(i) });
      worlds.push(w);
    }
    const runs = await Promise.all([1, 2].map(() => ok<{ createPayouts: any }>(BATCH, { input: { currency: 'CHF' } })));
    const paid = runs.flatMap((r) => r.createPayouts.payouts.map((p: any) => p.partner.id)).sort();
    expect(paid).toEqual(worlds.map((w) => gid('Partner', w.partnerId)).sort());
    for (const w of worlds) {
      expect(await prisma().payout.count({ where: { partnerId: w.partnerId } })).toBe(1);
      expect(await balanceOf(fixture.server, fixture.admin, w.partnerId, 'CHF')).toMatchObject({ available: 0n });
    }
  });

  it('refuses a minimum in another currency and an unknown currency, and creates nothing', async () => {
    const before = await prisma().payout.count();
    const wrong = await ok<{ createPayouts: any }>(BATCH, {
      input: { currency: 'USD', minimumAmount: { amount: '5', currency: 'EUR' } },
    });
    expect(wrong.createPayouts.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'minimumAmount', 'currency'] }),
    ]);
    const unknown = await ok<{ createPayouts: any }>(BATCH, { input: { currency: 'XYZ' } });
    expect(unknown.createPayouts.userErrors[0]).toMatchObject({ code: 'VALIDATION', field: ['input', 'currency'] });
    expect(await prisma().payout.count()).toBe(before);
  });
});

describe('the ledger, statements and balances at an instant', () => {
  it('a statement’s opening and closing are balancesAt(from) and balancesAt(to), and its entries add up from one to the other', async () => {
    const w = await fx.world({ currency: 'EUR' });
    const t0 = new Date();
    await fx.reward(w, { status: 'APPROVED', amount: 1000n });
    await ok(`mutation($input: CreditBalanceInput!) { creditBalance(input: $input) { userErrors { code } } }`, {
      input: {
        partnerId: gid('Partner', w.partnerId),
        amount: { amount: '-3.00', currency: 'EUR' },
        idempotencyKey: `d-${w.partnerId}`,
      },
    });
    const t1 = new Date();
    const { payout } = await createPayout(w.partnerId, 'EUR');
    await ok(PAID, { input: { payoutId: payout.id } });
    const t2 = new Date();

    const data = await ok<{ partner: any }>(
      `query($id: ID!, $t0: DateTime!, $t1: DateTime!, $t2: DateTime!) { partner(id: $id) {
         at0: balancesAt(at: $t0) { currency available { amount } }
         at1: balancesAt(at: $t1) { currency pending { amount } available { amount } paid { amount } }
         statement(currency: "EUR", from: $t1, to: $t2) {
           opening { available { amount } paid { amount } }
           closing { available { amount } paid { amount } }
           entries(first: 50) { totalCount edges { node { type amount { amount } payout { id } } } }
         }
         ledger(first: 50, currency: "EUR") { totalCount edges { node { type amount { amount } } } }
       } }`,
      { id: gid('Partner', w.partnerId), t0: t0.toISOString(), t1: t1.toISOString(), t2: t2.toISOString() },
    );
    expect(data.partner.at0).toEqual([]);
    expect(data.partner.at1).toEqual([
      { currency: 'EUR', pending: { amount: '0.00' }, available: { amount: '7.00' }, paid: { amount: '0.00' } },
    ]);
    const s = data.partner.statement;
    expect(s.opening).toEqual({ available: { amount: '7.00' }, paid: { amount: '0.00' } });
    expect(s.closing).toEqual({ available: { amount: '0.00' }, paid: { amount: '7.00' } });
    expect(s.entries.edges.map((e: any) => [e.node.type, e.node.amount.amount, e.node.payout?.id])).toEqual([
      ['PAYOUT', '-7.00', payout.id],
    ]);
    expect(data.partner.ledger.edges.map((e: any) => [e.node.type, e.node.amount.amount])).toEqual([
      ['REWARD_APPROVED', '10.00'],
      ['CREDIT', '-3.00'],
      ['PAYOUT', '-7.00'],
    ]);
    const payoutEntries = await ok<{ node: any }>(
      `query($id: ID!) { node(id: $id) { ... on Payout { entries { totalCount edges { node { type amount { amount } } } } } } }`,
      { id: payout.id },
    );
    expect(payoutEntries.node.entries.edges).toEqual([{ node: { type: 'PAYOUT', amount: { amount: '-7.00' } } }]);
  });

  it('refuses a statement whose from is after its to, and an unknown currency', async () => {
    const w = await fx.world();
    const res = await fixture.server.gql(
      `query($id: ID!) { partner(id: $id) { statement(currency: "USD", from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { currency } } }`,
      { id: gid('Partner', w.partnerId) },
      fixture.admin,
    );
    expect(res.errors![0]).toMatchObject({
      extensions: { code: 'VALIDATION' },
      message: expect.stringMatching(/after to/),
    });
    const bad = await fixture.server.gql(
      `query($id: ID!) { partner(id: $id) { statement(currency: "XYZ", from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z") { currency } } }`,
      { id: gid('Partner', w.partnerId) },
      fixture.admin,
    );
    expect(bad.errors![0]).toMatchObject({ extensions: { code: 'VALIDATION' } });
  });
});

describe('isolation', () => {
  it('payouts, ledger entries and statements: other workspace, other mode, PARTNER tokens see their own only', async () => {
    const w = await fx.world();
    await fx.reward(w, { status: 'APPROVED', amount: 100n });
    const mine = await createPayout(w.partnerId);
    const someone = await fx.world();
    await fx.reward(someone, { status: 'APPROVED', amount: 200n });
    const theirs = await createPayout(someone.partnerId);

    const LIST = `query { payouts(first: 100) { totalCount edges { node { id } } } }`;
    const all = await ok<{ payouts: any }>(LIST, {});
    expect(all.payouts.edges.map((e: any) => e.node.id)).toEqual(
      expect.arrayContaining([mine.payout.id, theirs.payout.id]),
    );
    const reader = await ok<{ payouts: any }>(LIST, {}, await readOnlyKey(fixture.server, fixture.admin));
    expect(reader.payouts.totalCount).toBe(all.payouts.totalCount);

    const token = await partnerToken(fixture.server, fixture.admin, w.partnerId);
    const own = await ok<{ payouts: any }>(LIST, {}, token);
    expect(own.payouts.edges.map((e: any) => e.node.id)).toEqual([mine.payout.id]);
    const theirNode = await ok<{ node: unknown }>(
      `query($id: ID!) { node(id: $id) { id } }`,
      { id: theirs.payout.id },
      token,
    );
    expect(theirNode.node).toBeNull();

    for (const key of [fixture.otherAdmin, fixture.liveAdmin]) {
      const list = await ok<{ payouts: any }>(LIST, {}, key);
      expect(list.payouts.totalCount).toBe(0);
      const node = await ok<{ node: unknown }>(`query($id: ID!) { node(id: $id) { id } }`, { id: mine.payout.id }, key);
      expect(node.node).toBeNull();
      const cancel = await ok<{ cancelPayout: { userErrors: Errors } }>(
        CANCEL,
        { input: { payoutId: mine.payout.id } },
        key,
      );
      expect(cancel.cancelPayout.userErrors[0]).toMatchObject({ code: 'NOT_FOUND' });
      const create = await ok<{ createPayout: { userErrors: Errors } }>(
        CREATE,
        { input: { partnerId: gid('Partner', w.partnerId), currency: 'USD' } },
        key,
      );
      expect(create.createPayout.userErrors[0]).toMatchObject({ code: 'NOT_FOUND' });
    }
    const forbidden = await fixture.server.gql(CANCEL, { input: { payoutId: mine.payout.id } }, token);
    expect(JSON.stringify(forbidden)).toMatch(/FORBIDDEN/);
    const still = await ok<{ node: { status: string } }>(
      `query($id: ID!) { node(id: $id) { ... on Payout { status } } }`,
      {
        id: mine.payout.id,
      },
    );
    expect(still.node.status).toBe('PENDING');
  });
});

describe('isolation of ledger entries', () => {
  it('a LedgerEntry node, Partner.ledger and statements: only the workspace and mode, and a PARTNER token its own partner', async () => {
    const w = await fx.world();
    await fx.reward(w, { status: 'APPROVED', amount: 100n });
    const someone = await fx.world();
    const [entry] = await prisma().ledgerEntry.findMany({ where: { partnerId: w.partnerId } });
    const entryId = gid('LedgerEntry', entry!.id);
    const NODE = `query($id: ID!) { node(id: $id) { ... on LedgerEntry { id type amount { amount } } } }`;
    expect((await ok<{ node: unknown }>(NODE, { id: entryId })).node).toMatchObject({
      id: entryId,
      type: 'REWARD_APPROVED',
    });
    expect(
      (
        await ok<{ node: unknown }>(
          NODE,
          { id: entryId },
          await partnerToken(fixture.server, fixture.admin, w.partnerId),
        )
      ).node,
    ).toMatchObject({
      id: entryId,
    });
    for (const key of [
      fixture.otherAdmin,
      fixture.liveAdmin,
      await partnerToken(fixture.server, fixture.admin, someone.partnerId),
    ]) {
      expect((await ok<{ node: unknown }>(NODE, { id: entryId }, key)).node).toBeNull();
      const ledger = await ok<{ partner: unknown }>(
        `query($id: ID!) { partner(id: $id) { ledger { totalCount } statement(currency: "USD", from: "2026-01-01T00:00:00Z", to: "2026-12-31T00:00:00Z") { currency } } }`,
        { id: gid('Partner', w.partnerId) },
        key,
      );
      expect(ledger.partner).toBeNull();
    }
  });
});
