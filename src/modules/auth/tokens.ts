import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Mode, Role } from '../../generated/prisma/enums.js';

/** Access tokens are short-lived; a refresh token (rotated on each use) gets a new one. */
export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
export const REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
export const PARTNER_TOKEN_DEFAULT_TTL_SECONDS = 3600;
export const PARTNER_TOKEN_MAX_TTL_SECONDS = 30 * 24 * 3600;
export const PARTNER_TOKEN_MIN_TTL_SECONDS = 60;

const ISSUER = 'refgraph';

export interface TokenClaims {
  typ: 'access' | 'partner';
  /** The API key the token was issued from; revoking it ends the token at once. */
  apiKeyId: string;
  workspaceId: string;
  mode: Mode;
  role: Role;
  partnerId: string | null;
  /** Access tokens: the refresh-token family they were minted in; a replayed refresh token revokes them all. */
  familyId?: string | null;
}

/** A verified token's claims and when it stops being valid. */
export interface VerifiedToken {
  claims: TokenClaims;
  expiresAt: Date;
}

/** Signs and verifies refgraph's JWTs (HS256) with a key derived from the installation secret. */
export class TokenSigner {
  private readonly key: Uint8Array;

  constructor(installationSecret: string) {
    // A key of its own, so the installation secret's other uses (IP hashing) never share one.
    this.key = createHmac('sha256', installationSecret).update('refgraph:jwt:v1').digest();
  }

  async sign(claims: TokenClaims, ttlSeconds: number): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      typ: claims.typ,
      ws: claims.workspaceId,
      mode: claims.mode,
      role: claims.role,
      pid: claims.partnerId ?? undefined,
      fam: claims.familyId ?? undefined,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setSubject(claims.apiKeyId)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .setJti(randomUUID())
      .sign(this.key);
    return { token, expiresAt: new Date((now + ttlSeconds) * 1000) };
  }

  /** The claims of a valid token, or the reason it is not valid. */
  async verify(token: string): Promise<VerifiedToken | { error: string }> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, algorithms: ['HS256'] });
      const { typ, ws, mode, role, pid, sub, fam, exp } = payload as Record<string, unknown>;
      if ((typ !== 'access' && typ !== 'partner') || typeof ws !== 'string' || typeof sub !== 'string')
        return { error: 'Malformed token.' };
      if (mode !== 'TEST' && mode !== 'LIVE') return { error: 'Malformed token.' };
      if (role !== 'ADMIN' && role !== 'READ_ONLY' && role !== 'PARTNER') return { error: 'Malformed token.' };
      if (typ === 'partner' && typeof pid !== 'string') return { error: 'Malformed token.' };
      if (typeof exp !== 'number') return { error: 'Malformed token.' };
      return {
        claims: {
          typ,
          apiKeyId: sub,
          workspaceId: ws,
          mode,
          role,
          partnerId: typeof pid === 'string' ? pid : null,
          familyId: typeof fam === 'string' ? fam : null,
        },
        expiresAt: new Date(exp * 1000),
      };
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired)
        return { error: 'The token has expired: get a new one (refreshAccessToken, or a new partner token).' };
      return { error: 'The token is not valid for this installation.' };
    }
  }
}

/** An opaque refresh token; only its hash is stored. */
export function generateRefreshToken(): string {
  return `rgr_${randomBytes(32).toString('base64url')}`;
}

/** Does this look like one of our JWTs? */
export function looksLikeJwt(token: string): boolean {
  return /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/.test(token);
}
