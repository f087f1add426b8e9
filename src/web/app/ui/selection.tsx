// Checkboxes on table rows, a "select all" in the header, and the bar of bulk actions above them.
import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';

export interface Selection {
  selected: ReadonlySet<string>;
  toggle(id: string): void;
  toggleAll(): void;
  clear(): void;
  all: boolean;
}

/** The selected ids among `ids` (ids that left the list are dropped from the selection). */
export function useSelection(ids: readonly string[]): Selection {
  const [chosen, setChosen] = useState<ReadonlySet<string>>(new Set());
  const selected = useMemo(() => new Set(ids.filter((id) => chosen.has(id))), [ids, chosen]);
  const all = ids.length > 0 && selected.size === ids.length;
  return {
    selected,
    all,
    toggle: (id) =>
      setChosen((previous) => {
        const next = new Set(previous);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      }),
    toggleAll: () => setChosen(all ? new Set() : new Set(ids)),
    clear: () => setChosen(new Set()),
  };
}

export function SelectAll({ selection, label }: { selection: Selection; label: string }) {
  return <input type="checkbox" aria-label={label} checked={selection.all} onChange={() => selection.toggleAll()} />;
}

export function SelectRow({ selection, id, label }: { selection: Selection; id: string; label: string }) {
  return (
    <input
      type="checkbox"
      aria-label={label}
      checked={selection.selected.has(id)}
      onChange={() => selection.toggle(id)}
    />
  );
}

/**
 * Approve / reject the selected rows, with an optional (or required) reason for a rejection.
 * `onDecide` answers the errors to show, or none.
 */
export function BulkBar({
  selection,
  noun,
  reasonRequired,
  busy,
  onDecide,
  children,
}: {
  selection: Selection;
  noun: string;
  reasonRequired?: boolean;
  busy: boolean;
  onDecide: (decision: 'approve' | 'reject', ids: string[], reason: string) => void;
  children?: ComponentChildren;
}) {
  const [reason, setReason] = useState('');
  const count = selection.selected.size;
  const ids = [...selection.selected];
  const reasonId = `reason-${noun.replace(/\W+/g, '-')}`;
  return (
    <form
      class="bulk-bar"
      aria-label={`Bulk actions on ${noun}`}
      onSubmit={(event) => {
        event.preventDefault();
      }}
    >
      <span class="muted" aria-live="polite">
        {count === 0 ? `Select ${noun} to approve or reject them` : `${count} selected`}
      </span>
      <button type="button" class="primary" disabled={count === 0 || busy} onClick={() => onDecide('approve', ids, '')}>
        Approve selected
      </button>
      <label for={reasonId} class="inline-label">
        Reason{reasonRequired ? '' : ' (optional)'}
      </label>
      <input
        id={reasonId}
        type="text"
        value={reason}
        maxLength={500}
        onInput={(event) => setReason(event.currentTarget.value)}
      />
      <button
        type="button"
        class="danger"
        disabled={count === 0 || busy || (reasonRequired === true && reason.trim() === '')}
        onClick={() => onDecide('reject', ids, reason.trim())}
      >
        Reject selected
      </button>
      {children}
    </form>
  );
}
