import { DomainError, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { parseDateTime } from '../../lib/datetime.js';
import { parseGlobalId } from '../../lib/global-id.js';
import { isUuid } from '../../lib/ids.js';
import type { SqlClient } from '../../lib/sql.js';
import { guardFormula } from './csv.js';
import { EXPORT_TABLES, type ExportRow, type ExportTable, exportTables, type PagePosition } from './tables.js';

/** Rows per statement: large enough that a million rows cost a thousand statements, small enough to hold. */
export const EXPORT_PAGE_SIZE = 1000;
/** The period when `from` is not given: this long before `to`. */
export const DEFAULT_PERIOD_DAYS = 30;
const DAY_MS = 86_400_000;

const PARAMETERS = ['from', 'to', 'programId'] as const;

/** What one export asks for, validated: the table, the half-open period [from, to), the program. */
export interface ExportRequest {
  table: ExportTable;
  from: Date;
  to: Date;
  /** The program's global id as given (the row id is looked up in the caller's tenant: `programRowId`). */
  programId: string | null;
}

/** The table a `/export/{name}.csv` path names, or null. */
export function exportTableOf(name: string): ExportTable | null {
  return (EXPORT_TABLES as readonly string[]).includes(name) ? exportTables[name as ExportTable['name']] : null;
}

/**
 * The query string of an export, checked: `from` and `to` are instants as the API's DateTime
 * takes them (lib/datetime.ts), `from` ≤ `to`; `to` defaults to `now`, `from` to
 * DEFAULT_PERIOD_DAYS before `to`. An empty value counts as absent. Every problem is reported at
 * once (VALIDATION, `field` = the parameter): unknown or repeated parameters, malformed instants,
 * a reversed period, a `programId` that is not a Program id or on a table without programs.
 */
export function parseExportQuery(table: ExportTable, params: URLSearchParams, now: Date): ExportRequest {
  const problems = new Validator();
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (!(PARAMETERS as readonly string[]).includes(name)) {
      problems.check(
        false,
        [name.slice(0, 64)],
        `Unknown query parameter ${JSON.stringify(name.slice(0, 64))}: an export takes only from, to and programId.`,
      );
    } else if (seen.has(name)) {
      problems.check(false, [name], `Query parameter "${name}" is given more than once: give it once.`);
    }
    seen.add(name);
  }
  const instant = (name: 'from' | 'to'): Date | null => {
    const text = params.get(name);
    if (!text) return null;
    const parsed = parseDateTime(text);
    if ('problem' in parsed) {
      problems.check(false, [name], `Query parameter "${name}": ${parsed.problem}`);
      return null;
    }
    return parsed.date;
  };
  const givenFrom = instant('from');
  const givenTo = instant('to');
  const to = givenTo ?? now;
  const from = givenFrom ?? new Date(to.getTime() - DEFAULT_PERIOD_DAYS * DAY_MS);
  if (givenFrom && from > to) {
    problems.check(
      false,
      ['from'],
      `The period starts after it ends: from ${from.toISOString()} is after to ${to.toISOString()}` +
        `${givenTo ? '' : ' (to defaults to now)'}. Give a from that is not after to.`,
    );
  }
  const programId = params.get('programId') || null;
  if (programId !== null) {
    if (!table.programFilter) {
      problems.check(
        false,
        ['programId'],
        `${table.name}.csv cannot be filtered by program: ${
          table.name === 'payouts' ? 'a payout pays a partner’s balance' : 'a ledger entry moves a partner’s balance'
        } across programs. Leave programId out (filter by program in rewards.csv and conversions.csv).`,
      );
    } else {
      const decoded = parseGlobalId(programId);
      problems.check(
        decoded?.typename === 'Program' && isUuid(decoded.id),
        ['programId'],
        `Query parameter "programId" must be the id of a Program as the API returns it (Program.id); got ${JSON.stringify(programId.slice(0, 64))}.`,
      );
    }
  }
  problems.throwIfAny();
  return { table, from, to, programId };
}

/**
 * The row id of the program a request names, in the caller's tenant: NOT_FOUND for an id of
 * another workspace or mode, as for a missing one (an empty file would hide the mistake of
 * exporting with a TEST key for a LIVE program).
 */
export async function programRowId(db: SqlClient, tenant: Tenant, programId: string): Promise<string> {
  const id = parseGlobalId(programId)!.id;
  const [found] = await db.sql<{ id: string }>`
    SELECT "id" FROM "Program"
     WHERE "id" = ${id}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"`;
  if (!found) {
    throw new DomainError(
      'NOT_FOUND',
      `No program with id ${programId} in this workspace and mode (${tenant.mode}). Use a Program.id read with a key of the same mode.`,
      ['programId'],
    );
  }
  return found.id;
}

/**
 * The rows of a table for a period, page after page in (time, id) order: one statement per page,
 * none held open between them — a slow reader holds no connection, transaction or snapshot, and
 * on the embedded PGlite (one connection) other requests run between pages. Each row is read
 * once, as it is when its page is read.
 */
export async function* exportPages(
  db: SqlClient,
  tenant: Tenant,
  request: ExportRequest,
  programId: string | null,
  pageSize = EXPORT_PAGE_SIZE,
): AsyncGenerator<ExportRow[], void, undefined> {
  const { table, from, to } = request;
  let after: PagePosition | null = null;
  for (;;) {
    const rows = await table.page(db, { tenant, from, to, programId, after, limit: pageSize });
    if (rows.length > 0) yield rows;
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.position;
  }
}

/** A row's CSV record: its cells, the text a client wrote guarded against formula injection (csv.ts). */
export function recordOf(table: ExportTable, row: ExportRow): Array<string | null> {
  const cells = row.cells;
  const out = new Array<string | null>(cells.length);
  for (let i = 0; i < cells.length; i++) {
    const cell = cells[i]!;
    out[i] = cell !== null && table.columns[i]!.kind === 'text' ? guardFormula(cell) : cell;
  }
  return out;
}

/** The header record: the column names. */
export function headerOf(table: ExportTable): string[] {
  return table.columns.map((column) => column.name);
}

/**
 * The download's file name: mode, table and period in ISO 8601 basic format (no `:`, which
 * Windows refuses), e.g. `refgraph-live-rewards-20260301T000000Z-20260401T000000Z.csv`.
 */
export function exportFileName(tenant: Tenant, request: ExportRequest): string {
  const compact = (at: Date) =>
    at
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.000Z$/, 'Z');
  return `refgraph-${tenant.mode.toLowerCase()}-${request.table.name}-${compact(request.from)}-${compact(request.to)}.csv`;
}
