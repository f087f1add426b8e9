import { encodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const PUBLIC_URL = 'https://ref.example.com';

const fixture = useTwoWorkspaces({ env: { PUBLIC_URL }, names: ['Links A', 'Links B'] });

const CREATE = graphql(`
  mutation LT_Create($input: CreateReferralLinkInput!) {
    createReferralLink(input: $input) {
      link { id code url destinationUrl disabled isDefault program { id } partner { id } }
      userErrors { code message field }
    }
  }
`);

const DISABLE = graphql(`
  mutation LT_Disable($input: DisableReferralLinkInput!) {
    disableReferralLink(input: $input) {
      link { id code disabled disabledAt }
      userErrors { code message field }
    }
  }
`);

const BY_CODE = graphql(`
  query LT_ByCode($code: String!) {
    referralLink(code: $code) { id code disabled partner { id } }
  }
`);

const NODE = graphql(`
  query LT_Node($id: ID!) {
    node(id: $id) { id ... on ReferralLink { code } }
  }
`);

type Tenant = { workspaceId: string; mode: 'TEST' | 'LIVE' };
const prisma = () => fixture.server.testDb.db.prisma;

let seq = 0;
const unique = (prefix = 'p') => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
/** A fresh vanity code (codes are unique across the installation). */
const vanity = (prefix = 'Code') => `${prefix}_${++seq}${Math.random().toString(36).slice(2, 8)}`;

/**
 * A partner with an enrollment in a new program, as Prisma rows. `status` APPROVED by default;
 * no links are created here (createReferralLink is what is tested).
 */
async function enrolled(
  tenant: Tenant = fixture.tenant,
  opts: {
    status?: 'PENDING' | 'APPROVED' | 'REJECTED';
    destinationUrl?: string | null;
    partnerStatus?: 'ACTIVE' | 'BANNED';
    programStatus?: 'ACTIVE' | 'ARCHIVED';
  } = {},
) {
  const program = await prisma().program.create({
    data: {
      ...tenant,
      name: unique('Program'),
      type: 'REFERRAL',
      currency: 'USD',
      destinationUrl: opts.destinationUrl ?? null,
      status: opts.programStatus ?? 'ACTIVE',
    },
  });
  const partner = await prisma().partner.create({
    data: { ...tenant, externalId: unique(), status: opts.partnerStatus ?? 'ACTIVE' },
  });
  await prisma().enrollment.create({
    data: { ...tenant, programId: program.id, partnerId: partner.id, status: opts.status ?? 'APPROVED' },
  });
  return {
    programId: encodeGlobalID('Program', program.id),
    partnerId: encodeGlobalID('Partner', partner.id),
    programRowId: program.id,
    partnerRowId: partner.id,
  };
}

async function create(
  input: { partnerId: string; programId: string; code?: string | null; destinationUrl?: string | null },
  token = fixture.admin,
) {
  const { partnerId, programId, code, destinationUrl } = input;
  const res = await fixture.gql(CREATE, { input: { partnerId, programId, code, destinationUrl } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.createReferralLink;
}

async function createOk(input: Parameters<typeof create>[0], token = fixture.admin) {
  const payload = await create(input, token);
  expect(payload.userErrors).toEqual([]);
  return payload.link!;
}

const linkCount = () => prisma().referralLink.count();

async function readOnlyKey(token = fixture.admin): Promise<string> {
  const res = await fixture.gql(
    'mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret } }',
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

describe('createReferralLink', () => {
  it('generates an 8-character code from an unambiguous alphabet, and builds url and destinationUrl', async () => {
    const e = await enrolled(fixture.tenant, { destinationUrl: 'https://shop.example.com/signup' });
    const link = await createOk(e);
    expect(link.code).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);
    expect(link).toMatchObject({
      url: `${PUBLIC_URL}/r/${link.code}`,
      destinationUrl: 'https://shop.example.com/signup',
      disabled: false,
      isDefault: false,
      program: { id: e.programId },
      partner: { id: e.partnerId },
    });
    const row = await prisma().referralLink.findUniqueOrThrow({ where: { codeNormalized: link.code.toLowerCase() } });
    expect(row.destinationUrl).toBeNull();
  });

  it('generates a different code each time', async () => {
    const e = await enrolled();
    const codes = new Set<string>();
    for (let i = 0; i < 5; i++) codes.add((await createOk(e)).code);
    expect(codes.size).toBe(5);
  });

  it('uses the link’s own destination first, then the program’s, then the public URL', async () => {
    const withProgramUrl = await enrolled(fixture.tenant, { destinationUrl: 'https://program.example.com/' });
    expect(
      (await createOk({ ...withProgramUrl, destinationUrl: 'http://own.example.com/landing?x=1' })).destinationUrl,
    ).toBe('http://own.example.com/landing?x=1');
    expect((await createOk(withProgramUrl)).destinationUrl).toBe('https://program.example.com/');
    expect((await createOk(await enrolled())).destinationUrl).toBe(PUBLIC_URL);
  });

  it('keeps a vanity code’s case and URL-encodes nothing it does not need to', async () => {
    const code = vanity('Summer-Sale');
    const link = await createOk({ ...(await enrolled()), code });
    expect(link.code).toBe(code);
    expect(link.url).toBe(`${PUBLIC_URL}/r/${code}`);
  });

  it('accepts vanity codes of 3 and of 32 characters', async () => {
    const e = await enrolled();
    // Each test file has a database of its own, so this short code is free.
    expect((await createOk({ ...e, code: 'Q7z' })).code).toBe('Q7z');
    const thirtyTwo = vanity('L').padEnd(32, 'x');
    expect((await createOk({ ...e, code: thirtyTwo })).code).toBe(thirtyTwo);
  });

  it('refuses a vanity code shorter than 3 characters', async () => {
    const before = await linkCount();
    const payload = await create({ ...(await enrolled()), code: 'ab' });
    expect(payload).toEqual({
      link: null,
      userErrors: [
        { code: 'VALIDATION', message: 'A code must be at least 3 characters long.', field: ['input', 'code'] },
      ],
    });
    expect(await linkCount()).toBe(before);
  });

  it('refuses a vanity code longer than 32 characters', async () => {
    const payload = await create({ ...(await enrolled()), code: 'a'.repeat(33) });
    expect(payload.userErrors).toEqual([
      { code: 'VALIDATION', message: 'A code must be at most 32 characters long.', field: ['input', 'code'] },
    ]);
  });

  it('refuses characters outside A–Z, a–z, 0–9, "_" and "-"', async () => {
    const e = await enrolled();
    for (const code of ['has space', 'dot.code', 'slash/code', 'émile', 'percent%', 'ＡＢＣ']) {
      const payload = await create({ ...e, code });
      expect(payload.userErrors, code).toEqual([
        {
          code: 'VALIDATION',
          message: 'A code may contain only letters A–Z and a–z, digits, "_" and "-".',
          field: ['input', 'code'],
        },
      ]);
    }
  });

  it('refuses reserved words in any case', async () => {
    const e = await enrolled();
    for (const code of [
      'admin',
      'API',
      'GraphQL',
      'graphiql',
      'healthz',
      'readyz',
      'www',
      'Static',
      'assets',
      'login',
      'signup',
      'REFGRAPH',
    ]) {
      const payload = await create({ ...e, code });
      expect(payload.userErrors, code).toEqual([
        {
          code: 'VALIDATION',
          message: `"${code}" is a reserved word and cannot be used as a code.`,
          field: ['input', 'code'],
        },
      ]);
    }
  });

  it('refuses a code taken in another case with DUPLICATE', async () => {
    const e = await enrolled();
    const code = vanity('Taken');
    await createOk({ ...e, code });
    const before = await linkCount();
    const payload = await create({ ...e, code: code.toUpperCase() });
    expect(payload).toEqual({
      link: null,
      userErrors: [
        {
          code: 'DUPLICATE',
          message: `The code "${code.toUpperCase()}" is already taken; choose another.`,
          field: ['input', 'code'],
        },
      ],
    });
    expect(await linkCount()).toBe(before);
  });

  it('gives the same DUPLICATE for a code held in another workspace or mode, revealing nothing', async () => {
    const code = vanity('Elsewhere');
    await createOk({ ...(await enrolled(fixture.otherTenant)), code }, fixture.otherAdmin);
    const liveCode = vanity('LiveOne');
    await createOk(
      { ...(await enrolled({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' })), code: liveCode },
      fixture.liveAdmin,
    );
    const e = await enrolled();
    for (const taken of [code, code.toLowerCase(), liveCode]) {
      expect((await create({ ...e, code: taken })).userErrors).toEqual([
        {
          code: 'DUPLICATE',
          message: `The code "${taken}" is already taken; choose another.`,
          field: ['input', 'code'],
        },
      ]);
    }
  });

  it('gives one link and DUPLICATE for the others when the same vanity code races', async () => {
    const e = await enrolled();
    const code = vanity('Race');
    const results = await Promise.all([
      create({ ...e, code }),
      create({ ...e, code: code.toLowerCase() }),
      create({ ...e, code: code.toUpperCase() }),
    ]);
    expect(results.filter((r) => r.link).length).toBe(1);
    for (const r of results.filter((r) => !r.link)) expect(r.userErrors[0]?.code).toBe('DUPLICATE');
  });

  it('refuses a destinationUrl that is not an absolute http(s) URL', async () => {
    const e = await enrolled();
    for (const destinationUrl of [
      '/relative/path',
      'example.com',
      'ftp://example.com/file',
      'javascript:alert(1)',
      'mailto:a@example.com',
    ]) {
      expect((await create({ ...e, destinationUrl })).userErrors, destinationUrl).toEqual([
        {
          code: 'VALIDATION',
          message: 'A destination URL must be an absolute http:// or https:// URL.',
          field: ['input', 'destinationUrl'],
        },
      ]);
    }
  });

  it('refuses a destinationUrl longer than 2048 characters', async () => {
    const e = await enrolled();
    const base = 'https://example.com/?q=';
    expect((await createOk({ ...e, destinationUrl: base.padEnd(2048, 'x') })).destinationUrl).toHaveLength(2048);
    expect((await create({ ...e, destinationUrl: base.padEnd(2049, 'x') })).userErrors).toEqual([
      {
        code: 'VALIDATION',
        message: 'A destination URL must be at most 2048 characters long.',
        field: ['input', 'destinationUrl'],
      },
    ]);
  });

  it('reports an invalid code and an invalid destination together', async () => {
    const payload = await create({ ...(await enrolled()), code: 'x', destinationUrl: 'nope' });
    expect(payload.userErrors.map((u) => u.field)).toEqual([
      ['input', 'code'],
      ['input', 'destinationUrl'],
    ]);
  });

  it('answers NOT_FOUND when the partner is not enrolled in the program', async () => {
    const a = await enrolled();
    const b = await enrolled();
    const before = await linkCount();
    const payload = await create({ partnerId: a.partnerId, programId: b.programId });
    expect(payload.link).toBeNull();
    expect(payload.userErrors).toEqual([
      {
        code: 'NOT_FOUND',
        message: expect.stringContaining('is not enrolled in program'),
        field: ['input', 'programId'],
      },
    ]);
    expect(await linkCount()).toBe(before);
  });

  it('refuses a PENDING or REJECTED enrollment with INVALID_TRANSITION', async () => {
    for (const status of ['PENDING', 'REJECTED'] as const) {
      const payload = await create(await enrolled(fixture.tenant, { status }));
      expect(payload.userErrors).toEqual([
        {
          code: 'INVALID_TRANSITION',
          message: expect.stringContaining(`is ${status}; links can only be created for an APPROVED enrollment`),
          field: ['input', 'programId'],
        },
      ]);
    }
  });

  it('refuses a BANNED partner and an ARCHIVED program with INVALID_TRANSITION', async () => {
    expect((await create(await enrolled(fixture.tenant, { partnerStatus: 'BANNED' }))).userErrors).toEqual([
      { code: 'INVALID_TRANSITION', message: expect.stringContaining('is BANNED'), field: ['input', 'partnerId'] },
    ]);
    expect((await create(await enrolled(fixture.tenant, { programStatus: 'ARCHIVED' }))).userErrors).toEqual([
      { code: 'INVALID_TRANSITION', message: expect.stringContaining('is ARCHIVED'), field: ['input', 'programId'] },
    ]);
  });

  it('answers NOT_FOUND for partners and programs outside the caller’s workspace and mode, and creates nothing', async () => {
    const mine = await enrolled();
    const foreign = await enrolled(fixture.otherTenant);
    const liveOne = await enrolled({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
    const before = await linkCount();
    for (const partnerId of [
      foreign.partnerId,
      liveOne.partnerId,
      'garbage',
      mine.programId,
      encodeGlobalID('Partner', 'x'),
    ]) {
      expect((await create({ partnerId, programId: mine.programId })).userErrors, partnerId).toEqual([
        { code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'partnerId'] },
      ]);
    }
    for (const programId of [foreign.programId, liveOne.programId, 'garbage', mine.partnerId]) {
      expect((await create({ partnerId: mine.partnerId, programId })).userErrors, programId).toEqual([
        { code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'programId'] },
      ]);
    }
    expect((await create(foreign)).userErrors[0]?.code).toBe('NOT_FOUND');
    expect((await create(mine, fixture.otherAdmin)).userErrors[0]?.code).toBe('NOT_FOUND');
    expect((await create(mine, fixture.liveAdmin)).userErrors[0]?.code).toBe('NOT_FOUND');
    expect(await linkCount()).toBe(before);
  });
});

describe('disableReferralLink', () => {
  it('disables a link, which stays readable; disabling again changes nothing', async () => {
    const link = await createOk(await enrolled());
    const first = await fixture.gql(DISABLE, { input: { id: link.id } }, fixture.admin);
    expect(first.data?.disableReferralLink).toEqual({
      link: { id: link.id, code: link.code, disabled: true, disabledAt: expect.any(String) },
      userErrors: [],
    });
    const second = await fixture.gql(DISABLE, { input: { id: link.id } }, fixture.admin);
    expect(second.data?.disableReferralLink).toEqual(first.data?.disableReferralLink);
    expect((await fixture.gql(BY_CODE, { code: link.code }, fixture.admin)).data?.referralLink).toMatchObject({
      id: link.id,
      disabled: true,
    });
    expect((await fixture.gql(NODE, { id: link.id }, fixture.admin)).data).toEqual({
      node: { id: link.id, code: link.code },
    });
  });

  it('answers NOT_FOUND for links outside the caller’s workspace and mode, and changes nothing', async () => {
    const foreign = await createOk(await enrolled(fixture.otherTenant), fixture.otherAdmin);
    const liveOne = await createOk(
      await enrolled({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' }),
      fixture.liveAdmin,
    );
    const partnerOfMine = (await enrolled()).partnerId;
    for (const id of [foreign.id, liveOne.id, 'garbage', partnerOfMine, encodeGlobalID('ReferralLink', 'x')]) {
      expect((await fixture.gql(DISABLE, { input: { id } }, fixture.admin)).data?.disableReferralLink, id).toEqual({
        link: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Referral link not found.', field: ['input', 'id'] }],
      });
    }
    expect(
      await prisma().referralLink.count({
        where: { disabledAt: { not: null }, code: { in: [foreign.code, liveOne.code] } },
      }),
    ).toBe(0);
  });
});

describe('referralLink(code)', () => {
  it('finds a link by its code ignoring case', async () => {
    const code = vanity('MixedCase');
    const link = await createOk({ ...(await enrolled()), code });
    for (const asked of [code, code.toLowerCase(), code.toUpperCase()]) {
      expect((await fixture.gql(BY_CODE, { code: asked }, fixture.admin)).data?.referralLink, asked).toMatchObject({
        id: link.id,
        code,
      });
    }
  });

  it('answers null for unknown codes and for codes of another workspace or mode', async () => {
    const foreign = await createOk(
      { ...(await enrolled(fixture.otherTenant)), code: vanity('Foreign') },
      fixture.otherAdmin,
    );
    const liveOne = await createOk(
      { ...(await enrolled({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' })), code: vanity('Live') },
      fixture.liveAdmin,
    );
    for (const code of [foreign.code, liveOne.code, 'no-such-code', '', 'x'.repeat(500), '%', 'a_b']) {
      const res = await fixture.gql(BY_CODE, { code }, fixture.admin);
      expect(res.errors, code).toBeUndefined();
      expect(res.data).toEqual({ referralLink: null });
    }
    expect((await fixture.gql(NODE, { id: foreign.id }, fixture.admin)).data).toEqual({ node: null });
    expect((await fixture.gql(NODE, { id: liveOne.id }, fixture.admin)).data).toEqual({ node: null });
  });
});

describe('roles', () => {
  it('lets a READ_ONLY key read links but refuses it createReferralLink and disableReferralLink', async () => {
    const reader = await readOnlyKey();
    const e = await enrolled();
    const link = await createOk(e);
    expect((await fixture.gql(BY_CODE, { code: link.code }, reader)).data?.referralLink?.id).toBe(link.id);
    const before = await linkCount();
    for (const res of [
      await fixture.gql(CREATE, { input: { partnerId: e.partnerId, programId: e.programId } }, reader),
      await fixture.gql(DISABLE, { input: { id: link.id } }, reader),
    ]) {
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    expect(await linkCount()).toBe(before);
    expect((await fixture.gql(BY_CODE, { code: link.code }, fixture.admin)).data?.referralLink?.disabled).toBe(false);
  });

  it('refuses every link operation without a credential', async () => {
    const e = await enrolled();
    for (const res of [
      await fixture.gql(CREATE, { input: { partnerId: e.partnerId, programId: e.programId } }),
      await fixture.gql(BY_CODE, { code: 'abc' }),
    ]) {
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });

  it('lets a PARTNER credential create links for its own partner only', async () => {
    const mine = await enrolled();
    const theirs = await prisma().partner.create({ data: { ...fixture.tenant, externalId: unique() } });
    await prisma().enrollment.create({
      data: { ...fixture.tenant, programId: mine.programRowId, partnerId: theirs.id, status: 'APPROVED' },
    });
    const token = await partnerToken(mine.partnerId);
    const code = vanity('Mine');
    const link = await createOk({ ...mine, code }, token);
    expect(link).toMatchObject({ code, partner: { id: mine.partnerId } });
    const before = await linkCount();
    const payload = await create(
      { partnerId: encodeGlobalID('Partner', theirs.id), programId: mine.programId, code: vanity('Theirs') },
      token,
    );
    expect(payload).toEqual({
      link: null,
      userErrors: [{ code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'partnerId'] }],
    });
    expect(await linkCount()).toBe(before);
  });

  it('shows a PARTNER credential its own links only, and refuses it disableReferralLink', async () => {
    const mine = await enrolled();
    const theirs = await enrolled();
    const myLink = await createOk(mine);
    const theirLink = await createOk(theirs);
    const token = await partnerToken(mine.partnerId);
    expect((await fixture.gql(BY_CODE, { code: myLink.code.toLowerCase() }, token)).data?.referralLink).toMatchObject({
      id: myLink.id,
    });
    expect((await fixture.gql(BY_CODE, { code: theirLink.code }, token)).data).toEqual({ referralLink: null });
    expect((await fixture.gql(NODE, { id: myLink.id }, token)).data).toEqual({
      node: { id: myLink.id, code: myLink.code },
    });
    expect((await fixture.gql(NODE, { id: theirLink.id }, token)).data).toEqual({ node: null });
    const own = await fixture.gql(
      'query($id: ID!) { partner(id: $id) { links { id } } }',
      { id: mine.partnerId },
      token,
    );
    expect(own.data).toEqual({ partner: { links: [{ id: myLink.id }] } });
    const res = await fixture.gql(DISABLE, { input: { id: myLink.id } }, token);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});
