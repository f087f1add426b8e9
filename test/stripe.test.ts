// The Stripe integration (issue 19): connectStripe / disconnectStripe / stripeIntegrations, and
// Stripe's webhook deliveries to POST /integrations/stripe/{id} — real payloads (fixtures shaped
// like the API version the `stripe` package pins), signed with stripe.webhooks.
// generateTestHeaderString, posted to the real server over HTTP.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Stripe from 'stripe';
import { afterEach, describe, expect, it } from 'vitest';
import { SecretBox } from '../src/lib/secret-box.js';
import { fromStripeMinor, planStripeEvent, stripeDigits } from '../src/modules/integration/stripe-events.js';
import { graphql } from './gql/index.js';
import { factories, gid, uuidv7 } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';

const PUBLIC_URL = 'https://ref.example.com';
const fixture = useTwoWorkspaces({ env: { PUBLIC_URL }, names: ['Stripe A', 'Stripe B'] });
const prisma = () => fixture.server.testDb.db.prisma;

const CONNECT = graphql(`
  mutation ST_Connect($input: ConnectStripeInput!) {
    connectStripe(input: $input) {
      integration { id webhookUrl customerKey customerMetadataKey createdAt lastEventAt program { id } }
      userErrors { code field message }
    }
  }
`);
const DISCONNECT = graphql(`
  mutation ST_Disconnect($input: DisconnectStripeInput!) {
    disconnectStripe(input: $input) { integration { id } userErrors { code field message } }
  }
`);
const LIST = graphql(`
  query ST_List {
    stripeIntegrations {
      id webhookUrl lastEventAt
      events(first: 20) {
        totalCount
        edges { node { id stripeEventId type outcome reason receivedAt conversion { id type status amount { amount currency } } } }
      }
    }
  }
`);
const LOG_PAGE = graphql(`
  query ST_LogPage($id: ID!, $after: String) {
    node(id: $id) {
      ... on StripeIntegration {
        events(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { stripeEventId outcome } } }
      }
    }
  }
`);

// --- Fixtures and deliveries -----------------------------------------------------------------------

const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'stripe');
/** A Stripe payload, edited freely by tests. */
type Payload = any;

let sequence = 0;
/** A Stripe event from a fixture file: a fresh event id, created now; `edit` changes its object. */
function stripeEvent(name: string, edit: (object: Payload, event: Payload) => void = () => {}): Payload {
  const event = JSON.parse(fs.readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8'));
  event.id = `evt_test_${++sequence}_${randomBytes(6).toString('hex')}`;
  event.created = Math.floor(Date.now() / 1000);
  edit(event.data.object, event);
  return event;
}

interface Connected {
  /** Global id. */
  id: string;
  rowId: string;
  secret: string;
  programId: string;
  programRowId: string;
  partnerId: string;
  partnerRowId: string;
  code: string;
  linkRowId: string;
}

const newSecret = () => `whsec_${randomBytes(24).toString('base64url')}`;

interface Delivery {
  status: number;
  body: { outcome?: string; reason?: string | null; conversionId?: string | null; error?: string };
}

/** POST an event (an object, or a raw body) to an integration, signed like Stripe signs it. */
async function deliver(
  to: { rowId: string; secret: string },
  event: Payload,
  options: { secret?: string; timestamp?: number; signature?: string | null } = {},
): Promise<Delivery> {
  const payload = typeof event === 'string' ? event : JSON.stringify(event);
  const signature =
    options.signature === undefined
      ? Stripe.webhooks.generateTestHeaderString({
          payload,
          secret: options.secret ?? to.secret,
          ...(options.timestamp ? { timestamp: options.timestamp } : {}),
        })
      : options.signature;
  const res = await fetch(`${fixture.server.url}/integrations/stripe/${to.rowId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(signature === null ? {} : { 'stripe-signature': signature }) },
    body: payload,
  });
  return { status: res.status, body: (await res.json()) as Delivery['body'] };
}

/**
 * A program with a partner, a link and reward rules (SIGNUP 5.00, PURCHASE 10 %, SUBSCRIPTION
 * 20 %), and a Stripe integration for it.
 */
async function connected(
  options: {
    token?: string;
    tenant?: { workspaceId: string; mode: 'TEST' | 'LIVE' };
    currency?: string;
    customerKey?: 'CUSTOMER_ID' | 'CUSTOMER_METADATA';
    customerMetadataKey?: string;
  } = {},
): Promise<Connected> {
  const tenant = options.tenant ?? fixture.tenant;
  const f = factories(prisma(), tenant);
  const currency = options.currency ?? 'USD';
  const program = await f.program({ currency });
  await f.rule(program.id, { trigger: 'SIGNUP', fixedAmount: 500n, fixedCurrency: 'USD' });
  for (const [trigger, bp] of [
    ['PURCHASE', 1000],
    ['SUBSCRIPTION', 2000],
  ] as const) {
    await f.rule(program.id, {
      trigger,
      amountType: 'PERCENTAGE',
      percentageBasisPoints: bp,
      fixedAmount: null,
      fixedCurrency: null,
    });
  }
  const partner = await f.partner();
  const link = await f.link(await f.enrollment({ programId: program.id, partnerId: partner.id }));
  const secret = newSecret();
  const res = await fixture.gql(
    CONNECT,
    {
      input: {
        programId: gid('Program', program.id),
        signingSecret: secret,
        customerKey: options.customerKey,
        customerMetadataKey: options.customerMetadataKey,
      },
    },
    options.token ?? fixture.admin,
  );
  expect(res.data!.connectStripe.userErrors).toEqual([]);
  const integration = res.data!.connectStripe.integration!;
  return {
    id: integration.id,
    rowId: integration.webhookUrl.split('/').pop()!,
    secret,
    programId: gid('Program', program.id),
    programRowId: program.id,
    partnerId: gid('Partner', partner.id),
    partnerRowId: partner.id,
    code: link.code,
    linkRowId: link.id,
  };
}

/** A click id of the integration's link, as the redirect adds it (`rg_click`). */
const clickIdFor = (c: Connected) => fixture.server.app.services.clicks.codec.encode(uuidv7(), c.linkRowId, false);

const conversionsOf = (c: Connected) =>
  prisma().conversion.findMany({
    where: { idempotencyKey: { startsWith: `stripe:${c.rowId}:` } },
    include: { rewards: { orderBy: { id: 'asc' } } },
    orderBy: { id: 'asc' },
  });

const logOf = (c: Connected) =>
  prisma().stripeEventLog.findMany({ where: { integrationId: c.rowId }, orderBy: { id: 'asc' } });

// Each test connects its own integrations: disconnected afterwards, so the workspace stays under
// its limit of connected integrations.
afterEach(async () => {
  await prisma().stripeIntegration.updateMany({
    where: { disconnectedAt: null },
    data: { disconnectedAt: new Date() },
  });
});

// --- Connecting --------------------------------------------------------------------------------------------

describe('connectStripe', () => {
  it('connects a program, answers the webhook URL, seals the secret, and appends integration.connected', async () => {
    const before = await prisma().event.count({ where: { ...fixture.tenant, type: 'integration.connected' } });
    const c = await connected();
    const res = await fixture.gql(LIST, {}, fixture.admin);
    const mine = res.data!.stripeIntegrations.find((i) => i.id === c.id)!;
    expect(mine.webhookUrl).toBe(`${PUBLIC_URL}/integrations/stripe/${c.rowId}`);
    expect(c.rowId).toMatch(/^[0-9a-f-]{36}$/);
    expect(mine.lastEventAt).toBeNull();
    const row = await prisma().stripeIntegration.findUniqueOrThrow({ where: { id: c.rowId } });
    // Sealed: neither the secret nor its key part is stored in clear.
    expect(row.signingSecret).not.toContain(c.secret.slice('whsec_'.length));
    expect(row.signingSecret).toMatch(/^v1\./);
    expect(await prisma().event.count({ where: { ...fixture.tenant, type: 'integration.connected' } })).toBe(
      before + 1,
    );
  });

  it('refuses a secret that is not whsec_…, a customer key without its metadata key, an unknown program; nothing is stored', async () => {
    const f = factories(prisma(), fixture.tenant);
    const program = gid('Program', (await f.program()).id);
    const count = () => Promise.all([prisma().stripeIntegration.count(), prisma().event.count()]);
    const before = await count();
    const attempt = (input: Record<string, unknown>, token = fixture.admin) =>
      fixture.gql(CONNECT, { input: { programId: program, signingSecret: newSecret(), ...input } } as never, token);

    for (const signingSecret of [
      'sk_test_51Abcdefghijklmnopqrstuvwxyz',
      'whsec_short',
      'whsec_ has spaces in it 1234',
      '',
    ]) {
      const res = await attempt({ signingSecret });
      expect(res.data!.connectStripe.userErrors).toEqual([
        { code: 'VALIDATION', field: ['input', 'signingSecret'], message: expect.stringContaining('whsec_') },
      ]);
    }
    const noKey = await attempt({ customerKey: 'CUSTOMER_METADATA' });
    expect(noKey.data!.connectStripe.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'customerMetadataKey'] }),
    ]);
    const keyWithoutMode = await attempt({ customerMetadataKey: 'user_id' });
    expect(keyWithoutMode.data!.connectStripe.userErrors[0]).toMatchObject({
      code: 'VALIDATION',
      field: ['input', 'customerMetadataKey'],
    });
    // Another workspace's program, the other mode's, a malformed id: NOT_FOUND.
    for (const [programId, token] of [
      [program, fixture.otherAdmin],
      [program, fixture.liveAdmin],
      ['nope', fixture.admin],
    ] as const) {
      const res = await attempt({ programId }, token);
      expect(res.data!.connectStripe.userErrors).toEqual([
        expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'programId'] }),
      ]);
    }
    expect(await count()).toEqual(before);
  });

  it('allows at most 20 connected integrations per workspace and mode (LIMIT_EXCEEDED), disconnected ones not counted', async () => {
    const f = factories(prisma(), fixture.tenant);
    const programId = gid('Program', (await f.program()).id);
    const connect = () => fixture.gql(CONNECT, { input: { programId, signingSecret: newSecret() } }, fixture.admin);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await connect();
      expect(res.data!.connectStripe.userErrors).toEqual([]);
      ids.push(res.data!.connectStripe.integration!.id);
    }
    const over = await connect();
    expect(over.data!.connectStripe.userErrors).toEqual([
      { code: 'LIMIT_EXCEEDED', field: ['input'], message: expect.stringContaining('20') },
    ]);
    expect(
      (await fixture.gql(DISCONNECT, { input: { id: ids[0]! } }, fixture.admin)).data!.disconnectStripe.userErrors,
    ).toEqual([]);
    expect((await connect()).data!.connectStripe.userErrors).toEqual([]);
  });

  it('is ADMIN only; READ_ONLY may read the integrations and their logs, PARTNER may not', async () => {
    const c = await connected();
    const reader = await readOnlyKey(fixture.server, fixture.admin);
    const refused = await fixture.gql(
      CONNECT,
      { input: { programId: c.programId, signingSecret: newSecret() } },
      reader,
    );
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const disconnect = await fixture.gql(DISCONNECT, { input: { id: c.id } }, reader);
    expect(disconnect.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect((await fixture.gql(LIST, {}, reader)).data!.stripeIntegrations.map((i) => i.id)).toContain(c.id);

    const partner = await partnerToken(fixture.server, fixture.admin, c.partnerRowId);
    const asPartner = await fixture.gql(LIST, {}, partner);
    expect(asPartner.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const node = await fixture.gql(LOG_PAGE, { id: c.id }, partner);
    expect(node.data?.node ?? null).toBeNull();
  });

  it('integration events name the integration as their subject (for ADMIN and READ_ONLY)', async () => {
    const c = await connected();
    const reader = await readOnlyKey(fixture.server, fixture.admin);
    for (const token of [fixture.admin, reader]) {
      const res = await fixture.gql(
        graphql(`
          query ST_Events {
            events(first: 100, types: ["integration.connected"]) { edges { node { type payload subject { __typename id } } } }
          }
        `),
        {},
        token,
      );
      const mine = res.data!.events.edges.filter(
        (e) => (JSON.parse(e.node.payload as string) as { integrationId: string }).integrationId === c.id,
      );
      expect(mine.map((e) => e.node.subject)).toEqual([{ __typename: 'StripeIntegration', id: c.id }]);
    }
  });

  it('lists only the caller’s workspace and mode; disconnecting refuses deliveries from then on', async () => {
    const c = await connected();
    for (const token of [fixture.otherAdmin, fixture.liveAdmin]) {
      const res = await fixture.gql(LIST, {}, token);
      expect(res.data!.stripeIntegrations.map((i) => i.id)).not.toContain(c.id);
      expect((await fixture.gql(LOG_PAGE, { id: c.id }, token)).data!.node).toBeNull();
      const refused = await fixture.gql(DISCONNECT, { input: { id: c.id } }, token);
      expect(refused.data!.disconnectStripe.userErrors[0]!.code).toBe('NOT_FOUND');
    }
    expect((await deliver(c, stripeEvent('payment_intent.succeeded'))).status).toBe(200);
    const done = await fixture.gql(DISCONNECT, { input: { id: c.id } }, fixture.admin);
    expect(done.data!.disconnectStripe).toEqual({ integration: { id: c.id }, userErrors: [] });
    expect((await fixture.gql(LIST, {}, fixture.admin)).data!.stripeIntegrations.map((i) => i.id)).not.toContain(c.id);
    // Still readable by id, with its log.
    const log = await fixture.gql(LOG_PAGE, { id: c.id }, fixture.admin);
    expect(log.data!.node).toMatchObject({ events: { totalCount: 1 } });
    const after = await deliver(c, stripeEvent('payment_intent.succeeded'));
    expect(after.status).toBe(404);
    expect(await prisma().stripeEventLog.count({ where: { integrationId: c.rowId } })).toBe(1);
    const again = await fixture.gql(DISCONNECT, { input: { id: c.id } }, fixture.admin);
    expect(again.data!.disconnectStripe.userErrors[0]!.code).toBe('NOT_FOUND');
    const disconnected = await prisma().event.findMany({
      where: { ...fixture.tenant, type: 'integration.disconnected' },
    });
    expect(disconnected.filter((e) => (e.payload as { integrationId: string }).integrationId === c.id)).toHaveLength(1);
  });
});

// --- Bad input ---------------------------------------------------------------------------------------------

describe('refused deliveries', () => {
  it('400 for a missing, forged, other-secret or stale signature, a body that is not JSON or not an event; nothing recorded or logged', async () => {
    const c = await connected();
    const event = stripeEvent('checkout.session.completed.payment', (s) => {
      s.metadata = { ref: c.code };
    });
    const cases: Array<[string, Promise<Delivery>]> = [
      ['no header', deliver(c, event, { signature: null })],
      ['garbage header', deliver(c, event, { signature: 'nonsense' })],
      ['forged v1', deliver(c, event, { signature: `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}` })],
      ['another secret', deliver(c, event, { secret: newSecret() })],
      ['stale timestamp', deliver(c, event, { timestamp: Math.floor(Date.now() / 1000) - 301 })],
      ['not JSON', deliver(c, 'this is not json')],
      ['not an event', deliver(c, JSON.stringify({ id: 'cs_1', object: 'checkout.session' }))],
      ['an event without data', deliver(c, JSON.stringify({ ...event, data: null }))],
    ];
    for (const [what, pending] of cases) {
      const res = await pending;
      expect(res.status, what).toBe(400);
      expect(res.body.error, what).toEqual(expect.any(String));
      // Stripe's own message may describe the secret: never echoed.
      expect(res.body.error, what).not.toMatch(/characters long|ends in/);
    }
    expect(await conversionsOf(c)).toEqual([]);
    expect(await logOf(c)).toEqual([]);
    // The same event, properly signed, goes through.
    expect((await deliver(c, event)).body.outcome).toBe('RECORDED');
  });

  it('404 for an unknown integration, 405 for another method, 413 for a body over 1 MiB', async () => {
    const c = await connected();
    const event = stripeEvent('payment_intent.succeeded');
    expect((await deliver({ rowId: uuidv7(), secret: c.secret }, event)).status).toBe(404);
    expect((await deliver({ rowId: 'not-a-uuid', secret: c.secret }, event)).status).toBe(404);
    // Another workspace's integration id with this secret: the secret does not match there.
    const other = await connected({ token: fixture.otherAdmin, tenant: fixture.otherTenant });
    expect((await deliver({ rowId: other.rowId, secret: c.secret }, event)).status).toBe(400);
    const get = await fetch(`${fixture.server.url}/integrations/stripe/${c.rowId}`);
    expect(get.status).toBe(405);
    const big = JSON.stringify({ ...event, padding: 'x'.repeat(1024 * 1024) });
    expect((await deliver(c, big)).status).toBe(413);
    expect(await logOf(c)).toEqual([]);
  });

  it('an event of the other mode: 400, logged FAILED with integration.failed, nothing recorded', async () => {
    const c = await connected();
    const event = stripeEvent('checkout.session.completed.payment', (s, e) => {
      e.livemode = true;
      s.livemode = true;
    });
    const res = await deliver(c, event);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/live-mode event reached a TEST integration/);
    const [log] = await logOf(c);
    expect(log).toMatchObject({
      stripeEventId: event.id,
      outcome: 'FAILED',
      reason: expect.stringMatching(/live-mode/),
    });
    expect(await conversionsOf(c)).toEqual([]);
    const failed = await prisma().event.findMany({ where: { ...fixture.tenant, type: 'integration.failed' } });
    expect(failed.map((e) => e.payload)).toContainEqual(
      expect.objectContaining({ integrationId: c.id, stripeEventId: event.id, reason: log!.reason }),
    );
    // Sent again (Stripe retries): still refused, the failure is not appended twice.
    expect((await deliver(c, event)).status).toBe(400);
    const again = await prisma().event.findMany({ where: { ...fixture.tenant, type: 'integration.failed' } });
    expect(again.filter((e) => (e.payload as { stripeEventId: string }).stripeEventId === event.id)).toHaveLength(1);
  });

  it('an event it cannot apply: 422 (Stripe retries), logged FAILED with integration.failed once; taken up again when sent again', async () => {
    const c = await connected();
    const bad = stripeEvent('invoice.paid', (inv) => {
      inv.currency = 'zzz';
      inv.billing_reason = 'subscription_cycle';
      inv.metadata = { ref: c.code };
    });
    const res = await deliver(c, bad);
    expect(res).toMatchObject({
      status: 422,
      body: { outcome: 'FAILED', reason: expect.stringContaining('currency') },
    });
    expect((await deliver(c, bad)).status).toBe(422);
    const failures = async () =>
      (await prisma().event.findMany({ where: { ...fixture.tenant, type: 'integration.failed' } })).filter(
        (e) => (e.payload as { stripeEventId: string }).stripeEventId === bad.id,
      );
    expect(await failures()).toHaveLength(1);
    expect(await conversionsOf(c)).toEqual([]);
    // The same event id, applicable this time (a retry after the cause was fixed): recorded.
    bad.data.object.currency = 'usd';
    expect(await deliver(c, bad)).toMatchObject({ status: 200, body: { outcome: 'RECORDED' } });
    expect(await conversionsOf(c)).toHaveLength(1);
    expect((await logOf(c)).map((l) => l.outcome)).toEqual(['RECORDED']);
  });

  it('ignores types it does not apply (200, logged IGNORED) and zero-amount invoices', async () => {
    const c = await connected();
    const other = await deliver(c, stripeEvent('payment_intent.succeeded'));
    expect(other).toMatchObject({
      status: 200,
      body: { outcome: 'IGNORED', reason: expect.stringContaining('payment_intent.succeeded') },
    });
    const trial = await deliver(
      c,
      stripeEvent('invoice.paid', (inv) => {
        inv.amount_paid = 0;
        inv.total = 0;
      }),
    );
    expect(trial).toMatchObject({
      status: 200,
      body: { outcome: 'IGNORED', reason: expect.stringContaining('paid nothing') },
    });
    expect(await conversionsOf(c)).toEqual([]);
  });
});

// --- Payments --------------------------------------------------------------------------------------------

describe('checkout sessions and invoices', () => {
  it('a subscription: the session binds the customer through rg_click (SIGNUP), each paid invoice is a SUBSCRIPTION', async () => {
    const c = await connected();
    const session = stripeEvent('checkout.session.completed.subscription', (s) => {
      s.metadata = { rg_click: clickIdFor(c) };
    });
    const signup = await deliver(c, session);
    expect(signup).toMatchObject({ status: 200, body: { outcome: 'RECORDED' } });
    const invoice = stripeEvent('invoice.paid');
    expect((await deliver(c, invoice)).body.outcome).toBe('RECORDED');
    const renewal = stripeEvent('invoice.paid', (inv) => {
      inv.id = 'in_1SubRenewal000000000001';
      inv.billing_reason = 'subscription_cycle';
      inv.amount_paid = 5900;
    });
    expect((await deliver(c, renewal)).body.outcome).toBe('RECORDED');

    const conversions = await conversionsOf(c);
    expect(conversions.map((x) => [x.type, x.status, x.amount, x.currency, x.partnerId, x.referredExternalId])).toEqual(
      [
        ['SIGNUP', 'ACCEPTED', null, null, c.partnerRowId, 'cus_Sub0000000001'],
        ['SUBSCRIPTION', 'ACCEPTED', 4900n, 'USD', c.partnerRowId, 'cus_Sub0000000001'],
        ['SUBSCRIPTION', 'ACCEPTED', 5900n, 'USD', c.partnerRowId, 'cus_Sub0000000001'],
      ],
    );
    expect(conversions.map((x) => x.rewards.map((r) => r.amount))).toEqual([[500n], [980n], [1180n]]);
    expect(conversions[1]).toMatchObject({
      referredEmail: 'ada@example.com',
      productId: 'prod_Pro0000000001',
      occurredAt: new Date(1796666390 * 1000),
      metadata: expect.objectContaining({
        stripe_invoice: 'in_1SubFirstInvoice0000000',
        stripe_subscription: 'sub_1Subscription000000001',
      }),
    });

    // The log: newest first, with the conversions; lastEventAt set.
    const list = await fixture.gql(LIST, {}, fixture.admin);
    const mine = list.data!.stripeIntegrations.find((i) => i.id === c.id)!;
    expect(mine.lastEventAt).not.toBeNull();
    expect(mine.events.totalCount).toBe(3);
    expect(
      mine.events.edges.map((e) => [e.node.stripeEventId, e.node.type, e.node.outcome, e.node.conversion?.type]),
    ).toEqual([
      [renewal.id, 'invoice.paid', 'RECORDED', 'SUBSCRIPTION'],
      [invoice.id, 'invoice.paid', 'RECORDED', 'SUBSCRIPTION'],
      [session.id, 'checkout.session.completed', 'RECORDED', 'SIGNUP'],
    ]);
    const first = await fixture.gql(LOG_PAGE, { id: c.id }, fixture.admin);
    const page = (first.data!.node as { events: { pageInfo: { hasNextPage: boolean; endCursor: string } } }).events;
    expect(page.pageInfo.hasNextPage).toBe(true);
    const next = await fixture.gql(LOG_PAGE, { id: c.id, after: page.pageInfo.endCursor }, fixture.admin);
    expect((next.data!.node as { events: { edges: Array<{ node: { stripeEventId: string } }> } }).events.edges).toEqual(
      [{ node: { stripeEventId: session.id, outcome: 'RECORDED' } }],
    );
  });

  it('attributes by metadata.ref, by client_reference_id (a click id or a code), and not at all', async () => {
    const c = await connected();
    const sessions = [
      { metadata: { ref: c.code } },
      { client_reference_id: clickIdFor(c) },
      { client_reference_id: c.code.toUpperCase() },
      { metadata: {} },
    ].map((fields, i) =>
      stripeEvent('checkout.session.completed.payment', (s) => {
        Object.assign(s, fields);
        s.id = `cs_test_attribution_${i}`;
        s.customer = `cus_attribution_${i}`;
        s.payment_intent = `pi_attribution_${i}`;
      }),
    );
    for (const session of sessions) expect((await deliver(c, session)).body.outcome).toBe('RECORDED');
    const conversions = await conversionsOf(c);
    expect(conversions.map((x) => [x.type, x.amount, x.status, x.discardReason, x.partnerId])).toEqual([
      ['PURCHASE', 4900n, 'ACCEPTED', null, c.partnerRowId],
      ['PURCHASE', 4900n, 'ACCEPTED', null, c.partnerRowId],
      ['PURCHASE', 4900n, 'ACCEPTED', null, c.partnerRowId],
      ['PURCHASE', 4900n, 'DISCARDED', 'NO_ATTRIBUTION', null],
    ]);
    expect(conversions[1]!.clickId).not.toBeNull();
  });

  it('a first invoice that comes before its Checkout Session is PARKED, then recorded for the partner when the session arrives', async () => {
    const c = await connected();
    const invoice = await deliver(c, stripeEvent('invoice.paid'));
    expect(invoice).toMatchObject({
      status: 200,
      body: { outcome: 'PARKED', reason: expect.stringContaining('sub_1Subscription000000001') },
    });
    expect(await conversionsOf(c)).toEqual([]);
    const session = await deliver(
      c,
      stripeEvent('checkout.session.completed.subscription', (s) => {
        s.metadata = { ref: c.code };
      }),
    );
    expect(session.body.outcome).toBe('RECORDED');
    const conversions = await conversionsOf(c);
    expect(conversions.map((x) => [x.type, x.status, x.partnerId])).toEqual([
      ['SIGNUP', 'ACCEPTED', c.partnerRowId],
      ['SUBSCRIPTION', 'ACCEPTED', c.partnerRowId],
    ]);
    expect((await logOf(c)).map((l) => [l.type, l.outcome, l.payload])).toEqual([
      ['invoice.paid', 'RECORDED', null],
      ['checkout.session.completed', 'RECORDED', null],
    ]);
  });

  it('a parked first invoice whose session never comes is recorded after the wait (no referral: NO_ATTRIBUTION)', async () => {
    const c = await connected();
    expect((await deliver(c, stripeEvent('invoice.paid'))).body.outcome).toBe('PARKED');
    // An hour later (moved by hand: no sleeping), the next delivery's sweep records it.
    await prisma().stripeEventLog.updateMany({
      where: { integrationId: c.rowId },
      data: { releaseAt: new Date(Date.now() - 1000) },
    });
    expect((await deliver(c, stripeEvent('payment_intent.succeeded'))).body.outcome).toBe('IGNORED');
    const conversions = await conversionsOf(c);
    expect(conversions.map((x) => [x.type, x.status, x.discardReason])).toEqual([
      ['SUBSCRIPTION', 'DISCARDED', 'NO_ATTRIBUTION'],
    ]);
  });

  it('a Stripe promotion code that is a refgraph coupon attributes like couponCode (learned from promotion_code.created)', async () => {
    const c = await connected();
    const code = `STRIPE${randomBytes(3).toString('hex').toUpperCase()}`;
    const coupon = await fixture.gql(
      graphql(`
        mutation ST_Coupon($input: CreateCouponInput!) { createCoupon(input: $input) { coupon { id } userErrors { code message } } }
      `),
      { input: { programId: c.programId, partnerId: c.partnerId, code } },
      fixture.admin,
    );
    expect(coupon.data!.createCoupon.userErrors).toEqual([]);
    const learned = await deliver(
      c,
      stripeEvent('promotion_code.created', (p) => {
        p.code = code.toLowerCase();
      }),
    );
    expect(learned.body).toMatchObject({ outcome: 'IGNORED', reason: expect.stringContaining('Noted promotion code') });
    const session = stripeEvent('checkout.session.completed.payment', (s) => {
      s.discounts = [{ coupon: null, promotion_code: 'promo_1Alice0000000001' }];
    });
    expect((await deliver(c, session)).body.outcome).toBe('RECORDED');
    const [conversion] = await conversionsOf(c);
    expect(conversion).toMatchObject({ status: 'ACCEPTED', partnerId: c.partnerRowId, couponId: expect.any(String) });
  });

  it('CUSTOMER_METADATA: an invoice waits (PARKED) for the customer’s metadata, then records for that id', async () => {
    const c = await connected({ customerKey: 'CUSTOMER_METADATA', customerMetadataKey: 'user_id' });
    // The person was referred in your product already (a signup recorded by your backend with your own id).
    await prisma().referral.create({
      data: {
        ...fixture.tenant,
        id: uuidv7(),
        programId: c.programRowId,
        partnerId: c.partnerRowId,
        externalId: 'user-4242',
      },
    });
    const invoice = stripeEvent('invoice.paid', (inv) => {
      inv.customer = 'cus_Meta0000000001';
      inv.billing_reason = 'subscription_cycle';
    });
    const parked = await deliver(c, invoice);
    expect(parked.body).toMatchObject({ outcome: 'PARKED', reason: expect.stringContaining('user_id') });
    expect((await deliver(c, stripeEvent('customer.created'))).body.outcome).toBe('IGNORED');
    const conversions = await conversionsOf(c);
    expect(conversions.map((x) => [x.type, x.status, x.referredExternalId, x.partnerId])).toEqual([
      ['SUBSCRIPTION', 'ACCEPTED', 'user-4242', c.partnerRowId],
    ]);
    expect((await deliver(c, invoice)).body.outcome).toBe('RECORDED');
  });
});

// --- Refunds -----------------------------------------------------------------------------------------------

describe('refunds', () => {
  it('refunds the newly refunded amount only: running totals of charge.refunded, with refund.created alongside', async () => {
    const c = await connected();
    expect(
      (
        await deliver(
          c,
          stripeEvent('checkout.session.completed.payment', (s) => (s.metadata = { ref: c.code })),
        )
      ).body.outcome,
    ).toBe('RECORDED');
    const first = await deliver(c, stripeEvent('charge.refunded')); // 10.00 of 49.00
    expect(first.body).toMatchObject({ outcome: 'REFUNDED', reason: expect.stringContaining('10.00 USD') });
    // The same refund's refund.created adds nothing; the running total 25.00 adds 15.00.
    expect((await deliver(c, stripeEvent('refund.created'))).body.outcome).toBe('IGNORED');
    const second = await deliver(
      c,
      stripeEvent('charge.refunded', (ch) => {
        ch.amount_refunded = 2500;
      }),
    );
    expect(second.body).toMatchObject({ outcome: 'REFUNDED', reason: expect.stringContaining('15.00 USD') });
    // A late, older total changes nothing.
    expect((await deliver(c, stripeEvent('charge.refunded'))).body.outcome).toBe('IGNORED');

    const conversions = await conversionsOf(c);
    const refunds = await prisma().conversion.findMany({
      where: { refundOfId: conversions[0]!.id },
      include: { rewards: true },
      orderBy: { id: 'asc' },
    });
    expect(refunds.map((r) => [r.type, r.amount, r.rewards.map((w) => w.amount)])).toEqual([
      ['REFUND', 1000n, [-100n]],
      ['REFUND', 1500n, [-150n]],
    ]);
  });

  it('a refund before its payment is PARKED and applied once when the payment arrives', async () => {
    const c = await connected();
    const refund = stripeEvent('charge.refunded', (ch) => {
      ch.amount_refunded = 4900;
      ch.refunded = true;
    });
    const parked = await deliver(c, refund);
    expect(parked.body).toMatchObject({ outcome: 'PARKED', reason: expect.stringContaining('not recorded yet') });
    expect((await deliver(c, refund)).body.outcome).toBe('PARKED');
    const payment = await deliver(
      c,
      stripeEvent('checkout.session.completed.payment', (s) => (s.metadata = { ref: c.code })),
    );
    expect(payment.body.outcome).toBe('RECORDED');
    // Applied by the payment's delivery, before it answered.
    const log = await logOf(c);
    expect(log.map((l) => [l.type, l.outcome])).toEqual([
      ['charge.refunded', 'REFUNDED'],
      ['checkout.session.completed', 'RECORDED'],
    ]);
    // Redelivered after that: the same answer, no second refund.
    expect((await deliver(c, refund)).body.outcome).toBe('REFUNDED');
    const [purchase] = await conversionsOf(c);
    const refunds = await prisma().conversion.findMany({ where: { refundOfId: purchase!.id } });
    expect(refunds.map((r) => r.amount)).toEqual([4900n]);
    const rewards = await prisma().reward.findMany({ where: { conversionId: purchase!.id } });
    expect(rewards.map((r) => r.status)).toEqual(['CANCELED']);
  });

  it('a subscription payment’s refund finds it through invoice_payment.paid, whatever the order', async () => {
    const c = await connected();
    const refund = stripeEvent('charge.refunded', (ch) => {
      ch.id = 'ch_3InvoiceCharge00000001';
      ch.payment_intent = 'pi_3InvoicePayment0000001';
      ch.amount_refunded = 4900;
    });
    expect((await deliver(c, refund)).body.outcome).toBe('PARKED');
    expect((await deliver(c, stripeEvent('invoice_payment.paid'))).body.outcome).toBe('IGNORED');
    // Linked to the invoice, which is not recorded yet: still waiting, now for the invoice.
    expect((await logOf(c))[0]).toMatchObject({
      outcome: 'PARKED',
      waitingFor: ['ch_3InvoiceCharge00000001', 'in_1SubFirstInvoice0000000'],
    });
    expect(
      (
        await deliver(
          c,
          stripeEvent('checkout.session.completed.subscription', (s) => (s.metadata = { ref: c.code })),
        )
      ).body.outcome,
    ).toBe('RECORDED');
    expect((await deliver(c, stripeEvent('invoice.paid'))).body.outcome).toBe('RECORDED');
    const log = await logOf(c);
    expect(log.map((l) => l.outcome)).toEqual(['REFUNDED', 'IGNORED', 'RECORDED', 'RECORDED']);
    const subscription = (await conversionsOf(c)).find((x) => x.type === 'SUBSCRIPTION')!;
    expect(await prisma().conversion.count({ where: { refundOfId: subscription.id, amount: 4900n } })).toBe(1);
  });

  it('zero-decimal currencies are exact: JPY amounts are yen', async () => {
    const c = await connected({ currency: 'JPY' });
    const invoice = stripeEvent('invoice.paid', (inv) => {
      inv.currency = 'jpy';
      inv.amount_paid = 1505;
      inv.billing_reason = 'subscription_cycle';
      inv.metadata = { ref: c.code };
    });
    expect((await deliver(c, invoice)).body).toMatchObject({
      outcome: 'RECORDED',
      reason: expect.stringContaining('1505 JPY'),
    });
    const refund = stripeEvent('refund.created', (re) => {
      re.currency = 'jpy';
      re.amount = 505;
      re.charge = 'ch_jpy';
      re.payment_intent = 'pi_jpy';
    });
    expect((await deliver(c, refund)).body.outcome).toBe('PARKED');
    const link = stripeEvent('invoice_payment.paid', (ip) => {
      ip.currency = 'jpy';
      ip.payment.payment_intent = 'pi_jpy';
    });
    expect((await deliver(c, link)).body.outcome).toBe('IGNORED');
    const [payment] = await conversionsOf(c);
    expect(payment).toMatchObject({ amount: 1505n, currency: 'JPY' });
    // 20 % of ¥1505 = ¥301; refunding ¥505 of it takes back ¥101 (half-up of 100.99…).
    expect(payment!.rewards.map((r) => [r.amount, r.currency])).toEqual([[301n, 'JPY']]);
    const [refunded] = await prisma().conversion.findMany({
      where: { refundOfId: payment!.id },
      include: { rewards: true },
    });
    expect([refunded!.amount, refunded!.currency, refunded!.rewards.map((r) => r.amount)]).toEqual([
      505n,
      'JPY',
      [-101n],
    ]);
  });
});

describe('Stripe amounts (pure)', () => {
  it('converts Stripe’s minor units exactly, or refuses', () => {
    expect(stripeDigits('JPY')).toBe(0);
    expect(fromStripeMinor(1500n, 'JPY')).toBe(1500n);
    expect(fromStripeMinor(4900n, 'USD')).toBe(4900n);
    expect(fromStripeMinor(12340n, 'KWD')).toBe(12340n); // thousandths on both sides
    expect(fromStripeMinor(50000n, 'ISK')).toBe(500n); // Stripe counts ISK in hundredths
    expect(() => fromStripeMinor(50001n, 'ISK')).toThrow(/fraction/);
    const plan = planStripeEvent(
      stripeEvent('invoice.paid', (inv) => {
        inv.currency = 'zzz';
      }),
      { customerMetadataKey: null, isClickId: () => false },
    );
    expect(plan).toMatchObject({ kind: 'fail', reason: expect.stringContaining('currency') });
  });

  it('seals secrets for one purpose and one row', () => {
    const box = new SecretBox('x'.repeat(48), 'purpose');
    const sealed = box.seal('whsec_abc', 'row-1');
    expect(box.open(sealed, 'row-1')).toBe('whsec_abc');
    expect(box.open(sealed, 'row-2')).toBeNull();
    expect(new SecretBox('y'.repeat(48), 'purpose').open(sealed, 'row-1')).toBeNull();
    expect(new SecretBox('x'.repeat(48), 'other').open(sealed, 'row-1')).toBeNull();
  });
});

// --- Exactly once ------------------------------------------------------------------------------------------

describe('concurrent and repeated deliveries', () => {
  it('10 concurrent deliveries of one invoice record it once; every 2xx comes after the commit', async () => {
    const c = await connected();
    const invoice = stripeEvent('invoice.paid', (inv) => {
      inv.billing_reason = 'subscription_cycle';
      inv.metadata = { ref: c.code };
    });
    const answers = await Promise.all(Array.from({ length: 10 }, () => deliver(c, invoice)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(new Set(answers.map((a) => a.body.outcome))).toEqual(new Set(['RECORDED']));
    const conversions = await conversionsOf(c);
    expect(conversions).toHaveLength(1);
    expect(new Set(answers.map((a) => a.body.conversionId))).toEqual(new Set([gid('Conversion', conversions[0]!.id)]));
    expect(conversions[0]!.rewards).toHaveLength(1);
    expect(await logOf(c)).toHaveLength(1);
    expect(
      await prisma().event.count({
        where: {
          ...fixture.tenant,
          type: 'conversion.recorded',
          payload: { path: ['conversionId'], equals: gid('Conversion', conversions[0]!.id) },
        },
      }),
    ).toBe(1);
  });

  it('10 concurrent deliveries of one refund refund once', async () => {
    const c = await connected();
    await deliver(
      c,
      stripeEvent('checkout.session.completed.payment', (s) => (s.metadata = { ref: c.code })),
    );
    const refund = stripeEvent('charge.refunded', (ch) => {
      ch.amount_refunded = 2000;
    });
    const answers = await Promise.all(Array.from({ length: 10 }, () => deliver(c, refund)));
    expect(answers.map((a) => [a.status, a.body.outcome])).toEqual(Array(10).fill([200, 'REFUNDED']));
    const [purchase] = await conversionsOf(c);
    const refunds = await prisma().conversion.findMany({ where: { refundOfId: purchase!.id } });
    expect(refunds.map((r) => r.amount)).toEqual([2000n]);
  });

  it('the same payment in two events (invoice.paid of a payment-mode session’s invoice) is one conversion', async () => {
    const c = await connected();
    const session = stripeEvent('checkout.session.completed.payment', (s) => {
      s.invoice = 'in_fromCheckout0001';
      s.metadata = { ref: c.code };
    });
    const invoice = stripeEvent('invoice.paid', (inv) => {
      inv.id = 'in_fromCheckout0001';
      inv.parent = null;
      inv.billing_reason = 'manual';
      inv.customer = 'cus_Pay0000000001';
    });
    const [a, b] = await Promise.all([deliver(c, invoice), deliver(c, session)]);
    expect([a.body.outcome, b.body.outcome]).toEqual(['RECORDED', 'RECORDED']);
    expect(a.body.conversionId).toBe(b.body.conversionId);
    expect(await conversionsOf(c)).toHaveLength(1);
  });
});

// --- Isolation and nested reads ---------------------------------------------------------------------------

describe('isolation', () => {
  it('an integration records into its own workspace and mode only', async () => {
    const a = await connected();
    const b = await connected({ token: fixture.otherAdmin, tenant: fixture.otherTenant });
    const live = await connected({
      token: fixture.liveAdmin,
      tenant: { workspaceId: fixture.tenant.workspaceId, mode: 'LIVE' },
    });
    // The same Stripe objects reach three endpoints (one Stripe account connected three times).
    const session = (ref: string, livemode = false) =>
      stripeEvent('checkout.session.completed.payment', (s, e) => {
        s.metadata = { ref };
        e.livemode = livemode;
      });
    expect((await deliver(a, session(a.code))).body.outcome).toBe('RECORDED');
    // B's integration gets a code of A's workspace: unknown there.
    expect((await deliver(b, session(a.code))).body.outcome).toBe('RECORDED');
    expect((await deliver(live, session(live.code, true))).body.outcome).toBe('RECORDED');

    const [inA] = await conversionsOf(a);
    const [inB] = await conversionsOf(b);
    const [inLive] = await conversionsOf(live);
    expect([inA!.workspaceId, inA!.mode, inA!.status, inA!.partnerId]).toEqual([
      fixture.tenant.workspaceId,
      'TEST',
      'ACCEPTED',
      a.partnerRowId,
    ]);
    expect([inB!.workspaceId, inB!.mode, inB!.status, inB!.discardReason]).toEqual([
      fixture.otherTenant.workspaceId,
      'TEST',
      'DISCARDED',
      'UNKNOWN_CODE',
    ]);
    expect([inLive!.workspaceId, inLive!.mode, inLive!.status]).toEqual([
      fixture.tenant.workspaceId,
      'LIVE',
      'ACCEPTED',
    ]);
    // A refund sent to B does not touch A's payment.
    expect((await deliver(b, stripeEvent('charge.refunded'))).body.outcome).toBe('REFUNDED');
    expect(await prisma().conversion.count({ where: { refundOfId: inA!.id } })).toBe(0);
    // Reads: each sees its own.
    const listB = await fixture.gql(LIST, {}, fixture.otherAdmin);
    const idsB = listB.data!.stripeIntegrations.map((i) => i.id);
    expect(idsB).toContain(b.id);
    expect(idsB).not.toContain(a.id);
    expect(idsB).not.toContain(live.id);
    expect(
      listB.data!.stripeIntegrations[0]!.events.edges.every(
        (e) => e.node.conversion?.id !== gid('Conversion', inA!.id),
      ),
    ).toBe(true);
  });

  it('reading integrations with their logs and conversions takes a fixed number of statements', async () => {
    const { server } = fixture;
    const ws = await server.workspace('Stripe reads');
    const tenant = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const read = async () => {
      const { body, statements } = await server.gqlCounted(LIST, {}, ws.keys.test.secret);
      expect(body.errors).toBeUndefined();
      return statements;
    };
    const add = async () => {
      const c = await connected({ token: ws.keys.test.secret, tenant });
      await deliver(
        c,
        stripeEvent('checkout.session.completed.payment', (s) => (s.metadata = { ref: c.code })),
      );
      await deliver(c, stripeEvent('payment_intent.succeeded'));
    };
    await add();
    const one = await read();
    await add();
    await add();
    expect(await read()).toBe(one);
  });
});
