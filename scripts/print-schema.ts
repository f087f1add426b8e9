// Writes schema.graphql from the code-first schema (sorted), or with --check fails when they differ.
import fs from 'node:fs';
import path from 'node:path';
import { printSchemaFile } from '../src/graphql/print.js';

const file = path.resolve(import.meta.dirname, '../schema.graphql');
const printed = printSchemaFile();
if (process.argv.includes('--check')) {
  const committed = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (committed !== printed) {
    process.stderr.write('schema.graphql is out of date: run `npm run schema:print` and commit the result.\n');
    process.exit(1);
  }
  process.stdout.write('schema.graphql is up to date.\n');
} else {
  fs.writeFileSync(file, printed);
  process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
}
