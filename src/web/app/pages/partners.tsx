// Partners: the list with search and a status filter; a partner's page with links, stats, a
// 30-day chart, balances, the ledger statement of a period, and payouts.
import { useMutation, useQuery } from '@urql/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { graphql } from '../../gql/index.js';
import type { PartnerStatus } from '../../gql/graphql.js';
import { formatCount, formatDateTime, formatMoney, formatMoneyList } from '../../lib/format.js';
import { href } from '../router.js';
import { LineChart, lastDays } from '../ui/chart.js';
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
import { PayoutTable } from './payouts.js';

const PartnersQuery = graphql(`
  query PartnersList($search: String, $status: PartnerStatus, $after: String) {
    partners(first: 50, after: $after, search: $search, status: $status) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          id
          name
          email
          externalId
          status
          createdAt
          stats {
            clicks
            totalReferrals
            successfulReferrals
            totalRewards {
              amount
              currency
            }
          }
        }
      }
    }
  }
`);

const PARTNER_STATUSES: PartnerStatus[] = ['ACTIVE', 'INACTIVE', 'BANNED'];

export function PartnersPage() {
  const [typed, setTyped] = useState('');
  const [search, setSearch] = useState('');
  const [status, setStatus] = useState<PartnerStatus | ''>('');
  const [after, setAfter] = useState<string | null>(null);
  // Search as one types, once the typing pauses.
  useEffect(() => {
    const timer = setTimeout(() => setSearch(typed.trim()), 250);
    return () => clearTimeout(timer);
  }, [typed]);
  // A new search starts at the first page; the pause after the page opens (nothing typed) is not one.
  useEffect(() => setAfter(null), [search]);
  const [result] = useQuery({
    query: PartnersQuery,
    variables: { search: search || null, status: status || null, after },
  });
  const rows = result.data?.partners.edges.map((e) => e.node) ?? [];
  return (
    <>
      <h1>Partners</h1>
      <section class="card" aria-labelledby="partners-heading">
        <h2 id="partners-heading" class="visually-hidden">
          Partner list
        </h2>
        <Paged
          label="Search partners"
          filters={
            <>
              <label>
                Search
                <input
                  type="search"
                  value={typed}
                  placeholder="Name, email or external id"
                  maxLength={100}
                  onInput={(e) => setTyped(e.currentTarget.value)}
                />
              </label>
              <FilterSelect
                label="Status"
                value={status}
                values={PARTNER_STATUSES}
                onChange={(value) => {
                  setStatus(value);
                  setAfter(null);
                }}
              />
              <span class="muted" aria-live="polite">
                <Count n={result.data?.partners.totalCount} /> partner(s)
              </span>
            </>
          }
          result={result}
          rows={rows}
          loading="partners"
          empty="No partner matches."
          pager={{ after, setAfter, pageInfo: result.data?.partners.pageInfo, first: 'First page', next: 'Next page' }}
        >
          <Table
            columns={[
              'Partner',
              'Status',
              { num: 'Clicks' },
              { num: 'Referrals' },
              { num: 'Converted' },
              { num: 'Rewards' },
              'Joined',
            ]}
          >
            {rows.map((p) => (
              <tr key={p.id}>
                <td>
                  <a href={href(`/partners/${p.id}`)}>{p.name ?? p.externalId}</a>
                  <div class="muted small">{p.email ?? p.externalId}</div>
                </td>
                <td>
                  <span class={`tag status-${p.status.toLowerCase()}`}>{p.status.toLowerCase()}</span>
                </td>
                <td class="num">{formatCount(p.stats.clicks)}</td>
                <td class="num">{formatCount(p.stats.totalReferrals)}</td>
                <td class="num">{formatCount(p.stats.successfulReferrals)}</td>
                <td class="num">{formatMoneyList(p.stats.totalRewards)}</td>
                <td>{formatDateTime(p.createdAt)}</td>
              </tr>
            ))}
          </Table>
        </Paged>
      </section>
    </>
  );
}

const PartnerQuery = graphql(`
  query PartnerPage($id: ID!, $from: DateTime!, $to: DateTime!) {
    partner(id: $id) {
      id
      name
      email
      externalId
      status
      createdAt
      stats {
        clicks
        totalReferrals
        successfulReferrals
        pendingReferrals
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
      links(first: 100) {
        id
        code
        url
        clicks
        uniqueClicks
        disabled
        program {
          id
          name
        }
      }
      timeseries(from: $from, to: $to, interval: DAY) {
        start
        clicks
        referrals
        conversions
      }
      payouts(first: 50) {
        totalCount
        edges {
          node {
            ...PayoutRow
          }
        }
      }
    }
  }
`);

export function PartnerPage({ id }: { id: string }) {
  const canWrite = useCanWrite();
  const range = useMemo(() => lastDays(30), []);
  const [result, refetch] = useQuery({ query: PartnerQuery, variables: { id, ...range } });
  const partner = result.data?.partner;
  const reload = () => refetch({ requestPolicy: 'network-only' });
  const chart = useMemo(() => {
    if (!partner) return null;
    const buckets = partner.timeseries;
    return {
      x: buckets.map((b) => Date.parse(b.start) / 1000),
      series: [
        { label: 'Clicks', values: buckets.map((b) => b.clicks), color: '#2563eb' },
        { label: 'Referrals', values: buckets.map((b) => b.referrals), color: '#b45309' },
        { label: 'Conversions', values: buckets.map((b) => b.conversions), color: '#047857' },
      ],
    };
  }, [partner]);
  if (result.fetching && !result.data) return <Loading what="the partner" />;
  if (result.error) return <RequestError error={result.error} />;
  if (!partner)
    return (
      <>
        <h1>Partner not found</h1>
        <p>
          There is no such partner in this workspace and mode. <a href={href('/partners')}>All partners</a>
        </p>
      </>
    );
  return (
    <>
      <p class="crumbs">
        <a href={href('/partners')}>Partners</a> ›
      </p>
      <h1>
        {partner.name ?? partner.externalId}{' '}
        <span class={`tag status-${partner.status.toLowerCase()}`}>{partner.status.toLowerCase()}</span>
      </h1>
      <p class="muted">
        {partner.email ?? 'no email'} · external id <code>{partner.externalId}</code> · since{' '}
        {formatDateTime(partner.createdAt)}
      </p>
      <div class="grid-2">
        <section class="card" aria-labelledby="partner-stats">
          <h2 id="partner-stats">Stats</h2>
          <dl class="counters">
            <div class="counter">
              <dt>Clicks</dt>
              <dd>{formatCount(partner.stats.clicks)}</dd>
            </div>
            <div class="counter">
              <dt>Referrals</dt>
              <dd>{formatCount(partner.stats.totalReferrals)}</dd>
            </div>
            <div class="counter">
              <dt>Converted</dt>
              <dd>{formatCount(partner.stats.successfulReferrals)}</dd>
            </div>
            <div class="counter">
              <dt>Pending</dt>
              <dd>{formatCount(partner.stats.pendingReferrals)}</dd>
            </div>
            <div class="counter">
              <dt>Rewards</dt>
              <dd>{formatMoneyList(partner.stats.totalRewards)}</dd>
            </div>
          </dl>
          {chart && <LineChart title="Last 30 days, by day" x={chart.x} series={chart.series} />}
        </section>
        <section class="card" aria-labelledby="partner-balances">
          <h2 id="partner-balances">Cash balances</h2>
          {partner.balances.length === 0 ? (
            <Empty>No cash rewards yet.</Empty>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Currency</th>
                  <th scope="col" class="num">
                    Pending
                  </th>
                  <th scope="col" class="num">
                    Available
                  </th>
                  <th scope="col" class="num">
                    Paid
                  </th>
                </tr>
              </thead>
              <tbody>
                {partner.balances.map((b) => (
                  <tr key={b.currency}>
                    <th scope="row">{b.currency}</th>
                    <td class="num">{formatMoney(b.pending.amount, b.pending.currency)}</td>
                    <td class="num">{formatMoney(b.available.amount, b.available.currency)}</td>
                    <td class="num">{formatMoney(b.paid.amount, b.paid.currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {canWrite && partner.balances.length > 0 && (
            <PayOut partnerId={partner.id} currencies={partner.balances.map((b) => b.currency)} onPaid={reload} />
          )}
        </section>
      </div>
      <section class="card" aria-labelledby="partner-links">
        <h2 id="partner-links">Links</h2>
        {partner.links.length === 0 ? (
          <Empty>No links.</Empty>
        ) : (
          <Table columns={['Link', 'Program', { num: 'Clicks' }, { num: 'Unique' }, 'State']}>
            {partner.links.map((link) => (
              <tr key={link.id}>
                <td>
                  <code class="break">{link.url}</code>
                </td>
                <td>{link.program.name}</td>
                <td class="num">{formatCount(link.clicks)}</td>
                <td class="num">{formatCount(link.uniqueClicks)}</td>
                <td>{link.disabled ? 'disabled' : 'active'}</td>
              </tr>
            ))}
          </Table>
        )}
      </section>
      <Statement partnerId={partner.id} currencies={partner.balances.map((b) => b.currency)} />
      <section class="card" aria-labelledby="partner-payouts">
        <h2 id="partner-payouts">
          Payouts <Count n={partner.payouts.totalCount} />
        </h2>
        {partner.payouts.edges.length === 0 ? (
          <Empty>No payouts yet.</Empty>
        ) : (
          <PayoutTable
            rows={partner.payouts.edges.map((e) => e.node)}
            onChanged={reload}
            canWrite={canWrite}
            showPartner={false}
          />
        )}
      </section>
    </>
  );
}

const CreatePayoutMutation = graphql(`
  mutation PartnerCreatePayout($input: CreatePayoutInput!) {
    createPayout(input: $input) {
      payout {
        id
        amount {
          amount
          currency
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

function PayOut({ partnerId, currencies, onPaid }: { partnerId: string; currencies: string[]; onPaid: () => void }) {
  const [currency, setCurrency] = useState(currencies[0] ?? '');
  const [state, create] = useMutation(CreatePayoutMutation);
  const [errors, setErrors] = useState<UserErrorLike[]>([]);
  const [done, setDone] = useState<string | null>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setDone(null);
    const response = await create({ input: { partnerId, currency } });
    const found = mutationErrors(response, response.data?.createPayout.userErrors);
    setErrors(found);
    const payout = response.data?.createPayout.payout;
    if (found.length === 0 && payout) {
      setDone(`Payout of ${formatMoney(payout.amount.amount, payout.amount.currency)} created (pending).`);
      onPaid();
    }
  };
  return (
    <form class="form-row" onSubmit={submit}>
      <label>
        Pay out the available balance in
        <select value={currency} onChange={(e) => setCurrency(e.currentTarget.value)}>
          {currencies.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" class="primary" disabled={state.fetching}>
        Create payout
      </button>
      <UserErrors errors={errors} />
      {done && <Done>{done}</Done>}
    </form>
  );
}

const StatementQuery = graphql(`
  query PartnerStatement($id: ID!, $currency: String!, $from: DateTime!, $to: DateTime!) {
    partner(id: $id) {
      id
      statement(currency: $currency, from: $from, to: $to) {
        opening {
          available {
            amount
            currency
          }
          pending {
            amount
            currency
          }
          paid {
            amount
            currency
          }
        }
        closing {
          available {
            amount
            currency
          }
          pending {
            amount
            currency
          }
          paid {
            amount
            currency
          }
        }
        entries(first: 100) {
          totalCount
          edges {
            node {
              id
              type
              createdAt
              note
              amount {
                amount
                currency
              }
            }
          }
        }
      }
    }
  }
`);

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function Statement({ partnerId, currencies }: { partnerId: string; currencies: string[] }) {
  const today = new Date();
  const [currency, setCurrency] = useState(currencies[0] ?? '');
  const [fromDay, setFromDay] = useState(isoDay(new Date(today.getTime() - 30 * 86_400_000)));
  const [toDay, setToDay] = useState(isoDay(today));
  const valid = currency.length === 3 && fromDay && toDay && fromDay <= toDay;
  const from = `${fromDay}T00:00:00.000Z`;
  // Through the end of the last day chosen.
  const to = valid ? new Date(Date.parse(`${toDay}T00:00:00.000Z`) + 86_400_000).toISOString() : from;
  const [result] = useQuery({
    query: StatementQuery,
    variables: { id: partnerId, currency, from, to },
    pause: !valid,
  });
  const statement = result.data?.partner?.statement;
  return (
    <section class="card" aria-labelledby="partner-statement">
      <h2 id="partner-statement">Ledger statement</h2>
      <form class="filters" aria-label="Statement period" onSubmit={(e) => e.preventDefault()}>
        <label for="statement-currency">
          Currency
          {currencies.length > 0 ? (
            <select id="statement-currency" value={currency} onChange={(e) => setCurrency(e.currentTarget.value)}>
              {currencies.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          ) : (
            <input
              id="statement-currency"
              type="text"
              maxLength={3}
              size={4}
              value={currency}
              onInput={(e) => setCurrency(e.currentTarget.value.toUpperCase())}
            />
          )}
        </label>
        <label>
          From
          <input type="date" value={fromDay} onInput={(e) => setFromDay(e.currentTarget.value)} />
        </label>
        <label>
          To (inclusive)
          <input type="date" value={toDay} onInput={(e) => setToDay(e.currentTarget.value)} />
        </label>
      </form>
      {!valid && <p class="muted">Choose a currency and a period.</p>}
      <RequestError error={result.error} />
      {valid && result.fetching && !result.data && <Loading what="the statement" />}
      {statement && (
        <>
          <table class="summary">
            <thead>
              <tr>
                <th scope="col" />
                <th scope="col" class="num">
                  Pending
                </th>
                <th scope="col" class="num">
                  Available
                </th>
                <th scope="col" class="num">
                  Paid
                </th>
              </tr>
            </thead>
            <tbody>
              {(['opening', 'closing'] as const).map((side) => (
                <tr key={side}>
                  <th scope="row">{side === 'opening' ? 'Opening' : 'Closing'}</th>
                  <td class="num">{formatMoney(statement[side].pending.amount, statement[side].pending.currency)}</td>
                  <td class="num">
                    {formatMoney(statement[side].available.amount, statement[side].available.currency)}
                  </td>
                  <td class="num">{formatMoney(statement[side].paid.amount, statement[side].paid.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {statement.entries.edges.length === 0 ? (
            <Empty>No ledger entries in this period.</Empty>
          ) : (
            <Table columns={['When', 'Entry', { num: 'Amount' }, 'Note']}>
              {statement.entries.edges.map(({ node }) => (
                <tr key={node.id}>
                  <td>{formatDateTime(node.createdAt)}</td>
                  <td>{node.type.toLowerCase().replaceAll('_', ' ')}</td>
                  <td class="num">{formatMoney(node.amount.amount, node.amount.currency)}</td>
                  <td>{node.note ?? ''}</td>
                </tr>
              ))}
            </Table>
          )}
        </>
      )}
    </section>
  );
}
