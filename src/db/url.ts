// Database URLs as refgraph reads them: postgres:// or postgresql:// (with Prisma's `?schema=`), and
// pglite:memory / pglite:<dir> for the embedded database. Shared by the migrator (db/migrate.ts) and
// the development schema engine (db/schema-engine/), which must not be imported from the start path.
import path from 'node:path';

export const isPostgresUrl = (url: string | undefined): url is `postgres${string}` =>
  /^postgres(ql)?:\/\//.test(url ?? '');
export const isPgliteUrl = (url: string | undefined): url is `pglite:${string}` => (url ?? '').startsWith('pglite:');

/**
 * Pitfall 5 of docs/prisma-offline.md: Prisma URLs carry `?schema=NAME`, which node-postgres ignores, while migration SQL is unqualified:
 * remove the parameter and set the connection's search_path instead.
 */
export function splitPgUrl(url: string): { connectionString: string; schema: string | undefined } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') || undefined;
  u.searchParams.delete('schema');
  if (schema && !u.searchParams.has('options')) {
    u.searchParams.set('options', `-c search_path="${schema.replace(/"/g, '""')}"`);
  }
  return { connectionString: u.toString(), schema };
}

/** Same server, another database. */
export function pgUrlWithDatabase(connectionString: string, database: string): string {
  const u = new URL(connectionString);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** Database name of a postgres URL (`postgres` when the path is empty). */
export function pgDatabaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
}

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** `pglite:memory` (or `pglite:`) → undefined (in memory); `pglite:<dir>` → absolute dir (relative to cwd). */
export function pgliteDataDir(url: string): string | undefined {
  const location = url.slice('pglite:'.length).replace(/^\/\/(?=\/)/, ''); // tolerate pglite:///abs/path
  if (location === '' || location === 'memory' || location === 'memory://') return undefined;
  return path.resolve(process.cwd(), location);
}
