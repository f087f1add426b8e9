import { createHmac, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import type { ClickConfig } from '../../config.js';
import type { EnrollmentStatus, Mode, PartnerStatus, ProgramStatus } from '../../generated/prisma/enums.js';
import { DomainError, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { type SqlFragment, sql } from '../../lib/sql.js';
import type { Logger } from '../../logger.js';
import { normalizeCode } from '../link/codes.js';
import { formatUuid, uuidv7Bytes } from '../../lib/uuid.js';
import { isBotUserAgent } from './bots.js';
import { ClickIdCodec, deriveKey, type DecodedClickId } from './click-id.js';

// The click path: find a link by code (cached briefly), acknowledge the click at once with a
// self-contained click id, write the rows in the background in batches. See README.md.

export const USER_AGENT_MAX = 512;
export const URL_MAX = 2048;
/** No code is longer (vanity codes: 32, generated: 8), so a longer one is unknown without asking. */
const CODE_SHAPE = /^[A-Za-z0-9_-]{1,64}$/;
/** Links remembered at most; the oldest is forgotten first. */
const LINK_CACHE_MAX = 10_000;
const HOUR_MS = 3_600_000;
/** ClickVisitor rows deleted per statement, at most. */
const VISITOR_PRUNE_BATCH = 10_000;

/** What the click path needs to know about a link: one row, read in one statement. */
export interface LinkFacts {
  linkId: string;
  workspaceId: string;
  mode: Mode;
  programId: string;
  partnerId: string;
  /** As created (case preserved): the `ref` parameter of redirects. */
  code: string;
  /** The link's destination, else its program's; null: neither has one. */
  destinationUrl: string | null;
  disabled: boolean;
  partnerStatus: PartnerStatus;
  programStatus: ProgramStatus;
  enrollmentStatus: EnrollmentStatus;
}

/**
 * Why a click is recorded but never counted nor rewardable, machine-readable: BOT (the visitor's
 * user agent is a bot's or a link preview's), PARTNER_INACTIVE, PARTNER_BANNED, PROGRAM_DRAFT,
 * PROGRAM_PAUSED, PROGRAM_ARCHIVED, ENROLLMENT_PENDING, ENROLLMENT_REJECTED. (A disabled link
 * records nothing: LINK_DISABLED.) Stored in `Click.discardReason`.
 */
export type DiscardReason =
  | 'BOT'
  | `PARTNER_${'INACTIVE' | 'BANNED'}`
  | `PROGRAM_${'DRAFT' | 'PAUSED' | 'ARCHIVED'}`
  | `ENROLLMENT_${'PENDING' | 'REJECTED'}`;

/**
 * Why a click by a visitor with this (clipped) user agent on `link` does not count, or null.
 * BOT first: a bot's visit is a bot's visit whatever the link's state, so `botClicks` counts them all.
 */
export function clickDiscardReason(link: LinkFacts, userAgent: string | null): DiscardReason | null {
  return isBotUserAgent(userAgent) ? 'BOT' : discardReasonOf(link);
}

export function discardReasonOf(link: LinkFacts): DiscardReason | null {
  if (link.partnerStatus !== 'ACTIVE') return `PARTNER_${link.partnerStatus}`;
  if (link.programStatus !== 'ACTIVE') return `PROGRAM_${link.programStatus}`;
  if (link.enrollmentStatus !== 'APPROVED') return `ENROLLMENT_${link.enrollmentStatus}`;
  return null;
}

/** What a visitor's request says about them. Raw values: the recorder clips and hashes them. */
export interface ClickDetails {
  ip?: string | null;
  userAgent?: string | null;
  referrerUrl?: string | null;
  landingUrl?: string | null;
}

/** An acknowledged click: its row will be written within the flush interval. */
export interface RecordedClick {
  /** The signed token to hand out (`ck_…`): see click-id.ts. */
  clickId: string;
  /** The Click row's id (UUIDv7). */
  clickRowId: string;
  occurredAt: Date;
  discarded: boolean;
  discardReason: DiscardReason | null;
}

/** A Click row as written, in column order of clickBatchStatement. */
export interface ClickRow {
  id: string;
  workspaceId: string;
  mode: Mode;
  linkId: string;
  programId: string;
  partnerId: string;
  occurredAt: string;
  ipHash: string | null;
  userAgent: string | null;
  referrerUrl: string | null;
  landingUrl: string | null;
  discarded: boolean;
  discardReason: DiscardReason | null;
}

/** Runs one SQL statement: the driver's `query(text, params)` (the app's `db.query`; tests pass their own). */
export type QueryFn = (sql: string, params: unknown[]) => Promise<unknown>;

export interface ClickRecorderOptions extends Partial<ClickConfig> {
  query: QueryFn;
  /** The installation secret: keys for click ids and IP hashes are derived from it. */
  secret: string;
  logger?: Logger;
  /** First delay before retrying a failed write; doubles up to maxRetryDelayMs. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** How long stop() keeps retrying an unreachable database before it logs the unwritten clicks and gives up. */
  stopTimeoutMs?: number;
}

export interface ClickRecorderStats {
  /** Clicks acknowledged (queued) since start. */
  acknowledged: number;
  /** Click rows written. */
  written: number;
  /** Clicks acknowledged as discarded (never counted nor rewardable: a bot; partner, program or enrollment not active). */
  discarded: number;
  /** Of those, clicks of bots and link previews (discardReason BOT). */
  bots: number;
  /** Clicks given up: a row the database refuses (e.g. its workspace was deleted), or unwritten at the stop deadline. Logged. */
  dropped: number;
  /** Waiting to be written (including a batch being written). */
  queued: number;
  /** INSERT statements that succeeded. */
  batches: number;
  /** INSERT statements that failed and were retried. */
  failedWrites: number;
  /** Clicks that had to wait for room in a full queue. */
  waitedForRoom: number;
  /** Link lookups that went to the database (cache misses). */
  linkLookups: number;
  /** ClickVisitor rows of past hours deleted (see pruneVisitors). */
  visitorsPruned: number;
}

/** The link with this normalized code, and the statuses that decide whether its clicks count. */
const linkStatement = (codeNormalized: string) => sql`
SELECT l."id" AS "linkId", l."workspaceId", l."mode"::text AS "mode", l."programId", l."partnerId", l."code",
       coalesce(l."destinationUrl", p."destinationUrl") AS "destinationUrl",
       l."disabledAt" IS NOT NULL AS "disabled",
       pa."status"::text AS "partnerStatus", p."status"::text AS "programStatus", e."status"::text AS "enrollmentStatus"
  FROM "ReferralLink" l
  JOIN "Program" p ON p."id" = l."programId"
  JOIN "Partner" pa ON pa."id" = l."partnerId"
  JOIN "Enrollment" e ON e."id" = l."enrollmentId"
 WHERE l."codeNormalized" = ${codeNormalized}`;

// One statement per batch whatever its size: the rows travel as 13 arrays, so the text (and the
// server's plan) never changes and no batch can hit the 65 535-parameter limit. Enum arrays go as
// text[] because PGlite cannot serialize an array of a user-defined type. ON CONFLICT makes a
// retry of a batch that did commit (but whose answer was lost) harmless.
//
// Unique visitors are decided by the same statement: the batch's counted clicks with an IP hash
// claim their (UTC hour, link, visitor) in ClickVisitor — the earliest click of each in the batch,
// in key order so that two batches written at once (two writers, two instances) take their
// row locks in the same order and cannot deadlock — and the clicks whose claim was inserted are
// the unique ones. A claim already there (an earlier batch, or one committing meanwhile: ON
// CONFLICT waits for it) is not inserted, so its clicks are repeats. `visitor` is the first 16
// bytes of SHA-256(ipHash, "\n", userAgent): the same visitor on every instance, nothing to read
// back. A click without an IP hash cannot be told from another visitor's: it counts as unique.
// A retry of a committed batch inserts no claim and no click, so it changes nothing.
// Exported for tests (they write rows with times of their own choosing).
export function clickBatchStatement(rows: readonly ClickRow[]) {
  const [
    id,
    workspaceId,
    mode,
    linkId,
    programId,
    partnerId,
    occurredAt,
    ipHash,
    userAgent,
    referrerUrl,
    landingUrl,
    discarded,
    discardReason,
  ] = columns(rows);
  return sql`
WITH u AS (
  SELECT * FROM unnest(${id}::uuid[], ${workspaceId}::uuid[], ${mode}::text[], ${linkId}::uuid[], ${programId}::uuid[], ${partnerId}::uuid[], ${occurredAt}::timestamptz[], ${ipHash}::text[], ${userAgent}::text[], ${referrerUrl}::text[], ${landingUrl}::text[], ${discarded}::boolean[], ${discardReason}::text[])
    AS u("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent", "referrerUrl", "landingUrl", "discarded", "discardReason")
), claimed AS (
  INSERT INTO "ClickVisitor" ("hour", "linkId", "visitor", "clickId")
  SELECT DISTINCT ON (1, 2, 3) date_trunc('hour', u."occurredAt", 'UTC'), u."linkId",
         substring(sha256(convert_to(u."ipHash" || chr(10) || coalesce(u."userAgent", ''), 'UTF8')) FROM 1 FOR 16), u."id"
    FROM u
   WHERE NOT u."discarded" AND u."ipHash" IS NOT NULL
   ORDER BY 1, 2, 3, u."id"
      ON CONFLICT DO NOTHING
  RETURNING "clickId"
)
INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent", "referrerUrl", "landingUrl", "discarded", "discardReason", "isUnique")
SELECT u."id", u."workspaceId", u."mode"::"Mode", u."linkId", u."programId", u."partnerId", u."occurredAt", u."ipHash", u."userAgent", u."referrerUrl", u."landingUrl", u."discarded", u."discardReason",
       NOT u."discarded" AND (u."ipHash" IS NULL OR u."id" IN (SELECT "clickId" FROM claimed))
  FROM u
    ON CONFLICT DO NOTHING`;
}

/** Deletes up to `limit` ClickVisitor rows of hours before `before` (no row another transaction holds). */
const pruneVisitorsStatement = (before: Date, limit: number) => sql`
WITH gone AS (
  DELETE FROM "ClickVisitor" WHERE ("hour", "linkId", "visitor") IN (
    SELECT "hour", "linkId", "visitor" FROM "ClickVisitor" WHERE "hour" < ${before.toISOString()}::timestamptz
     LIMIT ${limit}::int
       FOR UPDATE SKIP LOCKED)
  RETURNING 1)
SELECT count(*)::int AS "deleted" FROM gone`;

/**
 * Records clicks. One per app (`ctx.clicks`): it owns a short-lived cache of link facts and the
 * queue of acknowledged clicks, written in the background — a batch as soon as `batchSize` clicks
 * wait, else `flushIntervalMs` after the first one; while a batch is being written and another
 * full one waits, a second writer starts (up to `writers`). A failed write is retried with
 * backoff by the writer holding it; when `queueSize` clicks are unwritten, new clicks wait for
 * room (backpressure) instead of being dropped or growing memory. stop() writes everything
 * acknowledged before it returns.
 */
export class ClickRecorder {
  readonly codec: ClickIdCodec;
  private readonly ipKey: KeyObject;
  private readonly query: QueryFn;
  private readonly logger: Logger | undefined;
  private readonly queueSize: number;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly linkCacheTtlMs: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly stopTimeoutMs: number;
  private readonly maxWriters: number;

  /** Acknowledged, not yet taken by a writer, in acknowledgement order. */
  private queue: ClickRow[] = [];
  private acknowledged = 0;
  /** Clicks taken by writers so far (the next batch starts at this position). */
  private taken = 0;
  /** Rows taken by a writer and not yet written or given up. */
  private inFlightRows = 0;
  /** Batches being written, in the order they were taken; `end` is the position after the batch. */
  private inFlight: Array<{ end: number; done: boolean }> = [];
  /** Every click before this position is written (or given up): flush() waits on it. */
  private settled = 0;
  private writers = 0;
  private timer: NodeJS.Timeout | null = null;
  private roomWaiters: Array<() => void> = [];
  private settleWaiters: Array<{ target: number; resolve: () => void }> = [];
  /** Writers waiting before a retry; stop() wakes them to retry at once. */
  private readonly sleepers = new Set<() => void>();
  private state: 'running' | 'stopping' | 'stopped' = 'running';
  private stopping: Promise<void> | null = null;
  private giveUpAt = Number.POSITIVE_INFINITY;
  private readonly counters = {
    written: 0,
    discarded: 0,
    dropped: 0,
    batches: 0,
    failedWrites: 0,
    waitedForRoom: 0,
    linkLookups: 0,
    bots: 0,
    visitorsPruned: 0,
  };
  /** The UTC hour (ms since the epoch / 1 h) of the last pruneVisitors started by a writer; one per hour. */
  private prunedHour = Math.floor(Date.now() / HOUR_MS);
  private pruning: Promise<void> | null = null;

  private readonly links = new Map<string, { facts: LinkFacts; expires: number }>();
  private readonly loading = new Map<string, Promise<LinkFacts | null>>();
  /** Bumped by forgetLink: a lookup that started before must not refill the cache. */
  private generation = 0;

  constructor(options: ClickRecorderOptions) {
    this.query = options.query;
    this.logger = options.logger;
    this.codec = new ClickIdCodec(options.secret);
    this.ipKey = deriveKey(options.secret, 'ip-hash');
    this.queueSize = options.queueSize ?? 10_000;
    this.batchSize = Math.min(options.batchSize ?? 500, this.queueSize);
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.linkCacheTtlMs = options.linkCacheTtlMs ?? 2_000;
    this.retryDelayMs = options.retryDelayMs ?? 100;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    this.maxWriters = Math.max(1, options.writers ?? 2);
  }

  // -------------------------------------------------------------------------------------------
  // Links
  // -------------------------------------------------------------------------------------------

  /**
   * The link with this code (ignoring case), from any workspace: at most one statement, none
   * when it was looked up less than `linkCacheTtlMs` ago. Concurrent lookups of one code share
   * one statement. Unknown codes are not remembered, so a link is usable the moment it exists.
   */
  async findLink(code: string): Promise<LinkFacts | null> {
    if (!CODE_SHAPE.test(code)) return null;
    const key = normalizeCode(code);
    const hit = this.links.get(key);
    if (hit && hit.expires > Date.now()) return hit.facts;
    const pending = this.loading.get(key);
    if (pending) return pending;
    const generation = this.generation;
    const load = this.loadLink(key)
      .then((facts) => {
        if (facts && this.linkCacheTtlMs > 0 && generation === this.generation) this.remember(key, facts);
        return facts;
      })
      .finally(() => this.loading.delete(key));
    this.loading.set(key, load);
    return load;
  }

  /** Forget a cached link (after disabling it, or a status change of its partner or program), or every link. */
  forgetLink(code?: string): void {
    this.generation++;
    if (code === undefined) this.links.clear();
    else this.links.delete(normalizeCode(code));
  }

  /** Run one statement of lib/sql.ts through the injected driver function. */
  private run(statement: SqlFragment): Promise<unknown> {
    const { text, values } = statement.toQuery();
    return this.query(text, values);
  }

  private async loadLink(codeNormalized: string): Promise<LinkFacts | null> {
    this.counters.linkLookups++;
    const rows = (await this.run(linkStatement(codeNormalized))) as LinkFacts[];
    return rows[0] ?? null;
  }

  private remember(key: string, facts: LinkFacts): void {
    this.links.delete(key);
    if (this.links.size >= LINK_CACHE_MAX) {
      const oldest = this.links.keys().next().value;
      if (oldest !== undefined) this.links.delete(oldest);
    }
    this.links.set(key, { facts, expires: Date.now() + this.linkCacheTtlMs });
  }

  // -------------------------------------------------------------------------------------------
  // Recording
  // -------------------------------------------------------------------------------------------

  /** A keyed hash (HMAC-SHA256, hex) of an IP address; null when `ip` is not an IP address. */
  hashIp(ip: string): string | null {
    const normalized = normalizeIp(ip);
    return normalized === null ? null : createHmac('sha256', this.ipKey).update(normalized).digest('hex');
  }

  /**
   * Acknowledge a click on `link` (not disabled: the caller checks). Returns as soon as the click
   * is queued — at once, unless the queue is full, in which case it waits for the next write.
   * Recorded discarded when the partner, program or enrollment is not active.
   */
  async record(link: LinkFacts, details: ClickDetails): Promise<RecordedClick> {
    while (this.unwritten() >= this.queueSize && this.state !== 'stopped') {
      this.counters.waitedForRoom++;
      this.startWriting();
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    if (this.state === 'stopped') throw new Error('The click recorder has stopped: the server is shutting down.');
    const userAgent = clip(details.userAgent, USER_AGENT_MAX);
    const discardReason = clickDiscardReason(link, userAgent);
    const { bytes, ms } = uuidv7Bytes();
    const occurredAt = new Date(ms);
    const row: ClickRow = {
      id: formatUuid(bytes),
      workspaceId: link.workspaceId,
      mode: link.mode,
      linkId: link.linkId,
      programId: link.programId,
      partnerId: link.partnerId,
      occurredAt: occurredAt.toISOString(),
      ipHash: details.ip ? this.hashIp(details.ip) : null,
      userAgent,
      referrerUrl: clip(details.referrerUrl, URL_MAX),
      landingUrl: clip(details.landingUrl, URL_MAX),
      discarded: discardReason !== null,
      discardReason,
    };
    this.queue.push(row);
    this.acknowledged++;
    if (row.discarded) {
      this.counters.discarded++;
      if (discardReason === 'BOT') this.counters.bots++;
    }
    if (this.queue.length >= this.batchSize) this.startWriting();
    else this.armTimer();
    return {
      clickId: this.codec.encode(bytes, link.linkId, row.discarded),
      clickRowId: row.id,
      occurredAt,
      discarded: row.discarded,
      discardReason,
    };
  }

  /** The click inside a click id, or null when it is not a valid click id of this installation. */
  decodeClickId(token: string): DecodedClickId | null {
    return this.codec.decode(token);
  }

  /** Resolves once every click acknowledged before the call is written (or given up and logged). */
  async flush(): Promise<void> {
    const target = this.acknowledged;
    if (this.settled >= target) return;
    this.startWriting();
    await new Promise<void>((resolve) => this.settleWaiters.push({ target, resolve }));
  }

  /**
   * Write everything acknowledged, then refuse new clicks. A failing database is retried at once
   * and then with backoff for up to `stopTimeoutMs`; clicks still unwritten then are logged (as
   * JSON, without raw IPs) so they can be replayed, and counted as dropped. Safe to call twice.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopping';
      this.giveUpAt = Date.now() + this.stopTimeoutMs;
      for (const wake of [...this.sleepers]) wake();
      while (this.settled < this.acknowledged) await this.flush();
      await this.pruning;
      this.state = 'stopped';
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      for (const wake of this.roomWaiters.splice(0)) wake();
    })();
    return this.stopping;
  }

  stats(): ClickRecorderStats {
    return { ...this.counters, acknowledged: this.acknowledged, queued: this.unwritten() };
  }

  private unwritten(): number {
    return this.queue.length + this.inFlightRows;
  }

  private armTimer(): void {
    if (this.timer || this.writers > 0) return; // a running writer takes what is queued when it gets there
    this.timer = setTimeout(() => {
      this.timer = null;
      this.startWriting();
    }, this.flushIntervalMs);
  }

  /** Start writers for what is queued: one per batch, up to `maxWriters` at once. */
  private startWriting(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // Each call takes its first batch synchronously, so this stops when the queue is spoken for.
    while (this.writers < this.maxWriters && this.queue.length > 0) void this.write();
  }

  /** Take a batch and write it; repeat until the queue is empty. Never throws. */
  private async write(): Promise<void> {
    this.writers++;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.batchSize);
        const slot = { end: this.taken + batch.length, done: false };
        this.taken = slot.end;
        this.inFlight.push(slot);
        this.inFlightRows += batch.length;
        await this.writeBatch(batch);
        this.inFlightRows -= batch.length;
        slot.done = true;
        this.settle();
      }
    } finally {
      this.writers--;
      if (this.queue.length > 0) this.armTimer();
    }
  }

  /** Advance `settled` over the finished batches at the front, wake who waits for room or for a flush. */
  private settle(): void {
    while (this.inFlight[0]?.done) this.settled = this.inFlight.shift()!.end;
    for (const wake of this.roomWaiters.splice(0)) wake();
    this.settleWaiters = this.settleWaiters.filter((waiter) => {
      if (waiter.target > this.settled) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Insert `rows` in one statement, retrying until it works; only refused rows or the stop deadline lose any. */
  private async writeBatch(rows: ClickRow[]): Promise<void> {
    let delay = this.retryDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.run(clickBatchStatement(rows));
        this.counters.written += rows.length;
        this.counters.batches++;
        this.pruneHourly();
        return;
      } catch (error) {
        if (isRefusedRow(error)) return this.isolateRefused(rows, error);
        this.counters.failedWrites++;
        const left = this.giveUpAt - Date.now();
        if (left <= 0) return this.giveUp(rows, error);
        this.logger?.warn(
          { err: error, clicks: rows.length, attempt, retryInMs: Math.min(delay, left) },
          'writing clicks failed; will retry',
        );
        await this.sleep(Math.min(delay, left));
        delay = Math.min(delay * 2, this.maxRetryDelayMs);
      }
    }
  }

  /**
   * The database refused a row for good (a constraint or data error, e.g. its link was deleted
   * with its workspace): find it by halving the batch, write the others, log and drop it.
   */
  private async isolateRefused(rows: ClickRow[], error: unknown): Promise<void> {
    if (rows.length === 1) {
      this.counters.dropped++;
      this.logger?.error({ err: error, click: rows[0] }, 'the database refused a click row; dropped');
      return;
    }
    const half = Math.ceil(rows.length / 2);
    await this.writeBatch(rows.slice(0, half));
    await this.writeBatch(rows.slice(half));
  }

  private giveUp(rows: ClickRow[], error: unknown): void {
    this.counters.dropped += rows.length;
    this.logger?.error(
      { err: error, unwritten: rows },
      `stopping: ${rows.length} acknowledged clicks could not be written within ${this.stopTimeoutMs} ms; they are in this log entry`,
    );
  }

  /**
   * Delete the ClickVisitor rows of hours before the previous one, in statements of at most
   * VISITOR_PRUNE_BATCH rows; how many were deleted. The current hour's rows decide which clicks
   * are unique; the previous hour's are kept for clicks acknowledged just before the hour turned
   * and written just after. A writer calls it once per UTC hour (after a batch is written); safe
   * on every instance at once (rows another transaction holds are skipped).
   */
  async pruneVisitors(now: Date = new Date()): Promise<number> {
    const before = new Date((Math.floor(now.getTime() / HOUR_MS) - 1) * HOUR_MS);
    let total = 0;
    for (;;) {
      const rows = (await this.run(pruneVisitorsStatement(before, VISITOR_PRUNE_BATCH))) as Array<{ deleted: number }>;
      const deleted = Number(rows[0]?.deleted ?? 0);
      total += deleted;
      this.counters.visitorsPruned += deleted;
      if (deleted < VISITOR_PRUNE_BATCH || this.state !== 'running') return total; // stop() ends it after this statement
    }
  }

  /** Start pruneVisitors in the background when the UTC hour has changed since the last one (stop() waits for it). */
  private pruneHourly(): void {
    const hour = Math.floor(Date.now() / HOUR_MS);
    if (hour <= this.prunedHour || this.pruning) return;
    this.prunedHour = hour;
    this.pruning = this.pruneVisitors()
      .then(
        () => {},
        (error: unknown) =>
          this.logger?.warn({ err: error }, 'deleting past hours of click visitors failed; the next hour retries'),
      )
      .finally(() => (this.pruning = null));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}

/** The 13 column arrays of clickBatchStatement. */
function columns(rows: readonly ClickRow[]): unknown[][] {
  const cols: unknown[][] = Array.from({ length: 13 }, () => new Array<unknown>(rows.length));
  rows.forEach((r, i) => {
    cols[0]![i] = r.id;
    cols[1]![i] = r.workspaceId;
    cols[2]![i] = r.mode;
    cols[3]![i] = r.linkId;
    cols[4]![i] = r.programId;
    cols[5]![i] = r.partnerId;
    cols[6]![i] = r.occurredAt;
    cols[7]![i] = r.ipHash;
    cols[8]![i] = r.userAgent;
    cols[9]![i] = r.referrerUrl;
    cols[10]![i] = r.landingUrl;
    cols[11]![i] = r.discarded;
    cols[12]![i] = r.discardReason;
  });
  return cols;
}

/**
 * SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation) refuse a row
 * whatever the retry; anything else (connection lost, table locked or renamed, server shutting
 * down, serialization) may pass next time.
 */
function isRefusedRow(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23]/.test(code);
}

/**
 * An IP address in one spelling per address: brackets and a port removed, IPv4-mapped IPv6 as
 * IPv4, IPv6 compressed and lower-cased. Null when it is not an IP address.
 */
export function normalizeIp(raw: string): string | null {
  let ip = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(ip);
  if (bracketed) ip = bracketed[1]!;
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(ip)) ip = ip.slice(0, ip.lastIndexOf(':'));
  ip = ip.toLowerCase();
  const version = isIP(ip);
  if (version === 4) return ip;
  if (version !== 6) return null;
  if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) return ip.slice(7);
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1); // the WHATWG serializer compresses IPv6
  } catch {
    return ip; // e.g. a zone index (fe80::1%eth0), which URLs do not allow
  }
}

/** A text stored as given, without NUL characters (PostgreSQL refuses them), at most `max` characters. */
export function clip(value: string | null | undefined, max: number): string | null {
  if (value === null || value === undefined) return null;
  let text = value.includes('\u0000') ? value.replaceAll('\u0000', '') : value;
  if (text.length > max) {
    text = text.slice(0, max);
    if (/[\uD800-\uDBFF]$/.test(text)) text = text.slice(0, -1); // never cut a character in half
  }
  return text === '' ? null : text;
}

// ---------------------------------------------------------------------------------------------
// trackClick
// ---------------------------------------------------------------------------------------------

export interface TrackClickInput {
  code: string;
  ip?: string | null;
  userAgent?: string | null;
  referrerUrl?: string | null;
  landingUrl?: string | null;
}

export interface TrackClickResult {
  /** The link clicked, when it is in the caller's workspace and mode. */
  linkId: string | null;
  clickId: string | null;
  discarded: boolean;
  discardReason: DiscardReason | 'LINK_DISABLED' | null;
}

/**
 * A click reported by the company's server. The code must name a link of the caller's workspace
 * and mode (else NOT_FOUND, nothing recorded); a disabled link records nothing (`discarded`);
 * a link whose partner, program or enrollment is not active is recorded discarded.
 */
export async function trackClick(
  recorder: ClickRecorder,
  tenant: Tenant,
  input: TrackClickInput,
): Promise<TrackClickResult> {
  const code = input.code.trim();
  const ip = input.ip?.trim() || null;
  new Validator()
    .check(
      ip === null || normalizeIp(ip) !== null,
      ['input', 'ip'],
      'ip must be an IPv4 or IPv6 address, e.g. "203.0.113.7" or "2001:db8::1".',
    )
    .throwIfAny();
  const link = await recorder.findLink(code);
  if (!link || link.workspaceId !== tenant.workspaceId || link.mode !== tenant.mode) {
    const named = CODE_SHAPE.test(code) ? `"${code}"` : 'given';
    throw new DomainError('NOT_FOUND', `No referral link with the code ${named} in this workspace and mode.`, [
      'input',
      'code',
    ]);
  }
  if (link.disabled) return { linkId: link.linkId, clickId: null, discarded: true, discardReason: 'LINK_DISABLED' };
  const click = await recorder.record(link, {
    ip,
    userAgent: input.userAgent,
    referrerUrl: input.referrerUrl,
    landingUrl: input.landingUrl,
  });
  return {
    linkId: link.linkId,
    clickId: click.clickId,
    discarded: click.discarded,
    discardReason: click.discardReason,
  };
}
