import { builder } from '../../graphql/builder.js';
import { EnrollmentStatusEnum } from '../../graphql/enums.js';
import { partnerKeyFields, partnerKeyFrom } from '../../graphql/partner-key.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { partnerFilter, rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import type { EnrollmentStatus } from '../../generated/prisma/enums.js';
import { programEnrollmentTotal } from '../stats/stats.graphql.js';
import { enrollPartner, REJECTION_REASON_MAX, setEnrollmentStatus } from './enrollment.service.js';
import { ANSWER_MAX, ANSWERS_MAX_BYTES } from '../../domain/application.js';
import type { Context } from '../../context.js';
import type { Prisma } from '../../generated/prisma/client.js';
import { filterId, guardedQuery } from '../reward/reward.graphql.js';
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
    answers: t.expose('answers', {
      type: 'JSON',
      nullable: true,
      description:
        'The answers to the program’s `applicationQuestions` given when enrolling: `{ questionKey: "answer" }`, trimmed, blank answers left out; null when none were sent.',
    }),
    appliedAt: t.expose('appliedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the enrollment was created PENDING (an application); null for one created APPROVED.',
    }),
    reviewedAt: t.expose('reviewedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When `setEnrollmentStatus` last approved or rejected it; null until then.',
    }),
    rejectionReason: t.exposeString('rejectionReason', {
      nullable: true,
      description:
        'Why it was REJECTED (`setEnrollmentStatus` with `reason`); null without one, and once approved again. The partner’s own credential reads it too.',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the status last changed.' }),
  }),
});

/**
 * Shared by `Program.enrollments` (a related connection: its total comes from the program
 * figures, one GROUP BY for every program of the page) and `Query.enrollments` (a count of its own).
 */
const EnrollmentConnection = builder.connectionObject(
  {
    type: EnrollmentRef,
    name: 'EnrollmentConnection',
    description: 'A page of enrollments.',
    fields: (t) => ({
      totalCount: t.int({
        description: 'How many enrollments match, on every page.',
        // Asking for the total alone loads no rows (Query.enrollments).
        extensions: { pothosPrismaTotalCount: true },
        resolve: (connection, _args, ctx) => {
          const { totalCount, parent, args } = connection as unknown as {
            totalCount?: () => number | Promise<number>;
            parent: { id: string };
            args: { status?: EnrollmentStatus | null };
          };
          return typeof totalCount === 'function' ? totalCount() : programEnrollmentTotal(ctx, parent.id, args.status);
        },
      }),
    }),
  },
  {
    name: 'EnrollmentEdge',
    description: 'An enrollment in a page of enrollments.',
    nodeField: { description: 'The enrollment.' },
  },
);

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
    EnrollmentConnection,
  ),
);

function enrollmentsWhere(
  ctx: Context,
  args: { status?: EnrollmentStatus | null; programId?: string | number | null },
): Prisma.EnrollmentWhereInput {
  const programId = filterId(args.programId, 'Program');
  return {
    ...tenantOf(ctx),
    ...(args.status ? { status: args.status } : {}),
    ...(programId ? { programId } : {}),
  };
}

builder.queryField('enrollments', (t) =>
  t.prismaConnection(
    {
      type: EnrollmentRef,
      cursor: 'id',
      description:
        'The enrollments of every program in the caller’s workspace and mode, oldest first (by `createdAt`, then id): with `status: PENDING`, the applications awaiting approval, longest waiting first. ' +
        '`programId` narrows to one program; an id that is malformed, of another type, or outside the caller’s workspace and mode matches nothing.',
      authScopes: { reader: true },
      args: {
        status: t.arg({ type: EnrollmentStatusEnum, description: 'Only enrollments in this status.' }),
        programId: t.arg.id({ description: 'Only this program’s enrollments.' }),
      },
      resolve: (query, _root, args, ctx) =>
        ctx.db.prisma.enrollment.findMany({
          ...guardedQuery(query),
          where: enrollmentsWhere(ctx, args),
          orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        }),
      totalCount: (_root, args, ctx) => ctx.db.prisma.enrollment.count({ where: enrollmentsWhere(ctx, args) }),
    },
    EnrollmentConnection,
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
  description:
    'Which partner (exactly one of `partnerId` or `partnerExternalId`) to put in which program, with the answers to its application questions.',
  fields: (t) => ({
    ...partnerKeyFields(t, 'The partner to enroll'),
    programId: t.id({ required: true, description: 'The program’s global id.' }),
    answers: t.field({
      type: 'JSON',
      description:
        `The answers to the program’s \`applicationQuestions\`: a JSON object \`{ questionKey: "answer" }\` of strings (null or blank: not answered), each at most ${ANSWER_MAX} characters, ${ANSWERS_MAX_BYTES / 1024} KiB in all. ` +
        'Every required question needs a non-blank answer; a key the program has no question for is refused. Both VALIDATION at ["input","answers","<key>"].',
    }),
  }),
});

const EnrollPartnerPayload = enrollmentPayload('EnrollPartnerPayload', 'The new enrollment.');

builder.mutationField('enrollPartner', (t) =>
  t.field({
    type: EnrollPartnerPayload,
    description:
      'Put a partner in a program: APPROVED with a default referral link when the program auto-approves partners, else PENDING (an application: `appliedAt` set, `enrollment.applied`). ' +
      'Answers are checked against the program’s `applicationQuestions`. Already enrolled: DUPLICATE. An ARCHIVED program or a BANNED partner: INVALID_TRANSITION. ' +
      'ADMIN credentials enroll any partner. A PARTNER credential applies for its own partner only (another partner, by either id, is NOT_FOUND), ' +
      'to an ACTIVE program only (else INVALID_TRANSITION), and its application is always PENDING, even where the program auto-approves partners.',
    // Declared here rather than as a builder scope: PARTNER credentials may apply for their own partner.
    authScopes: (_root, _args, ctx) => ctx.auth?.role === 'ADMIN' || ctx.auth?.role === 'PARTNER',
    args: { input: t.arg({ type: EnrollPartnerInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const auth = ctx.auth!;
        const enrollment = await enrollPartner(
          ctx.db.prisma,
          tenantOf(ctx),
          {
            ...partnerKeyFrom(input),
            programId: rowIdFrom(String(input.programId), 'Program'),
            answers: input.answers,
          },
          { partnerId: auth.role === 'PARTNER' ? (auth.partnerId ?? '') : null },
        );
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
    reason: t.string({
      description: `Why it is REJECTED, at most ${REJECTION_REASON_MAX} characters (trimmed; blank: none); kept as \`rejectionReason\`, which the partner can read. Only with REJECTED (else VALIDATION).`,
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
      'A BANNED partner’s enrollment, or one in an ARCHIVED program, cannot be approved. ' +
      'Sets `reviewedAt`; rejecting keeps `reason` as `rejectionReason`, approving clears it. Appends `enrollment.status_changed` (its payload carries `reason`).',
    authScopes: { admin: true },
    args: { input: t.arg({ type: SetEnrollmentStatusInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const enrollment = await setEnrollmentStatus(ctx.db.prisma, tenantOf(ctx), {
          enrollmentId: rowIdFrom(String(input.enrollmentId), 'Enrollment'),
          status: input.status,
          reason: input.reason,
        });
        ctx.clicks.forgetLink(); // the cached link facts carry the enrollment's status
        return { enrollmentId: enrollment.id };
      }),
  }),
);
