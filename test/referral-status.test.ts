import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReferralStatus } from '../src/generated/prisma/enums.js';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { graphql } from './gql/index.js';
import type { RecordConversionInput } from './gql/graphql.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// setReferralStatus: an admin rejects a referral or reinstates a rejected one, with a reason and a
// `referral.status_changed` event; conversions after the change follow it, none before it is
// rewarded after the fact. Concurrency with real concurrent requests: on PostgreSQL they run in
// parallel transactions on the locked referral row; on PGlite they serialize.

let server: TestServer;
let ws: CreatedWorkspace;
let admin: string;
let tenant: Tenant;
let f: ReturnType<typeof factories>;

beforeAll(async () => {
  server = await startTestServer();
  ws = await server.workspace('Referral status');
  admin = ws.keys.test.secret;
  tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
  f = factories(server.testDb.db.prisma, tenant);
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.testDb.db.prisma;

const SET = graphql(`
  mutation RS_Set($input: SetReferralStatusInput!) {
    setReferralStatus(input: $input) {
      referral { id status convertedAt partner { id } }
      userErrors { code message field }
    }
  }
`);

const RECORD = graphql(`
  mutation RS_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { id status discardReason referral { id status } }
      rewards { id amount { amount currency } }
      userErrors { code message field }
    }
  }
`);

const REFERRAL_EVENTS = graphql(`
  query RS_Events {
    events(first: 100, types: ["referral.status_changed"]) {
      edges { node {
        type sequence payload
        subject { __typename id }
        data { __typename ... on ReferralEventData { referral { id status } from to reason } }
      } }
    }
  }
`);

async function setStatus(referralId: string, status: ReferralStatus, reason?: string | null, token = admin) {
  const res = await server.gql(SET, { input: { referralId, status, reason } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.setReferralStatus;
}

async function record(input: Partial<RecordConversionInput> & { referredExternalId: string }, token = admin) {
  const res = await server.gql(
    RECORD,
    {
      input: {
        type: 'PURCHASE',
        idempotencyKey: `k-${Math.random()}`,
        amount: { amount: '100.00', currency: 'USD' },
        ...input,
      },
    },
    token,
  );
  expect(res.errors).toBeUndefined();
  expect(res.data!.recordConversion.userErrors).toEqual([]);
  return res.data!.recordConversion;
}

/** A program with a 10.00 USD rule on purchases, an enrolled partner with a link. */
async function world(program: { allowSelfReferral?: boolean } = {}) {
  const p = await f.program(program);
  await f.rule(p.id, { fixedAmount: 1000n });
  const partner = await f.partner({ email: 'pat@example.com' });
  const link = await f.link(await f.enrollment({ programId: p.id, partnerId: partner.id }));
  return { program: p, partner, link };
}

/** A referral row as attribution would have left it. */
async function referral(
  w: Awaited<ReturnType<typeof world>>,
  status: ReferralStatus,
  data: { convertedAt?: Date | null; externalId?: string } = {},
) {
  const [row] = await f.referrals([
    { programId: w.program.id, partnerId: w.partner.id, linkId: w.link.id, status, ...data },
  ]);
  return row!;
}

/** The workspace's referral.status_changed events for one referral, oldest first. */
async function eventsOf(referralId: string) {
  return prisma().event.findMany({
    where: {
      ...tenant,
      type: 'referral.status_changed',
      payload: { path: ['referralId'], equals: gid('Referral', referralId) },
    },
    orderBy: { sequence: 'asc' },
  });
}

const statusOf = async (id: string) => (await prisma().referral.findUniqueOrThrow({ where: { id } })).status;
const eventCount = () => prisma().event.count({ where: { workspaceId: ws.workspace.id } });

describe('setReferralStatus: reinstating and rejecting', () => {
  it('reinstates a self-referral once the program allows it: the next conversion earns, the discarded one stays discarded', async () => {
    const w = await world();
    const first = await record({ referredExternalId: w.partner.externalId, code: w.link.code });
    expect(first.conversion).toMatchObject({ status: 'DISCARDED', discardReason: 'SELF_REFERRAL' });
    const referralId = first.conversion!.referral!.id;
    expect(first.conversion!.referral!.status).toBe('REJECTED');

    await prisma().program.update({ where: { id: w.program.id }, data: { allowSelfReferral: true } });
    const blocked = await record({ referredExternalId: w.partner.externalId });
    expect(blocked.conversion).toMatchObject({ status: 'DISCARDED', discardReason: 'REFERRAL_REJECTED' });

    const payload = await setStatus(referralId, 'PENDING', '  Self-referrals are allowed now.  ');
    expect(payload.userErrors).toEqual([]);
    expect(payload.referral).toMatchObject({ id: referralId, status: 'PENDING', convertedAt: null });

    const next = await record({ referredExternalId: w.partner.externalId });
    expect(next.conversion).toMatchObject({ status: 'ACCEPTED', discardReason: null });
    expect(next.conversion!.referral).toEqual({ id: referralId, status: 'CONVERTED' });
    expect(next.rewards.map((r) => r.amount.amount)).toEqual(['10.00']);
    // No reward for what was discarded before the reinstatement.
    expect(
      await prisma().conversion.findMany({
        where: { ...tenant, programId: w.program.id },
        orderBy: { id: 'asc' },
        select: { status: true, discardReason: true, _count: { select: { rewards: true } } },
      }),
    ).toEqual([
      { status: 'DISCARDED', discardReason: 'SELF_REFERRAL', _count: { rewards: 0 } },
      { status: 'DISCARDED', discardReason: 'REFERRAL_REJECTED', _count: { rewards: 0 } },
      { status: 'ACCEPTED', discardReason: null, _count: { rewards: 1 } },
    ]);

    // The admin's change (trimmed reason), then the payment's.
    const events = await eventsOf(rowId(referralId));
    expect(events.map((e) => e.payload)).toEqual([
      {
        referralId,
        programId: gid('Program', w.program.id),
        partnerId: gid('Partner', w.partner.id),
        from: 'REJECTED',
        to: 'PENDING',
        reason: 'Self-referrals are allowed now.',
      },
      expect.objectContaining({ referralId, from: 'PENDING', to: 'CONVERTED', reason: null }),
    ]);
    expect(events.map((e) => [e.programId, e.partnerId])).toEqual([
      [w.program.id, w.partner.id],
      [w.program.id, w.partner.id],
    ]);
  });

  it('a reinstated self-referral in a program that still forbids them is rejected again by its next conversion', async () => {
    const w = await world();
    const first = await record({ referredExternalId: w.partner.externalId, code: w.link.code });
    const referralId = first.conversion!.referral!.id;
    expect((await setStatus(referralId, 'PENDING', 'Looked fine')).referral?.status).toBe('PENDING');
    const next = await record({ referredExternalId: w.partner.externalId });
    expect(next.conversion).toMatchObject({ status: 'DISCARDED', discardReason: 'SELF_REFERRAL' });
    expect(next.rewards).toEqual([]);
    expect(await statusOf(rowId(referralId))).toBe('REJECTED');
    expect((await eventsOf(rowId(referralId))).map((e) => [e.payload])).toEqual([
      [expect.objectContaining({ from: 'REJECTED', to: 'PENDING', reason: 'Looked fine' })],
      [expect.objectContaining({ from: 'PENDING', to: 'REJECTED', reason: null })],
    ]);
  });

  it('rejects PENDING and CONVERTED referrals: their later conversions are DISCARDED with REFERRAL_REJECTED, earlier rewards stay', async () => {
    const w = await world();
    const pending = await referral(w, 'PENDING');
    const converted = await record({ referredExternalId: 'buyer-1', code: w.link.code });
    expect(converted.conversion!.referral!.status).toBe('CONVERTED');
    const convertedId = converted.conversion!.referral!.id;

    for (const [id, from] of [
      [gid('Referral', pending.id), 'PENDING'],
      [convertedId, 'CONVERTED'],
    ] as const) {
      const payload = await setStatus(id, 'REJECTED', 'Fraud: same card as the partner');
      expect(payload).toMatchObject({ referral: { id, status: 'REJECTED' }, userErrors: [] });
      expect((await eventsOf(rowId(id))).at(-1)!.payload).toMatchObject({
        from,
        to: 'REJECTED',
        reason: 'Fraud: same card as the partner',
      });
    }
    for (const person of [pending.externalId, 'buyer-1']) {
      const later = await record({ referredExternalId: person, programId: gid('Program', w.program.id) });
      expect(later.conversion).toMatchObject({ status: 'DISCARDED', discardReason: 'REFERRAL_REJECTED' });
      expect(later.rewards).toEqual([]);
    }
    // The reward of the payment before the rejection is left as it was (updateRewardStatus decides it).
    const [reward] = await prisma().reward.findMany({ where: { conversionId: rowId(converted.conversion!.id) } });
    expect(reward?.status).toBe('CREATED');
  });

  it('reinstates a referral that had paid as CONVERTED; asking PENDING of it, or CONVERTED of one that never paid, is INVALID_TRANSITION', async () => {
    const w = await world();
    const paid = await referral(w, 'REJECTED', { convertedAt: new Date('2026-01-02T03:04:05.000Z') });
    const unpaid = await referral(w, 'REJECTED');
    const before = await eventCount();

    const wrongPaid = await setStatus(gid('Referral', paid.id), 'PENDING');
    expect(wrongPaid.referral).toBeNull();
    expect(wrongPaid.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        field: ['input', 'status'],
        message: `Referral ${gid('Referral', paid.id)} is REJECTED and cannot become PENDING: it paid before it was rejected (first payment at 2026-01-02T03:04:05.000Z), so it is reinstated as CONVERTED; ask for CONVERTED.`,
      },
    ]);
    const wrongUnpaid = await setStatus(gid('Referral', unpaid.id), 'CONVERTED');
    expect(wrongUnpaid.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        field: ['input', 'status'],
        message: `Referral ${gid('Referral', unpaid.id)} is REJECTED and cannot become CONVERTED: it has never paid (its first payment makes a referral CONVERTED), so it is reinstated as PENDING; ask for PENDING.`,
      },
    ]);
    expect(await eventCount()).toBe(before);
    expect([await statusOf(paid.id), await statusOf(unpaid.id)]).toEqual(['REJECTED', 'REJECTED']);

    const ok = await setStatus(gid('Referral', paid.id), 'CONVERTED', 'Chargeback was a bank error');
    expect(ok).toMatchObject({
      referral: { status: 'CONVERTED', convertedAt: '2026-01-02T03:04:05.000Z' },
      userErrors: [],
    });
    const next = await record({ referredExternalId: paid.externalId, programId: gid('Program', w.program.id) });
    expect(next.conversion!.status).toBe('ACCEPTED');
    expect(next.rewards).toHaveLength(1);
  });

  it('refuses PENDING → CONVERTED and CONVERTED → PENDING (payments decide those) naming both statuses; nothing changes, no event', async () => {
    const w = await world();
    const pending = await referral(w, 'PENDING');
    const converted = await referral(w, 'CONVERTED', { convertedAt: new Date() });
    const before = await eventCount();
    const a = await setStatus(gid('Referral', pending.id), 'CONVERTED', 'paid offline');
    expect(a.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        field: ['input', 'status'],
        message: `Referral ${gid('Referral', pending.id)} is PENDING and cannot become CONVERTED: only its first payment (recordConversion) converts a referral; an admin can only reject it (REJECTED).`,
      },
    ]);
    const b = await setStatus(gid('Referral', converted.id), 'PENDING');
    expect(b.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        field: ['input', 'status'],
        message: `Referral ${gid('Referral', converted.id)} is CONVERTED and cannot become PENDING: a referral that paid stays CONVERTED; an admin can only reject it (REJECTED).`,
      },
    ]);
    expect([await statusOf(pending.id), await statusOf(converted.id)]).toEqual(['PENDING', 'CONVERTED']);
    expect(await eventCount()).toBe(before);
  });

  it('asking the status a referral already has changes nothing and appends nothing', async () => {
    const w = await world();
    const before = await eventCount();
    for (const status of ['PENDING', 'CONVERTED', 'REJECTED'] as const) {
      const row = await referral(w, status);
      const payload = await setStatus(gid('Referral', row.id), status, 'again');
      expect(payload).toMatchObject({ referral: { id: gid('Referral', row.id), status }, userErrors: [] });
    }
    expect(await eventCount()).toBe(before);
  });

  it('takes an optional reason of at most 500 characters after trimming (VALIDATION otherwise); a blank one is none', async () => {
    const w = await world();
    const row = await referral(w, 'PENDING');
    const before = await eventCount();
    const long = await setStatus(gid('Referral', row.id), 'REJECTED', `  ${'x'.repeat(501)}  `);
    expect(long.userErrors).toEqual([
      {
        code: 'VALIDATION',
        field: ['input', 'reason'],
        message: 'A reason must be at most 500 characters long (after trimming); got 501.',
      },
    ]);
    expect(await statusOf(row.id)).toBe('PENDING');
    expect(await eventCount()).toBe(before);

    expect((await setStatus(gid('Referral', row.id), 'REJECTED', `  ${'x'.repeat(500)}  `)).userErrors).toEqual([]);
    expect((await eventsOf(row.id)).at(-1)!.payload).toMatchObject({ reason: 'x'.repeat(500) });
    expect((await setStatus(gid('Referral', row.id), 'PENDING', '   ')).userErrors).toEqual([]);
    expect((await eventsOf(row.id)).at(-1)!.payload).toMatchObject({ from: 'REJECTED', to: 'PENDING', reason: null });
  });

  it('shows the change as Event.data (ReferralEventData with from, to, reason) and its subject, to the admin and to the partner', async () => {
    const w = await world();
    const row = await referral(w, 'PENDING');
    await setStatus(gid('Referral', row.id), 'REJECTED', 'duplicate account');
    const partner = await partnerToken(server, admin, w.partner.id);
    const other = await partnerToken(server, admin, (await f.partner()).id);
    for (const [token, visible] of [
      [admin, true],
      [partner, true],
      [other, false],
    ] as const) {
      const res = await server.gql(REFERRAL_EVENTS, {}, token);
      expect(res.errors).toBeUndefined();
      const mine = res.data!.events.edges.filter(
        (e) => (JSON.parse(e.node.payload) as { referralId: string }).referralId === gid('Referral', row.id),
      );
      if (!visible) {
        expect(mine).toEqual([]);
        continue;
      }
      expect(mine.map((e) => e.node)).toEqual([
        expect.objectContaining({
          type: 'referral.status_changed',
          subject: { __typename: 'Referral', id: gid('Referral', row.id) },
          data: {
            __typename: 'ReferralEventData',
            referral: { id: gid('Referral', row.id), status: 'REJECTED' },
            from: 'PENDING',
            to: 'REJECTED',
            reason: 'duplicate account',
          },
        }),
      ]);
    }
  });
});

describe('setReferralStatus: tenancy and roles', () => {
  it('answers NOT_FOUND for another workspace’s or mode’s referral, a malformed id and another type’s id, and changes nothing', async () => {
    const otherWs = await server.workspace('Referral status, other');
    const foreign = factories(prisma(), { workspaceId: otherWs.workspace.id, mode: 'TEST' });
    const live = factories(prisma(), { workspaceId: ws.workspace.id, mode: 'LIVE' });
    const refIn = async (fx: typeof f) => {
      const program = await fx.program();
      const partner = await fx.partner();
      await fx.enrollment({ programId: program.id, partnerId: partner.id });
      const [row] = await fx.referrals([{ programId: program.id, partnerId: partner.id, status: 'PENDING' }]);
      return row!;
    };
    const a = await refIn(foreign);
    const b = await refIn(live);
    const events = await prisma().event.count();
    for (const id of [
      gid('Referral', a.id),
      gid('Referral', b.id),
      'garbage',
      gid('Partner', b.partnerId),
      gid('Referral', 'nope'),
    ]) {
      const payload = await setStatus(id, 'REJECTED', 'not mine');
      expect(payload).toEqual({
        referral: null,
        userErrors: [
          { code: 'NOT_FOUND', field: ['input', 'referralId'], message: `Referral ${JSON.stringify(id)} not found.` },
        ],
      });
    }
    expect([await statusOf(a.id), await statusOf(b.id)]).toEqual(['PENDING', 'PENDING']);
    expect(await prisma().event.count()).toBe(events);
    // The other mode's own key does reach it.
    expect((await setStatus(gid('Referral', b.id), 'REJECTED', 'mine', ws.keys.live.secret)).userErrors).toEqual([]);
    expect(await statusOf(b.id)).toBe('REJECTED');
  });

  it('refuses READ_ONLY and PARTNER credentials (its own partner’s referral too) with FORBIDDEN_FOR_ROLE, and no credential with UNAUTHENTICATED', async () => {
    const w = await world();
    const row = await referral(w, 'PENDING');
    const input = { referralId: gid('Referral', row.id), status: 'REJECTED' as const, reason: 'no' };
    const tokens = [await readOnlyKey(server, admin), await partnerToken(server, admin, w.partner.id)];
    const before = await eventCount();
    for (const token of tokens) {
      const res = await server.gql(SET, { input }, token);
      expect(res.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN_FOR_ROLE');
      expect(res.data).toBeNull();
    }
    expect((await server.gql(SET, { input })).errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    expect(await statusOf(row.id)).toBe('PENDING');
    expect(await eventCount()).toBe(before);
  });
});

describe(`setReferralStatus racing recordConversion (${process.env.TEST_DATABASE_URL ? 'PostgreSQL' : 'PGlite'})`, () => {
  const PAIRS = 8;

  /** The chain of a referral's status events is unbroken: each starts where the previous ended. */
  function expectChain(events: Array<{ payload: unknown }>, start: ReferralStatus): ReferralStatus {
    let status = start;
    for (const e of events) {
      const { from, to } = e.payload as { from: ReferralStatus; to: ReferralStatus };
      expect(from).toBe(status);
      status = to;
    }
    return status;
  }

  it('a reinstatement and a payment at once: the payment earns only if it ran after the reinstatement, never both ways', async () => {
    const w = await world();
    const rows = await Promise.all(Array.from({ length: PAIRS }, () => referral(w, 'REJECTED')));
    const results = await Promise.all(
      rows.map(async (row) => {
        const [set, conversion] = await Promise.all([
          setStatus(gid('Referral', row.id), 'PENDING', 'reinstated'),
          record({ referredExternalId: row.externalId, programId: gid('Program', w.program.id) }),
        ]);
        return { row, set, conversion };
      }),
    );
    for (const { row, set, conversion } of results) {
      expect(set.userErrors).toEqual([]);
      const events = await eventsOf(row.id);
      const final = expectChain(events, 'REJECTED');
      expect(await statusOf(row.id)).toBe(final);
      const rewards = await prisma().reward.count({ where: { conversionId: rowId(conversion.conversion!.id) } });
      if (conversion.conversion!.status === 'ACCEPTED') {
        // After the reinstatement: rewarded, and its payment converted the referral.
        expect(rewards).toBe(1);
        expect(events.map((e) => (e.payload as { to: string }).to)).toEqual(['PENDING', 'CONVERTED']);
      } else {
        // Before it: discarded for the rejection, nothing earned, and nothing owed later.
        expect(conversion.conversion!.discardReason).toBe('REFERRAL_REJECTED');
        expect(rewards).toBe(0);
        expect(events.map((e) => (e.payload as { to: string }).to)).toEqual(['PENDING']);
      }
    }
  });

  it('a rejection and a payment at once: a payment rewarded is one that committed before the rejection', async () => {
    const w = await world();
    const rows = await Promise.all(Array.from({ length: PAIRS }, () => referral(w, 'PENDING')));
    const results = await Promise.all(
      rows.map(async (row) => {
        const [set, conversion] = await Promise.all([
          setStatus(gid('Referral', row.id), 'REJECTED', 'fraud'),
          record({ referredExternalId: row.externalId, programId: gid('Program', w.program.id) }),
        ]);
        return { row, set, conversion };
      }),
    );
    for (const { row, set, conversion } of results) {
      expect(set.userErrors).toEqual([]);
      expect(set.referral!.status).toBe('REJECTED');
      const events = await eventsOf(row.id);
      expect(expectChain(events, 'PENDING')).toBe('REJECTED');
      const recorded = await prisma().event.findFirstOrThrow({
        where: {
          ...tenant,
          type: 'conversion.recorded',
          payload: { path: ['conversionId'], equals: conversion.conversion!.id },
        },
      });
      const rewards = await prisma().reward.count({ where: { conversionId: rowId(conversion.conversion!.id) } });
      const rejection = events.at(-1)!;
      if (conversion.conversion!.status === 'ACCEPTED') {
        expect(rewards).toBe(1);
        expect(events.map((e) => e.payload)).toEqual([
          expect.objectContaining({ from: 'PENDING', to: 'CONVERTED' }),
          expect.objectContaining({ from: 'CONVERTED', to: 'REJECTED', reason: 'fraud' }),
        ]);
        expect(recorded.sequence < rejection.sequence).toBe(true);
      } else {
        expect(conversion.conversion!.discardReason).toBe('REFERRAL_REJECTED');
        expect(rewards).toBe(0);
        expect(events.map((e) => e.payload)).toEqual([expect.objectContaining({ from: 'PENDING', to: 'REJECTED' })]);
      }
    }
  });
});

/** The row id inside a global id. */
function rowId(globalId: string): string {
  const decoded = Buffer.from(globalId, 'base64').toString();
  return decoded.includes(':') ? decoded.slice(decoded.indexOf(':') + 1) : globalId;
}
