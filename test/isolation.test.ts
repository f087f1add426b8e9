import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/modules/workspace/workspace.service.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// Another workspace's ids, and the same workspace's ids from the other mode, must answer exactly
// like missing ids through every entry point, and change nothing.

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ APPROVAL_JOB_INTERVAL_MS: '0' });
});
afterAll(async () => {
  await server?.close();
});

async function ok<T>(query: string, variables: Record<string, unknown>, token: string): Promise<T> {
  const res = await server.gql<T>(query, variables, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

interface Victim {
  token: string;
  apiKeyId: string;
  ids: Record<
    'program' | 'rule' | 'partner' | 'enrollment' | 'link' | 'conversion' | 'referral' | 'reward' | 'payout',
    string
  >;
  code: string;
  externalId: string;
}

async function victim(): Promise<Victim> {
  const ws = await server.workspace('Victim');
  const token = ws.keys.test.secret;
  const program = (
    await ok<{ createProgram: { program: { id: string } } }>(
      'mutation { createProgram(input: { name: "P", type: AFFILIATE, currency: "USD" }) { program { id } } }',
      {},
      token,
    )
  ).createProgram.program.id;
  const rule = (
    await ok<{ createRewardRule: { rewardRule: { id: string } } }>(
      'mutation($p: ID!) { createRewardRule(input: { programId: $p, trigger: PURCHASE, kind: CASH, amountType: PERCENTAGE, percentageBasisPoints: 1000 }) { rewardRule { id } } }',
      { p: program },
      token,
    )
  ).createRewardRule.rewardRule.id;
  const partner = (
    await ok<{
      createPartner: {
        partner: { id: string; enrollments: Array<{ id: string }>; links: Array<{ id: string; code: string }> };
      };
    }>(
      'mutation($p: ID!) { createPartner(input: { externalId: "victim-1", programIds: [$p] }) { partner { id enrollments { id } links { id code } } } }',
      { p: program },
      token,
    )
  ).createPartner.partner;
  const recorded = (
    await ok<{
      recordConversion: { conversion: { id: string; referral: { id: string } }; rewards: Array<{ id: string }> };
    }>(
      'mutation($c: String!) { recordConversion(input: { type: PURCHASE, idempotencyKey: "v-1", referredExternalId: "buyer", code: $c, amount: { amount: "100.00", currency: "USD" } }) { conversion { id referral { id } } rewards { id } } }',
      { c: partner.links[0]!.code },
      token,
    )
  ).recordConversion;
  const reward = recorded.rewards[0]!.id;
  await ok(
    'mutation($ids: [ID!]!) { updateRewardStatus(input: { ids: $ids, status: APPROVED }) { userErrors { code } } }',
    { ids: [reward] },
    token,
  );
  const payout = (
    await ok<{ createPayout: { payout: { id: string } } }>(
      'mutation($p: ID!) { createPayout(input: { partnerId: $p, currency: "USD" }) { payout { id } } }',
      { p: partner.id },
      token,
    )
  ).createPayout.payout.id;
  return {
    token,
    apiKeyId: Buffer.from(`ApiKey:${ws.keys.test.id}`).toString('base64'),
    ids: {
      program,
      rule,
      partner: partner.id,
      enrollment: partner.enrollments[0]!.id,
      link: partner.links[0]!.id,
      conversion: recorded.conversion.id,
      referral: recorded.conversion.referral.id,
      reward,
      payout,
    },
    code: partner.links[0]!.code,
    externalId: 'victim-1',
  };
}

/** Everything the victim can see about its own data, to compare before and after the attacks. */
async function snapshot(v: Victim): Promise<unknown> {
  return ok(
    `query($ids: [ID!]!) {
      nodes(ids: $ids) {
        id
        ... on Program { programName: name programStatus: status }
        ... on RewardRule { version archived percentageBasisPoints }
        ... on Partner { partnerName: name email partnerStatus: status balances { currency pending { amount } available { amount } paid { amount } } }
        ... on Enrollment { enrollmentStatus: status }
        ... on ReferralLink { disabled destinationUrl }
        ... on Conversion { conversionStatus: status }
        ... on Referral { referralStatus: status }
        ... on Reward { rewardStatus: status }
        ... on Payout { payoutStatus: status externalReference }
      }
      events(first: 100) { edges { cursor } }
      programs { totalCount } partners { totalCount } rewards { totalCount } conversions { totalCount }
    }`,
    { ids: Object.values(v.ids) },
    v.token,
  );
}

describe.each(['another workspace', 'the other mode of the same workspace'])('from %s', (attacker) => {
  let v: Victim;
  let token: string;
  let before: unknown;
  beforeAll(async () => {
    v = await victim();
    before = await snapshot(v);
    if (attacker === 'another workspace') token = (await server.workspace('Attacker')).keys.test.secret;
    else {
      // The victim's own workspace, LIVE mode: mint a LIVE key there.
      const res = await server.gql<{ viewer: { workspace: { id: string } } }>(
        '{ viewer { workspace { id } } }',
        {},
        v.token,
      );
      const workspaceId = Buffer.from(res.data!.viewer.workspace.id, 'base64').toString().split(':')[1]!;
      token = (await createApiKey(server.testDb.db.prisma, { workspaceId, mode: 'LIVE', role: 'ADMIN', name: 'live' }))
        .secret;
    }
  });

  it('reads nothing by id, code, externalId or in lists', async () => {
    const data = await ok<Record<string, unknown>>(
      `query($ids: [ID!]!, $program: ID!, $partner: ID!, $ext: String!, $code: String!) {
        nodes(ids: $ids) { id }
        program(id: $program) { id }
        byId: partner(id: $partner) { id }
        byExternalId: partner(externalId: $ext) { id }
        referralLink(code: $code) { id }
        programs { totalCount } partners { totalCount } rewards { totalCount } conversions { totalCount }
        filtered: rewards(filter: { partnerId: $partner, programId: $program }) { totalCount }
        events { edges { cursor } }
      }`,
      { ids: Object.values(v.ids), program: v.ids.program, partner: v.ids.partner, ext: v.externalId, code: v.code },
      token,
    );
    expect(data).toEqual({
      nodes: Object.values(v.ids).map(() => null),
      program: null,
      byId: null,
      byExternalId: null,
      referralLink: null,
      programs: { totalCount: 0 },
      partners: { totalCount: 0 },
      rewards: { totalCount: 0 },
      conversions: { totalCount: 0 },
      filtered: { totalCount: 0 },
      events: { edges: [] },
    });
    for (const id of Object.values(v.ids)) {
      expect(await ok(`query($id: ID!) { node(id: $id) { id } }`, { id }, token)).toEqual({ node: null });
    }
  });

  it('changes nothing through any mutation, each answering NOT_FOUND', async () => {
    const i = v.ids;
    const attempts: Array<[string, string, Record<string, unknown>]> = [
      [
        'updateProgram',
        'mutation($id: ID!) { r: updateProgram(input: { id: $id, name: "x", status: PAUSED }) { userErrors { code } } }',
        { id: i.program },
      ],
      [
        'createRewardRule',
        'mutation($p: ID!) { r: createRewardRule(input: { programId: $p, trigger: SIGNUP, kind: CASH, amountType: FIXED, fixedAmount: { amount: "1.00", currency: "USD" } }) { userErrors { code } } }',
        { p: i.program },
      ],
      [
        'updateRewardRule',
        'mutation($id: ID!) { r: updateRewardRule(input: { id: $id, percentageBasisPoints: 5000 }) { userErrors { code } } }',
        { id: i.rule },
      ],
      [
        'archiveRewardRule',
        'mutation($id: ID!) { r: archiveRewardRule(input: { id: $id }) { userErrors { code } } }',
        { id: i.rule },
      ],
      [
        'updatePartner',
        'mutation($id: ID!) { r: updatePartner(input: { id: $id, name: "x" }) { userErrors { code } } }',
        { id: i.partner },
      ],
      [
        'updatePartner by externalId',
        'mutation($e: String!) { r: updatePartner(input: { externalId: $e, name: "x" }) { userErrors { code } } }',
        { e: v.externalId },
      ],
      [
        'setPartnerStatus',
        'mutation($id: ID!) { r: setPartnerStatus(input: { partnerId: $id, status: BANNED }) { userErrors { code } } }',
        { id: i.partner },
      ],
      [
        'enrollPartner',
        'mutation($p: ID!, $pr: ID!) { r: enrollPartner(input: { partnerId: $p, programId: $pr }) { userErrors { code } } }',
        { p: i.partner, pr: i.program },
      ],
      [
        'setEnrollmentStatus',
        'mutation($id: ID!) { r: setEnrollmentStatus(input: { enrollmentId: $id, status: REJECTED }) { userErrors { code } } }',
        { id: i.enrollment },
      ],
      [
        'createReferralLink',
        'mutation($p: ID!, $pr: ID!) { r: createReferralLink(input: { partnerId: $p, programId: $pr }) { userErrors { code } } }',
        { p: i.partner, pr: i.program },
      ],
      [
        'disableReferralLink',
        'mutation($id: ID!) { r: disableReferralLink(input: { id: $id }) { userErrors { code } } }',
        { id: i.link },
      ],
      [
        'recordConversion with programId',
        'mutation($p: ID!) { r: recordConversion(input: { type: SIGNUP, idempotencyKey: "atk-1", referredExternalId: "z", programId: $p }) { userErrors { code } } }',
        { p: i.program },
      ],
      [
        'refundConversion',
        'mutation($id: ID!) { r: refundConversion(input: { conversionId: $id, idempotencyKey: "atk-r" }) { userErrors { code } } }',
        { id: i.conversion },
      ],
      [
        'updateRewardStatus',
        'mutation($id: ID!) { r: updateRewardStatus(input: { ids: [$id], status: CANCELED }) { userErrors { code } } }',
        { id: i.reward },
      ],
      [
        'creditBalance',
        'mutation($p: ID!) { r: creditBalance(input: { partnerId: $p, amount: { amount: "5.00", currency: "USD" }, idempotencyKey: "atk-c" }) { userErrors { code } } }',
        { p: i.partner },
      ],
      [
        'createPayout',
        'mutation($p: ID!) { r: createPayout(input: { partnerId: $p, currency: "USD" }) { userErrors { code } } }',
        { p: i.partner },
      ],
      [
        'markPayoutPaid',
        'mutation($id: ID!) { r: markPayoutPaid(input: { payoutId: $id, externalReference: "x" }) { userErrors { code } } }',
        { id: i.payout },
      ],
      [
        'createPartnerToken',
        'mutation($p: ID!) { r: createPartnerToken(input: { partnerId: $p }) { userErrors { code } } }',
        { p: i.partner },
      ],
      [
        'revokeApiKey',
        'mutation($id: ID!) { r: revokeApiKey(input: { id: $id }) { userErrors { code } } }',
        { id: v.apiKeyId },
      ],
    ];
    for (const [name, mutation, variables] of attempts) {
      const data = await ok<{ r: { userErrors: Array<{ code: string }> } }>(mutation, variables, token);
      expect(
        data.r.userErrors.map((e) => e.code),
        name,
      ).toContain('NOT_FOUND');
    }
    // Codes of another tenant are unknown codes: no click for the victim, no attribution.
    const click = await ok<{ trackClick: { discarded: boolean; clickId: string | null } }>(
      'mutation($c: String!) { trackClick(input: { code: $c }) { discarded clickId } }',
      { c: v.code },
      token,
    );
    expect(click.trackClick).toEqual({ discarded: true, clickId: null });
    const conversion = await ok<{
      recordConversion: { conversion: { status: string; partner: unknown }; rewards: unknown[] };
    }>(
      'mutation($c: String!) { recordConversion(input: { type: SIGNUP, idempotencyKey: "atk-2", referredExternalId: "y", code: $c }) { conversion { status partner { id } } rewards { id } } }',
      { c: v.code },
      token,
    );
    expect(conversion.recordConversion).toMatchObject({
      conversion: { status: 'DISCARDED', partner: null },
      rewards: [],
    });
    expect(await snapshot(v)).toEqual(before);
    expect((await server.gql('{ viewer { role } }', {}, v.token)).errors).toBeUndefined();
  });
});
