import type { AppPubSub, OutboxEvent } from '../pubsub.js';
import { Pace } from './turns.js';

/** What a subscriber of a tenant's live events is told. */
export interface FeedListener {
  /** A live event, as published (the same object for every listener of the tenant). */
  event(event: OutboxEvent): void;
  /** The pub/sub ended (with an error, or null when closed): no more events will come. */
  end(error: unknown): void;
}

export interface FeedMembership {
  /** Stop receiving. The tenant's pub/sub subscription ends when its last listener leaves. */
  leave(): void;
}

/**
 * One pub/sub subscription per tenant on this instance, shared by all of the tenant's subscribers.
 *
 * Yoga's pub/sub gives every subscribe() its own listener and Repeater, so one published event
 * used to wake 1000 listeners and queues for 1000 subscribers. Here the tenant's channel is
 * subscribed to once, and each event is handed to the listeners synchronously, as the same object
 * (which lets subscription executions be shared, see shared-execution.ts). With Redis this is also
 * one SUBSCRIBE per tenant and instance instead of one per subscriber.
 *
 * Listeners must be quick: they queue the event for their subscriber, or send it at once when the
 * subscriber is idle (see EventStream). One that throws is ended; the others still get the event.
 */
export class LiveFeed {
  private readonly channels = new Map<string, Channel>();

  constructor(private readonly pubsub: AppPubSub) {}

  /** Start receiving `channel`'s live events; await pubsub.listening() before reading the table. */
  join(channel: string, listener: FeedListener): FeedMembership {
    let feed = this.channels.get(channel);
    if (!feed) {
      feed = this.open(channel);
      this.channels.set(channel, feed);
    }
    const listeners = feed.listeners;
    listeners.add(listener);
    const current = feed;
    return {
      leave: () => {
        if (!listeners.delete(listener) || listeners.size > 0) return;
        // The last one: let go of the pub/sub subscription (a later join opens a new one).
        if (this.channels.get(channel) === current) this.channels.delete(channel);
        void current.live.return?.();
      },
    };
  }

  /** Tenants with at least one listener on this instance (for tests). */
  get size(): number {
    return this.channels.size;
  }

  private open(channel: string): Channel {
    const live = this.pubsub.subscribe('outbox', channel);
    const feed: Channel = { live, listeners: new Set(), backlog: [], delivering: false, ended: null };
    // Events are taken off the pub/sub at once (Yoga's repeater throws past 1024 pending ones) and
    // handed to the listeners by deliver(), a few per turn of the event loop when they come in a
    // burst (see Pace): their fan-out to every subscriber, then I/O.
    void (async () => {
      let failure: unknown = null;
      try {
        for await (const event of live) {
          feed.backlog.push(event);
          if (!feed.delivering) void this.deliver(feed);
        }
      } catch (error) {
        failure = error;
      } finally {
        if (this.channels.get(channel) === feed) this.channels.delete(channel);
        feed.ended = { failure };
        if (!feed.delivering) this.end(feed);
      }
    })();
    return feed;
  }

  private async deliver(feed: Channel): Promise<void> {
    feed.delivering = true;
    const pace = new Pace();
    // Hand-overs left in this turn of the event loop: a burst to a few listeners goes out several
    // events per turn (an idle subscriber's socket then takes them in one write, and a server that
    // fell behind catches up with fewer system calls); one event to many listeners is spread over
    // several turns, so the event loop gets to I/O and timers between slices (10 000 listeners in
    // one pass held it for 260–340 ms).
    let budget = 0;
    while (feed.backlog.length > 0) {
      const event = feed.backlog.shift()!;
      // The listeners when the event is taken: one that joins while it is handed out does not get
      // it (it is listening from then on), one that leaves before its turn is skipped.
      const listeners = [...feed.listeners];
      for (const listener of listeners) {
        if (budget === 0) {
          const wait = pace.next();
          if (wait) await wait;
          budget = HANDOFFS_PER_TURN;
        }
        if (!feed.listeners.has(listener)) continue;
        budget--;
        try {
          listener.event(event);
        } catch (error) {
          // One subscriber's failure ends that subscriber, not the others' delivery.
          feed.listeners.delete(listener);
          listener.end(error);
        }
      }
    }
    feed.delivering = false;
    if (feed.ended) this.end(feed);
  }

  private end(feed: Channel): void {
    for (const listener of feed.listeners) listener.end(feed.ended!.failure);
  }
}

interface Channel {
  live: AsyncIterator<OutboxEvent> & AsyncIterable<OutboxEvent>;
  listeners: Set<FeedListener>;
  /** Taken off the pub/sub, not yet handed to the listeners. */
  backlog: OutboxEvent[];
  delivering: boolean;
  /** The pub/sub subscription ended (failure: null when it was closed). */
  ended: { failure: unknown } | null;
}

/**
 * Listener calls in one turn of the event loop: 10 events of a burst to 100 subscribers, or a tenth
 * of one event to 10 000 (each call may send a message to a socket: ~10–30 µs).
 */
export const HANDOFFS_PER_TURN = 1000;

const feeds = new WeakMap<AppPubSub, LiveFeed>();

/** The live feed of an app's pub/sub (one per pub/sub, created on first use). */
export function liveFeedOf(pubsub: AppPubSub): LiveFeed {
  let feed = feeds.get(pubsub);
  if (!feed) {
    feed = new LiveFeed(pubsub);
    feeds.set(pubsub, feed);
  }
  return feed;
}
