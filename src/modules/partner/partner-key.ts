import type { Partner, Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { DomainError, notFound } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';

/**
 * How an input names a partner: refgraph's id or the company's own externalId, exactly one of
 * the two. Every mutation that takes `partnerId` also takes `partnerExternalId`.
 */
export interface PartnerKey {
  /** Row id. undefined: not given; null: given, but not a Partner id (answered like a missing partner). */
  partnerId?: string | null;
  /** The partner's externalId, as given (trimmed here). undefined or null: not given. */
  partnerExternalId?: string | null;
}

/** The longest externalId a partner can have (trimmed). */
export const EXTERNAL_ID_MAX = 255;

const ID_FIELD = ['input', 'partnerId'];
const EXTERNAL_ID_FIELD = ['input', 'partnerExternalId'];

/** The input field that named the partner, for a refusal about that partner (e.g. it is BANNED). */
export function partnerKeyField(key: PartnerKey): string[] {
  return key.partnerId !== undefined ? ID_FIELD : EXTERNAL_ID_FIELD;
}

/**
 * Why `key` does not name one partner (neither or both given, or a blank or overlong
 * externalId), or null when it does. Services that collect validation errors add this to their
 * Validator so that every problem of an input is reported at once; `findPartnerByKey` checks it too.
 */
export function partnerKeyError(key: PartnerKey): DomainError | null {
  const byId = key.partnerId !== undefined;
  const byExternalId = key.partnerExternalId !== undefined && key.partnerExternalId !== null;
  if (!byId && !byExternalId) {
    return new DomainError(
      'VALIDATION',
      'Say which partner: give partnerId (refgraph’s global id) or partnerExternalId (your own id for the partner).',
      ['input'],
    );
  }
  if (byId && byExternalId) {
    return new DomainError(
      'VALIDATION',
      'Give only one of partnerId or partnerExternalId, not both: drop one of them.',
      ['input'],
    );
  }
  if (byExternalId) {
    const externalId = key.partnerExternalId!.trim();
    if (externalId.length === 0 || externalId.length > EXTERNAL_ID_MAX) {
      return new DomainError(
        'VALIDATION',
        `A partnerExternalId must be 1 to ${EXTERNAL_ID_MAX} characters long (after trimming spaces).`,
        EXTERNAL_ID_FIELD,
      );
    }
  }
  return null;
}

/**
 * The partner `key` names, in the caller's workspace and mode. Neither or both given:
 * VALIDATION at ["input"]; no such partner: NOT_FOUND at the field that was given.
 * `onlyPartnerId` (a PARTNER credential's partner) makes every other partner answer exactly like a
 * missing one, whichever id names it.
 */
export async function findPartnerByKey(
  db: PrismaClient | Prisma.TransactionClient,
  tenant: Tenant,
  key: PartnerKey,
  options: { onlyPartnerId?: string | null } = {},
): Promise<Partner> {
  const problem = partnerKeyError(key);
  if (problem) throw problem;
  const only = options.onlyPartnerId ?? null;
  if (key.partnerId !== undefined) {
    const id = key.partnerId;
    const partner =
      id !== null && (only === null || id === only)
        ? await db.partner.findUnique({ where: { id_workspaceId_mode: { id, ...tenant } } })
        : null;
    if (!partner) throw notFound('Partner', ID_FIELD);
    return partner;
  }
  const externalId = key.partnerExternalId!.trim();
  const partner = await db.partner.findUnique({ where: { workspaceId_mode_externalId: { ...tenant, externalId } } });
  // Another partner's externalId reads exactly like an unknown one: a PARTNER token learns nothing.
  if (!partner || (only !== null && partner.id !== only)) {
    throw new DomainError(
      'NOT_FOUND',
      `No partner has the externalId ${JSON.stringify(externalId)} in this workspace and mode.`,
      EXTERNAL_ID_FIELD,
    );
  }
  return partner;
}
