import type { ConversionType } from '../../generated/prisma/enums.js';
import { currencyDigits, isCurrency } from '../../lib/money.js';

// What a Stripe event means for refgraph, decided from the event alone (pure): a conversion to
// record, a refund to apply, something to remember for later events, or nothing. The delivery
// (stripe-delivery.ts) then resolves what needs the database: the person's external id, a
// promotion code's code, the payment a refund belongs to. Shapes: Stripe's API version pinned by
// the `stripe` package (2026-11-18), and the older fields where a payload of an older version has
// them instead (an endpoint's payloads follow the endpoint's API version): `invoice.charge`,
// `invoice.payment_intent`, `invoice.subscription`, `invoice.discount`, `charge.invoice`.

/** The envelope of every Stripe event (https://docs.stripe.com/api/events/object). */
export interface StripeEvent {
  id: string;
  type: string;
  livemode: boolean;
  /** Unix seconds. */
  created: number;
  data: { object: Json };
}

type Json = Record<string, unknown>;

export const STRIPE_ID_MAX = 255;

/** A parsed Stripe event, or why the JSON is not one (a 400 for the sender). */
export function parseStripeEvent(value: unknown): StripeEvent | string {
  if (!isObject(value)) return 'The body is not a JSON object.';
  const { id, type, livemode, created, data, object } = value;
  if (object !== 'event') return 'The body is not a Stripe event (its "object" is not "event").';
  if (typeof id !== 'string' || id === '' || id.length > STRIPE_ID_MAX) return 'The event has no usable "id".';
  if (typeof type !== 'string' || type === '' || type.length > STRIPE_ID_MAX) return 'The event has no usable "type".';
  if (typeof livemode !== 'boolean') return 'The event has no "livemode".';
  if (typeof created !== 'number' || !Number.isSafeInteger(created) || created < 0)
    return 'The event has no "created" time.';
  if (!isObject(data) || !isObject(data.object)) return 'The event has no "data.object".';
  return { id, type, livemode, created, data: { object: data.object } };
}

/** A promotion code as an event names it: its code when the object is there, else an id to look up. */
export type PromotionRef = { code: string } | { promotionCodeId: string } | { discountId: string };

export interface RecordPlan {
  kind: 'record';
  /** The Stripe id the conversion is keyed by (a Checkout Session, or an invoice): its idempotency key's end. */
  paymentKey: string;
  type: Exclude<ConversionType, 'REFUND'>;
  /** In refgraph's minor units of `currency` (converted from Stripe's). */
  amount: { minor: bigint; currency: string } | null;
  customerId: string | null;
  email: string | null;
  /** The integration's customer metadata key's value on this object (a Checkout Session's metadata), if any. */
  metadataValue: string | null;
  /** Candidate click id / code: `client_reference_id`, `metadata.rg_click`, `metadata.ref`. */
  clickId: string | null;
  code: string | null;
  /** `client_reference_id` when it was not taken as a click id (used as a code unless one is given). */
  clientReference: string | null;
  promotions: PromotionRef[];
  productId: string | null;
  occurredAt: Date;
  /** The subscription this payment or signup belongs to. */
  subscriptionId: string | null;
  /** An invoice's billing_reason (a first subscription invoice may wait for its Checkout Session). */
  billingReason: string | null;
  /** Stripe ids that lead to this payment from now on (payment intents, charges, invoices, the subscription's session). */
  links: Record<string, string>;
  /** What the conversion's metadata says of its Stripe origin. */
  metadata: Record<string, string>;
}

export interface RefundPlan {
  kind: 'refund';
  /** Whose running total this is: the payment intent, else the charge. */
  chargeKey: string;
  /** Stripe ids that may lead to the refunded payment, most specific first. */
  candidates: string[];
  /** Stripe's currency (upper case). */
  currency: string;
  /** `charge.refunded`: the charge's running total refunded (Stripe's minor units). */
  runningTotal: bigint | null;
  /** `refund.created`: this refund's amount (Stripe's minor units). */
  single: bigint | null;
  /** For the log: what was refunded. */
  describe: string;
}

export type Plan =
  | RecordPlan
  | RefundPlan
  | { kind: 'learn'; links: Record<string, string>; reason: string }
  | { kind: 'ignore'; reason: string }
  | { kind: 'fail'; reason: string };

export interface PlanOptions {
  /** The integration's customer metadata key (CUSTOMER_METADATA), else null. */
  customerMetadataKey: string | null;
  /** Whether a `client_reference_id` is a click id of this installation (else it is taken as a code). */
  isClickId: (token: string) => boolean;
}

/** The event types an integration applies; anything else is logged as IGNORED. */
export const APPLIED_TYPES = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'invoice.paid',
  'invoice_payment.paid',
  'charge.refunded',
  'refund.created',
  'customer.created',
  'customer.updated',
  'promotion_code.created',
  'promotion_code.updated',
  'customer.discount.created',
  'customer.discount.updated',
] as const;

export function planStripeEvent(event: StripeEvent, options: PlanOptions): Plan {
  const object = event.data.object;
  const occurredAt = new Date(event.created * 1000);
  try {
    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded':
        return checkoutSession(event, object, occurredAt, options);
      case 'invoice.paid':
        return invoicePaid(event, object, occurredAt);
      case 'invoice_payment.paid':
        return invoicePayment(object);
      case 'charge.refunded':
        return chargeRefunded(object);
      case 'refund.created':
        return refundCreated(object);
      case 'customer.created':
      case 'customer.updated':
        return customer(object, options);
      case 'promotion_code.created':
      case 'promotion_code.updated':
        return promotionCode(object);
      case 'customer.discount.created':
      case 'customer.discount.updated':
        return discount(object);
      default:
        return {
          kind: 'ignore',
          reason: `${event.type} is not an event refgraph applies (it applies ${APPLIED_TYPES.join(', ')}).`,
        };
    }
  } catch (error) {
    if (error instanceof UnusableEvent) return { kind: 'fail', reason: error.message };
    throw error;
  }
}

// --- Checkout Sessions ---------------------------------------------------------------------------

function checkoutSession(event: StripeEvent, s: Json, occurredAt: Date, options: PlanOptions): Plan {
  const sessionId = requiredId(s, 'id', 'Checkout Session');
  const mode = str(s.mode);
  if (event.type === 'checkout.session.completed' && mode === 'payment' && s.payment_status === 'unpaid') {
    return {
      kind: 'ignore',
      reason: `Checkout Session ${sessionId} is complete but not paid yet (an asynchronous payment method): it is recorded at checkout.session.async_payment_succeeded.`,
    };
  }
  const invoiceId = idOf(s.invoice);
  const paymentIntentId = idOf(s.payment_intent);
  const subscriptionId = idOf(s.subscription);
  const total = s.amount_total;
  const paid = mode === 'payment' && typeof total === 'number' && total > 0;
  // A payment-mode session that also made an invoice shares the invoice's key: invoice.paid of
  // that invoice is then the same payment, recorded once whichever event comes first.
  const paymentKey = paid && invoiceId ? invoiceId : sessionId;
  const links: Record<string, string> = { [paymentKey]: paymentKey };
  if (paid) {
    if (paymentIntentId) links[paymentIntentId] = paymentKey;
    if (invoiceId) links[invoiceId] = paymentKey;
  }
  // A first subscription invoice that arrived before its session waits for the session's subscription.
  if (subscriptionId) links[subscriptionId] = sessionId;

  const metadata = isObject(s.metadata) ? s.metadata : {};
  const clientReference = nonBlank(s.client_reference_id);
  const referenceIsClick = clientReference !== null && options.isClickId(clientReference);
  const details = isObject(s.customer_details) ? s.customer_details : {};
  return {
    kind: 'record',
    paymentKey,
    type: paid ? 'PURCHASE' : 'SIGNUP',
    amount: paid ? stripeAmount(total, s.currency, 'amount_total') : null,
    customerId: idOf(s.customer),
    email: nonBlank(details.email) ?? nonBlank(s.customer_email),
    metadataValue: options.customerMetadataKey ? nonBlank(metadata[options.customerMetadataKey]) : null,
    clickId: nonBlank(metadata.rg_click) ?? (referenceIsClick ? clientReference : null),
    code: nonBlank(metadata.ref),
    clientReference: referenceIsClick ? null : clientReference,
    promotions: promotionRefs(s.discounts),
    productId: null,
    occurredAt,
    subscriptionId,
    billingReason: null,
    links,
    metadata: compact({
      stripe_event: event.id,
      stripe_checkout_session: sessionId,
      stripe_customer: idOf(s.customer),
      stripe_subscription: subscriptionId,
      stripe_payment_intent: paymentIntentId,
      stripe_invoice: invoiceId,
    }),
  };
}

// --- Invoices ------------------------------------------------------------------------------------

function invoicePaid(event: StripeEvent, inv: Json, occurredAt: Date): Plan {
  const invoiceId = requiredId(inv, 'id', 'invoice');
  const paidAmount = inv.amount_paid;
  if (typeof paidAmount !== 'number') throw new UnusableEvent(`Invoice ${invoiceId} has no amount_paid.`);
  if (paidAmount === 0) {
    return {
      kind: 'ignore',
      reason: `Invoice ${invoiceId} paid nothing (a trial or a full discount): no payment to record. A Checkout Session records the signup.`,
    };
  }
  const parent = isObject(inv.parent) ? inv.parent : {};
  const subscriptionDetails = isObject(parent.subscription_details) ? parent.subscription_details : {};
  const subscriptionId = idOf(subscriptionDetails.subscription) ?? idOf(inv.subscription);
  const links: Record<string, string> = { [invoiceId]: invoiceId };
  for (const id of [idOf(inv.charge), idOf(inv.payment_intent)]) if (id) links[id] = invoiceId;
  const payments = isObject(inv.payments) && Array.isArray(inv.payments.data) ? inv.payments.data : [];
  for (const p of payments) {
    const payment = isObject(p) && isObject(p.payment) ? p.payment : {};
    for (const id of [idOf(payment.payment_intent), idOf(payment.charge)]) if (id) links[id] = invoiceId;
  }
  const invoiceMetadata = isObject(inv.metadata) ? inv.metadata : {};
  const subscriptionMetadata = isObject(subscriptionDetails.metadata) ? subscriptionDetails.metadata : {};
  const signal = (key: string) => nonBlank(invoiceMetadata[key]) ?? nonBlank(subscriptionMetadata[key]);
  const paidAt = isObject(inv.status_transitions) ? inv.status_transitions.paid_at : null;
  return {
    kind: 'record',
    paymentKey: invoiceId,
    type: subscriptionId ? 'SUBSCRIPTION' : 'PURCHASE',
    amount: stripeAmount(paidAmount, inv.currency, 'amount_paid'),
    customerId: idOf(inv.customer),
    email: nonBlank(inv.customer_email),
    metadataValue: null,
    clickId: signal('rg_click'),
    code: signal('ref'),
    clientReference: null,
    promotions: [...promotionRefs(inv.discounts), ...promotionRefs(inv.discount ? [inv.discount] : [])],
    productId: firstProduct(inv.lines),
    occurredAt: typeof paidAt === 'number' && paidAt > 0 ? new Date(paidAt * 1000) : occurredAt,
    subscriptionId,
    billingReason: str(inv.billing_reason),
    links,
    metadata: compact({
      stripe_event: event.id,
      stripe_invoice: invoiceId,
      stripe_customer: idOf(inv.customer),
      stripe_subscription: subscriptionId,
    }),
  };
}

/** `invoice_payment.paid`: which payment intent (and charge) paid an invoice, for refunds of it. */
function invoicePayment(ip: Json): Plan {
  const invoiceId = idOf(ip.invoice);
  const payment = isObject(ip.payment) ? ip.payment : {};
  const ids = [idOf(payment.payment_intent), idOf(payment.charge)].filter((id): id is string => id !== null);
  if (!invoiceId || ids.length === 0)
    return { kind: 'ignore', reason: 'The invoice payment names no invoice or no payment intent.' };
  return {
    kind: 'learn',
    links: Object.fromEntries(ids.map((id) => [id, invoiceId])),
    reason: `Noted that ${ids.join(' and ')} paid invoice ${invoiceId} (its refunds refund that payment).`,
  };
}

/** The product of the invoice's first line (current `pricing.price_details.product`, or an older `price.product`). */
function firstProduct(lines: unknown): string | null {
  const first = isObject(lines) && Array.isArray(lines.data) ? lines.data[0] : null;
  if (!isObject(first)) return null;
  const pricing = isObject(first.pricing) ? first.pricing : {};
  const details = isObject(pricing.price_details) ? pricing.price_details : {};
  const price = isObject(first.price) ? first.price : {};
  return idOf(details.product) ?? idOf(price.product);
}

// --- Refunds ---------------------------------------------------------------------------------------

function chargeRefunded(ch: Json): Plan {
  const chargeId = requiredId(ch, 'id', 'charge');
  const refunded = ch.amount_refunded;
  if (typeof refunded !== 'number' || !Number.isSafeInteger(refunded) || refunded < 0)
    throw new UnusableEvent(`Charge ${chargeId} has no usable amount_refunded.`);
  const paymentIntentId = idOf(ch.payment_intent);
  return {
    kind: 'refund',
    chargeKey: paymentIntentId ?? chargeId,
    candidates: unique([chargeId, paymentIntentId, idOf(ch.invoice)]),
    currency: stripeCurrency(ch.currency),
    runningTotal: BigInt(refunded),
    single: null,
    describe: `charge ${chargeId} (refunded ${refunded} in total, Stripe's minor units)`,
  };
}

function refundCreated(re: Json): Plan {
  const refundId = requiredId(re, 'id', 'refund');
  if (re.status === 'failed' || re.status === 'canceled')
    return { kind: 'ignore', reason: `Refund ${refundId} is ${String(re.status)}: nothing was given back.` };
  const amount = re.amount;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 0)
    throw new UnusableEvent(`Refund ${refundId} has no usable amount.`);
  const chargeId = idOf(re.charge);
  const paymentIntentId = idOf(re.payment_intent);
  const chargeKey = paymentIntentId ?? chargeId;
  if (!chargeKey) throw new UnusableEvent(`Refund ${refundId} names no charge and no payment intent.`);
  return {
    kind: 'refund',
    chargeKey,
    candidates: unique([chargeId, paymentIntentId]),
    currency: stripeCurrency(re.currency),
    runningTotal: null,
    single: BigInt(amount),
    describe: `refund ${refundId} of ${chargeKey} (${amount}, Stripe's minor units)`,
  };
}

// --- What later events need --------------------------------------------------------------------------

function customer(c: Json, options: PlanOptions): Plan {
  const customerId = requiredId(c, 'id', 'customer');
  const key = options.customerMetadataKey;
  if (!key) return { kind: 'ignore', reason: 'The integration identifies people by their Stripe customer id.' };
  const value = isObject(c.metadata) ? nonBlank(c.metadata[key]) : null;
  if (value === null)
    return { kind: 'ignore', reason: `Customer ${customerId} has no metadata "${key}" (yet): nothing to note.` };
  return {
    kind: 'learn',
    links: { [customerId]: value },
    reason: `Noted that customer ${customerId} is ${key} ${JSON.stringify(value)}.`,
  };
}

function promotionCode(p: Json): Plan {
  const id = requiredId(p, 'id', 'promotion code');
  const code = nonBlank(p.code);
  if (!code) return { kind: 'ignore', reason: `Promotion code ${id} has no code.` };
  return {
    kind: 'learn',
    links: { [id]: code },
    reason: `Noted promotion code ${id}: ${JSON.stringify(code)} (a refgraph coupon of that code attributes).`,
  };
}

function discount(d: Json): Plan {
  const id = requiredId(d, 'id', 'discount');
  const promotion = d.promotion_code;
  const code = isObject(promotion) ? nonBlank(promotion.code) : null;
  const promotionId = idOf(promotion);
  if (!promotionId) return { kind: 'ignore', reason: `Discount ${id} comes from no promotion code.` };
  const links: Record<string, string> = { [id]: promotionId };
  if (code) links[promotionId] = code;
  return { kind: 'learn', links, reason: `Noted that discount ${id} comes from promotion code ${promotionId}.` };
}

/** The promotion codes of a `discounts` list (ids or objects) or of session discounts ({ promotion_code }). */
function promotionRefs(discounts: unknown): PromotionRef[] {
  if (!Array.isArray(discounts)) return [];
  const refs: PromotionRef[] = [];
  for (const d of discounts) {
    if (typeof d === 'string') {
      if (d.startsWith('promo_')) refs.push({ promotionCodeId: d });
      else refs.push({ discountId: d });
      continue;
    }
    if (!isObject(d)) continue;
    const promotion = d.promotion_code;
    const code = isObject(promotion) ? nonBlank(promotion.code) : null;
    if (code) refs.push({ code });
    else if (idOf(promotion)) refs.push({ promotionCodeId: idOf(promotion)! });
    else if (typeof d.id === 'string' && d.object === 'discount') refs.push({ discountId: d.id });
  }
  return refs;
}

// --- Money ---------------------------------------------------------------------------------------------

/** Currencies Stripe's API counts in whole units (https://docs.stripe.com/currencies#zero-decimal). */
const STRIPE_ZERO_DECIMAL = new Set('BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF'.split(' '));
/** Currencies Stripe's API counts in thousandths. */
const STRIPE_THREE_DECIMAL = new Set('BHD JOD KWD OMR TND'.split(' '));

/** How many decimals Stripe's amounts of `currency` carry (ISK, HUF, TWD … count in hundredths there). */
export function stripeDigits(currency: string): number {
  if (STRIPE_ZERO_DECIMAL.has(currency)) return 0;
  if (STRIPE_THREE_DECIMAL.has(currency)) return 3;
  return 2;
}

export class UnusableEvent extends Error {}

/** Stripe's currency (lower case) as refgraph's ISO code, or an UnusableEvent. */
export function stripeCurrency(value: unknown): string {
  const code = typeof value === 'string' ? value.toUpperCase() : '';
  if (!isCurrency(code)) throw new UnusableEvent(`${JSON.stringify(value)} is not a currency refgraph knows.`);
  return code;
}

/**
 * A Stripe amount (an integer in Stripe's minor units of `currency`) in refgraph's minor units:
 * the same number for most currencies (USD cents, JPY yen), scaled where Stripe and ISO 4217
 * disagree (ISK and HUF come in hundredths from Stripe, refgraph keeps whole units) — exactly, or
 * an UnusableEvent when the amount has a fraction refgraph cannot keep.
 */
export function fromStripeMinor(amount: bigint, currency: string): bigint {
  const stripe = stripeDigits(currency);
  const ours = currencyDigits(currency);
  if (ours === stripe) return amount;
  if (ours > stripe) return amount * 10n ** BigInt(ours - stripe);
  const factor = 10n ** BigInt(stripe - ours);
  if (amount % factor !== 0n) {
    throw new UnusableEvent(
      `${amount} ${currency} in Stripe's minor units (1/${10 ** stripe}) has a fraction that ${currency} amounts (${ours} decimals) cannot keep.`,
    );
  }
  return amount / factor;
}

function stripeAmount(value: unknown, currency: unknown, field: string): { minor: bigint; currency: string } {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new UnusableEvent(`${field} ${JSON.stringify(value)} is not an amount in minor units.`);
  const code = stripeCurrency(currency);
  return { minor: fromStripeMinor(BigInt(value), code), currency: code };
}

// --- Reading JSON from outside --------------------------------------------------------------------------

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** A non-blank string (trimmed), else null. */
function nonBlank(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
}

/** An expandable field's id: the string, or the object's `id`. */
export function idOf(value: unknown): string | null {
  const id = isObject(value) ? value.id : value;
  return typeof id === 'string' && id !== '' && id.length <= STRIPE_ID_MAX ? id : null;
}

function requiredId(object: Json, field: string, what: string): string {
  const id = idOf(object[field]);
  if (!id) throw new UnusableEvent(`The ${what} has no id.`);
  return id;
}

function unique(ids: Array<string | null>): string[] {
  return [...new Set(ids.filter((id): id is string => id !== null))];
}

function compact(values: Record<string, string | null>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).filter((e): e is [string, string] => e[1] !== null));
}
