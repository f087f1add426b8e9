#!/usr/bin/env node
// The `refgraph` command: runs the compiled CLI (npm install builds it; `npm run build` refreshes it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = fileURLToPath(new URL('../dist/src/cli.js', import.meta.url));
if (!existsSync(compiled)) {
  process.stderr.write('refgraph: not built yet. Run `npm install` (or `npm run build`) in the refgraph directory first.\n');
  process.exit(1);
}
await import(compiled);
