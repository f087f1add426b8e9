// A new embedded data directory unpacked from the build's migrated template (src/db/pglite-template.ts):
// the same database as one created by initdb and the migrations, without the installation's secrets;
// a template that cannot be used is skipped.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db.js';
import { defaultMigrationsDir } from '../src/db/migrate.js';
import { defaultTemplateFile, writePgliteTemplate } from '../src/db/pglite-template.js';
import { loadInstallationSecret } from '../src/secret.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-template-test-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

let template: string;
beforeAll(async () => {
  template = path.join(tempDir(), 'template.tar.gz');
  await writePgliteTemplate(template);
});

const migrations = async (db: Database) =>
  (
    await db.query<{ name: string }>(
      'SELECT "migration_name" AS "name" FROM "_prisma_migrations" WHERE "finished_at" IS NOT NULL ORDER BY 1',
    )
  ).map((r) => r.name);

describe('PGlite build template', () => {
  it('starts a new data directory from the template: every migration applied, a secret of its own', async () => {
    const open = (dataDir: string) =>
      openDatabase({ databaseUrl: undefined, dataDir, migrate: true, pgliteTemplate: template });
    const fromTemplate = await open(tempDir());
    const scratch = await openDatabase({
      databaseUrl: undefined,
      dataDir: tempDir(),
      migrate: true,
      pgliteTemplate: null,
    });
    try {
      expect(await migrations(fromTemplate)).toEqual(await migrations(scratch));
      expect((await migrations(fromTemplate)).length).toBeGreaterThan(0);
      // Tables are empty and usable, and the commit trigger numbers events as on a new database.
      expect(await fromTemplate.query('SELECT * FROM "Workspace"')).toEqual([]);
      const [ws] = await fromTemplate.query<{ id: string }>(
        `INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES (gen_random_uuid(), 'T', now()) RETURNING "id"`,
      );
      await fromTemplate.transaction(
        (tx) =>
          tx.sql`INSERT INTO "Event" ("id", "workspaceId", "mode", "type", "payload") VALUES (gen_random_uuid(), ${ws!.id}::uuid, 'TEST', 'partner.created', '{}')`,
      );
      expect(
        await fromTemplate.query<{ sequence: string }>('SELECT "sequence"::text AS "sequence" FROM "Event"'),
      ).toEqual([{ sequence: '1' }]);
      // Two directories made from one template do not share an installation secret.
      const other = await open(tempDir());
      try {
        const a = await loadInstallationSecret(fromTemplate, undefined);
        const b = await loadInstallationSecret(other, undefined);
        expect(a).not.toBe(b);
      } finally {
        await other.close();
      }
    } finally {
      await fromTemplate.close();
      await scratch.close();
    }
  });

  it('keeps an existing data directory as it is', async () => {
    const dataDir = tempDir();
    const first = await openDatabase({ databaseUrl: undefined, dataDir, migrate: true, pgliteTemplate: null });
    await first.query(`INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES (gen_random_uuid(), 'kept', now())`);
    await first.close();
    const again = await openDatabase({ databaseUrl: undefined, dataDir, migrate: true, pgliteTemplate: template });
    try {
      expect(await again.query('SELECT "name" FROM "Workspace"')).toEqual([{ name: 'kept' }]);
    } finally {
      await again.close();
    }
  });

  it.each([
    ['cut short', () => fs.readFileSync(template).subarray(0, 4096)],
    ['not a tarball', () => gzipSync(Buffer.alloc(64 * 1024, 7))],
  ])('creates the directory from scratch when the template is damaged (%s)', async (_, bytes) => {
    const damaged = path.join(tempDir(), 'damaged.tar.gz');
    fs.writeFileSync(damaged, bytes());
    const db = await openDatabase({
      databaseUrl: undefined,
      dataDir: tempDir(),
      migrate: true,
      pgliteTemplate: damaged,
    });
    try {
      expect((await migrations(db)).length).toBeGreaterThan(0);
      expect(await db.query('SELECT * FROM "Workspace"')).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('is named after the migrations it holds: another build’s template is not found after a migration changes', () => {
    const dir = tempDir();
    fs.cpSync(defaultMigrationsDir(), dir, { recursive: true });
    const before = defaultTemplateFile(dir);
    expect(path.basename(before)).toMatch(/^pglite-template-[0-9a-f]{16}\.tar\.gz$/);
    expect(defaultTemplateFile(dir)).toBe(before);
    const last = fs
      .readdirSync(dir)
      .filter((name) => fs.existsSync(path.join(dir, name, 'migration.sql')))
      .sort()
      .at(-1)!;
    fs.appendFileSync(path.join(dir, last, 'migration.sql'), '\n-- changed\n');
    const changed = defaultTemplateFile(dir);
    expect(changed).not.toBe(before);
    fs.mkdirSync(path.join(dir, '29991231000000_added'));
    fs.writeFileSync(path.join(dir, '29991231000000_added', 'migration.sql'), 'SELECT 1;\n');
    expect(defaultTemplateFile(dir)).not.toBe(changed);
  });
});
