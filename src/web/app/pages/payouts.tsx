// Payouts: the list with filters, a batch run (createPayouts), and per PENDING payout: mark paid,
// mark failed (with the reason), cancel.
import { useMutation, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { graphql } from '../../gql/index.js';
import type { PayoutStatus } from '../../gql/graphql.js';
import { formatDateTime, formatMoney } from '../../lib/format.js';
import { href } from '../router.js';
import { Count, Done, UserErrors, mutationErrors, type UserErrorLike } from '../ui/feedback.js';
import { FilterSelect, Paged, Table } from '../ui/paged.js';
import { useCanWrite } from '../viewer.js';

const PayoutsQuery = graphql(`
  query PayoutsList($filter: PayoutFilter, $after: String) {
    payouts(first: 50, after: $after, filter: $filter) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          ...PayoutRow
        }
      }
    }
    programs(first: 50) {
      edges {
        node {
          id
          name
          currency
        }
      }
    }
  }
`);

graphql(`
  fragment PayoutRow on Payout {
    id
    status
    method
    createdAt
    paidAt
    failureReason
    externalReference
    amount {
      amount
      currency
    }
    partner {
      id
      name
      externalId
    }
  }
`);

const STATUSES: PayoutStatus[] = ['PENDING', 'PAID', 'FAILED', 'CANCELED'];

export function PayoutsPage() {
  const canWrite = useCanWrite();
  const [status, setStatus] = useState<PayoutStatus | ''>('');
  const [currency, setCurrency] = useState('');
  const filter = {
    ...(status ? { status: [status] } : {}),
    ...(currency.trim().length === 3 ? { currency: currency.trim().toUpperCase() } : {}),
  };
  const [result, refetch] = useQuery({ query: PayoutsQuery, variables: { filter } });
  const rows = result.data?.payouts.edges.map((e) => e.node) ?? [];
  const programs = result.data?.programs.edges.map((e) => e.node) ?? [];
  const reload = () => refetch({ requestPolicy: 'network-only' });
  return (
    <>
      <h1>Payouts</h1>
      {canWrite && <CreatePayouts programs={programs} onCreated={reload} />}
      <section class="card" aria-labelledby="payouts-heading">
        <h2 id="payouts-heading">
          All payouts <Count n={result.data?.payouts.totalCount} />
        </h2>
        <Paged
          label="Filter payouts"
          filters={
            <>
              <FilterSelect label="Status" value={status} values={STATUSES} onChange={setStatus} />
              <label>
                Currency
                <input
                  type="text"
                  value={currency}
                  maxLength={3}
                  size={4}
                  placeholder="any"
                  onInput={(e) => setCurrency(e.currentTarget.value)}
                />
              </label>
            </>
          }
          result={result}
          rows={rows}
          loading="payouts"
          empty="No payouts match."
        >
          <PayoutTable rows={rows} onChanged={reload} canWrite={canWrite} />
        </Paged>
      </section>
    </>
  );
}

const CreatePayoutsMutation = graphql(`
  mutation PayoutsCreate($input: CreatePayoutsInput!) {
    createPayouts(input: $input) {
      payouts {
        id
      }
      skipped
      skips {
        reason
        available {
          amount
          currency
        }
        partner {
          id
          name
          externalId
        }
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

function CreatePayouts({
  programs,
  onCreated,
}: {
  programs: ReadonlyArray<{ id: string; name: string; currency: string }>;
  onCreated: () => void;
}) {
  const [currency, setCurrency] = useState('');
  const [programId, setProgramId] = useState('');
  const [minimum, setMinimum] = useState('');
  const [method, setMethod] = useState('');
  const [state, create] = useMutation(CreatePayoutsMutation);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [done, setDone] = useState<string | null>(null);
  const fallbackCurrency = programs.find((p) => p.id === programId)?.currency ?? programs[0]?.currency ?? 'USD';
  const chosenCurrency = (currency.trim() || fallbackCurrency).toUpperCase();
  const submit = async (event: Event) => {
    event.preventDefault();
    setDone(null);
    const response = await create({
      input: {
        currency: chosenCurrency,
        programId: programId || null,
        method: method.trim() || null,
        minimumAmount: minimum.trim() ? { amount: minimum.trim(), currency: chosenCurrency } : null,
      },
    });
    const payload = response.data?.createPayouts;
    const found = mutationErrors(response, payload?.userErrors);
    setErrors(found);
    if (found.length === 0 && payload) {
      setDone(
        `${payload.payouts.length} payout(s) created` +
          (payload.skipped > 0 ? `; ${payload.skipped} partner(s) skipped (${summarizeSkips(payload.skips)})` : '') +
          '.',
      );
      onCreated();
    }
  };
  return (
    <section class="card" aria-labelledby="create-payouts-heading">
      <h2 id="create-payouts-heading">Create payouts</h2>
      <p class="muted small">
        One PENDING payout for every partner whose available cash balance in the currency is positive (and at least the
        minimum). Mark them paid once the money is sent.
      </p>
      <form class="form-row" onSubmit={submit}>
        <label>
          Currency
          <input
            type="text"
            value={currency}
            placeholder={fallbackCurrency}
            maxLength={3}
            size={5}
            onInput={(e) => setCurrency(e.currentTarget.value)}
          />
        </label>
        <label>
          Program
          <select value={programId} onChange={(e) => setProgramId(e.currentTarget.value)}>
            <option value="">All programs</option>
            {programs.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Minimum amount (optional)
          <input
            type="text"
            inputMode="decimal"
            value={minimum}
            size={8}
            pattern="[0-9]+(\.[0-9]+)?"
            onInput={(e) => setMinimum(e.currentTarget.value)}
          />
        </label>
        <label>
          Method (optional)
          <input type="text" value={method} size={12} onInput={(e) => setMethod(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={state.fetching}>
          {state.fetching ? 'Creating…' : 'Create payouts'}
        </button>
      </form>
      <UserErrors errors={errors} />
      {done && <Done>{done}</Done>}
    </section>
  );
}

function summarizeSkips(skips: ReadonlyArray<{ reason: string }>): string {
  const counts = new Map<string, number>();
  for (const skip of skips) counts.set(skip.reason, (counts.get(skip.reason) ?? 0) + 1);
  return [...counts].map(([reason, n]) => `${n} ${reason.toLowerCase().replaceAll('_', ' ')}`).join(', ');
}

interface PayoutRowData {
  id: string;
  status: PayoutStatus;
  method?: string | null;
  createdAt: string;
  paidAt?: string | null;
  failureReason?: string | null;
  externalReference?: string | null;
  amount: { amount: string; currency: string };
  partner: { id: string; name?: string | null; externalId: string };
}

/** The payouts table, with the actions of PENDING payouts (also used on a partner's page). */
export function PayoutTable({
  rows,
  onChanged,
  canWrite,
  showPartner = true,
}: {
  rows: readonly PayoutRowData[];
  onChanged: () => void;
  canWrite: boolean;
  showPartner?: boolean;
}) {
  return (
    <Table
      columns={[showPartner && 'Partner', { num: 'Amount' }, 'Status', 'Created', 'Details', canWrite && 'Actions']}
    >
      {rows.map((row) => (
        <tr key={row.id} data-payout={row.id}>
          {showPartner && (
            <td>
              <a href={href(`/partners/${row.partner.id}`)}>{row.partner.name ?? row.partner.externalId}</a>
            </td>
          )}
          <td class="num">{formatMoney(row.amount.amount, row.amount.currency)}</td>
          <td>
            <span class={`tag status-${row.status.toLowerCase()}`}>{row.status.toLowerCase()}</span>
          </td>
          <td>{formatDateTime(row.createdAt)}</td>
          <td class="small">
            {row.method && <div>Method: {row.method}</div>}
            {row.paidAt && <div>Paid {formatDateTime(row.paidAt)}</div>}
            {row.externalReference && <div>Reference: {row.externalReference}</div>}
            {row.failureReason && <div>Reason: {row.failureReason}</div>}
          </td>
          {canWrite && (
            <td>{row.status === 'PENDING' ? <PayoutActions payout={row} onChanged={onChanged} /> : null}</td>
          )}
        </tr>
      ))}
    </Table>
  );
}

const MarkPaid = graphql(`
  mutation PayoutsMarkPaid($input: MarkPayoutPaidInput!) {
    markPayoutPaid(input: $input) {
      payout {
        ...PayoutRow
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

const MarkFailed = graphql(`
  mutation PayoutsMarkFailed($input: MarkPayoutFailedInput!) {
    markPayoutFailed(input: $input) {
      payout {
        ...PayoutRow
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

const Cancel = graphql(`
  mutation PayoutsCancel($input: CancelPayoutInput!) {
    cancelPayout(input: $input) {
      payout {
        ...PayoutRow
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

function PayoutActions({ payout, onChanged }: { payout: PayoutRowData; onChanged: () => void }) {
  const [open, setOpen] = useState<'paid' | 'failed' | 'cancel' | null>(null);
  const [text, setText] = useState('');
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [paid, markPaid] = useMutation(MarkPaid);
  const [failed, markFailed] = useMutation(MarkFailed);
  const [canceled, cancel] = useMutation(Cancel);
  const busy = paid.fetching || failed.fetching || canceled.fetching;
  const who = `${formatMoney(payout.amount.amount, payout.amount.currency)} to ${payout.partner.name ?? payout.partner.externalId}`;
  const submit = async (event: Event) => {
    event.preventDefault();
    let found: UserErrorLike[] = [];
    if (open === 'paid') {
      const r = await markPaid({ input: { payoutId: payout.id, externalReference: text.trim() || null } });
      found = mutationErrors(r, r.data?.markPayoutPaid.userErrors);
    } else if (open === 'failed') {
      const r = await markFailed({ input: { payoutId: payout.id, reason: text.trim() } });
      found = mutationErrors(r, r.data?.markPayoutFailed.userErrors);
    } else if (open === 'cancel') {
      const r = await cancel({ input: { payoutId: payout.id, reason: text.trim() || null } });
      found = mutationErrors(r, r.data?.cancelPayout.userErrors);
    }
    setErrors(found);
    if (found.length === 0) {
      setOpen(null);
      setText('');
      onChanged();
    }
  };
  if (!open)
    return (
      <div class="actions">
        <button type="button" class="primary small" onClick={() => setOpen('paid')} aria-label={`Mark paid: ${who}`}>
          Mark paid
        </button>
        <button type="button" class="small" onClick={() => setOpen('failed')} aria-label={`Mark failed: ${who}`}>
          Mark failed
        </button>
        <button type="button" class="small" onClick={() => setOpen('cancel')} aria-label={`Cancel: ${who}`}>
          Cancel
        </button>
      </div>
    );
  const label =
    open === 'paid' ? 'Reference (optional)' : open === 'failed' ? 'Why it failed (required)' : 'Reason (optional)';
  const inputId = `payout-${payout.id}-${open}`;
  return (
    <form class="inline-form" onSubmit={submit} aria-label={`Payout of ${who}`}>
      <label for={inputId}>{label}</label>
      <input id={inputId} type="text" value={text} onInput={(e) => setText(e.currentTarget.value)} maxLength={500} />
      <div class="actions">
        <button
          type="submit"
          class={open === 'paid' ? 'primary small' : 'danger small'}
          disabled={busy || (open === 'failed' && text.trim() === '')}
        >
          {open === 'paid' ? 'Confirm paid' : open === 'failed' ? 'Confirm failed' : 'Confirm cancel'}
        </button>
        <button type="button" class="small" onClick={() => setOpen(null)}>
          Back
        </button>
      </div>
      <UserErrors errors={errors} />
    </form>
  );
}
