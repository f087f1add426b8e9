// `npm run bench [-- --quick] [-- --suite clicks] [-- --concurrency 50] [-- --duration 10] [-- --out file.json]`
//
// Runs the benchmark suites against PostgreSQL (BENCH_DATABASE_URL, default
// postgresql://postgres@127.0.0.1:5432/postgres; each suite works in a throw-away database it
// creates and drops), prints a table and writes the results as JSON (default
// .refgraph/bench/bench-<time>.json). Method and numbers: BENCHMARKS.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { redact } from '../src/config.js';
import { clicksSuite } from './bench/clicks.js';
import { conversionsSuite } from './bench/conversions.js';
import { coldstartSuite } from './bench/coldstart.js';
import { dashboardSuite } from './bench/dashboard.js';
import { fanoutSuite } from './bench/fanout.js';
import { fraudSuite } from './bench/fraud.js';
import { overheadSuite } from './bench/overhead.js';
import { payoutsSuite } from './bench/payouts.js';
import { scaleSuite } from './bench/scale.js';
import { stripeSuite } from './bench/stripe.js';
import {
  formatTable,
  ROOT,
  withClient,
  type BenchOptions,
  type BenchResult,
  type BenchSuite,
} from './bench/harness.js';

/** Every suite, in the order they run. Add a suite here. */
const SUITES: BenchSuite[] = [
  clicksSuite,
  conversionsSuite,
  fraudSuite,
  dashboardSuite,
  overheadSuite,
  coldstartSuite,
  fanoutSuite,
  payoutsSuite,
  stripeSuite,
  scaleSuite,
];

const HELP = `Usage: npm run bench -- [--quick] [--suite NAME]... [--concurrency N] [--duration SECONDS] [--out FILE]

  --quick          3 s per scenario after 0.5 s of warm-up (default: 10 s after 2 s)
  --suite NAME     run only this suite (repeatable): ${SUITES.map((s) => s.name).join(', ')}
  --concurrency N  operations in flight at once (default 50)
  --duration S     measured seconds per scenario
  --out FILE       where to write the JSON results (default .refgraph/bench/bench-<time>.json)
  --sizes LIST     the scale suite's sizes in clicks (default 100k,1M; the issue's curve: 100k,10M,
                   which seeds for minutes and needs ~6 GB of free disk)

Environment: BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres): a PostgreSQL
server where the benchmark may create and drop databases.
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      suite: { type: 'string', multiple: true },
      concurrency: { type: 'string' },
      duration: { type: 'string' },
      out: { type: 'string' },
      sizes: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const unknown = (values.suite ?? []).filter((name) => !SUITES.some((s) => s.name === name));
  if (unknown.length) {
    process.stderr.write(`Unknown suite ${unknown.join(', ')}.\n\n${HELP}`);
    return 2;
  }
  const suites = values.suite ? SUITES.filter((s) => values.suite!.includes(s.name)) : SUITES;
  const options: BenchOptions = {
    quick: values.quick ?? false,
    durationMs: values.duration ? Number(values.duration) * 1000 : values.quick ? 3_000 : 10_000,
    warmupMs: values.quick ? 500 : 2_000,
    concurrency: values.concurrency ? Number(values.concurrency) : 50,
    databaseUrl: process.env.BENCH_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres',
    ...(values.sizes ? { sizes: values.sizes } : {}),
  };
  if (!(options.durationMs > 0) || !Number.isInteger(options.concurrency) || options.concurrency < 1) {
    process.stderr.write(`--duration and --concurrency must be positive numbers.\n\n${HELP}`);
    return 2;
  }

  const log = (line: string) => process.stderr.write(`${line}\n`);
  const postgres = await withClient(
    options.databaseUrl,
    async (c) => (await c.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]!.v,
  );
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres,
    /** Other work on the machine skews the numbers: the 1-minute load average before and after. */
    loadAverageBefore: Number(os.loadavg()[0]!.toFixed(2)),
    loadAverageAfter: 0,
  };
  log(
    `refgraph bench: ${suites.map((s) => s.name).join(', ')} on ${redact(options.databaseUrl)} (PostgreSQL ${postgres}), ` +
      `${machine.cpus} CPUs, ${options.concurrency} in flight, ${options.durationMs / 1000} s per scenario${options.quick ? ' (quick)' : ''}`,
  );

  const startedAt = new Date();
  const results: BenchResult[] = [];
  for (const suite of suites) results.push(...(await suite.run(options, log)));

  machine.loadAverageAfter = Number(os.loadavg()[0]!.toFixed(2));
  process.stdout.write(`\n${formatTable(results)}\n\n`);
  process.stdout.write(
    `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.platform}, Node ${machine.node}, PostgreSQL ${postgres}; ` +
      `load average ${machine.loadAverageBefore} before, ${machine.loadAverageAfter} after\n`,
  );
  for (const r of results) if (r.notes) process.stdout.write(`- ${r.scenario}: ${r.notes}\n`);

  const out = path.resolve(
    values.out ?? path.join(ROOT, '.refgraph', 'bench', `bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`),
  );
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const { databaseUrl, ...shown } = options;
  fs.writeFileSync(
    out,
    `${JSON.stringify({ startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), machine, options: { ...shown, database: redact(databaseUrl) }, results }, null, 2)}\n`,
  );
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), out)}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
