/**
 * The PostgreSQL server tests run against: TEST_DATABASE_URL, else DATABASE_URL; null means the
 * embedded PGlite, so `npm test` passes on any machine.
 */
export function testDatabaseUrl(): string | null {
  const url = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL;
  return url ? url : null;
}

/** The same server, another database on it. */
export function databaseUrlFor(base: string, database: string): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}
