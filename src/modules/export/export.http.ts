import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isDatabaseUnavailable } from '../../db/unavailable.js';
import type { Auth } from '../../domain/auth.js';
import { DomainError, DomainErrors } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import type { Verdict } from '../../lib/rate-limit.js';
import type { SqlClient } from '../../lib/sql.js';
import type { Logger } from '../../logger.js';
import type { AuthResult } from '../auth/authenticate.js';
import { csvStringifier } from './csv.js';
import type { ExportMonitor, ExportOutcome } from './export-monitor.js';
import {
  exportFileName,
  exportPages,
  exportTableOf,
  headerOf,
  parseExportQuery,
  programRowId,
  recordOf,
} from './export.service.js';
import { EXPORT_TABLES, type ExportRow, type ExportTable } from './tables.js';

/** The path prefix of the CSV exports: `GET /export/{table}.csv`. */
export const EXPORT_PREFIX = '/export/';

export interface ExportDeps {
  db: SqlClient;
  /** The credential of an `Authorization` header, as for GraphQL requests. */
  authenticate(header: string | undefined): Promise<AuthResult>;
  /** Counts the request against the caller's rate limit (per credential; per address without a valid one). */
  rateLimit(auth: Auth | null): Promise<Verdict>;
  monitor: ExportMonitor;
  logger: Logger;
}

/** What a refused export answers: HTTP status, and the errors as userErrors have them. */
class Refusal {
  constructor(
    readonly status: number,
    readonly errors: ReadonlyArray<{ code: string; message: string; field: string[] | null }>,
    readonly headers: Record<string, string> = {},
  ) {}
}

const refuse = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  new Refusal(status, [{ code, message, field: null }], headers);

const TABLE_LIST = EXPORT_TABLES.map((name) => `${EXPORT_PREFIX}${name}.csv`).join(', ');

/**
 * `GET /export/{rewards|conversions|payouts|ledger}.csv?from=&to=&programId=`: the rows of the
 * caller's workspace and mode for a period, as CSV streamed page after page (README.md in this
 * folder). A secret key or access token of role ADMIN or READ_ONLY; refusals are JSON
 * (`{"errors":[{"code","message","field"}]}`) with 401, 403, 400, 404, 405, 429 or 503.
 */
export async function serveExport(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  deps: ExportDeps,
): Promise<void> {
  const now = new Date();
  let tenant: Tenant;
  let table: ExportTable;
  let request: ReturnType<typeof parseExportQuery>;
  let programId: string | null = null;
  try {
    table = tableOf(req, path);
    const auth = await authorize(req, deps);
    tenant = { workspaceId: auth.workspaceId, mode: auth.mode };
    request = parseExportQuery(table, new URL(req.url ?? '/', 'http://localhost').searchParams, now);
    if (request.programId) programId = await programRowId(deps.db, tenant, request.programId);
  } catch (error) {
    return answerRefusal(res, refusalOf(error, deps.logger));
  }

  deps.monitor.start();
  const pages = exportPages(deps.db, tenant, request, programId);
  let rows = 0;
  let outcome: ExportOutcome = 'failed';
  try {
    // The first page is read before the status is sent: a database that cannot answer gets a
    // 503, not a 200 with a truncated body.
    let first: IteratorResult<ExportRow[], void>;
    try {
      first = await pages.next();
    } catch (error) {
      return answerRefusal(res, refusalOf(error, deps.logger));
    }
    res.writeHead(200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${exportFileName(tenant, request)}"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    async function* records(): AsyncGenerator<Array<string | null>> {
      yield headerOf(table);
      for (let page = first; !page.done; page = await pages.next()) {
        for (const row of page.value) {
          rows++;
          yield recordOf(table, row);
        }
      }
    }
    // pipeline: each stream is read only as fast as the next one takes it, down to the socket
    // (res.write returning false pauses it), and all are destroyed when one fails or the client goes.
    await pipeline(Readable.from(records()), csvStringifier(), res);
    outcome = 'completed';
  } catch (error) {
    if (clientWentAway(error, res)) {
      outcome = 'aborted';
    } else {
      // Headers are sent: the connection is cut without the final chunk, so the client sees an
      // incomplete download rather than a file that looks whole.
      deps.logger.error({ err: error, table: table.name }, 'export failed while streaming');
      res.destroy();
    }
  } finally {
    // Waits for a page being read when the stream stopped, then ends the generator: once the
    // monitor counts this export as ended, it sends no more statements.
    await pages.return(undefined).catch(() => {});
    deps.monitor.finish(table.name, outcome, rows);
  }
}

function tableOf(req: IncomingMessage, path: string): ExportTable {
  if (req.method !== 'GET') {
    throw refuse(405, 'METHOD_NOT_ALLOWED', `Exports answer GET; got ${req.method}.`, { allow: 'GET' });
  }
  const match = /^([a-z]+)\.csv$/.exec(path.slice(EXPORT_PREFIX.length));
  const table = match ? exportTableOf(match[1]!) : null;
  if (!table) throw refuse(404, 'NOT_FOUND', `No export at ${path.slice(0, 100)}: the exports are ${TABLE_LIST}.`);
  return table;
}

/** The caller, checked as for GraphQL: a valid credential (401), within its rate limit (429), not a PARTNER (403). */
async function authorize(req: IncomingMessage, deps: ExportDeps): Promise<Auth> {
  const { auth, error } = await deps.authenticate(req.headers.authorization);
  const verdict = await deps.rateLimit(auth);
  if (!verdict.allowed) {
    throw refuse(
      429,
      'RATE_LIMITED',
      `Too many requests: ${auth ? 'this credential’s operations per second' : 'requests without a valid credential from this address'}. Retry after ${verdict.retryAfterSeconds} s.`,
      { 'retry-after': String(verdict.retryAfterSeconds) },
    );
  }
  if (!auth) {
    throw refuse(
      401,
      'UNAUTHENTICATED',
      error ?? 'Send Authorization: Bearer <secret key | access token> of role ADMIN or READ_ONLY.',
      { 'www-authenticate': 'Bearer realm="refgraph"' },
    );
  }
  if (auth.role !== 'ADMIN' && auth.role !== 'READ_ONLY') {
    throw refuse(
      403,
      'FORBIDDEN_FOR_ROLE',
      `Exports need a secret key or access token of role ADMIN or READ_ONLY; this credential’s role is ${auth.role}.`,
    );
  }
  return auth;
}

function refusalOf(error: unknown, logger: Logger): Refusal {
  if (error instanceof Refusal) return error;
  const status = (code: string) => (code === 'NOT_FOUND' ? 404 : 400);
  if (error instanceof DomainError) return new Refusal(status(error.code), [error.toUserError()]);
  if (error instanceof DomainErrors) {
    return new Refusal(
      status(error.errors[0]!.code),
      error.errors.map((e) => e.toUserError()),
    );
  }
  if (isDatabaseUnavailable(error)) {
    return refuse(503, 'SERVICE_UNAVAILABLE', 'The database cannot be reached right now. Retry later.', {
      'retry-after': '5',
    });
  }
  logger.error({ err: error }, 'export failed');
  return refuse(500, 'INTERNAL_SERVER_ERROR', 'Unexpected error.');
}

function answerRefusal(res: ServerResponse, refusal: Refusal): void {
  res.writeHead(refusal.status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...refusal.headers,
  });
  res.end(JSON.stringify({ errors: refusal.errors }));
}

/** Did the stream stop because the client closed the connection (not because of the server)? */
function clientWentAway(error: unknown, res: ServerResponse): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return !res.writableFinished && (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE');
}
