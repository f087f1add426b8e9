// A migrated, empty embedded database, made once at build time: a new PGlite data directory is
// unpacked from it instead of being created by initdb and brought up to date migration by
// migration — the slowest part of the embedded default's first start (BENCHMARKS.md, coldstart).
//
// It holds the schema only: no workspace, no key, no installation secret (the secret is made on
// the first start of each data directory). Its file is named after the migrations it was made
// from (their names and contents): after a migration is added or changed, a template from an
// earlier build is simply not found, and the database is created the usual way. One that cannot
// be unpacked (another PGlite version, a damaged file) is skipped with a warning.
//
//   node dist/src/db/pglite-template.js [file]    # part of `npm run build`: dist/pglite-template-<hash>.tar.gz
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { PGlite } from '@electric-sql/pglite';
import { applyMigrations, defaultMigrationsDir, packageRoot } from './migrate.js';

const TEMPLATE_NAME = /^pglite-template-[0-9a-f]{16}\.tar\.gz$/;

/** Where `npm run build` writes the template for the current migrations (under dist/, not committed). */
export function defaultTemplateFile(migrationsDir = defaultMigrationsDir()): string {
  return path.join(packageRoot(), 'dist', `pglite-template-${migrationsKey(migrationsDir)}.tar.gz`);
}

/** A hash of every migration's name and SQL, in order. */
function migrationsKey(dir: string): string {
  const hash = createHash('sha256');
  const names = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && fs.existsSync(path.join(dir, entry.name, 'migration.sql')))
    .map((entry) => entry.name)
    .sort();
  for (const name of names)
    hash
      .update(`${name}\0`)
      .update(fs.readFileSync(path.join(dir, name, 'migration.sql')))
      .update('\0');
  return hash.digest('hex').slice(0, 16);
}

/** Make the template: an in-memory PGlite, every migration, dumped as a gzip tarball to `file`. */
export async function writePgliteTemplate(file = defaultTemplateFile()): Promise<{ bytes: number }> {
  const db = new PGlite();
  try {
    await applyMigrations({ pglite: db });
    const dump = Buffer.from(await (await db.dumpDataDir('gzip')).arrayBuffer());
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const partial = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(partial, dump);
    fs.renameSync(partial, file); // never a half-written template
    // Templates of earlier migrations are never used again.
    for (const other of fs.readdirSync(path.dirname(file))) {
      if (TEMPLATE_NAME.test(other) && other !== path.basename(file))
        fs.rmSync(path.join(path.dirname(file), other), { force: true });
    }
    return { bytes: dump.length };
  } finally {
    await db.close();
  }
}

/**
 * The template as an uncompressed tarball, or null when there is none. Unpacked here, so that a
 * damaged file fails now (an exception) rather than inside PGlite's loader.
 */
export function readPgliteTemplate(file = defaultTemplateFile()): Blob | null {
  let packed: Buffer;
  try {
    packed = fs.readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const tar = gunzipSync(packed);
  // A tar archive's first header says "ustar" at byte 257: PGlite's loader would fail on anything
  // else with an error it does not hand back to the caller.
  if (tar.length < 512 || tar.toString('latin1', 257, 262) !== 'ustar') throw new Error(`${file} is not a tar archive`);
  return new Blob([tar]);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2] ?? defaultTemplateFile();
  const { bytes } = await writePgliteTemplate(file);
  console.log(`pglite template: ${path.relative(process.cwd(), file)} (${(bytes / 1024 / 1024).toFixed(1)} MiB)`);
}
