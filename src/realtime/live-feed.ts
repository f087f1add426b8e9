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
    while (feed.backlog.length > 0) {
      const wait = pace.next();
      if (wait) await wait;
      // A burst goes out EVENTS_PER_TURN events at a time: an idle subscriber's socket then takes
      // them in one write (see websocket-server.ts), a server that fell behind catches
      // up with fewer system calls, and the event loop still gets to I/O between batches.
      for (let n = 0; n < EVENTS_PER_TURN && feed.backlog.length > 0; n++) {
        const event = feed.backlog.shift()!;
        for (const listener of feed.listeners) {
          try {
            listener.event(event);
          } catch (error) {
            // One subscriber's failure ends that subscriber, not the others' delivery.
            feed.listeners.delete(listener);
            listener.end(error);
          }
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

/** Events of a burst handed to the listeners in one turn of the event loop. */
const EVENTS_PER_TURN = 10;

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
