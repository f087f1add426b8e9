// EventStream (as a generator and driven by callbacks) and endOnReturn (src/realtime/event-stream.ts) on their own: a fake tenant whose
// live feed and table the test controls, no server, no database.
import { describe, expect, it } from 'vitest';
import type { OutboxEvent } from '../src/pubsub.js';
import { EventStream, type EventStreamOptions, endOnReturn } from '../src/realtime/event-stream.js';
import type { FeedListener } from '../src/realtime/live-feed.js';

function event(sequence: number, type = 'conversion.recorded', partnerId: string | null = null): OutboxEvent {
  return {
    id: `event-${sequence}`,
    workspaceId: 'w',
    mode: 'TEST',
    sequence: String(sequence),
    type,
    programId: null,
    partnerId,
    occurredAt: '2026-01-01T00:00:00.000Z',
    payload: {},
  };
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A tenant: its table (what a read sees), its live feed (what the test publishes), and a record
 * of the reads. `holdReads()` makes the next read wait until the test releases it.
 */
function fakeTenant(stored: number[] = []) {
  const table = stored.map((n) => event(n));
  const listeners = new Set<FeedListener>();
  const reads: Array<{ after: number; limit: number; before?: number }> = [];
  let held: { release: () => void; started: Promise<void>; start: () => void } | null = null;
  const state = { joined: 0, left: 0 };
  const source = {
    join: (listener: FeedListener) => {
      state.joined++;
      listeners.add(listener);
      return {
        leave: () => {
          if (listeners.delete(listener)) state.left++;
        },
      };
    },
    listening: async () => {},
    read: async (after: bigint, limit: number, before?: bigint) => {
      reads.push({ after: Number(after), limit, ...(before === undefined ? {} : { before: Number(before) }) });
      // The table as it is when the read starts: a snapshot, as a statement sees it.
      const rows = table
        .filter((e) => BigInt(e.sequence) > after && (before === undefined || BigInt(e.sequence) < before))
        .sort((a, b) => Number(a.sequence) - Number(b.sequence))
        .slice(0, limit);
      if (held) {
        const gate = held;
        held = null;
        gate.start();
        await new Promise<void>((resolve) => (gate.release = resolve));
      }
      return rows;
    },
  };
  return {
    source,
    reads,
    state,
    get listeners() {
      return listeners.size;
    },
    /** Committed (in the table) without being published (yet). */
    commit: (...sequences: number[]) => table.push(...sequences.map((n) => event(n))),
    publish: (e: OutboxEvent) => {
      for (const listener of listeners) listener.event(e);
    },
    /** Committed and published. */
    append: (...sequences: number[]) => {
      for (const n of sequences) {
        const e = event(n);
        table.push(e);
        for (const listener of listeners) listener.event(e);
      }
    },
    end: (error: unknown = null) => {
      for (const listener of listeners) listener.end(error);
    },
    /** The next read takes its snapshot, then waits: `started` resolves then, `release()` lets it return. */
    holdReads: () => {
      const started = deferred();
      const gate = { release: () => {}, started: started.promise, start: () => started.resolve() };
      held = gate;
      return { started: gate.started, release: () => gate.release() };
    },
  };
}

function streamOf(
  tenant: ReturnType<typeof fakeTenant>,
  options: Partial<EventStreamOptions> = {},
): AsyncGenerator<OutboxEvent> {
  return new EventStream(tenant.source, { after: null, wanted: () => true, ...options }).events();
}

async function take(stream: AsyncGenerator<OutboxEvent>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const { value, done } = await stream.next();
    if (done) break;
    out.push(Number(value.sequence));
  }
  return out;
}

describe('EventStream', () => {
  it('replays the stored events after the cursor, then live ones', async () => {
    const tenant = fakeTenant([1, 2, 3, 4, 5]);
    const stream = streamOf(tenant, { after: 2n });
    expect(await take(stream, 3)).toEqual([3, 4, 5]);
    const next = stream.next();
    tenant.append(6);
    expect(Number((await next).value?.sequence)).toBe(6);
    expect(tenant.reads).toEqual([{ after: 2, limit: 100 }]);
    await stream.return(undefined);
  });

  it('joins the feed before reading the table: live events during the replay leave no gap and no duplicate', async () => {
    const tenant = fakeTenant([1, 2, 3]);
    const read = tenant.holdReads();
    const stream = streamOf(tenant, { after: 0n });
    const first = stream.next();
    await read.started; // the replay's snapshot holds 1..3
    // Committed and published while the replay reads: 3 again (published late), then 4 and 5.
    tenant.publish(event(3));
    tenant.append(4, 5);
    read.release();
    expect(Number((await first).value?.sequence)).toBe(1);
    expect(await take(stream, 4)).toEqual([2, 3, 4, 5]);
    const next = stream.next();
    tenant.append(6);
    expect(Number((await next).value?.sequence)).toBe(6);
    await stream.return(undefined);
  });

  it('reads a page at a time until a short page', async () => {
    const tenant = fakeTenant([1, 2, 3, 4, 5]);
    const stream = streamOf(tenant, { after: 0n, pageSize: 2 });
    expect(await take(stream, 5)).toEqual([1, 2, 3, 4, 5]);
    expect(tenant.reads).toEqual([
      { after: 0, limit: 2 },
      { after: 2, limit: 2 },
      { after: 4, limit: 2 },
    ]);
    await stream.return(undefined);
  });

  it('yields in sequence order: a live event past a gap is preceded by the stored events of the gap', async () => {
    const tenant = fakeTenant([1]);
    const stream = streamOf(tenant, { after: 0n });
    expect(await take(stream, 1)).toEqual([1]);
    // 2 and 3 are committed, 4 arrives first; 2 and 3 are then published late (duplicates).
    tenant.commit(2, 3);
    const next = stream.next();
    tenant.append(4);
    expect(Number((await next).value?.sequence)).toBe(2);
    expect(await take(stream, 2)).toEqual([3, 4]);
    expect(tenant.reads.at(-1)).toEqual({ after: 1, limit: 100, before: 4 });
    const after = stream.next();
    tenant.publish(event(2));
    tenant.publish(event(3));
    tenant.append(5);
    expect(Number((await after).value?.sequence)).toBe(5);
    await stream.return(undefined);
  });

  it('without a cursor: live events only, from the first one received, and nothing read from the table', async () => {
    const tenant = fakeTenant([1, 2, 3]);
    const stream = streamOf(tenant);
    const first = stream.next();
    tenant.append(4);
    expect(Number((await first).value?.sequence)).toBe(4);
    expect(tenant.reads).toEqual([]);
    await stream.return(undefined);
  });

  it('skips events it does not want without reading them back as a gap', async () => {
    const tenant = fakeTenant([1]);
    tenant.commit(2);
    const stream = streamOf(tenant, { after: 0n, wanted: (e) => e.type !== 'reward.created' });
    expect(await take(stream, 1)).toEqual([1]);
    const next = stream.next();
    tenant.publish(event(2)); // wanted
    tenant.commit(3);
    tenant.publish(event(3, 'reward.created')); // not wanted: advances the sequence only
    tenant.append(4);
    expect(Number((await next).value?.sequence)).toBe(2);
    expect(await take(stream, 1)).toEqual([4]);
    expect(tenant.reads).toEqual([{ after: 0, limit: 100 }]);
    await stream.return(undefined);
  });

  it('queues at most maxQueued live events; newer ones are dropped, then read back from the table, in order', async () => {
    const tenant = fakeTenant();
    const stream = streamOf(tenant, { after: 0n, maxQueued: 3, pageSize: 2 });
    const first = stream.next();
    await Promise.resolve(); // let the stream join and read its (empty) replay
    tenant.append(1);
    expect(Number((await first).value?.sequence)).toBe(1);
    // The subscriber takes nothing while 2..8 are committed and published: 2..4 are queued, 5..8 dropped.
    tenant.append(2, 3, 4, 5, 6, 7, 8);
    expect(tenant.reads).toEqual([{ after: 0, limit: 2 }]);
    expect(await take(stream, 7)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    // Live again.
    const next = stream.next();
    tenant.append(9);
    expect(Number((await next).value?.sequence)).toBe(9);
    // The dropped ones were read back once the queue was empty: after 4, a page at a time until a short one.
    expect(tenant.reads.slice(1)).toEqual([
      { after: 4, limit: 2 },
      { after: 6, limit: 2 },
      { after: 8, limit: 2 },
    ]);
    await stream.return(undefined);
  });

  it('leaves the feed when it is returned', async () => {
    const tenant = fakeTenant([1, 2]);
    const stream = streamOf(tenant, { after: 0n });
    expect(await take(stream, 1)).toEqual([1]);
    expect(tenant.listeners).toBe(1);
    expect(await stream.return(undefined)).toEqual({ value: undefined, done: true });
    expect(tenant.state).toEqual({ joined: 1, left: 1 });
  });

  it('works off its queue when the feed ends, then completes; a failure is thrown after the queue', async () => {
    const tenant = fakeTenant();
    const stream = streamOf(tenant, { after: 0n });
    const first = stream.next();
    await Promise.resolve();
    tenant.append(1, 2);
    tenant.end(null);
    expect(Number((await first).value?.sequence)).toBe(1);
    expect(await take(stream, 5)).toEqual([2]);
    expect(tenant.state.left).toBe(1);

    const failing = fakeTenant();
    const failed = streamOf(failing, { after: 0n });
    const one = failed.next();
    await Promise.resolve();
    failing.append(1);
    failing.end(new Error('pub/sub gone'));
    expect(Number((await one).value?.sequence)).toBe(1);
    await expect(failed.next()).rejects.toThrow('pub/sub gone');
    expect(failing.state.left).toBe(1);
  });

  it('driven by callbacks: an idle consumer gets a live event at once; while it is busy, later ones queue and follow in order', async () => {
    const tenant = fakeTenant([1]);
    const stream = new EventStream(tenant.source, { after: 0n, wanted: () => true });
    const got: number[] = [];
    const ends: unknown[] = [];
    let busy: Promise<void> | undefined;
    const waiting: Array<{ n: number; resolve: () => void }> = [];
    /** Resolves once `n` events have been handed on. */
    const handed = (n: number) =>
      new Promise<void>((resolve) => (got.length >= n ? resolve() : waiting.push({ n, resolve })));
    stream.start({
      next: (e) => {
        got.push(Number(e.sequence));
        for (const w of waiting.filter((w) => got.length >= w.n)) w.resolve();
        return busy;
      },
      end: (error) => ends.push(error),
    });
    await handed(1);
    // The replay's loop goes idle once it has nothing left (microtasks only): a turn is enough.
    await new Promise((resolve) => setImmediate(resolve));
    tenant.append(2, 3);
    expect(got).toEqual([1, 2, 3]); // synchronously, from the feed's delivery
    const settle = deferred();
    busy = settle.promise;
    tenant.append(4); // handed on at once; the consumer is busy until `settle`
    busy = undefined;
    tenant.append(5, 6); // queued meanwhile
    expect(got).toEqual([1, 2, 3, 4]);
    settle.resolve();
    await handed(6);
    expect(got).toEqual([1, 2, 3, 4, 5, 6]);
    // A gap is back-filled from the table before the live event.
    tenant.commit(7);
    tenant.append(8);
    await handed(8);
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(tenant.reads.at(-1)).toEqual({ after: 6, limit: 100, before: 8 });
    expect(ends).toEqual([]);
    stream.stop();
    expect(ends).toEqual([null]);
    expect(tenant.state).toEqual({ joined: 1, left: 1 });
    tenant.append(9);
    expect(got).toHaveLength(8);
    stream.stop();
    expect(ends).toEqual([null]); // once
  });

  it('driven by callbacks: the feed’s end reaches the consumer once, after its queue, and leaves the feed', async () => {
    const tenant = fakeTenant();
    const stream = new EventStream(tenant.source, { after: null, wanted: () => true });
    const got: number[] = [];
    const ends: unknown[] = [];
    const busy = deferred();
    const ended = deferred();
    stream.start({
      next: (e) => {
        got.push(Number(e.sequence));
        return e.sequence === '1' ? busy.promise : undefined;
      },
      end: (error) => {
        ends.push(error);
        ended.resolve();
      },
    });
    await new Promise((resolve) => setImmediate(resolve)); // joined and listening (microtasks only)
    tenant.append(1, 2);
    tenant.end(new Error('pub/sub gone'));
    expect(ends).toEqual([]);
    busy.resolve();
    await ended.promise;
    expect(got).toEqual([1, 2]);
    expect(ends).toHaveLength(1);
    expect(String(ends[0])).toContain('pub/sub gone');
    expect(tenant.state).toEqual({ joined: 1, left: 1 });
  });

  it('stopped before it starts: it never joins the feed and its consumer is told at once', () => {
    const tenant = fakeTenant();
    const stream = new EventStream(tenant.source, { after: null, wanted: () => true });
    stream.stop();
    const ends: unknown[] = [];
    stream.start({ next: () => {}, end: (error) => ends.push(error) });
    expect(ends).toEqual([null]);
    expect(tenant.state).toEqual({ joined: 0, left: 0 });
  });
});

describe('endOnReturn', () => {
  it('ends a stream that waits for a quiet tenant’s next event at once, and it leaves the feed', async () => {
    const tenant = fakeTenant();
    const iterator = endOnReturn<OutboxEvent>((stop) =>
      new EventStream(tenant.source, { after: null, wanted: () => true, stop }).events(),
    );
    const pending = iterator.next();
    await Promise.resolve();
    expect(tenant.listeners).toBe(1);
    await iterator.return!(undefined);
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(tenant.state).toEqual({ joined: 1, left: 1 });
  });

  it('stops a stream with queued events before it yields them', async () => {
    const tenant = fakeTenant();
    const iterator = endOnReturn<OutboxEvent>((stop) =>
      new EventStream(tenant.source, { after: 0n, wanted: () => true, stop }).events(),
    );
    const first = iterator.next();
    await Promise.resolve();
    tenant.append(1, 2, 3);
    expect(Number((await first).value?.sequence)).toBe(1);
    await iterator.return!(undefined);
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    expect(tenant.state.left).toBe(1);
  });
});
