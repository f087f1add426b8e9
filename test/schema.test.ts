import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { printSchemaFile } from '../src/graphql/print.js';

describe('schema.graphql', () => {
  it('matches the schema the code builds (run `npm run schema:print` after changing the API)', () => {
    const committed = fs.readFileSync(path.resolve(import.meta.dirname, '../schema.graphql'), 'utf8');
    expect(committed).toBe(printSchemaFile());
  });
});
