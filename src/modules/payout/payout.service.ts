import { globalId } from '../../lib/global-id.js';
import type { Payout, Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { DomainError } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { formatMinor, parseCurrency, parseDecimal } from '../../lib/money.js';
import { prismaSql } from '../../lib/sql.js';
import { appendEvent, appendEvents } from '../events/outbox.js';
import { payoutCreated, payoutPaid, payoutReleased } from '../events/payloads.js';
import { partnerBalances } from '../ledger/balance.service.js';
import { lockLedgers } from '../ledger/ledger-lock.js';
import { findPartnerByKey, partnerKeyError, type PartnerKey } from '../partner/partner-key.js';
import { appendStatusEvents, applyStatusChange, loadRewards, MONEY_TX_OPTIONS } from '../reward/lifecycle.js';

// Payouts pay a partner's whole available CASH balance in one currency. The money rules are in
// ./README.md; every function here takes the partner's ledger lock first (ledger/ledger-lock.ts).

export const EXTERNAL_REFERENCE_MAX = 255;
export const METHOD_MAX = 100;
export const REASON_MAX = 500;
/** Partners paid per transaction of a batch run (their ledger locks are held together). */
export const BATCH_CHUNK = 200;
/** How many skipped partners a batch run lists (the count is always exact). */
export const SKIPS_LISTED_MAX = 100;

const payoutGid = (id: string) => globalId('Payout', id);
const partnerGid = (id: string) => globalId('Partner', id);

function cleanText(value: string | null | undefined, max: number, field: string[], what: string): string | null {
  const text = value?.trim() || null;
  if (text && text.length > max)
    throw new DomainError('VALIDATION', `${what} must be at most ${max} characters long.`, field);
  return text;
}

export interface CreatePayoutInput extends PartnerKey {
  currency: string;
  method?: string | null;
}

/** Why a partner is not paid now: nothing (or a negative balance) available, or less than the minimum. */
export type PayoutSkip = { reason: 'NOTHING_DUE' | 'BELOW_MINIMUM'; available: bigint };

/**
 * In the caller's transaction: for each partner, a PENDING payout of their whole available CASH
 * balance in `currency`, or why not. Under the partners' ledger locks: their APPROVED CASH rewards
 * in no payout are locked and held (they become PROCESSED when it is paid), their available
 * balances are read (the sum of the ledger: rewards, credits, adjustments and clawbacks netted),
 * and a PAYOUT entry takes each one out. Set-based: the same eight statements for one partner or
 * for a chunk of a batch run. Nothing is written for a partner who is skipped.
 */
async function payOut(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  partnerIds: readonly string[],
  currency: string,
  options: { method: string | null; minimum: bigint | null },
): Promise<Map<string, Payout | PayoutSkip>> {
  const db = prismaSql(tx);
  await lockLedgers(db, tenant, partnerIds);
  const held = await db.sql<{ id: string; partnerId: string }>`
    SELECT "id", "partnerId" FROM "Reward"
     WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "partnerId" = ANY(${[...partnerIds]}::uuid[])
       AND "currency" = ${currency} AND "recipient" = 'REFERRER' AND "kind" = 'CASH' AND "status" = 'APPROVED' AND "payoutId" IS NULL
     ORDER BY "id" FOR UPDATE`;
  const balances = await partnerBalances(db, tenant, partnerIds);
  const outcome = new Map<string, Payout | PayoutSkip>();
  const due: Array<{ partnerId: string; amount: bigint }> = [];
  for (const partnerId of partnerIds) {
    const available = balances.get(partnerId)?.find((b) => b.currency === currency)?.available ?? 0n;
    if (available <= 0n) outcome.set(partnerId, { reason: 'NOTHING_DUE', available });
    else if (options.minimum !== null && available < options.minimum)
      outcome.set(partnerId, { reason: 'BELOW_MINIMUM', available });
    else due.push({ partnerId, amount: available });
  }
  if (due.length === 0) return outcome;

  const now = new Date();
  const payouts = await tx.payout.createManyAndReturn({
    data: due.map((d) => ({
      ...tenant,
      partnerId: d.partnerId,
      amount: d.amount,
      currency,
      status: 'PENDING' as const,
      method: options.method,
      createdAt: now,
    })),
  });
  await tx.ledgerEntry.createMany({
    data: payouts.map((p) => ({
      ...tenant,
      partnerId: p.partnerId,
      type: 'PAYOUT' as const,
      amount: -p.amount,
      currency,
      payoutId: p.id,
      createdAt: now,
    })),
  });
  const payoutOf = new Map(payouts.map((p) => [p.partnerId, p.id]));
  const claims = held.filter((r) => payoutOf.has(r.partnerId));
  if (claims.length) {
    const claimed = await db.sql<{ id: string }>`
      UPDATE "Reward" r SET "payoutId" = c."payoutId"
        FROM unnest(${claims.map((r) => r.id)}::uuid[], ${claims.map((r) => payoutOf.get(r.partnerId)!)}::uuid[]) AS c("id", "payoutId")
       WHERE r."id" = c."id" AND r."status" = 'APPROVED' AND r."payoutId" IS NULL
       RETURNING r."id"`;
    if (claimed.length !== claims.length)
      throw new Error(`Payout claim raced: ${claimed.length} of ${claims.length} locked rewards claimed.`);
  }
  const heldCount = new Map<string, number>();
  for (const r of claims) heldCount.set(r.partnerId, (heldCount.get(r.partnerId) ?? 0) + 1);
  await appendEvents(
    tx,
    tenant,
    payouts.map((p) => payoutCreated(p, heldCount.get(p.partnerId) ?? 0)),
  );
  for (const p of payouts) outcome.set(p.partnerId, p);
  return outcome;
}

/**
 * A PENDING payout of the partner's whole available CASH balance in one currency. NOTHING_DUE when
 * it is not positive. Concurrent calls for one partner are serialized by the ledger lock: the
 * second finds nothing left.
 */
export async function createPayout(prisma: PrismaClient, tenant: Tenant, input: CreatePayoutInput): Promise<Payout> {
  const currency = parseCurrency(input.currency, ['input', 'currency']);
  const method = cleanText(input.method, METHOD_MAX, ['input', 'method'], 'A method');
  const keyProblem = partnerKeyError(input);
  if (keyProblem) throw keyProblem;

  return prisma.$transaction(async (tx) => {
    const partner = await findPartnerByKey(tx, tenant, input);
    const result = (await payOut(tx, tenant, [partner.id], currency, { method, minimum: null })).get(partner.id)!;
    if ('reason' in result) {
      throw new DomainError(
        'NOTHING_DUE',
        `Partner ${partnerGid(partner.id)} has nothing to pay out in ${currency}: the available balance is ${formatMinor(result.available, currency)}.`,
      );
    }
    return result;
  }, MONEY_TX_OPTIONS);
}

export interface CreatePayoutsInput {
  currency: string;
  /** Row id, INVALID when given but malformed; undefined/null: every partner of the workspace. */
  programId?: string | null | typeof INVALID_PROGRAM;
  minimumAmount?: { amount: string; currency: string } | null;
  method?: string | null;
}
export const INVALID_PROGRAM = Symbol('invalid program id');

export interface CreatePayoutsResult {
  payouts: Payout[];
  skipped: number;
  /** The first SKIPS_LISTED_MAX skipped partners, in partner id order. */
  skips: Array<PayoutSkip & { partnerId: string }>;
  /** The minimum that applied (the call's, else the program's in this currency), or null. */
  minimum: bigint | null;
}

/**
 * A batch run: one payout per partner whose available CASH balance in `currency` is positive
 * (and at least the minimum), optionally only partners enrolled in one program. Partners are paid
 * in chunks of BATCH_CHUNK, one transaction each under their ledger locks, so a run is safe to
 * repeat and to run twice at once: whoever comes second finds nothing available and skips them. Partners
 * with a positive balance below the minimum are counted as skipped (BELOW_MINIMUM); so are those
 * whose balance was paid out by a concurrent call between the listing and their turn.
 */
export async function createPayouts(
  prisma: PrismaClient,
  tenant: Tenant,
  input: CreatePayoutsInput,
): Promise<CreatePayoutsResult> {
  const currency = parseCurrency(input.currency, ['input', 'currency']);
  const method = cleanText(input.method, METHOD_MAX, ['input', 'method'], 'A method');
  let minimum: bigint | null = null;
  if (input.minimumAmount) {
    const given = parseCurrency(input.minimumAmount.currency, ['input', 'minimumAmount', 'currency']);
    if (given !== currency) {
      throw new DomainError(
        'VALIDATION',
        `The minimum is in ${given} but this run pays ${currency}: give the minimum in ${currency}.`,
        ['input', 'minimumAmount', 'currency'],
      );
    }
    minimum = parseDecimal(input.minimumAmount.amount, currency, ['input', 'minimumAmount', 'amount']);
    if (minimum <= 0n)
      throw new DomainError('VALIDATION', 'A minimum must be positive.', ['input', 'minimumAmount', 'amount']);
  }
  let programId: string | null = null;
  if (input.programId === INVALID_PROGRAM)
    throw new DomainError('NOT_FOUND', 'Program not found.', ['input', 'programId']);
  if (input.programId) {
    const program = await prisma.program.findUnique({
      where: { id_workspaceId_mode: { id: input.programId, ...tenant } },
    });
    if (!program) throw new DomainError('NOT_FOUND', 'Program not found.', ['input', 'programId']);
    programId = program.id;
    if (minimum === null && program.minimumPayoutCurrency === currency) minimum = program.minimumPayoutAmount;
  }

  // Who may be due: a positive sum of entries in the currency (read without locks; each partner is
  // checked again under its lock).
  const candidates = await prismaSql(prisma).sql<{ partnerId: string }>`
    SELECT l."partnerId" FROM "LedgerEntry" l
     WHERE l."workspaceId" = ${tenant.workspaceId}::uuid AND l."mode" = ${tenant.mode}::"Mode" AND l."currency" = ${currency}
       AND (${programId}::uuid IS NULL OR EXISTS (
             SELECT 1 FROM "Enrollment" e WHERE e."partnerId" = l."partnerId" AND e."programId" = ${programId}::uuid))
     GROUP BY l."partnerId"
    HAVING sum(l."amount") > 0
     ORDER BY l."partnerId"`;

  const result: CreatePayoutsResult = { payouts: [], skipped: 0, skips: [], minimum };
  for (let start = 0; start < candidates.length; start += BATCH_CHUNK) {
    const chunk = candidates.slice(start, start + BATCH_CHUNK).map((c) => c.partnerId);
    const outcomes = await prisma.$transaction(
      (tx) => payOut(tx, tenant, chunk, currency, { method, minimum }),
      MONEY_TX_OPTIONS,
    );
    for (const partnerId of chunk) {
      const outcome = outcomes.get(partnerId)!;
      if ('reason' in outcome) {
        result.skipped += 1;
        if (result.skips.length < SKIPS_LISTED_MAX) result.skips.push({ partnerId, ...outcome });
      } else {
        result.payouts.push(outcome);
      }
    }
  }
  return result;
}

export interface MarkPayoutPaidInput {
  payoutId: string | null;
  externalReference?: string | null;
  actor: string | null;
}

/**
 * In the caller's transaction: the tenant's payout, under its partner's ledger lock and its own
 * row lock (in that order, like every writer of the ledger). NOT_FOUND when it is not the tenant's.
 */
async function lockPayout(tx: Prisma.TransactionClient, tenant: Tenant, payoutId: string | null): Promise<Payout> {
  const notFound = new DomainError('NOT_FOUND', 'Payout not found.', ['input', 'payoutId']);
  if (!payoutId) throw notFound;
  const found = await tx.payout.findUnique({
    where: { id_workspaceId_mode: { id: payoutId, ...tenant } },
    select: { partnerId: true },
  });
  if (!found) throw notFound;
  const db = prismaSql(tx);
  await lockLedgers(db, tenant, [found.partnerId]);
  await db.sql`SELECT 1 FROM "Payout" WHERE "id" = ${payoutId}::uuid FOR UPDATE`;
  return (await tx.payout.findUnique({ where: { id: payoutId } }))!;
}

/**
 * PENDING → PAID, and the payout's rewards APPROVED → PROCESSED (history, events; no ledger entry:
 * the payout's PAYOUT entry took the money out of `available` when it was created). Marking a
 * PAID payout paid again changes nothing (a retry), unless it names a different
 * externalReference: INVALID_TRANSITION. An omitted reference on a retry matches any.
 */
export async function markPayoutPaid(
  prisma: PrismaClient,
  tenant: Tenant,
  input: MarkPayoutPaidInput,
): Promise<Payout> {
  const reference = cleanText(
    input.externalReference,
    EXTERNAL_REFERENCE_MAX,
    ['input', 'externalReference'],
    'An externalReference',
  );
  return prisma.$transaction(async (tx) => {
    const payout = await lockPayout(tx, tenant, input.payoutId);
    const gid = payoutGid(payout.id);
    if (payout.status === 'PAID') {
      if (reference !== null && reference !== payout.externalReference) {
        throw new DomainError(
          'INVALID_TRANSITION',
          `Payout ${gid} is PAID with externalReference ${JSON.stringify(payout.externalReference)}; it cannot be marked PAID again with ${JSON.stringify(reference)}.`,
          ['input', 'externalReference'],
        );
      }
      return payout;
    }
    if (payout.status !== 'PENDING') {
      throw new DomainError(
        'INVALID_TRANSITION',
        `Payout ${gid} is ${payout.status} and cannot become PAID: only a PENDING payout can.`,
        ['input', 'payoutId'],
      );
    }

    const now = new Date();
    const inPayout = await prismaSql(tx).sql<{ id: string }>`
      SELECT "id" FROM "Reward"
       WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "payoutId" = ${payout.id}::uuid
       ORDER BY "id" FOR UPDATE`;
    const rewards = (
      await loadRewards(
        tx,
        inPayout.map((r) => r.id),
      )
    ).filter((r) => r.status === 'APPROVED');
    const changes = await applyStatusChange(tx, tenant, rewards, 'PROCESSED', {
      actor: input.actor,
      reason: `Paid in payout ${gid}.`,
      payoutId: payout.id,
      cascade: false,
      now,
    });
    const paid = await tx.payout.update({
      where: { id: payout.id },
      data: { status: 'PAID', paidAt: now, externalReference: reference },
    });

    await appendStatusEvents(tx, tenant, changes);
    await appendEvent(tx, tenant, payoutPaid(paid, now));
    return paid;
  }, MONEY_TX_OPTIONS);
}

export interface ReleasePayoutInput {
  payoutId: string | null;
  reason?: string | null;
}

/**
 * PENDING → CANCELED (cancelPayout) or FAILED (markPayoutFailed, reason required): what the payout
 * held is released, in one transaction: a PAYOUT_REVERSED entry gives its amount back to
 * `available`, its rewards leave it (still APPROVED, free for the next payout), and
 * `payout.canceled` / `payout.failed` is appended. Asking again for the status it already has is
 * a harmless retry (nothing changes); any other status: INVALID_TRANSITION naming both.
 */
export async function releasePayout(
  prisma: PrismaClient,
  tenant: Tenant,
  to: 'CANCELED' | 'FAILED',
  input: ReleasePayoutInput,
): Promise<Payout> {
  const reason = cleanText(input.reason, REASON_MAX, ['input', 'reason'], 'A reason');
  if (to === 'FAILED' && !reason) {
    throw new DomainError(
      'VALIDATION',
      'Say why the payout failed (e.g. "IBAN rejected by the bank"): the partner and your team will read it.',
      ['input', 'reason'],
    );
  }
  return prisma.$transaction(async (tx) => {
    const payout = await lockPayout(tx, tenant, input.payoutId);
    if (payout.status === to) return payout;
    if (payout.status !== 'PENDING') {
      throw new DomainError(
        'INVALID_TRANSITION',
        `Payout ${payoutGid(payout.id)} is ${payout.status} and cannot become ${to}: only a PENDING payout can.`,
        ['input', 'payoutId'],
      );
    }
    const now = new Date();
    const released = await prismaSql(tx).sql<{ id: string }>`
      UPDATE "Reward" SET "payoutId" = NULL, "updatedAt" = ${now}::timestamptz
       WHERE "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" AND "payoutId" = ${payout.id}::uuid
       RETURNING "id"`;
    await tx.ledgerEntry.create({
      data: {
        ...tenant,
        partnerId: payout.partnerId,
        type: 'PAYOUT_REVERSED',
        amount: payout.amount,
        currency: payout.currency,
        payoutId: payout.id,
        note: reason,
        createdAt: now,
      },
    });
    const updated = await tx.payout.update({
      where: { id: payout.id },
      data: { status: to, failureReason: reason, releasedAt: now },
    });
    await appendEvent(tx, tenant, payoutReleased(updated, released.map((r) => r.id).sort()));
    return updated;
  }, MONEY_TX_OPTIONS);
}
