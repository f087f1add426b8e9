import type { Database } from '../../db.js';
import { DomainError, DomainErrors } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import type { Mode, StripeCustomerKey, StripeEventOutcome } from '../../generated/prisma/enums.js';
import { globalId } from '../../lib/global-id.js';
import { isUuid } from '../../lib/ids.js';
import { formatMinor } from '../../lib/money.js';
import type { SecretBox } from '../../lib/secret-box.js';
import type { SqlClient } from '../../lib/sql.js';
import { uuidv7 } from '../../lib/uuid.js';
import type { Logger } from '../../logger.js';
import type { DecodedClick } from '../conversion/attribution-facts.js';
import { recordConversion } from '../conversion/record.service.js';
import { refundConversion } from '../conversion/refund.service.js';
import { appendEvents } from '../events/outbox.js';
import { integrationFailed } from '../events/payloads.js';
import {
  fromStripeMinor,
  parseStripeEvent,
  planStripeEvent,
  type Plan,
  type RecordPlan,
  type RefundPlan,
  type StripeEvent,
  UnusableEvent,
} from './stripe-events.js';
import { secretContext } from './stripe.service.js';

// One Stripe delivery, from the verified body to the answer (README.md, "How a delivery is
// applied"). recordConversion and refundConversion are called as a client would, with
// idempotency keys made of Stripe ids; the event log row (unique per integration and Stripe
// event id) says what became of each event and carries what must survive between deliveries: a
// refund's reservation, a PARKED event's payload and what it waits for.

/** Stripe's own tolerance for the signature's timestamp (seconds). */
export const SIGNATURE_TOLERANCE_SECONDS = 300;
/** A first subscription invoice waits this long for its Checkout Session, then is recorded without it. */
export const FIRST_INVOICE_WAIT_MS = 60 * 60_000;
/** An event taken up from PARKED whose delivery stopped midway is taken up again after this long. */
export const STALE_CLAIM_MS = 2 * 60_000;
/** PARKED events applied per sweep, at most (a sweep ends every delivery). */
const SWEEP_BATCH = 10;
const SWEEP_ROUNDS = 3;
/** The actor of the rewards' status history. */
export const STRIPE_ACTOR = 'system:stripe';

export interface DeliveryDeps {
  db: Database;
  box: SecretBox;
  decodeClick: (token: string) => DecodedClick | null;
  /** recordConversion's IP hashing (Stripe's events carry no customer IP: never called today). */
  hashIp: (ip: string) => string | null;
  logger: Logger;
  now?: () => Date;
}

export interface DeliveryAnswer {
  status: number;
  body: Record<string, unknown>;
}

interface Integration {
  id: string;
  workspaceId: string;
  mode: Mode;
  programId: string;
  signingSecret: string;
  customerKey: StripeCustomerKey;
  customerMetadataKey: string | null;
  disconnected: boolean;
}

interface Ctx {
  deps: DeliveryDeps;
  integration: Integration;
  tenant: Tenant;
  now: Date;
}

/** A log row as a delivery takes it up. */
interface LogRow {
  id: string;
  outcome: StripeEventOutcome | null;
  reason: string | null;
  conversionId: string | null;
  refundOfId: string | null;
  refundAmount: string | null;
}

interface Finished {
  logId: string;
  outcome: StripeEventOutcome;
  reason: string | null;
  conversionId: string | null;
}

const answerOf = (finished: Finished, event: StripeEvent): DeliveryAnswer => ({
  // FAILED: not 2xx, so Stripe retries (and shows the failure); the log and integration.failed say why.
  status: finished.outcome === 'FAILED' ? 422 : 200,
  body: {
    received: true,
    eventId: event.id,
    outcome: finished.outcome,
    reason: finished.reason,
    eventLogId: globalId('StripeEventLog', finished.logId),
    conversionId: finished.conversionId ? globalId('Conversion', finished.conversionId) : null,
  },
});

const refusal = (status: number, error: string): DeliveryAnswer => ({ status, body: { error } });

let stripeModule: Promise<typeof import('stripe')> | undefined;
/** The `stripe` package, loaded on the first delivery (it is large; the server starts without it). */
const loadStripe = () => (stripeModule ??= import('stripe'));

/**
 * Verify and apply one delivery of `POST /integrations/stripe/{integrationId}`. The answer is 2xx
 * only once what the event does is committed (or it was ignored or parked); 400 for a bad
 * signature, a body that is not a Stripe event or an event of the other mode; 404 for an unknown
 * or disconnected integration; 422 for an event that could not be applied (FAILED, logged).
 */
export async function deliverStripeEvent(
  deps: DeliveryDeps,
  integrationId: string,
  body: Buffer,
  signature: string | undefined,
): Promise<DeliveryAnswer> {
  const unknown = refusal(404, 'No connected Stripe integration has this id: check the endpoint URL in Stripe.');
  if (!isUuid(integrationId)) return unknown;
  const integration = await loadIntegration(deps.db, integrationId);
  if (!integration || integration.disconnected) return unknown;
  const secret = deps.box.open(integration.signingSecret, secretContext(integration.id));
  if (secret === null) {
    deps.logger.error({ integrationId }, 'the Stripe signing secret cannot be opened (REFGRAPH_SECRET changed?)');
    return refusal(
      500,
      'The integration’s signing secret cannot be read with this installation’s secret (REFGRAPH_SECRET changed since it was connected): connect it again.',
    );
  }

  const { default: Stripe } = await loadStripe();
  let parsed: unknown;
  try {
    parsed = Stripe.webhooks.constructEvent(body, signature ?? '', secret, SIGNATURE_TOLERANCE_SECONDS);
  } catch (error) {
    if (error instanceof SyntaxError) return refusal(400, 'The body is signed but is not JSON.');
    if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
      // Stripe's own message may describe the secret (its length and last characters): not for the sender.
      const late = /tolerance/i.test(error.message);
      return refusal(
        400,
        late
          ? `The Stripe-Signature timestamp is more than ${SIGNATURE_TOLERANCE_SECONDS} s old.`
          : 'The Stripe-Signature header is missing or does not match the body signed with this integration’s signing secret.',
      );
    }
    throw error;
  }
  const event = parseStripeEvent(parsed);
  if (typeof event === 'string') return refusal(400, event);

  const now = deps.now?.() ?? new Date();
  const ctx: Ctx = { deps, integration, tenant: { workspaceId: integration.workspaceId, mode: integration.mode }, now };
  const row = await claim(ctx, event);
  if (row.outcome !== null) {
    // Applied by an earlier delivery: the same answer again (a FAILED one was taken up again by claim).
    return answerOf({ logId: row.id, outcome: row.outcome, reason: row.reason, conversionId: row.conversionId }, event);
  }
  if (event.livemode !== (integration.mode === 'LIVE')) {
    const reason = `A ${event.livemode ? 'live' : 'test'}-mode event reached a ${integration.mode} integration: connect the endpoint of Stripe's ${event.livemode ? 'live' : 'test'} mode to an integration of refgraph's ${event.livemode ? 'LIVE' : 'TEST'} mode.`;
    await fail(ctx, row, event, reason);
    return refusal(400, reason);
  }
  let finished: Finished;
  try {
    finished = await applyEvent(ctx, row, event);
  } catch (error) {
    await noteInterrupted(ctx, row, event, error);
    throw error;
  }
  await sweep(ctx);
  return answerOf(finished, event);
}

async function loadIntegration(db: Database, id: string): Promise<Integration | null> {
  const [row] = await db.sql<Integration>`
    SELECT "id", "workspaceId", "mode"::text AS "mode", "programId", "signingSecret", "customerKey"::text AS "customerKey",
           "customerMetadataKey", "disconnectedAt" IS NOT NULL AS "disconnected"
      FROM "StripeIntegration" WHERE "id" = ${id}::uuid`;
  return row ?? null;
}

/**
 * Take the event up, once per (integration, Stripe event id): a new row, or the existing one —
 * finished (its outcome answers), FAILED (taken up again: Stripe sends a failed event again), or
 * being applied by another delivery, which this one then helps finish: every step is idempotent.
 */
async function claim(ctx: Ctx, event: StripeEvent): Promise<LogRow> {
  const { integration, now } = ctx;
  const [row] = await ctx.deps.db.sql<LogRow>`
    INSERT INTO "StripeEventLog" ("id", "workspaceId", "mode", "integrationId", "stripeEventId", "type", "receivedAt", "claimedAt")
    VALUES (${uuidv7()}::uuid, ${integration.workspaceId}::uuid, ${integration.mode}::"Mode", ${integration.id}::uuid,
            ${event.id}, ${event.type}, ${now}::timestamptz, ${now}::timestamptz)
    ON CONFLICT ("integrationId", "stripeEventId") DO UPDATE
       SET "outcome" = CASE WHEN "StripeEventLog"."outcome" = 'FAILED' THEN NULL ELSE "StripeEventLog"."outcome" END,
           "claimedAt" = CASE WHEN "StripeEventLog"."outcome" IS NULL OR "StripeEventLog"."outcome" = 'FAILED'
                              THEN EXCLUDED."claimedAt" ELSE "StripeEventLog"."claimedAt" END
    RETURNING "id", "outcome"::text AS "outcome", "reason", "conversionId", "refundOfId", "refundAmount"::text AS "refundAmount"`;
  return row!;
}

function planOf(ctx: Ctx, event: StripeEvent): Plan {
  const { integration, deps } = ctx;
  return planStripeEvent(event, {
    customerMetadataKey: integration.customerKey === 'CUSTOMER_METADATA' ? integration.customerMetadataKey : null,
    isClickId: (token) => deps.decodeClick(token) !== null,
  });
}

async function applyEvent(ctx: Ctx, row: LogRow, event: StripeEvent, released = false): Promise<Finished> {
  const plan = planOf(ctx, event);
  // A refund reserved by an earlier delivery: carry it out (the same idempotency key).
  if (row.refundOfId && row.refundAmount && plan.kind === 'refund')
    return executeRefund(ctx, row, event, plan, row.refundOfId, BigInt(row.refundAmount));
  switch (plan.kind) {
    case 'ignore':
      return finish(ctx, row, 'IGNORED', plan.reason);
    case 'learn':
      return finish(ctx, row, 'IGNORED', plan.reason, null, plan.links);
    case 'fail':
      return fail(ctx, row, event, plan.reason);
    case 'record':
      return applyRecord(ctx, row, event, plan, released);
    case 'refund':
      return applyRefund(ctx, row, event, plan);
  }
}

// --- Payments ---------------------------------------------------------------------------------------

/** The idempotency key of what an integration records for a Stripe id (a payment, or a refund event). */
export const conversionKey = (integrationId: string, stripeId: string) => `stripe:${integrationId}:${stripeId}`;

async function applyRecord(
  ctx: Ctx,
  row: LogRow,
  event: StripeEvent,
  plan: RecordPlan,
  released: boolean,
): Promise<Finished> {
  const { integration, tenant, deps } = ctx;
  const promotionIds = plan.promotions.flatMap((p) => ('promotionCodeId' in p ? [p.promotionCodeId] : []));
  const discountIds = plan.promotions.flatMap((p) => ('discountId' in p ? [p.discountId] : []));
  // Only what this event needs (usually nothing: no statement): the customer's metadata value, the
  // subscription's session (a first invoice), the promotion codes.
  const known = await lookupLinks(ctx, [
    integration.customerKey === 'CUSTOMER_METADATA' && !plan.metadataValue ? plan.customerId : null,
    plan.billingReason === 'subscription_create' ? plan.subscriptionId : null,
    ...promotionIds,
    ...discountIds,
  ]);
  const viaDiscounts = discountIds.map((id) => known.get(id)).filter((id): id is string => id !== undefined);
  if (viaDiscounts.some((id) => !known.has(id)))
    for (const [k, v] of await lookupLinks(ctx, viaDiscounts)) known.set(k, v);
  const couponCode =
    plan.promotions
      .map((p) =>
        'code' in p
          ? p.code
          : 'promotionCodeId' in p
            ? known.get(p.promotionCodeId)
            : known.get(known.get(p.discountId) ?? ''),
      )
      .find((code) => code !== undefined) ?? null;

  // Who paid: the Stripe customer, or the customer's metadata value (CUSTOMER_METADATA).
  const links = { ...plan.links };
  let externalId: string | null;
  if (integration.customerKey === 'CUSTOMER_METADATA') {
    externalId = plan.metadataValue ?? (plan.customerId ? (known.get(plan.customerId) ?? null) : null);
    if (plan.metadataValue && plan.customerId) links[plan.customerId] = plan.metadataValue;
    if (externalId === null && plan.customerId) {
      return park(
        deps.db,
        row,
        event,
        [plan.customerId],
        `Waiting for customer ${plan.customerId}'s metadata "${integration.customerMetadataKey}": send customer.created and customer.updated to this endpoint too (or put "${integration.customerMetadataKey}" in the Checkout Session's metadata).`,
      );
    }
  } else {
    externalId = plan.customerId ?? plan.email?.toLowerCase() ?? null;
  }
  if (externalId === null) {
    return fail(
      ctx,
      row,
      event,
      `${event.type} names no customer${integration.customerKey === 'CUSTOMER_ID' ? ' and no email' : ''}: refgraph cannot tell who paid. Let Checkout create customers (customer_creation: "always").`,
    );
  }

  const code = plan.code ?? plan.clientReference;
  // A first subscription invoice that came before its Checkout Session waits for it (the session
  // carries the click or code that binds the person); released after FIRST_INVOICE_WAIT_MS.
  if (
    !released &&
    plan.billingReason === 'subscription_create' &&
    plan.subscriptionId &&
    !plan.clickId &&
    !code &&
    !couponCode &&
    !known.has(plan.subscriptionId) &&
    !(await hasReferral(ctx, externalId))
  ) {
    return park(
      deps.db,
      row,
      event,
      [plan.subscriptionId],
      `The first invoice of subscription ${plan.subscriptionId}, for a person refgraph does not know yet: waiting for the subscription's checkout.session.completed (which says who referred them); recorded without it after ${FIRST_INVOICE_WAIT_MS / 60_000} minutes.`,
      new Date(ctx.now.getTime() + FIRST_INVOICE_WAIT_MS),
    );
  }

  let recorded: Awaited<ReturnType<typeof recordConversion>>;
  try {
    recorded = await recordConversion(
      deps.db,
      tenant,
      {
        type: plan.type,
        idempotencyKey: conversionKey(integration.id, plan.paymentKey),
        referredExternalId: externalId,
        referredEmail: plan.email,
        programId: integration.programId,
        clickId: plan.clickId,
        code,
        couponCode,
        amount: plan.amount
          ? { amount: formatMinor(plan.amount.minor, plan.amount.currency), currency: plan.amount.currency }
          : null,
        occurredAt: plan.occurredAt,
        productId: plan.productId,
        metadata: plan.metadata,
      },
      { actor: STRIPE_ACTOR, decodeClick: deps.decodeClick, hashIp: deps.hashIp },
    );
  } catch (error) {
    const message = domainMessage(error);
    if (message === null) throw error;
    return fail(ctx, row, event, `recordConversion refused the ${plan.type}: ${message}`);
  }
  const money = plan.amount
    ? ` of ${formatMinor(plan.amount.minor, plan.amount.currency)} ${plan.amount.currency}`
    : '';
  const reason =
    `${plan.type}${money} by ${externalId}: ${recorded.status}` +
    (recorded.discardReason ? ` (${recorded.discardReason})` : '') +
    (recorded.replayed ? ', recorded by an earlier event of the same payment.' : '.');
  return finish(ctx, row, 'RECORDED', reason, recorded.conversionId, links);
}

async function hasReferral(ctx: Ctx, externalId: string): Promise<boolean> {
  const { tenant, integration } = ctx;
  const rows = await ctx.deps.db.sql`
    SELECT 1 FROM "Referral"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"
       AND "programId" = ${integration.programId}::uuid AND "externalId" = ${externalId}`;
  return rows.length > 0;
}

/** What the integration learned earlier about these Stripe ids. */
async function lookupLinks(
  ctx: Ctx,
  ids: Array<string | null>,
  client: SqlClient = ctx.deps.db,
): Promise<Map<string, string>> {
  const wanted = [...new Set(ids.filter((id): id is string => id !== null))];
  if (wanted.length === 0) return new Map();
  const rows = await client.sql<{ stripeId: string; value: string }>`
    SELECT "stripeId", "value" FROM "StripeLink"
     WHERE "integrationId" = ${ctx.integration.id}::uuid AND "stripeId" = ANY(${wanted}::text[])`;
  return new Map(rows.map((r) => [r.stripeId, r.value]));
}

// --- Refunds ------------------------------------------------------------------------------------------

type Reservation = { done: Finished } | { refundOfId: string; amount: bigint; currency: string } | { failed: string };

/**
 * Refund the payment a charge paid, by what is newly refunded. In one transaction: the log row
 * locked (one reservation per event), the payment found through the links, the charge's running
 * totals locked and advanced, the amount and the conversion written on the log row. Then
 * refundConversion, keyed by the Stripe event id: a delivery that stops midway is finished by the
 * next one with the same reservation. A refund whose payment is not known yet is PARKED.
 */
async function applyRefund(ctx: Ctx, row: LogRow, event: StripeEvent, plan: RefundPlan): Promise<Finished> {
  const { integration, tenant } = ctx;
  const reservation = await ctx.deps.db.transaction(async (tx): Promise<Reservation> => {
    const [locked] = await tx.sql<Pick<LogRow, 'outcome' | 'reason' | 'conversionId' | 'refundOfId' | 'refundAmount'>>`
      SELECT "outcome"::text AS "outcome", "reason", "conversionId", "refundOfId", "refundAmount"::text AS "refundAmount"
        FROM "StripeEventLog" WHERE "id" = ${row.id}::uuid FOR UPDATE`;
    if (locked!.outcome !== null)
      return {
        done: { logId: row.id, outcome: locked!.outcome, reason: locked!.reason, conversionId: locked!.conversionId },
      };
    if (locked!.refundOfId && locked!.refundAmount) {
      const currency = await conversionCurrency(tx, tenant, locked!.refundOfId);
      return { refundOfId: locked!.refundOfId, amount: BigInt(locked!.refundAmount), currency };
    }

    const linked = await lookupLinks(ctx, plan.candidates, tx);
    const keys = [...new Set([...plan.candidates, ...linked.values()])];
    const [payment] = await tx.sql<{
      id: string;
      idempotencyKey: string;
      amount: string;
      currency: string;
      refunded: string;
    }>`
      SELECT c."id", c."idempotencyKey", c."amount"::text AS "amount", c."currency",
             (SELECT COALESCE(SUM(r."amount"), 0) FROM "Conversion" r
               WHERE r."refundOfId" = c."id" AND r."type" = 'REFUND'
                 AND r."workspaceId" = ${tenant.workspaceId}::uuid AND r."mode" = ${tenant.mode}::"Mode")::text AS "refunded"
        FROM "Conversion" c
       WHERE c."workspaceId" = ${tenant.workspaceId}::uuid AND c."mode" = ${tenant.mode}::"Mode"
         AND c."idempotencyKey" = ANY(${keys.map((k) => conversionKey(integration.id, k))}::text[])
         AND c."type" IN ('PURCHASE', 'SUBSCRIPTION') AND c."amount" IS NOT NULL
       ORDER BY c."id" LIMIT 1`;
    if (!payment) {
      // Wait for whichever of these ids a payment links next (a link already known whose payment
      // is not recorded yet: wait for that payment itself).
      const waitingFor = [...plan.candidates.filter((id) => !linked.has(id)), ...new Set(linked.values())];
      const parked = await park(
        tx,
        row,
        event,
        waitingFor,
        `A refund of a payment refgraph has not recorded yet (${plan.describe}): applied when the payment arrives.`,
      );
      return { done: parked };
    }
    if (payment.currency !== plan.currency) {
      return {
        failed: `The refund is in ${plan.currency}, the payment it refunds (conversion ${globalId('Conversion', payment.id)}) in ${payment.currency}.`,
      };
    }

    // The charge's running totals, locked: refunds of one charge are computed one after the other.
    const [state] = await tx.sql<{ refundedTotal: string; refundsSum: string; applied: string }>`
      INSERT INTO "StripeCharge" ("integrationId", "chargeKey", "workspaceId", "mode", "updatedAt")
      VALUES (${integration.id}::uuid, ${plan.chargeKey}, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${ctx.now}::timestamptz)
      ON CONFLICT ("integrationId", "chargeKey") DO UPDATE SET "updatedAt" = EXCLUDED."updatedAt"
      RETURNING "refundedTotal"::text AS "refundedTotal", "refundsSum"::text AS "refundsSum", "applied"::text AS "applied"`;
    const before = BigInt(state!.applied);
    const total = max(BigInt(state!.refundedTotal), plan.runningTotal ?? 0n);
    const sum = BigInt(state!.refundsSum) + (plan.single ?? 0n);
    const applied = max(before, max(total, sum));
    let newly: bigint;
    try {
      newly = fromStripeMinor(applied - before, plan.currency);
    } catch (error) {
      if (error instanceof UnusableEvent) return { failed: error.message };
      throw error;
    }
    const remaining = BigInt(payment.amount) - BigInt(payment.refunded);
    const amount = newly < remaining ? newly : remaining;
    await tx.sql`
      UPDATE "StripeCharge" SET "refundedTotal" = ${total}::bigint, "refundsSum" = ${sum}::bigint, "applied" = ${applied}::bigint
       WHERE "integrationId" = ${integration.id}::uuid AND "chargeKey" = ${plan.chargeKey}`;
    if (amount <= 0n) {
      const reason =
        newly <= 0n
          ? `Nothing newly refunded (${plan.describe}): earlier events applied it already.`
          : `Conversion ${globalId('Conversion', payment.id)} is refunded in full already (${plan.describe}).`;
      return { done: await finish(ctx, row, 'IGNORED', reason, null, undefined, tx) };
    }
    await tx.sql`
      UPDATE "StripeEventLog" SET "refundOfId" = ${payment.id}::uuid, "refundAmount" = ${amount}::bigint
       WHERE "id" = ${row.id}::uuid`;
    return { refundOfId: payment.id, amount, currency: payment.currency };
  });
  if ('done' in reservation) return reservation.done;
  if ('failed' in reservation) return fail(ctx, row, event, reservation.failed);
  return executeRefund(ctx, row, event, plan, reservation.refundOfId, reservation.amount, reservation.currency);
}

async function executeRefund(
  ctx: Ctx,
  row: LogRow,
  event: StripeEvent,
  plan: RefundPlan,
  refundOfId: string,
  amount: bigint,
  currency?: string,
): Promise<Finished> {
  const { deps, tenant, integration } = ctx;
  const code = currency ?? (await conversionCurrency(deps.db, tenant, refundOfId));
  let refund: Awaited<ReturnType<typeof refundConversion>>;
  try {
    refund = await refundConversion(deps.db.prisma, tenant, {
      conversionId: refundOfId,
      idempotencyKey: conversionKey(integration.id, event.id),
      amount: { amount: formatMinor(amount, code), currency: code },
      actor: STRIPE_ACTOR,
    });
  } catch (error) {
    const message = domainMessage(error);
    if (message === null) throw error;
    return fail(ctx, row, event, `refundConversion refused ${formatMinor(amount, code)} ${code}: ${message}`);
  }
  return finish(
    ctx,
    row,
    'REFUNDED',
    `Refunded ${formatMinor(amount, code)} ${code} of conversion ${globalId('Conversion', refundOfId)} (${plan.describe}).`,
    refund.conversionId,
  );
}

async function conversionCurrency(client: SqlClient, tenant: Tenant, id: string): Promise<string> {
  const [row] = await client.sql<{ currency: string }>`
    SELECT "currency" FROM "Conversion"
     WHERE "id" = ${id}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode"`;
  if (!row) throw new Error(`refunded conversion ${id} vanished`);
  return row.currency;
}

// --- Finishing a log row -------------------------------------------------------------------------------

/**
 * The event's outcome, and what later events need to know (links), in one statement. A row
 * another delivery finished meanwhile keeps its outcome (returned as it is).
 */
async function finish(
  ctx: Ctx,
  row: LogRow,
  outcome: Exclude<StripeEventOutcome, 'FAILED' | 'PARKED'>,
  reason: string,
  conversionId: string | null = null,
  links: Record<string, string> = {},
  client: SqlClient = ctx.deps.db,
): Promise<Finished> {
  const { integration } = ctx;
  const ids = Object.keys(links);
  const [done] = await client.sql<{ outcome: StripeEventOutcome }>`
    WITH links AS (
      INSERT INTO "StripeLink" ("integrationId", "stripeId", "workspaceId", "mode", "value", "createdAt")
      SELECT ${integration.id}::uuid, t.k, ${integration.workspaceId}::uuid, ${integration.mode}::"Mode", t.v, ${ctx.now}::timestamptz
        FROM unnest(${ids}::text[], ${ids.map((id) => links[id]!)}::text[]) AS t(k, v)
      ON CONFLICT ("integrationId", "stripeId") DO UPDATE SET "value" = EXCLUDED."value"
    )
    UPDATE "StripeEventLog"
       SET "outcome" = ${outcome}::"StripeEventOutcome", "reason" = ${reason}, "conversionId" = ${conversionId}::uuid,
           "payload" = NULL, "waitingFor" = '{}', "releaseAt" = NULL
     WHERE "id" = ${row.id}::uuid AND "outcome" IS NULL
    RETURNING "outcome"::text AS "outcome"`;
  if (done) return { logId: row.id, outcome, reason, conversionId };
  return current(client, row.id);
}

async function current(client: SqlClient, logId: string): Promise<Finished> {
  const [row] = await client.sql<{
    outcome: StripeEventOutcome | null;
    reason: string | null;
    conversionId: string | null;
  }>`
    SELECT "outcome"::text AS "outcome", "reason", "conversionId" FROM "StripeEventLog" WHERE "id" = ${logId}::uuid`;
  // Taken up again by another delivery (or the sweep) meanwhile: no answer before that one commits
  // (a 500 here; Stripe sends the event again and gets the outcome from the log).
  if (!row?.outcome) throw new Error(`Stripe event log ${logId} is being applied by another delivery`);
  return { logId, outcome: row.outcome, reason: row.reason, conversionId: row.conversionId };
}

/** PARKED: kept with its payload until one of `waitingFor` is linked (or `releaseAt` passes). */
async function park(
  client: SqlClient,
  row: LogRow,
  event: StripeEvent,
  waitingFor: string[],
  reason: string,
  releaseAt: Date | null = null,
): Promise<Finished> {
  const [parked] = await client.sql`
    UPDATE "StripeEventLog"
       SET "outcome" = 'PARKED', "reason" = ${reason}, "waitingFor" = ${[...new Set(waitingFor)]}::text[],
           "releaseAt" = ${releaseAt}::timestamptz, "payload" = ${JSON.stringify({ object: 'event', ...event })}::jsonb
     WHERE "id" = ${row.id}::uuid AND "outcome" IS NULL
    RETURNING "id"`;
  if (parked) return { logId: row.id, outcome: 'PARKED', reason, conversionId: null };
  return current(client, row.id);
}

/**
 * FAILED, with `integration.failed` in the outbox (once per reason: Stripe's retries of the same
 * failure append nothing more). A failed event is taken up again when Stripe sends it again.
 */
async function fail(ctx: Ctx, row: LogRow, event: StripeEvent, reason: string): Promise<Finished> {
  const { integration, tenant } = ctx;
  return ctx.deps.db.transaction(async (tx) => {
    const [failed] = await tx.sql<{ priorReason: string | null }>`
      WITH prior AS (SELECT "reason" FROM "StripeEventLog" WHERE "id" = ${row.id}::uuid FOR UPDATE)
      UPDATE "StripeEventLog" l
         SET "outcome" = 'FAILED', "reason" = ${reason}, "payload" = NULL, "waitingFor" = '{}', "releaseAt" = NULL
        FROM prior
       WHERE l."id" = ${row.id}::uuid AND l."outcome" IS NULL
      RETURNING prior."reason" AS "priorReason"`;
    if (!failed) return current(tx, row.id);
    if (failed.priorReason !== reason) {
      await appendEvents(tx, tenant, [
        integrationFailed(integration, {
          eventLogId: row.id,
          providerEventId: event.id,
          providerEventType: event.type,
          reason,
        }),
      ]);
    }
    return { logId: row.id, outcome: 'FAILED' as const, reason, conversionId: null };
  });
}

/** An unexpected error (the answer is a 500, Stripe retries): say so on the row, best effort. */
async function noteInterrupted(ctx: Ctx, row: LogRow, event: StripeEvent, error: unknown): Promise<void> {
  ctx.deps.logger.error(
    { err: error, integrationId: ctx.integration.id, stripeEventId: event.id },
    'Stripe event failed',
  );
  const reason = 'Interrupted by an internal error; Stripe sends the event again.';
  await ctx.deps.db
    .transaction(async (tx) => {
      const [noted] = await tx.sql<{ priorReason: string | null }>`
        WITH prior AS (SELECT "reason" FROM "StripeEventLog" WHERE "id" = ${row.id}::uuid FOR UPDATE)
        UPDATE "StripeEventLog" l SET "reason" = ${reason} FROM prior
         WHERE l."id" = ${row.id}::uuid AND l."outcome" IS NULL
        RETURNING prior."reason" AS "priorReason"`;
      if (noted && noted.priorReason !== reason) {
        await appendEvents(tx, ctx.tenant, [
          integrationFailed(ctx.integration, {
            eventLogId: row.id,
            providerEventId: event.id,
            providerEventType: event.type,
            reason,
          }),
        ]);
      }
    })
    .catch((noteError: unknown) =>
      ctx.deps.logger.warn({ err: noteError }, 'could not note the interrupted Stripe event'),
    );
}

// --- Parked events -------------------------------------------------------------------------------------

/**
 * Every delivery ends with a sweep of its integration: the PARKED events whose awaited Stripe id
 * is now linked (or whose wait is over), and events taken up from PARKED by a delivery that
 * stopped midway, are applied (at most SWEEP_BATCH per round). A payment that arrives links its
 * ids and then sweeps; a refund that parks sweeps after parking: whichever commits last sees the
 * other, so a parked event is never left behind. Failures here do not change this delivery's
 * answer: the row stays (PARKED or taken up) and a later sweep tries again.
 */
async function sweep(ctx: Ctx): Promise<void> {
  const { integration, now, deps } = ctx;
  const stale = new Date(now.getTime() - STALE_CLAIM_MS);
  for (let round = 0; round < SWEEP_ROUNDS; round++) {
    const rows = await deps.db.sql<LogRow & { payload: unknown; released: boolean }>`
      UPDATE "StripeEventLog" l SET "outcome" = NULL, "claimedAt" = ${now}::timestamptz
       WHERE l."id" IN (
         SELECT p."id" FROM "StripeEventLog" p
          WHERE p."integrationId" = ${integration.id}::uuid
            AND ((p."outcome" = 'PARKED'
                  AND (p."releaseAt" <= ${now}::timestamptz
                       OR EXISTS (SELECT 1 FROM "StripeLink" k
                                   WHERE k."integrationId" = ${integration.id}::uuid AND k."stripeId" = ANY(p."waitingFor"))))
              OR (p."outcome" IS NULL AND p."payload" IS NOT NULL AND p."claimedAt" < ${stale}::timestamptz))
          ORDER BY p."id" LIMIT ${SWEEP_BATCH}
            FOR UPDATE SKIP LOCKED)
      RETURNING l."id", NULL AS "outcome", l."reason", l."conversionId", l."refundOfId", l."refundAmount"::text AS "refundAmount",
                l."payload", COALESCE(l."releaseAt" <= ${now}::timestamptz, false) AS "released"`;
    if (rows.length === 0) return;
    for (const row of rows) {
      const event = parseStripeEvent(row.payload);
      if (typeof event === 'string') {
        deps.logger.error({ logId: row.id, problem: event }, 'a parked Stripe event has no usable payload');
        continue;
      }
      try {
        await applyEvent(ctx, row, event, row.released);
      } catch (error) {
        deps.logger.error(
          { err: error, integrationId: integration.id, stripeEventId: event.id },
          'parked Stripe event failed',
        );
      }
    }
  }
}

// --- Helpers -------------------------------------------------------------------------------------------

/** The userErrors' messages of an expected failure, or null for anything else. */
function domainMessage(error: unknown): string | null {
  if (error instanceof DomainError) return error.message;
  if (error instanceof DomainErrors) return error.errors.map((e) => e.message).join(' ');
  return null;
}

const max = (a: bigint, b: bigint) => (a > b ? a : b);
