/**
 * Is this error the database being out of reach (refused, dropped, timed out, shutting down,
 * full), rather than a problem of the statement? Such an error says "retry later" to a client
 * (HTTP 503) and is logged at most once a second (see logger.ts), however many statements fail.
 *
 * Errors arrive in three shapes: from pg itself (a socket error code, a SQLSTATE, or "Connection
 * terminated"), from Prisma's pg adapter (a DriverAdapterError whose cause has a `kind`), and from
 * Prisma's client (a known request error with a P1xxx code); each may wrap another as `cause`.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 6; depth++) {
    const { code, kind, message } = e as { code?: unknown; kind?: unknown; message?: unknown };
    if (
      typeof code === 'string' &&
      (SOCKET_CODES.has(code) || PRISMA_CODES.has(code) || SQLSTATES.has(code) || code.startsWith('08'))
    )
      return true;
    if (typeof kind === 'string' && ADAPTER_KINDS.has(kind)) return true;
    if (typeof message === 'string' && MESSAGES.test(message)) return true;
    const meta = (e as { meta?: { driverAdapterError?: unknown } }).meta;
    e =
      (e as { cause?: unknown }).cause ?? meta?.driverAdapterError ?? (e as { originalError?: unknown }).originalError;
  }
  return false;
}

const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);
/** Can't reach the server, timed out, server closed the connection, pool timeout. */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
/** Admin shutdown, crash shutdown, cannot connect now, too many connections (class 08 is checked apart). */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
const ADAPTER_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
const MESSAGES =
  /^(Connection terminated|Connection terminated unexpectedly|timeout exceeded when trying to connect|Client has encountered a connection error|Can't reach database server)/;
