import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../src/lib/uuid.js';
import { graphql } from './gql/index.js';
import type { CreateRewardRuleInput, UpdateRewardRuleInput } from './gql/graphql.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const CREATE_PROGRAM = graphql(`
  mutation CreateProgramForRules($input: CreateProgramInput!) {
    createProgram(input: $input) { program { id } userErrors { code message } }
  }
`);

const UPDATE_PROGRAM = graphql(`
  mutation UpdateProgramForRules($input: UpdateProgramInput!) {
    updateProgram(input: $input) { program { status } userErrors { code message } }
  }
`);

const CREATE = graphql(`
  mutation CreateRewardRuleT($input: CreateRewardRuleInput!) {
    createRewardRule(input: $input) {
      rewardRule {
        id ruleId version current trigger recipient kind amountType
        fixedAmount { amount currency } percentageBasisPoints maxRewardsPerReferral durationDays
        capPerReferral { amount currency } archived archivedAt supersededAt createdAt
        program { id }
      }
      userErrors { code message field }
    }
  }
`);

const UPDATE = graphql(`
  mutation UpdateRewardRuleT($input: UpdateRewardRuleInput!) {
    updateRewardRule(input: $input) {
      rewardRule {
        id ruleId version current amountType fixedAmount { amount currency } percentageBasisPoints
        maxRewardsPerReferral durationDays capPerReferral { amount currency } archived
      }
      userErrors { code message field }
    }
  }
`);

const ARCHIVE = graphql(`
  mutation ArchiveRewardRuleT($input: ArchiveRewardRuleInput!) {
    archiveRewardRule(input: $input) {
      rewardRule { id ruleId version archived archivedAt current }
      userErrors { code message field }
    }
  }
`);

const RULE_NODE = graphql(`
  query RewardRuleNodeT($id: ID!) {
    node(id: $id) {
      id
      ... on RewardRule { ruleId version current archived supersededAt fixedAmount { amount currency } percentageBasisPoints program { id } }
    }
  }
`);

const RULES = graphql(`
  query ProgramRewardRulesT($id: ID!, $includeArchived: Boolean) {
    program(id: $id) {
      rewardRules(includeArchived: $includeArchived) { id ruleId version archived fixedAmount { amount currency } }
    }
  }
`);

const RULES_DEFAULT = graphql(`
  query ProgramRewardRulesDefaultT($id: ID!) {
    program(id: $id) { rewardRules { id version archived } }
  }
`);

const PARTNER_RULES = graphql(`
  query PartnerProgramRulesT($id: ID!) {
    node(id: $id) { ... on Program { rewardRules { id version } } }
  }
`);

const CREATE_API_KEY = graphql(`
  mutation CreateReadOnlyKeyForRules($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { secret userErrors { code } }
  }
`);

const CREATE_PARTNER_TOKEN = graphql(`
  mutation PartnerTokenForRules($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code message } }
  }
`);

const fixture = useTwoWorkspaces({ names: ['Rules', 'Someone else'] });

let readOnly: string;
let usd: string;

beforeAll(async () => {
  readOnly = (await fixture.gql(CREATE_API_KEY, { input: { name: 'reader', role: 'READ_ONLY' } }, fixture.admin)).data!
    .createApiKey.secret!;
  usd = await program();
});

const prisma = () => fixture.server.testDb.db.prisma;
const rowId = (globalId: string) => decodeGlobalID(globalId).id;
const snapshot = (globalId: string) => prisma().rewardRule.findUniqueOrThrow({ where: { id: rowId(globalId) } });
const lineageRows = async (globalId: string) => {
  const row = await snapshot(globalId);
  return prisma().rewardRule.findMany({ where: { lineageId: row.lineageId }, orderBy: { version: 'asc' } });
};

async function program(
  input: { currency?: string; status?: 'DRAFT' | 'ACTIVE' | 'PAUSED' } = {},
  token = fixture.admin,
): Promise<string> {
  const res = await fixture.gql(
    CREATE_PROGRAM,
    { input: { name: 'Program', type: 'REFERRAL', currency: 'USD', ...input } },
    token,
  );
  expect(res.data?.createProgram.userErrors).toEqual([]);
  return res.data!.createProgram.program!.id;
}

async function archiveProgram(id: string) {
  const res = await fixture.gql(UPDATE_PROGRAM, { input: { id, status: 'ARCHIVED' } }, fixture.admin);
  expect(res.data?.updateProgram.userErrors).toEqual([]);
}

const FIXED = {
  trigger: 'PURCHASE',
  kind: 'CASH',
  amountType: 'FIXED',
  fixedAmount: { amount: '25.00', currency: 'USD' },
} as const;
const PERCENTAGE = {
  trigger: 'SUBSCRIPTION',
  kind: 'CASH',
  amountType: 'PERCENTAGE',
  percentageBasisPoints: 2000,
} as const;

async function create(input: Partial<CreateRewardRuleInput> & { programId?: string } = {}, token = fixture.admin) {
  const res = await fixture.gql(
    CREATE,
    { input: { programId: usd, ...FIXED, ...input } as CreateRewardRuleInput },
    token,
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createRewardRule;
}

async function createOk(input: Partial<CreateRewardRuleInput> & { programId?: string } = {}, token = fixture.admin) {
  const payload = await create(input, token);
  expect(payload.userErrors).toEqual([]);
  return payload.rewardRule!;
}

async function update(input: UpdateRewardRuleInput, token = fixture.admin) {
  const res = await fixture.gql(UPDATE, { input }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.updateRewardRule;
}

async function archive(id: string, token = fixture.admin) {
  const res = await fixture.gql(ARCHIVE, { input: { id } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.archiveRewardRule;
}

describe('createRewardRule', () => {
  it('creates version 1 of a FIXED rule, whose id is the rule id', async () => {
    const before = Date.now();
    const rule = await createOk();
    expect(rule).toMatchObject({
      version: 1,
      current: true,
      trigger: 'PURCHASE',
      recipient: 'REFERRER',
      kind: 'CASH',
      amountType: 'FIXED',
      fixedAmount: { amount: '25.00', currency: 'USD' },
      percentageBasisPoints: null,
      maxRewardsPerReferral: null,
      durationDays: null,
      capPerReferral: null,
      archived: false,
      archivedAt: null,
      supersededAt: null,
      program: { id: usd },
    });
    expect(rule.ruleId).toBe(rule.id);
    expect(Date.parse(rule.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    const row = await snapshot(rule.id);
    expect(row).toMatchObject({
      id: row.lineageId,
      version: 1,
      workspaceId: fixture.ws.workspace.id,
      mode: 'TEST',
      fixedAmount: 2500n,
      fixedCurrency: 'USD',
    });
    // A UUIDv7: version nibble 7, RFC 4122 variant.
    expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('creates a PERCENTAGE rule with every limit, for the referred customer', async () => {
    const rule = await createOk({
      ...PERCENTAGE,
      fixedAmount: undefined,
      recipient: 'REFERRED',
      kind: 'DISCOUNT',
      percentageBasisPoints: 10000,
      maxRewardsPerReferral: 1000,
      durationDays: 3650,
      capPerReferral: { amount: '100', currency: 'eur' },
    });
    expect(rule).toMatchObject({
      recipient: 'REFERRED',
      kind: 'DISCOUNT',
      amountType: 'PERCENTAGE',
      fixedAmount: null,
      percentageBasisPoints: 10000,
      maxRewardsPerReferral: 1000,
      durationDays: 3650,
      capPerReferral: { amount: '100.00', currency: 'EUR' },
    });
  });

  it('keeps the currency’s minor digits (JPY 0, KWD 3) and allows a currency other than the program’s', async () => {
    expect((await createOk({ fixedAmount: { amount: '1500', currency: 'jpy' } })).fixedAmount).toEqual({
      amount: '1500',
      currency: 'JPY',
    });
    expect((await createOk({ fixedAmount: { amount: '1.5', currency: 'KWD' } })).fixedAmount).toEqual({
      amount: '1.500',
      currency: 'KWD',
    });
    expect((await createOk({ fixedAmount: { amount: '0.01', currency: 'EUR' } })).fixedAmount).toEqual({
      amount: '0.01',
      currency: 'EUR',
    });
  });

  it('accepts the smallest limits', async () => {
    const rule = await createOk({
      ...PERCENTAGE,
      fixedAmount: null,
      percentageBasisPoints: 1,
      maxRewardsPerReferral: 1,
      durationDays: 1,
      capPerReferral: { amount: '0.01', currency: 'USD' },
    });
    expect(rule).toMatchObject({
      percentageBasisPoints: 1,
      maxRewardsPerReferral: 1,
      durationDays: 1,
      capPerReferral: { amount: '0.01', currency: 'USD' },
    });
  });

  it('adds rules to DRAFT and PAUSED programs too', async () => {
    for (const status of ['DRAFT', 'PAUSED'] as const) {
      const id = await program({ status });
      expect((await createOk({ programId: id })).program.id).toBe(id);
    }
  });

  const refusals: Array<[string, Partial<CreateRewardRuleInput>, string[]]> = [
    ['a FIXED rule without fixedAmount', { fixedAmount: null }, ['input', 'fixedAmount']],
    ['a FIXED rule with percentageBasisPoints', { percentageBasisPoints: 500 }, ['input', 'percentageBasisPoints']],
    [
      'a PERCENTAGE rule without percentageBasisPoints',
      { ...PERCENTAGE, fixedAmount: null, percentageBasisPoints: null },
      ['input', 'percentageBasisPoints'],
    ],
    ['a PERCENTAGE rule with fixedAmount', { ...PERCENTAGE }, ['input', 'fixedAmount']],
    ['a zero fixedAmount', { fixedAmount: { amount: '0.00', currency: 'USD' } }, ['input', 'fixedAmount', 'amount']],
    [
      'a negative fixedAmount',
      { fixedAmount: { amount: '-5.00', currency: 'USD' } },
      ['input', 'fixedAmount', 'amount'],
    ],
    [
      'a fixedAmount in an unknown currency',
      { fixedAmount: { amount: '5.00', currency: 'QQQ' } },
      ['input', 'fixedAmount', 'currency'],
    ],
    [
      'a fixedAmount with more decimals than USD has',
      { fixedAmount: { amount: '1.005', currency: 'USD' } },
      ['input', 'fixedAmount', 'amount'],
    ],
    [
      'a fixedAmount with decimals in JPY',
      { fixedAmount: { amount: '10.5', currency: 'JPY' } },
      ['input', 'fixedAmount', 'amount'],
    ],
    [
      'an absurdly large fixedAmount',
      { fixedAmount: { amount: '99999999999999999', currency: 'USD' } },
      ['input', 'fixedAmount', 'amount'],
    ],
    [
      'percentageBasisPoints of 0',
      { ...PERCENTAGE, fixedAmount: null, percentageBasisPoints: 0 },
      ['input', 'percentageBasisPoints'],
    ],
    [
      'percentageBasisPoints over 10000',
      { ...PERCENTAGE, fixedAmount: null, percentageBasisPoints: 10001 },
      ['input', 'percentageBasisPoints'],
    ],
    ['maxRewardsPerReferral of 0', { maxRewardsPerReferral: 0 }, ['input', 'maxRewardsPerReferral']],
    ['maxRewardsPerReferral over 1000', { maxRewardsPerReferral: 1001 }, ['input', 'maxRewardsPerReferral']],
    ['durationDays of 0', { durationDays: 0 }, ['input', 'durationDays']],
    ['durationDays over 3650', { durationDays: 3651 }, ['input', 'durationDays']],
    [
      'a zero capPerReferral',
      { capPerReferral: { amount: '0', currency: 'USD' } },
      ['input', 'capPerReferral', 'amount'],
    ],
    [
      'a negative capPerReferral',
      { capPerReferral: { amount: '-1.00', currency: 'USD' } },
      ['input', 'capPerReferral', 'amount'],
    ],
    [
      'a capPerReferral in an unknown currency',
      { capPerReferral: { amount: '10.00', currency: 'XYZ1' } },
      ['input', 'capPerReferral', 'currency'],
    ],
    [
      'a FIXED rule capped in another currency',
      { capPerReferral: { amount: '10.00', currency: 'EUR' } },
      ['input', 'capPerReferral', 'currency'],
    ],
  ];

  it.each(refusals)(
    'refuses %s with one VALIDATION error on that field, creating nothing',
    async (_what, input, field) => {
      const count = await prisma().rewardRule.count();
      const payload = await create(input);
      expect(payload.rewardRule).toBeNull();
      expect(payload.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field })]);
      expect(payload.userErrors[0]!.message.length).toBeGreaterThan(10);
      expect(await prisma().rewardRule.count()).toBe(count);
    },
  );

  it('reports every bad field at once', async () => {
    const payload = await create({
      fixedAmount: { amount: '-1', currency: 'nope' },
      percentageBasisPoints: 5,
      maxRewardsPerReferral: 0,
      durationDays: -3,
      capPerReferral: { amount: '1.001', currency: 'USD' },
    });
    expect(payload.rewardRule).toBeNull();
    expect(payload.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['VALIDATION', ['input', 'fixedAmount', 'currency']],
      ['VALIDATION', ['input', 'fixedAmount', 'amount']],
      ['VALIDATION', ['input', 'percentageBasisPoints']],
      ['VALIDATION', ['input', 'maxRewardsPerReferral']],
      ['VALIDATION', ['input', 'durationDays']],
      ['VALIDATION', ['input', 'capPerReferral', 'amount']],
    ]);
  });

  it('refuses a rule for an ARCHIVED program with INVALID_TRANSITION', async () => {
    const id = await program();
    await archiveProgram(id);
    const payload = await create({ programId: id });
    expect(payload.rewardRule).toBeNull();
    expect(payload.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        message: expect.stringMatching(/"Program" is ARCHIVED/),
        field: ['input', 'programId'],
      },
    ]);
    expect(await prisma().rewardRule.count({ where: { programId: rowId(id) } })).toBe(0);
  });

  it('answers NOT_FOUND on programId for a missing, malformed or wrong-type program id', async () => {
    const rule = await createOk();
    for (const programId of [encodeGlobalID('Program', uuidv7()), 'garbage', encodeGlobalID('Program', 'x'), rule.id]) {
      const payload = await create({ programId });
      expect(payload.rewardRule).toBeNull();
      expect(payload.userErrors).toEqual([
        { code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'programId'] },
      ]);
    }
  });
});

describe('updateRewardRule and versions', () => {
  it('creates version 2 with the same ruleId and supersedes version 1 in place', async () => {
    const v1 = await createOk({ maxRewardsPerReferral: 3, durationDays: 90 });
    const payload = await update({ id: v1.id, fixedAmount: { amount: '30', currency: 'USD' } });
    expect(payload.userErrors).toEqual([]);
    const v2 = payload.rewardRule!;
    expect(v2).toMatchObject({
      ruleId: v1.id,
      version: 2,
      current: true,
      fixedAmount: { amount: '30.00', currency: 'USD' },
      // Not given: kept.
      maxRewardsPerReferral: 3,
      durationDays: 90,
      archived: false,
    });
    expect(v2.id).not.toBe(v1.id);

    const old = (await fixture.gql(RULE_NODE, { id: v1.id }, fixture.admin)).data!.node;
    expect(old).toMatchObject({
      id: v1.id,
      ruleId: v1.id,
      version: 1,
      current: false,
      fixedAmount: { amount: '25.00', currency: 'USD' },
    });
    expect(old && 'supersededAt' in old && old.supersededAt).toBeTruthy();

    const rows = await lineageRows(v1.id);
    expect(rows.map((r) => [r.version, r.supersededAt === null, r.fixedAmount])).toEqual([
      [1, false, 2500n],
      [2, true, 3000n],
    ]);
    expect(rows[0]!.supersededAt).toEqual(rows[1]!.createdAt);
  });

  it('applies an edit sent with an old version’s id to the current version', async () => {
    const v1 = await createOk();
    const v2 = (await update({ id: v1.id, durationDays: 30 })).rewardRule!;
    const v3 = (await update({ id: v1.id, maxRewardsPerReferral: 2 })).rewardRule!;
    expect(v3).toMatchObject({ version: 3, ruleId: v1.id, durationDays: 30, maxRewardsPerReferral: 2 });
    const v4 = (await update({ id: v2.id, fixedAmount: { amount: '1.00', currency: 'USD' } })).rewardRule!;
    expect(v4).toMatchObject({
      version: 4,
      durationDays: 30,
      maxRewardsPerReferral: 2,
      fixedAmount: { amount: '1.00', currency: 'USD' },
    });
    expect((await lineageRows(v1.id)).filter((r) => r.supersededAt === null).map((r) => r.version)).toEqual([4]);
  });

  it('clears an optional limit given as null', async () => {
    const v1 = await createOk({
      maxRewardsPerReferral: 12,
      durationDays: 365,
      capPerReferral: { amount: '50', currency: 'USD' },
    });
    const v2 = (await update({ id: v1.id, maxRewardsPerReferral: null, durationDays: null, capPerReferral: null }))
      .rewardRule!;
    expect(v2).toMatchObject({
      version: 2,
      maxRewardsPerReferral: null,
      durationDays: null,
      capPerReferral: null,
      fixedAmount: { amount: '25.00', currency: 'USD' },
    });
  });

  it('edits a PERCENTAGE rule’s basis points', async () => {
    const v1 = await createOk({ ...PERCENTAGE, fixedAmount: null });
    const v2 = (
      await update({ id: v1.id, percentageBasisPoints: 1500, capPerReferral: { amount: '20', currency: 'GBP' } })
    ).rewardRule!;
    expect(v2).toMatchObject({
      version: 2,
      amountType: 'PERCENTAGE',
      percentageBasisPoints: 1500,
      capPerReferral: { amount: '20.00', currency: 'GBP' },
    });
  });

  it('treats an edit that changes nothing as a no-op: no new version', async () => {
    const v1 = await createOk({ durationDays: 10 });
    const payload = await update({
      id: v1.id,
      fixedAmount: { amount: '25', currency: 'usd' },
      durationDays: 10,
      percentageBasisPoints: null,
    });
    expect(payload.userErrors).toEqual([]);
    expect(payload.rewardRule).toMatchObject({ id: v1.id, version: 1 });
    expect(await lineageRows(v1.id)).toHaveLength(1);
  });

  it('keeps the version a reward was produced by, and lists only the current version', async () => {
    const programId = await program();
    const v1 = await createOk({ programId });
    const t = fixture.tenant;
    const partner = await prisma().partner.create({ data: { ...t, externalId: `p-${uuidv7()}` } });
    const conversion = await prisma().conversion.create({
      data: {
        ...t,
        type: 'PURCHASE',
        status: 'ACCEPTED',
        idempotencyKey: uuidv7(),
        occurredAt: new Date(),
        amount: 10000n,
        currency: 'USD',
        programId: rowId(programId),
        partnerId: partner.id,
      },
    });
    const reward = await prisma().reward.create({
      data: {
        ...t,
        programId: rowId(programId),
        partnerId: partner.id,
        conversionId: conversion.id,
        ruleId: rowId(v1.id),
        ruleLineageId: rowId(v1.id),
        recipient: 'REFERRER',
        kind: 'CASH',
        amount: 2500n,
        currency: 'USD',
        approveAfter: new Date(),
      },
    });

    const v2 = (await update({ id: v1.id, fixedAmount: { amount: '40.00', currency: 'USD' } })).rewardRule!;
    expect(v2.version).toBe(2);

    expect((await prisma().reward.findUniqueOrThrow({ where: { id: reward.id } })).ruleId).toBe(rowId(v1.id));
    const old = (await fixture.gql(RULE_NODE, { id: v1.id }, fixture.admin)).data!.node;
    expect(old).toMatchObject({
      id: v1.id,
      version: 1,
      current: false,
      fixedAmount: { amount: '25.00', currency: 'USD' },
      program: { id: programId },
    });

    const listed = (await fixture.gql(RULES, { id: programId }, fixture.admin)).data!.program!.rewardRules;
    expect(listed).toEqual([
      { id: v2.id, ruleId: v1.id, version: 2, archived: false, fixedAmount: { amount: '40.00', currency: 'USD' } },
    ]);
  });

  const refusals: Array<[string, 'FIXED' | 'PERCENTAGE', Omit<UpdateRewardRuleInput, 'id'>, string[]]> = [
    ['clearing a FIXED rule’s fixedAmount', 'FIXED', { fixedAmount: null }, ['input', 'fixedAmount']],
    [
      'percentageBasisPoints on a FIXED rule',
      'FIXED',
      { percentageBasisPoints: 100 },
      ['input', 'percentageBasisPoints'],
    ],
    [
      'clearing a PERCENTAGE rule’s percentageBasisPoints',
      'PERCENTAGE',
      { percentageBasisPoints: null },
      ['input', 'percentageBasisPoints'],
    ],
    [
      'fixedAmount on a PERCENTAGE rule',
      'PERCENTAGE',
      { fixedAmount: { amount: '1.00', currency: 'USD' } },
      ['input', 'fixedAmount'],
    ],
    [
      'a zero fixedAmount',
      'FIXED',
      { fixedAmount: { amount: '0', currency: 'USD' } },
      ['input', 'fixedAmount', 'amount'],
    ],
    [
      'a fixedAmount in an unknown currency',
      'FIXED',
      { fixedAmount: { amount: '1', currency: 'ZZZ' } },
      ['input', 'fixedAmount', 'currency'],
    ],
    [
      'percentageBasisPoints over 10000',
      'PERCENTAGE',
      { percentageBasisPoints: 20000 },
      ['input', 'percentageBasisPoints'],
    ],
    ['maxRewardsPerReferral of 0', 'FIXED', { maxRewardsPerReferral: 0 }, ['input', 'maxRewardsPerReferral']],
    ['durationDays over 3650', 'FIXED', { durationDays: 4000 }, ['input', 'durationDays']],
    [
      'a negative capPerReferral',
      'FIXED',
      { capPerReferral: { amount: '-3', currency: 'USD' } },
      ['input', 'capPerReferral', 'amount'],
    ],
    [
      'a cap in another currency than the fixed amount',
      'FIXED',
      { capPerReferral: { amount: '3', currency: 'CHF' } },
      ['input', 'capPerReferral', 'currency'],
    ],
    [
      'a fixed amount moved away from the cap’s currency',
      'FIXED',
      { fixedAmount: { amount: '3', currency: 'CHF' } },
      ['input', 'fixedAmount', 'currency'],
    ],
  ];

  it.each(refusals)('refuses %s with a VALIDATION error, creating no version', async (_what, type, input, field) => {
    const v1 = await createOk(
      type === 'FIXED' ? { capPerReferral: { amount: '100', currency: 'USD' } } : { ...PERCENTAGE, fixedAmount: null },
    );
    const before = await lineageRows(v1.id);
    const payload = await update({ id: v1.id, ...input });
    expect(payload.rewardRule).toBeNull();
    expect(payload.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field })]);
    expect(await lineageRows(v1.id)).toEqual(before);
  });

  it('answers NOT_FOUND for a missing, malformed or wrong-type rule id', async () => {
    for (const id of [encodeGlobalID('RewardRule', uuidv7()), 'garbage', encodeGlobalID('RewardRule', '12'), usd]) {
      const payload = await update({ id, durationDays: 3 });
      expect(payload).toEqual({
        rewardRule: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Reward rule not found.', field: ['input', 'id'] }],
      });
    }
  });

  it('refuses to edit a rule of an ARCHIVED program', async () => {
    const programId = await program();
    const v1 = await createOk({ programId });
    await archiveProgram(programId);
    const payload = await update({ id: v1.id, durationDays: 3 });
    expect(payload.rewardRule).toBeNull();
    expect(payload.userErrors).toEqual([
      expect.objectContaining({
        code: 'INVALID_TRANSITION',
        field: ['input', 'id'],
        message: expect.stringMatching(/ARCHIVED/),
      }),
    ]);
    expect(await lineageRows(v1.id)).toHaveLength(1);
  });

  it('gives concurrent edits consecutive versions, with exactly one current', async () => {
    const v1 = await createOk();
    const amounts = ['31', '32', '33', '34', '35', '36', '37', '38'];
    const results = await Promise.all(
      amounts.map((amount) => update({ id: v1.id, fixedAmount: { amount, currency: 'USD' } })),
    );
    expect(results.every((r) => r.userErrors.length === 0)).toBe(true);
    expect(results.map((r) => r.rewardRule!.version).sort()).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    const rows = await lineageRows(v1.id);
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rows.filter((r) => r.supersededAt === null)).toHaveLength(1);
  });
});

describe('archiveRewardRule and Program.rewardRules', () => {
  it('archives the current version; archiving again is harmless; an archived rule refuses edits', async () => {
    const v1 = await createOk();
    const v2 = (await update({ id: v1.id, durationDays: 7 })).rewardRule!;
    const first = await archive(v1.id);
    expect(first.userErrors).toEqual([]);
    expect(first.rewardRule).toMatchObject({ id: v2.id, ruleId: v1.id, version: 2, archived: true, current: true });
    const again = await archive(v2.id);
    expect(again).toEqual(first);

    const payload = await update({ id: v1.id, durationDays: 8 });
    expect(payload.rewardRule).toBeNull();
    expect(payload.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        message: expect.stringMatching(/archived.*cannot be updated/),
        field: ['input', 'id'],
      },
    ]);
    expect(await lineageRows(v1.id)).toHaveLength(2);
  });

  it('lists current versions in creation order, hiding archived rules unless asked', async () => {
    const programId = await program();
    const a = await createOk({ programId, trigger: 'SIGNUP' });
    const b = await createOk({ programId, ...PERCENTAGE, fixedAmount: null });
    const c = await createOk({ programId, trigger: 'SUBSCRIPTION' });
    const a2 = (await update({ id: a.id, fixedAmount: { amount: '26', currency: 'USD' } })).rewardRule!;
    await archive(b.id);

    const byDefault = (await fixture.gql(RULES_DEFAULT, { id: programId }, fixture.admin)).data!.program!.rewardRules;
    expect(byDefault).toEqual([
      { id: a2.id, version: 2, archived: false },
      { id: c.id, version: 1, archived: false },
    ]);
    const all = (await fixture.gql(RULES, { id: programId, includeArchived: true }, fixture.admin)).data!.program!
      .rewardRules;
    expect(all.map((r) => [r.id, r.archived])).toEqual([
      [a2.id, false],
      [b.id, true],
      [c.id, false],
    ]);
    const explicitFalse = (await fixture.gql(RULES, { id: programId, includeArchived: false }, fixture.admin)).data!
      .program!.rewardRules;
    expect(explicitFalse.map((r) => r.id)).toEqual([a2.id, c.id]);
  });

  it('loads the rules of a page of programs without a query per program', async () => {
    const fresh = await fixture.server.workspace('Nested rules');
    const token = fresh.keys.test.secret;
    for (let i = 0; i < 5; i++) {
      const programId = await program({}, token);
      await createOk({ programId }, token);
      await createOk({ programId, ...PERCENTAGE, fixedAmount: null }, token);
    }
    const nested = graphql(`
      query NestedProgramRulesT($first: Int) {
        programs(first: $first) { totalCount edges { node { id rewardRules { id version program { id name } } } } }
      }
    `);
    await fixture.gql(nested, { first: 1 }, token); // warm-up: key lookup, lastUsedAt
    const { statements: one } = await fixture.server.gqlCounted(nested, { first: 1 }, token);
    const { body: all, statements: five } = await fixture.server.gqlCounted(nested, { first: 5 }, token);
    expect(all.data!.programs.edges.map((e) => e.node.rewardRules.length)).toEqual([2, 2, 2, 2, 2]);
    expect(five).toBe(one);
  });

  it('archives a rule of an ARCHIVED program (it only stops rewards)', async () => {
    const programId = await program();
    const rule = await createOk({ programId });
    await archiveProgram(programId);
    expect((await archive(rule.id)).rewardRule).toMatchObject({ archived: true });
  });

  it('answers NOT_FOUND for a missing, malformed or wrong-type rule id', async () => {
    for (const id of [encodeGlobalID('RewardRule', uuidv7()), 'garbage', usd]) {
      expect(await archive(id)).toEqual({
        rewardRule: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Reward rule not found.', field: ['input', 'id'] }],
      });
    }
  });
});

describe('roles', () => {
  it('lets a READ_ONLY key read rules, and refuses it every rule mutation with FORBIDDEN_FOR_ROLE', async () => {
    const rule = await createOk();
    expect((await fixture.gql(RULE_NODE, { id: rule.id }, readOnly)).data?.node).toMatchObject({
      id: rule.id,
      version: 1,
    });
    expect((await fixture.gql(RULES, { id: usd }, readOnly)).data?.program?.rewardRules.map((r) => r.id)).toContain(
      rule.id,
    );

    const count = await prisma().rewardRule.count();
    const created = await fixture.gql(CREATE, { input: { programId: usd, ...FIXED } }, readOnly);
    const updated = await fixture.gql(UPDATE, { input: { id: rule.id, durationDays: 1 } }, readOnly);
    const archived = await fixture.gql(ARCHIVE, { input: { id: rule.id } }, readOnly);
    for (const res of [created, updated, archived])
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect(await prisma().rewardRule.count()).toBe(count);
    expect(await snapshot(rule.id)).toMatchObject({ archivedAt: null, supersededAt: null, durationDays: null });
  });

  it('answers UNAUTHENTICATED without a credential, changing nothing', async () => {
    const rule = await createOk();
    const count = await prisma().rewardRule.count();
    for (const [query, variables] of [
      [CREATE, { input: { programId: usd, ...FIXED } }],
      [UPDATE, { input: { id: rule.id, durationDays: 1 } }],
      [ARCHIVE, { input: { id: rule.id } }],
      [RULES, { id: usd }],
    ] as const) {
      const res = await fixture.gql(query as never, variables);
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    expect(await prisma().rewardRule.count()).toBe(count);
  });

  it('shows a PARTNER the rules of the programs it is enrolled in, and nothing else', async () => {
    const mine = await program();
    const notMine = await program();
    const ruleMine = await createOk({ programId: mine });
    const ruleNotMine = await createOk({ programId: notMine });
    const t = fixture.tenant;
    const partner = await prisma().partner.create({ data: { ...t, externalId: `p-${uuidv7()}` } });
    await prisma().enrollment.create({
      data: { ...t, partnerId: partner.id, programId: rowId(mine), status: 'APPROVED' },
    });
    const minted = await fixture.gql(
      CREATE_PARTNER_TOKEN,
      { input: { partnerId: encodeGlobalID('Partner', partner.id) } },
      fixture.admin,
    );
    const token = minted.data!.createPartnerToken.token!;

    expect((await fixture.gql(RULE_NODE, { id: ruleMine.id }, token)).data?.node).toMatchObject({
      id: ruleMine.id,
      program: { id: mine },
    });
    expect((await fixture.gql(RULE_NODE, { id: ruleNotMine.id }, token)).data?.node).toBeNull();
    expect((await fixture.gql(PARTNER_RULES, { id: mine }, token)).data?.node).toEqual({
      rewardRules: [{ id: ruleMine.id, version: 1 }],
    });
    const res = await fixture.gql(UPDATE, { input: { id: ruleMine.id, durationDays: 1 } }, token);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});

describe('isolation between workspaces and modes', () => {
  it('never shows, uses or changes another workspace’s or the other mode’s programs and rules', async () => {
    const liveProgram = await program({}, fixture.liveAdmin);
    const theirProgram = await program({}, fixture.otherAdmin);
    const liveRule = await createOk({ programId: liveProgram }, fixture.liveAdmin);
    const theirRule = await createOk({ programId: theirProgram }, fixture.otherAdmin);
    const before = { live: await lineageRows(liveRule.id), theirs: await lineageRows(theirRule.id) };
    const count = await prisma().rewardRule.count();

    for (const programId of [liveProgram, theirProgram]) {
      const payload = await create({ programId });
      expect(payload).toEqual({
        rewardRule: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'programId'] }],
      });
    }
    for (const id of [liveRule.id, theirRule.id]) {
      expect((await fixture.gql(RULE_NODE, { id }, fixture.admin)).data?.node).toBeNull();
      const notFound = {
        rewardRule: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Reward rule not found.', field: ['input', 'id'] }],
      };
      expect(await update({ id, fixedAmount: { amount: '99', currency: 'USD' } })).toEqual(notFound);
      expect(await archive(id)).toEqual(notFound);
    }
    expect(await prisma().rewardRule.count()).toBe(count);
    expect(await lineageRows(liveRule.id)).toEqual(before.live);
    expect(await lineageRows(theirRule.id)).toEqual(before.theirs);

    // Their own credentials still see them.
    expect((await fixture.gql(RULE_NODE, { id: liveRule.id }, fixture.liveAdmin)).data?.node).toMatchObject({
      id: liveRule.id,
    });
    expect(
      (await fixture.gql(RULES, { id: theirProgram }, fixture.otherAdmin)).data?.program?.rewardRules.map((r) => r.id),
    ).toEqual([theirRule.id]);
  });
});
