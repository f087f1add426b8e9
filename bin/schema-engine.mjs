#!/usr/bin/env node
// Stand-in for Prisma's native `schema-engine` binary: runs src/db/schema-engine/cli.ts (see there and
// docs/prisma-offline.md). prisma.config.ts points PRISMA_SCHEMA_ENGINE_BINARY here when the native
// binary is absent. Uses the compiled dist/ copy when it is up to date (fast start, no tsx needed),
// else compiles the TypeScript source on the fly with tsx. stdout carries protocol lines only.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mtime = (p) => {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};
const modules = ['cli', 'engine'];
const srcDir = path.join(root, 'src/db/schema-engine');
const distDir = path.join(root, 'dist/src/db/schema-engine');
// dist is used when every compiled module exists and none is older than its source (or the source is
// not shipped at all).
const distFresh = modules.every((m) => {
  const built = mtime(path.join(distDir, `${m}.js`));
  return built >= 0 && built >= mtime(path.join(srcDir, `${m}.ts`));
});

if (distFresh) {
  await import(pathToFileURL(path.join(distDir, 'cli.js')).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(path.join(srcDir, 'cli.ts')).href);
}
