import { globalId } from '../../lib/global-id.js';
import type { PrismaClient } from '../../generated/prisma/client.js';
import { DomainError, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { formatMinor, parseCurrency, parseDecimal } from '../../lib/money.js';
import { appendEvent } from '../events/outbox.js';
import { balanceCredited } from '../events/payloads.js';
import { MONEY_TX_OPTIONS } from '../reward/lifecycle.js';
import { prismaSql } from '../../lib/sql.js';
import { partnerBalance, type Balance } from './balance.service.js';
import { lockLedgers } from './ledger-lock.js';
import { findPartnerByKey, partnerKeyError, type PartnerKey } from '../partner/partner-key.js';

export const NOTE_MAX = 500;
export const CREDIT_KEY_MAX = 255;

export interface CreditInput extends PartnerKey {
  amount: { amount: string; currency: string };
  note?: string | null;
  idempotencyKey: string;
}

export interface CreditResult {
  balance: Balance;
  /** false when the key had been used before with the same partner and amount: nothing was written. */
  created: boolean;
}

/**
 * A manual credit (positive) or debit (negative, never zero) of a partner's available balance:
 * one CREDIT ledger entry, idempotent by key. The key again with the same partner, amount
 * and currency writes nothing and answers the partner's current balance; with anything else
 * it is DUPLICATE (a reused key with other money is a bug in the caller, not a replay).
 * Concurrent calls with one key insert one entry: the unique key makes the others wait and skip.
 */
export async function creditBalance(prisma: PrismaClient, tenant: Tenant, input: CreditInput): Promise<CreditResult> {
  const v = new Validator();
  const key = input.idempotencyKey;
  v.check(
    key.trim().length > 0 && key.length <= CREDIT_KEY_MAX,
    ['input', 'idempotencyKey'],
    `An idempotencyKey must be 1 to ${CREDIT_KEY_MAX} characters long and not blank.`,
  );
  const note = input.note?.trim() || null;
  v.check(
    note === null || note.length <= NOTE_MAX,
    ['input', 'note'],
    `A note must be at most ${NOTE_MAX} characters long.`,
  );
  let currency: string | null = null;
  let amount = 0n;
  try {
    currency = parseCurrency(input.amount.currency, ['input', 'amount', 'currency']);
    amount = parseDecimal(input.amount.amount, currency, ['input', 'amount', 'amount']);
    v.check(amount !== 0n, ['input', 'amount', 'amount'], 'A credit must not be zero (a negative amount is a debit).');
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    v.add(error);
  }
  const keyProblem = partnerKeyError(input);
  if (keyProblem) v.add(keyProblem);
  v.throwIfAny();
  const money = currency!;

  return prisma.$transaction(async (tx) => {
    const partner = await findPartnerByKey(tx, tenant, input);
    await lockLedgers(prismaSql(tx), tenant, [partner.id]);

    const { count } = await tx.ledgerEntry.createMany({
      data: [{ ...tenant, partnerId: partner.id, type: 'CREDIT', amount, currency: money, idempotencyKey: key, note }],
      skipDuplicates: true,
    });
    const entry = (await tx.ledgerEntry.findUnique({
      where: { workspaceId_mode_idempotencyKey: { ...tenant, idempotencyKey: key } },
    }))!;
    if (
      entry.type !== 'CREDIT' ||
      entry.partnerId !== partner.id ||
      entry.amount !== amount ||
      entry.currency !== money
    ) {
      throw new DomainError(
        'DUPLICATE',
        `The idempotencyKey ${JSON.stringify(key)} was already used for ` +
          (entry.type === 'CREDIT'
            ? `a credit of ${formatMinor(entry.amount, entry.currency)} ${entry.currency} to partner ${globalId('Partner', entry.partnerId)}`
            : 'another ledger entry') +
          '; use a new key for a different credit.',
        ['input', 'idempotencyKey'],
      );
    }
    const created = count === 1;
    if (created) {
      await appendEvent(
        tx,
        tenant,
        balanceCredited({
          entryId: entry.id,
          partnerId: partner.id,
          amount,
          currency: money,
          note,
          idempotencyKey: key,
        }),
      );
    }
    const balance = await partnerBalance(prismaSql(tx), tenant, partner.id, money);
    return { balance, created };
  }, MONEY_TX_OPTIONS);
}
