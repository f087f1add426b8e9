import { isDeepStrictEqual } from 'node:util';
import type { Partner, PartnerStatus, Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { DomainError, notFound, Validator } from '../../domain/errors.js';
import { checkMetadata } from '../../domain/metadata.js';
import type { Tenant } from '../../domain/tenant.js';
import { NIL_UUID } from '../../lib/ids.js';
import { enrollInTransaction, isUniqueViolation } from './enrollment.service.js';
import { erasedPartnerError, isRecordNotFound } from './erasure.service.js';
import { EXTERNAL_ID_MAX, findPartnerByKey, partnerKeyField, type PartnerKey } from './partner-key.js';
import { appendEvent, appendEvents } from '../events/outbox.js';
import { MONEY_TX_OPTIONS } from '../reward/lifecycle.js';
import { BAN_ACTOR, BAN_REASON, rejectForBan } from '../review/review.service.js';
import { partnerCreated, partnerStatusChanged, partnerUpdated } from '../events/payloads.js';

export const NAME_MAX = 200;
export const EMAIL_MAX = 320;
export const SEARCH_MAX = 100;

/** Deliberately loose: one "@" with something on both sides and no spaces. Deliverability is not our business. */
const EMAIL = /^[^\s@]+@[^\s@]+$/;

/** A taken externalId; `field` defaults to `["input","externalId"]`. */
export const duplicateExternalId = (externalId: string, field: string[] = ['input', 'externalId']) =>
  new DomainError(
    'DUPLICATE',
    `A partner with externalId "${externalId}" already exists in this workspace and mode.`,
    field,
  );

/** Trimmed name; empty means none. `field`: where a problem is reported (default `["input","name"]`). */
export function cleanName(v: Validator, name: string | null, field: string[] = ['input', 'name']): string | null {
  const trimmed = name?.trim() || null;
  v.check(trimmed === null || trimmed.length <= NAME_MAX, field, `A name must be at most ${NAME_MAX} characters long.`);
  return trimmed;
}

/** Trimmed email; empty means none. `field`: where a problem is reported (default `["input","email"]`). */
export function cleanEmail(v: Validator, email: string | null, field: string[] = ['input', 'email']): string | null {
  const trimmed = email?.trim() || null;
  if (trimmed !== null) {
    v.check(trimmed.length <= EMAIL_MAX, field, `An email address must be at most ${EMAIL_MAX} characters long.`);
    v.check(
      EMAIL.test(trimmed),
      field,
      'An email address must contain exactly one "@" with text on both sides and no spaces.',
    );
  }
  return trimmed;
}

/** Trimmed externalId, 1–255 characters. `field`: where a problem is reported (default `["input","externalId"]`). */
export function cleanExternalId(v: Validator, externalId: string, field: string[] = ['input', 'externalId']): string {
  const trimmed = externalId.trim();
  v.check(
    trimmed.length >= 1 && trimmed.length <= EXTERNAL_ID_MAX,
    field,
    `An externalId must be 1 to ${EXTERNAL_ID_MAX} characters long (after trimming spaces).`,
  );
  return trimmed;
}

export interface CreatePartnerInput {
  externalId: string;
  name?: string | null;
  email?: string | null;
  status?: PartnerStatus | null;
  /** The integrator's own fields (a JSON object; see domain/metadata.ts); none: {}. */
  metadata?: unknown;
  /** Row ids of programs to enroll the partner in; null where the given global id was malformed. */
  programIds?: ReadonlyArray<string | null> | null;
}

/**
 * A new partner, enrolled at once in `programIds` (each enrollment as enrollPartner would make it),
 * all in one transaction: any refused program leaves nothing behind.
 */
export async function createPartner(prisma: PrismaClient, tenant: Tenant, input: CreatePartnerInput): Promise<Partner> {
  const v = new Validator();
  const externalId = cleanExternalId(v, input.externalId);
  const name = cleanName(v, input.name ?? null);
  const email = cleanEmail(v, input.email ?? null);
  const metadata = checkMetadata(v, input.metadata, ['input', 'metadata']) ?? {};
  v.throwIfAny();

  try {
    return await prisma.$transaction(async (tx) => {
      if (await tx.partner.findUnique({ where: { workspaceId_mode_externalId: { ...tenant, externalId } } }))
        throw duplicateExternalId(externalId);
      const partner = await tx.partner.create({
        data: {
          ...tenant,
          externalId,
          name,
          email,
          metadata: metadata as Prisma.InputJsonObject,
          status: input.status ?? 'ACTIVE',
        },
      });
      // The partner first, then its enrollments (and their links), in the order they happen.
      await appendEvent(tx, tenant, partnerCreated(partner));
      const seen = new Set<string>();
      for (const [index, programId] of (input.programIds ?? []).entries()) {
        // The same program twice is one enrollment, not an error.
        if (programId !== null && seen.has(programId)) continue;
        if (programId !== null) seen.add(programId);
        await enrollInTransaction(tx, tenant, partner, programId, {
          partner: ['input', 'status'],
          program: ['input', 'programIds', String(index)],
        });
      }
      return partner;
    });
  } catch (error) {
    // A concurrent create with the same externalId won the race.
    if (isUniqueViolation(error)) throw duplicateExternalId(externalId);
    throw error;
  }
}

export interface UpdatePartnerInput {
  /** Row id; undefined: not given; null: given but not a Partner id of this tenant. */
  id?: string | null;
  /** The partner's externalId, to find it by (it cannot be changed). */
  externalId?: string;
  /** undefined: unchanged; null (or empty): cleared. */
  name?: string | null;
  email?: string | null;
  /** undefined: unchanged; null: cleared ({}); an object replaces the whole metadata. */
  metadata?: unknown;
}

/** Change a partner's name, email and/or metadata. Exactly one of `id` / `externalId` picks the partner. */
export async function updatePartner(prisma: PrismaClient, tenant: Tenant, input: UpdatePartnerInput): Promise<Partner> {
  if ((input.id === undefined) === (input.externalId === undefined)) {
    throw new DomainError('VALIDATION', 'Give exactly one of `id` or `externalId` to say which partner to update.', [
      'input',
    ]);
  }
  const v = new Validator();
  const data: Prisma.PartnerUpdateInput = {};
  if (input.name !== undefined) data.name = cleanName(v, input.name);
  if (input.email !== undefined) data.email = cleanEmail(v, input.email);
  if (input.metadata !== undefined)
    data.metadata = (checkMetadata(v, input.metadata, ['input', 'metadata']) ?? {}) as Prisma.InputJsonObject;
  v.throwIfAny();

  const field = ['input', input.id !== undefined ? 'id' : 'externalId'];
  const partner = await findPartner(prisma, tenant, input);
  if (!partner) throw notFound('Partner', field);
  // Personal data is never set again on an erased partner (erasure.service.ts).
  const erased = () => erasedPartnerError(partner, 'its personal data cannot be set again', field);
  if (partner.erasedAt) throw erased();
  const changedFields = Object.entries(data)
    .filter(([key, value]) =>
      key === 'metadata' ? !isDeepStrictEqual(partner.metadata, value) : partner[key as 'name' | 'email'] !== value,
    )
    .map(([key]) => key);
  // Nothing changes: no write, no event.
  if (changedFields.length === 0) return partner;
  return prisma.$transaction(async (tx) => {
    // Guarded: an erasure that committed since the read above wins.
    const updated = await tx.partner.update({ where: { id: partner.id, erasedAt: null }, data }).catch((error) => {
      throw isRecordNotFound(error) ? erased() : error;
    });
    await appendEvent(tx, tenant, partnerUpdated(updated, changedFields));
    return updated;
  });
}

function findPartner(
  prisma: PrismaClient,
  tenant: Tenant,
  key: { id?: string | null; externalId?: string },
): Promise<Partner | null> {
  if (key.id !== undefined) {
    return key.id
      ? prisma.partner.findUnique({ where: { id_workspaceId_mode: { id: key.id, ...tenant } } })
      : Promise.resolve(null);
  }
  return prisma.partner.findUnique({
    where: { workspaceId_mode_externalId: { ...tenant, externalId: key.externalId!.trim() } },
  });
}

/**
 * Any status may change to any other (not an erased partner's); asking for the current one changes
 * nothing. Banning also rejects the partner's CREATED rewards and closes their OPEN review items as
 * REJECTED, in the same transaction (review/review.service.ts rejectForBan; APPROVED rewards stay).
 */
export async function setPartnerStatus(
  prisma: PrismaClient,
  tenant: Tenant,
  input: PartnerKey & { status: PartnerStatus; actor?: string | null },
): Promise<Partner> {
  const partner = await findPartnerByKey(prisma, tenant, input);
  // An erased partner stays BANNED: nothing can be attributed to it again (erasure.service.ts).
  const erased = () => erasedPartnerError(partner, 'it stays BANNED, its status cannot change', partnerKeyField(input));
  if (partner.status === input.status) return partner;
  if (partner.erasedAt) throw erased();
  return prisma.$transaction(async (tx) => {
    // Ledger lock, review items and rewards first (their lock order), the partner row after.
    const banned =
      input.status === 'BANNED'
        ? await rejectForBan(tx, tenant, partner.id, { reason: BAN_REASON, actor: input.actor ?? BAN_ACTOR })
        : [];
    const updated = await tx.partner
      .update({ where: { id: partner.id, erasedAt: null }, data: { status: input.status } })
      .catch((error) => {
        throw isRecordNotFound(error) ? erased() : error;
      });
    await appendEvents(tx, tenant, [partnerStatusChanged(partner.id, partner.status, updated.status), ...banned]);
    return updated;
  }, MONEY_TX_OPTIONS);
}

/** `LIKE` treats % and _ as wildcards (and \ as their escape); a search is a plain substring. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export interface PartnerListFilter {
  status?: PartnerStatus | null;
  /** Row id; null when a given program id was malformed (matches nothing). */
  programId?: string | null;
  search?: string | null;
  /** A containment filter's where clause (graphql/metadata.ts metadataWhere). */
  metadata?: Prisma.PartnerWhereInput;
}

/** The tenant's partners matching a list filter (the where clause of `partners`). */
export function partnerListWhere(tenant: Tenant, filter: PartnerListFilter): Prisma.PartnerWhereInput {
  const where: Prisma.PartnerWhereInput = { ...tenant, ...filter.metadata };
  if (filter.status) where.status = filter.status;
  if (filter.programId !== undefined) where.enrollments = { some: { programId: filter.programId ?? NIL_UUID } };
  const search = filter.search?.trim();
  if (search) {
    const contains = escapeLike(search);
    where.OR = [
      { name: { contains, mode: 'insensitive' } },
      { email: { contains, mode: 'insensitive' } },
      { externalId: { contains, mode: 'insensitive' } },
    ];
  }
  return where;
}
