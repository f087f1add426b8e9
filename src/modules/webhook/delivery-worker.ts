import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { globalId } from '../../lib/global-id.js';
import type { Database } from '../../db.js';
import type { Logger } from '../../logger.js';
import { EVENTS_CHANNEL } from '../events/outbox.js';
import { SIGNATURE_HEADER, signatureHeader } from './signature.js';
import { guardedLookup, refusedAddressReason } from './url-guard.js';
import { WEBHOOKS_CHANNEL } from './webhook.service.js';
import { prismaSql } from '../../lib/sql.js';

export interface WebhookWorkerOptions {
  /** Poll for due retries every this many ms; 0 = start() does nothing (runOnce still works). */
  intervalMs: number;
  /** Requests in flight at once, at most. */
  concurrency: number;
  /** Whole request (connect, send, response headers) at most this long. */
  timeoutMs: number;
  /** Retry a failing delivery for this long after its first attempt, then mark it FAILED. */
  retryForMs: number;
  /** Disable an endpoint after this many consecutive failed attempts. */
  maxConsecutiveFailures: number;
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS: send to loopback and private addresses too. */
  allowPrivateTargets: boolean;
  logger?: Logger;
  /** Jitter source, [0, 1) (tests may fix it). */
  random?: () => number;
}

export interface WebhookRunResult {
  /** Deliveries created from new events. */
  created: number;
  /** Attempts made (requests sent, or refused before sending). */
  attempted: number;
  succeeded: number;
  failed: number;
}

const FANOUT_BATCH = 500;
const BACKOFF_BASE_MS = 10_000;
const BACKOFF_CAP_MS = 3_600_000;
/** A claim outlives the request's timeout by this much; a crashed worker's claim then expires. */
const LEASE_MARGIN_MS = 60_000;
/** Bytes of a response body kept (and read). */
const BODY_LIMIT = 1024;
/** With no enabled endpoint anywhere, poll this many times less often (a NOTIFY wakes the worker). */
const IDLE_FACTOR = 10;
export const USER_AGENT = 'refgraph-webhooks';

/** Delay before attempt n+1 after n failed ones: 10 s × 2^(n−1), ±20 % jitter, at most 1 h. */
export function backoffMs(failedAttempts: number, random: () => number = Math.random): number {
  const base = BACKOFF_BASE_MS * 2 ** Math.min(Math.max(failedAttempts - 1, 0), 20);
  return Math.min(BACKOFF_CAP_MS, Math.round(base * (0.8 + 0.4 * random())));
}

type Claimed = {
  id: string;
  attempts: number;
  firstAttemptAt: Date | string;
  endpointId: string;
  url: string;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | string | null;
  eventId: string;
  workspaceId: string;
  mode: string;
  sequence: string;
  type: string;
  occurredAt: Date | string;
  payload: unknown;
};

export interface SendOutcome {
  /** HTTP status, when a response arrived. */
  status?: number;
  /** The first KiB of the response body. */
  body: string;
  /** Why no usable response came (timeout, transport error, refused target). */
  error?: string;
  durationMs: number;
}

/**
 * Turns committed outbox events into WebhookDelivery rows and sends them.
 *
 * - Fan-out: each enabled endpoint has a cursor (lastSequence). Deliveries for the events after it
 *   are inserted and the cursor advanced in one transaction, with the endpoint row locked
 *   `FOR UPDATE SKIP LOCKED` (and the unique (endpointId, eventId) behind it): never twice.
 * - Sending: due deliveries are claimed by one `UPDATE … RETURNING` over rows locked
 *   `FOR UPDATE SKIP LOCKED`, which sets a lease (lockedUntil) and counts the attempt, so no two
 *   workers send the same attempt; the result is written only by the claim's holder.
 * - Wake-ups: LISTEN on the outbox channel and on the webhooks channel, plus a poll for retries.
 * Safe on every instance at once.
 */
export class WebhookWorker {
  private closing = false;
  private started = false;
  private timer: NodeJS.Timeout | null = null;
  private unlisten: Array<() => Promise<void>> = [];
  private current: Promise<void> | null = null;
  private again = false;
  /** Some endpoint is enabled (as of the last run, or a NOTIFY since): NOTIFYs of events are worth a run. */
  private active = true;
  private readonly runs = new Set<Promise<unknown>>();
  /** Attempts in flight, across passes: at most `concurrency`. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly random: () => number;
  /** Attempts recorded by this worker since start (metrics): 2xx, not 2xx, and deliveries given up (FAILED). */
  readonly totals = { succeeded: 0, failed: 0, exhausted: 0 };

  constructor(
    private readonly db: Database,
    private readonly options: WebhookWorkerOptions,
  ) {
    this.random = options.random ?? Math.random;
  }

  /** Listen for wake-ups and poll every intervalMs (no-op when intervalMs is 0). */
  async start(): Promise<void> {
    if (this.started || this.closing || this.options.intervalMs <= 0) return;
    this.started = true;
    this.unlisten.push(await this.db.listen(EVENTS_CHANNEL, () => this.active && this.trigger()));
    this.unlisten.push(
      await this.db.listen(WEBHOOKS_CHANNEL, () => {
        this.active = true;
        this.trigger();
      }),
    );
    this.trigger();
    await this.current; // the first pass tells whether any endpoint is enabled, which sets the poll's pace
    this.schedule();
  }

  /** No new attempts; resolves when the attempts in flight have been recorded (each within timeoutMs). */
  async stop(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled(this.unlisten.map((stop) => stop()));
    this.unlisten = [];
    await Promise.allSettled([this.current, ...this.runs]);
    await Promise.allSettled([...this.inFlight]);
  }

  private schedule(): void {
    if (this.closing) return;
    const delay = this.active ? this.options.intervalMs : this.options.intervalMs * IDLE_FACTOR;
    this.timer = setTimeout(() => {
      this.trigger();
      this.schedule();
    }, delay);
    this.timer.unref();
  }

  /** Run now, or once more right after the run in progress. */
  private trigger(): void {
    if (this.closing) return;
    if (this.current) {
      this.again = true;
      return;
    }
    this.current = (async () => {
      do {
        this.again = false;
        try {
          await this.tracked(this.run(undefined, false));
        } catch (error) {
          this.options.logger?.warn({ err: error }, 'webhook run failed; retrying at the next wake-up');
        }
      } while (this.again && !this.closing);
    })().finally(() => {
      this.current = null;
    });
  }

  /**
   * Create deliveries for new events, then send every delivery due at `now` (default: the clock),
   * `concurrency` at a time; resolves when all of them are recorded. Tests pass `now` to move time.
   */
  runOnce(now?: Date): Promise<WebhookRunResult> {
    return this.tracked(this.run(now, true));
  }

  private tracked<T>(run: Promise<T>): Promise<T> {
    this.runs.add(run);
    return run.finally(() => this.runs.delete(run));
  }

  /**
   * One pass. `wait`: until every attempt it started is recorded (runOnce). Otherwise (the
   * background loop) it returns once the free slots are filled, and each finished attempt wakes
   * the loop to fill its slot: a slow receiver never holds up the other deliveries.
   */
  private async run(fixedNow: Date | undefined, wait: boolean): Promise<WebhookRunResult> {
    const clock = () => fixedNow ?? new Date();
    const result: WebhookRunResult = { created: 0, attempted: 0, succeeded: 0, failed: 0 };
    const endpoints = await this.db.sql<{ id: string; behind: boolean }>`
      SELECT e."id", COALESCE(c."lastSequence" > e."lastSequence", false) AS "behind"
        FROM "WebhookEndpoint" e
        LEFT JOIN "EventCounter" c ON c."workspaceId" = e."workspaceId" AND c."mode" = e."mode"
       WHERE e."enabled"`;
    this.active = endpoints.length > 0;
    if (!this.active) return result; // deliveries of disabled endpoints wait until they are enabled
    for (const endpoint of endpoints.filter((e) => e.behind)) {
      for (;;) {
        const { created, more } = await this.fanOut(endpoint.id, clock());
        result.created += created;
        if (!more || this.closing) break;
      }
    }
    await this.sendDue(clock, result, wait);
    return result;
  }

  /** One batch of one endpoint's new events into deliveries, cursor advanced in the same transaction. */
  private fanOut(endpointId: string, now: Date): Promise<{ created: number; more: boolean }> {
    return this.db.prisma.$transaction(async (tx) => {
      const [endpoint] = await prismaSql(tx).sql<{
        workspaceId: string;
        mode: 'TEST' | 'LIVE';
        eventTypes: string[];
        lastSequence: string;
      }>`
        SELECT "workspaceId", "mode"::text AS "mode", "eventTypes", "lastSequence"::text AS "lastSequence"
          FROM "WebhookEndpoint" WHERE "id" = ${endpointId}::uuid AND "enabled"
           FOR UPDATE SKIP LOCKED`;
      if (!endpoint) return { created: 0, more: false }; // another worker has it, or it was disabled
      const events = await prismaSql(tx).sql<{ id: string; sequence: string; type: string }>`
        SELECT "id", "sequence"::text AS "sequence", "type" FROM "Event"
         WHERE "workspaceId" = ${endpoint.workspaceId}::uuid AND "mode" = ${endpoint.mode}::"Mode" AND "sequence" > ${endpoint.lastSequence}::bigint
         ORDER BY "Event"."sequence" LIMIT ${FANOUT_BATCH}`;
      if (events.length === 0) return { created: 0, more: false };
      const types = endpoint.eventTypes ?? [];
      const wanted = types.length === 0 ? events : events.filter((event) => types.includes(event.type));
      const { count } = wanted.length
        ? await tx.webhookDelivery.createMany({
            data: wanted.map((event) => ({
              workspaceId: endpoint.workspaceId,
              mode: endpoint.mode,
              endpointId,
              eventId: event.id,
              nextAttemptAt: now,
            })),
            skipDuplicates: true,
          })
        : { count: 0 };
      await tx.webhookEndpoint.update({
        where: { id: endpointId },
        data: { lastSequence: BigInt(events[events.length - 1]!.sequence) },
      });
      return { created: count, more: events.length === FANOUT_BATCH };
    });
  }

  /** Claim and send due deliveries, with at most `concurrency` requests of this worker in flight. */
  private async sendDue(clock: () => Date, result: WebhookRunResult, wait: boolean): Promise<void> {
    const mine = new Set<Promise<void>>();
    let more = true;
    for (;;) {
      const free = this.options.concurrency - this.inFlight.size;
      if (more && !this.closing && free > 0) {
        const now = clock();
        const claimed = await this.claim(now, free);
        if (claimed.length < free) more = false;
        for (const delivery of claimed) {
          const attempt: Promise<void> = this.attempt(delivery, now)
            .then((ok) => {
              result.attempted++;
              if (ok) result.succeeded++;
              else result.failed++;
            })
            .catch((error: unknown) =>
              this.options.logger?.error({ err: error, deliveryId: delivery.id }, 'recording a webhook attempt failed'),
            )
            .finally(() => {
              this.inFlight.delete(attempt);
              mine.delete(attempt);
              if (!wait) this.trigger();
            });
          this.inFlight.add(attempt);
          mine.add(attempt);
        }
        continue;
      }
      if (!more || this.closing) {
        if (wait) await Promise.allSettled([...mine]);
        return;
      }
      // Every slot is taken and more may be due.
      if (!wait) return; // a finished attempt triggers the next pass
      await Promise.race(this.inFlight);
    }
  }

  private claim(now: Date, limit: number): Promise<Claimed[]> {
    const at = now.toISOString();
    const leaseUntil = new Date(now.getTime() + this.options.timeoutMs + LEASE_MARGIN_MS).toISOString();
    return this.db.sql<Claimed>`
      WITH due AS (
         SELECT d."id" FROM "WebhookDelivery" d JOIN "WebhookEndpoint" e ON e."id" = d."endpointId"
          WHERE d."status" = 'PENDING' AND d."nextAttemptAt" <= ${at}::timestamptz
            AND (d."lockedUntil" IS NULL OR d."lockedUntil" <= ${at}::timestamptz) AND e."enabled"
          ORDER BY d."nextAttemptAt", d."id"
          LIMIT ${limit}
            FOR UPDATE OF d SKIP LOCKED
       )
       UPDATE "WebhookDelivery" d
          SET "lockedUntil" = ${leaseUntil}::timestamptz, "attempts" = d."attempts" + 1, "lastAttemptAt" = ${at}::timestamptz,
              "firstAttemptAt" = COALESCE(d."firstAttemptAt", ${at}::timestamptz), "updatedAt" = ${at}::timestamptz
         FROM due, "WebhookEndpoint" e, "Event" ev
        WHERE d."id" = due."id" AND e."id" = d."endpointId" AND ev."id" = d."eventId"
       RETURNING d."id", d."attempts", d."firstAttemptAt", e."id" AS "endpointId", e."url", e."secret", e."previousSecret",
                 e."previousSecretExpiresAt", ev."id" AS "eventId", ev."workspaceId", ev."mode"::text AS "mode",
                 ev."sequence"::text AS "sequence", ev."type", ev."occurredAt", ev."payload"`;
  }

  /** Send one claimed attempt and record its outcome; true on a 2xx. */
  private async attempt(delivery: Claimed, now: Date): Promise<boolean> {
    const payload = typeof delivery.payload === 'string' ? (JSON.parse(delivery.payload) as unknown) : delivery.payload;
    const eventGlobalId = globalId('Event', delivery.eventId);
    const body = JSON.stringify({
      id: eventGlobalId,
      type: delivery.type,
      sequence: delivery.sequence,
      occurredAt: new Date(delivery.occurredAt).toISOString(),
      workspaceId: globalId('Workspace', delivery.workspaceId),
      mode: delivery.mode,
      data: payload,
    });
    const secrets = [delivery.secret];
    if (
      delivery.previousSecret &&
      delivery.previousSecretExpiresAt &&
      new Date(delivery.previousSecretExpiresAt) > now
    ) {
      secrets.push(delivery.previousSecret);
    }
    const outcome = await postWebhook(
      delivery.url,
      body,
      {
        'Content-Type': 'application/json',
        'User-Agent': USER_AGENT,
        'Refgraph-Event-Id': eventGlobalId,
        'Refgraph-Event-Type': delivery.type,
        'Refgraph-Delivery-Id': globalId('WebhookDelivery', delivery.id),
        'Refgraph-Delivery-Attempt': String(delivery.attempts),
        [SIGNATURE_HEADER]: signatureHeader(secrets, Math.floor(now.getTime() / 1000), body),
      },
      { timeoutMs: this.options.timeoutMs, allowPrivateTargets: this.options.allowPrivateTargets },
    );
    const ok = outcome.status !== undefined && outcome.status >= 200 && outcome.status < 300;
    const error = ok
      ? null
      : (outcome.error ??
        `HTTP ${outcome.status}${outcome.status ? ` ${http.STATUS_CODES[outcome.status] ?? ''}`.trimEnd() : ''}`);
    let status: 'SUCCEEDED' | 'PENDING' | 'FAILED' = 'SUCCEEDED';
    let nextAttemptAt: string | null = null;
    if (!ok) {
      const next = now.getTime() + backoffMs(delivery.attempts, this.random);
      const windowEnd = new Date(delivery.firstAttemptAt).getTime() + this.options.retryForMs;
      if (next <= windowEnd) {
        status = 'PENDING';
        nextAttemptAt = new Date(next).toISOString();
      } else {
        status = 'FAILED';
      }
    }
    const max = this.options.maxConsecutiveFailures;
    const reason = `Disabled after ${max} consecutive failed delivery attempts (the last: ${truncate(error ?? '', 200)}). Fix the receiver, then enable the endpoint with updateWebhookEndpoint.`;
    const at = now.toISOString();
    const responseBody = outcome.body === '' && outcome.status === undefined ? null : outcome.body;
    const lastError = error === null ? null : truncate(error, BODY_LIMIT);
    const [endpoint] = await this.db.sql<{ enabled: boolean; disabledNow: boolean }>`
      WITH d AS (
         UPDATE "WebhookDelivery"
            SET "status" = ${status}::"WebhookDeliveryStatus", "nextAttemptAt" = ${nextAttemptAt}::timestamptz, "lockedUntil" = NULL,
                "responseStatus" = ${outcome.status ?? null}::int, "responseBody" = ${responseBody}::text, "lastError" = ${lastError}::text,
                "durationMs" = ${outcome.durationMs}::int, "updatedAt" = ${at}::timestamptz
          WHERE "id" = ${delivery.id}::uuid AND "attempts" = ${delivery.attempts}::int AND "status" = 'PENDING'
         RETURNING "endpointId"
       )
       UPDATE "WebhookEndpoint" e
          SET "consecutiveFailures" = CASE WHEN ${ok}::boolean THEN 0 ELSE e."consecutiveFailures" + 1 END,
              "enabled" = CASE WHEN NOT ${ok}::boolean AND e."consecutiveFailures" + 1 >= ${max}::int THEN false ELSE e."enabled" END,
              "disabledReason" = CASE WHEN NOT ${ok}::boolean AND e."enabled" AND e."consecutiveFailures" + 1 >= ${max}::int THEN ${reason}::text ELSE e."disabledReason" END,
              "updatedAt" = ${at}::timestamptz
         FROM d WHERE e."id" = d."endpointId"
       RETURNING e."enabled", (NOT ${ok}::boolean AND e."consecutiveFailures" = ${max}::int AND NOT e."enabled") AS "disabledNow"`;
    if (ok) this.totals.succeeded++;
    else this.totals.failed++;
    if (status === 'FAILED') this.totals.exhausted++;
    if (endpoint?.disabledNow) {
      this.options.logger?.warn(
        { endpointId: delivery.endpointId, failures: max },
        'webhook endpoint disabled after consecutive failures',
      );
    }
    return ok;
  }
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * POST `body` to `url`: no redirects followed, at most `timeoutMs` until the response headers,
 * the first KiB of the body kept (the rest is not read), and — unless private targets are
 * allowed — only to public addresses, checked on the addresses the connection actually uses.
 */
export function postWebhook(
  url: string,
  body: string,
  headers: Record<string, string>,
  options: { timeoutMs: number; allowPrivateTargets: boolean },
): Promise<SendOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (outcome: Omit<SendOutcome, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...outcome, durationMs: Math.round(performance.now() - started) });
    };
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return done({ body: '', error: 'refused: not a valid URL' });
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:')
      return done({ body: '', error: `refused: ${target.protocol} is not http or https` });
    const host = target.hostname.replace(/^\[|\]$/g, '');
    if (!options.allowPrivateTargets && net.isIP(host)) {
      const reason = refusedAddressReason(host);
      if (reason) return done({ body: '', error: `refused: ${host} is a ${reason} address` });
    }
    const transport = target.protocol === 'https:' ? https : http;
    let response: http.IncomingMessage | null = null;
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () =>
      response &&
      done({ status: response.statusCode, body: Buffer.concat(chunks).subarray(0, BODY_LIMIT).toString('utf8') });
    const request = transport.request(
      {
        hostname: host,
        port: target.port || undefined,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
        agent: false,
        ...(options.allowPrivateTargets ? {} : { lookup: guardedLookup as unknown as net.LookupFunction }),
      },
      (res) => {
        response = res;
        res.on('data', (chunk: Buffer) => {
          if (size < BODY_LIMIT) {
            chunks.push(chunk);
            size += chunk.length;
          }
          if (size >= BODY_LIMIT) {
            finish();
            res.destroy();
          }
        });
        res.on('end', finish);
        res.on('error', finish);
        res.on('close', finish);
      },
    );
    timer = setTimeout(() => {
      // Headers in time but a slow body: the status counts; otherwise the attempt timed out.
      if (response) finish();
      else done({ body: '', error: `timed out after ${options.timeoutMs} ms` });
      request.destroy();
    }, options.timeoutMs);
    request.on('error', (error) => {
      if (response) return finish();
      done({ body: '', error: error.message || String(error) });
    });
    request.end(body);
  });
}
