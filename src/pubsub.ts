import { setMaxListeners } from 'node:events';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createPubSub, type PubSub } from 'graphql-yoga';
import { Redis } from 'ioredis';
import { redact } from './config.js';
import type { Mode } from './generated/prisma/enums.js';

/** An outbox row as it travels through pub/sub (JSON-safe: the sequence is a string). */
export interface OutboxEvent {
  id: string;
  workspaceId: string;
  mode: Mode;
  sequence: string;
  type: string;
  programId: string | null;
  partnerId: string | null;
  occurredAt: string;
  payload: Record<string, unknown>;
}

/**
 * Typed topics. Channels are per tenant (`workspaceId:mode`), so a subscriber can only ever be
 * handed its own tenant's events.
 */
export type Topics = {
  outbox: [tenant: string, event: OutboxEvent];
  /** An API key was revoked: close the subscriptions that authenticated with it. */
  keyRevoked: [payload: { apiKeyId: string }];
  /** A refresh token was replayed: its family's access tokens end, and their subscriptions close. */
  tokenFamilyRevoked: [payload: { familyId: string }];
  /**
   * Member sessions changed: one (`sessionId`: sign-out, mode switch) or all of a member's
   * (`memberId`: removal). Caches drop them; with `ended`, their WebSockets close (4403).
   */
  memberSessions: [payload: { sessionId?: string; memberId?: string; ended: boolean }];
};

export type AppPubSub = PubSub<Topics> & {
  /**
   * Resolves once a subscription made to this topic receives what any instance publishes (with
   * Redis: once the SUBSCRIBE is acknowledged; in memory: at once). Await it after subscribing and
   * before reading what is already stored, so nothing published in between is missed.
   */
  listening(routingKey: 'outbox', id: string): Promise<void>;
};

export function tenantChannel(workspaceId: string, mode: Mode): string {
  return `${workspaceId}:${mode}`;
}

export interface PubSubHandle {
  pubsub: AppPubSub;
  /** true with Redis: one publish reaches every instance. */
  distributed: boolean;
  /** The Redis connection for small coordination state (dispatch cursors), when distributed. */
  redis: Redis | null;
  /** Prefix of this installation's Redis keys and channels (REDIS_PREFIX): `redis` users put it before every key. */
  redisPrefix: string;
  close(): Promise<void>;
}

export interface PubSubOptions {
  /** REDIS_URL; undefined: in memory. */
  redisUrl: string | undefined;
  /** REDIS_PREFIX: put before every channel, so that installations sharing one Redis never hear each other. */
  redisPrefix: string;
}

/** In memory by default; with REDIS_URL, Yoga's Redis event target so every instance sees every publish. */
export async function createAppPubSub({ redisUrl, redisPrefix }: PubSubOptions): Promise<PubSubHandle> {
  if (!redisUrl) {
    // Every subscriber of a tenant listens on its topic: no "possible memory leak" warning past 10.
    const eventTarget = new EventTarget();
    setMaxListeners(0, eventTarget);
    const pubsub = Object.assign(createPubSub<Topics>({ eventTarget }), { listening: async () => {} });
    return { pubsub, distributed: false, redis: null, redisPrefix, close: async () => {} };
  }
  const options = { lazyConnect: true, maxRetriesPerRequest: 3, enableOfflineQueue: true };
  const publishClient = new Redis(redisUrl, options);
  const subscribeClient = new Redis(redisUrl, options);
  try {
    await Promise.all([publishClient.connect(), subscribeClient.connect()]);
  } catch (error) {
    publishClient.disconnect();
    subscribeClient.disconnect();
    throw new Error(`Cannot connect to Redis at ${redact(redisUrl)} (REDIS_URL): ${(error as Error).message}`);
  }
  // The event target names Redis channels after the topics (`outbox:<tenant>`, `keyRevoked`): the
  // clients it is given put the installation's prefix before them, and take it off what arrives.
  const publisher = {
    publish: (channel: string, message: string) => publishClient.publish(redisPrefix + channel, message),
  };
  // The event target sends SUBSCRIBE without waiting for it; keep each one's acknowledgement so a
  // subscriber can wait until it is actually listening (see AppPubSub.listening).
  const subscribed = new Map<string, Promise<void>>();
  const subscriber = {
    on: (event: 'message', listener: (channel: string, message: string) => void) =>
      subscribeClient.on(event, (channel: string, message: string) => {
        if (channel.startsWith(redisPrefix)) listener(channel.slice(redisPrefix.length), message);
      }),
    subscribe: (channel: string) => {
      const done = subscribeClient.subscribe(redisPrefix + channel).then(() => {});
      done.catch(() => {}); // reported to the subscriber that awaits listening()
      subscribed.set(channel, done);
      return done;
    },
    unsubscribe: (channel: string) => {
      subscribed.delete(channel);
      return subscribeClient.unsubscribe(redisPrefix + channel).catch(() => 0);
    },
  };
  const eventTarget = createRedisEventTarget<never>({
    publishClient: publisher as unknown as Redis,
    subscribeClient: subscriber as unknown as Redis,
  });
  const pubsub = Object.assign(createPubSub<Topics>({ eventTarget: eventTarget as never }), {
    listening: async (routingKey: 'outbox', id: string) => {
      await subscribed.get(`${routingKey}:${id}`);
    },
  });
  return {
    pubsub,
    distributed: true,
    redis: publishClient,
    redisPrefix,
    close: async () => {
      await Promise.allSettled([publishClient.quit(), subscribeClient.quit()]);
    },
  };
}
