import type { Auth } from '../../context.js';
import type { Database } from '../../db.js';
import { outsideRequest } from '../../lib/request-context.js';
import { hashSecret, sameHash, secretKeyMode } from './keys.js';
import { looksLikeJwt, type TokenSigner } from './tokens.js';

/** Touch lastUsedAt at most this often per key, so a busy key does not cost a write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

export type AuthResult = { auth: Auth; error: null } | { auth: null; error: string | null };

/**
 * Resolves an `Authorization` header (or graphql-ws `authorization` param) to the caller.
 * No header: { auth: null, error: null }. A header that does not check out: an error that says why.
 */
export class Authenticator {
  private readonly lastTouched = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly tokens: TokenSigner,
  ) {}

  async authenticate(header: string | null | undefined): Promise<AuthResult> {
    if (!header) return { auth: null, error: null };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      return { auth: null, error: 'The Authorization header must be `Bearer <secret key | access token | partner token>`.' };
    }
    const token = match[1];
    if (secretKeyMode(token)) return this.secretKey(token);
    if (looksLikeJwt(token)) return this.jwt(token);
    return { auth: null, error: 'The bearer credential is not a refgraph secret key or token.' };
  }

  private async secretKey(secret: string): Promise<AuthResult> {
    const hash = hashSecret(secret);
    const key = await this.db.prisma.apiKey.findUnique({ where: { secretHash: hash } });
    if (!key || !sameHash(key.secretHash, hash)) return { auth: null, error: 'Unknown secret key.' };
    if (key.revokedAt) return { auth: null, error: 'This secret key has been revoked.' };
    this.touch(key.id);
    return {
      auth: {
        workspaceId: key.workspaceId,
        mode: key.mode,
        role: key.role,
        apiKeyId: key.id,
        partnerId: null,
        credential: 'secret_key',
      },
      error: null,
    };
  }

  /**
   * Access and partner tokens: the signature and expiry are checked without the database, then
   * the issuing key is looked up so that revoking it ends its tokens at once.
   */
  private async jwt(token: string): Promise<AuthResult> {
    const verified = await this.tokens.verify(token);
    if ('error' in verified) return { auth: null, error: verified.error };
    const { claims } = verified;
    const key = await this.db.prisma.apiKey.findUnique({ where: { id: claims.apiKeyId } });
    if (!key || key.workspaceId !== claims.workspaceId || key.mode !== claims.mode) return { auth: null, error: 'The token is not valid for this installation.' };
    if (key.revokedAt) return { auth: null, error: 'The key this token was issued from has been revoked.' };
    this.touch(key.id);
    return {
      auth: {
        workspaceId: claims.workspaceId,
        mode: claims.mode,
        role: claims.typ === 'partner' ? 'PARTNER' : key.role,
        apiKeyId: key.id,
        partnerId: claims.typ === 'partner' ? claims.partnerId : null,
        credential: claims.typ === 'partner' ? 'partner_token' : 'access_token',
      },
      error: null,
    };
  }

  /** Fire-and-forget lastUsedAt update, at most once a minute per key and process. */
  private touch(apiKeyId: string): void {
    const now = Date.now();
    if (now - (this.lastTouched.get(apiKeyId) ?? 0) < LAST_USED_RESOLUTION_MS) return;
    this.lastTouched.set(apiKeyId, now);
    // Not the request's own work: it runs outside it (and outside its SQL statement count).
    outsideRequest(() =>
      this.db.prisma.apiKey
        .update({ where: { id: apiKeyId }, data: { lastUsedAt: new Date(now) } })
        .catch(() => this.lastTouched.delete(apiKeyId)),
    );
  }
}
