import { GraphQLError } from 'graphql';
import { builder } from '../../graphql/builder.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { erasePartner, scrubClicks } from './erasure.service.js';
import { PartnerRef } from './partner.graphql.js';
import { EXPORT_LIST_MAX, exportPartner } from './partner-export.service.js';

// erasePartner and exportPartner (GDPR): README.md, "Erasure and export".

/**
 * The cost estimate of one exportPartner (limits.ts): a unit per row it may read, about seven
 * lists of EXPORT_LIST_MAX. With the default MAX_QUERY_COST (500 000) an operation holds at most
 * seven of them.
 */
const EXPORT_COST = 7 * EXPORT_LIST_MAX;

builder.prismaObjectField('Partner', 'erasedAt', (t) =>
  t.expose('erasedAt', {
    type: 'DateTime',
    nullable: true,
    description:
      'When erasePartner replaced this partner’s personal data with a tombstone (`externalId` "erased:…", no name, email or metadata, BANNED); null while it has not been erased.',
  }),
);

const ErasePartnerInput = builder.inputType('ErasePartnerInput', {
  description: 'Which partner to erase: exactly one of `partnerId` or `partnerExternalId`.',
  fields: (t) => ({ ...partnerKeyFields(t, 'The partner to erase') }),
});

const ErasePartnerPayload = payloadType<{ partnerId: string }>(
  'ErasePartnerPayload',
  'The erased partner (its tombstone).',
  (t) => ({
    partner: t.prismaField({
      type: PartnerRef,
      nullable: true,
      description: 'The partner as it is after the erasure; null when refused.',
      resolve: (query, p, _args, ctx) => {
        const selection = { ...query };
        return p.partnerId ? ctx.db.prisma.partner.findUnique({ ...selection, where: { id: p.partnerId } }) : null;
      },
    }),
  }),
);

builder.mutationField('erasePartner', (t) =>
  t.field({
    type: ErasePartnerPayload,
    description:
      'Erase a partner’s personal data (GDPR): `externalId` becomes a tombstone ("erased:" and 24 hex digits derived from the partner’s id), `name` and `email` null, `metadata` {}, the answers of its applications null; ' +
      'the visitor IP hashes, user agents and referrers of its clicks are cleared; its status becomes BANNED for good and its links are disabled (`link.disabled`), so nothing new is attributed to it. ' +
      'Rewards, ledger entries, payouts, conversions and referrals stay as they are: balances, statements and program figures do not change (money still owed can be paid out). Appends `partner.erased` (ids only). ' +
      'Cannot be undone: updatePartner, setPartnerStatus and createPartnerToken then refuse the partner (INVALID_TRANSITION). Erasing an erased partner succeeds and appends nothing. ' +
      'Unknown partner (or one of another workspace or mode): NOT_FOUND. ADMIN only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: ErasePartnerInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const tenant = tenantOf(ctx);
        const partner = await erasePartner(ctx.db.prisma, tenant, partnerKeyFrom(input));
        // The cached link facts carry the links' state and the partner's status.
        ctx.clicks.forgetLink();
        // Clicks this instance acknowledged before the erasure may be written only now: write
        // them, then clear them too.
        await ctx.clicks.flush();
        await scrubClicks(ctx.db.prisma, tenant, partner.id);
        return { partnerId: partner.id };
      }),
  }),
);

interface PartnerExportShape {
  partnerId: string;
  json: Record<string, unknown>;
}

const PartnerExportRef = builder.objectRef<PartnerExportShape>('PartnerExport').implement({
  description:
    'Everything refgraph holds about one partner (exportPartner), for a data-access request or a move to another system.',
  fields: (t) => ({
    partner: t.prismaField({
      type: PartnerRef,
      nullable: false,
      description: 'The partner exported.',
      resolve: async (query, e, _args, ctx) => {
        const row = await ctx.db.prisma.partner.findUnique({ ...query, where: scopedKey(e.partnerId, ctx) });
        if (!row) throw new Error('The exported partner is no longer there.');
        return row;
      },
    }),
    json: t.field({
      type: 'JSON',
      description:
        'One JSON object: `version` (1), `exportedAt`, `workspaceId`, `mode`, `listLimit`; `partner` (every field, metadata and erasedAt included); `programs` it is enrolled in (id, name, type); ' +
        '`enrollments` (answers included), `links` (each with `clicks: { counted, discarded }`), `referrals` (id, program, link, the company’s externalId for the person, status, times — never their email or metadata), ' +
        '`conversions` attributed to it, `rewards`, `ledgerEntries` and `payouts`, each `{ items, truncated }`, oldest first, at most `listLimit` (10 000) items (`truncated: true` when there are more: page through Partner.referrals, rewards, ledger, payouts or the CSV exports for the rest); ' +
        '`clicks: { counted, discarded }` (click rows are counted, never listed); `balances: { cash, inProduct }`. Ids are global ids, times ISO 8601 UTC, money `{ amount, currency }` with amount a Decimal string as in Money.',
      resolve: (e) => e.json,
    }),
  }),
});

builder.queryField('exportPartner', (t) =>
  t.field({
    type: PartnerExportRef,
    nullable: true,
    description:
      'Everything refgraph holds about one partner, as JSON (`PartnerExport.json`), read at one instant. By exactly one of `id` or `externalId` (both or neither: a BAD_USER_INPUT error). ' +
      'Null when there is no such partner in the caller’s workspace and mode. An erased partner exports its tombstone and its money records. ADMIN only.',
    authScopes: { admin: true },
    complexity: { field: EXPORT_COST, multiplier: 1 },
    args: {
      id: t.arg.id({ description: 'The partner’s global id.' }),
      externalId: t.arg.string({ description: 'The company’s own id for the partner.' }),
    },
    resolve: async (_root, args, ctx) => {
      const byId = args.id !== null && args.id !== undefined;
      const byExternalId = args.externalId !== null && args.externalId !== undefined;
      if (byId === byExternalId) {
        throw new GraphQLError('exportPartner: give exactly one of `id` or `externalId`.', {
          extensions: { code: 'BAD_USER_INPUT' },
        });
      }
      let lookup: { id: string } | { externalId: string };
      if (byId) {
        const id = rowIdFrom(String(args.id), 'Partner');
        if (!id) return null;
        lookup = { id };
      } else {
        lookup = { externalId: args.externalId!.trim() };
      }
      const result = await exportPartner(ctx.db.prisma, tenantOf(ctx), lookup);
      return result ? { partnerId: result.partner.id, json: result.json } : null;
    },
  }),
);
