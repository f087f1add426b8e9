import type { Database } from '../../db.js';
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { checkMetadata } from '../../domain/metadata.js';
import { DomainError, DomainErrors, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import type { SqlTx } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';
import { appendEvents, type NewEvent } from '../events/outbox.js';
import { enrollmentCreated, linkCreated, partnerCreated } from '../events/payloads.js';
import { generateCode, isReservedCode, normalizeCode, vanityCodeProblems } from '../link/codes.js';
import { codeTakenMessage } from '../link/link.service.js';
import { cleanEmail, cleanExternalId, cleanName, duplicateExternalId } from './partner.service.js';

/** Rows of one importPartners call, at most. */
export const IMPORT_MAX_ROWS = 1000;
/** Row errors one refused call lists, at most; one more error then says how many were left out. */
export const IMPORT_MAX_ERRORS = 100;
/** Attempts at free generated codes for the rows without one (a collision is already rare at the first). */
const GENERATED_CODE_ATTEMPTS = 10;

export interface ImportPartnerRow {
  externalId: string;
  name?: string | null;
  email?: string | null;
  /** A JSON object (checkMetadata); absent or null: `{}`. */
  metadata?: unknown;
  /** Row id of the program; null when the given global id was malformed or of another type. */
  programId: string | null;
  /** The partner's existing code (the vanity-code rules of createReferralLink); absent or null: a generated one. */
  code?: string | null;
}

export interface ImportResult {
  /** The new partners, in the order of the rows. */
  partners: Array<{ id: string; externalId: string }>;
  /** Their links, in the order of the rows. */
  links: Array<{ id: string; code: string }>;
}

/** A row that passed every check, ready to write. */
interface CleanRow {
  index: number;
  externalId: string;
  name: string | null;
  email: string | null;
  metadata: Prisma.InputJsonObject;
  programId: string;
  /** The given code, or undefined for a generated one. */
  code: string | undefined;
}

const rowField = (index: number, name: string) => ['input', 'partners', String(index), name];

/**
 * Import existing partners (issue 14, item 6): each row creates a partner, enrolls it APPROVED in
 * its program (imported partners are partners already, whatever the program's
 * autoApprovePartners says) and gives it one link, the enrollment's default, with the row's code
 * or a generated one. All or nothing: any refused row refuses the call, with a userError per
 * problem at `["input","partners","<index>","<field>"]` (at most IMPORT_MAX_ERRORS). A constant
 * number of statements whatever the number of rows: three reads, then one insert per table and
 * one for the events (partner.created, enrollment.status_changed, link.created per row) in one
 * transaction. No rewards, clicks or conversions are made up.
 */
export async function importPartners(
  db: Database,
  tenant: Tenant,
  rows: readonly ImportPartnerRow[],
): Promise<ImportResult> {
  if (rows.length === 0 || rows.length > IMPORT_MAX_ROWS) {
    throw new DomainError(
      'VALIDATION',
      rows.length === 0
        ? 'Give at least one partner to import.'
        : `An import takes at most ${IMPORT_MAX_ROWS} partners per call; got ${rows.length}. Split the list into batches (the refgraph import command does).`,
      ['input', 'partners'],
    );
  }
  const clean = await checkRows(db.prisma, tenant, rows);
  try {
    return await db.transaction((tx) => writeRows(tx, tenant, clean));
  } catch (error) {
    if (error instanceof DomainErrors || error instanceof DomainError) throw capped(toList(error));
    throw error;
  }
}

/** Every problem of every row (capped), or the rows cleaned: trimmed, metadata defaulted, programs known. */
async function checkRows(prisma: PrismaClient, tenant: Tenant, rows: readonly ImportPartnerRow[]): Promise<CleanRow[]> {
  const errors: DomainError[][] = rows.map(() => []);
  const add = (index: number, error: DomainError) => errors[index]!.push(error);

  // 1. Each row on its own: the rules of createPartner, checkMetadata and createReferralLink's codes.
  const partial = rows.map((row, index) => {
    const v = new Validator();
    const externalId = cleanExternalId(v, row.externalId, rowField(index, 'externalId'));
    const name = cleanName(v, row.name ?? null, rowField(index, 'name'));
    const email = cleanEmail(v, row.email ?? null, rowField(index, 'email'));
    const metadata = checkMetadata(v, row.metadata, rowField(index, 'metadata'));
    const code = row.code ?? undefined;
    if (code !== undefined)
      for (const problem of vanityCodeProblems(code)) v.check(false, rowField(index, 'code'), problem);
    try {
      v.throwIfAny();
    } catch (error) {
      for (const e of toList(error)) add(index, e);
    }
    const fieldOk = (field: string) => !errors[index]!.some((e) => e.field?.[3] === field);
    return {
      index,
      externalId: fieldOk('externalId') ? externalId : null,
      name,
      email,
      metadata: (metadata ?? {}) as Prisma.InputJsonObject,
      code: fieldOk('code') ? code : undefined,
      codeInvalid: !fieldOk('code'),
    };
  });

  // 2. Against each other: an externalId or a code (ignoring case) twice — the later rows are refused.
  const firstRowOf = new Map<string, number>();
  const firstCodeRow = new Map<string, number>();
  const repeatedExternalId = new Set<number>();
  for (const row of partial) {
    if (row.externalId !== null) {
      const first = firstRowOf.get(row.externalId);
      if (first === undefined) firstRowOf.set(row.externalId, row.index);
      else repeatedExternalId.add(row.index);
    }
    if (row.code !== undefined) {
      const key = normalizeCode(row.code);
      const first = firstCodeRow.get(key);
      if (first === undefined) firstCodeRow.set(key, row.index);
      else
        add(
          row.index,
          new DomainError(
            'DUPLICATE',
            `The code "${row.code}" is already given to partners[${first}] of this import (codes are unique ignoring case); choose another.`,
            rowField(row.index, 'code'),
          ),
        );
    }
  }

  // 3. Against the database: one statement each, whatever the number of rows.
  const programIds = [...new Set(rows.map((r) => r.programId).filter((id): id is string => id !== null))];
  const externalIds = [...firstRowOf.keys()];
  const codes = [...firstCodeRow.keys()];
  const [programs, takenExternalIds, takenCodes] = await Promise.all([
    programIds.length
      ? prisma.program.findMany({
          where: { ...tenant, id: { in: programIds } },
          select: { id: true, name: true, status: true },
        })
      : [],
    externalIds.length
      ? prisma.partner.findMany({ where: { ...tenant, externalId: { in: externalIds } }, select: { externalId: true } })
      : [],
    // Codes are unique across the installation (GET /r/{code} knows no tenant): the same message
    // whoever holds one, as createReferralLink says it.
    codes.length
      ? prisma.referralLink.findMany({ where: { codeNormalized: { in: codes } }, select: { codeNormalized: true } })
      : [],
  ]);
  const programById = new Map(programs.map((p) => [p.id, p]));
  const existingExternalIds = new Set(takenExternalIds.map((p) => p.externalId));
  const existingCodes = new Set(takenCodes.map((l) => l.codeNormalized));

  for (const row of partial) {
    const { index } = row;
    const program = rows[index]!.programId ? programById.get(rows[index]!.programId!) : undefined;
    if (!program) add(index, notFound('Program', rowField(index, 'programId')));
    else if (program.status === 'ARCHIVED') {
      add(
        index,
        new DomainError(
          'INVALID_TRANSITION',
          `Program "${program.name}" is ARCHIVED and accepts no new partners.`,
          rowField(index, 'programId'),
        ),
      );
    }
    if (row.externalId !== null) {
      if (existingExternalIds.has(row.externalId)) {
        add(index, duplicateExternalId(row.externalId, rowField(index, 'externalId')));
      } else if (repeatedExternalId.has(index)) {
        add(
          index,
          new DomainError(
            'DUPLICATE',
            `The externalId "${row.externalId}" is already given to partners[${firstRowOf.get(row.externalId)}] of this import; each partner once.`,
            rowField(index, 'externalId'),
          ),
        );
      }
    }
    if (row.code !== undefined && existingCodes.has(normalizeCode(row.code))) {
      add(index, new DomainError('DUPLICATE', codeTakenMessage(row.code), rowField(index, 'code')));
    }
  }

  const all = errors.flat();
  if (all.length > 0) throw capped(all);
  return partial.map((row) => ({
    index: row.index,
    externalId: row.externalId!,
    name: row.name,
    email: row.email,
    metadata: row.metadata,
    programId: rows[row.index]!.programId!,
    code: row.code,
  }));
}

/**
 * The writes, in one plain-SQL transaction: an `INSERT … SELECT FROM unnest(…)` per table and one
 * for the events, whatever the number of rows (through Prisma, `createMany` of 1000 partners,
 * their enrollments, links and 3000 events took 6–10 s, past its transaction timeout; see
 * src/db/README.md, "Batch writes"). Each insert skips rows that a concurrent import wrote
 * meanwhile (`ON CONFLICT DO NOTHING`, which waits for that import's commit): such rows are
 * DUPLICATE and the transaction rolls back. Rows go in sorted by their unique key, so two imports
 * that overlap wait for each other instead of deadlocking.
 */
async function writeRows(tx: SqlTx, tenant: Tenant, rows: readonly CleanRow[]): Promise<ImportResult> {
  const partnerIds = rows.map(() => uuidv7()); // time-ordered: `id` order is the rows' order
  const byExternalId = rows.map((_, i) => i).sort((a, b) => compare(rows[a]!.externalId, rows[b]!.externalId));
  const column = <T>(order: readonly number[], value: (i: number) => T) => order.map(value);
  const inserted = await tx.sql<{ id: string }>`
    INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "name", "email", "metadata", "status", "updatedAt")
    SELECT p.id, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", p."externalId", p.name, p.email, p.metadata,
           'ACTIVE'::"PartnerStatus", now()
      FROM unnest(${column(byExternalId, (i) => partnerIds[i]!)}::uuid[],
                  ${column(byExternalId, (i) => rows[i]!.externalId)}::text[],
                  ${column(byExternalId, (i) => rows[i]!.name)}::text[],
                  ${column(byExternalId, (i) => rows[i]!.email)}::text[],
                  ${column(byExternalId, (i) => JSON.stringify(rows[i]!.metadata))}::jsonb[])
           WITH ORDINALITY AS p(id, "externalId", name, email, metadata, ord)
     ORDER BY p.ord
        ON CONFLICT DO NOTHING
    RETURNING "id"`;
  if (inserted.length !== rows.length) {
    const written = new Set(inserted.map((p) => p.id));
    throw new DomainErrors(
      rows
        .filter((_, i) => !written.has(partnerIds[i]!))
        .map((row) => duplicateExternalId(row.externalId, rowField(row.index, 'externalId'))),
    );
  }

  const enrollmentIds = rows.map(() => uuidv7());
  const all = rows.map((_, i) => i);
  // New partners: no enrollment of theirs can exist.
  await tx.sql`
    INSERT INTO "Enrollment" ("id", "workspaceId", "mode", "programId", "partnerId", "status", "updatedAt")
    SELECT e.id, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", e."programId", e."partnerId",
           'APPROVED'::"EnrollmentStatus", now()
      FROM unnest(${enrollmentIds}::uuid[], ${column(all, (i) => rows[i]!.programId)}::uuid[], ${partnerIds}::uuid[])
           WITH ORDINALITY AS e(id, "programId", "partnerId", ord)
     ORDER BY e.ord`;

  const links = await insertLinks(tx, tenant, rows, enrollmentIds, partnerIds);

  const events: NewEvent[] = rows.flatMap((row, i) => {
    const enrollment = { id: enrollmentIds[i]!, programId: row.programId, partnerId: partnerIds[i]! };
    return [
      partnerCreated({ id: partnerIds[i]!, externalId: row.externalId, status: 'ACTIVE' }),
      enrollmentCreated({ ...enrollment, status: 'APPROVED' }),
      linkCreated({
        ...links[i]!,
        programId: row.programId,
        partnerId: partnerIds[i]!,
        isDefault: true,
        destinationUrl: null,
      }),
    ];
  });
  await appendEvents(tx, tenant, events);
  return {
    partners: rows.map((row, i) => ({ id: partnerIds[i]!, externalId: row.externalId })),
    links: links.map((link) => ({ id: link.id, code: link.code })),
  };
}

/**
 * One link per row, the enrollment's default: the row's code, or a generated one (regenerated for
 * the few rows whose code turned out taken). A given code taken meanwhile is DUPLICATE.
 */
async function insertLinks(
  tx: SqlTx,
  tenant: Tenant,
  rows: readonly CleanRow[],
  enrollmentIds: readonly string[],
  partnerIds: readonly string[],
): Promise<Array<{ id: string; code: string }>> {
  const linkIds = rows.map(() => uuidv7());
  const codes: string[] = rows.map(() => '');
  const used = new Set(rows.flatMap((row) => (row.code === undefined ? [] : [normalizeCode(row.code)])));
  let pending = rows.map((_, i) => i);
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt === GENERATED_CODE_ATTEMPTS) throw new Error(`no free referral codes after ${attempt} attempts`);
    for (const i of pending) codes[i] = rows[i]!.code ?? freshCode(used);
    const order = [...pending].sort((a, b) => compare(normalizeCode(codes[a]!), normalizeCode(codes[b]!)));
    const column = <T>(value: (i: number) => T) => order.map(value);
    const inserted = await tx.sql<{ id: string }>`
      INSERT INTO "ReferralLink" ("id", "workspaceId", "mode", "enrollmentId", "programId", "partnerId", "code", "codeNormalized", "isDefault")
      SELECT l.id, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", l."enrollmentId", l."programId", l."partnerId",
             l.code, l."codeNormalized", true
        FROM unnest(${column((i) => linkIds[i]!)}::uuid[], ${column((i) => enrollmentIds[i]!)}::uuid[],
                    ${column((i) => rows[i]!.programId)}::uuid[], ${column((i) => partnerIds[i]!)}::uuid[],
                    ${column((i) => codes[i]!)}::text[], ${column((i) => normalizeCode(codes[i]!))}::text[])
             WITH ORDINALITY AS l(id, "enrollmentId", "programId", "partnerId", code, "codeNormalized", ord)
       ORDER BY l.ord
          ON CONFLICT DO NOTHING
      RETURNING "id"`;
    const written = new Set(inserted.map((l) => l.id));
    const taken: DomainError[] = [];
    const retry: number[] = [];
    for (const i of pending) {
      if (written.has(linkIds[i]!)) continue;
      const code = rows[i]!.code;
      if (code !== undefined)
        taken.push(new DomainError('DUPLICATE', codeTakenMessage(code), rowField(rows[i]!.index, 'code')));
      else retry.push(i);
    }
    if (taken.length > 0) throw new DomainErrors(taken);
    pending = retry;
  }
  return rows.map((_, i) => ({ id: linkIds[i]!, code: codes[i]! }));
}

/** A generated code that no other row of this import uses. */
function freshCode(used: Set<string>): string {
  for (;;) {
    const code = generateCode();
    const key = normalizeCode(code);
    if (isReservedCode(code) || used.has(key)) continue;
    used.add(key);
    return code;
  }
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function toList(error: unknown): DomainError[] {
  if (error instanceof DomainErrors) return error.errors;
  if (error instanceof DomainError) return [error];
  throw error;
}

/** At most IMPORT_MAX_ERRORS row errors, then one saying how many more there were. */
function capped(errors: DomainError[]): DomainErrors {
  if (errors.length <= IMPORT_MAX_ERRORS) return new DomainErrors(errors);
  const left = errors.length - IMPORT_MAX_ERRORS;
  return new DomainErrors([
    ...errors.slice(0, IMPORT_MAX_ERRORS),
    new DomainError(
      'VALIDATION',
      `${left} more problem${left === 1 ? '' : 's'} not listed (at most ${IMPORT_MAX_ERRORS} are); nothing was imported. Fix these and import again.`,
      ['input', 'partners'],
    ),
  ]);
}
