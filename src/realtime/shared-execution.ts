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
import type { Auth, Context } from '../context.js';

/**
 * Subscription events executed once per group of subscribers whose results are necessarily
 * identical, instead of once per subscriber.
 *
 * Each subscriber keeps its own source stream (its own replay after `after`, its own filters, its
 * own queue): only the execution of one source event is shared. The result of executing `event`
 * for a subscriber is memoized under (the event object, the group key), where the group key is
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
 * A shared execution runs with the context of the subscriber that reached the event first, with
 * fresh per-request loaders; its answer does not depend on whose context it is (same key). The
 * shared ExecutionResult is handed to several consumers and must not be mutated: graphql-ws and
 * Yoga's error masking build new objects from it.
 */
export class SharedExecution {
  /** Per source event: group key → its execution. */
  private readonly memo = new WeakMap<object, Map<string, ExecutionResult | Promise<ExecutionResult>>>();
  private readonly documentIds = new WeakMap<DocumentNode, number>();
  private nextDocumentId = 1;
  /** Executions run (for tests and metrics): one per event and group, not per subscriber. */
  executions = 0;
  /** Executions reused by another subscriber of the same group. */
  reused = 0;

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
  async subscribe(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
    const operation = getOperationAST(args.document, args.operationName);
    if (!operation) return { errors: [new GraphQLError('Unable to identify operation')] };
    // Variable errors are the client's (as Yoga's own executor reports them).
    const coerced = getVariableValues(args.schema, operation.variableDefinitions ?? [], (args.variableValues ?? {}) as Record<string, unknown>, { maxErrors: 50 });
    if (coerced.errors) {
      return {
        errors: coerced.errors.map(
          (error) => new GraphQLError(error.message, { nodes: error.nodes, originalError: error.originalError, extensions: { ...error.extensions, code: 'BAD_USER_INPUT', http: { status: 400 } } }),
        ),
      };
    }
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source as ExecutionResult;
    const iterator = source[Symbol.asyncIterator]();
    const key = this.groupKey(args);
    const run = (event: unknown) => this.executeEvent(event, key, args);
    // Yoga passes an HTTP (SSE) request's signal: a closed request ends the source stream.
    const signal = (args as ExecutionArgs & { signal?: AbortSignal }).signal;
    const abort = () => void iterator.return?.();
    signal?.addEventListener('abort', abort, { once: true });
    const done = () => signal?.removeEventListener('abort', abort);
    const mapped: AsyncIterableIterator<ExecutionResult> = {
      next: async () => {
        const step = await iterator.next();
        if (step.done) {
          done();
          return { value: undefined, done: true };
        }
        return { value: await run(step.value), done: false };
      },
      return: async () => {
        done();
        await iterator.return?.();
        return { value: undefined, done: true };
      },
      throw: async (error: unknown) => {
        done();
        if (iterator.throw) return (await iterator.throw(error)) as IteratorResult<ExecutionResult>;
        throw error;
      },
      [Symbol.asyncIterator]: () => mapped,
    };
    return mapped;
  }

  private executeEvent(event: unknown, key: string | null, args: ExecutionArgs): ExecutionResult | Promise<ExecutionResult> {
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
    const result = this.run(event, args);
    byGroup.set(key, result);
    return result;
  }

  private run(event: unknown, args: ExecutionArgs): ExecutionResult | Promise<ExecutionResult> {
    this.executions++;
    const context = args.contextValue as Context;
    // Fresh loaders: nothing cached from the subscriber's earlier events or another execution.
    return execute({ ...args, rootValue: event, contextValue: { ...context, loaders: new Map() } });
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
} as const satisfies { [K in keyof Auth]-?: true };
const AUTH_FIELDS = Object.keys(AUTH_FIELD_SET) as Array<keyof Auth>;
