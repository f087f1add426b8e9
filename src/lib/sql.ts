/**
 * A database transaction driven with plain SQL, for the hot paths where Prisma's per-query cost
 * shows (recordConversion: see BENCHMARKS.md, "conversions"). Opened with `Database.transaction`.
 */
export interface SqlTx {
  /**
   * Run one statement: a tagged template whose `${value}`s become $1…$n parameters (never text
   * spliced into the SQL). Rows come as the driver returns them: cast enums to text, and read
   * int8/numeric columns through `BigInt()`/`Number()` (strings on PostgreSQL).
   */
  sql<R = Record<string, unknown>>(strings: TemplateStringsArray, ...values: unknown[]): Promise<R[]>;
}

/** A SqlTx over a driver's `query(text, params)`. */
export function sqlTx(query: (text: string, params: unknown[]) => Promise<unknown[]>): SqlTx {
  return {
    sql: <R>(strings: TemplateStringsArray, ...values: unknown[]) => query(sqlText(strings), values) as Promise<R[]>,
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
