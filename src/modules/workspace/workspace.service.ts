import type { Prisma, PrismaClient } from '../../generated/prisma/client.js';
import type { Mode, Role } from '../../generated/prisma/enums.js';
import { DomainError } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { appendEvent } from '../events/outbox.js';
import { apiKeyCreated, apiKeyRevoked } from '../events/payloads.js';
import { generateAccessKeyId, generateSecretKey, hashSecret, secretHint } from '../auth/keys.js';

export interface CreatedKey {
  id: string;
  name: string;
  role: Role;
  mode: Mode;
  accessKeyId: string;
  secretHint: string;
  createdAt: Date;
  /** Shown once; only its hash is stored. */
  secret: string;
}

/** Insert an API key and return its secret (the only time it exists in clear). */
export async function createApiKey(
  prisma: Pick<PrismaClient, 'apiKey'>,
  input: { workspaceId: string; mode: Mode; role: Role; name: string },
): Promise<CreatedKey> {
  const secret = generateSecretKey(input.mode);
  const key = await prisma.apiKey.create({
    data: {
      workspaceId: input.workspaceId,
      mode: input.mode,
      role: input.role,
      name: input.name,
      accessKeyId: generateAccessKeyId(input.mode),
      secretHash: hashSecret(secret),
      secretHint: secretHint(secret),
    },
  });
  return {
    id: key.id,
    name: key.name,
    role: key.role,
    mode: key.mode,
    accessKeyId: key.accessKeyId,
    secretHint: key.secretHint,
    createdAt: key.createdAt,
    secret,
  };
}

/**
 * createApiKey for an admin's request (or `refgraph key create`): the key and its `api_key.created`
 * event, in one transaction. The name is trimmed; a name outside 1–100 characters and the PARTNER
 * role are refused (VALIDATION, `field` ["input", "name"|"role"]) before anything is written.
 */
export async function createTenantApiKey(
  prisma: PrismaClient,
  tenant: Tenant,
  input: { role: Role; name: string },
): Promise<CreatedKey> {
  const { role, name } = checkApiKeyInput(input);
  return prisma.$transaction(async (tx) => {
    const key = await createApiKey(tx, { ...tenant, role, name });
    await appendEvent(tx, tenant, apiKeyCreated(key));
    return key;
  });
}

/** The input of createTenantApiKey, checked and with the name trimmed; a DomainError (VALIDATION) otherwise. */
export function checkApiKeyInput(input: { role: Role; name: string }): { role: Role; name: string } {
  const name = input.name.trim();
  if (name.length < 1 || name.length > 100)
    throw new DomainError('VALIDATION', 'A key name must be 1 to 100 characters long.', ['input', 'name']);
  if (input.role === 'PARTNER') {
    throw new DomainError('VALIDATION', 'PARTNER credentials are partner tokens: use createPartnerToken.', [
      'input',
      'role',
    ]);
  }
  return { role: input.role, name };
}

/**
 * The keys of a workspace — of one mode, or of both when `mode` is not given — that are not
 * revoked, or every one with `includeRevoked`. Listed newest first (by id: ids are time-ordered).
 */
export function apiKeyListWhere(
  scope: { workspaceId: string; mode?: Mode | undefined },
  includeRevoked: boolean,
): Prisma.ApiKeyWhereInput {
  return {
    workspaceId: scope.workspaceId,
    ...(scope.mode ? { mode: scope.mode } : {}),
    ...(includeRevoked ? {} : { revokedAt: null }),
  };
}

/**
 * Revoke a key of the tenant and every refresh token issued from it, with an `api_key.revoked`
 * event, in one transaction. Revoking twice changes nothing (no second event). Null: no such key.
 */
export async function revokeApiKey(
  prisma: PrismaClient,
  tenant: Tenant,
  id: string | null,
): Promise<{ id: string } | null> {
  const key = id ? await prisma.apiKey.findUnique({ where: { id_workspaceId_mode: { id, ...tenant } } }) : null;
  if (!key) return null;
  if (!key.revokedAt) {
    await prisma.$transaction(async (tx) => {
      const now = new Date();
      const { count } = await tx.apiKey.updateMany({
        where: { id: key.id, revokedAt: null },
        data: { revokedAt: now },
      });
      await tx.refreshToken.updateMany({ where: { apiKeyId: key.id, revokedAt: null }, data: { revokedAt: now } });
      if (count === 1) await appendEvent(tx, tenant, apiKeyRevoked(key));
    });
  }
  return { id: key.id };
}

export interface CreatedWorkspace {
  workspace: { id: string; name: string };
  keys: { test: CreatedKey; live: CreatedKey };
}

/** A workspace with one ADMIN secret key per mode, all in one transaction. */
export async function createWorkspace(prisma: PrismaClient, name: string): Promise<CreatedWorkspace> {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 200) {
    throw new RangeError('A workspace name must be 1 to 200 characters long.');
  }
  return prisma.$transaction(async (tx) => {
    const workspace = await tx.workspace.create({ data: { name: trimmed } });
    const test = await createApiKey(tx, {
      workspaceId: workspace.id,
      mode: 'TEST',
      role: 'ADMIN',
      name: 'Default admin key',
    });
    const live = await createApiKey(tx, {
      workspaceId: workspace.id,
      mode: 'LIVE',
      role: 'ADMIN',
      name: 'Default admin key',
    });
    return { workspace: { id: workspace.id, name: workspace.name }, keys: { test, live } };
  });
}
