import { describe, expect, it } from 'vitest';
import type { Ap_EnrollmentsQuery } from './gql/graphql.js';
import { graphql } from './gql/index.js';
import { factories, gid, type Tenant, uuidv7 } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken } from './helpers/money.js';
import type { GraphQLResponse } from './helpers/server.js';

// Applications (issue 14): a program's questions, the answers an enrollment carries, a PARTNER
// credential applying for its own partner, the reviewer's reason, and the workspace-wide
// `enrollments` list ("pending approval"). Every credential's key is looked up per request
// (AUTH_CACHE_TTL_MS=0) so that statement counts do not depend on the cache.

const fixture = useTwoWorkspaces({ env: { AUTH_CACHE_TTL_MS: '0' }, names: ['Applications A', 'Applications B'] });

const CREATE_PROGRAM = graphql(`
  mutation AP_CreateProgram($input: CreateProgramInput!) {
    createProgram(input: $input) {
      program { id applicationQuestions { key label required } }
      userErrors { code message field }
    }
  }
`);

const UPDATE_PROGRAM = graphql(`
  mutation AP_UpdateProgram($input: UpdateProgramInput!) {
    updateProgram(input: $input) {
      program { id applicationQuestions { key label required } }
      userErrors { code message field }
    }
  }
`);

const ENROLL = graphql(`
  mutation AP_Enroll($input: EnrollPartnerInput!) {
    enrollPartner(input: $input) {
      enrollment { id status answers appliedAt reviewedAt rejectionReason createdAt links { id } partner { id } }
      userErrors { code message field }
    }
  }
`);

const SET_STATUS = graphql(`
  mutation AP_SetStatus($input: SetEnrollmentStatusInput!) {
    setEnrollmentStatus(input: $input) {
      enrollment { id status reviewedAt rejectionReason appliedAt }
      userErrors { code message field }
    }
  }
`);

const ENROLLMENTS = graphql(`
  query AP_Enrollments($first: Int, $after: String, $status: EnrollmentStatus, $programId: ID) {
    enrollments(first: $first, after: $after, status: $status, programId: $programId) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id status partner { externalId } program { id } } }
    }
  }
`);

const ENROLLMENTS_TOTAL = graphql(`
  query AP_EnrollmentsTotal($status: EnrollmentStatus, $programId: ID) {
    enrollments(status: $status, programId: $programId) { totalCount }
  }
`);

const NODE = graphql(`
  query AP_Node($id: ID!) {
    node(id: $id) { id ... on Enrollment { status answers appliedAt rejectionReason } }
  }
`);

const prisma = () => fixture.server.testDb.db.prisma;
let seq = 0;
const unique = (prefix = 'p') => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;
const f = (tenant: Tenant = fixture.tenant) => factories(prisma(), tenant);
const live = (): Tenant => ({ workspaceId: fixture.ws.workspace.id, mode: 'LIVE' });

const QUESTIONS = [
  { key: 'website', label: 'Your website', required: true },
  { key: 'audience', label: 'Who follows you?', required: false },
];

/** A program (ACTIVE, not auto-approving unless told) asking `questions`; global id and row. */
async function program(
  data: {
    questions?: unknown;
    autoApprovePartners?: boolean;
    status?: 'DRAFT' | 'ACTIVE' | 'PAUSED' | 'ARCHIVED';
  } = {},
  tenant: Tenant = fixture.tenant,
) {
  const row = await f(tenant).program({
    autoApprovePartners: data.autoApprovePartners ?? false,
    status: data.status ?? 'ACTIVE',
    applicationQuestions: (data.questions ?? QUESTIONS) as never,
  });
  return { id: gid('Program', row.id), row };
}

async function partner(tenant: Tenant = fixture.tenant) {
  const row = await f(tenant).partner();
  return { id: gid('Partner', row.id), row };
}

async function enroll(input: Record<string, unknown>, token = fixture.admin) {
  const res = await fixture.gql(ENROLL, { input: input as never }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.enrollPartner;
}

async function setStatus(
  input: { enrollmentId: string; status: 'APPROVED' | 'REJECTED' | 'PENDING'; reason?: string | null },
  token = fixture.admin,
) {
  const res = await fixture.gql(SET_STATUS, { input }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.setEnrollmentStatus;
}

/** Everything these mutations could write, in every workspace and mode. */
async function snapshot() {
  return {
    events: await prisma().event.count(),
    enrollments: await prisma().enrollment.findMany({ orderBy: { id: 'asc' } }),
    links: await prisma().referralLink.count(),
    programs: await prisma().program.findMany({ orderBy: { id: 'asc' } }),
  };
}

async function readOnlyKey(): Promise<string> {
  const res = await fixture.gql<{ createApiKey: { secret: string } }>(
    'mutation AP_Reader { createApiKey(input: { name: "reader", role: READ_ONLY }) { secret } }',
    {},
    fixture.admin,
  );
  return res.data!.createApiKey.secret;
}

/** The events appended since `since` (an event count) in the test tenant, oldest first. */
async function eventsAfter(sequenceAbove: bigint) {
  return prisma().event.findMany({
    where: { ...fixture.tenant, sequence: { gt: sequenceAbove } },
    orderBy: { sequence: 'asc' },
  });
}
async function lastSequence(): Promise<bigint> {
  const last = await prisma().event.findFirst({ where: fixture.tenant, orderBy: { sequence: 'desc' } });
  return last?.sequence ?? 0n;
}

describe('Program.applicationQuestions', () => {
  it('createProgram stores them in order with labels trimmed and `required` false unless given; updateProgram replaces them, null removes them', async () => {
    const res = await fixture.gql(
      CREATE_PROGRAM,
      {
        input: {
          name: unique('Questions'),
          type: 'AFFILIATE',
          currency: 'EUR',
          applicationQuestions: [
            { key: 'website', label: '  Your website  ', required: true },
            { key: 'audience_size_2', label: 'How many followers?' },
          ],
        },
      },
      fixture.admin,
    );
    expect(res.data!.createProgram).toEqual({
      program: {
        id: expect.any(String),
        applicationQuestions: [
          { key: 'website', label: 'Your website', required: true },
          { key: 'audience_size_2', label: 'How many followers?', required: false },
        ],
      },
      userErrors: [],
    });
    const id = res.data!.createProgram.program!.id;

    const replaced = await fixture.gql(
      UPDATE_PROGRAM,
      { input: { id, applicationQuestions: [{ key: 'why', label: 'Why us?', required: true }] } },
      fixture.admin,
    );
    expect(replaced.data!.updateProgram).toEqual({
      program: { id, applicationQuestions: [{ key: 'why', label: 'Why us?', required: true }] },
      userErrors: [],
    });
    const updated = await prisma().event.findFirstOrThrow({
      where: { ...fixture.tenant, type: 'program.updated' },
      orderBy: { sequence: 'desc' },
    });
    expect(updated.payload).toMatchObject({ programId: id, changedFields: ['applicationQuestions'] });

    // The same questions again change nothing and append nothing.
    const before = await snapshot();
    const same = await fixture.gql(
      UPDATE_PROGRAM,
      { input: { id, applicationQuestions: [{ key: 'why', label: ' Why us? ', required: true }] } },
      fixture.admin,
    );
    expect(same.data!.updateProgram.userErrors).toEqual([]);
    expect(await snapshot()).toEqual(before);

    const removed = await fixture.gql(UPDATE_PROGRAM, { input: { id, applicationQuestions: null } }, fixture.admin);
    expect(removed.data!.updateProgram.program!.applicationQuestions).toEqual([]);
  });

  it('refuses bad questions, every problem at its own path, and creates nothing', async () => {
    const before = await snapshot();
    const res = await fixture.gql(
      CREATE_PROGRAM,
      {
        input: {
          name: unique('Bad questions'),
          type: 'AFFILIATE',
          currency: 'EUR',
          applicationQuestions: [
            { key: 'Website', label: 'Capital letter' },
            { key: '1st', label: 'Starts with a digit' },
            { key: `a${'b'.repeat(64)}`, label: 'Sixty-five characters' },
            { key: 'ok', label: '   ' },
            { key: 'ok', label: 'Twice' },
            { key: 'long_label', label: 'x'.repeat(201) },
            { key: '', label: 'Empty key' },
          ],
        },
      },
      fixture.admin,
    );
    expect(res.data!.createProgram.program).toBeNull();
    expect(res.data!.createProgram.userErrors.map((e) => [e.code, e.field])).toEqual([
      ['VALIDATION', ['input', 'applicationQuestions', '0', 'key']],
      ['VALIDATION', ['input', 'applicationQuestions', '1', 'key']],
      ['VALIDATION', ['input', 'applicationQuestions', '2', 'key']],
      ['VALIDATION', ['input', 'applicationQuestions', '3', 'label']],
      ['VALIDATION', ['input', 'applicationQuestions', '4', 'key']],
      ['VALIDATION', ['input', 'applicationQuestions', '5', 'label']],
      ['VALIDATION', ['input', 'applicationQuestions', '6', 'key']],
    ]);
    expect(res.data!.createProgram.userErrors[4]!.message).toBe(
      'The question key "ok" is used twice: each question needs its own key.',
    );
    expect(res.data!.createProgram.userErrors[0]!.message).toContain('a lower-case letter');
    expect(await snapshot()).toEqual(before);
    // 64 characters is the longest key, 200 the longest label.
    const longest = await fixture.gql(
      CREATE_PROGRAM,
      {
        input: {
          name: unique('Longest key'),
          type: 'AFFILIATE',
          currency: 'EUR',
          applicationQuestions: [{ key: `a${'b'.repeat(63)}`, label: 'x'.repeat(200) }],
        },
      },
      fixture.admin,
    );
    expect(longest.data!.createProgram.userErrors).toEqual([]);
  });

  it('refuses more than 20 questions at ["input","applicationQuestions"], in updateProgram too, and changes nothing', async () => {
    const { id } = await program();
    const tooMany = Array.from({ length: 21 }, (_, i) => ({ key: `q${i}`, label: `Question ${i}` }));
    const before = await snapshot();
    const res = await fixture.gql(UPDATE_PROGRAM, { input: { id, applicationQuestions: tooMany } }, fixture.admin);
    expect(res.data!.updateProgram).toEqual({
      program: null,
      userErrors: [
        {
          code: 'VALIDATION',
          message: 'A program asks at most 20 application questions; got 21.',
          field: ['input', 'applicationQuestions'],
        },
      ],
    });
    expect(await snapshot()).toEqual(before);
    const twenty = await fixture.gql(
      UPDATE_PROGRAM,
      { input: { id, applicationQuestions: tooMany.slice(0, 20) } },
      fixture.admin,
    );
    expect(twenty.data!.updateProgram.program!.applicationQuestions).toHaveLength(20);
  });

  it('an ARCHIVED program refuses new questions', async () => {
    const { id } = await program({ status: 'ARCHIVED' });
    const before = await snapshot();
    const res = await fixture.gql(
      UPDATE_PROGRAM,
      { input: { id, applicationQuestions: [{ key: 'late', label: 'Too late' }] } },
      fixture.admin,
    );
    expect(res.data!.updateProgram.userErrors.map((e) => e.code)).toEqual(['INVALID_TRANSITION']);
    expect(await snapshot()).toEqual(before);
  });
});

describe('enrollPartner with answers', () => {
  it('stores the answers trimmed without blank optional ones, sets appliedAt, and appends enrollment.applied', async () => {
    const prog = await program();
    const p = await partner();
    const since = await lastSequence();
    const payload = await enroll({
      partnerId: p.id,
      programId: prog.id,
      answers: { website: '  https://example.com ', audience: '   ' },
    });
    expect(payload.userErrors).toEqual([]);
    const e = payload.enrollment!;
    expect(e).toMatchObject({
      status: 'PENDING',
      answers: { website: 'https://example.com' },
      reviewedAt: null,
      rejectionReason: null,
      links: [],
    });
    expect(e.appliedAt).toBe(e.createdAt);
    const events = await eventsAfter(since);
    expect(events.map((ev) => [ev.type, ev.partnerId, ev.programId])).toEqual([
      ['enrollment.applied', p.row.id, prog.row.id],
    ]);
    expect(events[0]!.payload).toEqual({
      enrollmentId: e.id,
      programId: prog.id,
      partnerId: p.id,
      from: null,
      to: 'PENDING',
    });
  });

  it('an ADMIN enrolling in an auto-approving program keeps today’s behaviour: APPROVED, a link, no appliedAt; the answers are kept', async () => {
    const prog = await program({ autoApprovePartners: true });
    const payload = await enroll({
      partnerId: (await partner()).id,
      programId: prog.id,
      answers: { website: 'w.example' },
    });
    expect(payload.enrollment).toMatchObject({
      status: 'APPROVED',
      appliedAt: null,
      answers: { website: 'w.example' },
    });
    expect(payload.enrollment!.links).toHaveLength(1);
  });

  it('a program without questions takes no answers, an empty object, or null; any key is refused', async () => {
    const prog = await program({ questions: [] });
    for (const answers of [undefined, null, {}]) {
      const payload = await enroll({ partnerId: (await partner()).id, programId: prog.id, answers });
      expect(payload.userErrors, JSON.stringify(answers)).toEqual([]);
      expect(payload.enrollment!.answers).toEqual(answers === undefined || answers === null ? null : {});
    }
    const payload = await enroll({ partnerId: (await partner()).id, programId: prog.id, answers: { website: 'x' } });
    expect(payload.userErrors).toEqual([
      {
        code: 'VALIDATION',
        message: 'This program asks no application questions: send no answers.',
        field: ['input', 'answers', 'website'],
      },
    ]);
  });

  it.each([
    ['no answers at all', undefined, [['website', '"Your website" is required: give a non-blank answer.']]],
    [
      'a blank required answer',
      { website: '  ' },
      [['website', '"Your website" is required: give a non-blank answer.']],
    ],
    [
      'a null required answer',
      { website: null },
      [['website', '"Your website" is required: give a non-blank answer.']],
    ],
    [
      'an unknown key',
      { website: 'x', websit: 'typo' },
      [['websit', 'This program has no question "websit"; its questions are: website, audience.']],
    ],
    ['a number', { website: 42 }, [['website', 'The answer to "Your website" must be a string; got a number.']]],
    [
      'an object',
      { website: { url: 'x' } },
      [['website', 'The answer to "Your website" must be a string; got an object.']],
    ],
    [
      'an answer over 2000 characters',
      { website: 'x', audience: 'y'.repeat(2001) },
      [['audience', 'The answer to "Who follows you?" must be at most 2000 characters long; got 2001.']],
    ],
    [
      'several problems',
      { nope: 'x', audience: 7 },
      [
        ['nope', 'This program has no question "nope"; its questions are: website, audience.'],
        ['website', '"Your website" is required: give a non-blank answer.'],
        ['audience', 'The answer to "Who follows you?" must be a string; got a number.'],
      ],
    ],
  ] as const)(
    'refuses %s with VALIDATION at ["input","answers","<key>"], writing nothing',
    async (_name, answers, expected) => {
      const prog = await program();
      const p = await partner();
      const before = await snapshot();
      const payload = await enroll({ partnerId: p.id, programId: prog.id, answers });
      expect(payload).toEqual({
        enrollment: null,
        userErrors: expected.map(([key, message]) => ({
          code: 'VALIDATION',
          message,
          field: ['input', 'answers', key],
        })),
      });
      expect(await snapshot()).toEqual(before);
    },
  );

  it.each([
    ['a string', 'https://example.com', 'got a string'],
    ['an array', ['https://example.com'], 'got an array'],
    ['a number', 3, 'got a number'],
  ])('refuses answers that are %s at ["input","answers"]', async (_name, answers, says) => {
    const prog = await program();
    const before = await snapshot();
    const payload = await enroll({ partnerId: (await partner()).id, programId: prog.id, answers });
    expect(payload.enrollment).toBeNull();
    expect(payload.userErrors).toEqual([
      { code: 'VALIDATION', message: expect.stringContaining(says), field: ['input', 'answers'] },
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it('refuses answers over 8 KiB in all, and a flood of unknown keys with one error', async () => {
    const questions = Array.from({ length: 5 }, (_, i) => ({ key: `q${i}`, label: `Q${i}`, required: false }));
    const prog = await program({ questions });
    const before = await snapshot();
    const big = Object.fromEntries(questions.map((q) => [q.key, 'é'.repeat(1000)])); // 2 bytes each: 10 KB
    const tooBig = await enroll({ partnerId: (await partner()).id, programId: prog.id, answers: big });
    expect(tooBig.userErrors).toEqual([
      {
        code: 'VALIDATION',
        message: expect.stringMatching(/^answers may be at most 8192 bytes as JSON; got 10\d\d\d\./),
        field: ['input', 'answers'],
      },
    ]);
    const flood = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, 'x']));
    const flooded = await enroll({ partnerId: (await partner()).id, programId: prog.id, answers: flood });
    expect(flooded.userErrors).toEqual([
      {
        code: 'VALIDATION',
        message:
          'answers has 1000 keys that are not questions of this program; answer only its questions (q0, q1, q2, q3, q4).',
        field: ['input', 'answers'],
      },
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it('a question keyed like an Object property ("constructor") is answered like any other', async () => {
    const prog = await program({ questions: [{ key: 'constructor', label: 'Builder?', required: true }] });
    const missing = await enroll({ partnerId: (await partner()).id, programId: prog.id, answers: {} });
    expect(missing.userErrors.map((e) => e.field)).toEqual([['input', 'answers', 'constructor']]);
    const given = await enroll({
      partnerId: (await partner()).id,
      programId: prog.id,
      answers: { constructor: 'yes' },
    });
    expect(given.enrollment!.answers).toEqual({ constructor: 'yes' });
  });

  it('checks answers against the program’s questions as they are now; old enrollments keep theirs', async () => {
    const prog = await program();
    const first = await enroll({
      partnerId: (await partner()).id,
      programId: prog.id,
      answers: { website: 'a.example' },
    });
    await prisma().program.update({
      where: { id: prog.row.id },
      data: { applicationQuestions: [{ key: 'why', label: 'Why?', required: true }] },
    });
    const second = await enroll({
      partnerId: (await partner()).id,
      programId: prog.id,
      answers: { website: 'b.example' },
    });
    expect(second.userErrors.map((e) => e.field)).toEqual([
      ['input', 'answers', 'website'],
      ['input', 'answers', 'why'],
    ]);
    const res = await fixture.gql(NODE, { id: first.enrollment!.id }, fixture.admin);
    expect(res.data!.node).toMatchObject({ answers: { website: 'a.example' } });
  });
});

describe('a PARTNER credential applies for its own partner', () => {
  it('its own partner, by either id: PENDING even where the program auto-approves, no link, enrollment.applied in its own stream', async () => {
    const prog = await program({ autoApprovePartners: true });
    const p = await partner();
    const token = await partnerToken(fixture.server, fixture.admin, p.row.id);
    const since = await lastSequence();
    const payload = await enroll({ partnerId: p.id, programId: prog.id, answers: { website: 'mine.example' } }, token);
    expect(payload.userErrors).toEqual([]);
    expect(payload.enrollment).toMatchObject({
      status: 'PENDING',
      answers: { website: 'mine.example' },
      links: [],
      partner: { id: p.id },
    });
    expect(payload.enrollment!.appliedAt).toBe(payload.enrollment!.createdAt);
    expect((await eventsAfter(since)).map((e) => [e.type, e.partnerId])).toEqual([['enrollment.applied', p.row.id]]);
    // The partner reads its application, and the program it applied to, through node.
    expect((await fixture.gql(NODE, { id: payload.enrollment!.id }, token)).data!.node).toMatchObject({
      status: 'PENDING',
      answers: { website: 'mine.example' },
    });
    const stream = await fixture.gql<{ events: { edges: Array<{ node: { type: string } }> } }>(
      'query AP_PartnerEvents { events(first: 100) { edges { node { type } } } }',
      {},
      token,
    );
    expect(stream.data!.events.edges.map((e) => e.node.type)).toContain('enrollment.applied');

    const byExternalId = await enroll(
      { partnerExternalId: p.row.externalId, programId: (await program()).id, answers: { website: 'x' } },
      token,
    );
    expect(byExternalId.enrollment?.status).toBe('PENDING');
  });

  it('another partner answers like an unknown one; a program that is not ACTIVE, or of another tenant, is refused; nothing is written', async () => {
    const prog = await program();
    const me = await partner();
    const them = await partner();
    const token = await partnerToken(fixture.server, fixture.admin, me.row.id);
    const answers = { website: 'x' };
    const before = await snapshot();
    expect(await enroll({ partnerId: them.id, programId: prog.id, answers }, token)).toEqual({
      enrollment: null,
      userErrors: [{ code: 'NOT_FOUND', message: 'Partner not found.', field: ['input', 'partnerId'] }],
    });
    expect(await enroll({ partnerExternalId: them.row.externalId, programId: prog.id, answers }, token)).toEqual({
      enrollment: null,
      userErrors: [
        {
          code: 'NOT_FOUND',
          message: `No partner has the externalId "${them.row.externalId}" in this workspace and mode.`,
          field: ['input', 'partnerExternalId'],
        },
      ],
    });
    for (const status of ['DRAFT', 'PAUSED', 'ARCHIVED'] as const) {
      const closed = await program({ status, autoApprovePartners: true });
      expect(await enroll({ partnerId: me.id, programId: closed.id, answers }, token), status).toEqual({
        enrollment: null,
        userErrors: [
          {
            code: 'INVALID_TRANSITION',
            message: 'This program does not accept applications now: only an ACTIVE program does.',
            field: ['input', 'programId'],
          },
        ],
      });
    }
    for (const foreign of [await program({}, fixture.otherTenant), await program({}, live())]) {
      expect(await enroll({ partnerId: me.id, programId: foreign.id, answers }, token)).toEqual({
        enrollment: null,
        userErrors: [{ code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'programId'] }],
      });
    }
    // Its answers are checked like anyone's.
    expect((await enroll({ partnerId: me.id, programId: prog.id }, token)).userErrors.map((e) => e.field)).toEqual([
      ['input', 'answers', 'website'],
    ]);
    const after = await snapshot();
    expect({ ...after, programs: undefined }).toEqual({ ...before, programs: undefined });
  });

  it('applying twice is DUPLICATE without naming the program; it cannot approve or reject itself', async () => {
    const prog = await program();
    const me = await partner();
    const token = await partnerToken(fixture.server, fixture.admin, me.row.id);
    const applied = await enroll({ partnerId: me.id, programId: prog.id, answers: { website: 'x' } }, token);
    const before = await snapshot();
    expect(await enroll({ partnerId: me.id, programId: prog.id, answers: { website: 'x' } }, token)).toEqual({
      enrollment: null,
      userErrors: [
        {
          code: 'DUPLICATE',
          message: `Partner "${me.row.externalId}" is already enrolled in this program.`,
          field: ['input', 'programId'],
        },
      ],
    });
    for (const status of ['APPROVED', 'REJECTED'] as const) {
      const res = await fixture.gql(SET_STATUS, { input: { enrollmentId: applied.enrollment!.id, status } }, token);
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    expect(await snapshot()).toEqual(before);
  });

  it('a READ_ONLY key still cannot enroll', async () => {
    const reader = await readOnlyKey();
    const before = await snapshot();
    const res = await fixture.gql(
      ENROLL,
      { input: { partnerId: (await partner()).id, programId: (await program()).id, answers: { website: 'x' } } },
      reader,
    );
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    const after = await snapshot();
    expect({ ...after, programs: undefined }).toEqual({ ...before, programs: undefined });
  });
});

describe('setEnrollmentStatus with a reason', () => {
  async function application() {
    const prog = await program();
    const p = await partner();
    const payload = await enroll({ partnerId: p.id, programId: prog.id, answers: { website: 'x' } });
    return { enrollment: payload.enrollment!, program: prog, partner: p };
  }

  it('rejecting keeps the reason (trimmed) and sets reviewedAt; the event carries it; approving again clears it', async () => {
    const { enrollment, partner: p } = await application();
    const since = await lastSequence();
    const rejected = await setStatus({
      enrollmentId: enrollment.id,
      status: 'REJECTED',
      reason: '  No website traffic. ',
    });
    expect(rejected.userErrors).toEqual([]);
    expect(rejected.enrollment).toMatchObject({ status: 'REJECTED', rejectionReason: 'No website traffic.' });
    expect(rejected.enrollment!.appliedAt).toBe(enrollment.appliedAt);
    const reviewedAt = Date.parse(rejected.enrollment!.reviewedAt!);
    expect(reviewedAt).toBeGreaterThanOrEqual(Date.parse(enrollment.createdAt));
    const [event] = await eventsAfter(since);
    expect(event).toMatchObject({ type: 'enrollment.status_changed', partnerId: p.row.id });
    expect(event!.payload).toMatchObject({
      enrollmentId: enrollment.id,
      from: 'PENDING',
      to: 'REJECTED',
      reason: 'No website traffic.',
    });
    // Event.data's enrollment carries the reason too, as the partner sees it.
    const token = await partnerToken(fixture.server, fixture.admin, p.row.id);
    const seen = await fixture.gql<{ events: { edges: Array<{ node: { type: string; data: unknown } }> } }>(
      'query AP_Data { events(first: 100) { edges { node { type data { ... on EnrollmentEventData { from to enrollment { rejectionReason } } } } } } }',
      {},
      token,
    );
    expect(seen.data!.events.edges.at(-1)!.node).toEqual({
      type: 'enrollment.status_changed',
      data: { from: 'PENDING', to: 'REJECTED', enrollment: { rejectionReason: 'No website traffic.' } },
    });

    const since2 = await lastSequence();
    const approved = await setStatus({ enrollmentId: enrollment.id, status: 'APPROVED' });
    expect(approved.enrollment).toMatchObject({ status: 'APPROVED', rejectionReason: null });
    expect(Date.parse(approved.enrollment!.reviewedAt!)).toBeGreaterThanOrEqual(reviewedAt);
    const [approval] = await eventsAfter(since2);
    expect(approval!.payload).toMatchObject({ from: 'REJECTED', to: 'APPROVED', reason: null });
  });

  it('rejecting without a reason, or with a blank one, stores null', async () => {
    for (const reason of [undefined, null, '   ']) {
      const { enrollment } = await application();
      const rejected = await setStatus({ enrollmentId: enrollment.id, status: 'REJECTED', reason });
      expect(rejected.enrollment, String(reason)).toMatchObject({ status: 'REJECTED', rejectionReason: null });
    }
  });

  it('refuses a reason with APPROVED and one over 500 characters, changing nothing and appending nothing', async () => {
    const { enrollment } = await application();
    const before = await snapshot();
    expect(await setStatus({ enrollmentId: enrollment.id, status: 'APPROVED', reason: 'Looks good' })).toEqual({
      enrollment: null,
      userErrors: [
        {
          code: 'VALIDATION',
          message:
            'A reason goes with REJECTED only (it is kept as the enrollment’s rejectionReason); send APPROVED without one.',
          field: ['input', 'reason'],
        },
      ],
    });
    expect(await setStatus({ enrollmentId: enrollment.id, status: 'REJECTED', reason: 'x'.repeat(501) })).toEqual({
      enrollment: null,
      userErrors: [
        {
          code: 'VALIDATION',
          message: 'A reason must be at most 500 characters long; got 501.',
          field: ['input', 'reason'],
        },
      ],
    });
    // An allowed reason on a refused transition changes nothing either.
    await setStatus({ enrollmentId: enrollment.id, status: 'REJECTED', reason: 'x'.repeat(500) });
    const afterReject = await snapshot();
    const again = await setStatus({ enrollmentId: enrollment.id, status: 'REJECTED', reason: 'Other reason' });
    expect(again.userErrors.map((e) => e.code)).toEqual(['INVALID_TRANSITION']);
    expect(await snapshot()).toEqual(afterReject);
    expect(afterReject.events).toBe(before.events + 1);
  });
});

describe('Query.enrollments', () => {
  /** A workspace of its own (so that counts are exact) with an ADMIN key. */
  async function workspace() {
    const ws = await fixture.server.workspace(unique('Enrollments ws'));
    const tenant: Tenant = { workspaceId: ws.workspace.id, mode: 'TEST' };
    return { ws, tenant, admin: ws.keys.test.secret, f: factories(prisma(), tenant) };
  }

  it('lists every program’s enrollments oldest first (createdAt, then id), pages through ties, and filters by status and program', async () => {
    const { tenant, admin, f: wf } = await workspace();
    const a = await wf.program();
    const b = await wf.program();
    const base = Date.parse('2026-03-01T00:00:00Z');
    // Created out of order, and four at the very same instant (ids break the tie).
    const rows: Array<{ id: string; status: 'PENDING' | 'APPROVED' | 'REJECTED'; programId: string; at: number }> = [
      { id: uuidv7(base + 9000), status: 'PENDING', programId: a.id, at: base + 5000 },
      { id: uuidv7(base + 1000), status: 'APPROVED', programId: b.id, at: base + 4000 },
      { id: uuidv7(base + 3000), status: 'PENDING', programId: b.id, at: base + 1000 },
      { id: uuidv7(base + 4000), status: 'PENDING', programId: a.id, at: base + 1000 },
      { id: uuidv7(base + 2000), status: 'REJECTED', programId: a.id, at: base + 1000 },
      { id: uuidv7(base + 8000), status: 'PENDING', programId: b.id, at: base + 1000 },
      { id: uuidv7(base + 7000), status: 'PENDING', programId: a.id, at: base },
    ];
    for (const r of rows) {
      const p = await wf.partner({ externalId: `m-${r.id}` });
      await wf.enrollment({
        id: r.id,
        status: r.status,
        programId: r.programId,
        partnerId: p.id,
        createdAt: new Date(r.at),
      });
    }
    const ordered = [...rows].sort((x, y) => x.at - y.at || (x.id < y.id ? -1 : 1));
    const ids = (list: typeof rows) => list.map((r) => gid('Enrollment', r.id));

    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: GraphQLResponse<Ap_EnrollmentsQuery> = await fixture.gql(ENROLLMENTS, { first: 2, after }, admin);
      expect(res.errors).toBeUndefined();
      expect(res.data!.enrollments.totalCount).toBe(rows.length);
      seen.push(...res.data!.enrollments.edges.map((e) => e.node.id));
      if (!res.data!.enrollments.pageInfo.hasNextPage) break;
      after = res.data!.enrollments.pageInfo.endCursor;
    }
    expect(seen).toEqual(ids(ordered));

    const pending = await fixture.gql(ENROLLMENTS, { status: 'PENDING' }, admin);
    expect(pending.data!.enrollments.edges.map((e) => e.node.id)).toEqual(
      ids(ordered.filter((r) => r.status === 'PENDING')),
    );
    expect(pending.data!.enrollments.totalCount).toBe(5);
    const pendingInA = await fixture.gql(ENROLLMENTS, { status: 'PENDING', programId: gid('Program', a.id) }, admin);
    expect(pendingInA.data!.enrollments.edges.map((e) => e.node.id)).toEqual(
      ids(ordered.filter((r) => r.status === 'PENDING' && r.programId === a.id)),
    );
    expect(pendingInA.data!.enrollments.edges.every((e) => e.node.program.id === gid('Program', a.id))).toBe(true);
    const total = await fixture.gql(ENROLLMENTS_TOTAL, { programId: gid('Program', b.id) }, admin);
    expect(total.data!.enrollments.totalCount).toBe(3);
    expect(tenant.mode).toBe('TEST');
  });

  it('a programId that is malformed, of another type, or of another workspace or mode matches nothing', async () => {
    const { admin, f: wf } = await workspace();
    const prog = await wf.program();
    const p = await wf.partner();
    await wf.enrollment({ programId: prog.id, partnerId: p.id, status: 'PENDING' });
    const foreign = await program({}, fixture.otherTenant);
    const liveProgram = await program({}, live());
    for (const programId of ['garbage', gid('Partner', p.id), foreign.id, liveProgram.id, gid('Program', 'nope')]) {
      const res = await fixture.gql(ENROLLMENTS, { programId }, admin);
      expect(res.errors, programId).toBeUndefined();
      expect(res.data!.enrollments, programId).toEqual({
        totalCount: 0,
        pageInfo: { hasNextPage: false, endCursor: null },
        edges: [],
      });
    }
  });

  it('sees only the caller’s workspace and mode; READ_ONLY may read it, a PARTNER credential may not', async () => {
    const mine = await workspace();
    const prog = await mine.f.program();
    const p = await mine.f.partner();
    const enrollment = await mine.f.enrollment({ programId: prog.id, partnerId: p.id, status: 'PENDING' });
    // The same in LIVE mode of that workspace, and in another workspace.
    const liveF = factories(prisma(), { workspaceId: mine.ws.workspace.id, mode: 'LIVE' });
    const liveProg = await liveF.program();
    await liveF.enrollment({ programId: liveProg.id, partnerId: (await liveF.partner()).id, status: 'PENDING' });
    const theirs = await workspace();
    await theirs.f.enrollment({
      programId: (await theirs.f.program()).id,
      partnerId: (await theirs.f.partner()).id,
      status: 'PENDING',
    });

    const list = async (token: string) => {
      const res = await fixture.gql(ENROLLMENTS, { status: 'PENDING' }, token);
      expect(res.errors).toBeUndefined();
      return res.data!.enrollments.edges.map((e) => e.node.id);
    };
    expect(await list(mine.admin)).toEqual([gid('Enrollment', enrollment.id)]);
    expect(await list(mine.ws.keys.live.secret)).toHaveLength(1);
    expect(await list(mine.ws.keys.live.secret)).not.toContain(gid('Enrollment', enrollment.id));
    expect(await list(theirs.admin)).toHaveLength(1);
    expect(await list(theirs.admin)).not.toContain(gid('Enrollment', enrollment.id));

    const reader = await fixture.gql<{ createApiKey: { secret: string } }>(
      'mutation AP_Reader2 { createApiKey(input: { name: "reader", role: READ_ONLY }) { secret } }',
      {},
      mine.admin,
    );
    expect(await list(reader.data!.createApiKey.secret)).toEqual([gid('Enrollment', enrollment.id)]);

    const token = await partnerToken(fixture.server, mine.admin, p.id);
    for (const query of [ENROLLMENTS, ENROLLMENTS_TOTAL]) {
      const res = await fixture.gql(query, {}, token);
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
  });

  it('reads nested programs, partners, answers and questions in the same number of statements for 3 or 20 enrollments', async () => {
    const query = `query AP_Nested { enrollments(first: 50, status: PENDING) { totalCount edges { node {
      id answers appliedAt rejectionReason
      partner { externalId }
      program { name applicationQuestions { key label required } }
      links { code }
    } } } }`;
    const counts: number[] = [];
    for (const size of [3, 20]) {
      const { admin, f: wf } = await workspace();
      const programs = [await wf.program({ applicationQuestions: QUESTIONS as never }), await wf.program()];
      for (let i = 0; i < size; i++) {
        const p = await wf.partner();
        await wf.enrollment({
          programId: programs[i % 2]!.id,
          partnerId: p.id,
          status: 'PENDING',
          answers: { website: `site-${i}` },
          appliedAt: new Date(),
        });
      }
      const { body, statements } = await fixture.server.gqlCounted<{ enrollments: { edges: unknown[] } }>(
        query,
        {},
        admin,
      );
      expect(body.errors).toBeUndefined();
      expect(body.data!.enrollments.edges).toHaveLength(size);
      counts.push(statements);
    }
    expect(counts[1]).toBe(counts[0]);
    // The key; the page; its partners, programs and links (one statement per relation); the count.
    expect(counts[0]).toBe(6);
  });
});
