import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent } from '../src/modules/events/outbox.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

let testDb: TestDatabase;
beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb?.destroy();
});

describe('outbox', () => {
  it('numbers events per workspace and mode, gap-free under concurrent transactions and rollbacks', async () => {
    const prisma = testDb.db.prisma;
    const a = await prisma.workspace.create({ data: { name: 'A' } });
    const b = await prisma.workspace.create({ data: { name: 'B' } });
    const append = (workspaceId: string, mode: 'TEST' | 'LIVE', fail = false) =>
      prisma
        .$transaction(async (tx) => {
          await appendEvent(tx, { workspaceId, mode }, { type: 'partner.created', payload: { n: 1 } });
          if (fail) throw new Error('rolled back on purpose');
        })
        .catch((error: Error) => {
          if (!fail) throw error;
        });
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => append(a.id, 'TEST', i % 3 === 0)),
      ...Array.from({ length: 5 }, () => append(a.id, 'LIVE')),
      ...Array.from({ length: 4 }, () => append(b.id, 'TEST')),
    ]);
    const sequences = async (workspaceId: string, mode: 'TEST' | 'LIVE') =>
      (await prisma.event.findMany({ where: { workspaceId, mode }, orderBy: { sequence: 'asc' } })).map((e) => Number(e.sequence));
    expect(await sequences(a.id, 'TEST')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await sequences(a.id, 'LIVE')).toEqual([1, 2, 3, 4, 5]);
    expect(await sequences(b.id, 'TEST')).toEqual([1, 2, 3, 4]);
  });
});
