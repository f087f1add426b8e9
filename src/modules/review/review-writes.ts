import type { Tenant } from '../../domain/tenant.js';
import { sql, type SqlFragment } from '../../lib/sql.js';
import type { FraudSignal } from './fraud-rules.js';

/** A review item opened by recordConversion: its conversion tripped a fraud rule. */
export interface NewReviewItem {
  id: string;
  programId: string;
  partnerId: string;
  conversionId: string;
  referralId: string | null;
  signals: FraudSignal[];
  createdAt: Date;
}

/**
 * Writing an OPEN review item, as a CTE followed by a comma, to splice into recordConversion's
 * outcome statement (before the rewards it holds); nothing when there is none.
 */
export function insertReviewItemCte(tenant: Tenant, item: NewReviewItem | null): SqlFragment {
  if (!item) return sql.empty;
  return sql`
    review_item AS (
      INSERT INTO "ReviewItem" ("id", "workspaceId", "mode", "programId", "partnerId", "conversionId", "referralId", "status", "signals",
                                "createdAt", "updatedAt")
      VALUES (${item.id}::uuid, ${tenant.workspaceId}::uuid, ${tenant.mode}::"Mode", ${item.programId}::uuid, ${item.partnerId}::uuid,
              ${item.conversionId}::uuid, ${item.referralId}::uuid, 'OPEN', ${JSON.stringify(item.signals)}::jsonb,
              ${item.createdAt}::timestamptz, ${item.createdAt}::timestamptz)
      RETURNING 1
    ),`;
}
