// Framework overhead (issue 6, item 2): trivial queries through the full app (its own process,
// over HTTP) next to a bare graphql-yoga hello-world server (its own process too), same run, same
// concurrency:
//   - `{ __typename }` without a credential: HTTP + Yoga + the app's plugin stack, no database;
//   - `{ viewer { role } }` with a secret key: the same plus authentication (a key lookup, cached in process for AUTH_CACHE_TTL_MS).
// Both compare with the bare server answering `{ __typename }`; the ratio is requests/s.
//
// graphql-jit (`@envelop/graphql-jit`) is evaluated in a branch of this bench only, never in the
// app: a "replica" process serves the app's own schema and context (built by `buildApp`, the same
// authentication) through two plain Yoga instances, one with the JIT plugin; both answer the
// trivial query and the nested dashboard (100 partners) and must return the same data as the
// app. The plugin is not a dependency of refgraph: install it apart to run that branch —
//   (mkdir -p .refgraph/bench/jit && cd .refgraph/bench/jit && echo '{"private":true}' > package.json &&
//    npm install --legacy-peer-deps @envelop/graphql-jit@11.2.1)
// (resolved from there, it uses the project's graphql and @envelop/core); without it the JIT rows are skipped.
//
//   npm run bench -- --suite overhead [--quick] [--concurrency 50]
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { openDatabase } from '../../src/db.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import {
  createThrowawayDatabase,
  httpClient,
  ROOT,
  runAlone,
  runLoad,
  startServerProcess,
  type BenchOptions,
  type BenchResult,
  type BenchSuite,
} from './harness.js';
import {
  cpuProfileArgs,
  DASHBOARD_QUERY,
  exitWithParent,
  measureRounds,
  ratioRow,
  ratios,
  scenarioTiming,
  seedDashboardNetwork,
  startChildServer,
  startedTogether,
  times,
  type Measured,
  type RatioResult,
} from './seed.js';

const SUITE = 'overhead';
const TYPENAME = JSON.stringify({ query: '{ __typename }' });
const VIEWER = JSON.stringify({ query: '{ viewer { role } }' });
const DASHBOARD = JSON.stringify({ query: DASHBOARD_QUERY });
/** Where the JIT branch looks for @envelop/graphql-jit (see the header). */
const JIT_DIR = path.join(ROOT, '.refgraph', 'bench', 'jit');
const JIT_ENTRY = path.join(JIT_DIR, 'node_modules', '@envelop', 'graphql-jit', 'esm', 'index.js');

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/** The baseline: graphql-yoga's hello world, nothing else (production mode, logging off). */
async function serveBareYoga(port: number): Promise<void> {
  const { createSchema, createYoga } = await import('graphql-yoga');
  const yoga = createYoga({
    schema: createSchema({ typeDefs: 'type Query { hello: String! }', resolvers: { Query: { hello: () => 'world' } } }),
    logging: false,
    graphiql: false,
    landingPage: false,
  });
  const server = http.createServer(yoga);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

/**
 * The app's schema and context (services from `buildApp`, the same Authenticator) behind two
 * plain Yoga instances on one port: /graphql without and /jit with @envelop/graphql-jit.
 */
async function serveReplica(port: number): Promise<void> {
  const { createYoga } = await import('graphql-yoga');
  const { GraphQLError } = await import('graphql');
  const { buildApp } = await import('../../src/app.js');
  const { loadConfig } = await import('../../src/config.js');
  const { schema } = await import('../../src/graphql/schema.js');
  const { useGraphQlJit } = (await import(pathToFileURL(JIT_ENTRY).href)) as {
    useGraphQlJit: () => import('graphql-yoga').Plugin;
  };
  const app = await buildApp({ config: loadConfig() });
  const authenticator = app.services.authenticator; // the app's own, with its key cache
  const make = (endpoint: string, plugins: Array<import('graphql-yoga').Plugin>) =>
    createYoga({
      schema,
      graphqlEndpoint: endpoint,
      logging: false,
      graphiql: false,
      landingPage: false,
      plugins,
      // As the app's maskError (src/graphql/yoga.ts): client-facing errors are returned as thrown.
      maskedErrors: {
        maskError: (error: unknown, message: string) => {
          const original = error instanceof GraphQLError ? error.originalError : error;
          if (error instanceof GraphQLError && !original) return error;
          if (original instanceof GraphQLError) return original;
          return new GraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
        },
      },
      context: async ({ request }) => {
        const result = await authenticator.authenticate(request.headers.get('authorization'));
        return { ...app.services, requestId: 'bench', auth: result.auth, authError: result.error, loaders: new Map() };
      },
    });
  const plain = make('/graphql', []);
  const jit = make('/jit', [useGraphQlJit()]);
  const server = http.createServer((req, res) => {
    if (req.url === '/statements') {
      // SQL statements sent so far (the suite reads it before and after one request).
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(String(app.services.db.statements.count));
      return;
    }
    void (req.url?.startsWith('/jit') ? jit : plain).handle(req, res);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    server.close(() => void app.stop().then(() => process.exit(0)));
    server.closeAllConnections();
  });
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

type Client = ReturnType<typeof httpClient>;
const ok = (res: { status: number; body: string }) => res.status === 200 && !res.body.includes('"errors"');

export const overheadSuite: BenchSuite = {
  name: SUITE,
  description:
    'trivial queries through the full app vs a bare graphql-yoga hello world; graphql-jit evaluated in a replica',
  async run(options: BenchOptions, log): Promise<BenchResult[]> {
    const database = await createThrowawayDatabase(options.databaseUrl);
    log(`${SUITE}: throw-away database ${database.name}`);
    const results: RatioResult[] = [];
    const conc = options.concurrency;
    const post =
      (client: Client, urlPath: string, body: string, headers: Record<string, string> = {}) =>
      async () =>
        ok(await client.request('POST', urlPath, body, headers));
    const children: Array<{ stop(): Promise<unknown> }> = [];
    const clients: Client[] = [];
    try {
      const db = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 2, migrate: false });
      let secret: string;
      try {
        const ws = await createWorkspace(db.prisma, 'Overhead');
        secret = ws.keys.test.secret;
        // For the JIT branch's nested query: a small 100-partner network.
        await seedDashboardNetwork(
          db.prisma,
          { workspaceId: ws.workspace.id, mode: 'TEST' },
          { partners: 100, clicks: 2_000, conversions: 500 },
          7,
        );
      } finally {
        await db.close();
      }
      const auth = { authorization: `Bearer ${secret}` };

      // Every server boots at once, each in its own process (the replica only with the JIT plugin installed).
      const withJit = fs.existsSync(JIT_ENTRY);
      const [bare, app, replica] = await startedTogether<{ url: string; cpuMs(): number; stop(): Promise<unknown> }>([
        startChildServer('scripts/bench/overhead.ts', { BENCH_CHILD: 'bare' }),
        startServerProcess(
          { DATABASE_URL: database.url, APPROVAL_JOB_INTERVAL_MS: '0', WEBHOOK_WORKER_INTERVAL_MS: '0' },
          cpuProfileArgs(),
        ),
        ...(withJit
          ? [
              startChildServer('scripts/bench/overhead.ts', {
                BENCH_CHILD: 'replica',
                DATABASE_URL: database.url,
                MIGRATE_ON_START: 'false',
                APPROVAL_JOB_INTERVAL_MS: '0',
                WEBHOOK_WORKER_INTERVAL_MS: '0',
                PORT: '0',
              }),
            ]
          : []),
      ]);
      children.push(bare!, app!, ...(replica ? [replica] : []));
      const bareClient = httpClient(bare!.url, conc);
      const appClient = httpClient(app!.url, conc);
      clients.push(bareClient, appClient);

      // Warm the key (its first use writes lastUsedAt) and check the answers.
      const viewer = await appClient.request('POST', '/graphql', VIEWER, auth);
      if (!ok(viewer)) throw new Error(`{ viewer { role } } failed: ${viewer.body.slice(0, 300)}`);

      let replicaClient: Client | null = null;
      let dashStatements: { plain: number; jit: number } | null = null;
      if (!replica) {
        log(
          `${SUITE}: @envelop/graphql-jit is not installed in ${path.relative(ROOT, JIT_DIR)} (see scripts/bench/overhead.ts): JIT rows skipped`,
        );
      } else {
        replicaClient = httpClient(replica.url, conc);
        clients.push(replicaClient);
        const rc = replicaClient;
        // Same answers with and without JIT as from the app itself, or the branch is broken.
        for (const [label, body, headers] of [
          ['{ viewer { role } }', VIEWER, auth],
          ['the dashboard (100 partners)', DASHBOARD, auth],
          ['{ viewer { role } } without a credential', VIEWER, {}],
        ] as const) {
          const answers = await Promise.all([
            appClient.request('POST', '/graphql', body, headers),
            rc.request('POST', '/graphql', body, headers),
            rc.request('POST', '/jit', body, headers),
          ]);
          const [fromApp, plain, jit] = answers.map((a) => JSON.parse(a.body) as unknown);
          if (!isDeepStrictEqual(fromApp, plain))
            throw new Error(
              `the replica answers ${label} unlike the app: ${JSON.stringify(plain).slice(0, 300)} instead of ${JSON.stringify(fromApp).slice(0, 300)}`,
            );
          if (!isDeepStrictEqual(plain, jit)) {
            throw new Error(
              `graphql-jit changes the answer to ${label}: ${JSON.stringify(jit).slice(0, 300)} instead of ${JSON.stringify(plain).slice(0, 300)}`,
            );
          }
        }
        log(
          `${SUITE}: graphql-jit answers the viewer query, the dashboard and an unauthenticated request exactly like the app`,
        );
        // SQL statements of one dashboard request, with and without JIT (does it keep the loaders' batching?).
        const statementsOf = async (urlPath: string) => {
          const count = async () => Number((await rc.request('GET', '/statements')).body);
          const before = await count();
          await rc.request('POST', urlPath, DASHBOARD, auth);
          return (await count()) - before;
        };
        dashStatements = { plain: await statementsOf('/graphql'), jit: await statementsOf('/jit') };
        log(
          `${SUITE}: dashboard (100 partners): ${dashStatements.plain} SQL statements without JIT, ${dashStatements.jit} with`,
        );
      }

      // Every trivial-query scenario in interleaved rounds (drift on a shared machine hits them alike).
      const timing = scenarioTiming(options, conc);
      log(`${SUITE}: concurrency ${conc}${timing.rounds > 1 ? `, ${timing.rounds} interleaved rounds` : ''}:`);
      const m = await measureRounds(
        {
          bare: post(bareClient, '/graphql', TYPENAME),
          typename: post(appClient, '/graphql', TYPENAME),
          viewer: post(appClient, '/graphql', VIEWER, auth),
          ...(replicaClient
            ? {
                replica: post(replicaClient, '/graphql', VIEWER, auth),
                replicaJit: post(replicaClient, '/jit', VIEWER, auth),
              }
            : {}),
        } as Record<'bare' | 'typename' | 'viewer' | 'replica' | 'replicaJit', () => Promise<boolean>>,
        timing,
        timing.rounds,
        log,
      );
      // Server CPU per request, each server alone for a moment: unlike requests/s, it hardly depends
      // on what else the machine is doing.
      const cpuPerRequest = async (send: () => Promise<boolean>, cpuMs: () => number) => {
        let sent = 0;
        const before = cpuMs();
        await runLoad(
          () => {
            sent++;
            return send();
          },
          { concurrency: conc, durationMs: options.quick ? 1_000 : 3_000, warmupMs: 0 },
        );
        return (cpuMs() - before) / sent;
      };
      log(`${SUITE}: server CPU per request…`);
      const cpu = {
        bare: await cpuPerRequest(post(bareClient, '/graphql', TYPENAME), bare!.cpuMs),
        typename: await cpuPerRequest(post(appClient, '/graphql', TYPENAME), app!.cpuMs),
        viewer: await cpuPerRequest(post(appClient, '/graphql', VIEWER, auth), app!.cpuMs),
      };
      const cpuNote = (ms: number) =>
        `server CPU ${ms.toFixed(3)} ms per request (${(ms / cpu.bare).toFixed(2)}× the bare Yoga's)`;
      const baseline = { name: 'bare Yoga hello world: { __typename }', measured: m.bare };
      const vsBare = (x: Measured) => times(ratios(x, m.bare).throughput);
      results.push(
        ratioRow(SUITE, 'bare Yoga hello world: { __typename }', 'request', m.bare, conc, baseline, {
          notes: `graphql-yoga ${yogaVersion()} alone (parse/validate caches on by default), own process; the baseline; server CPU ${cpu.bare.toFixed(3)} ms per request`,
        }),
        ratioRow(SUITE, 'refgraph: { __typename }, no credential', 'request', m.typename, conc, baseline, {
          statementsPerOp: 0,
          notes: `${vsBare(m.typename)} the bare Yoga's requests/s (goal ≥ 0.8×); ${cpuNote(cpu.typename)}; no SQL`,
        }),
        ratioRow(SUITE, 'refgraph: { viewer { role } }, secret key', 'request', m.viewer, conc, baseline, {
          statementsPerOp: 1,
          notes: `${vsBare(m.viewer)} the bare Yoga's requests/s (goal ≥ 0.8×); ${cpuNote(cpu.viewer)}; the key is looked up once, then served from the credential cache (AUTH_CACHE_TTL_MS, default 5 s): one SQL statement per key per 5 s`,
        }),
      );
      if (replicaClient && dashStatements) {
        const plainName = 'replica: { viewer { role } }';
        const q = ratios(m.replicaJit, m.replica);
        results.push(
          ratioRow(
            SUITE,
            plainName,
            'request',
            m.replica,
            conc,
            { name: plainName, measured: m.replica },
            {
              notes: `the app's schema and context (buildApp's services, the same authentication) in plain Yoga; ${vsBare(m.replica)} the bare Yoga`,
            },
          ),
          ratioRow(
            SUITE,
            'replica + graphql-jit: { viewer { role } }',
            'request',
            m.replicaJit,
            conc,
            { name: plainName, measured: m.replica },
            {
              notes: `requests/s ${times(q.throughput)}, p50 ${times(q.p50)}, p99 ${times(q.p99)} the replica without JIT; ${vsBare(m.replicaJit)} the bare Yoga`,
            },
          ),
        );
        if (options.quick) {
          log(`${SUITE}: --quick: the JIT dashboard rows are left out`);
        } else {
          // Concurrency 1: the time of one nested answer, with and without JIT.
          const one = scenarioTiming(options, 1);
          log(`${SUITE}: the dashboard (100 partners) on the replica, concurrency 1:`);
          const d = await measureRounds(
            {
              plain: post(replicaClient, '/graphql', DASHBOARD, auth),
              jit: post(replicaClient, '/jit', DASHBOARD, auth),
            },
            one,
            one.rounds,
            log,
          );
          const dq = ratios(d.jit, d.plain);
          const dashName = 'replica: dashboard, 100 partners';
          results.push(
            ratioRow(
              SUITE,
              dashName,
              'request',
              d.plain,
              1,
              { name: dashName, measured: d.plain },
              {
                statementsPerOp: dashStatements.plain,
                notes: `small network: 2 000 clicks, 500 conversions; ${dashStatements.plain} SQL statements per request`,
              },
            ),
            ratioRow(
              SUITE,
              'replica + graphql-jit: dashboard, 100 partners',
              'request',
              d.jit,
              1,
              { name: dashName, measured: d.plain },
              {
                statementsPerOp: dashStatements.jit,
                notes: `${dashStatements.jit} SQL statements per request; requests/s ${times(dq.throughput)}, p50 ${times(dq.p50)}, p99 ${times(dq.p99)} the replica without JIT`,
              },
            ),
          );
        }
      }
    } finally {
      for (const c of clients) c.close();
      for (const child of children.reverse()) await child.stop().catch(() => {});
      await database.drop();
    }
    return results;
  },
};

function yogaVersion(): string {
  try {
    return (
      JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'graphql-yoga', 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  } catch {
    return '?';
  }
}

// Run alone, or as one of the child servers.
const invokedDirectly = process.argv[1]?.endsWith('overhead.ts') ?? false;
if (invokedDirectly && process.env.BENCH_CHILD === 'bare') {
  exitWithParent();
  await serveBareYoga(Number(process.env.BENCH_PORT));
} else if (invokedDirectly && process.env.BENCH_CHILD === 'replica') {
  exitWithParent();
  await serveReplica(Number(process.env.BENCH_PORT));
} else if (invokedDirectly) {
  runAlone(overheadSuite, { concurrency: 50 });
}
