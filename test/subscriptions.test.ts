import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { nextWhere, subscribe, subscriptionTestServer, untilLive } from './helpers/ws.js';

const realtime = subscriptionTestServer({ STATS_THROTTLE_MS: '1500' });
const client = (token: string) => realtime.client(token);

async function ok<T>(query: string, variables: Record<string, unknown>, token: string): Promise<T> {
  const res = await realtime.server.gql<T>(query, variables, token);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

/** A workspace with an active program (one fixed SIGNUP rule of 5.00 USD) and a partner with a link. */
async function fixture() {
  const ws = await realtime.server.workspace();
  const token = ws.keys.test.secret;
  const { createProgram } = await ok<{ createProgram: { program: { id: string } } }>(
    'mutation { createProgram(input: { name: "Live", type: REFERRAL, currency: "USD" }) { program { id } } }',
    {},
    token,
  );
  const programId = createProgram.program.id;
  await ok(
    'mutation($p: ID!) { createRewardRule(input: { programId: $p, trigger: SIGNUP, kind: CASH, amountType: FIXED, fixedAmount: { amount: "5.00", currency: "USD" } }) { userErrors { code } } }',
    { p: programId },
    token,
  );
  const { createPartner } = await ok<{ createPartner: { partner: { id: string; links: Array<{ code: string }> } } }>(
    'mutation($p: ID!) { createPartner(input: { externalId: "ann", name: "Ann", programIds: [$p] }) { partner { id links { code } } } }',
    { p: programId },
    token,
  );
  return { ws, token, programId, partnerId: createPartner.partner.id, code: createPartner.partner.links[0]!.code };
}

let keys = 0;
async function signup(token: string, code: string) {
  const key = `k-${++keys}`;
  const data = await ok<{ recordConversion: { conversion: { id: string }; rewards: Array<{ id: string }> } }>(
    'mutation($k: String!, $c: String!, $r: String!) { recordConversion(input: { type: SIGNUP, idempotencyKey: $k, referredExternalId: $r, code: $c }) { conversion { id } rewards { id } userErrors { code } } }',
    { k: key, c: code, r: `user-${key}` },
    token,
  );
  return data.recordConversion;
}

describe('conversionRecorded', () => {
  it('pushes each conversion of the program with its rewards, resolved with fresh data', async () => {
    const f = await fixture();
    const sub = subscribe<{
      conversionRecorded: {
        id: string;
        status: string;
        partner: { name: string };
        rewards: Array<{ amount: { amount: string } }>;
      };
    }>(
      client(f.token),
      'subscription($p: ID) { conversionRecorded(programId: $p) { id status partner { name } rewards { amount { amount } } } }',
      { p: f.programId },
    );
    await untilLive(sub, () => signup(f.token, f.code));
    const first = await signup(f.token, f.code);
    const got = await nextWhere(sub, (d) => d.conversionRecorded.id === first.conversion.id);
    expect(got.conversionRecorded).toEqual({
      id: first.conversion.id,
      status: 'ACCEPTED',
      partner: { name: 'Ann' },
      rewards: [{ amount: { amount: '5.00' } }],
    });
    await ok(
      'mutation($id: ID!) { updatePartner(input: { id: $id, name: "Ann B." }) { userErrors { code } } }',
      { id: f.partnerId },
      f.token,
    );
    const second = await signup(f.token, f.code);
    expect(
      (await nextWhere(sub, (d) => d.conversionRecorded.id === second.conversion.id)).conversionRecorded.partner.name,
    ).toBe('Ann B.');
    await sub.close();
  });

  it('is refused to PARTNER tokens (program-wide stream)', async () => {
    const f = await fixture();
    const { createPartnerToken } = await ok<{ createPartnerToken: { token: string } }>(
      'mutation($id: ID!) { createPartnerToken(input: { partnerId: $id }) { token } }',
      { id: f.partnerId },
      f.token,
    );
    const sub = subscribe(client(createPartnerToken.token), 'subscription { conversionRecorded { id } }');
    const result = await sub.next();
    expect(JSON.stringify(result.errors)).toContain('PARTNER');
  });
});

describe('rewardStatusChanged', () => {
  it('pushes creation (null → CREATED) and each change with from and to', async () => {
    const f = await fixture();
    const sub = subscribe<{
      rewardStatusChanged: { reward: { id: string; status: string }; from: string | null; to: string };
    }>(
      client(f.token),
      'subscription($p: ID) { rewardStatusChanged(partnerId: $p) { reward { id status } from to at } }',
      { p: f.partnerId },
    );
    await untilLive(sub, () => signup(f.token, f.code));
    const { rewards } = await signup(f.token, f.code);
    const created = (await nextWhere(sub, (d) => d.rewardStatusChanged.reward.id === rewards[0]!.id))
      .rewardStatusChanged;
    expect(created).toMatchObject({ reward: { id: rewards[0]!.id, status: 'CREATED' }, from: null, to: 'CREATED' });
    await ok(
      'mutation($ids: [ID!]!) { updateRewardStatus(input: { ids: $ids, status: APPROVED }) { userErrors { code } } }',
      { ids: [rewards[0]!.id] },
      f.token,
    );
    const approved = await nextWhere(
      sub,
      (d) => d.rewardStatusChanged.reward.id === rewards[0]!.id && d.rewardStatusChanged.to === 'APPROVED',
    );
    expect(approved.rewardStatusChanged).toMatchObject({
      reward: { status: 'APPROVED' },
      from: 'CREATED',
      to: 'APPROVED',
    });
    await sub.close();
  });

  it('lets a PARTNER token follow only its own partner', async () => {
    const f = await fixture();
    const token = (
      await ok<{ createPartnerToken: { token: string } }>(
        'mutation($id: ID!) { createPartnerToken(input: { partnerId: $id }) { token } }',
        { id: f.partnerId },
        f.token,
      )
    ).createPartnerToken.token;
    const other = (
      await ok<{ createPartner: { partner: { id: string } } }>(
        'mutation { createPartner(input: { externalId: "other" }) { partner { id } } }',
        {},
        f.token,
      )
    ).createPartner.partner.id;
    const refused = subscribe(client(token), 'subscription($p: ID) { rewardStatusChanged(partnerId: $p) { to } }', {
      p: other,
    });
    expect(JSON.stringify((await refused.next()).errors)).toContain('FORBIDDEN_FOR_ROLE');
    const own = subscribe<{ rewardStatusChanged: { to: string; reward: { partner: { id: string } } } }>(
      client(token),
      'subscription { rewardStatusChanged { to reward { partner { id } } } }',
    );
    await untilLive(own, () => signup(f.token, f.code));
    await signup(f.token, f.code);
    const seen = await nextWhere(own, (d) => d.rewardStatusChanged.to === 'CREATED');
    expect(seen.rewardStatusChanged.reward.partner.id).toBe(f.partnerId);
    await own.close();
  });
});

describe('programStatsChanged', () => {
  it('sends the latest counters, at most once per throttle interval', async () => {
    const f = await fixture();
    const sub = subscribe<{
      programStatsChanged: { conversions: number; rewards: { created: Array<{ amount: string }> } };
    }>(
      client(f.token),
      'subscription($p: ID!) { programStatsChanged(programId: $p) { conversions rewards { created { amount currency } } } }',
      { p: f.programId },
    );
    let probes = 0;
    await untilLive(sub, () => signup(f.token, f.code).then(() => probes++));
    await Promise.all(Array.from({ length: 4 }, () => signup(f.token, f.code)));
    const total = probes + 4;
    let latest = { conversions: 0, rewards: { created: [] as Array<{ amount: string }> } };
    const arrivals: number[] = [];
    while (latest.conversions < total) {
      latest = (await sub.next()).data!.programStatsChanged;
      arrivals.push(Date.now());
    }
    expect(latest.conversions).toBe(total);
    expect(latest.rewards.created).toEqual([{ amount: `${total * 5}.00`, currency: 'USD' }]);
    // Four conversions committed together reach the subscriber as at most two updates (one may
    // already have been scheduled by a probe), 1.5 s apart (with timer and network slack).
    expect(arrivals.length).toBeLessThanOrEqual(2);
    for (let k = 1; k < arrivals.length; k++) expect(arrivals[k]! - arrivals[k - 1]!).toBeGreaterThanOrEqual(1000);
    await sub.close();
  });

  it('refuses an unknown program', async () => {
    const ws = await realtime.server.workspace();
    const sub = subscribe(
      client(ws.keys.test.secret),
      'subscription($p: ID!) { programStatsChanged(programId: $p) { conversions } }',
      {
        p: Buffer.from('Program:00000000-0000-0000-0000-000000000000').toString('base64'),
      },
    );
    expect(JSON.stringify((await sub.next()).errors)).toContain('Program not found');
  });
});

describe('connections', () => {
  it('are closed with 4403 when their key is revoked', async () => {
    const ws = await realtime.server.workspace();
    const created = await ok<{ createApiKey: { apiKey: { id: string }; secret: string } }>(
      'mutation { createApiKey(input: { name: "short-lived", role: READ_ONLY }) { apiKey { id } secret } }',
      {},
      ws.keys.test.secret,
    );
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      const socket = new WebSocket(`${realtime.server.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
      socket.on('open', () =>
        socket.send(
          JSON.stringify({
            type: 'connection_init',
            payload: { authorization: `Bearer ${created.createApiKey.secret}` },
          }),
        ),
      );
      socket.on('message', (data) => {
        const message = JSON.parse(String(data)) as { type: string };
        if (message.type === 'connection_ack') {
          socket.send(
            JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { events { id } }' } }),
          );
          void realtime.server.gql(
            'mutation($id: ID!) { revokeApiKey(input: { id: $id }) { userErrors { code } } }',
            { id: created.createApiKey.apiKey.id },
            ws.keys.test.secret,
          );
        }
      });
      socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    expect(await closed).toEqual({ code: 4403, reason: 'The credential was revoked.' });
  });
});
