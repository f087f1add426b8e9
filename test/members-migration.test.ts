// The members migration on a database of the old shape: existing workspaces get no member, and the
// constraints hold (no PARTNER member; ACTIVE means a password, INVITED an invitation; one row per
// workspace and email; deleting a workspace takes its members and sessions). Runs on PGlite
// whatever the backend: the migrations are plain SQL.
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from './helpers/factories.js';
import { migratedUpTo } from './helpers/migrations.js';

const MIGRATION = '20261207202000_members';

let pglite: PGlite;
let db: Awaited<ReturnType<typeof migratedUpTo>>;
const ws = uuidv7();

beforeAll(async () => {
  db = await migratedUpTo(MIGRATION);
  pglite = db.pglite;
  await pglite.exec(`INSERT INTO "Workspace" ("id", "name", "updatedAt") VALUES ('${ws}', 'Old shape', now());`);
  expect(await db.applyRest()).toContain(MIGRATION);
});
afterAll(async () => {
  await db?.close();
});

const insert = (values: string) =>
  pglite.exec(
    `INSERT INTO "Member" ("id", "workspaceId", "email", "role", "status", "passwordHash", "invitationHash", "invitationExpiresAt", "joinedAt") VALUES ${values}`,
  );

describe('members migration', () => {
  it('leaves existing workspaces without members, and enforces the member constraints', async () => {
    expect((await pglite.query('SELECT * FROM "Member"')).rows).toEqual([]);
    const active = uuidv7();
    await insert(`('${active}', '${ws}', 'a@example.com', 'ADMIN', 'ACTIVE', '$argon2id$…', NULL, NULL, now())`);
    await insert(`('${uuidv7()}', '${ws}', 'b@example.com', 'READ_ONLY', 'INVITED', NULL, 'h1', now(), NULL)`);
    await expect(
      insert(`('${uuidv7()}', '${ws}', 'p@example.com', 'PARTNER', 'INVITED', NULL, 'h2', now(), NULL)`),
    ).rejects.toThrow(/Member_role_check/);
    await expect(
      insert(`('${uuidv7()}', '${ws}', 'c@example.com', 'ADMIN', 'ACTIVE', NULL, NULL, NULL, now())`),
    ).rejects.toThrow(/Member_status_check/);
    await expect(
      insert(`('${uuidv7()}', '${ws}', 'd@example.com', 'ADMIN', 'INVITED', NULL, NULL, NULL, NULL)`),
    ).rejects.toThrow(/Member_status_check/);
    await expect(
      insert(`('${uuidv7()}', '${ws}', 'a@example.com', 'ADMIN', 'INVITED', NULL, 'h3', now(), NULL)`),
    ).rejects.toThrow(/Member_workspaceId_email_key/);
    await pglite.exec(
      `INSERT INTO "MemberSession" ("id", "memberId", "workspaceId", "mode", "expiresAt") VALUES ('s1', '${active}', '${ws}', 'LIVE', now() + interval '1 hour')`,
    );
    await pglite.exec(`DELETE FROM "Workspace" WHERE "id" = '${ws}'`);
    expect((await pglite.query('SELECT count(*)::int AS n FROM "Member"')).rows).toEqual([{ n: 0 }]);
    expect((await pglite.query('SELECT count(*)::int AS n FROM "MemberSession"')).rows).toEqual([{ n: 0 }]);
  });
});
