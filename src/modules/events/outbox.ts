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
 * Append events in the caller's transaction, in order. Sequence numbers come from the tenant's
 * EventCounter row, whose lock is held until the transaction ends: sequence order is commit order
 * per workspace and mode, with no gaps from rolled-back transactions. That lock serializes the
 * tenant's writers from here to their COMMIT, so append as late in the transaction as possible,
 * all at once.
 *
 * - In a plain-SQL transaction (`db.transaction`, the hot paths): one statement — the counter, the
 *   rows and the NOTIFY in one round trip, so the lock is held for that and the COMMIT only.
 * - In a Prisma transaction: two — the counter with the NOTIFY, then the rows through
 *   `createMany`. Not one raw statement there, because Prisma's query-plan cache keys a raw
 *   query by its parameter values: every distinct set of payloads would stay in memory (up to
 *   1000 of them; measured: 48 MB of payloads kept 60 MB of heap).
 */
export async function appendEvents(tx: Prisma.TransactionClient | SqlTx, tenant: Tenant, events: NewEvent[]): Promise<Array<{ sequence: bigint }>> {
  if (events.length === 0) return [];
  const n = events.length;
  const last = 'sql' in tx ? await appendInOneStatement(tx, tenant, events) : await appendThroughPrisma(tx, tenant, events);
  const first = last - BigInt(n) + 1n;
  return events.map((_, i) => ({ sequence: first + BigInt(i) }));
}

/** The counter, the rows and the NOTIFY in one statement; the new last sequence number. */
async function appendInOneStatement(tx: SqlTx, tenant: Tenant, events: NewEvent[]): Promise<bigint> {
  const n = events.length;
  const ids = events.map(() => uuidv7());
  const types = events.map((event) => event.type);
  const programIds = events.map((event) => event.programId ?? null);
  const partnerIds = events.map((event) => event.partnerId ?? null);
  const payloads = events.map((event) => JSON.stringify(event.payload));
  const [appended] = await tx.sql<{ last: bigint | string }>`
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
  return BigInt(appended!.last);
}

/** The counter with the NOTIFY (small parameters), then the rows through createMany; the new last sequence number. */
async function appendThroughPrisma(tx: Prisma.TransactionClient, tenant: Tenant, events: NewEvent[]): Promise<bigint> {
  const n = events.length;
  const [counter] = await tx.$queryRaw<Array<{ last: bigint }>>`
    WITH counter AS (
      INSERT INTO "EventCounter" ("workspaceId", "mode", "lastSequence")
      VALUES (${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${n})
      ON CONFLICT ("workspaceId", "mode") DO UPDATE SET "lastSequence" = "EventCounter"."lastSequence" + ${n}
      RETURNING "lastSequence"
    )
    SELECT "lastSequence" AS "last",
           pg_notify(${EVENTS_CHANNEL}, ${`${tenant.workspaceId}:${tenant.mode}:`} || "lastSequence"::text)::text AS "notified"
      FROM counter`;
  const last = BigInt(counter!.last);
  const first = last - BigInt(n) + 1n;
  await tx.event.createMany({
    data: events.map((event, i) => ({
      workspaceId: tenant.workspaceId,
      mode: tenant.mode,
      sequence: first + BigInt(i),
      type: event.type,
      programId: event.programId ?? null,
      partnerId: event.partnerId ?? null,
      payload: event.payload as Prisma.InputJsonValue,
    })),
  });
  return last;
}

/** Append one event in the caller's transaction (see appendEvents). */
export async function appendEvent(tx: Prisma.TransactionClient | SqlTx, tenant: Tenant, event: NewEvent): Promise<{ sequence: bigint }> {
  const [appended] = await appendEvents(tx, tenant, [event]);
  return appended!;
}
