import { GraphQLError } from 'graphql';
import type { Context } from '../../context.js';
import { builder } from '../../graphql/builder.js';
import { tenantOf } from '../../graphql/scope.js';
import { isUuid } from '../../lib/ids.js';
import { tenantChannel, type OutboxEvent } from '../../pubsub.js';
import { toOutboxEvent } from './dispatcher.js';

const MAX_TYPES = 20;
const PAGE = 100;

/** Opaque, stable cursor of an event: its sequence number in the tenant's stream. */
export function eventCursor(sequence: string | bigint): string {
  return Buffer.from(`evt:${sequence}`).toString('base64url');
}

/** The sequence inside a cursor; a GraphQL error for a cursor that is not one of ours. */
export function parseEventCursor(cursor: string | null | undefined): bigint | null {
  if (cursor === null || cursor === undefined) return null;
  const match = /^evt:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new GraphQLError(`"${cursor}" is not an event cursor: pass an Event.cursor you received.`, { extensions: { code: 'BAD_USER_INPUT' } });
  return BigInt(match[1]!);
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
    const rows = valid.length ? await eventsWhere(ctx, `"id" = ANY($3::uuid[])`, [valid]) : [];
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id) ?? null);
  },
  fields: (t) => ({
    cursor: t.string({ description: 'Pass as `after` to Query.events or Subscription.events to continue after this event.', resolve: (e) => eventCursor(e.sequence) }),
    sequence: t.string({ description: 'Position in the workspace-and-mode stream (1, 2, 3, … in commit order).', resolve: (e) => e.sequence }),
    type: t.string({ description: 'e.g. conversion.recorded, reward.created, reward.status_changed, partner.created, payout.paid.', resolve: (e) => e.type }),
    occurredAt: t.field({ type: 'DateTime', resolve: (e) => new Date(e.occurredAt) }),
    payload: t.string({ description: 'JSON: small facts and the global ids of the subjects.', resolve: (e) => JSON.stringify(e.payload) }),
  }),
});

/** Events of the caller's tenant (a PARTNER credential: only its partner's) matching `condition`. */
async function eventsWhere(ctx: Context, condition: string, params: unknown[], tail = ''): Promise<OutboxEvent[]> {
  const tenant = tenantOf(ctx);
  const partnerOnly = ctx.auth?.role === 'PARTNER';
  const rows = await ctx.db.query(
    `SELECT "id", "workspaceId", "mode", "sequence"::text AS "sequence", "type", "programId", "partnerId", "occurredAt", "payload"
       FROM "Event"
      WHERE "workspaceId" = $1::uuid AND "mode" = $2::"Mode" AND ${condition}
        ${partnerOnly ? `AND "partnerId" = '${ctx.auth!.partnerId}'::uuid` : ''}
      ${tail}`,
    [tenant.workspaceId, tenant.mode, ...params],
  );
  return rows.map((row) => toOutboxEvent(row as never));
}

/** Events after `after` (exclusive), oldest first, optionally of some types only. */
export function eventsAfter(ctx: Context, after: bigint, types: readonly string[] | null | undefined, limit: number): Promise<OutboxEvent[]> {
  return types?.length
    ? eventsWhere(ctx, `"sequence" > $3::bigint AND "type" = ANY($4::text[])`, [after.toString(), types], `ORDER BY "sequence" LIMIT ${limit}`)
    : eventsWhere(ctx, `"sequence" > $3::bigint`, [after.toString()], `ORDER BY "sequence" LIMIT ${limit}`);
}

builder.queryField('events', (t) =>
  t.connection(
    {
      type: EventRef,
      description: 'The outbox, oldest first: page with `after` (an Event.cursor). A PARTNER credential sees only its partner’s events.',
      authScopes: { authenticated: true },
      args: { types: t.arg.stringList({ description: 'Only these event types.' }) },
      resolve: async (_root, args, ctx) => {
        checkTypes(args.types);
        if (args.before || args.last) throw new GraphQLError('events pages forward only: use first/after.', { extensions: { code: 'BAD_USER_INPUT' } });
        const first = Math.min(Math.max(args.first ?? 20, 0), PAGE);
        const after = parseEventCursor(args.after) ?? 0n;
        const rows = await eventsAfter(ctx, after, args.types, first + 1);
        const page = rows.slice(0, first);
        return {
          edges: page.map((node) => ({ cursor: eventCursor(node.sequence), node })),
          pageInfo: {
            hasNextPage: rows.length > first,
            hasPreviousPage: after > 0n,
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
 * The tenant's live events, optionally after a cursor: first the stored events after it, then
 * live ones, with no gap and no duplicate at the seam (live events are buffered while the replay
 * runs, duplicates are dropped by sequence, and a jump in sequence is back-filled from the table).
 */
export async function* eventStream(ctx: Context, after: bigint | null, types: readonly string[] | null | undefined): AsyncGenerator<OutboxEvent> {
  const tenant = tenantOf(ctx);
  const live = ctx.pubsub.subscribe('outbox', tenantChannel(tenant.workspaceId, tenant.mode));
  // Start listening before reading the table, so nothing committed in between is missed.
  let pending = live.next();
  const wanted = (e: OutboxEvent) =>
    (!types?.length || types.includes(e.type)) && (ctx.auth?.role !== 'PARTNER' || e.partnerId === ctx.auth.partnerId);
  let last = after;
  try {
    if (last !== null) {
      for (;;) {
        const page = await eventsAfter(ctx, last, null, PAGE);
        for (const event of page) {
          last = BigInt(event.sequence);
          if (wanted(event)) yield event;
        }
        if (page.length < PAGE) break;
      }
    }
    for (;;) {
      const next = await pending;
      if (next.done) return;
      pending = live.next();
      const event = next.value;
      const sequence = BigInt(event.sequence);
      if (last !== null && sequence <= last) continue;
      if (last !== null && sequence > last + 1n) {
        for (const missed of await eventsAfter(ctx, last, null, Number(sequence - last - 1n))) {
          last = BigInt(missed.sequence);
          if (wanted(missed)) yield missed;
        }
      }
      last = sequence;
      if (wanted(event)) yield event;
    }
  } finally {
    await live.return?.();
  }
}

builder.subscriptionField('events', (t) =>
  t.field({
    type: EventRef,
    description:
      'The resumable stream of the outbox for this credential’s scope. With `after`, first the stored events after that cursor, then live ones, with no gap and no duplicate.',
    authScopes: { authenticated: true },
    args: { after: t.arg.string(), types: t.arg.stringList() },
    subscribe: (_root, args, ctx) => {
      checkTypes(args.types);
      return eventStream(ctx, parseEventCursor(args.after), args.types);
    },
    resolve: (event, _args, ctx) => {
      ctx.loaders.clear(); // every event is resolved with fresh data
      return event;
    },
  }),
);
