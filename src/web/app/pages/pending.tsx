// What waits for a decision: applications (PENDING enrollments → setEnrollmentStatus), the review
// queue (→ resolveReviewItems) and rewards awaiting approval (CREATED → updateRewardStatus), each
// with checkboxes and bulk approve / reject.
import { useMutation, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { graphql } from '../../gql/index.js';
import { formatCount, formatDateTime, formatMoney, formatMoneyList } from '../../lib/format.js';
import { href } from '../router.js';
import { Done, Empty, Loading, RequestError, UserErrors, mutationErrors, type UserErrorLike } from '../ui/feedback.js';
import { BulkBar, SelectAll, SelectRow, useSelection } from '../ui/selection.js';
import { useCanWrite } from '../viewer.js';

export function PendingPage() {
  return (
    <>
      <h1>Pending</h1>
      <Applications />
      <ReviewQueue />
      <RewardsToApprove />
    </>
  );
}

/** The outcome of the last bulk action of a section. */
interface Outcome {
  errors: UserErrorLike[];
  done: string | null;
}

const ApplicationsQuery = graphql(`
  query PendingApplications {
    enrollments(status: PENDING, first: 100) {
      totalCount
      edges {
        node {
          id
          appliedAt
          createdAt
          answers
          partner {
            id
            name
            email
            externalId
          }
          program {
            id
            name
          }
        }
      }
    }
  }
`);

const SetEnrollmentStatus = graphql(`
  mutation PendingSetEnrollmentStatus($input: SetEnrollmentStatusInput!) {
    setEnrollmentStatus(input: $input) {
      enrollment {
        id
        status
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

function Applications() {
  const canWrite = useCanWrite();
  const [result, refetch] = useQuery({ query: ApplicationsQuery });
  const rows = result.data?.enrollments.edges.map((e) => e.node) ?? [];
  const selection = useSelection(rows.map((r) => r.id));
  const [, setStatus] = useMutation(SetEnrollmentStatus);
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome>({ errors: [], done: null });

  const decide = async (decision: 'approve' | 'reject', ids: string[], reason: string) => {
    // setEnrollmentStatus takes one enrollment: one call each, the refusals listed together.
    setBusy(true);
    const errors: UserErrorLike[] = [];
    let changed = 0;
    for (const id of ids) {
      const response = await setStatus({
        input: { enrollmentId: id, status: decision === 'approve' ? 'APPROVED' : 'REJECTED', reason: reason || null },
      });
      const found = mutationErrors(response, response.data?.setEnrollmentStatus.userErrors);
      if (found.length === 0) changed++;
      errors.push(...found);
    }
    setBusy(false);
    setOutcome({
      errors,
      done: changed ? `${changed} application(s) ${decision === 'approve' ? 'approved' : 'rejected'}.` : null,
    });
    selection.clear();
    refetch({ requestPolicy: 'network-only' });
  };

  return (
    <section aria-labelledby="applications-heading" class="card">
      <h2 id="applications-heading">
        Applications <Count n={result.data?.enrollments.totalCount} />
      </h2>
      <RequestError error={result.error} />
      {result.fetching && !result.data && <Loading what="applications" />}
      {canWrite && rows.length > 0 && (
        <BulkBar selection={selection} noun="applications" busy={busy} onDecide={decide} />
      )}
      <UserErrors errors={outcome.errors} />
      {outcome.done && <Done>{outcome.done}</Done>}
      {result.data && rows.length === 0 && <Empty>No applications waiting.</Empty>}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                {canWrite && (
                  <th scope="col" class="check">
                    <SelectAll selection={selection} label="Select all applications" />
                  </th>
                )}
                <th scope="col">Partner</th>
                <th scope="col">Program</th>
                <th scope="col">Applied</th>
                <th scope="col">Answers</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.id}>
                  {canWrite && (
                    <td class="check">
                      <SelectRow
                        selection={selection}
                        id={row.id}
                        label={`Select the application of ${row.partner.name ?? row.partner.externalId} to ${row.program.name}`}
                      />
                    </td>
                  )}
                  <td>
                    <a href={href(`/partners/${row.partner.id}`)}>{row.partner.name ?? row.partner.externalId}</a>
                    {row.partner.email && <div class="muted small">{row.partner.email}</div>}
                  </td>
                  <td>{row.program.name}</td>
                  <td>{formatDateTime(row.appliedAt ?? row.createdAt)}</td>
                  <td>
                    <Answers answers={row.answers} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Answers({ answers }: { answers: unknown }) {
  if (!answers || typeof answers !== 'object') return <span class="muted">—</span>;
  const entries = Object.entries(answers as Record<string, unknown>);
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <dl class="answers">
      {entries.map(([key, value]) => (
        <div key={key}>
          <dt>{key}</dt>
          <dd>{typeof value === 'string' ? value : JSON.stringify(value)}</dd>
        </div>
      ))}
    </dl>
  );
}

const ReviewQueueQuery = graphql(`
  query PendingReviewQueue {
    reviewQueue(first: 100) {
      totalCount
      edges {
        node {
          id
          createdAt
          partner {
            id
            name
            externalId
          }
          program {
            id
            name
          }
          conversion {
            id
            type
            referredExternalId
            amount {
              amount
              currency
            }
          }
          signals {
            type
            detail
          }
          rewards {
            id
            amount {
              amount
              currency
            }
          }
        }
      }
    }
  }
`);

const ResolveReviewItems = graphql(`
  mutation PendingResolveReviewItems($input: ResolveReviewItemsInput!) {
    resolveReviewItems(input: $input) {
      items {
        id
        status
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

function ReviewQueue() {
  const canWrite = useCanWrite();
  const [result, refetch] = useQuery({ query: ReviewQueueQuery });
  const rows = result.data?.reviewQueue.edges.map((e) => e.node) ?? [];
  const selection = useSelection(rows.map((r) => r.id));
  const [state, resolve] = useMutation(ResolveReviewItems);
  const [outcome, setOutcome] = useState<Outcome>({ errors: [], done: null });

  const decide = async (decision: 'approve' | 'reject', ids: string[], reason: string) => {
    const response = await resolve({
      input: { ids, decision: decision === 'approve' ? 'APPROVE' : 'REJECT', reason: reason || null },
    });
    const errors = mutationErrors(response, response.data?.resolveReviewItems.userErrors);
    setOutcome({
      errors,
      done: errors.length === 0 ? `${ids.length} item(s) ${decision === 'approve' ? 'approved' : 'rejected'}.` : null,
    });
    if (errors.length === 0) selection.clear();
    refetch({ requestPolicy: 'network-only' });
  };

  return (
    <section aria-labelledby="review-heading" class="card">
      <h2 id="review-heading">
        Review queue <Count n={result.data?.reviewQueue.totalCount} />
      </h2>
      <p class="muted small">Conversions a fraud rule flagged: their rewards wait here for a decision.</p>
      <RequestError error={result.error} />
      {result.fetching && !result.data && <Loading what="the review queue" />}
      {canWrite && rows.length > 0 && (
        <BulkBar selection={selection} noun="review items" reasonRequired busy={state.fetching} onDecide={decide} />
      )}
      <UserErrors errors={outcome.errors} />
      {outcome.done && <Done>{outcome.done}</Done>}
      {result.data && rows.length === 0 && <Empty>Nothing to review.</Empty>}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                {canWrite && (
                  <th scope="col" class="check">
                    <SelectAll selection={selection} label="Select all review items" />
                  </th>
                )}
                <th scope="col">Conversion</th>
                <th scope="col">Partner</th>
                <th scope="col">Signals</th>
                <th scope="col">Rewards held</th>
                <th scope="col">Opened</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.id}>
                  {canWrite && (
                    <td class="check">
                      <SelectRow
                        selection={selection}
                        id={row.id}
                        label={`Select the review of ${row.conversion.referredExternalId}`}
                      />
                    </td>
                  )}
                  <td>
                    {row.conversion.type.toLowerCase()} by <code>{row.conversion.referredExternalId}</code>
                    {row.conversion.amount && (
                      <div class="muted small">
                        {formatMoney(row.conversion.amount.amount, row.conversion.amount.currency)} · {row.program.name}
                      </div>
                    )}
                  </td>
                  <td>
                    <a href={href(`/partners/${row.partner.id}`)}>{row.partner.name ?? row.partner.externalId}</a>
                  </td>
                  <td>
                    <ul class="plain">
                      {row.signals.map((signal, i) => (
                        <li key={i}>
                          <span class="tag status-rejected">{signal.type.toLowerCase().replaceAll('_', ' ')}</span>{' '}
                          {signal.detail}
                        </li>
                      ))}
                    </ul>
                  </td>
                  <td class="num">{formatMoneyList(row.rewards.map((r) => r.amount))}</td>
                  <td>{formatDateTime(row.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const RewardsQuery = graphql(`
  query PendingRewards {
    rewards(first: 100, filter: { status: [CREATED] }) {
      totalCount
      edges {
        node {
          id
          kind
          recipient
          createdAt
          approveAfter
          amount {
            amount
            currency
          }
          partner {
            id
            name
            externalId
          }
          program {
            id
            name
          }
          conversion {
            id
            type
            referredExternalId
          }
        }
      }
    }
  }
`);

const UpdateRewardStatus = graphql(`
  mutation PendingUpdateRewardStatus($input: UpdateRewardStatusInput!) {
    updateRewardStatus(input: $input) {
      rewards {
        id
        status
      }
      userErrors {
        code
        message
        field
      }
    }
  }
`);

function RewardsToApprove() {
  const canWrite = useCanWrite();
  const [result, refetch] = useQuery({ query: RewardsQuery });
  const rows = result.data?.rewards.edges.map((e) => e.node) ?? [];
  const selection = useSelection(rows.map((r) => r.id));
  const [state, update] = useMutation(UpdateRewardStatus);
  const [outcome, setOutcome] = useState<Outcome>({ errors: [], done: null });

  const decide = async (decision: 'approve' | 'reject', ids: string[], reason: string) => {
    const response = await update({
      input: { ids, status: decision === 'approve' ? 'APPROVED' : 'REJECTED', reason: reason || null },
    });
    const errors = mutationErrors(response, response.data?.updateRewardStatus.userErrors).map((error) =>
      // Name the row a refusal is about: field is ["input", "ids", index].
      error.field?.[2] !== undefined
        ? { ...error, message: `${rowName(rows, ids[Number(error.field[2])])}: ${error.message}` }
        : error,
    );
    setOutcome({
      errors,
      done: errors.length === 0 ? `${ids.length} reward(s) ${decision === 'approve' ? 'approved' : 'rejected'}.` : null,
    });
    if (errors.length === 0) selection.clear();
    refetch({ requestPolicy: 'network-only' });
  };

  return (
    <section aria-labelledby="rewards-heading" class="card">
      <h2 id="rewards-heading">
        Rewards awaiting approval <Count n={result.data?.rewards.totalCount} />
      </h2>
      <p class="muted small">
        Approved automatically after the program’s hold period; approve them early or reject them here.
      </p>
      <RequestError error={result.error} />
      {result.fetching && !result.data && <Loading what="rewards" />}
      {canWrite && rows.length > 0 && (
        <BulkBar selection={selection} noun="rewards" busy={state.fetching} onDecide={decide} />
      )}
      <UserErrors errors={outcome.errors} />
      {outcome.done && <Done>{outcome.done}</Done>}
      {result.data && rows.length === 0 && <Empty>No rewards waiting for approval.</Empty>}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                {canWrite && (
                  <th scope="col" class="check">
                    <SelectAll selection={selection} label="Select all rewards" />
                  </th>
                )}
                <th scope="col">Partner</th>
                <th scope="col">Program</th>
                <th scope="col">For</th>
                <th scope="col" class="num">
                  Amount
                </th>
                <th scope="col">Approves after</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr key={row.id} data-reward={row.id}>
                  {canWrite && (
                    <td class="check">
                      <SelectRow selection={selection} id={row.id} label={`Select ${rowName(rows, row.id)}`} />
                    </td>
                  )}
                  <td>
                    <a href={href(`/partners/${row.partner.id}`)}>{row.partner.name ?? row.partner.externalId}</a>
                  </td>
                  <td>{row.program.name}</td>
                  <td>
                    {row.conversion.type.toLowerCase()} by <code>{row.conversion.referredExternalId}</code>
                    <div class="muted small">
                      {row.kind.toLowerCase()} to the {row.recipient.toLowerCase()}
                    </div>
                  </td>
                  <td class="num">{formatMoney(row.amount.amount, row.amount.currency)}</td>
                  <td>{formatDateTime(row.approveAfter)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function rowName(
  rows: ReadonlyArray<{
    id: string;
    amount: { amount: string; currency: string };
    partner: { name?: string | null; externalId: string };
    conversion: { referredExternalId?: string | null };
  }>,
  id: string | undefined,
): string {
  const row = rows.find((r) => r.id === id);
  if (!row) return 'a reward';
  return `the reward of ${formatMoney(row.amount.amount, row.amount.currency)} for ${row.partner.name ?? row.partner.externalId} (${row.conversion.referredExternalId})`;
}

export function Count({ n }: { n: number | undefined }) {
  if (n === undefined) return null;
  return <span class="count">{formatCount(n)}</span>;
}
