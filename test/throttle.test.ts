// throttle (src/realtime/throttle.ts) on its own: a source the test pushes to, fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { throttle } from '../src/realtime/throttle.js';

/** An async generator the test feeds; return() ends a pending next(), as a pub/sub subscription does. */
function pushSource() {
  const items: number[] = [];
  let waiting: { resolve: (r: IteratorResult<number>) => void; reject: (e: unknown) => void } | null = null;
  let finished: { failure: unknown } | null = null;
  const state = { returned: 0, pulled: 0 };
  const settle = () => {
    if (!waiting) return;
    const w = waiting;
    if (items.length) {
      waiting = null;
      state.pulled++;
      w.resolve({ value: items.shift()!, done: false });
    } else if (finished) {
      waiting = null;
      if (finished.failure) w.reject(finished.failure);
      else w.resolve({ value: undefined, done: true });
    }
  };
  const source = {
    next: () =>
      new Promise<IteratorResult<number>>((resolve, reject) => {
        waiting = { resolve, reject };
        settle();
      }),
    return: async () => {
      state.returned++;
      items.length = 0;
      finished ??= { failure: null };
      settle();
      return { value: undefined, done: true } as const;
    },
    throw: async (error: unknown) => {
      throw error;
    },
    [Symbol.asyncIterator]() {
      return source;
    },
  } as unknown as AsyncGenerator<number>;
  return {
    source,
    state,
    push: (...values: number[]) => {
      items.push(...values);
      settle();
    },
    end: (failure: unknown = null) => {
      finished = { failure };
      settle();
    },
  };
}

/** Whether a promise has settled, after the microtasks and timers due now have run. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await vi.advanceTimersByTimeAsync(0);
  return settled;
}

const INTERVAL = 1000;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('throttle', () => {
  it('yields at once for the first item after a quiet period (leading)', async () => {
    const feed = pushSource();
    const stream = throttle(feed.source, INTERVAL);
    const first = stream.next();
    expect(await isSettled(first)).toBe(false); // nothing yet: it waits, it does not poll
    feed.push(1);
    expect(await isSettled(first)).toBe(true);
    expect(await first).toEqual({ value: undefined, done: false });
    await stream.return(undefined);
  });

  it('coalesces a burst within the interval into one yield at its end (trailing)', async () => {
    const feed = pushSource();
    const stream = throttle(feed.source, INTERVAL);
    const first = stream.next();
    feed.push(1);
    await first;
    const second = stream.next();
    feed.push(2, 3, 4, 5);
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(await isSettled(second)).toBe(false);
    expect(feed.state.pulled).toBe(5); // every item was taken off the source meanwhile
    await vi.advanceTimersByTimeAsync(1);
    expect(await isSettled(second)).toBe(true);
    // The four items made one yield: the next one waits for a new item, however long.
    const third = stream.next();
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(await isSettled(third)).toBe(false);
    // After a quiet period longer than the interval, a new item is yielded at once again.
    feed.push(6);
    expect(await isSettled(third)).toBe(true);
    await stream.return(undefined);
  });

  it('yields at most once per interval under a steady stream', async () => {
    const feed = pushSource();
    const stream = throttle(feed.source, INTERVAL);
    const yieldsAt: number[] = [];
    const start = Date.now();
    const consumer = (async () => {
      for await (const _ of stream) {
        yieldsAt.push(Date.now() - start);
        if (yieldsAt.length === 4) break;
      }
    })();
    for (let t = 0; t < 4 * INTERVAL; t += 100) {
      feed.push(t);
      await vi.advanceTimersByTimeAsync(100);
    }
    await consumer;
    expect(yieldsAt).toEqual([0, INTERVAL, 2 * INTERVAL, 3 * INTERVAL]);
    expect(feed.state.returned).toBe(1); // break returned the throttle, which returned its source
  });

  it('returns its source when the consumer stops, and the source is not read after that', async () => {
    const feed = pushSource();
    const stream = throttle(feed.source, INTERVAL);
    const first = stream.next();
    feed.push(1);
    await first;
    expect(await stream.return(undefined)).toEqual({ value: undefined, done: true });
    expect(feed.state.returned).toBe(1);
    const pulled = feed.state.pulled;
    feed.push(2);
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(feed.state.pulled).toBe(pulled);
    expect(await stream.next()).toEqual({ value: undefined, done: true });
  });

  it('yields the last burst of a source that ends, then completes; a failure is thrown after it', async () => {
    const feed = pushSource();
    const stream = throttle(feed.source, INTERVAL);
    const first = stream.next();
    feed.push(1);
    await first;
    feed.push(2);
    feed.end();
    const last = stream.next();
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(await last).toEqual({ value: undefined, done: false });
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    expect(feed.state.returned).toBe(1);

    const failing = pushSource();
    const failed = throttle(failing.source, INTERVAL);
    const one = failed.next();
    failing.push(1);
    failing.end(new Error('pub/sub gone'));
    expect(await one).toEqual({ value: undefined, done: false });
    await expect(failed.next()).rejects.toThrow('pub/sub gone');
    expect(failing.state.returned).toBe(1);
  });
});
