// Overview: every program with its live counters (programStatsChanged), a 30-day chart
// (Program.timeseries by DAY) and a live feed of conversions and reward status changes
// (Subscription.events, resumed after the last event read, so nothing falls in between).
import { useQuery, useSubscription } from '@urql/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { graphql } from '../../gql/index.js';
import type { FeedEventFragment, ProgramStatsFieldsFragment } from '../../gql/graphql.js';
import { formatCount, formatDateTime, formatMoney, formatMoneyList } from '../../lib/format.js';
import { href } from '../router.js';
import { LineChart, lastDays } from '../ui/chart.js';
import { Empty, Loading, RequestError } from '../ui/feedback.js';

graphql(`
  fragment ProgramStatsFields on ProgramStats {
    clicks
    referrals
    convertedReferrals
    conversions
    partners
    activePartners
    revenue {
      amount
      currency
    }
    rewards {
      created {
        amount
        currency
      }
      approved {
        amount
        currency
      }
      processed {
        amount
        currency
      }
    }
  }
`);

const ProgramsQuery = graphql(`
  query OverviewPrograms {
    programs(first: 50) {
      totalCount
      edges {
        node {
          id
          name
          type
          status
          currency
          stats {
            ...ProgramStatsFields
          }
        }
      }
    }
  }
`);

const StatsSubscription = graphql(`
  subscription OverviewProgramStats($programId: ID!) {
    programStatsChanged(programId: $programId) {
      ...ProgramStatsFields
    }
  }
`);

const ProgramStatsQuery = graphql(`
  query OverviewProgramStatsNow($id: ID!) {
    program(id: $id) {
      id
      stats {
        ...ProgramStatsFields
      }
    }
  }
`);

const TimeseriesQuery = graphql(`
  query OverviewTimeseries($id: ID!, $from: DateTime!, $to: DateTime!) {
    program(id: $id) {
      id
      timeseries(from: $from, to: $to, interval: DAY) {
        start
        clicks
        referrals
        conversions
      }
    }
  }
`);

export function OverviewPage() {
  const [result] = useQuery({ query: ProgramsQuery });
  const programs = result.data?.programs.edges.map((e) => e.node) ?? [];
  // Conversions the feed saw, per program: a card reads its counters again after each, so they
  // catch up even with a push missed (the feed resumes from its cursor, with no gap).
  const [seen, setSeen] = useState<Record<string, number>>({});
  const onEvent = (event: FeedEventFragment) => {
    const programId = event.data?.__typename === 'ConversionEventData' ? event.data.conversion.program?.id : undefined;
    if (programId) setSeen((previous) => ({ ...previous, [programId]: (previous[programId] ?? 0) + 1 }));
  };
  return (
    <>
      <h1>Overview</h1>
      <div class="overview">
        <section aria-labelledby="programs-heading" class="programs">
          <h2 id="programs-heading">Programs</h2>
          <RequestError error={result.error} />
          {result.fetching && !result.data && <Loading what="programs" />}
          {result.data && programs.length === 0 && (
            <Empty>No programs yet in this mode. Create one with the createProgram mutation.</Empty>
          )}
          {programs.map((program) => (
            <ProgramCard key={program.id} program={program} feedTick={seen[program.id] ?? 0} />
          ))}
        </section>
        <LiveFeed onEvent={onEvent} />
      </div>
    </>
  );
}

interface ProgramSummary {
  id: string;
  name: string;
  type: string;
  status: string;
  stats: ProgramStatsFieldsFragment;
}

function ProgramCard({ program, feedTick }: { program: ProgramSummary; feedTick: number }) {
  // The latest counters: those read with the page, then each push of the subscription, and a
  // fresh read after each conversion the feed shows (whichever came last).
  const [stats, setStats] = useState(program.stats);
  const [live] = useSubscription({ query: StatsSubscription, variables: { programId: program.id } });
  const [now, readAgain] = useQuery({ query: ProgramStatsQuery, variables: { id: program.id }, pause: true });
  useEffect(() => {
    if (live.data) setStats(live.data.programStatsChanged);
  }, [live.data]);
  useEffect(() => {
    if (now.data?.program) setStats(now.data.program.stats);
  }, [now.data]);
  useEffect(() => {
    if (feedTick > 0) readAgain({ requestPolicy: 'network-only' });
  }, [feedTick, readAgain]);
  const headingId = `program-${program.id}`;
  return (
    <article class="card program" aria-labelledby={headingId} data-program={program.name}>
      <header class="card-head">
        <h3 id={headingId}>{program.name}</h3>
        <span class="tag">{program.type.toLowerCase()}</span>
        <span class={`tag status-${program.status.toLowerCase()}`}>{program.status.toLowerCase()}</span>
        {live.fetching && (
          <span class="live" title="Counters update live">
            live
          </span>
        )}
      </header>
      <dl class="counters">
        <Counter name="clicks" label="Clicks" value={formatCount(stats.clicks)} />
        <Counter name="referrals" label="Referrals" value={formatCount(stats.referrals)} />
        <Counter name="converted" label="Converted" value={formatCount(stats.convertedReferrals)} />
        <Counter name="conversions" label="Conversions" value={formatCount(stats.conversions)} />
        <Counter
          name="partners"
          label="Active partners"
          value={`${formatCount(stats.activePartners)} / ${formatCount(stats.partners)}`}
        />
        <Counter name="revenue" label="Revenue" value={formatMoneyList(stats.revenue)} />
        <Counter name="rewards-created" label="Rewards to approve" value={formatMoneyList(stats.rewards.created)} />
        <Counter name="rewards-approved" label="Rewards approved" value={formatMoneyList(stats.rewards.approved)} />
      </dl>
      <ProgramChart programId={program.id} version={stats.conversions + stats.referrals + stats.clicks} />
    </article>
  );
}

function Counter({ name, label, value }: { name: string; label: string; value: string }) {
  return (
    <div class="counter" data-counter={name}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

/** The last 30 days by day; read again when the live counters move (at most once a second). */
function ProgramChart({ programId, version }: { programId: string; version: number }) {
  const range = useMemo(() => lastDays(30), []);
  const [result, reexecute] = useQuery({ query: TimeseriesQuery, variables: { id: programId, ...range } });
  const [seen, setSeen] = useState(version);
  useEffect(() => {
    if (version === seen) return;
    setSeen(version);
    reexecute({ requestPolicy: 'network-only' });
  }, [version, seen, reexecute]);
  const buckets = result.data?.program?.timeseries;
  const chart = useMemo(() => {
    if (!buckets) return null;
    return {
      x: buckets.map((b) => Date.parse(b.start) / 1000),
      series: [
        { label: 'Clicks', values: buckets.map((b) => b.clicks), color: '#2563eb' },
        { label: 'Referrals', values: buckets.map((b) => b.referrals), color: '#b45309' },
        { label: 'Conversions', values: buckets.map((b) => b.conversions), color: '#047857' },
      ],
    };
  }, [buckets]);
  if (result.error) return <RequestError error={result.error} />;
  if (!chart) return <Loading what="the chart" />;
  return <LineChart title="Last 30 days, by day" x={chart.x} series={chart.series} />;
}

graphql(`
  fragment FeedConversion on Conversion {
    id
    type
    status
    createdAt
    discardReason
    amount {
      amount
      currency
    }
    referredExternalId
    partner {
      id
      name
      externalId
    }
    program {
      id
      name
    }
  }
`);

graphql(`
  fragment FeedEvent on Event {
    id
    type
    occurredAt
    data {
      __typename
      ... on ConversionEventData {
        conversion {
          ...FeedConversion
        }
        rewards {
          id
          amount {
            amount
            currency
          }
        }
      }
      ... on RewardStatusEventData {
        from
        to
        reason
        reward {
          id
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
        }
      }
    }
  }
`);

const FEED_TYPES = ['conversion.recorded', 'reward.status_changed'];

// Query.events pages forward only (oldest first), so the feed opens with the latest conversions
// (Query.conversions, newest first) and the live stream adds what happens from then on.
const RecentQuery = graphql(`
  query OverviewRecentConversions {
    conversions(first: 20) {
      edges {
        node {
          ...FeedConversion
          rewards(first: 10) {
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

const FeedSubscription = graphql(`
  subscription OverviewFeedLive($types: [String!]) {
    events(types: $types) {
      ...FeedEvent
    }
  }
`);

const FEED_LENGTH = 50;

function LiveFeed({ onEvent }: { onEvent: (event: FeedEventFragment) => void }) {
  // Subscribed first, then the recent conversions read: nothing falls in between (a conversion in
  // both is shown once).
  const [live] = useSubscription(
    { query: FeedSubscription, variables: { types: FEED_TYPES } },
    (previous: FeedEventFragment[] = [], data) => [data.events, ...previous].slice(0, FEED_LENGTH),
  );
  const [recent] = useQuery({ query: RecentQuery, requestPolicy: 'network-only' });
  const newest = live.data?.[0];
  useEffect(() => {
    if (newest) onEvent(newest);
  }, [newest]);
  const events = useMemo(() => {
    const fromLive = live.data ?? [];
    const liveConversions = new Set(
      fromLive.flatMap((e) => (e.data?.__typename === 'ConversionEventData' ? [e.data.conversion.id] : [])),
    );
    const earlier: FeedEventFragment[] = (recent.data?.conversions.edges ?? [])
      .filter(({ node }) => !liveConversions.has(node.id))
      .map(({ node }) => ({
        id: `conversion:${node.id}`,
        type: 'conversion.recorded',
        occurredAt: node.createdAt,
        data: { __typename: 'ConversionEventData', conversion: node, rewards: node.rewards },
      }));
    return [...fromLive, ...earlier].slice(0, FEED_LENGTH);
  }, [live.data, recent.data]);
  return (
    <section class="feed card" aria-labelledby="feed-heading">
      <h2 id="feed-heading">
        Live feed{' '}
        {live.fetching && (
          <span class="live" title="New events appear here as they happen">
            live
          </span>
        )}
      </h2>
      <RequestError error={recent.error ?? live.error} />
      {!recent.data && !recent.error && <Loading what="recent conversions" />}
      {recent.data && events.length === 0 && (
        <Empty>No conversions or reward changes yet. They will appear here live.</Empty>
      )}
      <ol class="feed-list" aria-live="polite" aria-label="Conversions and reward status changes, newest first">
        {events.map((event) => (
          <FeedItem key={event.id} event={event} />
        ))}
      </ol>
    </section>
  );
}

function FeedItem({ event }: { event: FeedEventFragment }) {
  const data = event.data;
  let body = <span>{event.type}</span>;
  if (data?.__typename === 'ConversionEventData') {
    const c = data.conversion;
    body = (
      <span>
        <strong>{c.type.toLowerCase()}</strong>
        {c.amount && <> of {formatMoney(c.amount.amount, c.amount.currency)}</>} by <code>{c.referredExternalId}</code>
        {c.partner && (
          <>
            {' '}
            via <a href={href(`/partners/${c.partner.id}`)}>{c.partner.name ?? c.partner.externalId}</a>
          </>
        )}
        {c.program && <> in {c.program.name}</>}
        {c.status === 'DISCARDED' ? (
          <span class="tag status-rejected"> discarded: {c.discardReason}</span>
        ) : (
          data.rewards.length > 0 && <> — rewards {formatMoneyList(data.rewards.map((r) => r.amount))}</>
        )}
      </span>
    );
  } else if (data?.__typename === 'RewardStatusEventData') {
    const r = data.reward;
    body = (
      <span>
        Reward of {formatMoney(r.amount.amount, r.amount.currency)} for{' '}
        <a href={href(`/partners/${r.partner.id}`)}>{r.partner.name ?? r.partner.externalId}</a>{' '}
        {data.from ? (
          <>
            {data.from.toLowerCase()} → <strong>{data.to.toLowerCase()}</strong>
          </>
        ) : (
          <strong>{data.to.toLowerCase()}</strong>
        )}
        {data.reason && <> ({data.reason})</>}
      </span>
    );
  }
  return (
    <li class="feed-item" data-type={event.type}>
      <time dateTime={event.occurredAt}>{formatDateTime(event.occurredAt)}</time>
      {body}
    </li>
  );
}
