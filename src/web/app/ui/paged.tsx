// A filtered list, a page at a time: the filters, the list (error, loading, empty, the table) and
// the pager. The page keeps the filters and the cursor (`after`), which a change of filter resets.
import type { CombinedError } from '@urql/core';
import type { ComponentChildren } from 'preact';
import { Empty, Loading, RequestError } from './feedback.js';

export interface Pager {
  after: string | null;
  setAfter: (after: string | null) => void;
  pageInfo: { hasNextPage: boolean; endCursor?: string | null } | undefined;
  /** The buttons' texts: back to the first page, on to the next one. */
  first: string;
  next: string;
}

export function Paged({
  label,
  filters,
  notices,
  result,
  rows,
  loading,
  empty,
  pager,
  children,
}: {
  /** The filter form's accessible name. */
  label: string;
  filters: ComponentChildren;
  /** Shown between the filters and the list (a mutation's outcome). */
  notices?: ComponentChildren;
  result: { error?: CombinedError | undefined; fetching: boolean; data?: unknown };
  rows: readonly unknown[];
  /** "Loading <loading>…" */
  loading: string;
  /** Shown when the answer has no rows. */
  empty: ComponentChildren;
  /** Without it, the list is the first page only. */
  pager?: Pager;
  /** The rows' table, shown when there are rows. */
  children: ComponentChildren;
}) {
  return (
    <>
      <form class="filters" aria-label={label} onSubmit={(e) => e.preventDefault()}>
        {filters}
      </form>
      {notices}
      <RequestError error={result.error} />
      {result.fetching && !result.data && <Loading what={loading} />}
      {result.data && rows.length === 0 && <Empty>{empty}</Empty>}
      {rows.length > 0 && children}
      {pager && (
        <div class="pager">
          {pager.after && (
            <button type="button" onClick={() => pager.setAfter(null)}>
              {pager.first}
            </button>
          )}
          {pager.pageInfo?.hasNextPage && (
            <button type="button" onClick={() => pager.setAfter(pager.pageInfo?.endCursor ?? null)}>
              {pager.next}
            </button>
          )}
        </div>
      )}
    </>
  );
}

/** A select of one filter: "Any" (the empty value), then each value, in lower case. */
export function FilterSelect<Value extends string>({
  label,
  value,
  values,
  onChange,
}: {
  label: string;
  value: Value | '';
  values: readonly Value[];
  onChange: (value: Value | '') => void;
}) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.currentTarget.value as Value | '')}>
        <option value="">Any</option>
        {values.map((v) => (
          <option key={v} value={v}>
            {v.toLowerCase()}
          </option>
        ))}
      </select>
    </label>
  );
}

/** A header cell: its text, `{ num: text }` for a column of numbers (aligned right), or false for none. */
export type Column = string | { num: string } | false;

/**
 * A table in its horizontally scrolling box: the header cells (after `lead`, a cell of another
 * kind such as a "select all" box), and the rows (`<tr>`s) as children.
 */
export function Table({
  columns,
  lead,
  children,
}: {
  columns: readonly Column[];
  lead?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <div class="table-wrap">
      <table>
        <thead>
          <tr>
            {lead}
            {columns.map((column) => {
              if (column === false) return null;
              const text = typeof column === 'string' ? column : column.num;
              return (
                <th key={text} scope="col" class={typeof column === 'string' ? undefined : 'num'}>
                  {text}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
