/**
 * A database transaction driven with plain SQL, for the hot paths where Prisma's per-query cost
 * shows (recordConversion: see BENCHMARKS.md, "conversions"). Opened with `Database.transaction`.
 */
export interface SqlTx {
  /**
   * Run one statement: a tagged template whose `${value}`s become $1…$n parameters (never text
   * spliced into the SQL); a `${fragment}` made with `sqlFragment` is spliced in with its own
   * values renumbered. Rows come as the driver returns them: cast enums to text, and read
   * int8/numeric columns through `BigInt()`/`Number()` (strings on PostgreSQL).
   */
  sql<R = Record<string, unknown>>(strings: TemplateStringsArray, ...values: unknown[]): Promise<R[]>;
}

/**
 * A piece of a statement with its values, made by a module that owns those tables and spliced
 * by its caller into one statement of its own (e.g. a CTE): fewer round trips on a hot path.
 */
export class SqlFragment {
  constructor(
    readonly strings: readonly string[],
    readonly values: readonly unknown[],
  ) {}
}

/** sqlFragment`…${value}…`: like SqlTx.sql, but not run: spliced into a statement (or another fragment). */
export function sqlFragment(strings: TemplateStringsArray, ...values: unknown[]): SqlFragment {
  return new SqlFragment(strings, values);
}

/** Nothing: for a part of a statement that is left out. */
export const EMPTY_FRAGMENT = new SqlFragment([''], []);

/** A SqlTx over a driver's `query(text, params)`. */
export function sqlTx(query: (text: string, params: unknown[]) => Promise<unknown[]>): SqlTx {
  return {
    sql: <R>(strings: TemplateStringsArray, ...values: unknown[]) => {
      if (!values.some((value) => value instanceof SqlFragment)) return query(sqlText(strings), values) as Promise<R[]>;
      const params: unknown[] = [];
      return query(splice(strings, values, params), params) as Promise<R[]>;
    },
  };
}

const texts = new WeakMap<TemplateStringsArray, string>();

/** The template's text with $1…$n for its values (cached: a call site's strings array is always the same object). */
function sqlText(strings: TemplateStringsArray): string {
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
