// A section of rows that wait for a decision: the list (a query), checkboxes, the bar of bulk
// approve / reject, the outcome of the last decision, and the list again (from the server) after it.
import type { AnyVariables, DocumentInput } from '@urql/core';
import { useQuery } from '@urql/preact';
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { Count, Done, Empty, Loading, RequestError, UserErrors, type UserErrorLike } from './feedback.js';
import { type Column, Table } from './paged.js';
import { BulkBar, SelectAll, SelectRow, useSelection } from './selection.js';

export type Decision = 'approve' | 'reject';

/** What a decision did: the refusals to show, and how many rows it changed. */
export interface DecisionOutcome {
  errors: UserErrorLike[];
  changed: number;
}

export function BulkDecision<Data, Row extends { id: string }>({
  id,
  title,
  intro,
  query,
  list,
  loading,
  empty,
  noun,
  unit,
  reasonRequired,
  canWrite,
  decide,
  clearOnRefusal = false,
  columns,
  selectLabel,
  cells,
  rowData,
}: {
  /** The heading's id (the section is labelled by it). */
  id: string;
  title: string;
  /** A line under the heading. */
  intro?: ComponentChildren;
  query: DocumentInput<Data, AnyVariables>;
  /** The connection of the query's answer that holds the rows. */
  list: (data: Data) => { totalCount: number; edges: ReadonlyArray<{ node: Row }> };
  /** "Loading <loading>…" */
  loading: string;
  /** Shown when no row waits. */
  empty: string;
  /** The rows, plural ("review items"): the bar's and the "Select all" box's names. */
  noun: string;
  /** One row, in the confirmation: "2 <unit>(s) approved." */
  unit: string;
  reasonRequired?: boolean;
  canWrite: boolean;
  /** Applies the decision to the rows of `ids`; `rows` are those listed. */
  decide: (decision: Decision, ids: string[], reason: string, rows: readonly Row[]) => Promise<DecisionOutcome>;
  /**
   * Clear the selection even when a decision was refused (rows decided one by one: those accepted
   * are gone); otherwise a refused decision keeps it, to try again.
   */
  clearOnRefusal?: boolean;
  /** The header cells after the checkbox column. */
  columns: readonly Column[];
  /** The accessible name of a row's checkbox. */
  selectLabel: (row: Row, rows: readonly Row[]) => string;
  /** A row's cells after its checkbox. */
  cells: (row: Row) => ComponentChildren;
  /** `data-*` attributes of a row's `<tr>`. */
  rowData?: (row: Row) => Record<`data-${string}`, string>;
}) {
  const [result, refetch] = useQuery<Data>({ query });
  const connection = result.data ? list(result.data) : undefined;
  const rows = connection?.edges.map((e) => e.node) ?? [];
  const selection = useSelection(rows.map((r) => r.id));
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<{ errors: UserErrorLike[]; done: string | null }>({
    errors: [],
    done: null,
  });

  const onDecide = async (decision: Decision, ids: string[], reason: string) => {
    setBusy(true);
    const { errors, changed } = await decide(decision, ids, reason, rows);
    setBusy(false);
    setOutcome({
      errors,
      done: changed ? `${changed} ${unit}(s) ${decision === 'approve' ? 'approved' : 'rejected'}.` : null,
    });
    if (errors.length === 0 || clearOnRefusal) selection.clear();
    refetch({ requestPolicy: 'network-only' });
  };

  return (
    <section aria-labelledby={id} class="card">
      <h2 id={id}>
        {title} <Count n={connection?.totalCount} />
      </h2>
      {intro && <p class="muted small">{intro}</p>}
      <RequestError error={result.error} />
      {result.fetching && !result.data && <Loading what={loading} />}
      {canWrite && rows.length > 0 && (
        <BulkBar selection={selection} noun={noun} reasonRequired={reasonRequired} busy={busy} onDecide={onDecide} />
      )}
      <UserErrors errors={outcome.errors} />
      {outcome.done && <Done>{outcome.done}</Done>}
      {result.data && rows.length === 0 && <Empty>{empty}</Empty>}
      {rows.length > 0 && (
        <Table
          lead={
            canWrite && (
              <th scope="col" class="check">
                <SelectAll selection={selection} label={`Select all ${noun}`} />
              </th>
            )
          }
          columns={columns}
        >
          {rows.map((row) => (
            <tr key={row.id} {...rowData?.(row)}>
              {canWrite && (
                <td class="check">
                  <SelectRow selection={selection} id={row.id} label={selectLabel(row, rows)} />
                </td>
              )}
              {cells(row)}
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
