// lib/sql.ts, the one plain-SQL path (src/db/README.md): how templates become statements, and a
// check that no hand-numbered `$n` statement comes back anywhere else in src/.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prismaSql, SqlFragment, sql, sqlClient } from '../src/lib/sql.js';

describe('sql`…`', () => {
  it('numbers values as $1…$n, in order, and never puts them in the text', () => {
    const name = "O'Brien; DROP TABLE x";
    expect(sql`SELECT ${name}::text AS "a", ${2}::int AS "b"`.toQuery()).toEqual({
      text: 'SELECT $1::text AS "a", $2::int AS "b"',
      values: [name, 2],
    });
  });

  it('splices fragments with their values renumbered, however deep', () => {
    const inner = sql`x = ${'a'} AND y = ${'b'}`;
    const middle = sql`(${inner}) OR z = ${'c'}`;
    expect(sql`SELECT ${1} WHERE ${middle} AND w = ${'d'}`.toQuery()).toEqual({
      text: 'SELECT $1 WHERE (x = $2 AND y = $3) OR z = $4 AND w = $5',
      values: [1, 'a', 'b', 'c', 'd'],
    });
  });

  it('gives a repeated value one parameter per use', () => {
    const at = '2026-01-01T00:00:00Z';
    expect(sql`a <= ${at} AND b <= ${at}`.toQuery()).toEqual({ text: 'a <= $1 AND b <= $2', values: [at, at] });
  });

  it('joins, lists, quotes identifiers, splices constants, and leaves out sql.empty', () => {
    const conditions = [sql`a = ${1}`, sql`b = ${2}`, sql`c`];
    expect(sql`WHERE ${sql.join(conditions, sql` AND `)}`.toQuery()).toEqual({
      text: 'WHERE a = $1 AND b = $2 AND c',
      values: [1, 2],
    });
    expect(sql`IN (${sql.join([sql`${'x'}`, sql`${'y'}`])})`.toQuery().text).toBe('IN ($1, $2)');
    expect(sql`(${sql.join([])})`.toQuery()).toEqual({ text: '()', values: [] });
    expect(sql`IN (${sql.list(['x', 'y', 'z'])})`.toQuery()).toEqual({
      text: 'IN ($1, $2, $3)',
      values: ['x', 'y', 'z'],
    });
    expect(() => sql.list([])).toThrow();
    expect(sql`SELECT ${sql.ident('e', 'workspaceId')} FROM ${sql.ident('We"ird')}`.toQuery().text).toBe(
      'SELECT "e"."workspaceId" FROM "We""ird"',
    );
    expect(sql`ORDER BY 1 ${sql.raw('DESC')} ${sql.empty}LIMIT ${5}`.toQuery()).toEqual({
      text: 'ORDER BY 1 DESC LIMIT $1',
      values: [5],
    });
  });

  it('a call site gives the same text every time (what a named prepared statement is keyed by)', () => {
    const statement = (v: number) => sql`SELECT ${v}::int`;
    expect(statement(1).toQuery().text).toBe(statement(2).toQuery().text);
    expect(statement(1)).toBeInstanceOf(SqlFragment);
  });

  it('runs through a driver function (sqlClient) and through Prisma (prismaSql) with the same text and values', async () => {
    const seen: unknown[][] = [];
    const client = sqlClient(async (text, values) => {
      seen.push([text, values]);
      return [{ ok: true }];
    });
    expect(await client.sql`SELECT ${'a'} WHERE ${sql`b = ${'c'}`}`).toEqual([{ ok: true }]);
    const prisma = prismaSql({
      $queryRawUnsafe: async <T>(text: string, ...values: unknown[]) => {
        seen.push([text, values]);
        return [] as T;
      },
    });
    await prisma.sql`SELECT ${'a'} WHERE ${sql`b = ${'c'}`}`;
    expect(seen).toEqual([
      ['SELECT $1 WHERE b = $2', ['a', 'c']],
      ['SELECT $1 WHERE b = $2', ['a', 'c']],
    ]);
  });
});

describe('one plain-SQL path', () => {
  const root = path.resolve(import.meta.dirname, '../src');
  const files = (fs.readdirSync(root, { recursive: true }) as string[])
    .filter((file) => file.endsWith('.ts') && !file.startsWith(`generated${path.sep}`))
    .map((file) => file.split(path.sep).join('/'));
  const source = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

  /**
   * The `$n`s that stay outside lib/sql.ts, per file, with why. Anything else is a hand-numbered
   * statement (or a statement built with `$${…}`): write it as sql`…` (src/db/README.md).
   */
  const allowed: Record<string, { count: number; why: string }> = {
    'lib/sql.ts': { count: -1, why: 'numbers the parameters' },
    'config.ts': { count: 1, why: "a String.replace pattern ('$1'), not SQL" },
  };

  it('has no hand-numbered parameter ($1, $${…}) outside lib/sql.ts', () => {
    const found: Record<string, string[]> = {};
    for (const file of files) {
      const lines = source(file)
        .split('\n')
        .map((line, i) => `${i + 1}: ${line.trim()}`)
        .filter((line) => /\$\d|\$\$\{/.test(line));
      if (lines.length) found[file] = lines;
    }
    for (const [file, { count }] of Object.entries(allowed)) {
      if (count === -1 || found[file]?.length === count) delete found[file];
    }
    expect(found).toEqual({});
  });

  it('reaches Prisma raw SQL only through prismaSql (lib/sql.ts): no $queryRaw, $executeRaw or their Unsafe forms', () => {
    const raw = files.filter((file) => file !== 'lib/sql.ts' && /\$(query|execute)Raw/.test(source(file)));
    expect(raw).toEqual([]);
  });

  it('runs application statements with db.sql`…`, not db.query(text, params)', () => {
    // Database.query is the driver's own, for lib/sql.ts (db.ts), tests and tools; db/migrate.ts's
    // `db` is a PGlite instance.
    const calls = files.filter(
      (file) =>
        file !== 'db.ts' && file !== 'db/migrate.ts' && /\b(db|this\.db|ctx\.db)\.query\s*[<(]/.test(source(file)),
    );
    expect(calls).toEqual([]);
  });
});
