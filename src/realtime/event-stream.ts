import type { OutboxEvent } from '../pubsub.js';
import type { FeedListener, FeedMembership } from './live-feed.js';
import { PUSH_PORT, type PushPort } from './push-port.js';
import { Pace } from './turns.js';

/** Live events one subscriber may be behind by; newer ones are dropped, then read back from the table. */
export const MAX_QUEUED = 1000;

/** Stored events read per query. */
export const STORED_PAGE = 100;

/** Where a tenant's events come from: its live feed and its table. */
export interface EventSource {
  /** Start receiving live events (the tenant's LiveFeed). */
  join(listener: FeedListener): FeedMembership;
  /** Resolves once every event committed from now on reaches the listener: then the table may be read. */
  listening(): Promise<void>;
  /** Stored events after `after` and, when given, before `before` (both exclusive), oldest first, at most `limit`. */
  read(after: bigint, limit: number, before?: bigint): Promise<OutboxEvent[]>;
}

export interface EventStreamOptions {
  /** Replay the stored events after this sequence first; null: live events only. */
  after: bigint | null;
  /** The events this subscriber gets (its types, its partner); the others only advance the sequence. */
  wanted: (event: OutboxEvent) => boolean;
  /** Ends the stream at once, even while it waits for an event (see endOnReturn). */
  stop?: StreamStop;
  /** Live events for an idle, caught-up subscriber go through here synchronously (see PushPort). */
  port?: PushPort<OutboxEvent>;
  /** MAX_QUEUED unless a test says otherwise. */
  maxQueued?: number;
  /** STORED_PAGE unless a test says otherwise. */
  pageSize?: number;
}

/**
 * A tenant's events, optionally after a cursor: first the stored events after it, then live ones,
 * with no gap and no duplicate at the seam (the subscription is listening before the table is
 * read, duplicates are dropped by sequence, and a jump in sequence is back-filled from the table).
 *
 * Live events come from the tenant's shared feed (one pub/sub subscription per tenant and
 * instance, see live-feed.ts), which hands each one at once to this subscriber's own queue, so a
 * subscriber that is slow to consume (a slow client, slow resolvers) never makes the pub/sub buffer
 * for it. The queue is bounded: when it is full, newer events are dropped and read back from the
 * table once it has drained. A subscriber that is idle and caught up gets the next live event
 * straight through `port` instead (see PushPort); queued and replayed events are worked off one per
 * turn of the event loop (see Pace).
 *
 * `events()` is the stream; the feed calls `event` and `end` (this is its listener).
 */
export class EventStream implements FeedListener {
  /** Live events received and not yet taken by the loop, in the order they came. */
  private readonly queue: OutboxEvent[] = [];
  /** The sequence of the last event taken (yielded or filtered out); null: live only, nothing taken yet. */
  private last: bigint | null;
  /** The queue was full and live events were dropped: read them back from the table once it is empty. */
  private dropped = false;
  /** No live event will come any more (the feed ended, or the stream was stopped). */
  private ended = false;
  /** Why the feed ended (null: it was closed); thrown once the queue is worked off. */
  private failure: unknown = null;
  /** Stopped by `stop`: ends the loop at once, queued events or not. */
  private stopped = false;
  /** Set while the loop waits for a live event with nothing queued: the only time the push port is used. */
  private wake: (() => void) | null = null;
  private readonly pace = new Pace();

  constructor(
    private readonly source: EventSource,
    private readonly options: EventStreamOptions,
  ) {
    this.last = options.after;
  }

  /** From the feed: a live event. */
  event(event: OutboxEvent): void {
    const consumer = this.options.port?.consumer;
    if (this.wake && consumer && this.queue.length === 0 && !this.stopped) {
      // What the loop would do with this event, without its promises (see PushPort).
      const sequence = BigInt(event.sequence);
      if (this.last !== null && sequence <= this.last) return; // a duplicate
      if (this.last === null || sequence === this.last + 1n) {
        if (!this.options.wanted(event) || consumer(event)) {
          this.last = sequence;
          return;
        }
      }
      // A gap to back-fill, or an execution that is not synchronous: the loop takes it.
    }
    if (this.queue.length < (this.options.maxQueued ?? MAX_QUEUED)) this.queue.push(event);
    else this.dropped = true;
    this.wake?.();
  }

  /** From the feed: it ended (with an error, or null when closed). */
  end(error: unknown): void {
    this.failure = error;
    this.ended = true;
    this.wake?.();
  }

  private readonly halt = () => {
    this.stopped = true;
    this.ended = true;
    this.wake?.();
  };

  /** The stream: joins the feed on the first next(), leaves it when it ends or is returned. */
  async *events(): AsyncGenerator<OutboxEvent> {
    const { stop, wanted } = this.options;
    this.stopped = stop?.stopped ?? false;
    const membership = this.source.join(this);
    if (stop) stop.onStop = this.halt;
    try {
      // Listening before the table is read, so nothing committed in between is missed.
      await this.source.listening();
      if (this.last !== null) yield* this.stored();
      for (;;) {
        if (this.stopped) return;
        const event = this.queue.shift();
        if (!event) {
          if (this.dropped && this.last !== null) {
            this.dropped = false;
            yield* this.stored();
            continue;
          }
          if (this.ended) {
            if (this.failure) throw this.failure;
            return;
          }
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          continue;
        }
        const sequence = BigInt(event.sequence);
        if (this.last !== null && sequence <= this.last) continue;
        if (this.last !== null && sequence > this.last + 1n) yield* this.stored(sequence);
        this.last = sequence;
        if (wanted(event)) {
          // A burst or a backlog is worked off one event per turn of the event loop (see Pace).
          await this.pace.next();
          yield event;
        }
      }
    } finally {
      if (stop) stop.onStop = null;
      membership.leave();
    }
  }

  /** The stored events after `last` (and before `before`), page by page. */
  private async *stored(before?: bigint): AsyncGenerator<OutboxEvent> {
    const pageSize = this.options.pageSize ?? STORED_PAGE;
    for (;;) {
      const page = await this.source.read(this.last!, pageSize, before);
      for (const event of page) {
        this.last = BigInt(event.sequence);
        if (this.options.wanted(event)) {
          await this.pace.next();
          yield event;
        }
      }
      if (page.length < pageSize) return;
    }
  }
}

/**
 * Tells an outbox stream to end at once (endOnReturn). A plain object rather than an
 * AbortController: one per subscriber, and an AbortSignal with its listener maps is ten times the
 * size. One stream listens (EventStream sets `onStop`).
 */
export interface StreamStop {
  stopped: boolean;
  onStop: (() => void) | null;
}

/**
 * The iterator of a subscription built on an EventStream. An async generator's return() waits
 * until the generator reaches its next `yield`: one waiting for a quiet tenant's next event may
 * never get there, so a closed subscription would keep its pub/sub listener (and its queue) until
 * that tenant's next event. This iterator's return() first stops the stream handed to `build`,
 * which ends the event stream underneath and so every generator built on it.
 */
export function endOnReturn<T>(
  build: (stop: StreamStop, port: PushPort<T>) => AsyncGenerator<T>,
): AsyncIterableIterator<T> {
  const stop: StreamStop = { stopped: false, onStop: null };
  const port: PushPort<T> = { consumer: null };
  const inner = build(stop, port);
  const end = () => {
    stop.stopped = true;
    stop.onStop?.();
  };
  const iterator: AsyncIterableIterator<T> & { [PUSH_PORT]: PushPort<T> } = {
    [PUSH_PORT]: port,
    next: () => inner.next(),
    return: (value?: unknown) => {
      end();
      return inner.return(value as never);
    },
    throw: (error?: unknown) => {
      end();
      return inner.throw(error);
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
