import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedWorkspace } from '../src/modules/workspace/workspace.service.js';
import { graphql } from './gql/index.js';
import { factories, gid, type Factories, type Tenant } from './helpers/factories.js';
import { partnerToken } from './helpers/money.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// Every mutation that takes `partnerId` also takes `partnerExternalId` (the company's own id):
// exactly one of the two. Acting by either is the same; neither, both, an unknown externalId or
// one of another workspace or mode is refused and changes nothing.

let server: TestServer;
let ws: CreatedWorkspace;
let other: CreatedWorkspace;
let admin: string;
let tenant: Tenant;
let f: Factories;
let live: Factories;
let foreign: Factories;
/** A program where the test partners are enrolled by factory, and one that auto-approves. */
let programId: string;
let autoProgramId: string;

beforeAll(async () => {
  server = await startTestServer();
  ws = await server.workspace('External ids A');
  other = await server.workspace('External ids B');
  admin = ws.keys.test.secret;
  tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
  f = factories(prisma(), tenant);
  live = factories(prisma(), { workspaceId: ws.workspace.id, mode: 'LIVE' });
  foreign = factories(prisma(), { workspaceId: other.workspace.id, mode: 'TEST' });
  programId = (await f.program({ name: unique('Program') })).id;
  autoProgramId = (await f.program({ name: unique('Auto program'), autoApprovePartners: true })).id;
});
afterAll(async () => {
  await server?.close();
});

const prisma = () => server.testDb.db.prisma;
let serial = 0;
const unique = (prefix: string) => `${prefix}-${++serial}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * A partner of workspace A in TEST whose externalId also belongs to a partner of A in LIVE and
 * of workspace B in TEST: acting by it must reach A's TEST partner only.
 */
async function twinPartner(data: { status?: 'ACTIVE' | 'INACTIVE' | 'BANNED' } = {}) {
  const externalId = unique('twin');
  const partner = await f.partner({ externalId, ...data });
  const twins = [await live.partner({ externalId }), await foreign.partner({ externalId })];
  return { partner, externalId, gid: gid('Partner', partner.id), twins };
}

/** Everything these mutations could write, across every workspace and mode. */
async function snapshot() {
  const db = prisma();
  return {
    events: await db.event.count(),
    partners: await db.partner.findMany({
      select: { id: true, status: true, updatedAt: true },
      orderBy: { id: 'asc' },
    }),
    enrollments: await db.enrollment.count(),
    links: await db.referralLink.count(),
    ledgerEntries: await db.ledgerEntry.count(),
    payouts: await db.payout.count(),
  };
}

const SET_STATUS = graphql(`
  mutation PX_SetStatus($input: SetPartnerStatusInput!) {
    setPartnerStatus(input: $input) { partner { id externalId status } userErrors { code message field } }
  }
`);
const ENROLL = graphql(`
  mutation PX_Enroll($input: EnrollPartnerInput!) {
    enrollPartner(input: $input) { enrollment { id status partner { id } program { id } } userErrors { code message field } }
  }
`);
const LINK = graphql(`
  mutation PX_Link($input: CreateReferralLinkInput!) {
    createReferralLink(input: $input) { link { id code partner { id } program { id } } userErrors { code message field } }
  }
`);
const CREDIT = graphql(`
  mutation PX_Credit($input: CreditBalanceInput!) {
    creditBalance(input: $input) { balance { currency available { amount currency } } userErrors { code message field } }
  }
`);
const PAYOUT = graphql(`
  mutation PX_Payout($input: CreatePayoutInput!) {
    createPayout(input: $input) { payout { id status amount { amount currency } partner { id } } userErrors { code message field } }
  }
`);
const TOKEN = graphql(`
  mutation PX_Token($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) { token expiresAt userErrors { code message field } }
  }
`);
const VIEWER = graphql(`
  query PX_Viewer { viewer { role partner { id externalId } } }
`);

interface PartnerKeyInput {
  partnerId?: string | null;
  partnerExternalId?: string | null;
}
interface UserError {
  code: string;
  message: string;
  field?: string[] | null;
}

/**
 * Each mutation, with every other input field valid (so that only the partner can be at fault):
 * `document` sends `input(key)`; `send` answers the payload's result field and its userErrors.
 */
interface MutationCase {
  name: string;
  document: string;
  input(key: PartnerKeyInput): Record<string, unknown>;
  send(key: PartnerKeyInput, token?: string): Promise<{ result: unknown; userErrors: UserError[] }>;
}

function mutationCases(): MutationCase[] {
  // `result`: the payload's result field; `selection`: what to ask of it.
  const cases: Array<Pick<MutationCase, 'name' | 'input'> & { result: string; selection: string }> = [
    {
      name: 'setPartnerStatus',
      result: 'partner',
      selection: 'partner { id }',
      input: (key) => ({ ...key, status: 'INACTIVE' }),
    },
    {
      name: 'enrollPartner',
      result: 'enrollment',
      selection: 'enrollment { id }',
      input: (key) => ({ ...key, programId: gid('Program', autoProgramId) }),
    },
    {
      name: 'createReferralLink',
      result: 'link',
      selection: 'link { id }',
      input: (key) => ({ ...key, programId: gid('Program', programId) }),
    },
    {
      name: 'creditBalance',
      result: 'balance',
      selection: 'balance { currency }',
      input: (key) => ({ ...key, amount: { amount: '5', currency: 'USD' }, idempotencyKey: unique('credit') }),
    },
    {
      name: 'createPayout',
      result: 'payout',
      selection: 'payout { id }',
      input: (key) => ({ ...key, currency: 'USD' }),
    },
    {
      name: 'createPartnerToken',
      result: 'token',
      selection: 'token',
      input: (key) => ({ ...key }),
    },
  ];
  return cases.map((c) => {
    const inputType = `${c.name[0]!.toUpperCase()}${c.name.slice(1)}Input`;
    const document = `mutation PX_${c.name}($input: ${inputType}!) { ${c.name}(input: $input) { ${c.selection} userErrors { code message field } } }`;
    return {
      name: c.name,
      document,
      input: c.input,
      send: async (key, token = admin) => {
        const res = await server.gql<Record<string, Record<string, unknown>>>(document, { input: c.input(key) }, token);
        expect(res.errors).toBeUndefined();
        const payload = res.data![c.name]!;
        return { result: payload[c.result], userErrors: payload.userErrors as UserError[] };
      },
    };
  });
}

describe('acting by partnerExternalId is acting by partnerId', () => {
  it('setPartnerStatus: by externalId (trimmed), then by id, changes the same partner, and only the caller’s tenant’s', async () => {
    const p = await twinPartner();
    const byExternalId = await server.gql(
      SET_STATUS,
      { input: { partnerExternalId: `  ${p.externalId} `, status: 'INACTIVE' } },
      admin,
    );
    expect(byExternalId.data!.setPartnerStatus).toEqual({
      partner: { id: p.gid, externalId: p.externalId, status: 'INACTIVE' },
      userErrors: [],
    });
    const events = await prisma().event.findMany({
      where: { ...tenant, type: 'partner.status_changed', partnerId: p.partner.id },
    });
    expect(events).toHaveLength(1);

    // The same partner by id: already INACTIVE, so a no-op with the same answer and no event.
    const byId = await server.gql(SET_STATUS, { input: { partnerId: p.gid, status: 'INACTIVE' } }, admin);
    expect(byId.data!.setPartnerStatus).toEqual(byExternalId.data!.setPartnerStatus);
    expect(
      await prisma().event.count({ where: { ...tenant, type: 'partner.status_changed', partnerId: p.partner.id } }),
    ).toBe(1);

    // The other mode's and the other workspace's partners with that externalId are untouched.
    for (const twin of p.twins) {
      expect((await prisma().partner.findUniqueOrThrow({ where: { id: twin.id } })).status).toBe('ACTIVE');
    }
  });

  it('enrollPartner: by externalId enrolls the partner; by id it is then already enrolled (the same partner)', async () => {
    const p = await twinPartner();
    const byExternalId = await server.gql(
      ENROLL,
      { input: { partnerExternalId: p.externalId, programId: gid('Program', autoProgramId) } },
      admin,
    );
    expect(byExternalId.data!.enrollPartner).toEqual({
      enrollment: {
        id: expect.any(String),
        status: 'APPROVED',
        partner: { id: p.gid },
        program: { id: gid('Program', autoProgramId) },
      },
      userErrors: [],
    });
    expect(
      await prisma().event.count({
        where: { ...tenant, type: { startsWith: 'enrollment.' }, partnerId: p.partner.id },
      }),
    ).toBe(1);

    const before = await snapshot();
    const byId = await server.gql(
      ENROLL,
      { input: { partnerId: p.gid, programId: gid('Program', autoProgramId) } },
      admin,
    );
    expect(byId.data!.enrollPartner).toEqual({
      enrollment: null,
      userErrors: [
        {
          code: 'DUPLICATE',
          message: expect.stringContaining(`Partner "${p.externalId}" is already enrolled`),
          field: ['input', 'programId'],
        },
      ],
    });
    expect(await snapshot()).toEqual(before);
    expect(await prisma().enrollment.count({ where: { partnerId: { in: p.twins.map((t) => t.id) } } })).toBe(0);
  });

  it('enrollPartner: a BANNED partner named by externalId is refused at ["input", "partnerExternalId"]', async () => {
    const p = await twinPartner({ status: 'BANNED' });
    const before = await snapshot();
    const res = await server.gql(
      ENROLL,
      { input: { partnerExternalId: p.externalId, programId: gid('Program', autoProgramId) } },
      admin,
    );
    expect(res.data!.enrollPartner.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID_TRANSITION', field: ['input', 'partnerExternalId'] }),
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it('createReferralLink: a link by externalId and a link by id belong to the same partner', async () => {
    const p = await twinPartner();
    await f.enrollment({ programId, partnerId: p.partner.id });
    const byExternalId = await server.gql(
      LINK,
      { input: { partnerExternalId: p.externalId, programId: gid('Program', programId), code: unique('ext') } },
      admin,
    );
    const byId = await server.gql(
      LINK,
      { input: { partnerId: p.gid, programId: gid('Program', programId), code: unique('gid') } },
      admin,
    );
    for (const res of [byExternalId, byId]) {
      expect(res.data!.createReferralLink).toEqual({
        link: {
          id: expect.any(String),
          code: expect.any(String),
          partner: { id: p.gid },
          program: { id: gid('Program', programId) },
        },
        userErrors: [],
      });
    }
    expect(await prisma().event.count({ where: { ...tenant, type: 'link.created', partnerId: p.partner.id } })).toBe(2);
  });

  it('creditBalance: the same key by externalId and then by id is one credit to one partner (a replay)', async () => {
    const p = await twinPartner();
    const key = unique('credit');
    const input = { amount: { amount: '5', currency: 'USD' }, idempotencyKey: key };
    const byExternalId = await server.gql(CREDIT, { input: { ...input, partnerExternalId: p.externalId } }, admin);
    expect(byExternalId.data!.creditBalance).toEqual({
      balance: { currency: 'USD', available: { amount: '5.00', currency: 'USD' } },
      userErrors: [],
    });
    const before = await snapshot();
    const byId = await server.gql(CREDIT, { input: { ...input, partnerId: p.gid } }, admin);
    expect(byId.data!.creditBalance).toEqual(byExternalId.data!.creditBalance);
    expect(await snapshot()).toEqual(before);
    expect(await prisma().ledgerEntry.count({ where: { partnerId: p.partner.id } })).toBe(1);
    expect(
      await prisma().event.count({ where: { ...tenant, type: 'balance.credited', partnerId: p.partner.id } }),
    ).toBe(1);
    expect(await prisma().ledgerEntry.count({ where: { partnerId: { in: p.twins.map((t) => t.id) } } })).toBe(0);
  });

  it('createPayout: by externalId pays the partner; by id there is then nothing due (the same partner)', async () => {
    const p = await twinPartner();
    await f.ledgerEntries([{ partnerId: p.partner.id, type: 'CREDIT', amount: 700n, currency: 'USD' }]);
    // The twins have money too: a payout by externalId must not touch it.
    await live.ledgerEntries([{ partnerId: p.twins[0]!.id, type: 'CREDIT', amount: 900n, currency: 'USD' }]);
    await foreign.ledgerEntries([{ partnerId: p.twins[1]!.id, type: 'CREDIT', amount: 900n, currency: 'USD' }]);

    const byExternalId = await server.gql(
      PAYOUT,
      { input: { partnerExternalId: p.externalId, currency: 'USD' } },
      admin,
    );
    expect(byExternalId.data!.createPayout).toEqual({
      payout: {
        id: expect.any(String),
        status: 'PENDING',
        amount: { amount: '7.00', currency: 'USD' },
        partner: { id: p.gid },
      },
      userErrors: [],
    });
    expect(await prisma().event.count({ where: { ...tenant, type: 'payout.created', partnerId: p.partner.id } })).toBe(
      1,
    );

    const before = await snapshot();
    const byId = await server.gql(PAYOUT, { input: { partnerId: p.gid, currency: 'USD' } }, admin);
    expect(byId.data!.createPayout).toEqual({
      payout: null,
      userErrors: [expect.objectContaining({ code: 'NOTHING_DUE' })],
    });
    expect(await snapshot()).toEqual(before);
    expect(await prisma().payout.count({ where: { partnerId: { in: p.twins.map((t) => t.id) } } })).toBe(0);
  });

  it('createPartnerToken: a token minted by externalId acts for the same partner as one minted by id', async () => {
    const p = await twinPartner();
    const viewers = [];
    for (const key of [{ partnerExternalId: p.externalId }, { partnerId: p.gid }]) {
      const res = await server.gql(TOKEN, { input: key }, admin);
      expect(res.data!.createPartnerToken.userErrors).toEqual([]);
      const viewer = await server.gql(VIEWER, {}, res.data!.createPartnerToken.token!);
      viewers.push(viewer.data!.viewer);
    }
    expect(viewers).toEqual([
      { role: 'PARTNER', partner: { id: p.gid, externalId: p.externalId } },
      { role: 'PARTNER', partner: { id: p.gid, externalId: p.externalId } },
    ]);
  });
});

describe('refused: neither, both, unknown, another workspace’s or mode’s — nothing changes', () => {
  it('neither or both: VALIDATION at ["input"] naming both fields, for every mutation', async () => {
    const p = await twinPartner();
    await f.enrollment({ programId, partnerId: p.partner.id });
    await f.ledgerEntries([{ partnerId: p.partner.id, type: 'CREDIT', amount: 100n, currency: 'USD' }]);
    const before = await snapshot();
    const keys: PartnerKeyInput[] = [
      {},
      { partnerId: null, partnerExternalId: null },
      { partnerId: p.gid, partnerExternalId: p.externalId },
      // Both given, even though the id is malformed: the input is wrong before any lookup.
      { partnerId: 'garbage', partnerExternalId: p.externalId },
    ];
    for (const c of mutationCases()) {
      for (const key of keys) {
        const answer = await c.send(key);
        expect({ mutation: c.name, key, ...answer }).toEqual({
          mutation: c.name,
          key,
          result: null,
          userErrors: [{ code: 'VALIDATION', message: expect.any(String), field: ['input'] }],
        });
        expect(answer.userErrors[0]!.message).toMatch(/partnerId.*partnerExternalId/);
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it('says which case it was: neither, or both', async () => {
    const neither = await mutationCases()[0]!.send({});
    expect(neither.userErrors[0]!.message).toBe(
      'Say which partner: give partnerId (refgraph’s global id) or partnerExternalId (your own id for the partner).',
    );
    const both = await mutationCases()[0]!.send({ partnerId: gid('Partner', 'x'), partnerExternalId: 'x' });
    expect(both.userErrors[0]!.message).toBe(
      'Give only one of partnerId or partnerExternalId, not both: drop one of them.',
    );
  });

  it('a blank or overlong partnerExternalId is VALIDATION at ["input", "partnerExternalId"]', async () => {
    const before = await snapshot();
    for (const c of mutationCases()) {
      for (const partnerExternalId of ['', '   ', 'x'.repeat(256)]) {
        const answer = await c.send({ partnerExternalId });
        expect({ mutation: c.name, ...answer }).toEqual({
          mutation: c.name,
          result: null,
          userErrors: [
            {
              code: 'VALIDATION',
              message: 'A partnerExternalId must be 1 to 255 characters long (after trimming spaces).',
              field: ['input', 'partnerExternalId'],
            },
          ],
        });
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it('reports the partner problem together with the input’s other problems', async () => {
    const res = await server.gql(
      CREDIT,
      { input: { amount: { amount: '0', currency: 'USD' }, idempotencyKey: ' ' } },
      admin,
    );
    expect(res.data!.creditBalance.userErrors.map((e) => e.field)).toEqual([
      ['input', 'idempotencyKey'],
      ['input', 'amount', 'amount'],
      ['input'],
    ]);
  });

  it('an unknown externalId, or one of another workspace or mode only: NOT_FOUND at ["input", "partnerExternalId"]', async () => {
    const inOtherWorkspace = unique('only-b');
    await foreign.partner({ externalId: inOtherWorkspace });
    const inLiveMode = unique('only-live');
    await live.partner({ externalId: inLiveMode });
    const before = await snapshot();
    for (const c of mutationCases()) {
      for (const partnerExternalId of [unique('nobody'), inOtherWorkspace, inLiveMode]) {
        const answer = await c.send({ partnerExternalId });
        expect({ mutation: c.name, ...answer }).toEqual({
          mutation: c.name,
          result: null,
          userErrors: [
            {
              code: 'NOT_FOUND',
              message: `No partner has the externalId "${partnerExternalId}" in this workspace and mode.`,
              field: ['input', 'partnerExternalId'],
            },
          ],
        });
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it('by id, as before: another workspace’s or mode’s partner, or a malformed id, is NOT_FOUND at ["input", "partnerId"]', async () => {
    const p = await twinPartner();
    const before = await snapshot();
    for (const c of mutationCases()) {
      for (const partnerId of [...p.twins.map((t) => gid('Partner', t.id)), 'garbage', gid('Program', programId)]) {
        const answer = await c.send({ partnerId });
        expect({ mutation: c.name, ...answer }).toEqual({
          mutation: c.name,
          result: null,
          userErrors: [{ code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'partnerId'] }],
        });
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it('the LIVE key acts on its own mode’s partner by the same externalId', async () => {
    const p = await twinPartner();
    const res = await server.gql(
      SET_STATUS,
      { input: { partnerExternalId: p.externalId, status: 'BANNED' } },
      ws.keys.live.secret,
    );
    expect(res.data!.setPartnerStatus).toEqual({
      partner: { id: gid('Partner', p.twins[0]!.id), externalId: p.externalId, status: 'BANNED' },
      userErrors: [],
    });
    expect((await prisma().partner.findUniqueOrThrow({ where: { id: p.partner.id } })).status).toBe('ACTIVE');
    expect((await prisma().partner.findUniqueOrThrow({ where: { id: p.twins[1]!.id } })).status).toBe('ACTIVE');
  });
});

describe('PARTNER credentials', () => {
  it('createReferralLink: its own partner by externalId works; another partner by externalId is refused exactly like an unknown one', async () => {
    const mine = await twinPartner();
    const theirs = await twinPartner();
    await f.enrollment({ programId, partnerId: mine.partner.id });
    await f.enrollment({ programId, partnerId: theirs.partner.id });
    const token = await partnerToken(server, admin, mine.partner.id);
    const link = (key: PartnerKeyInput) =>
      server.gql(LINK, { input: { ...key, programId: gid('Program', programId) } }, token);

    const own = await link({ partnerExternalId: mine.externalId });
    expect(own.data!.createReferralLink).toEqual({
      link: expect.objectContaining({ partner: { id: mine.gid } }),
      userErrors: [],
    });

    const before = await snapshot();
    const nobody = unique('nobody');
    for (const [key, field, message] of [
      [
        { partnerExternalId: theirs.externalId },
        'partnerExternalId',
        `No partner has the externalId "${theirs.externalId}" in this workspace and mode.`,
      ],
      [
        { partnerExternalId: nobody },
        'partnerExternalId',
        `No partner has the externalId "${nobody}" in this workspace and mode.`,
      ],
      [{ partnerId: theirs.gid }, 'partnerId', 'Partner not found.'],
      [{ partnerId: gid('Partner', mine.twins[0]!.id) }, 'partnerId', 'Partner not found.'],
    ] as const) {
      const res = await link(key);
      expect(res.data!.createReferralLink).toEqual({
        link: null,
        userErrors: [{ code: 'NOT_FOUND', message, field: ['input', field] }],
      });
    }
    // Neither or both: the same VALIDATION as for an admin.
    const neither = await link({});
    expect(neither.data!.createReferralLink.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input'] }),
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it('enrollPartner: its own partner by externalId applies (PENDING); another partner by externalId is refused exactly like an unknown one', async () => {
    const mine = await twinPartner();
    const theirs = await twinPartner();
    const token = await partnerToken(server, admin, mine.partner.id);
    const apply = (key: PartnerKeyInput) =>
      server.gql(ENROLL, { input: { ...key, programId: gid('Program', autoProgramId) } }, token);
    const before = await snapshot();
    const nobody = unique('nobody');
    for (const [key, field, message] of [
      [
        { partnerExternalId: theirs.externalId },
        'partnerExternalId',
        `No partner has the externalId "${theirs.externalId}" in this workspace and mode.`,
      ],
      [
        { partnerExternalId: nobody },
        'partnerExternalId',
        `No partner has the externalId "${nobody}" in this workspace and mode.`,
      ],
      [{ partnerId: theirs.gid }, 'partnerId', 'Partner not found.'],
      [{ partnerId: gid('Partner', mine.twins[0]!.id) }, 'partnerId', 'Partner not found.'],
    ] as const) {
      expect((await apply(key)).data!.enrollPartner).toEqual({
        enrollment: null,
        userErrors: [{ code: 'NOT_FOUND', message, field: ['input', field] }],
      });
    }
    expect(await snapshot()).toEqual(before);

    // The program auto-approves, but an application waits for the company.
    expect((await apply({ partnerExternalId: mine.externalId })).data!.enrollPartner).toEqual({
      enrollment: expect.objectContaining({ status: 'PENDING', partner: { id: mine.gid } }),
      userErrors: [],
    });
  });

  it('the admin-only mutations refuse a PARTNER token whichever id names the partner, its own included', async () => {
    const mine = await twinPartner();
    const token = await partnerToken(server, admin, mine.partner.id);
    const before = await snapshot();
    // createReferralLink and enrollPartner (an application) take a PARTNER credential's own partner.
    for (const c of mutationCases().filter((m) => m.name !== 'createReferralLink' && m.name !== 'enrollPartner')) {
      for (const key of [{ partnerExternalId: mine.externalId }, { partnerId: mine.gid }]) {
        const res = await server.gql(c.document, { input: c.input(key) }, token);
        expect({ mutation: c.name, code: res.errors?.[0]?.extensions?.code }).toEqual({
          mutation: c.name,
          code: 'FORBIDDEN_FOR_ROLE',
        });
      }
    }
    expect(await snapshot()).toEqual(before);
  });
});
