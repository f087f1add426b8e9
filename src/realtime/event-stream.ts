import type { OutboxEvent } from '../pubsub.js';
import type { FeedListener, FeedMembership } from './live-feed.js';
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
  /** MAX_QUEUED unless a test says otherwise. */
  maxQueued?: number;
  /** STORED_PAGE unless a test says otherwise. */
  pageSize?: number;
}

/** Who takes a stream's events (`EventStream.start`). */
export interface StreamConsumer<T = OutboxEvent> {
  /**
   * The next event, in order. A promise holds the following ones back until it settles; a
   * rejection ends the stream with that error. Not called once the stream has ended.
   */
  next(event: T): void | Promise<void>;
  /** The stream ended, once, after the last `next`: null when it completed or was stopped, else its failure. */
  end(error: unknown): void;
}

/**
 * A tenant's events, optionally after a cursor: first the stored events after it, then live ones,
 * with no gap and no duplicate at the seam (the subscription is listening before the table is
 * read, duplicates are dropped by sequence, and a jump in sequence is back-filled from the table).
 *
 * Live events come from the tenant's shared feed (one pub/sub subscription per tenant and
 * instance, see live-feed.ts), which hands each one at once to this stream (its listener), so a
 * subscriber that is slow to consume (a slow client, slow resolvers) never makes the pub/sub buffer
 * for it.
 *
 * Driven by callbacks (`start`): a subscriber that is caught up and idle is only this object in
 * the feed's listener set — no generator, no pending promise — and a live event that is the next
 * in sequence goes to its consumer at once, from the feed's delivery. A loop (`run`) exists only
 * while there is something to work off: the replay after a cursor, queued live events (the
 * consumer was busy: its promise had not settled), a gap to back-fill, dropped events to read
 * back. The queue is bounded: when it is full, newer events are dropped and read back from the
 * table once it has drained. The loop hands on one event per turn of the event loop (see Pace).
 *
 * `events()` is the same stream as an async generator (SSE, the filtered live fields).
 */
export class EventStream implements FeedListener {
  /** Live events received and not yet taken by the loop, in the order they came. */
  private readonly queue: OutboxEvent[] = [];
  /** The sequence of the last event taken (handed on or filtered out); null: live only, nothing taken yet. */
  private last: bigint | null;
  /** The queue was full and live events were dropped: read them back from the table once it is empty. */
  private dropped = false;
  /** No live event will come any more: the feed ended (a failure, or null when it was closed). */
  private feedEnded: { failure: unknown } | null = null;
  /** Stopped, or ended: nothing more is handed on. */
  private finished = false;
  /** The loop runs (joining, replay, a backlog, or the consumer's last event not yet settled): live events queue for it. */
  private running = false;
  private consumer: StreamConsumer | null = null;
  private membership: FeedMembership | null = null;
  private pace: Pace | null = null;

  constructor(
    private readonly source: EventSource,
    private readonly options: EventStreamOptions,
  ) {
    this.last = options.after;
  }

  /** Join the feed and hand every event to `consumer`, replay first. Once per stream. */
  start(consumer: StreamConsumer): void {
    if (this.consumer) throw new Error('An EventStream starts once.');
    this.consumer = consumer;
    if (this.finished) {
      consumer.end(null); // stopped before it started
      return;
    }
    const { stop } = this.options;
    if (stop?.stopped) {
      this.finish(null);
      return;
    }
    this.membership = this.source.join(this);
    if (stop) stop.onStop = this.halt;
    this.running = true;
    void this.run(true);
  }

  /** End the stream at once (queued events or not): it leaves the feed, its consumer is told (null). */
  stop(): void {
    this.finish(null);
  }

  private readonly halt = () => this.finish(null);

  /** From the feed: a live event. */
  event(event: OutboxEvent): void {
    if (this.finished) return;
    if (!this.running) {
      // Idle and caught up (nothing queued): what the loop would do with this event, at once.
      const sequence = BigInt(event.sequence);
      if (this.last !== null && sequence <= this.last) return; // a duplicate
      if (this.last === null || sequence === this.last + 1n) {
        this.last = sequence;
        if (!this.options.wanted(event)) return;
        let handed: void | Promise<void>;
        try {
          handed = this.consumer!.next(event);
        } catch (error) {
          this.finish(error);
          return;
        }
        // Busy until it settles: later events queue, and the loop takes them.
        if (handed) {
          this.running = true;
          void this.run(false, handed);
        }
        return;
      }
      // A gap: the loop back-fills it from the table first.
    }
    if (this.queue.length < (this.options.maxQueued ?? MAX_QUEUED)) this.queue.push(event);
    else this.dropped = true;
    if (!this.running) {
      this.running = true;
      void this.run(false);
    }
  }

  /** From the feed: it ended (with an error, or null when closed). */
  end(error: unknown): void {
    if (this.finished || this.feedEnded) return;
    this.feedEnded = { failure: error };
    // Idle: nothing queued to work off first.
    if (!this.running) this.finish(error);
  }

  /** Works off what there is (replay, queue, gap, dropped events), then returns: idle. */
  private async run(first: boolean, handed?: Promise<void>): Promise<void> {
    try {
      if (handed) await handed;
      if (first) {
        // Listening before the table is read, so nothing committed in between is missed.
        await this.source.listening();
        if (this.last !== null) await this.stored();
      }
      for (;;) {
        if (this.finished) return;
        const event = this.queue.shift();
        if (!event) {
          if (this.dropped && this.last !== null) {
            this.dropped = false;
            await this.stored();
            continue;
          }
          if (this.feedEnded) {
            this.finish(this.feedEnded.failure);
            return;
          }
          this.running = false;
          return;
        }
        const sequence = BigInt(event.sequence);
        if (this.last !== null && sequence <= this.last) continue;
        if (this.last !== null && sequence > this.last + 1n) await this.stored(sequence);
        if (this.finished) return;
        this.last = sequence;
        if (this.options.wanted(event)) await this.hand(event);
      }
    } catch (error) {
      this.finish(error);
    }
  }

  /** One event to the consumer, at most one per turn of the event loop (see Pace). */
  private async hand(event: OutboxEvent): Promise<void> {
    this.pace ??= new Pace();
    const wait = this.pace.next();
    if (wait) await wait;
    if (this.finished) return;
    await this.consumer!.next(event);
  }

  /** The stored events after `last` (and before `before`), page by page. */
  private async stored(before?: bigint): Promise<void> {
    const pageSize = this.options.pageSize ?? STORED_PAGE;
    for (;;) {
      const page = await this.source.read(this.last!, pageSize, before);
      for (const event of page) {
        if (this.finished) return;
        this.last = BigInt(event.sequence);
        if (this.options.wanted(event)) await this.hand(event);
      }
      if (page.length < pageSize || this.finished) return;
    }
  }

  /** Every ending: leave the feed, tell the consumer (once). */
  private finish(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.running = false;
    this.queue.length = 0;
    const { stop } = this.options;
    if (stop?.onStop === this.halt) stop.onStop = null;
    this.membership?.leave();
    this.membership = null;
    this.consumer?.end(error);
  }

  /** The stream as an async generator: joins the feed on the first next(), leaves it when it ends or is returned. */
  async *events(): AsyncGenerator<OutboxEvent> {
    // One event at a time: the stream waits (its consumer's promise) until this generator is asked
    // for the next one, so its bounded queue, not this, holds what the consumer has not taken.
    let item: OutboxEvent | null = null;
    let taken: (() => void) | null = null;
    let ended: { error: unknown } | null = null;
    let wake: (() => void) | null = null;
    this.start({
      next: (event) =>
        new Promise<void>((resolve) => {
          item = event;
          taken = resolve;
          wake?.();
        }),
      end: (error) => {
        ended = { error };
        wake?.();
      },
    });
    try {
      for (;;) {
        // Ended (stopped while an event waited here: it is not handed on).
        if (ended) {
          const { error } = ended as { error: unknown };
          if (error) throw error;
          return;
        }
        if (item) {
          const event: OutboxEvent = item;
          item = null;
          yield event;
          const resolve = taken as (() => void) | null;
          taken = null;
          resolve?.();
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      this.stop();
      (taken as (() => void) | null)?.();
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
export function endOnReturn<T>(build: (stop: StreamStop) => AsyncGenerator<T>): AsyncIterableIterator<T> {
  const stop: StreamStop = { stopped: false, onStop: null };
  const inner = build(stop);
  const end = () => {
    stop.stopped = true;
    stop.onStop?.();
  };
  const iterator: AsyncIterableIterator<T> = {
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

/** How a source iterator can be driven by callbacks instead (see `streamIterator`). */
export const START = Symbol('refgraph.streamStart');

/** A source iterator that can be driven by callbacks instead of iterated (see `streamIterator`). */
interface Startable<T> {
  /** Start it with callbacks; returns what stops it. */
  [START](consumer: StreamConsumer<T>): { stop(): void };
}

/**
 * Drive `iterator` with callbacks if it can be (then it must not be iterated as well): what stops
 * it, or null when it can only be iterated.
 */
export function startStream<T>(iterator: object, consumer: StreamConsumer<T>): { stop(): void } | null {
  return START in iterator ? (iterator as Startable<T>)[START](consumer) : null;
}

/**
 * The iterator of a subscription on one EventStream, either way, once: iterated (SSE), it pulls
 * the stream's generator (created on the first next(); return() stops the stream at once, as
 * endOnReturn); driven by callbacks (the WebSocket, see SharedExecution) through `[START]`, no
 * generator is made at all. A class: one small object per subscriber, its methods shared.
 */
export function streamIterator(stream: EventStream): AsyncIterableIterator<OutboxEvent> {
  return new StreamIterator(stream);
}

class StreamIterator implements AsyncIterableIterator<OutboxEvent>, Startable<OutboxEvent> {
  private inner: AsyncGenerator<OutboxEvent> | null = null;

  constructor(private readonly stream: EventStream) {}

  [START](consumer: StreamConsumer): { stop(): void } {
    this.stream.start(consumer);
    return this.stream;
  }

  next(): Promise<IteratorResult<OutboxEvent>> {
    this.inner ??= this.stream.events();
    return this.inner.next();
  }

  async return(value?: unknown): Promise<IteratorResult<OutboxEvent>> {
    this.stream.stop();
    return this.inner ? this.inner.return(value as never) : { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<OutboxEvent>> {
    this.stream.stop();
    if (this.inner) return this.inner.throw(error);
    throw error;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<OutboxEvent> {
    return this;
  }
}
