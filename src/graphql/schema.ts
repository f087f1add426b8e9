import { lexicographicSortSchema } from 'graphql';
import { builder } from './builder.js';
// Shared types.
import './money.js';
import './payload.js';
// Every module registers its types and fields on import.
import '../modules/workspace/workspace.graphql.js';
import '../modules/auth/api-key.graphql.js';
import '../modules/auth/token.graphql.js';
import '../modules/member/member.graphql.js';
import '../modules/program/program.graphql.js';
import '../modules/program/reward-rule.graphql.js';
import '../modules/program/rule-override.graphql.js';
import '../modules/tier/tier.graphql.js';
import '../modules/partner/partner.graphql.js';
import '../modules/partner/enrollment.graphql.js';
import '../modules/partner/erasure.graphql.js';
import '../modules/partner/import.graphql.js';
import '../modules/link/link.graphql.js';
import '../modules/coupon/coupon.graphql.js';
import '../modules/click/click.graphql.js';
import '../modules/referral/referral.graphql.js';
import '../modules/referral/referral-status.graphql.js';
import '../modules/conversion/conversion.graphql.js';
import '../modules/conversion/record-conversion.graphql.js';
import '../modules/conversion/simulate-conversion.graphql.js';
import '../modules/conversion/refund-conversion.graphql.js';
import '../modules/reward/reward.graphql.js';
import '../modules/reward/reward-status.graphql.js';
import '../modules/reward/skipped-rule.graphql.js';
import '../modules/reward/explanation.graphql.js';
import '../modules/review/review.graphql.js';
import '../modules/ledger/balance.graphql.js';
import '../modules/ledger/credit.graphql.js';
import '../modules/ledger/ledger.graphql.js';
import '../modules/payout/payout.graphql.js';
import '../modules/stats/stats.graphql.js';
import '../modules/reporting/reporting.graphql.js';
import '../modules/events/events.graphql.js';
import '../modules/events/event-data.graphql.js';
import '../modules/events/live.graphql.js';
import '../modules/webhook/webhook.graphql.js';
import '../modules/integration/stripe.graphql.js';

/** The whole GraphQL schema, sorted so its printed form is stable. */
export const schema = lexicographicSortSchema(builder.toSchema());
