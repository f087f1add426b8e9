import { builder } from '../../graphql/builder.js';
import { AttributionModelEnum, ProgramStatusEnum, ProgramTypeEnum } from '../../graphql/enums.js';
import { MoneyInputRef, MoneyRef } from '../../graphql/money.js';
import { payloadType, withUserErrors } from '../../graphql/payload.js';
import { rowIdFrom, scopedKey, tenantOf } from '../../graphql/scope.js';
import { isUuid, NIL_UUID } from '../../lib/ids.js';
import {
  ANSWER_MAX,
  APPLICATION_QUESTIONS_MAX,
  type ApplicationQuestion,
  QUESTION_LABEL_MAX,
  storedQuestions,
} from '../../domain/application.js';
import { FraudRulesInputRef, FraudRulesRef } from '../review/fraud-rules.graphql.js';
import { createProgram, updateProgram } from './program.service.js';

const ApplicationQuestionRef = builder.objectRef<ApplicationQuestion>('ApplicationQuestion').implement({
  description: `A question partners answer when they apply to a program (\`enrollPartner(input: { answers })\`): the answer is a string of at most ${ANSWER_MAX} characters, under \`key\` in \`Enrollment.answers\`.`,
  fields: (t) => ({
    key: t.exposeString('key', {
      description:
        'The key of the answer in `answers`: a lower-case letter, then lower-case letters, digits or "_" (at most 64).',
    }),
    label: t.exposeString('label', { description: 'The question as partners read it (1–200 characters).' }),
    required: t.exposeBoolean('required', {
      description: 'Whether an application must answer it (with a non-blank answer).',
    }),
  }),
});

export const ApplicationQuestionInputRef = builder.inputType('ApplicationQuestionInput', {
  description: 'A question partners answer when they apply.',
  fields: (t) => ({
    key: t.string({
      required: true,
      description:
        'Unique in the program: a lower-case letter, then up to 63 lower-case letters, digits or "_" (e.g. "website").',
    }),
    label: t.string({ required: true, description: `1–${QUESTION_LABEL_MAX} characters (trimmed).` }),
    required: t.boolean({ defaultValue: false, description: 'Whether applications must answer it. Default false.' }),
  }),
});

const applicationQuestionsInputDescription = `At most ${APPLICATION_QUESTIONS_MAX}, in the order partners see them; keys unique.`;

export const ProgramRef = builder.prismaNode('Program', {
  description:
    'A referral program (customers refer friends) or an affiliate program (partners promote). A PARTNER credential sees only the programs its partner is enrolled in.',
  id: { field: 'id' },
  // A node outside the caller's scope is null, never an error.
  nullable: true,
  findUnique: (id, ctx) => ({
    ...scopedKey(id, ctx),
    ...(ctx.auth?.role === 'PARTNER' ? { enrollments: { some: { partnerId: ctx.auth.partnerId ?? NIL_UUID } } } : {}),
  }),
  authScopes: { authenticated: true },
  fields: (t) => ({
    name: t.exposeString('name', { description: 'For people: 1–200 characters.' }),
    type: t.expose('type', { type: ProgramTypeEnum, description: 'REFERRAL or AFFILIATE; fixed at creation.' }),
    status: t.expose('status', {
      type: ProgramStatusEnum,
      description: 'Only ACTIVE programs reward conversions. ARCHIVED is final.',
    }),
    currency: t.exposeString('currency', {
      description: 'Default ISO 4217 currency of the program (fixed at creation).',
    }),
    attributionWindowDays: t.exposeInt('attributionWindowDays', {
      description: 'How long after a click or code a signup is still attributed to the partner (1–3650 days).',
    }),
    holdDays: t.exposeInt('holdDays', {
      description: 'Days a reward stays CREATED before it is approved automatically (0–3650).',
    }),
    allowSelfReferral: t.exposeBoolean('allowSelfReferral', {
      description:
        'Whether a partner may refer themselves (same external id or email); otherwise such conversions are discarded.',
    }),
    autoApprovePartners: t.exposeBoolean('autoApprovePartners', {
      description: 'Whether new enrollments are APPROVED at once instead of PENDING.',
    }),
    attributionModel: t.expose('attributionModel', { type: AttributionModelEnum }),
    destinationUrl: t.exposeString('destinationUrl', {
      nullable: true,
      description: 'Where referral links of this program send visitors, unless a link has its own destination.',
    }),
    allowedDestinationHosts: t.exposeStringList('allowedDestinationHosts', {
      description:
        'The hosts a referral link created by a PARTNER credential may send visitors to, so that a partner cannot turn `/r/{code}` into an open redirect. ' +
        'Each entry is a host name ("shop.example.com", stored lower-case, IDNs in punycode), an IP address, or "*.example.com" for every subdomain of example.com at any depth (not example.com itself: list both for both). ' +
        'Matched against the host of the link’s destination exactly; the scheme (http or https) and the port are not compared. ' +
        'Empty (the default): only the host of this program’s `destinationUrl`, or of the server’s public URL when the program has none. ' +
        'ADMIN keys may give a link any destination; changing this list does not touch existing links.',
    }),
    minimumPayout: t.field({
      type: MoneyRef,
      nullable: true,
      description:
        'The smallest payout createPayouts makes for this program’s partners (when run with this programId, in this currency, without a minimumAmount of its own); null: any positive balance. A minimum in another currency than the run’s does not apply to it: currencies are never converted.',
      resolve: (p) =>
        p.minimumPayoutAmount !== null && p.minimumPayoutCurrency !== null
          ? { amount: p.minimumPayoutAmount, currency: p.minimumPayoutCurrency }
          : null,
    }),
    applicationQuestions: t.field({
      type: [ApplicationQuestionRef],
      description:
        'What partners answer when they apply (`enrollPartner` with `answers`), in order; empty when the program asks nothing. ' +
        'Changing them does not touch the answers existing enrollments hold.',
      resolve: (p) => storedQuestions(p.applicationQuestions),
    }),
    fraudRules: t.field({
      type: FraudRulesRef,
      description:
        'What flags a conversion for review (its rewards then wait for an admin’s decision). ADMIN and READ_ONLY credentials only: a PARTNER credential asking gets FORBIDDEN (the rules are the company’s defence).',
      authScopes: { reader: true },
      resolve: (p) => p,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime', description: 'When the program was created.' }),
    updatedAt: t.expose('updatedAt', {
      type: 'DateTime',
      description: 'When the program’s settings or status last changed.',
    }),
  }),
});

builder.queryField('program', (t) =>
  t.prismaField({
    type: ProgramRef,
    nullable: true,
    description: 'A program by global id; null when it does not exist in the caller’s workspace and mode.',
    authScopes: { reader: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, args, ctx) => {
      // Spread before the null check: an id that cannot match is not an unused query.
      const selection = { ...query };
      const id = rowIdFrom(String(args.id), 'Program');
      return id ? ctx.db.prisma.program.findUnique({ ...selection, where: scopedKey(id, ctx) }) : null;
    },
  }),
);

builder.queryField('programs', (t) =>
  t.prismaConnection(
    {
      type: ProgramRef,
      cursor: 'id',
      description: 'The programs of the caller’s workspace and mode, newest first (by id; ids are time-ordered).',
      authScopes: { reader: true },
      args: {
        status: t.arg({ type: ProgramStatusEnum, required: false, description: 'Only programs in this status.' }),
      },
      resolve: (query, _root, args, ctx) => {
        // A cursor is opaque but client-supplied: never let a non-UUID reach the uuid column.
        const cursor =
          query.cursor?.id !== undefined && !isUuid(String(query.cursor.id)) ? { id: NIL_UUID } : query.cursor;
        return ctx.db.prisma.program.findMany({
          ...query,
          ...(cursor ? { cursor } : {}),
          where: { ...tenantOf(ctx), ...(args.status ? { status: args.status } : {}) },
          orderBy: { id: 'desc' },
        });
      },
      totalCount: (_parent, args, ctx) =>
        ctx.db.prisma.program.count({ where: { ...tenantOf(ctx), ...(args.status ? { status: args.status } : {}) } }),
    },
    { name: 'ProgramConnection', description: 'A page of programs.' },
    { name: 'ProgramEdge', description: 'A program in a page of programs.' },
  ),
);

const CreateProgramInput = builder.inputType('CreateProgramInput', {
  description: 'A new program. Omitted settings take the defaults shown.',
  fields: (t) => ({
    name: t.string({ required: true, description: '1–200 characters (trimmed).' }),
    type: t.field({
      type: ProgramTypeEnum,
      required: true,
      description: 'REFERRAL (customers refer friends) or AFFILIATE (partners promote).',
    }),
    currency: t.string({
      required: true,
      description: 'ISO 4217 code, e.g. "USD" (case-insensitive). Cannot be changed later.',
    }),
    status: t.field({ type: ProgramStatusEnum, description: 'DRAFT, ACTIVE or PAUSED; default ACTIVE.' }),
    attributionWindowDays: t.int({ description: '1–3650; default 30.' }),
    holdDays: t.int({ description: '0–3650; default 0.' }),
    allowSelfReferral: t.boolean({ description: 'Default false.' }),
    autoApprovePartners: t.boolean({ description: 'Default true.' }),
    attributionModel: t.field({ type: AttributionModelEnum, description: 'Default FIRST_TOUCH.' }),
    destinationUrl: t.string({
      description:
        'Absolute http(s) URL, at most 2048 characters, without user name or password; stored normalised (WHATWG URL serialisation). Default none.',
    }),
    allowedDestinationHosts: t.stringList({
      description:
        'Hosts a PARTNER credential’s links may point at (see `Program.allowedDestinationHosts`): host names, IP addresses or "*.example.com"; no scheme, port or path; at most 50. Default: empty (the host of `destinationUrl`, else of the server’s public URL).',
    }),
    minimumPayout: t.field({
      type: MoneyInputRef,
      description:
        'The smallest payout createPayouts makes for this program’s partners (see `Program.minimumPayout`); positive. Default: none.',
    }),
    applicationQuestions: t.field({
      type: [ApplicationQuestionInputRef],
      description: `What partners answer when they apply. ${applicationQuestionsInputDescription} Default: none.`,
    }),
    fraudRules: t.field({
      type: FraudRulesInputRef,
      description:
        'Fraud rules (see `FraudRules`); omitted rules take their defaults: same IP, email domain and disposable email on, velocity off.',
    }),
  }),
});

const UpdateProgramInput = builder.inputType('UpdateProgramInput', {
  description:
    'A partial update: omitted fields keep their values (null is refused, except for `destinationUrl`, which null clears, `allowedDestinationHosts`, which null resets, and `applicationQuestions`, which null removes). The currency cannot change.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The program’s global id.' }),
    name: t.string({ description: '1–200 characters (trimmed).' }),
    status: t.field({
      type: ProgramStatusEnum,
      description:
        'DRAFT → ACTIVE | ARCHIVED; ACTIVE → PAUSED | ARCHIVED; PAUSED → ACTIVE | ARCHIVED; ARCHIVED is final. The current status is a no-op.',
    }),
    attributionWindowDays: t.int({ description: '1–3650.' }),
    holdDays: t.int({ description: '0–3650.' }),
    allowSelfReferral: t.boolean({ description: 'Whether partners may refer themselves.' }),
    attributionModel: t.field({
      type: AttributionModelEnum,
      description: 'Applies to conversions from now on; referrals keep their partner until a conversion moves them.',
    }),
    autoApprovePartners: t.boolean({
      description: 'Whether new enrollments are approved at once (existing ones are not touched).',
    }),
    destinationUrl: t.string({
      description: 'Absolute http(s) URL, at most 2048 characters, without user name or password; null removes it.',
    }),
    allowedDestinationHosts: t.stringList({
      description:
        'Replaces the hosts a PARTNER credential’s links may point at (see `Program.allowedDestinationHosts`); null or [] goes back to the default (the host of `destinationUrl`, else of the server’s public URL). Existing links are not touched.',
    }),
    minimumPayout: t.field({
      type: MoneyInputRef,
      description: 'Replaces the minimum payout; null removes it.',
    }),
    applicationQuestions: t.field({
      type: [ApplicationQuestionInputRef],
      description: `Replaces the questions; null or [] removes them. ${applicationQuestionsInputDescription} Existing enrollments keep their answers.`,
    }),
    fraudRules: t.field({
      type: FraudRulesInputRef,
      description:
        'Changes the fraud rules given, keeps the others (see `FraudRulesInput`). Applies to conversions recorded from now on; items already opened stay.',
    }),
  }),
});

const programPayload = (name: string, description: string) =>
  payloadType<{ programId: string }>(name, description, (t) => ({
    program: t.prismaField({
      type: ProgramRef,
      nullable: true,
      description: 'The program; null when the mutation was refused.',
      resolve: (query, p, _args, ctx) => {
        // Spread before the null check: a refused mutation has no program, and that is not an unused query.
        const selection = { ...query };
        return p.programId
          ? ctx.db.prisma.program.findUnique({ ...selection, where: scopedKey(p.programId, ctx) })
          : null;
      },
    }),
  }));

const CreateProgramPayload = programPayload('CreateProgramPayload', 'The new program, or why it was refused.');
const UpdateProgramPayload = programPayload(
  'UpdateProgramPayload',
  'The updated program, or why the update was refused (then nothing changed).',
);

builder.mutationField('createProgram', (t) =>
  t.field({
    type: CreateProgramPayload,
    description: 'Create a program in the caller’s workspace and mode.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: CreateProgramInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const program = await createProgram(ctx.db.prisma, tenantOf(ctx), input);
        return { programId: program.id };
      }),
  }),
);

builder.mutationField('updateProgram', (t) =>
  t.field({
    type: UpdateProgramPayload,
    description:
      'Change a program’s settings or status. Refused status changes answer INVALID_TRANSITION; an ARCHIVED program cannot change.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: UpdateProgramInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      withUserErrors(ctx, async () => {
        const { id, ...changes } = input;
        const program = await updateProgram(ctx.db.prisma, tenantOf(ctx), rowIdFrom(String(id), 'Program'), changes);
        ctx.clicks.forgetLink(); // the cached link facts carry the program's status and destination
        return { programId: program.id };
      }),
  }),
);
