// What `npm start` / `refgraph serve|migrate` load must not reach Prisma's internal schema engine
// (src/db/schema-engine/, @prisma/schema-engine-wasm): it is a development tool for `prisma migrate
// dev|diff`, pinned to an internal build that a Prisma upgrade may break. A static walk of the
// relative imports (static and dynamic) from the entry points.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;

/** Every module reachable from `entry` through relative imports, and the packages they import. */
function importGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const source = fs.readFileSync(file, 'utf8');
    for (const [, specifier] of source.matchAll(IMPORT)) {
      if (!specifier!.startsWith('.')) {
        packages.add(specifier!);
        continue;
      }
      const base = path.resolve(path.dirname(file), specifier!);
      const target = [base.replace(/\.js$/, '.ts'), `${base}.ts`, base].find((f) =>
        fs.statSync(f, { throwIfNoEntry: false })?.isFile(),
      );
      if (target) visit(target);
      // Prisma's generated client quotes import lines in its doc comments.
      else if (!file.includes(`${path.sep}generated${path.sep}`)) {
        throw new Error(`${path.relative(root, file)}: cannot resolve ${specifier}`);
      }
    }
  };
  visit(path.join(root, entry));
  return { files, packages };
}

describe('the start path', () => {
  for (const entry of ['src/cli.ts', 'src/index.ts', 'src/db/migrate.ts', 'src/db.ts']) {
    it(`${entry} does not import the schema engine`, () => {
      const { files, packages } = importGraph(entry);
      expect(files.size).toBeGreaterThan(entry === 'src/cli.ts' ? 20 : 1);
      const relative = [...files].map((f) => path.relative(root, f));
      expect(relative.filter((f) => f.startsWith('src/db/schema-engine/'))).toEqual([]);
      expect([...packages].filter((p) => p.startsWith('@prisma/schema-engine-wasm'))).toEqual([]);
    });
  }

  it('the walk sees the engine where it is imported (the development CLI)', () => {
    const { files, packages } = importGraph('src/db/schema-engine/cli.ts');
    expect([...files].map((f) => path.relative(root, f))).toContain('src/db/schema-engine/engine.ts');
    expect(packages).toContain('@prisma/schema-engine-wasm/schema_engine_bg');
  });
});
