// The click path under load: GET /r/{code} and the trackClick mutation through the real server
// (its own process), next to the database's own speed at single-row INSERTs into "Click" through
// `pg` with the same concurrency, measured in the same run on the same throw-away database.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase } from '../../src/db.js';
import { uuidv7 } from '../../src/lib/uuid.js';
import { ClickRecorder } from '../../src/modules/click/click.service.js';
import { createWorkspace } from '../../src/modules/workspace/workspace.service.js';
import {
  createThrowawayDatabase,
  httpClient,
  processCpuMs,
  runLoad,
  startServerProcess,
  withClient,
  type BenchOptions,
  type BenchResult,
  type BenchSuite,
} from './harness.js';
import { cpuProfileArgs } from './seed.js';

const LINKS = 20;
const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 refgraph-bench';
const TRACK_CLICK =
  'mutation Bench($input: TrackClickInput!) { trackClick(input: $input) { clickId discarded userErrors { code } } }';
/** BATCHED trackClick mutations in one request, as aliases: one HTTP request, one authentication. */
const BATCHED = 10;
const TRACK_CLICKS_BATCHED = `mutation BenchBatch(${Array.from({ length: BATCHED }, (_, i) => `$i${i}: TrackClickInput!`).join(', ')}) { ${Array.from(
  { length: BATCHED },
  (_, i) => `c${i}: trackClick(input: $i${i}) { clickId }`,
).join(' ')} }`;
const RAW_INSERT = `INSERT INTO "Click" ("id", "workspaceId", "mode", "linkId", "programId", "partnerId", "occurredAt", "ipHash", "userAgent", "referrerUrl", "landingUrl", "discarded")
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`;

/**
 * The HTTP ceiling: a `node:http` server in its own process that answers every request with the
 * 302 and headers of `/r/{code}`, doing nothing else (no lookup, no click). What the machine and
 * the load generator allow for one Node process answering redirects, measured in the same run.
 */
const BARE_REDIRECT_SERVER = `
const http = require('node:http');
const headers = { 'cache-control': 'no-store', 'referrer-policy': 'strict-origin-when-cross-origin', 'x-content-type-options': 'nosniff',
  'x-robots-tag': 'noindex, nofollow', 'content-length': '0' };
const server = http.createServer((req, res) => {
  res.writeHead(302, { ...headers, location: 'https://shop.example.com/landing?utm_source=partner&ref=x&rg_click=ck_0123456789abcdef#top' });
  res.end();
});
server.keepAliveTimeout = 65000;
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
`;

async function startBareRedirect(): Promise<{ url: string; cpuMs(): number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['-e', BARE_REDIRECT_SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim())));
    child.once('exit', (code) => reject(new Error(`bare redirect server exited (code ${code})`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    cpuMs: () => processCpuMs(child.pid!),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface Fixture {
  workspaceId: string;
  programId: string;
  partnerId: string;
  /** Links clicked through the server. */
  codes: string[];
  /** The link the raw INSERTs point at (kept apart so the server's clicks can be counted). */
  rawLinkId: string;
  secret: string;
}

async function createFixture(url: string): Promise<Fixture> {
  const db = await openDatabase({ databaseUrl: url, dataDir: '', poolSize: 2, migrate: false });
  try {
    const prisma = db.prisma;
    const ws = await createWorkspace(prisma, 'Benchmark');
    const base = { workspaceId: ws.workspace.id, mode: 'TEST' as const };
    const program = await prisma.program.create({
      data: {
        ...base,
        name: 'Bench program',
        type: 'AFFILIATE',
        currency: 'USD',
        destinationUrl: 'https://shop.example.com/landing?utm_source=partner#top',
      },
    });
    const partner = await prisma.partner.create({
      data: { ...base, externalId: 'bench-partner', name: 'Bench partner' },
    });
    const enrollment = await prisma.enrollment.create({
      data: { ...base, programId: program.id, partnerId: partner.id, status: 'APPROVED' },
    });
    const codes: string[] = [];
    let rawLinkId = '';
    for (let i = 0; i <= LINKS; i++) {
      const code = `bench${i}${randomBytes(3).toString('hex')}`;
      const link = await prisma.referralLink.create({
        data: {
          ...base,
          enrollmentId: enrollment.id,
          programId: program.id,
          partnerId: partner.id,
          code,
          codeNormalized: code.toLowerCase(),
        },
      });
      if (i === 0) rawLinkId = link.id;
      else codes.push(code);
    }
    return {
      workspaceId: ws.workspace.id,
      programId: program.id,
      partnerId: partner.id,
      codes,
      rawLinkId,
      secret: ws.keys.test.secret,
    };
  } finally {
    await db.close();
  }
}

/** Poll until the server has written `expected` click rows (not counting the raw INSERTs); ms it took, or null. */
async function waitForRows(
  url: string,
  rawLinkId: string,
  expected: number,
  timeoutMs = 30_000,
): Promise<{ ms: number | null; rows: number }> {
  const started = performance.now();
  return withClient(url, async (client) => {
    for (;;) {
      const res = await client.query<{ n: string }>('select count(*) as n from "Click" where "linkId" <> $1', [
        rawLinkId,
      ]);
      const rows = Number(res.rows[0]!.n);
      if (rows >= expected) return { ms: performance.now() - started, rows };
      if (performance.now() - started >= timeoutMs) return { ms: null, rows };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
}

export const clicksSuite: BenchSuite = {
  name: 'clicks',
  description: 'GET /r/{code} and trackClick through the server vs a raw single-row INSERT through pg',
  async run(options: BenchOptions, log): Promise<BenchResult[]> {
    const database = await createThrowawayDatabase(options.databaseUrl);
    log(`clicks: throw-away database ${database.name}`);
    const results: BenchResult[] = [];
    const load = { concurrency: options.concurrency, durationMs: options.durationMs, warmupMs: options.warmupMs };
    try {
      const fx = await createFixture(database.url);

      // 1. The baseline: what the database does with one click per statement, same concurrency.
      log(`clicks: raw single-row INSERT through pg (${options.concurrency} connections)…`);
      const pool = new pg.Pool({ connectionString: database.url, max: options.concurrency });
      const raw = await runLoad(async () => {
        await pool.query(RAW_INSERT, [
          uuidv7(),
          fx.workspaceId,
          'TEST',
          fx.rawLinkId,
          fx.programId,
          fx.partnerId,
          new Date(),
          randomBytes(32).toString('hex'),
          USER_AGENT,
          'https://blog.example.org/review',
          'https://shop.example.com/landing?utm_source=partner#top',
          false,
        ]);
        return true;
      }, load);
      await pool.end();
      results.push({
        suite: 'clicks',
        scenario: 'raw INSERT (1 row/statement, pg)',
        unit: 'INSERT',
        ...pick(raw),
        concurrency: options.concurrency,
        vsBaseline: 1,
        notes: `pg.Pool max ${options.concurrency}; autocommit`,
      });

      // 2. The recorder alone, in this process: its batch writer's sustained rate (once the queue is
      //    full, every click waits for room, so acknowledged/s converges on written/s).
      log('clicks: ClickRecorder.record in process (no HTTP)…');
      const db = await openDatabase({ databaseUrl: database.url, dataDir: '', poolSize: 10, migrate: false });
      let inProcess: Awaited<ReturnType<typeof runLoad>>;
      let recorderStats: ReturnType<ClickRecorder['stats']>;
      try {
        const recorder = new ClickRecorder({ query: db.query, secret: randomBytes(32).toString('base64url') });
        let i = 0;
        inProcess = await runLoad(async () => {
          const link = await recorder.findLink(fx.codes[i++ % fx.codes.length]!);
          await recorder.record(link!, {
            ip: '203.0.113.7',
            userAgent: USER_AGENT,
            referrerUrl: 'https://blog.example.org/review',
            landingUrl: link!.destinationUrl,
          });
          return true;
        }, load);
        await recorder.stop();
        recorderStats = recorder.stats();
        if (recorderStats.written !== recorderStats.acknowledged)
          throw new Error(`recorder lost clicks: ${JSON.stringify(recorderStats)}`);
        await db.query('DELETE FROM "Click" WHERE "linkId" <> $1', [fx.rawLinkId]);
      } finally {
        await db.close();
      }
      results.push({
        suite: 'clicks',
        scenario: 'ClickRecorder.record (in process)',
        unit: 'click',
        ...pick(inProcess),
        concurrency: options.concurrency,
        vsBaseline: inProcess.opsPerSec / raw.opsPerSec,
        notes: `${recorderStats.batches} INSERTs for ${recorderStats.written} rows (${(recorderStats.written / recorderStats.batches).toFixed(0)} rows each); ${recorderStats.waitedForRoom} clicks waited for room in the queue`,
      });

      // 3. The HTTP ceiling: a Node process answering the same 302 without doing anything.
      log('clicks: bare node:http 302 (the HTTP ceiling)…');
      const bare = await startBareRedirect();
      const bareClient = httpClient(bare.url, options.concurrency);
      let bareCpuPerOp = Number.NaN;
      let ceilingOpsPerSec = Number.NaN;
      try {
        let sent = 0;
        const cpu0 = bare.cpuMs();
        const ceiling = await runLoad(async () => {
          sent++;
          const res = await bareClient.request('GET', `/r/${fx.codes[0]}`, undefined, {
            'user-agent': USER_AGENT,
            referer: 'https://blog.example.org/review',
          });
          return res.status === 302;
        }, load);
        bareCpuPerOp = (bare.cpuMs() - cpu0) / sent;
        ceilingOpsPerSec = ceiling.opsPerSec;
        results.push({
          suite: 'clicks',
          scenario: 'bare node:http 302, no work (HTTP ceiling)',
          unit: 'request',
          ...pick(ceiling),
          concurrency: options.concurrency,
          vsBaseline: ceiling.opsPerSec / raw.opsPerSec,
          notes: `a node:http server in its own process answering the same 302 and nothing else; server CPU ${bareCpuPerOp.toFixed(3)} ms per request`,
        });
      } finally {
        bareClient.close();
        await bare.stop();
      }

      // 4. The server, in its own process, on the same database.
      const server = await startServerProcess(
        {
          DATABASE_URL: database.url,
          REFGRAPH_SECRET: randomBytes(32).toString('base64url'),
          APPROVAL_JOB_INTERVAL_MS: '0',
        },
        cpuProfileArgs(),
      );
      const client = httpClient(server.url, options.concurrency);
      let acknowledged = 0;
      let stopped = false;
      try {
        let n = 0;
        log('clicks: GET /r/{code}…');
        const cpuBefore = server.cpuMs();
        const redirect = await runLoad(async () => {
          const code = fx.codes[n++ % fx.codes.length]!;
          const res = await client.request('GET', `/r/${code}`, undefined, {
            'user-agent': USER_AGENT,
            referer: 'https://blog.example.org/review',
          });
          if (res.status !== 302 || !String(res.headers.location).includes('rg_click=ck_')) return false;
          acknowledged++;
          return true;
        }, load);
        const redirectCpuPerOp = (server.cpuMs() - cpuBefore) / n;
        const drainRedirect = await waitForRows(database.url, fx.rawLinkId, acknowledged);
        results.push({
          suite: 'clicks',
          scenario: 'GET /r/{code} (302)',
          unit: 'click',
          ...pick(redirect),
          concurrency: options.concurrency,
          vsBaseline: redirect.opsPerSec / raw.opsPerSec,
          notes: `${(redirect.opsPerSec / ceilingOpsPerSec).toFixed(2)}× the HTTP ceiling; server CPU ${redirectCpuPerOp.toFixed(3)} ms per click (${(redirectCpuPerOp / bareCpuPerOp).toFixed(1)}× the bare 302's, writes included); ${drainNote(drainRedirect, acknowledged)}`,
        });

        log('clicks: trackClick…');
        const trackCpu0 = server.cpuMs();
        const trackN0 = n;
        const track = await runLoad(async () => {
          const code = fx.codes[n++ % fx.codes.length]!;
          const ip = `203.0.${n % 250}.${(n >> 8) % 250}`;
          const res = await client.request(
            'POST',
            '/graphql',
            JSON.stringify({
              query: TRACK_CLICK,
              variables: { input: { code, ip, userAgent: USER_AGENT, referrerUrl: 'https://blog.example.org/review' } },
            }),
            { authorization: `Bearer ${fx.secret}` },
          );
          if (res.status !== 200) return false;
          const body = JSON.parse(res.body) as { data?: { trackClick?: { clickId: string | null } } };
          if (!body.data?.trackClick?.clickId) return false;
          acknowledged++;
          return true;
        }, load);
        const trackCpuPerOp = (server.cpuMs() - trackCpu0) / (n - trackN0);
        const drainTrack = await waitForRows(database.url, fx.rawLinkId, acknowledged);
        results.push({
          suite: 'clicks',
          scenario: 'trackClick (GraphQL, secret key)',
          unit: 'click',
          ...pick(track),
          concurrency: options.concurrency,
          vsBaseline: track.opsPerSec / raw.opsPerSec,
          notes: `server CPU ${trackCpuPerOp.toFixed(3)} ms per click; ${drainNote(drainTrack, acknowledged)}`,
        });

        log(`clicks: trackClick ×${BATCHED} per request (aliases)…`);
        const batched = await runLoad(async () => {
          const variables: Record<string, unknown> = {};
          for (let i = 0; i < BATCHED; i++) {
            const code = fx.codes[n++ % fx.codes.length]!;
            variables[`i${i}`] = {
              code,
              ip: `198.51.100.${n % 250}`,
              userAgent: USER_AGENT,
              referrerUrl: 'https://blog.example.org/review',
            };
          }
          const res = await client.request(
            'POST',
            '/graphql',
            JSON.stringify({ query: TRACK_CLICKS_BATCHED, variables }),
            { authorization: `Bearer ${fx.secret}` },
          );
          if (res.status !== 200) return false;
          const data =
            (JSON.parse(res.body) as { data?: Record<string, { clickId: string | null } | null> }).data ?? {};
          const ok = Object.values(data).filter((c) => c?.clickId).length;
          acknowledged += ok;
          return ok === BATCHED;
        }, load);
        const drainBatched = await waitForRows(database.url, fx.rawLinkId, acknowledged);
        const batchedClicks = { ...pick(batched), ops: batched.ops * BATCHED, opsPerSec: batched.opsPerSec * BATCHED };
        results.push({
          suite: 'clicks',
          scenario: `trackClick ×${BATCHED} per request (aliases)`,
          unit: 'click',
          ...batchedClicks,
          concurrency: options.concurrency,
          vsBaseline: batchedClicks.opsPerSec / raw.opsPerSec,
          notes: `${batched.opsPerSec.toFixed(0)} requests/s of ${BATCHED} clicks; latencies per request; ${drainNote(drainBatched, acknowledged)}`,
        });

        const code = await server.stop();
        stopped = true;
        const final = await waitForRows(database.url, fx.rawLinkId, acknowledged, 0);
        log(
          `clicks: server stopped (exit ${code}); ${final.rows} click rows for ${acknowledged} acknowledged clicks (warm-up included)`,
        );
        if (final.rows !== acknowledged)
          throw new Error(`lost clicks: ${acknowledged} acknowledged, ${final.rows} written`);
      } finally {
        client.close();
        if (!stopped) await server.stop();
      }
    } finally {
      await database.drop();
    }
    return results;
  },
};

function pick(r: {
  ops: number;
  errors: number;
  durationS: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  firstError?: string;
}) {
  if (r.errors > 0) console.warn(`  ${r.errors} errors, first: ${r.firstError}`);
  return {
    ops: r.ops,
    errors: r.errors,
    durationS: r.durationS,
    opsPerSec: r.opsPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
  };
}

function drainNote(drain: { ms: number | null; rows: number }, acknowledged: number): string {
  return drain.ms === null
    ? `only ${drain.rows} of ${acknowledged} acknowledged clicks written 30 s after the load`
    : `all ${acknowledged} acknowledged clicks so far written ${drain.ms.toFixed(0)} ms after the load stopped`;
}
