// Subscription fan-out: N subscribers on one instance, events committed at a fixed rate, next to a
// raw `ws` broadcast of the same messages to the same N clients, measured in the same run.
//
// - refgraph: the real server (buildApp) runs in this process, so its memory can be read before and
//   after the subscribers connect; each subscriber is a WebSocket speaking graphql-transport-ws
//   with `subscription { events(after: …) { sequence type payload } }`, all with the same key,
//   document and variables (so one outbox event → one execution and one serialization, shared,
//   and one message per subscriber; see src/realtime/shared-execution.ts). Events are appended with
//   appendEvents, each in its own transaction, at a fixed rate; the time after COMMIT returns is the
//   start of each delivery's latency.
// - raw ws: a bare `ws` WebSocketServer in this process sends each subscriber the same message
//   (same shape and size as refgraph's `next` message) at the same rate; the time of the
//   broadcast call is the start of each delivery's latency.
// - The subscribers run in a child process (one event loop for all of them, the same for both
//   systems) that timestamps every message on arrival; both processes read the same clock.
//
// - The app is loaded compiled by tsc, as `npm start` runs it (see useCompiledApp); `--tsx` loads
//   the TypeScript sources through tsx instead (about 4 KiB more per subscriber: see there).
//
// Per scenario: delivery latency p50/p99 (commit or send → arrival), deliveries/s, lost (expected
// deliveries not arrived within the drain window: 20 s, or twice the duration, after the last
// event; quick: 6 s), duplicates, memory per subscriber (heap + external, and RSS, after − before
// connecting, / N, after a full GC), the server's event loop while the events flowed: how busy
// (utilization) and the longest it was kept from I/O and timers, and how late the sender emitted
// events against their schedule (a saturated raw ws broadcast falls behind without it showing in
// its latencies, which start at the broadcast).
//
//   npm run bench -- --suite fanout [--quick]
//   npx tsx scripts/bench/fanout.ts [--quick] [--subscribers 100,1000] [--rates 10,50] [--duration 10]
//   node --cpu-prof --cpu-prof-dir=.refgraph/prof --import tsx scripts/bench/fanout.ts --subscribers 1000 --rates 50
//   npx tsx scripts/bench/fanout.ts --subscribers 1000 --rates 50 --refgraph-only --profile .refgraph/prof
//
// `--profile DIR` (or BENCH_CPU_PROF=DIR) writes a V8 CPU profile of this process for each
// refgraph scenario's measured window only (the events flowing and their delivery; not the
// connecting, replay or warm-up): fanout-<subscribers>x<rate>.cpuprofile.
//
// Through `npm run bench`, BENCH_FANOUT_SUBSCRIBERS and BENCH_FANOUT_RATES (comma lists) override
// the defaults: 100 and 1000 subscribers at 10 and 50 events/s (quick: 100 subscribers, 3 s);
// BENCH_FANOUT_TSX=1 is --tsx.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { WebSocket, WebSocketServer } from 'ws';
import type { App } from '../../src/app.js';
import { BENCH_RATE_LIMITS, type BenchOptions, type BenchResult, type BenchSuite } from './harness.js';

const SUITE = 'fanout';
const THIS_FILE = fileURLToPath(import.meta.url);
const SUBSCRIPTION = 'subscription Fanout($after: String) { events(after: $after) { sequence type payload } }';
/** Document `k` of a scenario with several: the same selection under another operation name (a group of its own). */
const subscriptionDocument = (k: number) =>
  k === 0
    ? SUBSCRIPTION
    : `subscription Fanout${k}($after: String) { events(after: $after) { sequence type payload } }`;
const EVENT_TYPE = 'balance.credited';
/** Clock shared by both processes (ms since the epoch, sub-millisecond). */
const now = () => performance.timeOrigin + performance.now();

/** An outbox payload of a realistic size (global ids and small facts, about 200 bytes). */
function eventPayload(i: number): Record<string, unknown> {
  return {
    partnerId: Buffer.from(`Partner:${randomUUID()}`).toString('base64'),
    rewardId: Buffer.from(`Reward:${randomUUID()}`).toString('base64'),
    amount: { amount: (10 + (i % 90)).toFixed(2), currency: 'USD' },
    n: i,
  };
}

// ---------------------------------------------------------------------------------------------------
// The subscribers (child process)
// ---------------------------------------------------------------------------------------------------

type ToClients =
  | {
      type: 'connect';
      url: string;
      n: number;
      protocol: 'graphql' | 'raw';
      /** Subscribers share this many sockets (default: one socket each). */
      sockets?: number;
      /** Distinct subscription documents, subscriber i using i % documents (default 1). */
      documents?: number;
      /** Credentials, socket s using tokens[s % tokens.length]. */
      tokens?: string[];
      after?: string;
    }
  /** Wait for events from..to at every subscriber, until `deadlineAt` (on the shared clock) at the latest. */
  | { type: 'await'; from: number; to: number; deadlineAt: number; starts?: Array<[number, number]> }
  | { type: 'close' };

interface DeliveryStats {
  expected: number;
  received: number;
  duplicates: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  firstStart: number;
  lastArrival: number;
  /** Sockets the server closed during the run, by close code. */
  closed: Record<string, number>;
}

type FromClients = { type: 'connected'; failed: number } | { type: 'stats'; stats: DeliveryStats } | { type: 'closed' };

async function runClients(): Promise<void> {
  let sockets: WebSocket[] = [];
  /** Per delivery: subscriber, sequence, arrival time. */
  let subs: number[] = [];
  let seqs: number[] = [];
  let arrivals: number[] = [];
  let last = new Int32Array(0);
  let closed: Record<string, number> = {};
  const send = (message: FromClients) => process.send!(message);

  /** Subscribers per socket (the subscriber of message id k on socket s is s * perSocket + k). */
  let perSocket = 1;
  const socketOf = (index: number) => sockets[Math.floor(index / perSocket)];
  const onMessage = (first: number, data: WebSocket.RawData) => {
    const at = now();
    const message = JSON.parse(String(data)) as {
      id?: string;
      type: string;
      payload?: { data?: { events?: { sequence: string } } };
    };
    if (message.type !== 'next') return;
    const index = perSocket === 1 ? first : first + Number(message.id);
    const sequence = Number(message.payload!.data!.events!.sequence);
    subs.push(index);
    seqs.push(sequence);
    arrivals.push(at);
    if (sequence > last[index]!) last[index] = sequence;
  };

  async function connect(command: Extract<ToClients, { type: 'connect' }>): Promise<number> {
    subs = [];
    seqs = [];
    arrivals = [];
    closed = {};
    last = new Int32Array(command.n);
    const socketCount = Math.min(command.n, command.sockets ?? command.n);
    perSocket = Math.ceil(command.n / socketCount);
    const documents = command.documents ?? 1;
    let failed = 0;
    // Socket s carries subscribers s * perSocket … (s + 1) * perSocket - 1, message ids 0 … perSocket - 1.
    const open = (socketIndex: number) =>
      new Promise<void>((resolve) => {
        const ws =
          command.protocol === 'graphql'
            ? new WebSocket(command.url, 'graphql-transport-ws')
            : new WebSocket(command.url);
        sockets.push(ws);
        ws.on('error', () => {});
        ws.on('close', (code) => {
          closed[code] = (closed[code] ?? 0) + 1;
          resolve();
        });
        const first = socketIndex * perSocket;
        const count = Math.min(perSocket, command.n - first);
        ws.on('open', () => {
          // The raw server is told how many subscribers this socket stands for.
          if (command.protocol === 'raw') {
            if (perSocket > 1) ws.send(String(count));
            return resolve();
          }
          const tokens = command.tokens!;
          const token = tokens[socketIndex % tokens.length];
          ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
        });
        ws.on('message', (data) => {
          if (command.protocol === 'graphql' && String(data).includes('"connection_ack"')) {
            for (let k = 0; k < count; k++)
              ws.send(
                JSON.stringify({
                  id: perSocket === 1 ? randomUUID() : String(k),
                  type: 'subscribe',
                  payload: {
                    query: subscriptionDocument((first + k) % documents),
                    variables: { after: command.after },
                  },
                }),
              );
            return resolve();
          }
          onMessage(first, data);
        });
      });
    // 50 handshakes at a time.
    for (let start = 0; start < socketCount; start += 50) {
      await Promise.all(Array.from({ length: Math.min(50, socketCount - start) }, (_, i) => open(start + i)));
    }
    for (const ws of sockets) if (ws.readyState !== WebSocket.OPEN) failed++;
    return failed;
  }

  async function awaitRange(command: Extract<ToClients, { type: 'await' }>): Promise<DeliveryStats> {
    while (
      now() < command.deadlineAt &&
      last.some((s, i) => s < command.to && socketOf(i)!.readyState === WebSocket.OPEN)
    )
      await sleep(20);
    const starts = new Map(command.starts ?? []);
    const seen = new Set<number>();
    const latencies: number[] = [];
    let inRange = 0;
    let lastArrival = 0;
    for (let i = 0; i < seqs.length; i++) {
      const sequence = seqs[i]!;
      // What arrived after the deadline counts as lost (a command can reach this process late).
      if (sequence < command.from || sequence > command.to || arrivals[i]! > command.deadlineAt) continue;
      inRange++;
      seen.add(subs[i]! * 1e7 + sequence);
      lastArrival = Math.max(lastArrival, arrivals[i]!);
      const start = starts.get(sequence);
      if (start !== undefined) latencies.push(arrivals[i]! - start);
    }
    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]! : 0;
    const expected = last.length * (command.to - command.from + 1);
    return {
      expected,
      received: seen.size,
      duplicates: inRange - seen.size,
      lost: expected - seen.size,
      p50Ms: pct(50),
      p99Ms: pct(99),
      maxMs: latencies.at(-1) ?? 0,
      firstStart: Math.min(...starts.values()),
      lastArrival,
      closed,
    };
  }

  process.on('message', (command: ToClients) => {
    void (async () => {
      if (command.type === 'connect') send({ type: 'connected', failed: await connect(command) });
      else if (command.type === 'await') send({ type: 'stats', stats: await awaitRange(command) });
      else {
        await Promise.all(
          sockets.map(
            (ws) =>
              new Promise<void>((resolve) => {
                if (ws.readyState === WebSocket.CLOSED) return resolve();
                ws.once('close', () => resolve());
                ws.close(1000);
              }),
          ),
        );
        sockets = [];
        send({ type: 'closed' });
      }
    })();
  });
}

// ---------------------------------------------------------------------------------------------------
// The producer (child process): commits events at a fixed rate whatever the server's load
// ---------------------------------------------------------------------------------------------------

type ToProducer =
  | { type: 'open'; databaseUrl: string; workspaceId: string }
  | { type: 'produce'; rate: number; durationMs: number }
  | { type: 'close' };

type FromProducer =
  | { type: 'opened' }
  | { type: 'produced'; starts: Array<[number, number]>; lateMaxMs: number }
  | { type: 'closed' };

async function runProducer(): Promise<void> {
  const { openDatabase } = await appModule<typeof import('../../src/db.js')>('src/db.js');
  const { appendEvents } =
    await appModule<typeof import('../../src/modules/events/outbox.js')>('src/modules/events/outbox.js');
  let db: Awaited<ReturnType<typeof openDatabase>> | null = null;
  let tenant = { workspaceId: '', mode: 'TEST' as const };
  const send = (message: FromProducer) => process.send!(message);
  process.on('message', (command: ToProducer) => {
    void (async () => {
      if (command.type === 'open') {
        db = await openDatabase({ databaseUrl: command.databaseUrl, dataDir: '', poolSize: 4, migrate: false });
        tenant = { workspaceId: command.workspaceId, mode: 'TEST' };
        send({ type: 'opened' });
      } else if (command.type === 'produce') {
        const starts: Array<[number, number]> = [];
        const { lateMaxMs } = await paced(command.rate, command.durationMs, async (i) => {
          // One event per transaction, as a mutation appends it; the time COMMIT returned starts its
          // latency. Events are numbered at commit: the number is read back afterwards, by id.
          const [id] = await db!.prisma.$transaction(
            (tx) => appendEvents(tx, tenant, [{ type: EVENT_TYPE, payload: eventPayload(i) }]),
            {
              maxWait: 60_000,
              timeout: 60_000,
            },
          );
          const committedAt = now();
          const [numbered] = await db!.query<{ sequence: string }>(
            'SELECT "sequence"::text AS "sequence" FROM "Event" WHERE "id" = $1',
            [id],
          );
          starts.push([Number(numbered!.sequence), committedAt]);
        });
        send({ type: 'produced', starts: starts.sort((a, b) => a[0] - b[0]), lateMaxMs });
      } else {
        await db?.close();
        send({ type: 'closed' });
      }
    })();
  });
}

/**
 * The app as production runs it: compiled by tsc (`npm start` runs dist/). Through tsx, every
 * closure the app creates gets its `name` redefined (esbuild's keepNames), which gives it a property
 * array of its own: about 4 KiB more per subscriber, and slower closures. So by default the
 * benchmark compiles src/ into .refgraph/fanout-build (tsconfig.build.json) and loads the app from
 * there; `--tsx` loads the TypeScript sources instead. FANOUT_APP_ROOT tells the helper processes.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUILD_DIR = join(ROOT, '.refgraph', 'fanout-build');

function appModule<T>(path: string): Promise<T> {
  const root = process.env.FANOUT_APP_ROOT || ROOT;
  return import(pathToFileURL(join(root, path)).href) as Promise<T>;
}

/** Compile src/ into BUILD_DIR (a few seconds) and load the app from there. */
function useCompiledApp(log: (line: string) => void): void {
  log(`compiling src/ into ${BUILD_DIR} (tsc -p tsconfig.build.json)`);
  execFileSync(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      BUILD_DIR,
    ],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  process.env.FANOUT_APP_ROOT = BUILD_DIR;
}

/** A helper process of this benchmark (subscribers or producer), and a request/answer channel to it. */
function startChild<To, From>(
  role: 'clients' | 'producer',
): { ask<T extends From>(command: To): Promise<T>; stop(): void } {
  // Not this process's flags (a --cpu-prof of the server must not profile its helpers).
  const child: ChildProcess = fork(THIS_FILE, [`--fanout-${role}`], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return {
    ask: <T extends From>(command: To) =>
      new Promise<T>((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`the benchmark's ${role} process exited (${code})`));
        child.once('exit', onExit);
        child.once('message', (message) => {
          child.off('exit', onExit);
          resolve(message as T);
        });
        child.send(command as object);
      }),
    stop: () => void child.kill(),
  };
}

type Clients = ReturnType<typeof startChild<ToClients, FromClients>>;
type Producer = ReturnType<typeof startChild<ToProducer, FromProducer>>;

// ---------------------------------------------------------------------------------------------------
// The servers (this process)
// ---------------------------------------------------------------------------------------------------

let collect: (() => void) | null = null;
/** A full garbage collection (V8's gc(), exposed on first use). */
function gc(): void {
  if (!collect) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
}

/** Heap (+ external buffers) and RSS after closed sockets and timers have settled and a full GC. */
async function memory(): Promise<{ heap: number; rss: number }> {
  await sleep(250);
  gc();
  await sleep(50);
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external, rss: m.rss };
}

/** Calls `emit(i)` `rate` times a second for `durationMs`, on a fixed schedule (not waiting for the previous one). */
async function paced(
  rate: number,
  durationMs: number,
  emit: (i: number) => Promise<void>,
): Promise<{ count: number; lateMaxMs: number }> {
  const count = Math.max(1, Math.round((rate * durationMs) / 1000));
  const start = performance.now();
  const pending: Array<Promise<void>> = [];
  let lateMaxMs = 0;
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    // A loaded process emits late: its own latency figures then leave that delay out.
    lateMaxMs = Math.max(lateMaxMs, -wait);
    pending.push(emit(i));
  }
  await Promise.all(pending);
  return { count, lateMaxMs };
}

interface Measured extends Spread {
  system: 'refgraph' | 'raw ws';
  subscribers: number;
  rate: number;
  events: number;
  stats: DeliveryStats;
  memPerSubKiB: number;
  rssPerSubKiB: number;
  /** Share of the server's event loop busy while events flowed (1 = saturated). */
  eventLoopUtilization: number;
  /** Longest stretch the server's event loop did not get to I/O and timers while events flowed (ms). */
  eventLoopDelayMaxMs: number;
  deliveriesPerSec: number;
  /**
   * The longest an event was emitted after its scheduled time (raw ws: the broadcast, in this
   * process; refgraph: the producer's transaction). Latencies start at emission, so a sender that
   * falls behind its schedule hides that delay from its own figures.
   */
  lateMaxMs: number;
}

/** How the subscribers are spread: over sockets, documents and credentials (defaults: one socket each, one of each). */
interface Spread {
  sockets?: number;
  documents?: number;
  credentials?: number;
}

interface Scenario extends Spread {
  subscribers: number;
  rate: number;
  /** Events at the same rate before the measured ones (JIT, pools, caches), not measured. */
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  /** Write a CPU profile of each refgraph scenario's measured window here. */
  profileDir?: string;
  /** Write heap snapshots of each refgraph scenario here: before connecting, after the warm-up event. */
  heapDir?: string;
}

class RefgraphServer {
  private lastSequence = 0;

  private constructor(
    readonly wsUrl: string,
    readonly token: string,
    private readonly producer: Producer,
    private readonly drop: () => Promise<void>,
    private readonly newKey: () => Promise<string>,
  ) {}

  private readonly keys: string[] = [];

  /** `count` credentials of the workspace: its key, then more ADMIN keys of the same mode. */
  async tokens(count: number): Promise<string[]> {
    while (this.keys.length < count - 1) this.keys.push(await this.newKey());
    return [this.token, ...this.keys.slice(0, count - 1)];
  }

  static async start(databaseUrl: string): Promise<RefgraphServer> {
    const { createThrowawayDatabase } = await import('./harness.js');
    const { buildApp } = await appModule<typeof import('../../src/app.js')>('src/app.js');
    const { loadConfig } = await appModule<typeof import('../../src/config.js')>('src/config.js');
    const { createWorkspace, createApiKey } = await appModule<
      typeof import('../../src/modules/workspace/workspace.service.js')
    >('src/modules/workspace/workspace.service.js');
    const database = await createThrowawayDatabase(databaseUrl, 'refgraph_bench_fanout');
    let app: App | null = null;
    const producer = startChild<ToProducer, FromProducer>('producer');
    const stop = async () => {
      await producer.ask({ type: 'close' }).catch(() => {});
      producer.stop();
      await app?.stop();
      // The pool's last connections finish closing after stop() resolves: let them, rather than have
      // the drop terminate them (which the server would log as failed connections).
      const { withClient } = await import('./harness.js');
      await withClient(databaseUrl, async (c) => {
        for (let i = 0; i < 40; i++) {
          const { rows } = await c.query<{ n: number }>(
            'select count(*)::int as n from pg_stat_activity where datname = $1',
            [database.name],
          );
          if (rows[0]!.n === 0) return;
          await sleep(50);
        }
      });
      await database.drop();
    };
    try {
      const config = loadConfig({
        DATABASE_URL: database.url,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        MIGRATE_ON_START: 'false',
        APPROVAL_JOB_INTERVAL_MS: '0',
        NODE_ENV: 'production',
        ...BENCH_RATE_LIMITS, // thousands of subscribers with one key from one address, at once
      });
      app = await buildApp({ config });
      const { url } = await app.start();
      const ws = await createWorkspace(app.services.db.prisma, 'Fan-out');
      await producer.ask({ type: 'open', databaseUrl: database.url, workspaceId: ws.workspace.id });
      let keys = 0;
      const newKey = async () =>
        (
          await createApiKey(app!.services.db.prisma, {
            workspaceId: ws.workspace.id,
            mode: 'TEST',
            role: 'ADMIN',
            name: `fan-out ${++keys}`,
          })
        ).secret;
      return new RefgraphServer(`${url.replace(/^http/, 'ws')}/graphql`, ws.keys.test.secret, producer, stop, newKey);
    } catch (error) {
      await stop();
      throw error;
    }
  }

  /** Commit events at `rate` for `durationMs` (in the producer's process); their sequences and commit times. */
  async produce(rate: number, durationMs: number): Promise<Array<[number, number]>> {
    const { starts, lateMaxMs } = await this.producer.ask<Extract<FromProducer, { type: 'produced' }>>({
      type: 'produce',
      rate,
      durationMs,
    });
    this.lastSequence = Math.max(this.lastSequence, ...starts.map(([s]) => s));
    this.lateMaxMs = lateMaxMs;
    return starts;
  }

  /** How late the last produce() started its latest transaction after its scheduled time (ms). */
  lateMaxMs = 0;

  async cursor(): Promise<string> {
    const { eventCursor } = await appModule<typeof import('../../src/modules/events/events.graphql.js')>(
      'src/modules/events/events.graphql.js',
    );
    return eventCursor(BigInt(this.lastSequence));
  }

  stop(): Promise<void> {
    return this.drop();
  }
}

async function measureRefgraph(server: RefgraphServer, clients: Clients, scenario: Scenario): Promise<Measured> {
  const label = `${scenario.subscribers}x${scenario.rate}${scenario.sockets ? `-${scenario.sockets}sockets` : ''}`;
  const before = await memory();
  if (scenario.heapDir) await heapSnapshot(join(scenario.heapDir, `fanout-${label}-before.heapsnapshot`));
  // From the current end of the stream: the warm-up event reaches each subscriber by replay or live.
  const connected = await clients.ask<Extract<FromClients, { type: 'connected' }>>({
    type: 'connect',
    url: server.wsUrl,
    n: scenario.subscribers,
    protocol: 'graphql',
    sockets: scenario.sockets,
    documents: scenario.documents,
    tokens: await server.tokens(scenario.credentials ?? 1),
    after: await server.cursor(),
  });
  if (connected.failed) throw new Error(`${connected.failed} subscribers could not connect`);
  const [[warm]] = (await server.produce(1, 1)) as [[number, number]];
  const ready = await clients.ask<Extract<FromClients, { type: 'stats' }>>({
    type: 'await',
    from: warm,
    to: warm,
    deadlineAt: now() + 120_000,
  });
  if (ready.stats.lost) throw new Error(`${ready.stats.lost} subscribers did not receive the warm-up event`);
  const after = await memory();
  if (scenario.heapDir) await heapSnapshot(join(scenario.heapDir, `fanout-${label}-after.heapsnapshot`));

  if (scenario.warmupMs > 0) await server.produce(scenario.rate, scenario.warmupMs);
  const profile = scenario.profileDir ? await startProfile() : null;
  const loop = watchEventLoop();
  const starts = await server.produce(scenario.rate, scenario.durationMs);
  const events = starts.length;
  const lateMaxMs = server.lateMaxMs;
  const sequences = starts.map(([s]) => s);
  const { stats } = await clients.ask<Extract<FromClients, { type: 'stats' }>>({
    type: 'await',
    from: Math.min(...sequences),
    to: Math.max(...sequences),
    deadlineAt: Math.max(...starts.map(([, at]) => at)) + scenario.drainMs,
    starts,
  });
  const looped = loop.stop();
  if (profile)
    await profile.stop(
      join(
        scenario.profileDir!,
        `fanout-${scenario.subscribers}x${scenario.rate}${scenario.sockets ? `-${scenario.sockets}sockets` : ''}.cpuprofile`,
      ),
    );
  await clients.ask({ type: 'close' });
  return summarize('refgraph', scenario, events, lateMaxMs, stats, before, after, looped);
}

/** A heap snapshot of this process (the server), after a full GC; compare two with scripts/bench/heap-diff.ts. */
async function heapSnapshot(file: string): Promise<void> {
  gc();
  await mkdir(join(file, '..'), { recursive: true });
  v8.writeHeapSnapshot(file);
}

/** A CPU profile of this process (the server) from now until stop(file). */
async function startProfile(): Promise<{ stop(file: string): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    stop: async (file) => {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      await mkdir(join(file, '..'), { recursive: true });
      await writeFile(file, JSON.stringify(profile));
    },
  };
}

async function measureRawWs(clients: Clients, scenario: Scenario): Promise<Measured> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  // The same message refgraph sends: graphql-ws `next` with the Event's sequence, type and payload.
  const id = randomUUID();
  const message = (sequence: number, i: number) =>
    JSON.stringify({
      id,
      type: 'next',
      payload: {
        data: { events: { sequence: String(sequence), type: EVENT_TYPE, payload: JSON.stringify(eventPayload(i)) } },
      },
    });
  // Sockets standing for several subscribers (the wide scenario) say how many; each gets one
  // message per subscriber and event, with its subscriber's id, as refgraph sends them.
  const counts = new Map<WebSocket, number>();
  wss.on('connection', (socket) => socket.once('message', (data) => counts.set(socket, Number(String(data)))));
  let sequence = 0;
  const broadcast = (i: number): [number, number] => {
    const data = message(++sequence, i);
    const sent = now();
    if (counts.size === 0) {
      for (const client of wss.clients) client.send(data);
    } else {
      const payload = data.slice(data.indexOf('"type"'));
      for (const [client, count] of counts) for (let k = 0; k < count; k++) client.send(`{"id":"${k}",${payload}`);
    }
    return [sequence, sent];
  };
  try {
    const before = await memory();
    const connected = await clients.ask<Extract<FromClients, { type: 'connected' }>>({
      type: 'connect',
      url,
      n: scenario.subscribers,
      protocol: 'raw',
      sockets: scenario.sockets,
    });
    if (connected.failed) throw new Error(`${connected.failed} raw subscribers could not connect`);
    const [warm] = broadcast(-1);
    await clients.ask({ type: 'await', from: warm, to: warm, deadlineAt: now() + 60_000 });
    const after = await memory();
    if (scenario.warmupMs > 0) await paced(scenario.rate, scenario.warmupMs, async (i) => void broadcast(i));
    const starts: Array<[number, number]> = [];
    const loop = watchEventLoop();
    const { count: events, lateMaxMs } = await paced(
      scenario.rate,
      scenario.durationMs,
      async (i) => void starts.push(broadcast(i)),
    );
    const { stats } = await clients.ask<Extract<FromClients, { type: 'stats' }>>({
      type: 'await',
      from: starts[0]![0],
      to: starts.at(-1)![0],
      deadlineAt: starts.at(-1)![1] + scenario.drainMs,
      starts,
    });
    await clients.ask({ type: 'close' });
    return summarize('raw ws', scenario, events, lateMaxMs, stats, before, after, loop.stop());
  } finally {
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}

/** This process's event loop while events flow: how busy, and the longest it was kept from I/O. */
function watchEventLoop(): { stop(): { utilization: number; delayMaxMs: number } } {
  const elu = performance.eventLoopUtilization();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  return {
    stop: () => {
      delay.disable();
      return { utilization: performance.eventLoopUtilization(elu).utilization, delayMaxMs: delay.max / 1e6 };
    },
  };
}

function summarize(
  system: Measured['system'],
  scenario: Scenario,
  events: number,
  lateMaxMs: number,
  stats: DeliveryStats,
  before: { heap: number; rss: number },
  after: { heap: number; rss: number },
  loop: { utilization: number; delayMaxMs: number },
): Measured {
  const seconds = Math.max(0.001, (stats.lastArrival - stats.firstStart) / 1000);
  return {
    system,
    subscribers: scenario.subscribers,
    sockets: scenario.sockets,
    documents: scenario.documents,
    credentials: scenario.credentials,
    rate: scenario.rate,
    events,
    stats,
    memPerSubKiB: (after.heap - before.heap) / scenario.subscribers / 1024,
    rssPerSubKiB: (after.rss - before.rss) / scenario.subscribers / 1024,
    eventLoopUtilization: loop.utilization,
    eventLoopDelayMaxMs: loop.delayMaxMs,
    deliveriesPerSec: stats.received / seconds,
    lateMaxMs,
  };
}

// ---------------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------------

interface FanoutOptions {
  /** Which systems to measure (a profile of refgraph alone leaves the baseline out). */
  systems: Array<'refgraph' | 'raw ws'>;
  subscribers: number[];
  rates: number[];
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  databaseUrl: string;
  profileDir?: string;
  heapDir?: string;
  /** Load the app compiled by tsc, as production runs it (else the sources through tsx). */
  compiled: boolean;
  /** Spread the subscribers over sockets, documents and credentials (the wide scenario). */
  spread?: Spread;
}

async function runFanout(options: FanoutOptions, log: (line: string) => void): Promise<Measured[]> {
  if (options.compiled) useCompiledApp(log);
  const clients = startChild<ToClients, FromClients>('clients');
  const server = await RefgraphServer.start(options.databaseUrl);
  const measured: Measured[] = [];
  try {
    for (const subscribers of options.subscribers) {
      for (const rate of options.rates) {
        const scenario: Scenario = {
          subscribers,
          rate,
          warmupMs: options.warmupMs,
          durationMs: options.durationMs,
          drainMs: options.drainMs,
          profileDir: options.profileDir,
          heapDir: options.heapDir,
          ...options.spread,
        };
        const runs = [
          { system: 'raw ws', run: () => measureRawWs(clients, scenario) },
          { system: 'refgraph', run: () => measureRefgraph(server, clients, scenario) },
        ] as const;
        for (const { run } of runs.filter((r) => options.systems.includes(r.system))) {
          const m = await run();
          measured.push(m);
          log(
            `  ${m.system.padEnd(8)} ${subscribers} subscribers${spreadLabel(m)} @ ${rate}/s: p50 ${m.stats.p50Ms.toFixed(1)} ms, p99 ${m.stats.p99Ms.toFixed(1)} ms, ` +
              `lost ${m.stats.lost}, duplicates ${m.stats.duplicates}, ${m.deliveriesPerSec.toFixed(0)} deliveries/s, ` +
              `${m.memPerSubKiB.toFixed(1)} KiB/subscriber (RSS ${m.rssPerSubKiB.toFixed(1)}), event loop ${(m.eventLoopUtilization * 100).toFixed(0)}% busy, ` +
              `blocked up to ${m.eventLoopDelayMaxMs.toFixed(0)} ms, sent up to ${m.lateMaxMs.toFixed(0)} ms late`,
          );
        }
      }
    }
  } finally {
    clients.stop();
    await server.stop();
  }
  return measured;
}

/** How a scenario's subscribers were spread, if not one socket each with one document and credential. */
function spreadLabel(m: Spread): string {
  const parts = [
    m.sockets ? `${m.sockets} sockets` : '',
    (m.documents ?? 1) > 1 ? `${m.documents} documents` : '',
    (m.credentials ?? 1) > 1 ? `${m.credentials} credentials` : '',
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

function toResults(measured: Measured[]): Array<BenchResult & { fanout: Record<string, unknown> }> {
  return measured.map((m) => {
    const raw = measured.find((r) => r.system === 'raw ws' && r.subscribers === m.subscribers && r.rate === m.rate);
    const ratio = (a: number, b: number | undefined) => (b !== undefined && b > 0 ? a / b : Number.NaN);
    const p99Ratio = ratio(m.stats.p99Ms, raw?.stats.p99Ms);
    const memRatio = ratio(m.memPerSubKiB, raw?.memPerSubKiB);
    const closed = Object.entries(m.stats.closed).filter(([code]) => code !== '1000' && code !== '1005');
    const notes =
      m.system === 'raw ws'
        ? `baseline: ${m.memPerSubKiB.toFixed(1)} KiB/subscriber`
        : `p99 ${p99Ratio.toFixed(1)}× raw ws; ${m.memPerSubKiB.toFixed(1)} KiB/subscriber (${memRatio.toFixed(1)}× raw ws); ` +
          `lost ${m.stats.lost}, duplicates ${m.stats.duplicates}; server event loop ${(m.eventLoopUtilization * 100).toFixed(0)}% busy` +
          (closed.length ? `; closed by the server: ${closed.map(([c, n]) => `${n}×${c}`).join(', ')}` : '');
    return {
      suite: SUITE,
      scenario: `${m.system}: ${m.subscribers} subscribers${spreadLabel(m)} @ ${m.rate} events/s`,
      unit: 'delivery',
      ops: m.stats.received,
      errors: m.stats.lost + m.stats.duplicates,
      durationS: (m.stats.lastArrival - m.stats.firstStart) / 1000,
      opsPerSec: m.deliveriesPerSec,
      p50Ms: m.stats.p50Ms,
      p99Ms: m.stats.p99Ms,
      concurrency: m.subscribers,
      vsBaseline: m.system === 'raw ws' ? 1 : raw ? ratio(m.deliveriesPerSec, raw.deliveriesPerSec) : undefined,
      notes,
      fanout: {
        system: m.system,
        subscribers: m.subscribers,
        sockets: m.sockets ?? m.subscribers,
        documents: m.documents ?? 1,
        credentials: m.credentials ?? 1,
        eventsPerSec: m.rate,
        events: m.events,
        expectedDeliveries: m.stats.expected,
        received: m.stats.received,
        lost: m.stats.lost,
        duplicates: m.stats.duplicates,
        p50Ms: m.stats.p50Ms,
        p99Ms: m.stats.p99Ms,
        maxMs: m.stats.maxMs,
        p99VsRawWs: m.system === 'raw ws' ? 1 : p99Ratio,
        memPerSubscriberKiB: m.memPerSubKiB,
        rssPerSubscriberKiB: m.rssPerSubKiB,
        memVsRawWs: m.system === 'raw ws' ? 1 : memRatio,
        serverEventLoopUtilization: m.eventLoopUtilization,
        serverEventLoopDelayMaxMs: m.eventLoopDelayMaxMs,
        sentLateMaxMs: m.lateMaxMs,
        closedByServer: m.stats.closed,
      },
    };
  });
}

/** The fan-out table: one line per system and scenario, refgraph next to raw ws. */
export function formatFanoutTable(measured: Measured[]): string {
  const header = [
    'system',
    'subs',
    'ev/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'p99 vs ws',
    'lost',
    'dup',
    'deliv/s',
    'KiB/sub',
    'mem vs ws',
    'RSS KiB/sub',
    'loop busy',
    'loop blocked ms',
    'sent late ms',
  ];
  const rows = measured.map((m) => {
    const raw = measured.find((r) => r.system === 'raw ws' && r.subscribers === m.subscribers && r.rate === m.rate);
    const versus = (a: number, b: number | undefined) => (m.system === 'raw ws' || !b ? '' : `${(a / b).toFixed(1)}×`);
    return [
      m.system,
      `${m.subscribers}${m.sockets ? `/${m.sockets}s` : ''}`,
      String(m.rate),
      m.stats.p50Ms.toFixed(1),
      m.stats.p99Ms.toFixed(1),
      m.stats.maxMs.toFixed(0),
      versus(m.stats.p99Ms, raw?.stats.p99Ms),
      String(m.stats.lost),
      String(m.stats.duplicates),
      m.deliveriesPerSec.toFixed(0),
      m.memPerSubKiB.toFixed(1),
      versus(m.memPerSubKiB, raw?.memPerSubKiB),
      m.rssPerSubKiB.toFixed(1),
      `${(m.eventLoopUtilization * 100).toFixed(0)}%`,
      m.eventLoopDelayMaxMs.toFixed(0),
      m.lateMaxMs.toFixed(0),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i >= 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i >= 1 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

const list = (value: string | undefined) =>
  value
    ?.split(',')
    .map((v) => Number(v.trim()))
    .filter((v) => v > 0);

function fanoutOptions(
  options: { quick: boolean; durationMs?: number; warmupMs?: number; databaseUrl: string },
  overrides: {
    subscribers?: number[];
    rates?: number[];
    systems?: FanoutOptions['systems'];
    profileDir?: string;
    heapDir?: string;
    tsx?: boolean;
    spread?: Spread;
  } = {},
): FanoutOptions {
  const durationMs = options.durationMs ?? (options.quick ? 3_000 : 10_000);
  return {
    systems: overrides.systems ?? ['raw ws', 'refgraph'],
    warmupMs: options.warmupMs ?? (options.quick ? 500 : 2_000),
    subscribers:
      overrides.subscribers ?? list(process.env.BENCH_FANOUT_SUBSCRIBERS) ?? (options.quick ? [100] : [100, 1000]),
    rates: overrides.rates ?? list(process.env.BENCH_FANOUT_RATES) ?? [10, 50],
    durationMs,
    // A server that falls behind gets this long after the last event to deliver the backlog.
    drainMs: Math.max(options.quick ? 5_000 : 20_000, 2 * durationMs),
    databaseUrl: options.databaseUrl,
    profileDir: overrides.profileDir ?? (process.env.BENCH_CPU_PROF || undefined),
    heapDir: overrides.heapDir,
    compiled: !(overrides.tsx ?? process.env.BENCH_FANOUT_TSX === '1'),
    spread: overrides.spread,
  };
}

export const fanoutSuite: BenchSuite = {
  name: SUITE,
  description:
    'subscription fan-out: N graphql-ws subscribers of `events` at a fixed event rate, next to a raw ws broadcast',
  run: async (options: BenchOptions, log) => {
    const fanout = fanoutOptions({
      quick: options.quick,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      databaseUrl: options.databaseUrl,
    });
    log(
      `fanout: ${fanout.subscribers.join(', ')} subscribers × ${fanout.rates.join(', ')} events/s, ${fanout.durationMs / 1000} s each after ${fanout.warmupMs / 1000} s of warm-up`,
    );
    const measured = await runFanout(fanout, log);
    log(`\n${formatFanoutTable(measured)}\n`);
    return toResults(measured);
  },
};

// ---------------------------------------------------------------------------------------------------
// Entry points: the subscribers' process, or the suite on its own
// ---------------------------------------------------------------------------------------------------

if (process.argv.includes('--fanout-clients')) {
  void runClients();
} else if (process.argv.includes('--fanout-producer')) {
  void runProducer();
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      subscribers: { type: 'string' },
      rates: { type: 'string' },
      duration: { type: 'string' },
      'refgraph-only': { type: 'boolean', default: false },
      profile: { type: 'string' },
      'heap-snapshots': { type: 'string' },
      tsx: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      // The wide scenario: e.g. --subscribers 10000 --rates 10 --sockets 300 --documents 20 --credentials 10
      sockets: { type: 'string' },
      documents: { type: 'string' },
      credentials: { type: 'string' },
    },
    strict: true,
  });
  const options = fanoutOptions(
    {
      quick: values.quick ?? false,
      durationMs: values.duration ? Number(values.duration) * 1000 : undefined,
      databaseUrl: process.env.BENCH_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres',
    },
    {
      subscribers: list(values.subscribers),
      rates: list(values.rates),
      systems: values['refgraph-only'] ? ['refgraph'] : undefined,
      profileDir: values.profile,
      heapDir: values['heap-snapshots'],
      tsx: values.tsx,
      spread: {
        sockets: values.sockets ? Number(values.sockets) : undefined,
        documents: values.documents ? Number(values.documents) : undefined,
        credentials: values.credentials ? Number(values.credentials) : undefined,
      },
    },
  );
  const log = (line: string) => process.stderr.write(`${line}\n`);
  runFanout(options, log).then(
    (measured) => {
      process.stdout.write(`${formatFanoutTable(measured)}\n`);
      if (values.json) process.stdout.write(`${JSON.stringify(toResults(measured), null, 2)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(
        `fanout failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
