import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Verdict } from '../../lib/rate-limit.js';
import { type DeliveryDeps, deliverStripeEvent } from './stripe-delivery.js';
import { STRIPE_PATH_PREFIX } from './stripe.service.js';

export { STRIPE_PATH_PREFIX };

/** Stripe's events are well under 1 MB; a larger body is refused (413) before it is read. */
export const STRIPE_MAX_BODY_BYTES = 1024 * 1024;

export interface StripeRouteDeps extends DeliveryDeps {
  /** Counts one delivery to the integration (RATE_LIMIT_STRIPE_PER_SECOND). */
  rateLimit: (integrationId: string) => Promise<Verdict>;
}

/**
 * `POST /integrations/stripe/{integration id}`: Stripe's webhook deliveries. The raw body is
 * read (at most STRIPE_MAX_BODY_BYTES) and verified before anything is parsed; the answer is JSON.
 */
export async function serveStripeWebhook(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  deps: StripeRouteDeps,
): Promise<void> {
  const integrationId = path.slice(STRIPE_PATH_PREFIX.length);
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return send(res, 405, { error: `Stripe delivers events with POST; ${req.method} is not served here.` });
  }
  if (integrationId === '' || integrationId.includes('/'))
    return send(res, 404, { error: 'No connected Stripe integration has this id: check the endpoint URL in Stripe.' });
  const verdict = await deps.rateLimit(integrationId);
  if (!verdict.allowed) {
    res.setHeader('retry-after', String(verdict.retryAfterSeconds));
    return send(res, 429, {
      error: `Too many deliveries to this integration (RATE_LIMIT_STRIPE_PER_SECOND). Stripe retries later; retry after ${verdict.retryAfterSeconds} s.`,
    });
  }
  const body = await readBody(req, STRIPE_MAX_BODY_BYTES);
  if (body === null) {
    res.setHeader('connection', 'close');
    return send(res, 413, { error: `The body is larger than ${STRIPE_MAX_BODY_BYTES} bytes: not a Stripe event.` });
  }
  const signature = req.headers['stripe-signature'];
  const answer = await deliverStripeEvent(deps, integrationId, body, Array.isArray(signature) ? undefined : signature);
  send(res, answer.status, answer.body);
}

/** The whole body, or null when it is (or announces to be) larger than `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const announced = req.headers['content-length'];
  if (announced !== undefined && Number(announced) > limit) {
    req.resume(); // drain what arrives; the connection is closed after the answer
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
