// LiveFeed (src/realtime/live-feed.ts) on its own: Yoga's in-memory pub/sub, listeners the test
// controls, no server, no database.
import { setMaxListeners } from 'node:events';
import { createPubSub } from 'graphql-yoga';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppPubSub, OutboxEvent } from '../src/pubsub.js';
import { type FeedListener, HANDOFFS_PER_TURN, LiveFeed } from '../src/realtime/live-feed.js';

const CHANNEL = 'w:TEST';

function event(sequence: number): OutboxEvent {
  return {
    id: `event-${sequence}`,
    workspaceId: 'w',
    mode: 'TEST',
    sequence: String(sequence),
    type: 'conversion.recorded',
    programId: null,
    partnerId: null,
    occurredAt: '2026-01-01T00:00:00.000Z',
    payload: {},
  };
}

function memoryPubSub(): AppPubSub {
  const eventTarget = new EventTarget();
  setMaxListeners(0, eventTarget);
  return Object.assign(createPubSub({ eventTarget }), { listening: async () => {} }) as unknown as AppPubSub;
}

/** Counts turns of the event loop (check phases) while the test runs. */
function turnCounter() {
  const state = { turn: 0, stopped: false };
  counters.push(state);
  const spin = () => {
    if (state.stopped) return;
    state.turn++;
    setImmediate(spin);
  };
  setImmediate(spin);
  return state;
}

/** A listener recording what it gets (with the turn it got it in); `onEvent` runs first. */
function recorder(turns: { turn: number }, onEvent?: (event: OutboxEvent) => void) {
  const got: Array<{ sequence: string; turn: number }> = [];
  const ended: unknown[] = [];
  const listener: FeedListener = {
    event: (e) => {
      onEvent?.(e);
      got.push({ sequence: e.sequence, turn: turns.turn });
    },
    end: (error) => ended.push(error),
  };
  return { listener, got, ended };
}

/** Resolves once `check` holds, tested at every turn of the event loop. */
function until(check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = () => (check() ? resolve() : setImmediate(poll));
    poll();
  });
}

const counters: Array<{ stopped: boolean }> = [];
afterEach(() => {
  for (const counter of counters.splice(0)) counter.stopped = true;
});

describe('LiveFeed', () => {
  it('hands every event to every listener once, in the order they came', async () => {
    const pubsub = memoryPubSub();
    const feed = new LiveFeed(pubsub);
    const turns = turnCounter();
    const listeners = Array.from({ length: 30 }, () => recorder(turns));
    const memberships = listeners.map((r) => feed.join(CHANNEL, r.listener));
    for (let n = 1; n <= 25; n++) pubsub.publish('outbox', CHANNEL, event(n));
    await until(() => listeners.every((r) => r.got.length === 25));
    const expected = Array.from({ length: 25 }, (_, i) => String(i + 1));
    for (const r of listeners) expect(r.got.map((g) => g.sequence)).toEqual(expected);
    for (const m of memberships) m.leave();
  });

  it(`spreads one event to many listeners over several turns (${HANDOFFS_PER_TURN} calls per turn)`, async () => {
    const pubsub = memoryPubSub();
    const feed = new LiveFeed(pubsub);
    const turns = turnCounter();
    const count = 2.5 * HANDOFFS_PER_TURN;
    const listeners = Array.from({ length: count }, () => recorder(turns));
    for (const r of listeners) feed.join(CHANNEL, r.listener);
    pubsub.publish('outbox', CHANNEL, event(1));
    pubsub.publish('outbox', CHANNEL, event(2));
    await until(() => listeners.every((r) => r.got.length === 2));
    // Per turn at most HANDOFFS_PER_TURN calls: 5 000 calls take at least 5 turns.
    const perTurn = new Map<number, number>();
    for (const r of listeners) for (const g of r.got) perTurn.set(g.turn, (perTurn.get(g.turn) ?? 0) + 1);
    expect(perTurn.size).toBeGreaterThanOrEqual(5);
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(HANDOFFS_PER_TURN);
    // Each listener still gets 1 before 2.
    for (const r of listeners) expect(r.got.map((g) => g.sequence)).toEqual(['1', '2']);
  });

  it('skips a listener that leaves before its turn; one that joins meanwhile gets the next event', async () => {
    const pubsub = memoryPubSub();
    const feed = new LiveFeed(pubsub);
    const turns = turnCounter();
    const late = recorder(turns);
    let lateMembership: { leave(): void } | null = null;
    const listeners = Array.from({ length: 2 * HANDOFFS_PER_TURN }, () => recorder(turns));
    const memberships: Array<{ leave(): void }> = [];
    const first = recorder(turns, (e) => {
      if (e.sequence !== '1') return;
      memberships[HANDOFFS_PER_TURN + 10]!.leave(); // handed the event in a later turn
      lateMembership = feed.join(CHANNEL, late.listener);
    });
    feed.join(CHANNEL, first.listener);
    for (const r of listeners) memberships.push(feed.join(CHANNEL, r.listener));
    pubsub.publish('outbox', CHANNEL, event(1));
    pubsub.publish('outbox', CHANNEL, event(2));
    // `late` joined after the others: it is the last to get event 2.
    await until(() => late.got.length > 0);
    expect(listeners[HANDOFFS_PER_TURN + 10]!.got).toEqual([]);
    expect(late.got.map((g) => g.sequence)).toEqual(['2']);
    expect(listeners.filter((r) => r.got.length === 2)).toHaveLength(listeners.length - 1);
    lateMembership!.leave();
  });

  it('ends a listener that throws; the others still get the event and the next ones', async () => {
    const pubsub = memoryPubSub();
    const feed = new LiveFeed(pubsub);
    const turns = turnCounter();
    const failure = new Error('listener failed');
    const failing = recorder(turns, () => {
      throw failure;
    });
    const before = recorder(turns);
    const after = recorder(turns);
    feed.join(CHANNEL, before.listener);
    feed.join(CHANNEL, failing.listener);
    feed.join(CHANNEL, after.listener);
    pubsub.publish('outbox', CHANNEL, event(1));
    pubsub.publish('outbox', CHANNEL, event(2));
    await until(() => after.got.length === 2);
    expect(before.got.map((g) => g.sequence)).toEqual(['1', '2']);
    expect(after.got.map((g) => g.sequence)).toEqual(['1', '2']);
    expect(failing.ended).toEqual([failure]);
    expect(failing.got).toEqual([]);
  });

  it('lets go of the pub/sub subscription when its last listener leaves, and opens a new one on the next join', async () => {
    const pubsub = memoryPubSub();
    const feed = new LiveFeed(pubsub);
    const turns = turnCounter();
    const a = recorder(turns);
    const b = recorder(turns);
    const ma = feed.join(CHANNEL, a.listener);
    const mb = feed.join(CHANNEL, b.listener);
    expect(feed.size).toBe(1);
    ma.leave();
    expect(feed.size).toBe(1);
    mb.leave();
    expect(feed.size).toBe(0);
    const c = recorder(turns);
    const mc = feed.join(CHANNEL, c.listener);
    pubsub.publish('outbox', CHANNEL, event(7));
    await until(() => c.got.length === 1);
    expect(a.got).toEqual([]);
    expect(c.got.map((g) => g.sequence)).toEqual(['7']);
    mc.leave();
  });
});
