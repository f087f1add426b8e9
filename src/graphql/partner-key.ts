import type { builder } from './builder.js';
import { rowIdFrom } from './scope.js';

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

/**
 * The two fields by which an input names a partner: `partnerId` or `partnerExternalId`, exactly
 * one of the two (the service refuses neither or both with VALIDATION). `whose` says, for the
 * descriptions, whom the partner is in this input (e.g. "The partner to enroll").
 */
export function partnerKeyFields(t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>, whose: string) {
  return {
    partnerId: t.id({
      description: `${whose}: refgraph’s global id. Give exactly one of \`partnerId\` or \`partnerExternalId\` (neither or both: VALIDATION).`,
    }),
    partnerExternalId: t.string({
      description: `${whose}: the company’s own id for them (\`Partner.externalId\`), instead of \`partnerId\`. Unknown in the caller’s workspace and mode: NOT_FOUND.`,
    }),
  };
}

/**
 * What such an input names, for the services' `findPartnerByKey`: a null or absent field is not
 * given; a malformed id or one of another type becomes null (answered as NOT_FOUND).
 */
export function partnerKeyFrom(input: { partnerId?: string | number | null; partnerExternalId?: string | null }): {
  partnerId?: string | null;
  partnerExternalId?: string;
} {
  return {
    ...(input.partnerId === null || input.partnerId === undefined
      ? {}
      : { partnerId: rowIdFrom(String(input.partnerId), 'Partner') }),
    ...(input.partnerExternalId === null || input.partnerExternalId === undefined
      ? {}
      : { partnerExternalId: input.partnerExternalId }),
  };
}
