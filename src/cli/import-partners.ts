// `refgraph import partners FILE.csv`: a CSV of any length, streamed (never read whole), cut into
// batches that go through importPartners one after another. Nothing here writes to a terminal:
// the command (src/cli.ts) prints the progress and the summary from what this reports.
import type { Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { DomainError, DomainErrors, type UserErrorShape } from '../domain/errors.js';
import { textProblems, unstorableText } from '../graphql/input-text.js';
import { IMPORT_MAX_ROWS, type ImportPartnerRow } from '../modules/partner/import.service.js';

/** The columns a file may have (the header names them, in any order and case); only externalId is required. */
export const CSV_COLUMNS = ['externalId', 'name', 'email', 'code', 'programId', 'metadata'] as const;
type Column = (typeof CSV_COLUMNS)[number];

/** A problem of one row of the file, or of a whole batch (`line` null). */
export interface RowError {
  /** The line of the file where the row starts (1 is the header); null: about the batch as a whole. */
  line: number | null;
  /** The column at fault (`code`, `metadata`, …), or null. */
  column: string | null;
  code: UserErrorShape['code'];
  message: string;
}

export interface BatchReport {
  /** 1, 2, … in the order of the file. */
  batch: number;
  firstLine: number;
  lastLine: number;
  rows: number;
  /** Rows imported: all of the batch's, or 0 when it failed. */
  imported: number;
  /** Why it failed; empty when it did not. */
  errors: RowError[];
}

export interface CsvImportProgress {
  /** Bytes of the file read so far (for a progress bar against the file's size). */
  bytes: number;
  rows: number;
  imported: number;
  failedBatches: number;
}

export interface CsvImportSummary extends CsvImportProgress {
  batches: BatchReport[];
  /** True when --stop-on-error stopped the import after a failed batch (rows after it were not read). */
  stopped: boolean;
}

/** The outcome of sending one batch: imported, or refused with userErrors (nothing written). */
export type BatchOutcome = { imported: number } | { errors: UserErrorShape[] };

export interface CsvImportOptions {
  /** Rows per importPartners call, 1 to 1000. */
  batchSize: number;
  /** Row id of the program for rows whose programId cell is empty (--program); null: none. */
  defaultProgramId: string | null;
  /** Row id of the program a programId cell names, or null when it names none. */
  programIdOf: (cell: string) => string | null;
  /** Stop after the first failed batch instead of going on with the next. */
  stopOnError: boolean;
  /** Send one batch: importPartners, its refusal as userErrors. */
  importBatch: (rows: ImportPartnerRow[]) => Promise<BatchOutcome>;
  /** After each batch, and every `progressEveryRows` rows read. */
  onProgress?: (progress: CsvImportProgress, batch: BatchReport | null) => void;
  /** The raw rows (column → cell) of a batch that failed, e.g. to write them to a file to fix and import again. */
  onFailedRows?: (rows: ReadonlyArray<Record<string, string>>) => void | Promise<void>;
}

/**
 * A file that cannot be read on: no externalId column, an unknown column, a broken CSV line. The
 * batches before it stay imported: `summary` says what was done (`rows`: the rows read before).
 */
export class CsvFileError extends Error {
  override name = 'CsvFileError';
  summary: CsvImportSummary | null = null;
}

/** importPartners' refusal as a BatchOutcome; anything unexpected propagates. */
export function batchOutcomeOf(error: unknown): BatchOutcome {
  if (error instanceof DomainErrors) return { errors: error.errors.map((e) => e.toUserError()) };
  if (error instanceof DomainError) return { errors: [error.toUserError()] };
  throw error;
}

interface PendingRow {
  line: number;
  raw: Record<string, string>;
}

/**
 * Read `input` (CSV, UTF-8, a header line first) and import its rows in batches of
 * `batchSize`. A batch is all or nothing, like importPartners; a failed batch is reported with its
 * rows' errors at their lines and the import goes on with the next one (or stops, with
 * `stopOnError`). A row the file itself makes unreadable (metadata that is not JSON, text that
 * cannot be stored, no program) fails its batch before it is sent.
 */
export async function importPartnersCsv(input: Readable, options: CsvImportOptions): Promise<CsvImportSummary> {
  const batchSize = Math.min(Math.max(1, options.batchSize), IMPORT_MAX_ROWS);
  const parser = input.pipe(
    parse({
      bom: true,
      columns: headerColumns,
      info: true,
      trim: true,
      skip_empty_lines: true,
    }),
  );
  input.on('error', (error) => parser.destroy(error)); // e.g. the file cannot be read
  const summary: CsvImportSummary = { bytes: 0, rows: 0, imported: 0, failedBatches: 0, batches: [], stopped: false };
  let pending: PendingRow[] = [];
  let previous = { lines: 1, emptyLines: 0 }; // the header is line 1

  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const rows = pending;
    pending = [];
    const report = await sendBatch(rows, summary.batches.length + 1, options);
    summary.batches.push(report);
    summary.imported += report.imported;
    if (report.errors.length > 0) {
      summary.failedBatches++;
      await options.onFailedRows?.(rows.map((r) => r.raw));
    }
    options.onProgress?.(progressOf(summary), report);
  };

  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: CsvInfo }>) {
      // Where the row starts: after the previous one and any empty lines skipped since.
      const line = previous.lines + (info.empty_lines - previous.emptyLines) + 1;
      previous = { lines: info.lines, emptyLines: info.empty_lines };
      summary.rows++;
      summary.bytes = info.bytes;
      pending.push({ line, raw: record });
      if (pending.length === batchSize) {
        await flush();
        if (options.stopOnError && summary.failedBatches > 0) {
          summary.stopped = true;
          parser.destroy();
          return summary;
        }
      }
    }
  } catch (error) {
    const fileError =
      error instanceof CsvError
        ? new CsvFileError(error.message, { cause: error }) // it names the line
        : error;
    if (fileError instanceof CsvFileError) fileError.summary = summary;
    throw fileError;
  }
  await flush();
  return summary;
}

interface CsvInfo {
  lines: number;
  empty_lines: number;
  bytes: number;
}

const progressOf = (s: CsvImportSummary): CsvImportProgress => ({
  bytes: s.bytes,
  rows: s.rows,
  imported: s.imported,
  failedBatches: s.failedBatches,
});

/** The header's names as the columns of CSV_COLUMNS (any case); an unknown, repeated or missing one refuses the file. */
function headerColumns(header: string[]): Column[] {
  const known = new Map(CSV_COLUMNS.map((c) => [c.toLowerCase(), c]));
  const seen = new Set<Column>();
  const columns = header.map((name) => {
    const column = known.get(name.trim().toLowerCase());
    if (!column) {
      throw new CsvFileError(
        `unknown column "${name}" in the header (line 1); the columns are ${CSV_COLUMNS.join(', ')} (only externalId is required).`,
      );
    }
    if (seen.has(column)) throw new CsvFileError(`the column "${column}" appears twice in the header (line 1).`);
    seen.add(column);
    return column;
  });
  if (!seen.has('externalId')) {
    throw new CsvFileError(
      `the header (line 1) has no externalId column; the columns are ${CSV_COLUMNS.join(', ')} (only externalId is required).`,
    );
  }
  return columns;
}

async function sendBatch(rows: PendingRow[], batch: number, options: CsvImportOptions): Promise<BatchReport> {
  const report: BatchReport = {
    batch,
    firstLine: rows[0]!.line,
    lastLine: rows[rows.length - 1]!.line,
    rows: rows.length,
    imported: 0,
    errors: [],
  };
  const local: RowError[] = [];
  const input = rows.map((row) => toInput(row, options, local));
  if (local.length > 0) {
    report.errors = local;
    return report;
  }
  const outcome = await options.importBatch(input);
  if ('imported' in outcome) report.imported = outcome.imported;
  else report.errors = outcome.errors.map((e) => rowError(e, rows));
  return report;
}

/** One row as importPartners takes it; what the file makes unreadable goes to `errors`. */
function toInput(row: PendingRow, options: CsvImportOptions, errors: RowError[]): ImportPartnerRow {
  const cell = (column: Column) => row.raw[column] ?? '';
  const problem = (column: Column, message: string) =>
    errors.push({ line: row.line, column, code: 'VALIDATION', message });
  for (const column of CSV_COLUMNS) {
    const unstorable = unstorableText(cell(column));
    if (unstorable) problem(column, `The ${column} ${unstorable}`);
  }
  let metadata: unknown = null;
  if (cell('metadata') !== '') {
    try {
      metadata = JSON.parse(cell('metadata'));
      // An escaped NUL or half a surrogate pair ("\u0000") is valid JSON but cannot be stored.
      const [unstorable] = textProblems({ metadata });
      if (unstorable) problem('metadata', unstorable.message);
    } catch (error) {
      problem(
        'metadata',
        `metadata is not JSON (${(error as Error).message}); write a JSON object such as {"plan":"pro"}.`,
      );
    }
  }
  let programId = options.defaultProgramId;
  if (cell('programId') !== '') programId = options.programIdOf(cell('programId'));
  else if (programId === null) {
    problem('programId', 'No programId in this row and no --program given: say which program the partner is in.');
  }
  return {
    externalId: cell('externalId'),
    name: cell('name') || null,
    email: cell('email') || null,
    metadata,
    // A program id that names none (null) is answered NOT_FOUND by the service, like the API's.
    programId,
    code: cell('code') || null,
  };
}

/** A userError of importPartners at the file's line and column (["input","partners","17","code"] → line of row 17, code). */
function rowError(error: UserErrorShape, rows: PendingRow[]): RowError {
  const [, , index, column] = error.field ?? [];
  const row = index === undefined ? undefined : rows[Number(index)];
  return { line: row?.line ?? null, column: row ? (column ?? null) : null, code: error.code, message: error.message };
}
