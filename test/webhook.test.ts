import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { gid } from './helpers/factories.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { MAX_ENDPOINTS } from '../src/modules/webhook/webhook.service.js';
import { signatureHeader, verifySignature } from '../src/modules/webhook/signature.js';
import { checkWebhookUrl, refusedAddressReason } from '../src/modules/webhook/url-guard.js';

// The webhook API: endpoints CRUD, validation, roles and isolation. Deliveries are in webhook-delivery.test.ts.

let server: TestServer; // WEBHOOK_ALLOW_PRIVATE_TARGETS=true, as a local receiver needs
let strict: TestServer; // the default: private targets refused
beforeAll(async () => {
  [server, strict] = await Promise.all([
    startTestServer({ WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true', WEBHOOK_WORKER_INTERVAL_MS: '0' }),
    startTestServer({ WEBHOOK_WORKER_INTERVAL_MS: '0' }),
  ]);
});
afterAll(async () => {
  await Promise.all([server?.close(), strict?.close()]);
});

const ENDPOINT_FIELDS = `id url description eventTypes enabled disabledReason consecutiveFailures previousSecretExpiresAt createdAt updatedAt`;

const CREATE = graphql(`
  mutation CreateWebhookEndpoint($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) {
      webhookEndpoint { id url description eventTypes enabled disabledReason consecutiveFailures previousSecretExpiresAt createdAt updatedAt }
      secret
      userErrors { code message field }
    }
  }
`);

const UPDATE = graphql(`
  mutation UpdateWebhookEndpoint($input: UpdateWebhookEndpointInput!) {
    updateWebhookEndpoint(input: $input) {
      webhookEndpoint { id url description eventTypes enabled disabledReason consecutiveFailures }
      userErrors { code message field }
    }
  }
`);

const DELETE = graphql(`
  mutation DeleteWebhookEndpoint($input: DeleteWebhookEndpointInput!) {
    deleteWebhookEndpoint(input: $input) { deletedWebhookEndpointId userErrors { code message field } }
  }
`);

const ROTATE = graphql(`
  mutation RotateWebhookSecret($input: RotateWebhookSecretInput!) {
    rotateWebhookSecret(input: $input) { webhookEndpoint { id previousSecretExpiresAt } secret userErrors { code message field } }
  }
`);

const REDELIVER = graphql(`
  mutation RedeliverWebhookApi($input: RedeliverWebhookInput!) {
    redeliverWebhook(input: $input) { webhookDelivery { id status } userErrors { code message field } }
  }
`);

const LIST = graphql(`
  query WebhookEndpoints($first: Int, $after: String, $enabled: Boolean) {
    webhookEndpoints(first: $first, after: $after, enabled: $enabled) {
      totalCount
      edges { cursor node { id url enabled } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

const ONE = graphql(`
  query WebhookEndpoint($id: ID!) {
    webhookEndpoint(id: $id) { id url eventTypes deliveries(first: 5) { totalCount edges { node { id } } } }
    node(id: $id) { id ... on WebhookEndpoint { url } }
  }
`);

const EVENT_TYPES = graphql(`
  query WebhookEventTypes {
    webhookEventTypes { name description }
  }
`);

const CREATE_KEY = graphql(`
  mutation WebhookReaderKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { secret userErrors { code } }
  }
`);

const CREATE_PARTNER = graphql(`
  mutation WebhookApiPartner($input: CreatePartnerInput!) {
    createPartner(input: $input) { partner { id } userErrors { code } }
  }
`);

const PARTNER_TOKEN = graphql(`
  mutation WebhookPartnerToken($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code } }
  }
`);

async function create(
  s: TestServer,
  token: string,
  input: { url: string; eventTypes?: string[]; description?: string | null; enabled?: boolean },
) {
  const res = await s.gql(CREATE, { input }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createWebhookEndpoint;
}

async function created(
  token: string,
  url = 'http://127.0.0.1:9/hooks',
  extra: { eventTypes?: string[]; description?: string } = {},
) {
  const payload = await create(server, token, { url, ...extra });
  expect(payload.userErrors).toEqual([]);
  return { id: payload.webhookEndpoint!.id, secret: payload.secret! };
}

describe('createWebhookEndpoint', () => {
  it('creates an enabled endpoint and shows its whsec_ secret once', async () => {
    const ws = await server.workspace();
    const payload = await create(server, ws.keys.test.secret, {
      url: 'https://hooks.example.com/refgraph?x=1',
      eventTypes: ['partner.created', 'reward.status_changed', 'partner.created'],
      description: '  CRM sync  ',
    });
    expect(payload.userErrors).toEqual([]);
    expect(payload.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(payload.webhookEndpoint).toMatchObject({
      url: 'https://hooks.example.com/refgraph?x=1',
      description: 'CRM sync',
      eventTypes: ['partner.created', 'reward.status_changed'],
      enabled: true,
      disabledReason: null,
      consecutiveFailures: 0,
      previousSecretExpiresAt: null,
    });
    // Not readable afterwards: no field carries it, and no query answer contains it.
    const introspection = await server.gql<{ __type: { fields: Array<{ name: string }> } }>(
      '{ __type(name: "WebhookEndpoint") { fields { name } } }',
      {},
      ws.keys.test.secret,
    );
    expect(introspection.data!.__type.fields.map((f) => f.name)).not.toContain('secret');
    const read = await server.gql(
      `{ webhookEndpoints { edges { node { ${ENDPOINT_FIELDS} } } } }`,
      {},
      ws.keys.test.secret,
    );
    expect(JSON.stringify(read)).not.toContain(payload.secret!);
    expect(JSON.stringify(read)).toContain('hooks.example.com');
  });

  it('creates a disabled endpoint when asked', async () => {
    const ws = await server.workspace();
    const payload = await create(server, ws.keys.test.secret, { url: 'http://127.0.0.1:9/', enabled: false });
    expect(payload.webhookEndpoint).toMatchObject({
      enabled: false,
      disabledReason: expect.stringContaining('enabled: false'),
    });
  });

  it('gives every endpoint its own secret', async () => {
    const ws = await server.workspace();
    const a = await created(ws.keys.test.secret);
    const b = await created(ws.keys.test.secret);
    expect(a.secret).not.toBe(b.secret);
  });
});

describe('validation', () => {
  const refused = async (
    s: TestServer,
    token: string,
    input: { url: string; eventTypes?: string[]; description?: string },
  ) => {
    const payload = await create(s, token, input);
    expect(payload.webhookEndpoint).toBeNull();
    expect(payload.secret).toBeNull();
    return payload.userErrors;
  };

  it.each([
    ['ftp://example.com/hook', /Only http and https/],
    ['javascript:alert(1)', /Only http and https/],
    ['file:///etc/passwd', /Only http and https/],
  ])('refuses the scheme of %s', async (url, message) => {
    const ws = await server.workspace();
    const errors = await refused(server, ws.keys.test.secret, { url });
    expect(errors).toEqual([{ code: 'VALIDATION', field: ['input', 'url'], message: expect.stringMatching(message) }]);
  });

  it('refuses something that is not a URL', async () => {
    const ws = await server.workspace();
    expect(await refused(server, ws.keys.test.secret, { url: 'hooks.example.com/x' })).toEqual([
      { code: 'VALIDATION', field: ['input', 'url'], message: expect.stringContaining('not an absolute URL') },
    ]);
    expect((await refused(server, ws.keys.test.secret, { url: '   ' }))[0]).toMatchObject({
      code: 'VALIDATION',
      field: ['input', 'url'],
    });
  });

  it('refuses a user name or password in the URL', async () => {
    const ws = await server.workspace();
    expect(await refused(server, ws.keys.test.secret, { url: 'https://user:pass@hooks.example.com/' })).toEqual([
      { code: 'VALIDATION', field: ['input', 'url'], message: expect.stringContaining('user name or password') },
    ]);
  });

  it('refuses a URL longer than 2048 characters', async () => {
    const ws = await server.workspace();
    const url = `https://hooks.example.com/${'a'.repeat(2048)}`;
    expect((await refused(server, ws.keys.test.secret, { url }))[0]).toMatchObject({
      code: 'VALIDATION',
      field: ['input', 'url'],
      message: expect.stringContaining('2048'),
    });
  });

  it.each([
    ['http://127.0.0.1:8080/hook', 'loopback'],
    ['http://127.1/hook', 'loopback'],
    ['http://2130706433/hook', 'loopback'],
    ['http://10.1.2.3/hook', 'private'],
    ['http://172.20.0.1/hook', 'private'],
    ['http://192.168.1.10/hook', 'private'],
    ['http://169.254.169.254/latest/meta-data', 'link-local'],
    ['http://100.64.0.1/', 'carrier-grade NAT'],
    ['http://0.0.0.0:4000/', 'unspecified'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://255.255.255.255/', 'reserved'],
    ['http://[::1]:8080/hook', 'loopback'],
    ['http://[::]/hook', 'unspecified'],
    ['http://[fe80::1]/hook', 'link-local'],
    ['http://[fd00::1]/hook', 'unique local'],
    ['http://[ff02::1]/hook', 'multicast'],
    ['http://[::ffff:127.0.0.1]/hook', 'loopback'],
    ['http://[::ffff:10.0.0.1]/hook', 'private'],
    ['http://[64:ff9b::a9fe:a9fe]/hook', 'link-local'],
    ['http://[::ffff:a9fe:a9fe]/latest/meta-data', 'link-local'],
    ['http://[64:ff9b::10.0.0.1]/hook', 'private'],
    ['http://[2002:c0a8:0101::1]/hook', 'private'],
    ['http://[fc00::1]/hook', 'unique local'],
    ['http://localhost:4000/hook', 'loopback'],
  ])('refuses %s without WEBHOOK_ALLOW_PRIVATE_TARGETS (%s)', async (url, kind) => {
    const ws = await strict.workspace();
    const errors = await refused(strict, ws.keys.test.secret, { url });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'VALIDATION', field: ['input', 'url'] });
    expect(errors[0]!.message).toContain(kind);
    expect(errors[0]!.message).toContain('public addresses');
    const list = await strict.gql(LIST, {}, ws.keys.test.secret);
    expect(list.data!.webhookEndpoints.totalCount).toBe(0);
  });

  it('accepts a public IP address without the flag, and a private one with it', async () => {
    const ws = await strict.workspace();
    expect((await create(strict, ws.keys.test.secret, { url: 'https://93.184.215.14/hook' })).userErrors).toEqual([]);
    expect((await create(strict, ws.keys.test.secret, { url: 'https://[2606:4700::1111]/hook' })).userErrors).toEqual(
      [],
    );
    const local = await server.workspace();
    expect((await create(server, local.keys.test.secret, { url: 'http://127.0.0.1:8080/hook' })).userErrors).toEqual(
      [],
    );
    expect((await create(server, local.keys.test.secret, { url: 'http://localhost:8080/hook' })).userErrors).toEqual(
      [],
    );
  });

  it('refuses moving an endpoint to a private target, and changes nothing', async () => {
    const ws = await strict.workspace();
    const { webhookEndpoint } = await create(strict, ws.keys.test.secret, {
      url: 'https://93.184.215.14/hook',
      description: 'keep',
    });
    const res = await strict.gql(
      UPDATE,
      { input: { id: webhookEndpoint!.id, url: 'http://192.168.0.1/', description: 'changed' } },
      ws.keys.test.secret,
    );
    expect(res.data!.updateWebhookEndpoint.userErrors).toEqual([
      { code: 'VALIDATION', field: ['input', 'url'], message: expect.stringContaining('private') },
    ]);
    const after = await strict.gql(
      `query($id: ID!) { webhookEndpoint(id: $id) { url description } }`,
      { id: webhookEndpoint!.id },
      ws.keys.test.secret,
    );
    expect(after.data).toEqual({ webhookEndpoint: { url: 'https://93.184.215.14/hook', description: 'keep' } });
  });

  it('refuses an unknown event type, naming its index', async () => {
    const ws = await server.workspace();
    const errors = await refused(server, ws.keys.test.secret, {
      url: 'http://127.0.0.1:9/',
      eventTypes: ['partner.created', 'partner.deleted'],
    });
    expect(errors).toEqual([
      {
        code: 'VALIDATION',
        field: ['input', 'eventTypes', '1'],
        message: expect.stringContaining('"partner.deleted" is not an event type'),
      },
    ]);
  });

  it('refuses a description longer than 500 characters', async () => {
    const ws = await server.workspace();
    const errors = await refused(server, ws.keys.test.secret, {
      url: 'http://127.0.0.1:9/',
      description: 'x'.repeat(501),
    });
    expect(errors).toEqual([
      { code: 'VALIDATION', field: ['input', 'description'], message: expect.stringContaining('500') },
    ]);
  });

  it('reports every invalid field at once', async () => {
    const ws = await server.workspace();
    const errors = await refused(server, ws.keys.test.secret, {
      url: 'ftp://x',
      eventTypes: ['nope'],
      description: 'x'.repeat(501),
    });
    expect(errors.map((e) => e.field)).toEqual([
      ['input', 'url'],
      ['input', 'eventTypes', '0'],
      ['input', 'description'],
    ]);
  });

  it(`refuses more than ${MAX_ENDPOINTS} endpoints per workspace and mode`, async () => {
    const ws = await server.workspace();
    for (let i = 0; i < MAX_ENDPOINTS; i++) await created(ws.keys.test.secret, `http://127.0.0.1:9/${i}`);
    const payload = await create(server, ws.keys.test.secret, { url: 'http://127.0.0.1:9/one-more' });
    expect(payload.userErrors).toEqual([
      { code: 'LIMIT_EXCEEDED', field: ['input'], message: expect.stringContaining(String(MAX_ENDPOINTS)) },
    ]);
    // The other mode has its own allowance.
    expect((await create(server, ws.keys.live.secret, { url: 'http://127.0.0.1:9/live' })).userErrors).toEqual([]);
  });

  it('lists the known event types: every type the outbox appends (DOMAIN.md names)', async () => {
    const ws = await server.workspace();
    const res = await server.gql(EVENT_TYPES, {}, ws.keys.test.secret);
    expect(res.data!.webhookEventTypes.map((t) => t.name)).toEqual([
      'program.created',
      'program.updated',
      'reward_rule.created',
      'reward_rule.updated',
      'reward_rule.archived',
      'tier.created',
      'tier.updated',
      'tier.deleted',
      'tier.changed',
      'partner.created',
      'partner.updated',
      'partner.status_changed',
      'partner.erased',
      'enrollment.applied',
      'enrollment.status_changed',
      'enrollment.overrides_changed',
      'link.created',
      'link.updated',
      'link.disabled',
      'coupon.created',
      'coupon.disabled',
      'conversion.recorded',
      'referral.status_changed',
      'reward.created',
      'reward.status_changed',
      'balance.credited',
      'payout.created',
      'payout.paid',
      'payout.failed',
      'payout.canceled',
      'review.opened',
      'review.resolved',
      'api_key.created',
      'api_key.revoked',
      'member.invited',
      'member.joined',
      'member.removed',
      'integration.connected',
      'integration.disconnected',
      'integration.failed',
    ]);
    expect(res.data!.webhookEventTypes.every((t) => t.description.length > 0)).toBe(true);
  });
});

describe('reading endpoints', () => {
  it('pages through webhookEndpoints oldest first with totalCount and the enabled filter', async () => {
    const ws = await server.workspace();
    const a = await created(ws.keys.test.secret, 'http://127.0.0.1:9/a');
    const b = await created(ws.keys.test.secret, 'http://127.0.0.1:9/b');
    const c = await created(ws.keys.test.secret, 'http://127.0.0.1:9/c');
    await server.gql(UPDATE, { input: { id: b.id, enabled: false } }, ws.keys.test.secret);
    const first = await server.gql(LIST, { first: 2 }, ws.keys.test.secret);
    expect(first.data!.webhookEndpoints.totalCount).toBe(3);
    expect(first.data!.webhookEndpoints.edges.map((e) => e.node.id)).toEqual([a.id, b.id]);
    expect(first.data!.webhookEndpoints.pageInfo.hasNextPage).toBe(true);
    const rest = await server.gql(
      LIST,
      { first: 2, after: first.data!.webhookEndpoints.pageInfo.endCursor },
      ws.keys.test.secret,
    );
    expect(rest.data!.webhookEndpoints.edges.map((e) => e.node.id)).toEqual([c.id]);
    const disabled = await server.gql(LIST, { enabled: false }, ws.keys.test.secret);
    expect(disabled.data!.webhookEndpoints).toMatchObject({
      totalCount: 1,
      edges: [{ node: { id: b.id, enabled: false } }],
    });
    const enabled = await server.gql(LIST, { enabled: true }, ws.keys.test.secret);
    expect(enabled.data!.webhookEndpoints.edges.map((e) => e.node.id)).toEqual([a.id, c.id]);
  });

  it('reads one endpoint by id and through node()', async () => {
    const ws = await server.workspace();
    const { id } = await created(ws.keys.test.secret, 'http://127.0.0.1:9/one', { eventTypes: ['payout.paid'] });
    const res = await server.gql(ONE, { id }, ws.keys.test.secret);
    expect(res.data).toEqual({
      webhookEndpoint: {
        id,
        url: 'http://127.0.0.1:9/one',
        eventTypes: ['payout.paid'],
        deliveries: { totalCount: 0, edges: [] },
      },
      node: { id, url: 'http://127.0.0.1:9/one' },
    });
  });

  it('answers a garbage cursor with an empty page or a request error, never a database error', async () => {
    const ws = await server.workspace();
    await created(ws.keys.test.secret);
    const foreign = Buffer.from('GPC:S:not-a-uuid').toString('base64');
    const res = await server.gql(LIST, { after: foreign }, ws.keys.test.secret);
    if (res.errors) expect(res.errors[0]!.extensions?.code).toBe('BAD_USER_INPUT');
    else expect(res.data!.webhookEndpoints.edges).toEqual([]);
  });
});

describe('updateWebhookEndpoint', () => {
  it('changes url, event types and description; null clears the description; empty types mean all', async () => {
    const ws = await server.workspace();
    const { id } = await created(ws.keys.test.secret, 'http://127.0.0.1:9/old', {
      eventTypes: ['partner.created'],
      description: 'old',
    });
    const res = await server.gql(
      UPDATE,
      {
        input: { id, url: 'http://127.0.0.1:9/new', eventTypes: ['payout.paid', 'payout.created'], description: 'new' },
      },
      ws.keys.test.secret,
    );
    expect(res.data!.updateWebhookEndpoint).toEqual({
      userErrors: [],
      webhookEndpoint: {
        id,
        url: 'http://127.0.0.1:9/new',
        description: 'new',
        eventTypes: ['payout.paid', 'payout.created'],
        enabled: true,
        disabledReason: null,
        consecutiveFailures: 0,
      },
    });
    const cleared = await server.gql(UPDATE, { input: { id, description: null, eventTypes: [] } }, ws.keys.test.secret);
    expect(cleared.data!.updateWebhookEndpoint.webhookEndpoint).toMatchObject({
      url: 'http://127.0.0.1:9/new',
      description: null,
      eventTypes: [],
    });
    // Omitted fields stay.
    const untouched = await server.gql(UPDATE, { input: { id } }, ws.keys.test.secret);
    expect(untouched.data!.updateWebhookEndpoint.webhookEndpoint).toMatchObject({
      url: 'http://127.0.0.1:9/new',
      description: null,
      eventTypes: [],
      enabled: true,
    });
  });

  it('disables with a reason and re-enabling resets consecutiveFailures', async () => {
    const ws = await server.workspace();
    const { id } = await created(ws.keys.test.secret);
    const off = await server.gql(UPDATE, { input: { id, enabled: false } }, ws.keys.test.secret);
    expect(off.data!.updateWebhookEndpoint.webhookEndpoint).toMatchObject({
      enabled: false,
      disabledReason: expect.stringContaining('updateWebhookEndpoint'),
    });
    const rowId = decodeRowId(id);
    await server.testDb.db.prisma.webhookEndpoint.update({
      where: { id: rowId },
      data: { consecutiveFailures: 7, disabledReason: 'Disabled after 7 consecutive failed delivery attempts' },
    });
    const on = await server.gql(UPDATE, { input: { id, enabled: true } }, ws.keys.test.secret);
    expect(on.data!.updateWebhookEndpoint.webhookEndpoint).toMatchObject({
      enabled: true,
      disabledReason: null,
      consecutiveFailures: 0,
    });
  });

  it('an enabled endpoint re-enabled keeps its place; a disabled one resumes after the newest event', async () => {
    const ws = await server.workspace();
    const { id } = await created(ws.keys.test.secret);
    const rowId = decodeRowId(id);
    await server.gql(UPDATE, { input: { id, enabled: false } }, ws.keys.test.secret);
    await server.gql(CREATE_PARTNER, { input: { externalId: 'while-disabled' } }, ws.keys.test.secret);
    expect(
      (await server.testDb.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: rowId } })).lastSequence,
    ).toBe(0n);
    await server.gql(UPDATE, { input: { id, enabled: true } }, ws.keys.test.secret);
    expect(
      (await server.testDb.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: rowId } })).lastSequence,
    ).toBe(1n);
  });
});

describe('deleteWebhookEndpoint', () => {
  it('deletes the endpoint; a second delete is NOT_FOUND', async () => {
    const ws = await server.workspace();
    const { id } = await created(ws.keys.test.secret);
    const res = await server.gql(DELETE, { input: { id } }, ws.keys.test.secret);
    expect(res.data!.deleteWebhookEndpoint).toEqual({ deletedWebhookEndpointId: id, userErrors: [] });
    expect((await server.gql(ONE, { id }, ws.keys.test.secret)).data).toEqual({ webhookEndpoint: null, node: null });
    const again = await server.gql(DELETE, { input: { id } }, ws.keys.test.secret);
    expect(again.data!.deleteWebhookEndpoint).toEqual({
      deletedWebhookEndpointId: null,
      userErrors: [{ code: 'NOT_FOUND', field: ['input', 'id'], message: 'Webhook endpoint not found.' }],
    });
  });
});

describe('rotateWebhookSecret', () => {
  it('returns a new secret; with overlapSeconds the previous one keeps signing until previousSecretExpiresAt', async () => {
    const ws = await server.workspace();
    const { id, secret } = await created(ws.keys.test.secret);
    const now = await server.gql(ROTATE, { input: { id } }, ws.keys.test.secret);
    expect(now.data!.rotateWebhookSecret).toMatchObject({
      userErrors: [],
      webhookEndpoint: { id, previousSecretExpiresAt: null },
    });
    expect(now.data!.rotateWebhookSecret.secret).toMatch(/^whsec_/);
    expect(now.data!.rotateWebhookSecret.secret).not.toBe(secret);
    const before = Date.now();
    const overlap = await server.gql(ROTATE, { input: { id, overlapSeconds: 3600 } }, ws.keys.test.secret);
    const expires = Date.parse(overlap.data!.rotateWebhookSecret.webhookEndpoint!.previousSecretExpiresAt!);
    expect(expires).toBeGreaterThanOrEqual(before + 3_599_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 3_601_000);
    const row = await server.testDb.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: decodeRowId(id) } });
    expect(row.previousSecret).toBe(now.data!.rotateWebhookSecret.secret);
    expect(row.secret).toBe(overlap.data!.rotateWebhookSecret.secret);
  });

  it.each([-1, 604_801])('refuses overlapSeconds %d', async (overlapSeconds) => {
    const ws = await server.workspace();
    const { id } = await created(ws.keys.test.secret);
    const res = await server.gql(ROTATE, { input: { id, overlapSeconds } }, ws.keys.test.secret);
    expect(res.data!.rotateWebhookSecret).toMatchObject({
      secret: null,
      userErrors: [{ code: 'VALIDATION', field: ['input', 'overlapSeconds'] }],
    });
  });
});

describe('roles', () => {
  let ws: CreatedWorkspace;
  let endpointId: string;
  let reader: string;
  let partnerToken: string;
  beforeAll(async () => {
    ws = await server.workspace();
    endpointId = (await created(ws.keys.test.secret)).id;
    reader = (await server.gql(CREATE_KEY, { input: { name: 'reader', role: 'READ_ONLY' } }, ws.keys.test.secret)).data!
      .createApiKey.secret!;
    const partner = await server.gql(CREATE_PARTNER, { input: { externalId: 'p-roles' } }, ws.keys.test.secret);
    partnerToken = (
      await server.gql(
        PARTNER_TOKEN,
        { input: { partnerId: partner.data!.createPartner.partner!.id } },
        ws.keys.test.secret,
      )
    ).data!.createPartnerToken.token!;
  });

  const forbidden = (res: { data?: unknown; errors?: Array<{ extensions?: Record<string, unknown> }> }) => {
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  };

  it.each(['READ_ONLY', 'PARTNER'])('refuses every webhook query to a %s credential', async (role) => {
    const token = role === 'READ_ONLY' ? reader : partnerToken;
    forbidden(await server.gql(LIST, {}, token));
    forbidden(await server.gql(EVENT_TYPES, {}, token));
    forbidden(await server.gql(`query($id: ID!) { webhookEndpoint(id: $id) { id } }`, { id: endpointId }, token));
    const node = await server.gql<{ node: unknown }>(
      `query($id: ID!) { node(id: $id) { id ... on WebhookEndpoint { url } } }`,
      { id: endpointId },
      token,
    );
    expect(node.data?.node ?? null).toBeNull();
    expect(JSON.stringify(node)).not.toContain('127.0.0.1');
  });

  it.each(['READ_ONLY', 'PARTNER'])(
    'refuses every webhook mutation to a %s credential, changing nothing',
    async (role) => {
      const token = role === 'READ_ONLY' ? reader : partnerToken;
      forbidden(await server.gql(CREATE, { input: { url: 'http://127.0.0.1:9/x' } }, token));
      forbidden(await server.gql(UPDATE, { input: { id: endpointId, enabled: false } }, token));
      forbidden(await server.gql(ROTATE, { input: { id: endpointId } }, token));
      forbidden(await server.gql(DELETE, { input: { id: endpointId } }, token));
      forbidden(
        await server.gql(
          REDELIVER,
          { input: { deliveryId: gid('WebhookDelivery', '00000000-0000-0000-0000-000000000001') } },
          token,
        ),
      );
      const list = await server.gql(LIST, {}, ws.keys.test.secret);
      expect(list.data!.webhookEndpoints.edges).toEqual([
        { cursor: expect.any(String), node: { id: endpointId, url: 'http://127.0.0.1:9/hooks', enabled: true } },
      ]);
    },
  );

  it('refuses a request without a credential', async () => {
    const res = await server.gql(LIST, {});
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('isolation', () => {
  it('another workspace’s or mode’s endpoint is null to reads, absent from lists and NOT_FOUND to every mutation', async () => {
    const owner = await server.workspace('owner');
    const other = await server.workspace('other');
    const { id } = await created(owner.keys.test.secret, 'http://127.0.0.1:9/owned');
    for (const token of [other.keys.test.secret, owner.keys.live.secret]) {
      expect((await server.gql(ONE, { id }, token)).data).toEqual({ webhookEndpoint: null, node: null });
      expect((await server.gql(LIST, {}, token)).data!.webhookEndpoints).toMatchObject({ totalCount: 0, edges: [] });
      const notFound = [{ code: 'NOT_FOUND', field: ['input', 'id'], message: 'Webhook endpoint not found.' }];
      expect(
        (await server.gql(UPDATE, { input: { id, url: 'http://127.0.0.1:9/stolen', enabled: false } }, token)).data!
          .updateWebhookEndpoint.userErrors,
      ).toEqual(notFound);
      expect((await server.gql(ROTATE, { input: { id } }, token)).data!.rotateWebhookSecret).toEqual({
        webhookEndpoint: null,
        secret: null,
        userErrors: notFound,
      });
      expect((await server.gql(DELETE, { input: { id } }, token)).data!.deleteWebhookEndpoint.userErrors).toEqual(
        notFound,
      );
    }
    const mine = await server.gql(ONE, { id }, owner.keys.test.secret);
    expect(mine.data!.webhookEndpoint).toMatchObject({ id, url: 'http://127.0.0.1:9/owned' });
    const row = await server.testDb.db.prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: decodeRowId(id) } });
    expect(row).toMatchObject({ enabled: true, url: 'http://127.0.0.1:9/owned' });
  });

  it('a malformed id or an id of another type is NOT_FOUND / null', async () => {
    const ws = await server.workspace();
    const partner = await server.gql(CREATE_PARTNER, { input: { externalId: 'not-an-endpoint' } }, ws.keys.test.secret);
    const partnerId = partner.data!.createPartner.partner!.id;
    for (const id of [
      'garbage',
      gid('WebhookEndpoint', 'not-a-uuid'),
      partnerId,
      gid('WebhookDelivery', decodeRowId(partnerId)),
    ]) {
      expect(
        (await server.gql(`query($id: ID!) { webhookEndpoint(id: $id) { id } }`, { id }, ws.keys.test.secret)).data,
      ).toEqual({ webhookEndpoint: null });
      expect(
        (await server.gql(UPDATE, { input: { id, enabled: false } }, ws.keys.test.secret)).data!.updateWebhookEndpoint
          .userErrors[0]!.code,
      ).toBe('NOT_FOUND');
      expect(
        (await server.gql(ROTATE, { input: { id } }, ws.keys.test.secret)).data!.rotateWebhookSecret.userErrors[0]!
          .code,
      ).toBe('NOT_FOUND');
      expect(
        (await server.gql(DELETE, { input: { id } }, ws.keys.test.secret)).data!.deleteWebhookEndpoint.userErrors[0]!
          .code,
      ).toBe('NOT_FOUND');
      expect(
        (await server.gql(REDELIVER, { input: { deliveryId: id } }, ws.keys.test.secret)).data!.redeliverWebhook,
      ).toEqual({
        webhookDelivery: null,
        userErrors: [{ code: 'NOT_FOUND', field: ['input', 'deliveryId'], message: 'Webhook delivery not found.' }],
      });
    }
  });
});

describe('url guard', () => {
  it.each([
    ['8.8.8.8', null],
    ['93.184.215.14', null],
    ['2606:4700::1111', null],
    ['::ffff:8.8.8.8', null],
    ['2002:0808:0808::1', null],
    ['127.0.0.1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['10.255.255.255', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', null],
    ['192.168.0.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.127.255.255', 'carrier-grade NAT'],
    ['198.18.0.1', 'benchmarking'],
    ['192.0.2.1', 'documentation'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'unique local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:192.168.1.1', 'private'],
    ['::ffff:7f00:1', 'loopback'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['2002:7f00:0001::1', 'loopback'],
    ['2001:db8::1', 'documentation'],
    ['2001::1', 'Teredo'],
    ['::127.0.0.1', 'reserved'],
    ['100::1', 'reserved'],
    ['example.com', 'not an IP address'],
  ])('%s → %s', (address, reason) => {
    const answer = refusedAddressReason(address);
    if (reason === null) expect(answer).toBeNull();
    else expect(answer).toContain(reason);
  });

  it.each([
    // IPv4-mapped and IPv4-translated IPv6 reach the IPv4 address: judged as that one.
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:100.64.0.1', 'carrier-grade NAT'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:224.0.0.1', 'multicast'],
    ['::ffff:0:10.0.0.1', 'private'],
    ['::ffff:0:8.8.8.8', null],
    // NAT64 (64:ff9b::/96) embeds the IPv4 address in its last 32 bits; the local-use /48 is private.
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::c0a8:101', 'private'],
    ['64:ff9b::100.64.0.1', 'carrier-grade NAT'],
    ['64:ff9b::8.8.8.8', null],
    ['64:ff9b:1::808:808', 'local-use NAT64'],
    // 6to4 (2002:a.b.c.d::/48) reaches its IPv4 address; Teredo is refused whatever it embeds.
    ['2002:0a00:0001::1', 'private'],
    ['2001:0:808:808::f7f7:f7f7', 'Teredo'],
    ['2001:0:808:808::f5ff:fffe', 'Teredo'],
    // The edges of the IPv4 ranges.
    ['100.64.0.0', 'carrier-grade NAT'],
    ['100.63.255.255', null],
    ['100.128.0.0', null],
    ['0.255.255.255', 'unspecified'],
    ['224.0.0.0', 'multicast'],
    ['239.255.255.255', 'multicast'],
    ['240.0.0.1', 'reserved'],
    // IPv6 ranges: unspecified, unique local fc00::/7, link-local fe80::/10, multicast ff00::/8.
    ['0:0:0:0:0:0:0:0', 'unspecified'],
    ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'unique local'],
    ['fbff::1', 'reserved'],
    ['febf:ffff::1', 'link-local'],
    ['ff0e::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    // The deprecated IPv4-compatible form is not IPv4-mapped.
    ['::8.8.8.8', 'reserved'],
    ['3fff::1', 'reserved'],
    // Not addresses.
    ['1:2:3', 'not an IP address'],
    ['1::2::3', 'not an IP address'],
    ['127.1', 'not an IP address'],
  ])('%s → %s', (address, reason) => {
    const answer = refusedAddressReason(address);
    if (reason === null) expect(answer).toBeNull();
    else expect(answer).toContain(reason);
  });

  it('checks every address a host name resolves to', async () => {
    const resolvesTo =
      (...addresses: string[]) =>
      async () =>
        addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    await expect(
      checkWebhookUrl('https://hooks.example.com/x', {
        allowPrivateTargets: false,
        resolve: resolvesTo('93.184.215.14'),
      }),
    ).resolves.toBe('https://hooks.example.com/x');
    await expect(
      checkWebhookUrl('https://rebind.example.com/', {
        allowPrivateTargets: false,
        resolve: resolvesTo('93.184.215.14', '10.0.0.5'),
      }),
    ).rejects.toThrow(/resolves to 10\.0\.0\.5, a private address/);
    await expect(
      checkWebhookUrl('https://v6.example.com/', { allowPrivateTargets: false, resolve: resolvesTo('::1') }),
    ).rejects.toThrow(/loopback/);
    const missing = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    };
    await expect(
      checkWebhookUrl('https://nowhere.invalid/', { allowPrivateTargets: false, resolve: missing }),
    ).rejects.toThrow(/does not resolve/);
    // With the flag, nothing is resolved.
    await expect(
      checkWebhookUrl('https://nowhere.invalid/', { allowPrivateTargets: true, resolve: missing }),
    ).resolves.toBe('https://nowhere.invalid/');
  });
});

describe('signature helpers', () => {
  it('verifies what it signs, within the tolerance, with any of the secrets in force', () => {
    const body = '{"id":"x"}';
    const t = 1_800_000_000;
    const header = signatureHeader(['whsec_new', 'whsec_old'], t, body);
    const at = new Date(t * 1000);
    expect(header).toMatch(/^t=1800000000,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    expect(verifySignature(header, body, 'whsec_new', { now: at })).toBe(true);
    expect(verifySignature(header, body, 'whsec_old', { now: at })).toBe(true);
    expect(verifySignature(header, body, 'whsec_other', { now: at })).toBe(false);
    expect(verifySignature(header, `${body} `, 'whsec_new', { now: at })).toBe(false);
    expect(verifySignature(header, body, 'whsec_new', { now: new Date((t + 301) * 1000) })).toBe(false);
    expect(verifySignature('v1=abc', body, 'whsec_new', { now: at })).toBe(false);
  });
});

function decodeRowId(globalId: string): string {
  return Buffer.from(globalId, 'base64').toString().split(':').slice(1).join(':');
}
