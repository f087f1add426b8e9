import { builder } from '../../graphql/builder.js';
import { WebhookDeliveryStatus } from '../../generated/prisma/enums.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import type { Context } from '../../context.js';
import { EventRef } from '../events/events.graphql.js';
import { toOutboxEvent } from '../events/dispatcher.js';
import { cursorGuard, guardedQuery } from '../reward/reward.graphql.js';
import {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  DESCRIPTION_MAX,
  MAX_ENDPOINTS,
  MAX_OVERLAP_SECONDS,
  redeliverWebhook,
  rotateWebhookSecret,
  updateWebhookEndpoint,
  WEBHOOK_EVENT_TYPES,
} from './webhook.service.js';

// Webhooks are ADMIN-only throughout: endpoint URLs, delivery logs and secrets are sensitive.

const policy = (ctx: Context) => ({ allowPrivateTargets: ctx.config.webhooks.allowPrivateTargets });

export const WebhookDeliveryStatusEnum = builder.enumType(WebhookDeliveryStatus, {
  name: 'WebhookDeliveryStatus',
  description:
    'PENDING (waiting for its next attempt), SUCCEEDED (a 2xx answer) or FAILED (no 2xx within the retry window).',
});

export const WebhookEndpointRef = builder.prismaNode('WebhookEndpoint', {
  description:
    'An integrator’s URL that receives the workspace’s events as signed HTTP POSTs (see the `Refgraph-Signature` header in src/modules/webhook/README.md). ADMIN only.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => scopedKey(id, ctx),
  authScopes: { admin: true },
  fields: (t) => ({
    url: t.exposeString('url', { description: 'Where events are POSTed (http or https).' }),
    description: t.exposeString('description', { nullable: true, description: 'For people.' }),
    eventTypes: t.exposeStringList('eventTypes', {
      description: 'The event types delivered; empty: every type (see Query.webhookEventTypes).',
    }),
    enabled: t.exposeBoolean('enabled', {
      description:
        'A disabled endpoint gets nothing: events committed while it is disabled are skipped, its pending deliveries wait until it is enabled again.',
    }),
    disabledReason: t.exposeString('disabledReason', {
      nullable: true,
      description: 'Why it is disabled (by hand, or after too many consecutive failures); null while enabled.',
    }),
    consecutiveFailures: t.exposeInt('consecutiveFailures', {
      description:
        'Failed attempts since the last success. At WEBHOOK_MAX_FAILURES (default 10) the endpoint is disabled; enabling it resets this.',
    }),
    previousSecretExpiresAt: t.expose('previousSecretExpiresAt', {
      type: 'DateTime',
      nullable: true,
      description:
        'After rotateWebhookSecret with an overlap: until then the previous secret also signs each request (a second v1).',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    deliveries: t.relatedConnection(
      'deliveries',
      {
        cursor: 'id',
        description:
          'The delivery log: one delivery per event sent to this endpoint, newest first, optionally only those with `status`.',
        totalCount: true,
        args: { status: t.arg({ type: WebhookDeliveryStatusEnum, description: 'Only deliveries in this status.' }) },
        query: (args) => ({
          where: args.status ? { status: args.status } : {},
          orderBy: { id: 'desc' },
          ...cursorGuard(args),
        }),
      },
      { name: 'WebhookDeliveryConnection', description: 'A page of webhook deliveries, newest first.' },
      {
        name: 'WebhookDeliveryEdge',
        description: 'A delivery in a page of deliveries.',
        nodeField: { description: 'The delivery.' },
      },
    ),
  }),
});

export const WebhookDeliveryRef = builder.prismaNode('WebhookDelivery', {
  description:
    'One event sent (or to be sent) to one endpoint: its attempts, the last answer, and when it is tried next. Failed attempts are retried with exponential backoff (10 s × 2^(n−1) ± 20 %, at most 1 h apart) for WEBHOOK_RETRY_FOR_MS (default 24 h) after the first. ADMIN only.',
  id: { field: 'id' },
  nullable: true,
  // No composite unique key on deliveries: the id, plus the tenant as extra filters.
  findUnique: (id, ctx) => scopedKey(id, ctx).id_workspaceId_mode,
  authScopes: { admin: true },
  fields: (t) => ({
    endpoint: t.relation('endpoint', { description: 'Where it is sent.' }),
    event: t.field({
      type: EventRef,
      description: 'The event it carries (the request body’s `data` is the event’s payload).',
      select: { event: true },
      resolve: (delivery) => toOutboxEvent(delivery.event),
    }),
    status: t.expose('status', { type: WebhookDeliveryStatusEnum }),
    attempts: t.exposeInt('attempts', { description: 'Requests made so far (manual redeliveries included).' }),
    nextAttemptAt: t.expose('nextAttemptAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When it is tried next while PENDING; null once SUCCEEDED or FAILED.',
    }),
    lastAttemptAt: t.expose('lastAttemptAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the last attempt started; null before the first.',
    }),
    responseStatus: t.exposeInt('responseStatus', {
      nullable: true,
      description: 'HTTP status of the last answer; null when none came (timeout, connection error, refused target).',
    }),
    responseBody: t.exposeString('responseBody', {
      nullable: true,
      description: 'The first KiB of the last answer’s body.',
    }),
    lastError: t.exposeString('lastError', {
      nullable: true,
      description:
        'Why the last attempt failed ("HTTP 500 Internal Server Error", "timed out after 10000 ms", a connection error, "refused: …"); null after a success.',
    }),
    durationMs: t.exposeInt('durationMs', {
      nullable: true,
      description: 'How long the last attempt took, in milliseconds.',
    }),
    createdAt: t.expose('createdAt', {
      type: 'DateTime',
      description: 'When the event was picked up for this endpoint.',
    }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const WebhookEventTypeRef = builder.objectRef<{ name: string; description: string }>('WebhookEventType').implement({
  description: 'An event type an endpoint can subscribe to.',
  fields: (t) => ({
    name: t.exposeString('name', {
      description: 'e.g. partner.created; what Event.type and the request’s `type` say.',
    }),
    description: t.exposeString('description'),
  }),
});

builder.queryFields((t) => ({
  webhookEndpoints: t.prismaConnection(
    {
      type: WebhookEndpointRef,
      cursor: 'id',
      description:
        'The webhook endpoints of the workspace and mode, oldest first, optionally only enabled or disabled ones. ADMIN only.',
      authScopes: { admin: true },
      args: { enabled: t.arg.boolean({ description: 'Only enabled (true) or disabled (false) endpoints.' }) },
      resolve: (query, _root, args, ctx) =>
        ctx.db.prisma.webhookEndpoint.findMany({
          ...guardedQuery(query),
          where: endpointWhere(ctx, args.enabled),
          orderBy: { id: 'asc' },
        }),
      totalCount: (_root, args, ctx) =>
        ctx.db.prisma.webhookEndpoint.count({ where: endpointWhere(ctx, args.enabled) }),
    },
    { name: 'WebhookEndpointConnection', description: 'A page of webhook endpoints.' },
    {
      name: 'WebhookEndpointEdge',
      description: 'An endpoint in a page of endpoints.',
      nodeField: { description: 'The endpoint.' },
    },
  ),
  webhookEndpoint: t.prismaField({
    type: WebhookEndpointRef,
    nullable: true,
    description:
      'One endpoint by its global id; null when there is none in the caller’s workspace and mode. ADMIN only.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, args, ctx) => {
      const selection = { ...query };
      const id = rowIdFrom(String(args.id), 'WebhookEndpoint');
      return id ? ctx.db.prisma.webhookEndpoint.findUnique({ ...selection, where: scopedKey(id, ctx) }) : null;
    },
  }),
  webhookEventTypes: t.field({
    type: [WebhookEventTypeRef],
    description: 'Every event type an endpoint can subscribe to.',
    authScopes: { admin: true },
    resolve: () => Object.entries(WEBHOOK_EVENT_TYPES).map(([name, description]) => ({ name, description })),
  }),
}));

function endpointWhere(ctx: Context, enabled: boolean | null | undefined) {
  return { ...tenantOf(ctx), ...(enabled === null || enabled === undefined ? {} : { enabled }) };
}

type EndpointPayload = { endpointId: string; secret?: string };

const endpointField = (t: Parameters<Parameters<typeof payloadType<EndpointPayload>>[2]>[0], description: string) =>
  t.prismaField({
    type: WebhookEndpointRef,
    nullable: true,
    description,
    resolve: (query, p, _args, ctx) => {
      // Spread before the null check: a refused mutation has no endpoint, and that is not an unused query.
      const selection = { ...query };
      return p.endpointId
        ? ctx.db.prisma.webhookEndpoint.findUnique({ ...selection, where: { id: p.endpointId } })
        : null;
    },
  });

const secretField = (t: Parameters<Parameters<typeof payloadType<EndpointPayload>>[2]>[0]) =>
  t.string({
    nullable: true,
    description:
      'The signing secret (`whsec_…`). Store it now: it is never shown again (rotateWebhookSecret makes a new one).',
    resolve: (p) => p.secret ?? null,
  });

const CreateWebhookEndpointInput = builder.inputType('CreateWebhookEndpointInput', {
  fields: (t) => ({
    url: t.string({
      required: true,
      description:
        'http(s) URL, at most 2048 characters, without user name or password. Loopback, private, link-local, multicast and unspecified addresses (or hosts resolving to them) are refused unless the server sets WEBHOOK_ALLOW_PRIVATE_TARGETS.',
    }),
    eventTypes: t.stringList({
      description: 'Event types to deliver (see Query.webhookEventTypes); omitted or empty: every type.',
    }),
    description: t.string({ description: `For people; at most ${DESCRIPTION_MAX} characters.` }),
    enabled: t.boolean({ description: 'Default true.' }),
  }),
});

const CreateWebhookEndpointPayload = payloadType<EndpointPayload>(
  'CreateWebhookEndpointPayload',
  'The new endpoint, and its signing secret: shown this once.',
  (t) => ({ webhookEndpoint: endpointField(t, 'The new endpoint.'), secret: secretField(t) }),
);

builder.mutationField('createWebhookEndpoint', (t) =>
  t.field({
    type: CreateWebhookEndpointPayload,
    description:
      `Register a URL that receives the events committed from now on (earlier ones are not sent), signed with a new secret returned this once. ` +
      `VALIDATION for a bad URL, a refused target or an unknown event type; LIMIT_EXCEEDED beyond ${MAX_ENDPOINTS} endpoints per workspace and mode.`,
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateWebhookEndpointInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const { endpoint, secret } = await createWebhookEndpoint(ctx.db.prisma, tenantOf(ctx), input, policy(ctx));
        return { endpointId: endpoint.id, secret };
      }),
  }),
);

const UpdateWebhookEndpointInput = builder.inputType('UpdateWebhookEndpointInput', {
  description:
    'The endpoint and the fields to change; omitted (or null) fields stay as they are, except `description`, which null clears.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The endpoint’s global id.' }),
    url: t.string({ description: 'A new URL, checked as in createWebhookEndpoint.' }),
    eventTypes: t.stringList({ description: 'The new list of event types; empty: every type.' }),
    description: t.string({ description: `At most ${DESCRIPTION_MAX} characters; null clears it.` }),
    enabled: t.boolean({
      description:
        'false: nothing more is sent. true: clears consecutiveFailures and disabledReason; a disabled endpoint resumes with the events committed from then on, and its pending deliveries are sent again.',
    }),
  }),
});

const UpdateWebhookEndpointPayload = payloadType<EndpointPayload>(
  'UpdateWebhookEndpointPayload',
  'The updated endpoint.',
  (t) => ({
    webhookEndpoint: endpointField(t, 'The endpoint as it is now.'),
  }),
);

builder.mutationField('updateWebhookEndpoint', (t) =>
  t.field({
    type: UpdateWebhookEndpointPayload,
    description: 'Change an endpoint’s URL, event types or description, or disable or re-enable it.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateWebhookEndpointInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const endpoint = await updateWebhookEndpoint(
          ctx.db.prisma,
          tenantOf(ctx),
          {
            id: rowIdFrom(String(input.id), 'WebhookEndpoint'),
            url: input.url,
            eventTypes: input.eventTypes,
            description: input.description,
            enabled: input.enabled,
          },
          policy(ctx),
        );
        return { endpointId: endpoint.id };
      }),
  }),
);

const DeleteWebhookEndpointInput = builder.inputType('DeleteWebhookEndpointInput', {
  fields: (t) => ({ id: t.id({ required: true, description: 'The endpoint’s global id.' }) }),
});

const DeleteWebhookEndpointPayload = payloadType<{ deletedId: string }>(
  'DeleteWebhookEndpointPayload',
  'What was deleted.',
  (t) => ({
    deletedWebhookEndpointId: t.id({
      nullable: true,
      description: 'The global id of the deleted endpoint.',
      resolve: (p) => p.deletedId ?? null,
    }),
  }),
);

builder.mutationField('deleteWebhookEndpoint', (t) =>
  t.field({
    type: DeleteWebhookEndpointPayload,
    description:
      'Delete an endpoint with its delivery log; nothing more is sent to it (an attempt in flight finishes). To pause deliveries and keep the log, use updateWebhookEndpoint(enabled: false).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: DeleteWebhookEndpointInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        await deleteWebhookEndpoint(ctx.db.prisma, tenantOf(ctx), {
          id: rowIdFrom(String(input.id), 'WebhookEndpoint'),
        });
        return { deletedId: String(input.id) };
      }),
  }),
);

const RotateWebhookSecretInput = builder.inputType('RotateWebhookSecretInput', {
  fields: (t) => ({
    id: t.id({ required: true, description: 'The endpoint’s global id.' }),
    overlapSeconds: t.int({
      description: `How long the current secret keeps signing next to the new one (0–${MAX_OVERLAP_SECONDS}, default 0: replaced at once). Requests carry one v1 signature per secret in force.`,
    }),
  }),
});

const RotateWebhookSecretPayload = payloadType<EndpointPayload>(
  'RotateWebhookSecretPayload',
  'The endpoint and its new signing secret: shown this once.',
  (t) => ({
    webhookEndpoint: endpointField(t, 'The endpoint.'),
    secret: secretField(t),
  }),
);

builder.mutationField('rotateWebhookSecret', (t) =>
  t.field({
    type: RotateWebhookSecretPayload,
    description:
      'Give an endpoint a new signing secret, returned this once; the old one stops signing at once, or after `overlapSeconds`.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RotateWebhookSecretInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const { endpoint, secret } = await rotateWebhookSecret(ctx.db.prisma, tenantOf(ctx), {
          id: rowIdFrom(String(input.id), 'WebhookEndpoint'),
          overlapSeconds: input.overlapSeconds,
        });
        return { endpointId: endpoint.id, secret };
      }),
  }),
);

const RedeliverWebhookInput = builder.inputType('RedeliverWebhookInput', {
  fields: (t) => ({ deliveryId: t.id({ required: true, description: 'The delivery’s global id.' }) }),
});

const RedeliverWebhookPayload = payloadType<{ deliveryId: string }>(
  'RedeliverWebhookPayload',
  'The delivery, scheduled again.',
  (t) => ({
    webhookDelivery: t.prismaField({
      type: WebhookDeliveryRef,
      nullable: true,
      description: 'The delivery, PENDING and due now.',
      resolve: (query, p, _args, ctx) => {
        const selection = { ...query };
        return p.deliveryId
          ? ctx.db.prisma.webhookDelivery.findUnique({ ...selection, where: { id: p.deliveryId } })
          : null;
      },
    }),
  }),
);

builder.mutationField('redeliverWebhook', (t) =>
  t.field({
    type: RedeliverWebhookPayload,
    description:
      'Send a delivery again now, whatever its status (e.g. a FAILED one after the receiver was fixed, or a SUCCEEDED one the receiver lost). It becomes PENDING with a new retry window; its attempts keep counting. ' +
      'INVALID_TRANSITION while its endpoint is disabled: enable the endpoint first.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: RedeliverWebhookInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const delivery = await redeliverWebhook(ctx.db.prisma, tenantOf(ctx), {
          deliveryId: rowIdFrom(String(input.deliveryId), 'WebhookDelivery'),
        });
        return { deliveryId: delivery.id };
      }),
  }),
);
