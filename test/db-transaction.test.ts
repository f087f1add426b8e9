// Database.transaction (src/db.ts, src/lib/sql.ts): plain-SQL transactions for the hot paths, on
// PostgreSQL and on PGlite alike.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../src/lib/sql.js';
import { createWorkspace } from '../src/modules/workspace/workspace.service.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb?.destroy();
});

const partnersNamed = async (externalId: string) =>
  (
    await testDb.db.query<{ n: string | number | bigint }>(
      'SELECT count(*) AS n FROM "Partner" WHERE "externalId" = $1',
      [externalId],
    )
  )[0]!.n;

async function insertPartner(
  tx: { sql: (s: TemplateStringsArray, ...v: unknown[]) => Promise<unknown[]> },
  workspaceId: string,
  externalId: string,
) {
  return tx.sql`INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt")
                VALUES (gen_random_uuid(), ${workspaceId}::uuid, 'TEST', ${externalId}, now()) RETURNING "id"`;
}

describe('Database.transaction', () => {
  it('commits what the function wrote and returns its result; values are parameters, never spliced', async () => {
    const ws = await createWorkspace(testDb.db.prisma, 'Tx');
    const tricky = `o'neil"; DROP TABLE "Partner"; --`;
    const rows = await testDb.db.transaction(async (tx) => {
      await insertPartner(tx, ws.workspace.id, tricky);
      return tx.sql<{ externalId: string }>`SELECT "externalId" FROM "Partner" WHERE "externalId" = ${tricky}`;
    });
    expect(rows).toEqual([{ externalId: tricky }]);
    expect(Number(await partnersNamed(tricky))).toBe(1);
  });

  it('rolls everything back when the function throws, and rethrows its error', async () => {
    const ws = await createWorkspace(testDb.db.prisma, 'Tx rollback');
    const failure = new Error('changed my mind');
    await expect(
      testDb.db.transaction(async (tx) => {
        await insertPartner(tx, ws.workspace.id, 'rolled-back');
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(Number(await partnersNamed('rolled-back'))).toBe(0);
  });

  it('rolls back after a failed statement, and keeps no connection busy after failures', async () => {
    const ws = await createWorkspace(testDb.db.prisma, 'Tx errors');
    // More failing transactions than the pool has connections (10): a leaked connection would hang the last ones.
    for (let i = 0; i < 12; i++) {
      await expect(
        testDb.db.transaction(async (tx) => {
          await insertPartner(tx, ws.workspace.id, `failed-${i}`);
          await tx.sql`SELECT 1 / 0`;
        }),
      ).rejects.toThrow(/division by zero/);
    }
    expect(Number(await partnersNamed('failed-0'))).toBe(0);
    const ok = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        testDb.db.transaction((tx) => tx.sql<{ i: number }>`SELECT ${i}::int AS "i"`),
      ),
    );
    expect(ok.map((rows) => rows[0]!.i)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('sqlBeforeCommit: the statement is committed with the transaction (COMMIT travels with it on PostgreSQL)', async () => {
    const ws = await createWorkspace(testDb.db.prisma, 'Tx before commit');
    const before = testDb.db.statements.count;
    await testDb.db.transaction(async (tx) => {
      await insertPartner(tx, ws.workspace.id, 'at-commit-1');
      tx.sqlBeforeCommit`INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt")
                         VALUES (gen_random_uuid(), ${ws.workspace.id}::uuid, 'TEST', ${'at-commit-2'}, now())`;
    });
    expect(testDb.db.statements.count - before).toBe(4);
    expect(Number(await partnersNamed('at-commit-1'))).toBe(1);
    expect(Number(await partnersNamed('at-commit-2'))).toBe(1);
  });

  it('sqlBeforeCommit: a failure rolls everything back and is thrown; the connections stay usable (Prisma too)', async () => {
    const ws = await createWorkspace(testDb.db.prisma, 'Tx before commit fails');
    // More than the pool's 10 connections: each one must come back in a usable state.
    for (let i = 0; i < 12; i++) {
      await expect(
        testDb.db.transaction(async (tx) => {
          await insertPartner(tx, ws.workspace.id, `failed-at-commit-${i}`);
          tx.sqlBeforeCommit`SELECT 1 / ${0}::int`;
          tx.sqlBeforeCommit`SELECT 1`;
        }),
      ).rejects.toThrow(/division by zero/);
    }
    // A statement after a failed one finds the transaction aborted: the first failure is the one thrown.
    await expect(
      testDb.db.transaction(async (tx) => {
        await insertPartner(tx, ws.workspace.id, 'failed-at-commit-then');
        tx.sqlBeforeCommit`SELECT 1 / ${0}::int`;
        await tx.sql`SELECT 2`;
      }),
    ).rejects.toThrow(/division by zero/);
    // The function throwing while a sqlBeforeCommit statement is outstanding: rolled back, its own error thrown.
    const failure = new Error('changed my mind after sending');
    await expect(
      testDb.db.transaction(async (tx) => {
        tx.sqlBeforeCommit`INSERT INTO "Partner" ("id", "workspaceId", "mode", "externalId", "updatedAt")
                           VALUES (gen_random_uuid(), ${ws.workspace.id}::uuid, 'TEST', ${'thrown-after'}, now())`;
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(Number(await partnersNamed('failed-at-commit-0'))).toBe(0);
    expect(Number(await partnersNamed('failed-at-commit-then'))).toBe(0);
    expect(Number(await partnersNamed('thrown-after'))).toBe(0);
    const counts = await Promise.all(
      Array.from({ length: 12 }, () => testDb.db.prisma.partner.count({ where: { workspaceId: ws.workspace.id } })),
    );
    expect(counts).toEqual(Array.from({ length: 12 }, () => 0));
  });

  it('counts BEGIN, each statement and COMMIT', async () => {
    const before = testDb.db.statements.count;
    await testDb.db.transaction(async (tx) => {
      await tx.sql`SELECT 1`;
      await tx.sql`SELECT 2`;
    });
    expect(testDb.db.statements.count - before).toBe(4);
  });

  it('splices fragments into a statement, their values renumbered and still sent as parameters', async () => {
    const tricky = `it's "quoted" $1`;
    const inner = sql`SELECT ${tricky}::text AS "v", ${2}::int AS "n"`;
    const outer = sql`picked AS (${inner}), `;
    const rows = await testDb.db.transaction(
      (tx) =>
        tx.sql<{
          v: string;
          n: number;
          m: number;
          e: string;
        }>`WITH ${outer} ${sql.empty} other AS (SELECT ${3}::int AS "m")
        SELECT picked."v", picked."n", other."m", ${'end'}::text AS "e" FROM picked, other`,
    );
    expect(rows).toEqual([{ v: tricky, n: 2, m: 3, e: 'end' }]);
  });
});
