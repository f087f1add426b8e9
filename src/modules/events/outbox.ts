import type { Prisma } from '../../generated/prisma/client.js';
import type { Tenant } from '../../graphql/scope.js';
import type { SqlTx } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';

/** Event types written to the outbox. Subscriptions and webhooks are fed from these rows. */
export type EventType =
  | 'conversion.recorded'
  | 'reward.created'
  | 'reward.status_changed'
  | 'partner.created'
  | 'partner.status_changed'
  | 'payout.created'
  | 'payout.paid'
  | 'balance.credited';

export interface NewEvent {
  type: EventType;
  /** Subjects, for scoping (a PARTNER credential sees only its partner's events) and filtering. */
  programId?: string | null;
  partnerId?: string | null;
  /** Small facts and the global ids of the subjects; readers load fresh data per event. */
  payload: Record<string, unknown>;
}

/** The channel NOTIFY'd (at commit) when events are appended: a wake-up for dispatchers. */
export const EVENTS_CHANNEL = 'refgraph_events';

/**
 * Append events in the caller's transaction, in order, with one statement whatever their number.
 * Sequence numbers come from the tenant's EventCounter row, whose lock is held until the
 * transaction ends: sequence order is commit order per workspace and mode, with no gaps from
 * rolled-back transactions. That lock serializes the tenant's writers from this statement to
 * their COMMIT, so append as late in the transaction as possible, all at once: the counter, the
 * rows and the NOTIFY are one round trip, and the lock is held for that and the COMMIT only.
 */
export async function appendEvents(tx: Prisma.TransactionClient | SqlTx, tenant: Tenant, events: NewEvent[]): Promise<Array<{ sequence: bigint }>> {
  if (events.length === 0) return [];
  const n = events.length;
  const ids = events.map(() => uuidv7());
  const types = events.map((event) => event.type);
  const programIds = events.map((event) => event.programId ?? null);
  const partnerIds = events.map((event) => event.partnerId ?? null);
  const payloads = events.map((event) => JSON.stringify(event.payload));
  const sql: SqlTx['sql'] = 'sql' in tx ? tx.sql : (strings, ...values) => tx.$queryRaw(strings, ...values) as never;
  const [appended] = await sql<{ last: bigint | string }>`
    WITH counter AS (
      INSERT INTO "EventCounter" ("workspaceId", "mode", "lastSequence")
      VALUES (${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${n})
      ON CONFLICT ("workspaceId", "mode") DO UPDATE SET "lastSequence" = "EventCounter"."lastSequence" + ${n}
      RETURNING "lastSequence"
    ), rows AS (
      INSERT INTO "Event" ("id", "workspaceId", "mode", "sequence", "type", "programId", "partnerId", "payload", "occurredAt")
      SELECT e.id, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", counter."lastSequence" - ${n} + e.ord, e.type, e."programId", e."partnerId", e.payload, clock_timestamp()
        FROM counter,
             unnest(${ids}::uuid[], ${types}::text[], ${programIds}::uuid[], ${partnerIds}::uuid[], ${payloads}::jsonb[])
               WITH ORDINALITY AS e(id, type, "programId", "partnerId", payload, ord)
      RETURNING 1
    )
    SELECT "lastSequence" AS "last",
           pg_notify(${EVENTS_CHANNEL}, ${`${tenant.workspaceId}:${tenant.mode}:`} || "lastSequence"::text)::text AS "notified",
           (SELECT count(*) FROM rows) AS "written"
      FROM counter`;
  const last = BigInt(appended!.last);
  const first = last - BigInt(n) + 1n;
  return events.map((_, i) => ({ sequence: first + BigInt(i) }));
}

/** Append one event in the caller's transaction (see appendEvents). */
export async function appendEvent(tx: Prisma.TransactionClient | SqlTx, tenant: Tenant, event: NewEvent): Promise<{ sequence: bigint }> {
  const [appended] = await appendEvents(tx, tenant, [event]);
  return appended!;
}
