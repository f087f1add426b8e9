import type { Prisma, PrismaClient } from '../../generated/prisma/client.js';
import type { Tenant } from '../../domain/tenant.js';
import type { SqlTransaction, SqlTx } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';

/**
 * Event types written to the outbox (DOMAIN.md, "Event types": those whose change exists today).
 * Subscriptions and webhooks are fed from these rows; payloads are built in payloads.ts only.
 */
export type EventType =
  | 'program.created'
  | 'program.updated'
  | 'reward_rule.created'
  | 'reward_rule.updated'
  | 'reward_rule.archived'
  | 'tier.created'
  | 'tier.updated'
  | 'tier.deleted'
  | 'tier.changed'
  | 'partner.created'
  | 'partner.updated'
  | 'partner.status_changed'
  | 'partner.erased'
  | 'enrollment.applied'
  | 'enrollment.status_changed'
  | 'enrollment.overrides_changed'
  | 'link.created'
  | 'link.updated'
  | 'link.disabled'
  | 'coupon.created'
  | 'coupon.disabled'
  | 'conversion.recorded'
  | 'referral.status_changed'
  | 'reward.created'
  | 'reward.status_changed'
  | 'balance.credited'
  | 'payout.created'
  | 'payout.paid'
  | 'payout.failed'
  | 'payout.canceled'
  | 'review.opened'
  | 'review.resolved'
  | 'api_key.created'
  | 'api_key.revoked'
  | 'member.invited'
  | 'member.joined'
  | 'member.removed'
  | 'integration.connected'
  | 'integration.disconnected'
  | 'integration.failed';

export interface NewEvent {
  type: EventType;
  /** Subjects, for scoping (a PARTNER credential sees only its partner's events) and filtering. */
  programId?: string | null;
  partnerId?: string | null;
  /** Small facts and the global ids of the subjects; readers load fresh data per event. */
  payload: Record<string, unknown>;
}

/** The channel NOTIFY'd (at commit, payload "<workspaceId>:<mode>") when events are appended: a wake-up for dispatchers. */
export const EVENTS_CHANNEL = 'refgraph_events';

/**
 * Append events in the caller's transaction, in order. They are numbered when the transaction
 * commits, not here: each row is inserted with a provisional negative number, and a deferred
 * constraint trigger (migration `20261122033000_event_numbered_at_commit`) numbers all of the
 * transaction's events from the tenant's EventCounter row during COMMIT (one counter update, in
 * insertion order), sets their `occurredAt` to the commit's time, and NOTIFYs the dispatchers. The
 * counter's row lock is taken inside the commit and released with it, so sequence order is commit
 * order per workspace and mode, without gaps from rolled-back transactions, and no writer of the
 * tenant waits for another's round trips (only for its commit). Readers never see a provisional
 * number: it is replaced before the row becomes visible.
 *
 * Resolves with the events' ids, in order (their numbers can be read by id once committed).
 *
 * - In a plain-SQL transaction (`db.transaction`, the hot paths): one multi-row INSERT.
 * - In a Prisma transaction: `createMany`, not a raw statement, because Prisma's query-plan cache
 *   keys a raw query by its parameter values: every distinct set of payloads would stay in memory
 *   (up to 1000 of them; measured: 48 MB of payloads kept 60 MB of heap).
 * - `{ beforeCommit: true }`, in a `db.transaction` whose last statement this is: the INSERT is sent
 *   with `sqlBeforeCommit`, so that COMMIT travels with it (one round trip fewer); a failure of it
 *   fails the transaction at commit.
 */
export async function appendEvents(
  tx: Prisma.TransactionClient | SqlTx | SqlTransaction,
  tenant: Tenant,
  events: readonly NewEvent[],
  options: { beforeCommit?: boolean } = {},
): Promise<string[]> {
  if (events.length === 0) return [];
  const ids = events.map(() => uuidv7());
  if (!('sql' in tx)) {
    await tx.event.createMany({
      data: events.map((event, i) => ({
        id: ids[i]!,
        workspaceId: tenant.workspaceId,
        mode: tenant.mode,
        type: event.type,
        programId: event.programId ?? null,
        partnerId: event.partnerId ?? null,
        payload: event.payload as Prisma.InputJsonValue,
      })),
    });
    return ids;
  }
  const types = events.map((event) => event.type);
  const programIds = events.map((event) => event.programId ?? null);
  const partnerIds = events.map((event) => event.partnerId ?? null);
  const payloads = events.map((event) => JSON.stringify(event.payload));
  if (options.beforeCommit && 'sqlBeforeCommit' in tx) {
    tx.sqlBeforeCommit`
    INSERT INTO "Event" ("id", "workspaceId", "mode", "type", "programId", "partnerId", "payload", "occurredAt")
    SELECT e.id, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", e.type, e."programId", e."partnerId", e.payload, clock_timestamp()
      FROM unnest(${ids}::uuid[], ${types}::text[], ${programIds}::uuid[], ${partnerIds}::uuid[], ${payloads}::jsonb[])
             WITH ORDINALITY AS e(id, type, "programId", "partnerId", payload, ord)
     ORDER BY e.ord`;
    return ids;
  }
  await tx.sql`
    INSERT INTO "Event" ("id", "workspaceId", "mode", "type", "programId", "partnerId", "payload", "occurredAt")
    SELECT e.id, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", e.type, e."programId", e."partnerId", e.payload, clock_timestamp()
      FROM unnest(${ids}::uuid[], ${types}::text[], ${programIds}::uuid[], ${partnerIds}::uuid[], ${payloads}::jsonb[])
             WITH ORDINALITY AS e(id, type, "programId", "partnerId", payload, ord)
     ORDER BY e.ord`;
  return ids;
}

/** Append one event in the caller's transaction (see appendEvents). */
export async function appendEvent(
  tx: Prisma.TransactionClient | SqlTx,
  tenant: Tenant,
  event: NewEvent,
): Promise<string> {
  const [id] = await appendEvents(tx, tenant, [event]);
  return id!;
}

/**
 * Run `fn` in a transaction: the caller's, when `db` already is one, or a new interactive one.
 * For services that take either and append an event with their change.
 */
export function inTransaction<T>(
  db: PrismaClient | Prisma.TransactionClient,
  fn: (tx: Prisma.TransactionClient) => Promise<T>,
): Promise<T> {
  return '$transaction' in db ? db.$transaction(fn) : fn(db);
}
