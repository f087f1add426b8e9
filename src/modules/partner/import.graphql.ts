import { builder } from '../../graphql/builder.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, tenantOf } from '../../graphql/scope.js';
import { IMPORT_MAX_ERRORS, IMPORT_MAX_ROWS, importPartners } from './import.service.js';
import { PartnerRef } from './partner.graphql.js';

const ImportPartnerInput = builder.inputType('ImportPartnerInput', {
  description:
    'One existing partner to bring in: the partner, its program (enrolled APPROVED) and its link (its existing code, or a generated one).',
  fields: (t) => ({
    externalId: t.string({
      required: true,
      description:
        'The company’s own id for this person, 1–255 characters (trimmed); must not exist yet in this workspace and mode (DUPLICATE), nor appear twice in the call.',
    }),
    name: t.string({ description: 'At most 200 characters.' }),
    email: t.string({ description: 'At most 320 characters, one "@".' }),
    metadata: t.field({
      type: 'JSON',
      description: 'A JSON object of at most 50 keys and 8 KiB; omitted or null: `{}`.',
    }),
    programId: t.id({
      required: true,
      description:
        'The program the partner is in: enrolled APPROVED whatever autoApprovePartners says. Unknown here → NOT_FOUND, ARCHIVED → INVALID_TRANSITION.',
    }),
    code: t.string({
      description:
        'The partner’s existing referral code, kept as given: 3–32 characters of A–Z, a–z, 0–9, "_" and "-", not a reserved word, not taken (ignoring case). Omitted or null: a generated code.',
    }),
  }),
});

const ImportPartnersInput = builder.inputType('ImportPartnersInput', {
  description: 'Partners to import in one call, all or nothing.',
  fields: (t) => ({
    partners: t.field({
      type: [ImportPartnerInput],
      required: true,
      description: `1 to ${IMPORT_MAX_ROWS} partners; more → VALIDATION at ["input", "partners"] (send batches).`,
    }),
  }),
});

const ImportPartnersPayload = payloadType<{ partnerIds: string[] }>(
  'ImportPartnersPayload',
  'What an import created: every row, or (with userErrors) nothing.',
  (t) => ({
    imported: t.int({
      description: 'How many partners were created (each with its enrollment and link): all the rows, or 0.',
      resolve: (p) => p.partnerIds?.length ?? 0,
    }),
    partners: t.prismaField({
      type: [PartnerRef],
      nullable: { list: false, items: false },
      description: 'The new partners, in the order of the rows; empty when the import was refused.',
      resolve: async (query, p, _args, ctx) => {
        const selection = { ...query }; // spread before the empty check: not an unused query
        if (!p.partnerIds?.length) return [];
        // The ids are time-ordered and were made in the rows' order.
        return ctx.db.prisma.partner.findMany({
          ...selection,
          where: { id: { in: p.partnerIds } },
          orderBy: { id: 'asc' },
        });
      },
    }),
  }),
);

builder.mutationField('importPartners', (t) =>
  t.field({
    type: ImportPartnersPayload,
    description:
      `Bring in up to ${IMPORT_MAX_ROWS} existing partners at once: each row creates the partner, enrolls it APPROVED in its program and gives it one link (the enrollment's default) with its existing code or a generated one; ` +
      'no rewards, clicks or conversions are made up. Appends partner.created, enrollment.status_changed and link.created per row. ' +
      `All or nothing: any refused row refuses the call, with a userError per problem at ["input", "partners", "<index>", "<field>"] (at most ${IMPORT_MAX_ERRORS}). ` +
      'An externalId that exists already, or a code that is taken, is DUPLICATE; so is a later row repeating an earlier row’s externalId or code.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: ImportPartnersInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const result = await importPartners(
          ctx.db,
          tenantOf(ctx),
          input.partners.map((row) => ({
            externalId: row.externalId,
            name: row.name,
            email: row.email,
            metadata: row.metadata,
            programId: rowIdFrom(String(row.programId), 'Program'),
            code: row.code,
          })),
        );
        return { partnerIds: result.partners.map((p) => p.id) };
      }),
  }),
);
