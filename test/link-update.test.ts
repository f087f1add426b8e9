// updateReferralLink (issue 14, item 4): a link moves to another program of its partner, keeping
// its code; what was recorded before keeps its program; refusals change nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken } from './helpers/money.js';

const fixture = useTwoWorkspaces({ names: ['Links move A', 'Links move B'] });
type Errors = Array<{ code: string; message: string; field: string[] | null }>;

async function mutate<T = Record<string, any>>(
  field: string,
  input: Record<string, unknown>,
  selection: string,
  token?: string,
) {
  const type = `${field[0]!.toUpperCase()}${field.slice(1)}Input`;
  const res = await fixture.gql<Record<string, T & { userErrors: Errors }>>(
    `mutation($input: ${type}!) { ${field}(input: $input) { ${selection} userErrors { code message field } } }`,
    { input },
    token ?? fixture.admin,
  );
  expect(res.errors).toBeUndefined();
  return res.data![field]!;
}

const UPDATE_SELECTION = 'link { id code program { id } destinationUrl }';
let referralProgram = '';
let affiliateProgram = '';
let otherProgram = '';
let partnerId = '';
let linkId = '';
let code = '';

async function program(name: string, token?: string): Promise<string> {
  const p = await mutate('createProgram', { name, type: 'AFFILIATE', currency: 'USD' }, 'program { id }', token);
  return p.program.id;
}
async function eventCount(): Promise<number> {
  return fixture.server.testDb.db.prisma.event.count({ where: { ...fixture.tenant, type: 'link.updated' } });
}

beforeAll(async () => {
  referralProgram = await program('Friends');
  affiliateProgram = await program('Affiliates');
  otherProgram = await program('Not enrolled');
  const p = await mutate(
    'createPartner',
    { externalId: 'ann', programIds: [referralProgram] },
    'partner { id links { id code } }',
  );
  partnerId = p.partner.id;
  linkId = p.partner.links[0].id;
  code = p.partner.links[0].code;
  await mutate('enrollPartner', { partnerId, programId: affiliateProgram }, 'enrollment { id }');
});

describe('updateReferralLink', () => {
  it('moves a link to another program of its partner, keeps its code, and what was recorded keeps its program', async () => {
    const before = await mutate(
      'recordConversion',
      { type: 'SIGNUP', code, referredExternalId: 'friend-1', idempotencyKey: 'move-1' },
      'conversion { id program { id } referral { id program { id } } }',
    );
    expect(before.conversion.program.id).toBe(referralProgram);

    const moved = await mutate('updateReferralLink', { id: linkId, programId: affiliateProgram }, UPDATE_SELECTION);
    expect(moved.userErrors).toEqual([]);
    expect(moved.link).toMatchObject({ id: linkId, code, program: { id: affiliateProgram } });
    const events = await fixture.server.testDb.db.prisma.event.findMany({
      where: { ...fixture.tenant, type: 'link.updated' },
    });
    expect(events.map((e) => e.payload)).toEqual([
      expect.objectContaining({
        linkId,
        code,
        programId: affiliateProgram,
        fromProgramId: referralProgram,
        changedFields: ['programId'],
      }),
    ]);

    const node = await fixture.gql<{ node: { program: { id: string } } }>(
      `query($id: ID!) { node(id: $id) { ... on Conversion { program { id } } } }`,
      { id: before.conversion.id },
      fixture.admin,
    );
    expect(node.data!.node.program.id).toBe(referralProgram);
    const after = await mutate(
      'recordConversion',
      { type: 'SIGNUP', code, referredExternalId: 'friend-2', idempotencyKey: 'move-2' },
      'conversion { program { id } }',
    );
    expect(after.conversion.program.id).toBe(affiliateProgram);

    // The same again changes nothing and appends nothing.
    const again = await mutate('updateReferralLink', { id: linkId, programId: affiliateProgram }, UPDATE_SELECTION);
    expect(again.userErrors).toEqual([]);
    expect(await eventCount()).toBe(1);
  });

  it('changes the destination, and null gives the program’s back', async () => {
    const set = await mutate(
      'updateReferralLink',
      { id: linkId, destinationUrl: 'https://shop.example.com/ann' },
      UPDATE_SELECTION,
    );
    expect(set.link.destinationUrl).toBe('https://shop.example.com/ann');
    const cleared = await mutate('updateReferralLink', { id: linkId, destinationUrl: null }, UPDATE_SELECTION);
    expect(cleared.link.destinationUrl).not.toBe('https://shop.example.com/ann');
  });

  it('refuses what it cannot do, with a clear error, and changes nothing', async () => {
    const events = await eventCount();
    const cases: Array<[Record<string, unknown>, string, string[]]> = [
      [{ id: linkId, programId: otherProgram }, 'NOT_FOUND', ['input', 'programId']],
      [{ id: linkId, destinationUrl: 'javascript:alert(1)' }, 'VALIDATION', ['input', 'destinationUrl']],
      [{ id: 'bm9wZQ==', programId: affiliateProgram }, 'NOT_FOUND', ['input', 'id']],
    ];
    for (const [input, code, field] of cases) {
      const res = await mutate('updateReferralLink', input, UPDATE_SELECTION);
      expect(res.link).toBeNull();
      expect(res.userErrors).toEqual([expect.objectContaining({ code, field })]);
    }
    const theirs = await program('Theirs', fixture.otherAdmin);
    const foreign = await mutate('updateReferralLink', { id: linkId, programId: theirs }, UPDATE_SELECTION);
    expect(foreign.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'programId'] });
    for (const token of [fixture.otherAdmin, fixture.liveAdmin]) {
      const res = await mutate(
        'updateReferralLink',
        { id: linkId, programId: affiliateProgram },
        UPDATE_SELECTION,
        token,
      );
      expect(res.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'id'] });
    }
    const partner = await fixture.gql(
      `mutation($input: UpdateReferralLinkInput!) { updateReferralLink(input: $input) { userErrors { code } } }`,
      { input: { id: linkId, destinationUrl: 'https://elsewhere.example.com' } },
      await partnerToken(
        fixture.server,
        fixture.admin,
        (
          await fixture.server.testDb.db.prisma.partner.findFirstOrThrow({
            where: { ...fixture.tenant, externalId: 'ann' },
          })
        ).id,
      ),
    );
    expect(partner.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect(await eventCount()).toBe(events);
  });
});
