import { createHash, timingSafeEqual } from 'node:crypto';
import {
  createCounter,
  createHistogram,
  usePrometheus,
  type FillLabelsFnParams,
} from '@graphql-yoga/plugin-prometheus';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from './db.js';
import type { Logger } from './logger.js';
import type { ClickRecorder } from './modules/click/click.service.js';
import type { EventDispatcher } from './modules/events/dispatcher.js';
import type { ExportMonitor } from './modules/export/export-monitor.js';
import type { WebhookWorker } from './modules/webhook/delivery-worker.js';
import { type SharedExecution, SocketSubscription } from './realtime/shared-execution.js';

/** What the metrics read on a scrape; nothing here is touched on a request's path. */
export interface MetricSources {
  db: Database;
  clicks: ClickRecorder;
  dispatcher: EventDispatcher;
  webhooks: WebhookWorker;
  subscriptions: SharedExecution;
  /** The CSV exports of this instance. */
  exports: ExportMonitor;
  /** Open WebSocket connections of this instance. */
  openSockets(): number;
  /** Operations in flight on those connections (subscriptions and single results). */
  socketOperations(): number;
  logger: Logger;
}

/** The routes of the access log and of refgraph_http_request_duration_seconds: a fixed set. */
export type Route = 'graphql' | 'redirect' | 'healthz' | 'readyz' | 'metrics' | 'export' | 'stripe' | 'web' | 'other';

/** Distinct operation names kept as label values; later ones are counted under OTHER_OPERATIONS. */
export const MAX_OPERATION_NAMES = 200;
export const OTHER_OPERATIONS = '__other__';
/** A database query of a scrape that takes longer makes its gauge NaN for that scrape. */
const SCRAPE_QUERY_TIMEOUT_MS = 2_000;
const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A label value from a bounded set: the first `max` distinct values pass, later ones become
 * `other`. Operation names are chosen by clients (an `operationName` that names no operation
 * included), so without a bound every new name would be a new time series.
 */
export function boundedLabel(
  max: number,
  other: string,
  shape = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/,
): (value: string | null | undefined, fallback: string) => string {
  const known = new Set<string>();
  return (value, fallback) => {
    if (!value) return fallback;
    if (known.has(value)) return value;
    if (!shape.test(value) || known.size >= max) return other;
    known.add(value);
    return value;
  };
}

/**
 * The Prometheus metrics of one app: a registry of its own (several apps in one process never
 * collide), Yoga's GraphQL metrics by operation name, and refgraph's own, read from the click
 * queue, the outbox, the webhook worker, the sockets and the database on each scrape.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly httpDuration: Histogram<'route' | 'status'>;
  private readonly detach: () => void;

  constructor(private readonly sources: MetricSources) {
    const { registry } = this;
    collectDefaultMetrics({ register: registry });
    this.httpDuration = new Histogram({
      name: 'refgraph_http_request_duration_seconds',
      help: 'HTTP requests by route (graphql, redirect, healthz, readyz, metrics, export, other) and status, until the response ended',
      labelNames: ['route', 'status'],
      buckets: SECONDS_BUCKETS,
      registers: [registry],
    });

    const sqlDuration = new Histogram({
      name: 'refgraph_sql_statement_duration_seconds',
      help: 'SQL statements sent to the database (requests and background work), until their answer',
      buckets: SECONDS_BUCKETS,
      registers: [registry],
    });
    const sqlErrors = new Counter({
      name: 'refgraph_sql_statement_errors_total',
      help: 'SQL statements that failed',
      registers: [registry],
    });
    const observer = (seconds: number, failed: boolean) => {
      sqlDuration.observe(seconds);
      if (failed) sqlErrors.inc();
    };
    sources.db.statements.observers.add(observer);
    this.detach = () => sources.db.statements.observers.delete(observer);
    const { db, clicks, dispatcher, webhooks, subscriptions, exports } = sources;
    total(
      registry,
      'refgraph_sql_statements_total',
      'SQL statements sent to this database, BEGIN and COMMIT included',
      () => db.statements.count,
    );

    gauge(
      registry,
      'refgraph_click_queue_depth',
      'Clicks acknowledged and not yet written (CLICK_QUEUE_SIZE at most)',
      () => clicks.stats().queued,
    );
    total(
      registry,
      'refgraph_clicks_acknowledged_total',
      'Clicks acknowledged (redirects and trackClick)',
      () => clicks.stats().acknowledged,
    );
    total(registry, 'refgraph_clicks_written_total', 'Click rows written', () => clicks.stats().written);
    total(
      registry,
      'refgraph_clicks_discarded_total',
      'Clicks recorded as discarded (a bot; partner, program or enrollment not active)',
      () => clicks.stats().discarded,
    );
    total(
      registry,
      'refgraph_clicks_bot_total',
      "Clicks recorded as discarded because their user agent is a bot's or a link preview's (also in refgraph_clicks_discarded_total)",
      () => clicks.stats().bots,
    );
    total(
      registry,
      'refgraph_clicks_dropped_total',
      'Acknowledged clicks given up (refused by the database, or unwritten at the stop deadline; logged)',
      () => clicks.stats().dropped,
    );
    total(
      registry,
      'refgraph_click_write_failures_total',
      'Click INSERTs that failed and were retried',
      () => clicks.stats().failedWrites,
    );

    gauge(
      registry,
      'refgraph_outbox_lag_events',
      'Events committed and not yet dispatched to subscribers, over all tenants (NaN: the database did not answer)',
      () => this.fromDatabase('outbox lag', () => dispatcher.lag()),
    );
    total(
      registry,
      'refgraph_outbox_events_dispatched_total',
      'Outbox events this instance published to subscribers',
      () => dispatcher.published,
    );

    gauge(
      registry,
      'refgraph_webhook_deliveries_pending',
      'Webhook deliveries waiting for a first or next attempt, all instances (NaN: the database did not answer)',
      () =>
        this.fromDatabase('webhook backlog', async () => {
          const [row] = await db.sql<{ pending: number | string }>`
            SELECT count(*)::int AS "pending" FROM "WebhookDelivery" WHERE "status" = 'PENDING'`;
          return Number(row?.pending ?? 0);
        }),
    );
    new Counter({
      name: 'refgraph_webhook_attempts_total',
      help: 'Webhook delivery attempts of this instance, by outcome (succeeded: a 2xx answer; failed: anything else)',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        this.reset();
        this.inc({ outcome: 'succeeded' }, webhooks.totals.succeeded);
        this.inc({ outcome: 'failed' }, webhooks.totals.failed);
      },
    });
    total(
      registry,
      'refgraph_webhook_deliveries_failed_total',
      'Webhook deliveries given up (FAILED after WEBHOOK_RETRY_FOR_MS) by this instance',
      () => webhooks.totals.exhausted,
    );

    gauge(registry, 'refgraph_websocket_connections', 'Open WebSocket connections', () => sources.openSockets());
    gauge(
      registry,
      'refgraph_websocket_operations',
      'Operations in flight on WebSocket connections (subscriptions included)',
      () => sources.socketOperations(),
    );
    gauge(
      registry,
      'refgraph_subscriptions_active',
      'Subscriptions running, over WebSocket and SSE',
      () => subscriptions.active,
    );
    total(
      registry,
      'refgraph_subscription_executions_total',
      'Subscription events executed (once per group of identical subscribers)',
      () => subscriptions.executions,
    );
    total(
      registry,
      'refgraph_subscription_executions_shared_total',
      'Subscription events whose execution was reused by another subscriber of its group',
      () => subscriptions.reused,
    );

    gauge(registry, 'refgraph_exports_active', 'CSV exports streaming now', () => exports.active);
    new Counter({
      name: 'refgraph_exports_total',
      help: 'CSV exports ended, by table and outcome (completed; aborted: the client went away; failed: a server error)',
      labelNames: ['table', 'outcome'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { table, outcome, count } of exports.totals()) this.inc({ table, outcome }, count);
      },
    });
    new Counter({
      name: 'refgraph_export_rows_total',
      help: 'Rows sent by CSV exports, by table (aborted exports up to where they stopped)',
      labelNames: ['table'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { table, count } of exports.rows()) this.inc({ table }, count);
      },
    });
  }

  /**
   * Yoga's Prometheus plugin on this registry: graphql_envelop_* by operation name and type. Label
   * values are bounded (see boundedLabel). Off: the per-URL label, the summary, the deprecated-field
   * counter (a walk of every document), and the per-phase and HTTP histograms (six more observations
   * per request cost 0.86× → 0.76× of the bare Yoga in the overhead benchmark).
   */
  plugin(): Plugin {
    const { registry } = this;
    const operationName = boundedLabel(MAX_OPERATION_NAMES, OTHER_OPERATIONS);
    const errorCode = boundedLabel(50, 'OTHER', /^[A-Z][A-Z0-9_]{0,63}$/);
    const operation = (params: FillLabelsFnParams) => ({
      operationName: operationName(params.operationName, 'Anonymous'),
      operationType: params.operationType ?? 'unknown',
    });
    const labelNames = ['operationName', 'operationType'] as const;
    // A WebSocket subscription is no iterator (SocketSubscription): the Prometheus plugin would
    // count it as ended when it starts. Its count and duration are observed below when it ends.
    const notOnSocket = (params: FillLabelsFnParams, context: unknown) =>
      params.operationType !== 'subscription' || !isSocketContext(context);
    const histogram = <Phase>(name: string, help: string, phases: [Phase, ...Phase[]]) =>
      createHistogram({
        registry,
        histogram: { name, help, labelNames, buckets: SECONDS_BUCKETS },
        fillLabelsFn: operation,
        phases,
        shouldObserve: notOnSocket,
      });
    type Phase = 'execute' | 'subscribe';
    const requests = createCounter<Phase, (typeof labelNames)[number]>({
      registry,
      counter: {
        name: 'graphql_envelop_request',
        help: 'GraphQL operations executed (failed ones included)',
        labelNames,
      },
      fillLabelsFn: operation,
      phases: ['execute', 'subscribe'],
      shouldObserve: notOnSocket,
    });
    const duration = histogram<Phase>(
      'graphql_envelop_request_duration',
      'GraphQL operations from parse to the end of execution',
      ['execute', 'subscribe'],
    );
    type ErrorParams = FillLabelsFnParams & { error?: unknown; errorPhase?: string };
    const errorResults = createCounter<
      'parse' | 'validate' | 'context' | 'execute' | 'subscribe',
      'operationName' | 'operationType' | 'phase' | 'code',
      ErrorParams
    >({
      registry,
      counter: {
        name: 'graphql_envelop_error_result',
        help: 'Errors in GraphQL results, by operation, phase (parse, validate, context, execute, subscribe) and extensions.code',
        labelNames: ['operationName', 'operationType', 'phase', 'code'],
      },
      fillLabelsFn: (params) => ({
        ...operation(params),
        phase: params.errorPhase ?? 'execute',
        code: errorCode(codeOf(params.error), 'NONE'),
      }),
    });
    // Made apart from the hook: what waits for a subscription's end must not hold its context.
    const ender = (params: FillLabelsFnParams) => {
      const start = Date.now();
      const labels = operation(params);
      return (error: unknown) => {
        // As the Prometheus plugin observes an iterator's end and failure.
        if (error) errorResults.counter.labels(errorResults.fillLabelsFn(params, {})).inc();
        requests.counter.labels(labels).inc();
        duration.histogram.observe(labels, (Date.now() - start) / 1000);
      };
    };
    const socketSubscriptions: Plugin = {
      onSubscribe: ({ args }) => {
        if (!isSocketContext(args.contextValue)) return;
        const ast = getOperationAST(args.document, args.operationName);
        const end = ender({ operationName: ast?.name?.value, operationType: ast?.operation });
        return {
          onSubscribeResult: ({ result }) => {
            if (result instanceof SocketSubscription) result.onEnd(end);
            else end(null);
          },
        };
      },
    };
    const prometheus = usePrometheus({
      registry,
      endpoint: false, // served by the app's router, behind METRICS_TOKEN
      metrics: {
        graphql_envelop_request: requests,
        graphql_envelop_request_duration: duration,
        graphql_envelop_request_time_summary: false,
        graphql_envelop_phase_parse: false,
        graphql_envelop_phase_validate: false,
        graphql_envelop_phase_context: false,
        graphql_envelop_phase_execute: false,
        graphql_envelop_phase_subscribe: false,
        graphql_envelop_error_result: errorResults,
        graphql_envelop_deprecated_field: false,
        graphql_envelop_schema_change: false,
        graphql_envelop_execute_resolver: false,
        graphql_yoga_http_duration: false,
      },
    });
    return {
      onPluginInit: ({ addPlugin }) => {
        addPlugin(prometheus);
        addPlugin(socketSubscriptions);
      },
    };
  }

  /** Observe one HTTP request (all routes). */
  observeHttp(route: Route, status: number, seconds: number): void {
    this.httpDuration.observe({ route, status }, seconds);
  }

  /** The exposition text. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  /** Stop observing the database (it may outlive the app: tests share one). */
  close(): void {
    this.detach();
  }

  /** A number read from the database for a scrape; NaN (and a debug line) when it fails or is slow. */
  private async fromDatabase(what: string, read: () => Promise<number>): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        read(),
        new Promise<number>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${SCRAPE_QUERY_TIMEOUT_MS} ms`)),
            SCRAPE_QUERY_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (error) {
      this.sources.logger.debug({ err: error }, `metrics: reading the ${what} failed`);
      return Number.NaN;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Whether an `Authorization` header carries `token` (compared in constant time). */
export function metricsAuthorized(token: string | undefined, header: string | undefined): boolean {
  if (token === undefined) return true;
  const match = /^Bearer (.+)$/i.exec(header ?? '');
  if (!match) return false;
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(match[1]!.trim()), digest(token));
}

/** A WebSocket operation's context: SharedExecution sends its events straight to the socket. */
function isSocketContext(context: unknown): boolean {
  return typeof (context as { deliverNext?: unknown } | null)?.deliverNext === 'function';
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { extensions?: { code?: unknown } } | undefined)?.extensions?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A gauge set from `read` on each scrape. */
function gauge(registry: Registry, name: string, help: string, read: () => number | Promise<number>): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      this.set(await read());
    },
  });
}

/** A counter whose value is a running total kept elsewhere, read on each scrape. */
function total(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
