import type { PrismaClient, StripeIntegration } from '../../generated/prisma/client.js';
import type { StripeCustomerKey } from '../../generated/prisma/enums.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { isUuid, NIL_UUID } from '../../lib/ids.js';
import type { SecretBox } from '../../lib/secret-box.js';
import { uuidv7 } from '../../lib/uuid.js';
import { appendEvents } from '../events/outbox.js';
import { integrationConnected, integrationDisconnected } from '../events/payloads.js';

// Stripe integrations of a workspace and mode: connect (ADMIN), disconnect (ADMIN), list. What
// their deliveries do is in stripe-delivery.ts; the README says what to configure in Stripe.

/** Connected integrations per workspace and mode, at most. */
export const MAX_INTEGRATIONS = 20;
/** Stripe's metadata keys are at most 40 characters long. */
export const METADATA_KEY_MAX = 40;
/** `whsec_` and the key Stripe shows (base64 characters; the Stripe CLI's are longer). */
const SIGNING_SECRET = /^whsec_[A-Za-z0-9+/=_-]{16,200}$/;

/** Where Stripe sends an integration's events: `PUBLIC_URL/integrations/stripe/<integration row id>`. */
export const STRIPE_PATH_PREFIX = '/integrations/stripe/';
export const webhookUrl = (publicUrl: string, integrationId: string) =>
  `${publicUrl}${STRIPE_PATH_PREFIX}${integrationId}`;

/** The associated data a signing secret is sealed with: it opens for its own integration only. */
export const secretContext = (integrationId: string) => `stripe-signing-secret:${integrationId}`;

export interface ConnectStripeInput {
  /** Row id; null when the given global id was malformed or of another type (NOT_FOUND). */
  programId: string | null;
  signingSecret: string;
  customerKey?: StripeCustomerKey | null;
  customerMetadataKey?: string | null;
}

/**
 * Connect a Stripe endpoint to a program: validate the signing secret's form and the way people
 * are identified, seal the secret, and append `integration.connected`. Nothing is stored on refusal.
 */
export async function connectStripe(
  prisma: PrismaClient,
  tenant: Tenant,
  input: ConnectStripeInput,
  box: SecretBox,
): Promise<StripeIntegration> {
  const v = new Validator();
  const secret = input.signingSecret.trim();
  v.check(
    SIGNING_SECRET.test(secret),
    ['input', 'signingSecret'],
    'signingSecret must be the endpoint’s signing secret as Stripe shows it: "whsec_" followed by its key (Stripe dashboard → Developers → Webhooks → your endpoint → Signing secret → Reveal). An API key (sk_…, rk_…) or a publishable key (pk_…) does not work here.',
  );
  const customerKey = input.customerKey ?? 'CUSTOMER_ID';
  const metadataKey = input.customerMetadataKey?.trim() || null;
  if (customerKey === 'CUSTOMER_METADATA') {
    v.check(
      metadataKey !== null && metadataKey.length <= METADATA_KEY_MAX && !/[[\]]/.test(metadataKey),
      ['input', 'customerMetadataKey'],
      `With customerKey CUSTOMER_METADATA, customerMetadataKey names the Stripe customer's metadata key that holds the person's id in your product (e.g. "user_id"): 1 to ${METADATA_KEY_MAX} characters, no square brackets.`,
    );
  } else {
    v.check(
      metadataKey === null,
      ['input', 'customerMetadataKey'],
      'customerMetadataKey is only used with customerKey CUSTOMER_METADATA: leave it out, or set customerKey to CUSTOMER_METADATA.',
    );
  }
  const programId = input.programId && isUuid(input.programId) ? input.programId : NIL_UUID;
  const program = await prisma.program.findUnique({
    where: { id_workspaceId_mode: { id: programId, ...tenant } },
    select: { id: true },
  });
  // An unknown program answers NOT_FOUND alone, before any complaint about the rest of the input.
  if (!program) throw notFound('Program', ['input', 'programId']);
  v.throwIfAny();

  const id = uuidv7();
  return prisma.$transaction(async (tx) => {
    const connected = await tx.stripeIntegration.count({ where: { ...tenant, disconnectedAt: null } });
    if (connected >= MAX_INTEGRATIONS) {
      throw new DomainError(
        'LIMIT_EXCEEDED',
        `A workspace can have at most ${MAX_INTEGRATIONS} connected Stripe integrations per mode: disconnect one first.`,
        ['input'],
      );
    }
    const integration = await tx.stripeIntegration.create({
      data: {
        id,
        ...tenant,
        programId: program.id,
        signingSecret: box.seal(secret, secretContext(id)),
        customerKey,
        customerMetadataKey: metadataKey,
      },
    });
    await appendEvents(tx, tenant, [integrationConnected(integration)]);
    return integration;
  });
}

/**
 * Disconnect an integration: its deliveries are refused (404) from then on, so Stripe stops
 * counting them as delivered; its event log stays readable. Disconnecting twice is NOT_FOUND.
 */
export async function disconnectStripe(
  prisma: PrismaClient,
  tenant: Tenant,
  input: { id: string | null },
  now: Date = new Date(),
): Promise<StripeIntegration> {
  const id = input.id && isUuid(input.id) ? input.id : NIL_UUID;
  return prisma.$transaction(async (tx) => {
    const { count } = await tx.stripeIntegration.updateMany({
      where: { id, ...tenant, disconnectedAt: null },
      data: { disconnectedAt: now },
    });
    if (count === 0) throw notFound('Connected Stripe integration');
    const integration = await tx.stripeIntegration.findUniqueOrThrow({ where: { id } });
    await appendEvents(tx, tenant, [integrationDisconnected(integration)]);
    return integration;
  });
}
