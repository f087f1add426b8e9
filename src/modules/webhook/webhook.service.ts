import type { Prisma, PrismaClient, WebhookDelivery, WebhookEndpoint } from '../../generated/prisma/client.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { isUuid, NIL_UUID } from '../../lib/ids.js';
import type { EventType } from '../events/outbox.js';
import { newWebhookSecret } from './signature.js';
import { checkWebhookUrl, InvalidWebhookUrl, type Resolve } from './url-guard.js';
import { prismaSql } from '../../lib/sql.js';

/** Every event type an endpoint can subscribe to (a compile error here when outbox.ts grows one). */
export const WEBHOOK_EVENT_TYPES: Readonly<Record<EventType, string>> = {
  'program.created': 'A program was created.',
  'program.updated': 'A program changed (its status or settings; `changedFields` names them).',
  'reward_rule.created': 'A reward rule was created (its version 1).',
  'reward_rule.updated': 'A reward rule was edited: a new version supersedes the current one.',
  'reward_rule.archived': 'A reward rule was archived: it no longer produces rewards.',
  'tier.created': 'A tier was added to a program (createTier).',
  'tier.updated': 'A tier’s name, metric, threshold, period or rule overrides changed (`changedFields` names them).',
  'tier.deleted': 'A tier was deleted; its partners moved to the tier they reach without it (each a `tier.changed`).',
  'tier.changed':
    'A partner moved to another tier of a program, or to none (`fromTier`, `toTier`, `direction` UP or DOWN): on a conversion, by the daily evaluation, or because tiers changed.',
  'partner.created': 'A partner was created.',
  'partner.updated': 'A partner’s name or email changed (`changedFields` names them).',
  'partner.status_changed': 'A partner became ACTIVE, INACTIVE or BANNED.',
  'partner.erased':
    'A partner’s personal data was erased (erasePartner): replaced by a tombstone, status BANNED, links disabled; money records kept.',
  'enrollment.applied': 'A partner applied to a program: a PENDING enrollment awaits approval.',
  'enrollment.status_changed': 'An enrollment was approved or rejected (or created APPROVED: from null).',
  'enrollment.overrides_changed': 'An enrollment’s reward rule overrides were replaced (setEnrollmentOverrides).',
  'link.created': 'A referral link was created (a partner’s default link on approval, or an extra one).',
  'link.updated': 'A referral link moved to another program or got another destination.',
  'link.disabled': 'A referral link was disabled: it no longer tracks.',
  'coupon.created': 'A coupon was created for a partner in a program (createCoupon).',
  'coupon.disabled': 'A coupon was disabled (disableCoupon): conversions with it are discarded.',
  'conversion.recorded': 'A conversion was recorded (accepted or discarded), a refund included.',
  'referral.status_changed':
    'A referral’s status changed: CONVERTED (its first payment) or REJECTED (a self-referral found later) by a conversion, or rejected or reinstated by an admin (setReferralStatus, with a reason).',
  'reward.created': 'A reward was created for a conversion (a clawback included).',
  'reward.status_changed': 'A reward moved to another status (approved, processed, canceled, rejected).',
  'balance.credited': 'A partner’s balance was credited or debited by hand.',
  'payout.created': 'A payout was created.',
  'payout.paid': 'A payout was marked paid.',
  'payout.failed': 'A PENDING payout was marked failed: what it held is available again.',
  'payout.canceled': 'A PENDING payout was canceled: what it held is available again.',
  'review.opened':
    'A conversion tripped its program’s fraud rules (or was flagged by hand): its rewards wait in an OPEN review item (with the signals).',
  'review.resolved':
    'A review item was decided: APPROVED (its rewards go on through the lifecycle) or REJECTED (its rewards are rejected), with the reason.',
  'api_key.created': 'A secret API key was created.',
  'api_key.revoked': 'A secret API key was revoked (with the access tokens issued from it).',
  'member.invited': 'A team member was invited to the dashboard (sent in both modes: members are not per mode).',
  'member.joined': 'An invited team member accepted and set their password (sent in both modes).',
  'member.removed': 'A team member was removed; their sessions ended (sent in both modes).',
  'integration.connected': 'A payment provider was connected to a program (connectStripe).',
  'integration.disconnected':
    'A payment provider integration was disconnected (disconnectStripe): its deliveries are refused from then on.',
  'integration.failed':
    'A payment provider event could not be applied (e.g. a Stripe event of the other mode, an amount refgraph cannot represent, a refund larger than what is left): `reason` says why, the integration’s event log has it as FAILED, and the provider may send it again.',
};

const KNOWN_TYPES = new Set<string>(Object.keys(WEBHOOK_EVENT_TYPES));

/** NOTIFY'd when an endpoint is created or re-enabled, or a delivery is scheduled by hand: wakes the workers. */
export const WEBHOOKS_CHANNEL = 'refgraph_webhooks';

export const MAX_ENDPOINTS = 20;
export const DESCRIPTION_MAX = 500;
/** rotateWebhookSecret keeps the old secret signing for at most this long. */
export const MAX_OVERLAP_SECONDS = 7 * 24 * 3600;

export interface WebhookUrlPolicy {
  /** WEBHOOK_ALLOW_PRIVATE_TARGETS. */
  allowPrivateTargets: boolean;
  /** Name resolution for the URL check (tests); default the system's. */
  resolve?: Resolve;
}

export interface CreateWebhookEndpointInput {
  url: string;
  eventTypes?: readonly string[] | null;
  description?: string | null;
  enabled?: boolean | null;
}

export interface UpdateWebhookEndpointInput {
  /** Row id; null when the given global id was malformed or of another type (NOT_FOUND). */
  id: string | null;
  url?: string | null;
  eventTypes?: readonly string[] | null;
  /** undefined: unchanged; null or blank: cleared. */
  description?: string | null;
  enabled?: boolean | null;
}

type Db = PrismaClient | Prisma.TransactionClient;

/** `findUnique` key of a tenant's webhook row: the id (never a non-UUID) plus the tenant filter. */
export function webhookRowKey(
  id: string | null,
  tenant: Tenant,
): { id: string; workspaceId: string; mode: Tenant['mode'] } {
  return { id: id && isUuid(id) ? id : NIL_UUID, workspaceId: tenant.workspaceId, mode: tenant.mode };
}

async function checkedUrl(url: string, policy: WebhookUrlPolicy, validator: Validator): Promise<string | null> {
  try {
    return await checkWebhookUrl(url, policy);
  } catch (error) {
    if (!(error instanceof InvalidWebhookUrl)) throw error;
    validator.check(false, ['input', 'url'], error.problem);
    return null;
  }
}

/** Known types, without duplicates, in the order given; empty = every type. */
function checkedEventTypes(types: readonly string[], validator: Validator): string[] {
  for (const [i, type] of types.entries()) {
    validator.check(
      KNOWN_TYPES.has(type),
      ['input', 'eventTypes', String(i)],
      `"${type.slice(0, 60)}" is not an event type. Known types: ${[...KNOWN_TYPES].join(', ')}.`,
    );
  }
  return [...new Set(types)];
}

function checkedDescription(description: string | null | undefined, validator: Validator): string | null {
  const text = description?.trim() ?? '';
  validator.check(
    text.length <= DESCRIPTION_MAX,
    ['input', 'description'],
    `A description must be at most ${DESCRIPTION_MAX} characters long.`,
  );
  return text === '' ? null : text;
}

/** The tenant's last event sequence: a new or re-enabled endpoint starts after it. */
async function currentSequence(db: Db, tenant: Tenant): Promise<bigint> {
  const counter = await db.eventCounter.findUnique({
    where: { workspaceId_mode: tenant },
    select: { lastSequence: true },
  });
  return counter?.lastSequence ?? 0n;
}

/** Wake every instance's delivery worker (at commit, like the outbox's own NOTIFY). */
export async function notifyWebhookWorkers(db: Db, tenant: Tenant): Promise<void> {
  // ::text: Prisma cannot read a column of type void.
  await prismaSql(db).sql`SELECT pg_notify(${WEBHOOKS_CHANNEL}, ${`${tenant.workspaceId}:${tenant.mode}`})::text`;
}

/**
 * Register an endpoint. It receives the events committed after it was created (not earlier
 * ones), signed with a new secret that is returned this once.
 */
export async function createWebhookEndpoint(
  prisma: PrismaClient,
  tenant: Tenant,
  input: CreateWebhookEndpointInput,
  policy: WebhookUrlPolicy,
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const validator = new Validator();
  const url = await checkedUrl(input.url, policy, validator);
  const eventTypes = checkedEventTypes(input.eventTypes ?? [], validator);
  const description = checkedDescription(input.description, validator);
  validator.throwIfAny();
  const count = await prisma.webhookEndpoint.count({ where: tenant });
  if (count >= MAX_ENDPOINTS) {
    throw new DomainError(
      'LIMIT_EXCEEDED',
      `A workspace can have at most ${MAX_ENDPOINTS} webhook endpoints per mode: delete one first.`,
      ['input'],
    );
  }
  const secret = newWebhookSecret();
  const enabled = input.enabled ?? true;
  const endpoint = await prisma.$transaction(async (tx) => {
    const created = await tx.webhookEndpoint.create({
      data: {
        ...tenant,
        url: url!,
        description,
        eventTypes,
        secret,
        enabled,
        disabledReason: enabled ? null : DISABLED_BY_ADMIN,
        lastSequence: await currentSequence(tx, tenant),
      },
    });
    if (enabled) await notifyWebhookWorkers(tx, tenant);
    return created;
  });
  return { endpoint, secret };
}

export const DISABLED_BY_ADMIN = 'Disabled with updateWebhookEndpoint (enabled: false).';

/**
 * Change an endpoint. `enabled: true` clears the failure count and the disabled reason; an
 * endpoint that was disabled resumes with the events committed from then on (events committed
 * while it was disabled are not delivered; its pending deliveries resume).
 */
export async function updateWebhookEndpoint(
  prisma: PrismaClient,
  tenant: Tenant,
  input: UpdateWebhookEndpointInput,
  policy: WebhookUrlPolicy,
): Promise<WebhookEndpoint> {
  const validator = new Validator();
  const url =
    input.url === null || input.url === undefined ? undefined : await checkedUrl(input.url, policy, validator);
  const eventTypes =
    input.eventTypes === null || input.eventTypes === undefined
      ? undefined
      : checkedEventTypes(input.eventTypes, validator);
  const description = input.description === undefined ? undefined : checkedDescription(input.description, validator);
  const key = webhookRowKey(input.id, tenant);
  // An unknown id answers NOT_FOUND alone, before any complaint about the rest of the input.
  if (!(await prisma.webhookEndpoint.findUnique({ where: key, select: { id: true } })))
    throw notFound('Webhook endpoint');
  validator.throwIfAny();
  return prisma.$transaction(async (tx) => {
    const [row] = await prismaSql(tx).sql<{ enabled: boolean }>`
      SELECT "enabled" FROM "WebhookEndpoint"
       WHERE "id" = ${key.id}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
         FOR UPDATE`;
    if (!row) throw notFound('Webhook endpoint'); // deleted meanwhile
    const data: Prisma.WebhookEndpointUpdateInput = {};
    if (url !== undefined) data.url = url!;
    if (eventTypes !== undefined) data.eventTypes = eventTypes;
    if (description !== undefined) data.description = description;
    const enabling = input.enabled === true && !row.enabled;
    if (input.enabled === true) {
      Object.assign(data, { enabled: true, consecutiveFailures: 0, disabledReason: null });
      if (enabling) data.lastSequence = await currentSequence(tx, tenant);
    } else if (input.enabled === false && row.enabled) {
      Object.assign(data, { enabled: false, disabledReason: DISABLED_BY_ADMIN });
    }
    const updated = await tx.webhookEndpoint.update({ where: { id: key.id }, data });
    if (enabling) await notifyWebhookWorkers(tx, tenant);
    return updated;
  });
}

/** Delete an endpoint and its delivery log. Nothing more is sent to it (an attempt in flight finishes). */
export async function deleteWebhookEndpoint(
  prisma: PrismaClient,
  tenant: Tenant,
  input: { id: string | null },
): Promise<{ id: string }> {
  const { count } = await prisma.webhookEndpoint.deleteMany({ where: webhookRowKey(input.id, tenant) });
  if (count === 0) throw notFound('Webhook endpoint');
  return { id: input.id! };
}

/**
 * Replace an endpoint's signing secret. With `overlapSeconds` > 0 the previous secret keeps
 * signing too (a second v1 in the header) for that long, so receivers can switch without a gap.
 */
export async function rotateWebhookSecret(
  prisma: PrismaClient,
  tenant: Tenant,
  input: { id: string | null; overlapSeconds?: number | null },
  now: Date = new Date(),
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const overlap = input.overlapSeconds ?? 0;
  const key = webhookRowKey(input.id, tenant);
  const current = await prisma.webhookEndpoint.findUnique({ where: key, select: { id: true } });
  if (!current) throw notFound('Webhook endpoint');
  if (!Number.isInteger(overlap) || overlap < 0 || overlap > MAX_OVERLAP_SECONDS) {
    throw new DomainError('VALIDATION', `overlapSeconds must be from 0 to ${MAX_OVERLAP_SECONDS} (7 days).`, [
      'input',
      'overlapSeconds',
    ]);
  }
  const secret = newWebhookSecret();
  const expiresAt = overlap > 0 ? new Date(now.getTime() + overlap * 1000).toISOString() : null;
  // One statement: the secret kept for the overlap is the one replaced, even under concurrent rotations.
  await prismaSql(prisma).sql`
    UPDATE "WebhookEndpoint"
       SET "previousSecret" = CASE WHEN ${overlap > 0}::boolean THEN "secret" END,
           "previousSecretExpiresAt" = ${expiresAt}::timestamptz,
           "secret" = ${secret}, "updatedAt" = ${now.toISOString()}::timestamptz
     WHERE "id" = ${current.id}::uuid`;
  const endpoint = await prisma.webhookEndpoint.findUniqueOrThrow({ where: { id: current.id } });
  return { endpoint, secret };
}

/**
 * Send a delivery again now (whatever its status), with a new retry window; its attempts keep
 * counting. Refused (INVALID_TRANSITION) while the endpoint is disabled: enable it first.
 */
export async function redeliverWebhook(
  prisma: PrismaClient,
  tenant: Tenant,
  input: { deliveryId: string | null },
  now: Date = new Date(),
): Promise<WebhookDelivery> {
  const key = webhookRowKey(input.deliveryId, tenant);
  const delivery = await prisma.webhookDelivery.findUnique({
    where: key,
    include: { endpoint: { select: { enabled: true } } },
  });
  if (!delivery) throw notFound('Webhook delivery', ['input', 'deliveryId']);
  if (!delivery.endpoint.enabled) {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Webhook delivery ${delivery.id} is ${delivery.status} and its endpoint is disabled, so it cannot become PENDING: enable the endpoint with updateWebhookEndpoint first.`,
      ['input', 'deliveryId'],
    );
  }
  return prisma.$transaction(async (tx) => {
    const updated = await tx.webhookDelivery.update({
      where: { id: delivery.id },
      data: { status: 'PENDING', nextAttemptAt: now, firstAttemptAt: null },
    });
    await notifyWebhookWorkers(tx, tenant);
    return updated;
  });
}
