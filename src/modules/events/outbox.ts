import type { Prisma } from '../../generated/prisma/client.js';
import type { Tenant } from '../../graphql/scope.js';

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
 * Append events in the caller's transaction, in order, with three statements whatever their
 * number. Sequence numbers come from the tenant's EventCounter row, whose lock is held until the
 * transaction ends: sequence order is commit order per workspace and mode, with no gaps from
 * rolled-back transactions. Append as late in the transaction as possible (the lock serializes
 * the tenant's writers until commit), and all at once.
 */
export async function appendEvents(tx: Prisma.TransactionClient, tenant: Tenant, events: NewEvent[]): Promise<Array<{ sequence: bigint }>> {
  if (events.length === 0) return [];
  const n = events.length;
  const [counter] = await tx.$queryRaw<Array<{ lastSequence: bigint }>>`
    INSERT INTO "EventCounter" ("workspaceId", "mode", "lastSequence")
    VALUES (${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${n})
    ON CONFLICT ("workspaceId", "mode") DO UPDATE SET "lastSequence" = "EventCounter"."lastSequence" + ${n}
    RETURNING "lastSequence"`;
  const last = BigInt(counter!.lastSequence);
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
  await tx.$executeRaw`SELECT pg_notify(${EVENTS_CHANNEL}, ${`${tenant.workspaceId}:${tenant.mode}:${last}`})`;
  return events.map((_, i) => ({ sequence: first + BigInt(i) }));
}

/** Append one event in the caller's transaction (see appendEvents). */
export async function appendEvent(tx: Prisma.TransactionClient, tenant: Tenant, event: NewEvent): Promise<{ sequence: bigint }> {
  const [appended] = await appendEvents(tx, tenant, [event]);
  return appended!;
}
