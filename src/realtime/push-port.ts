/**
 * A synchronous side door from a subscriber's source stream to its consumer, for the common case:
 * a live event reaching a subscriber that is caught up and idle.
 *
 * The consumer (SharedExecution's WebSocket loop) sets `consumer` only while it is waiting for
 * the stream's next value with nothing in flight; the stream (eventStream) calls it only while it
 * is itself waiting for a live event with an empty queue and the event is the next one in sequence.
 * Then handing the event over synchronously is exactly one turn of the pull loop (the stream
 * yields it, the consumer sends it and asks for the next) without the promises: a live event goes
 * to 1000 idle subscribers in one loop, as a raw broadcast would. `consumer` returns false when it
 * cannot finish synchronously (the execution is asynchronous): the stream then queues the event
 * and the pull loop takes it, as without the side door.
 */
export interface PushPort<T> {
  consumer: ((value: T) => boolean) | null;
}

export const PUSH_PORT = Symbol('refgraph.pushPort');

/** The push port of a source iterator, if it has one. */
export function pushPortOf<T>(iterator: object): PushPort<T> | undefined {
  return (iterator as { [PUSH_PORT]?: PushPort<T> })[PUSH_PORT];
}
