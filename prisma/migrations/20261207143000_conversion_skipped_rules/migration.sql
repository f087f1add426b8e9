-- The rules that produced no reward for a conversion, and why (reward/engine.ts SkippedRule):
-- written by recordConversion in the statement that writes the conversion's outcome. A constant
-- default adds the column without rewriting the table; conversions recorded before have none.
ALTER TABLE "Conversion" ADD COLUMN "skippedRules" JSONB NOT NULL DEFAULT '[]';
