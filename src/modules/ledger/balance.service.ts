import type { Money } from '../../lib/money.js';
import { sql, type SqlClient, type SqlFragment } from '../../lib/sql.js';
import { tenantCondition, toBigInt, uuidArray, type StatsScope } from '../stats/scope.js';

/**
 * A partner's CASH money in one currency, derived — never stored — from their ledger entries and
 * rewards (README.md next to this file):
 *
 * | figure    | at `at` (now when omitted)                                                                 |
 * |-----------|--------------------------------------------------------------------------------------------|
 * | pending   | CASH rewards of the partner (recipient REFERRER) whose status was CREATED                   |
 * | available | the sum of the partner's ledger entries written until then (may be negative)               |
 * | paid      | − the PAYOUT entries of payouts PAID until then, and of rewards marked PROCESSED outside one |
 *
 * What a PENDING payout holds is in neither `available` (its PAYOUT entry took it out) nor `paid`
 * (not yet): it comes back to `available` if the payout fails or is canceled (PAYOUT_REVERSED).
 * REFERRED-recipient rewards are the referred customer's, never the partner's money; CREDIT and
 * DISCOUNT rewards are in-product rewards with balances of their own (`creditBalances`).
 * A currency is listed once the partner has a counted row in it, even if everything sums to zero.
 */
export interface Balance {
  currency: string;
  pending: bigint;
  available: bigint;
  paid: bigint;
}

export const moneyOf = (amount: bigint, currency: string): Money => ({ amount, currency });

type BalanceRow = {
  id: string;
  currency: string;
  pending: string | null;
  available: string | null;
  paid: string | null;
};

/** The CASH balances of several partners per currency (sorted by currency), at `at` or now, in one SQL statement. */
export async function partnerBalances(
  db: SqlClient,
  scope: StatsScope,
  partnerIds: readonly string[],
  at: Date | null = null,
): Promise<Map<string, Balance[]>> {
  const ids = uuidArray(partnerIds);
  const until = (column: SqlFragment) => (at ? sql`${column} <= ${at}::timestamptz` : sql`TRUE`);
  const rows = await db.sql<BalanceRow>`
    SELECT w."partnerId" AS id, w."currency" AS currency, sum(w."amount")::text AS pending, NULL AS available, NULL AS paid
      FROM "Reward" w
     WHERE ${tenantCondition('w', scope)} AND w."partnerId" = ANY(${ids})
       AND w."recipient" = 'REFERRER' AND w."kind" = 'CASH'
       AND ${
         at
           ? sql`w."createdAt" <= ${at}::timestamptz
       AND NOT EXISTS (SELECT 1 FROM "RewardStatusChange" h
                        WHERE h."rewardId" = w."id" AND h."fromStatus" = 'CREATED' AND h."createdAt" <= ${at}::timestamptz)`
           : sql`w."status" = 'CREATED'`
       }
     GROUP BY w."partnerId", w."currency"
    UNION ALL
    SELECT l."partnerId" AS id, l."currency" AS currency, NULL AS pending, sum(l."amount")::text AS available,
           (-sum(l."amount") FILTER (WHERE l."type" = 'PAYOUT' AND (l."payoutId" IS NULL OR (po."status" = 'PAID' AND ${until(sql`po."paidAt"`)}))))::text AS paid
      FROM "LedgerEntry" l
      LEFT JOIN "Payout" po ON po."id" = l."payoutId" AND po."workspaceId" = l."workspaceId" AND po."mode" = l."mode"
     WHERE ${tenantCondition('l', scope)} AND l."partnerId" = ANY(${ids}) AND ${until(sql`l."createdAt"`)}
     GROUP BY l."partnerId", l."currency"`;
  return collect(rows, partnerIds);
}

/**
 * The in-product (CREDIT and DISCOUNT) balances of several partners per currency: pending =
 * CREATED, available = APPROVED (the company applies them in its product), paid = PROCESSED (the
 * company marked them applied with updateRewardStatus). They never enter a cash payout.
 */
export async function partnerCreditBalances(
  db: SqlClient,
  scope: StatsScope,
  partnerIds: readonly string[],
): Promise<Map<string, Balance[]>> {
  const rows = await db.sql<BalanceRow>`
    SELECT w."partnerId" AS id, w."currency" AS currency,
           (sum(w."amount") FILTER (WHERE w."status" = 'CREATED'))::text AS pending,
           (sum(w."amount") FILTER (WHERE w."status" = 'APPROVED'))::text AS available,
           (sum(w."amount") FILTER (WHERE w."status" = 'PROCESSED'))::text AS paid
      FROM "Reward" w
     WHERE ${tenantCondition('w', scope)} AND w."partnerId" = ANY(${uuidArray(partnerIds)})
       AND w."recipient" = 'REFERRER' AND w."kind" <> 'CASH' AND w."status" IN ('CREATED', 'APPROVED', 'PROCESSED')
     GROUP BY w."partnerId", w."currency"`;
  return collect(rows, partnerIds);
}

function collect(rows: readonly BalanceRow[], partnerIds: readonly string[]): Map<string, Balance[]> {
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

/** One partner's CASH balance in one currency, at `at` or now (all zero when there is nothing in it). */
export async function partnerBalance(
  db: SqlClient,
  scope: StatsScope,
  partnerId: string,
  currency: string,
  at: Date | null = null,
): Promise<Balance> {
  const balances = (await partnerBalances(db, scope, [partnerId], at)).get(partnerId) ?? [];
  return balances.find((b) => b.currency === currency) ?? { currency, pending: 0n, available: 0n, paid: 0n };
}
