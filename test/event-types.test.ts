import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { globalId } from '../src/lib/global-id.js';
import { appendEvents } from '../src/modules/events/outbox.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// Every mutation that changes state appends its event (DOMAIN.md, "Event types") in the same
// transaction; a refused or no-op mutation appends none; `Event.subject` and `Event.data` resolve
// the changed objects fresh, within the caller's scope.

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.close());

// `from`/`to` of different enums need aliases in one selection (a GraphQL rule for unions).
const EVENTS = `query EventTypesPage($after: String, $first: Int) {
  events(first: $first, after: $after) {
    edges { cursor node {
      id type sequence payload
      subject { __typename id }
      data {
        __typename
        ... on ProgramEventData { program { id status } changedFields }
        ... on PartnerEventData { partner { id name } changedFields }
        ... on EnrollmentEventData { enrollment { id status } from to }
        ... on LinkEventData { link { id code disabled } }
        ... on ConversionEventData { conversion { id status } rewards { id amount { amount } } }
        ... on RewardEventData { reward { id status } }
        ... on RewardStatusEventData { reward { id status } rewardFrom: from rewardTo: to reason }
        ... on PayoutEventData { payout { id status } payoutFrom: from payoutTo: to }
        ... on ReferralEventData { referral { id status } referralFrom: from referralTo: to reason }
        ... on LedgerEventData { entry { id type amount { amount currency } } }
        ... on ReviewEventData { item { id status } }
      }
    } }
    pageInfo { hasNextPage }
  }
}`;

interface Seen {
  id: string;
  type: string;
  sequence: string;
  payload: Record<string, unknown>;
  subject: { __typename: string; id: string } | null;
  /** One of the EventData members' shapes (checked with toMatchObject). */
  data: Record<string, unknown> | null;
}

/** Reads a credential's events page by page: `next()` answers those committed since the last call. */
function reader(token: string) {
  let after: string | null = null;
  return {
    async next(): Promise<Seen[]> {
      const seen: Seen[] = [];
      for (;;) {
        const res = await server.gql<{
          events: {
            edges: Array<{ cursor: string; node: Omit<Seen, 'payload'> & { payload: string } }>;
            pageInfo: { hasNextPage: boolean };
          };
        }>(EVENTS, { after, first: 100 }, token);
        expect(res.errors).toBeUndefined();
        for (const edge of res.data!.events.edges) {
          seen.push({ ...edge.node, payload: JSON.parse(edge.node.payload) });
          after = edge.cursor;
        }
        if (!res.data!.events.pageInfo.hasNextPage) return seen;
      }
    },
  };
}

async function mutate(token: string, field: string, input: Record<string, unknown>, selection: string) {
  const res = await server.gql<Record<string, Record<string, unknown> & { userErrors: Array<{ code: string }> }>>(
    `mutation($input: ${field[0]!.toUpperCase()}${field.slice(1)}Input!) { ${field}(input: $input) { ${selection} userErrors { code field message } } }`,
    { input },
    token,
  );
  expect(res.errors).toBeUndefined();
  return res.data![field]!;
}

const types = (events: Seen[]) => events.map((e) => e.type);

async function setup() {
  const ws = await server.workspace();
  const admin = ws.keys.test.secret;
  const events = reader(admin);
  return { ws, admin, events };
}

async function program(admin: string, extra: Record<string, unknown> = {}): Promise<string> {
  const p = await mutate(
    admin,
    'createProgram',
    { name: 'Friends', type: 'REFERRAL', currency: 'EUR', ...extra },
    'program { id }',
  );
  return (p.program as { id: string }).id;
}

async function partner(admin: string, externalId: string, programIds: string[] = []): Promise<string> {
  const p = await mutate(admin, 'createPartner', { externalId, programIds }, 'partner { id }');
  return (p.partner as { id: string }).id;
}

describe('every state change appends its event, in its transaction', () => {
  it('programs: program.created and program.updated (changedFields); a refused or no-op update appends none', async () => {
    const { admin, events } = await setup();
    const id = await program(admin, { status: 'DRAFT' });
    const [created] = await events.next();
    expect(created).toMatchObject({
      type: 'program.created',
      payload: { programId: id, name: 'Friends', type: 'REFERRAL', status: 'DRAFT', currency: 'EUR' },
      subject: { __typename: 'Program', id },
      data: { __typename: 'ProgramEventData', program: { id, status: 'DRAFT' }, changedFields: [] },
    });

    await mutate(admin, 'updateProgram', { id, status: 'ACTIVE', holdDays: 7 }, 'program { id }');
    const [updated, ...more] = await events.next();
    expect(more).toEqual([]);
    expect(updated).toMatchObject({
      type: 'program.updated',
      payload: { programId: id, changedFields: ['status', 'holdDays'], from: 'DRAFT', to: 'ACTIVE' },
      data: { program: { id, status: 'ACTIVE' }, changedFields: ['status', 'holdDays'] },
    });

    const refused = await mutate(admin, 'updateProgram', { id, holdDays: -1 }, 'program { id }');
    expect(refused.userErrors[0]!.code).toBe('VALIDATION');
    const backwards = await mutate(admin, 'updateProgram', { id, status: 'DRAFT' }, 'program { id }');
    expect(backwards.userErrors[0]!.code).toBe('INVALID_TRANSITION');
    await mutate(admin, 'updateProgram', { id, holdDays: 7 }, 'program { id }'); // nothing changes
    expect(await events.next()).toEqual([]);
  });

  it('reward rules: reward_rule.created, .updated (the new version), .archived; subject is the version, data null', async () => {
    const { admin, events } = await setup();
    const programId = await program(admin);
    await events.next();
    const rule = {
      programId,
      trigger: 'PURCHASE',
      kind: 'CASH',
      amountType: 'FIXED',
      fixedAmount: { amount: '10', currency: 'EUR' },
    };
    const created = await mutate(admin, 'createRewardRule', rule, 'rewardRule { id }');
    const v1 = (created.rewardRule as { id: string }).id;
    const updated = await mutate(
      admin,
      'updateRewardRule',
      { id: v1, fixedAmount: { amount: '12', currency: 'EUR' } },
      'rewardRule { id }',
    );
    const v2 = (updated.rewardRule as { id: string }).id;
    await mutate(admin, 'archiveRewardRule', { id: v1 }, 'rewardRule { id }');
    const seen = await events.next();
    expect(types(seen)).toEqual(['reward_rule.created', 'reward_rule.updated', 'reward_rule.archived']);
    expect(seen[0]).toMatchObject({
      payload: { ruleId: v1, lineageId: v1, version: 1, programId },
      subject: { __typename: 'RewardRule', id: v1 },
      data: null,
    });
    expect(seen[1]).toMatchObject({ payload: { ruleId: v2, lineageId: v1, version: 2, previousRuleId: v1 } });
    expect(seen[1]!.subject).toEqual({ __typename: 'RewardRule', id: v2 });
    expect(seen[2]!.payload).toMatchObject({ ruleId: v2, archivedAt: expect.any(String) });

    // Archived: an edit is refused, archiving again changes nothing; neither appends an event.
    const refused = await mutate(
      admin,
      'updateRewardRule',
      { id: v1, fixedAmount: { amount: '1', currency: 'EUR' } },
      'rewardRule { id }',
    );
    expect(refused.userErrors[0]!.code).toBe('INVALID_TRANSITION');
    await mutate(admin, 'archiveRewardRule', { id: v1 }, 'rewardRule { id }');
    expect(await events.next()).toEqual([]);
  });

  it('partners: partner.created, partner.updated (changedFields), partner.status_changed; refused and no-op updates append none', async () => {
    const { admin, events } = await setup();
    const id = await partner(admin, 'ada');
    await mutate(admin, 'updatePartner', { id, name: 'Ada', email: 'ada@example.com' }, 'partner { id }');
    await mutate(admin, 'updatePartner', { externalId: 'ada', name: 'Ada' }, 'partner { id }'); // same name
    const refused = await mutate(admin, 'updatePartner', { id, email: 'not an address' }, 'partner { id }');
    expect(refused.userErrors[0]!.code).toBe('VALIDATION');
    await mutate(admin, 'setPartnerStatus', { partnerId: id, status: 'INACTIVE' }, 'partner { id }');
    const seen = await events.next();
    expect(types(seen)).toEqual(['partner.created', 'partner.updated', 'partner.status_changed']);
    expect(seen[0]!.data).toEqual({ __typename: 'PartnerEventData', partner: { id, name: 'Ada' }, changedFields: [] });
    expect(seen[1]).toMatchObject({
      payload: { partnerId: id, externalId: 'ada', changedFields: ['name', 'email'] },
      subject: { __typename: 'Partner', id },
      data: { changedFields: ['name', 'email'] },
    });
    expect(seen[2]!.data).toMatchObject({ changedFields: ['status'] });
  });

  it('a mutation refused after it wrote appends nothing: createPartner with an unknown program rolls back the partner and its events', async () => {
    const { admin, events } = await setup();
    const programId = await program(admin);
    await events.next();
    const res = await mutate(
      admin,
      'createPartner',
      { externalId: 'bob', programIds: [programId, 'UHJvZ3JhbTowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA='] },
      'partner { id }',
    );
    expect(res.userErrors[0]!.code).toBe('NOT_FOUND');
    expect(await events.next()).toEqual([]);
  });

  it('enrollments: enrollment.applied (PENDING), then enrollment.status_changed and the default link.created; created APPROVED: status_changed from null', async () => {
    const { admin, events } = await setup();
    const moderated = await program(admin, { autoApprovePartners: false });
    const open = await program(admin, { name: 'Open' });
    const partnerId = await partner(admin, 'cy');
    await events.next();

    const applied = await mutate(admin, 'enrollPartner', { partnerId, programId: moderated }, 'enrollment { id }');
    const enrollmentId = (applied.enrollment as { id: string }).id;
    const [application] = await events.next();
    expect(application).toMatchObject({
      type: 'enrollment.applied',
      payload: { enrollmentId, programId: moderated, partnerId, from: null, to: 'PENDING' },
      subject: { __typename: 'Enrollment', id: enrollmentId },
      data: { __typename: 'EnrollmentEventData', enrollment: { id: enrollmentId, status: 'PENDING' }, from: null },
    });

    await mutate(admin, 'setEnrollmentStatus', { enrollmentId, status: 'APPROVED' }, 'enrollment { id }');
    const again = await mutate(admin, 'setEnrollmentStatus', { enrollmentId, status: 'APPROVED' }, 'enrollment { id }');
    expect(again.userErrors[0]!.code).toBe('INVALID_TRANSITION');
    const approval = await events.next();
    expect(types(approval)).toEqual(['enrollment.status_changed', 'link.created']);
    expect(approval[0]!.data).toMatchObject({ enrollment: { status: 'APPROVED' }, from: 'PENDING', to: 'APPROVED' });
    expect(approval[1]).toMatchObject({
      payload: { programId: moderated, partnerId, isDefault: true },
      data: { __typename: 'LinkEventData', link: { code: approval[1]!.payload.code, disabled: false } },
    });

    await mutate(admin, 'enrollPartner', { partnerId, programId: open }, 'enrollment { id }');
    const direct = await events.next();
    expect(types(direct)).toEqual(['enrollment.status_changed', 'link.created']);
    expect(direct[0]!.data).toMatchObject({ from: null, to: 'APPROVED' });
  });

  it('links: link.created and link.disabled; a taken code and disabling twice append none', async () => {
    const { admin, events } = await setup();
    const programId = await program(admin);
    const partnerId = await partner(admin, 'dee', [programId]);
    await events.next();
    const created = await mutate(
      admin,
      'createReferralLink',
      { partnerId, programId, code: 'DEE-VANITY' },
      'link { id }',
    );
    const linkId = (created.link as { id: string }).id;
    const taken = await mutate(
      admin,
      'createReferralLink',
      { partnerId, programId, code: 'dee-vanity' },
      'link { id }',
    );
    expect(taken.userErrors[0]!.code).toBe('DUPLICATE');
    await mutate(admin, 'disableReferralLink', { id: linkId }, 'link { id }');
    await mutate(admin, 'disableReferralLink', { id: linkId }, 'link { id }');
    const seen = await events.next();
    expect(types(seen)).toEqual(['link.created', 'link.disabled']);
    expect(seen[0]).toMatchObject({
      payload: { linkId, code: 'DEE-VANITY', isDefault: false },
      subject: { __typename: 'ReferralLink', id: linkId },
    });
    expect(seen[1]!.data).toEqual({
      __typename: 'LinkEventData',
      link: { id: linkId, code: 'DEE-VANITY', disabled: true },
    });
  });

  it('api keys: api_key.created and api_key.revoked (once); the ApiKey subject only for ADMIN credentials', async () => {
    const { admin, events } = await setup();
    const created = await mutate(admin, 'createApiKey', { name: 'reader', role: 'READ_ONLY' }, 'apiKey { id } secret');
    const keyId = (created.apiKey as { id: string }).id;
    await mutate(admin, 'revokeApiKey', { id: keyId }, 'apiKey { id }');
    await mutate(admin, 'revokeApiKey', { id: keyId }, 'apiKey { id }');
    const seen = await events.next();
    expect(types(seen)).toEqual(['api_key.created', 'api_key.revoked']);
    expect(seen[0]).toMatchObject({
      payload: { apiKeyId: keyId, name: 'reader', role: 'READ_ONLY' },
      subject: { __typename: 'ApiKey', id: keyId },
      data: null,
    });

    const reader2 = await mutate(admin, 'createApiKey', { name: 'r2', role: 'READ_ONLY' }, 'secret');
    const asReader = await reader(reader2.secret as string).next();
    expect(types(asReader)).toEqual(['api_key.created', 'api_key.revoked', 'api_key.created']);
    expect(asReader.map((e) => e.subject)).toEqual([null, null, null]);
  });

  it('conversions: reward.created and conversion.recorded, one builder each, data resolved', async () => {
    const { admin, events } = await setup();
    const programId = await program(admin);
    await mutate(
      admin,
      'createRewardRule',
      {
        programId,
        trigger: 'PURCHASE',
        kind: 'CASH',
        amountType: 'FIXED',
        fixedAmount: { amount: '5', currency: 'EUR' },
      },
      'rewardRule { id }',
    );
    const partnerId = await partner(admin, 'eve', [programId]);
    const link = await mutate(admin, 'createReferralLink', { partnerId, programId, code: 'EVE-1' }, 'link { id }');
    expect(link.userErrors).toEqual([]);
    await events.next();
    const res = await mutate(
      admin,
      'recordConversion',
      {
        type: 'PURCHASE',
        code: 'EVE-1',
        referredExternalId: 'cust-1',
        idempotencyKey: 'order-1',
        amount: { amount: '50', currency: 'EUR' },
      },
      'conversion { id } rewards { id }',
    );
    const conversionId = (res.conversion as { id: string }).id;
    const [rewardId] = (res.rewards as Array<{ id: string }>).map((r) => r.id);
    const seen = await events.next();
    expect(types(seen)).toEqual(['reward.created', 'conversion.recorded']);
    expect(seen[0]).toMatchObject({
      payload: {
        rewardId,
        sourceRewardId: null,
        conversionId,
        approveAfter: expect.any(String),
        amount: { amount: '5.00', currency: 'EUR' },
      },
      subject: { __typename: 'Reward', id: rewardId },
      data: { __typename: 'RewardEventData', reward: { id: rewardId, status: 'CREATED' } },
    });
    expect(seen[1]).toMatchObject({
      payload: { conversionId, refundOfId: null, rewardIds: [rewardId], status: 'ACCEPTED' },
      subject: { __typename: 'Conversion', id: conversionId },
      data: {
        __typename: 'ConversionEventData',
        conversion: { id: conversionId, status: 'ACCEPTED' },
        rewards: [{ id: rewardId, amount: { amount: '5.00' } }],
      },
    });

    // The same person's first payment after a signup converts their referral.
    const signup = { type: 'SIGNUP', code: 'EVE-1', referredExternalId: 'cust-2', idempotencyKey: 'signup-2' };
    await mutate(admin, 'recordConversion', signup, 'replayed');
    expect(types(await events.next())).toEqual(['conversion.recorded']);
    await mutate(
      admin,
      'recordConversion',
      {
        type: 'PURCHASE',
        referredExternalId: 'cust-2',
        idempotencyKey: 'order-2',
        amount: { amount: '9', currency: 'EUR' },
      },
      'replayed',
    );
    const converted = await events.next();
    expect(types(converted)).toEqual(['referral.status_changed', 'reward.created', 'conversion.recorded']);
    expect(converted[0]).toMatchObject({
      payload: {
        programId,
        partnerId,
        from: 'PENDING',
        to: 'CONVERTED',
        reason: null,
        referralId: converted[2]!.payload.referralId,
      },
      subject: { __typename: 'Referral', id: converted[2]!.payload.referralId },
      data: {
        __typename: 'ReferralEventData',
        referral: { id: converted[2]!.payload.referralId, status: 'CONVERTED' },
        referralFrom: 'PENDING',
        referralTo: 'CONVERTED',
        reason: null,
      },
    });

    // A replay records nothing new.
    await mutate(
      admin,
      'recordConversion',
      {
        type: 'PURCHASE',
        code: 'EVE-1',
        referredExternalId: 'cust-1',
        idempotencyKey: 'order-1',
        amount: { amount: '50', currency: 'EUR' },
      },
      'replayed',
    );
    expect(await events.next()).toEqual([]);
  });

  it('review: review.opened (a rule tripped, flagConversion) and review.resolved (ReviewEventData); refused ones append none; a PARTNER token sees none of them', async () => {
    const { admin, events } = await setup();
    const programId = await program(admin);
    await mutate(
      admin,
      'createRewardRule',
      {
        programId,
        trigger: 'SIGNUP',
        kind: 'CASH',
        amountType: 'FIXED',
        fixedAmount: { amount: '5', currency: 'EUR' },
      },
      'rewardRule { id }',
    );
    const partnerId = await partner(admin, 'rita', [programId]);
    await mutate(admin, 'updatePartner', { id: partnerId, email: 'rita@rita-corp.test' }, 'partner { id }');
    await mutate(admin, 'createReferralLink', { partnerId, programId, code: 'RITA-1' }, 'link { id }');
    await events.next();
    const signup = (key: string, email: string) =>
      mutate(
        admin,
        'recordConversion',
        { type: 'SIGNUP', code: 'RITA-1', referredExternalId: key, idempotencyKey: key, referredEmail: email },
        'conversion { id reviewItem { id } } rewards { id }',
      );
    const flagged = await signup('s-1', 'boss@rita-corp.test');
    const itemId = (flagged.conversion as { reviewItem: { id: string } }).reviewItem.id;
    const seen = await events.next();
    expect(types(seen)).toEqual(['reward.created', 'conversion.recorded', 'review.opened']);
    expect(seen[2]).toMatchObject({
      payload: { reviewItemId: itemId, programId, partnerId, signals: [{ type: 'SELF_REFERRAL_EMAIL_DOMAIN' }] },
      subject: { __typename: 'ReviewItem', id: itemId },
      data: { __typename: 'ReviewEventData', item: { id: itemId, status: 'OPEN' } },
    });

    const clean = await signup('s-2', 'friend@elsewhere.test');
    await events.next();
    const conversionId = (clean.conversion as { id: string }).id;
    const flag = await mutate(admin, 'flagConversion', { conversionId, detail: 'odd' }, 'item { id }');
    const manualId = (flag.item as { id: string }).id;
    await mutate(admin, 'resolveReviewItems', { ids: [itemId, manualId], decision: 'APPROVE' }, 'items { id }');
    const decided = await events.next();
    expect(types(decided)).toEqual(['review.opened', 'review.resolved', 'review.resolved']);
    expect(decided[1]).toMatchObject({
      payload: { reviewItemId: itemId, status: 'APPROVED', reason: null },
      data: { __typename: 'ReviewEventData', item: { id: itemId, status: 'APPROVED' } },
    });

    // Refused: a second flag, a decision the other way; neither appends anything.
    expect(
      (await mutate(admin, 'flagConversion', { conversionId, detail: 'again' }, 'item { id }')).userErrors[0]!.code,
    ).toBe('DUPLICATE');
    expect(
      (await mutate(admin, 'resolveReviewItems', { ids: [itemId], decision: 'REJECT', reason: 'no' }, 'items { id }'))
        .userErrors[0]!.code,
    ).toBe('INVALID_TRANSITION');
    expect(await events.next()).toEqual([]);

    const token = (await mutate(admin, 'createPartnerToken', { partnerId }, 'token')).token as string;
    const partnerSeen = await reader(token).next();
    expect(types(partnerSeen)).toContain('reward.created');
    expect(types(partnerSeen).filter((t) => t.startsWith('review.'))).toEqual([]);
  });

  it('money: balance.credited (LedgerEventData), payout.created, payout.canceled, payout.failed, payout.paid; refused ones append none', async () => {
    const { admin, events } = await setup();
    const partnerId = await partner(admin, 'mona');
    const credit = (key: string) =>
      mutate(
        admin,
        'creditBalance',
        { partnerId, amount: { amount: '3', currency: 'EUR' }, idempotencyKey: key },
        'balance { currency }',
      );
    await events.next();
    await credit('c-1');
    const [credited] = await events.next();
    expect(credited).toMatchObject({
      type: 'balance.credited',
      subject: { __typename: 'Partner', id: partnerId },
      data: { __typename: 'LedgerEventData', entry: { type: 'CREDIT', amount: { amount: '3.00', currency: 'EUR' } } },
    });
    expect(credited!.payload.entryId).toBe((credited!.data as { entry: { id: string } }).entry.id);

    const payout = async () =>
      ((await mutate(admin, 'createPayout', { partnerId, currency: 'EUR' }, 'payout { id }')).payout as { id: string })
        .id;
    const first = await payout();
    await mutate(admin, 'cancelPayout', { payoutId: first, reason: 'wrong account' }, 'payout { id }');
    const second = await payout();
    await mutate(admin, 'markPayoutFailed', { payoutId: second, reason: 'bounced' }, 'payout { id }');
    const third = await payout();
    await mutate(admin, 'markPayoutPaid', { payoutId: third }, 'payout { id }');
    const seen = await events.next();
    expect(
      seen.map((e) => [
        e.type,
        (e.data as { payoutFrom?: string; payoutTo: string }).payoutFrom ?? null,
        (e.data as { payoutTo: string }).payoutTo,
      ]),
    ).toEqual([
      ['payout.created', null, 'PENDING'],
      ['payout.canceled', 'PENDING', 'CANCELED'],
      ['payout.created', null, 'PENDING'],
      ['payout.failed', 'PENDING', 'FAILED'],
      ['payout.created', null, 'PENDING'],
      ['payout.paid', 'PENDING', 'PAID'],
    ]);
    expect(seen[1]).toMatchObject({
      payload: { reason: 'wrong account' },
      subject: { __typename: 'Payout', id: first },
    });

    // Refused: nothing due, a canceled payout canceled again with another status asked.
    const none = await mutate(admin, 'createPayout', { partnerId, currency: 'EUR' }, 'payout { id }');
    expect(none.userErrors.map((e) => e.code)).toEqual(['NOTHING_DUE']);
    const paidAgain = await mutate(admin, 'markPayoutPaid', { payoutId: first }, 'payout { id }');
    expect(paidAgain.userErrors.map((e) => e.code)).toEqual(['INVALID_TRANSITION']);
    expect(await events.next()).toEqual([]);
  });
});

describe('scope of subject and data', () => {
  it('another workspace or mode sees none of the events; a PARTNER token sees its own, with subject and data, and no other partner’s', async () => {
    const { ws, admin, events } = await setup();
    const programId = await program(admin);
    const mine = await partner(admin, 'mine', [programId]);
    await partner(admin, 'theirs', [programId]);
    const all = await events.next();
    expect(types(all)).toEqual([
      'program.created',
      'partner.created',
      'enrollment.status_changed',
      'link.created',
      'partner.created',
      'enrollment.status_changed',
      'link.created',
    ]);

    const other = await server.workspace();
    expect(await reader(other.keys.test.secret).next()).toEqual([]);
    expect(await reader(ws.keys.live.secret).next()).toEqual([]);
    const foreign = await server.gql<{ node: unknown }>(
      'query($id: ID!) { node(id: $id) { id } }',
      { id: all[0]!.id },
      other.keys.test.secret,
    );
    expect(foreign.data!.node).toBeNull();

    const token = await server.gql<{ createPartnerToken: { token: string } }>(
      'mutation($input: CreatePartnerTokenInput!) { createPartnerToken(input: $input) { token } }',
      { input: { partnerId: mine } },
      admin,
    );
    const asPartner = await reader(token.data!.createPartnerToken.token).next();
    expect(types(asPartner)).toEqual(['partner.created', 'enrollment.status_changed', 'link.created']);
    expect(asPartner.every((e) => e.payload.partnerId === mine)).toBe(true);
    expect(asPartner.map((e) => e.subject?.__typename)).toEqual(['Partner', 'Enrollment', 'ReferralLink']);
    expect(asPartner.map((e) => e.data?.__typename)).toEqual([
      'PartnerEventData',
      'EnrollmentEventData',
      'LinkEventData',
    ]);
    // Its own partner only: another partner's event is not a node it can read.
    const theirs = all[4]!;
    const peek = await server.gql<{ node: unknown }>(
      'query($id: ID!) { node(id: $id) { id } }',
      { id: theirs.id },
      token.data!.createPartnerToken.token,
    );
    expect(peek.data!.node).toBeNull();
  });

  it('subject and data apply the PARTNER scope themselves: an event of its partner naming objects it may not see resolves them to null', async () => {
    const { ws, admin } = await setup();
    const programId = await program(admin);
    const closed = await program(admin, { name: 'Closed' });
    const mine = await partner(admin, 'me', [programId]);
    const theirs = await partner(admin, 'them', [programId, closed]);
    const links = await server.gql<{ partner: { links: Array<{ id: string }> } }>(
      'query($id: ID!) { partner(id: $id) { links { id } } }',
      { id: theirs },
      admin,
    );
    const theirLink = links.data!.partner.links[0]!.id;
    const rowId = (id: string) => Buffer.from(id, 'base64').toString().split(':')[1]!;
    // Events filed under this partner whose payloads name what it may not see (a program it is not
    // in, another partner, another partner's link): only subject/data's own scope keeps them out.
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    await server.testDb.db.prisma.$transaction((tx) =>
      appendEvents(tx, tenant, [
        { type: 'program.updated', partnerId: rowId(mine), payload: { programId: closed, changedFields: ['name'] } },
        { type: 'partner.updated', partnerId: rowId(mine), payload: { partnerId: theirs, changedFields: ['name'] } },
        { type: 'link.created', partnerId: rowId(mine), payload: { linkId: theirLink } },
      ]),
    );
    const token = await server.gql<{ createPartnerToken: { token: string } }>(
      'mutation($input: CreatePartnerTokenInput!) { createPartnerToken(input: $input) { token } }',
      { input: { partnerId: mine } },
      admin,
    );
    const asPartner = (await reader(token.data!.createPartnerToken.token).next()).slice(-3);
    expect(types(asPartner)).toEqual(['program.updated', 'partner.updated', 'link.created']);
    expect(asPartner.map((e) => [e.subject, e.data])).toEqual([
      [null, null],
      [null, null],
      [null, null],
    ]);
    // The admin sees the same events with their objects.
    const asAdmin = (await reader(admin).next()).slice(-3);
    expect(asAdmin.map((e) => e.subject?.id)).toEqual([closed, theirs, theirLink]);
    expect(asAdmin.every((e) => e.data !== null)).toBe(true);
  });

  it('Query.nodes and aliased Query.partner with a PARTNER token answer another partner with null, not with its own partner', async () => {
    const { admin } = await setup();
    const mine = await partner(admin, 'me');
    const theirs = await partner(admin, 'them');
    const token = await server.gql<{ createPartnerToken: { token: string } }>(
      'mutation($input: CreatePartnerTokenInput!) { createPartnerToken(input: $input) { token } }',
      { input: { partnerId: mine } },
      admin,
    );
    const res = await server.gql<{ nodes: Array<{ id: string } | null> }>(
      'query($ids: [ID!]!) { nodes(ids: $ids) { id } }',
      { ids: [mine, theirs] },
      token.data!.createPartnerToken.token,
    );
    expect(res.data!.nodes).toEqual([{ id: mine }, null]);
    const aliased = await server.gql<Record<string, { id: string } | null>>(
      'query($a: ID!, $b: ID!) { a: partner(id: $a) { id } b: partner(id: $b) { id } c: partner(externalId: "me") { id } d: partner(externalId: "them") { id } }',
      { a: mine, b: theirs },
      token.data!.createPartnerToken.token,
    );
    expect(aliased.data).toEqual({ a: { id: mine }, b: null, c: { id: mine }, d: null });
  });

  it('ids in payloads are the API’s global ids (lib/global-id.ts encodes like Relay)', () => {
    for (const [type, id] of [
      ['Partner', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'],
      ['RewardRule', 'x'],
    ] as const)
      expect(globalId(type, id)).toBe(encodeGlobalID(type, id));
  });

  it('a page of events with subject and data costs the same number of statements for 8 events as for 26 (no N+1)', async () => {
    const { admin } = await setup();
    const programId = await program(admin);
    await mutate(
      admin,
      'createRewardRule',
      {
        programId,
        trigger: 'PURCHASE',
        kind: 'CASH',
        amountType: 'FIXED',
        fixedAmount: { amount: '5', currency: 'EUR' },
      },
      'rewardRule { id }',
    );
    for (let i = 0; i < 4; i++) {
      const partnerId = await partner(admin, `p${i}`, [programId]);
      await mutate(admin, 'createReferralLink', { partnerId, programId, code: `CODE-${i}` }, 'link { id }');
      await mutate(
        admin,
        'recordConversion',
        {
          type: 'PURCHASE',
          code: `CODE-${i}`,
          referredExternalId: `c${i}`,
          idempotencyKey: `o${i}`,
          amount: { amount: '20', currency: 'EUR' },
        },
        'replayed',
      );
    }
    const pageOf = async (first: number) => {
      const { body, statements } = await server.gqlCounted<{ events: { edges: Array<{ node: Seen }> } }>(
        EVENTS,
        { first },
        admin,
      );
      expect(body.errors).toBeUndefined();
      const nodes = body.data!.events.edges.map((e) => e.node);
      expect(nodes.every((n) => n.subject !== null)).toBe(true);
      return { nodes, statements };
    };
    await pageOf(1); // the credential's lookup (cached afterwards) is not what is measured
    const small = await pageOf(8);
    const large = await pageOf(100);
    // The first 8 already hold every model: program, rule, partner, enrollment, links, reward, conversion.
    expect(new Set(small.nodes.map((n) => n.type))).toEqual(new Set(large.nodes.map((n) => n.type)));
    expect(large.nodes).toHaveLength(26);
    expect(large.statements).toBe(small.statements);
    // The horizon, the page, one full-row read per model (7: visibility and `subject`) and one per
    // model and selection asked beneath `data`.
    expect(large.statements).toBe(12);
  });
});
