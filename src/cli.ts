#!/usr/bin/env node
// The `refgraph` command. Exit codes: 0 ok, 1 failure (message on stderr), 2 usage error,
// 78 bad configuration (EX_CONFIG). Heavy modules (Prisma, the GraphQL schema) load only for the
// commands that need them, so `refgraph help` and usage errors answer at once.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig, redact, type Config, type LogLevel } from './config.js';
import type { BatchReport, CsvImportProgress, CsvImportSummary } from './cli/import-partners.js';
import type { Database } from './db.js';
import { globalId, rowIdOf } from './lib/global-id.js';
import { isUuid } from './lib/ids.js';

const HELP = `refgraph — self-hostable GraphQL API for referral and affiliate programs

Usage:
  refgraph serve                    run the server (same as npm start) until SIGTERM or SIGINT
  refgraph migrate                  apply pending migrations to DATABASE_URL (creating that
                                    database if it does not exist), or to the embedded database
  refgraph workspace create --name NAME [--json]
                                    create a workspace with one ADMIN secret key per mode; prints
                                    the workspace's and the keys' ids, and the secret keys once
                                    (only their hashes are stored)
  refgraph key create --workspace ID --mode TEST|LIVE --role ADMIN|READ_ONLY --name NAME [--json]
                                    create a secret key; its secret is shown this once
  refgraph key list --workspace ID [--mode TEST|LIVE] [--include-revoked] [--json]
                                    the workspace's keys (both modes unless --mode), newest first:
                                    ids, names, roles, secret hints, never a secret
  refgraph key revoke KEY_ID [--workspace ID] [--json]
                                    revoke a key: it and the access tokens issued from it stop
                                    working (revoking twice changes nothing)
  refgraph member create --workspace ID --email EMAIL --role ADMIN|READ_ONLY [--name NAME] [--json]
                                    invite a team member to the dashboard: prints the one-time
                                    invitation link (valid MEMBER_INVITATION_TTL_HOURS); inviting
                                    an email still invited sends a new link
  refgraph member list --workspace ID [--json]
                                    the workspace's team members, oldest first
  refgraph seed --demo [--json]     create a demo workspace (TEST mode) with programs, reward
                                    rules, partners, links, clicks, conversions, rewards, a payout
                                    and a demo ADMIN member whose password is printed
  refgraph import partners FILE.csv --workspace ID --mode TEST|LIVE [--program ID]
           [--batch-size N] [--stop-on-error] [--failed OUT.csv] [--json]
                                    import existing partners from a CSV file (header: externalId,
                                    and any of name, email, code, programId, metadata as JSON):
                                    each is enrolled APPROVED in its program (the programId column,
                                    else --program) with its code (else a generated one). The file
                                    is streamed in batches of --batch-size rows (default and most
                                    1000), each all or nothing, through the API's importPartners;
                                    a failed batch is reported with its rows' errors by line and
                                    the next batch goes on (--stop-on-error: stop there instead);
                                    --failed writes the failed batches' rows to OUT.csv to fix and
                                    import again. Progress on stderr (a bar on a terminal, a line
                                    per batch otherwise), the summary on stdout; exit 1 when a
                                    batch failed
  refgraph help                     this text

The workspace, key, seed and import commands act as the operator of the installation, on the database
that DATABASE_URL (or REFGRAPH_DATA_DIR) names: they need no credential and reach every
workspace. Ids are global ids, as the API and these commands print them (--workspace also takes
the plain UUID that older versions printed). \`key revoke\` without --workspace revokes the key in
whichever workspace it is; with --workspace, only a key of that workspace (another's is refused,
exit 1). Creating and revoking keys appends api_key.created / api_key.revoked events, like the
API; servers drop a revoked key from their caches and close its WebSockets when its event reaches
them. --json prints one line of JSON on stdout; a key in it has the fields of the API's ApiKey
type (never its secret, except in what create commands print once).

Environment:
  PORT                 HTTP/WebSocket port (default 4000)
  HOST                 listen address (default 0.0.0.0)
  DATABASE_URL         postgresql://… ; unset: the embedded PGlite database in REFGRAPH_DATA_DIR
  REFGRAPH_DATA_DIR    local state (default ./.refgraph); its embedded database can be open in
                       one process at a time: stop the server before running other commands
  MIGRATE_ON_START     apply pending migrations when serve, workspace, key or seed open the
                       database (default true)
  DATABASE_POOL_SIZE   PostgreSQL connections of the server (default 10)
  REDIS_URL            redis://… to share subscriptions and rate limits between instances
  REDIS_PREFIX         prefix of this installation's Redis keys and channels (default refgraph:)
  REFGRAPH_SECRET      installation secret (>= 32 chars); unset: generated, kept in the database
  PUBLIC_URL           base URL of referral links and invitation links (default
                       http://localhost:PORT); https makes the session cookies Secure
  MEMBER_INVITATION_TTL_HOURS
                       an invitation link works this long, once (default 72)
  MEMBER_SESSION_TTL_HOURS
                       a dashboard sign-in lasts this long (default 12)
  RATE_LIMIT_SIGN_IN_FAILURES (5), RATE_LIMIT_SIGN_IN_FAILURES_PER_IP (20)
                       failed sign-ins per email and IP, and per IP, in 15 minutes; over
                       them: 429 (0: no limit)
  TRUST_PROXY          behind a reverse proxy: visitor IP from X-Forwarded-For (default false)
  LOG_LEVEL            debug | info | warn | error | silent (default info)
  ACCESS_LOG           one JSON line per HTTP request at info level (default on; off: none)
  METRICS_TOKEN        GET /metrics requires "Authorization: Bearer <token>" (unset: open)
  APPROVAL_JOB_INTERVAL_MS
                       pause between runs of the job approving rewards whose hold ended
                       (default 60000; 0: not in this instance)
  TIER_JOB_INTERVAL_MS pause between runs of the evaluation of partners' tiers, up and down
                       (default 86400000 = daily; 0: not in this instance)
  ROLLUP_FOLD_INTERVAL_MS
                       pause between folds of pending reporting deltas into the rollups
                       (default 5000; 0: not in this instance)
  CLICK_QUEUE_SIZE (10000), CLICK_BATCH_SIZE (500), CLICK_FLUSH_INTERVAL_MS (100),
  CLICK_WRITERS (2), CLICK_LINK_CACHE_TTL_MS (2000)
                       tuning of the batched click writer (defaults in parentheses)
  EVENT_POLL_INTERVAL_MS
                       fallback poll of the outbox when no NOTIFY arrives (default 1000)
  STATS_THROTTLE_MS    at most one programStatsChanged update per program per interval (default 1000)
  AUTH_CACHE_TTL_MS    reuse a looked-up API key this long without asking the database; revoking
                       evicts it at once (through REDIS_URL on other instances) (default 5000; 0: off)
  WS_MAX_BUFFERED_BYTES
                       a WebSocket client with more unsent bytes is closed with 1013 (default 4194304)
  MAX_REQUEST_BODY_BYTES
                       a larger GraphQL request body over HTTP is refused with 413 (default 1048576)
  RATE_LIMIT_CREDENTIAL_PER_SECOND (1000), RATE_LIMIT_ANONYMOUS_PER_MINUTE (600),
  RATE_LIMIT_TOKENS_PER_MINUTE (60), RATE_LIMIT_REDIRECT_PER_MINUTE (1200)
                       GraphQL operations per credential; requests without a valid credential,
                       token mutations and /r/{code} per IP; over them: 429 (0: no limit)
  RATE_LIMIT_STRIPE_PER_SECOND
                       Stripe webhook deliveries per second to one integration (default 200; 0: no limit)
  INTROSPECTION        public | authenticated | off (default public; authenticated in production)
  MAX_SUBSCRIPTIONS_PER_CONNECTION
                       operations at once on one WebSocket connection (default 100)
  MAX_SUBSCRIPTIONS_PER_CREDENTIAL
                       operations at once over one credential's WebSockets, per instance (default 10000)
  MAX_QUERY_DEPTH (15), MAX_QUERY_COST (500000), MAX_ALIASES (30), MAX_QUERY_TOKENS (5000),
  MAX_QUERY_NESTING (64)
                       a GraphQL document past one of these is refused before it runs
                       (QUERY_TOO_COMPLEX); the cost model is in the README
  WEBHOOK_ALLOW_PRIVATE_TARGETS
                       send webhooks to loopback, private and link-local addresses too (default false)
  WEBHOOK_MAX_FAILURES consecutive failed attempts before an endpoint is disabled (default 10)
  WEBHOOK_RETRY_FOR_MS retry a failing delivery this long after its first attempt (default 86400000)
  WEBHOOK_TIMEOUT_MS   one delivery request, until the response headers (default 10000)
  WEBHOOK_WORKER_INTERVAL_MS
                       poll for due webhook deliveries (default 1000; 0: no delivery worker here)
  WEBHOOK_CONCURRENCY  webhook requests in flight at once per instance (default 10)
  EVENT_RETENTION_DAYS events older than this are deleted once dispatched; an events(after:)
                       cursor before them is CURSOR_EXPIRED (default 90; 0: kept forever)
  WEBHOOK_DELIVERY_RETENTION_DAYS
                       succeeded and failed webhook deliveries older than this are deleted;
                       pending ones never (default 30; 0: kept forever)
  CLICK_RETENTION_DAYS raw clicks older than this are deleted (whole monthly partitions
                       dropped); their counts stay in the reporting rollups (default 0: kept
                       forever)
  RETENTION_INTERVAL_SECONDS
                       pause between runs of the job that deletes them, in small batches, and
                       makes the click partitions of the coming months; safe on every instance
                       at once (default 3600; 0: not in this instance)

Exit codes: 0 success, 1 failure (e.g. an unknown workspace or key), 2 usage error, 78 invalid
configuration.
`;

const KEY_USAGE = {
  'key create': 'refgraph key create --workspace ID --mode TEST|LIVE --role ADMIN|READ_ONLY --name NAME [--json]',
  'key list': 'refgraph key list --workspace ID [--mode TEST|LIVE] [--include-revoked] [--json]',
  'key revoke': 'refgraph key revoke KEY_ID [--workspace ID] [--json]',
} as const;

const MEMBER_USAGE = {
  'member create': 'refgraph member create --workspace ID --email EMAIL --role ADMIN|READ_ONLY [--name NAME] [--json]',
  'member list': 'refgraph member list --workspace ID [--json]',
} as const;

const USAGE = {
  serve: 'refgraph serve',
  migrate: 'refgraph migrate',
  'workspace create': 'refgraph workspace create --name NAME [--json]',
  ...KEY_USAGE,
  key: Object.values(KEY_USAGE).join('\n       '),
  ...MEMBER_USAGE,
  member: Object.values(MEMBER_USAGE).join('\n       '),
  seed: 'refgraph seed --demo [--json]',
  'import partners':
    'refgraph import partners FILE.csv --workspace ID --mode TEST|LIVE [--program ID] [--batch-size N] [--stop-on-error] [--failed OUT.csv] [--json]',
} as const;
type Command = keyof typeof USAGE;

/** Wrong arguments: exit code 2, the message and the command's usage on stderr. */
class UsageError extends Error {
  constructor(
    readonly command: Command | null,
    message: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** parseArgs, with its errors turned into UsageErrors that name the command. */
function parse<O extends NonNullable<ParseArgsConfig['options']>>(command: Command, args: string[], options: O) {
  return parseWithPositionals(command, args, options, false).values;
}

function parseWithPositionals<O extends NonNullable<ParseArgsConfig['options']>>(
  command: Command,
  args: string[],
  options: O,
  allowPositionals = true,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    if (error instanceof TypeError && String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(command, error.message);
    }
    throw error;
  }
}

/** 'running': the server keeps the process alive; otherwise the exit code. */
async function main(argv: string[]): Promise<number | 'running'> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      parse('serve', rest, {});
      loadConfig(); // a bad variable is reported before the (slower) loading of the server
      const { serve } = await import('./index.js');
      await serve();
      return 'running';
    }
    case 'migrate':
      parse('migrate', rest, {});
      return migrate();
    case 'workspace':
      return workspace(rest);
    case 'key':
      return key(rest);
    case 'member':
      return member(rest);
    case 'seed':
      return seed(rest);
    case 'import':
      return importCommand(rest);
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

// ---------------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------------

async function migrate(): Promise<number> {
  const config = loadConfig();
  let applied: string[] = [];
  let where: string;
  if (config.databaseUrl) {
    // An operator running `migrate` against a server where the database does not exist yet wants it
    // created: it is, with a message on stderr (CREATE DATABASE needs the CREATEDB privilege; without
    // it, the error says "permission denied to create database").
    const { applyMigrations } = await import('./db/migrate.js');
    const logger = cliLogger(config.logLevel);
    ({ applied } = await applyMigrations(
      { url: config.databaseUrl },
      { createDatabase: true, log: (m) => logger.info(m) },
    ));
    where = redact(config.databaseUrl);
  } else {
    const logger = cliLogger(config.logLevel, (record) => {
      if (!Array.isArray(record['applied'])) return true;
      applied = record['applied'] as string[];
      return false; // the summary below says it
    });
    // From scratch, not from the build's template: `migrate` reports every migration it applies.
    const db = await open(config, { migrate: true, logger, pgliteTemplate: null });
    where = db.describe;
    await db.close();
  }
  process.stdout.write(
    applied.length
      ? `Applied ${applied.length} migration(s) to ${where}: ${applied.join(', ')}.\n`
      : `No pending migrations: ${where} is up to date.\n`,
  );
  return 0;
}

async function workspace(args: string[]): Promise<number> {
  const [sub, ...flags] = args;
  if (sub !== 'create') {
    throw new UsageError(
      'workspace create',
      `expected "create" after "workspace", got ${sub ? `"${sub}"` : 'nothing'}.`,
    );
  }
  const values = parse('workspace create', flags, {
    name: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const name = values.name?.trim();
  if (!name) throw new UsageError('workspace create', '--name NAME is required (a non-empty workspace name).');
  const config = loadConfig();
  const { createWorkspace } = await import('./modules/workspace/workspace.service.js');
  const created = await withDatabase(config, (db) =>
    createWorkspace(db.prisma, name).catch((error: unknown) => {
      // The service's input validation (e.g. the name's length) is the caller's mistake.
      throw error instanceof RangeError ? new UsageError('workspace create', error.message) : error;
    }),
  );
  const id = globalId('Workspace', created.workspace.id);
  const keys = { test: created.keys.test.secret, live: created.keys.live.secret };
  if (values.json) {
    const apiKeys = { test: apiKeyJson(created.keys.test), live: apiKeyJson(created.keys.live) };
    process.stdout.write(`${JSON.stringify({ workspace: { id, name: created.workspace.name }, keys, apiKeys })}\n`);
  } else {
    process.stdout.write(
      [
        `Workspace "${created.workspace.name}" created: ${id}`,
        '',
        'ADMIN secret keys (shown once; only their hashes are stored):',
        `  test: ${keys.test}`,
        `  live: ${keys.live}`,
        '',
        'Their key ids (`refgraph key list --workspace <workspace id>`, `refgraph key revoke <key id>`):',
        `  test: ${globalId('ApiKey', created.keys.test.id)}`,
        `  live: ${globalId('ApiKey', created.keys.live.id)}`,
        '',
        'Use a secret key as `Authorization: Bearer <key>` on /graphql.',
        '',
      ].join('\n'),
    );
  }
  return 0;
}

// --- API keys ----------------------------------------------------------------------------------------

type KeyMode = 'TEST' | 'LIVE';

/** The columns of a key that the key commands read: never its hash. */
interface ApiKeyRow {
  id: string;
  name: string;
  role: string;
  mode: string;
  accessKeyId: string;
  secretHint: string;
  createdAt: Date;
  lastUsedAt?: Date | null;
  revokedAt?: Date | null;
}

const API_KEY_COLUMNS = {
  id: true,
  name: true,
  role: true,
  mode: true,
  accessKeyId: true,
  secretHint: true,
  createdAt: true,
  lastUsedAt: true,
  revokedAt: true,
} as const;

/** A key as --json prints it: the fields of the API's ApiKey type. */
function apiKeyJson(key: ApiKeyRow) {
  return {
    id: globalId('ApiKey', key.id),
    name: key.name,
    role: key.role,
    mode: key.mode,
    accessKeyId: key.accessKeyId,
    secretHint: key.secretHint,
    createdAt: key.createdAt.toISOString(),
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}

async function key(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create':
      return keyCreate(rest);
    case 'list':
      return keyList(rest);
    case 'revoke':
      return keyRevoke(rest);
    default:
      throw new UsageError(
        'key',
        `expected "create", "list" or "revoke" after "key", got ${sub ? `"${sub}"` : 'nothing'}.`,
      );
  }
}

/** --workspace: a Workspace global id, or the plain UUID that older versions printed. */
function workspaceArg(command: Command, value: string | undefined): string {
  const given = value?.trim();
  if (!given) throw new UsageError(command, '--workspace ID is required (the id `refgraph workspace create` printed).');
  const id = rowIdOf('Workspace', given) ?? (isUuid(given) ? given.toLowerCase() : null);
  if (!id) {
    throw new UsageError(
      command,
      `--workspace "${given}" is not a workspace id (the id \`refgraph workspace create\` printed, or viewer { workspace { id } } in the API).`,
    );
  }
  return id;
}

function modeArg(command: Command, value: string | undefined): KeyMode | undefined {
  if (value === undefined) return undefined;
  const mode = value.trim().toUpperCase();
  if (mode !== 'TEST' && mode !== 'LIVE') throw new UsageError(command, `--mode must be TEST or LIVE, got "${value}".`);
  return mode;
}

/** The workspace the command works on; exit 1 (CliError) when the database has no such workspace. */
async function findWorkspace(db: Database, id: string): Promise<{ id: string; name: string }> {
  const workspace = await db.prisma.workspace.findUnique({ where: { id }, select: { id: true, name: true } });
  if (!workspace) throw new CliError(`no workspace ${globalId('Workspace', id)} in ${db.describe}.`);
  return workspace;
}

const workspaceJson = (workspace: { id: string; name: string }) => ({
  id: globalId('Workspace', workspace.id),
  name: workspace.name,
});

async function keyCreate(args: string[]): Promise<number> {
  const command = 'key create';
  const values = parse(command, args, {
    workspace: { type: 'string' },
    mode: { type: 'string' },
    role: { type: 'string' },
    name: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const workspaceId = workspaceArg(command, values.workspace);
  const mode = modeArg(command, values.mode);
  if (!mode) throw new UsageError(command, '--mode TEST|LIVE is required: the mode whose data the key reaches.');
  const role = values.role?.trim().toUpperCase();
  if (role === undefined) throw new UsageError(command, '--role ADMIN|READ_ONLY is required.');
  if (role !== 'ADMIN' && role !== 'READ_ONLY' && role !== 'PARTNER') {
    throw new UsageError(command, `--role must be ADMIN or READ_ONLY, got "${values.role}".`);
  }
  if (values.name === undefined)
    throw new UsageError(command, '--name NAME is required (1 to 100 characters, for people).');
  const { checkApiKeyInput, createTenantApiKey } = await import('./modules/workspace/workspace.service.js');
  const input = asUsage(command, () => checkApiKeyInput({ role, name: values.name! }));
  const config = loadConfig();
  const { workspace, created } = await withDatabase(config, async (db) => {
    const workspace = await findWorkspace(db, workspaceId);
    return { workspace, created: await createTenantApiKey(db.prisma, { workspaceId, mode }, input) };
  });
  if (values.json) {
    const out = { workspace: workspaceJson(workspace), apiKey: apiKeyJson(created), secret: created.secret };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    process.stdout.write(
      [
        `API key "${printable(created.name)}" created: ${globalId('ApiKey', created.id)}`,
        `  workspace:     ${globalId('Workspace', workspace.id)} ("${printable(workspace.name)}")`,
        `  mode, role:    ${created.mode}, ${created.role}`,
        `  access key id: ${created.accessKeyId}`,
        `  secret key:    ${created.secret}`,
        '',
        'The secret key is shown once (only its hash is stored): keep it now.',
        '',
      ].join('\n'),
    );
  }
  return 0;
}

async function keyList(args: string[]): Promise<number> {
  const command = 'key list';
  const values = parse(command, args, {
    workspace: { type: 'string' },
    mode: { type: 'string' },
    'include-revoked': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  const workspaceId = workspaceArg(command, values.workspace);
  const mode = modeArg(command, values.mode);
  const includeRevoked = values['include-revoked'];
  const config = loadConfig();
  const { apiKeyListWhere } = await import('./modules/workspace/workspace.service.js');
  const { workspace, keys } = await withDatabase(config, async (db) => {
    const workspace = await findWorkspace(db, workspaceId);
    const keys: ApiKeyRow[] = await db.prisma.apiKey.findMany({
      where: apiKeyListWhere({ workspaceId, mode }, includeRevoked),
      orderBy: { id: 'desc' },
      select: API_KEY_COLUMNS,
    });
    return { workspace, keys };
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ workspace: workspaceJson(workspace), apiKeys: keys.map(apiKeyJson) })}\n`);
    return 0;
  }
  const where = `workspace "${printable(workspace.name)}" (${globalId('Workspace', workspace.id)})`;
  if (keys.length === 0) {
    const what = `${includeRevoked ? '' : 'unrevoked '}API keys${mode ? ` of ${mode} mode` : ''}`;
    process.stdout.write(`No ${what} in ${where}.\n`);
    return 0;
  }
  const which = `${mode ?? 'TEST and LIVE'}${includeRevoked ? ', revoked ones included' : ''}`;
  const heading = `API keys of ${where}, ${which}, newest first (times in UTC):`;
  const rows = keys.map((k) => [
    globalId('ApiKey', k.id),
    k.mode,
    k.role,
    printable(k.name),
    k.secretHint,
    timestamp(k.createdAt),
    k.lastUsedAt ? timestamp(k.lastUsedAt) : 'never',
    k.revokedAt ? timestamp(k.revokedAt) : '-',
  ]);
  const header = ['ID', 'MODE', 'ROLE', 'NAME', 'SECRET', 'CREATED', 'LAST USED', 'REVOKED'];
  process.stdout.write(`${heading}\n\n${table([header, ...rows])}`);
  return 0;
}

async function keyRevoke(args: string[]): Promise<number> {
  const command = 'key revoke';
  const { values, positionals } = parseWithPositionals(command, args, {
    workspace: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (positionals.length !== 1) {
    throw new UsageError(
      command,
      positionals.length === 0
        ? 'KEY_ID is required: the global id of the key (`refgraph key list` prints them).'
        : `expected one KEY_ID, got ${positionals.length}: ${positionals.join(' ')}.`,
    );
  }
  const given = positionals[0]!.trim();
  const keyId = rowIdOf('ApiKey', given);
  if (!keyId) {
    throw new UsageError(
      command,
      isUuid(given)
        ? `"${given}" is a plain UUID: give the key's global id, as \`refgraph key list\` prints it.`
        : `"${given}" is not an API key id (\`refgraph key list\` prints them).`,
    );
  }
  const workspaceId = values.workspace === undefined ? null : workspaceArg(command, values.workspace);
  const config = loadConfig();
  const { revokeApiKey } = await import('./modules/workspace/workspace.service.js');
  const { workspace, before, after } = await withDatabase(config, async (db) => {
    if (workspaceId) await findWorkspace(db, workspaceId);
    const before = await db.prisma.apiKey.findUnique({
      where: { id: keyId },
      select: { ...API_KEY_COLUMNS, workspace: { select: { id: true, name: true } } },
    });
    if (!before || (workspaceId && before.workspace.id !== workspaceId)) {
      const where = workspaceId ? `workspace ${globalId('Workspace', workspaceId)}` : db.describe;
      throw new CliError(`no API key ${given} in ${where}; nothing was revoked.`);
    }
    // Through the service the API uses: the key, its refresh tokens and the api_key.revoked event in one transaction.
    await revokeApiKey(db.prisma, { workspaceId: before.workspace.id, mode: before.mode }, before.id);
    const after = await db.prisma.apiKey.findUniqueOrThrow({ where: { id: keyId }, select: API_KEY_COLUMNS });
    return { workspace: before.workspace, before, after };
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ workspace: workspaceJson(workspace), apiKey: apiKeyJson(after) })}\n`);
  } else if (before.revokedAt) {
    process.stdout.write(
      `API key "${printable(after.name)}" (${after.mode}, ${after.role}) of workspace "${printable(workspace.name)}" was already revoked at ${timestamp(before.revokedAt)} UTC; nothing changed.\n`,
    );
  } else {
    process.stdout.write(
      `API key "${printable(after.name)}" (${after.mode}, ${after.role}) of workspace "${printable(workspace.name)}" revoked: ${given}\n` +
        'It and the access tokens issued from it are refused from now on; a running server drops it from its cache\n' +
        'and closes its WebSockets when the api_key.revoked event reaches it.\n',
    );
  }
  return 0;
}

/** A service's validation (DomainError with an ["input", name] field) as a usage error naming the flag. */
function asUsage<T>(command: Command, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    const e = error as { name?: string; message?: string; field?: string[] | null };
    if (e.name === 'DomainError') {
      const flag = e.field?.[1];
      throw new UsageError(command, `${flag ? `--${flag}: ` : ''}${e.message ?? String(error)}`);
    }
    throw error;
  }
}

/** `2026-01-02 03:04:05` (UTC). */
const timestamp = (at: Date) => at.toISOString().slice(0, 19).replace('T', ' ');

/** Control characters (a newline in a key's name) shown escaped, so one key stays one row. */
const printable = (text: string) =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
  /[\u0000-\u001f\u007f]/.test(text) ? JSON.stringify(text).slice(1, -1) : text;

/** Rows as left-aligned columns two spaces apart, the first row a header. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => [...row[i]!].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + cell.length - [...cell].length)))
        .join('  '),
    )
    .join('\n')
    .concat('\n');
}

// --- Members -------------------------------------------------------------------------------------------

async function member(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create':
      return memberCreate(rest);
    case 'list':
      return memberList(rest);
    default:
      throw new UsageError(
        'member',
        `expected "create" or "list" after "member", got ${sub ? `"${sub}"` : 'nothing'}.`,
      );
  }
}

async function memberCreate(args: string[]): Promise<number> {
  const command = 'member create';
  const values = parse(command, args, {
    workspace: { type: 'string' },
    email: { type: 'string' },
    role: { type: 'string' },
    name: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const workspaceId = workspaceArg(command, values.workspace);
  if (values.email === undefined)
    throw new UsageError(command, '--email EMAIL is required (where the invitation goes).');
  const role = values.role?.trim().toUpperCase();
  if (role === undefined) throw new UsageError(command, '--role ADMIN|READ_ONLY is required.');
  if (role !== 'ADMIN' && role !== 'READ_ONLY')
    throw new UsageError(command, `--role must be ADMIN or READ_ONLY, got "${values.role}".`);
  const { inviteMember, invitationUrl, normalizeEmail } = await import('./modules/member/member.service.js');
  asUsage(command, () => normalizeEmail(values.email!));
  const config = loadConfig();
  const { workspace, invited } = await withDatabase(config, async (db) => {
    const workspace = await findWorkspace(db, workspaceId);
    try {
      const invited = await inviteMember(
        db.prisma,
        workspaceId,
        { email: values.email!, role, name: values.name ?? null },
        config.members,
      );
      return { workspace, invited };
    } catch (error) {
      // An ACTIVE member's email (DUPLICATE) is a failure; a malformed flag a usage error.
      const e = error as { name?: string; code?: string; message?: string; field?: string[] | null };
      if (e.name !== 'DomainError') throw error;
      if (e.code === 'VALIDATION') throw new UsageError(command, `--${e.field?.[1] ?? 'email'}: ${e.message}`);
      throw new CliError(e.message ?? String(error));
    }
  });
  const url = invitationUrl(config.publicUrl, invited.invitationToken);
  const id = globalId('Member', invited.member.id);
  if (values.json) {
    const out = { member: { id, email: invited.member.email, role: invited.member.role }, invitationUrl: url };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    process.stdout.write(
      [
        `Member ${invited.member.email} invited: ${id}`,
        `  workspace: ${globalId('Workspace', workspace.id)} ("${printable(workspace.name)}")`,
        `  role:      ${invited.member.role}`,
        '',
        `Invitation link (works once, for ${config.members.invitationTtlHours} h; shown only now):`,
        `  ${url}`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}

async function memberList(args: string[]): Promise<number> {
  const command = 'member list';
  const values = parse(command, args, { workspace: { type: 'string' }, json: { type: 'boolean', default: false } });
  const workspaceId = workspaceArg(command, values.workspace);
  const config = loadConfig();
  const { workspace, members } = await withDatabase(config, async (db) => {
    const workspace = await findWorkspace(db, workspaceId);
    const members = await db.prisma.member.findMany({
      where: { workspaceId },
      orderBy: { id: 'asc' },
      select: { id: true, email: true, name: true, role: true, status: true, createdAt: true, joinedAt: true },
    });
    return { workspace, members };
  });
  const json = members.map((m) => ({
    id: globalId('Member', m.id),
    email: m.email,
    name: m.name,
    role: m.role,
    status: m.status,
    createdAt: m.createdAt.toISOString(),
    joinedAt: m.joinedAt?.toISOString() ?? null,
  }));
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ workspace: workspaceJson(workspace), members: json })}\n`);
    return 0;
  }
  const where = `workspace "${printable(workspace.name)}" (${globalId('Workspace', workspace.id)})`;
  if (members.length === 0) {
    process.stdout.write(`No members in ${where}.\n`);
    return 0;
  }
  const rows = members.map((m) => [
    globalId('Member', m.id),
    printable(m.email),
    printable(m.name ?? ''),
    m.role,
    m.status,
    timestamp(m.createdAt),
    m.joinedAt ? timestamp(m.joinedAt) : '-',
  ]);
  const header = ['ID', 'EMAIL', 'NAME', 'ROLE', 'STATUS', 'INVITED', 'JOINED'];
  process.stdout.write(`Members of ${where}, oldest first (times in UTC):\n\n${table([header, ...rows])}`);
  return 0;
}

async function seed(args: string[]): Promise<number> {
  const values = parse('seed', args, {
    demo: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  if (!values.demo) throw new UsageError('seed', 'only --demo is supported.');
  const config = loadConfig();
  const { seedDemo } = await import('./modules/workspace/demo-seed.js');
  const seeded = await withDatabase(config, (db) => seedDemo(db));
  const result = { ...seeded, workspace: { ...seeded.workspace, id: globalId('Workspace', seeded.workspace.id) } };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const { programs, rewardRules, partners, links, clicks, conversions, rewards, payouts } = result.counts;
    process.stdout.write(
      [
        `Demo workspace "${result.workspace.name}" created: ${result.workspace.id}`,
        `  ${programs} programs, ${rewardRules} reward rules, ${partners} partners, ${links} links (TEST mode)`,
        `  ${clicks} clicks, ${conversions} conversions, ${rewards} rewards, ${payouts} payout`,
        '',
        'ADMIN secret keys (shown once; only their hashes are stored):',
        `  test: ${result.keys.test}`,
        `  live: ${result.keys.live}`,
        '',
        `Dashboard sign-in (${config.publicUrl}/app/, an ADMIN member; the password is shown once):`,
        `  email:    ${result.member.email}`,
        `  password: ${result.member.password}`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}

// --- Import --------------------------------------------------------------------------------------------

async function importCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'partners') {
    throw new UsageError('import partners', `expected "partners" after "import", got ${sub ? `"${sub}"` : 'nothing'}.`);
  }
  const command = 'import partners';
  const { values, positionals } = parseWithPositionals(command, rest, {
    workspace: { type: 'string' },
    mode: { type: 'string' },
    program: { type: 'string' },
    'batch-size': { type: 'string' },
    'stop-on-error': { type: 'boolean', default: false },
    failed: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (positionals.length !== 1) {
    throw new UsageError(
      command,
      positionals.length === 0
        ? 'FILE.csv is required: the CSV file to import.'
        : `expected one FILE.csv, got ${positionals.length}: ${positionals.join(' ')}.`,
    );
  }
  const file = positionals[0]!;
  const workspaceId = workspaceArg(command, values.workspace);
  const mode = modeArg(command, values.mode);
  if (!mode) throw new UsageError(command, '--mode TEST|LIVE is required: the mode whose partners these are.');
  const programGiven = values.program?.trim();
  const defaultProgramId = programGiven === undefined ? null : rowIdOf('Program', programGiven);
  if (programGiven !== undefined && !defaultProgramId) {
    throw new UsageError(command, `--program "${programGiven}" is not a program id (the API's Program.id).`);
  }
  const { IMPORT_MAX_ROWS } = await import('./modules/partner/import.service.js');
  const batchSize = values['batch-size'] === undefined ? IMPORT_MAX_ROWS : Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > IMPORT_MAX_ROWS) {
    throw new UsageError(
      command,
      `--batch-size must be a whole number from 1 to ${IMPORT_MAX_ROWS}, got "${values['batch-size']}".`,
    );
  }
  if (values.failed !== undefined && path.resolve(values.failed) === path.resolve(file)) {
    throw new UsageError(command, '--failed must name another file than the one imported.');
  }
  let size: number;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new CliError(`${file} is not a file; nothing was imported.`);
    size = stat.size;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${file}: ${(error as Error).message}; nothing was imported.`);
  }

  const config = loadConfig();
  const { importPartners } = await import('./modules/partner/import.service.js');
  const { batchOutcomeOf, CsvFileError, importPartnersCsv } = await import('./cli/import-partners.js');
  const progress = importProgress(size);
  const failedRows = values.failed === undefined ? null : failedRowsWriter(values.failed);
  const { workspace, summary, fileError } = await withDatabase(config, async (db) => {
    const workspace = await findWorkspace(db, workspaceId);
    const tenant = { workspaceId, mode };
    if (defaultProgramId) {
      const program = await db.prisma.program.findUnique({
        where: { id_workspaceId_mode: { id: defaultProgramId, ...tenant } },
        select: { id: true },
      });
      if (!program) {
        throw new CliError(
          `no program ${programGiven} in workspace ${globalId('Workspace', workspaceId)} (${mode} mode); nothing was imported.`,
        );
      }
    }
    try {
      const summary = await importPartnersCsv(fs.createReadStream(file), {
        batchSize,
        defaultProgramId,
        programIdOf: (cell) => rowIdOf('Program', cell),
        stopOnError: values['stop-on-error'],
        // The API's service, batch after batch: the same checks, writes and events.
        importBatch: (rows) =>
          importPartners(db, tenant, rows).then((result) => ({ imported: result.partners.length }), batchOutcomeOf),
        onProgress: progress.update,
        onFailedRows: failedRows?.write,
      });
      return { workspace, summary, fileError: null };
    } catch (error) {
      // A broken line: what the batches before it did is reported with the error.
      if (!(error instanceof CsvFileError) || !error.summary) throw error;
      return { workspace, summary: error.summary, fileError: error.message };
    } finally {
      progress.done();
      await failedRows?.close();
    }
  });
  const where = { workspace: workspaceJson(workspace), mode };
  const failedBatches = summary.batches.filter((b) => b.errors.length > 0);
  if (values.json) {
    const out = {
      file,
      ...where,
      rows: summary.rows,
      imported: summary.imported,
      batches: summary.batches.length,
      failedBatches,
      stopped: summary.stopped,
      failedRowsFile: failedRows?.written ? values.failed : null,
      error: fileError,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    process.stdout.write(
      importSummaryText(file, summary, {
        workspace: `"${printable(workspace.name)}" (${globalId('Workspace', workspace.id)})`,
        mode,
        failedRowsFile: failedRows?.written ? values.failed! : null,
        fileError,
      }),
    );
  }
  return failedBatches.length > 0 || fileError ? 1 : 0;
}

/** The summary for people: what was imported, then every failed batch with its rows' errors by line. */
function importSummaryText(
  file: string,
  summary: CsvImportSummary,
  where: { workspace: string; mode: string; failedRowsFile: string | null; fileError: string | null },
): string {
  const failed = summary.batches.filter((b) => b.errors.length > 0);
  const batches = `${summary.batches.length} batch${summary.batches.length === 1 ? '' : 'es'}`;
  const lines = [
    `Imported ${summary.imported} of ${summary.rows} partners from ${file} into workspace ${where.workspace}, ${where.mode} mode` +
      ` (${batches}${failed.length ? `, ${failed.length} failed` : ''}).`,
  ];
  if (summary.rows === 0 && !where.fileError) lines.push('The file has no rows after its header.');
  if (failed.length > 0) {
    lines.push(
      'A failed batch imports none of its rows, the good ones included: fix the errors below and import those rows again' +
        (where.failedRowsFile
          ? ` (they are in ${where.failedRowsFile}).`
          : ' (--failed OUT.csv writes them to a file).'),
    );
    for (const batch of failed) lines.push('', ...batchErrorLines(batch));
  }
  if (summary.stopped) {
    const last = summary.batches[summary.batches.length - 1]!;
    lines.push(
      '',
      `Stopped after batch ${last.batch} (--stop-on-error): rows after line ${last.lastLine} were not read.`,
    );
  }
  if (where.fileError) {
    const last = summary.batches[summary.batches.length - 1];
    lines.push(
      '',
      `The file could not be read on: ${where.fileError}`,
      last ? `Rows up to line ${last.lastLine} were sent (above); the rest were not imported.` : 'No row was imported.',
    );
  }
  return `${lines.join('\n')}\n`;
}

function batchErrorLines(batch: BatchReport): string[] {
  const out = [`Batch ${batch.batch}, lines ${batch.firstLine}–${batch.lastLine} (${batch.rows} rows), not imported:`];
  for (const e of batch.errors) {
    const at = e.line === null ? 'the batch' : `line ${e.line}${e.column ? `, ${e.column}` : ''}`;
    out.push(`  ${at}: ${e.code}: ${printable(e.message)}`);
  }
  return out;
}

/**
 * Progress on stderr: on a terminal, a bar redrawn in place (the share of the file's bytes read);
 * otherwise one plain line per batch (--json too: its summary is on stdout).
 */
function importProgress(fileSize: number) {
  const tty = Boolean(process.stderr.isTTY);
  let drawn = false;
  return {
    update: (p: CsvImportProgress, batch: BatchReport | null) => {
      if (tty) {
        const share = fileSize > 0 ? Math.min(1, p.bytes / fileSize) : 1;
        const width = 30;
        const filled = Math.round(share * width);
        const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
        const failed = p.failedBatches ? `, ${p.failedBatches} batch${p.failedBatches === 1 ? '' : 'es'} failed` : '';
        process.stderr.write(
          `\r\u001b[K[${bar}] ${String(Math.round(share * 100)).padStart(3)}%  ${p.imported}/${p.rows} rows imported${failed}`,
        );
        drawn = true;
      } else if (batch) {
        const outcome = batch.errors.length
          ? `failed (${batch.errors.length} error${batch.errors.length === 1 ? '' : 's'}), none of its ${batch.rows} rows imported`
          : `imported ${batch.imported}`;
        process.stderr.write(
          `refgraph: batch ${batch.batch} (lines ${batch.firstLine}–${batch.lastLine}): ${outcome}; ${p.imported}/${p.rows} rows imported so far\n`,
        );
      }
    },
    done: () => {
      if (drawn) process.stderr.write('\n');
    },
  };
}

/** The rows of failed batches as CSV in `file` (created at the first one): the columns of CSV_COLUMNS. */
function failedRowsWriter(file: string) {
  let out: fs.WriteStream | null = null;
  let header = false;
  const state = {
    written: false,
    write: async (rows: ReadonlyArray<Record<string, string>>) => {
      const { stringify } = await import('csv-stringify/sync');
      const { CSV_COLUMNS } = await import('./cli/import-partners.js');
      out ??= fs.createWriteStream(file);
      const text = stringify(
        rows.map((row) => CSV_COLUMNS.map((c) => row[c] ?? '')),
        header ? {} : { header: true, columns: [...CSV_COLUMNS] },
      );
      header = true;
      state.written = true;
      if (!out.write(text)) await new Promise<void>((resolve) => out!.once('drain', () => resolve()));
    },
    close: () =>
      out
        ? new Promise<void>((resolve, reject) =>
            out!.end((error?: Error | null) => (error ? reject(error) : resolve())),
          )
        : Promise.resolve(),
  };
  return state;
}

// ---------------------------------------------------------------------------------------------------
// Database access and logging for one-shot commands
// ---------------------------------------------------------------------------------------------------

/**
 * Log records as plain `refgraph: message` lines on stderr (stdout is for results, e.g. --json).
 * `onRecord` sees every record first; returning false hides it.
 */
function cliLogger(level: LogLevel, onRecord?: (record: Record<string, unknown>) => boolean | undefined): Logger {
  return pino(
    { level, base: undefined, timestamp: false },
    {
      write(line: string) {
        const record = JSON.parse(line) as Record<string, unknown>;
        if (onRecord?.(record) === false) return;
        const err = record['err'] as { message?: string } | undefined;
        process.stderr.write(`refgraph: ${String(record['msg'] ?? '')}${err?.message ? `: ${err.message}` : ''}\n`);
      },
    },
  );
}

async function open(
  config: Config,
  options: { migrate: boolean; logger: Logger; pgliteTemplate?: null },
): Promise<Database> {
  const { openDatabase } = await import('./db.js');
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2, ...options });
  try {
    await db.ping();
  } catch (error) {
    await db.close().catch(() => {});
    throw config.databaseUrl
      ? new CliError(describeConnectionError(error, config.databaseUrl), { cause: error })
      : error;
  }
  return db;
}

/** Open the configured database (migrating it when MIGRATE_ON_START says so), run fn, close. */
async function withDatabase<T>(config: Config, fn: (db: Database) => Promise<T>): Promise<T> {
  // Quiet by default: stdout carries the result, stderr only what went wrong.
  const logger = cliLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const db = await open(config, { migrate: config.migrateOnStart, logger });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** An expected failure whose message says it all (exit code 1, no stack). */
class CliError extends Error {
  override name = 'CliError';
}

/** A one-line account of a failed PostgreSQL connection, naming the server. */
function describeConnectionError(error: unknown, url: string): string {
  const u = new URL(url);
  const host = u.hostname || 'localhost';
  const port = u.port || '5432';
  const database = decodeURIComponent(u.pathname.slice(1)) || 'postgres';
  const where = `PostgreSQL database "${database}" at ${host}:${port}`;
  const e = error as { code?: string; message?: string };
  switch (e.code) {
    case 'ECONNREFUSED':
      return `Cannot connect to ${where}: connection refused. Is PostgreSQL running there, and does DATABASE_URL name the right host and port?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `Cannot connect to ${where}: host name "${host}" does not resolve. Check the host in DATABASE_URL.`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `Cannot connect to ${where}: ${e.code}. Check the network path to ${host}:${port}.`;
    case '28P01':
    case '28000':
      return `Cannot connect to ${where}: ${e.message ?? 'authentication failed'}. Check the user and password in DATABASE_URL.`;
    case '3D000':
      return `${where} does not exist. Run \`refgraph migrate\` to create and migrate it, or fix DATABASE_URL.`;
    default:
      return `Cannot connect to ${where}: ${firstLine(e.message ?? String(error))}`;
  }
}

const firstLine = (text: string) => text.split('\n')[0]!.trim();

// ---------------------------------------------------------------------------------------------------
// Errors and exit codes
// ---------------------------------------------------------------------------------------------------

/** Print what went wrong (one line where possible) and return the exit code. */
function report(error: unknown): number {
  if (error instanceof UsageError) {
    const usage = error.command ? `\nUsage: ${USAGE[error.command]}` : '';
    process.stderr.write(
      `refgraph${error.command ? ` ${error.command}` : ''}: ${error.message}${usage}\nRun \`refgraph help\` for more.\n`,
    );
    return 2;
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`refgraph: ${error.message}\n`);
    return 78; // EX_CONFIG
  }
  const e = error as { name?: string; code?: unknown; message?: string; port?: number; address?: string };
  let message = error instanceof Error ? error.message : String(error);
  if (e.name === 'MigrationError' && e.code === 'DATABASE_MISSING') {
    // Serving does not create databases; `refgraph migrate` does.
    const hint = 'Run `refgraph migrate` (it creates the database), or create it yourself';
    message = message.replace(/,? or let refgraph create it \(createDatabase option\)/, '');
    message = message.includes('Create it first') ? message.replace('Create it first', hint) : `${message} ${hint}.`;
  } else if (e.code === 'EADDRINUSE') {
    message = `port ${e.port ?? '?'} on ${e.address ?? '?'} is already in use; stop whatever listens there or set PORT to another port.`;
  } else if (e.code === 'EACCES' && e.port !== undefined) {
    message = `not allowed to listen on port ${e.port}; use a port above 1023 or grant the permission.`;
  }
  process.stderr.write(`refgraph: ${message}\n`);
  if (process.env['LOG_LEVEL']?.toLowerCase() === 'debug' && error instanceof Error && error.stack) {
    process.stderr.write(`${error.stack}\n`);
  }
  return 1;
}

/** Let stdout/stderr drain and the event loop empty; a handle left open must not hang a script. */
function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2000).unref();
}

main(process.argv.slice(2)).then(
  (result) => {
    if (result !== 'running') finish(result);
  },
  (error: unknown) => finish(report(error)),
);
