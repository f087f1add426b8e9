import { builder } from '../../graphql/builder.js';
import { EnrollmentStatusEnum } from '../../graphql/enums.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { partnerFilter, rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import type { EnrollmentStatus } from '../../generated/prisma/enums.js';
import { programEnrollmentTotal } from '../stats/stats.graphql.js';
import { enrollPartner, setEnrollmentStatus } from './enrollment.service.js';
import { firstArgOptions, LIST_CAP, listComplexity, listTake } from '../../graphql/bounded-list.js';

export const EnrollmentRef = builder.prismaNode('Enrollment', {
  description: 'A partner in a program. An APPROVED enrollment has a default referral link.',
  id: { field: 'id' },
  // Select mode: a query loads only the columns its fields use (the dashboard lists hundreds of these).
  select: { id: true },
  nullable: true,
  // A PARTNER credential sees only its own partner's enrollments.
  findUnique: (id, ctx) => ({ ...scopedKey(id, ctx), ...partnerFilter(ctx) }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    program: t.relation('program', { description: 'The program the partner is in.' }),
    partner: t.relation('partner', { description: 'The enrolled partner.' }),
    status: t.expose('status', {
      type: EnrollmentStatusEnum,
      description: 'PENDING until approved or rejected; APPROVED enrollments have links.',
    }),
    links: t.relation('links', {
      description: `The partner’s links in this program, oldest first (the default link first); disabled ones included. At most ${LIST_CAP} (\`first\`).`,
      args: { first: t.arg.int(firstArgOptions) },
      complexity: listComplexity,
      query: (args) => ({ orderBy: { id: 'asc' }, take: listTake(args.first) }),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the status last changed.' }),
  }),
});

builder.prismaObjectField('Program', 'enrollments', (t) =>
  t.relatedConnection(
    'enrollments',
    {
      cursor: 'id',
      description: 'The partners in this program, oldest enrollment first, optionally only those with `status`.',
      authScopes: { reader: true },
      args: { status: t.arg({ type: EnrollmentStatusEnum }) },
      query: (args) => ({ where: args.status ? { status: args.status } : {}, orderBy: { id: 'asc' } }),
    },
    {
      name: 'EnrollmentConnection',
      description: 'A page of enrollments.',
      fields: (c) => ({
        // Counted with the program figures (one GROUP BY for every program of the page), not by the programs query.
        totalCount: c.int({
          resolve: (connection, _args, ctx) => {
            const { parent, args } = connection as unknown as {
              parent: { id: string };
              args: { status?: EnrollmentStatus | null };
            };
            return programEnrollmentTotal(ctx, parent.id, args.status);
          },
        }),
      }),
    },
    {
      name: 'EnrollmentEdge',
      description: 'An enrollment in a page of enrollments.',
      nodeField: { description: 'The enrollment.' },
    },
  ),
);

const enrollmentPayload = (name: string, description: string) =>
  payloadType<{ enrollmentId: string }>(name, description, (t) => ({
    enrollment: t.prismaField({
      type: EnrollmentRef,
      nullable: true,
      resolve: (query, p, _args, ctx) => {
        // Spread before the null check: a refused mutation has no enrollment, and that is not an unused query.
        const selection = { ...query };
        return p.enrollmentId
          ? ctx.db.prisma.enrollment.findUnique({ ...selection, where: { id: p.enrollmentId } })
          : null;
      },
    }),
  }));

const EnrollPartnerInput = builder.inputType('EnrollPartnerInput', {
  description: 'Which partner (exactly one of `partnerId` or `partnerExternalId`) to put in which program.',
  fields: (t) => ({
    ...partnerKeyFields(t, 'The partner to enroll'),
    programId: t.id({ required: true, description: 'The program’s global id.' }),
  }),
});

const EnrollPartnerPayload = enrollmentPayload('EnrollPartnerPayload', 'The new enrollment.');

builder.mutationField('enrollPartner', (t) =>
  t.field({
    type: EnrollPartnerPayload,
    description:
      'Put a partner in a program: APPROVED with a default referral link when the program auto-approves partners, else PENDING. ' +
      'Already enrolled: DUPLICATE. An ARCHIVED program or a BANNED partner: INVALID_TRANSITION.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: EnrollPartnerInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const enrollment = await enrollPartner(ctx.db.prisma, tenantOf(ctx), {
          ...partnerKeyFrom(input),
          programId: rowIdFrom(String(input.programId), 'Program'),
        });
        return { enrollmentId: enrollment.id };
      }),
  }),
);

const SetEnrollmentStatusInput = builder.inputType('SetEnrollmentStatusInput', {
  fields: (t) => ({
    enrollmentId: t.id({ required: true, description: 'The enrollment’s global id.' }),
    status: t.field({
      type: EnrollmentStatusEnum,
      required: true,
      description: 'APPROVED or REJECTED (see the mutation for allowed changes).',
    }),
  }),
});

const SetEnrollmentStatusPayload = enrollmentPayload(
  'SetEnrollmentStatusPayload',
  'The enrollment with its new status.',
);

builder.mutationField('setEnrollmentStatus', (t) =>
  t.field({
    type: SetEnrollmentStatusPayload,
    description:
      'Approve or reject an enrollment: PENDING → APPROVED | REJECTED, APPROVED → REJECTED, REJECTED → APPROVED; anything else is INVALID_TRANSITION. ' +
      'Approving gives the enrollment a default referral link if it has none (existing links, and their codes, are kept). ' +
      'A BANNED partner’s enrollment, or one in an ARCHIVED program, cannot be approved.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SetEnrollmentStatusInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const enrollment = await setEnrollmentStatus(ctx.db.prisma, tenantOf(ctx), {
          enrollmentId: rowIdFrom(String(input.enrollmentId), 'Enrollment'),
          status: input.status,
        });
        ctx.clicks.forgetLink(); // the cached link facts carry the enrollment's status
        return { enrollmentId: enrollment.id };
      }),
  }),
);
