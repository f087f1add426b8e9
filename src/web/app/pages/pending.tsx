// What waits for a decision: applications (PENDING enrollments → setEnrollmentStatus), the review
// queue (→ resolveReviewItems) and rewards awaiting approval (CREATED → updateRewardStatus), each
// with checkboxes and bulk approve / reject.
import { useMutation } from '@urql/preact';
import { graphql } from '../../gql/index.js';
import { formatDateTime, formatMoney, formatMoneyList } from '../../lib/format.js';
import { href } from '../router.js';
import { BulkDecision } from '../ui/bulk-decision.js';
import { mutationErrors, type UserErrorLike } from '../ui/feedback.js';
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
  const [, setStatus] = useMutation(SetEnrollmentStatus);
  return (
    <BulkDecision
      id="applications-heading"
      title="Applications"
      query={ApplicationsQuery}
      list={(data) => data.enrollments}
      loading="applications"
      empty="No applications waiting."
      noun="applications"
      unit="application"
      canWrite={useCanWrite()}
      clearOnRefusal
      decide={async (decision, ids, reason) => {
        // setEnrollmentStatus takes one enrollment: one call each, the refusals listed together.
        const errors: UserErrorLike[] = [];
        let changed = 0;
        for (const id of ids) {
          const response = await setStatus({
            input: {
              enrollmentId: id,
              status: decision === 'approve' ? 'APPROVED' : 'REJECTED',
              reason: reason || null,
            },
          });
          const found = mutationErrors(response, response.data?.setEnrollmentStatus.userErrors);
          if (found.length === 0) changed++;
          errors.push(...found);
        }
        return { errors, changed };
      }}
      columns={['Partner', 'Program', 'Applied', 'Answers']}
      selectLabel={(row) =>
        `Select the application of ${row.partner.name ?? row.partner.externalId} to ${row.program.name}`
      }
      cells={(row) => (
        <>
          <td>
            <a href={href(`/partners/${row.partner.id}`)}>{row.partner.name ?? row.partner.externalId}</a>
            {row.partner.email && <div class="muted small">{row.partner.email}</div>}
          </td>
          <td>{row.program.name}</td>
          <td>{formatDateTime(row.appliedAt ?? row.createdAt)}</td>
          <td>
            <Answers answers={row.answers} />
          </td>
        </>
      )}
    />
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
  const [, resolve] = useMutation(ResolveReviewItems);
  return (
    <BulkDecision
      id="review-heading"
      title="Review queue"
      intro="Conversions a fraud rule flagged: their rewards wait here for a decision."
      query={ReviewQueueQuery}
      list={(data) => data.reviewQueue}
      loading="the review queue"
      empty="Nothing to review."
      noun="review items"
      unit="item"
      reasonRequired
      canWrite={useCanWrite()}
      decide={async (decision, ids, reason) => {
        const response = await resolve({
          input: { ids, decision: decision === 'approve' ? 'APPROVE' : 'REJECT', reason: reason || null },
        });
        const errors = mutationErrors(response, response.data?.resolveReviewItems.userErrors);
        return { errors, changed: errors.length === 0 ? ids.length : 0 };
      }}
      columns={['Conversion', 'Partner', 'Signals', 'Rewards held', 'Opened']}
      selectLabel={(row) => `Select the review of ${row.conversion.referredExternalId}`}
      cells={(row) => (
        <>
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
        </>
      )}
    />
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
  const [, update] = useMutation(UpdateRewardStatus);
  return (
    <BulkDecision
      id="rewards-heading"
      title="Rewards awaiting approval"
      intro="Approved automatically after the program’s hold period; approve them early or reject them here."
      query={RewardsQuery}
      list={(data) => data.rewards}
      loading="rewards"
      empty="No rewards waiting for approval."
      noun="rewards"
      unit="reward"
      canWrite={useCanWrite()}
      decide={async (decision, ids, reason, rows) => {
        const response = await update({
          input: { ids, status: decision === 'approve' ? 'APPROVED' : 'REJECTED', reason: reason || null },
        });
        const errors = mutationErrors(response, response.data?.updateRewardStatus.userErrors).map((error) =>
          // Name the row a refusal is about: field is ["input", "ids", index].
          error.field?.[2] !== undefined
            ? { ...error, message: `${rowName(rows, ids[Number(error.field[2])])}: ${error.message}` }
            : error,
        );
        return { errors, changed: errors.length === 0 ? ids.length : 0 };
      }}
      columns={['Partner', 'Program', 'For', { num: 'Amount' }, 'Approves after']}
      selectLabel={(row, rows) => `Select ${rowName(rows, row.id)}`}
      rowData={(row) => ({ 'data-reward': row.id })}
      cells={(row) => (
        <>
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
        </>
      )}
    />
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
