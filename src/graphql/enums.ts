import * as E from '../generated/prisma/enums.js';
import { builder } from './builder.js';

// The domain's enums, shared by several modules. Values come from the Prisma schema so the two
// can never drift apart.

export const ModeEnum = builder.enumType(E.Mode, {
  name: 'Mode',
  description: 'The isolated data set a credential works in: TEST (sandbox) or LIVE (production).',
});
export const RoleEnum = builder.enumType(E.Role, {
  name: 'Role',
  description: 'What a credential may do: ADMIN everything, READ_ONLY reads, PARTNER its own partner’s data.',
});
export const PartnerStatusEnum = builder.enumType(E.PartnerStatus, {
  name: 'PartnerStatus',
  description: 'An INACTIVE or BANNED partner’s new clicks and conversions are recorded as discarded, never rewarded.',
});
