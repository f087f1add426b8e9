import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../../generated/prisma/client.js';
import { DomainError } from '../../domain/errors.js';
import type { Tenant } from '../../domain/tenant.js';
import { erasedPartnerError } from '../partner/erasure.service.js';
import { findPartnerByKey, partnerKeyField, type PartnerKey } from '../partner/partner-key.js';
import { hashSecret, sameHash } from './keys.js';
import {
  ACCESS_TOKEN_TTL_SECONDS,
  generateRefreshToken,
  PARTNER_TOKEN_DEFAULT_TTL_SECONDS,
  PARTNER_TOKEN_MAX_TTL_SECONDS,
  PARTNER_TOKEN_MIN_TTL_SECONDS,
  REFRESH_TOKEN_TTL_SECONDS,
  type TokenSigner,
} from './tokens.js';

export interface AccessTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

const invalidCredentials = (message: string) => new DomainError('INVALID_CREDENTIALS', message);

/**
 * A refresh token was presented twice: its whole family is revoked (refresh tokens in the
 * database, access tokens through the Authenticator, which the caller tells). Still the
 * INVALID_CREDENTIALS the client sees.
 */
export class RefreshTokenReplayed extends DomainError {
  constructor(readonly familyId: string) {
    super(
      'INVALID_CREDENTIALS',
      'This refresh token was already used, so every token issued from it has been revoked: issue a new access token with the key pair.',
    );
  }
}

/** Exchange a key pair (access key id + secret) for an access token and a refresh token. */
export async function issueAccessToken(
  prisma: PrismaClient,
  signer: TokenSigner,
  input: { accessKeyId: string; secret: string },
): Promise<AccessTokens> {
  const key = await prisma.apiKey.findUnique({ where: { accessKeyId: input.accessKeyId.trim() } });
  // Same answer for an unknown id and a wrong secret: nothing to learn from probing.
  if (!key || !sameHash(key.secretHash, hashSecret(input.secret)))
    throw invalidCredentials('Unknown access key id or wrong secret.');
  if (key.revokedAt) throw invalidCredentials('This key has been revoked.');
  return mint(prisma, signer, key, randomUUID());
}

/**
 * Rotate a refresh token: the old one is spent and a new pair is issued. A token presented a
 * second time (a replay, or a stolen copy racing its owner) revokes its whole family.
 */
export async function refreshAccessToken(
  prisma: PrismaClient,
  signer: TokenSigner,
  refreshToken: string,
): Promise<AccessTokens> {
  const row = await prisma.refreshToken.findUnique({
    where: { tokenHash: hashSecret(refreshToken.trim()) },
    include: { apiKey: true },
  });
  if (!row) throw invalidCredentials('Unknown refresh token.');
  const now = new Date();
  if (row.revokedAt)
    throw invalidCredentials('This refresh token has been revoked: issue a new access token with the key pair.');
  if (row.expiresAt <= now)
    throw invalidCredentials('This refresh token has expired: issue a new access token with the key pair.');
  if (row.apiKey.revokedAt) throw invalidCredentials('The key this token was issued from has been revoked.');
  // The new pair is made first, and the old token spent with the new one stored in one transaction:
  // a failure anywhere leaves the old token unspent, so the client's retry is not taken for a replay.
  const pair = await newPair(signer, row.apiKey, row.familyId);
  const outcome = await prisma.$transaction(async (tx) => {
    // Spend it atomically: of two concurrent uses exactly one wins.
    const spent = await tx.refreshToken.updateMany({
      where: { id: row.id, usedAt: null, revokedAt: null },
      data: { usedAt: now },
    });
    if (spent.count !== 1) {
      await tx.refreshToken.updateMany({
        where: { familyId: row.familyId, revokedAt: null },
        data: { revokedAt: now },
      });
      return 'replayed' as const;
    }
    await tx.refreshToken.create({ data: pair.row });
    return 'rotated' as const;
  });
  if (outcome === 'replayed') throw new RefreshTokenReplayed(row.familyId);
  return pair.tokens;
}

async function mint(
  prisma: PrismaClient,
  signer: TokenSigner,
  key: { id: string; workspaceId: string; mode: 'TEST' | 'LIVE'; role: 'ADMIN' | 'READ_ONLY' | 'PARTNER' },
  familyId: string,
): Promise<AccessTokens> {
  const pair = await newPair(signer, key, familyId);
  await prisma.refreshToken.create({ data: pair.row });
  return pair.tokens;
}

/** A signed access token and a refresh token of `familyId`, with the refresh token's row to store. */
async function newPair(
  signer: TokenSigner,
  key: { id: string; workspaceId: string; mode: 'TEST' | 'LIVE'; role: 'ADMIN' | 'READ_ONLY' | 'PARTNER' },
  familyId: string,
) {
  const refreshToken = generateRefreshToken();
  const row = {
    workspaceId: key.workspaceId,
    mode: key.mode,
    apiKeyId: key.id,
    familyId,
    tokenHash: hashSecret(refreshToken),
    expiresAt: new Date(Date.now() + REFRESH_TOKEN_TTL_SECONDS * 1000),
  };
  const { token } = await signer.sign(
    {
      typ: 'access',
      apiKeyId: key.id,
      workspaceId: key.workspaceId,
      mode: key.mode,
      role: key.role,
      partnerId: null,
      familyId,
    },
    ACCESS_TOKEN_TTL_SECONDS,
  );
  const tokens: AccessTokens = { accessToken: token, refreshToken, expiresIn: ACCESS_TOKEN_TTL_SECONDS };
  return { tokens, row };
}

/** A PARTNER token for one partner of the caller's tenant, minted by the caller's key. */
export async function createPartnerToken(
  prisma: PrismaClient,
  signer: TokenSigner,
  tenant: Tenant & { apiKeyId: string },
  input: PartnerKey & { ttlSeconds: number | null | undefined },
): Promise<{ token: string; expiresAt: Date }> {
  const ttl = input.ttlSeconds ?? PARTNER_TOKEN_DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < PARTNER_TOKEN_MIN_TTL_SECONDS || ttl > PARTNER_TOKEN_MAX_TTL_SECONDS) {
    throw new DomainError(
      'VALIDATION',
      `ttlSeconds must be from ${PARTNER_TOKEN_MIN_TTL_SECONDS} to ${PARTNER_TOKEN_MAX_TTL_SECONDS} (30 days); got ${ttl}.`,
      ['input', 'ttlSeconds'],
    );
  }
  const partner = await findPartnerByKey(prisma, { workspaceId: tenant.workspaceId, mode: tenant.mode }, input);
  if (partner.erasedAt) {
    throw erasedPartnerError(partner, 'it cannot get a partner token', partnerKeyField(input));
  }
  return signer.sign(
    {
      typ: 'partner',
      apiKeyId: tenant.apiKeyId,
      workspaceId: tenant.workspaceId,
      mode: tenant.mode,
      role: 'PARTNER',
      partnerId: partner.id,
    },
    ttl,
  );
}
