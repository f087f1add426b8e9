import {
  createSourceEventStream,
  execute,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { type Context, RequestLoaders } from '../context.js';
import type { Auth } from '../domain/auth.js';
import { startStream, type StreamConsumer } from './event-stream.js';

/**
 * Set in the context of a WebSocket subscription (websocket-server.ts): sends the subscriber one `next`
 * message whose payload is this JSON text.
 */
export type DeliverNext = (payloadJson: string) => void;

export interface SharedExecutionOptions {
  /**
   * The app's error masking (what Yoga applies to every result and to a source stream's failure),
   * applied here once per shared execution, and to the failure of a WebSocket subscription's
   * source: results delivered straight to a socket do not pass through Yoga's hooks.
   */
  maskError(error: unknown): GraphQLError;
}

/** Subscribers whose executions are shared (same key): the arguments every execution of theirs runs with. */
interface Group {
  key: string;
  /** The first subscriber's (its context included): the answer does not depend on whose, see SharedExecution. */
  args: ExecutionArgs;
  subscribers: number;
}

/** One execution of one source event for one group of subscribers, and its payload as JSON. */
interface Execution {
  result: ExecutionResult | Promise<ExecutionResult>;
  json: string | Promise<string> | null;
}

/**
 * Subscription events executed — and serialized — once per group of subscribers whose results
 * are necessarily identical, instead of once per subscriber.
 *
 * Each subscriber keeps its own source stream (its own replay after `after`, its own filters, its
 * own queue): only the execution of one source event is shared. The execution of `event` for a
 * subscriber is memoized under (the event object, the group key), where the group key is
 *
 *   - the parsed document (Yoga's parser cache hands out one DocumentNode per query text) and the
 *     operation name,
 *   - the variables as the client sent them, and
 *   - every field of the credential (`Auth`: workspace, mode, role, partner, credential kind, key),
 *
 * i.e. everything an execution's answer can depend on besides the event itself and the data it
 * reads. The memo holds the event object weakly: live events reach all of a tenant's subscribers on
 * this instance as one object (one pub/sub listener per tenant, see live-feed.ts), so they share;
 * replayed events are read per subscriber (separate objects) and are executed per subscriber, as
 * before. Source values that are not objects, or a context without a credential, are never shared.
 *
 * Subscribers of different tenants can never share: an event object comes from one tenant's channel
 * and the key holds the workspace and mode. Subscribers of one tenant with a different role,
 * partner or credential have different keys.
 *
 * A shared execution runs with the context of the group's first subscriber (the group lives while
 * one of its subscribers does), with fresh per-request loaders; its answer does not depend on whose
 * context it is (same key). So a subscriber keeps no context of its own once it has subscribed,
 * only its group. The shared ExecutionResult is handed to several consumers and is never mutated.
 *
 * Over the WebSocket (the context has `deliverNext`), results do not travel through an async
 * iterator: each subscriber's loop sends the group's serialized payload straight to its socket,
 * and what subscribe answers is a `SocketSubscription` handle, not an iterator (so envelop wraps
 * nothing per subscriber), which the transport stops and which tells it of the source's end (the
 * transport then sends `complete`) or failure (it sends `error`). That leaves per subscriber and
 * event: take the event off its queue, look the execution up, send.
 */
export class SharedExecution {
  /** Per source event: group key → its execution. */
  private readonly memo = new WeakMap<object, Map<string, Execution>>();
  /** The groups with a subscription open, by key. */
  private readonly groups = new Map<string, Group>();
  private readonly documentIds = new WeakMap<DocumentNode, number>();
  private nextDocumentId = 1;
  /** Executions run (for tests and metrics): one per event and group, not per subscriber. */
  executions = 0;
  /** Executions reused by another subscriber of the same group. */
  reused = 0;
  /** Subscriptions whose source stream is open, over WebSocket and SSE (metrics). */
  active = 0;

  constructor(private readonly options: SharedExecutionOptions) {}

  /** The Yoga plugin: subscriptions (WebSocket and SSE) go through `subscribe` below. */
  plugin(): Plugin {
    return {
      onSubscribe: ({ setSubscribeFn }) => {
        setSubscribeFn(((args: ExecutionArgs) => this.subscribe(args)) as never);
      },
    };
  }

  /**
   * GraphQL's subscribe (source stream, then one execution per source event), with the execution
   * of each event shared by the subscribers of one group.
   */
  async subscribe(
    args: ExecutionArgs,
  ): Promise<AsyncIterableIterator<ExecutionResult> | SocketSubscription | ExecutionResult> {
    const operation = getOperationAST(args.document, args.operationName);
    if (!operation) return { errors: [new GraphQLError('Unable to identify operation')] };
    // Variable errors are the client's (as Yoga's own executor reports them).
    const coerced = getVariableValues(
      args.schema,
      operation.variableDefinitions ?? [],
      (args.variableValues ?? {}) as Record<string, unknown>,
      { maxErrors: 50 },
    );
    if (coerced.errors) {
      return {
        errors: coerced.errors.map(
          (error) =>
            new GraphQLError(error.message, {
              nodes: error.nodes,
              originalError: error.originalError,
              // As Yoga answers a query's: 400 under graphql-response+json, 200 for SSE and application/json.
              extensions: { ...error.extensions, code: 'BAD_USER_INPUT', http: { spec: true, status: 400 } },
            }),
        ),
      };
    }
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source as ExecutionResult;
    const iterator = source[Symbol.asyncIterator]() as AsyncIterator<unknown>;
    const key = this.groupKey(args);
    const group = key === null ? null : this.join(key, args);
    const executionOf = group ? this.shared(group) : this.unshared(args);
    // Yoga passes an HTTP (SSE) request's signal: a closed request ends the source stream.
    const signal = (args as ExecutionArgs & { signal?: AbortSignal }).signal;
    const deliver = (args.contextValue as { deliverNext?: DeliverNext } | undefined)?.deliverNext;
    return this.open(iterator, executionOf, group, signal, deliver);
  }

  /**
   * The subscriber's loop, with what it keeps for its life: its source, its group (not its own
   * context: a group's executions run with the context of its first subscriber, see above).
   * Built apart from `subscribe` so that none of its closures holds the subscriber's ExecutionArgs.
   */
  private open(
    iterator: AsyncIterator<unknown>,
    executionOf: (event: unknown) => Execution,
    group: Group | null,
    signal: AbortSignal | undefined,
    deliver: DeliverNext | undefined,
  ): AsyncIterableIterator<ExecutionResult> | SocketSubscription {
    const abort = signal ? () => void iterator.return?.() : null;
    if (abort) signal?.addEventListener('abort', abort, { once: true });
    this.active++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.active--;
      if (abort) signal?.removeEventListener('abort', abort);
      if (group && --group.subscribers === 0 && this.groups.get(group.key) === group) this.groups.delete(group.key);
    };
    return deliver
      ? sink(iterator, executionOf, deliver, release, this.options.maskError)
      : results(iterator, executionOf, release);
  }

  /** The group of `key`, joined: the first subscriber's args are the group's. */
  private join(key: string, args: ExecutionArgs): Group {
    let group = this.groups.get(key);
    if (!group) {
      group = { key, args, subscribers: 0 };
      this.groups.set(key, group);
    }
    group.subscribers++;
    return group;
  }

  private shared(group: Group): (event: unknown) => Execution {
    return (event) => this.executionOf(event, group.key, group.args);
  }

  private unshared(args: ExecutionArgs): (event: unknown) => Execution {
    return (event) => this.run(event, args);
  }

  private executionOf(event: unknown, key: string | null, args: ExecutionArgs): Execution {
    if (key === null || typeof event !== 'object' || event === null) return this.run(event, args);
    let byGroup = this.memo.get(event);
    if (!byGroup) {
      byGroup = new Map();
      this.memo.set(event, byGroup);
    }
    const known = byGroup.get(key);
    if (known) {
      this.reused++;
      return known;
    }
    const execution = this.run(event, args);
    byGroup.set(key, execution);
    return execution;
  }

  private run(event: unknown, args: ExecutionArgs): Execution {
    this.executions++;
    const context = args.contextValue as Context;
    // Fresh loaders: nothing cached from the subscriber's earlier events or another execution.
    const result = execute({ ...args, rootValue: event, contextValue: { ...context, loaders: new RequestLoaders() } });
    return { result: isPromise(result) ? result.then((r) => this.mask(r)) : this.mask(result), json: null };
  }

  private mask(result: ExecutionResult): ExecutionResult {
    if (!result.errors?.length) return result;
    return { ...result, errors: result.errors.map((error) => this.options.maskError(error)) };
  }

  /** The group of an execution, or null when it must not be shared (no credential). */
  private groupKey(args: ExecutionArgs): string | null {
    const auth = (args.contextValue as Context | undefined)?.auth;
    if (!auth) return null;
    let documentId = this.documentIds.get(args.document);
    if (documentId === undefined) {
      documentId = this.nextDocumentId++;
      this.documentIds.set(args.document, documentId);
    }
    const scope = AUTH_FIELDS.map((field) => String(auth[field] ?? '')).join('\u0001');
    return `${documentId}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? null)}\u0000${scope}`;
  }
}

/** The payload of a graphql-ws `next` message, as graphql-ws builds it (errors only when there are some). */
function payloadJson(execution: Execution): string | Promise<string> {
  if (execution.json === null) {
    const serialize = ({ errors, ...rest }: ExecutionResult) =>
      JSON.stringify(errors ? { ...rest, errors: errors.map((e) => e.toJSON()) } : rest);
    execution.json = isPromise(execution.result) ? execution.result.then(serialize) : serialize(execution.result);
  }
  return execution.json;
}

/** Results as an async iterator (SSE, and any transport without `deliverNext`). */
function results(
  iterator: AsyncIterator<unknown>,
  executionOf: (event: unknown) => Execution,
  release: () => void,
): AsyncIterableIterator<ExecutionResult> {
  const mapped: AsyncIterableIterator<ExecutionResult> = {
    next: async () => {
      const step = await iterator.next();
      if (step.done) {
        release();
        return { value: undefined, done: true };
      }
      return { value: await executionOf(step.value).result, done: false };
    },
    return: async () => {
      release();
      await iterator.return?.();
      return { value: undefined, done: true };
    },
    throw: async (error: unknown) => {
      release();
      if (iterator.throw) return (await iterator.throw(error)) as IteratorResult<ExecutionResult>;
      throw error;
    },
    [Symbol.asyncIterator]: () => mapped,
  };
  return mapped;
}

/**
 * A WebSocket subscription (the context has `deliverNext`): what SharedExecution's subscribe
 * answers instead of an async iterator. Its events go straight to the socket, so there is nothing
 * to iterate, and a plain object passes Yoga's envelop untouched: no per-plugin iterator wrappers
 * (`onSubscribeResult`, masked errors, metrics) and no pending `next()` per idle subscriber. The
 * transport stops it (`stop`) and learns of its end (`onEnd`: null when the source completed, or
 * the source's failure, masked as Yoga masks it).
 */
export class SocketSubscription {
  /** Who waits for its end; null once it has ended. */
  private endings: Array<(error: GraphQLError | null) => void> | null = [];
  /** How it ended. */
  private outcome: GraphQLError | null = null;

  constructor(private readonly sink: { halt(): void }) {}

  /** Stop it (the client completed it, or its socket closed): nothing more is sent; it ends (null). */
  stop(): void {
    this.sink.halt();
    this.finish(null);
  }

  /** Call `fn` once it ends, however it ends (at once if it has): null, or the source's failure. */
  onEnd(fn: (error: GraphQLError | null) => void): void {
    if (this.endings) this.endings.push(fn);
    else fn(this.outcome);
  }

  /** It ended: the source completed or was stopped (null), or failed (the masked error). */
  finish(error: GraphQLError | null): void {
    const endings = this.endings;
    if (!endings) return;
    this.endings = null;
    this.outcome = error;
    for (const fn of endings) fn(error);
  }
}

/**
 * WebSocket: each event's payload goes straight to the socket. A source that can be driven by
 * callbacks (an EventStream, see streamIterator) is: an idle subscriber then holds no promise and
 * no generator. Any other source is pulled here. The handle answered to the transport settles
 * (`onEnd`) when the source ends (null) or fails (its error, masked).
 */
function sink(
  iterator: AsyncIterator<unknown>,
  executionOf: (event: unknown) => Execution,
  deliver: DeliverNext,
  release: () => void,
  maskError: (error: unknown) => GraphQLError,
): SocketSubscription {
  const consumer = new SocketSink(iterator, executionOf, deliver, release, maskError);
  consumer.source = startStream(iterator, consumer);
  if (!consumer.source) void consumer.pull();
  return consumer.handle;
}

/** One WebSocket subscriber's end of SharedExecution: a class, so it is one object, its methods shared. */
class SocketSink implements StreamConsumer<unknown> {
  /** Gone (the client completed it, or its socket closed): nothing more is sent. */
  private stopped = false;
  /** A source driven by callbacks: what stops it. */
  source: { stop(): void } | null = null;
  readonly handle = new SocketSubscription(this);

  constructor(
    private readonly iterator: AsyncIterator<unknown>,
    private readonly executionOf: (event: unknown) => Execution,
    private readonly deliver: DeliverNext,
    private readonly release: () => void,
    private readonly maskError: (error: unknown) => GraphQLError,
  ) {}

  /** From the handle: stop. */
  halt(): void {
    this.stopped = true;
    this.release();
    if (this.source) this.source.stop();
    else void Promise.resolve(this.iterator.return?.()).catch(() => {});
  }

  /** An event of the source: its group's payload, sent (a promise when the execution is asynchronous). */
  next(event: unknown): void | Promise<void> {
    if (this.stopped) return;
    const json = payloadJson(this.executionOf(event));
    if (typeof json === 'string') return this.deliver(json);
    return json.then((text) => this.send(text));
  }

  /** The source ended (null) or failed. */
  end(error: unknown): void {
    this.release();
    this.handle.finish(error ? this.maskError(error) : null);
  }

  /** A source without callbacks, pulled. */
  async pull(): Promise<void> {
    try {
      for (;;) {
        const step = await this.iterator.next();
        if (step.done || this.stopped) break;
        const json = payloadJson(this.executionOf(step.value));
        this.send(typeof json === 'string' ? json : await json);
      }
    } catch (error) {
      this.end(error);
      return;
    }
    this.end(null);
  }

  /** Nothing more once the subscriber has gone (an execution may finish after that). */
  private send(json: string): void {
    if (!this.stopped) this.deliver(json);
  }
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/**
 * Every field of the credential, in a fixed order. The `satisfies` makes adding a field to Auth
 * a compile error here until it is listed: a new credential property can never be left out of the
 * sharing key by accident.
 */
const AUTH_FIELD_SET = {
  workspaceId: true,
  mode: true,
  role: true,
  partnerId: true,
  credential: true,
  apiKeyId: true,
  memberId: true,
  sessionId: true,
} as const satisfies { [K in keyof Auth]-?: true };
const AUTH_FIELDS = Object.keys(AUTH_FIELD_SET) as Array<keyof Auth>;
