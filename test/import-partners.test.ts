// importPartners (issue 14, item 6): existing partners with their programs and codes, up to 1000
// per call, all or nothing, a userError per bad row, a constant number of statements.
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { rowIdOf } from '../src/lib/global-id.js';
import { graphql } from './gql/index.js';
import type { ImportPartnerInput } from './gql/graphql.js';
import { testDatabaseUrl } from './helpers/backend.js';
import { factories, gid, type Tenant } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken, readOnlyKey } from './helpers/money.js';

// Every request looks its key up (no credential cache): statement counts do not depend on timing.
const fixture = useTwoWorkspaces({ env: { AUTH_CACHE_TTL_MS: '0' }, names: ['Import A', 'Import B'] });
const prisma = () => fixture.server.testDb.db.prisma;

const IMPORT = graphql(`
  mutation IP_Import($input: ImportPartnersInput!) {
    importPartners(input: $input) {
      imported
      partners {
        id
        externalId
        name
        email
        status
        enrollments { id status program { id } }
        links { id code isDefault program { id } }
      }
      userErrors { code message field }
    }
  }
`);

const IMPORT_COUNT = graphql(`
  mutation IP_ImportCount($input: ImportPartnersInput!) {
    importPartners(input: $input) { imported userErrors { code field } }
  }
`);

let program = ''; // global id; the program does not auto-approve: imported partners are APPROVED anyway
let seq = 0;
const unique = (prefix = 'imp') => `${prefix}-${++seq}-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  const row = await factories(prisma(), fixture.tenant).program({ name: 'Affiliates', autoApprovePartners: false });
  program = gid('Program', row.id);
});

async function importRows(partners: ImportPartnerInput[], token = fixture.admin) {
  const res = await fixture.gql(IMPORT, { input: { partners } }, token);
  expect(res.errors).toBeUndefined();
  return res.data!.importPartners;
}

/** Rows of every table an import writes, in the tenant. */
async function counts(tenant: Tenant = fixture.tenant) {
  const [partners, enrollments, links, events, rewards] = await Promise.all([
    prisma().partner.count({ where: tenant }),
    prisma().enrollment.count({ where: tenant }),
    prisma().referralLink.count({ where: tenant }),
    prisma().event.count({ where: tenant }),
    prisma().reward.count({ where: tenant }),
  ]);
  return { partners, enrollments, links, events, rewards };
}

const errorsOf = (payload: { userErrors: Array<{ code: string; field?: string[] | null }> }) =>
  payload.userErrors.map((e) => ({ code: e.code, field: e.field }));

describe('importPartners', () => {
  it('creates each partner, its APPROVED enrollment and its default link with its own or a generated code', async () => {
    const before = await counts();
    const ids = [unique(), unique(), unique()];
    const payload = await importRows([
      { externalId: `  ${ids[0]}  `, name: ' Ada ', email: ' ada@example.com ', programId: program, code: 'Ada-2019' },
      { externalId: ids[1]!, programId: program, metadata: { plan: 'pro', since: 2019 } },
      { externalId: ids[2]!, name: 'Cy', programId: program, code: 'cy_links' },
    ]);
    expect(payload.userErrors).toEqual([]);
    expect(payload.imported).toBe(3);
    expect(payload.partners.map((p) => p.externalId)).toEqual(ids);
    expect(payload.partners[0]).toMatchObject({ name: 'Ada', email: 'ada@example.com', status: 'ACTIVE' });
    expect(payload.partners[1]).toMatchObject({ name: null, email: null });
    for (const p of payload.partners) {
      expect(p.enrollments).toEqual([{ id: expect.any(String), status: 'APPROVED', program: { id: program } }]);
      expect(p.links).toEqual([
        { id: expect.any(String), code: expect.any(String), isDefault: true, program: { id: program } },
      ]);
    }
    expect(payload.partners[0]!.links[0]!.code).toBe('Ada-2019'); // kept as given
    expect(payload.partners[1]!.links[0]!.code).toMatch(/^[2-9A-HJKMNP-Z]{8}$/); // generated
    expect(payload.partners[2]!.links[0]!.code).toBe('cy_links');

    // Metadata as given, {} when none (the GraphQL field is another module's: read the column).
    const rows = await prisma().partner.findMany({
      where: { ...fixture.tenant, externalId: { in: ids } },
      orderBy: { id: 'asc' },
      select: { metadata: true },
    });
    expect(rows.map((r) => r.metadata)).toEqual([{}, { plan: 'pro', since: 2019 }, {}]);

    // Exactly these rows, and no reward made up.
    expect(await counts()).toEqual({
      partners: before.partners + 3,
      enrollments: before.enrollments + 3,
      links: before.links + 3,
      events: before.events + 9,
      rewards: before.rewards,
    });

    // The events, per row in the order things happen: partner, enrollment, link.
    const events = await prisma().event.findMany({
      where: { ...fixture.tenant, partnerId: { in: payload.partners.map((p) => rowIdOf('Partner', p.id)!) } },
      orderBy: { sequence: 'asc' },
    });
    expect(events.map((e) => [e.type, e.payload])).toEqual(
      payload.partners.flatMap((p) => [
        ['partner.created', { partnerId: p.id, externalId: p.externalId, status: 'ACTIVE' }],
        [
          'enrollment.status_changed',
          { enrollmentId: p.enrollments[0]!.id, programId: program, partnerId: p.id, from: null, to: 'APPROVED' },
        ],
        [
          'link.created',
          {
            linkId: p.links[0]!.id,
            code: p.links[0]!.code,
            programId: program,
            partnerId: p.id,
            isDefault: true,
            destinationUrl: null,
          },
        ],
      ]),
    );
    // Committed in one transaction: consecutive numbers.
    const sequences = events.map((e) => Number(e.sequence));
    expect(sequences).toEqual(sequences.map((_, i) => sequences[0]! + i));
  });

  it('refuses a code that is taken, ignoring case and whoever holds it, and writes nothing', async () => {
    const other = factories(prisma(), fixture.otherTenant);
    const otherProgram = await other.program();
    const holder = await other.partner();
    await other.link(await other.enrollment({ programId: otherProgram.id, partnerId: holder.id }), {
      code: 'TakenElsewhere',
    });
    const before = await counts();
    const payload = await importRows([
      { externalId: unique(), programId: program },
      { externalId: unique(), programId: program, code: 'takenelsewhere' },
    ]);
    expect(payload.imported).toBe(0);
    expect(payload.partners).toEqual([]);
    expect(payload.userErrors).toEqual([
      {
        code: 'DUPLICATE',
        message: 'The code "takenelsewhere" is already taken; choose another.',
        field: ['input', 'partners', '1', 'code'],
      },
    ]);
    expect(await counts()).toEqual(before);
  });

  it('reports every problem of every row at its exact field, and writes nothing', async () => {
    const existing = await importRows([{ externalId: unique('exists'), programId: program, code: 'existing-code' }]);
    expect(existing.userErrors).toEqual([]);
    const archived = await factories(prisma(), fixture.tenant).program({ status: 'ARCHIVED', name: 'Old' });
    const before = await counts();
    const twice = unique('twice');
    const payload = await importRows([
      { externalId: '   ', programId: program }, // 0
      { externalId: unique(), name: 'x'.repeat(201), email: 'not an email', programId: program }, // 1
      { externalId: unique(), programId: program, metadata: [1, 2] }, // 2
      { externalId: unique(), programId: program, code: 'a!' }, // 3: too short and a bad character
      { externalId: unique(), programId: program, code: 'Admin' }, // 4: reserved
      { externalId: unique(), programId: 'not-an-id' }, // 5
      { externalId: unique(), programId: gid('Program', archived.id) }, // 6
      { externalId: existing.partners[0]!.externalId, programId: program }, // 7
      { externalId: twice, programId: program, code: 'Mine-1' }, // 8
      { externalId: ` ${twice}`, programId: program, code: 'MINE-1' }, // 9: both repeat row 8
      { externalId: unique(), programId: program, code: 'EXISTING-code' }, // 10
      { externalId: unique(), name: 'Fine', programId: program }, // 11: nothing wrong
    ]);
    expect(payload.imported).toBe(0);
    expect(payload.partners).toEqual([]);
    const at = (row: number, field: string) => ['input', 'partners', String(row), field];
    expect(errorsOf(payload)).toEqual([
      { code: 'VALIDATION', field: at(0, 'externalId') },
      { code: 'VALIDATION', field: at(1, 'name') },
      { code: 'VALIDATION', field: at(1, 'email') },
      { code: 'VALIDATION', field: at(2, 'metadata') },
      { code: 'VALIDATION', field: at(3, 'code') },
      { code: 'VALIDATION', field: at(3, 'code') },
      { code: 'VALIDATION', field: at(4, 'code') },
      { code: 'NOT_FOUND', field: at(5, 'programId') },
      { code: 'INVALID_TRANSITION', field: at(6, 'programId') },
      { code: 'DUPLICATE', field: at(7, 'externalId') },
      { code: 'DUPLICATE', field: at(9, 'code') },
      { code: 'DUPLICATE', field: at(9, 'externalId') },
      { code: 'DUPLICATE', field: at(10, 'code') },
    ]);
    const messages = payload.userErrors.map((e) => e.message);
    expect(messages[0]).toBe('An externalId must be 1 to 255 characters long (after trimming spaces).');
    expect(messages[3]).toContain('metadata must be a JSON object');
    expect(messages[6]).toBe('"Admin" is a reserved word and cannot be used as a code.');
    expect(messages[7]).toBe('Program not found.');
    expect(messages[8]).toBe('Program "Old" is ARCHIVED and accepts no new partners.');
    expect(messages[9]).toContain('already exists in this workspace and mode');
    expect(messages[10]).toContain('already given to partners[8] of this import');
    expect(messages[11]).toContain(`The externalId "${twice}" is already given to partners[8] of this import`);
    expect(messages[12]).toBe('The code "EXISTING-code" is already taken; choose another.');
    expect(await counts()).toEqual(before);
  });

  it('lists at most 100 problems, then says how many more there were', async () => {
    const rows = Array.from({ length: 150 }, () => ({ externalId: unique(), email: 'nope', programId: program }));
    const payload = await importRows(rows);
    expect(payload.userErrors).toHaveLength(101);
    expect(payload.userErrors[99]!.field).toEqual(['input', 'partners', '99', 'email']);
    expect(payload.userErrors[100]).toEqual({
      code: 'VALIDATION',
      message: '50 more problems not listed (at most 100 are); nothing was imported. Fix these and import again.',
      field: ['input', 'partners'],
    });
  });

  it('takes 1 to 1000 rows: none or more is VALIDATION at ["input","partners"]', async () => {
    const before = await counts();
    const none = await importRows([]);
    expect(none).toMatchObject({ imported: 0, partners: [] });
    expect(none.userErrors).toEqual([
      { code: 'VALIDATION', message: 'Give at least one partner to import.', field: ['input', 'partners'] },
    ]);
    const tooMany = await importRows(
      Array.from({ length: 1001 }, () => ({ externalId: unique(), programId: program })),
    );
    expect(errorsOf(tooMany)).toEqual([{ code: 'VALIDATION', field: ['input', 'partners'] }]);
    expect(tooMany.userErrors[0]!.message).toContain('at most 1000 partners per call; got 1001');
    expect(await counts()).toEqual(before);
  });

  it('runs the same number of statements for 3 rows and for 1000', async () => {
    const rows = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        externalId: unique('bulk'),
        name: `Partner ${i}`,
        programId: program,
        ...(i % 2 === 0 ? { code: unique('c') } : {}),
      }));
    await fixture.gql(IMPORT_COUNT, { input: { partners: rows(1) } }, fixture.admin); // warm-up
    const small = await fixture.server.gqlCounted(IMPORT_COUNT, { input: { partners: rows(3) } }, fixture.admin);
    const large = await fixture.server.gqlCounted(IMPORT_COUNT, { input: { partners: rows(1000) } }, fixture.admin);
    expect(small.body.data!.importPartners).toEqual({ imported: 3, userErrors: [] });
    expect(large.body.data!.importPartners).toEqual({ imported: 1000, userErrors: [] });
    expect(large.statements).toBe(small.statements);
    // The key lookup; programs, externalIds and codes read; BEGIN, partners, enrollments, links,
    // events, COMMIT. Pinned so that a change shows up in review.
    expect(small.statements).toBe(10);
  });
});

describe('importPartners: workspaces, modes and roles', () => {
  it('answers a program of another workspace or mode like a missing one (NOT_FOUND on that row)', async () => {
    const otherProgram = await factories(prisma(), fixture.otherTenant).program();
    const liveProgram = await factories(prisma(), { ...fixture.tenant, mode: 'LIVE' }).program();
    const before = await counts();
    const payload = await importRows([
      { externalId: unique(), programId: program },
      { externalId: unique(), programId: gid('Program', otherProgram.id) },
      { externalId: unique(), programId: gid('Program', liveProgram.id) },
    ]);
    expect(payload.userErrors).toEqual([
      { code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'partners', '1', 'programId'] },
      { code: 'NOT_FOUND', message: 'Program not found.', field: ['input', 'partners', '2', 'programId'] },
    ]);
    expect(await counts()).toEqual(before);
  });

  it('checks externalIds inside the caller’s workspace and mode only', async () => {
    const externalId = unique('shared');
    await factories(prisma(), fixture.otherTenant).partner({ externalId });
    await factories(prisma(), { ...fixture.tenant, mode: 'LIVE' }).partner({ externalId });
    const payload = await importRows([{ externalId, programId: program }]);
    expect(payload.userErrors).toEqual([]);
    expect(payload.imported).toBe(1);
  });

  it('refuses READ_ONLY keys and PARTNER tokens (FORBIDDEN_FOR_ROLE) and writes nothing', async () => {
    const me = await importRows([{ externalId: unique(), programId: program }]);
    const reader = await readOnlyKey(fixture.server, fixture.admin);
    const partner = await partnerToken(fixture.server, fixture.admin, rowIdOf('Partner', me.partners[0]!.id)!);
    const before = await counts();
    for (const token of [reader, partner]) {
      const res = await fixture.gql(
        IMPORT,
        { input: { partners: [{ externalId: unique(), programId: program }] } },
        token,
      );
      expect(res.data ?? null).toBeNull();
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    }
    expect(await counts()).toEqual(before);
  });
});

describe(`importPartners under concurrency (${testDatabaseUrl() ? 'PostgreSQL' : 'PGlite'})`, () => {
  // Real concurrent requests: parallel transactions on PostgreSQL, serialized on PGlite; the
  // outcome must be the same.
  it('two imports racing on an externalId: one imports everything, the other nothing (DUPLICATE)', async () => {
    const shared = unique('race');
    const batch = (n: number) => [
      ...Array.from({ length: n }, () => ({ externalId: unique(), programId: program })),
      { externalId: shared, programId: program },
    ];
    const before = await counts();
    const [a, b] = await Promise.all([importRows(batch(100)), importRows(batch(60))]);
    const [won, lost] = a.imported > 0 ? [a, b] : [b, a];
    expect(won.userErrors).toEqual([]);
    expect(lost.imported).toBe(0);
    expect(errorsOf(lost)).toEqual([
      { code: 'DUPLICATE', field: ['input', 'partners', String(lost === a ? 100 : 60), 'externalId'] },
    ]);
    const after = await counts();
    expect(after.partners - before.partners).toBe(won.imported);
    expect(after.links - before.links).toBe(won.imported);
    expect(after.events - before.events).toBe(3 * won.imported);
  });

  it('two imports racing on a code: one imports everything, the other nothing (DUPLICATE)', async () => {
    const code = unique('race-code');
    const batch = (n: number) => [
      { externalId: unique(), programId: program, code: code.toUpperCase() },
      ...Array.from({ length: n }, () => ({ externalId: unique(), programId: program })),
    ];
    const before = await counts();
    const [a, b] = await Promise.all([importRows(batch(80)), importRows(batch(80))]);
    const [won, lost] = a.imported > 0 ? [a, b] : [b, a];
    expect(won.imported).toBe(81);
    expect(lost.imported).toBe(0);
    expect(lost.userErrors).toEqual([
      {
        code: 'DUPLICATE',
        message: `The code "${code.toUpperCase()}" is already taken; choose another.`,
        field: ['input', 'partners', '0', 'code'],
      },
    ]);
    const after = await counts();
    expect(after.partners - before.partners).toBe(81);
    expect(after.events - before.events).toBe(3 * 81);
  });

  // Deterministic on PostgreSQL: the other writer holds the externalId uncommitted while the
  // import checks (it sees nothing) and inserts (it waits); when the other commits, the import's
  // insert skips that row and the whole import rolls back.
  it.skipIf(!testDatabaseUrl())(
    'a partner written meanwhile by another transaction: DUPLICATE, nothing half-written',
    async () => {
      const url = fixture.server.testDb.url!;
      const holder = new pg.Client({ connectionString: url });
      const watcher = new pg.Client({ connectionString: url });
      await holder.connect();
      await watcher.connect();
      try {
        const externalId = unique('held');
        const before = await counts();
        await holder.query('BEGIN');
        await holder.query(
          `INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt")
           VALUES (gen_random_uuid(), $1::uuid, 'TEST', $2, now())`,
          [fixture.tenant.workspaceId, externalId],
        );
        const pending = importRows([
          { externalId: unique(), programId: program },
          { externalId, programId: program },
        ]);
        // Wait (bounded) until the import's insert waits for the holder's row.
        for (let i = 0; ; i++) {
          const { rows } = await watcher.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO%"Partner"%'`,
          );
          if (rows[0]!.n > 0) break;
          if (i > 500) throw new Error('the import never waited for the held row');
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await holder.query('COMMIT');
        const payload = await pending;
        expect(payload.imported).toBe(0);
        expect(payload.userErrors).toEqual([
          {
            code: 'DUPLICATE',
            message: `A partner with externalId "${externalId}" already exists in this workspace and mode.`,
            field: ['input', 'partners', '1', 'externalId'],
          },
        ]);
        const after = await counts();
        expect(after).toEqual({ ...before, partners: before.partners + 1 }); // the holder's only
      } finally {
        await holder.end();
        await watcher.end();
      }
    },
  );
});
