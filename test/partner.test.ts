import { encodeGlobalID } from '@pothos/plugin-relay';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const fixture = useTwoWorkspaces({ names: ['Partners A', 'Partners B'] });

const CREATE = graphql(`
  mutation PT_Create($input: CreatePartnerInput!) {
    createPartner(input: $input) {
      partner {
        id
        externalId
        name
        email
        status
        createdAt
        enrollments { id status program { id } links { code } }
        links { code }
      }
      userErrors { code message field }
    }
  }
`);

const UPDATE = graphql(`
  mutation PT_Update($input: UpdatePartnerInput!) {
    updatePartner(input: $input) {
      partner { id externalId name email status }
      userErrors { code message field }
    }
  }
`);

const SET_STATUS = graphql(`
  mutation PT_SetStatus($input: SetPartnerStatusInput!) {
    setPartnerStatus(input: $input) {
      partner { id status }
      userErrors { code message field }
    }
  }
`);

const PARTNER = graphql(`
  query PT_Partner($id: ID, $externalId: String) {
    partner(id: $id, externalId: $externalId) { id externalId name }
  }
`);

const PARTNERS = graphql(`
  query PT_Partners($first: Int, $after: String, $status: PartnerStatus, $programId: ID, $search: String) {
    partners(first: $first, after: $after, status: $status, programId: $programId, search: $search) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { externalId } }
    }
  }
`);

const NODE = graphql(`
  query PT_Node($id: ID!) {
    node(id: $id) { id ... on Partner { externalId } }
  }
`);

type Tenant = { workspaceId: string; mode: 'TEST' | 'LIVE' };

async function program(
  tenant: Tenant,
  data: { autoApprovePartners?: boolean; status?: 'ACTIVE' | 'ARCHIVED'; name?: string } = {},
) {
  const row = await fixture.server.testDb.db.prisma.program.create({
    data: {
      ...tenant,
      name: data.name ?? 'Program',
      type: 'REFERRAL',
      currency: 'USD',
      autoApprovePartners: data.autoApprovePartners ?? true,
      status: data.status ?? 'ACTIVE',
    },
  });
  return encodeGlobalID('Program', row.id);
}

let seq = 0;
const unique = (prefix = 'p') => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

async function create(
  input: {
    externalId?: string;
    name?: string | null;
    email?: string | null;
    status?: 'ACTIVE' | 'INACTIVE' | 'BANNED';
    programIds?: string[];
  },
  token = fixture.admin,
) {
  const res = await fixture.gql(CREATE, { input: { externalId: input.externalId ?? unique(), ...input } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createPartner;
}

async function createOk(input: Parameters<typeof create>[0] = {}, token = fixture.admin) {
  const payload = await create(input, token);
  expect(payload.userErrors).toEqual([]);
  return payload.partner!;
}

async function countPartners(tenant: Tenant = fixture.tenant) {
  return fixture.server.testDb.db.prisma.partner.count({ where: tenant });
}

async function readOnlyKey(token = fixture.admin): Promise<string> {
  const res = await fixture.gql(
    'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret userErrors { code } } }',
    { input: { name: 'reader', role: 'READ_ONLY' } },
    token,
  );
  return (res.data as { createApiKey: { secret: string } }).createApiKey.secret;
}

async function partnerToken(partnerId: string, token = fixture.admin): Promise<string> {
  const res = await fixture.gql(
    'mutation($input: CreatePartnerTokenInput!) { createPartnerToken(input: $input) { token userErrors { code message } } }',
    { input: { partnerId } },
    token,
  );
  const payload = (res.data as { createPartnerToken: { token: string | null; userErrors: unknown[] } })
    .createPartnerToken;
  expect(payload.userErrors).toEqual([]);
  return payload.token!;
}

describe('createPartner', () => {
  it('creates an ACTIVE partner with trimmed values and no enrollments or links', async () => {
    const p = await createOk({ externalId: '  user-42  ', name: '  Ada  ', email: ' ada@example.com ' });
    expect(p).toMatchObject({
      externalId: 'user-42',
      name: 'Ada',
      email: 'ada@example.com',
      status: 'ACTIVE',
      enrollments: [],
      links: [],
    });
    expect(Date.parse(p.createdAt)).not.toBeNaN();
  });

  it('leaves name and email null when not given or blank', async () => {
    const p = await createOk({ name: '   ', email: null });
    expect(p.name).toBeNull();
    expect(p.email).toBeNull();
  });

  it('takes an explicit status', async () => {
    expect((await createOk({ status: 'INACTIVE' })).status).toBe('INACTIVE');
  });

  it('refuses an externalId that is empty after trimming', async () => {
    const before = await countPartners();
    const res = await create({ externalId: '   ' });
    expect(res.partner).toBeNull();
    expect(res.userErrors).toEqual([
      { code: 'VALIDATION', message: expect.stringContaining('externalId'), field: ['input', 'externalId'] },
    ]);
    expect(await countPartners()).toBe(before);
  });

  it('accepts an externalId of 255 characters and refuses 256', async () => {
    expect((await createOk({ externalId: 'x'.repeat(254) + unique('').slice(-1) })).externalId).toHaveLength(255);
    const res = await create({ externalId: 'y'.repeat(256) });
    expect(res.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field: ['input', 'externalId'] })]);
  });

  it('refuses a name longer than 200 characters', async () => {
    expect((await createOk({ name: 'n'.repeat(200) })).name).toHaveLength(200);
    const res = await create({ name: 'n'.repeat(201) });
    expect(res.userErrors).toEqual([
      { code: 'VALIDATION', message: expect.stringContaining('200'), field: ['input', 'name'] },
    ]);
  });

  it('refuses an email without "@"', async () => {
    const res = await create({ email: 'ada.example.com' });
    expect(res.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field: ['input', 'email'] })]);
  });

  it('refuses an email with two "@"', async () => {
    const res = await create({ email: 'ada@b@example.com' });
    expect(res.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field: ['input', 'email'] })]);
  });

  it('refuses an email with nothing before or after the "@", or with spaces', async () => {
    for (const email of ['@example.com', 'ada@', 'ada lovelace@example.com']) {
      const res = await create({ email });
      expect(res.userErrors, email).toEqual([
        expect.objectContaining({ code: 'VALIDATION', field: ['input', 'email'] }),
      ]);
    }
  });

  it('refuses an email longer than 320 characters', async () => {
    const res = await create({ email: `${'a'.repeat(300)}@${'b'.repeat(20)}.com` });
    expect(res.userErrors).toEqual([
      { code: 'VALIDATION', message: expect.stringContaining('320'), field: ['input', 'email'] },
    ]);
  });

  it('reports every invalid field at once', async () => {
    const res = await create({ externalId: '', name: 'n'.repeat(201), email: 'nope' });
    expect(res.userErrors.map((e) => e.field)).toEqual([
      ['input', 'externalId'],
      ['input', 'name'],
      ['input', 'email'],
    ]);
  });

  it('refuses a taken externalId with DUPLICATE, but it is free in the other mode and in another workspace', async () => {
    const externalId = unique('dup');
    await createOk({ externalId });
    const res = await create({ externalId: `  ${externalId} ` });
    expect(res.partner).toBeNull();
    expect(res.userErrors).toEqual([
      {
        code: 'DUPLICATE',
        message: `A partner with externalId "${externalId}" already exists in this workspace and mode.`,
        field: ['input', 'externalId'],
      },
    ]);
    expect((await createOk({ externalId }, fixture.liveAdmin)).externalId).toBe(externalId);
    expect((await createOk({ externalId }, fixture.otherAdmin)).externalId).toBe(externalId);
  });

  it('gives one DUPLICATE when two creates with the same externalId race', async () => {
    const externalId = unique('race');
    const results = await Promise.all([create({ externalId }), create({ externalId }), create({ externalId })]);
    expect(results.filter((r) => r.partner).length).toBe(1);
    for (const r of results.filter((r) => !r.partner)) expect(r.userErrors[0]?.code).toBe('DUPLICATE');
    expect(await fixture.server.testDb.db.prisma.partner.count({ where: { ...fixture.tenant, externalId } })).toBe(1);
  });

  it('enrolls in programIds at once: APPROVED with a default link when auto-approving, else PENDING', async () => {
    const auto = await program(fixture.tenant);
    const manual = await program(fixture.tenant, { autoApprovePartners: false });
    const p = await createOk({ programIds: [auto, manual, auto] });
    expect(p.enrollments).toHaveLength(2);
    const [first, second] = p.enrollments;
    expect(first).toMatchObject({ status: 'APPROVED', program: { id: auto } });
    expect(first!.links).toHaveLength(1);
    expect(first!.links[0]!.code).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);
    expect(second).toMatchObject({ status: 'PENDING', program: { id: manual }, links: [] });
    expect(p.links).toEqual(first!.links);
  });

  it('refuses a missing program in programIds with NOT_FOUND at its index, and creates nothing', async () => {
    const good = await program(fixture.tenant);
    const otherWorkspace = await program(fixture.otherTenant);
    const otherMode = await program({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
    const aPartner = await createOk();
    const bad = [
      otherWorkspace,
      otherMode,
      encodeGlobalID('Program', '0190aaaa-0000-7000-8000-000000000000'),
      encodeGlobalID('Program', 'not-a-uuid'),
      aPartner.id,
      'garbage',
    ];
    for (const badId of bad) {
      const partners = await countPartners();
      const enrollments = await fixture.server.testDb.db.prisma.enrollment.count({ where: fixture.tenant });
      const links = await fixture.server.testDb.db.prisma.referralLink.count({ where: fixture.tenant });
      const res = await create({ programIds: [good, badId] });
      expect(res.partner, badId).toBeNull();
      expect(res.userErrors).toEqual([
        { code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'programIds', '1'] },
      ]);
      expect(await countPartners()).toBe(partners);
      expect(await fixture.server.testDb.db.prisma.enrollment.count({ where: fixture.tenant })).toBe(enrollments);
      expect(await fixture.server.testDb.db.prisma.referralLink.count({ where: fixture.tenant })).toBe(links);
    }
  });

  it('refuses an ARCHIVED program in programIds with INVALID_TRANSITION and creates nothing', async () => {
    const archived = await program(fixture.tenant, { status: 'ARCHIVED', name: 'Old program' });
    const externalId = unique();
    const res = await create({ externalId, programIds: [archived] });
    expect(res.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        message: expect.stringContaining('"Old program" is ARCHIVED'),
        field: ['input', 'programIds', '0'],
      },
    ]);
    expect(await fixture.server.testDb.db.prisma.partner.count({ where: { ...fixture.tenant, externalId } })).toBe(0);
  });

  it('refuses to enroll a partner created BANNED', async () => {
    const res = await create({ status: 'BANNED', programIds: [await program(fixture.tenant)] });
    expect(res.userErrors).toEqual([
      { code: 'INVALID_TRANSITION', message: expect.stringContaining('BANNED'), field: ['input', 'status'] },
    ]);
  });
});

describe('updatePartner', () => {
  it('changes only the fields given, found by id', async () => {
    const p = await createOk({ name: 'Old', email: 'old@example.com' });
    const res = await fixture.gql(UPDATE, { input: { id: p.id, name: ' New ' } }, fixture.admin);
    expect(res.data?.updatePartner).toEqual({
      partner: { id: p.id, externalId: p.externalId, name: 'New', email: 'old@example.com', status: 'ACTIVE' },
      userErrors: [],
    });
  });

  it('finds the partner by externalId', async () => {
    const p = await createOk({ email: 'a@example.com' });
    const res = await fixture.gql(
      UPDATE,
      { input: { externalId: p.externalId, email: 'b@example.com' } },
      fixture.admin,
    );
    expect(res.data?.updatePartner.partner).toMatchObject({ id: p.id, email: 'b@example.com' });
  });

  it('clears name and email on an explicit null', async () => {
    const p = await createOk({ name: 'Name', email: 'a@example.com' });
    const res = await fixture.gql(UPDATE, { input: { id: p.id, name: null, email: null } }, fixture.admin);
    expect(res.data?.updatePartner.partner).toMatchObject({ name: null, email: null });
  });

  it('changes nothing when no field is given', async () => {
    const p = await createOk({ name: 'Same' });
    const res = await fixture.gql(UPDATE, { input: { id: p.id } }, fixture.admin);
    expect(res.data?.updatePartner).toEqual({ partner: expect.objectContaining({ name: 'Same' }), userErrors: [] });
  });

  it('needs exactly one of id or externalId', async () => {
    const p = await createOk({ name: 'Keep' });
    for (const input of [{ name: 'x' }, { id: p.id, externalId: p.externalId, name: 'x' }]) {
      const res = await fixture.gql(UPDATE, { input }, fixture.admin);
      expect(res.data?.updatePartner).toEqual({
        partner: null,
        userErrors: [
          {
            code: 'VALIDATION',
            message: 'Give exactly one of `id` or `externalId` to say which partner to update.',
            field: ['input'],
          },
        ],
      });
    }
    const row = await fixture.server.testDb.db.prisma.partner.findFirstOrThrow({
      where: { ...fixture.tenant, externalId: p.externalId },
    });
    expect(row.name).toBe('Keep');
  });

  it('validates name and email as createPartner does', async () => {
    const p = await createOk({ name: 'Keep', email: 'keep@example.com' });
    const res = await fixture.gql(UPDATE, { input: { id: p.id, name: 'n'.repeat(201), email: 'bad' } }, fixture.admin);
    expect(res.data?.updatePartner.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['VALIDATION', ['input', 'name']],
      ['VALIDATION', ['input', 'email']],
    ]);
    const row = await fixture.server.testDb.db.prisma.partner.findFirstOrThrow({
      where: { ...fixture.tenant, externalId: p.externalId },
    });
    expect([row.name, row.email]).toEqual(['Keep', 'keep@example.com']);
  });

  it('answers NOT_FOUND for another workspace’s or mode’s partner, a malformed id or an unknown externalId, and changes nothing', async () => {
    const foreign = await createOk({ name: 'Foreign' }, fixture.otherAdmin);
    const otherMode = await createOk({ name: 'Live one' }, fixture.liveAdmin);
    for (const input of [
      { id: foreign.id, name: 'hacked' },
      { id: otherMode.id, name: 'hacked' },
      { id: 'garbage', name: 'hacked' },
      { id: encodeGlobalID('Partner', 'not-a-uuid'), name: 'hacked' },
      { id: encodeGlobalID('Enrollment', '0190aaaa-0000-7000-8000-000000000000'), name: 'hacked' },
    ]) {
      const res = await fixture.gql(UPDATE, { input }, fixture.admin);
      expect(res.data?.updatePartner, input.id).toEqual({
        partner: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'id'] }],
      });
    }
    for (const externalId of [foreign.externalId, otherMode.externalId, 'nobody']) {
      const res = await fixture.gql(UPDATE, { input: { externalId, name: 'hacked' } }, fixture.admin);
      expect(res.data?.updatePartner.userErrors).toEqual([
        { code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'externalId'] },
      ]);
    }
    expect(await fixture.server.testDb.db.prisma.partner.count({ where: { name: 'hacked' } })).toBe(0);
  });
});

describe('setPartnerStatus', () => {
  it('moves between any two statuses', async () => {
    const p = await createOk();
    for (const status of ['BANNED', 'INACTIVE', 'ACTIVE', 'BANNED', 'ACTIVE'] as const) {
      const res = await fixture.gql(SET_STATUS, { input: { partnerId: p.id, status } }, fixture.admin);
      expect(res.data?.setPartnerStatus).toEqual({ partner: { id: p.id, status }, userErrors: [] });
    }
  });

  it('treats the current status as a no-op', async () => {
    const p = await createOk({ status: 'INACTIVE' });
    const before = await fixture.server.testDb.db.prisma.partner.findFirstOrThrow({
      where: { ...fixture.tenant, externalId: p.externalId },
    });
    const res = await fixture.gql(SET_STATUS, { input: { partnerId: p.id, status: 'INACTIVE' } }, fixture.admin);
    expect(res.data?.setPartnerStatus).toEqual({ partner: { id: p.id, status: 'INACTIVE' }, userErrors: [] });
    const after = await fixture.server.testDb.db.prisma.partner.findFirstOrThrow({ where: { id: before.id } });
    expect(after.updatedAt).toEqual(before.updatedAt);
  });

  it('answers NOT_FOUND for another workspace’s or mode’s partner and changes nothing', async () => {
    const foreign = await createOk({}, fixture.otherAdmin);
    const otherMode = await createOk({}, fixture.liveAdmin);
    for (const partnerId of [foreign.id, otherMode.id, 'garbage']) {
      const res = await fixture.gql(SET_STATUS, { input: { partnerId, status: 'BANNED' } }, fixture.admin);
      expect(res.data?.setPartnerStatus).toEqual({
        partner: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'partnerId'] }],
      });
    }
    expect(
      await fixture.server.testDb.db.prisma.partner.count({
        where: { status: 'BANNED', externalId: { in: [foreign.externalId, otherMode.externalId] } },
      }),
    ).toBe(0);
  });
});

describe('partner query', () => {
  it('finds a partner by id or by externalId', async () => {
    const p = await createOk({ name: 'Findable' });
    expect((await fixture.gql(PARTNER, { id: p.id }, fixture.admin)).data).toEqual({
      partner: { id: p.id, externalId: p.externalId, name: 'Findable' },
    });
    expect((await fixture.gql(PARTNER, { externalId: ` ${p.externalId} ` }, fixture.admin)).data).toEqual({
      partner: { id: p.id, externalId: p.externalId, name: 'Findable' },
    });
  });

  it('is a BAD_USER_INPUT request error with both or neither argument', async () => {
    const p = await createOk();
    for (const vars of [{}, { id: p.id, externalId: p.externalId }]) {
      const res = await fixture.gql(PARTNER, vars, fixture.admin);
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(res.errors?.[0]?.message).toContain('exactly one of `id` or `externalId`');
    }
  });

  it('answers null for ids and externalIds outside the caller’s workspace and mode', async () => {
    const foreign = await createOk({}, fixture.otherAdmin);
    const otherMode = await createOk({}, fixture.liveAdmin);
    const aProgram = await program(fixture.tenant);
    for (const id of [foreign.id, otherMode.id, aProgram, 'garbage', encodeGlobalID('Partner', 'x')]) {
      const res = await fixture.gql(PARTNER, { id }, fixture.admin);
      expect(res.errors, id).toBeUndefined();
      expect(res.data).toEqual({ partner: null });
      if (id !== aProgram) expect((await fixture.gql(NODE, { id }, fixture.admin)).data).toEqual({ node: null });
    }
    for (const externalId of [foreign.externalId, otherMode.externalId, 'nobody']) {
      expect((await fixture.gql(PARTNER, { externalId }, fixture.admin)).data).toEqual({ partner: null });
    }
  });

  it('resolves a partner as a node in its own workspace', async () => {
    const p = await createOk();
    expect((await fixture.gql(NODE, { id: p.id }, fixture.admin)).data).toEqual({
      node: { id: p.id, externalId: p.externalId },
    });
  });
});

describe('partners', () => {
  let list: CreatedWorkspace;
  let token: string;
  let prog: string;
  beforeAll(async () => {
    list = await fixture.server.workspace('List');
    token = list.keys.test.secret;
    prog = await program({ workspaceId: list.workspace.id, mode: 'TEST' });
    await createOk({ externalId: 'alpha', name: 'Ada Lovelace', email: 'ada@example.com', programIds: [prog] }, token);
    await createOk({ externalId: 'bravo', name: 'Grace Hopper', email: 'GRACE@navy.mil', status: 'BANNED' }, token);
    await createOk(
      { externalId: 'charlie_1', name: '100% Alan', email: 'alan@example.org', programIds: [prog] },
      token,
    );
    await createOk({ externalId: 'charlieX1', name: 'Edsger', status: 'INACTIVE' }, token);
    await createOk({ externalId: 'delta', name: 'Barbara' }, token);
    // Noise that must never show up.
    await createOk({ externalId: 'alpha', name: 'Ada Lovelace' }, list.keys.live.secret);
    await createOk({ externalId: 'alpha-foreign', name: 'Ada Lovelace' }, fixture.otherAdmin);
  });

  const ids = (res: { data?: { partners: { edges: Array<{ node: { externalId: string } }> } } | null }) =>
    res.data!.partners.edges.map((e) => e.node.externalId);

  it('pages through the workspace’s partners oldest first with a totalCount', async () => {
    const first = await fixture.gql(PARTNERS, { first: 2 }, token);
    expect(first.errors).toBeUndefined();
    expect(ids(first)).toEqual(['alpha', 'bravo']);
    expect(first.data!.partners.totalCount).toBe(5);
    expect(first.data!.partners.pageInfo.hasNextPage).toBe(true);
    const second = await fixture.gql(PARTNERS, { first: 2, after: first.data!.partners.pageInfo.endCursor }, token);
    expect(ids(second)).toEqual(['charlie_1', 'charlieX1']);
    const third = await fixture.gql(PARTNERS, { first: 2, after: second.data!.partners.pageInfo.endCursor }, token);
    expect(ids(third)).toEqual(['delta']);
    expect(third.data!.partners.pageInfo.hasNextPage).toBe(false);
    expect(third.data!.partners.totalCount).toBe(5);
  });

  it('filters by status', async () => {
    const res = await fixture.gql(PARTNERS, { status: 'BANNED' }, token);
    expect(ids(res)).toEqual(['bravo']);
    expect(res.data!.partners.totalCount).toBe(1);
  });

  it('filters by program; another workspace’s or a malformed program id matches nothing', async () => {
    const res = await fixture.gql(PARTNERS, { programId: prog }, token);
    expect(ids(res)).toEqual(['alpha', 'charlie_1']);
    expect(res.data!.partners.totalCount).toBe(2);
    for (const programId of [prog, 'garbage']) {
      const foreign = await fixture.gql(PARTNERS, { programId }, fixture.otherAdmin);
      expect(foreign.errors).toBeUndefined();
      expect(ids(foreign)).toEqual([]);
      expect(foreign.data!.partners.totalCount).toBe(0);
    }
  });

  it('searches name, email and externalId case-insensitively', async () => {
    expect(ids(await fixture.gql(PARTNERS, { search: 'lovelace' }, token))).toEqual(['alpha']);
    expect(ids(await fixture.gql(PARTNERS, { search: 'grace@NAVY' }, token))).toEqual(['bravo']);
    expect(ids(await fixture.gql(PARTNERS, { search: 'DELT' }, token))).toEqual(['delta']);
    expect(ids(await fixture.gql(PARTNERS, { search: 'example' }, token))).toEqual(['alpha', 'charlie_1']);
    const combined = await fixture.gql(PARTNERS, { search: 'example', programId: prog, status: 'ACTIVE' }, token);
    expect(ids(combined)).toEqual(['alpha', 'charlie_1']);
    expect(combined.data!.partners.totalCount).toBe(2);
  });

  it('treats % and _ in a search as plain characters', async () => {
    expect(ids(await fixture.gql(PARTNERS, { search: 'charlie_' }, token))).toEqual(['charlie_1']);
    expect(ids(await fixture.gql(PARTNERS, { search: '100%' }, token))).toEqual(['charlie_1']);
    expect(ids(await fixture.gql(PARTNERS, { search: '%' }, token))).toEqual(['charlie_1']);
    expect(ids(await fixture.gql(PARTNERS, { search: '\\' }, token))).toEqual([]);
  });

  it('refuses a search longer than 100 characters', async () => {
    expect((await fixture.gql(PARTNERS, { search: 'a'.repeat(100) }, token)).errors).toBeUndefined();
    const res = await fixture.gql(PARTNERS, { search: 'a'.repeat(101) }, token);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('loads nested enrollments and links without a query per partner', async () => {
    const nested = graphql(`
      query PT_Nested($first: Int) {
        partners(first: $first) { edges { node { externalId enrollments { status links { code url } } links { code } } } }
      }
    `);
    await fixture.gql(nested, { first: 1 }, token); // warm-up: key lookup, lastUsedAt
    const { statements: one } = await fixture.server.gqlCounted(nested, { first: 1 }, token);
    const { body: all, statements: five } = await fixture.server.gqlCounted(nested, { first: 5 }, token);
    expect(all.data!.partners.edges).toHaveLength(5);
    expect(five).toBe(one);
  });
});

describe('roles', () => {
  it('lets a READ_ONLY key read partners but refuses every partner mutation with FORBIDDEN_FOR_ROLE', async () => {
    const reader = await readOnlyKey();
    const p = await createOk();
    expect((await fixture.gql(PARTNER, { id: p.id }, reader)).data).toEqual({
      partner: expect.objectContaining({ id: p.id }),
    });
    expect((await fixture.gql(PARTNERS, { first: 1 }, reader)).errors).toBeUndefined();
    const before = await countPartners();
    const attempts = [
      await fixture.gql(CREATE, { input: { externalId: unique() } }, reader),
      await fixture.gql(UPDATE, { input: { id: p.id, name: 'x' } }, reader),
      await fixture.gql(SET_STATUS, { input: { partnerId: p.id, status: 'BANNED' } }, reader),
    ];
    for (const res of attempts) {
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    expect(await countPartners()).toBe(before);
    expect((await fixture.gql(PARTNER, { id: p.id }, fixture.admin)).data?.partner).toMatchObject({ name: null });
  });

  it('refuses a request without a credential with UNAUTHENTICATED', async () => {
    for (const res of [
      await fixture.gql(PARTNERS, {}),
      await fixture.gql(PARTNER, { externalId: 'x' }),
      await fixture.gql(CREATE, { input: { externalId: 'x' } }),
    ]) {
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });

  it('shows a PARTNER credential its own partner only, and refuses it the list and the mutations', async () => {
    const me = await createOk({ name: 'Me' });
    const someoneElse = await createOk({ name: 'Someone else' });
    const token = await partnerToken(me.id);
    expect((await fixture.gql(PARTNER, { id: me.id }, token)).data).toEqual({
      partner: { id: me.id, externalId: me.externalId, name: 'Me' },
    });
    expect((await fixture.gql(PARTNER, { externalId: me.externalId }, token)).data?.partner?.id).toBe(me.id);
    expect((await fixture.gql(PARTNER, { id: someoneElse.id }, token)).data).toEqual({ partner: null });
    expect((await fixture.gql(PARTNER, { externalId: someoneElse.externalId }, token)).data).toEqual({ partner: null });
    expect((await fixture.gql(NODE, { id: someoneElse.id }, token)).data).toEqual({ node: null });
    expect((await fixture.gql(NODE, { id: me.id }, token)).data).toEqual({
      node: { id: me.id, externalId: me.externalId },
    });
    expect((await fixture.gql(PARTNERS, {}, token)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const res = await fixture.gql(UPDATE, { input: { id: me.id, name: 'x' } }, token);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});
