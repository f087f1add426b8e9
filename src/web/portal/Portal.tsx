// The partner portal: everything a PARTNER token may read about its own partner (links, counters,
// balances, payouts, a 30-day chart) and its live events, on the public GraphQL API only.
import type { CombinedError } from '@urql/core';
import { useMutation, useQuery, useSubscription } from '@urql/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { graphql } from '../gql/index.js';
import type { PortalDataQuery, PortalEventsSubscription } from '../gql/graphql.js';
import { formatCount, formatDateTime, formatMoney, formatMoneyList } from '../lib/format.js';
import { ActivityChart } from './ActivityChart.js';
import { CopyButton } from './CopyButton.js';

const PortalData = graphql(`
  query PortalData($from: DateTime!, $to: DateTime!) {
    viewer {
      mode
      workspace {
        id
        name
      }
      partner {
        id
        name
        stats {
          clicks
          totalReferrals
          successfulReferrals
          totalRewards {
            amount
            currency
          }
        }
        balances {
          currency
          pending {
            amount
            currency
          }
          available {
            amount
            currency
          }
          paid {
            amount
            currency
          }
        }
        links {
          id
          url
          code
          uniqueClicks
          disabled
          program {
            id
            name
          }
        }
        enrollments {
          id
          status
          program {
            id
            name
            status
            destinationUrl
            allowedDestinationHosts
          }
        }
        payouts(first: 20) {
          edges {
            node {
              id
              status
              createdAt
              paidAt
              method
              amount {
                amount
                currency
              }
            }
          }
        }
        rewards(first: 10) {
          edges {
            node {
              id
              status
              recipient
              createdAt
              amount {
                amount
                currency
              }
              program {
                id
                name
              }
            }
          }
        }
        timeseries(from: $from, to: $to, interval: DAY) {
          start
          clicks
          conversions
        }
      }
    }
  }
`);

const PortalEvents = graphql(`
  subscription PortalEvents {
    events {
      id
      type
      occurredAt
      data {
        __typename
        ... on RewardEventData {
          reward {
            id
            status
            amount {
              amount
              currency
            }
            program {
              id
              name
            }
          }
        }
        ... on RewardStatusEventData {
          rewardTo: to
          reward {
            id
            amount {
              amount
              currency
            }
            program {
              id
              name
            }
          }
        }
        ... on ConversionEventData {
          conversion {
            id
            type
            status
          }
        }
        ... on LinkEventData {
          link {
            id
            code
          }
        }
        ... on PayoutEventData {
          payoutTo: to
          payout {
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

const CreateLink = graphql(`
  mutation PortalCreateLink($input: CreateReferralLinkInput!) {
    createReferralLink(input: $input) {
      link {
        id
        url
        code
      }
      userErrors {
        code
        field
        message
      }
    }
  }
`);

type Partner = NonNullable<PortalDataQuery['viewer']['partner']>;
type LiveEvent = PortalEventsSubscription['events'];

const DAY_MS = 86_400_000;

/** The last 30 UTC days, today included: [today − 29 days, tomorrow). */
function last30Days(): { from: string; to: string } {
  const tomorrow = Math.floor(Date.now() / DAY_MS) * DAY_MS + DAY_MS;
  return { from: new Date(tomorrow - 30 * DAY_MS).toISOString(), to: new Date(tomorrow).toISOString() };
}

/** True when the server refused the token (expired, revoked, or not a token at all). */
function refusedCredential(error: CombinedError | undefined): boolean {
  if (!error) return false;
  const response = error.response as { status?: number } | undefined;
  // The WebSocket is closed with 4403 when the token expires or is revoked while the page is open.
  const closed = error.networkError as { code?: number } | undefined;
  return (
    response?.status === 401 ||
    closed?.code === 4403 ||
    error.graphQLErrors.some((e) => e.extensions?.['code'] === 'UNAUTHENTICATED')
  );
}

export function LinkProblem({ expired }: { expired: boolean }) {
  return (
    <main class="portal">
      <h1>Partner portal</h1>
      <div class="notice" role="alert">
        <p>
          <strong>
            {expired ? 'This portal link has expired or is no longer valid.' : 'This portal link is incomplete.'}
          </strong>
        </p>
        <p>Please ask the company for a new link to your partner portal.</p>
      </div>
    </main>
  );
}

export function Portal({ onRefused }: { onRefused: () => void }) {
  const range = useMemo(last30Days, []);
  const [{ data, error, fetching }, refetch] = useQuery({ query: PortalData, variables: range });
  const [live] = useSubscription({ query: PortalEvents }, (previous: LiveEvent[] = [], next) =>
    [next.events, ...previous].slice(0, 20),
  );
  const latest = live.data?.[0]?.id;
  // Each live event changes what the page shows (counters, balances, lists): read it again.
  useEffect(() => {
    if (latest) refetch({ requestPolicy: 'network-only' });
  }, [latest, refetch]);
  const refused = refusedCredential(error) || refusedCredential(live.error);
  useEffect(() => {
    if (refused) onRefused();
  }, [refused, onRefused]);

  if (refused) return <LinkProblem expired />;
  const partner = data?.viewer.partner;
  if (!partner) {
    return (
      <main class="portal">
        <h1>Partner portal</h1>
        {error ? (
          <p class="notice" role="alert">
            The portal could not load: {error.message}. Reload the page to try again.
          </p>
        ) : (
          <p aria-live="polite">{fetching ? 'Loading…' : 'This link does not belong to a partner.'}</p>
        )}
      </main>
    );
  }
  return (
    <main class="portal">
      <header class="portal-header">
        <div>
          <p class="eyebrow">{data.viewer.workspace.name} partner portal</p>
          <h1>{partner.name ?? 'Your partner portal'}</h1>
        </div>
        {data.viewer.mode === 'TEST' && <span class="badge">Test mode</span>}
      </header>
      <Stats partner={partner} />
      <div class="columns">
        <Links partner={partner} />
        <LiveFeed events={live.data ?? []} connected={!live.error} />
      </div>
      <ActivityChart series={partner.timeseries} />
      <Balances partner={partner} />
      <div class="columns">
        <Rewards partner={partner} />
        <Payouts partner={partner} />
      </div>
    </main>
  );
}

function Stats({ partner }: { partner: Partner }) {
  const { stats } = partner;
  return (
    <section aria-labelledby="stats-title">
      <h2 id="stats-title">Your results</h2>
      <dl class="stats" data-testid="stats">
        <div>
          <dt>Clicks</dt>
          <dd data-stat="clicks">{formatCount(stats.clicks)}</dd>
        </div>
        <div>
          <dt>Referrals</dt>
          <dd data-stat="referrals">{formatCount(stats.totalReferrals)}</dd>
        </div>
        <div>
          <dt>Converted referrals</dt>
          <dd data-stat="conversions">{formatCount(stats.successfulReferrals)}</dd>
        </div>
        <div>
          <dt>Rewards earned</dt>
          <dd data-stat="rewards">{formatMoneyList(stats.totalRewards)}</dd>
        </div>
      </dl>
    </section>
  );
}

function Links({ partner }: { partner: Partner }) {
  const programs = partner.enrollments
    .filter((e) => e.status === 'APPROVED' && e.program.status !== 'ARCHIVED')
    .map((e) => e.program);
  return (
    <section aria-labelledby="links-title" class="card">
      <h2 id="links-title">Your links</h2>
      {partner.links.length === 0 ? (
        <p>You have no referral link yet.</p>
      ) : (
        <ul class="links">
          {partner.links.map((link) => (
            <li key={link.id} class={link.disabled ? 'link disabled' : 'link'}>
              <p class="link-program">
                {link.program.name}
                {link.disabled && <span class="badge muted">Disabled</span>}
              </p>
              <p class="link-url">
                <a href={link.url} rel="noreferrer noopener" target="_blank">
                  {link.url}
                </a>
              </p>
              <p class="link-meta">
                <span>
                  Code <code>{link.code}</code>
                </span>
                <span>
                  {formatCount(link.uniqueClicks)} {link.uniqueClicks === 1 ? 'click' : 'clicks'}
                </span>
                {!link.disabled && <CopyButton text={link.url} label={`Copy link ${link.code}`} />}
              </p>
            </li>
          ))}
        </ul>
      )}
      {programs.length > 0 && <CreateLinkForm partnerId={partner.id} programs={programs} />}
    </section>
  );
}

type LinkProgram = Partner['enrollments'][number]['program'];

function CreateLinkForm({ partnerId, programs }: { partnerId: string; programs: LinkProgram[] }) {
  const [programId, setProgramId] = useState(programs[0]!.id);
  const [code, setCode] = useState('');
  const [destination, setDestination] = useState('');
  const [result, createLink] = useMutation(CreateLink);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const program = programs.find((p) => p.id === programId) ?? programs[0]!;
  const hosts = program.allowedDestinationHosts.length
    ? program.allowedDestinationHosts.join(', ')
    : program.destinationUrl
      ? new URL(program.destinationUrl).host
      : null;

  async function submit(event: Event) {
    event.preventDefault();
    setMessage(null);
    const answer = await createLink({
      input: {
        partnerId,
        programId,
        ...(code.trim() ? { code: code.trim() } : {}),
        ...(destination.trim() ? { destinationUrl: destination.trim() } : {}),
      },
    });
    const payload = answer.data?.createReferralLink;
    if (answer.error) setMessage({ ok: false, text: answer.error.message });
    else if (payload?.userErrors.length)
      setMessage({ ok: false, text: payload.userErrors.map((e) => e.message).join(' ') });
    else if (payload?.link) {
      setMessage({ ok: true, text: `Created ${payload.link.url}` });
      setCode('');
      setDestination('');
    }
  }

  return (
    <form class="create-link" onSubmit={submit} aria-labelledby="create-link-title">
      <h3 id="create-link-title">Create a link</h3>
      {programs.length > 1 && (
        <label>
          Program
          <select value={programId} onChange={(e) => setProgramId(e.currentTarget.value)}>
            {programs.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </label>
      )}
      <label>
        Code <span class="hint">(optional: 3–32 letters, digits, “_” or “-”)</span>
        <input
          name="code"
          value={code}
          onInput={(e) => setCode(e.currentTarget.value)}
          pattern="[A-Za-z0-9_\-]{3,32}"
          autocomplete="off"
          spellcheck={false}
        />
      </label>
      <label>
        Destination <span class="hint">(optional{hosts ? `: a page on ${hosts}` : ''})</span>
        <input
          name="destinationUrl"
          type="url"
          value={destination}
          onInput={(e) => setDestination(e.currentTarget.value)}
          placeholder="Empty: the program’s page"
        />
      </label>
      <button type="submit" disabled={result.fetching}>
        {result.fetching ? 'Creating…' : 'Create link'}
      </button>
      <p role="status" class={message && !message.ok ? 'form-message error' : 'form-message'}>
        {message?.text}
      </p>
    </form>
  );
}

function describeEvent(event: LiveEvent): string {
  const data = event.data;
  switch (data?.__typename) {
    case 'RewardEventData':
      return `New reward: ${formatMoney(data.reward.amount.amount, data.reward.amount.currency)} in ${data.reward.program.name}`;
    case 'RewardStatusEventData':
      return `Reward of ${formatMoney(data.reward.amount.amount, data.reward.amount.currency)} is now ${data.rewardTo.toLowerCase()}`;
    case 'ConversionEventData':
      return `A referred customer’s ${data.conversion.type.toLowerCase()} was recorded`;
    case 'LinkEventData':
      return `Link ${data.link.code}: ${event.type === 'link.disabled' ? 'disabled' : 'created'}`;
    case 'PayoutEventData':
      return `Payout of ${formatMoney(data.payout.amount.amount, data.payout.amount.currency)} is ${data.payoutTo.toLowerCase()}`;
    default:
      return event.type.replace(/[._]/g, ' ');
  }
}

function LiveFeed({ events, connected }: { events: LiveEvent[]; connected: boolean }) {
  return (
    <section aria-labelledby="feed-title" class="card">
      <h2 id="feed-title">
        Live activity <span class={connected ? 'dot live' : 'dot'} aria-hidden="true" />
      </h2>
      {events.length === 0 ? (
        <p class="muted">
          {connected ? 'New clicks, referrals and rewards appear here as they happen.' : 'Reconnecting…'}
        </p>
      ) : null}
      <ol class="feed" aria-live="polite" data-testid="feed">
        {events.map((event) => (
          <li key={event.id} data-type={event.type}>
            <span>{describeEvent(event)}</span>
            <time dateTime={event.occurredAt}>{formatDateTime(event.occurredAt)}</time>
          </li>
        ))}
      </ol>
    </section>
  );
}

function Balances({ partner }: { partner: Partner }) {
  return (
    <section aria-labelledby="balances-title">
      <h2 id="balances-title">Balance</h2>
      {partner.balances.length === 0 ? (
        <p>No money yet: your rewards will show here.</p>
      ) : (
        <div class="table-wrap">
          <table data-testid="balances">
            <caption class="sr-only">Your balance in each currency</caption>
            <thead>
              <tr>
                <th scope="col">Currency</th>
                <th scope="col">Pending</th>
                <th scope="col">Available</th>
                <th scope="col">Paid</th>
              </tr>
            </thead>
            <tbody>
              {partner.balances.map((b) => (
                <tr key={b.currency}>
                  <th scope="row">{b.currency}</th>
                  <td>{formatMoney(b.pending.amount, b.pending.currency)}</td>
                  <td>{formatMoney(b.available.amount, b.available.currency)}</td>
                  <td>{formatMoney(b.paid.amount, b.paid.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p class="hint">
        Pending rewards wait for the program’s hold period or an approval; available money goes into your next payout.
      </p>
    </section>
  );
}

function Rewards({ partner }: { partner: Partner }) {
  const rewards = partner.rewards.edges.map((e) => e.node);
  return (
    <section aria-labelledby="rewards-title" class="card">
      <h2 id="rewards-title">Recent rewards</h2>
      {rewards.length === 0 ? (
        <p>No rewards yet.</p>
      ) : (
        <ul class="rows" data-testid="rewards">
          {rewards.map((r) => (
            <li key={r.id}>
              <span>
                <strong>{formatMoney(r.amount.amount, r.amount.currency)}</strong> · {r.program.name}
                {r.recipient === 'REFERRED' && <span class="hint"> · your referred customer’s</span>}
              </span>
              <span class={`status status-${r.status.toLowerCase()}`}>{r.status.toLowerCase()}</span>
              <time dateTime={r.createdAt}>{formatDateTime(r.createdAt)}</time>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Payouts({ partner }: { partner: Partner }) {
  const payouts = partner.payouts.edges.map((e) => e.node);
  return (
    <section aria-labelledby="payouts-title" class="card">
      <h2 id="payouts-title">Payouts</h2>
      {payouts.length === 0 ? (
        <p>No payouts yet.</p>
      ) : (
        <ul class="rows" data-testid="payouts">
          {payouts.map((p) => (
            <li key={p.id}>
              <span>
                <strong>{formatMoney(p.amount.amount, p.amount.currency)}</strong>
                {p.method ? ` · ${p.method}` : ''}
              </span>
              <span class={`status status-${p.status.toLowerCase()}`}>{p.status.toLowerCase()}</span>
              <time dateTime={p.paidAt ?? p.createdAt}>{formatDateTime(p.paidAt ?? p.createdAt)}</time>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
