import type { Prisma, PrismaClient, Program, Tier } from '../../generated/prisma/client.js';
import type { TierMetric } from '../../generated/prisma/enums.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { prismaSql } from '../../lib/sql.js';
import { appendEvents, type NewEvent } from '../events/outbox.js';
import { tierCreated, tierDeleted, tierUpdated } from '../events/payloads.js';
import { findProgram } from '../program/program.service.js';
import {
  checkRuleOverrides,
  MAX_OVERRIDES,
  type CheckedOverride,
  type RuleOverrideInput,
} from '../program/rule-override.service.js';
import { evaluateTiers, lockProgramTiers, tierChangedEvents } from './evaluate.js';

// createTier, updateTier, deleteTier (README.md). Each runs in one transaction holding the
// program's tier lock (evaluate.ts), and ends by moving the program's partners to the tier they
// reach under the new set of tiers (up and down), with a `tier.changed` event per partner moved.

export const TIER_NAME_MAX = 100;
export const TIER_THRESHOLD = { min: 1, max: 1_000_000_000 } as const;
export const TIER_PERIOD_DAYS = { min: 1, max: 3650 } as const;
export const DEFAULT_PERIOD_DAYS = 90;
/** At most this many tiers per program. */
export const MAX_TIERS = 20;

/** Tier mutations may wait for the program's tier lock and move many partners. */
const TIER_TX_OPTIONS = { maxWait: 10_000, timeout: 60_000 } as const;

export interface CreateTierInput {
  /** Row id; null when the given global id was malformed or of another type. */
  programId: string | null;
  name: string;
  metric: TierMetric;
  threshold: number;
  periodDays?: number | null;
  overrides: readonly RuleOverrideInput[];
}

/** `undefined`: unchanged. `null` is refused for every field but `overrides` (null: unchanged). */
export interface UpdateTierInput {
  /** Row id; null when the given global id was malformed or of another type. */
  id: string | null;
  name?: string | null;
  metric?: TierMetric | null;
  threshold?: number | null;
  periodDays?: number | null;
  /** The whole new set (an empty list removes them all); null/undefined: unchanged. */
  overrides?: readonly RuleOverrideInput[] | null;
}

const field = (...path: string[]) => ['input', ...path];

/** The checked scalar fields (name trimmed); every problem on `v`. */
function checkFields(
  v: Validator,
  input: { name?: string | null; threshold?: number | null; periodDays?: number | null; metric?: TierMetric | null },
  required: boolean,
): void {
  const missing = (key: string, value: unknown) => {
    if (value === null || (required && value === undefined)) {
      v.check(false, field(key), `\`${key}\` cannot be null; leave it out to keep the current value.`);
      return true;
    }
    return value === undefined;
  };
  if (!missing('name', input.name)) {
    const name = input.name!.trim();
    v.check(
      name.length >= 1 && name.length <= TIER_NAME_MAX,
      field('name'),
      `A tier’s name is 1 to ${TIER_NAME_MAX} characters long (after trimming spaces).`,
    );
  }
  if (!missing('threshold', input.threshold)) {
    const t = input.threshold!;
    v.check(
      Number.isInteger(t) && t >= TIER_THRESHOLD.min && t <= TIER_THRESHOLD.max,
      field('threshold'),
      `\`threshold\` must be ${TIER_THRESHOLD.min} to ${TIER_THRESHOLD.max} (converted referrals, or revenue in whole units of the program’s currency); got ${t}.`,
    );
  }
  if (input.periodDays !== undefined && !missing('periodDays', input.periodDays)) {
    const d = input.periodDays!;
    v.check(
      Number.isInteger(d) && d >= TIER_PERIOD_DAYS.min && d <= TIER_PERIOD_DAYS.max,
      field('periodDays'),
      `\`periodDays\` must be ${TIER_PERIOD_DAYS.min} to ${TIER_PERIOD_DAYS.max} days; got ${d}.`,
    );
  }
  if (input.metric !== undefined) missing('metric', input.metric);
}

function checkOverrideCount(v: Validator, overrides: readonly unknown[] | null | undefined): void {
  v.check(
    !overrides || overrides.length <= MAX_OVERRIDES,
    field('overrides'),
    `A tier takes at most ${MAX_OVERRIDES} overrides; got ${overrides?.length}.`,
    'LIMIT_EXCEEDED',
  );
}

const notArchived = (program: Program, what: string, at: string[]) => {
  if (program.status === 'ARCHIVED') {
    throw new DomainError(
      'INVALID_TRANSITION',
      `Program "${program.name}" is ARCHIVED: ${what} (only DRAFT, ACTIVE and PAUSED programs can change).`,
      at,
    );
  }
};

/**
 * The rules a tier's name, metric and threshold must keep among the program's other tiers
 * (`others`): one metric per program (the highest tier reached is then well defined), no two
 * tiers with the same name (ignoring case) or threshold, at most MAX_TIERS.
 */
function checkAmongOthers(
  v: Validator,
  others: readonly Tier[],
  tier: { name: string; metric: TierMetric; threshold: number },
  changed: { name: boolean; metric: boolean; threshold: boolean },
): void {
  const other = others.find((o) => o.metric !== tier.metric);
  if (changed.metric && other) {
    v.check(
      false,
      field('metric'),
      `The program’s tiers count ${other.metric} ("${other.name}" does); a program’s tiers share one metric, so that the highest tier a partner reaches is well defined. Use ${other.metric}, or change the other tiers first.`,
    );
  }
  const sameName = others.find((o) => o.name.toLowerCase() === tier.name.toLowerCase());
  if (changed.name && sameName) {
    v.check(
      false,
      field('name'),
      `The program already has a tier named "${sameName.name}"; give each tier its own name.`,
      'DUPLICATE',
    );
  }
  const sameThreshold = others.find((o) => o.threshold === tier.threshold);
  if (changed.threshold && sameThreshold) {
    v.check(
      false,
      field('threshold'),
      `Tier "${sameThreshold.name}" already has threshold ${tier.threshold}; tiers of a program have different thresholds (the higher one wins).`,
      'DUPLICATE',
    );
  }
}

/** Every partner of the program to the tier it reaches now (up and down): the events of the moves. */
async function reevaluate(
  tx: Prisma.TransactionClient,
  tenant: Tenant,
  program: Program,
  metric: TierMetric | null,
  withoutTierId?: string,
): Promise<NewEvent[]> {
  if (!metric) return [];
  const changes = await evaluateTiers(prismaSql(tx), tenant, {
    programId: program.id,
    metric,
    currency: program.currency,
    now: new Date(),
    direction: 'both',
    withoutTierId,
  });
  return tierChangedEvents(changes);
}

const overrideRows = (checked: readonly CheckedOverride[], tierId: string) =>
  checked.map((row) => ({ ...row, tierId }));

/**
 * Add a tier to a program that is not ARCHIVED. Its partners are evaluated at once: those who
 * reach it (and no higher tier) move to it, each with a `tier.changed` event; appends `tier.created`.
 */
export async function createTier(prisma: PrismaClient, tenant: Tenant, input: CreateTierInput): Promise<Tier> {
  const v = new Validator();
  // periodDays: null takes the default, like leaving it out.
  checkFields(v, { ...input, periodDays: input.periodDays ?? undefined }, true);
  checkOverrideCount(v, input.overrides);
  v.throwIfAny();
  const name = input.name.trim();

  return prisma.$transaction(async (tx) => {
    const program = await findProgram(tx, tenant, input.programId);
    if (!program) throw notFound('Program', field('programId'));
    notArchived(program, 'it cannot get a new tier', field('programId'));
    await lockProgramTiers(prismaSql(tx), tenant, program.id);
    const others = await tx.tier.findMany({ where: { ...tenant, programId: program.id } });
    v.check(
      others.length < MAX_TIERS,
      field('programId'),
      `A program has at most ${MAX_TIERS} tiers; this one has ${others.length}.`,
      'LIMIT_EXCEEDED',
    );
    checkAmongOthers(
      v,
      others,
      { name, metric: input.metric, threshold: input.threshold },
      { name: true, metric: true, threshold: true },
    );
    const checked = await checkRuleOverrides(tx, v, tenant, program.id, input.overrides, 'tier');
    v.throwIfAny();

    const tier = await tx.tier.create({
      data: {
        ...tenant,
        programId: program.id,
        name,
        metric: input.metric,
        threshold: input.threshold,
        periodDays: input.periodDays ?? DEFAULT_PERIOD_DAYS,
      },
    });
    if (checked.length) await tx.rewardRuleOverride.createMany({ data: overrideRows(checked, tier.id) });
    const moves = await reevaluate(tx, tenant, program, tier.metric);
    await appendEvents(tx, tenant, [tierCreated(tier, checked.length), ...moves]);
    return tier;
  }, TIER_TX_OPTIONS);
}

/** An override as compared for "did the set change" (any version of a rule is the same override). */
const overrideKey = (
  o: Pick<CheckedOverride, 'ruleLineageId' | 'disabled' | 'fixedAmount' | 'percentageBasisPoints'>,
) => `${o.ruleLineageId}:${o.disabled}:${o.fixedAmount ?? ''}:${o.percentageBasisPoints ?? ''}`;
const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().every((key, i) => key === [...b].sort()[i]);

/**
 * Change a tier: fields not given keep their values; `overrides` replaces the whole set. A change
 * of metric, threshold or period re-evaluates the program's partners (up and down); a change of
 * name or overrides only applies from the next conversion. Nothing changed: no write, no event.
 */
export async function updateTier(prisma: PrismaClient, tenant: Tenant, input: UpdateTierInput): Promise<Tier> {
  const v = new Validator();
  checkFields(v, input, false);
  checkOverrideCount(v, input.overrides);
  v.throwIfAny();

  return prisma.$transaction(async (tx) => {
    const found = input.id
      ? await tx.tier.findUnique({ where: { id_workspaceId_mode: { id: input.id, ...tenant } } })
      : null;
    if (!found) throw notFound('Tier');
    const program = (await findProgram(tx, tenant, found.programId))!;
    notArchived(program, 'its tiers cannot change', field('id'));
    await lockProgramTiers(prismaSql(tx), tenant, program.id);
    // Read again under the lock: a concurrent edit committed meanwhile is the base of this one.
    const current = await tx.tier.findUnique({ where: { id: found.id } });
    if (!current) throw notFound('Tier');

    const next = {
      name: input.name?.trim() ?? current.name,
      metric: input.metric ?? current.metric,
      threshold: input.threshold ?? current.threshold,
      periodDays: input.periodDays ?? current.periodDays,
    };
    const changed = {
      name: next.name !== current.name,
      metric: next.metric !== current.metric,
      threshold: next.threshold !== current.threshold,
      periodDays: next.periodDays !== current.periodDays,
    };
    const others = await tx.tier.findMany({ where: { ...tenant, programId: program.id, id: { not: current.id } } });
    checkAmongOthers(v, others, next, changed);
    let checked: CheckedOverride[] | null = null;
    let overridesChanged = false;
    if (input.overrides) {
      checked = await checkRuleOverrides(tx, v, tenant, program.id, input.overrides, 'tier');
      const stored = await tx.rewardRuleOverride.findMany({ where: { ...tenant, tierId: current.id } });
      overridesChanged = !sameSet(checked.map(overrideKey), stored.map(overrideKey));
    }
    v.throwIfAny();

    const changedFields = [
      ...(Object.keys(changed) as Array<keyof typeof changed>).filter((key) => changed[key]),
      ...(overridesChanged ? ['overrides'] : []),
    ];
    if (changedFields.length === 0) return current;
    const tier = await tx.tier.update({ where: { id: current.id }, data: next });
    if (overridesChanged && checked) {
      await tx.rewardRuleOverride.deleteMany({ where: { ...tenant, tierId: tier.id } });
      if (checked.length) await tx.rewardRuleOverride.createMany({ data: overrideRows(checked, tier.id) });
    }
    const count = checked?.length ?? (await tx.rewardRuleOverride.count({ where: { ...tenant, tierId: tier.id } }));
    const moves =
      changed.metric || changed.threshold || changed.periodDays
        ? await reevaluate(tx, tenant, program, tier.metric)
        : [];
    await appendEvents(tx, tenant, [tierUpdated(tier, changedFields, count), ...moves]);
    return tier;
  }, TIER_TX_OPTIONS);
}

/**
 * Delete a tier and its overrides. Its partners first move to the tier they reach without it (or
 * none), each with a `tier.changed` event; appends `tier.deleted`. Rewards already paid under it
 * keep their amounts and explanations.
 */
export async function deleteTier(prisma: PrismaClient, tenant: Tenant, id: string | null): Promise<Tier> {
  return prisma.$transaction(async (tx) => {
    const found = id ? await tx.tier.findUnique({ where: { id_workspaceId_mode: { id, ...tenant } } }) : null;
    if (!found) throw notFound('Tier');
    const program = (await findProgram(tx, tenant, found.programId))!;
    notArchived(program, 'its tiers cannot change', field('id'));
    await lockProgramTiers(prismaSql(tx), tenant, program.id);
    // Locked: a conversion about to move a partner into it waits, then sees it gone (evaluate.ts).
    const [locked] = await prismaSql(tx).sql<{ id: string }>`
      SELECT "id" FROM "Tier" WHERE "id" = ${found.id}::uuid AND "workspaceId" = ${tenant.workspaceId}::uuid AND "mode" = ${tenant.mode}::"Mode" FOR UPDATE`;
    if (!locked) throw notFound('Tier');
    const moves = await reevaluate(tx, tenant, program, found.metric, found.id);
    await tx.tier.delete({ where: { id: found.id } });
    await appendEvents(tx, tenant, [tierDeleted(found), ...moves]);
    return found;
  }, TIER_TX_OPTIONS);
}
