import { beforeAll, describe, expect, it } from 'vitest';
import type { RewardStatus } from '../src/generated/prisma/enums.js';
import { ApprovalJob } from '../src/modules/reward/approval-job.js';
import { APPROVAL_JOB_ACTOR, MAX_STATUS_UPDATE_IDS, TRANSITIONS } from '../src/modules/reward/lifecycle.js';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import {
  balanceOf,
  expectLedgerMatchesBalances,
  gid,
  moneyFixtures,
  partnerToken,
  readOnlyKey,
  type World,
} from './helpers/money.js';
import { startTestServer } from './helpers/server.js';

// The app's own job stays idle: these tests run it by hand.
const fixture = useTwoWorkspaces({ env: { APPROVAL_JOB_INTERVAL_MS: '0' }, names: ['Lifecycle A', 'Lifecycle B'] });

let fx: ReturnType<typeof moneyFixtures>;
let w: World;

beforeAll(async () => {
  fx = moneyFixtures(fixture.server.testDb.db.prisma, fixture.tenant);
  w = await fx.world();
});

const UPDATE = graphql(`
  mutation RL_Update($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) {
      rewards { id status amount { amount currency } }
      userErrors { code message field }
    }
  }
`);

const prisma = () => fixture.server.testDb.db.prisma;

async function update(ids: string[], status: RewardStatus, reason?: string, token = fixture.admin) {
  const res = await fixture.gql(UPDATE, { input: { ids, status, reason } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.updateRewardStatus;
}

const history = (rewardId: string) =>
  prisma().rewardStatusChange.findMany({ where: { rewardId }, orderBy: { id: 'asc' } });
const ledger = (rewardId: string) => prisma().ledgerEntry.findMany({ where: { rewardId }, orderBy: { id: 'asc' } });
const statusOf = async (rewardId: string) =>
  (await prisma().reward.findUniqueOrThrow({ where: { id: rewardId } })).status;

const STATUSES: RewardStatus[] = ['CREATED', 'APPROVED', 'PROCESSED', 'CANCELED', 'REJECTED'];

describe('updateRewardStatus: the lifecycle', () => {
  const allowed: Array<[RewardStatus, RewardStatus]> = [
    ['CREATED', 'APPROVED'],
    ['CREATED', 'CANCELED'],
    ['CREATED', 'REJECTED'],
    ['APPROVED', 'PROCESSED'],
    ['APPROVED', 'CANCELED'],
    ['APPROVED', 'REJECTED'],
  ];

  it('allows exactly CREATED → APPROVED → PROCESSED and CREATED/APPROVED → CANCELED | REJECTED', () => {
    const table = STATUSES.flatMap((from) => TRANSITIONS[from].map((to) => [from, to]));
    expect(table).toEqual(allowed);
  });

  it.each(allowed)('%s → %s: new status, one history row with actor and reason, an outbox event', async (from, to) => {
    const reward = await fx.reward(w, { status: from });
    const before = (await history(reward.id)).length;
    const payload = await update([gid('Reward', reward.id)], to, '  checked by hand  ');
    expect(payload.userErrors).toEqual([]);
    expect(payload.rewards).toEqual([
      { id: gid('Reward', reward.id), status: to, amount: { amount: '10.00', currency: 'USD' } },
    ]);
    const rows = await history(reward.id);
    expect(rows).toHaveLength(before + 1);
    expect(rows.at(-1)).toMatchObject({
      fromStatus: from,
      toStatus: to,
      reason: 'checked by hand',
      actor: fixture.ws.keys.test.id,
    });
    const event = await prisma().event.findFirst({
      where: { ...fixture.tenant, type: 'reward.status_changed' },
      orderBy: { sequence: 'desc' },
    });
    expect(event).toMatchObject({ programId: w.programId, partnerId: w.partnerId });
    expect(event!.payload).toMatchObject({
      rewardId: gid('Reward', reward.id),
      partnerId: gid('Partner', w.partnerId),
      programId: gid('Program', w.programId),
      from,
      to,
      reason: 'checked by hand',
      amount: { amount: '10.00', currency: 'USD' },
    });
  });

  const refused = STATUSES.flatMap((from) =>
    STATUSES.filter((to) => to !== from && !TRANSITIONS[from].includes(to)).map(
      (to) => [from, to] as [RewardStatus, RewardStatus],
    ),
  );

  it.each(refused)(
    '%s → %s is INVALID_TRANSITION naming the reward, its status and the one asked; nothing changes',
    async (from, to) => {
      const reward = await fx.reward(w, { status: from });
      const before = await history(reward.id);
      const payload = await update([gid('Reward', reward.id)], to);
      expect(payload.rewards).toEqual([]);
      expect(payload.userErrors).toHaveLength(1);
      const [error] = payload.userErrors;
      expect(error).toMatchObject({ code: 'INVALID_TRANSITION', field: ['input', 'ids', '0'] });
      expect(error!.message).toContain(gid('Reward', reward.id));
      expect(error!.message).toContain(`is ${from}`);
      expect(error!.message).toContain(`become ${to}`);
      expect(await statusOf(reward.id)).toBe(from);
      expect(await history(reward.id)).toEqual(before);
    },
  );

  it.each(STATUSES)(
    'asking %s of a reward already in it changes nothing and is no error (no history row)',
    async (status) => {
      const reward = await fx.reward(w, { status });
      const before = await history(reward.id);
      const ledgerBefore = await ledger(reward.id);
      const payload = await update([gid('Reward', reward.id)], status);
      expect(payload.userErrors).toEqual([]);
      expect(payload.rewards.map((r) => r.status)).toEqual([status]);
      expect(await history(reward.id)).toEqual(before);
      expect(await ledger(reward.id)).toEqual(ledgerBefore);
    },
  );
});

describe('updateRewardStatus: the ledger', () => {
  it('approval credits available, processing moves it to paid, each with one entry of its kind', async () => {
    const world = await fx.world();
    const reward = await fx.reward(world, { amount: 1234n });
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).toMatchObject({
      pending: 1234n,
      available: 0n,
      paid: 0n,
    });

    await update([gid('Reward', reward.id)], 'APPROVED');
    expect((await ledger(reward.id)).map((e) => [e.type, e.amount])).toEqual([['REWARD_APPROVED', 1234n]]);
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: 1234n,
      paid: 0n,
    });

    await update([gid('Reward', reward.id)], 'PROCESSED');
    expect((await ledger(reward.id)).map((e) => [e.type, e.amount])).toEqual([
      ['REWARD_APPROVED', 1234n],
      // Marked PROCESSED outside any payout: paid by other means, a PAYOUT entry of its own.
      ['PAYOUT', -1234n],
    ]);
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: 0n,
      paid: 1234n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, world.partnerId);
  });

  it('canceling or rejecting an approved reward reverses its credit; a created one never had any', async () => {
    const world = await fx.world();
    const approved = await fx.reward(world, { status: 'APPROVED', amount: 700n });
    const rejected = await fx.reward(world, { status: 'APPROVED', amount: 300n });
    const created = await fx.reward(world, { amount: 50n });
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).toMatchObject({
      pending: 50n,
      available: 1000n,
    });

    await update([gid('Reward', approved.id), gid('Reward', created.id)], 'CANCELED');
    await update([gid('Reward', rejected.id)], 'REJECTED', 'fraud');
    expect((await ledger(approved.id)).map((e) => [e.type, e.amount])).toEqual([
      ['REWARD_APPROVED', 700n],
      ['REWARD_REVERSED', -700n],
    ]);
    expect((await ledger(rejected.id)).map((e) => [e.type, e.amount])).toEqual([
      ['REWARD_APPROVED', 300n],
      ['REWARD_REVERSED', -300n],
    ]);
    expect(await ledger(created.id)).toEqual([]);
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: 0n,
      paid: 0n,
    });
    await expectLedgerMatchesBalances(fixture.server, fixture.admin, fixture.tenant, world.partnerId);
  });

  it('moves REFERRED rewards (the referred customer’s) without touching the partner’s ledger', async () => {
    const world = await fx.world();
    const reward = await fx.reward(world, { recipient: 'REFERRED', amount: 500n });
    await update([gid('Reward', reward.id)], 'APPROVED');
    await update([gid('Reward', reward.id)], 'PROCESSED');
    expect(await statusOf(reward.id)).toBe('PROCESSED');
    expect(await ledger(reward.id)).toEqual([]);
    expect(await balanceOf(fixture.server, fixture.admin, world.partnerId, 'USD')).toMatchObject({
      pending: 0n,
      available: 0n,
      paid: 0n,
    });
  });

  it('writes no zero ledger entry for a reward of zero', async () => {
    const reward = await fx.reward(w, { amount: 0n });
    expect((await update([gid('Reward', reward.id)], 'APPROVED')).userErrors).toEqual([]);
    expect(await ledger(reward.id)).toEqual([]);
  });
});

describe('updateRewardStatus: many ids, all or none', () => {
  it('changes every reward in one call and answers them in the order asked, repeats once', async () => {
    const rewards = await Promise.all([1, 2, 3].map(() => fx.reward(w)));
    const ids = [rewards[2]!, rewards[0]!, rewards[1]!, rewards[0]!].map((r) => gid('Reward', r.id));
    const payload = await update(ids, 'APPROVED');
    expect(payload.userErrors).toEqual([]);
    expect(payload.rewards.map((r) => r.id)).toEqual(ids.slice(0, 3));
    for (const reward of rewards) {
      expect(await statusOf(reward.id)).toBe('APPROVED');
      expect((await history(reward.id)).filter((h) => h.toStatus === 'APPROVED')).toHaveLength(1);
      expect(await ledger(reward.id)).toHaveLength(1);
    }
  });

  it('reports one userError per refused id and then changes none of them', async () => {
    const ok1 = await fx.reward(w);
    const processed = await fx.reward(w, { status: 'PROCESSED' });
    const ok2 = await fx.reward(w);
    const canceled = await fx.reward(w, { status: 'CANCELED' });
    const ids = [ok1, processed, ok2, canceled].map((r) => gid('Reward', r.id));
    const eventsBefore = await prisma().event.count({ where: fixture.tenant });
    const payload = await update([...ids, 'not-an-id'], 'APPROVED');
    expect(payload.rewards).toEqual([]);
    expect(payload.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['INVALID_TRANSITION', ['input', 'ids', '1']],
      ['INVALID_TRANSITION', ['input', 'ids', '3']],
      ['NOT_FOUND', ['input', 'ids', '4']],
    ]);
    expect(payload.userErrors[0]!.message).toContain(`${gid('Reward', processed.id)} is PROCESSED`);
    expect(payload.userErrors[1]!.message).toContain(`${gid('Reward', canceled.id)} is CANCELED`);
    expect(await statusOf(ok1.id)).toBe('CREATED');
    expect(await statusOf(ok2.id)).toBe('CREATED');
    expect(await ledger(ok1.id)).toEqual([]);
    expect(await history(ok1.id)).toHaveLength(1);
    expect(await prisma().event.count({ where: fixture.tenant })).toBe(eventsBefore);
  });

  it('is safe to retry: the same call again answers the same rewards with no errors and writes nothing', async () => {
    const rewards = await Promise.all([1, 2].map(() => fx.reward(w)));
    const ids = rewards.map((r) => gid('Reward', r.id));
    const first = await update(ids, 'APPROVED');
    const counts = async () => [
      await prisma().rewardStatusChange.count({ where: fixture.tenant }),
      await prisma().ledgerEntry.count({ where: fixture.tenant }),
      await prisma().event.count({ where: fixture.tenant }),
    ];
    const before = await counts();
    const again = await update(ids, 'APPROVED');
    expect(again).toEqual(first);
    expect(again.userErrors).toEqual([]);
    expect(await counts()).toEqual(before);
  });

  it(`refuses more than ${MAX_STATUS_UPDATE_IDS} ids with LIMIT_EXCEEDED`, async () => {
    const reward = await fx.reward(w);
    const ids = Array.from({ length: MAX_STATUS_UPDATE_IDS + 1 }, () => gid('Reward', reward.id));
    const payload = await update(ids, 'APPROVED');
    expect(payload.rewards).toEqual([]);
    expect(payload.userErrors).toEqual([expect.objectContaining({ code: 'LIMIT_EXCEEDED', field: ['input', 'ids'] })]);
    expect(await statusOf(reward.id)).toBe('CREATED');
    expect((await update(ids.slice(0, MAX_STATUS_UPDATE_IDS), 'APPROVED')).userErrors).toEqual([]);
  });

  it('refuses a reason longer than 500 characters with VALIDATION', async () => {
    const reward = await fx.reward(w);
    const payload = await update([gid('Reward', reward.id)], 'APPROVED', 'x'.repeat(501));
    expect(payload.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field: ['input', 'reason'] })]);
    expect(await statusOf(reward.id)).toBe('CREATED');
  });

  it('answers an empty list with no rewards and no errors', async () => {
    expect(await update([], 'APPROVED')).toEqual({ rewards: [], userErrors: [] });
  });
});

describe('updateRewardStatus: rewards that move with something else', () => {
  it('refuses a reward inside a payout: it moves with its payout', async () => {
    const world = await fx.world();
    const reward = await fx.reward(world, { status: 'APPROVED' });
    const payout = await fx.payout({ partnerId: world.partnerId, amount: reward.amount, currency: 'USD' });
    await prisma().reward.update({ where: { id: reward.id }, data: { payoutId: payout.id } });
    for (const status of ['CANCELED', 'REJECTED', 'PROCESSED'] as const) {
      const payload = await update([gid('Reward', reward.id)], status);
      expect(payload.userErrors).toEqual([
        expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'ids', '0'] }),
      ]);
      expect(payload.userErrors[0]!.message).toContain(gid('Payout', payout.id));
      expect(payload.userErrors[0]!.message).toContain(`${gid('Reward', reward.id)} is APPROVED`);
    }
    expect((await update([gid('Reward', reward.id)], 'APPROVED')).userErrors).toEqual([]);
    expect(await statusOf(reward.id)).toBe('APPROVED');
  });
});

describe('updateRewardStatus: tenancy and roles', () => {
  it('answers NOT_FOUND for another workspace’s or mode’s reward, a malformed id and another type’s id, and changes nothing', async () => {
    const otherWs = moneyFixtures(prisma(), fixture.otherTenant);
    const otherMode = moneyFixtures(prisma(), { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
    const foreign = await otherWs.reward(await otherWs.world());
    const live = await otherMode.reward(await otherMode.world());
    const ids = [
      gid('Reward', foreign.id),
      gid('Reward', live.id),
      'garbage',
      gid('Partner', w.partnerId),
      gid('Reward', 'not-a-uuid'),
    ];
    const payload = await update(ids, 'APPROVED');
    expect(payload.rewards).toEqual([]);
    expect(payload.userErrors.map((e) => [e.code, e.field])).toEqual(
      ids.map((_, i) => ['NOT_FOUND', ['input', 'ids', String(i)]]),
    );
    expect(await statusOf(foreign.id)).toBe('CREATED');
    expect(await statusOf(live.id)).toBe('CREATED');
    // The other mode's own key does reach it.
    expect((await update([gid('Reward', live.id)], 'APPROVED', undefined, fixture.liveAdmin)).userErrors).toEqual([]);
  });

  it('refuses READ_ONLY and PARTNER credentials with FORBIDDEN_FOR_ROLE and no credential with UNAUTHENTICATED', async () => {
    const reward = await fx.reward(w);
    const input = { ids: [gid('Reward', reward.id)], status: 'APPROVED' as const };
    for (const token of [
      await readOnlyKey(fixture.server, fixture.admin),
      await partnerToken(fixture.server, fixture.admin, w.partnerId),
    ]) {
      const res = await fixture.gql(UPDATE, { input }, token);
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    expect((await fixture.gql(UPDATE, { input })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await statusOf(reward.id)).toBe('CREATED');
  });
});

describe('approval job', () => {
  it('approves CREATED rewards whose hold period is over, once, as system:approval-job; not later ones, nor other statuses', async () => {
    const job = new ApprovalJob(prisma(), { intervalMs: 0 });
    await job.runOnce(); // whatever earlier tests left due
    const world = await fx.world({ holdDays: 7 });
    const due = await fx.reward(world, { approveAfter: new Date(Date.now() - 60_000), amount: 300n });
    const later = await fx.reward(world, { approveAfter: new Date(Date.now() + 86_400_000) });
    const canceled = await fx.reward(world, { status: 'CANCELED', approveAfter: new Date(Date.now() - 60_000) });
    const referred = await fx.reward(world, { recipient: 'REFERRED', approveAfter: new Date(Date.now() - 60_000) });

    expect(await job.runOnce()).toBe(2);
    expect(await statusOf(due.id)).toBe('APPROVED');
    expect(await statusOf(referred.id)).toBe('APPROVED');
    expect(await statusOf(later.id)).toBe('CREATED');
    expect(await statusOf(canceled.id)).toBe('CANCELED');
    expect((await history(due.id)).at(-1)).toMatchObject({
      fromStatus: 'CREATED',
      toStatus: 'APPROVED',
      actor: APPROVAL_JOB_ACTOR,
    });
    expect((await ledger(due.id)).map((e) => [e.type, e.amount])).toEqual([['REWARD_APPROVED', 300n]]);
    expect(await ledger(referred.id)).toEqual([]);
    const event = await prisma().event.findFirst({
      where: { ...fixture.tenant, type: 'reward.status_changed' },
      orderBy: { sequence: 'desc' },
    });
    expect(event!.payload).toMatchObject({ to: 'APPROVED', from: 'CREATED' });

    expect(await job.runOnce()).toBe(0);
    expect(await history(due.id)).toHaveLength(2);
    // The future reward is approved once its time has come.
    expect(await job.runOnce(new Date(Date.now() + 2 * 86_400_000))).toBe(1);
    expect(await statusOf(later.id)).toBe('APPROVED');
  });

  it('works through more due rewards than one batch, in every tenant', async () => {
    const job = new ApprovalJob(prisma(), { intervalMs: 0, batchSize: 7 });
    await job.runOnce();
    const live = moneyFixtures(prisma(), { workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
    const liveWorld = await live.world();
    const rewards = [
      ...(await Promise.all(Array.from({ length: 17 }, () => fx.reward(w)))),
      ...(await Promise.all(Array.from({ length: 9 }, () => live.reward(liveWorld)))),
    ];
    expect(await job.runOnce()).toBe(26);
    for (const reward of rewards) expect(await statusOf(reward.id)).toBe('APPROVED');
  });

  it('runs on its own every APPROVAL_JOB_INTERVAL_MS inside the app and stops with it', async () => {
    const app = await startTestServer({ APPROVAL_JOB_INTERVAL_MS: '20' });
    try {
      const created = await app.workspace('Job');
      const f = moneyFixtures(app.testDb.db.prisma, { workspaceId: created.workspace.id, mode: 'TEST' });
      const reward = await f.reward(await f.world());
      expect(app.app.approvalJob.isRunning).toBe(true);
      // A run that started before the reward existed may miss it; the one after cannot.
      await app.app.approvalJob.nextRun();
      await app.app.approvalJob.nextRun();
      expect((await app.testDb.db.prisma.reward.findUniqueOrThrow({ where: { id: reward.id } })).status).toBe(
        'APPROVED',
      );
    } finally {
      await app.close();
    }
    expect(app.app.approvalJob.isRunning).toBe(false);
  });

  it('does not run on its own with APPROVAL_JOB_INTERVAL_MS=0', () => {
    expect(fixture.server.app.approvalJob.isRunning).toBe(false);
  });
});
