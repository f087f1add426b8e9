// Prisma CLI configuration (prisma migrate / generate / db ...). See docs/prisma-offline.md.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { defineConfig } from 'prisma/config';

const root = import.meta.dirname;

/**
 * Is Prisma's native schema engine installed? The CLI looks for `schema-engine-<platform>` in
 * @prisma/engines (getEnginesPath()), then next to / above / under the prisma package's build dir.
 * It is absent when the binary host (binaries.prisma.sh) could not be reached at install time.
 */
function nativeSchemaEngineExists(): boolean {
  const dirs: string[] = [];
  const require = createRequire(path.join(root, 'package.json'));
  for (const pkg of ['@prisma/engines', 'prisma']) {
    try {
      dirs.push(path.dirname(require.resolve(`${pkg}/package.json`)));
    } catch {
      // not installed
    }
  }
  const prismaDir = dirs[1];
  if (prismaDir) dirs.push(path.dirname(prismaDir), path.join(prismaDir, 'runtime'));
  return dirs.some((dir) => {
    try {
      return fs
        .readdirSync(dir, { withFileTypes: true })
        .some((f) => f.isFile() && f.name.startsWith('schema-engine-') && !/\.(gz|sha256|sig|tmp)$/.test(f.name));
    } catch {
      return false;
    }
  });
}

// Without the native engine, `prisma migrate *` runs on our wasm-engine stand-in (bin/schema-engine.mjs).
// Honour an explicit choice by the user (either variable name the CLI reads).
if (
  !process.env['PRISMA_SCHEMA_ENGINE_BINARY'] &&
  !process.env['PRISMA_MIGRATION_ENGINE_BINARY'] &&
  !nativeSchemaEngineExists()
) {
  process.env['PRISMA_SCHEMA_ENGINE_BINARY'] = path.join(root, 'bin', 'schema-engine.mjs');
}
// No update checks / telemetry (the machine may be offline); the user's setting wins.
process.env['CHECKPOINT_DISABLE'] ??= '1';
process.env['PRISMA_HIDE_UPDATE_MESSAGE'] ??= '1';

/** DATABASE_URL, else the embedded PGlite database the server uses by default. */
function databaseUrl(): string {
  const fromEnv = process.env['DATABASE_URL'];
  if (fromEnv) return fromEnv;
  const dataDir = path.resolve(process.cwd(), process.env['REFGRAPH_DATA_DIR'] || '.refgraph');
  const pgdata = path.join(dataDir, 'pgdata');
  fs.mkdirSync(pgdata, { recursive: true });
  return `pglite:${pgdata}`;
}

const shadowDatabaseUrl = process.env['SHADOW_DATABASE_URL'];

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    url: databaseUrl(),
    ...(shadowDatabaseUrl ? { shadowDatabaseUrl } : {}),
  },
});
