// Webhooks: the endpoints, and each endpoint's delivery log (with redelivery). ADMIN only.
import { useMutation, useQuery } from '@urql/preact';
import { useState } from 'preact/hooks';
import { graphql } from '../../gql/index.js';
import type { WebhookDeliveryStatus } from '../../gql/graphql.js';
import { formatCount, formatDateTime } from '../../lib/format.js';
import { href } from '../router.js';
import {
  Count,
  Done,
  Empty,
  Loading,
  RequestError,
  UserErrors,
  mutationErrors,
  type UserErrorLike,
} from '../ui/feedback.js';
import { FilterSelect, Paged, Table } from '../ui/paged.js';
import { useCanWrite } from '../viewer.js';

const EndpointsQuery = graphql(`
  query WebhookEndpoints {
    webhookEndpoints(first: 100) {
      totalCount
      edges {
        node {
          id
          url
          description
          enabled
          disabledReason
          consecutiveFailures
          eventTypes
          createdAt
          failed: deliveries(first: 1, status: FAILED) {
            totalCount
          }
          deliveries(first: 1) {
            totalCount
            edges {
              node {
                id
                status
                createdAt
              }
            }
          }
        }
      }
    }
  }
`);

export function WebhooksPage() {
  const [result] = useQuery({ query: EndpointsQuery });
  const rows = result.data?.webhookEndpoints.edges.map((e) => e.node) ?? [];
  return (
    <>
      <h1>Webhooks</h1>
      <section class="card" aria-labelledby="endpoints-heading">
        <h2 id="endpoints-heading">
          Endpoints <Count n={result.data?.webhookEndpoints.totalCount} />
        </h2>
        <RequestError error={result.error} />
        {result.fetching && !result.data && <Loading what="endpoints" />}
        {result.data && rows.length === 0 && (
          <Empty>No endpoints. Add one with the createWebhookEndpoint mutation.</Empty>
        )}
        {rows.length > 0 && (
          <Table columns={['URL', 'State', 'Events', { num: 'Deliveries' }, { num: 'Failed' }, 'Last delivery']}>
            {rows.map((endpoint) => (
              <tr key={endpoint.id}>
                <td>
                  <a href={href(`/webhooks/${endpoint.id}`)} class="break">
                    {endpoint.url}
                  </a>
                  {endpoint.description && <div class="muted small">{endpoint.description}</div>}
                </td>
                <td>
                  {endpoint.enabled ? (
                    <span class="tag status-active">enabled</span>
                  ) : (
                    <span class="tag status-rejected" title={endpoint.disabledReason ?? undefined}>
                      disabled
                    </span>
                  )}
                  {endpoint.consecutiveFailures > 0 && (
                    <div class="small">{endpoint.consecutiveFailures} failure(s) in a row</div>
                  )}
                </td>
                <td class="small">{endpoint.eventTypes.length === 0 ? 'all' : endpoint.eventTypes.join(', ')}</td>
                <td class="num">{formatCount(endpoint.deliveries.totalCount)}</td>
                <td class="num">{formatCount(endpoint.failed.totalCount)}</td>
                <td>
                  {endpoint.deliveries.edges[0]
                    ? `${formatDateTime(endpoint.deliveries.edges[0].node.createdAt)} (${endpoint.deliveries.edges[0].node.status.toLowerCase()})`
                    : '—'}
                </td>
              </tr>
            ))}
          </Table>
        )}
      </section>
    </>
  );
}

const EndpointQuery = graphql(`
  query WebhookEndpointLog($id: ID!, $status: WebhookDeliveryStatus, $after: String) {
    webhookEndpoint(id: $id) {
      id
      url
      description
      enabled
      disabledReason
      eventTypes
      deliveries(first: 50, after: $after, status: $status) {
        totalCount
        pageInfo {
          hasNextPage
          endCursor
        }
        edges {
          node {
            id
            status
            attempts
            createdAt
            lastAttemptAt
            nextAttemptAt
            responseStatus
            durationMs
            lastError
            event {
              id
              type
              occurredAt
            }
          }
        }
      }
    }
  }
`);

const Redeliver = graphql(`
  mutation WebhookRedeliver($input: RedeliverWebhookInput!) {
    redeliverWebhook(input: $input) {
      webhookDelivery {
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

const DELIVERY_STATUSES: WebhookDeliveryStatus[] = ['PENDING', 'SUCCEEDED', 'FAILED'];

export function WebhookPage({ id }: { id: string }) {
  const canWrite = useCanWrite();
  const [status, setStatus] = useState<WebhookDeliveryStatus | ''>('');
  const [after, setAfter] = useState<string | null>(null);
  const [result, refetch] = useQuery({
    query: EndpointQuery,
    variables: { id, status: status || null, after },
  });
  const [redelivery, redeliver] = useMutation(Redeliver);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [done, setDone] = useState<string | null>(null);
  const endpoint = result.data?.webhookEndpoint;
  if (result.fetching && !result.data) return <Loading what="the endpoint" />;
  if (result.error) return <RequestError error={result.error} />;
  if (!endpoint)
    return (
      <>
        <h1>Endpoint not found</h1>
        <p>
          <a href={href('/webhooks')}>All endpoints</a>
        </p>
      </>
    );
  const send = async (deliveryId: string) => {
    setDone(null);
    const response = await redeliver({ input: { deliveryId } });
    const found = mutationErrors(response, response.data?.redeliverWebhook.userErrors);
    setErrors(found);
    if (found.length === 0) {
      setDone('Queued for redelivery.');
      refetch({ requestPolicy: 'network-only' });
    }
  };
  const rows = endpoint.deliveries.edges.map((e) => e.node);
  return (
    <>
      <p class="crumbs">
        <a href={href('/webhooks')}>Webhooks</a> ›
      </p>
      <h1 class="break">{endpoint.url}</h1>
      <p class="muted">
        {endpoint.enabled ? 'Enabled' : `Disabled${endpoint.disabledReason ? `: ${endpoint.disabledReason}` : ''}`} ·
        events: {endpoint.eventTypes.length === 0 ? 'all' : endpoint.eventTypes.join(', ')}
      </p>
      <section class="card" aria-labelledby="deliveries-heading">
        <h2 id="deliveries-heading">
          Delivery log <Count n={endpoint.deliveries.totalCount} />
        </h2>
        <Paged
          label="Filter deliveries"
          filters={
            <FilterSelect
              label="Status"
              value={status}
              values={DELIVERY_STATUSES}
              onChange={(value) => {
                setStatus(value);
                setAfter(null);
              }}
            />
          }
          notices={
            <>
              <UserErrors errors={errors} />
              {done && <Done>{done}</Done>}
            </>
          }
          result={result}
          rows={rows}
          loading="deliveries"
          empty="No deliveries."
          pager={{ after, setAfter, pageInfo: endpoint.deliveries.pageInfo, first: 'Newest', next: 'Older' }}
        >
          <Table columns={['Event', 'Status', { num: 'Attempts' }, 'Response', 'Last attempt', canWrite && 'Actions']}>
            {rows.map((d) => (
              <tr key={d.id}>
                <td>
                  <code>{d.event.type}</code>
                  <div class="muted small">{formatDateTime(d.event.occurredAt)}</div>
                </td>
                <td>
                  <span class={`tag status-${d.status.toLowerCase()}`}>{d.status.toLowerCase()}</span>
                  {d.nextAttemptAt && <div class="small">next try {formatDateTime(d.nextAttemptAt)}</div>}
                </td>
                <td class="num">{formatCount(d.attempts)}</td>
                <td class="small">
                  {d.responseStatus ? `HTTP ${d.responseStatus}` : '—'}
                  {d.durationMs !== null && d.durationMs !== undefined && ` in ${formatCount(d.durationMs)} ms`}
                  {d.lastError && <div class="error-text">{d.lastError}</div>}
                </td>
                <td>{d.lastAttemptAt ? formatDateTime(d.lastAttemptAt) : '—'}</td>
                {canWrite && (
                  <td>
                    <button
                      type="button"
                      class="small"
                      disabled={redelivery.fetching}
                      onClick={() => send(d.id)}
                      aria-label={`Redeliver ${d.event.type} of ${formatDateTime(d.event.occurredAt)}`}
                    >
                      Redeliver
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </Table>
        </Paged>
      </section>
    </>
  );
}
