import type { Prisma, PrismaClient, Program } from '../../generated/prisma/client.js';
import type { AttributionModel, ProgramStatus, ProgramType } from '../../generated/prisma/enums.js';
import { type ApplicationQuestion, checkApplicationQuestions, storedQuestions } from '../../domain/application.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { ALLOWED_HOSTS_MAX, normalizeDestinationUrl, normalizeHostPattern } from '../../lib/destination-url.js';
import { parseCurrency, parseDecimal } from '../../lib/money.js';
import { appendEvent, inTransaction } from '../events/outbox.js';
import { programCreated, programUpdated } from '../events/payloads.js';
import { DEFAULT_FRAUD_RULES, MAX_CONVERSIONS_PER_HOUR } from '../review/fraud-rules.js';

/** The Prisma client or an interactive transaction's client. */
export type Db = PrismaClient | Prisma.TransactionClient;

export const PROGRAM_NAME_MAX = 200;
export const ATTRIBUTION_WINDOW_DAYS = { min: 1, max: 3650 } as const;
export const HOLD_DAYS = { min: 0, max: 3650 } as const;

/**
 * Status changes a program may make. ARCHIVED is final: an archived program cannot change at all.
 * Going back to DRAFT is never allowed: a program that has been live keeps its history.
 */
export const PROGRAM_TRANSITIONS: Readonly<Record<ProgramStatus, readonly ProgramStatus[]>> = {
  DRAFT: ['ACTIVE', 'ARCHIVED'],
  ACTIVE: ['PAUSED', 'ARCHIVED'],
  PAUSED: ['ACTIVE', 'ARCHIVED'],
  ARCHIVED: [],
};

export function canTransition(from: ProgramStatus, to: ProgramStatus): boolean {
  return PROGRAM_TRANSITIONS[from].includes(to);
}

export interface CreateProgramInput {
  name: string;
  type: ProgramType;
  currency: string;
  status?: ProgramStatus | null;
  attributionWindowDays?: number | null;
  holdDays?: number | null;
  allowSelfReferral?: boolean | null;
  autoApprovePartners?: boolean | null;
  attributionModel?: AttributionModel | null;
  destinationUrl?: string | null;
  allowedDestinationHosts?: readonly string[] | null;
  minimumPayout?: { amount: string; currency: string } | null;
  applicationQuestions?: readonly ApplicationQuestionInput[] | null;
  fraudRules?: FraudRulesInput | null;
}

/**
 * A program's fraud rules as the API names them (review/fraud-rules.ts). On creation an omitted
 * (or null) rule takes its default; on update an omitted rule keeps its value, a boolean cannot be
 * null, and `maxConversionsPerPartnerPerHour: null` turns the velocity rule off.
 */
export interface FraudRulesInput {
  sameIpAsPartner?: boolean | null;
  selfReferralEmailDomain?: boolean | null;
  disposableEmail?: boolean | null;
  maxConversionsPerPartnerPerHour?: number | null;
}

interface FraudColumns {
  fraudSameIp?: boolean;
  fraudEmailDomain?: boolean;
  fraudDisposableEmail?: boolean;
  fraudMaxConversionsPerHour?: number | null;
}

const FRAUD_BOOLEANS = [
  ['sameIpAsPartner', 'fraudSameIp'],
  ['selfReferralEmailDomain', 'fraudEmailDomain'],
  ['disposableEmail', 'fraudDisposableEmail'],
] as const;

/** The columns a FraudRulesInput changes: on update (`creating` false) only what is given. */
function checkFraudRules(v: Validator, input: FraudRulesInput, creating: boolean): FraudColumns {
  const path = (name: string) => ['input', 'fraudRules', name];
  const columns: FraudColumns = {};
  for (const [name, column] of FRAUD_BOOLEANS) {
    const value = input[name];
    if (value === null && !creating) {
      v.check(false, path(name), `\`fraudRules.${name}\` cannot be null: omit it to keep the current value.`);
    } else if (value != null) {
      columns[column] = value;
    }
  }
  const max = input.maxConversionsPerPartnerPerHour;
  if (max != null) {
    v.check(
      Number.isInteger(max) && max >= MAX_CONVERSIONS_PER_HOUR.min && max <= MAX_CONVERSIONS_PER_HOUR.max,
      path('maxConversionsPerPartnerPerHour'),
      `\`fraudRules.maxConversionsPerPartnerPerHour\` must be between ${MAX_CONVERSIONS_PER_HOUR.min} and ${MAX_CONVERSIONS_PER_HOUR.max}; got ${max}. Null turns the rule off.`,
    );
    columns.fraudMaxConversionsPerHour = max;
  } else if (max === null && !creating) {
    columns.fraudMaxConversionsPerHour = null;
  }
  return columns;
}

/** A question partners answer when they apply (`required` defaults to false). */
export interface ApplicationQuestionInput {
  key: string;
  label: string;
  required?: boolean | null;
}

/**
 * A partial update: `undefined` keeps a value. `null` clears `destinationUrl`, and resets
 * `allowedDestinationHosts` to its default (like `[]`); for every other field (they cannot be
 * empty) null is refused, so a client bug never wipes a setting.
 */
export interface UpdateProgramInput {
  name?: string | null;
  status?: ProgramStatus | null;
  attributionWindowDays?: number | null;
  holdDays?: number | null;
  allowSelfReferral?: boolean | null;
  autoApprovePartners?: boolean | null;
  attributionModel?: AttributionModel | null;
  destinationUrl?: string | null;
  allowedDestinationHosts?: readonly string[] | null;
  /** null clears it. */
  minimumPayout?: { amount: string; currency: string } | null;
  /** Replaces the questions; null (like []) removes them. */
  applicationQuestions?: readonly ApplicationQuestionInput[] | null;
  /** Only the rules given change (see FraudRulesInput); null is refused. */
  fraudRules?: FraudRulesInput | null;
}

const field = (name: string): string[] => ['input', name];

function checkName(v: Validator, name: string): string {
  const trimmed = name.trim();
  v.check(
    trimmed.length >= 1 && trimmed.length <= PROGRAM_NAME_MAX,
    field('name'),
    `A program name must be 1 to ${PROGRAM_NAME_MAX} characters long (after trimming spaces).`,
  );
  return trimmed;
}

/** A minimum payout: a positive amount in a known currency (any currency: it applies to batch runs in that currency only). */
function checkMinimumPayout(
  v: Validator,
  money: { amount: string; currency: string },
): { minimumPayoutAmount: bigint; minimumPayoutCurrency: string } | null {
  try {
    const currency = parseCurrency(money.currency, ['input', 'minimumPayout', 'currency']);
    const amount = parseDecimal(money.amount, currency, ['input', 'minimumPayout', 'amount']);
    v.check(amount > 0n, ['input', 'minimumPayout', 'amount'], 'A minimum payout must be positive (omit it for none).');
    return { minimumPayoutAmount: amount, minimumPayoutCurrency: currency };
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    v.add(error);
    return null;
  }
}

function checkRange(
  v: Validator,
  name: string,
  value: number,
  range: { min: number; max: number },
  unit: string,
): void {
  v.check(
    value >= range.min && value <= range.max,
    field(name),
    `\`${name}\` must be between ${range.min} and ${range.max} ${unit}; got ${value}.`,
  );
}

/** A destination URL in its stored form (normalizeDestinationUrl); the value given when invalid (the error is recorded). */
function checkDestinationUrl(v: Validator, value: string): string {
  const normalized = normalizeDestinationUrl(value);
  if ('problem' in normalized) {
    v.check(false, field('destinationUrl'), normalized.problem);
    return value;
  }
  return normalized.href;
}

/** Host patterns in their stored form, without duplicates; each bad entry is its own error at its index. */
function checkAllowedHosts(v: Validator, values: readonly string[]): string[] {
  v.check(
    values.length <= ALLOWED_HOSTS_MAX,
    field('allowedDestinationHosts'),
    `\`allowedDestinationHosts\` takes at most ${ALLOWED_HOSTS_MAX} hosts; got ${values.length}. Use "*.example.com" for the subdomains of a domain.`,
  );
  const patterns: string[] = [];
  values.slice(0, ALLOWED_HOSTS_MAX).forEach((value, i) => {
    const normalized = normalizeHostPattern(value);
    if ('problem' in normalized) v.check(false, [...field('allowedDestinationHosts'), String(i)], normalized.problem);
    else if (!patterns.includes(normalized.pattern)) patterns.push(normalized.pattern);
  });
  return patterns;
}

/** Create a program with the contract's defaults (ACTIVE, 30 days window, no hold, no self-referral, auto-approve). */
export async function createProgram(db: Db, tenant: Tenant, input: CreateProgramInput): Promise<Program> {
  const v = new Validator();
  const name = checkName(v, input.name);
  let currency: string | null = null;
  try {
    currency = parseCurrency(input.currency, field('currency'));
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    v.add(error);
  }
  v.check(
    input.status !== 'ARCHIVED',
    field('status'),
    'A program cannot be created ARCHIVED: create it as DRAFT, ACTIVE or PAUSED.',
  );
  if (input.attributionWindowDays != null)
    checkRange(v, 'attributionWindowDays', input.attributionWindowDays, ATTRIBUTION_WINDOW_DAYS, 'days');
  if (input.holdDays != null) checkRange(v, 'holdDays', input.holdDays, HOLD_DAYS, 'days');
  const destinationUrl = input.destinationUrl != null ? checkDestinationUrl(v, input.destinationUrl) : null;
  const allowedDestinationHosts = input.allowedDestinationHosts
    ? checkAllowedHosts(v, input.allowedDestinationHosts)
    : [];
  const minimumPayout = input.minimumPayout ? checkMinimumPayout(v, input.minimumPayout) : null;
  const applicationQuestions: ApplicationQuestion[] = input.applicationQuestions
    ? checkApplicationQuestions(v, input.applicationQuestions, field('applicationQuestions'))
    : [];
  const fraud = input.fraudRules ? checkFraudRules(v, input.fraudRules, true) : {};
  v.throwIfAny();

  return inTransaction(db, async (tx) => {
    const program = await tx.program.create({
      data: {
        ...tenant,
        name,
        type: input.type,
        currency: currency!,
        status: input.status ?? 'ACTIVE',
        attributionWindowDays: input.attributionWindowDays ?? 30,
        holdDays: input.holdDays ?? 0,
        allowSelfReferral: input.allowSelfReferral ?? false,
        autoApprovePartners: input.autoApprovePartners ?? true,
        attributionModel: input.attributionModel ?? 'FIRST_TOUCH',
        destinationUrl,
        allowedDestinationHosts,
        ...minimumPayout,
        applicationQuestions: applicationQuestions as unknown as Prisma.InputJsonValue,
        fraudSameIp: DEFAULT_FRAUD_RULES.sameIp,
        fraudEmailDomain: DEFAULT_FRAUD_RULES.emailDomain,
        fraudDisposableEmail: DEFAULT_FRAUD_RULES.disposableEmail,
        fraudMaxConversionsPerHour: DEFAULT_FRAUD_RULES.maxConversionsPerHour,
        ...fraud,
      },
    });
    await appendEvent(tx, tenant, programCreated(program));
    return program;
  });
}

/** The program with this row id in the tenant, or null. */
export function findProgram(db: Db, tenant: Tenant, id: string | null): Promise<Program | null> {
  if (!id) return Promise.resolve(null);
  return db.program.findUnique({ where: { id_workspaceId_mode: { id, ...tenant } } });
}

/**
 * Apply a partial update. Status changes follow PROGRAM_TRANSITIONS (asking for the current status
 * is a no-op); an archived program refuses every change. `id` is the row id (null: not found).
 */
export async function updateProgram(
  db: Db,
  tenant: Tenant,
  id: string | null,
  input: UpdateProgramInput,
): Promise<Program> {
  const v = new Validator();
  const data: Prisma.ProgramUpdateManyMutationInput = {};
  for (const key of [
    'name',
    'status',
    'attributionWindowDays',
    'holdDays',
    'allowSelfReferral',
    'autoApprovePartners',
    'attributionModel',
  ] as const) {
    v.check(input[key] !== null, field(key), `\`${key}\` cannot be null: omit it to keep the current value.`);
  }
  if (input.name != null) data.name = checkName(v, input.name);
  if (input.attributionWindowDays != null) {
    checkRange(v, 'attributionWindowDays', input.attributionWindowDays, ATTRIBUTION_WINDOW_DAYS, 'days');
    data.attributionWindowDays = input.attributionWindowDays;
  }
  if (input.holdDays != null) {
    checkRange(v, 'holdDays', input.holdDays, HOLD_DAYS, 'days');
    data.holdDays = input.holdDays;
  }
  if (input.allowSelfReferral != null) data.allowSelfReferral = input.allowSelfReferral;
  if (input.autoApprovePartners != null) data.autoApprovePartners = input.autoApprovePartners;
  if (input.attributionModel != null) data.attributionModel = input.attributionModel;
  if (input.destinationUrl !== undefined)
    data.destinationUrl = input.destinationUrl === null ? null : checkDestinationUrl(v, input.destinationUrl);
  if (input.allowedDestinationHosts !== undefined) {
    data.allowedDestinationHosts =
      input.allowedDestinationHosts === null ? [] : checkAllowedHosts(v, input.allowedDestinationHosts);
  }
  if (input.minimumPayout !== undefined) {
    const minimum = input.minimumPayout === null ? null : checkMinimumPayout(v, input.minimumPayout);
    data.minimumPayoutAmount = minimum?.minimumPayoutAmount ?? null;
    data.minimumPayoutCurrency = minimum?.minimumPayoutCurrency ?? null;
  }
  if (input.applicationQuestions !== undefined) {
    const questions =
      input.applicationQuestions === null
        ? []
        : checkApplicationQuestions(v, input.applicationQuestions, field('applicationQuestions'));
    data.applicationQuestions = questions as unknown as Prisma.InputJsonValue;
  }
  if (input.fraudRules === null) {
    v.check(false, field('fraudRules'), '`fraudRules` cannot be null: omit it, or give only the rules to change.');
  } else if (input.fraudRules !== undefined) {
    Object.assign(data, checkFraudRules(v, input.fraudRules, false));
  }

  // A status guard on the write makes a concurrent status change visible: retry against the new state.
  for (let attempt = 0; ; attempt++) {
    const program = await findProgram(db, tenant, id);
    if (!program) throw notFound('Program');
    v.throwIfAny();

    const changes = changedKeys(program, data, input.status ?? undefined);
    if (changes.length === 0) return program;
    if (program.status === 'ARCHIVED') {
      const asked =
        input.status && input.status !== program.status
          ? `change to ${input.status}`
          : `be edited (asked: ${changes.join(', ')})`;
      throw new DomainError(
        'INVALID_TRANSITION',
        `Program "${program.name}" is ARCHIVED, which is final: it cannot ${asked}.`,
        input.status ? field('status') : field('id'),
      );
    }
    const write: Prisma.ProgramUpdateManyMutationInput = { ...data };
    if (input.status && input.status !== program.status) {
      if (!canTransition(program.status, input.status)) {
        throw new DomainError(
          'INVALID_TRANSITION',
          `Program "${program.name}" is ${program.status}: it cannot change to ${input.status} (allowed: ${PROGRAM_TRANSITIONS[program.status].join(', ')}).`,
          field('status'),
        );
      }
      write.status = input.status;
    }
    const updated = await inTransaction(db, async (tx) => {
      const { count } = await tx.program.updateMany({
        where: { id: program.id, ...tenant, status: program.status },
        data: write,
      });
      if (count !== 1) return null;
      const after = (await findProgram(tx, tenant, program.id))!;
      await appendEvent(tx, tenant, programUpdated(program, after, changes));
      return after;
    });
    if (updated) return updated;
    if (attempt >= 3) throw new Error(`Program ${program.id} kept changing during the update.`);
  }
}

function changedKeys(
  program: Program,
  data: Prisma.ProgramUpdateManyMutationInput,
  status: ProgramStatus | undefined,
): string[] {
  // Lists compare item by item; the questions as { key, label, required } in order (jsonb
  // reorders the keys of the stored objects, so both sides are read through storedQuestions).
  const same = (key: string, a: unknown, b: unknown) =>
    key === 'applicationQuestions'
      ? JSON.stringify(storedQuestions(a)) === JSON.stringify(storedQuestions(b))
      : Array.isArray(a) && Array.isArray(b)
        ? a.length === b.length && a.every((x, i) => x === b[i])
        : a === b;
  const changed = Object.entries(data)
    .filter(([key, value]) => !same(key, program[key as keyof Program], value))
    // The two columns of a minimum payout are one field of the API, the four fraud columns another.
    .map(([key]) => (key.startsWith('minimumPayout') ? 'minimumPayout' : key.startsWith('fraud') ? 'fraudRules' : key))
    .filter((key, i, all) => all.indexOf(key) === i);
  if (status && status !== program.status) changed.unshift('status');
  return changed;
}
