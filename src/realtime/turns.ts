/**
 * Pacing for delivery loops: at most one step per loop per turn of the event loop (a subscriber's
 * loop: one event; the tenant feed: one batch of a burst).
 *
 * A subscriber working off queued or replayed events waits for nothing but promises, so without
 * pacing a burst reaching 1000 subscribers runs as one unbroken stretch of microtasks (every
 * subscriber's every event), keeping the event loop from the network, the database, timers and
 * other tenants for as long as it lasts — seconds, once a server falls behind. With pacing each
 * turn delivers at most one event to each subscriber, then I/O runs.
 *
 * A turn ends at the check phase (setImmediate): the counter advances then, once per turn in
 * which someone asked for it.
 */
let turn = 0;
let ticking = false;
const tick = () => {
  turn++;
  ticking = false;
};

function currentTurn(): number {
  if (!ticking) {
    ticking = true;
    setImmediate(tick);
  }
  return turn;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One subscriber's pace: `await pace.next()` before each event it hands on. */
export class Pace {
  private last = -1;

  /** Nothing to wait for the first time in a turn (undefined), otherwise the next turn. */
  next(): Promise<void> | undefined {
    if (this.last !== currentTurn()) {
      this.last = turn;
      return undefined;
    }
    return nextTurn().then(() => {
      this.last = currentTurn();
    });
  }
}
