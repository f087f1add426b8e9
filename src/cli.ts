#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { openDatabase } from './db.js';
import { serve } from './index.js';
import { createLogger } from './logger.js';
import { seedDemo } from './modules/workspace/demo-seed.js';
import { createWorkspace } from './modules/workspace/workspace.service.js';

const HELP = `refgraph — self-hostable GraphQL API for referral and affiliate programs

Usage:
  refgraph serve                               run the server (same as npm start)
  refgraph migrate                             apply pending migrations to the database
  refgraph workspace create --name NAME [--json]
                                               create a workspace with one ADMIN secret key per
                                               mode; the keys are shown once
  refgraph seed --demo [--json]                create a demo workspace with programs, rules,
                                               partners and links
  refgraph help                                this text

Environment:
  PORT                 HTTP/WebSocket port (default 4000)
  HOST                 listen address (default 0.0.0.0)
  DATABASE_URL         postgresql://… ; unset: embedded PGlite in REFGRAPH_DATA_DIR
  REFGRAPH_DATA_DIR    local state directory (default ./.refgraph)
  MIGRATE_ON_START     apply pending migrations when serving (default true)
  DATABASE_POOL_SIZE   PostgreSQL connections (default 10)
  REDIS_URL            redis://… to share subscriptions between instances
  REFGRAPH_SECRET      installation secret (>= 32 chars); unset: generated and kept in the database
  PUBLIC_URL           base URL of referral links (default http://localhost:PORT)
  LOG_LEVEL            debug | info | warn | error | silent (default info)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      await serve();
      return -1; // keep running
    case 'migrate':
      return migrate();
    case 'workspace':
      return workspace(rest);
    case 'seed':
      return seed(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`refgraph: unknown command "${command}".\n\n${HELP}`);
      return 2;
  }
}

async function migrate(): Promise<number> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, migrate: true, logger });
  process.stdout.write(`Migrations are up to date on ${db.describe}.\n`);
  await db.close();
  return 0;
}

async function withDatabase<T>(fn: (db: Awaited<ReturnType<typeof openDatabase>>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, migrate: config.migrateOnStart, logger });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

async function workspace(args: string[]): Promise<number> {
  const [sub, ...flags] = args;
  if (sub !== 'create') {
    process.stderr.write(`refgraph workspace: expected "create", got ${sub ? `"${sub}"` : 'nothing'}.\nUsage: refgraph workspace create --name NAME [--json]\n`);
    return 2;
  }
  const { values } = parseArgs({ args: flags, options: { name: { type: 'string' }, json: { type: 'boolean', default: false } }, strict: true });
  if (!values.name?.trim()) {
    process.stderr.write('refgraph workspace create: --name NAME is required.\n');
    return 2;
  }
  const created = await withDatabase((db) => createWorkspace(db.prisma, values.name!));
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ workspace: created.workspace, keys: { test: created.keys.test.secret, live: created.keys.live.secret } })}\n`,
    );
  } else {
    process.stdout.write(
      [
        `Workspace "${created.workspace.name}" created: ${created.workspace.id}`,
        '',
        'ADMIN secret keys (shown once; only their hashes are stored):',
        `  test: ${created.keys.test.secret}`,
        `  live: ${created.keys.live.secret}`,
        '',
        'Use one as `Authorization: Bearer <key>` on /graphql.',
        '',
      ].join('\n'),
    );
  }
  return 0;
}

async function seed(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { demo: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } }, strict: true });
  if (!values.demo) {
    process.stderr.write('refgraph seed: only --demo is supported: refgraph seed --demo [--json]\n');
    return 2;
  }
  const result = await withDatabase((db) => seedDemo(db.prisma));
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    process.stdout.write(
      [
        `Demo workspace "${result.workspace.name}" created: ${result.workspace.id}`,
        `  ${result.counts.programs} programs, ${result.counts.rewardRules} reward rules, ${result.counts.partners} partners, ${result.counts.links} links`,
        `  test key: ${result.keys.test}`,
        `  live key: ${result.keys.live}`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`refgraph: ${error.message}\n`);
      process.exitCode = 78; // EX_CONFIG
      return;
    }
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`refgraph: ${error.message}\nRun \`refgraph help\` for usage.\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`refgraph: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
