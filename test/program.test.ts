import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import type { CreateProgramInput, ProgramStatus, UpdateProgramInput } from './gql/graphql.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const CREATE = graphql(`
  mutation CreateProgramT($input: CreateProgramInput!) {
    createProgram(input: $input) {
      program { id name type status currency attributionWindowDays holdDays allowSelfReferral autoApprovePartners destinationUrl createdAt }
      userErrors { code message field }
    }
  }
`);

const UPDATE = graphql(`
  mutation UpdateProgramT($input: UpdateProgramInput!) {
    updateProgram(input: $input) {
      program { id name status attributionWindowDays holdDays allowSelfReferral autoApprovePartners destinationUrl updatedAt }
      userErrors { code message field }
    }
  }
`);

const PROGRAM = graphql(`
  query ProgramT($id: ID!) {
    program(id: $id) { id name status currency }
  }
`);

const NODE = graphql(`
  query ProgramNodeT($id: ID!) {
    node(id: $id) { id ... on Program { name status } }
  }
`);

const PROGRAMS = graphql(`
  query ProgramsT($first: Int, $after: String, $status: ProgramStatus) {
    programs(first: $first, after: $after, status: $status) {
      totalCount
      edges { cursor node { id name status } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
`);

const CREATE_API_KEY = graphql(`
  mutation CreateReadOnlyKeyForPrograms($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { secret userErrors { code } }
  }
`);

const CREATE_PARTNER_TOKEN = graphql(`
  mutation PartnerTokenForPrograms($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token userErrors { code message } }
  }
`);

const fixture = useTwoWorkspaces({ names: ['Programs', 'Someone else'] });

let readOnly: string;

beforeAll(async () => {
  const key = await fixture.gql(CREATE_API_KEY, { input: { name: 'reader', role: 'READ_ONLY' } }, fixture.admin);
  readOnly = key.data!.createApiKey.secret!;
});

const prisma = () => fixture.server.testDb.db.prisma;

async function create(input: Partial<CreateProgramInput> = {}, token = fixture.admin) {
  const res = await fixture.gql(
    CREATE,
    { input: { name: 'Refer a friend', type: 'REFERRAL', currency: 'USD', ...input } },
    token,
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createProgram;
}

async function createOk(input: Partial<CreateProgramInput> = {}, token = fixture.admin) {
  const payload = await create(input, token);
  expect(payload.userErrors).toEqual([]);
  return payload.program!;
}

async function update(input: UpdateProgramInput, token = fixture.admin) {
  const res = await fixture.gql(UPDATE, { input }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.updateProgram;
}

/** A program in the given status, reached through allowed transitions. */
async function programIn(status: ProgramStatus, name = `In ${status}`) {
  if (status === 'ARCHIVED') {
    const program = await createOk({ name });
    expect((await update({ id: program.id, status: 'ARCHIVED' })).userErrors).toEqual([]);
    return program;
  }
  return createOk({ name, status });
}

const rowId = (globalId: string) => decodeGlobalID(globalId).id;
const snapshot = (globalId: string) => prisma().program.findUniqueOrThrow({ where: { id: rowId(globalId) } });

describe('createProgram', () => {
  it('creates a program with the contract defaults', async () => {
    const before = Date.now();
    const program = await createOk({ name: '  Refer a friend  ', currency: 'usd' });
    expect(program).toMatchObject({
      name: 'Refer a friend',
      type: 'REFERRAL',
      status: 'ACTIVE',
      currency: 'USD',
      attributionWindowDays: 30,
      holdDays: 0,
      allowSelfReferral: false,
      autoApprovePartners: true,
      destinationUrl: null,
    });
    expect(Date.parse(program.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    const row = await snapshot(program.id);
    expect(row).toMatchObject(fixture.tenant);
  });

  it('takes every setting when given', async () => {
    const program = await createOk({
      name: 'Affiliates',
      type: 'AFFILIATE',
      currency: 'JPY',
      status: 'DRAFT',
      attributionWindowDays: 3650,
      holdDays: 3650,
      allowSelfReferral: true,
      autoApprovePartners: false,
      destinationUrl: 'https://example.com/pricing?x=1',
    });
    expect(program).toMatchObject({
      type: 'AFFILIATE',
      currency: 'JPY',
      status: 'DRAFT',
      attributionWindowDays: 3650,
      holdDays: 3650,
      allowSelfReferral: true,
      autoApprovePartners: false,
      destinationUrl: 'https://example.com/pricing?x=1',
    });
  });

  it('accepts the smallest settings and PAUSED', async () => {
    const program = await createOk({
      status: 'PAUSED',
      attributionWindowDays: 1,
      holdDays: 0,
      destinationUrl: 'http://localhost:3000/',
    });
    expect(program).toMatchObject({
      status: 'PAUSED',
      attributionWindowDays: 1,
      holdDays: 0,
      destinationUrl: 'http://localhost:3000/',
    });
  });

  const refusals: Array<[string, Partial<CreateProgramInput>, string[]]> = [
    ['an empty name', { name: '   ' }, ['input', 'name']],
    ['a name over 200 characters', { name: 'x'.repeat(201) }, ['input', 'name']],
    ['an unknown currency', { currency: 'QQQ' }, ['input', 'currency']],
    ['a currency that is not a code', { currency: 'dollars' }, ['input', 'currency']],
    ['an attribution window of 0 days', { attributionWindowDays: 0 }, ['input', 'attributionWindowDays']],
    ['an attribution window over 3650 days', { attributionWindowDays: 3651 }, ['input', 'attributionWindowDays']],
    ['a negative hold period', { holdDays: -1 }, ['input', 'holdDays']],
    ['a hold period over 3650 days', { holdDays: 3651 }, ['input', 'holdDays']],
    ['status ARCHIVED', { status: 'ARCHIVED' }, ['input', 'status']],
    ['a relative destination URL', { destinationUrl: '/signup' }, ['input', 'destinationUrl']],
    ['a destination URL that is not http(s)', { destinationUrl: 'ftp://example.com/x' }, ['input', 'destinationUrl']],
    [
      'a destination URL over 2048 characters',
      { destinationUrl: `https://example.com/${'a'.repeat(2030)}` },
      ['input', 'destinationUrl'],
    ],
    ['an empty destination URL', { destinationUrl: '' }, ['input', 'destinationUrl']],
  ];

  it.each(refusals)(
    'refuses %s with a VALIDATION error on that field, creating nothing',
    async (_what, input, field) => {
      const count = await prisma().program.count();
      const payload = await create(input);
      expect(payload.program).toBeNull();
      expect(payload.userErrors).toHaveLength(1);
      expect(payload.userErrors[0]).toMatchObject({ code: 'VALIDATION', field });
      expect(payload.userErrors[0]!.message.length).toBeGreaterThan(10);
      expect(await prisma().program.count()).toBe(count);
    },
  );

  it('reports every bad field at once', async () => {
    const payload = await create({
      name: '',
      currency: 'nope',
      holdDays: -5,
      attributionWindowDays: 0,
      destinationUrl: 'nope',
    });
    expect(payload.program).toBeNull();
    expect(payload.userErrors.map((e) => e.field)).toEqual([
      ['input', 'name'],
      ['input', 'currency'],
      ['input', 'attributionWindowDays'],
      ['input', 'holdDays'],
      ['input', 'destinationUrl'],
    ]);
    expect(payload.userErrors.every((e) => e.code === 'VALIDATION')).toBe(true);
  });

  it('accepts a name of exactly 200 characters', async () => {
    expect((await createOk({ name: 'y'.repeat(200) })).name).toHaveLength(200);
  });
});

describe('updateProgram', () => {
  it('changes only the fields given', async () => {
    const program = await createOk({ name: 'Partial', destinationUrl: 'https://example.com/a' });
    const before = await snapshot(program.id);
    const payload = await update({ id: program.id, holdDays: 14, allowSelfReferral: true });
    expect(payload.userErrors).toEqual([]);
    expect((await snapshot(program.id)).updatedAt.getTime()).toBeGreaterThan(before.updatedAt.getTime());
    expect(payload.program).toMatchObject({
      id: program.id,
      name: 'Partial',
      status: 'ACTIVE',
      attributionWindowDays: 30,
      holdDays: 14,
      allowSelfReferral: true,
      autoApprovePartners: true,
      destinationUrl: 'https://example.com/a',
    });
    const again = await update({
      id: program.id,
      name: ' Renamed ',
      attributionWindowDays: 60,
      autoApprovePartners: false,
      destinationUrl: 'https://example.com/b',
    });
    expect(again.program).toMatchObject({
      name: 'Renamed',
      attributionWindowDays: 60,
      autoApprovePartners: false,
      holdDays: 14,
      destinationUrl: 'https://example.com/b',
    });
    expect((await snapshot(program.id)).currency).toBe('USD');
  });

  it('clears the destination URL with null', async () => {
    const program = await createOk({ destinationUrl: 'https://example.com/a' });
    const payload = await update({ id: program.id, destinationUrl: null });
    expect(payload.userErrors).toEqual([]);
    expect(payload.program!.destinationUrl).toBeNull();
  });

  it('treats an update that changes nothing as a no-op', async () => {
    const program = await createOk({ name: 'Same' });
    const before = await snapshot(program.id);
    const payload = await update({ id: program.id, name: 'Same', status: 'ACTIVE', holdDays: 0 });
    expect(payload.userErrors).toEqual([]);
    expect((await snapshot(program.id)).updatedAt).toEqual(before.updatedAt);
  });

  it('refuses null for a setting that cannot be empty', async () => {
    const program = await createOk();
    const payload = await update({ id: program.id, name: null, holdDays: null });
    expect(payload.program).toBeNull();
    expect(payload.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'name'] }),
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'holdDays'] }),
    ]);
  });

  const refusals: Array<[string, Omit<UpdateProgramInput, 'id'>, string[]]> = [
    ['an empty name', { name: '' }, ['input', 'name']],
    ['a name over 200 characters', { name: 'x'.repeat(201) }, ['input', 'name']],
    ['an attribution window of 0 days', { attributionWindowDays: 0 }, ['input', 'attributionWindowDays']],
    ['an attribution window over 3650 days', { attributionWindowDays: 3651 }, ['input', 'attributionWindowDays']],
    ['a negative hold period', { holdDays: -1 }, ['input', 'holdDays']],
    ['a hold period over 3650 days', { holdDays: 3651 }, ['input', 'holdDays']],
    ['an invalid destination URL', { destinationUrl: 'javascript:alert(1)' }, ['input', 'destinationUrl']],
  ];

  it.each(refusals)('refuses %s with a VALIDATION error, changing nothing', async (_what, input, field) => {
    const program = await createOk({ name: 'Unchanged' });
    const before = await snapshot(program.id);
    const payload = await update({ id: program.id, holdDays: 7, ...input });
    expect(payload.program).toBeNull();
    expect(payload.userErrors).toEqual([expect.objectContaining({ code: 'VALIDATION', field })]);
    expect(await snapshot(program.id)).toEqual(before);
  });

  it('has no currency field: the currency is fixed at creation', async () => {
    const program = await createOk();
    const res = await fixture.gql(
      `mutation { updateProgram(input: { id: "${program.id}", currency: "EUR" }) { userErrors { code } } }`,
      {},
      fixture.admin,
    );
    expect(res.errors?.[0]?.message).toMatch(/currency/);
    expect((await snapshot(program.id)).currency).toBe('USD');
  });

  it('answers NOT_FOUND for a missing, malformed or wrong-type id', async () => {
    const missing = encodeGlobalID('Program', '01900000-0000-7000-8000-000000000000');
    const wrongType = encodeGlobalID('ApiKey', fixture.ws.keys.test.id);
    for (const id of [missing, 'not-a-global-id', encodeGlobalID('Program', 'not-a-uuid'), wrongType]) {
      const payload = await update({ id, name: 'x' });
      expect(payload.program).toBeNull();
      expect(payload.userErrors).toEqual([
        { code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'id'] },
      ]);
    }
  });
});

describe('program status transitions', () => {
  const allowed: Array<[ProgramStatus, ProgramStatus]> = [
    ['DRAFT', 'ACTIVE'],
    ['DRAFT', 'ARCHIVED'],
    ['ACTIVE', 'PAUSED'],
    ['ACTIVE', 'ARCHIVED'],
    ['PAUSED', 'ACTIVE'],
    ['PAUSED', 'ARCHIVED'],
  ];
  const refused: Array<[ProgramStatus, ProgramStatus]> = [
    ['DRAFT', 'PAUSED'],
    ['ACTIVE', 'DRAFT'],
    ['PAUSED', 'DRAFT'],
    ['ARCHIVED', 'DRAFT'],
    ['ARCHIVED', 'ACTIVE'],
    ['ARCHIVED', 'PAUSED'],
  ];
  const same: ProgramStatus[] = ['DRAFT', 'ACTIVE', 'PAUSED', 'ARCHIVED'];

  it.each(allowed)('allows %s → %s', async (from, to) => {
    const program = await programIn(from);
    const payload = await update({ id: program.id, status: to });
    expect(payload.userErrors).toEqual([]);
    expect(payload.program!.status).toBe(to);
    expect((await snapshot(program.id)).status).toBe(to);
  });

  it.each(refused)('refuses %s → %s with INVALID_TRANSITION naming the program and both statuses', async (from, to) => {
    const program = await programIn(from, `Program ${from} to ${to}`);
    const before = await snapshot(program.id);
    const payload = await update({ id: program.id, status: to, holdDays: 3 });
    expect(payload.program).toBeNull();
    expect(payload.userErrors).toHaveLength(1);
    const [error] = payload.userErrors;
    expect(error).toMatchObject({ code: 'INVALID_TRANSITION', field: ['input', 'status'] });
    expect(error!.message).toContain(`"Program ${from} to ${to}"`);
    expect(error!.message).toContain(from);
    expect(error!.message).toContain(to);
    expect(await snapshot(program.id)).toEqual(before);
  });

  it.each(same)('treats %s → the same status as a no-op', async (status) => {
    const program = await programIn(status);
    const payload = await update({ id: program.id, status });
    expect(payload.userErrors).toEqual([]);
    expect(payload.program!.status).toBe(status);
  });

  it('refuses every other change to an ARCHIVED program', async () => {
    const program = await programIn('ARCHIVED', 'Old program');
    const before = await snapshot(program.id);
    for (const input of [
      { name: 'New name' },
      { holdDays: 5 },
      { allowSelfReferral: true },
      { destinationUrl: 'https://example.com' },
    ]) {
      const payload = await update({ id: program.id, ...input });
      expect(payload.program).toBeNull();
      expect(payload.userErrors).toEqual([
        expect.objectContaining({
          code: 'INVALID_TRANSITION',
          field: ['input', 'id'],
          message: expect.stringMatching(/"Old program" is ARCHIVED/),
        }),
      ]);
    }
    expect(await snapshot(program.id)).toEqual(before);
  });
});

describe('program and programs queries', () => {
  let reader: { id: string; name: string };

  beforeAll(async () => {
    reader = await createOk({ name: 'Readable' });
  });

  it('reads a program by id, and through node(id)', async () => {
    expect((await fixture.gql(PROGRAM, { id: reader.id }, fixture.admin)).data?.program).toEqual({
      id: reader.id,
      name: 'Readable',
      status: 'ACTIVE',
      currency: 'USD',
    });
    expect((await fixture.gql(NODE, { id: reader.id }, fixture.admin)).data?.node).toEqual({
      id: reader.id,
      name: 'Readable',
      status: 'ACTIVE',
    });
  });

  it('answers null for a missing, malformed or wrong-type id', async () => {
    for (const id of [
      encodeGlobalID('Program', '01900000-0000-7000-8000-000000000000'),
      'garbage',
      encodeGlobalID('Program', '1'),
      encodeGlobalID('ApiKey', fixture.ws.keys.test.id),
    ]) {
      const res = await fixture.gql(PROGRAM, { id }, fixture.admin);
      expect(res.errors).toBeUndefined();
      expect(res.data?.program).toBeNull();
    }
  });

  it('lists programs newest first with cursor pagination, totalCount and a status filter', async () => {
    const fresh = await fixture.server.workspace('Listing');
    const token = fresh.keys.test.secret;
    const made = [];
    for (const [i, status] of (['ACTIVE', 'DRAFT', 'ACTIVE', 'PAUSED', 'ACTIVE'] as const).entries()) {
      made.push(await createOk({ name: `P${i}`, status }, token));
    }
    const first = await fixture.gql(PROGRAMS, { first: 2 }, token);
    expect(first.errors).toBeUndefined();
    const page1 = first.data!.programs;
    expect(page1.totalCount).toBe(5);
    expect(page1.edges.map((e) => e.node.name)).toEqual(['P4', 'P3']);
    expect(page1.pageInfo.hasNextPage).toBe(true);

    const page2 = (await fixture.gql(PROGRAMS, { first: 2, after: page1.pageInfo.endCursor }, token)).data!.programs;
    expect(page2.edges.map((e) => e.node.name)).toEqual(['P2', 'P1']);
    const page3 = (await fixture.gql(PROGRAMS, { first: 2, after: page2.pageInfo.endCursor }, token)).data!.programs;
    expect(page3.edges.map((e) => e.node.name)).toEqual(['P0']);
    expect(page3.pageInfo.hasNextPage).toBe(false);

    const active = (await fixture.gql(PROGRAMS, { status: 'ACTIVE' }, token)).data!.programs;
    expect(active.totalCount).toBe(3);
    expect(active.edges.map((e) => e.node.name)).toEqual(['P4', 'P2', 'P0']);
    const archived = (await fixture.gql(PROGRAMS, { status: 'ARCHIVED' }, token)).data!.programs;
    expect(archived).toMatchObject({ totalCount: 0, edges: [] });
  });

  it('answers an empty page for a forged cursor, never a database error', async () => {
    const forged = Buffer.from('GPC:S:not-a-uuid').toString('base64');
    const res = await fixture.gql(PROGRAMS, { first: 5, after: forged }, fixture.admin);
    expect(res.errors).toBeUndefined();
    expect(res.data!.programs.edges).toEqual([]);
  });

  it('caps a page at 100 programs', async () => {
    const res = await fixture.gql(PROGRAMS, { first: 1000 }, fixture.admin);
    expect(res.errors).toBeUndefined();
    expect(res.data!.programs.edges.length).toBeLessThanOrEqual(100);
  });
});

describe('roles', () => {
  it('lets a READ_ONLY key read programs', async () => {
    const program = await createOk({ name: 'Seen by readers' });
    expect((await fixture.gql(PROGRAM, { id: program.id }, readOnly)).data?.program?.name).toBe('Seen by readers');
    const list = await fixture.gql(PROGRAMS, { first: 100 }, readOnly);
    expect(list.data!.programs.edges.map((e) => e.node.id)).toContain(program.id);
  });

  it('refuses createProgram and updateProgram to a READ_ONLY key with FORBIDDEN_FOR_ROLE, changing nothing', async () => {
    const program = await createOk({ name: 'Guarded' });
    const count = await prisma().program.count();
    const created = await fixture.gql(CREATE, { input: { name: 'Nope', type: 'REFERRAL', currency: 'USD' } }, readOnly);
    expect(created.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const updated = await fixture.gql(UPDATE, { input: { id: program.id, name: 'Nope', status: 'PAUSED' } }, readOnly);
    expect(updated.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect(await prisma().program.count()).toBe(count);
    expect(await snapshot(program.id)).toMatchObject({ name: 'Guarded', status: 'ACTIVE' });
  });

  it('answers UNAUTHENTICATED without a credential', async () => {
    const program = await createOk();
    for (const [query, variables] of [
      [PROGRAM, { id: program.id }],
      [PROGRAMS, {}],
      [CREATE, { input: { name: 'Anon', type: 'REFERRAL', currency: 'USD' } }],
      [UPDATE, { input: { id: program.id, name: 'Anon' } }],
    ] as const) {
      const res = await fixture.gql(query as never, variables);
      expect(res.errors?.[0]?.extensions?.code, JSON.stringify(res)).toBe('UNAUTHENTICATED');
    }
    expect((await snapshot(program.id)).name).toBe('Refer a friend');
    // node(id) belongs to the shared builder: whatever it answers, it never shows the program.
    expect((await fixture.gql(NODE, { id: program.id })).data?.node ?? null).toBeNull();
  });

  it('shows a PARTNER credential only the programs its partner is enrolled in, through node(id)', async () => {
    const enrolled = await createOk({ name: 'Enrolled' });
    const notEnrolled = await createOk({ name: 'Not enrolled' });
    const partner = await prisma().partner.create({
      data: { workspaceId: fixture.ws.workspace.id, mode: 'TEST', externalId: `p-${Date.now()}` },
    });
    await prisma().enrollment.create({
      data: {
        workspaceId: fixture.ws.workspace.id,
        mode: 'TEST',
        partnerId: partner.id,
        programId: rowId(enrolled.id),
        status: 'APPROVED',
      },
    });
    const minted = await fixture.gql(
      CREATE_PARTNER_TOKEN,
      { input: { partnerId: encodeGlobalID('Partner', partner.id) } },
      fixture.admin,
    );
    expect(minted.data?.createPartnerToken.userErrors).toEqual([]);
    const token = minted.data!.createPartnerToken.token!;

    expect((await fixture.gql(NODE, { id: enrolled.id }, token)).data?.node).toEqual({
      id: enrolled.id,
      name: 'Enrolled',
      status: 'ACTIVE',
    });
    const hidden = await fixture.gql(NODE, { id: notEnrolled.id }, token);
    expect(hidden.errors).toBeUndefined();
    expect(hidden.data?.node).toBeNull();
    // Workspace-wide reads and writes are not for partners.
    expect((await fixture.gql(PROGRAM, { id: enrolled.id }, token)).errors?.[0]?.extensions?.code).toBe(
      'FORBIDDEN_FOR_ROLE',
    );
    expect((await fixture.gql(PROGRAMS, {}, token)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect(
      (await fixture.gql(UPDATE, { input: { id: enrolled.id, name: 'Mine' } }, token)).errors?.[0]?.extensions?.code,
    ).toBe('FORBIDDEN_FOR_ROLE');
  });
});

describe('isolation between workspaces and modes', () => {
  it('never shows or changes another workspace’s or the other mode’s program', async () => {
    const mine = await createOk({ name: 'Mine (TEST)' });
    const live = await createOk({ name: 'Mine (LIVE)' }, fixture.liveAdmin);
    const theirs = await createOk({ name: 'Theirs' }, fixture.otherAdmin);
    const before = { live: await snapshot(live.id), theirs: await snapshot(theirs.id) };

    for (const foreign of [live.id, theirs.id]) {
      expect((await fixture.gql(PROGRAM, { id: foreign }, fixture.admin)).data?.program).toBeNull();
      expect((await fixture.gql(NODE, { id: foreign }, fixture.admin)).data?.node).toBeNull();
      const payload = await update({ id: foreign, name: 'Hijacked', status: 'ARCHIVED' });
      expect(payload.program).toBeNull();
      expect(payload.userErrors).toEqual([
        { code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'id'] },
      ]);
    }
    expect(await snapshot(live.id)).toEqual(before.live);
    expect(await snapshot(theirs.id)).toEqual(before.theirs);

    const listed = (await fixture.gql(PROGRAMS, { first: 100 }, fixture.admin)).data!.programs;
    const ids = listed.edges.map((e) => e.node.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(live.id);
    expect(ids).not.toContain(theirs.id);
    expect(listed.totalCount).toBe(await prisma().program.count({ where: fixture.tenant }));

    // A cursor made from a foreign id pages nothing foreign.
    const foreignCursor = Buffer.from(`GPC:S:${rowId(theirs.id)}`).toString('base64');
    const paged = await fixture.gql(PROGRAMS, { first: 100, after: foreignCursor }, fixture.admin);
    expect(paged.errors).toBeUndefined();
    for (const edge of paged.data!.programs.edges) expect([live.id, theirs.id]).not.toContain(edge.node.id);

    // The LIVE key sees its own program and not the TEST one.
    expect((await fixture.gql(PROGRAM, { id: live.id }, fixture.liveAdmin)).data?.program?.name).toBe('Mine (LIVE)');
    expect((await fixture.gql(PROGRAM, { id: mine.id }, fixture.liveAdmin)).data?.program).toBeNull();
  });
});
