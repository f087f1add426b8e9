import type { AdvisoryLock, Database } from '../../db.js';
import type { Mode } from '../../generated/prisma/enums.js';
import { rowIdOf } from '../../lib/global-id.js';
import { sql } from '../../lib/sql.js';
import type { Logger } from '../../logger.js';
import { tenantChannel, type OutboxEvent, type PubSubHandle } from '../../pubsub.js';
import { EVENTS_CHANNEL } from './outbox.js';

/** The columns of an outbox row as toOutboxEvent reads them (the sequence as text: bigint-safe on both drivers). */
export const EVENT_COLUMNS = sql`"id", "workspaceId", "mode", "sequence"::text AS "sequence", "type", "programId", "partnerId", "occurredAt", "payload"`;

/** Advisory-lock key of the single dispatcher that publishes to a shared (Redis) pub/sub. */
const DISPATCH_LOCK_KEY = 1919249001;
const BATCH = 500;
/** The Redis hash of the dispatch cursors (per tenant), after the installation's REDIS_PREFIX. */
export const CURSORS_KEY = 'dispatch:cursors';

export interface DispatcherOptions {
  /** Fallback poll when no NOTIFY arrives (a lost wake-up, a reconnect). */
  pollIntervalMs: number;
}

type EventRow = {
  id: string;
  workspaceId: string;
  mode: Mode;
  sequence: string | bigint | number;
  type: string;
  programId: string | null;
  partnerId: string | null;
  occurredAt: Date | string;
  payload: unknown;
};

/**
 * Delivers committed outbox events to the pub/sub, per tenant in sequence order, at least once.
 *
 * - Wake-up: LISTEN/NOTIFY (the commit that numbers events notifies); fallback: a poll of EventCounter.
 * - In memory (one process's pub/sub): every instance dispatches to its own subscribers.
 * - Redis (shared pub/sub): one instance at a time dispatches (PostgreSQL advisory lock), with
 *   its cursors kept in Redis, so each event is published once and a new leader carries on.
 * Subscribers drop duplicates by sequence, so at-least-once never shows twice.
 */
export class EventDispatcher {
  private cursors = new Map<string, bigint>();
  private chains = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private leadership: AdvisoryLock | null = null;
  private stopped = false;
  /** Published events, for tests and metrics. */
  published = 0;

  constructor(
    private readonly db: Database,
    private readonly bus: PubSubHandle,
    private readonly logger: Logger,
    private readonly options: DispatcherOptions,
  ) {}

  private get cursorsKey(): string {
    return this.bus.redisPrefix + CURSORS_KEY;
  }

  /**
   * The tenant's events up to this sequence have been published, or never will be (retention may
   * delete them); null: no bound. Shared pub/sub: the cursor kept in Redis for whichever instance
   * leads (without one, a new leader starts after the events already committed). In memory: this
   * instance's own cursor (0 until it has dispatched the tenant once).
   */
  async dispatchedThrough(workspaceId: string, mode: Mode): Promise<bigint | null> {
    const key = tenantChannel(workspaceId, mode);
    if (!this.bus.distributed) return this.cursors.get(key) ?? 0n;
    const stored = await this.bus.redis!.hget(this.cursorsKey, key);
    return stored === null ? null : BigInt(stored);
  }

  async start(): Promise<void> {
    this.unlisten = await this.db.listen(EVENTS_CHANNEL, (payload) => this.onNotify(payload));
    if (!this.bus.distributed) await this.snapshotCursors();
    await this.poll();
    this.schedulePoll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.unlisten?.().catch(() => {});
    await Promise.allSettled([...this.chains.values()]);
    await this.leadership?.release().catch(() => {});
    this.leadership = null;
  }

  /**
   * Events committed but not yet published, over all tenants: each tenant's newest committed
   * sequence (EventCounter, one row per workspace and mode) minus the newest this dispatcher — or,
   * with a shared pub/sub, the leader — has published. Read on a metrics scrape.
   */
  async lag(): Promise<number> {
    const counters = await this.db.sql<{ workspaceId: string; mode: Mode; lastSequence: string }>`
      SELECT "workspaceId", "mode", "lastSequence"::text AS "lastSequence" FROM "EventCounter"`;
    const stored = this.bus.distributed && !this.leadership ? await this.bus.redis!.hgetall(this.cursorsKey) : null;
    let lag = 0n;
    for (const row of counters) {
      const key = tenantChannel(row.workspaceId, row.mode);
      // A tenant the leader has no cursor for yet is taken up from its current sequence (see isLeader).
      const published = stored ? BigInt(stored[key] ?? row.lastSequence) : (this.cursors.get(key) ?? 0n);
      const behind = BigInt(row.lastSequence) - published;
      if (behind > 0n) lag += behind;
    }
    return Number(lag);
  }

  /** Publish everything committed so far (tests call this to wait for delivery). */
  async drain(): Promise<void> {
    await this.poll();
    await Promise.allSettled([...this.chains.values()]);
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.poll()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'event dispatch poll failed'))
        .finally(() => this.schedulePoll());
    }, this.options.pollIntervalMs);
    this.timer.unref();
  }

  /** Live-only start for in-memory delivery: what was committed before start is not replayed. */
  private async snapshotCursors(): Promise<void> {
    const rows = await this.db.sql<{ workspaceId: string; mode: Mode; lastSequence: string }>`
      SELECT "workspaceId", "mode", "lastSequence"::text AS "lastSequence" FROM "EventCounter"`;
    for (const row of rows) this.cursors.set(tenantChannel(row.workspaceId, row.mode), BigInt(row.lastSequence));
  }

  private async isLeader(): Promise<boolean> {
    if (!this.bus.distributed) return true;
    if (this.leadership) return true;
    const lock = await this.db.tryAdvisoryLock(DISPATCH_LOCK_KEY);
    if (!lock) return false;
    this.leadership = lock;
    lock.onLost((reason) => {
      if (this.leadership !== lock) return;
      // PostgreSQL has let go of the lock: another instance may lead already. Stop publishing;
      // the next poll tries for the lock again (and, if it wins, carries on from the Redis cursors).
      this.leadership = null;
      if (!this.stopped) this.logger.warn({ reason }, 'lost the dispatch lock: this instance stops dispatching events');
    });
    // A new leader continues from the cursors the last one kept (at least once).
    const stored = await this.bus.redis!.hgetall(this.cursorsKey);
    const counters = await this.db.sql<{ workspaceId: string; mode: Mode; lastSequence: string }>`
      SELECT "workspaceId", "mode", "lastSequence"::text AS "lastSequence" FROM "EventCounter"`;
    this.cursors.clear();
    for (const row of counters) {
      const key = tenantChannel(row.workspaceId, row.mode);
      this.cursors.set(key, stored[key] !== undefined ? BigInt(stored[key]) : BigInt(row.lastSequence));
    }
    this.logger.info('this instance now dispatches events to the shared pub/sub');
    return true;
  }

  private onNotify(payload: string): void {
    const [workspaceId, mode] = payload.split(':');
    if (!workspaceId || (mode !== 'TEST' && mode !== 'LIVE')) return;
    // A follower tries for leadership on its poll only, not with a new connection per event.
    if (this.bus.distributed && !this.leadership) return;
    void this.isLeader()
      .then((leader) => (leader ? this.dispatchTenant(workspaceId, mode) : undefined))
      .catch((error: unknown) => this.logger.warn({ err: error }, 'event dispatch failed'));
  }

  private async poll(): Promise<void> {
    if (this.stopped || !(await this.isLeader())) return;
    const counters = await this.db.sql<{ workspaceId: string; mode: Mode; lastSequence: string }>`
      SELECT "workspaceId", "mode", "lastSequence"::text AS "lastSequence" FROM "EventCounter"`;
    await Promise.all(
      counters
        .filter((row) => BigInt(row.lastSequence) > (this.cursors.get(tenantChannel(row.workspaceId, row.mode)) ?? 0n))
        .map((row) => this.dispatchTenant(row.workspaceId, row.mode)),
    );
  }

  /** One chain per tenant keeps its events in order. */
  private dispatchTenant(workspaceId: string, mode: Mode): Promise<void> {
    const key = tenantChannel(workspaceId, mode);
    const next = (this.chains.get(key) ?? Promise.resolve()).then(() => this.publishFrom(workspaceId, mode, key));
    const settled = next.catch((error: unknown) =>
      this.logger.warn({ err: error, tenant: key }, 'event dispatch failed'),
    );
    this.chains.set(key, settled);
    return settled;
  }

  /**
   * A key revoked anywhere — by revokeApiKey on another instance without Redis, or by `refgraph key
   * revoke` in another process — reaches this instance's key cache and sockets through its event,
   * as `keyRevoked` (revokeApiKey also publishes it at once; a second one is harmless).
   */
  private announceRevocation(event: OutboxEvent): void {
    const apiKeyId = rowIdOf('ApiKey', String(event.payload['apiKeyId'] ?? ''));
    if (apiKeyId) this.bus.pubsub.publish('keyRevoked', { apiKeyId });
  }

  /**
   * A member removed anywhere reaches this instance's session cache and sockets through its event,
   * as `memberSessions` (removeMember also publishes it at once; a second one is harmless).
   */
  private announceRemoval(event: OutboxEvent): void {
    const memberId = rowIdOf('Member', String(event.payload['memberId'] ?? ''));
    if (memberId) this.bus.pubsub.publish('memberSessions', { memberId, ended: true });
  }

  private async publishFrom(workspaceId: string, mode: Mode, key: string): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const after = this.cursors.get(key) ?? 0n;
      // "Event"."sequence", the bigint column: a bare "sequence" is the text output column (9 after 10).
      // A prepared statement: it runs after nearly every commit that appends events (one text).
      const rows = await this.db.prepared.sql<EventRow>`
        SELECT ${EVENT_COLUMNS}
          FROM "Event" WHERE "workspaceId" = ${workspaceId}::uuid AND "mode" = ${mode}::"Mode" AND "sequence" > ${after.toString()}::bigint
         ORDER BY "Event"."sequence" LIMIT ${BATCH}`;
      if (rows.length === 0) return;
      for (const row of rows) {
        const event = toOutboxEvent(row);
        this.bus.pubsub.publish('outbox', key, event);
        this.published++;
        if (event.type === 'api_key.revoked') this.announceRevocation(event);
        if (event.type === 'member.removed') this.announceRemoval(event);
      }
      const last = BigInt(String(rows[rows.length - 1]!.sequence));
      this.cursors.set(key, last);
      if (this.bus.distributed) await this.bus.redis!.hset(this.cursorsKey, key, last.toString());
      if (rows.length < BATCH) return;
    }
  }
}

export function toOutboxEvent(row: EventRow): OutboxEvent {
  return {
    id: row.id,
    workspaceId: row.workspaceId,
    mode: row.mode,
    sequence: String(row.sequence),
    type: row.type,
    programId: row.programId,
    partnerId: row.partnerId,
    occurredAt: new Date(row.occurredAt).toISOString(),
    payload: (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload) as Record<string, unknown>,
  };
}
