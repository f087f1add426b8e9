// Several instances on one database: real `refgraph serve` processes (from the sources, through
// tsx), on a fresh PostgreSQL database of their own, with and without Redis.
//
// - With REDIS_URL, one instance at a time (the holder of an advisory lock) dispatches the outbox to
//   Redis, and every instance's subscribers receive it: a change made on A reaches a subscriber on B
//   exactly once. When the leader dies, another instance takes over from the cursors kept in Redis.
// - Without Redis, every instance dispatches to its own subscribers (LISTEN/NOTIFY): a change made
//   on A reaches a subscriber on B all the same.
//
// Needs PostgreSQL (TEST_DATABASE_URL) and, for the Redis part, a reachable Redis (TEST_REDIS_URL,
// default redis://127.0.0.1:6379); skipped with the reason in the test name otherwise. Every wait is
// for something the processes say (a log line, a message), bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { rowIdOf } from '../src/lib/global-id.js';
import { eventCursor } from '../src/modules/events/events.graphql.js';
import { databaseUrlFor, redisReachable, testRedisUrl } from './helpers/backend.js';

const root = path.resolve(import.meta.dirname, '..');
const pgBase = process.env.TEST_DATABASE_URL || null;
const redisUrl = testRedisUrl;
/** The instances' REDIS_PREFIX (the default): before every Redis channel and key of theirs. */
const REDIS_PREFIX = 'refgraph:';
/** Where the dispatcher keeps its cursors in Redis (src/modules/events/dispatcher.ts). */
const CURSORS_KEY = `${REDIS_PREFIX}dispatch:cursors`;

const pgSkip = pgBase ? null : 'TEST_DATABASE_URL is not set: two server processes need a shared PostgreSQL database';
const redisSkip =
  pgSkip ?? ((await redisReachable(redisUrl)) ? null : `Redis is not reachable at ${redisUrl} (TEST_REDIS_URL)`);
const titled = (title: string, skip: string | null) => (skip ? `${title} (skipped: ${skip})` : title);

// ---------------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------------

/** The variables the tests set themselves: none leaks in from the environment running the tests. */
const OWN_VARS = [
  'DATABASE_URL',
  'REDIS_URL',
  'REDIS_PREFIX',
  'PORT',
  'HOST',
  'LOG_LEVEL',
  'MIGRATE_ON_START',
  'REFGRAPH_DATA_DIR',
  'APPROVAL_JOB_INTERVAL_MS',
  'EVENT_POLL_INTERVAL_MS',
  'NODE_ENV',
];

function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const name of OWN_VARS) delete base[name];
  return { ...base, ...env };
}

/** `refgraph …args` to completion (at most 60 s): its stdout, or a failure with what it said. */
function refgraph(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: root,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`refgraph ${args.join(' ')}: exit ${code}\n${stderr}`)),
    );
  });
}

interface Instance {
  name: string;
  url: string;
  child: ChildProcess;
  /** The `times`th log record (default the first) whose message contains `msg` (logged or to come), within `timeoutMs`. */
  logged(msg: string, timeoutMs?: number, times?: number): Promise<Record<string, unknown>>;
  hasLogged(msg: string): boolean;
  /** How many log records so far have a message that contains `msg`. */
  countLogged(msg: string): number;
  /** SIGKILL: no graceful stop, its database connections (and the advisory lock) die with it. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const instances: Instance[] = [];

/** `refgraph serve` on a free port; resolves once it listens. */
async function startInstance(name: string, env: Record<string, string>): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
    cwd: root,
    env: cleanEnv({
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      MIGRATE_ON_START: 'false',
      APPROVAL_JOB_INTERVAL_MS: '0',
      EVENT_POLL_INTERVAL_MS: '200',
      ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const records: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; times: number; resolve: (r: Record<string, unknown>) => void }> = [];
  const matching = (msg: string) => records.filter((r) => String(r['msg']).includes(msg));
  let stderr = '';
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines.filter(Boolean)) {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      records.push(record);
      for (const waiter of waiters.filter(
        (w) => String(record['msg']).includes(w.msg) && matching(w.msg).length >= w.times,
      )) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(record);
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const logged = (msg: string, timeoutMs = 20_000, times = 1) => {
    const seen = matching(msg)[times - 1];
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${name} did not log "${msg}" within ${timeoutMs} ms; stderr:\n${stderr}`)),
        timeoutMs,
      );
      const failed = () => reject(new Error(`${name} exited before logging "${msg}"; stderr:\n${stderr}`));
      void exited.then(failed);
      waiters.push({
        msg,
        times,
        resolve: (record) => {
          clearTimeout(timer);
          resolve(record);
        },
      });
    });
  };
  const listening = await logged('refgraph listening on', 60_000);
  const instance: Instance = {
    name,
    url: `http://127.0.0.1:${Number(listening['port'])}`,
    child,
    logged,
    hasLogged: (msg) => matching(msg).length > 0,
    countLogged: (msg) => matching(msg).length,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  instances.push(instance);
  return instance;
}

// ---------------------------------------------------------------------------------------------------
// Database, clients
// ---------------------------------------------------------------------------------------------------

interface Fixture {
  databaseUrl: string;
  workspaceId: string;
  token: string;
  drop(): Promise<void>;
}

/** A fresh database migrated by `refgraph migrate`, and a workspace made with `refgraph workspace create`. */
async function freshDatabase(): Promise<Fixture> {
  const name = `refgraph_multi_${randomBytes(5).toString('hex')}`;
  const databaseUrl = databaseUrlFor(pgBase!, name);
  const env = { DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' };
  await refgraph(['migrate'], env);
  const created = JSON.parse(await refgraph(['workspace', 'create', '--name', 'Multi', '--json'], env)) as {
    workspace: { id: string };
    keys: { test: string };
  };
  return {
    databaseUrl,
    workspaceId: rowIdOf('Workspace', created.workspace.id)!, // the CLI prints the global id
    token: created.keys.test,
    drop: async () => {
      const admin = new pg.Client({ connectionString: pgBase! });
      await admin.connect();
      try {
        await admin.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}

async function gql<T>(
  instance: Instance,
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const res = await fetch(`${instance.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data!;
}

const clients: Client[] = [];

function wsClient(instance: Instance, token: string): Client & { closed: Promise<number> } {
  let onClosed: (code: number) => void = () => {};
  const closed = new Promise<number>((resolve) => (onClosed = resolve));
  const client = createClient({
    url: `${instance.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
    on: { closed: (event) => onClosed((event as { code: number }).code) },
  });
  clients.push(client);
  return Object.assign(client, { closed });
}

/** Every result of a subscription, in order, with a bounded wait for the next ones. */
interface Collected<T> {
  results: T[];
  /** Wait until `count` results have arrived (at most `timeoutMs`), then all of them. */
  until(count: number, timeoutMs?: number): Promise<T[]>;
  close(): void;
}

function collect<T>(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  pick: (data: Record<string, unknown>) => T,
): Collected<T> {
  const results: T[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let failure: unknown = null;
  const settle = () => {
    for (const waiter of waiters.filter((w) => results.length >= w.count || failure)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  const unsubscribe = client.subscribe<Record<string, unknown>>(
    { query, variables },
    {
      next: (value) => {
        if (value.errors) failure = new Error(JSON.stringify(value.errors));
        else results.push(pick(value.data!));
        settle();
      },
      error: (error) => {
        failure = error;
        settle();
      },
      complete: () => {},
    },
  );
  return {
    results,
    until: async (count, timeoutMs = 15_000) => {
      if (results.length < count && !failure) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () =>
              reject(
                new Error(`${results.length} of ${count} results within ${timeoutMs} ms: ${JSON.stringify(results)}`),
              ),
            timeoutMs,
          );
          waiters.push({
            count,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
        });
      }
      if (failure) throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
      return results.slice();
    },
    close: unsubscribe,
  };
}

const EVENTS = 'subscription($after: String) { events(after: $after) { cursor sequence type } }';
type EventResult = { cursor: string; sequence: number; type: string };
const pickEvent = (data: Record<string, unknown>): EventResult => {
  const e = data['events'] as { cursor: string; sequence: string; type: string };
  return { cursor: e.cursor, sequence: Number(e.sequence), type: e.type };
};
const FROM_START = { after: eventCursor(0n) };

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function createPartner(instance: Instance, token: string, externalId: string): Promise<void> {
  await gql(instance, token, 'mutation($e: String!) { createPartner(input: { externalId: $e }) { partner { id } } }', {
    e: externalId,
  });
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await Promise.all(instances.map((i) => i.stop()));
});

// ---------------------------------------------------------------------------------------------------
// With Redis
// ---------------------------------------------------------------------------------------------------

describe.skipIf(redisSkip !== null)(titled('two instances sharing Redis', redisSkip), { timeout: 120_000 }, () => {
  let fixture: Fixture;
  let a: Instance;
  let b: Instance;
  let leader: Instance;
  let follower: Instance;
  /** A plain Redis subscriber on the tenant's channel: what the instances publish, as published. */
  let spy: Redis;
  const published: number[] = [];
  const spyWaiters: Array<{ count: number; resolve: () => void }> = [];
  /** What was published on the channel once `count` messages have been (at most 15 s). */
  const publishedUntil = async (count: number): Promise<number[]> => {
    if (published.length < count) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${published.length} of ${count} publishes within 15 s`)),
          15_000,
        );
        spyWaiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }
    return published.slice();
  };
  const channel = () => `${REDIS_PREFIX}outbox:${fixture.workspaceId}:TEST`;

  beforeAll(async () => {
    fixture = await freshDatabase();
    spy = new Redis(redisUrl);
    spy.on('message', (_channel: string, message: string) => {
      published.push(Number((JSON.parse(message) as { sequence: string }).sequence));
      for (const waiter of spyWaiters.filter((w) => published.length >= w.count)) {
        spyWaiters.splice(spyWaiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
    await spy.subscribe(channel());
    const env = { DATABASE_URL: fixture.databaseUrl, REDIS_URL: redisUrl };
    [a, b] = await Promise.all([startInstance('A', env), startInstance('B', env)]);
    // Exactly one of them holds the advisory lock and says so.
    const lead = 'this instance now dispatches events to the shared pub/sub';
    await Promise.race([a.logged(lead), b.logged(lead)]);
    [leader, follower] = a.hasLogged(lead) ? [a, b] : [b, a];
    expect(follower.hasLogged(lead)).toBe(false);
  });

  afterAll(async () => {
    if (!fixture) return;
    spy?.disconnect();
    const redis = new Redis(redisUrl);
    await redis.hdel(CURSORS_KEY, `${fixture.workspaceId}:TEST`, `${fixture.workspaceId}:LIVE`);
    redis.disconnect();
    await Promise.all([a, b].map((i) => i?.stop()));
    await fixture.drop();
  });

  it('a change made on one instance reaches subscribers on the other exactly once, published once by the leader', async () => {
    const token = fixture.token;
    // Subscribers on the follower: the whole stream, and conversions.
    const onFollower = wsClient(follower, token);
    const events = collect(onFollower, EVENTS, FROM_START, pickEvent);
    const conversions = collect(
      onFollower,
      'subscription { conversionRecorded { id } }',
      {},
      (d) => (d['conversionRecorded'] as { id: string }).id,
    );

    // Changes made on the leader and on the follower (one instance's mutation, the other's subscriber).
    const program = await gql<{ createProgram: { program: { id: string } } }>(
      leader,
      token,
      'mutation { createProgram(input: { name: "Multi", type: REFERRAL, currency: "USD" }) { program { id } } }',
    );
    const programId = program.createProgram.program.id;
    await gql(
      follower,
      token,
      'mutation($p: ID!) { createRewardRule(input: { programId: $p, trigger: SIGNUP, kind: CASH, amountType: FIXED, fixedAmount: { amount: "5.00", currency: "USD" } }) { userErrors { code } } }',
      { p: programId },
    );
    const partner = await gql<{ createPartner: { partner: { links: Array<{ code: string }> } } }>(
      follower,
      token,
      'mutation($p: ID!) { createPartner(input: { externalId: "ann", name: "Ann", programIds: [$p] }) { partner { links { code } } } }',
      { p: programId },
    );
    const code = partner.createPartner.partner.links[0]!.code;
    // The set-up's own events: the program, its rule, the partner, its enrollment and default link.
    const setup = [
      [1, 'program.created'],
      [2, 'reward_rule.created'],
      [3, 'partner.created'],
      [4, 'enrollment.status_changed'],
      [5, 'link.created'],
    ];
    expect((await events.until(setup.length)).map((e) => [e.sequence, e.type])).toEqual(setup);

    let signups = 0;
    const signup = async () => {
      const key = `signup-${++signups}`;
      const data = await gql<{ recordConversion: { conversion: { id: string } } }>(
        leader,
        token,
        'mutation($k: String!, $c: String!) { recordConversion(input: { type: SIGNUP, idempotencyKey: $k, referredExternalId: $k, code: $c }) { conversion { id } } }',
        { k: key, c: code },
      );
      return data.recordConversion.conversion.id;
    };
    // conversionRecorded is live-only and a client cannot tell when a subscription has started:
    // record conversions until one arrives, then every later one must arrive exactly once.
    const recorded: string[] = [];
    for (let attempt = 0; conversions.results.length === 0; attempt++) {
      expect(attempt, 'conversionRecorded never delivered a conversion').toBeLessThan(10);
      recorded.push(await signup());
      await conversions.until(1, 1000).catch(() => {});
    }
    const firstSeen = recorded.indexOf(conversions.results[0]!);
    expect(firstSeen).toBeGreaterThanOrEqual(0);
    recorded.push(await signup(), await signup());
    expect(await conversions.until(recorded.length - firstSeen)).toEqual(recorded.slice(firstSeen));

    // The whole stream reached the follower's subscriber once each, in order, and the leader alone
    // published each event once: the set-up's, then per signup a conversion and a reward.
    const total = setup.length + 2 * recorded.length;
    const all = await events.until(total);
    expect(all.map((e) => e.sequence)).toEqual(range(1, total));
    expect(all.filter((e) => e.type === 'conversion.recorded')).toHaveLength(recorded.length);
    expect(await publishedUntil(total)).toEqual(range(1, total));
    // Nothing more arrives after the last one: a later event is the next result.
    await createPartner(follower, token, 'last');
    expect((await events.until(total + 1)).map((e) => e.sequence)).toEqual(range(1, total + 1));
    expect(await conversions.until(recorded.length - firstSeen)).toHaveLength(recorded.length - firstSeen);
    expect(await publishedUntil(total + 1)).toEqual(range(1, total + 1));
    events.close();
    conversions.close();
  });

  it('a closed subscription lets go of its Redis channel, even on a quiet tenant', async () => {
    const numsub = async () => {
      const redis = new Redis(redisUrl);
      try {
        const reply = (await redis.pubsub('NUMSUB', channel())) as [string, number];
        return Number(reply[1]);
      } finally {
        redis.disconnect();
      }
    };
    const client = wsClient(follower, fixture.token);
    const events = collect(client, EVENTS, FROM_START, pickEvent);
    await events.until(1);
    expect(await numsub()).toBe(2); // the spy and the follower
    await client.dispose();
    // The follower unsubscribes when the socket closes, without waiting for the tenant's next event.
    const deadline = Date.now() + 10_000;
    while ((await numsub()) !== 1) {
      expect(Date.now(), 'the follower still listens on the channel 10 s after its only subscriber left').toBeLessThan(
        deadline,
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  it('a leader whose lock connection is cut stops dispatching and says so; one instance takes the lock again, and changes are still published once', async () => {
    const token = fixture.token;
    const leads = 'this instance now dispatches events to the shared pub/sub';
    const ledBefore = new Map([a, b].map((i) => [i, i.countLogged(leads)]));
    // The dispatch lock's own connection ends (a network cut, a restarted pooler): PostgreSQL frees the lock.
    const admin = new pg.Client({ connectionString: fixture.databaseUrl });
    await admin.connect();
    try {
      const cut = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_locks
          WHERE locktype = 'advisory' AND classid = 0 AND objid = 1919249001 AND granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      expect(cut.rowCount).toBe(1);
    } finally {
      await admin.end();
    }
    await leader.logged('lost the dispatch lock');
    // Whichever instance's poll comes first takes the lock, and says so once more.
    const next = await Promise.race([a, b].map((i) => i.logged(leads, 20_000, ledBefore.get(i)! + 1).then(() => i)));
    [leader, follower] = next === a ? [a, b] : [b, a];
    const before = published.length;
    await createPartner(follower, token, 'after-lock-cut');
    const after = await publishedUntil(before + 1);
    const sequence = after.at(-1)!;
    await createPartner(follower, token, 'after-lock-cut-2');
    const later = await publishedUntil(before + 2);
    // Each change published once: the one that lost its lock publishes nothing more.
    expect(later.filter((s) => s === sequence)).toHaveLength(1);
    expect(later.slice(before)).toEqual([sequence, sequence + 1]);
  });

  it('when the leader dies, the survivor takes over: nothing committed afterwards is lost, and a subscriber resuming after its last cursor gets what it missed', async () => {
    const token = fixture.token;
    await createPartner(leader, token, 'before-failover');
    const before = Number(
      (
        await gql<{ events: { edges: Array<{ node: { sequence: string } }> } }>(
          follower,
          token,
          '{ events(first: 100) { edges { node { sequence } } } }',
        )
      ).events.edges.at(-1)!.node.sequence,
    );
    // One subscriber on each instance, both caught up.
    const survivorClient = wsClient(follower, token);
    const onSurvivor = collect(survivorClient, EVENTS, FROM_START, pickEvent);
    const doomedClient = wsClient(leader, token);
    const onDoomed = collect(doomedClient, EVENTS, FROM_START, pickEvent);
    await Promise.all([onSurvivor.until(before), onDoomed.until(before)]);
    const lastSeen = (await onDoomed.until(before)).at(-1)!;

    await leader.kill();
    expect(await doomedClient.closed).not.toBe(1000);
    // Committed while no instance dispatches.
    for (const id of ['after-1', 'after-2', 'after-3']) await createPartner(follower, token, id);
    await follower.logged('this instance now dispatches events to the shared pub/sub');
    expect((await onSurvivor.until(before + 3)).map((e) => e.sequence)).toEqual(range(1, before + 3));

    // The client that was on the dead instance reconnects to the survivor with its last cursor.
    const resumed = collect(wsClient(follower, token), EVENTS, { after: lastSeen.cursor }, pickEvent);
    expect((await resumed.until(3)).map((e) => e.sequence)).toEqual(range(before + 1, before + 3));
    await createPartner(follower, token, 'after-4');
    expect((await resumed.until(4)).map((e) => e.sequence)).toEqual(range(before + 1, before + 4));
    expect((await onSurvivor.until(before + 4)).map((e) => e.sequence)).toEqual(range(1, before + 4));
    // The survivor published what was committed after the failover (and perhaps again an event the
    // dead leader had published without storing its cursor: at least once, which reached nobody twice).
    expect(new Set(published.filter((s) => s > before))).toEqual(new Set(range(before + 1, before + 4)));
    await createPartner(follower, token, 'after-5');
    expect((await resumed.until(5)).map((e) => e.sequence)).toEqual(range(before + 1, before + 5));
    resumed.close();
    onSurvivor.close();
  });
});

// ---------------------------------------------------------------------------------------------------
// Without Redis
// ---------------------------------------------------------------------------------------------------

describe.skipIf(pgSkip !== null)(titled('two instances without Redis', pgSkip), { timeout: 120_000 }, () => {
  let fixture: Fixture;
  let a: Instance;
  let b: Instance;

  beforeAll(async () => {
    fixture = await freshDatabase();
    [a, b] = await Promise.all([
      startInstance('A', { DATABASE_URL: fixture.databaseUrl }),
      startInstance('B', { DATABASE_URL: fixture.databaseUrl }),
    ]);
  });
  afterAll(async () => {
    if (!fixture) return;
    await Promise.all([a, b].map((i) => i?.stop()));
    await fixture.drop();
  });

  it('a change made on A reaches a subscriber on B (each instance dispatches to its own subscribers), once', async () => {
    const onB = collect(wsClient(b, fixture.token), EVENTS, FROM_START, pickEvent);
    const onA = collect(wsClient(a, fixture.token), EVENTS, FROM_START, pickEvent);
    await createPartner(a, fixture.token, 'one');
    expect(await onB.until(1)).toMatchObject([{ sequence: 1, type: 'partner.created' }]);
    await createPartner(a, fixture.token, 'two');
    await createPartner(b, fixture.token, 'three');
    expect((await onB.until(3)).map((e) => e.sequence)).toEqual([1, 2, 3]);
    expect((await onA.until(3)).map((e) => e.sequence)).toEqual([1, 2, 3]);
    await createPartner(a, fixture.token, 'four');
    expect((await onB.until(4)).map((e) => e.sequence)).toEqual([1, 2, 3, 4]);
    onA.close();
    onB.close();
  });
});
