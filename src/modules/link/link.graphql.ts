import { builder } from '../../graphql/builder.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { partnerFilter, rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { VANITY_CODE_MAX } from './codes.js';
import { codeKey, createReferralLink, disableReferralLink, updateReferralLink } from './link.service.js';

export const ReferralLinkRef = builder.prismaNode('ReferralLink', {
  description: 'A shareable referral code and its URL, for one partner in one program.',
  id: { field: 'id' },
  // Select mode: a query loads only the columns its fields use (the dashboard lists hundreds of links).
  select: { id: true },
  nullable: true,
  // A PARTNER credential sees only its own partner's links.
  findUnique: (id, ctx) => ({ ...scopedKey(id, ctx), ...partnerFilter(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    code: t.exposeString('code', {
      description: 'The code as created (case preserved); codes are unique ignoring case across the installation.',
    }),
    url: t.string({
      description:
        'The link to share: `<PUBLIC_URL>/r/<code>`. A visit records a click and redirects to `destinationUrl`.',
      select: { code: true },
      resolve: (link, _args, ctx) => `${ctx.config.publicUrl}/r/${encodeURIComponent(link.code)}`,
    }),
    destinationUrl: t.string({
      description:
        'Where a visit is sent: the link’s own destination, else the program’s, else the server’s public URL.',
      select: { destinationUrl: true, program: { select: { destinationUrl: true } } },
      resolve: (link, _args, ctx) => link.destinationUrl ?? link.program.destinationUrl ?? ctx.config.publicUrl,
    }),
    program: t.relation('program', { description: 'The program the link refers to.' }),
    partner: t.relation('partner', { description: 'The partner who shares the link and is credited for it.' }),
    enrollment: t.relation('enrollment', { description: 'The enrollment the link belongs to.' }),
    disabled: t.boolean({
      description: 'A disabled link stays readable but records no clicks and attributes nothing.',
      select: { disabledAt: true },
      resolve: (link) => link.disabledAt !== null,
    }),
    disabledAt: t.expose('disabledAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the link was disabled; null while it works.',
    }),
    isDefault: t.exposeBoolean('isDefault', { description: 'The link created when the enrollment was approved.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryField('referralLink', (t) =>
  t.prismaField({
    type: ReferralLinkRef,
    nullable: true,
    description:
      'A link of the caller’s workspace and mode by its code, ignoring case; disabled links included. Null when there is none. A PARTNER credential finds only its own links.',
    authScopes: { authenticated: true },
    args: { code: t.arg.string({ required: true, description: 'The code, in any case.' }) },
    resolve: (query, _root, { code }, ctx) => {
      const selection = { ...query }; // used even when the answer is null without a lookup
      // No code longer than the vanity maximum exists (generated ones are shorter).
      if (code.length === 0 || code.length > VANITY_CODE_MAX) return null;
      return ctx.db.prisma.referralLink.findUnique({
        ...selection,
        where: { ...codeKey(tenantOf(ctx), code), ...partnerFilter(ctx) },
      });
    },
  }),
);

const linkPayload = (name: string, description: string) =>
  payloadType<{ linkId: string }>(name, description, (t) => ({
    link: t.prismaField({
      type: ReferralLinkRef,
      nullable: true,
      resolve: (query, p, _args, ctx) => {
        // Spread before the null check: a refused mutation has no link, and that is not an unused query.
        const selection = { ...query };
        return p.linkId ? ctx.db.prisma.referralLink.findUnique({ ...selection, where: { id: p.linkId } }) : null;
      },
    }),
  }));

const CreateReferralLinkInput = builder.inputType('CreateReferralLinkInput', {
  description:
    'Whose link (exactly one of `partnerId` or `partnerExternalId`; a PARTNER credential names its own partner), in which program, with which code and destination.',
  fields: (t) => ({
    ...partnerKeyFields(t, 'The partner who will share the link (a PARTNER credential: its own partner)'),
    programId: t.id({
      required: true,
      description: 'The program’s global id; the partner’s enrollment in it must be APPROVED.',
    }),
    code: t.string({
      description:
        'A vanity code: 3–32 characters of A–Z, a–z, 0–9, "_" and "-", case preserved, unique ignoring case; a few reserved words (admin, api, graphql, r, www, …) are refused. ' +
        'Omitted: 8 random characters from an unambiguous alphabet.',
    }),
    destinationUrl: t.string({
      description:
        'Absolute http(s) URL, at most 2048 characters, without user name or password; stored normalised (WHATWG URL serialisation). Omitted: the program’s destination. ' +
        'From a PARTNER credential, its host must be one the program allows (`Program.allowedDestinationHosts`), else VALIDATION naming the allowed hosts; ADMIN keys may use any host.',
    }),
  }),
});

const CreateReferralLinkPayload = linkPayload('CreateReferralLinkPayload', 'The new link.');

builder.mutationField('createReferralLink', (t) =>
  t.field({
    type: CreateReferralLinkPayload,
    description:
      'An extra link for a partner in a program where their enrollment is APPROVED (not enrolled: NOT_FOUND; not approved: INVALID_TRANSITION). ' +
      'A taken code is DUPLICATE. ADMIN credentials, and PARTNER credentials for their own partner only (another partner, by either id, is NOT_FOUND).',
    // Declared here rather than as a builder scope: the one field a PARTNER credential may write.
    authScopes: (_root, _args, ctx) => ctx.auth?.role === 'ADMIN' || ctx.auth?.role === 'PARTNER',
    args: { input: t.arg({ type: CreateReferralLinkInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const auth = ctx.auth!;
        const link = await createReferralLink(
          ctx.db.prisma,
          tenantOf(ctx),
          {
            ...partnerKeyFrom(input),
            programId: rowIdFrom(String(input.programId), 'Program'),
            code: input.code,
            destinationUrl: input.destinationUrl,
          },
          { partnerId: auth.role === 'PARTNER' ? (auth.partnerId ?? '') : null, publicUrl: ctx.config.publicUrl },
        );
        return { linkId: link.id };
      }),
  }),
);

const DisableReferralLinkInput = builder.inputType('DisableReferralLinkInput', {
  fields: (t) => ({ id: t.id({ required: true, description: 'The link’s global id.' }) }),
});

const DisableReferralLinkPayload = linkPayload('DisableReferralLinkPayload', 'The disabled link.');

builder.mutationField('disableReferralLink', (t) =>
  t.field({
    type: DisableReferralLinkPayload,
    description:
      'Disable a link: it stays readable with `disabled: true`, but records no clicks and attributes nothing. Disabling twice is harmless.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: DisableReferralLinkInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const link = await disableReferralLink(
          ctx.db.prisma,
          tenantOf(ctx),
          rowIdFrom(String(input.id), 'ReferralLink'),
        );
        ctx.clicks.forgetLink(link.code); // clicks on it stop counting at once on this instance
        return { linkId: link.id };
      }),
  }),
);

const UpdateReferralLinkInput = builder.inputType('UpdateReferralLinkInput', {
  fields: (t) => ({
    id: t.id({ required: true, description: 'The link’s global id.' }),
    programId: t.id({
      description:
        'Move the link to this program of the same workspace and mode: its partner must have an APPROVED enrollment there. The code stays; clicks, referrals and conversions already recorded keep their program.',
    }),
    destinationUrl: t.string({
      description: 'A new destination for the link (http or https); null or blank: the program’s destination again.',
    }),
  }),
});

const UpdateReferralLinkPayload = linkPayload('UpdateReferralLinkPayload', 'The updated link.');

builder.mutationField('updateReferralLink', (t) =>
  t.field({
    type: UpdateReferralLinkPayload,
    description:
      'Move a link to another program of its partner (e.g. a customer promoted to the affiliate program keeps the code they already share) and/or change its destination; appends `link.updated` with the fields that changed. ADMIN only.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateReferralLinkInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const link = await updateReferralLink(ctx.db.prisma, tenantOf(ctx), {
          linkId: rowIdFrom(String(input.id), 'ReferralLink'),
          programId: input.programId == null ? undefined : rowIdFrom(String(input.programId), 'Program'),
          ...('destinationUrl' in input ? { destinationUrl: input.destinationUrl ?? null } : {}),
        });
        ctx.clicks.forgetLink(link.code); // its program and destination apply at once on this instance
        return { linkId: link.id };
      }),
  }),
);
