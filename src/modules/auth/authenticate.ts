import type { Auth } from '../../domain/auth.js';
import type { Database } from '../../db.js';
import { outsideRequest } from '../../lib/request-context.js';
import { hashSecret, sameHash, secretKeyMode } from './keys.js';
import { looksLikeSessionToken, sessionIdOf } from '../member/session-tokens.js';
import { ACCESS_TOKEN_TTL_SECONDS, looksLikeJwt, type TokenSigner } from './tokens.js';

/** Touch lastUsedAt at most this often per key, so a busy key does not cost a write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;
/** Keys remembered at most; past this the oldest entry is dropped (a bound on memory, not a tuning knob). */
const KEY_CACHE_MAX_ENTRIES = 10_000;

/** What authentication needs of an API key row. */
interface KeyFacts {
  id: string;
  workspaceId: string;
  mode: Auth['mode'];
  role: Auth['role'];
  secretHash: string;
  revoked: boolean;
}

/**
 * Recently looked-up API keys, by secret hash and by id, for `ttlMs` (AUTH_CACHE_TTL_MS): a busy
 * key costs one database lookup per interval instead of one per request. Revocation evicts at once
 * (`forget`, called by revokeApiKey on this instance and from the `keyRevoked` topic on the others),
 * and a lookup that raced with a revocation is not stored. Unknown secrets are not remembered, so
 * guessing cannot fill it.
 */
class KeyCache {
  private readonly byHash = new Map<string, { key: KeyFacts; expiresAt: number }>();
  private readonly byId = new Map<string, { key: KeyFacts; expiresAt: number }>();
  /** Bumped by every forget(): a lookup started before it must not store what it read. */
  private generation = 0;

  constructor(private readonly ttlMs: number) {}

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  startLookup(): number {
    return this.generation;
  }

  byHashGet(hash: string): KeyFacts | null {
    return this.fresh(this.byHash, hash);
  }

  byIdGet(id: string): KeyFacts | null {
    return this.fresh(this.byId, id);
  }

  store(key: KeyFacts, lookupGeneration: number): void {
    if (!this.enabled || lookupGeneration !== this.generation) return;
    if (this.byId.size >= KEY_CACHE_MAX_ENTRIES) this.evictOldest();
    const entry = { key, expiresAt: Date.now() + this.ttlMs };
    this.byHash.set(key.secretHash, entry);
    this.byId.set(key.id, entry);
  }

  forget(apiKeyId: string): void {
    this.generation++;
    const entry = this.byId.get(apiKeyId);
    this.byId.delete(apiKeyId);
    if (entry) this.byHash.delete(entry.key.secretHash);
  }

  private fresh(map: Map<string, { key: KeyFacts; expiresAt: number }>, k: string): KeyFacts | null {
    const entry = map.get(k);
    if (!entry) return null;
    if (entry.expiresAt > Date.now()) return entry.key;
    this.byId.delete(entry.key.id);
    this.byHash.delete(entry.key.secretHash);
    return null;
  }

  private evictOldest(): void {
    const oldest = this.byId.values().next();
    if (!oldest.done) {
      this.byId.delete(oldest.value.key.id);
      this.byHash.delete(oldest.value.key.secretHash);
    }
  }
}

/**
 * A credential checked: the caller, and for tokens when they stop being valid (a WebSocket
 * opened with one closes then) and the refresh-token family of an access token.
 */
export type AuthResult =
  | { auth: Auth; error: null; expiresAt?: Date; familyId?: string | null }
  | { auth: null; error: string | null };

/**
 * Refresh-token families with a replayed token: their access tokens are refused. A revoked family
 * stays revoked, so that answer is kept until its access tokens have expired anyway; "not revoked"
 * is kept for the key cache's TTL, like a key (a replay on another instance reaches this one at
 * once through the `tokenFamilyRevoked` topic, and within the TTL without Redis).
 */
class FamilyCache {
  private readonly entries = new Map<string, { revoked: boolean; expiresAt: number }>();
  private generation = 0;

  constructor(private readonly ttlMs: number) {}

  get(familyId: string): boolean | null {
    const entry = this.entries.get(familyId);
    if (!entry) return null;
    if (entry.expiresAt > Date.now()) return entry.revoked;
    this.entries.delete(familyId);
    return null;
  }

  startLookup(): number {
    return this.generation;
  }

  store(familyId: string, revoked: boolean, lookupGeneration: number): void {
    if (revoked) {
      this.revoke(familyId);
      return;
    }
    if (this.ttlMs <= 0 || lookupGeneration !== this.generation) return;
    this.set(familyId, { revoked, expiresAt: Date.now() + this.ttlMs });
  }

  revoke(familyId: string): void {
    this.generation++;
    this.set(familyId, { revoked: true, expiresAt: Date.now() + ACCESS_TOKEN_TTL_SECONDS * 1000 });
  }

  private set(familyId: string, entry: { revoked: boolean; expiresAt: number }): void {
    this.entries.delete(familyId);
    if (this.entries.size >= KEY_CACHE_MAX_ENTRIES) {
      // Drop the oldest answer that is not a revocation; revocations are few and must stay.
      for (const [id, old] of this.entries) {
        if (!old.revoked || old.expiresAt <= Date.now()) {
          this.entries.delete(id);
          break;
        }
      }
    }
    this.entries.set(familyId, entry);
  }
}

/** What authentication needs of a member session row. */
interface SessionFacts {
  id: string;
  memberId: string;
  workspaceId: string;
  mode: Auth['mode'];
  role: Auth['role'];
  expiresAt: Date;
}

/**
 * Recently looked-up member sessions, by id, for the same TTL as keys. Sign-out, mode switches and
 * removals evict at once on this instance (`forgetSession`, `forgetMember`) and, through the
 * `memberSessionsEnded` topic, on the others; a lookup that raced with an eviction is not stored.
 * Ended sessions are not remembered: a replayed cookie costs a lookup every time.
 */
class SessionCache {
  private readonly entries = new Map<string, { session: SessionFacts; expiresAt: number }>();
  private generation = 0;

  constructor(private readonly ttlMs: number) {}

  startLookup(): number {
    return this.generation;
  }

  get(id: string): SessionFacts | null {
    const entry = this.entries.get(id);
    if (!entry) return null;
    if (entry.expiresAt > Date.now()) return entry.session;
    this.entries.delete(id);
    return null;
  }

  store(session: SessionFacts, lookupGeneration: number): void {
    if (this.ttlMs <= 0 || lookupGeneration !== this.generation) return;
    if (this.entries.size >= KEY_CACHE_MAX_ENTRIES) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(session.id, { session, expiresAt: Date.now() + this.ttlMs });
  }

  forgetSession(id: string): void {
    this.generation++;
    this.entries.delete(id);
  }

  forgetMember(memberId: string): void {
    this.generation++;
    for (const [id, entry] of this.entries) if (entry.session.memberId === memberId) this.entries.delete(id);
  }
}

/** Why a session cookie was refused: the same words whatever the reason (signed out, expired, removed). */
export const SESSION_ENDED =
  'Your session has ended (signed out, expired, or your membership was removed): sign in again.';

/**
 * Resolves an `Authorization` header (or graphql-ws `authorization` param) to the caller.
 * No header: { auth: null, error: null }. A header that does not check out: an error that says why.
 */
export class Authenticator {
  private readonly lastTouched = new Map<string, number>();
  private readonly keys: KeyCache;
  private readonly families: FamilyCache;

  /** `cacheTtlMs`: how long a looked-up key is reused without asking the database (0: always ask). */
  constructor(
    private readonly db: Database,
    private readonly tokens: TokenSigner,
    cacheTtlMs = 0,
  ) {
    this.keys = new KeyCache(cacheTtlMs);
    this.families = new FamilyCache(cacheTtlMs);
    this.sessions = new SessionCache(cacheTtlMs);
  }

  private readonly sessions: SessionCache;
  private readonly sessionsTouched = new Map<string, number>();

  /** A session ended or changed (sign-out, mode switch): stop using what the cache holds of it at once. */
  forgetSession(sessionId: string): void {
    this.sessions.forgetSession(sessionId);
  }

  /** A member was removed: their sessions stop working at once. */
  forgetMember(memberId: string): void {
    this.sessions.forgetMember(memberId);
  }

  /**
   * A member session by its cookie's token (the CSRF check is the caller's): the member's role in
   * the session's workspace and mode. Expired, ended and malformed sessions are refused alike.
   */
  async session(token: string): Promise<AuthResult> {
    if (!looksLikeSessionToken(token)) return { auth: null, error: SESSION_ENDED };
    const id = sessionIdOf(token);
    let session = this.sessions.get(id);
    if (!session) {
      const generation = this.sessions.startLookup();
      const row = await this.db.prisma.memberSession.findUnique({
        where: { id },
        select: {
          id: true,
          memberId: true,
          workspaceId: true,
          mode: true,
          expiresAt: true,
          member: { select: { role: true, status: true } },
        },
      });
      if (row?.member.status !== 'ACTIVE') return { auth: null, error: SESSION_ENDED };
      session = {
        id: row.id,
        memberId: row.memberId,
        workspaceId: row.workspaceId,
        mode: row.mode,
        role: row.member.role,
        expiresAt: row.expiresAt,
      };
      this.sessions.store(session, generation);
    }
    if (session.expiresAt.getTime() <= Date.now()) return { auth: null, error: SESSION_ENDED };
    this.touchSession(session.id);
    return {
      auth: {
        workspaceId: session.workspaceId,
        mode: session.mode,
        role: session.role,
        apiKeyId: null,
        partnerId: null,
        credential: 'member_session',
        memberId: session.memberId,
        sessionId: session.id,
      },
      error: null,
      expiresAt: session.expiresAt,
    };
  }

  /** Fire-and-forget lastSeenAt update, at most once a minute per session and process. */
  private touchSession(sessionId: string): void {
    const now = Date.now();
    if (now - (this.sessionsTouched.get(sessionId) ?? 0) < LAST_USED_RESOLUTION_MS) return;
    if (this.sessionsTouched.size >= KEY_CACHE_MAX_ENTRIES) this.sessionsTouched.clear();
    this.sessionsTouched.set(sessionId, now);
    outsideRequest(() =>
      this.db.prisma.memberSession
        .updateMany({ where: { id: sessionId }, data: { lastSeenAt: new Date(now) } })
        .catch(() => this.sessionsTouched.delete(sessionId)),
    );
  }

  /** The key was revoked: stop accepting it (and its tokens) from the cache at once. */
  forget(apiKeyId: string): void {
    this.keys.forget(apiKeyId);
  }

  /** A refresh token of this family was replayed: refuse the family's access tokens from now on. */
  revokeFamily(familyId: string): void {
    this.families.revoke(familyId);
  }

  private async familyRevoked(familyId: string): Promise<boolean> {
    const cached = this.families.get(familyId);
    if (cached !== null) return cached;
    const generation = this.families.startLookup();
    const revoked =
      (await this.db.prisma.refreshToken.findFirst({
        where: { familyId, revokedAt: { not: null } },
        select: { id: true },
      })) !== null;
    this.families.store(familyId, revoked, generation);
    return revoked;
  }

  private async keyBy(where: { secretHash: string } | { id: string }): Promise<KeyFacts | null> {
    const cached = 'id' in where ? this.keys.byIdGet(where.id) : this.keys.byHashGet(where.secretHash);
    if (cached) return cached;
    const generation = this.keys.startLookup();
    const row = await this.db.prisma.apiKey.findUnique({
      where,
      select: { id: true, workspaceId: true, mode: true, role: true, secretHash: true, revokedAt: true },
    });
    if (!row) return null;
    const key: KeyFacts = {
      id: row.id,
      workspaceId: row.workspaceId,
      mode: row.mode,
      role: row.role,
      secretHash: row.secretHash,
      revoked: row.revokedAt !== null,
    };
    this.keys.store(key, generation);
    return key;
  }

  async authenticate(header: string | null | undefined): Promise<AuthResult> {
    if (!header) return { auth: null, error: null };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      return {
        auth: null,
        error: 'The Authorization header must be `Bearer <secret key | access token | partner token>`.',
      };
    }
    const token = match[1];
    if (secretKeyMode(token)) return this.secretKey(token);
    if (looksLikeJwt(token)) return this.jwt(token);
    return { auth: null, error: 'The bearer credential is not a refgraph secret key or token.' };
  }

  private async secretKey(secret: string): Promise<AuthResult> {
    const hash = hashSecret(secret);
    const key = await this.keyBy({ secretHash: hash });
    if (!key || !sameHash(key.secretHash, hash)) return { auth: null, error: 'Unknown secret key.' };
    if (key.revoked) return { auth: null, error: 'This secret key has been revoked.' };
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
    const { claims, expiresAt } = verified;
    const key = await this.keyBy({ id: claims.apiKeyId });
    if (!key || key.workspaceId !== claims.workspaceId || key.mode !== claims.mode)
      return { auth: null, error: 'The token is not valid for this installation.' };
    if (key.revoked) return { auth: null, error: 'The key this token was issued from has been revoked.' };
    if (claims.familyId && (await this.familyRevoked(claims.familyId))) {
      return {
        auth: null,
        error:
          'This access token was revoked because a refresh token of its family was used twice: issue a new one with the key pair.',
      };
    }
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
      expiresAt,
      familyId: claims.familyId ?? null,
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
