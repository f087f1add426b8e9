import { GraphQLError } from 'graphql';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { tenantOf } from '../../graphql/scope.js';
import type { Tenant } from '../../domain/tenant.js';
import { isUuid, NIL_UUID } from '../../lib/ids.js';
import { sql, type SqlFragment } from '../../lib/sql.js';
import { tenantChannel, type OutboxEvent } from '../../pubsub.js';
import { type FeedListener, type FeedMembership, liveFeedOf } from '../../realtime/live-feed.js';
import { EventStream, type EventSource, type StreamStop, streamIterator } from '../../realtime/event-stream.js';
import { EVENT_COLUMNS, toOutboxEvent } from './dispatcher.js';
import { streamStart } from './retention.js';

const MAX_TYPES = 20;
const PAGE = 100;

/** Opaque, stable cursor of an event: its sequence number in the tenant's stream. */
export function eventCursor(sequence: string | bigint): string {
  return Buffer.from(`evt:${sequence}`).toString('base64url');
}

/** The largest sequence an event can have (PostgreSQL bigint). */
const MAX_SEQUENCE = 9223372036854775807n;

/**
 * The sequence inside a cursor; a BAD_USER_INPUT error naming the argument for a cursor that is
 * not one of ours, or whose number no event can have (it would overflow the bigint column).
 */
export function parseEventCursor(cursor: string | null | undefined, argument = 'after'): bigint | null {
  if (cursor === null || cursor === undefined) return null;
  const match = /^evt:(\d{1,30})$/.exec(Buffer.from(cursor, 'base64url').toString());
  const sequence = match ? BigInt(match[1]!) : null;
  if (sequence === null || sequence > MAX_SEQUENCE) {
    const shown = cursor.length > 80 ? `${cursor.slice(0, 80)}…` : cursor;
    throw new GraphQLError(`${argument}: "${shown}" is not an event cursor: pass an Event.cursor you received.`, {
      extensions: { code: 'BAD_USER_INPUT', field: [argument] },
    });
  }
  return sequence;
}

function checkTypes(types: readonly string[] | null | undefined): void {
  if (types && types.length > MAX_TYPES) {
    throw new GraphQLError(`types takes at most ${MAX_TYPES} event types.`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
}

export const EventRef = builder.objectRef<OutboxEvent>('Event');

builder.node(EventRef, {
  description:
    'One entry of the outbox: every change that matters, in the order it was committed, numbered per workspace and mode. `payload` is JSON with the global ids of its subjects.',
  id: { resolve: (event) => event.id },
  loadMany: async (ids, ctx: Context) => {
    if (!ctx.auth) return ids.map(() => null);
    const valid = ids.filter(isUuid);
    const rows = valid.length ? await eventsWhere(eventScope(ctx), sql`"id" = ANY(${valid}::uuid[])`) : [];
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id) ?? null);
  },
  fields: (t) => ({
    cursor: t.string({
      description: 'Pass as `after` to Query.events or Subscription.events to continue after this event.',
      resolve: (e) => eventCursor(e.sequence),
    }),
    sequence: t.string({
      description: 'Position in the workspace-and-mode stream (1, 2, 3, … in commit order).',
      resolve: (e) => e.sequence,
    }),
    type: t.string({
      description: 'e.g. conversion.recorded, reward.created, reward.status_changed, partner.created, payout.paid.',
      resolve: (e) => e.type,
    }),
    occurredAt: t.field({ type: 'DateTime', resolve: (e) => new Date(e.occurredAt) }),
    payload: t.string({
      description: 'JSON: small facts and the global ids of the subjects.',
      resolve: (e) => JSON.stringify(e.payload),
    }),
  }),
});

/**
 * Whose events a read sees: the caller's tenant and, for a PARTNER credential, only its partner's.
 * What a subscriber's stream keeps instead of its whole context.
 */
interface EventScope {
  db: Context['db'];
  tenant: Tenant;
  /** A PARTNER credential's partner (NIL_UUID when it has none); undefined: every partner's. */
  partnerOnly: string | undefined;
}

function eventScope(ctx: Context): EventScope {
  return {
    db: ctx.db,
    tenant: tenantOf(ctx),
    partnerOnly: ctx.auth?.role === 'PARTNER' ? (ctx.auth.partnerId ?? NIL_UUID) : undefined,
  };
}

/** Events of the scope's tenant (a PARTNER credential: only its partner's) matching `condition`. */
async function eventsWhere(scope: EventScope, condition: SqlFragment, tail = sql.empty): Promise<OutboxEvent[]> {
  const { tenant, partnerOnly } = scope;
  const partner = partnerOnly === undefined ? sql.empty : sql`AND "partnerId" = ${partnerOnly}::uuid`;
  const rows = await scope.db.sql`
    SELECT ${EVENT_COLUMNS}
      FROM "Event"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND ${condition} ${partner}
     ${tail}`;
  return rows.map((row) => toOutboxEvent(row as never));
}

/** Events after `after` (exclusive) and, when given, before `before` (exclusive), oldest first, optionally of some types only. */
export function eventsAfter(
  ctx: Context | EventScope,
  after: bigint,
  types: readonly string[] | null | undefined,
  limit: number,
  before?: bigint,
): Promise<OutboxEvent[]> {
  const conditions = [sql`"sequence" > ${after.toString()}::bigint`];
  if (before !== undefined) conditions.push(sql`"sequence" < ${before.toString()}::bigint`);
  if (types?.length) conditions.push(sql`"type" = ANY(${types}::text[])`);
  // "Event"."sequence", the bigint column: a bare "sequence" would be the text output column (9 after 10).
  const scope = 'tenant' in ctx ? ctx : eventScope(ctx);
  return eventsWhere(scope, sql.join(conditions, sql` AND `), sql`ORDER BY "Event"."sequence" LIMIT ${limit}`);
}

builder.queryField('events', (t) =>
  t.connection(
    {
      type: EventRef,
      description:
        'The outbox, oldest first: page with `after` (an Event.cursor). A PARTNER credential sees only its partner’s events.',
      authScopes: { authenticated: true },
      args: { types: t.arg.stringList({ description: 'Only these event types.' }) },
      resolve: async (_root, args, ctx) => {
        checkTypes(args.types);
        if (args.before || args.last)
          throw new GraphQLError('events pages forward only: use first/after.', {
            extensions: { code: 'BAD_USER_INPUT' },
          });
        const first = Math.min(Math.max(args.first ?? 20, 0), PAGE);
        const cursor = parseEventCursor(args.after);
        // From the start: after the retention horizon. A cursor before it: CURSOR_EXPIRED.
        const after = await streamStart(ctx.db, tenantOf(ctx), cursor, ctx.config.retention.eventDays);
        const rows = await eventsAfter(ctx, after, args.types, first + 1);
        const page = rows.slice(0, first);
        return {
          edges: page.map((node) => ({ cursor: eventCursor(node.sequence), node })),
          pageInfo: {
            hasNextPage: rows.length > first,
            hasPreviousPage: cursor !== null && cursor > 0n,
            startCursor: page[0] ? eventCursor(page[0].sequence) : null,
            endCursor: page.length ? eventCursor(page[page.length - 1]!.sequence) : null,
          },
        };
      },
    },
    { name: 'EventConnection' },
    { name: 'EventEdge' },
  ),
);

/**
 * The caller's events (a PARTNER credential: its partner's), optionally only some types and only
 * those `keep` keeps: the stored ones after `after` (null: none, live only), then live ones, with
 * no gap and no duplicate (see realtime/event-stream.ts).
 */
export function tenantEventStream(
  ctx: Context,
  after: bigint | null,
  types: readonly string[] | null | undefined,
  options: { keep?: (event: OutboxEvent) => boolean; stop?: StreamStop } = {},
): EventStream {
  // What the stream needs of the context, not the context: a subscriber keeps this for its life.
  const scope = eventScope(ctx);
  const { partnerOnly } = scope;
  const { keep } = options;
  const source = new TenantEvents(scope, ctx.pubsub);
  return new EventStream(source, {
    after,
    stop: options.stop,
    wanted: (e) =>
      (!types?.length || types.includes(e.type)) &&
      (partnerOnly === undefined || e.partnerId === partnerOnly) &&
      (keep === undefined || keep(e)),
  });
}

/** A tenant's feed and table (an EventSource): a class, so a subscriber holds one small object. */
class TenantEvents implements EventSource {
  private readonly channel: string;

  constructor(
    private readonly scope: EventScope,
    private readonly pubsub: Context['pubsub'],
  ) {
    this.channel = tenantChannel(scope.tenant.workspaceId, scope.tenant.mode);
  }

  join(listener: FeedListener): FeedMembership {
    return liveFeedOf(this.pubsub).join(this.channel, listener);
  }

  listening(): Promise<void> {
    return this.pubsub.listening('outbox', this.channel);
  }

  read(after: bigint, limit: number, before?: bigint): Promise<OutboxEvent[]> {
    return eventsAfter(this.scope, after, null, limit, before);
  }
}

/** tenantEventStream as an async generator (joins the feed on its first next()). */
export function eventStream(
  ctx: Context,
  after: bigint | null,
  types: readonly string[] | null | undefined,
  /** Ends the stream at once, even while it waits for an event (see endOnReturn). */
  stop?: StreamStop,
): AsyncGenerator<OutboxEvent> {
  return tenantEventStream(ctx, after, types, { stop }).events();
}

builder.subscriptionField('events', (t) =>
  t.field({
    type: EventRef,
    description:
      'The resumable stream of the outbox for this credential’s scope. With `after`, first the stored events after that cursor, then live ones, with no gap and no duplicate.',
    authScopes: { authenticated: true },
    args: { after: t.arg.string(), types: t.arg.stringList() },
    subscribe: async (_root, args, ctx) => {
      checkTypes(args.types);
      const cursor = parseEventCursor(args.after);
      // Live only without a cursor; a cursor before the retention horizon: CURSOR_EXPIRED.
      const after =
        cursor === null ? null : await streamStart(ctx.db, tenantOf(ctx), cursor, ctx.config.retention.eventDays);
      // Iterated for SSE; driven by callbacks over the WebSocket (see streamIterator).
      return streamIterator(tenantEventStream(ctx, after, args.types));
    },
    resolve: (event) => {
      return event;
    },
  }),
);
