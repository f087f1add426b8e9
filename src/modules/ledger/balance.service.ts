import type { Money } from '../../lib/money.js';
import type { SqlClient } from '../../lib/sql.js';
import { tenantCondition, toBigInt, uuidArray, type StatsScope } from '../stats/stats.service.js';

/**
 * A partner's money in one currency, derived — never stored — from their rewards and ledger
 * entries (the contract: "pending = CREATED rewards; available = APPROVED rewards not yet in a
 * paid payout + manual credits + clawbacks (may be negative); paid = PROCESSED rewards").
 *
 * Precisely, over the partner's rows in the tenant:
 *
 * | figure    | rewards (recipient REFERRER only)                                   | ledger entries           |
 * |-----------|---------------------------------------------------------------------|--------------------------|
 * | pending   | status CREATED                                                      | —                        |
 * | available | status APPROVED, unless in a payout whose status is PAID            | MANUAL_CREDIT + CLAWBACK |
 * | paid      | status PROCESSED, plus APPROVED ones in a PAID payout               | —                        |
 *
 * - A reward that a CLAWBACK ledger entry points at (`LedgerEntry.rewardId`) is left out of the
 *   reward columns: its money reaches the balance through that entry only, in `available`.
 *   So a refund of an already PROCESSED reward writes a negative Reward (sourceRewardId set) AND
 *   a CLAWBACK entry with `rewardId` = that negative reward and the same (negative) amount:
 *   `paid` keeps what was really paid and `available` goes down, below zero if need be. A
 *   negative reward without such an entry (e.g. a partial refund of a reward not yet processed)
 *   counts by its own status like any other reward.
 * - MANUAL_CREDIT entries (creditBalance; negative amounts are debits) count in `available`.
 * - REWARD_APPROVED, REWARD_PROCESSED and REWARD_REVERSED entries are the audit trail of reward
 *   movements (approval, payment, cancelation of an approved reward): the reward's status already
 *   places its amount, so they are never summed here (summing them too would count the reward
 *   twice). Their sum plus MANUAL_CREDIT and CLAWBACK equals `available` — the money tests check
 *   that identity.
 * - REFERRED-recipient rewards (the referred customer's discount or credit) are not the
 *   partner's money and never count.
 *
 * A currency is listed once the partner has a counted row in it, even if everything sums to zero.
 */
export interface Balance {
  currency: string;
  pending: bigint;
  available: bigint;
  paid: bigint;
}

export const moneyOf = (amount: bigint, currency: string): Money => ({ amount, currency });

/** The balances of several partners per currency (sorted by currency), in one SQL statement. */
export async function partnerBalances(
  db: SqlClient,
  scope: StatsScope,
  partnerIds: readonly string[],
): Promise<Map<string, Balance[]>> {
  const ids = uuidArray(partnerIds);
  const rows = await db.sql<{
    id: string;
    currency: string;
    pending: string | null;
    available: string | null;
    paid: string | null;
  }>`
    SELECT w."partnerId" AS id, w."currency" AS currency,
            (sum(w."amount") FILTER (WHERE w."status" = 'CREATED'))::text AS pending,
            (sum(w."amount") FILTER (WHERE w."status" = 'APPROVED' AND po."status" IS DISTINCT FROM 'PAID'))::text AS available,
            (sum(w."amount") FILTER (WHERE w."status" = 'PROCESSED' OR (w."status" = 'APPROVED' AND po."status" = 'PAID')))::text AS paid
       FROM "Reward" w
       LEFT JOIN "Payout" po ON po."id" = w."payoutId" AND po."workspaceId" = w."workspaceId" AND po."mode" = w."mode"
      WHERE ${tenantCondition('w', scope)} AND w."partnerId" = ANY(${ids})
        AND w."recipient" = 'REFERRER' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED')
        AND NOT EXISTS (SELECT 1 FROM "LedgerEntry" c WHERE c."rewardId" = w."id" AND c."type" = 'CLAWBACK')
      GROUP BY w."partnerId", w."currency"
     UNION ALL
     SELECT l."partnerId" AS id, l."currency" AS currency, NULL AS pending, sum(l."amount")::text AS available, NULL AS paid
       FROM "LedgerEntry" l
      WHERE ${tenantCondition('l', scope)} AND l."partnerId" = ANY(${ids}) AND l."type" IN ('MANUAL_CREDIT', 'CLAWBACK')
      GROUP BY l."partnerId", l."currency"`;
  const byPartner = new Map<string, Map<string, Balance>>(partnerIds.map((id) => [id, new Map()]));
  for (const row of rows) {
    const balances = byPartner.get(row.id)!;
    let balance = balances.get(row.currency);
    if (!balance) {
      balance = { currency: row.currency, pending: 0n, available: 0n, paid: 0n };
      balances.set(row.currency, balance);
    }
    balance.pending += toBigInt(row.pending);
    balance.available += toBigInt(row.available);
    balance.paid += toBigInt(row.paid);
  }
  return new Map(
    [...byPartner.entries()].map(([id, balances]) => [
      id,
      [...balances.values()].sort((a, b) => (a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0)),
    ]),
  );
}

/** One partner's balance in one currency (all zero when there is nothing in it), e.g. for creditBalance's payload. */
export async function partnerBalance(
  db: SqlClient,
  scope: StatsScope,
  partnerId: string,
  currency: string,
): Promise<Balance> {
  const balances = (await partnerBalances(db, scope, [partnerId])).get(partnerId) ?? [];
  return balances.find((b) => b.currency === currency) ?? { currency, pending: 0n, available: 0n, paid: 0n };
}
