import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvent, appendEvents, EVENTS_CHANNEL } from '../src/modules/events/outbox.js';
import { testDatabaseUrl } from './helpers/backend.js';
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
      (await prisma.event.findMany({ where: { workspaceId, mode }, orderBy: { sequence: 'asc' } })).map((e) =>
        Number(e.sequence),
      );
    expect(await sequences(a.id, 'TEST')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await sequences(a.id, 'LIVE')).toEqual([1, 2, 3, 4, 5]);
    expect(await sequences(b.id, 'TEST')).toEqual([1, 2, 3, 4]);
  });

  // PGlite has one connection: its transactions run one at a time anyway.
  it.skipIf(testDatabaseUrl() === null)(
    'numbers at commit: a writer whose transaction is still open does not hold up the tenant’s other writers',
    async () => {
      const ws = await testDb.db.prisma.workspace.create({ data: { name: 'At commit' } });
      const tenant = { workspaceId: ws.id, mode: 'TEST' as const };
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let appended!: () => void;
      const firstAppended = new Promise<void>((resolve) => (appended = resolve));
      // The first writer appends, then keeps its transaction open until told to commit.
      const first = testDb.db.transaction(async (tx) => {
        const [id] = await appendEvents(tx, tenant, [{ type: 'partner.created', payload: { who: 'first' } }]);
        appended();
        await held;
        return id!;
      });
      await firstAppended;
      // Meanwhile two more writers of the same tenant append and commit (one through Prisma): before
      // numbering moved to commit, they would have waited for the first one's lock.
      await testDb.db.transaction((tx) =>
        appendEvents(tx, tenant, [
          { type: 'partner.created', payload: { who: 'second' } },
          { type: 'partner.created', payload: { who: 'third' } },
        ]),
      );
      await testDb.db.prisma.$transaction((tx) =>
        appendEvents(tx, tenant, [{ type: 'partner.created', payload: { who: 'fourth' } }]),
      );
      release();
      await first;
      // Numbers in commit order, gap-free, none provisional; in insertion order within a transaction.
      const events = await testDb.db.prisma.event.findMany({ where: tenant, orderBy: { sequence: 'asc' } });
      expect(events.map((e) => [Number(e.sequence), (e.payload as { who: string }).who])).toEqual([
        [1, 'second'],
        [2, 'third'],
        [3, 'fourth'],
        [4, 'first'],
      ]);
      const [counter] = await testDb.db.query<{ last: string | bigint }>(
        'SELECT "lastSequence" AS "last" FROM "EventCounter" WHERE "workspaceId" = $1 AND "mode" = $2',
        [ws.id, 'TEST'],
      );
      expect(Number(counter!.last)).toBe(4);
      // occurredAt is the commit's time: the first writer appended first but committed last.
      const times = events.map((e) => e.occurredAt.getTime());
      expect(times).toEqual([...times].sort((a, b) => a - b));
      expect(times[3]).toBeGreaterThan(times[0]!);
    },
  );

  it('leaves no number behind for a rolled-back transaction, and notifies dispatchers once per commit', async () => {
    const ws = await testDb.db.prisma.workspace.create({ data: { name: 'Notify' } });
    const tenant = { workspaceId: ws.id, mode: 'LIVE' as const };
    const received: string[] = [];
    let notified!: () => void;
    const gotOne = new Promise<void>((resolve) => (notified = resolve));
    const stop = await testDb.db.listen(EVENTS_CHANNEL, (payload) => {
      if (payload.startsWith(ws.id)) {
        received.push(payload);
        notified();
      }
    });
    try {
      await expect(
        testDb.db.transaction(async (tx) => {
          await appendEvents(tx, tenant, [{ type: 'partner.created', payload: { n: 0 } }]);
          throw new Error('rolled back on purpose');
        }),
      ).rejects.toThrow('rolled back on purpose');
      await testDb.db.transaction((tx) =>
        appendEvents(
          tx,
          tenant,
          [1, 2, 3].map((n) => ({ type: 'partner.created' as const, payload: { n } })),
        ),
      );
      await gotOne;
      // A marker sent after that commit arrives after everything the commit sent, on the same channel.
      let marked!: () => void;
      const marker = new Promise<void>((resolve) => (marked = resolve));
      const onMarker = (payload: string) => payload === `${ws.id}:marker` && marked();
      const stopMarker = await testDb.db.listen(EVENTS_CHANNEL, onMarker);
      await testDb.db.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, `${ws.id}:marker`]);
      await marker;
      await stopMarker();
      expect(received.filter((p) => p !== `${ws.id}:marker`)).toEqual([`${ws.id}:LIVE`]);
      const events = await testDb.db.prisma.event.findMany({ where: tenant, orderBy: { sequence: 'asc' } });
      expect(events.map((e) => [Number(e.sequence), (e.payload as { n: number }).n])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
    } finally {
      await stop();
    }
  });

  it('does not number an event deleted before its transaction commits (no gap)', async () => {
    const ws = await testDb.db.prisma.workspace.create({ data: { name: 'Deleted' } });
    const tenant = { workspaceId: ws.id, mode: 'TEST' as const };
    await testDb.db.transaction(async (tx) => {
      const [dropped] = await appendEvents(tx, tenant, [
        { type: 'partner.created', payload: { n: 'dropped' } },
        { type: 'partner.created', payload: { n: 'kept' } },
      ]);
      await tx.sql`DELETE FROM "Event" WHERE "id" = ${dropped}::uuid`;
    });
    await testDb.db.transaction((tx) =>
      appendEvents(tx, tenant, [{ type: 'partner.created', payload: { n: 'next' } }]),
    );
    const events = await testDb.db.prisma.event.findMany({ where: tenant, orderBy: { sequence: 'asc' } });
    expect(events.map((e) => [Number(e.sequence), (e.payload as { n: string }).n])).toEqual([
      [1, 'kept'],
      [2, 'next'],
    ]);
  });
});
