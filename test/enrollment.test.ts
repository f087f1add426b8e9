import { encodeGlobalID } from '@pothos/plugin-relay';
import { describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const fixture = useTwoWorkspaces({ names: ['Enrollments A', 'Enrollments B'] });

const ENROLL = graphql(`
  mutation ET_Enroll($input: EnrollPartnerInput!) {
    enrollPartner(input: $input) {
      enrollment {
        id
        status
        createdAt
        program { id name }
        partner { id externalId links { id code } }
        links { id code url disabled }
      }
      userErrors { code message field }
    }
  }
`);

const SET_STATUS = graphql(`
  mutation ET_SetStatus($input: SetEnrollmentStatusInput!) {
    setEnrollmentStatus(input: $input) {
      enrollment { id status links { id code } partner { links { id code } } }
      userErrors { code message field }
    }
  }
`);

const PROGRAM_ENROLLMENTS = graphql(`
  query ET_ProgramEnrollments($id: ID!, $first: Int, $after: String, $status: EnrollmentStatus) {
    program(id: $id) {
      enrollments(first: $first, after: $after, status: $status) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { cursor node { status partner { externalId } } }
      }
    }
  }
`);

const NODE = graphql(`
  query ET_Node($id: ID!) {
    node(id: $id) { id ... on Enrollment { status } }
  }
`);

type Tenant = { workspaceId: string; mode: 'TEST' | 'LIVE' };
const prisma = () => fixture.server.testDb.db.prisma;

let seq = 0;
const unique = (prefix = 'p') => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

async function program(
  tenant: Tenant = fixture.tenant,
  data: { autoApprovePartners?: boolean; status?: 'ACTIVE' | 'PAUSED' | 'ARCHIVED'; name?: string } = {},
) {
  const row = await prisma().program.create({
    data: {
      ...tenant,
      name: data.name ?? unique('Program'),
      type: 'AFFILIATE',
      currency: 'EUR',
      autoApprovePartners: data.autoApprovePartners ?? true,
      status: data.status ?? 'ACTIVE',
    },
  });
  return { id: encodeGlobalID('Program', row.id), rowId: row.id, name: row.name };
}

async function partner(
  tenant: Tenant = fixture.tenant,
  data: { status?: 'ACTIVE' | 'INACTIVE' | 'BANNED'; externalId?: string } = {},
) {
  const row = await prisma().partner.create({
    data: { ...tenant, externalId: data.externalId ?? unique(), status: data.status ?? 'ACTIVE' },
  });
  return { id: encodeGlobalID('Partner', row.id), rowId: row.id, externalId: row.externalId };
}

async function enroll(partnerId: string, programId: string, token = fixture.admin) {
  const res = await fixture.gql(ENROLL, { input: { partnerId, programId } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.enrollPartner;
}

async function setStatus(enrollmentId: string, status: 'PENDING' | 'APPROVED' | 'REJECTED', token = fixture.admin) {
  const res = await fixture.gql(SET_STATUS, { input: { enrollmentId, status } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.setEnrollmentStatus;
}

/** A PENDING enrollment (program without auto-approval), with its partner and program. */
async function pending() {
  const prog = await program(fixture.tenant, { autoApprovePartners: false });
  const p = await partner();
  const payload = await enroll(p.id, prog.id);
  expect(payload.enrollment?.status).toBe('PENDING');
  return { enrollment: payload.enrollment!, partner: p, program: prog };
}

const counts = async () => ({
  enrollments: await prisma().enrollment.count(),
  links: await prisma().referralLink.count(),
});

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

describe('enrollPartner', () => {
  it('approves at once in an auto-approving program and gives a default link, visible on the enrollment and the partner', async () => {
    const prog = await program();
    const p = await partner();
    const payload = await enroll(p.id, prog.id);
    expect(payload.userErrors).toEqual([]);
    const e = payload.enrollment!;
    expect(e).toMatchObject({
      status: 'APPROVED',
      program: { id: prog.id, name: prog.name },
      partner: { id: p.id, externalId: p.externalId },
    });
    expect(e.links).toHaveLength(1);
    expect(e.links[0]!.code).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);
    expect(e.links[0]!.disabled).toBe(false);
    expect(e.partner.links).toEqual([{ id: e.links[0]!.id, code: e.links[0]!.code }]);
    const row = await prisma().referralLink.findFirstOrThrow({ where: { partnerId: p.rowId } });
    expect(row.isDefault).toBe(true);
    expect(row.codeNormalized).toBe(row.code.toLowerCase());
  });

  it('leaves the enrollment PENDING and without links when the program does not auto-approve', async () => {
    const { enrollment } = await pending();
    expect(enrollment.links).toEqual([]);
    expect(enrollment.partner.links).toEqual([]);
  });

  it('enrolls an INACTIVE partner, and in a PAUSED program', async () => {
    const payload = await enroll(
      (await partner(fixture.tenant, { status: 'INACTIVE' })).id,
      (await program(fixture.tenant, { status: 'PAUSED' })).id,
    );
    expect(payload.userErrors).toEqual([]);
    expect(payload.enrollment?.status).toBe('APPROVED');
  });

  it('refuses a second enrollment in the same program with DUPLICATE', async () => {
    const prog = await program();
    const p = await partner();
    await enroll(p.id, prog.id);
    const before = await counts();
    const payload = await enroll(p.id, prog.id);
    expect(payload).toEqual({
      enrollment: null,
      userErrors: [
        {
          code: 'DUPLICATE',
          message: `Partner "${p.externalId}" is already enrolled in program "${prog.name}".`,
          field: ['input', 'programId'],
        },
      ],
    });
    expect(await counts()).toEqual(before);
  });

  it('gives one enrollment and DUPLICATE for the others when enrollments race', async () => {
    const prog = await program();
    const p = await partner();
    const results = await Promise.all([enroll(p.id, prog.id), enroll(p.id, prog.id), enroll(p.id, prog.id)]);
    expect(results.filter((r) => r.enrollment).length).toBe(1);
    for (const r of results.filter((r) => !r.enrollment)) expect(r.userErrors[0]?.code).toBe('DUPLICATE');
    expect(await prisma().enrollment.count({ where: { partnerId: p.rowId } })).toBe(1);
    expect(await prisma().referralLink.count({ where: { partnerId: p.rowId } })).toBe(1);
  });

  it('refuses an ARCHIVED program with INVALID_TRANSITION', async () => {
    const prog = await program(fixture.tenant, { status: 'ARCHIVED' });
    const before = await counts();
    const payload = await enroll((await partner()).id, prog.id);
    expect(payload).toEqual({
      enrollment: null,
      userErrors: [
        {
          code: 'INVALID_TRANSITION',
          message: `Program "${prog.name}" is ARCHIVED and accepts no new partners.`,
          field: ['input', 'programId'],
        },
      ],
    });
    expect(await counts()).toEqual(before);
  });

  it('refuses a BANNED partner with INVALID_TRANSITION', async () => {
    const p = await partner(fixture.tenant, { status: 'BANNED' });
    const before = await counts();
    const payload = await enroll(p.id, (await program()).id);
    expect(payload.enrollment).toBeNull();
    expect(payload.userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        message: expect.stringContaining(`"${p.externalId}" is BANNED`),
        field: ['input', 'partnerId'],
      },
    ]);
    expect(await counts()).toEqual(before);
  });

  it('answers NOT_FOUND for partners and programs outside the caller’s workspace and mode, and creates nothing', async () => {
    const prog = await program();
    const p = await partner();
    const foreignPartner = await partner(fixture.otherTenant);
    const livePartner = await partner({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
    const foreignProgram = await program(fixture.otherTenant);
    const liveProgram = await program({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });
    const before = await counts();
    for (const partnerId of [
      foreignPartner.id,
      livePartner.id,
      'garbage',
      prog.id,
      encodeGlobalID('Partner', 'nope'),
    ]) {
      expect(await enroll(partnerId, prog.id), partnerId).toEqual({
        enrollment: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'partnerId'] }],
      });
    }
    for (const programId of [foreignProgram.id, liveProgram.id, 'garbage', p.id, encodeGlobalID('Program', 'nope')]) {
      expect(await enroll(p.id, programId), programId).toEqual({
        enrollment: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'programId'] }],
      });
    }
    // The other workspace's admin cannot reach this workspace's rows either.
    expect((await enroll(p.id, prog.id, fixture.otherAdmin)).userErrors[0]?.code).toBe('NOT_FOUND');
    expect((await enroll(livePartner.id, liveProgram.id, fixture.admin)).userErrors[0]?.code).toBe('NOT_FOUND');
    expect(await counts()).toEqual(before);
  });
});

describe('setEnrollmentStatus', () => {
  it('approves a PENDING enrollment and gives it a default link, visible on the enrollment and the partner', async () => {
    const { enrollment } = await pending();
    const payload = await setStatus(enrollment.id, 'APPROVED');
    expect(payload.userErrors).toEqual([]);
    expect(payload.enrollment?.status).toBe('APPROVED');
    expect(payload.enrollment?.links).toHaveLength(1);
    expect(payload.enrollment?.partner.links).toEqual(payload.enrollment?.links);
  });

  it('rejects a PENDING enrollment without creating a link', async () => {
    const { enrollment } = await pending();
    const payload = await setStatus(enrollment.id, 'REJECTED');
    expect(payload).toEqual({
      enrollment: { id: enrollment.id, status: 'REJECTED', links: [], partner: { links: [] } },
      userErrors: [],
    });
  });

  it('rejects an APPROVED enrollment and keeps its link; approving again keeps the same code', async () => {
    const { enrollment } = await pending();
    const approved = await setStatus(enrollment.id, 'APPROVED');
    const links = approved.enrollment!.links;
    const rejected = await setStatus(enrollment.id, 'REJECTED');
    expect(rejected.enrollment).toMatchObject({ status: 'REJECTED', links });
    const again = await setStatus(enrollment.id, 'APPROVED');
    expect(again.enrollment).toMatchObject({ status: 'APPROVED', links });
  });

  it('creates the default link when a once REJECTED enrollment without links is approved', async () => {
    const { enrollment } = await pending();
    await setStatus(enrollment.id, 'REJECTED');
    const payload = await setStatus(enrollment.id, 'APPROVED');
    expect(payload.enrollment?.links).toHaveLength(1);
  });

  it('refuses every other transition with INVALID_TRANSITION naming the enrollment, its status and the one asked', async () => {
    const cases: Array<[Array<'APPROVED' | 'REJECTED'>, 'PENDING' | 'APPROVED' | 'REJECTED', string]> = [
      [[], 'PENDING', 'is already PENDING'],
      [['APPROVED'], 'PENDING', 'is APPROVED and cannot become PENDING'],
      [['APPROVED'], 'APPROVED', 'is already APPROVED'],
      [['REJECTED'], 'PENDING', 'is REJECTED and cannot become PENDING'],
      [['REJECTED'], 'REJECTED', 'is already REJECTED'],
    ];
    for (const [path, asked, says] of cases) {
      const { enrollment, partner: p, program: prog } = await pending();
      for (const step of path) await setStatus(enrollment.id, step);
      const before = await prisma().enrollment.findFirstOrThrow({ where: { partnerId: p.rowId } });
      const linksBefore = await prisma().referralLink.count({ where: { partnerId: p.rowId } });
      const payload = await setStatus(enrollment.id, asked);
      expect(payload).toEqual({
        enrollment: null,
        userErrors: [
          {
            code: 'INVALID_TRANSITION',
            message: `The enrollment of partner "${p.externalId}" in program "${prog.name}" ${says}.`,
            field: ['input', 'status'],
          },
        ],
      });
      const after = await prisma().enrollment.findUniqueOrThrow({ where: { id: before.id } });
      expect(after).toEqual(before);
      expect(await prisma().referralLink.count({ where: { partnerId: p.rowId } })).toBe(linksBefore);
    }
  });

  it('refuses to approve a BANNED partner’s enrollment or one in an ARCHIVED program', async () => {
    const banned = await pending();
    await prisma().partner.update({ where: { id: banned.partner.rowId }, data: { status: 'BANNED' } });
    expect((await setStatus(banned.enrollment.id, 'APPROVED')).userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        message: expect.stringContaining('cannot become APPROVED: the partner is BANNED'),
        field: ['input', 'status'],
      },
    ]);
    // Rejecting stays possible.
    expect((await setStatus(banned.enrollment.id, 'REJECTED')).enrollment?.status).toBe('REJECTED');
    const archived = await pending();
    await prisma().program.update({ where: { id: archived.program.rowId }, data: { status: 'ARCHIVED' } });
    expect((await setStatus(archived.enrollment.id, 'APPROVED')).userErrors).toEqual([
      {
        code: 'INVALID_TRANSITION',
        message: expect.stringContaining('cannot become APPROVED: the program is ARCHIVED'),
        field: ['input', 'status'],
      },
    ]);
    expect(
      await prisma().referralLink.count({
        where: { partnerId: { in: [banned.partner.rowId, archived.partner.rowId] } },
      }),
    ).toBe(0);
  });

  it('applies one of two concurrent approvals and creates one link', async () => {
    const { enrollment, partner: p } = await pending();
    const results = await Promise.all([setStatus(enrollment.id, 'APPROVED'), setStatus(enrollment.id, 'APPROVED')]);
    expect(results.filter((r) => r.enrollment).length).toBe(1);
    expect(results.find((r) => !r.enrollment)?.userErrors[0]?.code).toBe('INVALID_TRANSITION');
    expect(await prisma().referralLink.count({ where: { partnerId: p.rowId } })).toBe(1);
  });

  it('answers NOT_FOUND for enrollments outside the caller’s workspace and mode, and changes nothing', async () => {
    const { enrollment } = await pending();
    const foreign = await prisma().enrollment.create({
      data: {
        workspaceId: fixture.other.workspace.id,
        mode: 'TEST',
        status: 'PENDING',
        programId: (await program(fixture.otherTenant, { autoApprovePartners: false })).rowId,
        partnerId: (await partner(fixture.otherTenant)).rowId,
      },
    });
    const liveOne = await prisma().enrollment.create({
      data: {
        workspaceId: fixture.ws.workspace.id,
        mode: 'LIVE',
        status: 'PENDING',
        programId: (
          await program({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' }, { autoApprovePartners: false })
        ).rowId,
        partnerId: (await partner({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' })).rowId,
      },
    });
    for (const enrollmentId of [
      encodeGlobalID('Enrollment', foreign.id),
      encodeGlobalID('Enrollment', liveOne.id),
      'garbage',
      encodeGlobalID('Partner', foreign.partnerId),
    ]) {
      expect(await setStatus(enrollmentId, 'APPROVED'), enrollmentId).toEqual({
        enrollment: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Enrollment not found.', field: ['input', 'enrollmentId'] }],
      });
    }
    expect((await setStatus(enrollment.id, 'APPROVED', fixture.otherAdmin)).userErrors[0]?.code).toBe('NOT_FOUND');
    expect((await setStatus(enrollment.id, 'APPROVED', fixture.liveAdmin)).userErrors[0]?.code).toBe('NOT_FOUND');
    expect(
      (await prisma().enrollment.findMany({ where: { id: { in: [foreign.id, liveOne.id] } } })).map((e) => e.status),
    ).toEqual(['PENDING', 'PENDING']);
    expect((await fixture.gql(NODE, { id: enrollment.id }, fixture.admin)).data).toEqual({
      node: { id: enrollment.id, status: 'PENDING' },
    });
  });
});

describe('Program.enrollments', () => {
  it('pages through a program’s enrollments oldest first, with totalCount and a status filter', async () => {
    const prog = await program(fixture.tenant, { autoApprovePartners: false });
    const names: string[] = [];
    const enrollmentIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const p = await partner(fixture.tenant, { externalId: unique(`member${i}`) });
      names.push(p.externalId);
      enrollmentIds.push((await enroll(p.id, prog.id)).enrollment!.id);
    }
    await setStatus(enrollmentIds[1]!, 'APPROVED');
    await setStatus(enrollmentIds[3]!, 'REJECTED');
    // Another program's enrollment must not show up.
    await enroll((await partner()).id, (await program()).id);

    const first = await fixture.gql(PROGRAM_ENROLLMENTS, { id: prog.id, first: 3 }, fixture.admin);
    expect(first.errors).toBeUndefined();
    const page1 = first.data!.program!.enrollments;
    expect(page1.totalCount).toBe(5);
    expect(page1.edges.map((e) => e.node.partner.externalId)).toEqual(names.slice(0, 3));
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const second = await fixture.gql(
      PROGRAM_ENROLLMENTS,
      { id: prog.id, first: 3, after: page1.pageInfo.endCursor },
      fixture.admin,
    );
    expect(second.data!.program!.enrollments.edges.map((e) => e.node.partner.externalId)).toEqual(names.slice(3));
    expect(second.data!.program!.enrollments.pageInfo.hasNextPage).toBe(false);

    const pendingOnly = await fixture.gql(PROGRAM_ENROLLMENTS, { id: prog.id, status: 'PENDING' }, fixture.admin);
    expect(pendingOnly.data!.program!.enrollments.totalCount).toBe(3);
    expect(pendingOnly.data!.program!.enrollments.edges.map((e) => e.node.partner.externalId)).toEqual([
      names[0],
      names[2],
      names[4],
    ]);
    const approved = await fixture.gql(PROGRAM_ENROLLMENTS, { id: prog.id, status: 'APPROVED' }, fixture.admin);
    expect(approved.data!.program!.enrollments.edges.map((e) => [e.node.partner.externalId, e.node.status])).toEqual([
      [names[1], 'APPROVED'],
    ]);
    expect(approved.data!.program!.enrollments.totalCount).toBe(1);

    const reader = await readOnlyKey();
    expect(
      (await fixture.gql(PROGRAM_ENROLLMENTS, { id: prog.id }, reader)).data!.program!.enrollments.totalCount,
    ).toBe(5);
  });

  it('is refused to a PARTNER credential', async () => {
    const prog = await program();
    const p = await partner();
    await enroll(p.id, prog.id);
    const token = await partnerToken(p.id);
    const res = await fixture.gql(
      'query($id: ID!) { partner(id: $id) { enrollments { program { id enrollments { totalCount } } } } }',
      { id: p.id },
      token,
    );
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
  });
});

describe('roles and visibility', () => {
  it('refuses enrollPartner and setEnrollmentStatus to a READ_ONLY key with FORBIDDEN_FOR_ROLE', async () => {
    const reader = await readOnlyKey();
    const { enrollment, partner: p } = await pending();
    const prog = await program();
    const before = await counts();
    for (const res of [
      await fixture.gql(ENROLL, { input: { partnerId: p.id, programId: prog.id } }, reader),
      await fixture.gql(SET_STATUS, { input: { enrollmentId: enrollment.id, status: 'APPROVED' } }, reader),
    ]) {
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    expect(await counts()).toEqual(before);
    expect((await fixture.gql(NODE, { id: enrollment.id }, reader)).data).toEqual({
      node: { id: enrollment.id, status: 'PENDING' },
    });
  });

  it('shows a PARTNER credential its own enrollments only, and refuses it setEnrollmentStatus (it may apply: test/applications.test.ts)', async () => {
    const prog = await program();
    const me = await partner();
    const them = await partner();
    const mine = (await enroll(me.id, prog.id)).enrollment!;
    const theirs = (await enroll(them.id, prog.id)).enrollment!;
    const token = await partnerToken(me.id);
    expect((await fixture.gql(NODE, { id: mine.id }, token)).data).toEqual({
      node: { id: mine.id, status: 'APPROVED' },
    });
    expect((await fixture.gql(NODE, { id: theirs.id }, token)).data).toEqual({ node: null });
    const own = await fixture.gql(
      'query($id: ID!) { partner(id: $id) { enrollments { id program { id } links { code } } } }',
      { id: me.id },
      token,
    );
    expect(own.data).toEqual({
      partner: {
        enrollments: [{ id: mine.id, program: { id: prog.id }, links: mine.links.map((l) => ({ code: l.code })) }],
      },
    });
    expect(
      (await fixture.gql(SET_STATUS, { input: { enrollmentId: mine.id, status: 'REJECTED' } }, token)).errors?.[0]
        ?.extensions?.code,
    ).toBe('FORBIDDEN_FOR_ROLE');
  });

  it('answers null for another workspace’s or mode’s enrollment node', async () => {
    const { enrollment } = await pending();
    for (const token of [fixture.otherAdmin, fixture.liveAdmin])
      expect((await fixture.gql(NODE, { id: enrollment.id }, token)).data).toEqual({ node: null });
  });
});
