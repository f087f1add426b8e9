-- Rules limited to products (issue 16, item 3): a rule with productIds rewards only conversions
-- recorded with one of them (recordConversion(productId)); an empty list (every existing rule)
-- rewards every product, as before.
ALTER TABLE "RewardRule" ADD COLUMN "productIds" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[];
ALTER TABLE "Conversion" ADD COLUMN "productId" TEXT;
