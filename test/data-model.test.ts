import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrismaClient } from '../src/generated/prisma/client.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

// The database itself enforces the invariants it can; these tests go around the application.
let testDb: TestDatabase;
let prisma: PrismaClient;
beforeAll(async () => {
  testDb = await createTestDatabase();
  prisma = testDb.db.prisma;
});
afterAll(async () => {
  await testDb?.destroy();
});

async function tenant(mode: 'TEST' | 'LIVE' = 'TEST') {
  const workspace = await prisma.workspace.create({ data: { name: 'W' } });
  const program = await prisma.program.create({
    data: { workspaceId: workspace.id, mode, name: 'P', type: 'REFERRAL', currency: 'USD' },
  });
  const partner = await prisma.partner.create({
    data: { workspaceId: workspace.id, mode, externalId: `ext-${crypto.randomUUID()}` },
  });
  const enrollment = await prisma.enrollment.create({
    data: { workspaceId: workspace.id, mode, programId: program.id, partnerId: partner.id, status: 'APPROVED' },
  });
  return { workspaceId: workspace.id, mode, program, partner, enrollment };
}

/** The SQLSTATE of a failed raw statement. */
async function sqlState(sql: string, params: unknown[] = []): Promise<string | undefined> {
  try {
    await testDb.db.query(sql, params);
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('tenancy in the schema', () => {
  it('keeps partner externalId unique per workspace and mode, and only there', async () => {
    const t = await tenant();
    await prisma.partner.create({ data: { workspaceId: t.workspaceId, mode: 'TEST', externalId: 'u-1' } });
    await expect(
      prisma.partner.create({ data: { workspaceId: t.workspaceId, mode: 'TEST', externalId: 'u-1' } }),
    ).rejects.toMatchObject({ code: 'P2002' });
    await expect(
      prisma.partner.create({ data: { workspaceId: t.workspaceId, mode: 'LIVE', externalId: 'u-1' } }),
    ).resolves.toBeTruthy();
    const other = await tenant();
    await expect(
      prisma.partner.create({ data: { workspaceId: other.workspaceId, mode: 'TEST', externalId: 'u-1' } }),
    ).resolves.toBeTruthy();
  });

  it('refuses a row that points into another workspace (composite foreign keys)', async () => {
    const a = await tenant();
    const b = await tenant();
    await expect(
      prisma.enrollment.create({
        data: { workspaceId: b.workspaceId, mode: 'TEST', programId: a.program.id, partnerId: b.partner.id },
      }),
    ).rejects.toMatchObject({ code: 'P2003' });
  });

  it('refuses a row that points into the other mode of the same workspace', async () => {
    const t = await tenant('TEST');
    const liveProgram = await prisma.program.create({
      data: { workspaceId: t.workspaceId, mode: 'LIVE', name: 'L', type: 'AFFILIATE', currency: 'EUR' },
    });
    await expect(
      prisma.enrollment.create({
        data: { workspaceId: t.workspaceId, mode: 'TEST', programId: liveProgram.id, partnerId: t.partner.id },
      }),
    ).rejects.toMatchObject({ code: 'P2003' });
  });
});

describe('uniqueness', () => {
  it('keeps link codes unique ignoring case', async () => {
    const t = await tenant();
    const link = (code: string) =>
      prisma.referralLink.create({
        data: {
          workspaceId: t.workspaceId,
          mode: 'TEST',
          enrollmentId: t.enrollment.id,
          programId: t.program.id,
          partnerId: t.partner.id,
          code,
          codeNormalized: code.toLowerCase(),
        },
      });
    await link('Summer-Sale');
    await expect(link('SUMMER-sale')).rejects.toMatchObject({ code: 'P2002' });
    // The normalized column must match the code, so the check cannot be dodged.
    expect(await sqlState(`update "ReferralLink" set "codeNormalized" = 'x-other' where code = 'Summer-Sale'`)).toBe(
      '23514',
    );
  });

  it('records one conversion per idempotency key in a workspace and mode', async () => {
    const t = await tenant();
    const conversion = () =>
      prisma.conversion.create({
        data: {
          workspaceId: t.workspaceId,
          mode: 'TEST',
          type: 'SIGNUP',
          status: 'ACCEPTED',
          idempotencyKey: 'evt-1',
          occurredAt: new Date(),
        },
      });
    await conversion();
    await expect(conversion()).rejects.toMatchObject({ code: 'P2002' });
  });

  it('allows one reward per (conversion, rule, recipient), across rule versions', async () => {
    const t = await tenant();
    const lineageId = crypto.randomUUID();
    const v1 = await prisma.rewardRule.create({
      data: {
        id: lineageId,
        lineageId,
        workspaceId: t.workspaceId,
        mode: 'TEST',
        programId: t.program.id,
        trigger: 'SIGNUP',
        kind: 'CASH',
        amountType: 'FIXED',
        fixedAmount: 500n,
        fixedCurrency: 'USD',
      },
    });
    const v2 = await prisma.rewardRule.create({
      data: {
        lineageId,
        version: 2,
        workspaceId: t.workspaceId,
        mode: 'TEST',
        programId: t.program.id,
        trigger: 'SIGNUP',
        kind: 'CASH',
        amountType: 'FIXED',
        fixedAmount: 700n,
        fixedCurrency: 'USD',
      },
    });
    const conversion = await prisma.conversion.create({
      data: {
        workspaceId: t.workspaceId,
        mode: 'TEST',
        type: 'SIGNUP',
        status: 'ACCEPTED',
        idempotencyKey: 'k',
        occurredAt: new Date(),
        programId: t.program.id,
        partnerId: t.partner.id,
      },
    });
    const reward = (ruleId: string, recipient: 'REFERRER' | 'REFERRED') =>
      prisma.reward.create({
        data: {
          workspaceId: t.workspaceId,
          mode: 'TEST',
          programId: t.program.id,
          partnerId: t.partner.id,
          conversionId: conversion.id,
          ruleId,
          ruleLineageId: lineageId,
          recipient,
          kind: 'CASH',
          amount: 500n,
          currency: 'USD',
          approveAfter: new Date(),
        },
      });
    await reward(v1.id, 'REFERRER');
    await expect(reward(v2.id, 'REFERRER')).rejects.toMatchObject({ code: 'P2002' });
    await expect(reward(v1.id, 'REFERRED')).resolves.toBeTruthy();
  });
});

describe('check constraints', () => {
  it('refuses bad money and limits', async () => {
    const t = await tenant();
    const ws = t.workspaceId;
    expect(await sqlState(`update "Program" set currency = 'usd' where id = $1`, [t.program.id])).toBe('23514');
    expect(await sqlState(`update "Program" set "holdDays" = -1 where id = $1`, [t.program.id])).toBe('23514');
    expect(
      await sqlState(
        `insert into "Payout"(id, "workspaceId", mode, "partnerId", amount, currency, "updatedAt") values (gen_random_uuid(), $1, 'TEST', $2, 0, 'USD', now())`,
        [ws, t.partner.id],
      ),
    ).toBe('23514');
    expect(
      await sqlState(
        `insert into "RewardRule"(id, "workspaceId", mode, "programId", "lineageId", trigger, kind, "amountType", "percentageBasisPoints")
         values (gen_random_uuid(), $1, 'TEST', $2, gen_random_uuid(), 'PURCHASE', 'CASH', 'PERCENTAGE', 10001)`,
        [ws, t.program.id],
      ),
    ).toBe('23514');
    expect(
      await sqlState(
        `insert into "RewardRule"(id, "workspaceId", mode, "programId", "lineageId", trigger, kind, "amountType")
         values (gen_random_uuid(), $1, 'TEST', $2, gen_random_uuid(), 'PURCHASE', 'CASH', 'FIXED')`,
        [ws, t.program.id],
      ),
    ).toBe('23514');
    expect(
      await sqlState(
        `insert into "Conversion"(id, "workspaceId", mode, type, status, "idempotencyKey", "occurredAt", amount, currency)
         values (gen_random_uuid(), $1, 'TEST', 'PURCHASE', 'ACCEPTED', 'neg', now(), -1, 'USD')`,
        [ws],
      ),
    ).toBe('23514');
    expect(
      await sqlState(
        `insert into "Conversion"(id, "workspaceId", mode, type, status, "idempotencyKey", "occurredAt")
         values (gen_random_uuid(), $1, 'TEST', 'SIGNUP', 'DISCARDED', 'no-reason', now())`,
        [ws],
      ),
    ).toBe('23514');
  });
});
