import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from '../logger.js';

/** One limit: `points` per `durationSeconds` for each key; 0 points = no limit. */
export interface RateLimit {
  points: number;
  durationSeconds: number;
}

export interface RateLimitConfig {
  /** GraphQL operations per credential (HTTP requests and WebSocket operations). */
  credential: RateLimit;
  /** GraphQL requests without a valid credential, per IP. */
  anonymous: RateLimit;
  /** issueAccessToken and refreshAccessToken, per IP, with or without a credential. */
  tokens: RateLimit;
  /** `GET /r/{code}`, per IP. */
  redirect: RateLimit;
  /** `POST /integrations/stripe/{id}` (Stripe's webhook deliveries), per integration. */
  stripe: RateLimit;
  /** Failed member sign-ins per email and IP (a 15-minute window). */
  signInFailures: RateLimit;
  /** Failed member sign-ins per IP, whatever the email (a 15-minute window). */
  signInFailuresPerIp: RateLimit;
}

/** Allowed, or refused with the seconds after which the next one would be allowed. */
export type Verdict = { allowed: true } | { allowed: false; retryAfterSeconds: number };

const ALLOWED: Verdict = { allowed: true };

/**
 * Fixed-window counters (rate-limiter-flexible): shared by every instance through Redis when
 * REDIS_URL is set, in this process otherwise. When Redis cannot answer, each instance counts in
 * memory meanwhile (the insurance limiter) instead of refusing or letting everything through.
 */
export class RateLimiter {
  private readonly limiters: Record<keyof RateLimitConfig, RateLimiterAbstract | null>;
  private lastStoreError = 0;

  constructor(config: RateLimitConfig, options: { redis?: Redis | null; keyPrefix: string; logger?: Logger }) {
    const make = (name: keyof RateLimitConfig): RateLimiterAbstract | null => {
      const { points, durationSeconds } = config[name];
      if (points <= 0) return null;
      const base = { points, duration: durationSeconds, keyPrefix: `${options.keyPrefix}rl:${name}` };
      if (!options.redis) return new RateLimiterMemory(base);
      return new RateLimiterRedis({
        ...base,
        storeClient: options.redis,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory(base),
      });
    };
    this.limiters = {
      credential: make('credential'),
      anonymous: make('anonymous'),
      tokens: make('tokens'),
      redirect: make('redirect'),
      stripe: make('stripe'),
      signInFailures: make('signInFailures'),
      signInFailuresPerIp: make('signInFailuresPerIp'),
    };
    this.logger = options.logger;
  }

  private readonly logger: Logger | undefined;

  /** Give back one use of `key` (a sign-in that succeeded was not a failure after all). */
  async reward(name: keyof RateLimitConfig, key: string): Promise<void> {
    await this.limiters[name]?.reward(key, 1).catch(() => undefined);
  }

  /** Count one use of `key` against the `name` limit. */
  async consume(name: keyof RateLimitConfig, key: string): Promise<Verdict> {
    const limiter = this.limiters[name];
    if (!limiter) return ALLOWED;
    try {
      await limiter.consume(key);
      return ALLOWED;
    } catch (error) {
      if (error instanceof RateLimiterRes)
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(error.msBeforeNext / 1000)) };
      // Neither Redis nor the insurance limiter answered: let the request through, say so (at most once a minute).
      if (Date.now() - this.lastStoreError > 60_000) {
        this.lastStoreError = Date.now();
        this.logger?.warn({ err: error, limit: name }, 'rate limiter unavailable; not limiting meanwhile');
      }
      return ALLOWED;
    }
  }
}
