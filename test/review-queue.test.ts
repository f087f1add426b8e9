import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalJob } from '../src/modules/reward/approval-job.js';
import { BAN_REASON, MAX_RESOLVE_IDS } from '../src/modules/review/review.service.js';
import { graphql } from './gql/index.js';
import type { RecordConversionInput } from './gql/graphql.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// The review queue (src/modules/review/README.md): items opened by the fraud rules or by hand,
// decided all or none, the approval job kept away from held rewards, a ban closing the queue of
// the partner, and who may see what.

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.testDb.db.prisma;
const DAY = 86_400_000;

const RECORD = graphql(`
  mutation RQ_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { id status reviewItem { id } }
      rewards { id status }
      userErrors { code message field }
    }
  }
`);

const QUEUE = graphql(`
  query RQ_Queue($programId: ID, $status: ReviewStatus, $first: Int, $after: String) {
    reviewQueue(programId: $programId, status: $status, first: $first, after: $after) {
      totalCount
      edges {
        cursor
        node {
          id
          status
          reason
          decidedAt
          createdAt
          signals { type detail }
          program { id }
          partner { id }
          conversion { id }
          referral { id }
          rewards { id status }
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const RESOLVE = graphql(`
  mutation RQ_Resolve($input: ResolveReviewItemsInput!) {
    resolveReviewItems(input: $input) {
      items { id status reason decidedAt rewards { id status approveAfter } }
      userErrors { code message field }
    }
  }
`);

const FLAG = graphql(`
  mutation RQ_Flag($input: FlagConversionInput!) {
    flagConversion(input: $input) {
      item { id status signals { type detail } rewards { id status } conversion { id signals { type detail } } }
      userErrors { code message field }
    }
  }
`);

const UPDATE_REWARD = graphql(`
  mutation RQ_UpdateReward($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) { rewards { id status } userErrors { code message field } }
  }
`);

const SET_STATUS = graphql(`
  mutation RQ_SetPartnerStatus($input: SetPartnerStatusInput!) {
    setPartnerStatus(input: $input) { partner { id status } userErrors { code message } }
  }
`);

const NODE = graphql(`
  query RQ_Node($id: ID!) {
    node(id: $id) { id ... on ReviewItem { status } }
  }
`);

const CONVERSION = graphql(`
  query RQ_Conversion($id: ID!) {
    node(id: $id) { id ... on Conversion { signals { type } reviewItem { id } } }
  }
`);

let n = 0;
const unique = (prefix: string) => `${prefix}-${Date.now()}-${++n}`;

/**
 * A workspace with a program (hold 3 days, SIGNUP reward 5.00), a partner on acme.test with a
 * link: `flagged()` records a conversion that trips the email-domain rule, `clean()` one that does not.
 */
async function scenario(options: { holdDays?: number; mode?: 'TEST' | 'LIVE' } = {}) {
  const ws = await server.workspace();
  const mode = options.mode ?? 'TEST';
  const tenant: Tenant = { workspaceId: ws.workspace.id, mode };
  const key = mode === 'TEST' ? ws.keys.test.secret : ws.keys.live.secret;
  const f = factories(prisma(), tenant);
  const program = await f.program({ currency: 'USD', holdDays: options.holdDays ?? 3 });
  const partner = await f.partner({ email: 'owner@acme.test' });
  const enrollment = await f.enrollment({ programId: program.id, partnerId: partner.id });
  const link = await f.link(enrollment);
  await f.rule(program.id, { trigger: 'SIGNUP', fixedAmount: 500n });
  const record = async (input: Partial<RecordConversionInput>) => {
    const res = await server.gql(
      RECORD,
      {
        input: {
          type: 'SIGNUP',
          idempotencyKey: unique('key'),
          referredExternalId: unique('friend'),
          code: link.code,
          ...input,
        },
      },
      key,
    );
    expect(res.data!.recordConversion.userErrors).toEqual([]);
    return res.data!.recordConversion;
  };
  const flagged = async () => {
    const res = await record({ referredEmail: `${unique('colleague')}@acme.test` });
    expect(res.conversion!.reviewItem).not.toBeNull();
    return { conversionId: res.conversion!.id, itemId: res.conversion!.reviewItem!.id, rewardId: res.rewards[0]!.id };
  };
  const clean = async () => {
    const res = await record({ referredEmail: `${unique('friend')}@example.org` });
    return { conversionId: res.conversion!.id, rewardId: res.rewards[0]!.id };
  };
  const resolve = async (ids: string[], decision: 'APPROVE' | 'REJECT', reason?: string, token = key) => {
    const res = await server.gql(RESOLVE, { input: { ids, decision, reason } }, token);
    expect(res.errors).toBeUndefined();
    return res.data!.resolveReviewItems;
  };
  const events = () => prisma().event.findMany({ where: tenant, orderBy: { sequence: 'asc' } });
  return { ws, tenant, key, f, program, partner, link, record, flagged, clean, resolve, events };
}

const rowId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
const reward = (globalId: string) => prisma().reward.findUniqueOrThrow({ where: { id: rowId(globalId) } });
const item = (globalId: string) => prisma().reviewItem.findUniqueOrThrow({ where: { id: rowId(globalId) } });

describe('reviewQueue', () => {
  it('pages OPEN items oldest first (per program, or decided ones), with their conversion, partner and rewards', async () => {
    const s = await scenario();
    const a = await s.flagged();
    const b = await s.flagged();
    const c = await s.flagged();
    await s.clean();
    const other = await s.f.program({ currency: 'USD' });

    const page1 = (await server.gql(QUEUE, { first: 2 }, s.key)).data!.reviewQueue;
    expect(page1.totalCount).toBe(3);
    expect(page1.edges.map((e) => e.node.id)).toEqual([a.itemId, b.itemId]);
    expect(page1.edges[0]!.node).toMatchObject({
      status: 'OPEN',
      reason: null,
      decidedAt: null,
      signals: [{ type: 'SELF_REFERRAL_EMAIL_DOMAIN' }],
      program: { id: gid('Program', s.program.id) },
      partner: { id: gid('Partner', s.partner.id) },
      conversion: { id: a.conversionId },
      referral: { id: expect.any(String) },
      rewards: [{ id: a.rewardId, status: 'CREATED' }],
    });
    const page2 = (await server.gql(QUEUE, { first: 2, after: page1.pageInfo.endCursor }, s.key)).data!.reviewQueue;
    expect(page2.edges.map((e) => e.node.id)).toEqual([c.itemId]);
    expect(page2.pageInfo.hasNextPage).toBe(false);

    const byProgram = await server.gql(QUEUE, { programId: gid('Program', other.id) }, s.key);
    expect(byProgram.data!.reviewQueue).toMatchObject({ totalCount: 0, edges: [] });
    const bad = await server.gql(QUEUE, { programId: 'not-an-id', after: 'garbage' }, s.key);
    expect(bad.data?.reviewQueue.edges ?? []).toEqual([]);

    await s.resolve([b.itemId], 'APPROVE');
    expect((await server.gql(QUEUE, {}, s.key)).data!.reviewQueue.edges.map((e) => e.node.id)).toEqual([
      a.itemId,
      c.itemId,
    ]);
    const approved = (await server.gql(QUEUE, { status: 'APPROVED' }, s.key)).data!.reviewQueue;
    expect(approved.edges.map((e) => e.node.id)).toEqual([b.itemId]);
  });
});

describe('resolveReviewItems', () => {
  it('APPROVE releases the rewards into the lifecycle, the hold period counted from the decision; the job then approves them', async () => {
    const s = await scenario({ holdDays: 3 });
    const a = await s.flagged();
    const before = Date.now();
    const res = await s.resolve([a.itemId], 'APPROVE', '  checked the customer  ');
    expect(res.userErrors).toEqual([]);
    expect(res.items).toMatchObject([{ id: a.itemId, status: 'APPROVED', reason: 'checked the customer' }]);
    const row = await reward(a.rewardId);
    expect(row).toMatchObject({ status: 'CREATED', held: false });
    expect(row.approveAfter.getTime()).toBeGreaterThanOrEqual(before + 3 * DAY - 1000);
    expect(row.approveAfter.getTime()).toBeLessThanOrEqual(Date.now() + 3 * DAY);

    const job = new ApprovalJob(prisma(), { intervalMs: 0 });
    await job.runOnce(new Date(before + 2 * DAY));
    expect((await reward(a.rewardId)).status).toBe('CREATED');
    await job.runOnce(new Date(Date.now() + 3 * DAY + 1000));
    expect((await reward(a.rewardId)).status).toBe('APPROVED');

    const resolved = (await s.events()).find((e) => e.type === 'review.resolved')!;
    expect(resolved).toMatchObject({ programId: s.program.id, partnerId: null });
    expect(resolved.payload).toMatchObject({
      reviewItemId: a.itemId,
      conversionId: a.conversionId,
      status: 'APPROVED',
      reason: 'checked the customer',
      rewardIds: [a.rewardId],
    });
  });

  it('REJECT rejects the rewards with the reason (history, events); a reason is required', async () => {
    const s = await scenario();
    const a = await s.flagged();
    const refused = await s.resolve([a.itemId], 'REJECT');
    expect(refused.userErrors.map((e) => [e.code, e.field])).toEqual([['VALIDATION', ['input', 'reason']]]);
    const res = await s.resolve([a.itemId], 'REJECT', 'same person');
    expect(res.items).toMatchObject([
      { status: 'REJECTED', reason: 'same person', rewards: [{ id: a.rewardId, status: 'REJECTED' }] },
    ]);
    expect(await reward(a.rewardId)).toMatchObject({ status: 'REJECTED', held: false });
    const history = await prisma().rewardStatusChange.findMany({
      where: { rewardId: rowId(a.rewardId) },
      orderBy: { id: 'asc' },
    });
    expect(history.at(-1)).toMatchObject({ fromStatus: 'CREATED', toStatus: 'REJECTED', reason: 'same person' });
    const types = (await s.events()).map((e) => e.type);
    expect(types.slice(-2)).toEqual(['reward.status_changed', 'review.resolved']);
  });

  it('all or none: an unknown, malformed or decided-the-other-way id refuses the call; nothing changes, no event; a retry of the same decision is no error', async () => {
    const s = await scenario();
    const a = await s.flagged();
    const b = await s.flagged();
    const c = await s.flagged();
    await s.resolve([c.itemId], 'REJECT', 'no');
    const events = (await s.events()).length;
    const res = await s.resolve(
      [a.itemId, c.itemId, 'nope', gid('ReviewItem', '00000000-0000-7000-8000-000000000000'), b.itemId],
      'APPROVE',
    );
    expect(res.items).toEqual([]);
    expect(res.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['INVALID_TRANSITION', ['input', 'ids', '1']],
      ['NOT_FOUND', ['input', 'ids', '2']],
      ['NOT_FOUND', ['input', 'ids', '3']],
    ]);
    expect(res.userErrors[0]!.message).toContain(`${c.itemId} was REJECTED`);
    expect((await item(a.itemId)).status).toBe('OPEN');
    expect((await item(b.itemId)).status).toBe('OPEN');
    expect(await reward(a.rewardId)).toMatchObject({ status: 'CREATED', held: true });
    expect((await s.events()).length).toBe(events);

    // The same decision again: no error, nothing new.
    const again = await s.resolve([c.itemId, c.itemId], 'REJECT', 'still no');
    expect(again).toMatchObject({ userErrors: [], items: [{ id: c.itemId, status: 'REJECTED', reason: 'no' }] });
    expect((await s.events()).length).toBe(events);
  });

  it('limits: more than 100 ids, a reason over 500 characters', async () => {
    const s = await scenario();
    const a = await s.flagged();
    const many = await s.resolve(
      Array.from({ length: MAX_RESOLVE_IDS + 1 }, () => a.itemId),
      'APPROVE',
    );
    expect(many.userErrors[0]!.code).toBe('LIMIT_EXCEEDED');
    const long = await s.resolve([a.itemId], 'REJECT', 'x'.repeat(501));
    expect(long.userErrors[0]).toMatchObject({ code: 'VALIDATION', field: ['input', 'reason'] });
    expect((await item(a.itemId)).status).toBe('OPEN');
  });

  it('concurrent overlapping resolves (real concurrent requests): one wins whole, the other changes nothing; no reward both approved and rejected', async () => {
    const s = await scenario({ holdDays: 0 });
    for (let round = 0; round < 4; round++) {
      const [a, b, c] = [await s.flagged(), await s.flagged(), await s.flagged()];
      const [approve, reject] = await Promise.all([
        s.resolve([a.itemId, b.itemId], 'APPROVE', 'fine'),
        s.resolve([b.itemId, c.itemId], 'REJECT', 'fraud'),
      ]);
      const approveWon = approve.userErrors.length === 0;
      const rejectWon = reject.userErrors.length === 0;
      expect(approveWon !== rejectWon).toBe(true);
      const statuses = await Promise.all([a, b, c].map((x) => item(x.itemId).then((i) => i.status)));
      const rewards = await Promise.all([a, b, c].map((x) => reward(x.rewardId)));
      if (approveWon) {
        expect(statuses).toEqual(['APPROVED', 'APPROVED', 'OPEN']);
        expect(reject.userErrors).toEqual([
          expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'ids', '0'] }),
        ]);
        expect(rewards.map((r) => [r.status, r.held])).toEqual([
          ['CREATED', false],
          ['CREATED', false],
          ['CREATED', true],
        ]);
      } else {
        expect(statuses).toEqual(['OPEN', 'REJECTED', 'REJECTED']);
        expect(approve.userErrors).toEqual([
          expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'ids', '1'] }),
        ]);
        expect(rewards.map((r) => [r.status, r.held])).toEqual([
          ['CREATED', true],
          ['REJECTED', false],
          ['REJECTED', false],
        ]);
      }
      // One history row per reward and status: never approved and rejected.
      const history = await prisma().rewardStatusChange.findMany({
        where: { rewardId: { in: rewards.map((r) => r.id) } },
      });
      expect(history.filter((h) => h.toStatus === 'REJECTED').length).toBe(approveWon ? 0 : 2);
      expect(history.filter((h) => h.toStatus === 'APPROVED')).toEqual([]);
    }
  });
});

describe('held rewards', () => {
  it('updateRewardStatus refuses a held reward (it moves with its item); a released one moves as usual', async () => {
    const s = await scenario();
    const a = await s.flagged();
    const refused = await server.gql(UPDATE_REWARD, { input: { ids: [a.rewardId], status: 'APPROVED' } }, s.key);
    expect(refused.data!.updateRewardStatus.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'ids', '0'] }),
    ]);
    expect(refused.data!.updateRewardStatus.userErrors[0]!.message).toContain(a.itemId);
    await s.resolve([a.itemId], 'APPROVE');
    const moved = await server.gql(UPDATE_REWARD, { input: { ids: [a.rewardId], status: 'APPROVED' } }, s.key);
    expect(moved.data!.updateRewardStatus.userErrors).toEqual([]);
  });
});

describe('flagConversion', () => {
  it('opens an item by hand (MANUAL with its detail) holding the CREATED rewards; appends review.opened', async () => {
    const s = await scenario();
    const x = await s.clean();
    const res = await server.gql(
      FLAG,
      { input: { conversionId: x.conversionId, detail: '  same card as the partner ' } },
      s.key,
    );
    const flagged = res.data!.flagConversion;
    expect(flagged.userErrors).toEqual([]);
    expect(flagged.item).toMatchObject({
      status: 'OPEN',
      signals: [{ type: 'MANUAL', detail: 'same card as the partner' }],
      rewards: [{ id: x.rewardId, status: 'CREATED' }],
      conversion: { id: x.conversionId, signals: [{ type: 'MANUAL', detail: 'same card as the partner' }] },
    });
    expect(await reward(x.rewardId)).toMatchObject({ held: true });
    const last = (await s.events()).at(-1)!;
    expect(last).toMatchObject({ type: 'review.opened', partnerId: null });
    expect(last.payload).toMatchObject({ reviewItemId: flagged.item!.id, signals: [{ type: 'MANUAL' }] });
  });

  it('refuses: a second flag (DUPLICATE), a discarded conversion, an unknown one, a blank detail; nothing appended', async () => {
    const s = await scenario();
    const a = await s.flagged();
    const discarded = (await s.record({ code: 'no-such-code' })).conversion!.id;
    const events = (await s.events()).length;
    const flag = async (conversionId: string, detail = 'looks odd') =>
      (await server.gql(FLAG, { input: { conversionId, detail } }, s.key)).data!.flagConversion;
    const dup = await flag(a.conversionId);
    expect(dup).toMatchObject({ item: null, userErrors: [{ code: 'DUPLICATE', field: ['input', 'conversionId'] }] });
    expect(dup.userErrors[0]!.message).toContain(a.itemId);
    expect((await flag(discarded)).userErrors[0]!.code).toBe('INVALID_TRANSITION');
    expect((await flag('nope')).userErrors[0]!.code).toBe('NOT_FOUND');
    expect((await flag(a.conversionId, '   ')).userErrors[0]).toMatchObject({
      code: 'VALIDATION',
      field: ['input', 'detail'],
    });
    expect((await s.events()).length).toBe(events);
  });
});

describe('banning a partner', () => {
  it('rejects their CREATED rewards and closes their OPEN items REJECTED with the reason, in one change; APPROVED rewards stay', async () => {
    const s = await scenario({ holdDays: 0 });
    const held = await s.flagged();
    const created = await s.clean();
    const approved = await s.clean();
    const decided = await s.flagged();
    await s.resolve([decided.itemId], 'APPROVE');
    await server.gql(UPDATE_REWARD, { input: { ids: [approved.rewardId], status: 'APPROVED' } }, s.key);
    const before = (await s.events()).length;

    const res = await server.gql(
      SET_STATUS,
      { input: { partnerId: gid('Partner', s.partner.id), status: 'BANNED' } },
      s.key,
    );
    expect(res.data!.setPartnerStatus).toMatchObject({ partner: { status: 'BANNED' }, userErrors: [] });
    expect(await reward(held.rewardId)).toMatchObject({ status: 'REJECTED', held: false });
    expect((await reward(created.rewardId)).status).toBe('REJECTED');
    expect((await reward(decided.rewardId)).status).toBe('REJECTED'); // released but still CREATED
    expect((await reward(approved.rewardId)).status).toBe('APPROVED');
    expect(await item(held.itemId)).toMatchObject({ status: 'REJECTED', reason: BAN_REASON, actor: s.ws.keys.test.id });
    expect((await item(decided.itemId)).status).toBe('APPROVED');
    const history = await prisma().rewardStatusChange.findFirst({
      where: { rewardId: rowId(created.rewardId), toStatus: 'REJECTED' },
    });
    expect(history).toMatchObject({ reason: BAN_REASON });
    const types = (await s.events()).slice(before).map((e) => e.type);
    expect(types).toEqual([
      'partner.status_changed',
      'reward.status_changed',
      'reward.status_changed',
      'reward.status_changed',
      'review.resolved',
    ]);
    // Banning again changes nothing; reinstating does not bring anything back.
    await server.gql(SET_STATUS, { input: { partnerId: gid('Partner', s.partner.id), status: 'BANNED' } }, s.key);
    await server.gql(SET_STATUS, { input: { partnerId: gid('Partner', s.partner.id), status: 'ACTIVE' } }, s.key);
    expect((await reward(created.rewardId)).status).toBe('REJECTED');
  });
});

describe('isolation', () => {
  it('a PARTNER token sees neither the queue nor signals, items or review events; READ_ONLY reads but cannot decide', async () => {
    const s = await scenario();
    const a = await s.flagged();
    const token = await partnerToken(server, s.key, s.partner.id);
    const queue = await server.gql(QUEUE, {}, token);
    expect(queue.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect((await server.gql(NODE, { id: a.itemId }, token)).data!.node).toBeNull();
    const conversion = (await server.gql(CONVERSION, { id: a.conversionId }, token)).data!.node;
    expect(conversion).toEqual({ id: a.conversionId, signals: [], reviewItem: null });
    for (const res of [
      await server.gql(RESOLVE, { input: { ids: [a.itemId], decision: 'APPROVE' } }, token),
      await server.gql(FLAG, { input: { conversionId: a.conversionId, detail: 'x' } }, token),
    ]) {
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    const events = await server.gql<{ events: { edges: Array<{ node: { type: string } }> } }>(
      'query RQ_PartnerEvents { events(first: 100) { edges { node { type } } } }',
      {},
      token,
    );
    const seen = events.data!.events.edges.map((e) => e.node.type);
    expect(seen).toContain('reward.created');
    expect(seen.filter((t) => t.startsWith('review.'))).toEqual([]);

    const reader = await readOnlyKey(server, s.key);
    expect((await server.gql(QUEUE, {}, reader)).data!.reviewQueue.totalCount).toBe(1);
    expect((await server.gql(CONVERSION, { id: a.conversionId }, reader)).data!.node).toMatchObject({
      signals: [{ type: 'SELF_REFERRAL_EMAIL_DOMAIN' }],
      reviewItem: { id: a.itemId },
    });
    const refused = await server.gql(RESOLVE, { input: { ids: [a.itemId], decision: 'APPROVE' } }, reader);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect((await item(a.itemId)).status).toBe('OPEN');
  });

  it('another workspace or mode sees nothing, and cannot decide or flag', async () => {
    const s = await scenario();
    const a = await s.flagged();
    const other = await scenario();
    const live = s.ws.keys.live.secret;
    for (const key of [other.key, live]) {
      expect((await server.gql(QUEUE, {}, key)).data!.reviewQueue).toMatchObject({ totalCount: 0, edges: [] });
      expect((await server.gql(NODE, { id: a.itemId }, key)).data!.node).toBeNull();
      const res = await server.gql(RESOLVE, { input: { ids: [a.itemId], decision: 'REJECT', reason: 'x' } }, key);
      expect(res.data!.resolveReviewItems.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
      const flag = await server.gql(FLAG, { input: { conversionId: a.conversionId, detail: 'x' } }, key);
      expect(flag.data!.flagConversion.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    }
    expect((await item(a.itemId)).status).toBe('OPEN');
  });
});
