import type { Config } from './config.js';
import type { Database } from './db.js';
import type { Logger } from './logger.js';
import type { AppPubSub } from './pubsub.js';
import type { Authenticator } from './modules/auth/authenticate.js';
import type { TokenSigner } from './modules/auth/tokens.js';
import type { ClickRecorder } from './modules/click/click.service.js';
import type { Auth } from './domain/auth.js';
import type { SecretBox } from './lib/secret-box.js';
import type { RateLimiter } from './lib/rate-limit.js';
import type { CsrfTokens } from './modules/member/session-tokens.js';
import type { SessionCookies } from './modules/member/session-cookies.js';

/** Services shared by every request of one running app. */
export interface AppServices {
  config: Config;
  db: Database;
  logger: Logger;
  /** Signs and verifies access and partner tokens with the installation secret. */
  tokens: TokenSigner;
  /** Resolves credentials to callers; caches looked-up keys for AUTH_CACHE_TTL_MS (`forget` on revocation). */
  authenticator: Authenticator;
  /** Records clicks (batched background writes) and makes/decodes click ids. */
  clicks: ClickRecorder;
  /** Typed topics: the outbox per tenant, key revocations. In memory, or Redis with REDIS_URL. */
  pubsub: AppPubSub;
  /** Seals payment providers' signing secrets (a key derived from the installation secret). */
  providerSecrets: SecretBox;
  /** The rate limits (sign-in failures are counted by the signIn resolver). */
  rateLimiter: RateLimiter;
  /** The CSRF value bound to a member session (HMAC of its token with the installation secret). */
  csrf: CsrfTokens;
}

/** The GraphQL context: read-only facts about the request, plus the app's services. */
export type Context = Readonly<
  AppServices & {
    requestId: string;
    /** null: no credential, or one that was refused (see authError). */
    auth: Auth | null;
    /** Why a presented credential was refused, for the UNAUTHENTICATED message. */
    authError: string | null;
    /** The caller's IP (TRUST_PROXY applies), for per-address limits. */
    clientIp: string | null;
    /**
     * The session cookies of this HTTP response (signIn sets them, signOut clears them); null over
     * WebSockets, where no cookie can be set.
     */
    sessionCookies: SessionCookies | null;
    /**
     * This request's DataLoaders by name, made on first use (graphql/loaders.ts). A subscription
     * event is executed with a context of its own and fresh loaders (realtime/shared-execution.ts).
     */
    loaders: RequestLoaders;
  }
>;

/** The DataLoaders of one request (or one subscription event), created on first use. */
export class RequestLoaders {
  private readonly byName = new Map<string, unknown>();

  get<L>(name: string, create: () => L): L {
    let existing = this.byName.get(name) as L | undefined;
    if (existing === undefined) {
      existing = create();
      this.byName.set(name, existing);
    }
    return existing;
  }
}
