import type { Conversion } from '../../generated/prisma/client.js';
import { StripeCustomerKey, StripeEventOutcome } from '../../generated/prisma/enums.js';
import { builder } from '../../graphql/builder.js';
import { loader } from '../../graphql/loaders.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import type { Context } from '../../context.js';
import { ConversionRef } from '../conversion/conversion.graphql.js';
import { cursorGuard } from '../reward/reward.graphql.js';
import { connectStripe, disconnectStripe, MAX_INTEGRATIONS, METADATA_KEY_MAX, webhookUrl } from './stripe.service.js';

// Stripe integrations: readable by ADMIN and READ_ONLY credentials of the workspace and mode (the
// signing secret never is: it is sealed in the database), connected and disconnected by ADMIN
// only; PARTNER credentials get FORBIDDEN_FOR_ROLE.

export const StripeEventOutcomeEnum = builder.enumType(StripeEventOutcome, {
  name: 'StripeEventOutcome',
  description:
    'What became of a Stripe event: RECORDED (a conversion), REFUNDED (a refund of one), IGNORED (nothing to record: another type, a zero-amount invoice, something only noted for later events, or a refund applied already), PARKED (waiting for what it depends on, e.g. a refund before its payment; applied when that arrives), FAILED (could not be applied; `reason` says why, and Stripe sends it again).',
});

export const StripeCustomerKeyEnum = builder.enumType(StripeCustomerKey, {
  name: 'StripeCustomerKey',
  description:
    'How the referred person is identified (their `referredExternalId`): CUSTOMER_ID, the Stripe customer id (cus_…); CUSTOMER_METADATA, the value of a metadata key of the Stripe customer (e.g. your user id in "user_id").',
});

export const StripeEventLogRef = builder.prismaNode('StripeEventLog', {
  description:
    'A Stripe event an integration received (once per Stripe event id, however often Stripe delivered it) and what became of it.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => scopedKey(id, ctx),
  authScopes: { reader: true },
  fields: (t) => ({
    stripeEventId: t.exposeString('stripeEventId', { description: 'Stripe’s event id (evt_…).' }),
    type: t.exposeString('type', { description: 'Stripe’s event type, e.g. invoice.paid.' }),
    outcome: t.field({
      type: StripeEventOutcomeEnum,
      description:
        'What became of it. An event a delivery is applying right now (or whose delivery stopped midway, which Stripe then sends again) reads FAILED with a reason saying so.',
      resolve: (log) => log.outcome ?? 'FAILED',
    }),
    reason: t.string({
      nullable: true,
      description:
        'For people: what was recorded or refunded, why it was ignored, what it waits for, or why it failed.',
      resolve: (log) => log.reason ?? (log.outcome === null ? 'Being applied by a delivery now.' : null),
    }),
    conversion: t.field({
      type: ConversionRef,
      nullable: true,
      description: 'The conversion it recorded (RECORDED), or the REFUND conversion (REFUNDED).',
      resolve: (log, _args, ctx) => (log.conversionId ? conversionById(ctx, log.conversionId) : null),
    }),
    receivedAt: t.expose('receivedAt', { type: 'DateTime', description: 'When Stripe first delivered it.' }),
  }),
});

/** The caller's conversions by id, one statement per request. */
function conversionById(ctx: Context, id: string): Promise<Conversion | null> {
  return loader<string, Conversion | null>(ctx, 'stripe:conversion', async (ids) => {
    const rows = await ctx.db.prisma.conversion.findMany({ where: { id: { in: [...ids] }, ...tenantOf(ctx) } });
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((rowId) => byId.get(rowId) ?? null);
  }).load(id);
}

/** When each integration last received an event, one statement per request. */
function lastEventAt(ctx: Context, integrationId: string): Promise<Date | null> {
  return loader<string, Date | null>(ctx, 'stripe:lastEventAt', async (ids) => {
    const rows = await ctx.db.prisma.stripeEventLog.groupBy({
      by: ['integrationId'],
      where: { integrationId: { in: [...ids] }, ...tenantOf(ctx) },
      _max: { receivedAt: true },
    });
    const byId = new Map(rows.map((row) => [row.integrationId, row._max.receivedAt]));
    return ids.map((rowId) => byId.get(rowId) ?? null);
  }).load(integrationId);
}

export const StripeIntegrationRef = builder.prismaNode('StripeIntegration', {
  description:
    'A Stripe webhook endpoint feeding one program: Stripe’s events become conversions and refunds by themselves (src/modules/integration/README.md). Its signing secret is never readable.',
  id: { field: 'id' },
  nullable: true,
  findUnique: (id, ctx) => scopedKey(id, ctx),
  authScopes: { reader: true },
  fields: (t) => ({
    program: t.relation('program', { description: 'The program its conversions are recorded in.' }),
    webhookUrl: t.string({
      description:
        'The endpoint URL to enter in Stripe (Developers → Webhooks → Add endpoint): `PUBLIC_URL/integrations/stripe/<id>`, where <id> is the integration’s row id (a UUID, the part of its global id after "StripeIntegration:").',
      resolve: (integration, _args, ctx) => webhookUrl(ctx.config.publicUrl, integration.id),
    }),
    customerKey: t.expose('customerKey', { type: StripeCustomerKeyEnum }),
    customerMetadataKey: t.exposeString('customerMetadataKey', {
      nullable: true,
      description: 'With CUSTOMER_METADATA: the Stripe customer’s metadata key that holds the person’s id.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastEventAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When it last received an event (any type, any outcome); null before the first.',
      resolve: (integration, _args, ctx) => lastEventAt(ctx, integration.id),
    }),
    events: t.relatedConnection(
      'events',
      {
        cursor: 'id',
        description: 'The events it received, newest first.',
        totalCount: true,
        query: (args) => ({ orderBy: { id: 'desc' }, ...cursorGuard(args) }),
      },
      { name: 'StripeEventLogConnection', description: 'A page of a Stripe integration’s event log.' },
      {
        name: 'StripeEventLogEdge',
        description: 'An event in a page of the log.',
        nodeField: { description: 'The event.' },
      },
    ),
  }),
});

builder.queryField('stripeIntegrations', (t) =>
  t.prismaField({
    type: [StripeIntegrationRef],
    nullable: { list: false, items: false },
    description: `The connected Stripe integrations of the workspace and mode (at most ${MAX_INTEGRATIONS}), oldest first. A disconnected one is still readable by its id (node). ADMIN and READ_ONLY.`,
    authScopes: { reader: true },
    resolve: (query, _root, _args, ctx) =>
      ctx.db.prisma.stripeIntegration.findMany({
        ...query,
        where: { ...tenantOf(ctx), disconnectedAt: null },
        orderBy: { id: 'asc' },
      }),
  }),
);

type IntegrationPayload = { integrationId: string };

const integrationField = (
  t: Parameters<Parameters<typeof payloadType<IntegrationPayload>>[2]>[0],
  description: string,
) =>
  t.prismaField({
    type: StripeIntegrationRef,
    nullable: true,
    description,
    resolve: (query, p, _args, ctx) => {
      // Spread before the null check: a refused mutation has no integration, and that is not an unused query.
      const selection = { ...query };
      return p.integrationId
        ? ctx.db.prisma.stripeIntegration.findUnique({ ...selection, where: scopedKey(p.integrationId, ctx) })
        : null;
    },
  });

const ConnectStripeInput = builder.inputType('ConnectStripeInput', {
  description: 'A Stripe webhook endpoint to connect to a program.',
  fields: (t) => ({
    programId: t.id({ required: true, description: 'The program Stripe’s events are recorded in.' }),
    signingSecret: t.string({
      required: true,
      description:
        'The endpoint’s signing secret as Stripe shows it ("whsec_…"; Developers → Webhooks → the endpoint → Signing secret). Stored sealed, never shown again (VALIDATION for anything else).',
    }),
    customerKey: t.field({
      type: StripeCustomerKeyEnum,
      defaultValue: 'CUSTOMER_ID',
      description:
        'How the referred person is identified: the Stripe customer id (default), or a customer metadata value.',
    }),
    customerMetadataKey: t.string({
      description: `With customerKey CUSTOMER_METADATA (required then, refused otherwise): the Stripe customer’s metadata key that holds your user id, e.g. "user_id" (1–${METADATA_KEY_MAX} characters).`,
    }),
  }),
});

const ConnectStripePayload = payloadType<IntegrationPayload>(
  'ConnectStripePayload',
  'The new integration, with the webhookUrl to enter in Stripe.',
  (t) => ({ integration: integrationField(t, 'The integration connected.') }),
);

builder.mutationField('connectStripe', (t) =>
  t.field({
    type: ConnectStripePayload,
    description:
      `Connect a Stripe webhook endpoint to a program: enter the answered webhookUrl in Stripe with the events listed in the integration README (checkout.session.completed, invoice.paid, charge.refunded …). ` +
      `VALIDATION for a signing secret that is not "whsec_…" or a customer key without its metadata key; NOT_FOUND for an unknown program; LIMIT_EXCEEDED beyond ${MAX_INTEGRATIONS} connected integrations per workspace and mode. ADMIN only.`,
    authScopes: { admin: true },
    args: { input: t.arg({ type: ConnectStripeInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const integration = await connectStripe(
          ctx.db.prisma,
          tenantOf(ctx),
          {
            programId: rowIdFrom(String(input.programId), 'Program'),
            signingSecret: input.signingSecret,
            customerKey: input.customerKey,
            customerMetadataKey: input.customerMetadataKey,
          },
          ctx.providerSecrets,
        );
        return { integrationId: integration.id };
      }),
  }),
);

const DisconnectStripeInput = builder.inputType('DisconnectStripeInput', {
  fields: (t) => ({ id: t.id({ required: true, description: 'The integration’s global id.' }) }),
});

const DisconnectStripePayload = payloadType<IntegrationPayload>(
  'DisconnectStripePayload',
  'The integration, disconnected.',
  (t) => ({ integration: integrationField(t, 'The integration as it is now (its event log stays readable).') }),
);

builder.mutationField('disconnectStripe', (t) =>
  t.field({
    type: DisconnectStripePayload,
    description:
      'Disconnect a Stripe integration: its deliveries are refused (404) from then on — delete the endpoint in Stripe too. Its event log and the conversions it recorded stay. NOT_FOUND for an unknown or already disconnected integration. ADMIN only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: DisconnectStripeInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const integration = await disconnectStripe(ctx.db.prisma, tenantOf(ctx), {
          id: rowIdFrom(String(input.id), 'StripeIntegration'),
        });
        return { integrationId: integration.id };
      }),
  }),
);
