import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config.js';
import type { AppServices } from '../context.js';
import type { Database } from '../db.js';
import { GRAPHIQL_ASSETS_PREFIX, type GraphiQLAssets } from '../graphiql.js';
import { isWebPath, type WebAssets } from './web-assets.js';
import { type ApiYoga, GRAPHQL_PATH } from '../graphql/yoga.js';
import type { RateLimiter } from '../lib/rate-limit.js';
import { currentRequest, requestIdFrom, withRequestId } from '../lib/request-context.js';
import type { Logger } from '../logger.js';
import { type Metrics, metricsAuthorized, type Route } from '../metrics.js';
import { REDIRECT_PREFIX, serveRedirect, visitorIp } from '../modules/click/redirect.js';
import type { ExportMonitor } from '../modules/export/export-monitor.js';
import { EXPORT_PREFIX, serveExport } from '../modules/export/export.http.js';
import { decodeClickId } from '../modules/click/click-id.js';
import { serveStripeWebhook, STRIPE_PATH_PREFIX, type StripeRouteDeps } from '../modules/integration/stripe.http.js';
import { credentialKey } from '../realtime/connections.js';

const METRICS_PATH = '/metrics';

export interface HttpServerOptions {
  config: Config;
  logger: Logger;
  db: Database;
  services: AppServices;
  yoga: ApiYoga;
  metrics: Metrics;
  graphiql: GraphiQLAssets;
  /** The dashboard, the portal and their assets (dist/web). */
  web: WebAssets;
  rateLimiter: RateLimiter;
  exports: ExportMonitor;
}

/** A request's route, for the metrics: a fixed set of values whatever the path. */
function routeOf(path: string): Route {
  if (path === GRAPHQL_PATH) return 'graphql';
  if (path.startsWith(REDIRECT_PREFIX)) return 'redirect';
  if (path === '/healthz') return 'healthz';
  if (path === '/readyz') return 'readyz';
  if (path === METRICS_PATH) return 'metrics';
  if (path.startsWith(EXPORT_PREFIX)) return 'export';
  if (path.startsWith(STRIPE_PATH_PREFIX)) return 'stripe';
  if (isWebPath(path)) return 'web';
  return 'other';
}

/**
 * The HTTP server, not yet listening: GraphQL at /graphql, health checks, metrics, GraphiQL's
 * assets, the redirects, the CSV exports and Stripe's webhook deliveries; every request in its request-id scope, timed and
 * access-logged.
 */
export function createHttpServer(options: HttpServerOptions): Server {
  const { config, logger, db, services, yoga, metrics, graphiql, web, rateLimiter, exports } = options;
  const stripe: StripeRouteDeps = {
    db,
    box: services.providerSecrets,
    decodeClick: (token) => decodeClickId(token, services.clicks.codec),
    hashIp: (ip) => services.clicks.hashIp(ip),
    logger,
    // Per integration, not per address: Stripe delivers every account's events from a few shared addresses.
    rateLimit: (integrationId) => rateLimiter.consume('stripe', integrationId),
  };

  const server: Server = createServer((req, res) => {
    const started = performance.now();
    const requestId = requestIdFrom(req.headers['x-request-id'] as string | undefined);
    res.setHeader('x-request-id', requestId);
    withRequestId(requestId, () => {
      const scope = currentRequest()!;
      res.once('close', () => finished(req, res, started, scope.operation?.name ?? null));
      return route(req, res);
    }).catch((error: unknown) => {
      logger.error({ err: error, requestId }, 'request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'internal error', requestId }));
    });
  });

  /**
   * Once a response has ended (or its connection closed): the request's duration for the metrics
   * and its access-log line. The line has no query string (a GET /graphql carries its document
   * there), no headers, no variables.
   */
  function finished(req: IncomingMessage, res: ServerResponse, started: number, operation: string | null): void {
    const seconds = (performance.now() - started) / 1000;
    const path = (req.url ?? '/').split('?', 1)[0]!;
    metrics.observeHttp(routeOf(path), res.statusCode, seconds);
    if (!config.accessLog || !logger.isLevelEnabled('info')) return;
    logger.info(
      {
        method: req.method,
        path: path.length > 256 ? `${path.slice(0, 255)}…` : path,
        status: res.statusCode,
        durationMs: Math.round(seconds * 10_000) / 10,
        ...(operation ? { operation: operation.slice(0, 100) } : {}),
        ...(res.writableFinished ? {} : { aborted: true }),
        requestId: res.getHeader('x-request-id'),
      },
      'request',
    );
  }

  // Longer than any client's or proxy's idle timeout, so a client never reuses a connection the
  // server is closing at the same moment (ECONNRESET on the next request).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      return json(res, 200, { status: 'ok' });
    }
    if (path === '/readyz' && (req.method === 'GET' || req.method === 'HEAD')) {
      try {
        await withTimeout(db.ping(), 2000, 'database did not answer within 2 s');
        return json(res, 200, { status: 'ready', database: db.kind });
      } catch (error) {
        logger.warn({ err: error }, 'readiness check failed');
        return json(res, 503, { status: 'unavailable', database: db.kind, reason: 'database not reachable' });
      }
    }
    if (path === GRAPHQL_PATH) {
      await yoga.handle(req, res, { req, res });
      return;
    }
    if (path === METRICS_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      if (!metricsAuthorized(config.metricsToken, req.headers.authorization)) {
        res.writeHead(401, {
          'content-type': 'text/plain; charset=utf-8',
          'www-authenticate': 'Bearer realm="metrics"',
          'cache-control': 'no-store',
        });
        res.end('Send Authorization: Bearer <METRICS_TOKEN>.\n');
        return;
      }
      const { body, contentType } = await metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path?.startsWith(GRAPHIQL_ASSETS_PREFIX)) {
      return graphiql.serve(req, res, path);
    }
    if (path && isWebPath(path)) {
      return web.serve(req, res, path);
    }
    if (path?.startsWith(REDIRECT_PREFIX)) {
      const verdict = await rateLimiter.consume('redirect', visitorIp(req, config.trustProxy) ?? 'unknown');
      if (!verdict.allowed) {
        res.writeHead(429, {
          'content-type': 'text/plain; charset=utf-8',
          'retry-after': String(verdict.retryAfterSeconds),
          'cache-control': 'no-store',
        });
        res.end(`Too many requests from your address. Retry after ${verdict.retryAfterSeconds} s.\n`);
        return;
      }
      return serveRedirect(req, res, path, services);
    }
    if (path?.startsWith(EXPORT_PREFIX)) {
      return serveExport(req, res, path, {
        db,
        authenticate: (header) => services.authenticator.authenticate(header),
        // Like a GraphQL request: one operation of the credential, or of the address without one.
        rateLimit: (auth) =>
          auth
            ? rateLimiter.consume('credential', credentialKey(auth))
            : rateLimiter.consume('anonymous', visitorIp(req, config.trustProxy) ?? 'unknown'),
        monitor: exports,
        logger,
      });
    }
    if (path?.startsWith(STRIPE_PATH_PREFIX)) {
      return serveStripeWebhook(req, res, path, stripe);
    }
    return json(res, 404, { error: `No route for ${req.method} ${path}. GraphQL is served at ${GRAPHQL_PATH}.` });
  }

  return server;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
