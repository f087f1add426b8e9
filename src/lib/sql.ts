// The one plain-SQL path of refgraph (see src/db/README.md for when to leave Prisma): statements
// are written as tagged templates, `sql`…`${value}`…``, whose values become $1…$n parameters —
// never text spliced into the SQL — and which compose: a fragment inside a template is spliced in
// with its own values renumbered. This file is the only place that writes a `$n`.

/**
 * A piece of a statement with its values: made by `sql`…``, spliced into a statement (or another
 * fragment) by whoever runs it — e.g. a module that owns some tables hands a CTE to its caller,
 * for fewer round trips on a hot path. `toQuery()` gives the text with $1…$n and the values.
 */
export class SqlFragment {
  constructor(
    readonly strings: readonly string[],
    readonly values: readonly unknown[],
  ) {}

  /** The statement as a driver takes it: the text with $1…$n, and the values in that order. */
  toQuery(): SqlQuery {
    if (!this.values.some((value) => value instanceof SqlFragment)) {
      return { text: flatText(this.strings), values: [...this.values] };
    }
    const values: unknown[] = [];
    return { text: splice(this.strings, this.values, values), values };
  }
}

/** What a driver runs: `client.query(text, values)` (node-postgres also takes the object itself). */
export interface SqlQuery {
  text: string;
  values: unknown[];
}

interface SqlTag {
  /** sql`…${value}…`: a fragment (a statement, or part of one); `${fragment}` splices another one in. */
  (strings: TemplateStringsArray, ...values: unknown[]): SqlFragment;
  /** The parts one after the other, `separator` (default `, `) between them: `sql.join(conditions, sql` AND `)`. */
  join(parts: readonly SqlFragment[], separator?: SqlFragment): SqlFragment;
  /** The values as parameters separated by commas ($1, $2, …), e.g. for `IN (…)` or `VALUES (…)`. Not empty. */
  list(values: readonly unknown[]): SqlFragment;
  /** A quoted identifier (`"Event"`, or `"e"."workspaceId"` for several names): a table, column or alias name. */
  ident(...names: string[]): SqlFragment;
  /**
   * Text spliced in as is. ONLY for constants of the code (a keyword, a fixed column list), never
   * for anything that comes from a request, the database or configuration: values go in `${}`.
   */
  raw(text: string): SqlFragment;
  /** Nothing: for a part of a statement that is left out. */
  empty: SqlFragment;
}

export const sql: SqlTag = Object.assign(
  (strings: TemplateStringsArray, ...values: unknown[]) => new SqlFragment(strings, values),
  {
    join(parts: readonly SqlFragment[], separator: SqlFragment = COMMA): SqlFragment {
      if (parts.length === 0) return sql.empty;
      const strings = [''];
      const values: unknown[] = [];
      parts.forEach((part, i) => {
        if (i > 0) {
          values.push(separator);
          strings.push('');
        }
        values.push(part);
        strings.push('');
      });
      return new SqlFragment(strings, values);
    },
    list(values: readonly unknown[]): SqlFragment {
      if (values.length === 0) throw new Error('sql.list: no values (an empty list is not valid SQL)');
      return new SqlFragment(['', ...values.slice(1).map(() => ', '), ''], values);
    },
    ident(...names: string[]): SqlFragment {
      if (names.length === 0) throw new Error('sql.ident: no name');
      return new SqlFragment([names.map((name) => `"${name.replace(/"/g, '""')}"`).join('.')], []);
    },
    raw(text: string): SqlFragment {
      return new SqlFragment([text], []);
    },
    empty: new SqlFragment([''], []),
  },
);

const COMMA = sql.raw(', ');

/**
 * Runs plain-SQL statements: `Database` itself (`db.sql`…``, one statement on any pooled
 * connection), a plain-SQL transaction (`db.transaction(tx => …)`), or a Prisma client or
 * interactive transaction through `prismaSql`. Rows come as the driver returns them: cast enums
 * to text, and read int8/numeric columns through `BigInt()`/`Number()` (strings on PostgreSQL) —
 * or cast them to text in SQL, so that both drivers give the same strings.
 */
export interface SqlClient {
  /** Run one statement: a tagged template, as `sql`…`` (values become parameters, fragments are spliced). */
  sql<R = Record<string, unknown>>(strings: TemplateStringsArray, ...values: unknown[]): Promise<R[]>;
}

/** A SqlClient inside a transaction: every statement runs on the transaction's connection (see `Database.transaction`). */
export type SqlTx = SqlClient;

/** What `Database.transaction` hands its function: a SqlTx that can also leave a statement for COMMIT to carry. */
export interface SqlTransaction extends SqlTx {
  /**
   * Send one statement now without waiting for its answer, for the end of the transaction: on
   * PostgreSQL, COMMIT is written right behind it (one round trip for both). Its rows are not
   * returned; if it fails, the transaction rolls back and throws its error (whatever else failed
   * after it). For writes whose answer the transaction does not need: statements sent after it run
   * after it, in order, and see what it wrote; if it failed, they fail too (the transaction is
   * aborted) and its error is the one thrown.
   */
  sqlBeforeCommit(strings: TemplateStringsArray, ...values: unknown[]): void;
}

/** A driver's "run this text with these parameters". */
export type QueryRunner = (text: string, params: unknown[]) => Promise<unknown[]>;

/** A SqlClient over a driver's `query(text, params)`. */
export function sqlClient(query: QueryRunner): SqlClient {
  return {
    sql: <R>(strings: TemplateStringsArray, ...values: unknown[]) => {
      const statement = new SqlFragment(strings, values).toQuery();
      return query(statement.text, statement.values) as Promise<R[]>;
    },
  };
}

/**
 * A SqlClient on a Prisma client or interactive transaction (e.g. to read a balance with the
 * statements of stats/ and ledger/ inside a Prisma write): the one bridge from lib/sql.ts to
 * Prisma's raw queries. The text comes from a `sql` template, so its parameters are numbered here.
 */
export function prismaSql(prisma: { $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): Promise<T> }) {
  return sqlClient((text, params) => prisma.$queryRawUnsafe<unknown[]>(text, ...params));
}

const texts = new WeakMap<readonly string[], string>();

/** The text of strings with plain values between them: $1…$n (cached: a call site's strings array is always the same object). */
function flatText(strings: readonly string[]): string {
  let text = texts.get(strings);
  if (text === undefined) {
    text = strings.reduce((sql, part, i) => `${sql}$${i}${part}`);
    texts.set(strings, text);
  }
  return text;
}

/** The text of a template with fragments inside, numbering every value in order into `params`. */
function splice(strings: readonly string[], values: readonly unknown[], params: unknown[]): string {
  let text = strings[0]!;
  values.forEach((value, i) => {
    if (value instanceof SqlFragment) {
      text += splice(value.strings, value.values, params);
    } else {
      params.push(value);
      text += `$${params.length}`;
    }
    text += strings[i + 1]!;
  });
  return text;
}
