import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { hashSecret } from '../auth/keys.js';

/** The session cookie (HttpOnly): a random token; the database keeps its SHA-256 as the session's id. */
export const SESSION_COOKIE = 'refgraph_session';
/** The CSRF cookie (readable by the dashboard's script), to be echoed in the X-CSRF-Token header. */
export const CSRF_COOKIE = 'refgraph_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** A new session token: `rgs_` + 256 random bits. */
export function generateSessionToken(): string {
  return `rgs_${randomBytes(32).toString('base64url')}`;
}

/** A new invitation token: `rgi_` + 256 random bits; only its hash is stored. */
export function generateInvitationToken(): string {
  return `rgi_${randomBytes(32).toString('base64url')}`;
}

/** The session's id (and an invitation's stored hash): SHA-256, hex. */
export const sessionIdOf = (token: string): string => hashSecret(token);

/** Does this look like a session token? (Anything else in the cookie is ignored, never looked up.) */
export function looksLikeSessionToken(token: string): boolean {
  return /^rgs_[A-Za-z0-9_-]{43}$/.test(token);
}

/**
 * The CSRF value bound to a session: HMAC-SHA256 of its token with a key derived from the
 * installation secret, so nothing more is stored and it cannot be computed without the secret
 * (nor the token from it).
 */
export class CsrfTokens {
  private readonly key: Buffer;

  constructor(installationSecret: string) {
    this.key = createHmac('sha256', installationSecret).update('refgraph:csrf:v1').digest();
  }

  of(sessionToken: string): string {
    return createHmac('sha256', this.key).update(sessionToken).digest('base64url');
  }

  /** Constant-time: is `presented` the CSRF value of this session token? */
  matches(sessionToken: string, presented: string | null | undefined): boolean {
    if (!presented) return false;
    const expected = Buffer.from(this.of(sessionToken));
    const given = Buffer.from(presented);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}
