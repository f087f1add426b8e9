import { expect } from 'vitest';
import type { PrismaClient, Reward } from '../../src/generated/prisma/client.js';
import type { ConversionType, RewardRecipient, RewardStatus } from '../../src/generated/prisma/enums.js';
import { parseDecimal } from '../../src/lib/money.js';
import { applyStatusChange } from '../../src/modules/reward/lifecycle.js';
import { factories, gid, uuidv7, type Tenant } from './factories.js';
import type { TestServer } from './server.js';

// Fixtures for the money tests (lifecycle, refunds, ledger, payouts), written with Prisma: a
// program, a partner and rules, and rewards moved to a status through the real lifecycle so their
// ledger entries are exactly what the API would have written.

export interface World {
  tenant: Tenant;
  programId: string;
  partnerId: string;
  ruleId: string;
  referredRuleId: string;
  currency: string;
}

export interface RewardOptions {
  status?: RewardStatus;
  amount?: bigint;
  recipient?: RewardRecipient;
  /** The conversion it is for; default: a new PURCHASE of `conversionAmount`. */
  conversionId?: string;
  conversionAmount?: bigint;
  partnerId?: string;
  currency?: string;
  approveAfter?: Date;
  /** Use the REFERRED rule (distinct lineage) so two rewards can share a conversion. */
  ruleId?: string;
  /** Default CASH; CREDIT and DISCOUNT are in-product rewards. */
  kind?: 'CASH' | 'CREDIT' | 'DISCOUNT';
}

export function moneyFixtures(prisma: PrismaClient, tenant: Tenant) {
  const f = factories(prisma, tenant);

  async function world(options: { currency?: string; holdDays?: number } = {}): Promise<World> {
    const currency = options.currency ?? 'USD';
    const program = await f.program({ currency, holdDays: options.holdDays ?? 0 });
    const partner = await f.partner();
    await f.enrollment({ programId: program.id, partnerId: partner.id });
    const rule = await f.rule(program.id, { fixedAmount: 1000n, fixedCurrency: currency });
    const referredRule = await f.rule(program.id, {
      fixedAmount: 500n,
      fixedCurrency: currency,
      recipient: 'REFERRED',
    });
    return {
      tenant,
      programId: program.id,
      partnerId: partner.id,
      ruleId: rule.id,
      referredRuleId: referredRule.id,
      currency,
    };
  }

  async function conversion(
    w: World,
    options: { amount?: bigint | null; type?: ConversionType; currency?: string; partnerId?: string } = {},
  ) {
    const amount = options.amount === undefined ? 10_000n : options.amount;
    const [row] = await f.conversions([
      {
        type: options.type ?? 'PURCHASE',
        amount,
        currency: amount === null ? null : (options.currency ?? w.currency),
        programId: w.programId,
        partnerId: options.partnerId ?? w.partnerId,
      },
    ]);
    return row!;
  }

  /** Move a reward along the lifecycle exactly as the API does (history, ledger). */
  async function move(reward: Reward, to: RewardStatus): Promise<Reward> {
    await prisma.$transaction((tx) =>
      applyStatusChange(tx, tenant, [reward], to, { actor: 'test', reason: 'fixture' }),
    );
    return (await prisma.reward.findUnique({ where: { id: reward.id } }))!;
  }

  async function reward(w: World, options: RewardOptions = {}): Promise<Reward> {
    const recipient = options.recipient ?? 'REFERRER';
    const conversionId =
      options.conversionId ??
      (await conversion(w, { amount: options.conversionAmount ?? 10_000n, partnerId: options.partnerId })).id;
    const ruleId = options.ruleId ?? (recipient === 'REFERRED' ? w.referredRuleId : w.ruleId);
    const id = uuidv7();
    let row = await prisma.reward.create({
      data: {
        id,
        ...tenant,
        programId: w.programId,
        partnerId: options.partnerId ?? w.partnerId,
        conversionId,
        ruleId,
        ruleLineageId: ruleId,
        recipient,
        kind: options.kind ?? 'CASH',
        status: 'CREATED',
        amount: options.amount ?? 1000n,
        currency: options.currency ?? w.currency,
        approveAfter: options.approveAfter ?? new Date(Date.now() - 1000),
      },
    });
    await prisma.rewardStatusChange.create({
      data: { ...tenant, rewardId: id, fromStatus: null, toStatus: 'CREATED', actor: 'test' },
    });
    const path: Record<RewardStatus, RewardStatus[]> = {
      CREATED: [],
      APPROVED: ['APPROVED'],
      PROCESSED: ['APPROVED', 'PROCESSED'],
      CANCELED: ['CANCELED'],
      REJECTED: ['REJECTED'],
    };
    for (const step of path[options.status ?? 'CREATED']) row = await move(row, step);
    return row;
  }

  return { ...f, world, conversion, reward, move };
}

/** The sum of every ledger entry of the partner in the currency: the write side's idea of `available`. */
export async function ledgerSum(
  prisma: PrismaClient,
  tenant: Tenant,
  partnerId: string,
  currency: string,
): Promise<bigint> {
  const { _sum } = await prisma.ledgerEntry.aggregate({
    where: { ...tenant, partnerId, currency },
    _sum: { amount: true },
  });
  return _sum.amount ?? 0n;
}

export interface BalanceMinor {
  currency: string;
  pending: bigint;
  available: bigint;
  paid: bigint;
}

const BALANCES = `query MoneyBalances($id: ID!) {
  partner(id: $id) { balances { currency pending { amount currency } available { amount currency } paid { amount currency } } }
}`;

/** Partner.balances as the API answers them, in minor units. */
export async function balancesOf(server: TestServer, token: string, partnerId: string): Promise<BalanceMinor[]> {
  const res = await server.gql<{
    partner: {
      balances: Array<{
        currency: string;
        pending: { amount: string };
        available: { amount: string };
        paid: { amount: string };
      }>;
    } | null;
  }>(BALANCES, { id: gid('Partner', partnerId) }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.partner!.balances.map((b) => ({
    currency: b.currency,
    pending: parseDecimal(b.pending.amount, b.currency, []),
    available: parseDecimal(b.available.amount, b.currency, []),
    paid: parseDecimal(b.paid.amount, b.currency, []),
  }));
}

export async function balanceOf(
  server: TestServer,
  token: string,
  partnerId: string,
  currency: string,
): Promise<BalanceMinor> {
  return (
    (await balancesOf(server, token, partnerId)).find((b) => b.currency === currency) ?? {
      currency,
      pending: 0n,
      available: 0n,
      paid: 0n,
    }
  );
}

/**
 * The write side (ledger entries) and the read side (Partner.balances) agree on `available` in
 * every currency the partner has money in.
 */
export async function expectLedgerMatchesBalances(
  server: TestServer,
  token: string,
  tenant: Tenant,
  partnerId: string,
): Promise<void> {
  const balances = await balancesOf(server, token, partnerId);
  const currencies = new Set([
    ...balances.map((b) => b.currency),
    ...(
      await server.testDb.db.prisma.ledgerEntry.findMany({
        where: { ...tenant, partnerId },
        select: { currency: true },
        distinct: ['currency'],
      })
    ).map((e) => e.currency),
  ]);
  for (const currency of currencies) {
    const available = balances.find((b) => b.currency === currency)?.available ?? 0n;
    expect({ currency, available: await ledgerSum(server.testDb.db.prisma, tenant, partnerId, currency) }).toEqual({
      currency,
      available,
    });
  }
}

/** A READ_ONLY secret key of the workspace of `adminToken`. */
export async function readOnlyKey(server: TestServer, adminToken: string): Promise<string> {
  const res = await server.gql<{ createApiKey: { secret: string } }>(
    'mutation MoneyReadOnlyKey($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret userErrors { code } } }',
    { input: { name: 'reader', role: 'READ_ONLY' } },
    adminToken,
  );
  return res.data!.createApiKey.secret;
}

/** A PARTNER token for one partner. */
export async function partnerToken(server: TestServer, adminToken: string, partnerId: string): Promise<string> {
  const res = await server.gql<{ createPartnerToken: { token: string } }>(
    'mutation MoneyPartnerToken($input: CreatePartnerTokenInput!) { createPartnerToken(input: $input) { token userErrors { code } } }',
    { input: { partnerId: gid('Partner', partnerId) } },
    adminToken,
  );
  return res.data!.createPartnerToken.token;
}

export { gid };
