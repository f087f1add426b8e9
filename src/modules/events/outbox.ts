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
 * Append an event in the caller's transaction. The sequence number comes from the tenant's
 * EventCounter row, whose lock is held until the transaction ends: sequence order is commit
 * order per workspace and mode, with no gaps from rolled-back transactions.
 */
export async function appendEvent(tx: Prisma.TransactionClient, tenant: Tenant, event: NewEvent): Promise<{ id: string; sequence: bigint }> {
  const [counter] = await tx.$queryRaw<Array<{ lastSequence: bigint }>>`
    INSERT INTO "EventCounter" ("workspaceId", "mode", "lastSequence")
    VALUES (${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", 1)
    ON CONFLICT ("workspaceId", "mode") DO UPDATE SET "lastSequence" = "EventCounter"."lastSequence" + 1
    RETURNING "lastSequence"`;
  const sequence = BigInt(counter!.lastSequence);
  const row = await tx.event.create({
    data: {
      workspaceId: tenant.workspaceId,
      mode: tenant.mode,
      sequence,
      type: event.type,
      programId: event.programId ?? null,
      partnerId: event.partnerId ?? null,
      payload: event.payload as Prisma.InputJsonValue,
    },
    select: { id: true },
  });
  await tx.$executeRaw`SELECT pg_notify(${EVENTS_CHANNEL}, ${`${tenant.workspaceId}:${tenant.mode}:${sequence}`})`;
  return { id: row.id, sequence };
}
