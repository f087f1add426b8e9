#!/usr/bin/env node
// The `refgraph` command: runs the compiled CLI (npm install builds it; `npm run build` refreshes it).
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const compiled = path.join(root, 'dist', 'src', 'cli.js');
if (!existsSync(compiled)) {
  process.stderr.write(
    'refgraph: not built yet. Run `npm install` (or `npm run build`) in the refgraph directory first.\n',
  );
  process.exit(1);
}

// In a clone, sources edited (or pulled) after the last build would silently run as the old code.
const sources = path.join(root, 'src');
if (existsSync(sources)) {
  const stale = readdirSync(sources, { recursive: true })
    .map(String)
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .find((file) => {
      const output = statSync(path.join(root, 'dist', 'src', file.replace(/\.ts$/, '.js')), { throwIfNoEntry: false });
      return !output || output.mtimeMs < statSync(path.join(sources, file)).mtimeMs;
    });
  if (stale) {
    process.stderr.write(
      `refgraph: warning: src/${stale} is newer than its build in dist/; run \`npm run build\` to use your changes.\n`,
    );
  }
}

await import(compiled);
