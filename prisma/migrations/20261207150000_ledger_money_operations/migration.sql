-- Money operations (issue 13): the ledger becomes the one record of a partner's CASH money.
-- Old shape: available = APPROVED rewards not in a PAID payout + MANUAL_CREDIT + CLAWBACK, with
-- REWARD_* entries as an audit trail whose sum (plus credits and clawbacks) equalled available.
-- New shape: available = the sum of every entry; a payout takes its amount out with a PAYOUT
-- entry when it is created and gives it back with PAYOUT_REVERSED if it fails or is canceled.
-- Balances after this migration equal the balances before it, except that (1) what a PENDING
-- payout holds is no longer `available` (it gets its PAYOUT entry), and (2) CREDIT and DISCOUNT
-- rewards leave the cash balances (they have their own, derived from their statuses).

-- Payouts: CANCELED, why and when a payout was released. (Their listing index, (workspaceId,
-- mode, createdAt, id), comes with the exports' migration.)
ALTER TYPE "PayoutStatus" ADD VALUE 'CANCELED';
ALTER TABLE "Payout" ADD COLUMN "failureReason" TEXT, ADD COLUMN "releasedAt" TIMESTAMPTZ(3);

-- Programs: the minimum payout of a batch run.
ALTER TABLE "Program" ADD COLUMN "minimumPayoutAmount" BIGINT, ADD COLUMN "minimumPayoutCurrency" VARCHAR(3);
ALTER TABLE "Program"
  ADD CONSTRAINT "Program_minimumPayout_check" CHECK (
    ("minimumPayoutAmount" IS NULL) = ("minimumPayoutCurrency" IS NULL)
    AND ("minimumPayoutAmount" IS NULL OR "minimumPayoutAmount" > 0)
    AND ("minimumPayoutCurrency" IS NULL OR "minimumPayoutCurrency" ~ '^[A-Z]{3}$'));

-- Entry types: MANUAL_CREDIT → CREDIT, REWARD_PROCESSED → PAYOUT (a reward paid, one entry per
-- reward for payouts made before this migration), new ADJUSTMENT and PAYOUT_REVERSED.
CREATE TYPE "LedgerEntryType_new" AS ENUM ('REWARD_APPROVED', 'REWARD_REVERSED', 'CREDIT', 'ADJUSTMENT', 'CLAWBACK', 'PAYOUT', 'PAYOUT_REVERSED');
ALTER TABLE "LedgerEntry" ALTER COLUMN "type" TYPE "LedgerEntryType_new" USING (
  CASE "type"::text WHEN 'MANUAL_CREDIT' THEN 'CREDIT' WHEN 'REWARD_PROCESSED' THEN 'PAYOUT' ELSE "type"::text END
)::"LedgerEntryType_new";
DROP TYPE "LedgerEntryType";
ALTER TYPE "LedgerEntryType_new" RENAME TO "LedgerEntryType";

-- In-product rewards (CREDIT, DISCOUNT) are not cash: their entries leave the ledger, and a
-- PENDING payout lets go of them (its amount is what it still holds in CASH rewards).
DELETE FROM "LedgerEntry" l USING "Reward" r WHERE l."rewardId" = r."id" AND r."kind" <> 'CASH';
UPDATE "Reward" r SET "payoutId" = NULL
  FROM "Payout" p
 WHERE r."payoutId" = p."id" AND p."status" = 'PENDING' AND r."kind" <> 'CASH';
UPDATE "Payout" p SET "amount" = held."amount"
  FROM (SELECT "payoutId", sum("amount") AS "amount" FROM "Reward" WHERE "payoutId" IS NOT NULL GROUP BY "payoutId") held
 WHERE held."payoutId" = p."id" AND p."status" = 'PENDING' AND held."amount" > 0;
-- One that held nothing else is released (FAILED: CANCELED cannot be used in the migration that adds it).
UPDATE "Reward" r SET "payoutId" = NULL
  FROM "Payout" p
 WHERE r."payoutId" = p."id" AND p."status" = 'PENDING'
   AND NOT EXISTS (SELECT 1 FROM "Reward" c WHERE c."payoutId" = p."id" AND c."kind" = 'CASH' GROUP BY c."payoutId" HAVING sum(c."amount") > 0);
UPDATE "Payout" p SET "status" = 'FAILED', "releasedAt" = now(),
       "failureReason" = 'It held only in-product (CREDIT or DISCOUNT) rewards, which are never paid in cash.'
 WHERE p."status" = 'PENDING'
   AND NOT EXISTS (SELECT 1 FROM "Reward" c WHERE c."payoutId" = p."id" AND c."kind" = 'CASH' GROUP BY c."payoutId" HAVING sum(c."amount") > 0);

-- A refund's share of an approved, unpaid reward is an ADJUSTMENT (it was a negative REWARD_APPROVED).
UPDATE "LedgerEntry" l SET "type" = 'ADJUSTMENT'
  FROM "Reward" r
 WHERE l."rewardId" = r."id" AND l."type" = 'REWARD_APPROVED' AND r."sourceRewardId" IS NOT NULL;

-- What a PENDING payout holds leaves `available` now, as it will for every new payout.
INSERT INTO "LedgerEntry" ("id", "workspaceId", "mode", "partnerId", "type", "amount", "currency", "payoutId", "note", "createdAt")
SELECT gen_random_uuid(), p."workspaceId", p."mode", p."partnerId", 'PAYOUT', -p."amount", p."currency", p."id",
       'Held by this PENDING payout (written by the money-operations migration).', p."createdAt"
  FROM "Payout" p
 WHERE p."status" = 'PENDING' AND p."amount" > 0;
