import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalJob } from '../src/modules/reward/approval-job.js';
import { APPROVAL_JOB_ACTOR } from '../src/modules/reward/lifecycle.js';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { graphql } from './gql/index.js';
import type { RewardFilter } from './gql/graphql.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// Reward.statusHistory (the RewardStatusChange rows, oldest first, with reason and actor) and the
// RewardFilter additions (referredExternalId, recipient, kind), each within the caller's scope:
// another workspace or mode sees nothing, a PARTNER credential only its own partner's rewards
// and never which of the company's keys acted.

let server: TestServer;
let ws: CreatedWorkspace;
let admin: string;
let tenant: Tenant;
/** What the set-up recorded: two programs, partner A in one and B in the other, both referring cust-1. */
let seen: {
  programA: string;
  programB: string;
  partnerA: string;
  partnerB: string;
  /** Global ids of the rewards of cust-1's purchase in each program. */
  a: { referrer: string; referred: string };
  b: { referrer: string; referred: string };
  /** The rewards of another referred person's purchase, through A. */
  other: { referrer: string; referred: string };
};

const RECORD = graphql(`
  mutation RH_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      rewards { id recipient kind }
      userErrors { code message field }
    }
  }
`);
const UPDATE = graphql(`
  mutation RH_Update($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) { rewards { id status } userErrors { code message field } }
  }
`);
const HISTORY = graphql(`
  query RH_History($id: ID!) {
    node(id: $id) { ... on Reward { id status statusHistory { from to reason actor at } } }
  }
`);
const REWARDS = graphql(`
  query RH_Rewards($filter: RewardFilter) {
    rewards(first: 100, filter: $filter) { totalCount edges { node { id recipient kind partner { id } } } }
  }
`);
const PARTNER_REWARDS = graphql(`
  query RH_PartnerRewards($id: ID!) {
    partner(id: $id) { rewards(first: 100) { edges { node { id statusHistory { from to actor } } } } }
  }
`);

beforeAll(async () => {
  server = await startTestServer();
  ws = await server.workspace('Reward history');
  admin = ws.keys.test.secret;
  tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
  seen = await seedTenant(tenant, admin);
});
afterAll(async () => {
  await server?.close();
});

/**
 * Two programs (a 10.00 USD CASH rule for the referrer, a 5.00 USD CREDIT rule for the referred
 * customer), partner A in the first and B in the second, each bringing cust-1 through a code; a
 * third purchase by cust-2 through A. All recorded through the API with `token`.
 */
async function seedTenant(t: Tenant, token: string) {
  const f = factories(server.testDb.db.prisma, t);
  const world = async () => {
    const program = await f.program();
    await f.rule(program.id, { fixedAmount: 1000n });
    await f.rule(program.id, { recipient: 'REFERRED', kind: 'CREDIT', fixedAmount: 500n });
    const partner = await f.partner();
    const link = await f.link(await f.enrollment({ programId: program.id, partnerId: partner.id }));
    return { program, partner, link };
  };
  const A = await world();
  const B = await world();
  const purchase = async (code: string, person: string) => {
    const res = await server.gql(
      RECORD,
      {
        input: {
          type: 'PURCHASE',
          idempotencyKey: `rh-${Math.random()}`,
          referredExternalId: person,
          code,
          amount: { amount: '50.00', currency: 'USD' },
        },
      },
      token,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.recordConversion.userErrors).toEqual([]);
    const rewards = res.data!.recordConversion.rewards;
    return {
      referrer: rewards.find((r) => r.recipient === 'REFERRER')!.id,
      referred: rewards.find((r) => r.recipient === 'REFERRED')!.id,
    };
  };
  const a = await purchase(A.link.code, 'cust-1');
  const b = await purchase(B.link.code, 'cust-1');
  const other = await purchase(A.link.code, 'cust-2');
  return {
    programA: A.program.id,
    programB: B.program.id,
    partnerA: A.partner.id,
    partnerB: B.partner.id,
    a,
    b,
    other,
  };
}

async function historyOf(rewardId: string, token = admin) {
  const res = await server.gql(HISTORY, { id: rewardId }, token);
  expect(res.errors).toBeUndefined();
  const node = res.data!.node as { statusHistory?: Array<Record<string, unknown>> } | null;
  return node?.statusHistory ?? null;
}

async function rewardIds(filter: RewardFilter, token = admin) {
  const res = await server.gql(REWARDS, { filter }, token);
  expect(res.errors).toBeUndefined();
  const ids = res.data!.rewards.edges.map((e) => e.node.id);
  expect(res.data!.rewards.totalCount).toBe(ids.length);
  return ids.sort();
}

const sorted = (ids: string[]) => [...ids].sort();

describe('Reward.statusHistory', () => {
  it('lists every change oldest first: creation (from null), an admin’s approval with its reason, the approval job’s', async () => {
    const update = await server.gql(
      UPDATE,
      { input: { ids: [seen.a.referrer], status: 'APPROVED', reason: ' checked the invoice ' } },
      admin,
    );
    expect(update.data!.updateRewardStatus.userErrors).toEqual([]);
    await new ApprovalJob(server.testDb.db.prisma, { intervalMs: 0 }).runOnce();

    const key = gid('ApiKey', ws.keys.test.id);
    const byAdmin = await historyOf(seen.a.referrer);
    expect(byAdmin).toEqual([
      {
        from: null,
        to: 'CREATED',
        reason: 'Created by a reward rule for an accepted conversion.',
        actor: key,
        at: expect.any(String),
      },
      { from: 'CREATED', to: 'APPROVED', reason: 'checked the invoice', actor: key, at: expect.any(String) },
    ]);
    const byJob = await historyOf(seen.a.referred);
    expect(byJob!.map((h) => [h['from'], h['to'], h['actor']])).toEqual([
      [null, 'CREATED', key],
      ['CREATED', 'APPROVED', APPROVAL_JOB_ACTOR],
    ]);
    for (const history of [byAdmin!, byJob!]) {
      const times = history.map((h) => Date.parse(h['at'] as string));
      expect(times).toEqual([...times].sort((x, y) => x - y));
      expect(times[0]).toBeLessThan(times[1]!);
    }
    // A READ_ONLY key sees the same, actors included.
    expect(await historyOf(seen.a.referrer, await readOnlyKey(server, admin))).toEqual(byAdmin);
  });

  it('shows a PARTNER token its own rewards’ history with system actors only (the company’s keys are null), and no other partner’s', async () => {
    const tokenA = await partnerToken(server, admin, seen.partnerA);
    const mine = await historyOf(seen.a.referred, tokenA);
    expect(mine!.map((h) => [h['from'], h['to'], h['actor']])).toEqual([
      [null, 'CREATED', null],
      ['CREATED', 'APPROVED', APPROVAL_JOB_ACTOR],
    ]);
    expect(mine!.map((h) => h['reason'])).toEqual((await historyOf(seen.a.referred))!.map((h) => h['reason']));
    expect(await historyOf(seen.b.referred, tokenA)).toBeNull();

    const res = await server.gql(PARTNER_REWARDS, { id: gid('Partner', seen.partnerA) }, tokenA);
    expect(res.errors).toBeUndefined();
    const edges = res.data!.partner!.rewards.edges;
    expect(sorted(edges.map((e) => e.node.id))).toEqual(
      sorted([seen.a.referrer, seen.a.referred, seen.other.referrer, seen.other.referred]),
    );
    for (const { node } of edges) {
      expect(node.statusHistory[0]).toEqual({ from: null, to: 'CREATED', actor: null });
      for (const h of node.statusHistory) expect([null, APPROVAL_JOB_ACTOR]).toContain(h.actor);
    }
    // Another partner's data is not reachable through their Partner either.
    const theirs = await server.gql(PARTNER_REWARDS, { id: gid('Partner', seen.partnerB) }, tokenA);
    expect(theirs.data?.partner ?? null).toBeNull();
  });

  it('is out of reach for another workspace and for the other mode (the reward is null)', async () => {
    const other = await server.workspace('Reward history, other');
    for (const token of [other.keys.test.secret, other.keys.live.secret, ws.keys.live.secret]) {
      expect(await historyOf(seen.a.referrer, token)).toBeNull();
    }
  });
});

describe('RewardFilter: referredExternalId, recipient, kind', () => {
  it('reads what a referred customer earned across programs: referredExternalId with recipient REFERRED (trimmed), and by kind', async () => {
    expect(await rewardIds({ referredExternalId: 'cust-1', recipient: 'REFERRED' })).toEqual(
      sorted([seen.a.referred, seen.b.referred]),
    );
    expect(await rewardIds({ referredExternalId: '  cust-1 ', recipient: 'REFERRER' })).toEqual(
      sorted([seen.a.referrer, seen.b.referrer]),
    );
    expect(await rewardIds({ referredExternalId: 'cust-1' })).toEqual(
      sorted([seen.a.referred, seen.b.referred, seen.a.referrer, seen.b.referrer]),
    );
    expect(await rewardIds({ referredExternalId: 'cust-1', kind: 'CREDIT' })).toEqual(
      sorted([seen.a.referred, seen.b.referred]),
    );
    expect(await rewardIds({ referredExternalId: 'cust-1', kind: 'CASH', recipient: 'REFERRED' })).toEqual([]);
    expect(
      await rewardIds({
        referredExternalId: 'cust-1',
        recipient: 'REFERRED',
        programId: gid('Program', seen.programB),
      }),
    ).toEqual([seen.b.referred]);
    expect(await rewardIds({ referredExternalId: 'CUST-1' })).toEqual([]);
    expect(await rewardIds({ referredExternalId: 'nobody' })).toEqual([]);
    // Without the person: every workspace reward of the recipient or kind.
    expect(await rewardIds({ recipient: 'REFERRER' })).toEqual(
      sorted([seen.a.referrer, seen.b.referrer, seen.other.referrer]),
    );
    expect(await rewardIds({ kind: 'CREDIT' })).toEqual(
      sorted([seen.a.referred, seen.b.referred, seen.other.referred]),
    );
  });

  it('never lists another workspace’s or the other mode’s rewards of the same person; PARTNER tokens cannot list workspace rewards', async () => {
    const other = await server.workspace('Reward filter, other');
    const foreign = await seedTenant({ workspaceId: other.workspace.id, mode: 'TEST' }, other.keys.test.secret);
    const live = await seedTenant({ workspaceId: ws.workspace.id, mode: 'LIVE' }, ws.keys.live.secret);
    const filter = { referredExternalId: 'cust-1', recipient: 'REFERRED' as const };

    expect(await rewardIds(filter)).toEqual(sorted([seen.a.referred, seen.b.referred]));
    expect(await rewardIds(filter, other.keys.test.secret)).toEqual(sorted([foreign.a.referred, foreign.b.referred]));
    expect(await rewardIds(filter, ws.keys.live.secret)).toEqual(sorted([live.a.referred, live.b.referred]));
    expect(await rewardIds(filter, await readOnlyKey(server, admin))).toEqual(
      sorted([seen.a.referred, seen.b.referred]),
    );

    const refused = await server.gql(REWARDS, { filter }, await partnerToken(server, admin, seen.partnerA));
    expect(refused.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN_FOR_ROLE');
  });
});
